"""Running queued Procrastinate jobs in-process: one worker cycle, then return."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connection
from procrastinate.contrib.django import app
from procrastinate.periodic import PeriodicRegistry

F = TypeVar("F", bound=Callable[..., Any])


def releases_connection(function: F) -> F:
    """Procrastinate runs sync tasks on pool threads; each thread would keep its own Django
    connection open for ever. Close it when the task ends (the main thread keeps its own)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()

    return wrapper  # type: ignore[return-value]


def run_worker_cycle(queues: list[str] | None = None, *, periodic: bool = False, concurrency: int = 4) -> None:
    """Process every job queued now (and any they queue), then return: what one pass of
    `sonjog worker` would do. Periodic jobs are not scheduled unless asked, so a test (or an
    operator running a backlog by hand) gets exactly the queued work and nothing the clock adds."""
    worker_app = app.with_connector(app.connector.get_worker_connector())  # type: ignore[attr-defined]
    if not periodic:
        worker_app.periodic_registry = PeriodicRegistry()
    # A worker with several slots stops once a fetch finds nothing, even if a job still running is
    # about to queue more; go round again until nothing runnable is left (bounded, never spinning).
    for _round in range(20):
        worker_app.run_worker(
            queues=queues, wait=False, install_signal_handlers=False, listen_notify=False, concurrency=concurrency
        )
        if not _runnable_jobs(queues):
            break


def _runnable_jobs(queues: list[str] | None) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status = 'todo'
                   AND (scheduled_at IS NULL OR scheduled_at <= now())
                   AND (%(queues)s::text[] IS NULL OR queue_name = ANY(%(queues)s::text[])))""",
            {"queues": queues},
        )
        row = cursor.fetchone()
    return bool(row and row[0])
