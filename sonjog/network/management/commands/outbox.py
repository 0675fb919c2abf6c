from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, column_arg, int_arg, to_json, usage_error
from sonjog.network.exceptions import NetworkError
from sonjog.network.models import OutboxCommand, OutboxStatus, ProfileCommand
from sonjog.network.services import outbox_drain, outbox_retry


class Command(SonjogCommand):
    help = "List router commands (the enforcement outbox); retry a failed one or drain what is due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", choices=OutboxStatus.values)
        parser.add_argument("--limit", type=int_arg(1, 100_000), default=100)
        parser.add_argument(
            "--retry", type=column_arg(OutboxCommand, "id"), metavar="ID", help="retry one failed command"
        )
        parser.add_argument("--drain", action="store_true", help="execute every due command now")
        parser.add_argument(
            "--profiles", action="store_true", help="list the PPP profile commands (packages pushed to routers) instead"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["retry"] is not None:
            command = OutboxCommand.objects.filter(pk=options["retry"]).first()
            if command is None:
                raise usage_error(f"no outbox command #{options['retry']}")
            try:
                outbox_retry(command)
            except NetworkError as error:
                raise usage_error(str(error)) from None
        if options["drain"]:
            counts = outbox_drain()
            if not options["json"]:
                summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "nothing due"
                self.stdout.write(f"drained: {summary}")
        if options["profiles"]:
            self._profiles(options)
            return
        rows = OutboxCommand.objects.select_related("subscriber", "router").order_by("-requested_at")
        if options["status"]:
            rows = rows.filter(status=options["status"])
        items: list[dict[str, Any]] = [
            {
                "id": c.pk,
                "subscriber": c.subscriber.customer_id,
                "router": c.router.name,
                "status": c.status,
                "requested_by": c.requested_by,
                "requested_at": c.requested_at,
                "attempts": c.attempts,
                "next_attempt_at": c.next_attempt_at,
                "last_error": c.last_error,
                "latency_ms": c.latency_ms,
            }
            for c in rows[: options["limit"]]
        ]
        self._write(items, "commands", "subscriber", options["json"])

    def _profiles(self, options: dict[str, Any]) -> None:
        rows = ProfileCommand.objects.select_related("router").order_by("-requested_at")
        if options["status"]:
            rows = rows.filter(status=options["status"])
        items: list[dict[str, Any]] = [
            {
                "id": c.pk,
                "router": c.router.name,
                "kind": c.kind,
                # A portal command names no profile; the listing names its kind there instead.
                "profile": c.profile or c.kind,
                "status": c.status,
                "requested_by": c.requested_by,
                "requested_at": c.requested_at,
                "attempts": c.attempts,
                "next_attempt_at": c.next_attempt_at,
                "last_error": c.last_error,
            }
            for c in rows[: options["limit"]]
        ]
        self._write(items, "profile_commands", "profile", options["json"])

    def _write(self, items: list[dict[str, Any]], key: str, what: str, as_json: bool) -> None:
        """The listing as JSON under `key`, or one line per command naming its `what` (a subscriber or a
        profile)."""
        if as_json:
            self.stdout.write(to_json({key: items}))
            return
        for item in items:
            self.stdout.write(
                f"#{item['id']:<6} {item['status']:<11} {item[what]:<14} {item['router']:<12} "
                f"tries {item['attempts']:<2} {item['requested_by'][:30]:<30} {item['last_error'][:60]}"
            )
