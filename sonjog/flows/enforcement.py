"""Overdue -> suspend -> notice, and cleared -> reactivate.

"Overdue" is billing's one definition (`sonjog.billing.selectors.overdue_ids`); the network app makes
a suspension real on the routers (`overdue_suspend`: intent, audit rows and router commands in one
set-based step); this module adds the subscriber's notice in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from sonjog.billing.selectors import overdue_ids
from sonjog.billing.services.floats import FloatError
from sonjog.billing.terms import operator_today
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.subscribers import subscriber_set_intent
from sonjog.network.enforcement import overdue_suspend
from sonjog.network.tasks import drain_outbox_soon
from sonjog.notifications.services import event_notices_defer
from sonjog.operators.models import Operator


def overdue_sweep(*, operator: Operator | None = None, today: dt.date | None = None) -> dict[str, Any]:
    """Suspend every subscriber past due + grace (never VIPs; prepaid only once expired), one operator
    per transaction, and queue each one's "you are suspended; here is how to pay" notice with it."""
    suspended: list[int] = []
    operators = [operator] if operator else list(Operator.objects.filter(is_active=True).order_by("pk"))
    for each in operators:
        day = today or operator_today(each)
        with transaction.atomic():
            ids = overdue_suspend(each, day)
            # Rendered and queued by a job, not in the sweep; the key makes a repeated sweep a no-op.
            event_notices_defer(event="suspension", subscriber_ids=ids, dedup_prefix=f"suspension:{day:%Y-%m-%d}")
        suspended.extend(ids)
    if suspended:
        drain_outbox_soon()
    return {"suspended": len(suspended), "subscriber_ids": suspended}


def reactivate_if_cleared(subscriber: Subscriber, *, reason: str) -> bool:
    """Inside a payment's (or credit's) transaction: a suspended subscriber who no longer owes anything
    overdue comes back now; the router command and the "reactivated" message are queued with it."""
    if subscriber.service_intent != ServiceIntent.SUSPENDED:
        return False
    today = operator_today(subscriber.operator)
    if overdue_ids(subscriber.operator, today, intent=ServiceIntent.SUSPENDED, only=[subscriber.pk]):
        return False
    try:
        with transaction.atomic():
            subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.ACTIVE, reason=reason)
    except FloatError:
        # The payment stands; the reseller's float cannot pay for the unbilled period yet, so the
        # subscriber stays suspended until it is topped up (the next payment or a reactivation by
        # staff then brings them back).
        return False
    return True
