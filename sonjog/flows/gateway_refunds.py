"""Money that goes back by itself, and the daily check that what the gateways took is what we applied.

`refund_request` reserves the refund (committed, bounded by what the payment credited less the
refunds that have not failed: `sonjog.gateways.refunds`), then asks the gateway for it and confirms
it by the gateway's refund status, holding the refund's own row lock while it asks, so the recheck
never asks about a refund at the same moment. Done, the refund goes on the subscriber's ledger in the
same transaction: a refund of the whole payment reverses the payment's entry (`entry_reverse`, dated
today, so the payment's own period is not rewritten), a part of it is a debit adjustment with a
memo naming the refund, the gateway's transaction and the reason (`adjustment_add`, reason
"manual": billing has no refund reason of its own), an open item of its own that the subscriber's
credit or next payment settles. A refund that timed out is "unknown" and `refunds_recheck` (run with
the online payments' recheck every minute) asks the gateway's refund status until it is settled.

`settlement_check` asks one merchant account's gateway for its paid transactions of a day and
compares them with the attempts applied that day (`sonjog.gateways.settlement`); an open attempt the
gateway has as paid is confirmed first (`attempt_confirm`, the one confirmation every path calls),
so the check reports only what is still missing. `settlements_check_nightly` runs it for every
active account for the day before, in the account operator's calendar.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import AdjustmentReason, EntryKind, LedgerEntry
from sonjog.billing.services import adjustment_add, entry_reverse
from sonjog.billing.terms import operator_date_of, operator_today
from sonjog.flows.gateways import attempt_confirm
from sonjog.gateways.clients.base import GatewayClient, GatewayError
from sonjog.gateways.models import GatewayAccount, GatewayRefund, PaymentAttempt, RefundState, SettlementCheck
from sonjog.gateways.refunds import (
    RefundOutcome,
    refund_ask,
    refund_booked,
    refund_lock,
    refund_record,
    refund_reserve,
    refunds_due,
)
from sonjog.gateways.services import client_for
from sonjog.gateways.settlement import (
    accounts_to_check,
    open_attempts_listed,
    settlement_compare,
    settlement_record,
)

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _client(account: GatewayAccount) -> Iterator[GatewayClient]:
    """The account's client, its connections closed after use."""
    client = client_for(account)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()


# -- refunds -----------------------------------------------------------------------------------------
def refund_request(
    *, attempt: PaymentAttempt, amount: Decimal, reason: str, actor: User | None, now: dt.datetime | None = None
) -> GatewayRefund:
    """Give `amount` of an applied online payment back to its payer (see the module docstring). The
    refund returned is done, pending, unknown (the recheck settles it) or failed with the reason;
    one that cannot be started is refused with `RefundRefused` before the gateway is asked."""
    refund = refund_reserve(attempt=attempt, amount=amount, reason=reason, actor=actor, now=now)
    settled = refund_settle(refund_id=refund.pk, submit=True, now=now)
    assert settled is not None  # nobody else holds a refund this call just reserved
    return settled


def refund_settle(
    *, refund_id: int, submit: bool = False, now: dt.datetime | None = None, skip_locked: bool = False
) -> GatewayRefund | None:
    """One pass about a refund under its row lock: ask the gateway (making the refund when `submit`),
    write what it said, and put a refund now done on the subscriber's ledger. None when `skip_locked`
    and another process is asking about it."""
    with transaction.atomic():
        refund = refund_lock(refund_id, skip_locked=skip_locked)
        if refund is None or refund.is_settled:
            return refund
        moment = now or timezone.now()
        try:
            with _client(refund.attempt.account) as client:
                outcome = refund_ask(client, refund, submit=submit)
        except (GatewayError, ValueError) as error:  # the client refused before asking (its credentials)
            outcome = RefundOutcome(
                RefundState.FAILED if submit else refund.state, error=f"the gateway could not be asked: {error}"
            )
        refund_record(refund, outcome, moment)
        if refund.state == RefundState.DONE and refund.entry_id is None:
            _book(refund)
    return refund


