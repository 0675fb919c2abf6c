"""Every write the scheduler makes: running jobs by hand, schedules and reminder rules, and the bodies
of the automation jobs. Each body does its work in short transactions of its own (one per subscriber,
operator or batch), so a long run never holds locks for its whole length."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from sonjog.automation import conf
from sonjog.automation.backup import database_backup, database_restore
from sonjog.automation.exceptions import InvalidSchedule, UnknownJob
from sonjog.automation.models import JobRun, OperatorSchedule, ReminderChannel, ReminderEvent, ReminderRule
from sonjog.automation.recording import record_run
from sonjog.automation.registry import JOBS
from sonjog.automation.selectors import (
    ReminderCandidate,
    credit_settlement_candidates,
    expiry_candidates,
    generation_open,
    reminder_candidates,
    reminders_open,
)
from sonjog.billing.models import Allocation
from sonjog.billing.services import money_changed
from sonjog.billing.services.locks import subscriber_lock
from sonjog.core.audit import audit
from sonjog.notifications.services import NOTICE_BATCH, Notice, notify_event_many
from sonjog.operators.dates import operator_local_now
from sonjog.operators.models import Operator

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from sonjog.catalog.models import Package
    from sonjog.customers.models import Zone

logger = logging.getLogger(__name__)

__all__ = [
    "database_backup",
    "database_restore",
    "due_reminders_send",
    "job_run_now",
    "log_retention_purge",
    "operator_schedule_set",
    "operators_due_for_generation",
    "prepaid_expiry_notices_send",
    "reminder_rule_create",
    "reminder_rule_remove",
    "settle_credit",
]

# --------------------------------------------------------------------------------------------------
# Running a job now
# --------------------------------------------------------------------------------------------------


def job_run_now(name: str, *, actor: User | None = None) -> JobRun:
    """Run a registered job synchronously in this process, recorded as a manual run.

    The task's own body runs, below its `recorded` and `releases_connection` wrappers, so a manual run
    does exactly what the schedule does and is recorded once. A failure is recorded and returned, not
    raised; a job already running elsewhere is recorded as skipped."""
    job = JOBS.get(name)
    if job is None:
        raise UnknownJob(f"no job named '{name}'; `sonjog jobs` lists them")
    from procrastinate.contrib.django import app

    task = app.tasks.get(job.task_name)
    if task is None:
        raise UnknownJob(f"job '{name}' is registered but its task is not loaded")
    body = inspect.unwrap(task.func)
    return record_run(
        name,
        lambda: body(timestamp=int(timezone.now().timestamp())),
        trigger=JobRun.Trigger.MANUAL,
        actor=actor,
        reraise=False,
    )


# --------------------------------------------------------------------------------------------------
# Schedules and reminder rules
# --------------------------------------------------------------------------------------------------


def _check_hour(value: int, label: str) -> None:
    if not 0 <= value <= 23:
        raise InvalidSchedule(f"{label} must be an hour from 0 to 23 (got {value})")


def operator_schedule_set(
    *,
    operator: Operator,
    generation_day: int | None = None,
    generation_hour: int = 0,
    reminder_hour: int = 10,
    actor: User | None = None,
) -> OperatorSchedule:
    """Set when the per-operator jobs act for this operator (its local time)."""
    if generation_day is not None and not 1 <= generation_day <= 31:
        raise InvalidSchedule(f"the generation day must be 1 to 31 (got {generation_day})")
    _check_hour(generation_hour, "the generation hour")
    _check_hour(reminder_hour, "the reminder hour")
    with transaction.atomic():
        schedule, _created = OperatorSchedule.objects.update_or_create(
            operator=operator,
            defaults={
                "generation_day": generation_day,
                "generation_hour": generation_hour,
                "reminder_hour": reminder_hour,
            },
        )
        audit(
            operator=operator,
            action="automation.schedule.set",
            actor=actor,
            generation_day=generation_day,
            generation_hour=generation_hour,
            reminder_hour=reminder_hour,
        )
    return schedule


def reminder_rule_create(
    *,
    operator: Operator,
    event: str,
    offset_days: int,
    package: Package | None = None,
    zone: Zone | None = None,
    channel: str = "",
    actor: User | None = None,
) -> ReminderRule:
    """A reminder `offset_days` from the due date (or the prepaid validity end), optionally only for one
    package and/or one zone with its sub-zones."""
    if event not in ReminderEvent.values:
        raise InvalidSchedule(f"unknown reminder event '{event}'; use one of {', '.join(ReminderEvent.values)}")
    if channel not in ReminderChannel.values:
        raise InvalidSchedule(f"unknown channel '{channel}'; use one of {', '.join(c for c in ReminderChannel.values)}")
    if not -60 <= offset_days <= 60:
        raise InvalidSchedule(f"a reminder offset must be within 60 days of the date (got {offset_days})")
    if package is not None and package.operator_id != operator.pk:
        raise InvalidSchedule(f"the package '{package}' belongs to another operator")
    if zone is not None and zone.operator_id != operator.pk:
        raise InvalidSchedule(f"the zone '{zone}' belongs to another operator")
    try:
        with transaction.atomic():
            rule = ReminderRule.objects.create(
                operator=operator, event=event, offset_days=offset_days, package=package, zone=zone, channel=channel
            )
            audit(
                operator=operator,
                action="automation.reminder_rule.create",
                actor=actor,
                rule=rule.pk,
                reminder_event=event,
                offset_days=offset_days,
                package=package.pk if package else None,
                zone=zone.pk if zone else None,
                channel=channel,
            )
    except IntegrityError:
        raise InvalidSchedule(f"the same {event} reminder at {offset_days:+d} days already exists") from None
    return rule


def reminder_rule_remove(*, rule: ReminderRule, actor: User | None = None) -> None:
    with transaction.atomic():
        audit(
            operator=rule.operator,
            action="automation.reminder_rule.remove",
            actor=actor,
            rule=rule.pk,
            reminder_event=rule.event,
            offset_days=rule.offset_days,
        )
        ReminderRule.objects.filter(pk=rule.pk).delete()


# --------------------------------------------------------------------------------------------------
# Bill generation on the operator's schedule
# --------------------------------------------------------------------------------------------------


def operators_due_for_generation(*, now: dt.datetime | None = None) -> tuple[list[Operator], int]:
    """Who the hourly generation run bills now, with operator schedules honoured: an operator is due
    (every period that has started by its local today) only once its generation day and hour have
    come; operators without a schedule as soon as each period starts. Returns (due, waiting count);
    the run itself is `sonjog.flows.generation.scheduled_bills_generate`."""
    now = now or timezone.now()
    schedules = {schedule.operator_id: schedule for schedule in OperatorSchedule.objects.all()}
    due: list[Operator] = []
    waiting = 0
    for operator in Operator.objects.filter(is_active=True).order_by("pk"):
        schedule = schedules.get(operator.pk)
        if schedule is not None and not generation_open(schedule, operator_local_now(operator, now)):
            waiting += 1
            continue
        due.append(operator)
    return due, waiting


# --------------------------------------------------------------------------------------------------
# Credit settlement
# --------------------------------------------------------------------------------------------------


def settle_credit(*, operator: Operator | None = None) -> dict[str, Any]:
    """Allocate waiting payments and credit to open bills, one subscriber per transaction under the
    subscriber's money lock, exactly as a payment would (`money_changed`: FIFO allocation and, for
    prepaid subscribers, the validity date). Candidates are found in one query."""
    candidates = credit_settlement_candidates(operator)
    settled = 0
    allocated = released = Decimal("0.00")
    errors: list[dict[str, str]] = []
    for subscriber_id in candidates:
        try:
            with transaction.atomic():
                subscriber_lock(subscriber_id)
                allocations = Allocation.objects.filter(bill__subscriber_id=subscriber_id)
                last_before = allocations.aggregate(last=Max("pk"))["last"] or 0
                money_changed([subscriber_id], [])
                added = allocations.filter(pk__gt=last_before).aggregate(
                    allocated=Sum("amount", filter=Q(amount__gt=0)), released=Sum("amount", filter=Q(amount__lt=0))
                )
        except DatabaseError as error:
            errors.append({"subscriber": str(subscriber_id), "error": str(error).strip()[:300]})
            continue
        if added["allocated"] is not None or added["released"] is not None:
            settled += 1
            allocated += added["allocated"] or 0
            released -= added["released"] or 0
    return {
        "candidates": len(candidates),
        "settled": settled,
        "allocated": allocated,
        "released": released,
        "errors": errors[:50],
    }


# --------------------------------------------------------------------------------------------------
# Log retention
# --------------------------------------------------------------------------------------------------

# What log_retention may delete, and nothing else: operational logs that no invariant, statement or
# audit trail depends on. Each condition marks a row older than the cutoff.
RETENTION_TARGETS: dict[str, tuple[str, str]] = {
    # Finished background jobs, aged by their last event; their events and periodic-defer links go
    # with them (ON DELETE CASCADE and Procrastinate's own delete trigger).
    "procrastinate_jobs": (
        "procrastinate_jobs",
        "status IN ('succeeded', 'failed', 'cancelled', 'aborted')"
        " AND (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = t.id) < %(cutoff)s",
    ),
    "outbox_attempts": ("network_outboxattempt", "finished_at < %(cutoff)s"),
    "online_samples": ("network_onlinesample", "sampled_at < %(cutoff)s"),
    "job_runs": ("automation_jobrun", "status <> 'running' AND started_at < %(cutoff)s"),
}


def log_retention_purge(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete operational log rows past their retention age, a batch per transaction so no lock is held
    for long and the work resumes where it stopped if interrupted."""
    now = now or timezone.now()
    batch = max(conf.retention_batch_size(), 1)
    deleted: dict[str, int] = {}
    for target, (table, condition) in RETENTION_TARGETS.items():
        cutoff = now - dt.timedelta(days=conf.retention_days(target))
        sql = (
            # Table and condition come from RETENTION_TARGETS, never from input.
            f"DELETE FROM {table} WHERE id IN "
            f"(SELECT t.id FROM {table} t WHERE {condition} ORDER BY t.id LIMIT %(batch)s)"
        )
        total = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, {"cutoff": cutoff, "batch": batch})
                count = cursor.rowcount
            total += count
            if count < batch:
                break
        deleted[target] = total
    deleted["job_runs"] += _purge_frequent_job_runs(now, batch)
    return deleted


