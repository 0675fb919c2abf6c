"""The dashboard: its cards, breakdowns and today's collections, composed from the domain selectors.

It is a handful of aggregate queries, not one query per card: one pass over the scope's subscribers
(grouped by zone and router, with each subscriber's current due and overdue amount from billing's
`dues_cte`), the money received this month (billing's `collected`), and a few small ones (today's
payments, failed commands, open alerts, names)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Sum

from sonjog.billing.selectors import HANDOVER_PARTS, collected, dues_cte, handover_sums, payments_received
from sonjog.console.access import Scope
from sonjog.console.selectors.billing import day_bounds
from sonjog.console.selectors.periods import PeriodFigures
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import Subscriber, Zone
from sonjog.customers.selectors import MISMATCH_SQL
from sonjog.network.models import NetworkAlert, OutboxCommand, OutboxStatus, Router
from sonjog.notifications.models import LowBalanceAlert

# One pass over the scope's subscribers, grouped by zone and router, over billing's one definition of
# what each owes now and how much of it is overdue (`dues_cte`).
_DASHBOARD_SUBSCRIBERS_SQL = f"""
SELECT s.zone_id, s.router_id,
       count(*) FILTER (WHERE s.service_intent = 'active') AS running,
       count(*) FILTER (WHERE s.service_intent = 'suspended') AS suspended,
       count(*) FILTER (WHERE s.service_intent = 'disabled') AS disabled,
       count(*) FILTER (WHERE s.activation_date >= %(month)s AND s.activation_date < %(next_month)s) AS joined,
       count(*) FILTER (WHERE s.terminated_on >= %(month)s AND s.terminated_on < %(next_month)s) AS left_service,
       count(*) FILTER (WHERE s.session_state = 'online') AS online,
       count(*) FILTER (WHERE {MISMATCH_SQL}) AS mismatches,
       count(*) FILTER (WHERE s.sync_state = 'failed') AS sync_failed,
       count(*) FILTER (WHERE s.mode = 'prepaid' AND s.service_intent <> 'terminated'
                        AND s.expires_on >= %(today)s AND s.expires_on < %(today)s + 7) AS expiring,
       COALESCE(sum(s.due) FILTER (WHERE s.due > 0), 0) AS due_total,
       count(*) FILTER (WHERE s.due > 0) AS due_count,
       COALESCE(-sum(s.due) FILTER (WHERE s.due < 0), 0) AS credit_total,
       count(*) FILTER (WHERE s.is_overdue) AS overdue,
       COALESCE(sum(s.overdue_amount), 0) AS overdue_total,
       -- This period's statement rows are joined anyway: their sums are the period's figures.
       COALESCE(sum(s.cur_billed), 0) AS period_generated,
       COALESCE(sum(s.cur_paid), 0) AS period_collected,
       COALESCE(sum(s.cur_adjusted), 0) AS period_adjusted,
       COALESCE(sum(s.cur_opening) FILTER (WHERE s.cur_opening > 0), 0) AS period_arrears,
       COALESCE(sum(s.cur_closing) FILTER (WHERE s.cur_closing > 0), 0) AS period_due,
       count(*) FILTER (WHERE s.cur_billed > 0) AS period_billed_count
