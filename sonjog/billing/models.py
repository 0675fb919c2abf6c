"""The billing ledger and the documents and projections around it (DESIGN section 4).

`LedgerEntry` is append-only (a trigger refuses UPDATE and DELETE). Everything else here is either a
document that points at ledger entries (bills, invoices, credit notes, payments), a link between them
(allocations), or a projection that can always be rebuilt from the ledger (statements).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from sonjog.core.money import MoneyField


class EntryKind(models.TextChoices):
    BILL = "bill", _("Bill")
    PAYMENT = "payment", _("Payment")
    ADJUSTMENT = "adjustment", _("Adjustment")
    REVERSAL = "reversal", _("Reversal")
    OPENING_BALANCE = "opening_balance", _("Opening balance")


class EntryCategory(models.TextChoices):
    """Which statement column an entry counts in; a reversal counts where its original did."""

    BILLED = "billed", _("Billed")
    PAID = "paid", _("Paid")
    ADJUSTED = "adjusted", _("Adjusted")


class AdjustmentReason(models.TextChoices):
    MANUAL = "manual", _("Manual credit or debit")
    OUTAGE = "outage", _("Outage credit")
    PACKAGE_CHANGE = "package_change", _("Package change")
    TERMINATION = "termination", _("Termination (unused days)")
    ADDON = "addon", _("Add-on")


class PaymentMethod(models.TextChoices):
    CASH = "cash", _("Cash")
    BKASH = "bkash", _("bKash")
    NAGAD = "nagad", _("Nagad")
    BANK = "bank", _("Bank")
    CARD = "card", _("Card")
    CREDIT = "credit", _("Credit")


class BillingRun(models.Model):
    class Trigger(models.TextChoices):
        NIGHTLY = "nightly", _("Nightly schedule")
        CATCH_UP = "catch_up", _("Last-day catch-up")
        STAFF = "staff", _("Staff")
        ACTIVATION = "activation", _("Activation")
        CLI = "cli", _("Command line")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        INTERRUPTED = "interrupted", _("Interrupted")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="billing_runs")
    period_month = models.DateField(_("period"))
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    # Written and committed before the work starts, so a run killed mid-way leaves its record; the
    # database session that does the work tells a live run from a dead one.
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.FINISHED, db_default="finished")
    backend_pid = models.IntegerField(null=True, blank=True, editable=False)
    resumed = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text=_("interrupted run")
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created = models.PositiveIntegerField(default=0)
    backfilled = models.PositiveIntegerField(default=0)
    skipped_existing = models.PositiveIntegerField(default=0)
    skipped_future_joiners = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    seconds = models.FloatField()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["operator", "period_month"], name="billingrun_operator_period")]

    def __str__(self) -> str:
        return f"{self.operator_id} {self.period_month:%Y-%m} {self.trigger}"


class Bill(models.Model):
    """An open item: something the subscriber owes that payments and credit are allocated to, FIFO.

    `period` bills are the charge for one subscriber period (one effective bill per period); `charge`
    bills are every other positive charge (a package change's prorated charge, installation,
    reconnection, equipment, a manual debit), each the document of one debit adjustment in the
    ledger, due `due_days` after it is made. Immutable except `reversed_at`, set in the same
    transaction that appends the reversal of its ledger entry, and `allocated`, which the database
    keeps equal to the sum of the bill's allocations (a trigger on the append-only allocations)."""

    class Kind(models.TextChoices):
        PERIOD = "period", _("Period bill")
        CHARGE = "charge", _("One-off charge")

    # Covered by the composite indexes below; a second single-column index would only slow inserts.
    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+", db_index=False)
    subscriber = models.ForeignKey(
        "customers.Subscriber", on_delete=models.PROTECT, related_name="bills", db_index=False
    )
    package = models.ForeignKey("catalog.Package", on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(BillingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="bills")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PERIOD, db_default=Kind.PERIOD)
    period_month = models.DateField()
    period_start = models.DateField()
    period_end = models.DateField()
    due_date = models.DateField()
    subtotal = MoneyField()
    discount = MoneyField()
    vat = MoneyField()
    total = MoneyField()
    is_prorated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    # What payments and credit cover of this bill; open = total - allocated. Maintained by the database
    # (migration 0006): reading it costs nothing, where summing allocations per bill cost a probe each.
    allocated = MoneyField(default=Decimal("0.00"), db_default=Decimal("0.00"), editable=False)

    class Meta:
        ordering = ["subscriber_id", "period_month"]
        constraints = [
            # At most one effective bill per subscriber and period: the guarantee that holds even when
            # every lock is bypassed.
            models.UniqueConstraint(
                fields=["subscriber", "period_month"],
                condition=Q(reversed_at__isnull=True, kind="period"),
                name="bill_one_effective_per_period",
            ),
            models.CheckConstraint(condition=Q(total=F("subtotal") - F("discount") + F("vat")), name="bill_total"),
            models.CheckConstraint(condition=Q(total__gte=0, discount__gte=0, vat__gte=0), name="bill_not_negative"),
            models.CheckConstraint(condition=Q(period_end__gt=F("period_start")), name="bill_period_order"),
            models.CheckConstraint(
                condition=Q(allocated__gte=0, allocated__lte=F("total")), name="bill_allocated_within_total"
            ),
        ]
        indexes = [
            models.Index(fields=["operator", "period_month"], name="bill_operator_period"),
            # Generation's "latest bill" and "already billed" probes are index-only scans on this.
            models.Index(fields=["subscriber", "period_month"], name="bill_subscriber_period"),
            # The one-off charges of a run's periods (an add-on charged for a period billed again
            # must not be billed twice): few rows, so a run reads them for nothing.
            models.Index(fields=["operator", "period_month"], condition=Q(kind="charge"), name="bill_charge_period"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.period_month:%Y-%m} {self.total}"


class BillLine(models.Model):
    """One line of a bill; a bill's lines sum to its total. `amount` is the line's charge net of VAT
    (negative for the discount), `vat` the VAT on it, rounded once per line; the one `vat` line carries
    the bill's VAT, the sum of the lines' `vat`, so that amounts alone still add up to the total."""

    class Kind(models.TextChoices):
        PACKAGE = "package", _("Package")
        ADDON = "addon", _("Add-on")
        CHARGE = "charge", _("Charge")
        DISCOUNT = "discount", _("Discount")
        VAT = "vat", _("VAT")

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="lines")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    description = models.CharField(max_length=200)
    amount = MoneyField()
    vat = MoneyField(default=Decimal("0.00"), db_default=Decimal("0.00"))
    # The stretch of the add-on an `addon` line bills: what a deactivation credits and what one-off
    # charges name. No index: nothing looks lines up by it except through their bill.
    subscriber_addon = models.ForeignKey(
        "customers.SubscriberAddOn",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bill_lines",
        db_index=False,
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(vat__gte=0), name="billline_vat_not_negative"),
            models.CheckConstraint(
                condition=Q(kind="addon", subscriber_addon__isnull=False)
                | (~Q(kind="addon") & Q(subscriber_addon__isnull=True)),
                name="billline_addon_names_its_stretch",
            ),
        ]
        indexes = [
            # Add-on revenue per period reads only add-on lines, however many package lines there are.
            models.Index(fields=["bill"], condition=Q(kind="addon"), name="billline_addon"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class Payment(models.Model):
    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    subscriber = models.ForeignKey("customers.Subscriber", on_delete=models.PROTECT, related_name="payments")
    amount = MoneyField()
    method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    reference = models.CharField(max_length=100, blank=True)
    gateway = models.CharField(max_length=20, blank=True)
    gateway_transaction_id = models.CharField(max_length=100, blank=True)
    collector = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField()
    confirmed_duplicate = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(
                fields=["gateway", "gateway_transaction_id"],
                condition=~Q(gateway=""),
                name="payment_unique_gateway_transaction",
            ),
        ]
        indexes = [
            models.Index(fields=["subscriber", "received_at"], name="payment_subscriber_received"),
            models.Index(fields=["operator", "received_at"], name="payment_operator_received"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.amount} {self.method}"


class LedgerEntry(models.Model):
    """One append-only money event. Positive raises what the subscriber owes; negative lowers it."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+", db_index=False)
    subscriber = models.ForeignKey(
        "customers.Subscriber", on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    category = models.CharField(max_length=10, choices=EntryCategory.choices)
    amount = MoneyField()
    effective_date = models.DateField()
    period_month = models.DateField()
    bill = models.ForeignKey(Bill, null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    adjustment_reason = models.CharField(max_length=16, choices=AdjustmentReason.choices, blank=True)
    memo = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["subscriber_id", "period_month", "id"]
        permissions = [
            ("reverse_entry", "Can reverse a ledger entry"),
            ("add_adjustment", "Can add a credit or debit adjustment"),
            ("void_invoice", "Can void an invoice with a credit note"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="bill", bill__isnull=False, amount__gte=0, category="billed")
                | Q(kind="payment", payment__isnull=False, amount__lt=0, category="paid")
                | Q(kind="adjustment", adjustment_reason__gt="", category="adjusted")
                | Q(kind="reversal", reverses__isnull=False)
                | Q(kind="opening_balance", category="adjusted"),
                name="ledger_kind_shape",
            ),
            models.CheckConstraint(
                condition=Q(kind="reversal") | Q(reverses__isnull=True), name="ledger_only_reversals_reverse"
            ),
        ]
        indexes = [
            models.Index(fields=["subscriber", "period_month"], name="ledger_subscriber_period"),
            models.Index(fields=["operator", "period_month", "category"], name="ledger_operator_period"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.amount}"


class Allocation(models.Model):
    """Money from a payment (or credit) set against a bill. Append-only: a release is a negative row."""

    source = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="allocations_out")
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="allocations")
    amount = MoneyField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="allocation_not_zero")]

    def __str__(self) -> str:
        return f"{self.source_id} -> bill {self.bill_id}: {self.amount}"


class Statement(models.Model):
    """Per-subscriber, per-period projection of the ledger, chained by dues."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+", db_index=False)
    subscriber = models.ForeignKey(
        "customers.Subscriber", on_delete=models.PROTECT, related_name="statements", db_index=False
    )
    period_month = models.DateField()
    opening_due = MoneyField()
    billed = MoneyField()
    paid = MoneyField()
    adjusted = MoneyField()
    closing_due = MoneyField()

    class Meta:
        ordering = ["subscriber_id", "period_month"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "period_month"], name="statement_one_per_period"),
            models.CheckConstraint(
                condition=Q(closing_due=F("opening_due") + F("billed") - F("paid") + F("adjusted")),
                name="statement_closing_identity",
            ),
        ]
        indexes = [
            # Covering: period summaries and dashboard figures are index-only scans over it.
            models.Index(
                fields=["operator", "period_month"],
                include=["subscriber_id", "opening_due", "billed", "paid", "adjusted", "closing_due"],
                name="statement_operator_period",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.period_month:%Y-%m}"


class DocumentSequence(models.Model):
    """Gapless numbering per operator, document kind and year: the row lock makes numbers gapless."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["operator", "kind", "year"], name="document_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.year}: {self.last_number}"


class Invoice(models.Model):
    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+", db_index=False)
    bill = models.OneToOneField(Bill, on_delete=models.PROTECT, related_name="invoice")
    year = models.PositiveSmallIntegerField()
    number = models.PositiveIntegerField()
    issued_on = models.DateField()
    total = MoneyField()
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["operator", "year", "number"], name="invoice_unique_number"),
        ]

    def __str__(self) -> str:
        return f"INV-{self.year}-{self.number:06d}"


class CreditNote(models.Model):
    """The document of an invoice's void. A void takes back the credits given on the bill before (they
    are reversed with it), so the note credits only what was left of the bill: `amount`, the sum of its
    `lines`, each the remainder of one bill line."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="credit_note")
    reversal_entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    number = models.PositiveIntegerField()
    issued_on = models.DateField()
    amount = MoneyField()
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["operator", "year", "number"], name="creditnote_unique_number"),
        ]

    def __str__(self) -> str:
        return f"CN-{self.year}-{self.number:06d}"


