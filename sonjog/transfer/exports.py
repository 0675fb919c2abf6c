"""Exports: everything an ISP (or a reseller) needs to leave, as tables an operator can read.

One function per dataset, each taking an operator and whether its descendants (resellers, their
sub-resellers) are included, and returning an iterator whose first item is the header and whose
other items are the rows. The rows come from server-side cursors a few thousand at a time, so 300,000
subscribers or millions of ledger entries never sit in memory; the header, the labels and the small
lookup tables (zones, packages, operators) are read when the function is called, so the active
language and the operator's time zone are those of the caller even if the rows are read later (a
streamed download).

Values are Python values (Decimal money, dates, naive datetimes in the operator's time zone, text);
`sonjog.transfer.writers` turns them into CSV or XLSX cells. What a subscriber owes is billing's one
definition (`sonjog.billing.selectors.dues_cte`), never a sum made here."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sonjog.billing.models import AdjustmentReason, Bill, EntryKind, Invoice, LedgerEntry, Payment, PaymentMethod
from sonjog.billing.selectors import dues_cte, with_reversed
from sonjog.catalog.models import AddOn, AddOnEffect, Package
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.operators.dates import operator_today
from sonjog.operators.models import BillingMode, Operator

Table = Iterator[list[Any]]
CHUNK = 5000


def subtree_ids(operator: Operator, *, descendants: bool) -> list[int]:
    """The operator's id, and with `descendants` those of every operator below it."""
    if not descendants:
        return [operator.pk]
    return list(Operator.objects.filter(path__startswith=operator.path).order_by("path").values_list("pk", flat=True))


def _codes(ids: list[int]) -> dict[int, str]:
    return dict(Operator.objects.filter(pk__in=ids).values_list("pk", "code"))


def _yes(value: bool) -> str:
    return _("yes") if value else _("no")


