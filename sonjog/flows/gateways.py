"""Money that arrives by itself: a checkout at a gateway, and the one confirmation every path calls.

`checkout_start` creates the attempt (committed, with its unique merchant reference) and then the
payment at the gateway, and says where to send the payer. `attempt_confirm` is what the browser's
return, the gateway's notification (IPN or webhook, however often it comes), a staff member's
"check now" and the periodic recheck all call: under the attempt's row lock it asks the gateway
itself, and when the gateway says paid, with our amount, currency, reference and merchant account,
records the payment through `payment_receive` (allocation, receipt, the reconnection through the
outbox and the "payment received" message), in the same transaction that marks the attempt applied.
A second caller waits on the lock and finds it applied; a payment already recorded for that gateway
transaction (billing's unique key) parks the attempt for review instead of recording it twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import PaymentMethod
from sonjog.billing.selectors import subscriber_balance
from sonjog.core.money import round_money
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.payments import payment_receive
from sonjog.gateways.clients.base import Checkout, GatewayClient, GatewayError, GatewayTimeout, Status
from sonjog.gateways.exceptions import NothingToPay
from sonjog.gateways.models import AttemptState, Gateway, GatewayAccount, InboundRequest, PaymentAttempt
from sonjog.gateways.services import (
    Verdict,
    attempt_by_reference,
    attempt_create,
    attempt_failed_to_open,
    attempt_lock,
    attempt_opened,
    attempt_settle,
    attempt_unknown,
    attempts_due,
    client_for,
    inbound_done,
    judge,
)
from sonjog.network.models import OutboxCommand, OutboxStatus

METHOD_OF = {
    Gateway.BKASH: PaymentMethod.BKASH,
    Gateway.NAGAD: PaymentMethod.NAGAD,
    Gateway.SSLCOMMERZ: PaymentMethod.CARD,
}
MAX_ONLINE_PAYMENT = Decimal("500000.00")


def checkout_start(
    *,
    subscriber: Subscriber,
    account: GatewayAccount,
    amount: Decimal,
    source: str,
    return_url: str,
    notify_url: str,
    now: dt.datetime | None = None,
) -> PaymentAttempt:
    """Create the attempt and the payment at the gateway. `return_url` and `notify_url` may contain
    "{reference}", replaced by the attempt's merchant reference. A gateway that refuses or does not
    answer leaves the attempt failed with the reason (nobody was sent to pay it)."""
    now = now or timezone.now()
    if amount <= 0 or amount > MAX_ONLINE_PAYMENT or round_money(amount) != amount:
        raise NothingToPay(f"an online payment must be from 0.01 to {MAX_ONLINE_PAYMENT} (got {amount})")
    attempt = attempt_create(subscriber=subscriber, account=account, amount=amount, source=source, now=now)
    try:
        with _opened(account) as client:
            checkout = client.create(
                merchant_reference=attempt.merchant_reference,
                amount=attempt.gross,
                currency=attempt.currency,
                return_url=return_url.replace("{reference}", attempt.merchant_reference),
                notify_url=notify_url.replace("{reference}", attempt.merchant_reference),
                payer_reference=subscriber.customer_id,
            )
    except GatewayError as error:
        attempt_failed_to_open(attempt, f"{account.get_gateway_display()}: {error}", timezone.now())
        return attempt
    attempt_opened(attempt, checkout, timezone.now())
    return attempt


def attempt_confirm(
    *, attempt_id: int, params: dict[str, str] | None = None, via: str = "recheck", now: dt.datetime | None = None
) -> PaymentAttempt:
    """Settle an open attempt from the gateway's own answer (see the module's docstring). `params`
    are what the browser's return or the notification carried (a bKash paymentID to execute, an
    SSLCommerz val_id to validate); without them the gateway's status is asked."""
    with transaction.atomic():
        attempt = attempt_lock(attempt_id)
        if not attempt.is_open:
            return attempt
        moment = now or timezone.now()
        try:
            with _opened(attempt.account) as client:
                status = _ask(client, attempt, params)
        except GatewayError as error:  # a timeout, or an answer that is not one: ask again later
            attempt_unknown(attempt, f"{via}: {error}", moment)
            return attempt
        verdict = judge(attempt, status)
        payment_id = None
        if verdict.state == AttemptState.APPLIED:
            try:
                with transaction.atomic():
                    payment = payment_receive(
                        subscriber=attempt.subscriber,
                        amount=attempt.amount,
                        method=METHOD_OF[Gateway(attempt.account.gateway)],
                        reference=status.transaction_id,
                        received_at=status.paid_at or moment,
                        confirm_duplicate=True,
                        gateway=attempt.account.gateway,
                        gateway_transaction_id=status.transaction_id,
                    )
                payment_id = payment.pk
            except BillingError as error:
                verdict = Verdict(AttemptState.REVIEW, f"paid at the gateway, not recorded: {error}")
        attempt_settle(attempt, verdict, status, moment, payment_id)
    return attempt


