"""Refunds of online payments: every write of a `GatewayRefund`, and what each gateway's answers mean.

A refund is a reserved operation. It is written (committed, under the attempt's row lock, bounded by
what the payment credited less the refunds that have not failed) before the gateway is asked, so a
refund the gateway made is never without its row, and two refunds racing on one payment cannot both
pass the bound; the database keeps the same bound whoever writes (migration 0002's trigger).

    requested --refund: accepted, status says refunded--> done (then on the subscriber's ledger)
              |          accepted, still processing ---> pending --refund status--> done | failed
              +--refused (or the payment is not paid there)--> failed
              +--no answer in time--> unknown --refund status, 1/5/15/60 min, then hourly--> done | failed

A failed refund holds nothing of the payment. An unknown one is failed only when the gateway says it
has no such refund (bKash: no refund on the payment, or only ones we know; Nagad: no refund under our
reference). SSLCommerz knows a refund only by the `refund_ref_id` it answered, so a refund whose
answer was lost is asked for again with the same `refund_trans_id`, which SSLCommerz answers with the
refund already made (or makes, if the first never arrived). While one refund of a payment is not
settled no other is started: bKash's refund status answers only a payment's latest refund.

Calling the gateway and recording the refund in the books cross apps: `sonjog.flows.gateway_refunds`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from sonjog.billing.models import EntryKind, LedgerEntry
from sonjog.core.audit import audit
from sonjog.core.money import round_money
from sonjog.gateways.clients.base import GatewayClient, GatewayError, GatewayTimeout, Refund, State, Status
from sonjog.gateways.exceptions import GatewaysError
from sonjog.gateways.models import (
    UNSETTLED_REFUND_STATES,
    AttemptState,
    Gateway,
    GatewayRefund,
    PaymentAttempt,
    RefundState,
)
from sonjog.gateways.selectors import refund_left
from sonjog.gateways.services import ESCALATE_AFTER, RECHECK_MINUTES

# The first recheck of a refund just requested comes after this: longer than any gateway call may
# take, so it only ever finds a request whose process died between the reservation and the answer.
FIRST_CHECK_AFTER = dt.timedelta(minutes=2)
REASON_MAX_LENGTH = 300
# The database's bound (migration 0002), named in the error it raises.
BOUND = "gateways_refund_within_payment"


class RefundRefused(GatewaysError):
    """A refund that cannot be started: the payment is not applied, is reversed in the books, has a
    refund still being settled, or the amount or reason is not one."""


class RefundExceedsPayment(RefundRefused):
    """More than is left of the payment (what it credited less the refunds that have not failed)."""


def _reference() -> str:
    # 20 letters and digits: within every gateway's limit for a refund reference (Nagad's referenceNo,
    # SSLCommerz's refund_trans_id, bKash's sku).
    return "SR" + secrets.token_hex(9).upper()


def _attempt_locked(attempt_id: int) -> PaymentAttempt:
    """The attempt, its own row locked (not the subscriber's or the operator's, which it reads)."""
    return (
        PaymentAttempt.objects.select_for_update(of=("self",))
        .select_related("account", "subscriber__operator")
        .get(pk=attempt_id)
    )


def refund_reserve(
    *, attempt: PaymentAttempt, amount: Decimal, reason: str, actor: User | None, now: dt.datetime | None = None
) -> GatewayRefund:
    """Reserve `amount` of an applied payment for a refund (committed before the gateway is asked,
    unless the caller holds a transaction open). Refused with the reason when it cannot be."""
    if amount is None or amount <= 0:
        raise RefundRefused(f"a refund is more than zero (got {amount})")
    if round_money(amount) != amount:
        raise RefundRefused(f"the amount {amount} has more than two decimal places")
    reason = (reason or "").strip()
    if not reason:
        raise RefundRefused("say why: a refund needs a reason")
    moment = now or timezone.now()
    with transaction.atomic():
        locked = _attempt_locked(attempt.pk)
        if locked.state != AttemptState.APPLIED or locked.payment_id is None:
            raise RefundRefused(
                f"payment {locked.merchant_reference} is {locked.get_state_display()}: only an applied payment "
                "is refunded"
            )
        if not locked.transaction_id:
            raise RefundRefused(f"payment {locked.merchant_reference} has no gateway transaction to refund")
        reversed_in_books = LedgerEntry.objects.filter(
            payment_id=locked.payment_id, kind=EntryKind.PAYMENT, reversed_by__isnull=False
        ).exists()
        if reversed_in_books:
            raise RefundRefused(
                f"payment {locked.merchant_reference} is reversed in the books already; a refund would give the "
                "money back twice"
            )
        unsettled = locked.refunds.filter(state__in=UNSETTLED_REFUND_STATES).first()
        if unsettled is not None:
            raise RefundRefused(
                f"refund {unsettled.reference} of this payment is still {unsettled.get_state_display()}; "
                "wait until it is settled"
            )
        left = refund_left(locked)
        if amount > left:
            raise RefundExceedsPayment(
                f"only {left} is left to refund of payment {locked.merchant_reference}; {amount} was asked"
            )
        try:
            with transaction.atomic():
                refund = GatewayRefund.objects.create(
                    attempt=locked,
                    amount=amount,
                    reason=reason[:REASON_MAX_LENGTH],
                    reference=_reference(),
                    requested_by=actor if actor is not None and actor.pk else None,
                    requested_at=moment,
                    next_check_at=moment + FIRST_CHECK_AFTER,
                )
        except IntegrityError as error:
            if _refused_by(error, BOUND):
                raise RefundExceedsPayment(
                    f"only {refund_left(locked)} is left to refund of payment {locked.merchant_reference}; "
                    f"{amount} was asked"
                ) from None
            raise
        audit(
            operator=locked.subscriber.operator,
            action="gateway.refund_request",
            actor=actor,
            subscriber=locked.subscriber,
            attempt=locked.merchant_reference,
            refund=refund.reference,
            amount=amount,
            reason=reason,
        )
    refund.attempt = locked
    return refund


def _refused_by(error: IntegrityError, constraint: str) -> bool:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def refund_lock(refund_id: int, *, skip_locked: bool = False) -> GatewayRefund | None:
    """The refund, its own row locked until the caller's transaction ends (None when `skip_locked`
    and another process holds it: that one is asking the gateway about it right now)."""
    return (
        GatewayRefund.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("attempt__account", "attempt__subscriber__operator", "attempt__payment", "requested_by")
        .filter(pk=refund_id)
        .first()
    )


def refunds_due(now: dt.datetime, limit: int = 200) -> list[int]:
    """The refunds not settled whose next check is due, oldest first."""
    return list(
        GatewayRefund.objects.filter(state__in=UNSETTLED_REFUND_STATES, next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", flat=True)[:limit]
    )


# -- asking the gateway ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RefundOutcome:
    """What one pass learnt of a refund: its state now, the gateway's id for it, why (for the row)."""

    state: str
    refund_id: str = ""
    error: str = ""
    answer: dict[str, Any] = field(default_factory=dict)


