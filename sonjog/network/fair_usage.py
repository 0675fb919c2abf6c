"""Fair usage: subscribers past their package's data allowance in their billing period get the
package's reduced rate until the period ends. Usage comes from RADIUS accounting (`radacct`), the
throttle is a `FupState` row, and what it looks like on the router (the package's FUP profile) is
decided by `desired.py` and applied through the outbox (`services.fair_usage_apply`, run by the
periodic job `automation.fair_usage`). This module is the read side."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from sonjog.billing.terms import terms_for
from sonjog.core.periods import nominal_period
from sonjog.network.models import FupState
from sonjog.operators.models import Operator

# Bytes in one "GB" of a package's data allowance: decimal gigabytes, as ISPs advertise them.
FUP_BYTES_PER_GB = 1_000_000_000


@dataclass(frozen=True)
class UsagePeriod:
    subscriber_id: int
    username: str
    period_month: dt.date
    starts_at: dt.datetime
    ends_at: dt.datetime
    allowance_bytes: int


_FUP_SUBSCRIBERS_SQL = """
SELECT s.id, s.operator_id, s.pppoe_username, s.activation_date, s.billing_mode, s.billing_cycle, s.billing_day,
       p.data_allowance_gb
FROM customers_subscriber s
JOIN catalog_package p ON p.id = s.package_id
JOIN operators_operator o ON o.id = s.operator_id
WHERE p.data_allowance_gb IS NOT NULL AND s.activation_date IS NOT NULL AND s.service_intent <> 'terminated'
  AND o.is_active
ORDER BY s.id
"""


def fup_usage_periods(now: dt.datetime | None = None) -> list[UsagePeriod]:
    """Each subscriber on a package with a data allowance, with the bounds of the billing period it is
    in now (its operator's calendar, its own cycle), as aware datetimes at local midnight."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_FUP_SUBSCRIBERS_SQL)
        rows = cursor.fetchall()
    operators = {op.pk: op for op in Operator.objects.filter(pk__in={row[1] for row in rows})}
    periods = []
    for subscriber_id, operator_id, username, activation, mode, cycle, billing_day, allowance_gb in rows:
        operator = operators[operator_id]
        zone = ZoneInfo(operator.time_zone)
        today = timezone.localtime(now, zone).date()
        terms = terms_for(operator, mode=mode, cycle=cycle, billing_day=billing_day, activation_date=activation)
        period_month = terms.period_month_of(today)
        start, end = nominal_period(period_month, terms.anchor_day)
        start = max(start, activation)
        periods.append(
            UsagePeriod(
                subscriber_id=subscriber_id,
                username=username,
                period_month=period_month,
                starts_at=dt.datetime.combine(start, dt.time(), zone),
                ends_at=dt.datetime.combine(end, dt.time(), zone),
                allowance_bytes=int(allowance_gb) * FUP_BYTES_PER_GB,
            )
        )
    return periods


# A session that crosses the period's start counts with the share of its duration that falls inside
# the period: radacct keeps only a session's running totals, so that is the best estimate there is.
_USAGE_SQL = """
WITH target AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(usernames)s::text[], %(starts)s::timestamptz[],
                         %(ends)s::timestamptz[]) AS t(subscriber_id, username, starts_at, ends_at)
)
SELECT t.subscriber_id, COALESCE(sum(
    (COALESCE(r.acctinputoctets, 0) + COALESCE(r.acctoutputoctets, 0))::numeric
    * CASE WHEN r.last_seen <= r.acctstarttime THEN 1
           ELSE GREATEST(EXTRACT(EPOCH FROM LEAST(r.last_seen, t.ends_at) - GREATEST(r.acctstarttime, t.starts_at)), 0)
                / EXTRACT(EPOCH FROM r.last_seen - r.acctstarttime) END), 0)::bigint
FROM target t
LEFT JOIN LATERAL (
    SELECT a.acctinputoctets, a.acctoutputoctets, a.acctstarttime,
           COALESCE(a.acctstoptime, a.acctupdatetime, a.acctstarttime) AS last_seen
    FROM radacct a
    WHERE a.username = t.username AND a.acctstarttime < t.ends_at
      AND COALESCE(a.acctstoptime, a.acctupdatetime, a.acctstarttime) >= t.starts_at
) r ON true
GROUP BY t.subscriber_id
"""


def period_usage_bytes(periods: list[UsagePeriod]) -> dict[int, int]:
    """Bytes each subscriber moved (in + out) within its period, from RADIUS accounting."""
    if not periods:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _USAGE_SQL,
            {
                "ids": [p.subscriber_id for p in periods],
                "usernames": [p.username for p in periods],
                "starts": [p.starts_at for p in periods],
                "ends": [p.ends_at for p in periods],
            },
        )
        return {row[0]: int(row[1]) for row in cursor.fetchall()}


def fup_throttled_subscriber_ids(subscriber_ids: list[int] | None = None) -> set[int]:
    """Subscribers under a fair-usage throttle now: what the network applies the reduced rate to."""
    states = FupState.objects.filter(released_at__isnull=True)
    if subscriber_ids is not None:
        states = states.filter(subscriber_id__in=subscriber_ids)
    return set(states.values_list("subscriber_id", flat=True))
