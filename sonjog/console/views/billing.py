"""Billing pages: the period summary, "Generate invoices" (confirm, then the five outcomes), run
history, the overdue list, corrections (reversals and adjustments) and payments."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from sonjog.billing.filters import PaymentFilterSet
from sonjog.billing.models import BillingRun
from sonjog.billing.selectors import addon_revenue_by_period, collected
from sonjog.billing.services import GenerationResult
from sonjog.console import charts, exports, formatting, selectors, services
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.exceptions import ConsoleError
from sonjog.console.forms import GenerateForm
from sonjog.console.models import BulkAction
from sonjog.console.selectors.billing import overdue_filters, overdue_only
from sonjog.console.views.common import PER_PAGE, page, page_of, today_for
from sonjog.core.bounds import page_number
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.generation import bills_generate
from sonjog.notifications import selectors as notify

# Pages of 50: more than any installation's overdue list, small enough for PostgreSQL's OFFSET.
OVERDUE_PAGES_MAX = 10_000_000

# Rows per page a list offers; anything else is the default.
PAGE_SIZES = (25, 50, 100, 200)


def per_page_of(request: HttpRequest) -> int:
    raw = request.GET.get("per_page", "")
    return int(raw) if raw in {str(size) for size in PAGE_SIZES} else PER_PAGE


def kept_params(request: HttpRequest) -> list[tuple[str, str]]:
    """The query's parameters but the page and its size: what the page-size and jump-to-page form
    carries along so the filters stay."""
    return [
        (name, value) for name, values in request.GET.lists() if name not in ("page", "per_page") for value in values
    ]


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
        context["future"] = period > month_start(today)
        context["would_message"] = _bill_notices_estimate(scope, previews)
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


def _bill_notices_estimate(scope: Scope, previews: list[selectors.GenerationPreview]) -> int:
    """At most how many "bill generated" messages the run queues: one per subscriber billed for the
    period, for operators with an active message account (none is sent without one; a subscriber
    without a phone, or who muted messages, is skipped when they are sent)."""
    operators = {operator.pk: operator for operator in scope.operators}
    return sum(
        preview.would_create
        for preview in previews
        if preview.would_create and notify.active_accounts(operators[preview.operator_id])
    )


@console_view("billing.view_bill")
def runs_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    return page(request, "console/runs.html", {"page_obj": page_of(request, selectors.billing_runs(scope))})


@console_view("billing.view_bill")
def run_view(request: HttpRequest, run_id: int) -> HttpResponse:
    scope = scope_of(request)
    run = scope.get_or_404(BillingRun.objects.select_related("operator", "actor"), pk=run_id)
    return page(request, "console/run.html", {"run": run})


def _overdue_query(params: QueryDict) -> str:
    """The overdue list's filters as a query string, to carry into its export and mass actions."""
    kept = QueryDict(mutable=True)
    for name in ("zone", "age"):
        value = params.get(name)
        if isinstance(value, str) and value:
            kept[name] = value
    return kept.urlencode()


