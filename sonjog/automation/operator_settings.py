"""Changing an operator's settings from the console, with billing settings taking effect from the
operator's next period (ADR 0011), and the hourly job that applies them when that day comes.

It lives here, above billing, because the rules read issued bills: a change that would alter bills
already issued is refused with the reason. Writes go through `sonjog.operators.services`.

- Settings that do not shape bills (name, customer-ID format, document details, module access)
  apply at once.
- Currency and time zone apply at once while the operator has no money on its books, and are refused
  afterwards (they would relabel amounts, or move the dates of periods already billed).
- Billing settings (mode, cycle, billing day, due and grace days, VAT, proration) apply at once while
  the operator has issued no bill; afterwards they are held until the first day of its next period
  and refused when bills of that period or later are issued already (generated ahead), when they
  would move the start day of subscribers' periods that are billed already (a gap or days billed
  twice), or when they would turn billed subscribers from prepaid to postpaid or back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sonjog.billing.models import Bill, LedgerEntry
from sonjog.core.audit import audit
from sonjog.core.periods import add_months, month_start
from sonjog.operators.billing_settings import BILLING_SETTINGS, next_period_start, setting_text, setting_value
from sonjog.operators.dates import operator_local_now, operator_today
from sonjog.operators.exceptions import OperatorError
from sonjog.operators.models import BillingMode, Operator, OperatorSettingsChange, SettingsChangeStatus
from sonjog.operators.services import (
    OPERATOR_SETTINGS,
    operator_settings_apply,
    operator_settings_cancel,
    operator_settings_refuse,
    operator_settings_schedule,
    operator_update,
)

LOCKED_ONCE_MONEY_EXISTS = ("currency", "time_zone")


class SettingsChangeRefused(OperatorError):
    """A settings change that would alter bills already issued; the message says why."""


@dataclass
class SettingsOutcome:
    applied: list[str]  # settings changed at once
    scheduled: OperatorSettingsChange | None = None  # billing settings held until their day
    cancelled: bool = False  # a pending change was withdrawn (its settings were set back)


def pending_change(operator: Operator) -> OperatorSettingsChange | None:
    return OperatorSettingsChange.objects.filter(operator=operator, status=SettingsChangeStatus.PENDING).first()


def planned_settings(operator: Operator) -> dict[str, Any]:
    """The operator's billing settings as they will be from its next period: its own with any
    pending change applied (what the edit form starts from)."""
    values = {name: getattr(operator, name) for name in BILLING_SETTINGS}
    change = pending_change(operator)
    if change is not None:
        values.update({name: setting_value(name, stored) for name, stored in change.values.items()})
    return values


def billing_settings_effective_from(operator: Operator, today: dt.date) -> dt.date | None:
    """The day a change of the operator's billing settings made today would apply from: the first
    day of its next period, or None (at once) while it has issued no bill."""
    return next_period_start(operator, today) if _has_bills(operator) else None


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return Decimal(str(left)) == Decimal(str(right))
    return bool(left == right)


def _has_money(operator: Operator) -> bool:
    return LedgerEntry.objects.filter(operator=operator).exists()


def _has_bills(operator: Operator) -> bool:
    return Bill.objects.filter(operator=operator, reversed_at__isnull=True).exists()


def _bills_from(operator: Operator, day: dt.date) -> int:
    # A period starting on or after `day` is labelled its month or the one before (anniversary and
    # fixed-day periods start late in the month before): the label bound keeps this on the index.
    return Bill.objects.filter(
        operator=operator,
        kind=Bill.Kind.PERIOD,
        reversed_at__isnull=True,
        period_month__gte=add_months(month_start(day), -1),
        period_start__gte=day,
    ).count()


# Billed subscribers who follow the operator's cycle (or its billing day) and whose periods would
# start on another day of the month under the new settings.
_ANCHOR_MOVES_SQL = """
SELECT count(*) FROM customers_subscriber s
WHERE s.operator_id = %(operator)s AND s.activation_date IS NOT NULL
  AND (s.terminated_on IS NULL OR s.terminated_on > %(effective)s)
  AND EXISTS (SELECT 1 FROM billing_bill b WHERE b.subscriber_id = s.id AND b.kind = 'period'
              AND b.reversed_at IS NULL)
  AND (CASE COALESCE(s.billing_cycle, %(old_cycle)s) WHEN 'calendar' THEN 1
            WHEN 'anniversary' THEN extract(day FROM s.activation_date)::int
            ELSE COALESCE(s.billing_day, %(old_day)s) END)
   <> (CASE COALESCE(s.billing_cycle, %(new_cycle)s) WHEN 'calendar' THEN 1
            WHEN 'anniversary' THEN extract(day FROM s.activation_date)::int
            ELSE COALESCE(s.billing_day, %(new_day)s) END)
"""

# Billed subscribers who follow the operator's billing mode.
_MODE_FOLLOWERS_SQL = """
SELECT count(*) FROM customers_subscriber s
WHERE s.operator_id = %(operator)s AND s.billing_mode IS NULL
  AND (s.terminated_on IS NULL OR s.terminated_on > %(effective)s)
  AND EXISTS (SELECT 1 FROM billing_bill b WHERE b.subscriber_id = s.id AND b.reversed_at IS NULL)
