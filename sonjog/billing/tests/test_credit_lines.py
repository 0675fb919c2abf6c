"""A credit note mirrors the lines it credits (issue 9): every credit naming a bill says which lines
it took how much off, VAT in proportion; split credits of a VAT-bearing charge add up to it exactly,
the remainder on the last part; a partly credited invoice is voided only for its remainder."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import F, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonjog.billing.calculation import Creditable, apportion, credit_split, creditable_total
from sonjog.billing.exceptions import CreditExceedsBill
from sonjog.billing.models import Bill, BillLine, CreditLine, CreditNote, LedgerEntry
from sonjog.billing.selectors import addon_revenue_by_period, revenue_by_line_kind, subscriber_balance
from sonjog.billing.services import bill_credit_add, bill_generate_period, invoice_void, outage_credit_add
from sonjog.billing.services.money import bill_creditable
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.money import ZERO
from sonjog.customers.models import SubscriberAddOn
from sonjog.flows.subscribers import (
    subscriber_activate,
    subscriber_addon_activate,
    subscriber_addon_deactivate,
    subscriber_terminate,
)

D = dt.date
# frozen_clock: 15 June 2027, noon in Dhaka.


def _credited(bill: Bill) -> dict[str, tuple[Decimal, Decimal]]:
    """What stands credited of each line of a bill, by line kind (add-ons by description)."""
    found: dict[str, tuple[Decimal, Decimal]] = {}
    for line in BillLine.objects.filter(bill=bill).exclude(kind="vat"):
        sums = CreditLine.objects.filter(bill_line=line).aggregate(amount=Sum("amount"), vat=Sum("vat"))
        key = line.description if line.kind == "addon" else line.kind
        found[key] = (sums["amount"] or ZERO, sums["vat"] or ZERO)
    return found


# -- the pure split -------------------------------------------------------------------------------------

money_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)


@st.composite
def bill_lines(draw: Any) -> list[Creditable]:
    rate = draw(st.sampled_from([Decimal(0), Decimal("5"), Decimal("7.5"), Decimal("15"), Decimal("17.35")]))
    inclusive = draw(st.booleans())
    lines = []
    for line_id in range(1, draw(st.integers(min_value=1, max_value=4)) + 1):
        price = draw(money_amounts)
        if inclusive:
            vat = (price * rate / (100 + rate)).quantize(Decimal("0.01"))
            lines.append(Creditable(line_id, price - vat, vat, line_id))
        else:
            lines.append(Creditable(line_id, price, (price * rate / 100).quantize(Decimal("0.01")), line_id))
    if draw(st.booleans()):
        package = lines[0]
        discount = min(draw(money_amounts), package.amount)
        lines.append(Creditable(99, -discount, ZERO, package.line_id))
    return lines


@settings(max_examples=400, deadline=None)
@given(bill_lines(), st.lists(st.integers(min_value=1, max_value=1000), min_size=0, max_size=4))
def test_split_credits_add_up_to_the_bill_and_its_vat_to_the_paisa(lines, weights):
    whole = creditable_total(lines)
    if whole <= 0:
        return
    # 1..5 credits: random parts of the whole, the last one whatever is left.
    parts = [p for p in apportion(whole, [Decimal(w) for w in weights] + [Decimal(1)]) if p > 0]
    left = list(lines)
    taken: dict[int, list[Decimal]] = {line.line_id: [ZERO, ZERO] for line in lines}
    for part in parts:
        split = credit_split(part, left)
        assert sum((c.total for c in split), ZERO) == part
        by_id = {c.line_id: c for c in split}
        share = part / creditable_total(left)
        for line in left:
            credit = by_id.get(line.line_id)
            amount, vat = (credit.amount, credit.vat) if credit else (ZERO, ZERO)
            # Never past what is left of a line; VAT in proportion, to within rounding.
            assert min(line.amount, ZERO) <= amount <= max(line.amount, ZERO)
            assert ZERO <= vat <= line.vat
            assert abs(vat - line.vat * share) <= Decimal("0.02")
            taken[line.line_id][0] += amount
            taken[line.line_id][1] += vat
        left = [
            Creditable(
                line.line_id,
                line.amount - (by_id[line.line_id].amount if line.line_id in by_id else ZERO),
                line.vat - (by_id[line.line_id].vat if line.line_id in by_id else ZERO),
                line.unit,
            )
            for line in left
        ]
    # The last part closed every line: amounts and VAT both sum to the bill's exactly.
    for line in lines:
        assert taken[line.line_id] == [line.amount, line.vat]


def test_a_split_refuses_more_than_is_left():
    lines = [Creditable(1, Decimal("100.00"), Decimal("15.00"), 1)]
    with pytest.raises(ValueError, match=r"more than the 115\.00 left"):
        credit_split(Decimal("115.01"), lines)
    with pytest.raises(ValueError):
        credit_split(ZERO, lines)


# -- the same on real bills --------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rate=st.sampled_from(["5.00", "7.50", "15.00"]),
    inclusive=st.booleans(),
    price=st.decimals(min_value=Decimal("100"), max_value=Decimal("3000"), places=2),
    discount=st.sampled_from(["0", "37.50"]),
    addons=st.lists(st.tuples(st.decimals(min_value=1, max_value=900, places=2), st.booleans()), max_size=2),
    weights=st.lists(st.integers(min_value=1, max_value=100), max_size=4),
)
@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_split_credits_of_a_vat_bill_credit_it_exactly(rate, inclusive, price, discount, addons, weights):
    operator = make_operator(vat_rate=Decimal(rate), vat_inclusive=inclusive, billing_cycle="calendar")
    package = make_package(operator, str(price), vat=True)
    subscriber = make_subscriber(operator, package, None, monthly_discount=Decimal(discount))
    for index, (addon_price, vat) in enumerate(addons):
        addon = addon_create(operator=operator, name=f"Add-on {index}", price=addon_price, vat_applicable=vat)
        subscriber_addon_activate(subscriber=subscriber, addon=addon, start_date=D(2027, 6, 1))
    subscriber_activate(subscriber=subscriber, activation_date=D(2027, 6, 1))
    bill = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    parts = [p for p in apportion(bill.total, [Decimal(w) for w in weights] + [Decimal(1)]) if p > 0]
    for part in parts:
        entry = bill_credit_add(bill=bill, amount=part, memo="partial credit")
        assert entry.credit_lines.aggregate(total=Sum(F("amount") + F("vat")))["total"] == part
    credits = LedgerEntry.objects.filter(bill=bill, kind="adjustment")
    assert -sum(e.amount for e in credits) == bill.total
    lines = CreditLine.objects.filter(entry__in=credits)
    assert (lines.aggregate(vat=Sum("vat"))["vat"] or ZERO) == bill.vat
    for line in BillLine.objects.filter(bill=bill).exclude(kind="vat"):
        credited = lines.filter(bill_line=line).aggregate(amount=Sum("amount"), vat=Sum("vat"))
        assert ((credited["amount"] or ZERO), (credited["vat"] or ZERO)) == (line.amount, line.vat)
    assert bill_creditable(bill) == 0
    with pytest.raises(CreditExceedsBill):
        bill_credit_add(bill=bill, amount=Decimal("0.01"), memo="one paisa more")
    report = ledger_verify()
    assert report.ok, report.violations


# -- what a credit note shows ----------------------------------------------------------------------------


def _isp_with_addon(**settings: Any):
    operator = make_operator(vat_rate=Decimal("15.00"), vat_inclusive=False, billing_cycle="calendar", **settings)
    package = make_package(operator, "1000.00", vat=True, name="Home 10M")
    static_ip = addon_create(operator=operator, name="Static IP", price=Decimal("300.00"), vat_applicable=True)
    return operator, package, static_ip


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_an_outage_credit_names_the_lines_it_credits_and_revenue_nets_it_per_kind():
    operator, package, static_ip = _isp_with_addon()
    subscriber = make_subscriber(operator, package, None, monthly_discount=Decimal("100.00"))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 1))
    subscriber_activate(subscriber=subscriber, activation_date=D(2027, 6, 1))
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    # Package 1000 - discount 100, VAT 135; Static IP 300, VAT 45: 1380.00.
    assert june.total == Decimal("1380.00")
    # 15 of 30 days out: half of everything, line by line.
    entry = outage_credit_add(subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=15 * 24 * 60, memo="")
    assert entry.amount == Decimal("-690.00")
    assert _credited(june) == {
        "package": (Decimal("500.00"), Decimal("67.50")),
        "discount": (Decimal("-50.00"), ZERO),
        "Static IP": (Decimal("150.00"), Decimal("22.50")),
    }
    assert addon_revenue_by_period([operator.pk], D(2027, 6, 1), D(2027, 6, 1)) == {D(2027, 6, 1): Decimal("172.50")}
    # The many-months reading agrees with the one-month one.
    assert addon_revenue_by_period([operator.pk], D(2027, 1, 1), D(2027, 12, 1)) == {D(2027, 6, 1): Decimal("172.50")}
    assert revenue_by_line_kind([operator.pk], D(2027, 6, 1), D(2027, 6, 1)) == {
        D(2027, 6, 1): {"package": Decimal("517.50"), "addon": Decimal("172.50")}
    }
    # Ending the add-on on the 21st credits 10 days of its line, in proportion to what is left of it.
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 6, 21))
    addon_credit = LedgerEntry.objects.get(subscriber=subscriber, adjustment_reason="addon")
    assert addon_credit.amount == Decimal("-115.00")
    assert list(addon_credit.credit_lines.values_list("amount", "vat")) == [(Decimal("100.00"), Decimal("15.00"))]
    assert addon_revenue_by_period([operator.pk], D(2027, 6, 1), D(2027, 6, 1)) == {D(2027, 6, 1): Decimal("57.50")}
    kinds = revenue_by_line_kind([operator.pk], D(2027, 6, 1), D(2027, 6, 1))[D(2027, 6, 1)]
    assert sum(kinds.values()) == subscriber_balance(subscriber.pk) == Decimal("575.00")
    assert ledger_verify().ok


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_a_partly_credited_invoice_is_voided_only_for_its_remainder():
    operator, package, _static_ip = _isp_with_addon()
    subscriber = make_subscriber(operator, package, D(2027, 6, 1))
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    assert june.total == Decimal("1150.00")
    outage = outage_credit_add(subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=10 * 24 * 60, memo="")
    assert outage.amount == Decimal("-383.33")
    note = invoice_void(invoice=june.invoice, reason="wrong package")
    # The outage credit is taken back with the void, so the note credits what was left: 766.67.
    assert note.amount == Decimal("766.67")
    assert LedgerEntry.objects.filter(reverses=outage).exists()
    assert subscriber_balance(subscriber.pk) == 0
    void_lines = CreditNote.objects.get(pk=note.pk).lines.select_related("bill_line").filter(entry=note.reversal_entry)
    lines = {line.bill_line.kind: (line.amount, line.vat) for line in void_lines}
    assert lines == {"package": (Decimal("1000.00"), Decimal("150.00"))}
    remainder = CreditLine.objects.filter(credit_note=note).aggregate(amount=Sum("amount"), vat=Sum("vat"))
    assert (remainder["amount"], remainder["vat"]) == (Decimal("666.67"), Decimal("100.00"))
    # Every line of the voided bill stands credited whole, no more.
    assert _credited(june) == {"package": (Decimal("1000.00"), Decimal("150.00"))}
    # Reissued, the period is billed in full again; an outage credit for it is made afresh if due.
    bill_generate_period(operator=operator, period_month=D(2027, 6, 1), trigger="cli")
    assert subscriber_balance(subscriber.pk) == Decimal("1150.00")
    assert ledger_verify().ok


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_termination_takes_back_the_credits_of_the_bills_it_voids():
    operator, package, static_ip = _isp_with_addon()
    subscriber = make_subscriber(operator, package, D(2027, 6, 1))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 1))
    bill_generate_period(operator=operator, period_month=D(2027, 7, 1), trigger="cli")
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    # The add-on ends mid-July: July's add-on line is credited for its last days ...
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 7, 16))
    assert bill_creditable(july) < july.total
    # ... and terminating in June voids July: with that credit taken back, nothing is credited twice.
    subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, 21), reason="moved away")
    july.refresh_from_db()
    assert july.reversed_at is not None
    assert LedgerEntry.objects.filter(bill=july).aggregate(total=Sum("amount"))["total"] == 0
    report = ledger_verify()
    assert report.ok, report.violations


# -- a period billed again after a one-off add-on charge ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_a_voided_period_billed_again_does_not_bill_an_addon_charged_for_it_twice():
    operator, package, static_ip = _isp_with_addon()
    subscriber = make_subscriber(operator, package, D(2027, 6, 1))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 16))
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    assert charge.total == Decimal("172.50")  # 15 of June's 30 days, VAT included
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    invoice_void(invoice=june.invoice, reason="wrong package")
    result = bill_generate_period(operator=operator, period_month=D(2027, 6, 1), trigger="cli", today=D(2027, 6, 15))
    assert result.created == 1
    reissued = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD, reversed_at__isnull=True)
    # The charge stands and covers the add-on's days of June; the reissued bill is the package only.
    assert not reissued.lines.filter(kind="addon").exists() and reissued.total == Decimal("1150.00")
    assert addon_revenue_by_period([operator.pk], D(2027, 6, 1), D(2027, 6, 1)) == {D(2027, 6, 1): Decimal("172.50")}
    assert subscriber_balance(subscriber.pk) == Decimal("1322.50")
    # July, not charged one-off, carries the add-on in full.
    bill_generate_period(operator=operator, period_month=D(2027, 7, 1), trigger="cli", today=D(2027, 6, 15))
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1), reversed_at__isnull=True)
    assert july.lines.get(kind="addon").amount == Decimal("300.00")
    # Ending the add-on on the 21st credits the charge for its last 10 of 15 days, and July whole.
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 6, 21))
    credits = LedgerEntry.objects.filter(subscriber=subscriber, adjustment_reason="addon", amount__lt=0)
    assert sorted((e.bill_id, e.amount) for e in credits) == [
        (charge.pk, Decimal("-115.00")),
        (july.pk, Decimal("-345.00")),
    ]
    assert ledger_verify().ok


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_a_reissued_bill_bills_the_addon_days_before_its_charge():
    """An add-on running from before the period whose charge covers only part of it (the bill it was
    charged against started later): the reissued bill bills the days before the charge, and ending
    the add-on credits each bill for its own days."""
    operator, package, static_ip = _isp_with_addon()
    subscriber = make_subscriber(operator, package, D(2027, 6, 1))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 16))
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    invoice_void(invoice=june.invoice, reason="wrong start")
    # The stretch is moved to the 6th (a correction made in the database, as an import would): June
    # 6-16 was never billed, June 16-30 was, by the charge.
    SubscriberAddOn.objects.filter(subscriber=subscriber).update(start_date=D(2027, 6, 6))
    bill_generate_period(operator=operator, period_month=D(2027, 6, 1), trigger="cli", today=D(2027, 6, 15))
    reissued = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD, reversed_at__isnull=True)
    line = reissued.lines.get(kind="addon")
    assert (line.description, line.amount, line.vat) == ("Static IP (10 days)", Decimal("100.00"), Decimal("15.00"))
    subscriber_addon_deactivate(subscriber=subscriber, addon=static_ip, end_date=D(2027, 6, 11))
    credits = dict(
        LedgerEntry.objects.filter(subscriber=subscriber, adjustment_reason="addon", amount__lt=0).values_list(
            "bill_id", "amount"
        )
    )
    # Half of the reissued bill's 10 days, all of the charge's 15.
    assert credits == {reissued.pk: Decimal("-57.50"), charge.pk: Decimal("-172.50")}
    assert ledger_verify().ok


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_termination_voids_and_credits_the_one_off_addon_charges_with_the_bills():
    operator, package, static_ip = _isp_with_addon()
    subscriber = make_subscriber(operator, package, D(2027, 6, 1))
    bill_generate_period(operator=operator, period_month=D(2027, 7, 1), trigger="cli", today=D(2027, 6, 15))
    # Started on the 16th with June and July already billed: two one-off charges.
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 16))
    charges = Bill.objects.filter(subscriber=subscriber, kind=Bill.Kind.CHARGE).order_by("period_month")
    june_charge, july_charge = charges
    assert (june_charge.total, july_charge.total) == (Decimal("172.50"), Decimal("345.00"))
    subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, 21), reason="moved away")
    july_charge.refresh_from_db()
    # July's charge goes with July's bill; June's is credited for its 10 unused days of 15, as June's
    # bill is for its 10 of 30.
    assert july_charge.reversed_at is not None
    termination = LedgerEntry.objects.filter(subscriber=subscriber, adjustment_reason="termination")
    credits = dict(termination.values_list("bill_id", "amount"))
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD, period_month=D(2027, 6, 1))
    assert credits == {june.pk: Decimal("-383.33"), june_charge.pk: Decimal("-115.00")}
    assert subscriber_balance(subscriber.pk) == Decimal("824.17")  # 1150 - 383.33 + 172.50 - 115
    report = ledger_verify()
    assert report.ok, report.violations


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_a_period_billed_again_before_later_bills_sees_its_addons_and_their_charges():
    """The period billed again lies before bills that stand (July and August billed ahead): the run
    still reads the add-ons and one-off charges of that period, not only of those after the latest
    bill (found by the property test)."""
    operator, package, static_ip = _isp_with_addon()
    iptv = addon_create(operator=operator, name="IPTV", price=Decimal("200.00"), vat_applicable=False)
    subscriber = make_subscriber(operator, package, None)
    # IPTV runs on June's own bill, 1-20 June; the static IP starts on 1 June once June, July and
    # August are billed: three one-off charges.
    subscriber_addon_activate(subscriber=subscriber, addon=iptv, start_date=D(2027, 6, 1))
    subscriber_activate(subscriber=subscriber, activation_date=D(2027, 6, 1))
    for month in (D(2027, 7, 1), D(2027, 8, 1)):
        bill_generate_period(operator=operator, period_month=month, trigger="cli", today=D(2027, 6, 15))
    subscriber_addon_deactivate(subscriber=subscriber, addon=iptv, end_date=D(2027, 6, 21))
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip, start_date=D(2027, 6, 1))
    assert Bill.objects.filter(subscriber=subscriber, kind=Bill.Kind.CHARGE).count() == 3
    june = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD, period_month=D(2027, 6, 1))
    invoice_void(invoice=june.invoice, reason="reissue")
    bill_generate_period(operator=operator, period_month=D(2027, 6, 1), trigger="cli", today=D(2027, 6, 15))
    reissued = Bill.objects.get(
        subscriber=subscriber, period_month=D(2027, 6, 1), reversed_at__isnull=True, kind="period"
    )
    # IPTV for its 20 days (200 x 20/30), the static IP not at all: its charge bills June.
    assert [(line.description, line.amount) for line in reissued.lines.filter(kind="addon")] == [
        ("IPTV (20 days)", Decimal("133.33"))
    ]
    report = ledger_verify()
    assert report.ok, report.violations
