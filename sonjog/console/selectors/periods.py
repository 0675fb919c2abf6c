"""Period figures: generated / collected / adjusted / arrears / due per billing period, summed from
the statement projection, for the dashboard's chart and the billing page's period summary.

Periods before the last two are closed: their sums come from a cache that a database trigger's log
of late corrections keeps honest (ADR 0005)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import connection

from sonjog.console.access import Scope
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start

_PERIOD_FIGURES_SQL = """
SELECT period_month, sum(billed), sum(paid), sum(adjusted),
       COALESCE(sum(opening_due) FILTER (WHERE opening_due > 0), 0),
       COALESCE(sum(closing_due) FILTER (WHERE closing_due > 0), 0),
       count(*) FILTER (WHERE billed > 0)
FROM billing_statement
WHERE operator_id = ANY(%(ids)s) AND period_month >= %(since)s AND period_month <= %(until)s
GROUP BY period_month
ORDER BY period_month
"""


@dataclass
class PeriodFigures:
    period_month: dt.date
    generated: Decimal = ZERO
    collected: Decimal = ZERO
    adjusted: Decimal = ZERO
    arrears: Decimal = ZERO
    due: Decimal = ZERO
    subscribers_billed: int = 0

    @property
    def collection_rate(self) -> float | None:
        if self.generated <= 0:
            return None
        return float(self.collected / self.generated * 100)


# Closed periods (before the last two) change only through corrections dated into the past, so their
# sums are cached per scope. A database trigger logs every write to a closed period's statements with
# the writing transaction's id (console.ClosedPeriodChange). Before summing, the cache notes the
# oldest transaction still running (the snapshot's xmin) and the logged changes already visible from
# it; a cached entry stays valid while no other change logged by a transaction at or after that xmin
# touches its periods. Whatever the sums could have missed was written by such a transaction, so a
# stale figure is never served; a figure is at worst recomputed when it did not need to be.
CLOSED_CACHE_SECONDS = 3600
_SNAPSHOT_SQL = """
SELECT x.xmin, ARRAY(SELECT c.id FROM console_closedperiodchange c
                     WHERE c.xid >= x.xmin AND c.operator_id = ANY(%(ids)s) AND c.from_period < %(live_from)s)
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) x
"""
_CLOSED_CHANGED_SQL = """
SELECT EXISTS (SELECT 1 FROM console_closedperiodchange
               WHERE xid >= %(xmin)s AND operator_id = ANY(%(ids)s) AND from_period < %(live_from)s
                 AND NOT (id = ANY(%(seen)s::bigint[])))
"""


def _sum_periods(operator_ids: list[int], since: dt.date, until: dt.date) -> dict[dt.date, PeriodFigures]:
    with connection.cursor() as cursor:
        cursor.execute(_PERIOD_FIGURES_SQL, {"ids": operator_ids, "since": since, "until": until})
        return {row[0]: PeriodFigures(*row) for row in cursor.fetchall()}


def _closed_periods(operator_ids: list[int], since: dt.date, live_from: dt.date) -> dict[dt.date, PeriodFigures]:
    key = f"console:closed-periods:{','.join(map(str, sorted(operator_ids)))}:{since:%Y%m}:{live_from:%Y%m}"
    cached = cache.get(key)
    with connection.cursor() as cursor:
        if cached is not None:
            xmin, seen, found = cached
            cursor.execute(
                _CLOSED_CHANGED_SQL, {"xmin": xmin, "seen": seen, "ids": operator_ids, "live_from": live_from}
            )
            row = cursor.fetchone()
            if row is not None and not row[0]:
                return dict(found)
        # Taken before the sums: every change the sums might not include is logged by a transaction at
        # or after this xmin and is not among the changes visible now.
        cursor.execute(_SNAPSHOT_SQL, {"ids": operator_ids, "live_from": live_from})
        snapshot = cursor.fetchone()
    found = _sum_periods(operator_ids, since, add_months(live_from, -1))
    if snapshot is not None:
        cache.set(key, (snapshot[0], list(snapshot[1]), found), CLOSED_CACHE_SECONDS)
    return found


def period_figures(
    operator_ids: list[int], since: dt.date, until: dt.date, today: dt.date | None = None
) -> list[PeriodFigures]:
    """Generated / collected / adjusted / arrears / due per period, one row per month (zeros filled).
    Given `today`, periods before the last two come from the closed-period cache."""
    if today is not None and since < add_months(month_start(today), -2):
        live_from = add_months(month_start(today), -2)
        found = _closed_periods(operator_ids, since, live_from)
        found = {**found, **_sum_periods(operator_ids, live_from, until)}
    else:
        found = _sum_periods(operator_ids, since, until)
    rows = []
    month = since
    while month <= until:
        rows.append(found.get(month, PeriodFigures(month)))
        month = add_months(month, 1)
    return rows


def chart_periods(scope: Scope, today: dt.date, months: int = 12) -> list[PeriodFigures]:
    month = month_start(today)
    return period_figures(scope.operator_ids, add_months(month, -(months - 1)), month, today)


def period_summary_rows(scope: Scope, today: dt.date, months: int = 36) -> list[PeriodFigures]:
    """The last `months` periods, newest first: up to this month, or further when a later period has
    already been billed ahead; empty months before the first bill are left out."""
    month = month_start(today)
    rows = period_figures(scope.operator_ids, add_months(month, -(months - 1)), add_months(month, 12), today)

    def empty(row: PeriodFigures) -> bool:
        return not (row.generated or row.collected or row.adjusted or row.arrears or row.due)

    while rows and rows[-1].period_month > month and empty(rows[-1]):
        rows.pop()
    rows = rows[-months:]
    while rows and empty(rows[0]):
        rows.pop(0)
    return list(reversed(rows))
