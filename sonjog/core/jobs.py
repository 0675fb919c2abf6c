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


def run_worker_cycle(queues: list[str] | None = None, *, periodic: bool = False) -> None:
    """Process every job queued now (and any they queue), then return: what one pass of
    `sonjog worker` would do. Periodic jobs are not scheduled unless asked, so a test (or an
    operator running a backlog by hand) gets exactly the queued work and nothing the clock adds."""
    worker_app = app.with_connector(app.connector.get_worker_connector())  # type: ignore[attr-defined]
    if not periodic:
        worker_app.periodic_registry = PeriodicRegistry()
    worker_app.run_worker(queues=queues, wait=False, install_signal_handlers=False, listen_notify=False)
