"""The daily settlement reconciliation of one merchant account: what the gateway lists as paid on a
day against the attempts we applied that day, both ways, and the `SettlementCheck` row that keeps it.

- paid, not applied: a transaction the gateway lists as paid that no applied attempt of this account
  carries (by the gateway's transaction id). Its attempt, when one of ours names it (our merchant
  reference), is given with its state: the flow (`sonjog.flows.gateway_refunds.settlement_check`)
  first confirms the open ones, so what is left here is money to chase.
- applied, not paid: an attempt applied that day whose transaction the gateway does not list as paid.

"That day" is the operator's calendar day (Asia/Dhaka by default, as the gateways' own listings are):
an attempt counts on the day its payment was received, which is the gateway's own time of payment
when it gave one. A transaction the gateway lists on one day that we applied on another is no
mismatch on the gateway's side (it is looked up by transaction id whatever the day); on ours it shows
as applied, not paid, on the day we received it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q

from sonjog.gateways.clients.base import State, Status
from sonjog.gateways.models import OPEN_STATES, AttemptState, GatewayAccount, PaymentAttempt, SettlementCheck

ERROR_MAX_LENGTH = 500


def day_window(day: dt.date, time_zone: str) -> tuple[dt.datetime, dt.datetime]:
    """The half-open [start, end) of a calendar day in `time_zone`."""
    zone = ZoneInfo(time_zone)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def applied_on(account: GatewayAccount, day: dt.date) -> list[PaymentAttempt]:
    """The attempts of `account` applied with a payment received on `day` (the operator's calendar)."""
    start, end = day_window(day, account.operator.time_zone)
    return list(
        PaymentAttempt.objects.filter(
            account=account,
            state=AttemptState.APPLIED,
            payment__received_at__gte=start,
            payment__received_at__lt=end,
        )
        .select_related("subscriber", "payment")
        .order_by("payment__received_at", "pk")
    )


def paid_listed(listed: Iterable[Status]) -> list[Status]:
    """The transactions a listing says are paid, each once (by transaction id, else reference)."""
    seen: set[str] = set()
    paid = []
    for status in listed:
        if status.state != State.PAID:
            continue
        key = status.transaction_id or f"ref:{status.merchant_reference}"
        if key in seen:
            continue
        seen.add(key)
        paid.append(status)
    return paid


def _attempts_named(
    account: GatewayAccount, paid: Sequence[Status]
) -> tuple[dict[str, PaymentAttempt], dict[str, PaymentAttempt]]:
    """Our attempts of `account` the listed transactions name: by transaction id and by reference."""
    transactions = {status.transaction_id for status in paid if status.transaction_id}
    references = {status.merchant_reference for status in paid if status.merchant_reference}
    if not transactions and not references:
        return {}, {}
    found = PaymentAttempt.objects.filter(account=account).filter(
        Q(transaction_id__in=transactions) | Q(merchant_reference__in=references)
    )
    by_transaction: dict[str, PaymentAttempt] = {}
    by_reference: dict[str, PaymentAttempt] = {}
    for attempt in found:
        if attempt.transaction_id:
            by_transaction[attempt.transaction_id] = attempt
        by_reference[attempt.merchant_reference] = attempt
    return by_transaction, by_reference


def _attempt_of(
    status: Status, by_transaction: dict[str, PaymentAttempt], by_reference: dict[str, PaymentAttempt]
) -> PaymentAttempt | None:
    found = by_transaction.get(status.transaction_id) if status.transaction_id else None
    return found or by_reference.get(status.merchant_reference)


def open_attempts_listed(account: GatewayAccount, listed: Iterable[Status]) -> list[int]:
    """The open attempts of ours that a transaction the gateway lists as paid names (by our reference,
    or its transaction id): those a confirmation may still apply."""
    paid = paid_listed(listed)
    by_transaction, by_reference = _attempts_named(account, paid)
    ids = []
    for status in paid:
        attempt = _attempt_of(status, by_transaction, by_reference)
        if attempt is not None and attempt.state in OPEN_STATES and attempt.pk not in ids:
            ids.append(attempt.pk)
    return ids


@dataclass
class Comparison:
    gateway_count: int = 0
    applied_count: int = 0
    paid_not_applied: list[dict[str, Any]] = field(default_factory=list)
    applied_not_paid: list[dict[str, Any]] = field(default_factory=list)


def settlement_compare(*, account: GatewayAccount, day: dt.date, listed: Iterable[Status]) -> Comparison:
    """The gateway's paid transactions of `day` against our attempts applied that day, both ways."""
    paid = paid_listed(listed)
    by_transaction, by_reference = _attempts_named(account, paid)
    comparison = Comparison(gateway_count=len(paid))
    for status in paid:
        attempt = _attempt_of(status, by_transaction, by_reference)
        if (
            attempt is not None
            and attempt.state == AttemptState.APPLIED
            and attempt.transaction_id == status.transaction_id
        ):
            continue
        comparison.paid_not_applied.append(
            {
                "transaction_id": status.transaction_id,
                "reference": status.merchant_reference,
                "amount": str(status.amount) if status.amount is not None else "",
                "currency": status.currency,
                "paid_at": status.paid_at.isoformat() if status.paid_at else "",
                "payer": status.payer[:40],
                "attempt": attempt.pk if attempt is not None else None,
                "attempt_state": attempt.state if attempt is not None else "",
            }
        )
    listed_transactions = {status.transaction_id for status in paid if status.transaction_id}
    applied = applied_on(account, day)
    comparison.applied_count = len(applied)
    for attempt in applied:
        if attempt.transaction_id in listed_transactions:
            continue
        assert attempt.payment is not None
        comparison.applied_not_paid.append(
            {
                "attempt": attempt.pk,
                "reference": attempt.merchant_reference,
                "transaction_id": attempt.transaction_id,
                "amount": str(attempt.gross),
                "currency": attempt.currency,
                "customer_id": attempt.subscriber.customer_id,
                "received_at": attempt.payment.received_at.isoformat(),
            }
        )
    return comparison


def settlement_record(
    *, account: GatewayAccount, day: dt.date, ran_at: dt.datetime, comparison: Comparison | None, error: str = ""
) -> SettlementCheck:
    """Keep one run of the check (a run that could not ask the gateway keeps why, and no lists)."""
    found = comparison or Comparison()
    return SettlementCheck.objects.create(
        account=account,
        day=day,
        ran_at=ran_at,
        gateway_count=found.gateway_count,
        applied_count=found.applied_count,
        paid_not_applied=found.paid_not_applied,
        applied_not_paid=found.applied_not_paid,
        error=error[:ERROR_MAX_LENGTH],
    )


def accounts_to_check() -> list[GatewayAccount]:
    """Every active merchant account, with its operator (whose calendar names the day)."""
    return list(GatewayAccount.objects.filter(active=True).select_related("operator").order_by("pk"))