@contextlib.contextmanager
def _opened(account: GatewayAccount) -> Iterator[GatewayClient]:
    """The account's client, its connections closed after use."""
    client = client_for(account)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()


def _ask(gateway_client: GatewayClient, attempt: PaymentAttempt, params: dict[str, str] | None) -> Status:
    if params:
        checkout = Checkout(gateway_payment_id=attempt.gateway_payment_id, redirect_url=attempt.redirect_url)
        try:
            return gateway_client.complete(checkout=checkout, params=params)
        except GatewayTimeout:
            raise
        except GatewayError:
            # Completing was refused (the payer cancelled, it was completed by another path): what
            # the gateway's status says is the answer.
            pass
    return gateway_client.status(
        merchant_reference=attempt.merchant_reference, gateway_payment_id=attempt.gateway_payment_id
    )


def inbound_handle(inbound: InboundRequest, reference: str, *, params: dict[str, str] | None) -> PaymentAttempt | None:
    """Act on a stored inbound request naming `reference`: confirm its attempt (asking the gateway),
    and note on the request what came of it. A failure is kept on the request for a replay."""
    attempt = attempt_by_reference(reference)
    moment = timezone.now()
    if attempt is None:
        inbound_done(inbound, attempt=None, outcome="unknown_reference", now=moment)
        return None
    try:
        attempt = attempt_confirm(attempt_id=attempt.pk, params=params, via=inbound.kind)
    except Exception as error:  # kept for the replay; the gateway will also be asked by the recheck
        inbound_done(inbound, attempt=attempt, outcome="error", error=f"{type(error).__name__}: {error}", now=moment)
        raise
    inbound_done(inbound, attempt=attempt, outcome=attempt.state, now=moment)
    return attempt


def attempts_recheck(now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """The periodic recheck: every open attempt whose next check is due asks its gateway again."""
    moment = now or timezone.now()
    counts = {"checked": 0, "applied": 0, "failed": 0, "review": 0, "unknown": 0, "escalated": 0}
    for attempt_id in attempts_due(moment, limit):
        attempt = attempt_confirm(attempt_id=attempt_id, via="recheck", now=moment)
        counts["checked"] += 1
        if attempt.state in counts:
            counts[attempt.state] += 1
    return counts


def reconnection_state(attempt: PaymentAttempt) -> dict[str, object]:
    """What the payer's page shows after paying: "waiting" for the gateway, "failed", "review", and
    once applied "reconnecting" while the router commands the payment queued are still to run,
    "online" when they ran (or nothing needed to change), "still_suspended" when the payment did not
    clear what is overdue (with what is still owed)."""
    if attempt.state != AttemptState.APPLIED:
        return {"stage": "waiting" if attempt.is_open else attempt.state}
    subscriber = Subscriber.objects.get(pk=attempt.subscriber_id)
    if subscriber.service_intent != ServiceIntent.ACTIVE:
        return {"stage": "still_suspended", "owed": subscriber_balance(subscriber.pk)}
    waiting = OutboxCommand.objects.filter(
        subscriber_id=subscriber.pk,
        status__in=[OutboxStatus.PENDING, OutboxStatus.RUNNING],
    ).exists()
    return {"stage": "reconnecting" if waiting else "online"}


def inbound_replay(inbound_id: int) -> PaymentAttempt | None:
    """Handle again a stored request whose handling failed (or found nothing to do then)."""
    inbound = InboundRequest.objects.get(pk=inbound_id)
    attempt = inbound.attempt or (attempt_by_reference(_reference_in(inbound)) if _reference_in(inbound) else None)
    if attempt is None:
        inbound_done(inbound, attempt=None, outcome="unknown_reference", now=timezone.now())
        return None
    params = inbound.params or None
    return inbound_handle(inbound, attempt.merchant_reference, params=params)


def _reference_in(inbound: InboundRequest) -> str:
    """The merchant reference a stored request names: in the return path (/pay/<reference>/return/),
    SSLCommerz's tran_id, or bKash's merchantInvoiceNumber."""
    parts = [part for part in inbound.path.split("?")[0].split("/") if part]
    if len(parts) >= 3 and parts[0] == "pay" and parts[2] == "return":
        return parts[1]
    return str(inbound.params.get("tran_id") or inbound.params.get("merchantInvoiceNumber") or "")
