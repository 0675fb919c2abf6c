"""What a subscriber owes and how much of it is overdue, on every kind of day.

Each test runs once per pinned day (`pinned_day`: the 1st, the 2nd, mid-month, the last day of a 30-
and of a 31-day month, Feb 28 and 29, Dec 31, and either side of midnight in Dhaka with the server in
UTC). The expectation is computed here from the rows themselves (ledger sums, allocation sums, due
dates), independently of the SQL that the sweep, the dashboard and the overdue list share.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from sonjog.billing.models import Allocation, Bill, LedgerEntry
from sonjog.billing.selectors import dues_cte, overdue_ids, subscriber_dues
from sonjog.billing.services import adjustment_add, payment_record
from sonjog.billing.terms import operator_today, subscriber_terms
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.enforcement import overdue_sweep
from sonjog.operators.models import Operator

pytestmark = pytest.mark.django_db


def _balance(subscriber: Subscriber) -> Decimal:
    return LedgerEntry.objects.filter(subscriber=subscriber).aggregate(total=Sum("amount"))["total"] or ZERO


def _expected_overdue(subscriber: Subscriber, today: dt.date) -> Decimal:
    """The balance beyond what is still open on charges inside their due days + grace."""
    subscriber.refresh_from_db()
    grace = dt.timedelta(days=subscriber.operator.grace_days)
    balance = _balance(subscriber)
    if balance <= 0 or subscriber.service_intent == ServiceIntent.TERMINATED:
        return ZERO
    if subscriber_terms(subscriber).mode == "prepaid":
        if subscriber.expires_on is not None:
            expired = subscriber.expires_on <= today
        else:
            expired = subscriber.activation_date is not None and subscriber.activation_date + grace < today
        return balance if expired else ZERO
    not_late = ZERO
    for bill in Bill.objects.filter(subscriber=subscriber, reversed_at__isnull=True):
        if bill.due_date + grace >= today:
            allocated = Allocation.objects.filter(bill=bill).aggregate(total=Sum("amount"))["total"] or ZERO
            not_late += bill.total - allocated
    return max(balance - not_late, ZERO)


def _month_end(day: dt.date) -> dt.date:
    return add_months(month_start(day), 1) - dt.timedelta(days=1)


def _isp(**settings: object) -> tuple[Operator, list[Subscriber]]:
    operator = make_operator(vat_rate=Decimal("0"), **settings)
    package = make_package(operator, "1000.00", vat=False)
    today = operator_today(operator)
    long_ago = today - dt.timedelta(days=80)
    made = {
        "unpaid for months": make_subscriber(operator, package, long_ago),
        "paid ahead": make_subscriber(operator, package, long_ago),
        "half paid": make_subscriber(operator, package, today - dt.timedelta(days=35)),
        "joined today": make_subscriber(operator, package, today),
        "joined yesterday": make_subscriber(operator, package, today - dt.timedelta(days=1)),
        "joined on a 31st": make_subscriber(operator, package, _month_end(add_months(month_start(today), -4))),
        "installation fee, part paid": make_subscriber(operator, package, today - dt.timedelta(days=35)),
    }
    adjustment_add(
        subscriber=made["installation fee, part paid"], amount=Decimal("500.00"), reason="manual", memo="installation"
    )
    payment_record(subscriber=made["installation fee, part paid"], amount=Decimal("1200.00"), method="cash")
    payment_record(subscriber=made["paid ahead"], amount=Decimal("6000.00"), method="cash")
    payment_record(subscriber=made["half paid"], amount=Decimal("1000.00"), method="cash")
    return operator, list(made.values())


@pytest.mark.parametrize(
    "settings_of_isp",
    [
        {"billing_mode": "monthly", "billing_cycle": "calendar"},
        {"billing_mode": "cumulative", "billing_cycle": "anniversary"},
        {"billing_mode": "monthly", "billing_cycle": "fixed_day", "billing_day": 10},
        {"billing_mode": "prepaid", "billing_cycle": "anniversary"},
    ],
    ids=["monthly-calendar", "cumulative-anniversary", "monthly-fixed-10", "prepaid"],
)
def test_owes_and_overdue_agree_with_the_rows_on_every_day(pinned_day, settings_of_isp):
    operator, subscribers = _isp(**settings_of_isp)
    today = operator_today(operator)
    dues = subscriber_dues(operator.pk, [s.pk for s in subscribers], today)
    for subscriber in subscribers:
        assert dues[subscriber.pk].due == _balance(subscriber), subscriber.pk
        assert dues[subscriber.pk].overdue_amount == _expected_overdue(subscriber, today), subscriber.pk

    joined_today, long_unpaid, paid_ahead = subscribers[3], subscribers[0], subscribers[1]
    # A subscriber whose first bill is not yet due is never overdue; one unpaid for months always is.
    assert not dues[joined_today.pk].is_overdue
    assert dues[long_unpaid.pk].is_overdue
    assert not dues[paid_ahead.pk].is_overdue

    # The sweep suspends exactly the overdue ones; a second sweep finds nothing more.
    expected = {pk for pk, each in dues.items() if each.is_overdue}
    assert set(overdue_ids(operator, today, intent=ServiceIntent.ACTIVE)) == expected
    assert set(overdue_sweep(operator=operator, today=today)["subscriber_ids"]) == expected
    assert overdue_sweep(operator=operator, today=today)["suspended"] == 0
    suspended = Subscriber.objects.filter(operator=operator, service_intent=ServiceIntent.SUSPENDED)
    assert set(suspended.values_list("pk", flat=True)) == expected
    assert set(overdue_ids(operator, today, intent=ServiceIntent.SUSPENDED)) == expected


def test_the_list_and_the_sums_read_the_same_rows(pinned_day):
    operator, subscribers = _isp()
    today = operator_today(operator)
    cte, params = dues_cte([operator.pk], today)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "WITH " + cte + "SELECT count(*) FILTER (WHERE is_overdue), COALESCE(sum(overdue_amount), 0) FROM judged",
            params,
        )
        count, total = cursor.fetchone()
    expected = [_expected_overdue(s, today) for s in subscribers]
    assert count == sum(1 for amount in expected if amount > 0)
    assert total == sum(expected, ZERO)


def test_operator_today_is_the_dhaka_date_whatever_the_server_zone(pinned_day):
    operator = make_operator()
    assert operator_today(operator) == pinned_day.date()
