from django.contrib import admin

from sonjog.catalog.models import Package
from sonjog.core.admin_base import AuditedAdmin


@admin.register(Package)
class PackageAdmin(AuditedAdmin):
    list_display = ["name", "operator", "price", "download_kbps", "upload_kbps", "router_profile", "is_active"]
    list_filter = ["operator", "is_active"]
