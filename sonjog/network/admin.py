from django.contrib import admin

from sonjog.core.admin_base import ReadOnlyAdmin
from sonjog.network.models import FupState

# Read-only: throttles are written by the fair-usage job; the admin is for looking.


@admin.register(FupState)
class FupStateAdmin(ReadOnlyAdmin):
    list_display = ["subscriber", "period_month", "usage_bytes", "allowance_bytes", "throttled_at", "released_at"]
    list_filter = ["period_month"]
    list_select_related = ["subscriber"]
