"""Payments, reversals, adjustments and invoice voids: each one transaction under the subscriber lock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.billing.calculation import Creditable, LineCredit, credit_split, creditable_total, outage_credit
from sonjog.billing.exceptions import (
    AlreadyReversed,
    BillingError,
    CreditExceedsBill,
    DuplicateGatewayTransaction,
    DuplicatePaymentSuspected,
    InvalidAmount,
    InvalidDate,
    InvalidPaymentMethod,
    InvoiceAlreadyVoided,
    InvoicePaid,
    NotReversible,
)
from sonjog.billing.models import (
    AdjustmentReason,
    Allocation,
    Bill,
    BillLine,
    CreditLine,
    CreditNote,
    DocumentSequence,
    EntryCategory,
    EntryKind,
    Invoice,
    LedgerEntry,
    Payment,
    PaymentMethod,
)
from sonjog.billing.services.floats import float_credit_back
from sonjog.billing.services.generation import document_numbers_reserve
from sonjog.billing.services.handover import handover_payment_add
from sonjog.billing.services.locks import subscriber_lock
from sonjog.billing.services.projection import money_changed
from sonjog.billing.services.receipts import receipt_issue
from sonjog.billing.terms import operator_date_of, operator_today, subscriber_terms
from sonjog.core.audit import audit
from sonjog.core.money import ZERO, round_money
from sonjog.customers.models import Subscriber
from sonjog.operators.dates import business_date_problem


def _date_check(subscriber: Subscriber, day: dt.date, what: str, actor: User | None = None) -> None:
    operator = subscriber.operator
    problem = business_date_problem(operator, day, operator_today(operator), what=what, actor=actor)
    if problem:
        raise InvalidDate(problem)


def _actor(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def _period_month_for(subscriber: Subscriber, day: dt.date) -> dt.date:
    """The statement period an entry dated `day` counts in; before activation, the first period."""
    terms = subscriber_terms(subscriber)
    if subscriber.activation_date is not None and day < subscriber.activation_date:
        day = subscriber.activation_date
    return terms.period_month_of(day)


def payment_record(
    *,
    subscriber: Subscriber,
    amount: Decimal,
    method: str,
    reference: str = "",
    received_at: dt.datetime | None = None,
    collector: User | None = None,
    actor: User | None = None,
    confirm_duplicate: bool = False,
    gateway: str = "",
    gateway_transaction_id: str = "",
) -> Payment:
    """Record money received, allocate it FIFO to the oldest open bills, keep any excess as credit.
    The money only: entry points call `sonjog.flows.payments.payment_receive`, which adds the
    reconnection and the message in the same transaction."""
    if amount is None or amount <= 0:
        raise InvalidAmount(f"the amount must be more than zero (got {amount})")
    if round_money(amount) != amount:
        raise InvalidAmount(f"the amount {amount} has more than two decimal places")
    if method not in PaymentMethod.values:
        raise InvalidPaymentMethod(f"unknown payment method '{method}'; use one of {', '.join(PaymentMethod.values)}")
    received_at = received_at or timezone.now()
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        _date_check(locked, operator_date_of(locked.operator, received_at), _("payment"), actor or collector)
        window = dt.timedelta(seconds=settings.SONJOG_DUPLICATE_PAYMENT_WINDOW_SECONDS)
        recent = Payment.objects.filter(
            subscriber=locked, amount=amount, method=method, created_at__gte=timezone.now() - window
        ).first()
        if recent is not None and not confirm_duplicate:
            raise DuplicatePaymentSuspected(
                f"an identical {method} payment of {amount} for {locked.customer_id} was recorded at "
                f"{timezone.localtime(recent.created_at):%H:%M:%S}; confirm to record a second one"
            )
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    operator=locked.operator,
                    subscriber=locked,
                    amount=amount,
                    method=method,
                    reference=reference,
                    gateway=gateway,
                    gateway_transaction_id=gateway_transaction_id,
                    collector=_actor(collector),
                    received_at=received_at,
                    confirmed_duplicate=recent is not None,
                )
        except IntegrityError:
            raise DuplicateGatewayTransaction(
                f"{gateway} transaction {gateway_transaction_id} is already recorded"
            ) from None
        day = operator_date_of(locked.operator, received_at)
        entry = LedgerEntry.objects.create(
            operator=locked.operator,
            subscriber=locked,
            kind=EntryKind.PAYMENT,
            category=EntryCategory.PAID,
            amount=-amount,
            effective_date=day,
            period_month=_period_month_for(locked, day),
            payment=payment,
            memo=reference,
            created_by=_actor(actor),
        )
        money_changed([locked.pk], [(locked.pk, entry.period_month)])
        locked.refresh_from_db(fields=["expires_on"])
        receipt_issue(payment=payment)
        # Collected cash joins its collector's hand-over of the day where the operator approves them
        # (issue 15); the payment itself, its receipt and what it clears never wait for that.
        handover_payment_add(payment=payment)
        audit(
            operator=locked.operator,
            action="payment.record",
            actor=actor,
            subscriber=locked,
            amount=amount,
            method=method,
            payment=payment.pk,
        )
    return payment


def adjustment_add(
    *,
    subscriber: Subscriber,
    amount: Decimal,
    reason: str,
    memo: str,
    actor: User | None = None,
    effective_date: dt.date | None = None,
) -> LedgerEntry:
    """A credit (negative) or debit (positive) with a reason; it never edits anything earlier."""
    if amount is None or amount == 0:
        raise InvalidAmount("an adjustment needs a non-zero amount (negative for a credit)")
    if round_money(amount) != amount:
        raise InvalidAmount(f"the amount {amount} has more than two decimal places")
    if reason not in AdjustmentReason.values:
        raise BillingError(f"unknown adjustment reason '{reason}'")
    if not memo.strip():
        raise BillingError("say why: an adjustment needs a note")
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if effective_date is not None:
            _date_check(locked, effective_date, _("adjustment"), actor)
        return _adjustment_append(locked, amount, reason, memo, actor, effective_date)


def _adjustment_append(
    locked: Subscriber,
    amount: Decimal,
    reason: str,
    memo: str,
    actor: User | None,
    effective_date: dt.date | None,
    *,
    credits_bill: Bill | None = None,
    credits_lines: Collection[int] | None = None,
) -> LedgerEntry:
    """Append an adjustment. A debit becomes an open item of its own (a `charge` bill, due after the
    operator's due days) so that payments are allocated to it like to any bill; a credit is a source
    that FIFO allocation sets against the oldest open item, and names the bill it credits when it
    credits one (outage, package change, termination, an add-on ended early, a partial credit). Such
    a credit is spread over the bill's lines (`credits_lines`, or all of them) with their VAT in
    proportion (`calculation.credit_split`) and recorded line by line; more than is left to credit
    there is refused (`CreditExceedsBill`), by this code and, whoever writes the rows, by the database."""
    if credits_bill is not None and amount >= 0:
        raise InvalidAmount("only a credit (a negative amount) names a bill it credits")
    split: list[LineCredit] = []
    if credits_bill is not None:
        creditables = bill_lines_creditable(credits_bill, credits_lines)
        left = min(creditable_total(creditables), bill_creditable(credits_bill))
        if -amount > left:
            raise CreditExceedsBill(
                f"only {left} is left to credit on {_bill_label(credits_bill, locked)}; {-amount} was asked"
            )
        split = credit_split(-amount, creditables)
    day = effective_date or operator_today(locked.operator)
    period_month = _period_month_for(locked, day)
    charge: Bill | None = None
    if amount > 0:
        terms = subscriber_terms(locked)
        charge = Bill.objects.create(
            operator=locked.operator,
            subscriber=locked,
            package_id=locked.package_id,
            kind=Bill.Kind.CHARGE,
            period_month=period_month,
            period_start=day,
            period_end=day + dt.timedelta(days=1),
            due_date=day + dt.timedelta(days=terms.due_days),
            subtotal=amount,
            discount=Decimal("0.00"),
            vat=Decimal("0.00"),
            total=amount,
        )
        BillLine.objects.create(bill=charge, kind=BillLine.Kind.CHARGE, description=memo[:200], amount=amount)
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                operator=locked.operator,
                subscriber=locked,
                kind=EntryKind.ADJUSTMENT,
                category=EntryCategory.ADJUSTED,
                amount=amount,
                effective_date=day,
                period_month=period_month,
                bill=charge or credits_bill,
                adjustment_reason=reason,
                memo=memo[:300],
                created_by=_actor(actor),
            )
    except IntegrityError as error:
        if credits_bill is None or not _refused_by(error, _CREDIT_WITHIN_BILL):
            raise
        # Someone who skipped the subscriber lock credited this bill first: the database's bound held.
        raise CreditExceedsBill(
            f"only {bill_creditable(credits_bill)} is left to credit on {_bill_label(credits_bill, locked)}; "
            f"{-amount} was asked"
        ) from None
    if split:
        CreditLine.objects.bulk_create(
            CreditLine(entry=entry, bill_line_id=part.line_id, amount=part.amount, vat=part.vat) for part in split
        )
    money_changed([locked.pk], [(locked.pk, entry.period_month)])
    audit(
        operator=locked.operator,
        action="adjustment.add",
        actor=actor,
        subscriber=locked,
        amount=amount,
        reason=reason,
        memo=memo,
    )
    return entry


def outage_credit_add(
    *,
    subscriber: Subscriber,
    period_month: dt.date,
    outage_minutes: int,
    memo: str,
    actor: User | None = None,
) -> LedgerEntry:
    """Credit price x outage_minutes / minutes_in_period for one billed period."""
    if outage_minutes <= 0:
        raise InvalidAmount("outage minutes must be more than zero")
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        bill = Bill.objects.filter(
            subscriber=locked, period_month=period_month, reversed_at__isnull=True, kind=Bill.Kind.PERIOD
        ).first()
        if bill is None:
            raise BillingError(f"{locked.customer_id} has no bill for {period_month:%Y-%m} to credit")
        minutes = (bill.period_end - bill.period_start).days * 24 * 60
        credit = outage_credit(period_total=bill.total, outage_minutes=outage_minutes, period_minutes=minutes)
        if credit <= 0:
            raise InvalidAmount("the outage is too short to credit anything")
        creditable = bill_creditable(bill)
        if creditable <= 0:
            raise InvalidAmount(f"the {period_month:%Y-%m} bill of {locked.customer_id} is already fully credited")
        return _adjustment_append(
            locked,
            -min(credit, creditable),
            AdjustmentReason.OUTAGE,
            memo or f"Outage {outage_minutes} min",
            actor,
            bill.period_start,
            credits_bill=bill,
        )


def bill_credit_add(
    *,
    bill: Bill,
    amount: Decimal,
    memo: str,
    actor: User | None = None,
    line_ids: Collection[int] | None = None,
    effective_date: dt.date | None = None,
) -> LedgerEntry:
    """Credit part of one bill (a partial credit note): `amount` off what is left to credit on it, or
    on its lines `line_ids`, spread over them with their VAT in proportion. The credit that takes all
    that is left gets exactly what is left of every line, so any number of partial credits add up to
    the bill to the paisa. More than is left is refused, not cut down."""
    if amount is None or amount <= 0:
        raise InvalidAmount(f"a credit is more than zero (got {amount})")
    if round_money(amount) != amount:
        raise InvalidAmount(f"the amount {amount} has more than two decimal places")
    if not memo.strip():
        raise BillingError("say why: a credit needs a note")
    with transaction.atomic():
        locked = subscriber_lock(bill.subscriber_id)
        bill = Bill.objects.get(pk=bill.pk)
        if bill.reversed_at is not None:
            raise BillingError(f"{_bill_label(bill, locked)} is voided; there is nothing to credit")
        if effective_date is not None:
            _date_check(locked, effective_date, _("credit"), actor)
        return _adjustment_append(
            locked,
            -amount,
            AdjustmentReason.MANUAL,
            memo,
            actor,
            effective_date,
            credits_bill=bill,
            credits_lines=line_ids,
        )


# The database's bound on credits of one bill (migration 0011), named in the error it raises.
_CREDIT_WITHIN_BILL = "billing_credit_within_bill"


def _refused_by(error: IntegrityError, constraint: str) -> bool:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def _bill_label(bill: Bill, subscriber: Subscriber) -> str:
    if bill.kind == Bill.Kind.PERIOD:
        return f"the {bill.period_month:%Y-%m} bill of {subscriber.customer_id}"
    return f"the charge of {bill.period_start:%Y-%m-%d} to {subscriber.customer_id}"


def bill_creditable(bill: Bill, line_ids: Collection[int] | None = None) -> Decimal:
    """What is left to credit on a bill: what the ledger entries naming it add up to (its own, less
    the credits that stand, less a void), never below zero, or, with `line_ids`, on those of its lines
    (the package's, an add-on's). Read under the subscriber's lock, so concurrent credits of one bill
    are serialised; the database refuses more whoever writes (ADR 0010)."""
    standing = LedgerEntry.objects.filter(bill=bill).aggregate(total=Sum("amount"))["total"] or ZERO
    left = max(standing, ZERO)
    if line_ids is not None:
        left = min(left, creditable_total(bill_lines_creditable(bill, line_ids)))
    return left


def package_line_ids(bill: Bill) -> list[int]:
    """The package's lines of a bill: the package line and its discount (credited together)."""
    return list(
        BillLine.objects.filter(bill=bill, kind__in=[BillLine.Kind.PACKAGE, BillLine.Kind.DISCOUNT]).values_list(
            "pk", flat=True
        )
    )


def bill_lines_creditable(bill: Bill, line_ids: Collection[int] | None = None) -> list[Creditable]:
    """What is left to credit on each line of a bill (or of `line_ids` among them): the line less what
    its credit lines add up to. The VAT total line is never credited itself: the VAT is credited on
    the lines that carry it. The discount is credited with the package, whose VAT it shares."""
    lines = list(
        BillLine.objects.filter(bill=bill)
        .exclude(kind=BillLine.Kind.VAT)
        .annotate(credited=Coalesce(Sum("credits__amount"), ZERO), credited_vat=Coalesce(Sum("credits__vat"), ZERO))
        .order_by("pk")
        .values_list("pk", "kind", "amount", "vat", "credited", "credited_vat")
    )
    package = next((pk for pk, kind, *_rest in lines if kind == BillLine.Kind.PACKAGE), None)
    if line_ids is not None and package in line_ids:
        line_ids = {*line_ids, *(pk for pk, kind, *_rest in lines if kind == BillLine.Kind.DISCOUNT)}
    return [
        Creditable(
            line_id=pk,
            amount=amount - credited,
            vat=vat - credited_vat,
            unit=package if kind == BillLine.Kind.DISCOUNT and package is not None else pk,
        )
        for pk, kind, amount, vat, credited, credited_vat in lines
        if line_ids is None or pk in line_ids
    ]


def entry_reverse(
    *,
    entry: LedgerEntry,
    reason: str,
    actor: User | None = None,
    effective_date: dt.date | None = None,
) -> LedgerEntry:
    """Cancel one entry by appending its mirror. Dated into the original's period by default, so the
    statements of that period and every later one are re-projected (the forward cascade). A bill with
    an invoice is reversed by voiding the invoice, which issues the credit note."""
    if not reason.strip():
        raise BillingError("a reversal needs a reason")
    with transaction.atomic():
        locked = subscriber_lock(entry.subscriber_id)
        if effective_date is not None:
            _date_check(locked, effective_date, _("reversal"), actor)
        entry = LedgerEntry.objects.select_related("bill").get(pk=entry.pk)
        if LedgerEntry.objects.filter(reverses=entry).exists():
            raise AlreadyReversed(f"entry #{entry.pk} is already reversed")
        if entry.bill_id is not None and entry.kind == EntryKind.BILL:
            invoice = Invoice.objects.filter(bill_id=entry.bill_id).first()
            if invoice is not None:
                return _invoice_void_locked(invoice, reason, actor, effective_date).reversal_entry
        return _reverse_locked(entry, reason, actor, effective_date)


def _reverse_locked(
    entry: LedgerEntry,
    reason: str,
    actor: User | None,
    effective_date: dt.date | None,
    *,
    credit_note_issue: Callable[[LedgerEntry, Decimal], CreditNote] | None = None,
) -> LedgerEntry:
    """Append the reversal of one entry. Reversing a bill's own entry voids the bill: the credits that
    stand on it are taken back first (each reversed), so the void credits only what was left of it
    and the credits plus the void never exceed the bill; `credit_note_issue(void, remainder)` makes
    the void's document, whose lines are the void's and those of the credits it took back. Reversing
    a credit of a bill mirrors its credit lines with the sign turned."""
    if entry.kind == EntryKind.REVERSAL:
        raise NotReversible("a reversal cannot be reversed; record a new entry instead")
    if LedgerEntry.objects.filter(reverses=entry).exists():
        raise AlreadyReversed(f"entry #{entry.pk} is already reversed")
    subscriber = Subscriber.objects.select_related("operator").get(pk=entry.subscriber_id)
    # The entry is the bill's own (a period bill, or a debit and its charge document): the open item
    # goes with it. A credit only names the bill it credits; that bill stands.
    voided = entry.bill_id if entry.kind == EntryKind.BILL or entry.amount > 0 else None
    lines: list[CreditLine] = []
    touched = [entry.period_month]
    remainder = ZERO
    if voided is not None:
        credits = list(
            LedgerEntry.objects.filter(
                bill_id=voided, kind=EntryKind.ADJUSTMENT, amount__lt=0, reversed_by__isnull=True
            )
            .prefetch_related("credit_lines")
            .order_by("id")
        )
        taken_back: dict[int, tuple[Decimal, Decimal]] = {}
        for credit in credits:
            withdrawal = _reversal_append(
                credit, f"Taken back with the void: {reason}", actor, effective_date, subscriber
            )
            touched.append(withdrawal.period_month)
            for part in credit.credit_lines.all():
                lines.append(
                    CreditLine(entry=withdrawal, bill_line_id=part.bill_line_id, amount=-part.amount, vat=-part.vat)
                )
                amount, vat = taken_back.get(part.bill_line_id, (ZERO, ZERO))
                taken_back[part.bill_line_id] = (amount + part.amount, vat + part.vat)
        reversal = _reversal_append(entry, reason, actor, effective_date, subscriber)
        # What is left of each line once those credits are back: the void's lines.
        for left in bill_lines_creditable(Bill(pk=voided)):
            amount, vat = taken_back.get(left.line_id, (ZERO, ZERO))
            if left.amount + amount or left.vat + vat:
                lines.append(
                    CreditLine(
                        entry=reversal, bill_line_id=left.line_id, amount=left.amount + amount, vat=left.vat + vat
                    )
                )
        remainder = -reversal.amount - sum((-credit.amount for credit in credits), ZERO)
    else:
        reversal = _reversal_append(entry, reason, actor, effective_date, subscriber)
        lines = [
            CreditLine(entry=reversal, bill_line_id=part.bill_line_id, amount=-part.amount, vat=-part.vat)
            for part in entry.credit_lines.all()
        ]
    touched.append(reversal.period_month)
    if credit_note_issue is not None:
        note = credit_note_issue(reversal, remainder)
        for line in lines:
            line.credit_note = note
    if lines:
        CreditLine.objects.bulk_create(lines)
    if voided is not None:
        Bill.objects.filter(pk=voided).update(reversed_at=timezone.now())
        # The bill is gone, so is what it cost each reseller above it: every level gets back what
        # its charge still has outstanding.
        float_credit_back(bill_id=voided, actor=actor)
    money_changed([entry.subscriber_id], [(entry.subscriber_id, min(touched))])
    audit(
        operator=subscriber.operator,
        action="entry.reverse",
        actor=actor,
        subscriber=subscriber,
        entry=entry.pk,
        amount=entry.amount,
        reason=reason,
    )
    return reversal


def _reversal_append(
    entry: LedgerEntry, reason: str, actor: User | None, effective_date: dt.date | None, subscriber: Subscriber
) -> LedgerEntry:
    """The mirror of one entry, dated into its period unless `effective_date` says otherwise."""
    day = effective_date or entry.effective_date
    try:
        with transaction.atomic():
            return LedgerEntry.objects.create(
                operator_id=entry.operator_id,
                subscriber_id=entry.subscriber_id,
                kind=EntryKind.REVERSAL,
                category=entry.category,
                amount=-entry.amount,
                effective_date=day,
                period_month=entry.period_month if effective_date is None else _period_month_for(subscriber, day),
                reverses=entry,
                bill_id=entry.bill_id,
                payment_id=entry.payment_id,
                memo=reason[:300],
                created_by=_actor(actor),
            )
    except IntegrityError as error:
        if _refused_by(error, _CREDIT_WITHIN_BILL):
            # A credit given on the bill by someone who skipped the subscriber lock, after the void
            # took back the ones it saw: the database keeps the void from crediting twice.
            raise CreditExceedsBill(
                f"entry #{entry.pk}: the bill has credits that are not taken back; try the void again"
            ) from None
        # The unique reverses_id: a concurrent reversal won.
        raise AlreadyReversed(f"entry #{entry.pk} is already reversed") from None


def invoice_void(
    *, invoice: Invoice, reason: str, actor: User | None = None, move_payments: bool = False
) -> CreditNote:
    """Void an invoice: a credit note with its own gapless number, and the bill's entry reversed.

    An invoice with money paid against it is refused (InvoicePaid) unless the payment is first
    reversed, or `move_payments` says to move it: what was paid on it is released and allocated, oldest
    first, to the subscriber's other open items, and waits as credit where there are none."""
    if not reason.strip():
        raise BillingError("voiding an invoice needs a reason")
    with transaction.atomic():
        subscriber_lock(invoice.bill.subscriber_id)
        return _invoice_void_locked(
            Invoice.objects.get(pk=invoice.pk), reason, actor, None, release_payments=move_payments
        )


def _invoice_void_locked(
    invoice: Invoice,
    reason: str,
    actor: User | None,
    effective_date: dt.date | None,
    *,
    release_payments: bool = False,
) -> CreditNote:
    """`release_payments`: the caller (a termination voiding the bills after the end of service)
    means what was paid on them to become the subscriber's credit, to refund or carry."""
    if invoice.voided_at is not None:
        raise InvoiceAlreadyVoided(f"invoice {invoice} is already voided")
    paid = Allocation.objects.filter(bill_id=invoice.bill_id, source__kind=EntryKind.PAYMENT).aggregate(
        total=Sum("amount")
    )["total"] or Decimal("0.00")
    if paid > 0 and not release_payments:
        # Kill Bill's rule: a paid invoice is not voided under its payment. The payment is reversed
        # (or moved to another open item) first, so nobody loses track of where the money went.
        raise InvoicePaid(
            f"invoice {invoice} has {paid} paid against it: reverse that payment first (or record it "
            "against another bill), then void the invoice"
        )
    entry = LedgerEntry.objects.get(bill_id=invoice.bill_id, kind=EntryKind.BILL)
    today = operator_today(invoice.bill.subscriber.operator)
    issued: list[CreditNote] = []

    def credit_note_issue(reversal: LedgerEntry, remainder: Decimal) -> CreditNote:
        # The note credits what was left of the bill: the credits given on it before are taken back
        # with the void, so it is voided only for its remainder.
        number = document_numbers_reserve(
            operator_id=invoice.operator_id, kind=DocumentSequence.Kind.CREDIT_NOTE, year=today.year, count=1
        )
        Invoice.objects.filter(pk=invoice.pk).update(voided_at=timezone.now())
        note = CreditNote.objects.create(
            operator_id=invoice.operator_id,
            invoice=invoice,
            reversal_entry=reversal,
            year=today.year,
            number=number,
            issued_on=today,
            amount=remainder,
            reason=reason[:300],
            created_by=_actor(actor),
        )
        issued.append(note)
        return note

    _reverse_locked(entry, reason, actor, effective_date, credit_note_issue=credit_note_issue)
    return issued[0]
