"""`sonjog router_add`: a router (NAS) of an operator, from the command line.

The API password (for a RADIUS router: the CoA shared secret) never goes on the command line, where
the process list would show it: it is read from the first line of standard input with
`--password-stdin`, or asked for at a prompt. Bad input (an unknown operator or zone, a taken name, a
bad address or port, no password) ends the command before anything is written: one line, exit code 2.
The router's package profiles are queued for it as it is added (the worker pushes them)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import CommandParser

from sonjog.core import bounds
from sonjog.core.cli import SonjogCommand, column_arg, host_arg, int_arg, to_json, usage_error
from sonjog.customers.models import Zone
from sonjog.network.exceptions import NetworkError
from sonjog.network.models import DriverKind, Router, SuspendMode
from sonjog.network.services import router_create
from sonjog.operators.models import Operator

SECRET_MAX_LENGTH = 256
ZONE_NAME_MAX_LENGTH = 210  # "Parent / Name", two zone names of 100


class Command(SonjogCommand):
    help = (
        "Add a router for an operator. The API password (RADIUS routers: the CoA shared secret) comes from "
        "standard input with --password-stdin, or from a prompt."
    )
    # call_command(..., stdin=StringIO(...)) in tests, sys.stdin otherwise.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", type=column_arg(Router, "name"))
        parser.add_argument("--operator", required=True, help="the operator's code", type=column_arg(Operator, "code"))
        parser.add_argument("--address", required=True, help="IP address or host name", type=host_arg())
        parser.add_argument("--port", type=int_arg(1, 65535), help="API port (8728, or 8729 with --tls)")
        parser.add_argument("--tls", action="store_true", help="use the API over TLS (api-ssl)")
        parser.add_argument("--user", default="admin", type=column_arg(Router, "username"), help="API user")
        parser.add_argument("--driver", default=DriverKind.MIKROTIK, choices=DriverKind.values)
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        parser.add_argument(
            "--zone",
            action="append",
            default=[],
            help="a zone this router serves, by name or 'Parent / Name' (repeat for several)",
        )
        parser.add_argument("--record-only", action="store_true", help="record intent, never send to the router")
        parser.add_argument("--suspend-mode", default=SuspendMode.DISABLE, choices=SuspendMode.values)
        parser.add_argument("--coa-port", default=3799, type=int_arg(1, 65535))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        operator = Operator.objects.filter(code=options["operator"]).first()
        if operator is None:
            raise usage_error(f"no operator with code '{options['operator']}'")
        zones = [_zone(operator, _zone_name(name)) for name in options["zone"]]
        if Router.objects.filter(operator=operator, name=options["name"]).exists():
            raise usage_error(f"a router named '{options['name']}' already exists for {operator.code}")
        secret = self._secret(options)
        driver = options["driver"]
        port = options["port"] or (8729 if options["tls"] else 8728)
        try:
            router = router_create(
                operator=operator,
                name=options["name"],
                address=options["address"],
                driver=driver,
                api_port=port,
                use_tls=options["tls"],
                username=options["user"],
                password=secret if driver != DriverKind.RADIUS else "",
                radius_secret=secret if driver == DriverKind.RADIUS else "",
                coa_port=options["coa_port"],
                record_only=options["record_only"],
                suspend_mode=options["suspend_mode"],
                zones=zones,
            )
        except NetworkError as error:
            raise usage_error(str(error)) from None
        data = {
            "router_id": router.pk,
            "name": router.name,
            "operator": operator.code,
            "address": f"{router.address}:{router.api_port}",
            "tls": router.use_tls,
            "driver": router.driver,
            "zones": [str(zone) for zone in zones],
            "record_only": router.record_only,
            "profiles_queued": router.profile_commands.count(),
        }
        if options["json"]:
            self.stdout.write(to_json(data))
            return
        self.stdout.write(
            f"router {router.name} added for {operator.code} ({data['address']}{', TLS' if router.use_tls else ''}, "
            f"{router.driver}{', record only' if router.record_only else ''}); "
            f"{data['profiles_queued']} package profiles queued; test it with: sonjog router_test {router.name}"
        )

    def _secret(self, options: dict[str, Any]) -> str:
        stdin = options.get("stdin") or sys.stdin
        what = "RADIUS shared secret" if options["driver"] == DriverKind.RADIUS else "API password"
        if options["password_stdin"]:
            secret = stdin.readline().rstrip("\r\n")
        elif options["driver"] == DriverKind.NONE:
            return ""
        elif stdin.isatty():
            secret = getpass.getpass(f"{what} for {options['user']}@{options['address']}: ")
        else:
            raise usage_error(f"give the {what} on standard input with --password-stdin (or run at a terminal)")
        if not secret:
            raise usage_error(f"the {what} is empty")
        if len(secret) > SECRET_MAX_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in secret):
            raise usage_error(f"the {what} must be at most {SECRET_MAX_LENGTH} printable characters")
        return secret


def _zone_name(value: Any) -> str:
    # Checked here, not by an argparse type: SonjogCommand re-applies a bounded type to the whole list.
    try:
        return bounds.check_text(value, max_length=ZONE_NAME_MAX_LENGTH)
    except ValueError as error:
        raise usage_error(f"argument --zone: {error}") from None


def _zone(operator: Operator, name: str) -> Zone:
    """A zone of the operator's tree by name, or by "Parent / Name" where names repeat."""
    zones = Zone.objects.filter(operator__path__startswith=operator.path).select_related("parent")
    parent_name, _slash, own_name = name.rpartition(" / ")
    if parent_name:
        matches = list(zones.filter(name=own_name, parent__name=parent_name))
    else:
        matches = list(zones.filter(name=name))
    if not matches:
        raise usage_error(f"no zone '{name}' for {operator.code} or its resellers")
    if len(matches) > 1:
        raise usage_error(f"{len(matches)} zones are named '{name}'; give it as 'Parent / Name'")
    return matches[0]
