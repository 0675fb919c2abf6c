from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sonjog.automation.backup import database_restore
from sonjog.automation.exceptions import BackupError, RestoreRefused
from sonjog.core.cli import SonjogCommand, text_arg, to_json, usage_error


class Command(SonjogCommand):
    help = "Restore a backup into a NEW database on the configured server (never over an existing one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=text_arg(4096), help="a .dump file made by `sonjog backup`")
        parser.add_argument(
            "--database",
            required=True,
            type=text_arg(63),  # PostgreSQL's longest identifier
            help="name of the database to create and restore into",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = database_restore(path=options["file"], database=options["database"])
        except RestoreRefused as error:
            raise usage_error(str(error)) from None
        except BackupError as error:
            raise CommandError(str(error), returncode=1) from None
        if options["json"]:
            self.stdout.write(to_json(result.as_dict()))
            return
        self.stdout.write(
            f"Restored {result.source} into database '{result.database}' ({result.tables} relations) "
            f"in {result.seconds} s. Point DATABASE_URL (or SONJOG_DATABASE_NAME) at it to use it."
        )
