import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from sonjog.core.money import parse_money, round_money
from sonjog.core.periods import (
    add_months,
    nominal_period,
    parse_period,
    period_month_containing,
    subscriber_period,
)

D = dt.date


def test_anniversary_on_the_31st_follows_short_months_and_returns():
    starts = [nominal_period(add_months(D(2027, 1, 1), n), 31)[0] for n in range(4)]
    assert starts == [D(2027, 1, 31), D(2027, 2, 28), D(2027, 3, 31), D(2027, 4, 30)]
    leap = [nominal_period(add_months(D(2028, 1, 1), n), 31)[0] for n in range(3)]
    assert leap == [D(2028, 1, 31), D(2028, 2, 29), D(2028, 3, 31)]


def test_anniversary_on_the_30th_across_february():
    assert nominal_period(D(2027, 1, 1), 30) == (D(2027, 1, 30), D(2027, 2, 28))
    assert nominal_period(D(2027, 2, 1), 30) == (D(2027, 2, 28), D(2027, 3, 30))
    assert nominal_period(D(2027, 3, 1), 30) == (D(2027, 3, 30), D(2027, 4, 30))


def test_leap_year_proration_is_14_of_29_days():
    period = subscriber_period(D(2028, 2, 1), 1, activation_date=D(2028, 2, 16))
    assert period is not None
    assert (period.start, period.end, period.days, period.nominal_days) == (D(2028, 2, 16), D(2028, 3, 1), 14, 29)
    assert period.prorate(Decimal("1000.00")) == Decimal("482.76")


def test_activation_on_the_last_day_of_a_month_is_one_day():
    period = subscriber_period(D(2027, 1, 1), 1, activation_date=D(2027, 1, 31))
    assert period is not None and period.days == 1 and period.nominal_days == 31
    assert period.prorate(Decimal("3100.00")) == Decimal("100.00")


def test_termination_clips_the_last_period():
    period = subscriber_period(D(2027, 4, 1), 1, activation_date=D(2026, 1, 1), terminated_on=D(2027, 4, 11))
    assert period is not None and period.days == 10 and period.nominal_days == 30
    assert subscriber_period(D(2027, 5, 1), 1, activation_date=D(2026, 1, 1), terminated_on=D(2027, 4, 11)) is None


def test_period_month_containing_respects_the_anchor():
    assert period_month_containing(D(2027, 3, 14), 15) == D(2027, 2, 1)
    assert period_month_containing(D(2027, 3, 15), 15) == D(2027, 3, 1)
    assert period_month_containing(D(2027, 2, 28), 31) == D(2027, 2, 1)
    assert period_month_containing(D(2027, 2, 27), 31) == D(2027, 1, 1)


def test_period_boundary_is_midnight_in_dhaka_even_on_a_utc_server(settings):
    from sonjog.billing.terms import operator_today
    from sonjog.operators.models import Operator

    settings.TIME_ZONE = "UTC"
    operator = Operator(time_zone="Asia/Dhaka")
    # 18:30 UTC on 31 March is 00:30 on 1 April in Dhaka (UTC+6): already the April period.
    moment = dt.datetime(2027, 3, 31, 18, 30, tzinfo=dt.UTC)
    with mock.patch.object(timezone, "now", return_value=moment):
        assert operator_today(operator) == D(2027, 4, 1)
        assert period_month_containing(operator_today(operator), 1) == D(2027, 4, 1)
    with mock.patch.object(timezone, "now", return_value=moment - dt.timedelta(minutes=31)):
        assert operator_today(operator) == D(2027, 3, 31)


@pytest.mark.parametrize("text", ["2026-13", "2026-3", "26-03", "march", "", "2026-00"])
def test_parse_period_rejects_malformed(text):
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_period(text)


def test_money_rounds_half_up_once():
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("2.675")) == Decimal("2.68")
    assert parse_money("1,250.50") == Decimal("1250.50")
    with pytest.raises(ValueError, match="two decimal"):
        parse_money("1.001")
    with pytest.raises(ValueError, match="not an amount"):
        parse_money("abc")
