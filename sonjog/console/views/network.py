"""Routers (add, edit, deactivate, test the connection, read what the router holds, back up and download
their configuration), the operator's backup destination, the command outbox (with retry) and
intent/router mismatches."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.console import selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.forms.network import RouterActiveForm, RouterForm, router_initial
from sonjog.console.forms.router_backups import BackupDestinationForm, destination_initial
from sonjog.console.views.common import page, page_of, safe_next
from sonjog.network.alerts import router_connection_check
from sonjog.network.backups import (
    EXPORTING_DRIVERS,
    backup_destination_set,
    backup_destination_test,
    backup_file_name,
    backups_kept,
    router_backup_take,
)
from sonjog.network.exceptions import BackupFailed, NetworkError, RouterNameTaken
from sonjog.network.models import BackupDestination, OutboxCommand, OutboxStatus, Router, RouterBackup
from sonjog.network.profiles import router_profiles_wanted
from sonjog.network.router_io import DriverError
from sonjog.network.services import (
    outbox_retry,
    router_create,
    router_read,
    router_set_active,
    router_update,
)


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
    result = router_connection_check(router=router)
    if result.ok:
        messages.success(
            request, _("%(router)s answered in %(ms)s ms.") % {"router": router.name, "ms": f"{result.latency_ms:.0f}"}
        )
    else:
        messages.error(request, _("%(router)s: %(message)s") % {"router": router.name, "message": result.message})
    return redirect("console:routers")


@console_view("network.add_router")
def router_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    form = RouterForm(request.POST or None, scope=scope)
    if request.method == "POST" and form.is_valid():
        try:
            router = router_create(
                operator=form.owner(),
                password=form.cleaned_data["password"],
                radius_secret=form.cleaned_data["radius_secret"],
                zones=form.cleaned_data["zones"],
                actor=request.user,  # type: ignore[arg-type]
                **form.settings(),
            )
        except NetworkError as error:
            form.add_error("name" if isinstance(error, RouterNameTaken) else None, str(error))
        else:
            messages.success(
                request,
                _("Router %(name)s added. Test its connection to see that Sonjog can reach it.")
                % {"name": router.name},
            )
            return redirect("console:routers")
    return page(
        request, "console/form_page.html", {"form": form, "title": _("New router")}, status=400 if form.errors else 200
    )


@console_view("network.change_router")
def router_edit_view(request: HttpRequest, router_id: int) -> HttpResponse:
    scope = scope_of(request)
    router = scope.get_or_404(Router.objects.select_related("operator"), pk=router_id)
    form = RouterForm(request.POST or None, initial=router_initial(router), scope=scope, editing=router)
    if request.method == "POST" and form.is_valid():
        try:
            router_update(
                router=router,
                password=form.cleaned_data["password"] or None,
                radius_secret=form.cleaned_data["radius_secret"] or None,
                zones=form.cleaned_data["zones"],
                actor=request.user,  # type: ignore[arg-type]
                **form.settings(),
            )
        except NetworkError as error:
            form.add_error("name" if isinstance(error, RouterNameTaken) else None, str(error))
        else:
            messages.success(request, _("Router %(name)s saved.") % {"name": form.cleaned_data["name"]})
            return redirect("console:routers")
    return page(
        request,
        "console/form_page.html",
        {"form": form, "title": _("Edit router %(name)s") % {"name": router.name}},
        status=400 if form.errors else 200,
    )


@require_POST
@console_view("network.change_router")
def router_active_view(request: HttpRequest, router_id: int) -> HttpResponse:
    router = scope_of(request).get_or_404(Router.objects.all(), pk=router_id)
    form = RouterActiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose active or inactive."))
        return redirect("console:routers")
    active = form.cleaned_data["active"]
    router_set_active(router=router, is_active=active, actor=request.user)  # type: ignore[arg-type]
    if active:
        messages.success(
            request, _("%(name)s is active again; its package profiles are being checked.") % {"name": router.name}
        )
    else:
        messages.success(
            request,
            _(
                "%(name)s is inactive: Sonjog sends it nothing; its waiting commands went to the routers that serve "
                "those subscribers now."
            )
            % {"name": router.name},
        )
    return redirect("console:routers")


@console_view("network.view_router")
def router_read_view(request: HttpRequest, router_id: int) -> HttpResponse:
    """What the router holds now: identity and resources, and its PPP profiles next to the ones the
    packages want there."""
    router = scope_of(request).get_or_404(Router.objects.select_related("operator"), pk=router_id)
    wanted = router_profiles_wanted(router)
    reading, error = None, ""
    try:
        reading = router_read(router=router)
    except DriverError as failure:
        error = str(failure)
    rows = []
    if reading is not None:
        for name in sorted(set(reading.profiles) | set(wanted)):
            have = reading.profiles.get(name)
            want = wanted.get(name)
            rows.append(
                {
                    "name": name,
                    "rate_limit": (have or {}).get("rate-limit", ""),
                    "address_list": (have or {}).get("address-list", ""),
                    "local_address": (have or {}).get("local-address", ""),
                    "remote_address": (have or {}).get("remote-address", ""),
                    "on_router": have is not None,
                    "wanted": want.rate_limit if want is not None and want.rate_limit else ("*" if want else ""),
                }
            )
    return page(
        request,
        "console/router_read.html",
        {
            "router": router,
            "reading": reading,
            # RouterOS names ("cpu-load") as template names ("cpu_load").
            "details": {key.replace("-", "_"): value for key, value in (reading.details if reading else {}).items()},
            "error": error,
            "profiles": rows,
        },
    )


@console_view("network.view_router")
def router_backups_view(request: HttpRequest, router_id: int) -> HttpResponse:
    """The router's kept backups, newest first, with where each copy went."""
    router = scope_of(request).get_or_404(Router.objects.select_related("operator"), pk=router_id)
    backups = list(
        RouterBackup.objects.filter(router=router)
        .order_by("-taken_at", "-pk")
        .only("pk", "router_id", "taken_at", "requested_by", "upload_ok", "upload_path", "upload_error")
    )
    for backup in backups:
        backup.file_name = backup_file_name(router, backup.taken_at)  # type: ignore[attr-defined]
    return page(
        request,
        "console/router_backups.html",
        {
            "router": router,
            "backups": backups,
            "kept": backups_kept(router.operator_id),
            "can_export": router.driver in EXPORTING_DRIVERS and not router.record_only,
        },
    )


