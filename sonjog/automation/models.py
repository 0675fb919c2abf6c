"""The scheduler's own rows: job run records, per-operator schedule settings and reminder rules."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class JobRun(models.Model):
    """One execution of a registered job, periodic or started by hand.

    The row is written when the run starts (status `running`) and completed when it ends, so a run
    that is still going, or whose worker died, is visible too."""

    class Trigger(models.TextChoices):
        PERIODIC = "periodic", _("Schedule")
        MANUAL = "manual", _("Run now")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        OK = "ok", _("OK")
        ERROR = "error", _("Error")
        # Another run of the same job held the job lock; this one did nothing.
        SKIPPED = "skipped", _("Skipped (already running)")

    job_name = models.CharField(_("job"), max_length=80)
    operator = models.ForeignKey(
        "operators.Operator", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    outcome = models.JSONField(_("outcome"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [
            ("run_job", "Can run a scheduled job now"),
            ("change_operator_schedule", "Can change the operator's job schedule and reminder rules"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="running", finished_at__isnull=True)
                | (~Q(status="running") & Q(finished_at__isnull=False, finished_at__gte=F("started_at"))),
                name="jobrun_finished_unless_running",
            ),
            models.CheckConstraint(condition=~Q(status="error") | ~Q(error=""), name="jobrun_error_has_text"),
        ]
        indexes = [models.Index(fields=["job_name", "-started_at"], name="jobrun_job_started")]

    def __str__(self) -> str:
        return f"{self.job_name} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class OperatorSchedule(models.Model):
    """When the per-operator jobs act for one operator, in the operator's own time zone.

    No row means the defaults: bills as soon as each period starts, reminders from 10:00."""

    operator = models.OneToOneField("operators.Operator", on_delete=models.PROTECT, related_name="schedule")
    generation_day = models.PositiveSmallIntegerField(
        _("generate bills from day"),
        null=True,
        blank=True,
        help_text=_("Bill the month's periods on this day of the month or later (the last day in short months)"),
    )
    generation_hour = models.PositiveSmallIntegerField(
        _("generate bills from hour"), default=0, help_text=_("Local hour (0-23) before which no bills are made")
    )
    reminder_hour = models.PositiveSmallIntegerField(
        _("send reminders from hour"), default=10, help_text=_("Local hour (0-23) from which reminders go out")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(generation_day__isnull=True) | Q(generation_day__gte=1, generation_day__lte=31),
                name="operatorschedule_generation_day",
            ),
            models.CheckConstraint(condition=Q(generation_hour__lte=23), name="operatorschedule_generation_hour"),
            models.CheckConstraint(condition=Q(reminder_hour__lte=23), name="operatorschedule_reminder_hour"),
        ]

    def __str__(self) -> str:
        return f"schedule of operator {self.operator_id}"


class ReminderEvent(models.TextChoices):
    BILL_DUE = "bill_due", _("Bill due (relative to the oldest open bill's due date)")
    PREPAID_EXPIRY = "prepaid_expiry", _("Prepaid expiry (relative to the validity end)")


class ReminderChannel(models.TextChoices):
    DEFAULT = "", _("The event's default channels")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    WHATSAPP = "whatsapp", _("WhatsApp")


class ReminderRule(models.Model):
    """Send a reminder `offset_days` from the reference date (negative: before it)."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="reminder_rules")
    event = models.CharField(_("event"), max_length=16, choices=ReminderEvent.choices)
    offset_days = models.SmallIntegerField(_("days from the date"), help_text=_("-3 is three days before"))
    package = models.ForeignKey(
        "catalog.Package",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Only subscribers on this package; empty for all"),
    )
    zone = models.ForeignKey(
        "customers.Zone",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Only subscribers in this zone or its sub-zones; empty for all"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ReminderChannel.choices, blank=True, default="")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["operator_id", "event", "offset_days"]
        constraints = [
            models.CheckConstraint(
                condition=Q(offset_days__gte=-60, offset_days__lte=60), name="reminderrule_offset_range"
            ),
            models.UniqueConstraint(
                fields=["operator", "event", "offset_days", "package", "zone", "channel"],
                nulls_distinct=False,
                name="reminderrule_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.offset_days:+d}d {self.channel or 'default'}"
