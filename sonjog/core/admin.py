from django.contrib import admin

from sonjog.core.admin_base import ReadOnlyAdmin
from sonjog.core.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "operator", "actor", "action", "subscriber"]
    list_filter = ["action"]
    raw_id_fields = ["subscriber"]
