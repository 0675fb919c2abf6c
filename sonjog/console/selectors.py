"""Reads for the console. Every function takes the acting `Scope` (or its operator ids) and never
returns a row outside it.

The dashboard is a handful of aggregate queries, not one query per card: one pass over the scope's
subscribers (grouped by zone and router, with each subscriber's current due read from the statement
projection), one over the last twelve periods of statements, and a few small ones (today's payments,
failed commands, open alerts, names).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from sonjog.billing.models import (
    Bill,
    BillingRun,
    CreditNote,
    EntryKind,
    Invoice,
    LedgerEntry,
    Payment,
    Statement,
)
from sonjog.billing.selectors import collected, dues_cte, payments_received
from sonjog.billing.terms import terms_for
from sonjog.catalog.models import AddOn, Package
from sonjog.console.access import Scope
from sonjog.console.models import BulkAction
from sonjog.core.models import AuditEvent
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start, subscriber_period
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.network.models import NetworkAlert, OutboxCommand, OutboxStatus, Router
from sonjog.notifications.models import LowBalanceAlert

# Intent and what the router last confirmed disagree (the router side's "disabled" already covers
# suspension by profile or address list), or a subscriber who should be cut off is still online.
MISMATCH_SQL = """(
    (s.service_intent = 'active' AND s.router_state IN ('disabled', 'absent'))
    OR (s.service_intent IN ('suspended', 'disabled') AND (s.router_state = 'enabled' OR s.session_state = 'online'))
    OR (s.service_intent = 'terminated' AND s.router_state IN ('enabled', 'disabled'))
)"""
MISMATCH_Q = (
    Q(service_intent=ServiceIntent.ACTIVE, router_state__in=["disabled", "absent"])
    | Q(service_intent__in=[ServiceIntent.SUSPENDED, ServiceIntent.DISABLED], router_state="enabled")
    | Q(service_intent__in=[ServiceIntent.SUSPENDED, ServiceIntent.DISABLED], session_state="online")
    | Q(service_intent=ServiceIntent.TERMINATED, router_state__in=["enabled", "disabled"])
)

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
    from django.core.cache import cache

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


def day_bounds(scope: Scope, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in the acting operator's time zone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(scope.time_zone)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    return start, start + dt.timedelta(days=1)


def collections_by_collector(scope: Scope, day: dt.date) -> list[dict[str, Any]]:
    start, end = day_bounds(scope, day)
    rows = (
        payments_received(scope.operator_ids, start, end, standing_only=True)
        .order_by()
        .values("collector_id", "collector__username", "collector__first_name", "collector__last_name")
        .annotate(total=Sum("amount"), count=Count("pk"))
        .order_by("-total")
    )
    result = []
    for row in rows:
        full = f"{row['collector__first_name'] or ''} {row['collector__last_name'] or ''}".strip()
        result.append(
            {
                "collector_id": row["collector_id"],
                "name": full or row["collector__username"] or "",
                "total": row["total"],
                "count": row["count"],
            }
        )
    return result


# -- subscribers ------------------------------------------------------------------------------------


def latest_due_subquery() -> Subquery:
    return Subquery(
        Statement.objects.filter(subscriber_id=OuterRef("pk")).order_by("-period_month").values("closing_due")[:1]
    )


def with_due(rows: QuerySet[Subscriber], today: dt.date) -> QuerySet[Subscriber]:
    """Annotate `due`, what each subscriber owes now, the way the dashboard reads it: next month's
    statement if billed ahead, else this month's (both joined, so sorting 30,000 rows by due is one
    hash join), else a probe for the latest one (PostgreSQL stops at the first non-null)."""
    month = month_start(today)
    return rows.annotate(
        st_next=FilteredRelation("statements", condition=Q(statements__period_month=add_months(month, 1))),
        st_this=FilteredRelation("statements", condition=Q(statements__period_month=month)),
        due=Coalesce(F("st_next__closing_due"), F("st_this__closing_due"), latest_due_subquery(), Value(ZERO)),
    )


SORTS = {
    "customer_id": "customer_id",
    "name": "name",
    "package": "package__price",
    "zone": "zone__name",
    "due": "due",
    "activation_date": "activation_date",
    "status": "service_intent",
}


@dataclass
class SubscriberFilters:
    q: str = ""
    zone: Zone | None = None
    package: Package | None = None
    status: str = ""
    mode: str = ""
    online: str = ""
    due_min: Decimal | None = None
    due_max: Decimal | None = None
    joined: str = ""
    left: str = ""
    network: str = ""
    expiring: bool = False
    operator_id: int | None = None
    sort: str = "customer_id"
    # Set when the filters themselves were invalid (for example another subtree's zone): list nothing.
    nothing: bool = False


def _phone_digits(text: str) -> str:
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits.startswith("880"):
        digits = digits[3:]
    return digits.lstrip("0")


def subscriber_search_q(text: str) -> Q:
    text = text.strip()
    condition = (
        Q(name__icontains=text)
        | Q(customer_id__icontains=text)
        | Q(pppoe_username__icontains=text)
        | Q(email__iexact=text)
    )
    digits = _phone_digits(text)
    if len(digits) >= 4:
        condition |= Q(phone__contains=digits)
    return condition


def subscriber_list(scope: Scope, filters: SubscriberFilters, today: dt.date) -> QuerySet[Subscriber]:
    """The filtered, sorted subscribers; `due` (latest closing due) is annotated on every row, and
    PostgreSQL evaluates it only for the rows a page returns unless sorting or filtering needs it."""
    rows = scope.filter(Subscriber.objects.all())
    if filters.nothing:
        rows = rows.none()
    if filters.operator_id is not None:
        rows = rows.filter(operator_id=filters.operator_id)
    if filters.q:
        rows = rows.filter(subscriber_search_q(filters.q))
    if filters.zone is not None:
        rows = rows.filter(Q(zone=filters.zone) | Q(zone__parent=filters.zone))
    if filters.package is not None:
        rows = rows.filter(package=filters.package)
    if filters.status:
        rows = rows.filter(service_intent=filters.status)
    if filters.mode:
        rows = rows.filter(
            Q(billing_mode=filters.mode) | Q(billing_mode__isnull=True, operator__billing_mode=filters.mode)
        )
    if filters.online == "yes":
        rows = rows.filter(session_state="online")
    elif filters.online == "no":
        rows = rows.filter(session_state="offline")
    month = month_start(today)
    if filters.joined == "month":
        rows = rows.filter(activation_date__gte=month, activation_date__lt=add_months(month, 1))
    if filters.left == "month":
        rows = rows.filter(terminated_on__gte=month, terminated_on__lt=add_months(month, 1))
    if filters.network == "mismatch":
        rows = rows.filter(MISMATCH_Q)
    elif filters.network == "sync_failed":
        rows = rows.filter(sync_state="failed")
    if filters.expiring:
        rows = rows.filter(expires_on__gte=today, expires_on__lt=today + dt.timedelta(days=7)).exclude(
            service_intent=ServiceIntent.TERMINATED
        )
    rows = with_due(rows, today)
    if filters.due_min is not None:
        rows = rows.filter(due__gte=filters.due_min)  # type: ignore[misc]  # annotated by with_due
    if filters.due_max is not None:
        rows = rows.filter(due__lte=filters.due_max)  # type: ignore[misc]  # annotated by with_due
    sort = filters.sort if filters.sort.lstrip("-") in SORTS else "customer_id"
    descending = sort.startswith("-")
    column = SORTS[sort.lstrip("-")]
    ordering = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
    # customer_id is unique (and NOT NULL): its index gives the order, no tie-breaker needed.
    order = [F(column).desc() if descending else F(column).asc()] if column == "customer_id" else [ordering, "pk"]
    return rows.select_related("package", "zone__parent", "operator").order_by(*order)


def subscriber_picker(scope: Scope, text: str, limit: int = 8) -> list[Subscriber]:
    if len(text.strip()) < 2:
        return []
    rows = (
        scope.filter(Subscriber.objects.all())
        .filter(subscriber_search_q(text))
        .exclude(service_intent=ServiceIntent.TERMINATED)
        .select_related("package", "zone__parent")
        .order_by("customer_id")[:limit]
    )
    return list(rows)


# -- the subscriber profile -------------------------------------------------------------------------


@dataclass
class Profile:
    subscriber: Subscriber
    balance: Decimal
    statement: list[Statement]
    bills: list[Bill]
    payments: list[Payment]
    entries: list[LedgerEntry]
    events: list[AuditEvent]
    credit_notes: list[CreditNote]
    terms_mode: str
    outbox: list[OutboxCommand]


def subscriber_profile(subscriber: Subscriber) -> Profile:
    balance = LedgerEntry.objects.filter(subscriber=subscriber).aggregate(total=Sum("amount"))["total"] or ZERO
    statement = list(Statement.objects.filter(subscriber=subscriber).order_by("-period_month")[:36])
    bills: list[Bill] = list(
        Bill.objects.filter(subscriber=subscriber)
        .select_related("invoice", "invoice__credit_note", "package")
        .order_by("-period_month", "-pk")[:24]
    )
    payments: list[Payment] = list(
        Payment.objects.filter(subscriber=subscriber)
        .select_related("collector")
        .prefetch_related("entries__allocations_out__bill")
        .annotate(reversed=Exists(LedgerEntry.objects.filter(payment=OuterRef("pk"), kind=EntryKind.REVERSAL)))
        .order_by("-received_at")[:24]
    )
    for payment in payments:
        # Net per bill: a reversed payment's releases cancel its allocations out.
        net: dict[dt.date, Decimal] = {}
        for entry in payment.entries.all():
            for allocation in entry.allocations_out.all():
                month = allocation.bill.period_month
                net[month] = net.get(month, ZERO) + allocation.amount
        payment.allocated_to = sorted((m, a) for m, a in net.items() if a)  # type: ignore[attr-defined]
    entries: list[LedgerEntry] = list(
        LedgerEntry.objects.filter(subscriber=subscriber)
        .select_related("created_by")
        .annotate(is_reversed=Exists(LedgerEntry.objects.filter(reverses=OuterRef("pk"))))
        .order_by("-period_month", "-pk")[:40]
    )
    events = list(AuditEvent.objects.filter(subscriber=subscriber).select_related("actor").order_by("-created_at")[:50])
    credit_notes = list(
        CreditNote.objects.filter(invoice__bill__subscriber=subscriber).select_related("invoice", "created_by")
    )
    outbox = list(
        OutboxCommand.objects.filter(subscriber=subscriber).select_related("router").order_by("-requested_at")[:5]
    )
    return Profile(
        subscriber=subscriber,
        balance=balance,
        statement=statement,
        bills=bills,
        payments=payments,
        entries=entries,
        events=events,
        credit_notes=credit_notes,
        terms_mode=subscriber.billing_mode or subscriber.operator.billing_mode,
        outbox=outbox,
    )


def subscriber_due(subscriber_id: int) -> Decimal:
    """What to prefill a payment with: the balance when positive, else nothing."""
    total = LedgerEntry.objects.filter(subscriber_id=subscriber_id).aggregate(total=Sum("amount"))["total"] or ZERO
    return max(total, ZERO)


# -- billing --------------------------------------------------------------------------------------

_GENERATION_CANDIDATES_SQL = """
SELECT s.id, s.activation_date, s.terminated_on, s.billing_mode, s.billing_cycle, s.billing_day,
       EXISTS (SELECT 1 FROM billing_bill b WHERE b.subscriber_id = s.id AND b.period_month = %(month)s
               AND b.reversed_at IS NULL),
       (SELECT max(b.period_month) FROM billing_bill b WHERE b.subscriber_id = s.id AND b.reversed_at IS NULL)
