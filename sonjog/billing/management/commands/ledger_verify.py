from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sonjog.billing.verification import ledger_verify
from sonjog.core.cli import SonjogCommand, to_json


class Command(SonjogCommand):
    help = "Check every ledger invariant over all data; exit 0 only when all hold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_verify()
        if options["json"]:
            self.stdout.write(to_json(report.as_dict()))
        else:
            self.stdout.write("  ".join(f"{name}={count}" for name, count in report.counts.items()))
            for name, holds in report.checks.items():
                self.stdout.write(f"{'ok  ' if holds else 'FAIL'} {name}")
                for row in report.violations.get(name, []):
                    self.stdout.write(f"       {row}")
        if not report.ok:
            failed = ", ".join(name for name, holds in report.checks.items() if not holds)
            raise CommandError(f"ledger invariants violated: {failed}", returncode=1)
