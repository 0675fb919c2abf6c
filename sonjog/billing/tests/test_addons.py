"""Issue 9: bills with many lines. Add-ons are lines of their own on the period bill, prorated by the
days they cover, each with its VAT rounded once; started in a period already billed they are a
one-off charge, ended early they are credited; the run loads them in one query."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db.models import Sum

from sonjog.billing.models import AdjustmentReason, Bill, BillLine, LedgerEntry
from sonjog.billing.selectors import addon_revenue_by_period, subscriber_balance
from sonjog.billing.services import bill_generate_period, generation, outage_credit_add, payment_record
from sonjog.billing.services.generation import GenerationResult
from sonjog.billing.services.money import bill_creditable
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import Subscriber, SubscriberAddOn
from sonjog.flows.subscribers import (
    subscriber_activate,
    subscriber_addon_activate,
    subscriber_addon_deactivate,
    subscriber_change_package,
    subscriber_terminate,
)

D = dt.date
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]
# frozen_clock: 15 June 2027, noon in Dhaka. Calendar cycle, due after 7 days.


def _isp(vat: str = "15.00", inclusive: bool = False, **settings: Any):
    operator = make_operator(vat_rate=Decimal(vat), vat_inclusive=inclusive, billing_cycle="calendar", **settings)
    package = make_package(operator, "1000.00", vat=True, name="Home 10M")
    return operator, package


def _addon(operator, name: str, price: str, vat: bool = True):
    return addon_create(operator=operator, name=name, price=Decimal(price), vat_applicable=vat)


def _generate(operator, month: dt.date, **kwargs: Any) -> GenerationResult:
    return bill_generate_period(operator=operator, period_month=month, trigger="cli", today=D(2027, 6, 15), **kwargs)


def _lines(bill: Bill) -> list[tuple[str, str, Decimal, Decimal]]:
    return [
        (line.kind, line.description, line.amount, line.vat)
        for line in BillLine.objects.filter(bill=bill).order_by("kind", "description")
    ]


def _assert_bill_adds_up(bill: Bill) -> None:
    lines = BillLine.objects.filter(bill=bill)
    assert lines.aggregate(total=Sum("amount"))["total"] == bill.total
    assert lines.exclude(kind="vat").aggregate(total=Sum("vat"))["total"] == bill.vat
    assert bill.total == bill.subtotal - bill.discount + bill.vat


def _subscriber_with_addons(operator, package, activation: dt.date, *addons, start: dt.date | None = None):
    """Add-ons set up before the subscriber is activated, so that activation's bills carry them."""
    subscriber = make_subscriber(operator, package, activation_date=None)
    for addon in addons:
        subscriber_addon_activate(subscriber=subscriber, addon=addon, start_date=start or activation)
    subscriber_activate(subscriber=subscriber, activation_date=activation)
    return Subscriber.objects.get(pk=subscriber.pk)


# -- generation ---------------------------------------------------------------------------------------


def test_a_full_period_carries_one_line_per_addon_with_its_own_vat():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    iptv = _addon(operator, "IPTV", "199.99", vat=False)
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 5, 1))
    for addon in (static_ip, iptv):
        subscriber_addon_activate(subscriber=subscriber, addon=addon, start_date=D(2027, 7, 1))
    # Starting after every bill so far, nothing is charged now.
    assert not Bill.objects.filter(subscriber=subscriber, kind=Bill.Kind.CHARGE).exists()

    result = _generate(operator, D(2027, 7, 1))
    assert result.created == 1 and result.errors == []
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    assert _lines(july) == [
        ("addon", "IPTV", Decimal("199.99"), Decimal("0.00")),
        ("addon", "Static IP", Decimal("300.00"), Decimal("45.00")),
        ("package", "Home 10M", Decimal("1000.00"), Decimal("150.00")),
        ("vat", "VAT", Decimal("195.00"), Decimal("0.00")),
    ]
    assert (july.subtotal, july.discount, july.vat, july.total) == (
        Decimal("1499.99"),
        Decimal("0.00"),
        Decimal("195.00"),
        Decimal("1694.99"),
    )
    _assert_bill_adds_up(july)
    # The package line is what it was before add-ons existed; June, without add-ons, is unchanged.
    june = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 6, 1))
    assert _lines(june) == [
        ("package", "Home 10M", Decimal("1000.00"), Decimal("150.00")),
        ("vat", "VAT", Decimal("150.00"), Decimal("0.00")),
    ]
    assert LedgerEntry.objects.get(bill=july, kind="bill").amount == Decimal("1694.99")
    assert ledger_verify().ok


