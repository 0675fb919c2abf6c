"""The Operators page: the caller's part of the operator tree; creating resellers and sub-resellers
under it, editing any operator's settings (billing settings from the next period, ADR 0011) and its
console sections (module access, from above only), deactivating and reactivating them.

Every operator named by id is looked up inside the caller's scope: anything else is a 404, the same
as a missing one, so a reseller never learns of its parent or its siblings."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from sonjog.automation.operator_settings import (
    billing_settings_effective_from,
    operator_settings_change,
    pending_change,
    planned_settings,
)
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.formatting import local_date
from sonjog.console.forms.operators import OperatorEditForm, OwnerForm, ResellerCreateForm
from sonjog.console.selectors.operators import (
    operator_in_scope,
    operator_rows,
    settings_change_lines,
    settings_change_recent,
)
from sonjog.console.views.common import page, today_for
from sonjog.core.bounds import query_id
from sonjog.operators.billing_settings import BILLING_SETTINGS
from sonjog.operators.exceptions import OperatorError
from sonjog.operators.models import Operator, OperatorSettingsChange, SettingsChangeStatus
from sonjog.operators.services import (
    INHERITED_SETTINGS,
    OPERATOR_SETTINGS,
    operator_set_active,
    operator_settings_cancel,
    reseller_create,
)

MANAGE = "operators.manage_operators"

_GROUPS: list[tuple[Any, tuple[str, ...]]] = [
    (gettext_lazy("Operator"), ("parent", "code", "name", "currency", "time_zone", "phone_country")),
    (
        gettext_lazy("Customer IDs"),
        ("customer_id_prefix", "customer_id_infix", "customer_id_postfix", "customer_id_digits"),
    ),
    (
        gettext_lazy("Billing"),
        ("billing_mode", "billing_cycle", "billing_day", "due_days", "grace_days", "vat_rate", "vat_inclusive"),
    ),
    (gettext_lazy("Field collection"), ("collection_approval",)),
    (gettext_lazy("On invoices and receipts"), ("bin_number", "document_address", "document_phone")),
    (gettext_lazy("Console sections"), ("modules",)),
    (gettext_lazy("First owner login"), ("owner_username", "owner_password", "owner_email")),
]


def field_groups(*forms_: forms.Form) -> list[tuple[Any, list[forms.BoundField]]]:
    """The forms' fields in the page's fieldsets, skipping fields a form does not have."""
    groups = []
    for title, names in _GROUPS:
        fields = [form[name] for name in names for form in forms_ if name in form.fields]
        if fields:
            groups.append((title, fields))
    return groups


def _operator_or_404(scope: Scope, operator_id: int) -> Operator:
    operator = operator_in_scope(scope, operator_id)
    if operator is None:
        raise Http404
    return operator


def _is_own(scope: Scope, operator: Operator) -> bool:
    return scope.operator is not None and scope.operator.pk == operator.pk


@console_view(MANAGE)
def operators_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    return page(request, "console/operators.html", {"rows": operator_rows(scope)})


@sensitive_post_parameters("owner_password")
@console_view(MANAGE)
def operator_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    parent = _operator_or_404(scope, query_id(request.GET.get("parent")) or scope.home.pk)
    initial: dict[str, Any] = {name: getattr(parent, name) for name in INHERITED_SETTINGS}
    initial["modules"] = list(parent.modules)
    data = request.POST if request.method == "POST" else None
    form = ResellerCreateForm(data, scope=scope, parent=parent, initial=initial)
    owner_form = OwnerForm(data, require=False)
    if data is not None and form.is_valid() & owner_form.is_valid():
        values = form.settings()
        owner = owner_form.cleaned_data
        try:
            operator = reseller_create(
                parent=form.cleaned_data["parent"],
                code=form.cleaned_data["code"],
                actor=request.user,  # type: ignore[arg-type]
                owner_username=owner.get("owner_username") or "",
                owner_password=owner.get("owner_password") or "",
                owner_email=owner.get("owner_email") or "",
                **values,
            )
        except OperatorError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Reseller %(name)s created.") % {"name": operator.name})
            return redirect("console:operators")
    context = {
        "form": form,
        "groups": field_groups(form, owner_form),
        "title": _("New reseller"),
        "parent": parent,
    }
    return page(request, "console/operator_form.html", context, status=400 if form.errors or owner_form.errors else 200)


@console_view(MANAGE)
def operator_edit_view(request: HttpRequest, operator_id: int) -> HttpResponse:
    scope = scope_of(request)
    operator = _operator_or_404(scope, operator_id)
    modules_editable = not _is_own(scope, operator) and operator.parent_id is not None
    initial: dict[str, Any] = {name: getattr(operator, name) for name in OPERATOR_SETTINGS}
    initial.update(planned_settings(operator))
    initial["modules"] = list(operator.modules)
    form = OperatorEditForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        operator=operator,
        modules_editable=modules_editable,
    )
    today = today_for(scope)
    if request.method == "POST" and form.is_valid():
        values = form.settings()
        try:
            outcome = operator_settings_change(
                operator=operator,
                values=values,
                actor=request.user,  # type: ignore[arg-type]
                today=today,
            )
        except OperatorError as error:
            form.add_error(None, str(error))
        else:
            if outcome.scheduled is not None:
                messages.success(
                    request,
                    _("Saved. The new billing settings of %(name)s apply from %(day)s, its next period.")
                    % {
                        "name": operator.name,
                        "day": local_date(outcome.scheduled.effective_from),
                    },
                )
            elif outcome.cancelled:
                messages.success(
                    request, _("Saved. The billing settings stay as they are; the planned change is withdrawn.")
                )
            else:
                messages.success(request, _("%(name)s saved.") % {"name": operator.name})
            return redirect("console:operators")
    pending = pending_change(operator)
    context = {
        "form": form,
        "groups": field_groups(form),
        "title": _("Edit %(name)s") % {"name": operator.name},
        "operator": operator,
        "pending": pending,
        "pending_lines": settings_change_lines(pending) if pending is not None else [],
        "recent": settings_change_recent(operator),
        "billing_from": billing_settings_effective_from(operator, today),
        "billing_names": BILLING_SETTINGS,
    }
    return page(request, "console/operator_form.html", context, status=400 if form.errors else 200)


@require_POST
@console_view(MANAGE)
def operator_active_view(request: HttpRequest, operator_id: int) -> HttpResponse:
    scope = scope_of(request)
    operator = _operator_or_404(scope, operator_id)
    active = request.POST.get("active") == "1"
    user: User = request.user  # type: ignore[assignment]
    try:
        changed = operator_set_active(operator=operator, is_active=active, actor=user)
    except OperatorError as error:
        messages.error(request, str(error))
    else:
        if active:
            messages.success(request, _("%(name)s is active again.") % {"name": operator.name})
        elif changed:
            below = len(changed) - 1
            messages.success(
                request,
                ngettext(
                    "%(name)s is deactivated, with %(count)d operator below it.",
                    "%(name)s is deactivated, with %(count)d operators below it.",
                    below,
                )
                % {"name": operator.name, "count": below}
                if below
                else _("%(name)s is deactivated.") % {"name": operator.name},
            )
    return redirect("console:operators")


@require_POST
@console_view(MANAGE)
def operator_settings_cancel_view(request: HttpRequest, operator_id: int) -> HttpResponse:
    scope = scope_of(request)
    operator = _operator_or_404(scope, operator_id)
    change = OperatorSettingsChange.objects.filter(operator=operator, status=SettingsChangeStatus.PENDING).first()
    if change is None:
        raise Http404
    try:
        operator_settings_cancel(change=change, actor=request.user)  # type: ignore[arg-type]
    except OperatorError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, _("The planned billing settings of %(name)s are withdrawn.") % {"name": operator.name}
        )
    return redirect("console:operator_edit", operator.pk)
