"""Billing decisions made real on the routers: suspension of the overdue, set-based.

"Overdue" is billing's one definition (`sonjog.billing.selectors.overdue_ids`, over `dues_cte`), the
same figures the dashboard, the overdue list and the reminders read. Prepaid subscribers are suspended
only when their validity has run out, never before.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from sonjog.billing.selectors import overdue_ids
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


def overdue_suspend(operator: Operator, day: dt.date) -> list[int]:
    """In the caller's transaction: suspend the operator's active subscribers that are overdue on
    `day` (never VIPs; prepaid only once expired), with their audit rows and router commands, all
    set-based. Returns the suspended ids. The sweep with its notices is `sonjog.flows.enforcement`."""
    ids = overdue_ids(operator, day, intent=ServiceIntent.ACTIVE)
    if not ids:
        return []
    now = timezone.now()
    Subscriber.objects.filter(pk__in=ids, service_intent=ServiceIntent.ACTIVE).update(
        service_intent=ServiceIntent.SUSPENDED, service_intent_at=now
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO core_auditevent (operator_id, action, subscriber_id, detail, created_at)
               SELECT %s, 'subscriber.intent.suspended', id, '{"reason": "overdue sweep"}', %s
               FROM unnest(%s::bigint[]) AS id""",
            [operator.pk, now, ids],
        )
    outbox_enqueue_many(ids, "overdue sweep")
    return ids
