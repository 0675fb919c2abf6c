"""JOBS: every periodic job Sonjog runs, with its stable name, schedule and what it is for.

The name is the Procrastinate task name and periodic id, and the `job_name` of its JobRun rows. The
cron expression must equal the one given to `app.periodic` (a test compares them); it is evaluated in
UTC, as Procrastinate does. `operator_schedule` says whether an operator's OperatorSchedule changes
when the job acts for that operator (the job still runs on its cron; it skips operators whose time
has not come). `run_retention_days` shortens how long this job's JobRun rows are kept, for jobs that
fire every few minutes and would otherwise fill the table with identical rows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    title: str
    cron: str
    description: str
    operator_schedule: bool = False
    run_retention_days: int | None = None

    @property
    def task_name(self) -> str:
        return self.name


_JOB_LIST = [
    Job(
        "billing.generate_nightly",
        "Generate bills",
        "17 * * * *",
        "Bills every period that has started by today in each operator's calendar, with any missed "
        "earlier periods; an operator with a schedule is billed only from its generation day and hour.",
        operator_schedule=True,
    ),
    Job(
        "billing.generate_catch_up",
        "Month-end billing catch-up",
        "45 21 28-31 * *",
        "On the month's last days, bills anything the hourly runs missed before the month closes.",
    ),
    Job(
        "network.drain_outbox",
        "Router command outbox",
        "* * * * *",
        "Retries router commands whose next attempt is due and recovers commands a dead worker left running.",
        run_retention_days=14,
    ),
    Job(
        "subscribers.scheduled_changes",
        "Changes booked for a later day",
        "7 * * * *",
        "Applies package changes, suspensions and terminations staff booked for a later day, on that day "
        "in the operator's calendar; one that cannot be applied is marked with the reason.",
    ),
    Job(
        "network.overdue_sweep",
        "Suspend overdue subscribers",
        "30 0 * * *",
        "Suspends subscribers past due date plus grace days (prepaid: past expiry); never VIPs.",
    ),
    Job(
        "network.reconcile",
        "Router reconciliation",
        "*/15 * * * *",
        "Compares each router (or RADIUS) with billing intent and queues fixes for any drift.",
        run_retention_days=30,
    ),
    Job(
        "network.backup_routers",
        "Router configuration backups",
        "40 20 * * *",
        "Backs up every active MikroTik router's configuration, keeps the newest few per router and copies "
        "each to the operator's FTP/FTPS backup destination; a router that fails does not stop the others.",
    ),
    Job(
        "network.sample_online",
        "Online sessions sample",
        "*/5 * * * *",
        "Closes stale RADIUS sessions, refreshes session state and samples online counts per router and zone.",
        run_retention_days=30,
    ),
    Job(
        "notifications.drain",
        "Message queue",
        "* * * * *",
        "Sends messages whose worker died mid-send and queues due messages whose job went missing.",
        run_retention_days=14,
    ),
    Job(
        "console.prune",
        "Console housekeeping",
        "17 3 * * *",
        "Deletes old sign-in attempts and the closed-period change log the dashboard cache no longer needs.",
    ),
    Job(
        "automation.settle_credit",
        "Settle credit against open bills",
        "0 12 1 * *",
        "On the 1st, allocates any payment or credit left unallocated to the subscriber's open bills (FIFO).",
    ),
    Job(
        "automation.operator_settings",
        "Billing settings taking effect",
        "7 * * * *",
        "Applies operators' billing-settings changes on the first day of the period they were made for "
        "(the hourly bill generation applies them too, before it bills).",
    ),
    Job(
        "automation.fair_usage",
        "Fair usage (FUP) throttle",
        "*/15 * * * *",
        "Sums RADIUS traffic over each subscriber's current billing period; past the package's allowance "
        "the subscriber is throttled until the next period, through the router outbox.",
        run_retention_days=30,
    ),
    Job(
        "automation.log_retention",
        "Purge old operational logs",
        "20 22 * * *",
        "Deletes finished background jobs, router attempt logs, online samples and job run records past "
        "their retention age, in batches. Never touches ledger, billing or audit rows.",
    ),
    Job(
        "automation.database_backup",
        "Database backup",
        "0 21 * * *",
        "Writes a pg_dump custom-format backup of the database into the backup directory and keeps the newest few.",
    ),
    Job(
        "automation.online_payment_recheck",
        "Re-check online payments",
        "* * * * *",
        "Asks bKash, Nagad or SSLCommerz about each online payment still open when its next check is due "
        "(1, 5, 15 and 60 minutes after the last, then hourly; unknown after 48 hours is escalated) and "
        "records those the gateway confirms, once; refunds not settled yet are asked about the same way.",
        run_retention_days=30,
    ),
    Job(
        "automation.online_settlement",
        "Online payments settlement check",
        "30 20 * * *",
        "For every active gateway account, compares the gateway's paid transactions of the day before (the "
        "operator's calendar) with the payments applied that day, both ways; an open payment the gateway "
        "has as paid is confirmed first. What is still missing shows on the Settlement page and the dashboard.",
    ),
    Job(
        "automation.due_reminders",
        "Due-date reminders",
        "5 * * * *",
        "Reminds subscribers about their oldest open bill on the days the operator's reminder rules name, "
        "from the operator's reminder hour; each (bill, offset) is sent once.",
        operator_schedule=True,
    ),
    Job(
        "automation.prepaid_expiry_notices",
        "Prepaid expiry notices",
        "10 * * * *",
        "Warns prepaid subscribers before (and after) their validity ends, per the operator's rules, from "
        "the operator's reminder hour; each (validity end, offset) is sent once.",
        operator_schedule=True,
    ),
]

JOBS: dict[str, Job] = {job.name: job for job in _JOB_LIST}
