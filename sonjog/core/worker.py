"""`sonjog worker`: the Procrastinate worker under a supervisor that rides out database faults.

Procrastinate's worker stops itself when one of its side tasks fails (the LISTEN connection, the
heartbeat, the periodic deferrer), which is what a PostgreSQL restart or fail-over does to it. The
supervisor starts it again with a fresh connection pool, after 1 s, doubling up to 30 s while the
failures go on (back to 1 s once a worker has run for a minute), and logs one line per restart. It
ends only on SIGTERM or SIGINT: the first lets the running jobs finish (a graceful stop, bounded by
SONJOG_WORKER_SHUTDOWN_SECONDS for jobs that can be cancelled), a second ends the process at once.

Two more faults are handled here, for every task alike:

* a worker that died (kill -9, out of memory, a machine lost) leaves its jobs `doing`. Procrastinate
  keeps a heartbeat per worker; every worker sweeps for jobs whose worker has been silent for
  SONJOG_WORKER_STALLED_SECONDS and queues them again. Tasks are written to be run twice safely
  (outbox commands are claimed under a lock, run records and billing take locks, rows are unique).
* a job that fails because the database went away under it (OperationalError / InterfaceError) is
  retried with a growing wait instead of ending `failed` for an outage it had no part in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.db import connections
from procrastinate import App, PsycopgConnector, RetryDecision
from procrastinate import exceptions as procrastinate_exceptions
from procrastinate.contrib.django import settings as procrastinate_settings
from procrastinate.contrib.django.utils import connector_params
from procrastinate.jobs import Job, Status
from procrastinate.retry import BaseRetryStrategy
from procrastinate.worker import Worker

logger = logging.getLogger("sonjog.worker")

RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
# A worker that ran this long before failing was healthy: the next failure starts the backoff again.
HEALTHY_RUN_SECONDS = 60.0
# A job that lost its worker this many times (or failed with the database gone this often) stops
# being retried: something in it is what kills workers.
ATTEMPT_LIMIT = 10
WORKER_NAME = "worker"

DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    DjangoOperationalError,
    DjangoInterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def causes(error: BaseException) -> list[BaseException]:
    """The error and the chain that led to it. Chains can loop (an exception whose context is an
    exception caused by it), so each is taken once, and ten at most."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10 and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def lost_database(error: BaseException) -> bool:
    """Whether the error, or anything that caused it, is the database connection failing."""
    return any(isinstance(each, DATABASE_ERRORS) for each in causes(error))


def describe(error: BaseException) -> str:
    """One line for a log: the error and its causes, first lines only."""
    parts: list[str] = []
    for each in causes(error):
        lines = str(each).strip().splitlines()
        text = lines[0] if lines else type(each).__name__
        if text not in parts:
            parts.append(text)
    return ": ".join(parts)[:300]


class OutageRetry(BaseRetryStrategy):
    """The task's own retry rule first; failing that, a job whose database went away is retried
    after 2, 4, 8 ... seconds (at most a minute), up to ATTEMPT_LIMIT attempts."""

    def __init__(self, inner: BaseRetryStrategy | None) -> None:
        self.inner = inner

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if self.inner is not None:
            retry = self.inner.get_retry_exception(exception=exception, job=job)
            if retry is not None:
                return retry.retry_decision
        if lost_database(exception) and job.attempts < ATTEMPT_LIMIT:
            return RetryDecision(retry_in={"seconds": min(2 ** (job.attempts + 1), 60)})
        return None


def retry_after_outages(app: App) -> None:
    for task in app.tasks.values():
        if not isinstance(task.retry_strategy, OutageRetry):
            task.retry_strategy = OutageRetry(task.retry_strategy)


