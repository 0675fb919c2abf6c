"""Pausing billing (holds) and billing ahead ("bill up to"), on every pinned day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import Bill, BillingRun
from sonjog.billing.selectors import billing_hold_current
from sonjog.billing.services.holds import billing_hold_add, billing_hold_end
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.periods import add_months, month_start
from sonjog.flows.generation import bills_generate, bills_generate_up_to
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_terminate

pytestmark = pytest.mark.django_db


def _months_billed(subscriber) -> list[dt.date]:
    return list(
        Bill.objects.filter(subscriber=subscriber, kind=Bill.Kind.PERIOD, reversed_at__isnull=True)
        .order_by("period_month")
        .values_list("period_month", flat=True)
    )


def test_a_hold_stops_the_bills_of_the_periods_it_covers(pinned_day):
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "600.00", vat=False)
    today = operator_today(operator)
    subscriber = make_subscriber(operator, package, today)
    this_month = month_start(today)
    assert _months_billed(subscriber) == [this_month]
    # Away for the next two months.
    hold = billing_hold_add(
        subscriber=subscriber, start_date=add_months(this_month, 1), end_date=add_months(this_month, 3), reason="abroad"
    )
    assert billing_hold_current(subscriber, today) == hold
    for ahead in (1, 2):
        month = add_months(this_month, ahead)
        result = bills_generate(operator=operator, period_month=month, trigger=BillingRun.Trigger.STAFF, today=month)
        # Each run also looks back at the held months before it (the backfill), and skips them too.
        assert (result.created, result.skipped_held) == (0, ahead)
    # The month after, billing runs again, and the held months are not backfilled.
    back = add_months(this_month, 3)
    result = bills_generate(operator=operator, period_month=back, trigger=BillingRun.Trigger.STAFF, today=back)
    assert (result.created, result.backfilled, result.skipped_held) == (1, 0, 2)
    assert _months_billed(subscriber) == [this_month, back]
    assert ledger_verify().ok


def test_what_a_hold_refuses_and_ending_one_early():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "600.00", vat=False)
    today = operator_today(operator)
    subscriber = make_subscriber(operator, package, today)
    this_month = month_start(today)
    with pytest.raises(BillingError, match="billed already"):
        billing_hold_add(subscriber=subscriber, start_date=this_month, end_date=None, reason="repair")
    with pytest.raises(BillingError, match="say why"):
        billing_hold_add(subscriber=subscriber, start_date=add_months(this_month, 1), end_date=None, reason=" ")
    with pytest.raises(BillingError, match="end after it starts"):
        billing_hold_add(
            subscriber=subscriber, start_date=add_months(this_month, 2), end_date=add_months(this_month, 1), reason="x"
        )
    hold = billing_hold_add(subscriber=subscriber, start_date=add_months(this_month, 1), end_date=None, reason="repair")
    with pytest.raises(BillingError, match="already paused"):
        billing_hold_add(
            subscriber=subscriber, start_date=add_months(this_month, 2), end_date=add_months(this_month, 3), reason="x"
        )
    ended = billing_hold_end(hold=hold, end_date=add_months(this_month, 2))
    assert ended.end_date == add_months(this_month, 2)
    with pytest.raises(BillingError, match="already ends"):
        billing_hold_end(hold=ended, end_date=add_months(this_month, 3))
    subscriber_terminate(subscriber=subscriber, reason="moved away")
    with pytest.raises(BillingError, match="terminated"):
        billing_hold_add(subscriber=subscriber, start_date=add_months(this_month, 3), end_date=None, reason="x")


def test_bill_up_to_issues_the_months_ahead_and_an_advance_settles_them(pinned_day):
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "500.00", vat=False)
    today = operator_today(operator)
    subscriber = make_subscriber(operator, package, month_start(today))
    this_month = month_start(today)
    result = bills_generate_up_to(subscriber=subscriber, through_month=add_months(this_month, 3))
    assert result.created == 1 and result.backfilled == 2
    assert _months_billed(subscriber) == [add_months(this_month, n) for n in range(4)]
    payment_receive(subscriber=subscriber, amount=Decimal("2000.00"), method="cash")
    assert all(bill.total == bill.allocated for bill in Bill.objects.filter(subscriber=subscriber))
    assert ledger_verify().ok
    with pytest.raises(BillingError, match="at most 12 months"):
        bills_generate_up_to(subscriber=subscriber, through_month=add_months(this_month, 13))
    with pytest.raises(BillingError, match="this month or a later"):
        bills_generate_up_to(subscriber=subscriber, through_month=add_months(this_month, -1))
