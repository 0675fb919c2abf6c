"""Billing decisions made real: the overdue sweep and reactivation on payment.

"Overdue" is billing's one definition (`sonjog.billing.selectors.overdue_ids`, over `dues_cte`), the
same figures the dashboard, the overdue list and the reminders read. Prepaid subscribers are suspended
only when their validity has run out, never before.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from sonjog.billing.selectors import overdue_ids
from sonjog.billing.terms import operator_today
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.operators.models import Operator

_ENQUEUE_BULK_SQL = """
WITH targets AS (
    SELECT s.id AS subscriber_id, s.service_intent_at,
           COALESCE(s.router_id, (
               SELECT r.id FROM network_router r JOIN network_router_zones rz ON rz.router_id = r.id
               JOIN customers_zone z ON z.id = s.zone_id
               WHERE r.is_active AND rz.zone_id IN (z.id, z.parent_id) ORDER BY r.id LIMIT 1)) AS router_id
    FROM customers_subscriber s WHERE s.id = ANY(%(ids)s::bigint[])
)
INSERT INTO network_outboxcommand (subscriber_id, router_id, status, requested_by, requested_at, intent_at,
    attempts, max_attempts, next_attempt_at, completed_at, last_error, result)
SELECT t.subscriber_id, t.router_id,
       CASE WHEN r.record_only OR r.driver = 'none' THEN 'record_only' ELSE 'pending' END,
       %(by)s, %(now)s, t.service_intent_at, 0, %(max)s, %(now)s,
       CASE WHEN r.record_only OR r.driver = 'none' THEN %(now)s::timestamptz END, '', '{}'
FROM targets t JOIN network_router r ON r.id = t.router_id
ORDER BY t.subscriber_id
ON CONFLICT (subscriber_id, router_id) WHERE status = 'pending'
DO UPDATE SET requested_by = EXCLUDED.requested_by, requested_at = EXCLUDED.requested_at,
    intent_at = EXCLUDED.intent_at, next_attempt_at = EXCLUDED.next_attempt_at
"""


def outbox_enqueue_many(subscriber_ids: list[int], requested_by: str) -> None:
    """The set-based twin of outbox_enqueue for sweeps: one INSERT for thousands of subscribers."""
    from django.conf import settings

    if not subscriber_ids:
        return
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _ENQUEUE_BULK_SQL,
            {"ids": subscriber_ids, "by": requested_by, "now": now, "max": settings.SONJOG_OUTBOX_MAX_ATTEMPTS},
        )
        cursor.execute(
            """UPDATE customers_subscriber s SET sync_state = CASE
                   WHEN EXISTS (SELECT 1 FROM network_outboxcommand c WHERE c.subscriber_id = s.id
                                AND c.status = 'pending') THEN 'pending' ELSE 'record_only' END,
                   sync_state_at = %s
               WHERE s.id = ANY(%s::bigint[])""",
            [now, subscriber_ids],
        )


def overdue_sweep(*, operator: Operator | None = None, today: dt.date | None = None) -> dict[str, Any]:
    """Suspend every subscriber past due + grace (never VIPs; prepaid only once expired)."""
    from sonjog.network.tasks import drain_outbox_soon

    suspended: list[int] = []
    operators = [operator] if operator else list(Operator.objects.filter(is_active=True).order_by("pk"))
    for each in operators:
        day = today or operator_today(each)
        with transaction.atomic():
            ids = overdue_ids(each, day, intent=ServiceIntent.ACTIVE)
            if not ids:
                continue
            now = timezone.now()
            Subscriber.objects.filter(pk__in=ids, service_intent=ServiceIntent.ACTIVE).update(
                service_intent=ServiceIntent.SUSPENDED, service_intent_at=now
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    """INSERT INTO core_auditevent (operator_id, action, subscriber_id, detail, created_at)
                       SELECT %s, 'subscriber.intent.suspended', id, '{"reason": "overdue sweep"}', %s
                       FROM unnest(%s::bigint[]) AS id""",
                    [each.pk, now, ids],
                )
            outbox_enqueue_many(ids, "overdue sweep")
            from sonjog.notifications.services import event_notices_defer

            # "You are suspended; here is how to pay": rendered and queued by a job, not in the sweep.
            event_notices_defer(event="suspension", subscriber_ids=ids, dedup_prefix=f"suspension:{day:%Y-%m-%d}")
            suspended.extend(ids)
    if suspended:
        drain_outbox_soon()
    return {"suspended": len(suspended), "subscriber_ids": suspended}


def reactivate_if_cleared(subscriber: Subscriber, *, reason: str) -> bool:
    """Called inside the payment's transaction: a suspended subscriber whose due is cleared comes back
    now, and the router command is queued in this same transaction."""
    if subscriber.service_intent != ServiceIntent.SUSPENDED:
        return False
    today = operator_today(subscriber.operator)
    if overdue_ids(subscriber.operator, today, intent=ServiceIntent.SUSPENDED, only=[subscriber.pk]):
        return False
    from sonjog.customers.services import subscriber_set_intent

    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.ACTIVE, reason=reason)
    return True
