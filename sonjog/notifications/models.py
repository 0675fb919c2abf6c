"""Channel accounts, SMS credit, templates, per-operator settings and the delivery log."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sonjog.core.money import MoneyField
from sonjog.network.crypto import decrypt, encrypt


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("E-mail")
    WHATSAPP = "whatsapp", _("WhatsApp")


class ProviderKind(models.TextChoices):
    GENERIC_HTTP = "generic_http", _("Generic HTTP SMS gateway")
    SSL_WIRELESS = "ssl_wireless", _("SSL Wireless")
    BULKSMSBD = "bulksmsbd", _("BulkSMSBD")
    TWILIO = "twilio", _("Twilio")
    SMTP = "smtp", _("E-mail (SMTP)")
    WHATSAPP_CLOUD = "whatsapp_cloud", _("WhatsApp Cloud API")


# Which channel each kind of provider carries.
KIND_CHANNEL: dict[str, str] = {
    ProviderKind.GENERIC_HTTP: Channel.SMS,
    ProviderKind.SSL_WIRELESS: Channel.SMS,
    ProviderKind.BULKSMSBD: Channel.SMS,
    ProviderKind.TWILIO: Channel.SMS,
    ProviderKind.SMTP: Channel.EMAIL,
    ProviderKind.WHATSAPP_CLOUD: Channel.WHATSAPP,
}


class Event(models.TextChoices):
    WELCOME = "welcome", _("Welcome")
    BILL_GENERATED = "bill_generated", _("Bill generated")
    PAYMENT_RECEIVED = "payment_received", _("Payment received")
    ACTIVATION = "activation", _("Activation")
    SUSPENSION = "suspension", _("Suspension")
    REACTIVATION = "reactivation", _("Reactivation")
    PACKAGE_CHANGE = "package_change", _("Package change")
    DUE_REMINDER = "due_reminder", _("Due reminder")
    PREPAID_EXPIRY = "prepaid_expiry", _("Prepaid expiry")
    OTP = "otp", _("One-time code")
    BULK = "bulk", _("Bulk message")
    PPPOE_PASSWORD = "pppoe_password", _("PPPoE password")


# Sent whatever the hour and whatever the subscriber muted: a code that arrives at 08:00 is useless, and
# a new PPPoE password (sent only when staff ask) is what the subscriber needs to get back online now.
URGENT_EVENTS = frozenset({Event.OTP, Event.PPPOE_PASSWORD})


class Language(models.TextChoices):
    ENGLISH = "en", _("English")
    BANGLA = "bn", _("Bangla")


class ProviderAccount(models.Model):
    """One operator's account with one provider. Secrets are encrypted at rest; `base_url` defaults to
    the provider's public endpoint and is overridable (a reseller's own gateway, or loopback in tests)."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="provider_accounts")
    name = models.CharField(_("name"), max_length=80)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    kind = models.CharField(_("provider"), max_length=20, choices=ProviderKind.choices)
    sender_id = models.CharField(
        _("sender"),
        max_length=120,
        blank=True,
        help_text=_("Masking/sender ID, the 'From' number, the From e-mail address, or the WhatsApp phone number ID"),
    )
    username = models.CharField(
        _("account ID / user"), max_length=120, blank=True, help_text=_("Twilio account SID, SMTP user")
    )
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_token_encrypted = models.TextField(blank=True, editable=False)
    base_url = models.CharField(_("base URL"), max_length=300, blank=True)
    options = models.JSONField(_("options"), default=dict, blank=True)
    cost_per_segment = models.DecimalField(
        _("cost per SMS segment"), max_digits=10, decimal_places=4, default=Decimal("0.0000")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["operator_id", "channel", "name"]
        constraints = [
            # One active account per channel: sending never has to guess which gateway to use.
            models.UniqueConstraint(
                fields=["operator", "channel"], condition=Q(is_active=True), name="provider_one_active_per_channel"
            ),
            models.UniqueConstraint(fields=["operator", "name"], name="provider_unique_name"),
            models.CheckConstraint(condition=Q(cost_per_segment__gte=0), name="provider_cost_not_negative"),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["generic_http", "ssl_wireless", "bulksmsbd", "twilio"], channel="sms")
                    | Q(kind="smtp", channel="email")
                    | Q(kind="whatsapp_cloud", channel="whatsapp")
                ),
                name="provider_kind_matches_channel",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def credentials(self) -> dict[str, str]:
        raw = decrypt(self.credentials_encrypted)
        return json.loads(raw) if raw else {}

    @credentials.setter
    def credentials(self, value: dict[str, str]) -> None:
        self.credentials_encrypted = encrypt(json.dumps(value, sort_keys=True)) if value else ""

    @property
    def webhook_token(self) -> str:
        return decrypt(self.webhook_token_encrypted)

    @webhook_token.setter
    def webhook_token(self, value: str) -> None:
        self.webhook_token_encrypted = encrypt(value)

    def option(self, name: str, default: Any = None) -> Any:
        return (self.options or {}).get(name, default)