def _purge_frequent_job_runs(now: dt.datetime, batch: int) -> int:
    """Runs of the every-few-minutes jobs are kept for their own, shorter, time."""
    total = 0
    for job in JOBS.values():
        if job.run_retention_days is None:
            continue
        cutoff = now - dt.timedelta(days=job.run_retention_days)
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM automation_jobrun WHERE id IN (SELECT id FROM automation_jobrun WHERE job_name = %s"
                    " AND status <> 'running' AND started_at < %s ORDER BY id LIMIT %s)",
                    [job.name, cutoff, batch],
                )
                count = cursor.rowcount
            total += count
            if count < batch:
                break
    return total


# --------------------------------------------------------------------------------------------------
# Reminders and expiry notices
# --------------------------------------------------------------------------------------------------

# The notifications app's event names (its Event choices).
EVENT_DUE_REMINDER = "due_reminder"
EVENT_PREPAID_EXPIRY = "prepaid_expiry"


def _notices(candidates: list[ReminderCandidate]) -> list[Notice]:
    """What the notifications app needs per candidate; no channel on the rule means the operator's defaults."""
    return [
        Notice(
            candidate.subscriber_id,
            candidate.context(),
            [candidate.channel] if candidate.channel else None,
            candidate.dedup_key,
        )
        for candidate in candidates
    ]


