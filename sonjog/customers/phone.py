"""Phone numbers: Bangladesh mobile numbers by default, any E.164 number elsewhere."""

from __future__ import annotations

import re

from sonjog.customers.exceptions import InvalidPhone

# Bangladesh mobile: 01 + operator digit 3-9 + 8 digits; stored as +8801XXXXXXXXX.
_BD_MOBILE = re.compile(r"^(?:\+?880|0)?(1[3-9]\d{8})$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def normalize_phone(raw: str, country: str = "BD") -> str:
    compact = re.sub(r"[\s\-().]", "", raw or "")
    if country == "BD":
        match = _BD_MOBILE.match(compact)
        if not match:
            raise InvalidPhone(
                f"'{raw}' is not a Bangladesh mobile number (11 digits starting 013-019, e.g. 01712345678)"
            )
        return f"+880{match.group(1)}"
    if not _E164.match(compact):
        raise InvalidPhone(f"'{raw}' is not an international phone number (e.g. +441632960000)")
    return compact
