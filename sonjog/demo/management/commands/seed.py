from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, int_arg, to_json, usage_error
from sonjog.core.progress import Progress
from sonjog.demo.seed import seed_isp
from sonjog.operators.models import Operator

# A synthetic ISP this size seeds in hours; anything larger is a typing slip.
MAX_SUBSCRIBERS = 1_000_000
MAX_MONTHS = 120


class Command(SonjogCommand):
    help = "Seed a synthetic ISP (root ISP, two resellers, packages, zones, subscribers, bills, payments)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--subscribers", type=int_arg(1, MAX_SUBSCRIBERS), required=True)
        parser.add_argument("--months", type=int_arg(1, MAX_MONTHS), required=True)
        parser.add_argument("--random-seed", type=int_arg(0, 2**63 - 1), default=1)
        parser.add_argument("--if-empty", action="store_true", help="do nothing (exit 0) when data exists")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if Operator.objects.filter(code="demo-isp").exists():
            if options["if_empty"]:
                self.stdout.write("Demo data already present; nothing seeded.")
                return
            raise usage_error("this database already holds the seeded ISP (operator demo-isp); use a fresh database")
        progress = Progress(options["months"] + 4, "seeding", enabled=not options["json"])
        started = time.monotonic()
        result = seed_isp(
            subscribers=options["subscribers"],
            months=options["months"],
            random_seed=options["random_seed"],
            progress=lambda note: progress.advance(note=note),
        )
        summary = {
            "operators": [operator.code for operator in result.operators],
            "subscribers": result.subscribers,
            "bills": result.bills,
            "payments": result.payments,
            "months": result.months,
            "seconds": round(time.monotonic() - started, 2),
        }
        if options["json"]:
            self.stdout.write(to_json(summary))
        else:
            self.stdout.write(
                f"Seeded {result.subscribers} subscribers, {result.bills} bills and {result.payments} payments "
                f"over {result.months} months in {summary['seconds']} s"
            )
