"""Scheduled billing. Both jobs are idempotent: a second run finds every bill in place."""

from __future__ import annotations

from collections.abc import Iterable

from procrastinate.contrib.django import app

from sonjog.automation.recording import recorded
from sonjog.billing.models import BillingRun
from sonjog.billing.services import bill_generate_period
from sonjog.billing.terms import operator_today
from sonjog.core.jobs import releases_connection
from sonjog.core.periods import month_start
from sonjog.operators.models import Operator


def generate_due_bills(trigger: str, operators: Iterable[Operator] | None = None) -> dict[str, int]:
    """For every operator (or those given), bill every period that has started by today in the
    operator's calendar.

    Running daily (hourly, to survive downtime) covers all three cycles: the calendar cycle's day is
    the 1st, the fixed day is the operator's, and each anniversary subscriber's day is their own."""
    totals = {"operators": 0, "created": 0, "backfilled": 0, "errors": 0}
    if operators is None:
        operators = Operator.objects.filter(is_active=True).order_by("pk")
    for operator in operators:
        today = operator_today(operator)
        result = bill_generate_period(
            operator=operator, period_month=month_start(today), trigger=trigger, today=today, started_by=today
        )
        totals["operators"] += 1
        totals["created"] += result.created
        totals["backfilled"] += result.backfilled
        totals["errors"] += len(result.errors)
    return totals


@app.periodic(cron="17 * * * *", periodic_id="billing.generate_nightly")
@app.task(name="billing.generate_nightly", queue="billing", queueing_lock="billing.generate_nightly")
@releases_connection
@recorded("billing.generate_nightly")
def generate_nightly(timestamp: int) -> dict[str, int]:
    from sonjog.automation.services import scheduled_generation

    return scheduled_generation(BillingRun.Trigger.NIGHTLY)


@app.periodic(cron="45 21 28-31 * *", periodic_id="billing.generate_catch_up")
@app.task(name="billing.generate_catch_up", queue="billing", queueing_lock="billing.generate_catch_up")
@releases_connection
@recorded("billing.generate_catch_up")
def generate_catch_up(timestamp: int) -> dict[str, int]:
    """The last-day sweep: anything the nightly runs missed this month is billed before it closes."""
    return generate_due_bills(BillingRun.Trigger.CATCH_UP)
