"""Money received: record it, bring the subscriber back if it cleared what was overdue, say thank you.

Every way money arrives (the console's payment form, `sonjog record_payment`, and later the API, the
gateways and the portal) calls `payment_receive`. One transaction: the payment, its allocation and
receipt, the router command of a reconnection and the "payment received" message commit together or
not at all, under the subscriber's money lock.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction

from sonjog.billing.models import Payment
from sonjog.billing.services import payment_record
from sonjog.customers.models import Subscriber
from sonjog.flows.enforcement import reactivate_if_cleared
from sonjog.notifications.services import notify_event


def payment_receive(
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
    """Record a payment (billing's `payment_record`: FIFO allocation, credit, receipt), reactivate a
    suspended subscriber whose due it cleared, and queue the "payment received" message."""
    with transaction.atomic():
        payment = payment_record(
            subscriber=subscriber,
            amount=amount,
            method=method,
            reference=reference,
            received_at=received_at,
            collector=collector,
            actor=actor,
            confirm_duplicate=confirm_duplicate,
            gateway=gateway,
            gateway_transaction_id=gateway_transaction_id,
        )
        # The subscriber row as payment_record left it, still locked by this transaction.
        locked = payment.subscriber
        reactivate_if_cleared(locked, reason=f"payment #{payment.pk} cleared the due")
        notify_event(
            subscriber=locked,
            event="payment_received",
            context={"payment_amount": amount},
            dedup_key=f"payment_received:payment:{payment.pk}",
        )
    return payment