def _book(refund: GatewayRefund) -> None:
    """Put a done refund on the subscriber's ledger (see the module docstring); a refusal of the books
    is kept on the refund, since the money has gone back at the gateway all the same."""
    attempt = refund.attempt
    assert attempt.payment is not None
    payment = attempt.payment
    gateway = attempt.account.get_gateway_display()
    memo = (
        f"Refund {refund.reference} of {refund.amount} to the payer of {gateway} transaction "
        f"{attempt.transaction_id} (gateway refund {refund.gateway_refund_id or '-'}): {refund.reason}"
    )
    actor = refund.requested_by
    whole = refund.amount == payment.amount and not (
        GatewayRefund.objects.filter(attempt_id=attempt.pk, state=RefundState.DONE).exclude(pk=refund.pk).exists()
    )
    try:
        with transaction.atomic():
            if whole:
                entry = LedgerEntry.objects.get(payment=payment, kind=EntryKind.PAYMENT)
                booked = entry_reverse(
                    entry=entry, reason=memo, actor=actor, effective_date=operator_today(attempt.subscriber.operator)
                )
            else:
                booked = adjustment_add(
                    subscriber=attempt.subscriber,
                    amount=refund.amount,
                    reason=AdjustmentReason.MANUAL,
                    memo=memo,
                    actor=actor,
                )
    except (BillingError, LedgerEntry.DoesNotExist, LedgerEntry.MultipleObjectsReturned) as error:
        logger.warning("refund %s is done at the gateway but not in the books: %s", refund.reference, error)
        refund_booked(refund, None, str(error))
        return
    refund_booked(refund, booked)


def refunds_recheck(now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Every refund not settled whose next check is due asks the gateway's refund status again; one
    another process is asking about right now is left to it."""
    moment = now or timezone.now()
    counts = {"checked": 0, "done": 0, "failed": 0, "pending": 0, "unknown": 0}
    for refund_id in refunds_due(moment, limit):
        refund = refund_settle(refund_id=refund_id, now=moment, skip_locked=True)
        if refund is None:
            continue
        counts["checked"] += 1
        if refund.state in counts:
            counts[refund.state] += 1
    return counts


# -- settlement ------------------------------------------------------------------------------------
def settlement_check(*, account: GatewayAccount, day: dt.date, now: dt.datetime | None = None) -> SettlementCheck:
    """Reconcile one merchant account's `day` (the operator's calendar) and keep the result. A gateway
    that cannot be asked leaves a check with the error and no lists."""
    moment = now or timezone.now()
    try:
        with _client(account) as client:
            listed = client.search(day=day)
    except (GatewayError, ValueError) as error:
        return settlement_record(
            account=account, day=day, ran_at=moment, comparison=None, error=f"{account.get_gateway_display()}: {error}"
        )
    for attempt_id in open_attempts_listed(account, listed):
        attempt_confirm(attempt_id=attempt_id, via="settlement", now=moment)
    comparison = settlement_compare(account=account, day=day, listed=listed)
    return settlement_record(account=account, day=day, ran_at=moment, comparison=comparison)


def settlements_check_nightly(now: dt.datetime | None = None) -> dict[str, int]:
    """Yesterday's settlement check for every active merchant account (yesterday where its operator
    is); one account that fails does not stop the others."""
    moment = now or timezone.now()
    counts = {"accounts": 0, "paid_not_applied": 0, "applied_not_paid": 0, "errors": 0}
    for account in accounts_to_check():
        day = operator_date_of(account.operator, moment) - dt.timedelta(days=1)
        try:
            check = settlement_check(account=account, day=day, now=moment)
        except Exception:
            logger.exception("the settlement check of gateway account %s for %s failed", account.pk, day)
            counts["errors"] += 1
            continue
        counts["accounts"] += 1
        counts["paid_not_applied"] += len(check.paid_not_applied)
        counts["applied_not_paid"] += len(check.applied_not_paid)
        counts["errors"] += 1 if check.error else 0
    return counts
