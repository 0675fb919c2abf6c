from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, column_arg, to_json
from sonjog.network.management.commands._routers import router_by_name
from sonjog.network.models import Router
from sonjog.network.reconcile import network_reconcile


class Command(SonjogCommand):
    help = "Read every router, record what it reports, and queue repairs for every disagreement."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--router", type=column_arg(Router, "name"))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        router = router_by_name(options["router"]) if options["router"] else None
        reports = network_reconcile(router)
        if options["json"]:
            self.stdout.write(to_json({"routers": [r.as_dict() for r in reports.values()]}))
            return
        for report in reports.values():
            if not report.reachable:
                self.stdout.write(f"{report.router}: UNREACHABLE: {report.error}")
                continue
            self.stdout.write(
                f"{report.router}: {len(report.disagreements)} disagreements, "
                f"{report.repairs_queued} repairs queued (the worker applies them)"
            )