def unrefundable_because(attempt: PaymentAttempt, status: Status) -> str:
    """Why the gateway's record of the payment cannot be refunded ("" when it can): a refund is asked
    only of a payment the gateway itself says is paid, under our transaction."""
    if status.state != State.PAID:
        return f"the gateway reports the payment {status.state}, not paid"
    if status.transaction_id and status.transaction_id != attempt.transaction_id:
        return f"the gateway reports transaction {status.transaction_id}, not {attempt.transaction_id}"
    return ""


def refund_ask(client: GatewayClient, refund: GatewayRefund, *, submit: bool) -> RefundOutcome:
    """One pass about `refund`: the payment's status at the gateway (the clients address a refund by
    it), then, when `submit`, the refund itself, then its status. Without `submit` (the recheck) the
    refund is only asked about, never made again, except at SSLCommerz (see the module docstring).
    Never raises a gateway's error: each becomes the outcome it means."""
    attempt = refund.attempt
    try:
        paid = client.status(
            merchant_reference=attempt.merchant_reference, gateway_payment_id=attempt.gateway_payment_id
        )
    except GatewayError as error:
        if submit:
            return RefundOutcome(
                RefundState.FAILED, error=f"the payment could not be looked up, nothing was refunded: {error}"
            )
        return RefundOutcome(refund.state, error=f"the payment could not be looked up: {error}")
    problem = unrefundable_because(attempt, paid)
    if problem:
        if submit:
            return RefundOutcome(RefundState.FAILED, error=f"{problem}; nothing was refunded")
        return RefundOutcome(refund.state, error=problem)
    submitted: Refund | None = None
    if submit:
        try:
            submitted = client.refund(
                status=paid, amount=refund.amount, reason=refund.reason, refund_reference=refund.reference
            )
        except GatewayTimeout as error:
            return RefundOutcome(RefundState.UNKNOWN, error=f"no answer to the refund: {error}")
        except (GatewayError, ValueError) as error:
            return RefundOutcome(RefundState.FAILED, error=f"the gateway refused the refund: {error}")
        if submitted.state == State.FAILED:
            said = str(submitted.raw.get("errorReason") or submitted.raw.get("statusMessage") or "no reason given")
            return RefundOutcome(
                RefundState.FAILED, submitted.refund_id, f"the gateway refused the refund: {said}", submitted.raw
            )
    known = submitted.refund_id if submitted is not None else refund.gateway_refund_id
    try:
        confirmed = _refund_query(client, refund, paid, known)
    except (GatewayError, ValueError) as error:
        waiting = RefundState.PENDING if submitted is not None else refund.state
        answer = submitted.raw if submitted is not None else {}
        return RefundOutcome(waiting, known, f"the refund's status could not be asked: {error}", answer)
    if confirmed is None or confirmed.state == State.UNKNOWN:
        if submitted is not None or refund.state == RefundState.PENDING:
            # Accepted, and the status does not show it yet: asked again later.
            return RefundOutcome(RefundState.PENDING, known, "the gateway's refund status does not show it yet")
        return RefundOutcome(RefundState.FAILED, error="the gateway has no record of this refund: nothing was refunded")
    if confirmed.amount and confirmed.amount != refund.amount:
        return RefundOutcome(
            RefundState.UNKNOWN if submitted is None else RefundState.PENDING,
            confirmed.refund_id or known,
            f"the gateway reports a refund of {confirmed.amount}, not {refund.amount}",
            confirmed.raw,
        )
    state = {State.PAID: RefundState.DONE, State.PENDING: RefundState.PENDING, State.FAILED: RefundState.FAILED}.get(
        confirmed.state, RefundState.UNKNOWN
    )
    said = "the gateway reports the refund failed" if state == RefundState.FAILED else ""
    return RefundOutcome(state, confirmed.refund_id or known, said, confirmed.raw)