FROM customers_subscriber s
WHERE s.operator_id = %(operator_id)s AND s.activation_date IS NOT NULL
  AND (s.terminated_on IS NULL OR s.terminated_on > %(month)s)
"""


@dataclass
class GenerationPreview:
    operator_id: int
    operator_name: str
    would_create: int = 0
    would_backfill: int = 0
    already_billed: int = 0
    future_joiners: int = 0


def generation_preview(scope: Scope, operator_ids: list[int], period_month: dt.date) -> list[GenerationPreview]:
    """What "Generate invoices" would do for each operator, without writing or locking anything: the
    same candidates and period arithmetic as the generation service, counted."""
    previews = []
    for operator in [each for each in scope.operators if each.pk in operator_ids]:
        preview = GenerationPreview(operator.pk, operator.name)
        with connection.cursor() as cursor:
            cursor.execute(_GENERATION_CANDIDATES_SQL, {"operator_id": operator.pk, "month": period_month})
            rows = cursor.fetchall()
        for _pk, activation, terminated, mode, cycle, billing_day, target_exists, last_month in rows:
            try:
                terms = terms_for(operator, mode=mode, cycle=cycle, billing_day=billing_day, activation_date=activation)
            except ValueError:
                continue
            first_month = terms.period_month_of(activation)
            if first_month > period_month:
                preview.future_joiners += 1
                continue
            if target_exists:
                preview.already_billed += 1
            elif subscriber_period(period_month, terms.anchor_day, activation, terminated) is not None:
                preview.would_create += 1
            month = add_months(last_month, 1) if last_month else first_month
            month = max(month, first_month)
            while month < period_month:
                if subscriber_period(month, terms.anchor_day, activation, terminated) is not None:
                    preview.would_backfill += 1
                month = add_months(month, 1)
        previews.append(preview)
    return previews


def billing_runs(scope: Scope) -> QuerySet[BillingRun]:
    return scope.filter(BillingRun.objects.all()).select_related("operator", "actor").order_by("-started_at")


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


_OVERDUE_LIST_SQL = """
SELECT j.id, j.due, j.overdue_amount, count(*) OVER () AS total
FROM judged j
WHERE j.is_overdue
ORDER BY j.overdue_amount DESC, j.id
LIMIT %(limit)s OFFSET %(offset)s
"""


def overdue_page(scope: Scope, today: dt.date, page: int, per_page: int = 50) -> tuple[list[Subscriber], int]:
    """Subscribers owing money past due + grace (prepaid: past validity), most overdue first."""
    dues, params = dues_cte(scope.operator_ids, today)
    params |= {"limit": per_page, "offset": (page - 1) * per_page}
    with connection.cursor() as cursor:
        cursor.execute("WITH " + dues + _OVERDUE_LIST_SQL, params)
        rows = cursor.fetchall()
    total = rows[0][3] if rows else 0
    found = Subscriber.objects.select_related("package", "zone__parent", "operator").in_bulk([row[0] for row in rows])
    result = []
    for pk, due, overdue_amount, _total in rows:
        subscriber = found[pk]
        subscriber.due = due  # type: ignore[attr-defined]
        subscriber.overdue_amount = overdue_amount  # type: ignore[attr-defined]
        result.append(subscriber)
    return result, total


def corrections(scope: Scope, kind: str = "") -> QuerySet[LedgerEntry]:
    """The bill-edit audit: every reversal and adjustment, who made it, why, and what it changed."""
    kinds = [kind] if kind in (EntryKind.REVERSAL, EntryKind.ADJUSTMENT) else [EntryKind.REVERSAL, EntryKind.ADJUSTMENT]
    return (
        scope.filter(LedgerEntry.objects.filter(kind__in=kinds))
        .select_related("subscriber", "created_by", "reverses")
        .order_by("-created_at", "-pk")
    )


def payments_in(scope: Scope, start: dt.datetime, end: dt.datetime) -> QuerySet[Payment]:
    return payments_received(scope.operator_ids, start, end).select_related("subscriber", "collector")


def day_sheet(scope: Scope, day: dt.date, collector: User | None) -> dict[str, Any]:
    start, end = day_bounds(scope, day)
    payments = payments_in(scope, start, end)
    if collector is not None:
        payments = payments.filter(collector=collector)
    rows = list(payments)
    by_method: dict[str, Decimal] = {}
    total = ZERO
    for payment in rows:
        if payment.reversed:  # type: ignore[attr-defined]
            continue
        by_method[payment.get_method_display()] = by_method.get(payment.get_method_display(), ZERO) + payment.amount
        total += payment.amount
    return {"payments": rows, "by_method": sorted(by_method.items()), "total": total}


def collectors(scope: Scope) -> QuerySet[User]:
    """Logins that may collect money for an operator in scope."""
    return (
        User.objects.filter(staff__isnull=False)
        .filter(scope.q("staff__operator") if scope.operator is not None else Q())
        .order_by("username")
    )


# -- network --------------------------------------------------------------------------------------


def routers(scope: Scope) -> QuerySet[Router]:
    return (
        scope.filter(Router.objects.all())
        .select_related("operator")
        .annotate(failed=Count("outbox", filter=Q(outbox__status=OutboxStatus.FAILED)))
        .prefetch_related("zones")
        .order_by("name")
    )


def outbox(scope: Scope, status: str = "") -> QuerySet[OutboxCommand]:
    rows = OutboxCommand.objects.filter(scope.q("subscriber__operator"))
    if status:
        rows = rows.filter(status=status)
    return rows.select_related("subscriber", "router").order_by("-requested_at", "-pk")


def mismatches(scope: Scope, only_failed: bool = False) -> QuerySet[Subscriber]:
    rows = scope.filter(Subscriber.objects.all())
    rows = rows.filter(sync_state="failed") if only_failed else rows.filter(MISMATCH_Q | Q(sync_state="failed"))
    return rows.select_related("zone__parent", "router", "package").order_by("customer_id")


# -- catalog --------------------------------------------------------------------------------------


def packages(scope: Scope) -> QuerySet[Package]:
    return (
        scope.filter(Package.objects.all())
        .select_related("operator")
        .annotate(subscriber_count=Count("subscribers", filter=~Q(subscribers__service_intent="terminated")))
        .order_by("operator__path", "price", "name")
    )


def zones(scope: Scope) -> QuerySet[Zone]:
    return (
        scope.filter(Zone.objects.all())
        .select_related("operator", "parent")
        .annotate(subscriber_count=Count("subscribers"))
        .order_by("operator__path", "parent__name", "name")
    )


def bulk_actions(scope: Scope) -> QuerySet[BulkAction]:
    return scope.filter(BulkAction.objects.all()).select_related("actor", "package").order_by("-created_at")


def invoice_for(scope: Scope, invoice_id: int) -> Invoice:
    return scope.get_or_404(
        Invoice.objects.select_related("bill__subscriber__operator", "bill__subscriber__zone__parent", "bill__package"),
        pk=invoice_id,
    )


def addons(scope: Scope) -> QuerySet[AddOn]:
    """The add-on catalogue in scope, each with how many subscribers have it running."""
    return (
        scope.filter(AddOn.objects.all())
        .select_related("operator")
        .annotate(subscriber_count=Count("subscriptions", filter=Q(subscriptions__end_date__isnull=True)))
        .order_by("operator__path", "name")
    )
