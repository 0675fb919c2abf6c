from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, text_arg, usage_error
from sonjog.network.routeros.emulator import run_emulator


class Command(SonjogCommand):
    help = "Run the RouterOS API emulator on 127.0.0.1 (for tests and the demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8728)
        parser.add_argument("--tls-port", type=int, default=None)
        parser.add_argument("--user", default="admin", type=text_arg(64))
        parser.add_argument("--password", default="", type=text_arg(128))
        parser.add_argument(
            "--state",
            default=None,
            type=text_arg(4096),
            help="JSON file that keeps the router's state across restarts",
        )
        parser.add_argument("--identity", default="emulated", type=text_arg(64))

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("port", "tls_port"):
            value = options[name]
            if value is not None and not 0 <= value <= 65535:
                raise usage_error(f"--{name.replace('_', '-')} must be a port number (0-65535)")
        run_emulator(
            port=options["port"],
            tls_port=options["tls_port"],
            user=options["user"],
            password=options["password"],
            state_file=options["state"],
            identity=options["identity"],
        )