async def retry_stalled_jobs(app: App, *, silent_seconds: float) -> list[int]:
    """Queue again every job left `doing` by a worker silent for `silent_seconds` (or already pruned);
    returns the ids queued. A job whose queueing lock is taken meanwhile (a periodic job's next run
    is already waiting) is marked failed instead: the waiting copy does the same work."""
    queued: list[int] = []
    manager = app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=silent_seconds):
        assert job.id is not None
        try:
            if job.attempts >= ATTEMPT_LIMIT:
                await manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
                logger.warning("job %s lost its worker %d times; marked failed", job.call_string, job.attempts)
                continue
            await manager.retry_job(job)
        except procrastinate_exceptions.UniqueViolation:
            with contextlib.suppress(procrastinate_exceptions.ConnectorException):
                await manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
            logger.warning("job %s lost its worker; an identical job is already queued", job.call_string)
            continue
        except procrastinate_exceptions.ConnectorException:
            continue  # another worker's sweep took it first: it is no longer `doing`
        queued.append(job.id)
        logger.warning("job %s lost its worker (silent %g s); queued again", job.call_string, silent_seconds)
        with contextlib.suppress(procrastinate_exceptions.ConnectorException):
            # A retried job is not an insert, so no trigger tells the workers; say it the way the
            # insert trigger does, so one picks it up now instead of at its next poll.
            await manager.connector.execute_query_async(
                query=_NOTIFY_JOB_QUEUED, queue_channel=f"procrastinate_queue_v1#{job.queue}", job_id=job.id
            )
    return queued


_NOTIFY_JOB_QUEUED = """
WITH message AS (SELECT json_build_object('type', 'job_inserted', 'job_id', %(job_id)s::bigint)::text AS payload)
SELECT pg_notify(%(queue_channel)s, payload), pg_notify('procrastinate_any_queue_v1', payload) FROM message
"""


@dataclass(frozen=True)
class WorkerOptions:
    queues: list[str] | None
    concurrency: int
    heartbeat_seconds: float
    stalled_seconds: float
    shutdown_seconds: float

    @classmethod
    def from_settings(cls, *, queues: list[str] | None, concurrency: int) -> WorkerOptions:
        return cls(
            queues=queues,
            concurrency=concurrency,
            heartbeat_seconds=float(settings.SONJOG_WORKER_HEARTBEAT_SECONDS),
            stalled_seconds=float(settings.SONJOG_WORKER_STALLED_SECONDS),
            shutdown_seconds=float(settings.SONJOG_WORKER_SHUTDOWN_SECONDS),
        )


SIDE_TASKS = ("update_heartbeats", "deferrer", "poll_jobs_to_abort", "listener")


class _SideTaskFailure(logging.Filter):
    """Procrastinate logs a failed side task with a traceback, stops the worker and logs it again
    while cancelling the other side tasks; the supervisor says it once, in its restart line, so the
    reason is kept and those records dropped."""

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__()
        self.supervisor = supervisor

    def filter(self, record: logging.LogRecord) -> bool:
        action = getattr(record, "action", None)
        if action == "side_task_failed":
            task_name = getattr(record, "task_name", "a side task")
        elif action in {f"{name}_error" for name in SIDE_TASKS}:
            task_name = str(action).removesuffix("_error")
        else:
            return True
        if self.supervisor.failure is None:
            error = record.exc_info[1] if record.exc_info else None
            detail = describe(error) if error is not None else str(getattr(record, "exception", ""))
            self.supervisor.failure = f"{task_name} failed: {detail}"
        return False


