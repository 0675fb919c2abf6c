"""Reads for operators and the acting staff member."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import QuerySet

from sonjog.operators.models import Landing, Operator, OperatorRole, Staff, StaffRole
from sonjog.operators.roles import ROLE_LANDING, landing_for


def operator_for_user(user: AbstractBaseUser | AnonymousUser) -> Operator | None:
    """The operator a staff login acts for; None for logins that belong to no operator."""
    staff = getattr(user, "staff", None)
    return staff.operator if staff is not None else None


def operator_subtree(operator: Operator) -> QuerySet[Operator]:
    return Operator.objects.filter(path__startswith=operator.path)


def operator_by_code(code: str) -> Operator:
    return Operator.objects.get(code=code)


def staff_of(operator_ids: list[int]) -> QuerySet[Staff]:
    """The staff logins of these operators, by operator (root first) and username."""
    return (
        Staff.objects.filter(operator_id__in=operator_ids)
        .select_related("user", "operator")
        .order_by("operator__path", "user__username")
    )


def roles_of(operator_ids: list[int]) -> dict[tuple[int, str], OperatorRole]:
    """The operators' own versions of roles that exist so far, by (operator id, built-in role)."""
    return {
        (role.operator_id, role.base_role): role for role in OperatorRole.objects.filter(operator_id__in=operator_ids)
    }


def role_label(role: OperatorRole | None, base_role: str) -> str:
    """What a role is called: the operator's own name for it, or the built-in one."""
    if role is not None and role.name:
        return role.name
    return str(StaffRole(base_role).label)


def landing_of(user: User) -> str | None:
    """Where a login lands after sign-in (a `Landing` value): its role's landing if it may open it,
    otherwise the first page it may open; None when it may open none of them."""
    staff = getattr(user, "staff", None)
    chosen: str = Landing.DASHBOARD
    if staff is not None:
        role = OperatorRole.objects.filter(operator_id=staff.operator_id, base_role=staff.role).first()
        chosen = (role.landing if role is not None else "") or ROLE_LANDING[staff.role]
    return landing_for(chosen, user.get_all_permissions())