@require_POST
@console_view("network.change_router")
def router_backup_view(request: HttpRequest, router_id: int) -> HttpResponse:
    router = scope_of(request).get_or_404(Router.objects.select_related("operator"), pk=router_id)
    try:
        backup = router_backup_take(
            router=router,
            requested_by=f"console: {request.user.get_username()}",
            actor=request.user,  # type: ignore[arg-type]
        )
    except BackupFailed as error:
        messages.error(request, str(error))
    else:
        if backup.upload_ok is False:
            messages.warning(
                request,
                _("%(router)s backed up, but the copy to the backup server failed: %(error)s")
                % {"router": router.name, "error": backup.upload_error},
            )
        elif backup.upload_ok:
            messages.success(
                request,
                _("%(router)s backed up and copied to %(path)s.") % {"router": router.name, "path": backup.upload_path},
            )
        else:
            messages.success(request, _("%(router)s backed up.") % {"router": router.name})
    return redirect(safe_next(request, reverse("console:router_backups", args=[router.pk])))


@console_view("network.change_router")
def router_backup_download_view(request: HttpRequest, router_id: int, backup_id: int) -> HttpResponse:
    """One backup as the .rsc file it is; a backup of another subtree's router is a 404."""
    backup = scope_of(request).get_or_404(
        RouterBackup.objects.select_related("router__operator"), "router__operator", pk=backup_id, router_id=router_id
    )
    response = HttpResponse(backup.content, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{backup_file_name(backup.router, backup.taken_at)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@console_view("network.change_router")
def backup_destination_view(request: HttpRequest) -> HttpResponse:
    """The acting operator's backup destination (FTP/FTPS) and how many backups are kept per router."""
    operator = scope_of(request).home
    destination = BackupDestination.objects.filter(operator=operator).first()
    form = BackupDestinationForm(request.POST or None, initial=destination_initial(destination), editing=destination)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            backup_destination_set(
                operator=operator,
                enabled=data["enabled"],
                protocol=data["protocol"],
                host=data["host"],
                port=data["port"],
                username=data["username"],
                password=data["password"] or None,
                directory=data["directory"],
                keep_count=data["keep_count"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except NetworkError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Backup destination saved. Test it to see that Sonjog can write there."))
            return redirect("console:backup_destination")
    return page(
        request,
        "console/router_backup_destination.html",
        {"form": form, "destination": destination, "operator": operator},
        status=400 if form.errors else 200,
    )


@require_POST
@console_view("network.change_router")
def backup_destination_test_view(request: HttpRequest) -> HttpResponse:
    result = backup_destination_test(operator=scope_of(request).home)
    if result.ok:
        messages.success(request, result.message)
    else:
        messages.error(request, _("The backup destination does not work: %(error)s") % {"error": result.message})
    return redirect("console:backup_destination")


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
