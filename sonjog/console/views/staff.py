"""Staff and roles: the staff of the acting subtree (create, edit, deactivate, reset a password) and
each operator's roles as a permission matrix (ADR 0013).

Every login named by id is fetched inside the acting scope (another subtree's is a 404), and every
change goes through `sonjog.operators.services`, which refuses to hand out or touch a role with more
power than the acting login's. A new or reset password is shown once, on the answer to the POST that
made it, and is never stored or sent anywhere: the message log keeps the bodies of SMS and e-mail,
and the people who may read it are not the people who should read a password."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.console import services as console_services
from sonjog.console.access import console_view, scope_of
from sonjog.console.forms.staff import TYPE, PasswordResetForm, RoleForm, StaffCreateForm, StaffEditForm
from sonjog.console.selectors.staff import role_labels, role_matrix, staff_rows
from sonjog.console.views.common import page, page_of
from sonjog.core.bounds import query_id
from sonjog.operators.exceptions import OperatorError, PrivilegeError
from sonjog.operators.models import Landing, Operator, OperatorRole, Staff, StaffRole
from sonjog.operators.roles import ROLE_LANDING, cell_permissions
from sonjog.operators.selectors import roles_of
from sonjog.operators.services import (
    operator_role_reset,
    operator_role_update,
    password_generate,
    staff_create,
    staff_password_set,
    staff_set_active,
    staff_update,
)
from sonjog.operators.staffing import Authority

VIEW_STAFF = "operators.view_staff"
MANAGE_STAFF = "operators.manage_staff"


def _require_view(request: HttpRequest) -> None:
    if not (request.user.has_perm(VIEW_STAFF) or request.user.has_perm(MANAGE_STAFF)):
        raise PermissionDenied


def _staff_or_404(request: HttpRequest, staff_id: int) -> Staff:
    return scope_of(request).get_or_404(Staff.objects.select_related("user", "operator"), pk=staff_id)


def _manageable_or_403(request: HttpRequest, staff: Staff) -> Authority:
    authority = Authority(request.user)  # type: ignore[arg-type]
    if not authority.may_manage(staff):
        # In scope, but a login the actor may not change: itself, an owner, or a more powerful role.
        raise PermissionDenied
    return authority


def _password_from(form: Any) -> tuple[str, bool]:
    """The password the form asks for, and whether Sonjog generated it."""
    if form.cleaned_data["password_choice"] == TYPE:
        return form.cleaned_data["password"], False
    return password_generate(), True


def _shown_once(request: HttpRequest, staff: Staff, password: str, generated: bool, created: bool) -> HttpResponse:
    return page(
        request,
        "console/staff_password_shown.html",
        {"member": staff, "password": password if generated else "", "generated": generated, "created": created},
    )


@console_view()
def staff_list_view(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    scope = scope_of(request)
    authority = Authority(request.user)  # type: ignore[arg-type]
    operator_id = query_id(request.GET.get("operator"))
    if operator_id not in scope.operator_ids:
        operator_id = None
    inactive = request.GET.get("status") == "inactive"
    rows = staff_rows(scope, authority, operator_id=operator_id, inactive=inactive)
    may_create = request.user.has_perm(MANAGE_STAFF) and any(
        authority.grantable(operator) for operator in scope.operators
    )
    return page(
        request,
        "console/staff.html",
        {
            "page_obj": page_of(request, rows),
            "operator_id": operator_id,
            "inactive": inactive,
            "may_create": may_create,
        },
    )


@console_view(MANAGE_STAFF)
def staff_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    authority = Authority(request.user)  # type: ignore[arg-type]
    form = StaffCreateForm(request.POST or None, scope=scope, authority=authority)
    if not form.fields["role"].choices:  # type: ignore[attr-defined]
        raise PermissionDenied  # no role this login may give anywhere
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password, generated = _password_from(form)
        try:
            staff = staff_create(
                operator=data["operator"],
                username=data["username"],
                password=password,
                role=data["role"],
                email=data["email"],
                name=data["name"],
                phone=data["phone"],
                sees_subtree=data["sees_subtree"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except PrivilegeError as error:
            form.add_error("role", str(error))
        except OperatorError as error:
            form.add_error("password" if "password" in str(error).lower() else None, str(error))
        else:
            return _shown_once(request, staff, password, generated, created=True)
    return page(
        request,
        "console/staff_form.html",
        {"form": form, "title": _("New staff login")},
        status=400 if form.errors else 200,
    )


@console_view(MANAGE_STAFF)
def staff_edit_view(request: HttpRequest, staff_id: int) -> HttpResponse:
    staff = _staff_or_404(request, staff_id)
    authority = _manageable_or_403(request, staff)
    initial = {
        "name": staff.user.get_full_name(),
        "email": staff.user.email,
        "phone": staff.phone,
        "role": staff.role,
        "sees_subtree": staff.sees_subtree,
    }
    labels = role_labels(staff.operator)
    form = StaffEditForm(request.POST or None, initial=initial, staff=staff, authority=authority, labels=labels)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            staff_update(
                staff=staff,
                actor=request.user,  # type: ignore[arg-type]
                role=data["role"],
                name=data["name"],
                email=data["email"],
                phone=data["phone"],
                sees_subtree=data["sees_subtree"],
            )
        except PrivilegeError as error:
            form.add_error("role", str(error))
        except OperatorError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Staff login %(username)s saved.") % {"username": staff.user.username})
            return redirect("console:staff")
    return page(
        request,
        "console/staff_edit.html",
        {"form": form, "member": staff, "password_form": PasswordResetForm(), "role_label": labels[staff.role]},
        status=400 if form.errors else 200,
    )


@require_POST
@console_view(MANAGE_STAFF)
def staff_active_view(request: HttpRequest, staff_id: int) -> HttpResponse:
    staff = _staff_or_404(request, staff_id)
    _manageable_or_403(request, staff)
    active = request.POST.get("active") == "1"
    try:
        staff_set_active(staff=staff, active=active, actor=request.user)  # type: ignore[arg-type]
    except OperatorError as error:
        messages.error(request, str(error))
        return redirect("console:staff_edit", staff_id=staff.pk)
    if active:
        messages.success(request, _("%(username)s can sign in again.") % {"username": staff.user.username})
    else:
        # Signed-in sessions end now, not at their next request's check.
        console_services.sessions_revoke_all(user=staff.user)
        messages.success(
            request, _("%(username)s is deactivated and signed out everywhere.") % {"username": staff.user.username}
        )
    return redirect("console:staff")


@console_view(MANAGE_STAFF)
def staff_password_view(request: HttpRequest, staff_id: int) -> HttpResponse:
    staff = _staff_or_404(request, staff_id)
    _manageable_or_403(request, staff)
    form = PasswordResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        password, generated = _password_from(form)
        try:
            staff_password_set(staff=staff, password=password, actor=request.user)  # type: ignore[arg-type]
        except OperatorError as error:
            form.add_error("password", str(error))
        else:
            return _shown_once(request, staff, password, generated, created=False)
    return page(
        request,
        "console/staff_form.html",
        {"form": form, "title": _("New password for %(username)s") % {"username": staff.user.username}},
        status=400 if form.errors else 200,
    )


# -- roles ------------------------------------------------------------------------------------------


@console_view()
def roles_view(request: HttpRequest) -> HttpResponse:
    """The roles of one operator of the subtree (the acting one unless ?operator= names another)."""
    _require_view(request)
    scope = scope_of(request)
    operator_id = query_id(request.GET.get("operator"))
    operator = next((each for each in scope.operators if each.pk == operator_id), scope.home)
    return redirect("console:role_edit", operator_id=operator.pk)


def _role_choice(request: HttpRequest) -> str:
    role = request.POST.get("role") or request.GET.get("role") or ""
    return role if role in StaffRole.values else StaffRole.MANAGER


@console_view()
def role_edit_view(request: HttpRequest, operator_id: int) -> HttpResponse:
    _require_view(request)
    scope = scope_of(request)
    operator = next((each for each in scope.operators if each.pk == operator_id), None)
    if operator is None:
        raise Http404
    base_role = _role_choice(request)
    authority = Authority(request.user)  # type: ignore[arg-type]
    may_edit = request.user.has_perm(MANAGE_STAFF) and base_role in _editable_roles(authority, operator)
    matrix = role_matrix(operator, base_role, authority)
    cells = cell_permissions()
    form = RoleForm(
        request.POST if request.method == "POST" else None, initial=matrix.initial(), base_role=base_role, cells=cells
    )
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied
        try:
            if request.POST.get("action") == "reset":
                operator_role_reset(operator=operator, base_role=base_role, actor=request.user)  # type: ignore[arg-type]
                messages.success(request, _("The role is back to the built-in one."))
                return redirect(f"{request.path}?role={base_role}")
            if form.is_valid():
                operator_role_update(
                    operator=operator,
                    base_role=base_role,
                    changes=_matrix_changes(matrix.held, form.cell_values(), cells),
                    name=form.cleaned_data["name"],
                    landing=form.cleaned_data["landing"],
                    actor=request.user,  # type: ignore[arg-type]
                )
                messages.success(request, _("Role saved. Its logins have the new permissions from now on."))
                return redirect(f"{request.path}?role={base_role}")
        except OperatorError as error:
            form.add_error(None, str(error))
    roles = roles_of([operator.pk])
    tabs = [(role, role_labels_for(roles, operator, role)) for role in StaffRole.values]
    return page(
        request,
        "console/role_edit.html",
        {
            "operator": operator,
            "base_role": base_role,
            "matrix": matrix,
            "form": form,
            "tabs": tabs,
            "may_edit": may_edit and not matrix.fixed,
            "built_in_landing": Landing(ROLE_LANDING[base_role]).label,
            "holders": Staff.objects.filter(operator=operator, role=base_role, user__is_active=True).count(),
        },
        status=400 if form.is_bound and form.errors else 200,
    )


def role_labels_for(roles: dict[tuple[int, str], OperatorRole], operator: Operator, base_role: str) -> str:
    role = roles.get((operator.pk, base_role))
    return role.name if role is not None and role.name else str(StaffRole(base_role).label)


def _editable_roles(authority: Authority, operator: Operator) -> list[str]:
    return [role for role in authority.grantable(operator) if role != StaffRole.OWNER]


def _matrix_changes(held: set[str], ticked: dict[str, bool], cells: dict[str, tuple[str, ...]]) -> dict[str, bool]:
    """Only the cells the form changed: a ticked cell gives all of its permissions, an unticked cell
    that was full takes them all away, and a partly held cell left unticked stays as it was."""
    changes: dict[str, bool] = {}
    for cell, on in ticked.items():
        permissions = cells[cell]
        full = all(each in held for each in permissions)
        if on and not full:
            changes.update(dict.fromkeys(permissions, True))
        elif not on and full:
            changes.update(dict.fromkeys(permissions, False))
    return changes
