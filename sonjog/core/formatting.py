"""Numbers, money and dates as the reader's language writes them.

English keeps Western grouping (৳1,234,567.00, as `core.money.format_money`); Bangla uses Bengali
digits and the South Asian grouping of lakh and crore (৳১২,৩৪,৫৬৭.০০), as Bangladeshi bills do.

Both interfaces show the same figures, and one interface may not import another, so the one
definition lives here, at the bottom: the console (`sonjog.console.formatting`, its template tags)
and the portal use it, and `register_filters` gives each tag library the same filters under the
same names.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import template
from django.utils import formats, timezone, translation

from sonjog.core.money import format_money

# A date as digits, day first (18/11/2026; ১৮/১১/২০২৬), in either language: Django's Bangla short
# date names the month instead ("১৮ নভে., ২০২৬").
NUMERIC_DATE = "d/m/Y"

_BENGALI_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
_SYMBOLS = {"BDT": "৳"}


def is_bangla() -> bool:
    return (translation.get_language() or "en").startswith("bn")


def localize_digits(text: str) -> str:
    return text.translate(_BENGALI_DIGITS) if is_bangla() else text


def group_south_asian(whole: str) -> str:
    """'1234567' -> '12,34,567': the last three digits, then pairs."""
    if len(whole) <= 3:
        return whole
    head, tail = whole[:-3], whole[-3:]
    pairs: list[str] = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    if head:
        pairs.insert(0, head)
    return ",".join([*pairs, tail])


def money(value: Decimal | int | None, currency: str = "BDT", *, whole: bool = False) -> str:
    """An amount in the reader's language; `whole` rounds to the unit for headline figures."""
    if value is None:
        return ""
    amount = Decimal(value)
    symbol = _SYMBOLS.get(currency, currency + " ")
    if whole:
        amount = amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if not is_bangla():
        if whole:
            return f"{'-' if amount < 0 else ''}{symbol}{abs(amount):,.0f}"
        return format_money(amount, currency)
    sign = "-" if amount < 0 else ""
    units, _dot, cents = f"{abs(amount):.2f}".partition(".")
    text = f"{sign}{symbol}{group_south_asian(units)}" + ("" if whole else f".{cents}")
    return localize_digits(text)


def number(value: int | Decimal | float | None) -> str:
    if value is None:
        return ""
    text = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    if is_bangla() and isinstance(value, int):
        text = group_south_asian(str(abs(value)))
        text = ("-" if value < 0 else "") + text
    return localize_digits(text)


def local_date(value: dt.date | dt.datetime | None, format_name: str = "SHORT_DATE_FORMAT") -> str:
    """A date (a moment on the active time zone's calendar) by a Django format name or format string."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value)
    return localize_digits(formats.date_format(value, format_name))


def local_datetime(value: dt.datetime | None, format_name: str = "SHORT_DATE_FORMAT") -> str:
    """A moment on the active time zone: its date as `local_date` writes it, then hours and minutes."""
    if value is None:
        return ""
    moment = timezone.localtime(value)
    return localize_digits(f"{formats.date_format(moment, format_name)} {moment:%H:%M}")


def period_label(value: dt.date | None) -> str:
    """A billing period by its month, e.g. 'Mar 2026' / 'মার্চ ২০২৬'."""
    if value is None:
        return ""
    return localize_digits(formats.date_format(value, "YEAR_MONTH_FORMAT"))


def register_filters(library: template.Library, *, date_format: str = "SHORT_DATE_FORMAT") -> None:
    """Register money, absolute, num, digits, ldate and ldatetime on an interface's tag library, so
    `{% load console %}` and `{% load portal %}` keep their names with one definition behind them.
    `date_format` is how that interface writes a date (the portal: `NUMERIC_DATE`)."""

    def money_filter(value: Decimal | None, currency: str = "BDT") -> str:
        return money(value, currency or "BDT")

    def absolute(value: Decimal | None) -> Decimal | None:
        return None if value is None else abs(value)

    def num(value: int | Decimal | float | None) -> str:
        return number(value)

    def digits(value: Any) -> str:
        return localize_digits("" if value is None else str(value))

    def ldate(value: dt.date | dt.datetime | None) -> str:
        return local_date(value, date_format)

    def ldatetime(value: dt.datetime | None) -> str:
        return local_datetime(value, date_format)

    library.filter("money", money_filter)
    library.filter("absolute", absolute)
    library.filter("num", num)
    library.filter("digits", digits)
    library.filter("ldate", ldate)
    library.filter("ldatetime", ldatetime)
