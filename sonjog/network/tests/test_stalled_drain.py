"""A worker that dies mid-drain: its router commands and its jobs are picked up again within a
minute, and every command lands on the router exactly once.

Real `sonjog worker` processes against the RouterOS emulator; the first is killed with SIGKILL while
it is applying commands, a second one takes over. The in-process tests below pin the mechanism: a
command's runner holds a session advisory lock, so a command whose session is gone is taken over at
once and one whose runner is alive is left alone; a router that answers again has its waiting
commands retried at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from sonjog.conftest import make_subscriber, process_env
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.network.models import OutboxAttempt, OutboxCommand, OutboxStatus
from sonjog.network.reconcile import network_reconcile
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import _claim, outbox_drain, router_connection_test
from sonjog.network.tests.conftest import Isp

SONJOG = [sys.executable, "-m", "sonjog.cli"]


def wait_for(predicate: Callable[[], bool], what: str, seconds: float) -> float:
    """Poll until `predicate` holds; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def scalar(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
    return row[0] if row else None


@pytest.fixture
def jobs_of_this_test() -> Iterator[None]:
    """Procrastinate's tables are not flushed between transactional tests: remove the jobs, the
    periodic ticks and the worker rows this test (and the workers it started) left behind."""
    first_job = scalar("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")
    first_worker = scalar("SELECT coalesce(max(id), 0) FROM procrastinate_workers")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_periodic_defers WHERE job_id > %s", [first_job])
        cursor.execute("DELETE FROM procrastinate_jobs WHERE id > %s", [first_job])
        cursor.execute("DELETE FROM procrastinate_workers WHERE id > %s", [first_worker])


def secret_adds(emulator: RouterOSEmulator, name: str) -> int:
    return sum(1 for path, attrs in emulator.command_log if path == "/ppp/secret/add" and attrs.get("name") == name)


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*SONJOG, "worker", "--queues=network", "--concurrency=2"], env=process_env(), stdout=out, stderr=out
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.mark.real_clock
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_drain_is_taken_over_and_every_command_lands_once(emulator, tmp_path, jobs_of_this_test):
    isp = Isp(emulator)
    emulator.refuse_connections(True)  # the router is down while the subscribers sign up
    subscribers = [make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone) for _ in range(10)]
    commands = OutboxCommand.objects.filter(subscriber__in=subscribers)
    first_commands = set(commands.values_list("pk", flat=True))
    assert len(first_commands) == len(subscribers)
    first_worker_id = scalar("SELECT coalesce(max(id), 0) FROM procrastinate_workers")
    log = tmp_path / "workers.log"
    first = start_worker(log)
    second = None
    try:
        # Each command's own job fails against the refusing router and is put off for two minutes.
        wait_for(lambda: commands.filter(attempts=1, status=OutboxStatus.PENDING).count() == 10, "first attempts", 40)
        assert commands.filter(next_attempt_at__gt=timezone.now()).count() == 10

        # The router comes back, slowly (each reply takes 0.1 s): a connection test sees it answer and
        # wakes the drain in the same transaction; the worker starts on the commands within seconds.
        emulator.set_reply_delay(0.1)
        emulator.refuse_connections(False)
        tested_at = time.monotonic()
        assert router_connection_test(router=isp.router).ok
        assert commands.filter(next_attempt_at__gt=timezone.now()).count() == 0
        wait_for(lambda: commands.filter(status=OutboxStatus.DONE).exists(), "the drain to start", 15)
        first_done_after = time.monotonic() - tested_at

        wait_for(lambda: commands.filter(status=OutboxStatus.DONE).count() >= 3, "three commands done", 30)
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM procrastinate_workers WHERE id > %s", [first_worker_id])
            dead_worker_ids = [row[0] for row in cursor.fetchall()]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        left_running = commands.filter(status=OutboxStatus.RUNNING).count()
        assert commands.filter(status=OutboxStatus.DONE).count() < 10  # killed mid-drain

        second = start_worker(log)

        def recovered() -> bool:
            stuck = scalar(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
                " AND (worker_id IS NULL OR worker_id = ANY(%s))",
                [dead_worker_ids],
            )
            return stuck == 0 and not commands.exclude(status=OutboxStatus.DONE).exists()

        wait_for(recovered, "the second worker to finish the dead worker's work", 60)
        recovery_seconds = time.monotonic() - killed_at
        assert stop(second) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    print(
        f"\nfirst command done {first_done_after:.1f} s after the router answered a test; worker killed with "
        f"{left_running} command(s) running; all done and no job stuck 'doing' {recovery_seconds:.1f} s after the kill"
    )
    assert first_done_after < 10
    assert recovery_seconds < 60
    for subscriber in subscribers:
        name = subscriber.pppoe_username
        assert secret_adds(emulator, name) == 1, name  # applied exactly once
        secret = emulator.secret(name)
        assert secret is not None and secret.get("disabled") != "true"
    assert sorted(row["name"] for row in emulator.secrets()) == sorted(s.pppoe_username for s in subscribers)
    for command in commands:
        ok = OutboxAttempt.objects.filter(command=command, ok=True).count()
        failed = OutboxAttempt.objects.filter(command=command, ok=False).count()
        if command.pk in first_commands:  # the refused first attempt, then one that landed
            assert (ok, failed) == (1, 1), command
        else:  # a repair the reconciler queued meanwhile: it found the secret in place
            assert (ok, failed) == (1, 0), command
    assert set(Subscriber.objects.filter(pk__in=[s.pk for s in subscribers]).values_list("sync_state", flat=True)) == {
        "in_sync"
    }
    assert scalar("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == 0
    assert "Traceback" not in log.read_text()


# -- the mechanism, in this process -----------------------------------------------------------------


def claim_in_another_session(command_id: int, *, hold: threading.Event | None = None) -> threading.Thread:
    """Claim the command on a connection of its own, then end that session (a worker dying), or keep
    it until `hold` is set (a worker still busy)."""
    claimed = threading.Event()
    backend: list[int] = []

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend.append(cursor.fetchone()[0])
            assert _claim(command_id)
            claimed.set()
            if hold is not None:
                hold.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert claimed.wait(timeout=10)
    thread.backend_pid = backend[0]  # type: ignore[attr-defined]
    return thread


def session_gone(thread: threading.Thread, timeout: float = 10.0) -> None:
    """Wait until the claiming session has ended on the server. The client's close returns before the
    server's backend has exited and dropped its locks, so "the worker died" means the backend is gone."""
    thread.join(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [thread.backend_pid])  # type: ignore[attr-defined]
            if cursor.fetchone() is None:
                return
        time.sleep(0.02)
    raise AssertionError(f"backend {thread.backend_pid} still there after {timeout} s")  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_a_command_whose_session_died_is_taken_over_by_the_next_drain(emulator, jobs_of_this_test):
    isp = Isp(emulator)
    subscriber = make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone)
    command = OutboxCommand.objects.get(subscriber=subscriber)
    session_gone(claim_in_another_session(command.pk))
    command.refresh_from_db()
    assert command.status == OutboxStatus.RUNNING  # what it says: nobody has looked yet
    assert outbox_drain() == {"done": 1}  # at once, not after ten minutes
    assert command.attempt_log.filter(ok=True).count() == 1
    assert emulator.secret(subscriber.pppoe_username) is not None
    assert outbox_drain() == {}


