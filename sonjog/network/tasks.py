"""Network jobs: the outbox executor and drain, the reconciler, the stale-session closer, the
online sampler. (The overdue sweep is a flow: `sonjog.flows.tasks`.)"""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from sonjog.automation.recording import recorded
from sonjog.core.jobs import releases_connection
from sonjog.network import services


@app.task(name="network.execute_command", queue="network")
@releases_connection
def execute_command(command_id: int) -> str:
    return services.outbox_execute(command_id)


@app.periodic(cron="* * * * *", periodic_id="network.drain_outbox")
@app.task(name="network.drain_outbox", queue="network", queueing_lock="network.drain_outbox")
@releases_connection
@recorded("network.drain_outbox")
def drain_outbox(timestamp: int | None = None) -> dict[str, int]:
    """Every minute (and at once when a router answers again): retries whose time has come, and
    commands whose worker died mid-way (their lock is free; see services._claim)."""
    return services.outbox_drain()


def drain_outbox_soon() -> None:
    """Ask a worker to drain the outbox now; if a drain is already queued, that one will do. Safe
    inside a transaction: the refused insert is rolled back to a savepoint, not the caller's work."""
    with contextlib.suppress(AlreadyEnqueued), transaction.atomic():
        drain_outbox.defer()


@app.periodic(cron="*/15 * * * *", periodic_id="network.reconcile")
@app.task(name="network.reconcile", queue="network", queueing_lock="network.reconcile")
@releases_connection
@recorded("network.reconcile")
def reconcile(timestamp: int | None = None) -> dict[str, Any]:
    from sonjog.network.reconcile import network_reconcile

    return {name: report.summary() for name, report in network_reconcile().items()}


@app.periodic(cron="*/5 * * * *", periodic_id="network.sample_online")
@app.task(name="network.sample_online", queue="network", queueing_lock="network.sample_online")
@releases_connection
@recorded("network.sample_online")
def sample_online(timestamp: int | None = None) -> dict[str, Any]:
    from sonjog.network.radius_sessions import session_states_refresh, stale_sessions_close
    from sonjog.network.sampling import online_sample

    closed = stale_sessions_close()
    refreshed = session_states_refresh()
    return {"stale_closed": closed, "sessions_refreshed": refreshed, **online_sample()}
