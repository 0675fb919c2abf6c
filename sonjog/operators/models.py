"""The Operator tree (ISP -> resellers -> sub-resellers), its settings and its staff."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
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


class ConsoleModule(models.TextChoices):
    """The console sections an operator's staff may be given (module access, set by the operator's
    parent). The dashboard, the subscribers and the login's own account are always there; which
    permissions each module covers is `sonjog.operators.modules.module_of_permission`."""

    COLLECTION = "collection", _("Collection")
    BILLING = "billing", _("Billing")
    NETWORK = "network", _("Network")
    MESSAGING = "messaging", _("Messaging")
    CATALOG = "catalog", _("Packages and zones")
    AUTOMATION = "automation", _("Schedule and reminders")
    RESELLERS = "resellers", _("Resellers")


def all_modules() -> list[str]:
    return list(ConsoleModule.values)


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
    # Field collection's two-step approval (issue 15): the cash a collector takes joins the pending
    # hand-over of the collector's day until a manager approves it (billing.services.handover). The
    # subscriber's payment is recorded at once either way. It shapes no bill, so it applies at once.
    collection_approval = models.BooleanField(_("approve collectors' cash hand-overs"), default=False)
    # Module access: the console sections this operator's staff see. Always a subset of the parent's
    # (the services narrow the whole subtree when a parent loses one), so it is the effective set.
    modules = ArrayField(
        models.CharField(max_length=20, choices=ConsoleModule.choices),
        verbose_name=_("console sections"),
        default=all_modules,
        blank=True,
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        permissions = [
            ("backdate_closed_period", "Can date money into a period whose books are closed"),
            ("manage_operators", "Can create and change resellers of its subtree"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(billing_day__gte=1, billing_day__lte=31), name="operator_billing_day"),
            models.CheckConstraint(condition=Q(vat_rate__gte=0, vat_rate__lt=100), name="operator_vat_rate"),
            models.CheckConstraint(
                condition=Q(customer_id_digits__gte=1, customer_id_digits__lte=12), name="operator_cid_digits"
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="operator_not_own_parent"),
            models.CheckConstraint(condition=Q(modules__contained_by=all_modules()), name="operator_known_modules"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2


class SettingsChangeStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPLIED = "applied", _("Applied")
    CANCELLED = "cancelled", _("Cancelled")
    REFUSED = "refused", _("Refused")


class OperatorSettingsChange(models.Model):
    """Billing settings an operator has changed, waiting for the first day of its next period
    (`effective_from`), when the hourly job copies them onto the operator (ADR 0011). At most one is
    pending per operator: a later change replaces it."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="settings_changes")
    # Setting name -> its new value as text (the Operator column's own text form).
    values = models.JSONField()
    effective_from = models.DateField()
    status = models.CharField(max_length=10, choices=SettingsChangeStatus.choices, default=SettingsChangeStatus.PENDING)
    # Why a pending change was refused when its day came (bills issued for its periods meanwhile).
    reason = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["operator"], condition=Q(status="pending"), name="operator_one_pending_settings_change"
            ),
            models.CheckConstraint(
                condition=Q(status="pending", decided_at__isnull=True)
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="operator_settings_change_decided",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operator.code} from {self.effective_from:%Y-%m-%d} ({self.status})"


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


class Landing(models.TextChoices):
    """Where a role lands after sign-in (`sonjog.operators.roles`)."""

    DASHBOARD = "dashboard", _("Dashboard")
    COLLECT = "collect", _("Take a payment")
    BILLING = "billing", _("Billing")
    SUBSCRIBERS = "subscribers", _("Subscribers")
    NETWORK = "network", _("Network")
    MESSAGING = "messaging", _("Messaging")


class OperatorRole(models.Model):
    """One operator's version of a built-in role (ADR 0013): its name, its landing page and its
    permissions, which its own auth Group carries. Every staff login of the operator with that role
    is a member of the group and of no other role's group; a database trigger holds that line."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="roles")
    base_role = models.CharField(_("role"), max_length=20, choices=StaffRole.choices)
    name = models.CharField(_("name"), max_length=60, blank=True, help_text=_("Empty: the built-in role's name"))
    landing = models.CharField(
        _("lands on"), max_length=20, choices=Landing.choices, blank=True, help_text=_("Empty: the built-in role's")
    )
    group = models.OneToOneField("auth.Group", on_delete=models.PROTECT, related_name="operator_role")

    class Meta:
        permissions = [
            ("manage_staff", "Can create staff, change their roles and reset their passwords"),
            ("act_for_resellers", "Can see and work in the accounts of the operator's resellers"),
            ("act_as_reseller", "Can work in a reseller's console as its owner would, not only view it"),
            ("view_dashboard", "Can see the dashboard's business figures"),
            ("manage_gateway_accounts", "Can add and change the operator's online payment gateway accounts"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["operator", "base_role"], name="operatorrole_one_per_base_role"),
        ]

    def __str__(self) -> str:
        return self.name or str(StaffRole(self.base_role).label)


class RoleOverride(models.Model):
    """Where an operator's role differs from the built-in default: one permission granted or taken
    away. Everything else follows the built-in role, release after release."""

    role = models.ForeignKey(OperatorRole, on_delete=models.CASCADE, related_name="overrides")
    permission = models.ForeignKey("auth.Permission", on_delete=models.CASCADE, related_name="+")
    granted = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "permission"], name="roleoverride_one_per_permission"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {'+' if self.granted else '-'}{self.permission_id}"
