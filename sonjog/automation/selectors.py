"""Reads for the scheduler: the jobs list, operator schedules, and the candidate sets the jobs act on.

The candidate selectors hold all the "who" logic of the jobs and write nothing, so they are tested
on their own against the database; the jobs around them only send or enqueue.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from sonjog.automation.cron import next_fire
from sonjog.automation.models import JobRun, OperatorSchedule, ReminderEvent
from sonjog.automation.registry import JOBS
from sonjog.core.periods import add_months, month_start
from sonjog.operators.models import Operator

# --------------------------------------------------------------------------------------------------
# The jobs list
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOverview:
    name: str
    title: str
    description: str
    cron: str
    operator_schedule: bool
    next_run_at: dt.datetime
    last_run_at: dt.datetime | None
    last_finished_at: dt.datetime | None
    last_status: str | None
    last_trigger: str | None
    last_outcome: dict[str, Any] | None
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def jobs_overview(now: dt.datetime | None = None) -> list[JobOverview]:
    """Every registered job with its schedule, its latest run and its next fire time (UTC)."""
    now = now or timezone.now()
    latest = {
        run.job_name: run
        for run in JobRun.objects.filter(job_name__in=list(JOBS))
        .order_by("job_name", "-started_at", "-id")
        .distinct("job_name")
    }
    rows = []
    for job in JOBS.values():
        run = latest.get(job.name)
        rows.append(
            JobOverview(
                name=job.name,
                title=job.title,
                description=job.description,
                cron=job.cron,
                operator_schedule=job.operator_schedule,
                next_run_at=next_fire(job.cron, now),
                last_run_at=run.started_at if run else None,
                last_finished_at=run.finished_at if run else None,
                last_status=run.status if run else None,
                last_trigger=run.trigger if run else None,
                last_outcome=run.outcome if run else None,
                last_error=(run.error.splitlines()[0] if run.error else "") if run else None,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Operator schedules
# --------------------------------------------------------------------------------------------------


def operator_schedule_for(operator: Operator) -> OperatorSchedule:
    """The operator's schedule, or an unsaved one holding the defaults."""
    return OperatorSchedule.objects.filter(operator=operator).first() or OperatorSchedule(operator=operator)


def generation_open(schedule: OperatorSchedule, local_now: dt.datetime) -> bool:
    """Whether the operator's bills may be made at this local moment.

    The generation day is clamped to the month's last day, so "31" means the last day in every month."""
    if local_now.hour < schedule.generation_hour:
        return False
    if schedule.generation_day is None:
        return True
    last_day = (add_months(month_start(local_now.date()), 1) - dt.timedelta(days=1)).day
    return local_now.day >= min(schedule.generation_day, last_day)


def reminders_open(schedule: OperatorSchedule, local_now: dt.datetime) -> bool:
    return local_now.hour >= schedule.reminder_hour


# --------------------------------------------------------------------------------------------------
# Credit settlement
# --------------------------------------------------------------------------------------------------

# Subscribers with payment or credit not yet allocated while a bill is still open, plus any whose
# allocations still point at a reversed bill or source: both are fixed by one rebalance.
_SETTLEMENT_CANDIDATES_SQL = """
WITH allocated_from AS (
    SELECT a.source_id, sum(a.amount) AS amount FROM billing_allocation a GROUP BY a.source_id
), with_credit AS (
    SELECT DISTINCT e.subscriber_id
    FROM billing_ledgerentry e
    LEFT JOIN allocated_from af ON af.source_id = e.id
    WHERE e.kind IN ('payment', 'adjustment', 'opening_balance') AND e.amount < 0
      AND (%(operator)s::bigint IS NULL OR e.operator_id = %(operator)s)
      AND NOT EXISTS (SELECT 1 FROM billing_ledgerentry r WHERE r.reverses_id = e.id)
      AND -e.amount > COALESCE(af.amount, 0)
), with_open_bill AS (
    SELECT c.subscriber_id FROM with_credit c
    WHERE EXISTS (
        SELECT 1 FROM billing_bill b
        WHERE b.subscriber_id = c.subscriber_id AND b.reversed_at IS NULL
          AND b.total > b.allocated)
), stale AS (
    SELECT DISTINCT b.subscriber_id
    FROM billing_allocation a JOIN billing_bill b ON b.id = a.bill_id
    WHERE (%(operator)s::bigint IS NULL OR b.operator_id = %(operator)s)
      AND (b.reversed_at IS NOT NULL OR EXISTS (SELECT 1 FROM billing_ledgerentry r WHERE r.reverses_id = a.source_id))
    GROUP BY b.subscriber_id, a.bill_id, a.source_id
    HAVING sum(a.amount) <> 0
)
SELECT subscriber_id FROM with_open_bill UNION SELECT subscriber_id FROM stale ORDER BY 1
"""


