"""Subscribers, zones and POPs."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sonjog.core.money import MoneyField
from sonjog.operators.models import BillingCycle, BillingMode


class Zone(models.Model):
    """A service area; `parent` makes it a sub-zone."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="zones")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "parent", "name"], name="zone_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name if self.parent_id is None else f"{self.parent} / {self.name}"


class Pop(models.Model):
    """A point of presence: where subscribers' lines meet the operator's network."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="pops")
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.PROTECT, related_name="pops")
    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=300, blank=True)

    class Meta:
        verbose_name = "POP"
        constraints = [models.UniqueConstraint(fields=["operator", "name"], name="pop_unique_name")]

    def __str__(self) -> str:
        return self.name


class ServiceIntent(models.TextChoices):
    """What billing and staff want for the subscriber's service."""

    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    DISABLED = "disabled", _("Disabled")
    TERMINATED = "terminated", _("Terminated")


class RouterState(models.TextChoices):
    """Last state confirmed on the router or in RADIUS."""

    ENABLED = "enabled", _("Enabled")
    DISABLED = "disabled", _("Disabled")
    ABSENT = "absent", _("Absent")
    UNKNOWN = "unknown", _("Unknown")


class SessionState(models.TextChoices):
    ONLINE = "online", _("Online")
    OFFLINE = "offline", _("Offline")


class SyncState(models.TextChoices):
    IN_SYNC = "in_sync", _("In sync")
    PENDING = "pending", _("Pending")
    FAILED = "failed", _("Failed")
    RECORD_ONLY = "record_only", _("Record only")


