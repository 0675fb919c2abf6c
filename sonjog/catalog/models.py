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
    # A reseller's package is bought from its parent: the parent's package it maps to (the tariff
    # mapper) and the wholesale price per billing unit the parent charges the reseller's float for it.
    wholesale_package = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="resold_as",
        verbose_name=_("parent's package"),
    )
    wholesale_price = MoneyField(_("wholesale price"), null=True, blank=True)

    class Meta:
        ordering = ["operator_id", "price"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "name"], name="package_unique_name_per_operator"),
            models.CheckConstraint(condition=Q(price__gte=0), name="package_price_not_negative"),
            models.CheckConstraint(
                condition=Q(wholesale_package__isnull=True, wholesale_price__isnull=True)
                | Q(wholesale_package__isnull=False, wholesale_price__gte=0),
                name="package_wholesale_mapped_with_price",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def rate_limit(self) -> str:
        """MikroTik rate-limit string, upload/download as the router expects (rx/tx from its side)."""
        return f"{self.upload_kbps}k/{self.download_kbps}k"


class AddOnEffect(models.TextChoices):
    """What an add-on changes on the router or in RADIUS besides the bill."""

    NONE = "none", _("None (billing only)")
    ADDRESS_LIST = "address_list", _("Router address list")
    STATIC_IP = "static_ip", _("Static IP address")


class AddOn(models.Model):
    """A value-added service sold by the month on top of a package (static IP, IPTV, gaming boost).

    Each subscriber who has it gets a line of its own on every period bill it overlaps, prorated by the
    days of the period it covers, with its own VAT; the package line is not touched. `is_active` is
    "on sale": taking an add-on off sale stops new activations, subscribers who have it keep it until
    it is deactivated on their profile (as with packages)."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="addons")
    name = models.CharField(_("name"), max_length=100)
    price = MoneyField(_("monthly price"))
    vat_applicable = models.BooleanField(_("VAT applies"), default=True)
    effect = models.CharField(_("router effect"), max_length=16, choices=AddOnEffect.choices, default=AddOnEffect.NONE)
    effect_value = models.CharField(
        _("effect value"),
        max_length=64,
        blank=True,
        help_text=_("The address-list name on the router; for a static IP, the address pool (optional)"),
    )
    is_active = models.BooleanField(_("on sale"), default=True)

    class Meta:
        ordering = ["operator_id", "name"]
        verbose_name = _("add-on")
        constraints = [
            models.UniqueConstraint(fields=["operator", "name"], name="addon_unique_name_per_operator"),
            # A free add-on is not a bill line; a price of zero is a typing slip.
            models.CheckConstraint(condition=Q(price__gt=0), name="addon_price_positive"),
            models.CheckConstraint(condition=Q(effect__in=AddOnEffect.values), name="addon_effect_known"),
            models.CheckConstraint(
                condition=~Q(effect=AddOnEffect.ADDRESS_LIST) | ~Q(effect_value=""),
                name="addon_address_list_named",
            ),
        ]

    def __str__(self) -> str:
        return self.name
