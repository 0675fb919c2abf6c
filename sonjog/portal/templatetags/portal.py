"""Template filters of the portal: money, numbers, dates and data amounts in the reader's language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import template

from sonjog.portal import formatting

register = template.Library()


@register.filter
def money(value: Decimal | None, currency: str = "BDT") -> str:
    return formatting.money(value, currency or "BDT")


@register.filter
def absolute(value: Decimal | None) -> Decimal | None:
    return None if value is None else abs(value)


@register.filter
def num(value: int | None) -> str:
    return formatting.number(value)


@register.filter
def digits(value: Any) -> str:
    return formatting.localize_digits("" if value is None else str(value))


@register.filter
def ldate(value: dt.date | dt.datetime | None) -> str:
    return formatting.local_date(value)


@register.filter
def ldatetime(value: dt.datetime | None) -> str:
    return formatting.local_datetime(value)


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
