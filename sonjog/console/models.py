"""What the staff console keeps for itself: each login's console settings, and bulk actions with their
progress. No business data lives here; failed sign-ins are counted by django-axes' own tables."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def new_session_epoch() -> str:
    return secrets.token_hex(16)


class ConsoleProfile(models.Model):
    """Per-login console settings: the interface language, and the session epoch. Every session
    remembers the epoch it was opened under; rotating the epoch signs the login out everywhere."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_profile")
    language = models.CharField(_("language"), max_length=8, default="en")
    session_epoch = models.CharField(max_length=32, default=new_session_epoch)

    def __str__(self) -> str:
        return f"{self.user} ({self.language})"


class BulkAction(models.Model):
    """A change applied to many subscribers by a background job; `done` moves as the job works."""

    class Kind(models.TextChoices):
        SUSPEND = "suspend", _("Suspend")
        REACTIVATE = "reactivate", _("Reactivate")
        CHANGE_PACKAGE = "change_package", _("Change package")
        SMS = "sms", _("Send SMS (later)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        RECORDED = "recorded", _("Recorded for later")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subscriber_ids = models.JSONField(default=list)
    package = models.ForeignKey("catalog.Package", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    message = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(done__lte=models.F("total")), name="bulkaction_done_within_total"),
            models.CheckConstraint(
                condition=~Q(kind="change_package") | Q(package__isnull=False), name="bulkaction_package_given"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.done}/{self.total}"

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else int(100 * self.done / self.total)

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.RECORDED)


class ClosedPeriodChange(models.Model):
    """Written by a database trigger when statements of a closed period (before last month) change:
    a correction dated into the past, a backfill. Each row names the earliest period touched and the
    transaction that touched it, so cached figures for closed periods can be proved current (see
    selectors.period_figures). Rows are only ever inserted, so writers never wait on each other."""

    operator_id = models.BigIntegerField()
    from_period = models.DateField()
    xid = models.BigIntegerField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["xid"], name="closedperiodchange_xid")]

    def __str__(self) -> str:
        return f"{self.operator_id} from {self.from_period:%Y-%m} (xid {self.xid})"
