"""Hypothesis: random sequences of money operations never break the ledger's invariants."""

import contextlib
import datetime as dt
import itertools
import os
from decimal import Decimal

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonjog.automation.services import settle_credit
from sonjog.billing.exceptions import AlreadyReversed, BillingError, InvalidAmount, InvoicePaid
from sonjog.billing.models import Allocation, Bill, Invoice, LedgerEntry, Statement
from sonjog.billing.selectors import subscriber_balance, subscriber_dues
from sonjog.billing.services import (
    adjustment_add,
    bill_generate_period,
    entry_reverse,
    invoice_void,
    outage_credit_add,
    payment_record,
)
from sonjog.billing.services.money import bill_creditable
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.periods import add_months
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.services import subscriber_change_package, subscriber_terminate

D = dt.date
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("3000"), places=2)
operation = st.one_of(
    st.tuples(st.just("generate")),
    st.tuples(st.just("pay"), amounts),
    st.tuples(st.just("credit"), amounts),
    st.tuples(st.just("debit"), amounts),
    st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=50)),
    st.tuples(st.just("change_package"), st.integers(min_value=1, max_value=28)),
    st.tuples(st.just("one_off"), st.sampled_from(["installation", "reconnection", "equipment", "late fee"]), amounts),
    st.tuples(st.just("outage"), st.integers(min_value=0, max_value=6), st.integers(min_value=60, max_value=40_000)),
    st.tuples(st.just("void"), st.integers(min_value=0, max_value=20)),
    st.tuples(st.just("terminate"), st.integers(min_value=1, max_value=28)),
    st.tuples(st.just("settle")),
)


def assert_open_items_make_the_balance(subscriber):
    """Open-item invariant: what effective bills and charges still have open, less the credit waiting
    to be allocated, is the balance; and billing's one reading of owes-now agrees."""
    balance = sum(LedgerEntry.objects.filter(subscriber=subscriber).values_list("amount", flat=True), Decimal(0))
    open_items = sum(
        (b.total - b.allocated for b in Bill.objects.filter(subscriber=subscriber, reversed_at__isnull=True)),
        Decimal(0),
    )
    waiting = sum(
        (
            -s.amount - sum(Allocation.objects.filter(source=s).values_list("amount", flat=True), Decimal(0))
            for s in LedgerEntry.objects.filter(
                subscriber=subscriber,
                amount__lt=0,
                kind__in=["payment", "adjustment", "opening_balance"],
                reversed_by__isnull=True,
            )
        ),
        Decimal(0),
    )
    assert balance == open_items - waiting, (balance, open_items, waiting)
    assert not LedgerEntry.objects.filter(subscriber=subscriber, kind="adjustment", amount__gt=0, bill=None).exists()
    today = D(2027, 6, 15)
    assert subscriber_dues(subscriber.operator_id, [subscriber.pk], today)[subscriber.pk].due == balance


def assert_fifo_saturated(subscriber_id):
    """After a payment: no money sits unallocated while an effective bill is still open."""
    bills = Bill.objects.filter(subscriber_id=subscriber_id, reversed_at__isnull=True).order_by("period_month")
    open_bills = [
        b
        for b in bills
        if sum(Allocation.objects.filter(bill=b).values_list("amount", flat=True), Decimal(0)) < b.total
    ]
    sources = LedgerEntry.objects.filter(
        subscriber_id=subscriber_id, amount__lt=0, kind__in=["payment", "adjustment"], reversed_by__isnull=True
    )
    spare = sum(
        (
            -s.amount - sum(Allocation.objects.filter(source=s).values_list("amount", flat=True), Decimal(0))
            for s in sources
        ),
        Decimal(0),
    )
    assert not (open_bills and spare > 0), (open_bills, spare)


