from django.contrib import admin

from sonjog.core.admin_base import AuditedAdmin, ReadOnlyAdmin
from sonjog.customers.models import Pop, Subscriber, Zone


@admin.register(Zone)
class ZoneAdmin(AuditedAdmin):
    list_display = ["name", "parent", "operator"]
    list_filter = ["operator"]


@admin.register(Pop)
class PopAdmin(AuditedAdmin):
    list_display = ["name", "zone", "operator"]


@admin.register(Subscriber)
class SubscriberAdmin(ReadOnlyAdmin):
    """Read-only: subscribers change through the services (billing consequences, audit log)."""

    list_display = [
        "customer_id",
        "name",
        "phone",
        "operator",
        "package",
        "service_intent",
        "router_state",
        "session_state",
        "sync_state",
        "activation_date",
        "expires_on",
    ]
    list_filter = ["operator", "service_intent", "billing_mode", "billing_cycle", "is_vip"]
    search_fields = ["customer_id", "name", "phone", "pppoe_username"]
    list_select_related = ["operator", "package"]
