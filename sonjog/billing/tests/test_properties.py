"""Hypothesis: random sequences of money operations never break the ledger's invariants."""

import contextlib
import datetime as dt
import itertools
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonjog.billing.exceptions import AlreadyReversed, BillingError
from sonjog.billing.models import Allocation, Bill, LedgerEntry, Statement
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.services import adjustment_add, bill_generate_period, entry_reverse, payment_record
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.periods import add_months
from sonjog.customers.services import subscriber_change_package

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
)


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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
                with contextlib.suppress(AlreadyReversed):
                    entry_reverse(entry=entries[op[1] % len(entries)], reason="property test")
        elif kind == "change_package":
            subscriber.refresh_from_db()
            target = packages[1] if subscriber.package_id == packages[0].pk else packages[0]
            with contextlib.suppress(BillingError):
                subscriber_change_package(subscriber=subscriber, package=target, effective_date=D(2027, 6, op[1]))

    ledger_sum = sum(LedgerEntry.objects.filter(subscriber=subscriber).values_list("amount", flat=True), Decimal(0))
    assert subscriber_balance(subscriber.pk) == ledger_sum
    statements = list(Statement.objects.filter(subscriber=subscriber).order_by("period_month"))
    assert statements[0].opening_due == 0
    for previous, current in itertools.pairwise(statements):
        assert current.opening_due == previous.closing_due
    assert statements[-1].closing_due == ledger_sum
    report = ledger_verify()
    assert report.ok, report.violations