@settings(
    max_examples=int(os.environ.get("SONJOG_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(operation, min_size=1, max_size=12),
    st.sampled_from(["monthly", "cumulative", "prepaid"]),
    st.sampled_from(["calendar", "anniversary", "fixed_day"]),
    st.booleans(),
)
def test_random_money_sequences_keep_every_invariant(ops, mode, cycle, vat_inclusive):
    operator = make_operator(
        vat_rate=Decimal("7.50"), vat_inclusive=vat_inclusive, billing_mode=mode, billing_cycle=cycle, billing_day=12
    )
    packages = [make_package(operator, "999.99"), make_package(operator, "1450.00", vat=False)]
    subscriber = make_subscriber(operator, packages[0], activation_date=D(2027, 2, 27))
    next_month = D(2027, 7, 1)
    for op in ops:
        kind = op[0]
        if kind == "generate":
            bill_generate_period(operator=operator, period_month=next_month, trigger="cli")
            next_month = add_months(next_month, 1)
        elif kind == "pay":
            payment_record(subscriber=subscriber, amount=op[1], method="cash", confirm_duplicate=True)
            assert_fifo_saturated(subscriber.pk)
        elif kind in ("credit", "debit"):
            amount = -op[1] if kind == "credit" else op[1]
            adjustment_add(subscriber=subscriber, amount=amount, reason="manual", memo=kind)
        elif kind == "reverse":
            entries = list(LedgerEntry.objects.filter(subscriber=subscriber).exclude(kind="reversal").order_by("id"))
            if entries:
                # A paid invoice is refused (InvoicePaid) until its payment is reversed.
                with contextlib.suppress(AlreadyReversed, InvoicePaid):
                    entry_reverse(entry=entries[op[1] % len(entries)], reason="property test")
        elif kind == "change_package":
            subscriber.refresh_from_db()
            target = packages[1] if subscriber.package_id == packages[0].pk else packages[0]
            with contextlib.suppress(BillingError, SubscriberError):
                subscriber_change_package(subscriber=subscriber, package=target, effective_date=D(2027, 6, op[1]))
        elif kind == "one_off":
            adjustment_add(subscriber=subscriber, amount=op[2], reason="manual", memo=op[1])
        elif kind == "outage":
            months = list(
                Bill.objects.filter(subscriber=subscriber, reversed_at__isnull=True, kind="period")
                .order_by("period_month")
                .values_list("period_month", flat=True)
            )
            if months:
                month = months[op[1] % len(months)]
                with contextlib.suppress(InvalidAmount):
                    outage_credit_add(subscriber=subscriber, period_month=month, outage_minutes=op[2], memo="")
                bill = Bill.objects.get(
                    subscriber=subscriber, period_month=month, reversed_at__isnull=True, kind="period"
                )
                assert bill_creditable(bill) >= 0  # credits never exceed the bill they credit
        elif kind == "void":
            invoices = list(Invoice.objects.filter(bill__subscriber=subscriber, voided_at__isnull=True).order_by("id"))
            if invoices:
                invoice = invoices[op[1] % len(invoices)]
                paid = Allocation.objects.filter(bill=invoice.bill, source__kind="payment").aggregate(
                    total=Sum("amount")
                )["total"]
                try:
                    invoice_void(invoice=invoice, reason="property test")
                    assert not paid
                except InvoicePaid:
                    assert paid and paid > 0
        elif kind == "terminate":
            subscriber.refresh_from_db()
            if subscriber.service_intent != "terminated":
                subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, op[1]), reason="property test")
        elif kind == "settle":
            settle_credit(operator=operator)
        subscriber.refresh_from_db()
        assert_open_items_make_the_balance(subscriber)
        report = ledger_verify()
        assert report.ok, (op, report.violations)

    ledger_sum = sum(LedgerEntry.objects.filter(subscriber=subscriber).values_list("amount", flat=True), Decimal(0))
    assert subscriber_balance(subscriber.pk) == ledger_sum
    statements = list(Statement.objects.filter(subscriber=subscriber).order_by("period_month"))
    assert statements[0].opening_due == 0
    for previous, current in itertools.pairwise(statements):
        assert current.opening_due == previous.closing_due
    assert statements[-1].closing_due == ledger_sum
    report = ledger_verify()
    assert report.ok, report.violations
