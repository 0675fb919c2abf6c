"""The Operator tree (ISP -> resellers -> sub-resellers), its settings and its staff."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class BillingMode(models.TextChoices):
    MONTHLY = "monthly", _("Monthly (open item)")
    CUMULATIVE = "cumulative", _("Cumulative (balance forward)")
    PREPAID = "prepaid", _("Prepaid (validity)")


class BillingCycle(models.TextChoices):
    CALENDAR = "calendar", _("Calendar month (1st)")
    ANNIVERSARY = "anniversary", _("Activation anniversary")
    FIXED_DAY = "fixed_day", _("Fixed day of month")


class Operator(models.Model):
    """An ISP, a reseller or a sub-reseller. Every business row belongs to exactly one operator.

    `path` is the materialised chain of ids ("/1/7/12/") so a subtree is one indexed prefix match.
    """

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    path = models.CharField(max_length=500, editable=False, db_index=True)
    currency = models.CharField(_("currency"), max_length=3, default="BDT")
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Dhaka")
    phone_country = models.CharField(
        _("phone country"), max_length=2, default="BD", help_text=_("Country whose phone numbers are accepted")
    )

    customer_id_prefix = models.CharField(_("customer ID prefix"), max_length=12, blank=True)
    customer_id_infix = models.CharField(_("customer ID infix"), max_length=12, blank=True)
    customer_id_postfix = models.CharField(_("customer ID postfix"), max_length=12, blank=True)
    customer_id_digits = models.PositiveSmallIntegerField(_("customer ID digits"), default=5)
    customer_id_next = models.PositiveIntegerField(default=1, editable=False)

    billing_mode = models.CharField(
        _("billing mode"), max_length=12, choices=BillingMode.choices, default=BillingMode.MONTHLY
    )
    billing_cycle = models.CharField(
        _("billing cycle"), max_length=12, choices=BillingCycle.choices, default=BillingCycle.CALENDAR
    )
    billing_day = models.PositiveSmallIntegerField(
        _("billing day"), default=1, help_text=_("Day of month for the fixed-day cycle")
    )
    due_days = models.PositiveSmallIntegerField(_("days until due"), default=7)
    grace_days = models.PositiveSmallIntegerField(_("grace days before suspension"), default=3)
    # Business dates (activation, payment received, adjustment, package change, termination) before this
    # are refused; empty means two years before today. Set it back when loading older history.
    records_start = models.DateField(_("start of records"), null=True, blank=True)
    # Money dated on or before this day lies in a period whose books are closed: entering it needs the
    # permission to backdate into a closed period (owners and managers have it).
    books_closed_through = models.DateField(_("books closed through"), null=True, blank=True)
    # What documents (invoices, receipts) print about the operator.
    document_address = models.CharField(_("address on documents"), max_length=300, blank=True)
    document_phone = models.CharField(_("phone on documents"), max_length=30, blank=True)
    bin_number = models.CharField(_("VAT registration (BIN)"), max_length=20, blank=True)
    # The logins that handle money (owners, managers, billing clerks) must give a TOTP code at sign-in.
    require_two_factor = models.BooleanField(_("require two-factor sign-in for money roles"), default=False)
    vat_rate = models.DecimalField(_("VAT rate %"), max_digits=5, decimal_places=2, default=Decimal("5.00"))
    vat_inclusive = models.BooleanField(_("prices include VAT"), default=True)
    prorate_first_period = models.BooleanField(_("prorate the first period"), default=True)
    prorate_last_period = models.BooleanField(_("prorate the last period"), default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        permissions = [("backdate_closed_period", "Can date money into a period whose books are closed")]
        constraints = [
            models.CheckConstraint(condition=Q(billing_day__gte=1, billing_day__lte=31), name="operator_billing_day"),
            models.CheckConstraint(condition=Q(vat_rate__gte=0, vat_rate__lt=100), name="operator_vat_rate"),
            models.CheckConstraint(
                condition=Q(customer_id_digits__gte=1, customer_id_digits__lte=12), name="operator_cid_digits"
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="operator_not_own_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2


class StaffRole(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    BILLING_CLERK = "billing_clerk", _("Billing clerk")
    COLLECTOR = "collector", _("Collector")
    NETWORK_ENGINEER = "network_engineer", _("Network engineer")
    SUPPORT = "support", _("Support")
    RESELLER_STAFF = "reseller_staff", _("Reseller staff")


class Staff(models.Model):
    """A login that works for one operator (and, with `sees_subtree`, for its resellers too)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(_("role"), max_length=20, choices=StaffRole.choices)
    sees_subtree = models.BooleanField(_("sees resellers' data"), default=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)

    class Meta:
        verbose_name_plural = "staff"

    def __str__(self) -> str:
        return f"{self.user} @ {self.operator.code} ({self.role})"
