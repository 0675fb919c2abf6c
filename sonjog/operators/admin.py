from django.contrib import admin

from sonjog.operators.models import Operator, Staff


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["code", "name", "parent", "billing_mode", "billing_cycle", "currency", "is_active"]
    readonly_fields = ["path", "customer_id_next"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        # New operators need their tree path: created with `operator_create`, not by a bare save.
        return False


@admin.register(Staff)
class StaffAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "operator", "role", "sees_subtree"]
    list_filter = ["role", "operator"]
