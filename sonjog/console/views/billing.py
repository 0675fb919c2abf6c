"""Billing pages: the period summary, "Generate invoices" (confirm, then the five outcomes), run
history, the overdue list, corrections (reversals and adjustments) and payments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from sonjog.billing.models import BillingRun
from sonjog.billing.selectors import addon_revenue_by_period, collected
from sonjog.billing.services import GenerationResult
from sonjog.console import charts, selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.forms import GenerateForm
from sonjog.console.views.common import page, page_of, today_for
from sonjog.core.bounds import page_number
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start
from sonjog.flows.generation import bills_generate

# Pages of 50: more than any installation's overdue list, small enough for PostgreSQL's OFFSET.
OVERDUE_PAGES_MAX = 10_000_000


@console_view("billing.view_bill")
def billing_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    today = today_for(scope)
    rows = selectors.period_summary_rows(scope, today)
    currency = scope.home.currency
    # What add-ons brought in, apart from packages: one query over the add-on lines of these periods.
    addons = addon_revenue_by_period(scope.operator_ids, rows[-1].period_month, rows[0].period_month) if rows else {}
    return page(
        request,
        "console/billing.html",
        {
            "rows": rows,
            "summary": [(row, addons.get(row.period_month, ZERO)) for row in rows],
            "chart": charts.generated_vs_collected(list(reversed(rows[:12])), currency),
            "currency": currency,
            "form": GenerateForm(initial={"period": f"{today:%Y-%m}"}, scope=scope),
            "recent_runs": list(selectors.billing_runs(scope)[:5]),
        },
    )


@console_view("billing.add_billingrun")
def generate_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    today = today_for(scope)
    form = GenerateForm(request.POST or None, initial={"period": f"{today:%Y-%m}"}, scope=scope)
    context: dict[str, Any] = {"form": form, "currency": scope.home.currency}
    if request.method != "POST" or not form.is_valid():
        return page(request, "console/generate.html", context, status=400 if form.errors else 200)
    period: dt.date = form.cleaned_data["period"]
    operator_ids = form.operator_ids()
    context["period"] = period
    if request.POST.get("step") != "confirm":
        previews = selectors.generation_preview(scope, operator_ids, period)
        context["previews"] = previews
        context["would_create"] = sum(p.would_create for p in previews)
        context["would_backfill"] = sum(p.would_backfill for p in previews)
        context["far_ahead"] = period > add_months(month_start(today), 1)
        return page(request, "console/generate_confirm.html", context)
    total = GenerationResult(period=period)
    per_operator: list[tuple[Any, GenerationResult]] = []
    for operator in [each for each in scope.operators if each.pk in operator_ids]:
        result = bills_generate(
            operator=operator,
            period_month=period,
            trigger=BillingRun.Trigger.STAFF,
            actor=request.user,  # type: ignore[arg-type]
        )
        total.add(result)
        total.seconds += result.seconds
        per_operator.append((operator, result))
    context.update({"result": total, "per_operator": per_operator})
    return page(request, "console/generate_result.html", context)


@console_view("billing.view_bill")
def runs_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    return page(request, "console/runs.html", {"page_obj": page_of(request, selectors.billing_runs(scope))})


@console_view("billing.view_bill")
def run_view(request: HttpRequest, run_id: int) -> HttpResponse:
    scope = scope_of(request)
    run = scope.get_or_404(BillingRun.objects.select_related("operator", "actor"), pk=run_id)
    return page(request, "console/run.html", {"run": run})


@console_view("billing.view_bill")
def overdue_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    today = today_for(scope)
    number = page_number(request.GET.get("page"), OVERDUE_PAGES_MAX)
    rows, total = selectors.overdue_page(scope, today, number)
    if not rows and number > 1:
        # Past the last page: the count comes only with a page that has rows; show the last one.
        rows, total = selectors.overdue_page(scope, today, 1)
        number = max(1, (total + 49) // 50)
        if number > 1:
            rows, total = selectors.overdue_page(scope, today, number)
    pages = max(1, (total + 49) // 50)
    return page(
        request,
        "console/overdue.html",
        {
            "rows": rows,
            "total": total,
            "number": number,
            "pages": pages,
            "previous": number - 1 if number > 1 else None,
            "next": number + 1 if number < pages else None,
            "currency": scope.home.currency,
        },
    )


@console_view("billing.view_ledgerentry")
def corrections_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    kind = request.GET.get("kind", "")
    return page(
        request,
        "console/corrections.html",
        {
            "page_obj": page_of(request, selectors.corrections(scope, kind)),
            "kind": kind,
            "currency": scope.home.currency,
        },
    )


@console_view("billing.view_payment")
def payments_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    today = today_for(scope)
    # One month of payments (this one unless another is asked for), everyone's or one collector's.
    params = {name: request.GET[name] for name in ("month", "collector") if name in request.GET}
    filters = selectors.payment_filters(scope, params, defaults={"month": month_start(today)})
    month: dt.date = filters.value("month")
    collector: User | None = filters.value("collector")
    start, end = filters.received_between(month, add_months(month, 1))
    return page(
        request,
        "console/payments.html",
        {
            "form": filters.form,
            "page_obj": page_of(request, filters.qs),
            "month": month,
            "previous": add_months(month, -1),
            "next": add_months(month, 1) if add_months(month, 1) <= today else None,
            "collector": collector,
            "collected": collected(scope.operator_ids, start, end, collector_id=collector.pk if collector else None),
            "currency": scope.home.currency,
            "title": _("Payments"),
        },
    )
