"""`sonjog portal_redirect`: put Sonjog's suspension-portal rules on the routers now, or, with `--check`,
say how each router differs from them without changing anything.

Exit status: 0 every router is in step (after the run, or as checked), 1 a router differs or could not
be read or written (a failed run stays queued and is retried by the worker), 2 bad input."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from sonjog.core.cli import SonjogCommand, column_arg, to_json, usage_error
from sonjog.network.management.commands._routers import router_by_name
from sonjog.network.models import OutboxStatus, ProfileCommand, Router
from sonjog.network.portal import portal_check, portal_driven, portal_redirect_sync
from sonjog.network.profiles import profile_execute
from sonjog.network.router_io import DriverError


class Command(SonjogCommand):
    help = (
        "Put Sonjog's suspension-portal rules (redirect, walled garden, drop) on the MikroTik routers now; "
        "--check only reports what differs (exit 0 in step, 1 differs or unreachable, 2 bad input)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--router", type=column_arg(Router, "name"), help="one router (default: every one)")
        parser.add_argument("--check", action="store_true", help="change nothing; report the differences")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        routers = self._routers(options["router"])
        reports = [self._check(router) if options["check"] else self._run(router) for router in routers]
        if options["json"]:
            self.stdout.write(to_json({"routers": reports}))
        else:
            for report in reports:
                self._write(report, options["check"])
        troubled = [report["router"] for report in reports if not report["in_sync"]]
        if troubled:
            verb = "differ" if options["check"] else "are not in step yet"
            raise CommandError(f"{len(troubled)} router(s) {verb}: {', '.join(troubled)}", returncode=1)

    def _routers(self, name: str | None) -> list[Router]:
        if name is not None:
            router = router_by_name(name)
            if not portal_driven(router):
                why = (
                    "is inactive"
                    if not router.is_active
                    else "is record only"
                    if router.record_only
                    else f"uses the {router.driver} driver"
                )
                raise usage_error(
                    f"router '{router.name}' {why}: Sonjog does not write its rules; put them on by hand "
                    "(docs/suspension-portal.md)"
                )
            return [router]
        return [
            router
            for router in Router.objects.select_related("operator").order_by("name", "pk")
            if portal_driven(router)
        ]

    def _check(self, router: Router) -> dict[str, Any]:
        try:
            differences = portal_check(router)
        except DriverError as error:
            return {"router": router.name, "in_sync": False, "differences": [], "error": str(error)}
        return {"router": router.name, "in_sync": not differences, "differences": differences, "error": ""}

    def _run(self, router: Router) -> dict[str, Any]:
        with transaction.atomic():
            command_id = portal_redirect_sync(router, requested_by="sonjog portal_redirect")
        assert command_id is not None  # only driven routers get here
        status = profile_execute(command_id, force=True)
        command = ProfileCommand.objects.get(pk=command_id)
        return {
            "router": router.name,
            "in_sync": status == OutboxStatus.DONE,
            "status": status,
            "actions": list(command.result.get("actions", [])) if status == OutboxStatus.DONE else [],
            # Not done: failed this time (retried by the worker), or a worker is running it right now.
            "error": "" if status == OutboxStatus.DONE else command.last_error or f"the command is {status}",
        }

    def _write(self, report: dict[str, Any], check: bool) -> None:
        name = report["router"]
        if report["error"]:
            self.stdout.write(f"{name}: {'cannot read' if check else 'not applied'}: {report['error']}")
        elif check:
            lines = report["differences"]
            self.stdout.write(f"{name}: {'in step' if not lines else f'{len(lines)} difference(s)'}")
            for line in lines:
                self.stdout.write(f"  {line}")
        else:
            actions = report["actions"]
            self.stdout.write(f"{name}: {', '.join(actions) if actions else 'already in step'}")
