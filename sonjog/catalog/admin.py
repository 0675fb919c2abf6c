from django.contrib import admin

from sonjog.catalog.models import Package


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "operator", "price", "download_kbps", "upload_kbps", "router_profile", "is_active"]
    list_filter = ["operator", "is_active"]
