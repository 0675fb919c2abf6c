"""Money is Decimal, NUMERIC(14,2), rounded once at line level with ROUND_HALF_UP (DESIGN rule 6)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import models

from sonjog.core.bounds import parse_amount

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def parse_money(text: str) -> Decimal:
    """Parse user input into money (plain notation, within NUMERIC(14,2)); raises ValueError with a
    message fit for the user. The rules are sonjog.core.bounds.parse_amount's."""
    return parse_amount(text)


def format_money(value: Decimal, currency: str) -> str:
    symbols = {"BDT": "৳"}
    return f"{symbols.get(currency, currency + ' ')}{value:,.2f}"


class MoneyField(models.DecimalField):
    """NUMERIC(14,2): up to 999,999,999,999.99 in the operator's currency."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "sonjog.core.money.MoneyField", args, kwargs