def test_addons_starting_and_ending_inside_the_period_are_prorated_by_their_days():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    boost = _addon(operator, "Gaming boost", "150.00")
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 5, 1))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 7, 10))
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 7, 20))
    subscriber_addon_activate(subscriber=subscriber, addon=boost, start_date=D(2027, 7, 20))

    _generate(operator, D(2027, 7, 1))
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    # [Jul 10, Jul 20): 10 of 31 days of 300 = 96.77, VAT 14.5155 -> 14.52.
    # [Jul 20, Aug 1): 12 of 31 days of 150 = 58.06, VAT 8.709 -> 8.71.
    assert _lines(july) == [
        ("addon", "Gaming boost (12 days)", Decimal("58.06"), Decimal("8.71")),
        ("addon", "Static IP (10 days)", Decimal("96.77"), Decimal("14.52")),
        ("package", "Home 10M", Decimal("1000.00"), Decimal("150.00")),
        ("vat", "VAT", Decimal("173.23"), Decimal("0.00")),
    ]
    assert july.total == Decimal("1328.06") and not july.is_prorated
    _assert_bill_adds_up(july)
    # August: the ended one is gone, the running one is a whole month.
    _generate(operator, D(2027, 8, 1))
    august = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 8, 1))
    assert [line[:3] for line in _lines(august) if line[0] == "addon"] == [("addon", "Gaming boost", Decimal("150.00"))]
    assert ledger_verify().ok


def test_vat_is_rounded_once_per_line_half_up():
    operator, package = _isp()
    # 10.30 x 15% = 1.545: ROUND_HALF_UP gives 1.55 on each line (half-even would give 1.54), and two
    # lines round to 3.10 where the VAT of their sum, 20.60, would be 3.09.
    first = _addon(operator, "Cloud backup", "10.30")
    second = _addon(operator, "Parental filter", "10.30")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), first, second)
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    vats = sorted(line.vat for line in BillLine.objects.filter(bill=june, kind="addon"))
    assert vats == [Decimal("1.55"), Decimal("1.55")]
    assert june.vat == Decimal("153.10") and june.total == Decimal("1173.70")
    _assert_bill_adds_up(june)
    assert ledger_verify().ok


def test_vat_inclusive_prices_carve_the_vat_out_of_each_line():
    operator, package = _isp(inclusive=True)
    iptv = _addon(operator, "IPTV", "115.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), iptv)
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    addon_line = BillLine.objects.get(bill=june, kind="addon")
    assert (addon_line.amount, addon_line.vat) == (Decimal("100.00"), Decimal("15.00"))
    # The package's price holds its VAT too: 1000 = 869.57 + 130.43.
    assert june.total == Decimal("1115.00") and june.vat == Decimal("145.43")
    _assert_bill_adds_up(june)


def test_a_prorated_first_period_prorates_a_whole_period_addon_like_the_package():
    operator, package = _isp(vat="0")
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 11), static_ip)
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    # 20 of June's 30 days, package and add-on alike.
    assert _lines(june) == [
        ("addon", "Static IP (20 days)", Decimal("200.00"), Decimal("0.00")),
        ("package", "Home 10M (20 days)", Decimal("666.67"), Decimal("0.00")),
    ]
    assert june.total == Decimal("866.67")


def test_the_discount_stays_on_the_package():
    operator, package = _isp(vat="0")
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = make_subscriber(operator, package, activation_date=None, monthly_discount=Decimal("100.00"))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 1))
    subscriber_activate(subscriber=subscriber, activation_date=D(2027, 6, 1))
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    assert (june.subtotal, june.discount, june.total) == (Decimal("1300.00"), Decimal("100.00"), Decimal("1200.00"))
    _assert_bill_adds_up(june)


def test_a_rerun_bills_addons_exactly_once():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), static_ip)
    first = _generate(operator, D(2027, 7, 1))
    again = _generate(operator, D(2027, 7, 1))
    assert (first.created, again.created, again.skipped_existing) == (1, 0, 1)
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    assert BillLine.objects.filter(bill=july, kind="addon").count() == 1
    assert BillLine.objects.filter(bill__subscriber=subscriber, kind="addon").count() == 2  # June and July
    assert ledger_verify().ok


def test_backfilled_periods_carry_the_addons_that_ran_in_them():
    operator, package = _isp(vat="0")
    static_ip = _addon(operator, "Static IP", "300.00")
    gap = make_subscriber(operator, package, activation_date=None)
    subscriber_addon_activate(subscriber=gap, addon=static_ip, start_date=D(2027, 4, 16))
    # Activated in the past without billing (an import): the run backfills April to June.
    Subscriber.objects.filter(pk=gap.pk).update(activation_date=D(2027, 4, 1), service_intent="active")
    result = _generate(operator, D(2027, 7, 1))
    assert (result.created, result.backfilled) == (1, 3)
    amounts = dict(
        BillLine.objects.filter(bill__subscriber=gap, kind="addon").values_list("bill__period_month", "amount")
    )
    assert amounts == {
        D(2027, 4, 1): Decimal("150.00"),  # 15 of 30 days
        D(2027, 5, 1): Decimal("300.00"),
        D(2027, 6, 1): Decimal("300.00"),
        D(2027, 7, 1): Decimal("300.00"),
    }
    assert ledger_verify().ok