def _send_notices(
    event: str, select: Callable[[Operator, dt.date], list[ReminderCandidate]], now: dt.datetime | None
) -> dict[str, Any]:
    now = now or timezone.now()
    schedules = {schedule.operator_id: schedule for schedule in OperatorSchedule.objects.all()}
    totals: dict[str, Any] = {"operators": 0, "waiting": 0, "candidates": 0, "queued": 0, "errors": 0}
    failures: list[dict[str, str]] = []
    for operator in Operator.objects.filter(is_active=True).order_by("pk"):
        local_now = operator_local_now(operator, now)
        schedule = schedules.get(operator.pk) or OperatorSchedule(operator=operator)
        if not reminders_open(schedule, local_now):
            totals["waiting"] += 1
            continue
        totals["operators"] += 1
        candidates = select(operator, local_now.date())
        totals["candidates"] += len(candidates)
        # One batch per transaction: a failing batch is reported and the next one still goes.
        for start in range(0, len(candidates), NOTICE_BATCH):
            batch = candidates[start : start + NOTICE_BATCH]
            try:
                # One batch, one transaction: its message rows and their send jobs commit together.
                with transaction.atomic():
                    totals["queued"] += len(notify_event_many(operator=operator, event=event, notices=_notices(batch)))
            except Exception as error:  # one operator's broken batch must not stop the others
                totals["errors"] += len(batch)
                failures.append(
                    {"operator": operator.code, "subscriber": batch[0].customer_id, "error": str(error)[:300]}
                )
                logger.warning("notices %s for operator %s failed: %s", event, operator.code, error)
    totals["failures"] = failures[:50]
    return totals


def due_reminders_send(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Send each operator's bill-due reminders for its local today, from its reminder hour on."""
    return _send_notices(EVENT_DUE_REMINDER, reminder_candidates, now)


def prepaid_expiry_notices_send(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Send each operator's prepaid expiry notices for its local today, from its reminder hour on."""
    return _send_notices(EVENT_PREPAID_EXPIRY, expiry_candidates, now)
