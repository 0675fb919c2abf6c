import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction

from sonjog.billing.exceptions import (
    AlreadyReversed,
    DuplicateGatewayTransaction,
    DuplicatePaymentSuspected,
    InvalidAmount,
    InvalidPaymentMethod,
    InvoiceAlreadyVoided,
    InvoicePaid,
    NotReversible,
)
from sonjog.billing.models import Allocation, Bill, CreditNote, Invoice, LedgerEntry, Payment, Statement
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.services import (
    adjustment_add,
    bill_generate_period,
    entry_reverse,
    invoice_void,
    outage_credit_add,
    payment_record,
)
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.customers.models import Subscriber
from sonjog.flows.subscribers import subscriber_change_package, subscriber_terminate

D = dt.date
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


def allocated(bill):
    return sum(Allocation.objects.filter(bill=bill).values_list("amount", flat=True), Decimal(0))


def test_payment_settles_the_oldest_open_bills_first(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 4, 1))  # Apr, May, Jun billed
    april, may, june = Bill.objects.filter(subscriber=subscriber).order_by("period_month")
    payment_record(subscriber=subscriber, amount=Decimal("1500.00"), method="cash")
    assert (allocated(april), allocated(may), allocated(june)) == (Decimal("1000.00"), Decimal("500.00"), 0)
    assert subscriber_balance(subscriber.pk) == Decimal("1500.00")


def test_each_bill_carries_its_allocated_amount_and_allocations_are_append_only(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 4, 1))
    payment = payment_record(subscriber=subscriber, amount=Decimal("1500.00"), method="cash")

    def carried():
        return list(
            Bill.objects.filter(subscriber=subscriber).order_by("period_month").values_list("allocated", flat=True)
        )

    bills = list(Bill.objects.filter(subscriber=subscriber).order_by("period_month"))
    assert carried() == [allocated(bill) for bill in bills] == [Decimal("1000.00"), Decimal("500.00"), 0]
    entry_reverse(entry=LedgerEntry.objects.get(payment=payment), reason="cheque bounced")  # releases follow
    assert carried() == [0, 0, 0]
    allocation = Allocation.objects.filter(bill__subscriber=subscriber).first()
    assert allocation is not None
    for statement in (
        "UPDATE billing_allocation SET amount = 1 WHERE id = %s",
        "DELETE FROM billing_allocation WHERE id = %s",
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [allocation.pk])
    # More than the bill's total cannot be recorded as covered, whatever writes it.
    with pytest.raises(IntegrityError, match="bill_allocated_within_total"), transaction.atomic():
        Bill.objects.filter(pk=bills[0].pk).update(allocated=Decimal("1000.01"))
    assert ledger_verify().ok
    # A figure changed behind the trigger's back is caught by the verifier.
    Bill.objects.filter(pk=bills[1].pk).update(allocated=Decimal("10.00"))
    report = ledger_verify()
    assert not report.ok and report.violations["bill_allocated_matches_allocations"] == [
        [bills[1].pk, Decimal("10.00"), Decimal("0.00")]
    ]


