"""Business dates have sane bounds: an operator's start of records (default two years back) to a short
horizon ahead; outside that a clear error and nothing written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from sonjog.billing.exceptions import InvalidDate
from sonjog.billing.models import Bill, LedgerEntry, Payment
from sonjog.billing.services import adjustment_add, payment_record
from sonjog.billing.terms import operator_today
from sonjog.conftest import DHAKA, make_operator, make_package, make_subscriber
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import Subscriber
from sonjog.flows.subscribers import subscriber_change_package, subscriber_terminate
from sonjog.operators.dates import business_date_window

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int, int]:
    return (Subscriber.objects.count(), Bill.objects.count(), LedgerEntry.objects.count(), Payment.objects.count())


def test_an_activation_in_1900_is_refused_and_writes_nothing():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "500.00", vat=False)
    before = _counts()
    with pytest.raises(SubscriberError, match=r"before .* start of records"):
        make_subscriber(operator, package, dt.date(1900, 1, 1))
    with pytest.raises(SubscriberError, match="days ahead; check the year"):
        make_subscriber(operator, package, operator_today(operator) + dt.timedelta(days=93))
    assert _counts() == before
    make_subscriber(operator, package, operator_today(operator) + dt.timedelta(days=92))


def test_money_dates_outside_the_window_are_refused():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "500.00", vat=False)
    subscriber = make_subscriber(operator, package, operator_today(operator) - dt.timedelta(days=40))
    before = _counts()
    three_years_ago = dt.datetime.now(DHAKA) - dt.timedelta(days=3 * 365)
    with pytest.raises(InvalidDate):
        payment_record(subscriber=subscriber, amount=Decimal("100.00"), method="cash", received_at=three_years_ago)
    with pytest.raises(InvalidDate):
        adjustment_add(
            subscriber=subscriber,
            amount=Decimal("-10.00"),
            reason="manual",
            memo="typo",
            effective_date=dt.date(9999, 12, 31),
        )
    with pytest.raises(SubscriberError):
        subscriber_change_package(
            subscriber=subscriber, package=make_package(operator, "900.00"), effective_date=dt.date(1990, 1, 1)
        )
    with pytest.raises(SubscriberError):
        subscriber_terminate(subscriber=subscriber, terminated_on=dt.date(2200, 1, 1), reason="typo")
    assert _counts() == before


def test_an_earlier_start_of_records_lets_older_history_in():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "500.00", vat=False)
    old = operator_today(operator) - dt.timedelta(days=4 * 365)
    with pytest.raises(SubscriberError):
        make_subscriber(operator, package, old)
    operator.records_start = old - dt.timedelta(days=1)
    operator.save(update_fields=["records_start"])
    make_subscriber(operator, package, old)


@time_machine.travel(dt.datetime(2028, 2, 29, 10, 0, tzinfo=DHAKA), tick=False)
def test_the_window_on_a_leap_day():
    operator = make_operator()
    earliest, latest = business_date_window(operator, operator_today(operator))
    assert earliest == dt.date(2026, 2, 28) and latest == dt.date(2028, 5, 31)


def test_money_dated_into_closed_books_needs_the_permission_to_backdate():
    from sonjog.operators.services import staff_create

    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "500.00", vat=False)
    today = operator_today(operator)
    subscriber = make_subscriber(operator, package, today - dt.timedelta(days=60))
    operator.books_closed_through = today - dt.timedelta(days=10)
    operator.save(update_fields=["books_closed_through"])
    clerk = staff_create(operator=operator, username="closed-clerk", password="x-long-pass-1", role="billing_clerk")
    owner = staff_create(operator=operator, username="closed-owner", password="x-long-pass-1", role="owner")
    backdated = dt.datetime.combine(today - dt.timedelta(days=20), dt.time(11), tzinfo=DHAKA)
    before = _counts()
    with pytest.raises(InvalidDate, match="closed through"):
        payment_record(
            subscriber=subscriber, amount=Decimal("100.00"), method="cash", received_at=backdated, actor=clerk.user
        )
    assert _counts() == before
    payment_record(
        subscriber=subscriber, amount=Decimal("100.00"), method="cash", received_at=backdated, actor=owner.user
    )
    # Inside the open period a clerk needs nothing more.
    payment_record(subscriber=subscriber, amount=Decimal("50.00"), method="cash", actor=clerk.user)
