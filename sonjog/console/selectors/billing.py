"""Reads for the billing pages: "Generate invoices" previews, run history, the overdue list,
corrections, payments (the list and the day sheet, through billing's `PaymentFilterSet`) and
invoices. The figures themselves are billing's; this module shapes them for pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import QuerySet

from sonjog.billing.filters import OverdueFilterSet, PaymentFilterSet
from sonjog.billing.models import BillingRun, EntryKind, Invoice, LedgerEntry, Payment
from sonjog.billing.selectors import dues_cte, with_reversed
from sonjog.billing.services.generation import bill_generation_preview
from sonjog.console.access import Scope
from sonjog.core.filters import day_start
from sonjog.core.money import ZERO
from sonjog.customers.models import Subscriber


def day_bounds(scope: Scope, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in the acting operator's time zone."""
    return day_start(day, scope.time_zone), day_start(day + dt.timedelta(days=1), scope.time_zone)


@dataclass
class GenerationPreview:
    operator_id: int
    operator_name: str
    would_create: int = 0
    would_backfill: int = 0
    already_billed: int = 0
    future_joiners: int = 0


def generation_preview(scope: Scope, operator_ids: list[int], period_month: dt.date) -> list[GenerationPreview]:
    """What "Generate invoices" would do for each operator, without writing or locking anything:
    billing's own planner, counted (`bill_generation_preview`)."""
    previews = []
    for operator in [each for each in scope.operators if each.pk in operator_ids]:
        counted = bill_generation_preview(operator=operator, period_month=period_month)
        previews.append(
            GenerationPreview(
                operator.pk,
                operator.name,
                would_create=counted.created,
                would_backfill=counted.backfilled,
                already_billed=counted.skipped_existing,
                future_joiners=counted.skipped_future_joiners,
            )
        )
    return previews


def billing_runs(scope: Scope) -> QuerySet[BillingRun]:
    return scope.filter(BillingRun.objects.all()).select_related("operator", "actor").order_by("-started_at")


_OVERDUE_LIST_SQL = """
SELECT j.id, j.due, j.overdue_amount, count(*) OVER () AS total
FROM judged j
WHERE j.is_overdue
ORDER BY j.overdue_amount DESC, j.id
LIMIT %(limit)s OFFSET %(offset)s
"""


def overdue_page(
    scope: Scope, today: dt.date, page: int, per_page: int | None = 50, *, only: list[int] | None = None
) -> tuple[list[Subscriber], int]:
    """Subscribers owing money past due + grace (prepaid: past validity), most overdue first; `only`
    narrows them to these subscribers (the overdue list's filters), `per_page` None is every row."""
    dues, params = dues_cte(scope.operator_ids, today, only=only)
    params |= {"limit": per_page, "offset": (page - 1) * per_page if per_page else 0}
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


def overdue_filters(scope: Scope, params: Mapping[str, Any] | None, today: dt.date) -> OverdueFilterSet:
    """Billing's overdue-list filters over the subscribers in scope."""
    return OverdueFilterSet(
        params or None, scope.filter(Subscriber.objects.all()), operator_ids=scope.operator_ids, today=today
    )


def overdue_only(filters: OverdueFilterSet) -> list[int] | None:
    """The subscribers the overdue list is narrowed to, or None for everyone in scope."""
    return list(filters.qs.values_list("pk", flat=True)) if filters.narrowed else None


def corrections(scope: Scope, kind: str = "") -> QuerySet[LedgerEntry]:
    """The bill-edit audit: every reversal and adjustment, who made it, why, and what it changed."""
    kinds = [kind] if kind in (EntryKind.REVERSAL, EntryKind.ADJUSTMENT) else [EntryKind.REVERSAL, EntryKind.ADJUSTMENT]
    return (
        scope.filter(LedgerEntry.objects.filter(kind__in=kinds))
        .select_related("subscriber", "created_by", "reverses")
        .order_by("-created_at", "-pk")
    )


def payment_filters(
    scope: Scope, params: Mapping[str, Any] | None, *, defaults: Mapping[str, Any] | None = None
) -> PaymentFilterSet:
    """Billing's payment filters over every payment in scope (each annotated `reversed`, newest first),
    dates in the acting operator's time zone."""
    rows = with_reversed(Payment.objects.filter(operator_id__in=scope.operator_ids))
    return PaymentFilterSet(
        params,
        rows.select_related("subscriber", "collector"),
        operator_ids=scope.operator_ids,
        time_zone=scope.time_zone,
        defaults=defaults,
    )


def payment_sheet(payments: QuerySet[Payment]) -> dict[str, Any]:
    """The payments with their totals by method and overall, reversed ones listed but not counted."""
    rows = list(payments)
    by_method: dict[str, Decimal] = {}
    total = ZERO
    for payment in rows:
        if payment.reversed:  # type: ignore[attr-defined]
            continue
        by_method[payment.get_method_display()] = by_method.get(payment.get_method_display(), ZERO) + payment.amount
        total += payment.amount
    return {"payments": rows, "by_method": sorted(by_method.items()), "total": total}


def day_sheet(scope: Scope, day: dt.date, collector: User | None) -> dict[str, Any]:
    """One business day's payments (one collector's, or everyone's) with their totals."""
    return payment_sheet(payment_filters(scope, None, defaults={"day": day, "collector": collector}).qs)


def invoice_for(scope: Scope, invoice_id: int) -> Invoice:
    return scope.get_or_404(
        Invoice.objects.select_related("bill__subscriber__operator", "bill__subscriber__zone__parent", "bill__package"),
        pk=invoice_id,
    )
