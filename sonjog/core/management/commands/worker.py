from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, int_arg, text_arg
from sonjog.core.worker import run_worker


class Command(SonjogCommand):
    help = (
        "Run the background worker (Procrastinate): scheduled jobs and deferred side effects. It rides "
        "out database restarts (restarting itself with backoff) and stops on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int_arg(1, 256), default=4)
        parser.add_argument("--queues", default="", type=text_arg(500), help="comma-separated queues; all when empty")

    def handle(self, *args: Any, **options: Any) -> None:
        queues = [name.strip() for name in options["queues"].split(",") if name.strip()]
        run_worker(queues=queues or None, concurrency=options["concurrency"])
