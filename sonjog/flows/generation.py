"""Bills come into being -> their subscribers hear of it.

`bills_generate` is billing's one generation service with the "bill generated" notices queued inside
the run's transaction. The console's "Generate", `sonjog generate_bills`, the scheduled jobs and a
subscriber's activation all bill through it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.utils import timezone

from sonjog.automation.operator_settings import operator_settings_apply_due
from sonjog.automation.services import operators_due_for_generation
from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import BillingRun
from sonjog.billing.services import GenerationResult, bill_generate_period
from sonjog.billing.terms import operator_today
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.notifications.services import bill_notices_defer
from sonjog.operators.models import Operator


def _notices_queue(run_id: int) -> None:
    # Rendered and queued by a job, not inside the run: a 30,000-bill run must stay within its seconds.
    bill_notices_defer(run_id=run_id)


def bills_generate(
    *,
    operator: Operator,
    period_month: dt.date,
    trigger: str,
    actor: User | None = None,
    subscriber_ids: list[int] | None = None,
    today: dt.date | None = None,
    started_by: dt.date | None = None,
    new_connection: bool = False,
) -> GenerationResult:
    """Bill a period for an operator (see `bill_generate_period`) and queue the subscribers' notices."""
    return bill_generate_period(
        operator=operator,
        period_month=period_month,
        trigger=trigger,
        actor=actor,
        subscriber_ids=subscriber_ids,
        today=today,
        started_by=started_by,
        on_bills_created=_notices_queue,
        new_connection=new_connection,
    )


BILL_AHEAD_MONTHS = 12


def bills_generate_up_to(
    *, subscriber: Subscriber, through_month: dt.date, actor: User | None = None
) -> GenerationResult:
    """ "Bill up to": issue one subscriber's bills now for every period up to `through_month` (at most
    a year ahead), so that an advance payment settles them as invoices rather than waiting as credit.
    The periods in between that are missing are billed too; held ones are not."""
    operator = subscriber.operator
    today = operator_today(operator)
    through = month_start(through_month)
    if subscriber.service_intent == ServiceIntent.TERMINATED:
        raise BillingError(f"{subscriber.customer_id} is terminated")
    if subscriber.activation_date is None:
        raise BillingError(f"{subscriber.customer_id} is not activated yet")
    if through < month_start(today):
        raise BillingError("choose this month or a later one")
    if through > add_months(month_start(today), BILL_AHEAD_MONTHS):
        raise BillingError(f"bill at most {BILL_AHEAD_MONTHS} months ahead")
    return bills_generate(
        operator=operator,
        period_month=through,
        trigger=BillingRun.Trigger.STAFF,
        actor=actor,
        subscriber_ids=[subscriber.pk],
        today=today,
    )


def due_bills_generate(trigger: str, operators: Iterable[Operator] | None = None) -> dict[str, int]:
    """For every operator (or those given), bill every period that has started by today in the
    operator's calendar.

    Running daily (hourly, to survive downtime) covers all three cycles: the calendar cycle's day is
    the 1st, the fixed day is the operator's, and each anniversary subscriber's day is their own."""
    totals = {"operators": 0, "created": 0, "backfilled": 0, "errors": 0}
    if operators is None:
        operators = Operator.objects.filter(is_active=True).order_by("pk")
    for operator in operators:
        today = operator_today(operator)
        result = bills_generate(
            operator=operator, period_month=month_start(today), trigger=trigger, today=today, started_by=today
        )
        totals["operators"] += 1
        totals["created"] += result.created
        totals["backfilled"] += result.backfilled
        totals["errors"] += len(result.errors)
    return totals


def scheduled_bills_generate(trigger: str, *, now: dt.datetime | None = None) -> dict[str, int]:
    """The hourly generation run with operator schedules honoured (automation decides who is due).
    Billing settings whose day has come are applied first (ADR 0011), so the run that bills an
    operator's new period always bills it with the settings of that period."""
    operator_settings_apply_due(now=now or timezone.now())
    due, waiting = operators_due_for_generation(now=now)
    return {**due_bills_generate(trigger, due), "waiting": waiting}