class _CountingCursor:
    """A psycopg cursor that counts the statements sent through it (generation's own cursors bypass
    Django's query capture)."""

    def __init__(self, cursor: Any, sent: list[str]) -> None:
        self._cursor, self._sent = cursor, sent

    def execute(self, sql: str, params: Any = None) -> Any:
        self._sent.append(sql)
        return self._cursor.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _plan_statements(operator) -> tuple[list[str], int]:
    sent: list[str] = []
    real = generation.server_cursor

    @contextlib.contextmanager
    def counting():
        with real() as cursor:
            yield _CountingCursor(cursor, sent)

    with mock.patch.object(generation, "server_cursor", counting):
        planned = generation._plan(operator, D(2027, 7, 1), None, GenerationResult(period=D(2027, 7, 1)), None)
    return sent, sum(len(bill.addon_lines) for bill in planned)


@pytest.mark.parametrize("count", [10, 100])
def test_the_run_reads_every_candidates_addons_in_one_query(count, django_assert_num_queries):
    operator, package = _isp()
    addons = [_addon(operator, f"Add-on {index}", "50.00") for index in range(3)]
    ids = [make_subscriber(operator, package, activation_date=None).pk for _ in range(count)]
    Subscriber.objects.filter(pk__in=ids).update(activation_date=D(2027, 7, 1), service_intent="active")
    SubscriberAddOn.objects.bulk_create(
        SubscriberAddOn(subscriber_id=pk, addon=addon, start_date=D(2027, 7, 1)) for pk in ids for addon in addons
    )
    with django_assert_num_queries(0):
        sent, lines = _plan_statements(operator)
    assert lines == 3 * count
    # The candidates and their add-ons, whatever the number of subscribers or add-ons.
    assert len(sent) == 2 and "customers_subscriberaddon" in sent[1]


def test_an_operator_without_addons_plans_as_before():
    operator, package = _isp()
    make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    sent, lines = _plan_statements(operator)
    assert len(sent) == 2 and lines == 0


# -- activation and deactivation -----------------------------------------------------------------------


def test_an_addon_started_in_a_billed_period_is_charged_as_a_prorated_open_item():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    assert subscriber_balance(subscriber.pk) == Decimal("1150.00")
    stretch = subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 16))
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    # [Jun 16, Jul 1): 15 of 30 days of 300 = 150.00, VAT 22.50, due 7 days after.
    assert (charge.total, charge.period_month, charge.due_date) == (Decimal("172.50"), D(2027, 6, 1), D(2027, 6, 23))
    line = charge.lines.get()
    assert (line.kind, line.subscriber_addon, line.amount) == ("addon", stretch, Decimal("172.50"))
    entry = LedgerEntry.objects.get(bill=charge)
    assert (entry.kind, entry.adjustment_reason, entry.amount) == ("adjustment", AdjustmentReason.ADDON, charge.total)
    assert subscriber_balance(subscriber.pk) == Decimal("1322.50")
    # The June bill itself is untouched; a payment settles both open items, oldest first.
    assert Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD).total == Decimal("1150.00")
    payment_record(subscriber=subscriber, amount=Decimal("1322.50"), method="cash")
    charge.refresh_from_db()
    assert charge.allocated == charge.total
    _generate(operator, D(2027, 7, 1))
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    assert BillLine.objects.get(bill=july, kind="addon").amount == Decimal("300.00")
    assert addon_revenue_by_period([operator.pk], D(2027, 6, 1), D(2027, 7, 1)) == {
        D(2027, 6, 1): Decimal("172.50"),
        D(2027, 7, 1): Decimal("345.00"),
    }
    assert ledger_verify().ok


def test_ending_an_addon_mid_period_credits_its_unused_days_on_that_bill():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), static_ip)
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    assert june.total == Decimal("1495.00")
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 6, 21))
    credit = LedgerEntry.objects.get(subscriber=subscriber, kind="adjustment")
    # 10 of 30 days of the line's 345.00.
    assert (credit.amount, credit.bill, credit.adjustment_reason) == (Decimal("-115.00"), june, "addon")
    assert SubscriberAddOn.objects.get(subscriber=subscriber).end_date == D(2027, 6, 21)
    assert bill_creditable(june) == Decimal("1380.00")
    _generate(operator, D(2027, 7, 1))
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    assert not BillLine.objects.filter(bill=july, kind="addon").exists()
    assert ledger_verify().ok


