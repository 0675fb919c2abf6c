"""Every charge is an open item; credits and voids are bounded (issue: money that cannot drift)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sonjog.billing.exceptions import InvalidAmount, InvoicePaid
from sonjog.billing.models import Bill, Invoice, LedgerEntry
from sonjog.billing.selectors import subscriber_balance, subscriber_dues
from sonjog.billing.services import (
    adjustment_add,
    bill_generate_period,
    entry_reverse,
    invoice_void,
    outage_credit_add,
    payment_record,
)
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.flows.subscribers import subscriber_change_package

D = dt.date
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen_clock")]
# frozen_clock: 15 June 2027, noon in Dhaka.


def _isp(mode: str = "monthly"):
    operator = make_operator(vat_rate=Decimal("0"), billing_mode=mode, billing_cycle="calendar")
    basic = make_package(operator, "600.00", vat=False)
    fast = make_package(operator, "1200.00", vat=False)
    return operator, basic, fast


def test_an_upgrade_paid_in_full_leaves_nothing_owed_and_nothing_overdue():
    operator, basic, fast = _isp()
    subscriber = make_subscriber(operator, basic, D(2027, 6, 1))
    payment_record(subscriber=subscriber, amount=Decimal("600.00"), method="cash")
    # Mid-period upgrade on the 16th: 15 of 30 days credited at 600, charged at 1200.
    subscriber_change_package(subscriber=subscriber, package=fast, effective_date=D(2027, 6, 16))
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    assert charge.total == Decimal("600.00") and charge.due_date == D(2027, 6, 23)
    owed = subscriber_balance(subscriber.pk)
    assert owed == Decimal("300.00")  # 600 charge less the 300 credit for the old package's days
    payment_record(subscriber=subscriber, amount=owed, method="bkash")
    assert subscriber_balance(subscriber.pk) == 0
    # The July bill is not eaten by credit that does not exist.
    bill_generate_period(operator=operator, period_month=D(2027, 7, 1), trigger="cli")
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1), kind=Bill.Kind.PERIOD)
    assert july.total == Decimal("1200.00") and july.allocated == 0
    assert subscriber_balance(subscriber.pk) == Decimal("1200.00")
    dues = subscriber_dues(operator.pk, [subscriber.pk], D(2027, 7, 2))[subscriber.pk]
    assert dues.due == Decimal("1200.00") and not dues.is_overdue
    assert ledger_verify().ok


def test_a_one_off_charge_is_paid_like_a_bill_and_is_overdue_only_after_its_due_days():
    operator, basic, _fast = _isp()
    subscriber = make_subscriber(operator, basic, D(2027, 6, 1))
    payment_record(subscriber=subscriber, amount=Decimal("600.00"), method="cash")
    adjustment_add(subscriber=subscriber, amount=Decimal("500.00"), reason="manual", memo="Installation")
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    assert [line.description for line in charge.lines.all()] == ["Installation"]
    assert not subscriber_dues(operator.pk, [subscriber.pk], D(2027, 6, 20))[subscriber.pk].is_overdue
    late = subscriber_dues(operator.pk, [subscriber.pk], D(2027, 6, 26))[subscriber.pk]  # due 22nd + 3 grace
    assert late.is_overdue and late.overdue_amount == Decimal("500.00")
    payment_record(subscriber=subscriber, amount=Decimal("500.00"), method="cash")
    charge.refresh_from_db()
    assert charge.allocated == charge.total
    # Reversing the charge releases the payment to waiting credit; nothing is counted twice.
    entry_reverse(entry=LedgerEntry.objects.get(bill=charge), reason="waived")
    charge.refresh_from_db()
    assert charge.reversed_at is not None and charge.allocated == 0
    assert subscriber_balance(subscriber.pk) == Decimal("-500.00")
    assert ledger_verify().ok


def test_a_voided_unpaid_bill_is_billed_again_and_a_paid_one_is_refused():
    operator, basic, _fast = _isp()
    subscriber = make_subscriber(operator, basic, D(2027, 6, 1))
    june = Invoice.objects.get(bill__subscriber=subscriber, bill__period_month=D(2027, 6, 1))
    invoice_void(invoice=june, reason="wrong package")
    again = bill_generate_period(operator=operator, period_month=D(2027, 6, 1), trigger="cli")
    assert again.created == 1
    reissued = Invoice.objects.get(bill__subscriber=subscriber, bill__period_month=D(2027, 6, 1), voided_at=None)
    assert reissued.pk != june.pk
    payment = payment_record(subscriber=subscriber, amount=Decimal("100.00"), method="cash")
    with pytest.raises(InvoicePaid, match="reverse that payment first"):
        invoice_void(invoice=reissued, reason="still wrong")
    entry_reverse(entry=LedgerEntry.objects.get(payment=payment, kind="payment"), reason="move the money")
    invoice_void(invoice=reissued, reason="still wrong")
    assert ledger_verify().ok


def test_two_outage_credits_of_twenty_days_credit_at_most_the_bill():
    operator, basic, _fast = _isp()
    subscriber = make_subscriber(operator, basic, D(2027, 6, 1))
    twenty_days = 20 * 24 * 60
    outage_credit_add(subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=twenty_days, memo="fibre cut")
    outage_credit_add(subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=twenty_days, memo="again")
    credits = LedgerEntry.objects.filter(subscriber=subscriber, adjustment_reason="outage")
    assert sorted(e.amount for e in credits) == [Decimal("-400.00"), Decimal("-200.00")]
    with pytest.raises(InvalidAmount, match="already fully credited"):
        outage_credit_add(subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=60, memo="more")
    assert ledger_verify().ok


def test_concurrent_outage_credits_never_exceed_the_bill():
    operator, basic, _fast = _isp()
    subscriber = make_subscriber(operator, basic, D(2027, 6, 1))
    twenty_days = 20 * 24 * 60

    def credit():
        return outage_credit_add(
            subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=twenty_days, memo="storm"
        )

    results = run_at_once(credit, credit, credit, credit)
    credited = -sum(e.amount for e in LedgerEntry.objects.filter(subscriber=subscriber, adjustment_reason="outage"))
    assert credited == Decimal("600.00")
    assert sum(isinstance(r, InvalidAmount) for r in results) == 2
    assert ledger_verify().ok
