"""Online payments: each operator's merchant accounts, every checkout as a `PaymentAttempt` state
machine, the raw requests the gateways send us, the shared token store, refunds (`GatewayRefund`,
bounded by the payment in the database) and the daily settlement checks (`SettlementCheck`).

A payment reaches the ledger only through `sonjog.flows.gateways.attempt_confirm`, which locks the
attempt, asks the gateway itself and records the money once; the database keeps one attempt per
merchant reference and per (account, gateway transaction), and billing keeps one payment per
(gateway, transaction id).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sonjog.core.money import MoneyField


class Gateway(models.TextChoices):
    BKASH = "bkash", _("bKash")
    NAGAD = "nagad", _("Nagad")
    SSLCOMMERZ = "sslcommerz", _("SSLCommerz")


class FeeMode(models.TextChoices):
    ABSORBED = "absorbed", _("The operator pays the fee")
    PASSED_ON = "passed_on", _("The subscriber pays the fee")


class GatewayAccount(models.Model):
    """One operator's merchant account at one gateway (a reseller has its own). Credentials are a
    JSON object encrypted at rest; `base_url` is the sandbox, the live API or the local emulator."""

    class Mode(models.TextChoices):
        SANDBOX = "sandbox", _("Sandbox")
        LIVE = "live", _("Live")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    gateway = models.CharField(_("gateway"), max_length=20, choices=Gateway.choices)
    name = models.CharField(_("name"), max_length=80)
    mode = models.CharField(_("mode"), max_length=10, choices=Mode.choices, default=Mode.SANDBOX)
    base_url = models.URLField(_("API address"), max_length=300)
    merchant_account = models.CharField(_("merchant account"), max_length=100)
    credentials = models.TextField(blank=True)  # encrypted JSON
    fee_rate = models.DecimalField(_("fee rate (%)"), max_digits=5, decimal_places=3, default=0)
    fee_mode = models.CharField(_("fee"), max_length=10, choices=FeeMode.choices, default=FeeMode.ABSORBED)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["operator_id", "gateway", "name"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "gateway", "merchant_account"], name="gateway_account_unique"),
            models.CheckConstraint(condition=Q(fee_rate__gte=0, fee_rate__lt=20), name="gateway_fee_rate_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_gateway_display()} {self.name}"


class AttemptState(models.TextChoices):
    CREATED = "created", _("Created")
    PENDING = "pending", _("Waiting for the payer")
    UNKNOWN = "unknown", _("Unknown: re-checking")
    APPLIED = "applied", _("Paid and applied")
    FAILED = "failed", _("Failed or cancelled")
    REVIEW = "review", _("Parked for review")
    ESCALATED = "escalated", _("Unknown after 48 hours")


OPEN_STATES = (AttemptState.CREATED, AttemptState.PENDING, AttemptState.UNKNOWN)


class PaymentAttempt(models.Model):
    """One checkout: created with a unique merchant reference before the payer is sent to the gateway;
    ends applied (one `billing.Payment`), failed, parked for review, or escalated."""

    class Source(models.TextChoices):
        PORTAL = "portal", _("Subscriber portal")
        SUSPENSION = "suspension", _("Suspension page")
        STAFF = "staff", _("Staff")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    subscriber = models.ForeignKey("customers.Subscriber", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(GatewayAccount, on_delete=models.PROTECT, related_name="attempts")
    merchant_reference = models.CharField(max_length=40, unique=True)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.PORTAL)
    amount = MoneyField()  # what the subscriber is credited
    gross = MoneyField()  # what the payer pays the gateway
    fee = MoneyField()  # the gateway's fee on `gross`
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=10, choices=AttemptState.choices, default=AttemptState.CREATED)
    gateway_payment_id = models.CharField(max_length=200, blank=True)
    redirect_url = models.URLField(max_length=1000, blank=True)
    transaction_id = models.CharField(max_length=100, blank=True)
    payer = models.CharField(max_length=40, blank=True)
    payment = models.OneToOneField(
        "billing.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="gateway_attempt"
    )
    review_reason = models.CharField(max_length=300, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_status = models.JSONField(default=dict, blank=True)
    checks = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0, gross__gt=0, fee__gte=0), name="attempt_amounts_positive"),
            models.UniqueConstraint(
                fields=["account", "transaction_id"], condition=~Q(transaction_id=""), name="attempt_unique_transaction"
            ),
            models.CheckConstraint(
                condition=Q(state="applied", payment__isnull=False) | (~Q(state="applied") & Q(payment__isnull=True)),
                name="attempt_applied_has_payment",
            ),
        ]
        indexes = [
            models.Index(fields=["next_check_at"], condition=Q(state__in=["pending", "unknown"]), name="attempt_due"),
            models.Index(fields=["operator", "created_at"], name="attempt_operator_created"),
            models.Index(fields=["subscriber", "created_at"], name="attempt_subscriber_created"),
        ]

    def __str__(self) -> str:
        return self.merchant_reference

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class InboundRequest(models.Model):
    """A request a gateway (or a payer's browser) sent us, stored before it is handled, so a handler
    that failed can be replayed and nothing the gateway said is lost."""

    class Kind(models.TextChoices):
        RETURN = "return", _("Browser return")
        IPN = "ipn", _("Notification (IPN)")
        WEBHOOK = "webhook", _("Webhook")

    gateway = models.CharField(max_length=20, choices=Gateway.choices)
    account = models.ForeignKey(GatewayAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    attempt = models.ForeignKey(PaymentAttempt, null=True, blank=True, on_delete=models.PROTECT, related_name="inbound")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    params = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["received_at"], condition=Q(processed_at__isnull=True), name="inbound_unprocessed")
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.kind} {self.received_at:%Y-%m-%d %H:%M:%S}"


class GatewayToken(models.Model):
    """An access token a gateway grants (bKash's id_token), shared by every worker process."""

    key = models.CharField(max_length=200, unique=True)
    value = models.TextField()  # encrypted JSON
    expires_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class RefundState(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    PENDING = "pending", _("Processing at the gateway")
    UNKNOWN = "unknown", _("Unknown: re-checking")
    DONE = "done", _("Refunded")
    FAILED = "failed", _("Failed")


# A refund in one of these states still holds its share of the payment (the database's bound counts
# every refund that has not failed) and is asked about again by the recheck.
UNSETTLED_REFUND_STATES = (RefundState.REQUESTED, RefundState.PENDING, RefundState.UNKNOWN)


class GatewayRefund(models.Model):
    """Money given back to the payer of one applied online payment, reserved before the gateway is
    asked: the sum of a payment's refunds that have not failed never exceeds what the payment credited
    the subscriber (a constraint trigger, migration 0002, whoever writes the rows). Done, it is on the
    subscriber's ledger (`entry`): the payment's reversal, or a debit for a part of it."""

    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="refunds")
    amount = MoneyField()
    reason = models.CharField(max_length=300)
    reference = models.CharField(max_length=40, unique=True)  # ours, sent to the gateway
    gateway_refund_id = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=10, choices=RefundState.choices, default=RefundState.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    last_answer = models.JSONField(default=dict, blank=True)
    entry = models.ForeignKey("billing.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="gateway_refund_amount_positive"),
            models.UniqueConstraint(
                fields=["attempt", "gateway_refund_id"],
                condition=~Q(gateway_refund_id=""),
                name="gateway_refund_unique_gateway_id",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["done", "failed"], finished_at__isnull=False)
                | (~Q(state__in=["done", "failed"]) & Q(finished_at__isnull=True)),
                name="gateway_refund_finished_when_settled",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_check_at"],
                condition=Q(state__in=["requested", "pending", "unknown"]),
                name="gateway_refund_due",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_settled(self) -> bool:
        return self.state not in UNSETTLED_REFUND_STATES


class SettlementCheck(models.Model):
    """One run of the daily settlement reconciliation of a merchant account: the gateway's paid
    transactions of `day` (the operator's calendar) against the attempts applied that day, both ways.
    Each list holds one small object per transaction (reference, transaction id, amount, attempt);
    both should be empty. Every run is kept: a check run again for a day is a new row."""

    account = models.ForeignKey(GatewayAccount, on_delete=models.PROTECT, related_name="settlement_checks")
    day = models.DateField()
    ran_at = models.DateTimeField()
    gateway_count = models.PositiveIntegerField(default=0)
    applied_count = models.PositiveIntegerField(default=0)
    paid_not_applied = models.JSONField(default=list, blank=True)
    applied_not_paid = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-day", "-ran_at", "-pk"]
        indexes = [models.Index(fields=["account", "day", "ran_at"], name="settlement_account_day")]

    def __str__(self) -> str:
        return f"{self.account} {self.day:%Y-%m-%d}"