class Subscriber(models.Model):
    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="subscribers")
    customer_id = models.CharField(_("customer ID"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    phone = models.CharField(_("phone"), max_length=20)
    email = models.EmailField(_("e-mail"), blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    national_id = models.CharField(_("national ID"), max_length=30, blank=True)
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.PROTECT, related_name="subscribers")
    pop = models.ForeignKey(Pop, null=True, blank=True, on_delete=models.PROTECT, related_name="subscribers")
    package = models.ForeignKey("catalog.Package", on_delete=models.PROTECT, related_name="subscribers")
    pppoe_username = models.CharField(_("PPPoE username"), max_length=64)
    pppoe_password = models.CharField(_("PPPoE password"), max_length=64)
    router = models.ForeignKey(
        "network.Router",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="subscribers",
        help_text=_("The NAS this subscriber connects through; when empty, the router serving its zone"),
    )
    static_ip = models.GenericIPAddressField(_("static IP"), null=True, blank=True)

    activation_date = models.DateField(_("activation date"), null=True, blank=True)
    # An imported subscriber was billed by the previous system up to here (its opening balance carries
    # what it still owes): generation bills no period that starts before this day.
    billing_starts_on = models.DateField(
        _("billed by Sonjog from"),
        null=True,
        blank=True,
        help_text=_("Periods starting before this day were billed elsewhere (an imported subscriber)"),
    )
    terminated_on = models.DateField(_("terminated on"), null=True, blank=True)
    # Per-subscriber overrides of the operator's billing settings; NULL means "as the operator".
    billing_mode = models.CharField(
        _("billing mode"), max_length=12, choices=BillingMode.choices, null=True, blank=True
    )
    billing_cycle = models.CharField(
        _("billing cycle"), max_length=12, choices=BillingCycle.choices, null=True, blank=True
    )
    billing_day = models.PositiveSmallIntegerField(_("billing day"), null=True, blank=True)
    monthly_discount = MoneyField(_("monthly discount"), default=Decimal("0.00"))
    is_vip = models.BooleanField(_("VIP (never suspended)"), default=False)
    expires_on = models.DateField(_("service valid until"), null=True, blank=True)

    service_intent = models.CharField(
        _("service intent"), max_length=12, choices=ServiceIntent.choices, default=ServiceIntent.DISABLED
    )
    service_intent_at = models.DateTimeField(null=True, blank=True)
    router_state = models.CharField(max_length=10, choices=RouterState.choices, default=RouterState.UNKNOWN)
    router_state_at = models.DateTimeField(null=True, blank=True)
    session_state = models.CharField(max_length=10, choices=SessionState.choices, default=SessionState.OFFLINE)
    session_state_at = models.DateTimeField(null=True, blank=True)
    session_ip = models.GenericIPAddressField(null=True, blank=True)
    session_mac = models.CharField(max_length=17, blank=True)
    session_uptime = models.CharField(max_length=32, blank=True)
    sync_state = models.CharField(max_length=12, choices=SyncState.choices, default=SyncState.PENDING)
    sync_state_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer_id"]
        permissions = [
            ("grant_discount", "Can give a subscriber a discount"),
            ("reveal_pppoe_password", "Can reveal a subscriber's PPPoE password"),
        ]
        constraints = [
            # Global, not per operator: RADIUS and radacct know a subscriber by user name alone.
            models.UniqueConstraint(fields=["pppoe_username"], name="subscriber_unique_pppoe_username"),
            models.CheckConstraint(condition=Q(monthly_discount__gte=0), name="subscriber_discount_not_negative"),
            models.CheckConstraint(
                condition=Q(billing_day__isnull=True) | Q(billing_day__gte=1, billing_day__lte=31),
                name="subscriber_billing_day",
            ),
            models.CheckConstraint(
                condition=Q(terminated_on__isnull=True)
                | Q(activation_date__isnull=False, terminated_on__gte=models.F("activation_date")),
                name="subscriber_terminated_after_activation",
            ),
            models.CheckConstraint(
                condition=~Q(service_intent="terminated") | Q(terminated_on__isnull=False),
                name="subscriber_terminated_has_date",
            ),
        ]
        indexes = [
            models.Index(fields=["operator", "service_intent"], name="subscriber_operator_intent"),
            models.Index(fields=["phone"], name="subscriber_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.name}"


class SubscriberAddOn(models.Model):
    """One stretch of an add-on on a subscriber, half-open like every period: billed for
    [start_date, end_date), `end_date` empty while it runs. Deactivating sets the end; activating again
    later is a new row, so the history of what was billed when stays readable."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="addons")
    addon = models.ForeignKey("catalog.AddOn", on_delete=models.PROTECT, related_name="subscriptions")
    start_date = models.DateField(_("from"))
    end_date = models.DateField(_("until (first day without it)"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscriber_id", "start_date", "id"]
        constraints = [
            # One running stretch per subscriber and add-on: the guarantee behind "activate" even when
            # two clerks press it at once.
            models.UniqueConstraint(
                fields=["subscriber", "addon"],
                condition=Q(end_date__isnull=True),
                name="subscriberaddon_one_open",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gt=models.F("start_date")),
                name="subscriberaddon_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.addon_id} [{self.start_date}, {self.end_date or '…'})"


class ScheduledChange(models.Model):
    """A change staff asked for on a later day: a package change, a suspension or a termination. The
    hourly job applies each on its day (in the operator's calendar) through the same flows as the
    console's buttons; until then it can be cancelled."""

    class Kind(models.TextChoices):
        PACKAGE = "package", _("Package change")
        SUSPEND = "suspend", _("Suspension")
        TERMINATE = "terminate", _("Termination")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for its day")
        APPLIED = "applied", _("Applied")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Could not be applied")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="scheduled_changes")
    kind = models.CharField(_("change"), max_length=10, choices=Kind.choices)
    effective_date = models.DateField(_("on"))
    package = models.ForeignKey(
        "catalog.Package", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("package")
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["effective_date", "id"]
        constraints = [
            # One waiting change of each kind per subscriber: a second would race the first on its day.
            models.UniqueConstraint(
                fields=["subscriber", "kind"], condition=Q(status="pending"), name="scheduledchange_one_pending"
            ),
            models.CheckConstraint(
                condition=~Q(kind="package") | Q(package__isnull=False), name="scheduledchange_package_named"
            ),
        ]
        indexes = [
            models.Index(fields=["effective_date"], condition=Q(status="pending"), name="scheduledchange_due"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.kind} on {self.effective_date} ({self.status})"


class SignInCode(models.Model):
    """A one-time code that signs a subscriber in to the self-service portal. Only a keyed hash of the
    code is kept (`sonjog.customers.signin`), so reading this table tells nobody a code. A code is good
    for one use, until `expires_at`, and for as many wrong tries as `signin.CODE_ATTEMPTS` allows; only
    the subscriber's newest code counts, so asking for a new one retires the old."""

    # Covered by the (subscriber, created_at) index below.
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="signin_codes", db_index=False)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")), name="signincode_expires_later"),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | Q(used_at__gte=models.F("created_at")),
                name="signincode_used_after_created",
            ),
        ]
        indexes = [
            # The rate limits and the check read a subscriber's latest codes.
            models.Index(fields=["subscriber", "created_at"], name="signincode_subscriber_created"),
        ]

    def __str__(self) -> str:
        return f"sign-in code of subscriber {self.subscriber_id} from {self.created_at:%Y-%m-%d %H:%M}"


class PortalAccess(models.Model):
    """A subscriber's portal sign-in state: `epoch` is what each portal session was signed in under;
    raising it ("sign out on every device") ends them all. The row is also what issuing a sign-in code
    locks, so two requests at once cannot both slip under the rate limit."""

    subscriber = models.OneToOneField(Subscriber, on_delete=models.CASCADE, related_name="portal_access")
    epoch = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"portal access of subscriber {self.subscriber_id} (epoch {self.epoch})"
