"""Console jobs: bulk actions run by the worker (their progress visible while they run), and a daily
prune of the console's own bookkeeping."""

from __future__ import annotations

from procrastinate.contrib.django import app

from sonjog.automation.recording import recorded
from sonjog.core.jobs import releases_connection


@app.task(name="console.run_bulk_action", queue="console")
@releases_connection
def run_bulk_action(action_id: int) -> dict[str, int]:
    from sonjog.console.services import bulk_action_run

    action = bulk_action_run(action_id)
    return {"total": action.total, "done": action.done, "failed": action.failed}


@app.periodic(cron="17 3 * * *", periodic_id="console.prune")
@app.task(name="console.prune", queue="console", queueing_lock="console.prune")
@releases_connection
@recorded("console.prune")
def prune(timestamp: int | None = None) -> dict[str, int]:
    from sonjog.console.services import closed_period_changes_prune, signin_log_prune

    return {"signin_log": signin_log_prune(), "closed_period_changes": closed_period_changes_prune()}
