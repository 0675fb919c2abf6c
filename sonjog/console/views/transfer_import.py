"""The Import page: upload a subscriber list (or read a MikroTik router's PPP secrets), match its
columns to fields on screen, check every row (the dry run), import with progress, undo.

Batches, operators and routers named by id are looked up inside the caller's scope (404 otherwise)."""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.views.common import page
from sonjog.customers.models import ServiceIntent
from sonjog.network.models import Router
from sonjog.operators.models import Operator
from sonjog.transfer.columns import FIELDS
from sonjog.transfer.exceptions import TransferError
from sonjog.transfer.imports import (
    batch_configure,
    batch_from_file,
    batch_from_router,
    import_check,
    import_queue,
    import_touched,
    import_undo,
)
from sonjog.transfer.models import ImportBatch
from sonjog.transfer.tables import MAX_FILE_BYTES

ADD = "customers.add_subscriber"
PROBLEMS_SHOWN = 500


def _operator_choices(scope: Scope) -> list[tuple[int, str]]:
    return [(operator.pk, operator.name) for operator in scope.operators]


def _operator(scope: Scope, operator_id: int) -> Operator:
    # The form's choices are the scope's operators: anything else never validates.
    return next(operator for operator in scope.operators if operator.pk == operator_id)


class UploadForm(forms.Form):
    operator = forms.TypedChoiceField(label=gettext_lazy("Operator"), coerce=int)
    file = forms.FileField(label=gettext_lazy("CSV or XLSX file"))

    def __init__(self, *args: Any, scope: Scope, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["operator"].choices = _operator_choices(scope)  # type: ignore[attr-defined]

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(size)s MB; split it.") % {"size": MAX_FILE_BYTES // (1024 * 1024)}
            )
        return upload


