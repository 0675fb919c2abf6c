"""Reads for the staff page and the roles' matrix, inside the acting scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from sonjog.console import twofactor
from sonjog.console.access import Scope
from sonjog.operators.models import Operator, OperatorRole, Staff, StaffRole
from sonjog.operators.modules import hidden_modules
from sonjog.operators.roles import FIXED_ROLES, SECTIONS, SPECIALS, cell_permissions
from sonjog.operators.selectors import role_label, roles_of, staff_of
from sonjog.operators.staffing import Authority, default_permissions, role_permissions


class TwoFactor:
    ON = "on"
    REQUIRED = "required"  # required by the role or the operator, not set up yet
    OFF = "off"


@dataclass
class StaffRow:
    staff: Staff
    role_label: str
    two_factor: str
    manageable: bool


def staff_in_scope(scope: Scope) -> QuerySet[Staff]:
    return staff_of(scope.operator_ids)


def staff_rows(
    scope: Scope, authority: Authority, *, operator_id: int | None = None, inactive: bool = False
) -> list[StaffRow]:
    """The staff of the acting subtree (or of one operator in it), active ones unless `inactive`."""
    rows = staff_in_scope(scope).filter(user__is_active=not inactive)
    if operator_id is not None:
        rows = rows.filter(operator_id=operator_id)
    rows = rows.annotate(has_device=Exists(TOTPDevice.objects.filter(user_id=OuterRef("user_id"), confirmed=True)))
    roles = roles_of(scope.operator_ids)
    found = []
    for staff in rows:
        if staff.has_device:  # type: ignore[attr-defined]
            state = TwoFactor.ON
        elif twofactor.is_required(staff.user):
            state = TwoFactor.REQUIRED
        else:
            state = TwoFactor.OFF
        found.append(
            StaffRow(
                staff=staff,
                role_label=role_label(roles.get((staff.operator_id, staff.role)), staff.role),
                two_factor=state,
                manageable=authority.may_manage(staff),
            )
        )
    return found


def role_labels(operator: Operator) -> dict[str, str]:
    roles = roles_of([operator.pk])
    return {role: role_label(roles.get((operator.pk, role)), role) for role in StaffRole.values}


# -- the matrix -------------------------------------------------------------------------------------


def cell_field_name(cell: str) -> str:
    """The form field of a matrix cell ("payments.act" -> "cell_payments_act")."""
    return "cell_" + cell.replace(".", "_")


@dataclass
class Cell:
    key: str
    label: str
    state: str  # "all", "some" or "none" of the cell's permissions
    grantable: bool  # the actor holds them all (so may tick it)
    permissions: tuple[str, ...]

    @property
    def field(self) -> str:
        return cell_field_name(self.key)


@dataclass
class MatrixRow:
    label: Any
    act_means: Any
    view: Cell | None
    act: Cell | None
    switched_off: bool  # the operator's module access hides the section


@dataclass
class RoleMatrix:
    operator: Operator
    base_role: str
    role: OperatorRole | None
    label: str
    fixed: bool
    held: set[str]
    rows: list[MatrixRow] = field(default_factory=list)
    specials: list[tuple[Any, Cell, bool]] = field(default_factory=list)

    def initial(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": self.role.name if self.role is not None else "",
            "landing": self.role.landing if self.role is not None else "",
        }
        for cell in self.cells():
            values[cell_field_name(cell.key)] = cell.state == "all"
        return values

    def cells(self) -> list[Cell]:
        found = [cell for row in self.rows for cell in (row.view, row.act) if cell is not None]
        return found + [cell for _label, cell, _off in self.specials]


def _state(held: set[str], permissions: tuple[str, ...]) -> str:
    count = sum(1 for each in permissions if each in held)
    return "all" if count == len(permissions) else ("some" if count else "none")


def role_matrix(operator: Operator, base_role: str, authority: Authority) -> RoleMatrix:
    """The operator's version of a role, cell by cell, as the matrix page shows it."""
    role = OperatorRole.objects.filter(operator=operator, base_role=base_role).first()
    held = role_permissions(role) if role is not None else default_permissions(base_role)
    actor_holds = authority.actor.get_all_permissions() if authority.actor is not None else set()
    hidden = hidden_modules(operator)
    cells = cell_permissions()

    def cell(key: str, label: Any) -> Cell | None:
        if key not in cells:
            return None
        permissions = cells[key]
        grantable = authority.unlimited or all(each in actor_holds for each in permissions)
        return Cell(
            key=key, label=str(label), state=_state(held, permissions), grantable=grantable, permissions=permissions
        )

    matrix = RoleMatrix(
        operator=operator,
        base_role=base_role,
        role=role,
        label=role_label(role, base_role),
        fixed=base_role in FIXED_ROLES,
        held=held,
    )
    for section in SECTIONS:
        matrix.rows.append(
            MatrixRow(
                label=section.label,
                act_means=section.act_means,
                view=cell(f"{section.key}.view", _("%(section)s: view") % {"section": section.label}),
                act=cell(f"{section.key}.act", _("%(section)s: act") % {"section": section.label}),
                switched_off=section.module is not None and section.module in hidden,
            )
        )
    for special in SPECIALS:
        found = cell(f"special.{special.key}", special.label)
        assert found is not None
        matrix.specials.append((special.label, found, special.module is not None and special.module in hidden))
    return matrix
