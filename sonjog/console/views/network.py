"""Routers (with a connection test), the command outbox (with retry) and intent/router mismatches."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.console import selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.views.common import page, page_of, safe_next
from sonjog.network.exceptions import NetworkError
from sonjog.network.models import OutboxCommand, OutboxStatus, Router
from sonjog.network.services import outbox_retry, router_connection_test


@console_view("network.view_router")
def routers_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    board_online = {}
    for row in selectors.online_by_router(scope):
        board_online[row.object_id] = row.value
    routers = list(selectors.routers(scope))
    for router in routers:
        router.online_now = board_online.get(router.pk, 0)  # type: ignore[attr-defined]
    return page(request, "console/routers.html", {"routers": routers})


@require_POST
@console_view("network.change_router")
def router_test_view(request: HttpRequest, router_id: int) -> HttpResponse:
    router = scope_of(request).get_or_404(Router.objects.all(), pk=router_id)
    result = router_connection_test(router=router)
    if result.ok:
        messages.success(
            request, _("%(router)s answered in %(ms)s ms.") % {"router": router.name, "ms": f"{result.latency_ms:.0f}"}
        )
    else:
        messages.error(request, _("%(router)s: %(message)s") % {"router": router.name, "message": result.message})
    return redirect("console:routers")


@console_view("network.view_outboxcommand")
def outbox_view(request: HttpRequest) -> HttpResponse:
    filters = selectors.outbox_filters(scope_of(request), request.GET)
    return page(
        request,
        "console/outbox.html",
        {
            "form": filters.form,
            "page_obj": page_of(request, filters.qs),
            "status": filters.value("status") or "",
            "statuses": OutboxStatus.choices,
        },
    )


@require_POST
@console_view("network.change_outboxcommand")
def outbox_retry_view(request: HttpRequest, command_id: int) -> HttpResponse:
    command = scope_of(request).get_or_404(OutboxCommand.objects.all(), "subscriber__operator", pk=command_id)
    try:
        outbox_retry(command)
    except NetworkError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Command #%(id)s queued again.") % {"id": command.pk})
    return redirect(safe_next(request, "/network/outbox/?status=failed"))


@console_view("customers.view_subscriber")
def mismatches_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    only_failed = request.GET.get("only") == "failed"
    rows = selectors.mismatches(scope, only_failed)
    return page(request, "console/mismatches.html", {"page_obj": page_of(request, rows), "only_failed": only_failed})


@console_view()
def tickets_view(request: HttpRequest) -> HttpResponse:
    return page(request, "console/tickets.html", {})
