"""The scheduled jobs that run a flow: generation with its notices, the overdue sweep with its notices.
Their names are the ones they were first registered under (billing.*, network.*), which the job
registry, the run records and any job already queued use."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from procrastinate.contrib.django import app

from sonjog.automation.recording import recorded
from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import BillingRun, Outage
from sonjog.billing.services.outages import outage_run_failed
from sonjog.core.jobs import releases_connection
from sonjog.flows import enforcement
from sonjog.flows.gateway_refunds import refunds_recheck, settlements_check_nightly
from sonjog.flows.gateways import attempts_recheck
from sonjog.flows.generation import due_bills_generate, scheduled_bills_generate
from sonjog.flows.outages import outage_credit_run
from sonjog.flows.scheduled import scheduled_changes_apply


@app.periodic(cron="17 * * * *", periodic_id="billing.generate_nightly")
@app.task(name="billing.generate_nightly", queue="billing", queueing_lock="billing.generate_nightly")
@releases_connection
@recorded("billing.generate_nightly")
def generate_nightly(timestamp: int) -> dict[str, int]:
    return scheduled_bills_generate(BillingRun.Trigger.NIGHTLY)


@app.periodic(cron="45 21 28-31 * *", periodic_id="billing.generate_catch_up")
@app.task(name="billing.generate_catch_up", queue="billing", queueing_lock="billing.generate_catch_up")
@releases_connection
@recorded("billing.generate_catch_up")
def generate_catch_up(timestamp: int) -> dict[str, int]:
    """The last-day sweep: anything the nightly runs missed this month is billed before it closes."""
    return due_bills_generate(BillingRun.Trigger.CATCH_UP)


@app.periodic(cron="30 0 * * *", periodic_id="network.overdue_sweep")
@app.task(name="network.overdue_sweep", queue="network", queueing_lock="network.overdue_sweep")
@releases_connection
@recorded("network.overdue_sweep")
def overdue_sweep(timestamp: int | None = None) -> dict[str, Any]:
    result = enforcement.overdue_sweep()
    return {"suspended": result["suspended"]}


@app.periodic(cron="7 * * * *", periodic_id="subscribers.scheduled_changes")
@app.task(name="subscribers.scheduled_changes", queue="billing", queueing_lock="subscribers.scheduled_changes")
@releases_connection
@recorded("subscribers.scheduled_changes")
def scheduled_changes(timestamp: int | None = None) -> dict[str, int]:
    """Package changes, suspensions and terminations booked for a later day, applied on it."""
    return scheduled_changes_apply()


@app.task(name="billing.outage_credit", queue="console")
@releases_connection
def outage_credit_job(outage_id: int, operator_ids: list[int], actor_id: int | None = None) -> dict[str, int]:
    """An outage's credits, queued from the console: its progress and result are on the outage row."""
    outage = Outage.objects.get(pk=outage_id)
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    try:
        plan = outage_credit_run(outage=outage, operator_ids=operator_ids, actor=actor)
    except BillingError as error:
        outage_run_failed(outage_id, str(error))
        return {"credited": 0, "failed": 1}
    except Exception as error:
        outage_run_failed(outage_id, f"{type(error).__name__}: {error}")
        raise
    return {"credited": len(plan.credited), "failed": 0}


@app.periodic(cron="* * * * *", periodic_id="automation.online_payment_recheck")
@app.task(name="automation.online_payment_recheck", queue="billing", queueing_lock="automation.online_payment_recheck")
@releases_connection
@recorded("automation.online_payment_recheck")
def online_payment_recheck(timestamp: int | None = None) -> dict[str, Any]:
    """The online payments due a check ask their gateway again (`sonjog.flows.gateways`), and so do the
    refunds not settled yet (`sonjog.flows.gateway_refunds`)."""
    counts: dict[str, Any] = attempts_recheck()
    counts.update({f"refunds_{name}": count for name, count in refunds_recheck().items()})
    return counts


@app.periodic(cron="30 20 * * *", periodic_id="automation.online_settlement")
@app.task(name="automation.online_settlement", queue="billing", queueing_lock="automation.online_settlement")
@releases_connection
@recorded("automation.online_settlement")
def online_settlement(timestamp: int | None = None) -> dict[str, Any]:
    """Yesterday's settlement check of every active merchant account (02:30 in Dhaka, once the
    gateways' day is over): the gateway's paid transactions against the payments applied."""
    return settlements_check_nightly()
