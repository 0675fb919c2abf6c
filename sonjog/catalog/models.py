"""Packages (tariffs) an operator sells."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sonjog.core.money import MoneyField


class BillingUnit(models.TextChoices):
    MONTH = "month", _("Month")


class Package(models.Model):
    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="packages")
    name = models.CharField(_("name"), max_length=100)
    price = MoneyField(_("monthly price"))
    download_kbps = models.PositiveIntegerField(_("download (kbps)"))
    upload_kbps = models.PositiveIntegerField(_("upload (kbps)"))
    router_profile = models.CharField(
        _("router profile"), max_length=64, help_text=_("PPP profile name on the router / RADIUS group")
    )
    vat_applicable = models.BooleanField(_("VAT applies"), default=True)
    billing_unit = models.CharField(max_length=10, choices=BillingUnit.choices, default=BillingUnit.MONTH)
    data_allowance_gb = models.PositiveIntegerField(_("data allowance (GB)"), null=True, blank=True)
    # Past the allowance, the subscriber runs at this rate until the next period (fair usage).
    fup_download_kbps = models.PositiveIntegerField(_("fair-usage download (kbps)"), default=1024)
    fup_upload_kbps = models.PositiveIntegerField(_("fair-usage upload (kbps)"), default=1024)
    fup_router_profile = models.CharField(_("fair-usage router profile"), max_length=64, default="fup")
    is_active = models.BooleanField(_("on sale"), default=True)

    class Meta:
        ordering = ["operator_id", "price"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "name"], name="package_unique_name_per_operator"),
            models.CheckConstraint(condition=Q(price__gte=0), name="package_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def rate_limit(self) -> str:
        """MikroTik rate-limit string, upload/download as the router expects (rx/tx from its side)."""
        return f"{self.upload_kbps}k/{self.download_kbps}k"
