from django.contrib import admin

from sonjog.automation.models import JobRun, OperatorSchedule, ReminderRule
from sonjog.core.admin_base import ReadOnlyAdmin

# Read-only: runs are written by the scheduler, and schedules and rules by their services (which
# validate and audit); the admin is for looking.


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ["job_name", "trigger", "status", "started_at", "finished_at", "operator", "actor"]
    list_filter = ["status", "trigger", "job_name"]
    date_hierarchy = "started_at"


@admin.register(OperatorSchedule)
class OperatorScheduleAdmin(ReadOnlyAdmin):
    list_display = ["operator", "generation_day", "generation_hour", "reminder_hour", "updated_at"]


@admin.register(ReminderRule)
class ReminderRuleAdmin(ReadOnlyAdmin):
    list_display = ["operator", "event", "offset_days", "package", "zone", "channel", "is_active"]
    list_filter = ["event", "channel", "is_active"]
