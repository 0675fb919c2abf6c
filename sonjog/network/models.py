"""Routers (NAS), the enforcement outbox, RADIUS accounting, and what the network reports back."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from sonjog.network.crypto import decrypt, encrypt


class DriverKind(models.TextChoices):
    MIKROTIK = "mikrotik", _("MikroTik (RouterOS API)")
    RADIUS = "radius", _("FreeRADIUS")
    NONE = "none", _("None (record only)")


class SuspendMode(models.TextChoices):
    DISABLE = "disable", _("Cut off (disable the secret and kick)")
    PROFILE = "profile", _("Redirect (suspended profile)")
    ADDRESS_LIST = "address_list", _("Redirect (suspended address list)")


class Router(models.Model):
    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="routers")
    name = models.CharField(_("name"), max_length=64)
    address = models.CharField(_("address"), max_length=255, help_text=_("IP address or host name"))
    api_port = models.PositiveIntegerField(_("API port"), default=8728)
    use_tls = models.BooleanField(_("API over TLS (api-ssl)"), default=False)
    username = models.CharField(_("API user"), max_length=64, default="admin")
    password_encrypted = models.TextField(blank=True, editable=False)
    driver = models.CharField(_("driver"), max_length=10, choices=DriverKind.choices, default=DriverKind.MIKROTIK)
    radius_secret_encrypted = models.TextField(blank=True, editable=False)
    coa_port = models.PositiveIntegerField(_("CoA port"), default=3799, help_text=_("3799, or 1700 on some RouterOS"))
    supports_coa = models.BooleanField(
        _("rate changes by CoA"),
        default=True,
        help_text=_("The NAS takes a CoA-Request with a new rate; otherwise live sessions are disconnected instead"),
    )
    record_only = models.BooleanField(_("record only"), default=False, help_text=_("Record intent, never send"))
    suspend_mode = models.CharField(
        _("suspension"), max_length=14, choices=SuspendMode.choices, default=SuspendMode.DISABLE
    )
    suspended_profile = models.CharField(max_length=64, default="suspended")
    suspended_address_list = models.CharField(max_length=64, default="suspended")
    # The suspension portal (docs/suspension-portal.md): with an address, suspended subscribers' web
    # traffic (TCP 80) is sent there and everything else they send is dropped, but DNS and the walled
    # garden; without one, Sonjog keeps none of its portal rules on the router.
    portal_address = models.GenericIPAddressField(
        _("portal address"),
        protocol="IPv4",
        null=True,
        blank=True,
        help_text=_("The IPv4 address of the suspension portal that suspended subscribers' web traffic is sent to"),
    )
    portal_port = models.PositiveIntegerField(_("portal port"), default=80)
    walled_garden = models.TextField(
        _("walled garden"),
        blank=True,
        help_text=_(
            "Host names and addresses suspended subscribers may still reach, one a line "
            "(the portal's host, the payment gateways' checkout hosts)"
        ),
    )
    zones = models.ManyToManyField("customers.Zone", blank=True, related_name="routers")
    is_active = models.BooleanField(default=True)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_message = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "name"], name="router_unique_name"),
            models.CheckConstraint(condition=Q(api_port__gte=1, api_port__lte=65535), name="router_api_port"),
            models.CheckConstraint(condition=Q(coa_port__gte=1, coa_port__lte=65535), name="router_coa_port"),
            models.CheckConstraint(condition=Q(portal_port__gte=1, portal_port__lte=65535), name="router_portal_port"),
            # The portal's rules match the suspended list; an empty list name would match everyone.
            models.CheckConstraint(
                condition=Q(portal_address__isnull=True) | ~Q(suspended_address_list=""),
                name="router_portal_needs_suspended_list",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def password(self) -> str:
        return decrypt(self.password_encrypted)

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = encrypt(value)

    @property
    def radius_secret(self) -> str:
        return decrypt(self.radius_secret_encrypted)

    @radius_secret.setter
    def radius_secret(self, value: str) -> None:
        self.radius_secret_encrypted = encrypt(value)


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    RECORD_ONLY = "record_only", _("Recorded only")


class OutboxCommand(models.Model):
    """ "Reconcile subscriber S on router R". The executor reads the subscriber's intent when it runs,
    so a newer intent supersedes an older pending command instead of queueing behind it."""

    subscriber = models.ForeignKey("customers.Subscriber", on_delete=models.PROTECT, related_name="outbox")
    router = models.ForeignKey(Router, on_delete=models.PROTECT, related_name="outbox")
    status = models.CharField(max_length=12, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    requested_by = models.CharField(max_length=120)
    requested_at = models.DateTimeField()
    intent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=10)
    next_attempt_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            # De-duplication: at most one waiting command per subscriber and router.
            models.UniqueConstraint(
                fields=["subscriber", "router"], condition=Q(status="pending"), name="outbox_one_pending"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["router", "status"], name="outbox_router_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subscriber_id}@{self.router_id} {self.status}"


class OutboxAttempt(models.Model):
    command = models.ForeignKey(OutboxCommand, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    desired = models.CharField(max_length=12)
    actions = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"{self.command_id} {'ok' if self.ok else 'error'}"


class RouterCommandKind(models.TextChoices):
    PROFILE = "profile", _("Package profile")
    PORTAL_REDIRECT = "portal_redirect", _("Suspension portal redirect")


class ProfileCommand(models.Model):
    """ "Bring PPP profile P on router R to what the packages say, and give live sessions on it their
    rate". Like `OutboxCommand`, the executor reads the packages when it runs, so a newer package edit
    supersedes an older pending command instead of queueing behind it.

    The same outbox carries the router's other settings Sonjog owns, by `kind`: "portal_redirect" is
    "bring Sonjog's suspension-portal rules on router R to what its settings say" (`profile` empty)."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="profile_commands")
    kind = models.CharField(max_length=16, choices=RouterCommandKind.choices, default=RouterCommandKind.PROFILE)
    profile = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    requested_by = models.CharField(max_length=120)
    requested_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=10)
    next_attempt_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            # De-duplication: at most one waiting command per router, kind and profile.
            models.UniqueConstraint(
                fields=["router", "kind", "profile"], condition=Q(status="pending"), name="profile_command_one_pending"
            ),
            models.CheckConstraint(
                condition=Q(kind="profile") | Q(kind="portal_redirect", profile=""),
                name="profile_command_kind_profile",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="profile_command_due")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.profile or self.kind}@{self.router_id} {self.status}"


