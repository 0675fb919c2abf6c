"""log_retention: old operational rows go, in batches; recent ones and money/audit rows stay."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from sonjog.automation.models import JobRun
from sonjog.automation.services import log_retention_purge
from sonjog.billing.models import Allocation, Bill, LedgerEntry, Payment, Statement
from sonjog.conftest import FROZEN_NOW, make_operator, make_package, make_subscriber
from sonjog.core.models import AuditEvent
from sonjog.flows.payments import payment_receive
from sonjog.network.models import OnlineSample, OutboxAttempt, OutboxCommand
from sonjog.network.services import router_create

pytestmark = pytest.mark.django_db


def days_ago(days):
    return FROZEN_NOW - dt.timedelta(days=days)


def finished_job(age_days, status="succeeded"):
    """A background job taken through Procrastinate's own status transitions, then aged."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, status, args) "
            "VALUES ('automation', 'test.job', 'todo', '{}') RETURNING id"
        )
        job_id = cursor.fetchone()[0]
        if status != "todo":
            cursor.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", [job_id])
            cursor.execute("UPDATE procrastinate_jobs SET status = %s WHERE id = %s", [status, job_id])
        cursor.execute("UPDATE procrastinate_events SET at = %s WHERE job_id = %s", [days_ago(age_days), job_id])
    return job_id


def remaining_jobs(ids):
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM procrastinate_jobs WHERE id = ANY(%s) ORDER BY id", [ids])
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def logs(frozen_clock, settings):
    settings.SONJOG_RETENTION_BATCH_SIZE = 2  # several batches per table
    operator = make_operator(vat_rate=Decimal("0"))
    subscriber = make_subscriber(operator, make_package(operator), activation_date=dt.date(2027, 3, 1))
    payment_receive(subscriber=subscriber, amount=Decimal("500.00"), method="cash")
    router = router_create(operator=operator, name="core", address="127.0.0.1", record_only=True)
    long_ago = days_ago(400)
    command = OutboxCommand.objects.create(
        subscriber=subscriber, router=router, requested_by="test", requested_at=long_ago, next_attempt_at=long_ago
    )
    for age in (400, 200, 181, 179, 1):
        OutboxAttempt.objects.create(
            command=command, started_at=days_ago(age), finished_at=days_ago(age), ok=True, desired="enabled"
        )
        OnlineSample.objects.create(router=router, online=5, sampled_at=days_ago(age - 90))
    for age in (365, 200, 181, 170):
        JobRun.objects.create(
            job_name="test.old",
            trigger="periodic",
            status="ok",
            started_at=days_ago(age),
            finished_at=days_ago(age),
        )
    JobRun.objects.create(job_name="test.stuck", trigger="periodic", status="running", started_at=days_ago(300))
    jobs = {
        "old_ok": finished_job(45),
        "old_failed": finished_job(31, "failed"),
        "old_cancelled": finished_job(60, "cancelled"),
        "recent_ok": finished_job(29),
        "old_waiting": finished_job(90, "todo"),
    }
    AuditEvent.objects.update(created_at=days_ago(1000))
    return jobs


def test_retention_deletes_only_rows_past_their_age(logs):
    money = [m.objects.count() for m in (LedgerEntry, Bill, Payment, Allocation, Statement, AuditEvent)]
    assert all(money)

    deleted = log_retention_purge()

    assert deleted == {"procrastinate_jobs": 3, "outbox_attempts": 3, "online_samples": 3, "job_runs": 3}
    assert sorted((FROZEN_NOW - a.finished_at).days for a in OutboxAttempt.objects.all()) == [1, 179]
    assert sorted((FROZEN_NOW - s.sampled_at).days for s in OnlineSample.objects.all()) == [-89, 89]
    assert sorted((FROZEN_NOW - r.started_at).days for r in JobRun.objects.filter(job_name="test.old")) == [170]
    assert JobRun.objects.filter(job_name="test.stuck").exists()  # a running row is never purged
    assert remaining_jobs(list(logs.values())) == sorted([logs["recent_ok"], logs["old_waiting"]])
    assert [m.objects.count() for m in (LedgerEntry, Bill, Payment, Allocation, Statement, AuditEvent)] == money

    assert log_retention_purge() == {"procrastinate_jobs": 0, "outbox_attempts": 0, "online_samples": 0, "job_runs": 0}


def test_runs_of_frequent_jobs_are_kept_for_their_shorter_time(logs):
    for age in (20, 10):
        JobRun.objects.create(
            job_name="network.drain_outbox",  # kept 14 days
            trigger="periodic",
            status="ok",
            started_at=days_ago(age),
            finished_at=days_ago(age),
        )
    assert log_retention_purge()["job_runs"] == 4
    assert [(FROZEN_NOW - r.started_at).days for r in JobRun.objects.filter(job_name="network.drain_outbox")] == [10]


def test_retention_ages_come_from_settings(logs, settings):
    settings.SONJOG_RETENTION_OUTBOX_ATTEMPTS_DAYS = 365
    settings.SONJOG_RETENTION_FINISHED_JOBS_DAYS = 50
    deleted = log_retention_purge()
    assert deleted["outbox_attempts"] == 1 and deleted["procrastinate_jobs"] == 1
