"""Template filters of the portal: money, numbers, dates and data amounts in the reader's language."""

from __future__ import annotations

import datetime as dt

from django import template

from sonjog.core.formatting import NUMERIC_DATE, register_filters
from sonjog.portal import formatting

register = template.Library()
# money, absolute, num, digits, ldate, ldatetime: the console's filters, with dates written day/month/year
# in digits in both languages (a subscriber reads "০৮/১১/২০২৬", not a month's abbreviated name).
register_filters(register, date_format=NUMERIC_DATE)


@register.filter
def octets(value: int | None) -> str:
    return formatting.data_amount(value)


@register.filter
def hours_minutes(value: int | None) -> str:
    return formatting.duration(value)


@register.filter
def day_before(value: dt.date | None) -> dt.date | None:
    """The last day of a half-open period [start, end): the day before its end."""
    return None if value is None else value - dt.timedelta(days=1)