@pytest.mark.django_db(transaction=True)
def test_a_command_still_running_elsewhere_is_left_alone(emulator, jobs_of_this_test):
    isp = Isp(emulator)
    subscriber = make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone)
    command = OutboxCommand.objects.get(subscriber=subscriber)
    busy = threading.Event()
    runner = claim_in_another_session(command.pk, hold=busy)
    try:
        assert outbox_drain() == {}
        command.refresh_from_db()
        assert command.status == OutboxStatus.RUNNING and command.attempt_log.count() == 0
        assert emulator.command_log == []
    finally:
        busy.set()
        runner.join(timeout=10)
    assert outbox_drain() == {"done": 1}


def drain_jobs_queued() -> int:
    return int(
        scalar("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'network.drain_outbox' AND status = 'todo'")
    )


@pytest.mark.parametrize("answer", ["connection test", "reconcile"])
@pytest.mark.django_db(transaction=True)
def test_a_router_that_answers_again_has_its_waiting_commands_retried_at_once(emulator, answer, jobs_of_this_test):
    isp = Isp(emulator)
    emulator.refuse_connections(True)
    subscribers = [make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone) for _ in range(3)]
    run_worker_cycle()
    # What the commands ask is already on the router (set by hand meanwhile): the reconciler finds no
    # drift to repair, so only the router answering makes the waiting commands due.
    for subscriber in subscribers:
        emulator.add_secret(subscriber.pppoe_username, password="x", profile="10m")
    waiting = OutboxCommand.objects.filter(subscriber__in=subscribers, status=OutboxStatus.PENDING, attempts=1)
    assert waiting.filter(next_attempt_at__gt=timezone.now()).count() == 3
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name = 'network.drain_outbox' AND status = 'todo'")

    emulator.refuse_connections(False)
    if answer == "connection test":
        assert router_connection_test(router=isp.router).ok
    else:
        report = network_reconcile(isp.router)[isp.router.name]
        assert report.reachable and report.repairs_queued == 0
    assert waiting.filter(next_attempt_at__gt=timezone.now()).count() == 0
    assert drain_jobs_queued() == 1
    run_worker_cycle()
    assert OutboxCommand.objects.filter(subscriber__in=subscribers, status=OutboxStatus.DONE).count() == 3
    names = [row["name"] for row in emulator.secrets()]
    assert sorted(names) == sorted(s.pppoe_username for s in subscribers)


@pytest.mark.django_db(transaction=True)
def test_a_router_still_down_wakes_nothing(emulator, jobs_of_this_test):
    isp = Isp(emulator)
    emulator.refuse_connections(True)
    make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone)
    run_worker_cycle()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name = 'network.drain_outbox' AND status = 'todo'")
    assert not router_connection_test(router=isp.router).ok
    assert OutboxCommand.objects.filter(router=isp.router, next_attempt_at__gt=timezone.now()).count() == 1
    assert drain_jobs_queued() == 0
