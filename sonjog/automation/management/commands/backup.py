from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sonjog.automation.models import JobRun
from sonjog.automation.services import job_run_now
from sonjog.core.cli import SonjogCommand, to_json


class Command(SonjogCommand):
    help = "Back up the database now (pg_dump custom format into SONJOG_BACKUP_DIR), as the daily job does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        # Through the job, so the backup shows in the jobs list and never overlaps the scheduled one.
        run = job_run_now("automation.database_backup")
        if run.status == JobRun.Status.ERROR:
            raise CommandError(run.error.splitlines()[0], returncode=1)
        if run.status == JobRun.Status.SKIPPED:
            raise CommandError("a backup is already running; nothing was done", returncode=1)
        if options["json"]:
            self.stdout.write(to_json(run.outcome))
            return
        outcome = run.outcome
        self.stdout.write(f"Backed up to {outcome['path']} ({outcome['bytes']} bytes) in {outcome['seconds']} s")
        for name in outcome.get("deleted", []):
            self.stdout.write(f"  removed old backup {name}")
