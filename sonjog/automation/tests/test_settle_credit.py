"""settle_credit: waiting payments and credit reach open bills, once."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from sonjog.automation.models import JobRun
from sonjog.automation.selectors import credit_settlement_candidates
from sonjog.automation.services import job_run_now, settle_credit
from sonjog.automation.tests.conftest import lose_allocations
from sonjog.billing.models import Allocation, Bill, EntryKind, LedgerEntry
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.flows.payments import payment_receive

pytestmark = pytest.mark.django_db
D = dt.date


def allocated_to(bill):
    return Allocation.objects.filter(bill=bill).aggregate(total=Sum("amount"))["total"] or Decimal("0")


@pytest.fixture
def isp(frozen_clock):
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "1000.00", vat=False)
    return operator, package


def test_waiting_credit_is_allocated_to_open_bills_and_a_second_run_changes_nothing(isp):
    operator, package = isp
    # Activated 1 May: May and June billed, 1000 each. 1500 paid: May settled, June half open.
    stranded = make_subscriber(operator, package, activation_date=D(2027, 5, 1))
    payment_receive(subscriber=stranded, amount=Decimal("1500.00"), method="cash")
    may, june = Bill.objects.filter(subscriber=stranded).order_by("period_month")
    lose_allocations(stranded)
    assert allocated_to(may) == 0 and allocated_to(june) == 0

    # Credit but nothing open: not a candidate. Open bills but no credit: not a candidate either.
    settled_ahead = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    payment_receive(subscriber=settled_ahead, amount=Decimal("1300.00"), method="cash")
    unpaid = make_subscriber(operator, package, activation_date=D(2027, 6, 1))

    assert credit_settlement_candidates() == [stranded.pk]
    assert credit_settlement_candidates(operator) == [stranded.pk]
    assert credit_settlement_candidates(make_operator()) == []

    first = settle_credit()
    assert first == {
        "candidates": 1,
        "settled": 1,
        "allocated": Decimal("1500.00"),
        "released": Decimal("0.00"),
        "errors": [],
    }
    assert allocated_to(may) == Decimal("1000.00") and allocated_to(june) == Decimal("500.00")
    assert ledger_verify().ok

    rows = Allocation.objects.count()
    again = settle_credit()
    assert (again["candidates"], again["settled"], again["allocated"]) == (0, 0, Decimal("0.00"))
    assert Allocation.objects.count() == rows
    assert allocated_to(Bill.objects.get(subscriber=unpaid)) == 0
    assert ledger_verify().ok


def test_an_allocation_to_a_reversed_payment_is_released_by_the_rebalance(isp):
    operator, package = isp
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    payment = payment_receive(subscriber=subscriber, amount=Decimal("1000.00"), method="cash")
    entry = LedgerEntry.objects.get(payment=payment, kind=EntryKind.PAYMENT)
    # A reversal written without its rebalance (as a raw data fix would): the bill still looks paid.
    LedgerEntry.objects.create(
        operator=operator,
        subscriber=subscriber,
        kind=EntryKind.REVERSAL,
        category=entry.category,
        amount=-entry.amount,
        effective_date=entry.effective_date,
        period_month=entry.period_month,
        reverses=entry,
        payment=payment,
        memo="bounced",
    )
    assert credit_settlement_candidates() == [subscriber.pk]
    result = settle_credit()
    assert (result["released"], result["allocated"]) == (Decimal("1000.00"), Decimal("0.00"))
    assert allocated_to(Bill.objects.get(subscriber=subscriber)) == 0
    assert credit_settlement_candidates() == []
    assert ledger_verify().checks["no_allocation_to_reversed"]


def test_the_settle_credit_job_records_its_counts(isp):
    operator, package = isp
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    payment_receive(subscriber=subscriber, amount=Decimal("400.00"), method="bkash")
    lose_allocations(subscriber)
    run = job_run_now("automation.settle_credit")
    assert run.status == JobRun.Status.OK
    assert run.outcome == {"candidates": 1, "settled": 1, "allocated": "400.00", "released": "0.00", "errors": []}
    assert job_run_now("automation.settle_credit").outcome["candidates"] == 0