class NotificationSettings(models.Model):
    """Per-operator messaging settings; an operator without a row gets the defaults below."""

    operator = models.OneToOneField("operators.Operator", on_delete=models.CASCADE, related_name="+")
    quiet_hours_enabled = models.BooleanField(_("quiet hours"), default=True)
    quiet_start = models.TimeField(_("quiet from"), default=dt.time(22, 0))
    quiet_end = models.TimeField(_("quiet until"), default=dt.time(8, 0))
    default_language = models.CharField(
        _("default language"), max_length=2, choices=Language.choices, default=Language.ENGLISH
    )
    default_channels = ArrayField(
        models.CharField(max_length=10, choices=Channel.choices),
        default=list,
        blank=True,
        help_text=_("Channels used for events when the caller names none; empty means SMS and e-mail"),
    )
    muted_events = ArrayField(
        models.CharField(max_length=20, choices=Event.choices),
        default=list,
        blank=True,
        help_text=_("Events the operator does not tell subscribers about (one-time codes always go)"),
    )
    portal_url = models.CharField(_("customer portal link"), max_length=300, blank=True)
    payment_instructions = models.CharField(
        _("how to pay"),
        max_length=200,
        blank=True,
        help_text=_("Told to suspended subscribers, e.g. 'bKash Merchant 01XXXXXXXXX, reference: your customer ID'"),
    )

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"notification settings of operator {self.operator_id}"


class SubscriberPreference(models.Model):
    """A subscriber's language and muted channels (urgent messages such as OTP ignore the mute)."""

    subscriber = models.OneToOneField("customers.Subscriber", on_delete=models.CASCADE, related_name="+")
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, blank=True)
    muted_channels = ArrayField(models.CharField(max_length=10, choices=Channel.choices), default=list, blank=True)

    def __str__(self) -> str:
        return f"preferences of subscriber {self.subscriber_id}"


class SmsBalance(models.Model):
    """The operator's prepaid SMS credit in its currency. Sending debits segments x cost before the
    provider is called and refunds if the provider refuses; the CHECK makes overdraft impossible."""

    operator = models.OneToOneField("operators.Operator", on_delete=models.PROTECT, related_name="+")
    balance = MoneyField(_("balance"), default=Decimal("0.00"))
    low_balance_threshold = MoneyField(_("low-balance alert below"), default=Decimal("100.00"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="sms_balance_not_negative"),
            models.CheckConstraint(condition=Q(low_balance_threshold__gte=0), name="sms_threshold_not_negative"),
        ]

    def __str__(self) -> str:
        return f"SMS credit of operator {self.operator_id}: {self.balance}"


class CreditEntryKind(models.TextChoices):
    TOP_UP = "top_up", _("Top-up")
    DEBIT = "debit", _("Message sent")
    REFUND = "refund", _("Refund (not sent)")


