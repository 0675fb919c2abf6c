"""A generation run killed mid-way (SIGKILL) leaves an "interrupted" record, the next run says it
resumed it, and every period is still billed exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from sonjog.billing.models import Bill, BillingRun
from sonjog.billing.services import bill_generate_period
from sonjog.billing.services.generation import RUN_LOCK_NAMESPACE
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber, process_env
from sonjog.core.periods import add_months, month_start

SONJOG = [sys.executable, "-m", "sonjog.cli"]


def _wait_for(predicate, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
        return row is not None and row[0] == "Lock"


# The run happens in a real `sonjog` process on the real clock; its period is given explicitly.
@pytest.mark.real_clock
@pytest.mark.django_db(transaction=True)
def test_a_killed_run_is_recorded_as_interrupted_and_the_next_one_resumes_it():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "800.00", vat=False)
    # Subscribers who start three months ahead: nothing is billed for them until this run.
    period = add_months(month_start(operator_today(operator)), 3)
    subscribers = [make_subscriber(operator, package, period) for _ in range(5)]
    key = operator.pk * 10000 + period.year * 12 + period.month
    process = None
    try:
        with transaction.atomic():
            # Hold the period's run lock, so the real run stops right after recording itself.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RUN_LOCK_NAMESPACE, key])
            process = subprocess.Popen(
                [*SONJOG, "generate_bills", "--period", f"{period:%Y-%m}", "--operator", operator.code],
                env=process_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            running = BillingRun.objects.filter(operator=operator, status=BillingRun.Status.RUNNING)
            _wait_for(lambda: running.exists() or process.poll() is not None, "the run's record")
            assert process.poll() is None, process.communicate()
            killed = running.get()
            assert killed.backend_pid is not None
            _wait_for(lambda: _waiting_on_a_lock(killed.backend_pid), "the run to wait for the lock")
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        _wait_for(lambda: not _backend_alive(killed.backend_pid), "the killed run's session to end")
    finally:
        if process is not None and process.poll() is None:
            process.kill()

    killed.refresh_from_db()
    assert killed.status == BillingRun.Status.RUNNING  # what it says until a run looks at it
    assert not Bill.objects.filter(subscriber__operator=operator, period_month=period).exists()

    result = bill_generate_period(operator=operator, period_month=period, trigger="cli")
    killed.refresh_from_db()
    assert killed.status == BillingRun.Status.INTERRUPTED
    assert result.resumed_run_id == killed.pk and result.as_dict()["resumed_interrupted_run"] == killed.pk
    assert result.created == len(subscribers)
    again = bill_generate_period(operator=operator, period_month=period, trigger="cli")
    assert again.created == 0 and again.skipped_existing == len(subscribers) and again.resumed_run_id is None
    for subscriber in subscribers:
        assert Bill.objects.filter(subscriber=subscriber, period_month=period, reversed_at=None).count() == 1
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_says_so_at_once(monkeypatch):
    operator = make_operator(vat_rate=Decimal("0"))
    period = add_months(month_start(operator_today(operator)), 3)
    make_subscriber(operator, make_package(operator, "800.00", vat=False), period)
    from sonjog.billing.services import generation

    def disk_full(*args, **kwargs):
        raise RuntimeError("could not extend file: No space left on device")

    monkeypatch.setattr(generation, "_insert", disk_full)
    with pytest.raises(RuntimeError):
        bill_generate_period(operator=operator, period_month=period, trigger="cli")
    run = BillingRun.objects.get(operator=operator, period_month=period)
    assert run.status == BillingRun.Status.INTERRUPTED
    assert not Bill.objects.filter(subscriber__operator=operator, period_month=period).exists()
