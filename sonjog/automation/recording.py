"""Run records: every execution of a registered job leaves one JobRun row, including failed ones.

`recorded(name)` wraps a periodic task body; `record_run` is the same thing for callers that run a
body themselves (`job_run_now`). One run of a job at a time: a PostgreSQL session advisory lock on
the job name. A second run that finds the lock held records itself as skipped and does nothing,
which is what a periodic job wants when the previous run is still busy (Procrastinate's queueing
lock only stops a second copy from being queued, not two copies from running). The lock dies with
the connection, so a crashed worker never leaves a job locked. (Session locks need a session: behind
pgbouncer, point the workers at PostgreSQL directly or use session pooling.)
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import traceback
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from sonjog.automation.models import JobRun
from sonjog.core.cli import to_json

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from sonjog.operators.models import Operator

F = TypeVar("F", bound=Callable[..., Any])

# A signed 32-bit namespace for pg_try_advisory_lock(int, int), apart from billing's run locks.
JOB_LOCK_NAMESPACE = zlib.crc32(b"sonjog.automation.job") - 2**31

_ERROR_TEXT_LIMIT = 4000


class _CurrentRun:
    def __init__(self, run: JobRun) -> None:
        self.run = run
        self.finished_early = False


_current_run: contextvars.ContextVar[_CurrentRun | None] = contextvars.ContextVar("sonjog_current_run", default=None)


def run_finish_now(outcome: dict[str, Any]) -> None:
    """Record the run in progress as finished (ok, with `outcome`) now, before its body returns. For
    a body whose product must hold its own finished record: the backup, whose run row is inside the
    dump it is about to take. The row is not written again when the body returns (the caller still
    gets the body's full result in `JobRun.outcome`); a failure after this still marks the run as an
    error. Outside a recorded run this does nothing."""
    current = _current_run.get()
    if current is None:
        return
    run = current.run
    run.status = JobRun.Status.OK
    run.outcome = _json_outcome(outcome)
    run.finished_at = max(timezone.now(), run.started_at)
    run.save(update_fields=["status", "outcome", "finished_at"])
    current.finished_early = True


def _job_key(job_name: str) -> int:
    return zlib.crc32(job_name.encode()) - 2**31


@contextlib.contextmanager
def _job_lock(job_name: str) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [JOB_LOCK_NAMESPACE, _job_key(job_name)])
        row = cursor.fetchone()
    acquired = bool(row and row[0])
    try:
        yield acquired
    finally:
        if acquired and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [JOB_LOCK_NAMESPACE, _job_key(job_name)])


def _json_outcome(result: Any) -> dict[str, Any]:
    """Whatever the body returned, as a JSON object (Decimals and dates as strings)."""
    if result is None:
        return {}
    outcome = json.loads(to_json(result))
    return outcome if isinstance(outcome, dict) else {"result": outcome}


def error_summary(error: BaseException) -> str:
    """The exception line first (what the jobs list shows), then the innermost frames."""
    frames = traceback.format_tb(error.__traceback__)[-4:]
    text = f"{type(error).__name__}: {error}\n" + "".join(frames)
    return text[:_ERROR_TEXT_LIMIT]


def record_run(
    job_name: str,
    body: Callable[[], Any],
    *,
    trigger: str,
    actor: User | None = None,
    operator: Operator | None = None,
    reraise: bool = True,
) -> JobRun:
    """Run `body` once under the job lock and record it. With `reraise`, a failure is recorded and then
    raised again (so Procrastinate marks the job failed); without it, the failed run is returned."""
    actor = actor if actor is not None and actor.pk else None
    with _job_lock(job_name) as acquired:
        now = timezone.now()
        if not acquired:
            return JobRun.objects.create(
                job_name=job_name,
                operator=operator,
                trigger=trigger,
                actor=actor,
                status=JobRun.Status.SKIPPED,
                started_at=now,
                finished_at=now,
                outcome={"skipped": "another run of this job was in progress"},
            )
        # Holding the lock, no other run of this job is alive: a row still marked running belongs to
        # a worker that died mid-run.
        JobRun.objects.filter(job_name=job_name, status=JobRun.Status.RUNNING).update(
            status=JobRun.Status.ERROR, finished_at=now, error="the worker stopped before the run finished"
        )
        run = JobRun.objects.create(job_name=job_name, operator=operator, trigger=trigger, actor=actor, started_at=now)
        # Inside a caller's transaction (a test, a view), a database error in the body would poison
        # it and the failure could not be recorded: give the body a savepoint there. Outside one the
        # body keeps its own transactions, one per unit of work.
        guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
        current = _CurrentRun(run)
        token = _current_run.set(current)
        try:
            with guard:
                outcome = _json_outcome(body())
        except Exception as error:
            run.status = JobRun.Status.ERROR
            run.error = error_summary(error)
            run.outcome = {}
            run.finished_at = max(timezone.now(), run.started_at)
            run.save(update_fields=["status", "error", "outcome", "finished_at"])
            if reraise:
                raise
            return run
        finally:
            _current_run.reset(token)
        if current.finished_early:
            run.outcome = outcome  # for the caller; the row keeps what run_finish_now wrote
            return run
        run.status = JobRun.Status.OK
        run.outcome = outcome
        run.finished_at = max(timezone.now(), run.started_at)
        run.save(update_fields=["status", "outcome", "finished_at"])
        return run


def recorded(job_name: str) -> Callable[[F], F]:
    """Decorate a periodic task body so each run is recorded as a JobRun of `job_name`.

    Put it closest to the function, under `releases_connection`, so the record is written on the
    worker thread's connection before that connection is closed. The wrapper carries the job name
    as `recorded_job_name` (functools.wraps passes it up through outer wrappers), so a test can check
    every recorded task against the JOBS registry."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = record_run(job_name, lambda: function(*args, **kwargs), trigger=JobRun.Trigger.PERIODIC, reraise=True)
            return run.outcome

        wrapper.recorded_job_name = job_name  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
