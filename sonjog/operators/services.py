"""Writes for operators and staff."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from sonjog.operators.exceptions import OperatorError
from sonjog.operators.models import Operator, Staff, StaffRole

# What each role may do, as Django permission codenames ("app_label.codename"); "*" is everything.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    StaffRole.OWNER: ["*"],
    StaffRole.MANAGER: ["*"],
    StaffRole.BILLING_CLERK: [
        "customers.view_subscriber",
        "customers.add_subscriber",
        "customers.change_subscriber",
        "billing.view_ledgerentry",
        "billing.add_payment",
        "billing.view_payment",
        "billing.add_billingrun",
        "billing.view_bill",
        "billing.add_adjustment",
        "billing.reverse_entry",
        "notifications.view_message",
    ],
    StaffRole.COLLECTOR: ["customers.view_subscriber", "billing.add_payment", "billing.view_payment"],
    StaffRole.NETWORK_ENGINEER: [
        "customers.view_subscriber",
        "customers.change_subscriber",
        "network.view_router",
        "network.change_router",
        "network.view_outboxcommand",
        "network.change_outboxcommand",
    ],
    StaffRole.SUPPORT: [
        "customers.view_subscriber",
        "billing.view_ledgerentry",
        "billing.view_bill",
        "notifications.view_message",
    ],
    StaffRole.RESELLER_STAFF: [
        "customers.view_subscriber",
        "customers.add_subscriber",
        "billing.add_payment",
        "billing.view_payment",
        "billing.view_bill",
    ],
}
SONJOG_APPS = ["operators", "customers", "catalog", "billing", "network", "notifications", "automation"]


def role_group(role: str) -> Group:
    """The Django group that carries a role's permissions, created or refreshed on demand."""
    group, _created = Group.objects.get_or_create(name=f"role:{role}")
    codenames = ROLE_PERMISSIONS[role]
    if codenames == ["*"]:
        permissions = list(Permission.objects.filter(content_type__app_label__in=SONJOG_APPS))
    else:
        permissions = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permissions.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
    group.permissions.set(permissions)
    return group


@transaction.atomic
def operator_create(*, code: str, name: str, parent: Operator | None = None, **fields: Any) -> Operator:
    if Operator.objects.filter(code=code).exists():
        raise OperatorError(f"an operator with code '{code}' already exists")
    if parent is not None:
        # A reseller starts from its parent's settings; it may override any of them.
        for inherited in ("currency", "time_zone", "billing_mode", "billing_cycle", "billing_day", "vat_rate"):
            fields.setdefault(inherited, getattr(parent, inherited))
    fields.setdefault("customer_id_prefix", code.upper()[:6])
    operator = Operator.objects.create(code=code, name=name, parent=parent, path="", **fields)
    operator.path = f"{parent.path if parent else '/'}{operator.pk}/"
    operator.save(update_fields=["path"])
    return operator


@transaction.atomic
def staff_create(
    *,
    operator: Operator,
    username: str,
    password: str,
    role: str,
    email: str = "",
    sees_subtree: bool = True,
) -> Staff:
    if role not in StaffRole.values:
        raise OperatorError(f"unknown role '{role}'; choose one of {', '.join(StaffRole.values)}")
    if User.objects.filter(username=username).exists():
        raise OperatorError(f"the username '{username}' is taken")
    # Not is_staff: the Django admin is for the installation's superusers; staff work in the console.
    user = User.objects.create_user(username=username, password=password, email=email)
    user.groups.add(role_group(role))
    return Staff.objects.create(user=user, operator=operator, role=role, sees_subtree=sees_subtree)


def staff_role_sync(*, staff: Staff) -> None:
    """Give the login exactly its role's group (after a role is changed), dropping every other role."""
    with transaction.atomic():
        others = Group.objects.filter(name__startswith="role:").exclude(name=f"role:{staff.role}")
        staff.user.groups.remove(*others)
        staff.user.groups.add(role_group(staff.role))
