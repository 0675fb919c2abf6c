"""Collection: find a subscriber fast, take the money, print the receipt; the collector's day sheet."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from sonjog.billing.selectors import with_due
from sonjog.console import selectors
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.views.common import page, today_for
from sonjog.core.bounds import OutOfBounds, query_text
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.customers.selectors import subscriber_search_q, subscriber_search_rank

# How many matches the payment picker lists; past that it says how many more there are.
PICKER_LIMIT = 8


def payment_picker(scope: Scope, text: str, limit: int = PICKER_LIMIT) -> tuple[list[Subscriber], int]:
    """Who a typed search finds to take money from (never the terminated), the exact customer ID,
    PPPoE username or phone first, each with `due` (what it owes now, billing's definition), and how
    many more matched than are listed."""
    if len(text.strip()) < 2:
        return [], 0
    rows = (
        scope.filter(Subscriber.objects.all())
        .filter(subscriber_search_q(text))
        .exclude(service_intent=ServiceIntent.TERMINATED)
    )
    found = list(
        with_due(rows, today_for(scope))
        .select_related("package", "zone__parent", "operator")
        .order_by(subscriber_search_rank(text), "customer_id")[: limit + 1]
    )
    if len(found) <= limit:
        return found, 0
    return found[:limit], rows.count() - limit


@console_view("billing.add_payment")
def collect_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    error = ""
    try:
        text = query_text(request.GET.get("q", ""))
    except OutOfBounds as refused:
        text, error = "", str(refused)
    found, more = payment_picker(scope, text)
    context = {
        "q": text,
        "found": found,
        "more": more,
        "spans_many": scope.spans_many,
        "error": error,
        "currency": scope.home.currency,
    }
    if request.htmx:  # type: ignore[attr-defined]
        # A live-search fragment: htmx swaps in only a 2xx answer, and this one carries the message.
        return page(request, "console/partials/collect_results.html", context)
    return page(request, "console/collect.html", context, status=400 if error else 200)


@console_view()
def day_sheet_view(request: HttpRequest) -> HttpResponse:
    """A day's payments. Who may see payments sees everyone's (their own by default when they do not
    see the bills); a login that only takes payments (a collector) sees its own and nobody else's."""
    scope = scope_of(request)
    sees_payments = request.user.has_perm("billing.view_payment")
    if not sees_payments and not request.user.has_perm("billing.add_payment"):
        raise PermissionDenied
    defaults: dict[str, Any] = {"day": today_for(scope)}
    if not sees_payments or (not request.GET and not request.user.has_perm("billing.view_bill")):
        defaults["collector"] = request.user
    names = ("day", "collector") if sees_payments else ("day",)
    params = {name: request.GET[name] for name in names if name in request.GET}
    filters = selectors.payment_filters(scope, params or None, defaults=defaults)
    form = filters.form
    day, collector = filters.value("day"), filters.value("collector")
    payments = filters.qs if sees_payments else filters.qs.filter(collector=request.user)
    sheet = selectors.payment_sheet(payments)
    return page(
        request,
        "console/day_sheet.html",
        {
            "form": form,
            "day": day,
            "collector": collector if sees_payments else request.user,
            "own_only": not sees_payments,
            "sheet": sheet,
            "currency": scope.home.currency,
        },
    )
