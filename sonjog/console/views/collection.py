"""Collection: find a subscriber fast, take the money, print the receipt; the collector's day sheet."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from sonjog.console import selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.forms import DaySheetForm
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
    collectors = selectors.collectors(scope)
    form = DaySheetForm(request.GET or None, collectors=collectors)
    day = today_for(scope)
    collector = None
    if form.is_bound and form.is_valid():
        day = form.cleaned_data["day"] or day
        collector = form.cleaned_data["collector"]
    elif not form.is_bound and not request.user.has_perm("billing.view_bill"):
        # A collector opens their own sheet by default.
        collector = request.user
    sheet = selectors.day_sheet(scope, day, collector)  # type: ignore[arg-type]
    return page(
        request,
        "console/day_sheet.html",
        {"form": form, "day": day, "collector": collector, "sheet": sheet, "currency": scope.home.currency},
    )
