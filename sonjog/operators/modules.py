"""Module access: which console sections an operator's staff see, as a cap on their permissions.

An operator's `modules` list is set by its parent (never by itself) and is always within the
parent's. A permission belongs to at most one module; a login whose operator lacks that module does
not have the permission, whatever its role grants, on every path that asks Django (`has_perm`: the
console's views and menu, and any later interface). Permissions of no module (subscribers, the
login's own account, backdating) are always the role's to give."""

from __future__ import annotations

from typing import Any

from sonjog.operators.models import ConsoleModule, Operator, all_modules

_COLLECTION_MODELS = ("payment", "allocation", "receipt", "cashhandover", "cashhandoverpayment")
_CATALOG_CUSTOMER_MODELS = ("zone", "pop")


def module_of_permission(permission: str) -> str | None:
    """The module an "app_label.codename" permission belongs to, or None for always-allowed ones."""
    app_label, _dot, codename = permission.partition(".")
    model = codename.partition("_")[2]
    if app_label == "billing":
        return ConsoleModule.COLLECTION if model in _COLLECTION_MODELS else ConsoleModule.BILLING
    if app_label == "network":
        return ConsoleModule.NETWORK
    if app_label == "notifications":
        return ConsoleModule.MESSAGING
    if app_label == "catalog" or (app_label == "customers" and model in _CATALOG_CUSTOMER_MODELS):
        return ConsoleModule.CATALOG
    if app_label == "automation":
        return ConsoleModule.AUTOMATION
    if permission == "operators.manage_operators":
        return ConsoleModule.RESELLERS
    return None


def hidden_modules(operator: Operator | None) -> frozenset[str]:
    """The modules an operator's staff do not get (none for a login with no operator)."""
    if operator is None:
        return frozenset()
    return frozenset(all_modules()) - frozenset(operator.modules)


def operator_of_login(user: Any) -> Operator | None:
    staff = getattr(user, "staff", None)
    return staff.operator if staff is not None else None