"""


def _count(sql: str, params: dict[str, Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _structural_problem(operator: Operator, values: dict[str, Any], effective_from: dt.date) -> str | None:
    """Why these billing settings cannot apply from `effective_from` to bills already issued."""
    new_cycle = values.get("billing_cycle", operator.billing_cycle)
    new_day = values.get("billing_day", operator.billing_day)
    if new_cycle != operator.billing_cycle or new_day != operator.billing_day:
        moved = _count(
            _ANCHOR_MOVES_SQL,
            {
                "operator": operator.pk,
                "effective": effective_from,
                "old_cycle": operator.billing_cycle,
                "old_day": operator.billing_day,
                "new_cycle": new_cycle,
                "new_day": new_day,
            },
        )
        if moved:
            return ngettext(
                "%(count)d subscriber who follows the operator's billing cycle is billed already; moving the "
                "day their periods start would leave days unbilled or bill some twice. Give new subscribers "
                "their own cycle instead, or change it before the first bills.",
                "%(count)d subscribers who follow the operator's billing cycle are billed already; moving the "
                "day their periods start would leave days unbilled or bill some twice. Give new subscribers "
                "their own cycle instead, or change it before the first bills.",
                moved,
            ) % {"count": moved}
    new_mode = values.get("billing_mode", operator.billing_mode)
    if (new_mode == BillingMode.PREPAID) != (operator.billing_mode == BillingMode.PREPAID):
        followers = _count(_MODE_FOLLOWERS_SQL, {"operator": operator.pk, "effective": effective_from})
        if followers:
            return ngettext(
                "%(count)d subscriber who follows the operator's billing mode has bills already; switching "
                "between prepaid and postpaid would change what those bills mean (expiry or due date). Set "
                "the mode per subscriber instead.",
                "%(count)d subscribers who follow the operator's billing mode have bills already; switching "
                "between prepaid and postpaid would change what those bills mean (expiry or due date). Set "
                "the mode per subscriber instead.",
                followers,
            ) % {"count": followers}
    return None


@transaction.atomic
def operator_settings_change(
    *, operator: Operator, values: dict[str, Any], actor: User | None = None, today: dt.date | None = None
) -> SettingsOutcome:
    """Change any of the operator's settings (and `modules`) as the edit form gives them; see the
    module docstring for when each applies. Raises SettingsChangeRefused (nothing written)."""
    unknown = sorted(set(values) - {*OPERATOR_SETTINGS, "modules"})
    if unknown:
        raise OperatorError(f"not an operator setting: {', '.join(unknown)}")
    locked = Operator.objects.select_for_update().get(pk=operator.pk)
    today = today or operator_today(locked)
    now: dict[str, Any] = {}
    for name, value in values.items():
        if name in BILLING_SETTINGS:
            continue
        current = list(locked.modules) if name == "modules" else getattr(locked, name)
        if not _same(current, value):
            now[name] = value
    money_locked = [name for name in LOCKED_ONCE_MONEY_EXISTS if name in now]
    if money_locked and _has_money(locked):
        raise SettingsChangeRefused(
            _(
                "The currency and time zone cannot change once %(operator)s has money on its books: issued "
                "bills and payments would be read in another currency or their periods' dates would move."
            )
            % {"operator": locked.name}
        )

    billing = {name: values[name] for name in BILLING_SETTINGS if name in values}
    planned = planned_settings(locked)
    pending = pending_change(locked)
    outcome = SettingsOutcome(applied=[])
    if billing and any(not _same(planned[name], value) for name, value in billing.items()):
        differing = {name: value for name, value in billing.items() if not _same(getattr(locked, name), value)}
        if not _has_bills(locked):
            now.update(differing)
            if pending is not None:
                operator_settings_cancel(change=pending, actor=actor)
        elif not differing:
            # Set back to what is in force: the pending change is withdrawn.
            if pending is not None:
                operator_settings_cancel(change=pending, actor=actor)
                outcome.cancelled = True
        else:
            effective = next_period_start(locked, today)
            issued = _bills_from(locked, effective)
            if issued:
                raise SettingsChangeRefused(
                    ngettext(
                        "%(count)d bill of the period from %(day)s is issued already, with the settings in "
                        "force; the change would alter it. Void it first, or change the settings after that "
                        "period has begun.",
                        "%(count)d bills of the period from %(day)s are issued already, with the settings in "
                        "force; the change would alter them. Void them first, or change the settings after that "
                        "period has begun.",
                        issued,
                    )
                    % {"count": issued, "day": date_format(effective, "SHORT_DATE_FORMAT")}
                )
            problem = _structural_problem(locked, differing, effective)
            if problem is not None:
                raise SettingsChangeRefused(problem)
            outcome.scheduled = operator_settings_schedule(
                operator=locked, values=differing, effective_from=effective, actor=actor
            )
    if now:
        operator_update(operator=locked, actor=actor, **now)
        outcome.applied = sorted(now)
    return outcome


def operator_settings_apply_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Apply every pending change whose day has come in its operator's calendar, each in its own
    transaction. A change that can no longer apply (subscribers billed meanwhile on the cycle it
    moves) is refused with the reason; bills of its periods issued ahead of time keep the settings
    they were issued with, and the audit log says how many."""
    now = now or timezone.now()
    totals = {"applied": 0, "refused": 0}
    due = OperatorSettingsChange.objects.filter(status=SettingsChangeStatus.PENDING).select_related("operator")
    for change in due.order_by("pk"):
        if change.effective_from > operator_local_now(change.operator, now).date():
            continue
        with transaction.atomic():
            operator = Operator.objects.select_for_update().get(pk=change.operator_id)
            values = {name: setting_value(name, stored) for name, stored in change.values.items()}
            problem = _structural_problem(operator, values, change.effective_from)
            if problem is not None:
                operator_settings_refuse(change=change, reason=problem)
                totals["refused"] += 1
                continue
            issued_ahead = _bills_from(operator, change.effective_from)
            operator_settings_apply(change=change)
            if issued_ahead:
                audit(
                    operator=operator,
                    action="operator.settings_issued_ahead",
                    change=change.pk,
                    bills_with_earlier_settings=issued_ahead,
                    values={name: setting_text(value) for name, value in values.items()},
                )
            totals["applied"] += 1
    return totals