def _local(moment: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    # Spreadsheets hold no time zones: the operator's wall-clock time, to the second.
    if moment is None:
        return None
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


def _month(value: dt.date | None) -> str:
    return f"{value:%Y-%m}" if value is not None else ""


def _labels(choices: Any) -> dict[str, str]:
    return {value: str(label) for value, label in choices.choices}


def _table(header: list[str], rows: Iterator[list[Any]]) -> Table:
    return itertools.chain([header], rows)


# -- subscribers ----------------------------------------------------------------------------------

# The subscriber's own columns next to billing's judgement of its dues (`judged`, from dues_cte).
_SUBSCRIBERS_SQL = """
SELECT s.customer_id, s.name, s.phone, s.email, s.address, s.national_id, s.zone_id, s.package_id,
       s.monthly_discount, s.pppoe_username, host(s.static_ip), s.activation_date, s.billing_starts_on,
       s.terminated_on, s.service_intent, j.mode, s.is_vip, s.expires_on, j.due, j.overdue_amount,
       s.operator_id
FROM customers_subscriber s
JOIN judged j ON j.id = s.id
JOIN operators_operator o ON o.id = s.operator_id
ORDER BY o.path, s.customer_id
"""


def _zone_names(ids: list[int]) -> dict[int, str]:
    zones = {zone.pk: zone for zone in Zone.objects.filter(operator_id__in=ids)}

    def name(zone: Zone) -> str:
        parent = zones.get(zone.parent_id) if zone.parent_id is not None else None
        return zone.name if parent is None else f"{name(parent)} / {zone.name}"

    return {pk: name(zone) for pk, zone in zones.items()}


def subscribers_table(operator: Operator, *, descendants: bool = True) -> Table:
    ids = subtree_ids(operator, descendants=descendants)
    header = [
        _("Customer ID"),
        _("Name"),
        _("Phone"),
        _("E-mail"),
        _("Address"),
        _("National ID"),
        _("Zone"),
        _("Package"),
        _("Monthly discount"),
        _("PPPoE username"),
        _("Static IP"),
        _("Activation date"),
        _("Billed by Sonjog from"),
        _("Terminated on"),
        _("Service intent"),
        _("Billing mode"),
        _("VIP"),
        _("Valid until"),
        _("Owes now"),
        _("Overdue"),
        _("Operator"),
    ]
    zones = _zone_names(ids)
    packages = dict(Package.objects.filter(operator_id__in=ids).values_list("pk", "name"))
    codes = _codes(ids)
    intents = _labels(ServiceIntent)
    modes = _labels(BillingMode)
    cte, params = dues_cte(ids, operator_today(operator))

    def rows() -> Table:
        with connection.chunked_cursor() as cursor:
            cursor.execute("WITH " + cte + _SUBSCRIBERS_SQL, params)
            while chunk := cursor.fetchmany(CHUNK):
                for row in chunk:
                    (customer_id, name, phone, email, address, national_id, zone_id, package_id, discount,
                     username, static_ip, activated, billed_from, terminated, intent, mode, vip, valid_until,
                     due, overdue, operator_id) = row  # fmt: skip
                    yield [
                        customer_id,
                        name,
                        phone,
                        email,
                        address,
                        national_id,
                        zones.get(zone_id, "") if zone_id is not None else "",
                        packages.get(package_id, ""),
                        discount,
                        username,
                        static_ip or "",
                        activated,
                        billed_from,
                        terminated,
                        intents.get(intent, intent),
                        modes.get(mode, mode),
                        _yes(vip),
                        valid_until,
                        Decimal(due),
                        Decimal(overdue),
                        codes.get(operator_id, ""),
                    ]

    return _table(header, rows())


def subscribers_count(ids: list[int]) -> int:
    return Subscriber.objects.filter(operator_id__in=ids).count()


# -- packages and add-ons -------------------------------------------------------------------------


def packages_table(operator: Operator, *, descendants: bool = True) -> Table:
    ids = subtree_ids(operator, descendants=descendants)
    header = [
        _("Package"),
        _("Monthly price"),
        _("Download (kbps)"),
        _("Upload (kbps)"),
        _("Router profile"),
        _("VAT applies"),
        _("Data allowance (GB)"),
        _("Fair-usage download (kbps)"),
        _("Fair-usage upload (kbps)"),
        _("Fair-usage router profile"),
        _("On sale"),
        _("Operator"),
    ]
    codes = _codes(ids)
    query = (
        Package.objects.filter(operator_id__in=ids)
        .order_by("operator__path", "name")
        .values_list(
            "name",
            "price",
            "download_kbps",
            "upload_kbps",
            "router_profile",
            "vat_applicable",
            "data_allowance_gb",
            "fup_download_kbps",
            "fup_upload_kbps",
            "fup_router_profile",
            "is_active",
            "operator_id",
        )
    )

    def rows() -> Table:
        for values in query.iterator(chunk_size=CHUNK):
            row: list[Any] = list(values)
            # VAT applies, on sale, the operator.
            row[5], row[10], row[11] = _yes(row[5]), _yes(row[10]), codes.get(row[11], "")
            yield row

    return _table(header, rows())


def packages_count(ids: list[int]) -> int:
    return Package.objects.filter(operator_id__in=ids).count()


def addons_table(operator: Operator, *, descendants: bool = True) -> Table:
    ids = subtree_ids(operator, descendants=descendants)
    header = [
        _("Add-on"),
        _("Monthly price"),
        _("VAT applies"),
        _("Router effect"),
        _("Effect value"),
        _("On sale"),
        _("Operator"),
    ]
    codes = _codes(ids)
    effects = _labels(AddOnEffect)
    query = (
        AddOn.objects.filter(operator_id__in=ids)
        .order_by("operator__path", "name")
        .values_list("name", "price", "vat_applicable", "effect", "effect_value", "is_active", "operator_id")
    )

    def rows() -> Table:
        for name, price, vat, effect, value, on_sale, op in query.iterator(chunk_size=CHUNK):
            yield [name, price, _yes(vat), effects.get(effect, effect), value, _yes(on_sale), codes.get(op, "")]

    return _table(header, rows())


def addons_count(ids: list[int]) -> int:
    return AddOn.objects.filter(operator_id__in=ids).count()


def subscriber_addons_table(operator: Operator, *, descendants: bool = True) -> Table:
    """Which subscriber has (or had) which add-on, from when until when."""
    ids = subtree_ids(operator, descendants=descendants)
    header = [_("Customer ID"), _("Subscriber"), _("Add-on"), _("From"), _("Until"), _("Operator")]
    codes = _codes(ids)
    query = (
        SubscriberAddOn.objects.filter(subscriber__operator_id__in=ids)
        .order_by("subscriber__customer_id", "start_date", "pk")
        .values_list(
            "subscriber__customer_id",
            "subscriber__name",
            "addon__name",
            "start_date",
            "end_date",
            "subscriber__operator_id",
        )
    )

    def rows() -> Table:
        for customer_id, name, addon, start, end, op in query.iterator(chunk_size=CHUNK):
            # Stored half-open; an operator reads the last day it was billed.
            last_day = end - dt.timedelta(days=1) if end is not None else None
            yield [customer_id, name, addon, start, last_day, codes.get(op, "")]

    return _table(header, rows())


def subscriber_addons_count(ids: list[int]) -> int:
    return SubscriberAddOn.objects.filter(subscriber__operator_id__in=ids).count()


# -- the ledger -----------------------------------------------------------------------------------


def _document_number(prefix: str, year: int | None, number: int | None) -> str:
    # As Invoice.__str__ and CreditNote.__str__ print them.
    return f"{prefix}-{year}-{number:06d}" if year is not None and number is not None else ""


def ledger_table(operator: Operator, *, descendants: bool = True) -> Table:
    """Every ledger entry, oldest first: positive amounts raised what the subscriber owes, negative
    lowered it; a subscriber's entries sum to what it owes."""
    ids = subtree_ids(operator, descendants=descendants)
    header = [
        _("Entry"),
        _("Date"),
        _("Period"),
        _("Customer ID"),
        _("Subscriber"),
        _("Kind"),
        _("Amount"),
        _("Invoice"),
        _("Payment"),
        _("Reverses entry"),
        _("Reason"),
        _("Memo"),
        _("By"),
        _("Recorded at"),
        _("Operator"),
    ]
    codes = _codes(ids)
    kinds = _labels(EntryKind)
    reasons = _labels(AdjustmentReason)
    zone = ZoneInfo(operator.time_zone)
    query = (
        LedgerEntry.objects.filter(operator_id__in=ids)
        .order_by("pk")
        .values_list(
            "pk",
            "effective_date",
            "period_month",
            "subscriber__customer_id",
            "subscriber__name",
            "kind",
            "amount",
            "bill__invoice__year",
            "bill__invoice__number",
            "payment_id",
            "reverses_id",
            "adjustment_reason",
            "memo",
            "created_by__username",
            "created_at",
            "operator_id",
        )
    )

    def rows() -> Table:
        for (pk, day, period, customer_id, name, kind, amount, inv_year, inv_number, payment_id, reverses_id,
             reason, memo, by, created_at, op) in query.iterator(chunk_size=CHUNK):  # fmt: skip
            yield [
                pk,
                day,
                _month(period),
                customer_id,
                name,
                kinds.get(kind, kind),
                amount,
                _document_number("INV", inv_year, inv_number),
                payment_id,
                reverses_id,
                reasons.get(reason, reason),
                memo,
                by or "",
                _local(created_at, zone),
                codes.get(op, ""),
            ]

    return _table(header, rows())


def ledger_count(ids: list[int]) -> int:
    return LedgerEntry.objects.filter(operator_id__in=ids).count()


# -- invoices -------------------------------------------------------------------------------------


def invoices_table(operator: Operator, *, descendants: bool = True) -> Table:
    ids = subtree_ids(operator, descendants=descendants)
    header = [
        _("Invoice"),
        _("Issued on"),
        _("Customer ID"),
        _("Subscriber"),
        _("Kind"),
        _("Period"),
        _("From"),
        _("To"),
        _("Due date"),
        _("Subtotal"),
        _("Discount"),
        _("VAT"),
        _("Total"),
        _("Paid"),
        _("Voided"),
        _("Credit note"),
        _("Operator"),
    ]
    codes = _codes(ids)
    bill_kinds = _labels(Bill.Kind)
    zone = ZoneInfo(operator.time_zone)
    query = (
        Invoice.objects.filter(operator_id__in=ids)
        .order_by("operator__path", "year", "number")
        .values_list(
            "year",
            "number",
            "issued_on",
            "bill__subscriber__customer_id",
            "bill__subscriber__name",
            "bill__kind",
            "bill__period_month",
            "bill__period_start",
            "bill__period_end",
            "bill__due_date",
            "bill__subtotal",
            "bill__discount",
            "bill__vat",
            "total",
            "bill__allocated",
            "voided_at",
            "credit_note__year",
            "credit_note__number",
            "operator_id",
        )
    )

    def rows() -> Table:
        for (year, number, issued, customer_id, name, kind, period, start, end, due_date, subtotal, discount, vat,
             total, allocated, voided_at, cn_year, cn_number, op) in query.iterator(chunk_size=CHUNK):  # fmt: skip
            voided = _local(voided_at, zone)
            yield [
                _document_number("INV", year, number),
                issued,
                customer_id,
                name,
                bill_kinds.get(kind, kind),
                _month(period),
                start,
                # Stored half-open; the invoice prints the last day of the period.
                end - dt.timedelta(days=1),
                due_date,
                subtotal,
                discount,
                vat,
                total,
                allocated,
                voided.date() if voided is not None else None,
                _document_number("CN", cn_year, cn_number),
                codes.get(op, ""),
            ]

    return _table(header, rows())


def invoices_count(ids: list[int]) -> int:
    return Invoice.objects.filter(operator_id__in=ids).count()


# -- payments -------------------------------------------------------------------------------------


def _payments(ids: list[int]) -> QuerySet[Payment]:
    return with_reversed(Payment.objects.filter(operator_id__in=ids)).order_by("received_at", "pk")


def payments_table(operator: Operator, *, descendants: bool = True) -> Table:
    """Every payment, oldest first, with whether it was later reversed (a reversed payment was never
    money in hand: billing's definition of collected leaves it out)."""
    ids = subtree_ids(operator, descendants=descendants)
    header = [
        _("Payment"),
        _("Received"),
        _("Customer ID"),
        _("Subscriber"),
        _("Amount"),
        _("Method"),
        _("Reference"),
        _("Gateway"),
        _("Gateway transaction"),
        _("Collector"),
        _("Reversed"),
        _("Operator"),
    ]
    codes = _codes(ids)
    methods = _labels(PaymentMethod)
    zone = ZoneInfo(operator.time_zone)
    # `reversed` is billing's annotation (with_reversed), which the type stubs cannot see.
    query = _payments(ids).values_list(  # type: ignore[misc]
        "pk",
        "received_at",
        "subscriber__customer_id",
        "subscriber__name",
        "amount",
        "method",
        "reference",
        "gateway",
        "gateway_transaction_id",
        "collector__username",
        "reversed",
        "operator_id",
    )

    def rows() -> Table:
        for (pk, received, customer_id, name, amount, method, reference, gateway, transaction_id, collector,
             was_reversed, op) in query.iterator(chunk_size=CHUNK):  # fmt: skip
            yield [
                pk,
                _local(received, zone),
                customer_id,
                name,
                amount,
                methods.get(method, method),
                reference,
                gateway,
                transaction_id,
                collector or "",
                _yes(was_reversed),
                codes.get(op, ""),
            ]

    return _table(header, rows())


def payments_count(ids: list[int]) -> int:
    return Payment.objects.filter(operator_id__in=ids).count()


# -- the datasets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """One export: its name on the command line and in file names, its title, the permission a console
    login needs to download it, the table and a count of its rows (for progress)."""

    name: str
    title: Promise
    description: Promise
    permission: str
    table: Callable[..., Table]
    count: Callable[[list[int]], int]

    def rows(self, operator: Operator, *, descendants: bool) -> Table:
        table: Table = self.table(operator, descendants=descendants)
        return table


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in [
        Dataset(
            "subscribers",
            gettext_lazy("Subscribers"),
            gettext_lazy("Contact details, zone, package, PPPoE username, status and what each owes now"),
            "customers.view_subscriber",
            subscribers_table,
            subscribers_count,
        ),
        Dataset(
            "packages",
            gettext_lazy("Packages"),
            gettext_lazy("Prices, speeds, router profiles and fair usage"),
            "catalog.view_package",
            packages_table,
            packages_count,
        ),
        Dataset(
            "addons",
            gettext_lazy("Add-ons"),
            gettext_lazy("Prices and router effects"),
            "catalog.view_addon",
            addons_table,
            addons_count,
        ),
        Dataset(
            "subscriber_addons",
            gettext_lazy("Subscribers' add-ons"),
            gettext_lazy("Which subscriber has which add-on, from when until when"),
            "customers.view_subscriber",
            subscriber_addons_table,
            subscriber_addons_count,
        ),
        Dataset(
            "ledger",
            gettext_lazy("Ledger"),
            gettext_lazy("Every bill, payment, adjustment and reversal; a subscriber's entries add up to what it owes"),
            "billing.view_ledgerentry",
            ledger_table,
            ledger_count,
        ),
        Dataset(
            "invoices",
            gettext_lazy("Invoices"),
            gettext_lazy("Number, date, period, totals, what was paid, and whether voided by a credit note"),
            "billing.view_bill",
            invoices_table,
            invoices_count,
        ),
        Dataset(
            "payments",
            gettext_lazy("Payments"),
            gettext_lazy("Date, amount, method, reference, collector, and whether reversed"),
            "billing.view_payment",
            payments_table,
            payments_count,
        ),
    ]
}
