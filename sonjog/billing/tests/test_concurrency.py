"""Real concurrency: separate threads, each with its own PostgreSQL connection, committing for real."""

import datetime as dt
from decimal import Decimal

import pytest

from sonjog.billing.exceptions import DuplicatePaymentSuspected
from sonjog.billing.models import Bill, Invoice, Payment
from sonjog.billing.services import bill_generate_period, payment_record
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import Subscriber

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_runs_signup_and_rerun_bill_each_period_exactly_once():
    operator = make_operator(vat_rate=Decimal("5.00"))
    package = make_package(operator, "800.00")
    today = operator_today(operator)
    for _ in range(40):
        make_subscriber(operator, package, activation_date=today - dt.timedelta(days=70))
    target = add_months(month_start(today), 1)

    results = run_at_once(
        lambda: bill_generate_period(operator=operator, period_month=target, trigger="nightly"),
        lambda: bill_generate_period(operator=operator, period_month=target, trigger="catch_up"),
        lambda: make_subscriber(operator, package, activation_date=today),
        lambda: bill_generate_period(operator=operator, period_month=target, trigger="staff"),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    runs = [results[0], results[1], results[3]]
    # Whatever the interleaving, the 40 existing subscribers (and the new one, if its row was
    # visible to a run) are billed for the target month exactly once between the three runs.
    assert sum(run.created for run in runs) in (40, 41)
    for subscriber in Subscriber.objects.filter(operator=operator):
        counts: dict[dt.date, int] = {}
        for month in Bill.objects.filter(subscriber=subscriber, reversed_at__isnull=True).values_list(
            "period_month", flat=True
        ):
            counts[month] = counts.get(month, 0) + 1
        assert set(counts.values()) == {1}, (subscriber.customer_id, counts)
    numbers = sorted(Invoice.objects.filter(operator=operator).values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    assert ledger_verify().ok


def test_two_identical_payments_a_second_apart_give_one_payment_and_one_refusal():
    import time

    operator = make_operator(vat_rate=Decimal("0"))
    subscriber = make_subscriber(operator, make_package(operator, "500.00"), activation_date=operator_today(operator))

    def pay(delay):
        time.sleep(delay)
        return payment_record(subscriber=subscriber, amount=Decimal("500.00"), method="cash")

    results = run_at_once(lambda: pay(0), lambda: pay(1.0))
    payments = [r for r in results if isinstance(r, Payment)]
    refusals = [r for r in results if isinstance(r, DuplicatePaymentSuspected)]
    assert len(payments) == 1 and len(refusals) == 1, results
    assert "confirm" in str(refusals[0])
    assert Payment.objects.filter(subscriber=subscriber).count() == 1


def test_simultaneous_identical_payments_are_serialised_by_the_subscriber_lock():
    operator = make_operator(vat_rate=Decimal("0"))
    subscriber = make_subscriber(operator, make_package(operator, "500.00"), activation_date=operator_today(operator))
    results = run_at_once(
        *[lambda: payment_record(subscriber=subscriber, amount=Decimal("250.00"), method="bkash")] * 4
    )
    assert sum(isinstance(r, Payment) for r in results) == 1
    assert sum(isinstance(r, DuplicatePaymentSuspected) for r in results) == 3
    assert ledger_verify().ok
