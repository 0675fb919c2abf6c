"""Import batches: one file (or one router's PPP secrets) brought in, checked, applied and undoable."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportBatch(models.Model):
    class Source(models.TextChoices):
        FILE = "file", _("CSV or XLSX file")
        MIKROTIK = "mikrotik", _("MikroTik PPP secrets")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Uploaded, not imported")
        QUEUED = "queued", _("Waiting to import")
        RUNNING = "running", _("Importing")
        APPLIED = "applied", _("Imported")
        FAILED = "failed", _("Failed")
        UNDONE = "undone", _("Undone")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=10, choices=Source.choices)
    file_name = models.CharField(_("file"), max_length=200, blank=True)
    # The uploaded table as read (header + rows of text), kept so the mapping, the dry run and the
    # import itself read exactly the same rows, whichever process runs them.
    header = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    opening_balances = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import #{self.pk} {self.file_name or self.source} ({self.status})"


class ImportedRow(models.Model):
    """Which subscriber a batch's row became: what an undo removes."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="imported")
    row_number = models.PositiveIntegerField()
    subscriber = models.OneToOneField("customers.Subscriber", on_delete=models.PROTECT, related_name="imported_from")

    class Meta:
        ordering = ["batch_id", "row_number"]

    def __str__(self) -> str:
        return f"batch {self.batch_id} row {self.row_number}"
