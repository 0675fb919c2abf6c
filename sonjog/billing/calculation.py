"""Pure money arithmetic for bills: no database, so it can be property-tested on its own."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sonjog.core.money import ZERO, round_money
from sonjog.core.periods import Period

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class BillAmounts:
    """subtotal is the package charge net of VAT; total = subtotal - discount + vat."""

    subtotal: Decimal
    discount: Decimal
    vat: Decimal
    total: Decimal


@dataclass(frozen=True)
class VatTerms:
    rate: Decimal
    inclusive: bool


def bill_amounts(
    *,
    monthly_price: Decimal,
    monthly_discount: Decimal,
    period: Period,
    vat: VatTerms | None,
    prorate: bool = True,
) -> BillAmounts:
    """Amounts for one period. Each line is rounded once, ROUND_HALF_UP; the total is their sum."""
    charge = period.prorate(monthly_price) if prorate else round_money(monthly_price)
    discount = period.prorate(monthly_discount) if prorate else round_money(monthly_discount)
    discount = min(discount, charge)
    if vat is None or vat.rate == 0:
        return BillAmounts(charge, discount, ZERO, charge - discount)
    if vat.inclusive:
        # The price already holds VAT: carve it out of what is actually charged after discount.
        gross = charge - discount
        vat_amount = round_money(gross * vat.rate / (HUNDRED + vat.rate))
        return BillAmounts(charge - vat_amount, discount, vat_amount, gross)
    vat_amount = round_money((charge - discount) * vat.rate / HUNDRED)
    return BillAmounts(charge, discount, vat_amount, charge - discount + vat_amount)


def outage_credit(*, period_total: Decimal, outage_minutes: int, period_minutes: int) -> Decimal:
    """price x outage_minutes / minutes_in_period, never more than the period's charge."""
    if period_minutes <= 0:
        raise ValueError("a period has no minutes")
    return min(round_money(period_total * outage_minutes / period_minutes), period_total)


def remaining_share(amount: Decimal, remaining_days: int, total_days: int) -> Decimal:
    """The part of `amount` that belongs to the last `remaining_days` of `total_days`."""
    if total_days <= 0 or remaining_days <= 0:
        return ZERO
    return round_money(amount * min(remaining_days, total_days) / total_days)


def addon_period(period: Period, start: dt.date, end: dt.date | None) -> Period | None:
    """The part of a billed period an add-on running over [start, end) covers (end None: still
    running), with the period's nominal bounds so that it prorates against the whole month; None when
    they do not overlap."""
    covered_start = max(start, period.start)
    covered_end = period.end if end is None else min(end, period.end)
    if covered_start >= covered_end:
        return None
    return Period(period.month, period.nominal_start, period.nominal_end, covered_start, covered_end)


def addon_amounts(
    *,
    monthly_price: Decimal,
    period: Period,
    start: dt.date,
    end: dt.date | None,
    vat: VatTerms | None,
    prorate: bool = True,
) -> BillAmounts | None:
    """One add-on line of a billed period: the monthly price prorated by the days of the period it
    covers, its VAT rounded once on the line. Over the whole billed period it is charged exactly as the
    package is (`prorate` is the package's choice for this period: a first period billed in full bills
    a whole-period add-on in full too); over part of it, by its own days. None when it does not overlap."""
    covered = addon_period(period, start, end)
    if covered is None:
        return None
    whole = covered.start == period.start and covered.end == period.end
    return bill_amounts(
        monthly_price=monthly_price,
        monthly_discount=ZERO,
        period=covered,
        vat=vat,
        prorate=prorate if whole else True,
    )
