from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, int_arg, text_arg


class Command(SonjogCommand):
    help = "Run the background worker (Procrastinate): scheduled jobs and deferred side effects."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int_arg(1, 256), default=4)
        parser.add_argument("--queues", default="", type=text_arg(500), help="comma-separated queues; all when empty")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = ["worker", f"--concurrency={options['concurrency']}"]
        if options["queues"]:
            argv.append(f"--queues={options['queues']}")
        call_command("procrastinate", *argv)