@console_view("billing.view_bill")
def overdue_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    today = today_for(scope)
    filters = overdue_filters(scope, request.GET, today)
    only = overdue_only(filters)
    per_page = per_page_of(request)
    number = page_number(request.GET.get("page"), OVERDUE_PAGES_MAX)
    rows, total = selectors.overdue_page(scope, today, number, per_page, only=only)
    if not rows and number > 1:
        # Past the last page: the count comes only with a page that has rows; show the last one.
        rows, total = selectors.overdue_page(scope, today, 1, per_page, only=only)
        number = max(1, (total + per_page - 1) // per_page)
        if number > 1:
            rows, total = selectors.overdue_page(scope, today, number, per_page, only=only)
    pages = max(1, (total + per_page - 1) // per_page)
    return page(
        request,
        "console/overdue.html",
        {
            "form": filters.form,
            "rows": rows,
            "total": total,
            "number": number,
            "pages": pages,
            "per_page": per_page,
            "page_sizes": PAGE_SIZES,
            "kept": kept_params(request),
            "previous": number - 1 if number > 1 else None,
            "next": number + 1 if number < pages else None,
            "filters_query": _overdue_query(request.GET),
            "currency": scope.home.currency,
        },
    )


def _overdue_everyone(request: HttpRequest, params: QueryDict) -> list[Subscriber]:
    """Every subscriber the overdue list shows for these filters, most overdue first."""
    scope = scope_of(request)
    today = today_for(scope)
    filters = overdue_filters(scope, params, today)
    rows, _total = selectors.overdue_page(scope, today, 1, None, only=overdue_only(filters))
    return rows


@console_view("billing.view_bill")
def overdue_export_view(request: HttpRequest, fmt: str) -> HttpResponseBase:
    if fmt not in ("csv", "xlsx"):
        raise Http404
    rows = exports.overdue_rows(_overdue_everyone(request, request.GET))
    if fmt == "xlsx":
        return exports.table_xlsx(exports.overdue_headers(), rows, "overdue", _("Overdue"))
    return exports.table_csv(exports.overdue_headers(), rows, "overdue")


@dataclass(frozen=True)
class SuspendPlan:
    """What "Suspend these" would do: who is suspended, and who on the list is left alone and why."""

    ids: list[int]
    vip: int
    not_active: int

    @property
    def count(self) -> int:
        return len(self.ids)


def _suspend_plan(rows: list[Subscriber]) -> SuspendPlan:
    # The overdue sweep's own rule: VIPs are never suspended; only active subscribers can be.
    ids = [row.pk for row in rows if row.service_intent == ServiceIntent.ACTIVE and not row.is_vip]
    vip = sum(1 for row in rows if row.is_vip and row.service_intent == ServiceIntent.ACTIVE)
    return SuspendPlan(ids=ids, vip=vip, not_active=len(rows) - len(ids) - vip)


@require_POST
@console_view("billing.view_bill")
def overdue_suspend_view(request: HttpRequest) -> HttpResponse:
    """'Suspend these': first a page saying what and how many, then, confirmed, one bulk action over
    the subscribers the filters pick (counted again when confirmed: the list may have changed)."""
    if not request.user.has_perm("customers.change_subscriber"):
        raise PermissionDenied
    scope = scope_of(request)
    params = QueryDict(request.POST.get("filters", ""))
    plan = _suspend_plan(_overdue_everyone(request, params))
    context: dict[str, Any] = {
        "plan": plan,
        "filters_query": _overdue_query(params),
        "form": overdue_filters(scope, params, today_for(scope)).form,
    }
    expected = request.POST.get("expected", "")
    if request.POST.get("step") != "confirm" or not plan.count or expected != str(plan.count):
        context["changed"] = request.POST.get("step") == "confirm" and expected != str(plan.count)
        return page(request, "console/overdue_suspend_confirm.html", context)
    try:
        with transaction.atomic():
            action = services.bulk_action_start(
                operator=scope.home,
                kind=BulkAction.Kind.SUSPEND,
                subscriber_ids=plan.ids,
                actor=request.user,  # type: ignore[arg-type]
            )
    except ConsoleError as error:
        messages.error(request, str(error))
        return redirect(reverse("console:overdue") + "?" + context["filters_query"])
    messages.success(
        request,
        ngettext(
            "Suspending %(count)s overdue subscriber.",
            "Suspending %(count)s overdue subscribers.",
            plan.count,
        )
        % {"count": formatting.number(plan.count)},
    )
    return redirect("console:bulk", action_id=action.pk)


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


PAYMENT_FILTERS = ("month", "day", "received_from", "received_to", "method", "collector")


def _payment_filters(request: HttpRequest) -> PaymentFilterSet:
    """Billing's payment filters as the list reads them: a month (this one unless another is asked
    for), or, when a day or a range of days is asked for, those days instead of a month."""
    scope = scope_of(request)
    params = {name: request.GET[name] for name in PAYMENT_FILTERS if request.GET.get(name)}
    days_asked = any(name in params for name in ("day", "received_from", "received_to"))
    defaults = {} if days_asked else {"month": month_start(today_for(scope))}
    return selectors.payment_filters(scope, params, defaults=defaults)


def _payments_collected(scope: Scope, filters: PaymentFilterSet) -> Any:
    """The total of the payments listed, reversed ones left out: billing's `collected` when the list
    is a range of days (and perhaps one collector), the same sum over the filtered rows otherwise."""
    method = filters.value("method")
    collector: User | None = filters.value("collector")
    bounds: tuple[dt.date, dt.date] | None = None
    if (month := filters.value("month")) is not None:
        bounds = (month, add_months(month, 1))
    elif (day := filters.value("day")) is not None:
        bounds = (day, day + dt.timedelta(days=1))
    first, last = filters.value("received_from"), filters.value("received_to")
    if method is None and bounds is not None and first is None and last is None:
        start, end = filters.received_between(*bounds)
        return collected(scope.operator_ids, start, end, collector_id=collector.pk if collector else None)
    total = filters.qs.filter(reversed=False).aggregate(total=Sum("amount"))["total"]
    return total if total is not None else ZERO


@console_view("billing.view_payment")
def payments_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    today = today_for(scope)
    filters = _payment_filters(request)
    month: dt.date | None = filters.value("month")
    collector: User | None = filters.value("collector")
    per_page = per_page_of(request)
    return page(
        request,
        "console/payments.html",
        {
            "form": filters.form,
            "page_obj": page_of(request, filters.qs, per_page=per_page),
            "per_page": per_page,
            "page_sizes": PAGE_SIZES,
            "kept": kept_params(request),
            "month": month,
            "previous": add_months(month, -1) if month else None,
            "next": add_months(month, 1) if month and add_months(month, 1) <= today else None,
            "collector": collector,
            "method": filters.value("method"),
            "first_day": filters.value("received_from") or filters.value("day"),
            "last_day": filters.value("received_to") or filters.value("day"),
            "collected": _payments_collected(scope, filters),
            "currency": scope.home.currency,
            "title": _("Payments"),
        },
    )


@console_view("billing.view_payment")
def payments_export_view(request: HttpRequest, fmt: str) -> HttpResponseBase:
    if fmt not in ("csv", "xlsx"):
        raise Http404
    scope = scope_of(request)
    payments = _payment_filters(request).qs.select_related("operator")
    rows = exports.payment_rows(payments, scope.time_zone)
    if fmt == "xlsx":
        return exports.table_xlsx(exports.payment_headers(), rows, "payments", _("Payments"))
    return exports.table_csv(exports.payment_headers(), rows, "payments")
