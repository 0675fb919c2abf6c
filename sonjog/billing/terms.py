"""A subscriber's effective billing terms: the operator's settings with the subscriber's overrides."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sonjog.billing.calculation import VatTerms
from sonjog.core.periods import CYCLE_ANNIVERSARY, add_months, anchor_day_for, nominal_period, period_month_containing
from sonjog.customers.models import Subscriber
from sonjog.operators.dates import operator_date_of, operator_today
from sonjog.operators.models import Operator

__all__ = ["operator_date_of", "operator_today"]  # defined with the operator; billing's callers read them here


@dataclass(frozen=True)
class BillingTerms:
    mode: str
    cycle: str
    anchor_day: int
    due_days: int
    grace_days: int
    vat_rate: Decimal
    vat_inclusive: bool
    prorate_first: bool
    prorate_last: bool

    def vat_for(self, vat_applicable: bool) -> VatTerms | None:
        return VatTerms(self.vat_rate, self.vat_inclusive) if vat_applicable else None

    def period_month_of(self, day: dt.date) -> dt.date:
        return period_month_containing(day, self.anchor_day)

    def first_month_from(self, day: dt.date, activation_date: dt.date) -> dt.date:
        """The first period that starts on or after `day` (an imported subscriber's `billing_starts_on`):
        the one holding it when it starts that day (or service starts that day), else the next."""
        month = self.period_month_of(day)
        if max(nominal_period(month, self.anchor_day)[0], activation_date) < day:
            month = add_months(month, 1)
        return month


def terms_for(
    operator: Operator,
    *,
    mode: str | None = None,
    cycle: str | None = None,
    billing_day: int | None = None,
    activation_date: dt.date | None = None,
) -> BillingTerms:
    effective_cycle = cycle or operator.billing_cycle
    if effective_cycle == CYCLE_ANNIVERSARY and activation_date is None:
        # Not yet activated: until it is, its periods follow the calendar.
        anchor = 1
    else:
        anchor = anchor_day_for(effective_cycle, activation_date, billing_day or operator.billing_day)
    return BillingTerms(
        mode=mode or operator.billing_mode,
        cycle=effective_cycle,
        anchor_day=anchor,
        due_days=operator.due_days,
        grace_days=operator.grace_days,
        vat_rate=operator.vat_rate,
        vat_inclusive=operator.vat_inclusive,
        prorate_first=operator.prorate_first_period,
        prorate_last=operator.prorate_last_period,
    )


def subscriber_terms(subscriber: Subscriber) -> BillingTerms:
    return terms_for(
        subscriber.operator,
        mode=subscriber.billing_mode,
        cycle=subscriber.billing_cycle,
        billing_day=subscriber.billing_day,
        activation_date=subscriber.activation_date,
    )
