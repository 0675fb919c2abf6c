"""Money receipts as fixed documents: written in the payment's own transaction, never recomputed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import F, Sum
from django.utils import timezone

from sonjog.billing.models import Allocation, Bill, LedgerEntry, Payment, Receipt
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.services.projection import paid_run_end
from sonjog.billing.terms import operator_date_of, subscriber_terms
from sonjog.customers.models import Subscriber


def _paid_up_to(subscriber: Subscriber) -> dt.date | None:
    """The last day of service paid for: prepaid, the validity end; otherwise the last day of the
    unbroken run of fully paid period bills."""
    if subscriber_terms(subscriber).mode == "prepaid":
        return subscriber.expires_on - dt.timedelta(days=1) if subscriber.expires_on else None
    paid_through, _month = paid_run_end(subscriber.pk)
    return paid_through - dt.timedelta(days=1) if paid_through else None


def _settled(entry: LedgerEntry | None) -> list[dict[str, Any]]:
    """What the payment was set against, bill by bill, oldest first."""
    if entry is None:
        return []
    amounts = {
        bill_id: total
        for bill_id, total in Allocation.objects.filter(source=entry)
        .values_list("bill_id")
        .annotate(total=Sum("amount"))
        .values_list("bill_id", "total")
        .order_by()
        if total
    }
    settled = []
    for bill in Bill.objects.filter(pk__in=amounts).prefetch_related("lines").order_by("period_month", "pk"):
        first_line = next(iter(bill.lines.all()), None)
        settled.append(
            {
                "kind": bill.kind,
                "period_month": bill.period_month.isoformat(),
                "first_day": bill.period_start.isoformat(),
                "last_day": (bill.period_end - dt.timedelta(days=1)).isoformat(),
                "description": first_line.description if bill.kind == Bill.Kind.CHARGE and first_line else "",
                "amount": str(amounts[bill.pk]),
            }
        )
    return settled


def receipt_content(payment: Payment, *, reconstructed: bool = False) -> dict[str, Any]:
    subscriber = Subscriber.objects.select_related("operator").get(pk=payment.subscriber_id)
    operator = subscriber.operator
    entry = LedgerEntry.objects.filter(payment=payment, kind="payment").first()
    collector = payment.collector
    balance = subscriber_balance(subscriber.pk)
    paid_up_to = _paid_up_to(subscriber)
    return {
        "operator": {
            "name": operator.name,
            "address": operator.document_address,
            "phone": operator.document_phone,
            "bin": operator.bin_number,
            "currency": operator.currency,
        },
        "subscriber": {
            "name": subscriber.name,
            "customer_id": subscriber.customer_id,
            "address": subscriber.address,
            "phone": subscriber.phone,
        },
        "amount": str(payment.amount),
        "method": payment.method,
        "reference": payment.reference,
        "received_at": payment.received_at.isoformat(),
        "received_on": operator_date_of(operator, payment.received_at).isoformat(),
        "collector": (collector.get_full_name() or collector.get_username()) if collector else "",
        "settled": _settled(entry),
        "balance_after": None if reconstructed else str(balance),
        "paid_up_to": paid_up_to.isoformat() if paid_up_to and not reconstructed else None,
    }


def receipt_issue(*, payment: Payment) -> Receipt:
    """Freeze the receipt of a payment just recorded (called inside payment_record's transaction,
    after allocation, so what it settled and the balance after it are the payment's own)."""
    return Receipt.objects.create(
        payment=payment,
        operator_id=payment.operator_id,
        issued_at=timezone.now(),
        content=receipt_content(payment),
    )


def receipt_show(*, payment: Payment) -> tuple[Receipt, bool]:
    """The receipt to show and whether this showing is a reprint (any showing after the first). A
    payment recorded before receipts were kept gets one built now, marked reconstructed."""
    receipt = Receipt.objects.filter(payment=payment).first()
    if receipt is None:
        receipt, _created = Receipt.objects.get_or_create(
            payment=payment,
            defaults={
                "operator_id": payment.operator_id,
                "issued_at": timezone.now(),
                "content": receipt_content(payment, reconstructed=True),
                "reconstructed": True,
            },
        )
    shown = Receipt.objects.filter(pk=receipt.pk)
    shown.update(times_shown=F("times_shown") + 1)
    times = shown.values_list("times_shown", flat=True).get()
    return receipt, times > 1