class ProfileAttempt(models.Model):
    """One run of a profile command: what was changed on the router, and each live session's answer
    (CoA ACK/NAK, the Disconnect fallback, a kick)."""

    command = models.ForeignKey(ProfileCommand, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    actions = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"{self.command_id} {'ok' if self.ok else 'error'}"


class RadAcct(models.Model):
    """FreeRADIUS's accounting table (its standard PostgreSQL schema); FreeRADIUS writes it.
    Rows are closed by UPDATE, never deleted."""

    radacctid = models.BigAutoField(primary_key=True)
    acctsessionid = models.TextField()
    acctuniqueid = models.TextField(unique=True)
    username = models.TextField(null=True, db_index=True)
    realm = models.TextField(null=True)
    nasipaddress = models.GenericIPAddressField()
    nasportid = models.TextField(null=True)
    nasporttype = models.TextField(null=True)
    acctstarttime = models.DateTimeField(null=True)
    acctupdatetime = models.DateTimeField(null=True)
    acctstoptime = models.DateTimeField(null=True)
    acctinterval = models.BigIntegerField(null=True)
    acctsessiontime = models.BigIntegerField(null=True)
    acctauthentic = models.TextField(null=True)
    connectinfo_start = models.TextField(null=True)
    connectinfo_stop = models.TextField(null=True)
    acctinputoctets = models.BigIntegerField(null=True)
    acctoutputoctets = models.BigIntegerField(null=True)
    calledstationid = models.TextField(null=True)
    callingstationid = models.TextField(null=True)
    acctterminatecause = models.TextField(null=True)
    servicetype = models.TextField(null=True)
    framedprotocol = models.TextField(null=True)
    framedipaddress = models.GenericIPAddressField(null=True)
    framedipv6address = models.GenericIPAddressField(null=True)
    framedipv6prefix = models.TextField(null=True)
    framedinterfaceid = models.TextField(null=True)
    delegatedipv6prefix = models.TextField(null=True)
    class_field = models.TextField(null=True, db_column="class")

    class Meta:
        db_table = "radacct"
        verbose_name = "RADIUS accounting session"
        indexes = [
            models.Index(fields=["username", "acctstoptime"], name="radacct_open_by_user"),
            models.Index(fields=["acctstarttime"], name="radacct_start"),
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.acctsessionid}"


class OnlineSample(models.Model):
    """Online subscribers per router (and per zone), sampled every 5 minutes."""

    router = models.ForeignKey(Router, null=True, blank=True, on_delete=models.CASCADE, related_name="samples")
    zone = models.ForeignKey("customers.Zone", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    online = models.PositiveIntegerField()
    sampled_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.router_id}/{self.zone_id} {self.online} @ {self.sampled_at}"


class NetworkAlert(models.Model):
    class Kind(models.TextChoices):
        ONLINE_DROP = "online_drop", _("Possible network fault (online count dropped)")
        ROUTER_UNREACHABLE = "router_unreachable", _("Router unreachable")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    router = models.ForeignKey(Router, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    zone = models.ForeignKey("customers.Zone", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.CharField(max_length=300)
    # An online drop: the peak the fall was measured against, so that recovery is judged against the
    # same figure however long the outage lasts (the sampling window's own peak sinks with it).
    baseline_online = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open alert per router and kind: a fault still open is not raised again, and one that
            # was resolved is raised anew by the next fault.
            models.UniqueConstraint(
                fields=["router", "kind"],
                condition=Q(resolved_at__isnull=True, router__isnull=False),
                name="networkalert_one_open_per_router",
            ),
        ]

    def __str__(self) -> str:
        return self.message


class RouterBackup(models.Model):
    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="backups")
    taken_at = models.DateTimeField()
    content = models.TextField()
    requested_by = models.CharField(max_length=120, blank=True)
    # The copy sent to the operator's backup destination: None when there was none to send to.
    upload_ok = models.BooleanField(null=True)
    upload_path = models.CharField(max_length=600, blank=True)
    upload_error = models.CharField(max_length=600, blank=True)

    class Meta:
        ordering = ["-taken_at", "-pk"]
        indexes = [models.Index(fields=["router", "-taken_at"], name="routerbackup_newest")]

    def __str__(self) -> str:
        return f"{self.router} {self.taken_at:%Y-%m-%d %H:%M}"


class BackupProtocol(models.TextChoices):
    FTP = "ftp", _("FTP")
    FTPS = "ftps", _("FTPS (FTP with explicit TLS)")


DEFAULT_BACKUPS_KEPT = 10


class BackupDestination(models.Model):
    """An operator's router-backup settings: how many backups of each router Sonjog keeps, and the FTP
    or FTPS server every new backup is copied to. The password is encrypted at rest like a router's."""

    operator = models.OneToOneField("operators.Operator", on_delete=models.CASCADE, related_name="backup_destination")
    enabled = models.BooleanField(_("copy backups to this server"), default=False)
    protocol = models.CharField(_("protocol"), max_length=4, choices=BackupProtocol.choices, default=BackupProtocol.FTP)
    host = models.CharField(_("server"), max_length=253, blank=True)
    port = models.PositiveIntegerField(_("port"), default=21)
    username = models.CharField(_("user name"), max_length=128, blank=True)
    password_encrypted = models.TextField(blank=True, editable=False)
    directory = models.CharField(_("directory"), max_length=255, blank=True)
    keep_count = models.PositiveSmallIntegerField(_("backups kept per router"), default=DEFAULT_BACKUPS_KEPT)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_message = models.CharField(max_length=600, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(port__gte=1, port__lte=65535), name="backupdestination_port"),
            models.CheckConstraint(
                condition=Q(keep_count__gte=1, keep_count__lte=365), name="backupdestination_keep_count"
            ),
            models.CheckConstraint(condition=Q(enabled=False) | ~Q(host=""), name="backupdestination_enabled_host"),
        ]

    def __str__(self) -> str:
        return f"{self.operator_id}: {self.protocol}://{self.host}:{self.port}/{self.directory}"

    @property
    def password(self) -> str:
        return decrypt(self.password_encrypted)

    @password.setter
    def password(self, value: str) -> None:
        self.password_encrypted = encrypt(value)


