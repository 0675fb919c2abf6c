from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from sonjog.automation.exceptions import UnknownJob
from sonjog.automation.models import JobRun
from sonjog.automation.selectors import jobs_overview
from sonjog.automation.services import job_run_now
from sonjog.core.cli import SonjogCommand, column_arg, to_json, usage_error


def _when(value: Any) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value is not None else "never"


class Command(SonjogCommand):
    help = "List the scheduled jobs with their last and next runs, or run one now with --run NAME."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--run",
            metavar="NAME",
            type=column_arg(JobRun, "job_name"),
            help="run this job now, in this process, and record it",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["run"]:
            self._run(options["run"], options["json"])
            return
        rows = jobs_overview()
        if options["json"]:
            self.stdout.write(to_json([row.as_dict() for row in rows]))
            return
        zone = timezone.get_current_timezone_name()
        self.stdout.write(f"{'job':34} {'cron (UTC)':16} {'last run':17} {'status':8} {'next run':17} times: {zone}")
        for row in rows:
            self.stdout.write(
                f"{row.name:34} {row.cron:16} {_when(row.last_run_at):17} {row.last_status or '-':8} "
                f"{_when(row.next_run_at):17}"
            )
            if row.last_error:
                self.stdout.write(f"{'':34} {row.last_error}")

    def _run(self, name: str, as_json: bool) -> None:
        try:
            run = job_run_now(name)
        except UnknownJob as error:
            raise usage_error(str(error)) from None
        result = {
            "job": run.job_name,
            "status": run.status,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "outcome": run.outcome,
            "error": run.error,
        }
        if as_json:
            self.stdout.write(to_json(result))
        else:
            self.stdout.write(f"{run.job_name}: {run.status} in {run.seconds or 0:.2f} s  {to_json(run.outcome)}")
        if run.status == JobRun.Status.ERROR:
            raise CommandError(f"{name} failed: {run.error.splitlines()[0]}", returncode=1)
        if run.status == JobRun.Status.SKIPPED:
            raise CommandError(f"{name} is already running elsewhere; nothing was done", returncode=1)
