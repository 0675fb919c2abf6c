"""Network jobs run on demand: one router command, one profile command, and "drain the outbox now". The
periodic network jobs (outbox drain, reconciler, session sampler) are scheduled and recorded by
automation (`sonjog.automation.tasks`); the overdue sweep is a flow (`sonjog.flows.tasks`)."""

from __future__ import annotations

import contextlib

from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from sonjog.core.jobs import releases_connection
from sonjog.network import profiles, services

# The periodic drain's task name, queueing lock and run-record name (automation.registry lists it).
DRAIN_TASK = "network.drain_outbox"


@app.task(name="network.execute_command", queue="network")
@releases_connection
def execute_command(command_id: int) -> str:
    return services.outbox_execute(command_id)


def drain_outbox_soon() -> None:
    """Ask a worker to drain the outbox now; if a drain is already queued, that one will do. Safe
    inside a transaction: the refused insert is rolled back to a savepoint, not the caller's work.
    The drain is a scheduled job (`sonjog.automation.tasks.drain_outbox`, recorded like every job);
    it is deferred here by its registered name, so the network app needs nothing above it."""
    with contextlib.suppress(AlreadyEnqueued), transaction.atomic():
        app.configure_task(name=DRAIN_TASK, queue="network", queueing_lock=DRAIN_TASK).defer()


@app.task(name="network.execute_profile_command", queue="network")
@releases_connection
def execute_profile_command(command_id: int) -> str:
    return profiles.profile_execute(command_id)
