from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import ManyToManyField
from django.http import HttpRequest

from sonjog.core.admin_base import AuditedAdmin
from sonjog.operators.billing_settings import BILLING_SETTINGS
from sonjog.operators.models import Operator, Staff
from sonjog.operators.services import staff_role_sync


@admin.register(Operator)
class OperatorAdmin(AuditedAdmin):
    list_display = ["code", "name", "parent", "billing_mode", "billing_cycle", "currency", "is_active"]
    # A new parent would need the whole subtree's `path` rewritten, which no service does yet.
    # Billing settings change from the next period with the reason checked (ADR 0011): the console's
    # Operators page does that; a bare save here would change bills' terms mid-period.
    readonly_fields = ["parent", "path", "customer_id_next", *BILLING_SETTINGS]
    audit_operator_path = ""  # the row is the operator

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # New operators need their tree path: created with `operator_create`, not by a bare save.
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Business rows and audit events point at an operator for good: deactivate it instead.
        return False


@admin.register(Staff)
class StaffAdmin(AuditedAdmin):
    list_display = ["user", "operator", "role", "sees_subtree"]
    list_filter = ["role", "operator"]

    def perform_save(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().perform_save(request, obj, form, change)
        # A new role carries its own permissions: the login's groups follow it.
        staff_role_sync(staff=obj)


admin.site.unregister(User)


@admin.register(User)
class StaffAwareUserAdmin(UserAdmin):
    """Django's user admin, except that a staff login's role group is not one of its editable groups:
    it follows the login's role (change that on the staff row, or in the console), so the admin can
    never leave a staff login without its role's permissions (ADR 0013)."""

    def formfield_for_manytomany(self, db_field: ManyToManyField, request: HttpRequest, **kwargs: Any) -> Any:  # type: ignore[type-arg]
        if db_field.name == "groups":
            kwargs["queryset"] = Group.objects.filter(operator_role__isnull=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        staff = Staff.objects.filter(user=form.instance).select_related("user", "operator").first()
        if staff is not None:
            staff_role_sync(staff=staff)