def credit_settlement_candidates(operator: Operator | None = None) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(_SETTLEMENT_CANDIDATES_SQL, {"operator": operator.pk if operator else None})
        return [row[0] for row in cursor.fetchall()]


# --------------------------------------------------------------------------------------------------
# Reminders and prepaid expiry notices
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderCandidate:
    """One notice to send: who, about what, by which rule, and the key that makes it send once."""

    subscriber_id: int
    customer_id: str
    rule_id: int
    offset_days: int
    channel: str
    mode: str
    reference_date: dt.date  # the bill's due date, or the prepaid validity end
    bill_id: int | None
    period_month: dt.date | None
    amount_due: Decimal | None
    dedup_key: str

    def context(self) -> dict[str, Any]:
        """The template values this notice supplies (notifications fills in name, package, balance...)."""
        if self.bill_id is not None:
            return {"amount_due": self.amount_due, "due_date": self.reference_date}
        return {"expiry": self.reference_date}


def _dedup_suffix(channel: str) -> str:
    return f":{channel}" if channel else ""


# Each zone-limited rule of the operator with its zone and every zone below it: "Uttara" includes the
# subscribers of "Uttara / Sector 7".
_RULE_ZONES_SQL = """
    SELECT r.id AS rule_id, r.zone_id FROM automation_reminderrule r
    WHERE r.operator_id = %(operator)s AND r.zone_id IS NOT NULL
    UNION
    SELECT rz.rule_id, z.id FROM rule_zones rz JOIN customers_zone z ON z.parent_id = rz.zone_id
"""

# The oldest open bill per subscriber, kept only when its due date plus a rule's offset is today.
# Bills are reached through the (operator, period_month) index: a bill due on date D started at most
# due_days + one month before D, so the period window below bounds the scan. The amount due follows
# the mode: what the subscriber owes in total (cumulative: the balance carried forward; monthly: the
# open bills, which FIFO makes the same figure whenever no credit is waiting).
_REMINDER_CANDIDATES_SQL = (
    """
WITH RECURSIVE rules AS (
    SELECT r.id, r.offset_days, r.package_id, r.zone_id, r.channel, (%(today)s::date - r.offset_days) AS due_on
    FROM automation_reminderrule r
    WHERE r.operator_id = %(operator)s AND r.event = 'bill_due' AND r.is_active
), rule_zones AS ("""
    + _RULE_ZONES_SQL
    + """), due_bills AS (
    SELECT b.id, b.subscriber_id, b.period_month, b.due_date, b.total - b.allocated AS open
    FROM billing_bill b
    WHERE b.operator_id = %(operator)s AND b.reversed_at IS NULL
      AND b.period_month BETWEEN %(window_start)s AND %(window_end)s
      AND b.due_date IN (SELECT due_on FROM rules)
)
SELECT s.id, s.customer_id, r.id, r.offset_days, r.channel, COALESCE(s.billing_mode, o.billing_mode),
       b.due_date, b.id, b.period_month,
       CASE WHEN COALESCE(s.billing_mode, o.billing_mode) = 'cumulative'
            THEN (SELECT COALESCE(sum(e.amount), 0) FROM billing_ledgerentry e WHERE e.subscriber_id = s.id)
            ELSE (SELECT COALESCE(sum(ob.total - ob.allocated), 0)
                  FROM billing_bill ob WHERE ob.subscriber_id = s.id AND ob.reversed_at IS NULL) END
FROM due_bills b
JOIN customers_subscriber s ON s.id = b.subscriber_id
JOIN operators_operator o ON o.id = s.operator_id
JOIN rules r ON r.due_on = b.due_date AND (r.package_id IS NULL OR r.package_id = s.package_id)
    AND (r.zone_id IS NULL OR EXISTS (SELECT 1 FROM rule_zones rz WHERE rz.rule_id = r.id AND rz.zone_id = s.zone_id))
WHERE b.open > 0
  AND s.service_intent IN ('active', 'suspended')
  AND COALESCE(s.billing_mode, o.billing_mode) <> 'prepaid'
  AND NOT EXISTS (
      SELECT 1 FROM billing_bill older
      WHERE older.subscriber_id = b.subscriber_id AND older.reversed_at IS NULL
        AND (older.period_month, older.id) < (b.period_month, b.id)
        AND older.total > older.allocated)
ORDER BY s.id, r.offset_days, r.id
"""
)