FROM judged s
GROUP BY s.zone_id, s.router_id
"""


@dataclass
class Breakdown:
    label: str
    value: int | Decimal
    url_params: dict[str, Any] = field(default_factory=dict)
    object_id: int | None = None


@dataclass
class Dashboard:
    today: dt.date
    mode: str
    totals: dict[str, Any]
    current: PeriodFigures
    online_by_router: list[Breakdown]
    online_by_zone: list[Breakdown]
    top_zones_by_due: list[Breakdown]
    collections_today: list[dict[str, Any]]
    collected_today: Decimal
    failed_commands: int
    alerts: list[NetworkAlert]
    sms_alerts: list[LowBalanceAlert]


def _month_params(today: dt.date) -> dict[str, Any]:
    month = month_start(today)
    return {"month": month, "next_month": add_months(month, 1)}


def dashboard(scope: Scope, today: dt.date) -> Dashboard:
    ids = scope.operator_ids
    dues, params = dues_cte(ids, today)
    with connection.cursor() as cursor:
        cursor.execute("WITH " + dues + _DASHBOARD_SUBSCRIBERS_SQL, params | {"today": today, **_month_params(today)})
        columns = [column.name for column in cursor.description or []]
        groups = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    summed = [c for c in columns if c not in ("zone_id", "router_id")]
    totals: dict[str, Any] = {name: sum((g[name] for g in groups), start=0) for name in summed}

    month = month_start(today)
    # The twelve-period chart is its own request (dashboard_chart): the cards need this period only,
    # summed from the statement rows the query above already joined; "collected" is billing's one
    # definition, money received in the calendar month.
    month_begins = day_bounds(scope, month)[0]
    current = PeriodFigures(
        month,
        generated=Decimal(totals["period_generated"]),
        collected=collected(ids, month_begins, day_bounds(scope, add_months(month, 1))[0]),
        adjusted=Decimal(totals["period_adjusted"]),
        arrears=Decimal(totals["period_arrears"]),
        due=Decimal(totals["period_due"]),
        subscribers_billed=int(totals["period_billed_count"]),
    )

    zones = {zone.pk: zone for zone in Zone.objects.filter(operator_id__in=ids).select_related("parent")}
    online_by_router, unrouted = _online_by_router(scope, groups, zones)
    online_zone: dict[int, int] = {}
    due_zone: dict[int, Decimal] = {}
    for group in groups:
        zone_id = group["zone_id"]
        if zone_id is not None:
            online_zone[zone_id] = online_zone.get(zone_id, 0) + group["online"]
            due_zone[zone_id] = due_zone.get(zone_id, ZERO) + group["due_total"]
    online_by_zone = [
        Breakdown(str(zones[pk]), count, {"zone": pk, "online": "yes"}, pk)
        for pk, count in sorted(online_zone.items(), key=lambda item: -item[1])
        if pk in zones and count
    ][:8]
    top_zones = [
        Breakdown(str(zones[pk]), amount, {"zone": pk, "sort": "-due", "due_min": "0.01"}, pk)
        for pk, amount in sorted(due_zone.items(), key=lambda item: -item[1])
        if pk in zones and amount > 0
    ][:5]

    collections = collections_by_collector(scope, today)
    failed = OutboxCommand.objects.filter(status=OutboxStatus.FAILED, subscriber__operator_id__in=ids).count()
    alerts = list(
        NetworkAlert.objects.filter(operator_id__in=ids, resolved_at__isnull=True)
        .select_related("router")
        .order_by("-created_at")[:5]
    )
    # SMS credit running out stops reminders and receipts: as loud as a router going down.
    sms_alerts = list(
        LowBalanceAlert.objects.filter(operator_id__in=ids, resolved_at__isnull=True)
        .select_related("operator")
        .order_by("-created_at")[:5]
    )
    totals["unrouted_online"] = unrouted
    return Dashboard(
        today=today,
        mode=scope.home.billing_mode,
        totals=totals,
        current=current,
        online_by_router=online_by_router,
        online_by_zone=online_by_zone,
        top_zones_by_due=top_zones,
        collections_today=collections,
        # The same rows as billing's `collected` for today (received today, reversed ones left out).
        collected_today=sum((row["total"] for row in collections), start=ZERO),
        failed_commands=failed,
        alerts=alerts,
        sms_alerts=sms_alerts,
    )


def _online_by_router(
    scope: Scope, groups: list[dict[str, Any]], zones: dict[int, Zone]
) -> tuple[list[Breakdown], int]:
    """Online counts per router: a subscriber's own router, else the router serving its zone or the
    zone's parent (the same resolution as the outbox's router_for). Returns the rows and how many
    online subscribers no router serves."""
    routers = list(Router.objects.filter(operator_id__in=scope.operator_ids, is_active=True).prefetch_related("zones"))
    zone_router: dict[int, int] = {}
    for router in sorted(routers, key=lambda r: r.pk):
        for zone in router.zones.all():
            zone_router.setdefault(zone.pk, router.pk)
    online: dict[int, int] = {router.pk: 0 for router in routers}
    unrouted = 0
    for group in groups:
        zone_id, served = group["zone_id"], group["router_id"]
        if served is None and zone_id is not None:
            found = zones.get(zone_id)
            parent_id = found.parent_id if found is not None else None
            served = zone_router.get(zone_id) or (zone_router.get(parent_id) if parent_id else None)
        if served in online:
            online[served] += group["online"]
        else:
            unrouted += group["online"]
    names = {router.pk: router.name for router in routers}
    rows = [Breakdown(names[pk], count, object_id=pk) for pk, count in sorted(online.items(), key=lambda i: -i[1])]
    return rows, unrouted


def online_by_router(scope: Scope) -> list[Breakdown]:
    groups: list[dict[str, Any]] = [
        dict(row)
        for row in scope.filter(Subscriber.objects.filter(session_state="online"))
        .values("zone_id", "router_id")
        .annotate(online=Count("pk"))
        .order_by()
    ]
    zones = {zone.pk: zone for zone in Zone.objects.filter(operator_id__in=scope.operator_ids)}
    return _online_by_router(scope, groups, zones)[0]


def collections_by_collector(scope: Scope, day: dt.date) -> list[dict[str, Any]]:
    start, end = day_bounds(scope, day)
    rows = (
        payments_received(scope.operator_ids, start, end, standing_only=True)
        .order_by()
        .values("collector_id", "collector__username", "collector__first_name", "collector__last_name")
        # How much of it is awaiting hand-over, disputed and handed over (billing's hand-over parts),
        # in the same query.
        .annotate(total=Sum("amount"), count=Count("pk"), **handover_sums())
        .order_by("-total")
    )
    result = []
    for row in rows:
        parts: dict[str, Any] = dict(row)
        full = f"{row['collector__first_name'] or ''} {row['collector__last_name'] or ''}".strip()
        result.append(
            {
                "collector_id": row["collector_id"],
                "name": full or row["collector__username"] or "",
                "total": row["total"],
                "count": row["count"],
                **{part: parts[part] for part in HANDOVER_PARTS},
            }
        )
    return result
