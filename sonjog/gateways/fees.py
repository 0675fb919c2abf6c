"""Gateway fees, to the paisa.

The gateway takes `rate` percent of what the payer pays, rounded half up to the paisa. When the
operator absorbs the fee the payer pays what is owed and the fee is the operator's expense; when it
is passed on, the payer pays the gross-up: the smallest amount whose remainder after the fee is at
least what is owed (gross = net / (1 - rate), then corrected by a paisa either way so that
gross - fee >= net always holds and no smaller gross would do).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from sonjog.core.money import CENT, round_money

HUNDRED = Decimal(100)


def fee_on(gross: Decimal, rate_percent: Decimal) -> Decimal:
    """The gateway's fee on a payment of `gross`."""
    return round_money(gross * rate_percent / HUNDRED)


def gross_up(net: Decimal, rate_percent: Decimal) -> Decimal:
    """The smallest amount (in paisa) the payer pays so that what is left after the fee covers `net`."""
    if rate_percent <= 0:
        return net
    share = 1 - rate_percent / HUNDRED
    gross = (net / share).quantize(CENT, rounding=ROUND_CEILING)
    while gross - fee_on(gross, rate_percent) < net:
        gross += CENT
    while gross - CENT > 0 and (gross - CENT) - fee_on(gross - CENT, rate_percent) >= net:
        gross -= CENT
    return gross


def split(amount: Decimal, rate_percent: Decimal, *, passed_on: bool) -> tuple[Decimal, Decimal]:
    """(gross the payer pays, fee the gateway keeps) for crediting the subscriber `amount`."""
    gross = gross_up(amount, rate_percent) if passed_on else amount
    return gross, fee_on(gross, rate_percent)