def reminder_candidates(operator: Operator, today: dt.date) -> list[ReminderCandidate]:
    """Subscribers (monthly and cumulative) whose oldest open bill is due `today - offset` for one of
    the operator's active bill-due rules. Prepaid subscribers get expiry notices instead."""
    offsets = list(
        operator.reminder_rules.filter(event=ReminderEvent.BILL_DUE, is_active=True).values_list(
            "offset_days", flat=True
        )
    )
    if not offsets:
        return []
    earliest_due = today - dt.timedelta(days=max(offsets))
    latest_due = today - dt.timedelta(days=min(offsets))
    # A bill's period starts at most a month after its label month; two more months of slack cover
    # bills made while the operator's due days were longer than now.
    window_start = add_months(month_start(earliest_due - dt.timedelta(days=operator.due_days)), -3)
    with connection.cursor() as cursor:
        cursor.execute(
            _REMINDER_CANDIDATES_SQL,
            {
                "operator": operator.pk,
                "today": today,
                "window_start": window_start,
                "window_end": month_start(latest_due),
            },
        )
        rows = cursor.fetchall()
    return [
        ReminderCandidate(
            subscriber_id=subscriber_id,
            customer_id=customer_id,
            rule_id=rule_id,
            offset_days=offset,
            channel=channel,
            mode=mode,
            reference_date=due_date,
            bill_id=bill_id,
            period_month=period_month,
            amount_due=amount_due,
            dedup_key=f"due-reminder:{bill_id}:{offset:+d}{_dedup_suffix(channel)}",
        )
        for (
            subscriber_id,
            customer_id,
            rule_id,
            offset,
            channel,
            mode,
            due_date,
            bill_id,
            period_month,
            amount_due,
        ) in rows
    ]


_EXPIRY_CANDIDATES_SQL = (
    """
WITH RECURSIVE rule_zones AS ("""
    + _RULE_ZONES_SQL
    + """)
SELECT s.id, s.customer_id, r.id, r.offset_days, r.channel, s.expires_on
FROM automation_reminderrule r
JOIN customers_subscriber s ON s.operator_id = r.operator_id
    AND (r.package_id IS NULL OR r.package_id = s.package_id)
    AND (r.zone_id IS NULL OR EXISTS (SELECT 1 FROM rule_zones rz WHERE rz.rule_id = r.id AND rz.zone_id = s.zone_id))
    AND s.expires_on = %(today)s::date - r.offset_days
JOIN operators_operator o ON o.id = s.operator_id
WHERE r.operator_id = %(operator)s AND r.event = 'prepaid_expiry' AND r.is_active
  AND s.service_intent IN ('active', 'suspended')
  AND COALESCE(s.billing_mode, o.billing_mode) = 'prepaid'
ORDER BY s.id, r.offset_days, r.id
"""
)


def expiry_candidates(operator: Operator, today: dt.date) -> list[ReminderCandidate]:
    """Prepaid subscribers whose validity ends `today - offset` for one of the operator's active
    expiry rules. The key names the validity end, so a renewal starts a fresh set of notices."""
    with connection.cursor() as cursor:
        cursor.execute(_EXPIRY_CANDIDATES_SQL, {"operator": operator.pk, "today": today})
        rows = cursor.fetchall()
    return [
        ReminderCandidate(
            subscriber_id=subscriber_id,
            customer_id=customer_id,
            rule_id=rule_id,
            offset_days=offset,
            channel=channel,
            mode="prepaid",
            reference_date=expires_on,
            bill_id=None,
            period_month=None,
            amount_due=None,
            dedup_key=f"prepaid-expiry:{subscriber_id}:{expires_on:%Y-%m-%d}:{offset:+d}{_dedup_suffix(channel)}",
        )
        for subscriber_id, customer_id, rule_id, offset, channel, expires_on in rows
    ]


def reminder_rule_reach(operator: Operator, today: dt.date) -> dict[int, int]:
    """How many subscribers each of the operator's rules reaches on `today` (messages already sent
    today still count: this is the rule's reach, not what is left to send)."""
    reach = Counter(candidate.rule_id for candidate in reminder_candidates(operator, today))
    reach.update(candidate.rule_id for candidate in expiry_candidates(operator, today))
    return dict(reach)
