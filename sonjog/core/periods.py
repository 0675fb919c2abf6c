"""Billing periods: half-open date ranges [start, end) computed in the operator's calendar.

Every subscriber has exactly one period whose *nominal* start falls in each calendar month; that
month (as its first day) is the period's label, `period_month`. The three cycles differ only in the
day the nominal period starts:

- calendar: the 1st;
- anniversary: the activation day, clamped to the month's last day in short months (31 -> Feb 28/29
  -> Mar 31: the clamp never sticks, because it is recomputed from the anchor each month);
- fixed_day: the operator's billing day, clamped the same way.

The first period starts at activation and the last ends at termination; both are prorated by days.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal

from sonjog.core.money import round_money

CYCLE_CALENDAR = "calendar"
CYCLE_ANNIVERSARY = "anniversary"
CYCLE_FIXED_DAY = "fixed_day"

_PERIOD_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


def parse_period(text: str) -> dt.date:
    """'2026-03' -> date(2026, 3, 1); ValueError with a user-facing message otherwise."""
    match = _PERIOD_PATTERN.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1900:
        raise ValueError(f"period '{text}' is not in the form YYYY-MM (for example 2026-03)")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + (month.month - 1) + count
    return dt.date(index // 12, index % 12 + 1, 1)


def clamped_day(month: dt.date, anchor_day: int) -> dt.date:
    last = calendar.monthrange(month.year, month.month)[1]
    return month.replace(day=min(anchor_day, last))


def anchor_day_for(cycle: str, activation_date: dt.date | None, fixed_day: int) -> int:
    if cycle == CYCLE_CALENDAR:
        return 1
    if cycle == CYCLE_ANNIVERSARY:
        if activation_date is None:
            raise ValueError("an anniversary cycle needs an activation date")
        return activation_date.day
    if cycle == CYCLE_FIXED_DAY:
        return fixed_day
    raise ValueError(f"unknown billing cycle '{cycle}'")


@dataclass(frozen=True)
class Period:
    """One subscriber period: nominal bounds and the billed (clipped) bounds, all half-open."""

    month: dt.date
    nominal_start: dt.date
    nominal_end: dt.date
    start: dt.date
    end: dt.date

    @property
    def nominal_days(self) -> int:
        return (self.nominal_end - self.nominal_start).days

    @property
    def days(self) -> int:
        return max((self.end - self.start).days, 0)

    @property
    def is_prorated(self) -> bool:
        return self.start != self.nominal_start or self.end != self.nominal_end

    def prorate(self, monthly_amount: Decimal) -> Decimal:
        if not self.is_prorated:
            return round_money(monthly_amount)
        return round_money(monthly_amount * self.days / self.nominal_days)

    def contains(self, day: dt.date) -> bool:
        return self.nominal_start <= day < self.nominal_end


@functools.lru_cache(maxsize=8192)
def nominal_period(month: dt.date, anchor_day: int) -> tuple[dt.date, dt.date]:
    # Cached: bulk generation asks the same (month, anchor) question tens of thousands of times.
    return clamped_day(month, anchor_day), clamped_day(add_months(month, 1), anchor_day)


def period_month_containing(day: dt.date, anchor_day: int) -> dt.date:
    """The label of the nominal period that contains `day`."""
    this_month = month_start(day)
    start, _ = nominal_period(this_month, anchor_day)
    return this_month if day >= start else add_months(this_month, -1)


def subscriber_period(
    month: dt.date,
    anchor_day: int,
    activation_date: dt.date,
    terminated_on: dt.date | None = None,
) -> Period | None:
    """The billed period labelled `month`, or None when the subscriber is not in service then."""
    nominal_start, nominal_end = nominal_period(month, anchor_day)
    start = max(nominal_start, activation_date)
    end = nominal_end if terminated_on is None else min(nominal_end, terminated_on)
    if start >= end:
        return None
    return Period(month, nominal_start, nominal_end, start, end)