class Supervisor:
    def __init__(self, app: App, options: WorkerOptions) -> None:
        self.app = app
        self.options = options
        self.restarts = 0
        self.failure: str | None = None
        self._stopping = asyncio.Event()
        self._signals = 0
        self._worker: Worker | None = None
        self._attempt: asyncio.Task[str] | None = None

    def request_stop(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning(
                "%s again: stopping now; the jobs still running are left to the stalled-job sweep", _name(signum)
            )
            os._exit(1)
        logger.info("%s: finishing the running jobs, then stopping", _name(signum))
        self._stopping.set()
        if self._worker is not None:
            self._worker.stop()
        elif self._attempt is not None:
            self._attempt.cancel()  # still connecting: nothing runs yet, nothing to wait for

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop, signum)
        failure_filter = _SideTaskFailure(self)
        loggers = [logging.getLogger(f"procrastinate.worker.{WORKER_NAME}"), logging.getLogger("procrastinate.utils")]
        for each in loggers:
            each.addFilter(failure_filter)
        # The pool warns on every reconnection attempt while the database is away; the restart line
        # already says so.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        try:
            await self._supervise()
        finally:
            for each in loggers:
                each.removeFilter(failure_filter)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _supervise(self) -> None:
        delay = RESTART_FIRST_DELAY
        while not self._stopping.is_set():
            started = time.monotonic()
            self._attempt = asyncio.create_task(self._run_once(), name="worker attempt")
            try:
                reason = await self._attempt
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    break
                raise
            finally:
                self._attempt = None
            if self._stopping.is_set():
                break
            if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                delay = RESTART_FIRST_DELAY
            self.restarts += 1
            logger.warning("worker stopped (%s); restart %d in %g s", reason, self.restarts, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, RESTART_MAX_DELAY)

    def _connector(self) -> PsycopgConnector:
        # A new pool for every start: a pool that failed to open stays closed for good.
        params: dict[str, Any] = {**connector_params(procrastinate_settings.settings.DATABASE_ALIAS)}
        params.setdefault("connect_timeout", 10)
        params.setdefault("application_name", "sonjog worker")
        return PsycopgConnector(kwargs=params, min_size=1, max_size=self.options.concurrency + 4, timeout=15)

    async def _run_once(self) -> str:
        """Run one Procrastinate worker until it stops; returns why it stopped."""
        self.failure = None
        # The periodic deferrer defers through Django's connection on asgiref's shared thread, which
        # nothing else closes: after a database restart it would stay broken and fail every start.
        await sync_to_async(connections.close_all)()
        connector = self._connector()
        # A separate app over the pool for fetching and finishing jobs; the tasks keep deferring
        # through Django's connection, in the transaction of the change that needs them.
        worker_app = self.app.with_connector(connector)
        try:
            await connector.open_async()
            if self._stopping.is_set():
                return "stopped"
            worker = Worker(
                app=worker_app,
                queues=self.options.queues,
                name=WORKER_NAME,
                concurrency=self.options.concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=self.options.heartbeat_seconds,
                stalled_worker_timeout=self.options.stalled_seconds,
                shutdown_graceful_timeout=self.options.shutdown_seconds,
            )
            self._worker = worker
            sweep_stop = asyncio.Event()
            sweeper = asyncio.create_task(self._sweep(worker_app, sweep_stop), name="stalled jobs sweep")
            try:
                await worker.run()
            finally:
                self._worker = None
                # A cancellation can be lost inside the pool's waits (asyncio.wait_for before 3.12),
                # so the sweep also watches an event, and is waited for a bounded time only.
                sweep_stop.set()
                sweeper.cancel()
                await asyncio.wait({sweeper}, timeout=5)
        except Exception as error:
            return self.failure or describe(error)
        finally:
            with contextlib.suppress(Exception):
                await connector.close_async()
        return self.failure or "it stopped by itself"

    async def _sweep(self, app: App, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await retry_stalled_jobs(app, silent_seconds=self.options.stalled_seconds)
            except Exception as error:  # the worker's own side tasks notice a lost database
                logger.debug("stalled-job sweep failed: %s", describe(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.options.heartbeat_seconds)


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def run_worker(*, queues: list[str] | None, concurrency: int) -> None:
    """Run the supervised worker in this process until SIGTERM or SIGINT."""
    from procrastinate.contrib.django import app

    app.perform_import_paths()
    retry_after_outages(app)
    supervisor = Supervisor(app, WorkerOptions.from_settings(queues=queues, concurrency=concurrency))
    asyncio.run(supervisor.run())