def test_the_addon_credit_never_exceeds_what_is_left_to_credit_on_the_bill():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), static_ip)
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    # A 29-day outage has already credited most of the bill.
    outage_credit_add(subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=29 * 24 * 60, memo="fibre cut")
    assert bill_creditable(june) == Decimal("49.83")
    # The outage credited each line in proportion: 333.50 of the add-on's 345.00, so ending it can
    # credit only the 11.50 left of its own line, not package money.
    addon_line = BillLine.objects.get(bill=june, kind="addon")
    assert bill_creditable(june, [addon_line.pk]) == Decimal("11.50")
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 6, 21))
    credit = LedgerEntry.objects.get(subscriber=subscriber, kind="adjustment", adjustment_reason="addon")
    assert credit.amount == Decimal("-11.50")
    assert bill_creditable(june, [addon_line.pk]) == 0 and bill_creditable(june) == Decimal("38.33")
    assert ledger_verify().ok


def test_ending_an_addon_started_after_the_bill_credits_its_charge():
    operator, package = _isp(vat="0")
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 11))
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    assert charge.total == Decimal("200.00")  # 20 of 30 days
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 6, 21))
    credit = LedgerEntry.objects.get(subscriber=subscriber, kind="adjustment", amount__lt=0)
    assert (credit.amount, credit.bill) == (Decimal("-100.00"), charge)  # the last 10 of its 20 days
    assert subscriber_balance(subscriber.pk) == Decimal("1100.00")
    assert ledger_verify().ok


def test_a_package_change_credits_and_charges_the_package_only():
    operator, package = _isp(vat="0")
    faster = make_package(operator, "1600.00", vat=True, name="Fast 20M")
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), static_ip)
    subscriber_change_package(subscriber=subscriber, package=faster, effective_date=D(2027, 6, 16))
    adjustments = sorted(
        LedgerEntry.objects.filter(subscriber=subscriber, kind="adjustment").values_list("amount", flat=True)
    )
    # Half of June: 500 back for the old package, 800 for the new one; the add-on's line stands.
    assert adjustments == [Decimal("-500.00"), Decimal("800.00")]
    assert ledger_verify().ok


def test_prepaid_validity_counts_the_addons_in_each_period():
    operator, package = _isp(vat="0", billing_mode="prepaid")
    iptv = _addon(operator, "IPTV", "500.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), iptv)
    assert Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD).total == Decimal("1500.00")
    payment_record(subscriber=subscriber, amount=Decimal("3000.00"), method="bkash")
    subscriber.refresh_from_db()
    # June paid, and the 1500 left buys all of July at 1500 (not July and half of August at 1000).
    assert subscriber.expires_on == D(2027, 8, 1)


def test_activation_rules():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    other_operator, _other_package = _isp()
    foreign = _addon(other_operator, "Static IP", "300.00")
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    with pytest.raises(SubscriberError, match="another operator"):
        subscriber_addon_activate(subscriber=subscriber, addon=foreign)
    with pytest.raises(SubscriberError, match="another operator"):
        subscriber_addon_deactivate(subscriber=subscriber, addon=foreign)
    with pytest.raises(SubscriberError, match="does not have"):
        subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip)
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 7, 1))
    with pytest.raises(SubscriberError, match="already has"):
        subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 7, 5))
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 7, 10))
    with pytest.raises(SubscriberError, match="until 2027-07-10"):
        subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 7, 5))
    with pytest.raises(SubscriberError, match="ahead"):
        subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2028, 7, 5))
    again = subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 7, 10))
    # Ended on its first day before anything billed it: it never took effect and is withdrawn.
    assert subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 7, 10)) is None
    assert not SubscriberAddOn.objects.filter(pk=again.pk).exists()
    static_ip.is_active = False
    static_ip.save(update_fields=["is_active"])
    with pytest.raises(SubscriberError, match="not on sale"):
        subscriber_addon_activate(subscriber=subscriber, addon=static_ip)
    assert not Bill.objects.filter(subscriber=subscriber, kind=Bill.Kind.CHARGE).exists()


def test_a_billed_addon_is_not_withdrawn():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = _subscriber_with_addons(operator, package, D(2027, 6, 1), static_ip)
    with pytest.raises(SubscriberError, match="billed from 2027-06-01"):
        subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 6, 1))


def test_termination_ends_the_running_addons():
    operator, package = _isp()
    static_ip = _addon(operator, "Static IP", "300.00")
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    stretch = subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 1))
    subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, 20), reason="moved away")
    stretch.refresh_from_db()
    assert stretch.end_date == D(2027, 6, 20)
    assert ledger_verify().ok