class SmsCreditEntry(models.Model):
    """Every change of an operator's SMS credit, so the balance can be explained line by line."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=CreditEntryKind.choices)
    amount = MoneyField()  # signed: top-ups and refunds positive, debits negative
    balance_after = MoneyField()
    message = models.ForeignKey("Message", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["operator", "created_at"], name="sms_credit_operator_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


class LowBalanceAlert(models.Model):
    """Raised once when the credit falls below the threshold; resolved by a top-up above it."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    balance = MoneyField()
    threshold = MoneyField()
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator"], condition=Q(resolved_at__isnull=True), name="low_balance_one_open_alert"
            ),
        ]

    def __str__(self) -> str:
        return f"operator {self.operator_id}: {self.balance} < {self.threshold}"


class MessageTemplate(models.Model):
    """The operator's wording for one event on one channel in one language. Bodies use `{{ variable }}`
    placeholders (see sonjog.notifications.rendering.VARIABLES)."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="message_templates")
    event = models.CharField(_("event"), max_length=20, choices=Event.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices)
    subject = models.CharField(_("subject (e-mail)"), max_length=200, blank=True)
    body = models.TextField(_("body"))
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["operator_id", "event", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "event", "channel", "language"], name="template_one_per_event_channel_language"
            ),
            models.CheckConstraint(condition=~Q(body=""), name="template_body_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.channel}/{self.language}"


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")  # claimed by a worker; the provider call is under way
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class BulkSend(models.Model):
    """One bulk SMS campaign: what was asked, by whom, and how many messages it queued."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    requested_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    queued = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    total_segments = models.PositiveIntegerField(default=0)
    estimated_cost = MoneyField(default=Decimal("0.00"))
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"bulk #{self.pk} ({self.queued} messages)"


class Message(models.Model):
    """The delivery log: one row per message on one channel, from queueing to the delivery report."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+", db_index=False)
    subscriber = models.ForeignKey(
        "customers.Subscriber", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    account = models.ForeignKey(
        ProviderAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    bulk = models.ForeignKey(BulkSend, null=True, blank=True, on_delete=models.PROTECT, related_name="messages")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider = models.CharField(max_length=20, choices=ProviderKind.choices)
    event = models.CharField(max_length=20, choices=Event.choices)
    is_urgent = models.BooleanField(default=False)
    recipient = models.CharField(max_length=254)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.ENGLISH)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    encoding = models.CharField(max_length=5, blank=True)  # GSM-7 / UCS-2 for SMS
    segments = models.PositiveSmallIntegerField(default=0)
    cost = MoneyField(default=Decimal("0.00"))
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    failure_reason = models.CharField(max_length=24, blank=True)
    provider_message_id = models.CharField(max_length=128, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=4)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    dedup_key = models.CharField(max_length=200, blank=True)
    # A failed message sent again is a new row pointing here; the failed one stays as it was.
    resent_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resent_as", db_index=False
    )
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The same reminder for the same bill and day is queued once, however often it is asked for.
            models.UniqueConstraint(
                fields=["operator", "channel", "dedup_key"], condition=~Q(dedup_key=""), name="message_dedup"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sending", "sent", "delivered", "failed"]), name="message_status"
            ),
            models.CheckConstraint(condition=Q(cost__gte=0), name="message_cost_not_negative"),
            models.CheckConstraint(
                condition=~Q(status__in=["sent", "delivered"]) | Q(sent_at__isnull=False), name="message_sent_has_time"
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(failure_reason=""), name="message_failed_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["subscriber", "created_at"], name="message_subscriber_created"),
            models.Index(fields=["operator", "created_at"], name="message_operator_created"),
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=["queued", "sending"]),
                name="message_pending",
            ),
            models.Index(
                fields=["account", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="message_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} {self.event} to {self.recipient} ({self.status})"