class FupState(models.Model):
    """A fair-usage throttle: the subscriber used more than the package allows in one billing period.

    A row is released (not deleted) when its period ends or the subscriber no longer qualifies; the
    network side reads "has an unreleased row" as "apply the reduced rate"."""

    subscriber = models.ForeignKey("customers.Subscriber", on_delete=models.PROTECT, related_name="fup_states")
    period_month = models.DateField(_("period"))
    usage_bytes = models.BigIntegerField(_("usage when throttled (bytes)"))
    allowance_bytes = models.BigIntegerField(_("allowance (bytes)"))
    throttled_at = models.DateTimeField(_("throttled"))
    released_at = models.DateTimeField(_("released"), null=True, blank=True)

    class Meta:
        # The table keeps the name it was created with (the fair-usage job once lived in automation).
        db_table = "automation_fupstate"
        ordering = ["-throttled_at"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "period_month"], name="fupstate_one_per_period"),
            # The network reads one flag per subscriber: never two open throttles.
            models.UniqueConstraint(
                fields=["subscriber"], condition=Q(released_at__isnull=True), name="fupstate_one_open"
            ),
            models.CheckConstraint(condition=Q(usage_bytes__gt=F("allowance_bytes")), name="fupstate_over_allowance"),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True) | Q(released_at__gte=F("throttled_at")),
                name="fupstate_release_after_throttle",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.period_month:%Y-%m} {'open' if self.released_at is None else 'released'}"
