from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, column_arg, to_json
from sonjog.network.management.commands._routers import router_by_name
from sonjog.network.models import Router
from sonjog.network.reconcile import network_diff


class Command(SonjogCommand):
    help = "Dry run: list every disagreement between intent, RADIUS rows and each router."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--router", type=column_arg(Router, "name"))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        router = router_by_name(options["router"]) if options["router"] else None
        reports = network_diff(router)
        if options["json"]:
            self.stdout.write(to_json({"routers": [r.as_dict() for r in reports.values()]}))
            return
        for report in reports.values():
            state = "reachable" if report.reachable else f"UNREACHABLE: {report.error}"
            self.stdout.write(
                f"{report.router}: {state}; {report.checked} subscribers checked, "
                f"{report.online} online, {len(report.disagreements)} disagreements"
            )
            for item in report.disagreements:
                self.stdout.write(
                    f"  {item.customer_id or '-':<14} {item.username:<20} {item.kind} "
                    f"(intent {item.intent or '-'}, router {item.router_view})"
                )
