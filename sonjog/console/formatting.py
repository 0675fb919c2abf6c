"""Numbers, money and dates as the reader's language writes them.

English keeps Western grouping (৳1,234,567.00, as `core.money.format_money`); Bangla uses Bengali
digits and the South Asian grouping of lakh and crore (৳১২,৩৪,৫৬৭.০০), as Bangladeshi bills do.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.utils import formats, timezone, translation

from sonjog.core.money import format_money

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
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value)
    return localize_digits(formats.date_format(value, format_name))


def local_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    moment = timezone.localtime(value)
    return localize_digits(f"{formats.date_format(moment, 'SHORT_DATE_FORMAT')} {moment:%H:%M}")


def period_label(value: dt.date | None) -> str:
    """A billing period by its month, e.g. 'Mar 2026' / 'মার্চ ২০২৬'."""
    if value is None:
        return ""
    return localize_digits(formats.date_format(value, "YEAR_MONTH_FORMAT"))