def test_excess_is_credit_that_the_next_bill_consumes(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    payment_record(subscriber=subscriber, amount=Decimal("1700.00"), method="bkash", reference="TX1")
    assert subscriber_balance(subscriber.pk) == Decimal("-700.00")
    bill_generate_period(operator=operator, period_month=D(2027, 7, 1), trigger="cli")
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    assert allocated(july) == Decimal("700.00")
    assert subscriber_balance(subscriber.pk) == Decimal("300.00")
    assert ledger_verify().ok


def test_duplicate_payment_within_30_seconds_needs_confirmation(operator, package, frozen_clock):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    payment_record(subscriber=subscriber, amount=Decimal("500.00"), method="cash")
    frozen_clock.advance(seconds=1)
    with pytest.raises(DuplicatePaymentSuspected, match="confirm"):
        payment_record(subscriber=subscriber, amount=Decimal("500.00"), method="cash")
    assert Payment.objects.filter(subscriber=subscriber).count() == 1
    payment_record(subscriber=subscriber, amount=Decimal("500.00"), method="cash", confirm_duplicate=True)
    assert Payment.objects.filter(subscriber=subscriber).count() == 2
    # A different method, or the same after the window, is not a duplicate.
    payment_record(subscriber=subscriber, amount=Decimal("500.00"), method="nagad")
    frozen_clock.advance(seconds=31)
    payment_record(subscriber=subscriber, amount=Decimal("500.00"), method="cash")
    assert Payment.objects.filter(subscriber=subscriber).count() == 4


def test_gateway_transaction_is_recorded_once(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    payment_record(
        subscriber=subscriber, amount=Decimal("100.00"), method="bkash", gateway="bkash", gateway_transaction_id="9XK2"
    )
    with pytest.raises(DuplicateGatewayTransaction):
        payment_record(
            subscriber=subscriber,
            amount=Decimal("200.00"),
            method="bkash",
            gateway="bkash",
            gateway_transaction_id="9XK2",
        )
    assert LedgerEntry.objects.filter(subscriber=subscriber, kind="payment").count() == 1


@pytest.mark.parametrize(
    ("amount", "method", "error"),
    [
        (Decimal("0"), "cash", InvalidAmount),
        (Decimal("-5"), "cash", InvalidAmount),
        (Decimal("1.001"), "cash", InvalidAmount),
        (Decimal("5"), "barter", InvalidPaymentMethod),
    ],
)
def test_bad_payments_change_nothing(operator, package, amount, method, error):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    before = LedgerEntry.objects.count()
    with pytest.raises(error):
        payment_record(subscriber=subscriber, amount=amount, method=method)
    assert LedgerEntry.objects.count() == before


def test_ledger_refuses_update_and_delete(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    entry = LedgerEntry.objects.filter(subscriber=subscriber).get()
    for statement in (
        "UPDATE billing_ledgerentry SET amount = 0 WHERE id = %s",
        "DELETE FROM billing_ledgerentry WHERE id = %s",
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [entry.pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(memo="edited")


def test_reversal_of_a_payment_cascades_statements_forward(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 3, 1))
    payment = payment_record(
        subscriber=subscriber,
        amount=Decimal("1000.00"),
        method="cash",
        received_at=dt.datetime(2027, 4, 10, 6, 0, tzinfo=dt.UTC),
    )
    closing_before = list(Statement.objects.filter(subscriber=subscriber).values_list("closing_due", flat=True))
    entry = LedgerEntry.objects.get(payment=payment)
    reversal = entry_reverse(entry=entry, reason="cheque bounced")
    assert reversal.period_month == D(2027, 4, 1)
    rows = Statement.objects.filter(subscriber=subscriber).order_by("period_month")
    april = rows.get(period_month=D(2027, 4, 1))
    assert april.paid == 0
    # April, May and June each close 1000 higher than before the reversal.
    closing_after = list(rows.values_list("closing_due", flat=True))
    assert [a - b for a, b in zip(closing_after, closing_before, strict=True)] == [0, 1000, 1000, 1000]
    with pytest.raises(AlreadyReversed):
        entry_reverse(entry=entry, reason="again")
    with pytest.raises(NotReversible):
        entry_reverse(entry=reversal, reason="undo the undo")
    assert sum(Allocation.objects.filter(source=entry).values_list("amount", flat=True)) == 0
    assert ledger_verify().ok


def test_database_refuses_a_second_reversal_even_without_the_service(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    entry = LedgerEntry.objects.get(subscriber=subscriber, kind="bill")
    entry_reverse(entry=entry, reason="wrong package")
    with pytest.raises(AlreadyReversed):  # a bill's second reversal, not a second invoice void
        entry_reverse(entry=entry, reason="wrong package again")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            operator=operator,
            subscriber=subscriber,
            kind="reversal",
            category="billed",
            amount=-entry.amount,
            effective_date=entry.effective_date,
            period_month=entry.period_month,
            reverses=entry,
        )
    with pytest.raises((IntegrityError, InternalError), match="mirror"), transaction.atomic():
        other = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        other_entry = LedgerEntry.objects.get(subscriber=other, kind="bill")
        LedgerEntry.objects.create(
            operator=operator,
            subscriber=other,
            kind="reversal",
            category="billed",
            amount=Decimal("-1.00"),
            effective_date=other_entry.effective_date,
            period_month=other_entry.period_month,
            reverses=other_entry,
        )


def test_invoice_void_issues_a_numbered_credit_note_and_releases_allocations(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 5, 1))
    payment = payment_record(subscriber=subscriber, amount=Decimal("1000.00"), method="cash")
    may = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 5, 1))
    # A paid invoice is not voided under its payment: the payment is reversed first.
    with pytest.raises(InvoicePaid, match="reverse that payment first"):
        invoice_void(invoice=Invoice.objects.get(bill=may), reason="billed in error")
    entry_reverse(entry=LedgerEntry.objects.get(payment=payment, kind="payment"), reason="to void May")
    note = invoice_void(invoice=Invoice.objects.get(bill=may), reason="billed in error")
    assert (note.number, note.amount) == (1, Decimal("1000.00"))
    may.refresh_from_db()
    assert may.reversed_at is not None and allocated(may) == 0
    june = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 6, 1))
    assert allocated(june) == 0
    with pytest.raises(InvoiceAlreadyVoided):
        invoice_void(invoice=Invoice.objects.get(bill=may), reason="twice")
    # Reversing a bill entry with an invoice goes through the credit note too.
    entry_reverse(entry=LedgerEntry.objects.get(bill=june, kind="bill"), reason="also wrong")
    assert list(CreditNote.objects.filter(operator=operator).values_list("number", flat=True).order_by("number")) == [
        1,
        2,
    ]
    assert ledger_verify().ok


