"""Money, numbers, dates and data amounts as the reader's language writes them, for the portal.

The console has the same helpers (`sonjog.console.formatting`), but one interface never imports
another, and nothing below the interfaces has them; these are the portal's own, written to agree with
the console's: English keeps Western grouping (৳1,234,567.00), Bangla uses Bengali digits and the
lakh/crore grouping (৳১২,৩৪,৫৬৭.০০). Dates are day/month/year in both languages.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone, translation

_BENGALI_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
_WESTERN_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
_SYMBOLS = {"BDT": "৳"}
# Decimal units, as ISPs advertise allowances (sonjog.network.fair_usage counts GB the same way).
_BYTE_UNITS = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3))


def is_bangla() -> bool:
    return (translation.get_language() or "en").startswith("bn")


def localize_digits(text: str) -> str:
    return text.translate(_BENGALI_DIGITS) if is_bangla() else text


def western_digits(text: str) -> str:
    """Typed Bengali digits (a Bangla phone keyboard) read as the digits they are."""
    return text.translate(_WESTERN_DIGITS)


def _group_south_asian(whole: str) -> str:
    """'1234567' -> '12,34,567': the last three digits, then pairs."""
    head, tail = whole[:-3], whole[-3:]
    pairs: list[str] = []
    while head:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([*pairs, tail])


def money(value: Decimal | int | None, currency: str = "BDT") -> str:
    if value is None:
        return ""
    amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    symbol = _SYMBOLS.get(currency, currency + " ")
    sign = "-" if amount < 0 else ""
    if not is_bangla():
        return f"{sign}{symbol}{abs(amount):,.2f}"
    units, _dot, cents = f"{abs(amount):.2f}".partition(".")
    return localize_digits(f"{sign}{symbol}{_group_south_asian(units)}.{cents}")


def number(value: int | None) -> str:
    if value is None:
        return ""
    if is_bangla():
        return localize_digits(("-" if value < 0 else "") + _group_south_asian(str(abs(value))))
    return f"{value:,}"


def local_date(value: dt.date | dt.datetime | None) -> str:
    """Day/month/year (18/11/2026; ১৮/১১/২০২৬), a moment on the active (the operator's) time zone."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value)
    return localize_digits(f"{value:%d/%m/%Y}")


def local_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    moment = timezone.localtime(value)
    return localize_digits(f"{moment:%d/%m/%Y %H:%M}")


def data_amount(octets: int | None) -> str:
    """Bytes as the largest decimal unit that keeps a leading digit: '1.25 GB', '৩৪০.০ MB'."""
    if not octets:
        return localize_digits("0 MB")
    for unit, size in _BYTE_UNITS:
        if octets >= size:
            return localize_digits(f"{Decimal(octets) / size:.{1 if octets >= 100 * size else 2}f} {unit}")
    return localize_digits(f"{octets} B")


def duration(seconds: int | None) -> str:
    """A session's length as hours and minutes: '5:07' (h:mm), days first when longer: '2d 3:15'."""
    if seconds is None:
        return ""
    minutes_total = max(0, int(seconds)) // 60
    days, rest = divmod(minutes_total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}"
    if days:
        text = translation.gettext("%(days)dd %(time)s") % {"days": days, "time": text}
    return localize_digits(text)
