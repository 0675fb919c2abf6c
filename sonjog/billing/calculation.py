"""Pure money arithmetic for bills: no database, so it can be property-tested on its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sonjog.core.money import CENT, ZERO, round_money
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


# -- splitting a credit over the lines of the bill it credits -----------------------------------------


@dataclass(frozen=True)
class Creditable:
    """What is left to credit on one bill line: its net `amount` (negative on the discount line) and
    its `vat`. Lines with the same `unit` are credited together: the package line and its discount,
    whose VAT was computed on their difference."""

    line_id: int
    amount: Decimal
    vat: Decimal
    unit: int


@dataclass(frozen=True)
class LineCredit:
    """The part of one credit that falls on one bill line: net `amount` and `vat`."""

    line_id: int
    amount: Decimal
    vat: Decimal

    @property
    def total(self) -> Decimal:
        return self.amount + self.vat


def creditable_total(lines: Sequence[Creditable]) -> Decimal:
    """What is left to credit over these lines, VAT included."""
    return sum((line.amount + line.vat for line in lines), ZERO)


def apportion(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` in proportion to non-negative `weights`, to the paisa, with the parts adding up
    to `total` exactly: each part is its exact share rounded down, and the paisas left go one each to
    the largest fractions (ties: first). A part never exceeds its weight when `total` does not exceed
    their sum."""
    whole = sum(weights, ZERO)
    if whole <= 0:
        if total != 0:
            raise ValueError("nothing to split over")
        return [ZERO for _ in weights]
    exact = [total * weight / whole for weight in weights]
    parts = [share.quantize(CENT, rounding=ROUND_FLOOR) for share in exact]
    left = int((total - sum(parts, ZERO)) / CENT)
    by_fraction = sorted(range(len(parts)), key=lambda index: (-(exact[index] - parts[index]), index))
    for index in by_fraction[:left]:
        parts[index] += CENT
    return parts


def credit_split(credit: Decimal, lines: Sequence[Creditable]) -> list[LineCredit]:
    """Split a credit over what is left to credit on a bill's lines, so that VAT is credited in
    proportion and the parts add up to the credit exactly.

    A credit of everything that is left takes exactly what is left of every line, VAT included: the
    last of any number of partial credits closes the bill to the paisa, so the parts always sum to
    the charge and their VAT to its VAT. Any other credit is shared between the units (a line, or the
    package with its discount) by what is left of each (`apportion`); within a unit its VAT part is
    the share of the VAT left, rounded once, ROUND_HALF_UP, and the rest is net, shared between the
    package and its discount by what is left of each. No line is ever credited past what is left of it."""
    if credit <= 0:
        raise ValueError("a credit is more than zero")
    left = creditable_total(lines)
    if credit > left:
        raise ValueError(f"{credit} is more than the {left} left to credit")
    if credit == left:
        return [LineCredit(line.line_id, line.amount, line.vat) for line in lines if line.amount or line.vat]
    units: dict[int, list[Creditable]] = {}
    for line in lines:
        units.setdefault(line.unit, []).append(line)
    for members in units.values():
        if sum((m.amount for m in members), ZERO) < 0 or any(m.vat < 0 for m in members):
            raise ValueError("a line has been credited past what it charged")
    grosses = [creditable_total(members) for members in units.values()]
    shares = apportion(credit, [max(gross, ZERO) for gross in grosses])
    result: list[LineCredit] = []
    for members, gross, share in zip(units.values(), grosses, shares, strict=True):
        if share <= 0:
            continue
        if share == gross:
            result.extend(LineCredit(m.line_id, m.amount, m.vat) for m in members if m.amount or m.vat)
            continue
        net_left = sum((m.amount for m in members), ZERO)
        vat_left = sum((m.vat for m in members), ZERO)
        vat = round_money(share * vat_left / gross)
        # Rounding never takes VAT past what is left of it, nor leaves more net than is left.
        vat = min(max(vat, share - net_left), vat_left, share)
        net = share - vat
        vats = apportion(vat, [m.vat for m in members]) if vat else [ZERO] * len(members)
        charges = [m.amount if m.amount > 0 else ZERO for m in members]
        discounts = [-m.amount if m.amount < 0 else ZERO for m in members]
        discount_left = sum(discounts, ZERO)
        # The discount's part: its share of the net (never more than is left of it).
        discount = min(round_money(net * discount_left / net_left), discount_left) if discount_left and net else ZERO
        charged = apportion(net + discount, charges) if net + discount else [ZERO] * len(members)
        discounted = apportion(discount, discounts) if discount else [ZERO] * len(members)
        for member, line_vat, line_charge, line_discount in zip(members, vats, charged, discounted, strict=True):
            amount = line_charge - line_discount
            if amount or line_vat:
                result.append(LineCredit(member.line_id, amount, line_vat))
    return result