def _refund_query(client: GatewayClient, refund: GatewayRefund, paid: Status, known: str) -> Refund | None:
    """The gateway's refund status of `refund` (None: it has no such refund), by what each gateway
    addresses a refund by."""
    gateway = refund.attempt.account.gateway
    if gateway == Gateway.SSLCOMMERZ:
        if not known:
            again = client.refund(
                status=paid, amount=refund.amount, reason=refund.reason, refund_reference=refund.reference
            )
            if again.state == State.FAILED:
                return again
            known = again.refund_id
        return client.refund_status(status=paid, refund_reference=known)
    if gateway == Gateway.NAGAD:
        return client.refund_status(status=paid, refund_reference=refund.reference)
    # bKash answers the payment's latest refund, whatever reference it is asked.
    try:
        latest = client.refund_status(status=paid, refund_reference=refund.reference)
    except GatewayTimeout:
        raise
    except GatewayError as error:
        if error.code == "2033":  # no refund on this payment
            return None
        raise
    if known:
        return latest if latest.refund_id == known else None
    others = set(
        GatewayRefund.objects.filter(attempt_id=refund.attempt_id)
        .exclude(pk=refund.pk)
        .exclude(gateway_refund_id="")
        .values_list("gateway_refund_id", flat=True)
    )
    if latest.refund_id in others or latest.amount != refund.amount:
        return None  # the latest refund is another one: ours never reached bKash
    return latest


# -- writing what was learnt -------------------------------------------------------------------------
def refund_record(refund: GatewayRefund, outcome: RefundOutcome, now: dt.datetime) -> None:
    """Write one pass's outcome on the locked refund; schedule the next check of one not settled."""
    refund.checks += 1
    refund.last_error = outcome.error[:300]
    if outcome.refund_id and not refund.gateway_refund_id:
        refund.gateway_refund_id = outcome.refund_id[:100]
    if outcome.answer:
        refund.last_answer = {str(key): value for key, value in outcome.answer.items()}
    refund.state = outcome.state
    if refund.state in UNSETTLED_REFUND_STATES:
        refund.finished_at = None
        if now - refund.requested_at >= ESCALATE_AFTER:
            refund.next_check_at = None
            refund.last_error = ("no final answer from the gateway after 48 hours; " + refund.last_error)[:300]
        else:
            index = min(max(refund.checks - 1, 0), len(RECHECK_MINUTES) - 1)
            refund.next_check_at = now + dt.timedelta(minutes=RECHECK_MINUTES[index])
    else:
        refund.finished_at = now
        refund.next_check_at = None
    refund.save()
    if refund.state in (RefundState.DONE, RefundState.FAILED):
        attempt = refund.attempt
        audit(
            operator=attempt.subscriber.operator,
            action=f"gateway.refund_{refund.state}",
            subscriber=attempt.subscriber,
            attempt=attempt.merchant_reference,
            refund=refund.reference,
            gateway_refund=refund.gateway_refund_id,
            amount=refund.amount,
            error=refund.last_error,
        )


def refund_booked(refund: GatewayRefund, entry: LedgerEntry | None, error: str = "") -> None:
    """The done refund's place in the books: the ledger entry that records it, or why there is none
    (the money went back at the gateway all the same; staff record it by hand)."""
    refund.entry = entry
    if error:
        refund.last_error = f"refunded at the gateway, not recorded in the books: {error}"[:300]
    refund.save(update_fields=["entry", "last_error", "updated_at"])