def test_adjustments_and_outage_credit(operator, package, owner):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    adjustment_add(subscriber=subscriber, amount=Decimal("-150.00"), reason="manual", memo="goodwill", actor=owner)
    # June has 30 days = 43,200 minutes; 6 hours out = 360 minutes -> 1000 * 360 / 43200 = 8.33.
    entry = outage_credit_add(subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=360, memo="fiber cut")
    assert entry.amount == Decimal("-8.33")
    assert subscriber_balance(subscriber.pk) == Decimal("841.67")
    with pytest.raises(InvalidAmount):
        adjustment_add(subscriber=subscriber, amount=Decimal("0"), reason="manual", memo="nothing")
    assert ledger_verify().ok


def test_package_change_mid_period_credits_old_and_charges_new(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    bigger = make_package(operator, "1600.00", vat=False)
    subscriber_change_package(subscriber=subscriber, package=bigger, effective_date=D(2027, 6, 16))
    entries = list(
        LedgerEntry.objects.filter(subscriber=subscriber, kind="adjustment")
        .order_by("id")
        .values_list("amount", flat=True)
    )
    # 15 of 30 days remain: credit 500 of the old 1000, charge 800 of the new 1600.
    assert entries == [Decimal("-500.00"), Decimal("800.00")]
    assert Subscriber.objects.get(pk=subscriber.pk).package == bigger
    assert subscriber_balance(subscriber.pk) == Decimal("1300.00")


def test_termination_credits_unused_days_and_reverses_later_bills(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 5, 1))
    bill_generate_period(operator=operator, period_month=D(2027, 7, 1), trigger="cli")
    subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, 21), reason="moved away")
    july = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 7, 1))
    assert july.reversed_at is not None
    credit = LedgerEntry.objects.get(subscriber=subscriber, kind="adjustment", adjustment_reason="termination")
    assert credit.amount == Decimal("-333.33")  # 10 of June's 30 days unused
    assert subscriber_balance(subscriber.pk) == Decimal("1666.67")
    # Terminated subscribers are not billed again.
    assert bill_generate_period(operator=operator, period_month=D(2027, 8, 1), trigger="cli").created == 0
    assert ledger_verify().ok


def test_prepaid_expiry_follows_payments():
    operator = make_operator(vat_rate=Decimal("0"), billing_mode="prepaid")
    subscriber = make_subscriber(operator, make_package(operator, "600.00", vat=False), activation_date=D(2027, 6, 1))
    assert Subscriber.objects.get(pk=subscriber.pk).expires_on is None
    payment_record(subscriber=subscriber, amount=Decimal("600.00"), method="cash")
    assert Subscriber.objects.get(pk=subscriber.pk).expires_on == D(2027, 7, 1)
    # Two more months of credit carry validity forward period by period; half a month buys 15 days.
    payment_record(subscriber=subscriber, amount=Decimal("1500.00"), method="nagad")
    assert Subscriber.objects.get(pk=subscriber.pk).expires_on == D(2027, 9, 16)
