"""The scheduled jobs that are not flows (those are in `sonjog.flows.tasks`): automation's own and
the network's periodic ones (outbox drain, reconciler, session sampler). Each is a periodic
Procrastinate task with a queueing lock (at most one copy waiting), recorded as a JobRun by
`recorded`, and safe to run twice: a second run finds nothing left to do (the backup excepted: each
run is a new snapshot, and the keep count bounds them).

The cron expressions are UTC, as Procrastinate evaluates them, and equal the JOBS registry's."""

from __future__ import annotations

from typing import Any

from procrastinate.contrib.django import app

from sonjog.automation import services
from sonjog.automation.operator_settings import operator_settings_apply_due
from sonjog.automation.recording import recorded, run_finish_now
from sonjog.core.jobs import releases_connection
from sonjog.network import services as network_services
from sonjog.network.backups import routers_backup_all
from sonjog.network.radius_sessions import session_states_refresh, stale_sessions_close
from sonjog.network.reconcile import network_reconcile
from sonjog.network.sampling import online_sample


@app.periodic(cron="0 12 1 * *", periodic_id="automation.settle_credit")
@app.task(name="automation.settle_credit", queue="billing", queueing_lock="automation.settle_credit")
@releases_connection
@recorded("automation.settle_credit")
def settle_credit(timestamp: int | None = None) -> dict[str, Any]:
    return services.settle_credit()


@app.periodic(cron="7 * * * *", periodic_id="automation.operator_settings")
@app.task(name="automation.operator_settings", queue="billing", queueing_lock="automation.operator_settings")
@releases_connection
@recorded("automation.operator_settings")
def operator_settings(timestamp: int | None = None) -> dict[str, Any]:
    return operator_settings_apply_due()


@app.periodic(cron="*/15 * * * *", periodic_id="automation.fair_usage")
@app.task(name="automation.fair_usage", queue="network", queueing_lock="automation.fair_usage")
@releases_connection
@recorded("automation.fair_usage")
def fair_usage(timestamp: int | None = None) -> dict[str, Any]:
    return network_services.fair_usage_apply()


@app.periodic(cron="20 22 * * *", periodic_id="automation.log_retention")
@app.task(name="automation.log_retention", queue="automation", queueing_lock="automation.log_retention")
@releases_connection
@recorded("automation.log_retention")
def log_retention(timestamp: int | None = None) -> dict[str, Any]:
    return services.log_retention_purge()


@app.periodic(cron="0 21 * * *", periodic_id="automation.database_backup")
@app.task(name="automation.database_backup", queue="automation", queueing_lock="automation.database_backup")
@releases_connection
@recorded("automation.database_backup")
def database_backup(timestamp: int | None = None) -> dict[str, Any]:
    # The run is recorded as finished just before pg_dump's snapshot, so the dump (and any database
    # restored from it) holds this run finished, not running; the file's size is known only after.
    return services.database_backup(before_dump=run_finish_now).as_dict()


@app.periodic(cron="5 * * * *", periodic_id="automation.due_reminders")
@app.task(name="automation.due_reminders", queue="notifications", queueing_lock="automation.due_reminders")
@releases_connection
@recorded("automation.due_reminders")
def due_reminders(timestamp: int | None = None) -> dict[str, Any]:
    return services.due_reminders_send()


@app.periodic(cron="10 * * * *", periodic_id="automation.prepaid_expiry_notices")
@app.task(
    name="automation.prepaid_expiry_notices",
    queue="notifications",
    queueing_lock="automation.prepaid_expiry_notices",
)
@releases_connection
@recorded("automation.prepaid_expiry_notices")
def prepaid_expiry_notices(timestamp: int | None = None) -> dict[str, Any]:
    return services.prepaid_expiry_notices_send()


# -- the network's periodic jobs (their names are the network app's) ----------------------------------


@app.periodic(cron="* * * * *", periodic_id="network.drain_outbox")
@app.task(name="network.drain_outbox", queue="network", queueing_lock="network.drain_outbox")
@releases_connection
@recorded("network.drain_outbox")
def drain_outbox(timestamp: int | None = None) -> dict[str, int]:
    """Every minute (and at once when a router answers again): retries whose time has come, and
    commands whose worker died mid-way (their lock is free; see services._claim)."""
    return network_services.outbox_drain()


@app.periodic(cron="*/15 * * * *", periodic_id="network.reconcile")
@app.task(name="network.reconcile", queue="network", queueing_lock="network.reconcile")
@releases_connection
@recorded("network.reconcile")
def reconcile(timestamp: int | None = None) -> dict[str, Any]:
    return {name: report.summary() for name, report in network_reconcile().items()}


@app.periodic(cron="40 20 * * *", periodic_id="network.backup_routers")
@app.task(name="network.backup_routers", queue="network", queueing_lock="network.backup_routers")
@releases_connection
@recorded("network.backup_routers")
def backup_routers(timestamp: int | None = None) -> dict[str, Any]:
    """Daily: every active router that can export is backed up on its own and copied to its operator's
    destination; one that fails is listed in the outcome and the rest go on."""
    return routers_backup_all()


@app.periodic(cron="*/5 * * * *", periodic_id="network.sample_online")
@app.task(name="network.sample_online", queue="network", queueing_lock="network.sample_online")
@releases_connection
@recorded("network.sample_online")
def sample_online(timestamp: int | None = None) -> dict[str, Any]:
    closed = stale_sessions_close()
    refreshed = session_states_refresh()
    return {"stale_closed": closed, "sessions_refreshed": refreshed, **online_sample()}