class RouterForm(forms.Form):
    operator = forms.TypedChoiceField(label=gettext_lazy("Operator"), coerce=int)
    router = forms.TypedChoiceField(label=gettext_lazy("Router"), coerce=int)

    def __init__(self, *args: Any, scope: Scope, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["operator"].choices = _operator_choices(scope)  # type: ignore[attr-defined]
        routers = scope.filter(Router.objects.filter(is_active=True, driver="mikrotik")).order_by("name")
        self.fields["router"].choices = [(router.pk, router.name) for router in routers]  # type: ignore[attr-defined]


def _options_form(batch: ImportBatch, data: Any = None) -> forms.Form:
    """One select per field (the file's columns to choose from) and the batch's options."""
    columns = [("", _("— not in the file —"))] + [(column, column) for column in batch.header]
    form = forms.Form(data)
    for field in FIELDS:
        form.fields[f"map_{field.key}"] = forms.ChoiceField(
            label=str(field.label), choices=columns, required=False, initial=batch.mapping.get(field.key, "")
        )
    form.fields["billing_from"] = forms.ChoiceField(
        label=_("Sonjog bills them from"),
        choices=[
            ("next", _("the next period (the old system billed this one)")),
            ("current", _("this period (the next generation run bills it)")),
        ],
        initial=batch.options.get("billing_from", "next"),
    )
    form.fields["balance_sign"] = forms.ChoiceField(
        label=_("A positive balance in the file means"),
        choices=[("owes", _("the subscriber owes it")), ("credit", _("the subscriber has it in credit"))],
        initial=batch.options.get("balance_sign", "owes"),
    )
    form.fields["create_zones"] = forms.BooleanField(
        label=_("Create the zones the file names that do not exist yet"),
        required=False,
        initial=batch.options.get("create_zones", True),
    )
    return form


@console_view(ADD)
def import_list_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    upload = UploadForm(scope=scope, initial={"operator": scope.home.pk})
    from_router = RouterForm(scope=scope, initial={"operator": scope.home.pk})
    if request.method == "POST":
        kind = request.POST.get("kind")
        try:
            if kind == "router":
                from_router = RouterForm(request.POST, scope=scope)
                if from_router.is_valid():
                    operator = _operator(scope, from_router.cleaned_data["operator"])
                    router = scope.get_or_404(Router.objects.all(), pk=from_router.cleaned_data["router"])
                    batch = batch_from_router(router=router, operator=operator, actor=request.user)  # type: ignore[arg-type]
                    return redirect("console:import_batch", batch_id=batch.pk)
            else:
                upload = UploadForm(request.POST, request.FILES, scope=scope)
                if upload.is_valid():
                    operator = _operator(scope, upload.cleaned_data["operator"])
                    file = upload.cleaned_data["file"]
                    batch = batch_from_file(
                        operator=operator,
                        file_name=file.name,
                        data=file.read(),
                        actor=request.user,  # type: ignore[arg-type]
                    )
                    return redirect("console:import_batch", batch_id=batch.pk)
        except TransferError as error:
            messages.error(request, str(error))
    batches = scope.filter(ImportBatch.objects.select_related("operator", "created_by")).defer("rows")[:50]
    return page(
        request,
        "console/import.html",
        {"upload": upload, "from_router": from_router, "batches": batches},
    )


def _batch(request: HttpRequest, batch_id: int) -> ImportBatch:
    return scope_of(request).get_or_404(ImportBatch.objects.select_related("operator"), pk=batch_id)


@console_view(ADD)
def import_batch_view(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _batch(request, batch_id)
    if request.htmx and batch.status != ImportBatch.Status.DRAFT:  # type: ignore[attr-defined]
        return page(request, "console/partials/import_progress.html", {"batch": batch})
    form = _options_form(batch)
    result = None
    if request.method == "POST" and batch.status == ImportBatch.Status.DRAFT:
        form = _options_form(batch, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            mapping = {field.key: data[f"map_{field.key}"] for field in FIELDS}
            options = {key: data[key] for key in ("billing_from", "balance_sign", "create_zones")}
            try:
                batch = batch_configure(batch=batch, mapping=mapping, options=options)
                result = import_check(batch)
            except TransferError as error:
                form.add_error(None, str(error))
            else:
                if request.POST.get("apply") and not result.problems:
                    import_queue(batch=batch, actor=request.user)  # type: ignore[arg-type]
                    messages.success(
                        request,
                        ngettext(
                            "Importing %(count)s subscriber.", "Importing %(count)s subscribers.", len(result.ready)
                        )
                        % {"count": len(result.ready)},
                    )
                    return redirect("console:import_batch", batch_id=batch.pk)
    touched = import_touched(batch) if batch.status == ImportBatch.Status.APPLIED else ""
    return page(
        request,
        "console/import_batch.html",
        {
            "batch": batch,
            "form": form,
            "result": result,
            "problems": result.problems[:PROBLEMS_SHOWN] if result else [],
            "more_problems": max(len(result.problems) - PROBLEMS_SHOWN, 0) if result else 0,
            "preview": batch.rows[:5],
            "touched": touched,
            "statuses": [(ServiceIntent(key).label, count) for key, count in result.by_status.items()]
            if result
            else [],
        },
    )


@console_view(ADD)
def import_problems_view(request: HttpRequest, batch_id: int) -> HttpResponseBase:
    """Every problem of the dry run as CSV, to fix the file beside it."""
    batch = _batch(request, batch_id)
    try:
        result = import_check(batch)
    except TransferError as error:
        messages.error(request, str(error))
        return redirect("console:import_batch", batch_id=batch.pk)

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())
    lines = [writer.writerow([_("Row"), _("Field"), _("Problem")])]
    lines += [writer.writerow([problem.row, problem.field, problem.message]) for problem in result.problems]
    response = StreamingHttpResponse(("\ufeff", *lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{batch.pk}-problems.csv"'
    return response


@require_POST
@console_view(ADD)
def import_undo_view(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _batch(request, batch_id)
    try:
        removed = import_undo(batch=batch, actor=request.user)  # type: ignore[arg-type]
    except TransferError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            ngettext(
                "Import undone: %(count)s subscriber removed.", "Import undone: %(count)s subscribers removed.", removed
            )
            % {"count": removed},
        )
    return redirect("console:import_batch", batch_id=batch.pk)
