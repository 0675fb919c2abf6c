"""What only the portal writes in the reader's language: data amounts, session lengths, and typed
Bengali digits read back. Money, numbers and dates are `sonjog.core.formatting`'s, the same as the
console's."""

from __future__ import annotations

from decimal import Decimal

from django.utils import translation

from sonjog.core.formatting import localize_digits

_WESTERN_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# Decimal units, as ISPs advertise allowances (sonjog.network.fair_usage counts GB the same way).
_BYTE_UNITS = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3))


def western_digits(text: str) -> str:
    """Typed Bengali digits (a Bangla phone keyboard) read as the digits they are."""
    return text.translate(_WESTERN_DIGITS)


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
