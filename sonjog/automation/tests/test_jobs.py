"""Run records, the JOBS registry, the jobs overview, `sonjog jobs` and `job_run_now`."""

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from procrastinate.contrib.django import app

from sonjog.automation.backup import connect
from sonjog.automation.exceptions import UnknownJob
from sonjog.automation.models import JobRun
from sonjog.automation.recording import JOB_LOCK_NAMESPACE, _job_key, record_run, recorded
from sonjog.automation.registry import JOBS
from sonjog.automation.selectors import jobs_overview
from sonjog.automation.services import job_run_now
from sonjog.conftest import FROZEN_NOW

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# recorded / record_run
# --------------------------------------------------------------------------------------------------


def test_recorded_writes_one_row_for_a_successful_run(frozen_clock):
    @recorded("test.counts")
    def body(timestamp=None):
        frozen_clock.advance(seconds=3)
        return {"created": 2, "amount": __import__("decimal").Decimal("10.50"), "day": dt.date(2027, 6, 1)}

    assert body(timestamp=1) == {"created": 2, "amount": "10.50", "day": "2027-06-01"}
    (row,) = JobRun.objects.filter(job_name="test.counts")
    assert row.status == JobRun.Status.OK and row.trigger == JobRun.Trigger.PERIODIC
    assert row.outcome == {"created": 2, "amount": "10.50", "day": "2027-06-01"}
    assert row.started_at == FROZEN_NOW and row.seconds == 3.0 and row.error == ""


def test_recorded_writes_the_failure_with_its_traceback_and_reraises(frozen_clock):
    @recorded("test.fails")
    def body(timestamp=None):
        raise ValueError("router 7 refused the login")

    with pytest.raises(ValueError, match="refused"):
        body()
    (row,) = JobRun.objects.filter(job_name="test.fails")
    assert row.status == JobRun.Status.ERROR and row.finished_at is not None
    assert row.error.splitlines()[0] == "ValueError: router 7 refused the login"
    assert "in body" in row.error  # the frame it failed in
    assert row.outcome == {}


def test_a_database_error_inside_the_body_is_still_recorded():
    from django.db import connection

    def body():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    run_row = record_run("test.sql", body, trigger=JobRun.Trigger.MANUAL, reraise=False)
    assert run_row.status == JobRun.Status.ERROR and "no_such_table" in run_row.error
    assert JobRun.objects.get(pk=run_row.pk).status == JobRun.Status.ERROR


def test_a_run_while_another_holds_the_job_lock_is_recorded_as_skipped():
    calls = []
    # A second, real connection holds the job's lock, as a worker busy with the job would.
    with connect() as other:
        key = [JOB_LOCK_NAMESPACE, _job_key("test.locked")]
        other.execute("SELECT pg_advisory_lock(%s, %s)", key)
        skipped = record_run("test.locked", lambda: calls.append(1), trigger=JobRun.Trigger.PERIODIC)
        other.execute("SELECT pg_advisory_unlock(%s, %s)", key)
    assert calls == [] and skipped.status == JobRun.Status.SKIPPED

    def body():
        calls.append(1)
        return {"n": 1}

    ran = record_run("test.locked", body, trigger=JobRun.Trigger.PERIODIC)
    assert calls == [1] and ran.status == JobRun.Status.OK and ran.outcome == {"n": 1}


def test_a_run_left_running_by_a_dead_worker_is_closed_as_an_error_by_the_next_run(frozen_clock):
    dead = JobRun.objects.create(job_name="test.crash", trigger=JobRun.Trigger.PERIODIC, started_at=FROZEN_NOW)
    frozen_clock.advance(minutes=5)
    record_run("test.crash", lambda: None, trigger=JobRun.Trigger.PERIODIC)
    dead.refresh_from_db()
    assert dead.status == JobRun.Status.ERROR and "stopped" in dead.error
    assert JobRun.objects.filter(job_name="test.crash", status=JobRun.Status.OK).count() == 1


