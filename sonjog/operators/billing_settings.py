"""An operator's billing settings and the day a change of them takes effect (ADR 0011).

A change of the settings that shape bills (mode, cycle, billing day, due and grace days, VAT,
proration) takes effect from the first day of the operator's next period: on a calendar or
anniversary cycle the 1st of next month (every period labelled next month starts on or after it),
on a fixed-day cycle the next billing day. Bill generation reads the operator when it runs, so the
change is held as a pending `OperatorSettingsChange` until that day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import models

from sonjog.core.periods import CYCLE_FIXED_DAY, add_months, nominal_period, period_month_containing
from sonjog.operators.models import Operator

BILLING_SETTINGS = (
    "billing_mode",
    "billing_cycle",
    "billing_day",
    "due_days",
    "grace_days",
    "vat_rate",
    "vat_inclusive",
    "prorate_first_period",
    "prorate_last_period",
)


def period_anchor(operator: Operator) -> int:
    """The day the operator's own periods start: its billing day on a fixed-day cycle, else the 1st
    (anniversary periods each start on their own day, but every one labelled a month starts in it)."""
    return operator.billing_day if operator.billing_cycle == CYCLE_FIXED_DAY else 1


def next_period_start(operator: Operator, today: dt.date) -> dt.date:
    """The first day of the operator's period after the one holding `today`."""
    anchor = period_anchor(operator)
    following = add_months(period_month_containing(today, anchor), 1)
    return nominal_period(following, anchor)[0]


def setting_text(value: Any) -> Any:
    """A setting's value as stored in a pending change (JSON): Decimal as text, the rest as is."""
    return str(value) if isinstance(value, Decimal) else value


def setting_value(name: str, stored: Any) -> Any:
    """A stored value back in the Operator column's own type."""
    field = Operator._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.to_python(stored)
