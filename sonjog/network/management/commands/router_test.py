from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from sonjog.core.cli import SonjogCommand, column_arg, to_json
from sonjog.network.management.commands._routers import router_by_name
from sonjog.network.models import Router
from sonjog.network.services import router_connection_test


class Command(SonjogCommand):
    help = "Test the connection to a router and say clearly what is wrong (refused, timeout, login, TLS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", type=column_arg(Router, "name"))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        router = router_by_name(options["name"])
        result = router_connection_test(router=router)
        if options["json"]:
            self.stdout.write(
                to_json(
                    {
                        "router": router.name,
                        "ok": result.ok,
                        "kind": result.kind,
                        "message": result.message,
                        "details": result.details,
                        "latency_ms": round(result.latency_ms, 1),
                    }
                )
            )
        elif result.ok:
            details = ", ".join(f"{k} {v}" for k, v in result.details.items())
            self.stdout.write(f"{router.name}: OK in {result.latency_ms:.0f} ms ({details})")
        if not result.ok:
            raise CommandError(f"{router.name}: {result.kind}: {result.message}", returncode=1)