def test_the_database_refuses_an_error_row_without_text_and_a_finished_running_row():
    from django.db import IntegrityError, transaction

    for fields in (
        {"status": JobRun.Status.ERROR, "finished_at": FROZEN_NOW},
        {"status": JobRun.Status.RUNNING, "finished_at": FROZEN_NOW},
        {"status": JobRun.Status.OK, "finished_at": FROZEN_NOW - dt.timedelta(seconds=1)},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            JobRun.objects.create(job_name="x", trigger="periodic", started_at=FROZEN_NOW, **fields)


# --------------------------------------------------------------------------------------------------
# The registry agrees with what Procrastinate schedules
# --------------------------------------------------------------------------------------------------


def test_every_periodic_task_is_registered_with_the_same_cron():
    scheduled = {
        task_name: periodic.cron for (task_name, _periodic_id), periodic in app.periodic_registry.periodic_tasks.items()
    }
    assert set(scheduled) == set(JOBS), "JOBS and the periodic tasks differ"
    for name, cron in scheduled.items():
        assert JOBS[name].cron == cron, name


def test_every_automation_task_records_itself_under_its_own_name():
    for name in JOBS:
        task = app.tasks[name]
        recorded_as = getattr(task.func, "recorded_job_name", None)
        if name.startswith("automation."):
            assert recorded_as == name
            assert task.queueing_lock == name
        assert recorded_as in (None, name)


# --------------------------------------------------------------------------------------------------
# Overview and `sonjog jobs`
# --------------------------------------------------------------------------------------------------


def test_jobs_overview_shows_schedule_last_run_and_next_run(frozen_clock):
    record_run("automation.online_payment_recheck", lambda: {"checked": 0}, trigger=JobRun.Trigger.PERIODIC)
    frozen_clock.advance(minutes=1)
    record_run("automation.online_payment_recheck", lambda: 1 / 0, trigger=JobRun.Trigger.MANUAL, reraise=False)
    rows = {row.name: row for row in jobs_overview()}
    assert set(rows) == set(JOBS)
    recheck = rows["automation.online_payment_recheck"]
    assert recheck.last_status == "error" and recheck.last_trigger == "manual"
    assert recheck.last_error == "ZeroDivisionError: division by zero"
    assert recheck.last_run_at == FROZEN_NOW + dt.timedelta(minutes=1)
    # 06:01 UTC: every minute fires next at 06:02; the hourly generation at 06:17.
    assert recheck.next_run_at == dt.datetime(2027, 6, 15, 6, 2, tzinfo=dt.UTC)
    assert rows["billing.generate_nightly"].next_run_at == dt.datetime(2027, 6, 15, 6, 17, tzinfo=dt.UTC)
    assert rows["automation.settle_credit"].next_run_at == dt.datetime(2027, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert rows["billing.generate_nightly"].last_run_at is None
    assert rows["billing.generate_nightly"].operator_schedule is True


def test_sonjog_jobs_json_lists_every_job(frozen_clock):
    data = json.loads(run("jobs", "--json"))
    assert [row["name"] for row in data] == list(JOBS)
    backup = next(row for row in data if row["name"] == "automation.database_backup")
    assert backup["cron"] == "0 21 * * *" and backup["next_run_at"] == "2027-06-15T21:00:00+00:00"
    assert backup["last_status"] is None and backup["title"] == "Database backup"
    text = run("jobs")
    # The table shows local times (Asia/Dhaka): 21:00 UTC is 03:00 the next morning.
    assert "automation.database_backup" in text and "2027-06-16 03:00" in text and "Asia/Dhaka" in text


def test_sonjog_jobs_run_runs_log_retention_now_and_records_it_as_manual(frozen_clock):
    data = json.loads(run("jobs", "--run", "automation.log_retention", "--json"))
    assert data["status"] == "ok"
    assert set(data["outcome"]) == {"procrastinate_jobs", "outbox_attempts", "online_samples", "job_runs"}
    (row,) = JobRun.objects.filter(job_name="automation.log_retention")
    assert row.trigger == JobRun.Trigger.MANUAL and row.status == JobRun.Status.OK
    assert "automation.log_retention: ok" in run("jobs", "--run", "automation.log_retention")
    assert JobRun.objects.filter(job_name="automation.log_retention").count() == 2


def test_sonjog_jobs_run_with_an_unknown_name_exits_2_with_one_line():
    before = JobRun.objects.count()
    with pytest.raises(CommandError) as caught:
        run("jobs", "--run", "automation.no_such_job")
    assert caught.value.returncode == 2
    assert str(caught.value) == "no job named 'automation.no_such_job'; `sonjog jobs` lists them"
    assert JobRun.objects.count() == before


def test_job_run_now_records_the_actor_and_does_not_raise_on_failure(owner):
    run_row = job_run_now("automation.online_payment_recheck", actor=owner)
    assert run_row.actor == owner and run_row.outcome["checked"] == 0
    with pytest.raises(UnknownJob):
        job_run_now("nope", actor=owner)


def test_job_run_now_runs_an_existing_billing_job_without_double_recording():
    run_row = job_run_now("network.drain_outbox")
    assert run_row.status == JobRun.Status.OK
    assert JobRun.objects.filter(job_name="network.drain_outbox").count() == 1