class Receipt(models.Model):
    """The money receipt of one payment, a fixed document: everything it states (amounts, what the
    payment settled, the balance after it, the paid-up-to date, who collected it, the operator's name,
    address, phone and BIN) is frozen in `content` when the payment is recorded. Its number is the
    payment's; every showing after the first says "reprint"."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, primary_key=True, related_name="receipt")
    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    issued_at = models.DateTimeField()
    content = models.JSONField()
    # Built on first showing for a payment recorded before receipts were kept: no balance-after.
    reconstructed = models.BooleanField(default=False)
    times_shown = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"MR-{self.payment_id}"


class CreditLine(models.Model):
    """What one ledger entry credits of one line of the bill it names: the lines a credit note mirrors.

    Every entry that names a bill other than the bill's own has them, adding up to what the entry
    credits (`-amount`): a credit (an outage, a package change, a termination, an add-on ended early,
    a partial credit) spreads over the lines it credits with their VAT in proportion; a void takes
    what is left of every line; the reversal of a credit mirrors that credit's lines with the sign
    turned, so the sum of a bill line's credit lines is always what stands credited of it. The
    database keeps that within the line (a trigger, migration 0011) and refuses UPDATE and DELETE."""

    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="credit_lines")
    bill_line = models.ForeignKey(BillLine, on_delete=models.PROTECT, related_name="credits")
    # The void's note: its lines and those of the credits it took back, which add up to the note.
    credit_note = models.ForeignKey(
        CreditNote, null=True, blank=True, on_delete=models.PROTECT, related_name="lines", db_index=False
    )
    amount = MoneyField()
    vat = MoneyField(default=Decimal("0.00"), db_default=Decimal("0.00"))

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0) | ~Q(vat=0), name="creditline_not_zero"),
        ]
        indexes = [models.Index(fields=["credit_note"], condition=Q(credit_note__isnull=False), name="creditline_note")]

    def __str__(self) -> str:
        return f"{self.entry_id} -> line {self.bill_line_id}: {self.amount} + {self.vat}"


class BillingHold(models.Model):
    """A pause of billing: no period whose start falls in [start_date, end_date) is billed (an open end
    holds until released). What the subscriber's service does meanwhile is its intent's business; a
    hold only stops the bills. Ending a hold early sets `end_date`; the row stays as history."""

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+", db_index=False)
    subscriber = models.ForeignKey("customers.Subscriber", on_delete=models.PROTECT, related_name="billing_holds")
    start_date = models.DateField(_("from"))
    end_date = models.DateField(_("until (first day billed again)"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscriber_id", "start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gt=models.F("start_date")),
                name="billinghold_end_after_start",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="billinghold_has_reason"),
        ]
        indexes = [models.Index(fields=["operator", "subscriber"], name="billinghold_operator")]

    def __str__(self) -> str:
        return f"hold {self.subscriber_id} [{self.start_date}, {self.end_date or '…'})"

    def holds(self, day: dt.date) -> bool:
        return self.start_date <= day and (self.end_date is None or day < self.end_date)


class Outage(models.Model):
    """An outage credited to the subscribers it hit: what was out (a zone, a router or a POP, named by
    kind, id and label: billing may not point at the network's rows), the half-open window
    [starts_at, ends_at), and why. Unique on what and when, so a second press of "Credit", a retry or
    a concurrent request finds the same outage, and its `OutageCredit` links say who has been credited."""

    class Target(models.TextChoices):
        ZONE = "zone", _("Zone")
        ROUTER = "router", _("Router")
        POP = "pop", _("POP")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+", db_index=False)
    target_kind = models.CharField(_("what was out"), max_length=8, choices=Target.choices)
    target_id = models.BigIntegerField()
    target_label = models.CharField(max_length=200)
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # The last run that credited it (the console's runs are the worker's, its progress shown as it goes).
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DONE)
    total = models.PositiveIntegerField(default=0)  # subscribers behind the place, chosen for the run
    done = models.PositiveIntegerField(default=0)  # of those, looked at so far
    credited_count = models.PositiveIntegerField(default=0)
    credited_total = MoneyField(default=Decimal("0.00"))
    skipped_count = models.PositiveIntegerField(default=0)
    not_in_service = models.PositiveIntegerField(default=0)
    # The run's rows (credited and skipped, with why), the first few hundred: what the result page lists.
    rows = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "target_kind", "target_id", "starts_at", "ends_at"], name="outage_one_per_window"
            ),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="outage_ends_after_start"),
            models.CheckConstraint(condition=~Q(reason=""), name="outage_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.target_kind} {self.target_label} [{self.starts_at}, {self.ends_at})"


class OutageCredit(models.Model):
    """One subscriber credited for one outage in one billed period: the link to the ledger entry that
    did it. Unique per (outage, subscriber, period), so nothing credits the same outage twice even
    past the subscriber lock; a period billed later is credited by applying the outage again."""

    # Covered by the unique index, which starts with it.
    outage = models.ForeignKey(Outage, on_delete=models.PROTECT, related_name="credits", db_index=False)
    subscriber = models.ForeignKey("customers.Subscriber", on_delete=models.PROTECT, related_name="+", db_index=False)
    period_month = models.DateField()
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="outage_credit")
    minutes = models.PositiveIntegerField()

    class Meta:
        ordering = ["outage_id", "subscriber_id", "period_month"]
        constraints = [
            models.UniqueConstraint(
                fields=["outage", "subscriber", "period_month"], name="outagecredit_once_per_period"
            ),
        ]
        indexes = [models.Index(fields=["subscriber", "period_month"], name="outagecredit_subscriber")]

    def __str__(self) -> str:
        return f"outage {self.outage_id} -> {self.subscriber_id} {self.period_month:%Y-%m}"


class FloatAccount(models.Model):
    """A reseller's float at its parent: what the parent charges when the reseller's subscribers are
    billed. `balance` is the sum of its entries, kept in the same transaction as each of them; the
    database refuses a balance below `-credit_limit` (0 for a prepaid reseller; a postpaid one has a
    limit and is billed by its parent)."""

    class CreditBack(models.TextChoices):
        FULL = "full", _("Full")
        PRORATED = "prorated", _("Prorated")
        NONE = "none", _("None")

    operator = models.OneToOneField("operators.Operator", on_delete=models.PROTECT, related_name="float_account")
    balance = MoneyField(_("balance"), default=Decimal("0.00"))
    credit_limit = MoneyField(_("credit limit"), default=Decimal("0.00"))
    # Below this the reseller's new connections stop (and, when set, its renewals are held); empty:
    # only the floor (`-credit_limit`) stops them.
    minimum_balance = MoneyField(_("minimum balance"), null=True, blank=True)
    hold_renewals = models.BooleanField(_("hold renewals below the minimum balance"), default=False)
    low_balance_alert = MoneyField(_("alert below"), default=Decimal("0.00"))
    credit_back = models.CharField(
        _("credit back on refunds and early ends"),
        max_length=10,
        choices=CreditBack.choices,
        default=CreditBack.PRORATED,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Period bills with a larger id than this were written with the float open, so each carries a
    # charge on it (ledger_verify); earlier ones were billed before the reseller ran on a float.
    bills_from_id = models.BigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=-F("credit_limit")), name="float_balance_above_floor"),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="float_credit_limit_not_negative"),
        ]

    def __str__(self) -> str:
        return f"float of operator {self.operator_id}"

    @property
    def floor(self) -> Decimal:
        return -self.credit_limit


class FloatEntry(models.Model):
    """One movement of a float: append-only (a trigger refuses UPDATE and DELETE). A charge says which
    subscriber's bill it funds, at which level's package and wholesale price; a credit-back names the
    charge it gives back, never more than is left of it."""

    class Kind(models.TextChoices):
        TOPUP = "topup", _("Top-up")
        CHARGE = "charge", _("Charge")
        CREDIT_BACK = "credit_back", _("Credit back")
        ADJUSTMENT = "adjustment", _("Adjustment")
        TRANSFER = "transfer", _("Transfer")

    class Method(models.TextChoices):
        CASH = "cash", _("Cash")
        BANK = "bank", _("Bank")
        BKASH = "bkash", _("bKash")
        NAGAD = "nagad", _("Nagad")

    account = models.ForeignKey(FloatAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    amount = MoneyField(_("amount"))
    balance_after = MoneyField(_("balance after"))
    bill = models.ForeignKey("billing.Bill", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subscriber = models.ForeignKey(
        "customers.Subscriber", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    package = models.ForeignKey(
        "catalog.Package", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    unit_price = MoneyField(_("wholesale price"), null=True, blank=True)
    charge = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_backs", db_index=False
    )
    method = models.CharField(_("method"), max_length=8, choices=Method.choices, blank=True)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    memo = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account_id", "id"]
        constraints = [
            # Exactly one charge per (bill, level): a second run, a retry or a race finds it there.
            models.UniqueConstraint(
                fields=["bill", "account"], condition=Q(kind="charge"), name="float_one_charge_per_bill_and_level"
            ),
            # A charge may be 0.00 (a level that resells at no cost, or a share that rounds to nothing):
            # every bill still has its one charge per level on record.
            models.CheckConstraint(condition=~Q(amount=0) | Q(kind="charge"), name="float_entry_not_zero"),
            models.CheckConstraint(
                condition=~Q(kind__in=["topup", "credit_back"]) | Q(amount__gt=0), name="float_credit_is_positive"
            ),
            models.CheckConstraint(
                condition=~Q(kind="charge") | (Q(amount__lte=0) & Q(bill__isnull=False)),
                name="float_charge_is_a_bill_debit",
            ),
            models.CheckConstraint(
                condition=~Q(kind="credit_back") | Q(charge__isnull=False), name="float_credit_back_names_charge"
            ),
        ]
        indexes = [models.Index(fields=["charge"], name="float_entry_charge", condition=Q(charge__isnull=False))]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on float {self.account_id}"


class CashHandover(models.Model):
    """A collector's hand-over of one operator-local day's cash to the operator (issue 15), where the
    operator asks for it (`Operator.collection_approval`). The subscribers' payments are recorded when
    the collector takes the money and never wait for it; what waits is the cash in the collector's
    hands. Each cash payment the collector takes joins the day's open hand-over (`CashHandoverPayment`)
    and a manager approves it with the amount counted, or disputes it with a note. `expected` is the
    sum of its standing payments, fixed when it is decided (the database checks it on approval); a
    shortfall is `expected - counted`, recorded beside the payments, which are never changed.

    One open (pending or disputed) hand-over per operator, collector and day; cash dated into a day
    whose hand-over is approved already opens a second one for that day."""

    class State(models.TextChoices):
        PENDING = "pending", _("Awaiting hand-over")
        DISPUTED = "disputed", _("Disputed")
        APPROVED = "approved", _("Handed over")

    operator = models.ForeignKey("operators.Operator", on_delete=models.PROTECT, related_name="+")
    collector = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    day = models.DateField(_("day"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    expected = MoneyField(_("expected"), null=True, blank=True)
    counted = MoneyField(_("counted"), null=True, blank=True)
    # Negative when more was counted than the payments add up to.
    shortfall = models.GeneratedField(
        expression=F("expected") - F("counted"), output_field=MoneyField(), db_persist=True, verbose_name=_("shortfall")
    )
    note = models.CharField(_("why it is disputed"), max_length=300, blank=True)
    disputed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    disputed_at = models.DateTimeField(null=True, blank=True)
    approval_note = models.CharField(_("note"), max_length=300, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "collector_id", "id"]
        permissions = [("approve_cashhandover", "Can approve or dispute collectors' cash hand-overs")]
        constraints = [
            models.UniqueConstraint(
                fields=["operator", "collector", "day"],
                condition=Q(state__in=["pending", "disputed"]),
                name="cashhandover_one_open_per_collector_day",
            ),
            models.CheckConstraint(
                condition=Q(state="pending", expected__isnull=True, counted__isnull=True, approved_at__isnull=True)
                | Q(state="disputed", expected__isnull=False, disputed_at__isnull=False, approved_at__isnull=True)
                & ~Q(note="")
                | Q(state="approved", expected__isnull=False, counted__isnull=False, approved_at__isnull=False),
                name="cashhandover_state_fields",
            ),
            models.CheckConstraint(
                condition=(Q(expected__isnull=True) | Q(expected__gte=0))
                & (Q(counted__isnull=True) | Q(counted__gte=0)),
                name="cashhandover_amounts_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["operator", "state", "day"], name="cashhandover_operator_state")]

    def __str__(self) -> str:
        return f"hand-over of {self.collector_id} on {self.day:%Y-%m-%d} ({self.state})"


class CashHandoverPayment(models.Model):
    """A cash payment in a hand-over. The payment is the key, so it belongs to one hand-over at most;
    the database lets it join only an open hand-over of its own collector and day (in the hand-over
    operator's time zone), and never moves or removes it afterwards."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, primary_key=True, related_name="handover_link")
    handover = models.ForeignKey(CashHandover, on_delete=models.PROTECT, related_name="links")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"payment {self.payment_id} in hand-over {self.handover_id}"
