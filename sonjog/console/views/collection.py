"""Collection: find a subscriber fast, take the money, print the receipt; the collector's day sheet."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from sonjog.console import selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.views.common import page, today_for
from sonjog.core.bounds import OutOfBounds, query_text


@console_view("billing.add_payment")
def collect_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    error = ""
    try:
        text = query_text(request.GET.get("q", ""))
    except OutOfBounds as refused:
        text, error = "", str(refused)
    found = selectors.subscriber_picker(scope, text)
    context = {"q": text, "found": found, "error": error, "currency": scope.home.currency}
    if request.htmx:  # type: ignore[attr-defined]
        # A live-search fragment: htmx swaps in only a 2xx answer, and this one carries the message.
        return page(request, "console/partials/collect_results.html", context)
    return page(request, "console/collect.html", context, status=400 if error else 200)


@console_view("billing.view_payment")
def day_sheet_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    defaults: dict[str, Any] = {"day": today_for(scope)}
    if not request.GET and not request.user.has_perm("billing.view_bill"):
        # A collector opens their own sheet by default.
        defaults["collector"] = request.user
    params = {name: request.GET[name] for name in ("day", "collector") if name in request.GET}
    filters = selectors.payment_filters(scope, params or None, defaults=defaults)
    form = filters.form
    day, collector = filters.value("day"), filters.value("collector")
    sheet = selectors.payment_sheet(filters.qs)
    return page(
        request,
        "console/day_sheet.html",
        {"form": form, "day": day, "collector": collector, "sheet": sheet, "currency": scope.home.currency},
    )
