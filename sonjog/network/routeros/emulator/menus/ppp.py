"""The ``/ppp`` menus: secrets (the subscribers' accounts), profiles (their speed and address
list) and active sessions (which the API can list and kick, never create).
"""

from __future__ import annotations

import re
import time
from typing import ClassVar, Final

from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, ApiTrap
from sonjog.network.routeros.emulator.menus.base import TableMenu
from sonjog.network.routeros.emulator.state import Row
from sonjog.network.routeros.emulator.values import format_duration, parse_duration, validate_ipv4, validate_rate_limit

_POOL_NAME_RE: Final = re.compile(r"[^\s,]+")

_PPP_SERVICES: Final = frozenset({"any", "async", "l2tp", "ovpn", "pppoe", "pptp", "sstp"})
_TRISTATE: Final = frozenset({"yes", "no", "default"})


class SecretMenu(TableMenu):
    menu = "ppp/secret"
    section = "/ppp secret"
    fields = (
        "name",
        "service",
        "caller-id",
        "password",
        "profile",
        "local-address",
        "remote-address",
        "routes",
        "ipv6-routes",
        "limit-bytes-in",
        "limit-bytes-out",
        "last-logged-out",
        "last-caller-id",
        "last-disconnect-reason",
        "disabled",
        "comment",
    )
    writable = frozenset(
        {
            "name",
            "service",
            "caller-id",
            "password",
            "profile",
            "local-address",
            "remote-address",
            "routes",
            "ipv6-routes",
            "remote-ipv6-prefix",
            "limit-bytes-in",
            "limit-bytes-out",
            "disabled",
            "comment",
        }
    )
    defaults = {
        "service": "any",
        "caller-id": "",
        "password": "",
        "profile": "default",
        "routes": "",
        "ipv6-routes": "",
        "limit-bytes-in": "0",
        "limit-bytes-out": "0",
        "disabled": "false",
    }
    sensitive = frozenset({"password"})
    read_only = frozenset({"last-logged-out", "last-caller-id", "last-disconnect-reason"})
    name_field = "name"
    unique = ("name",)
    duplicate_message = "failure: secret with the same name already exists"
    required = ("name",)

    def validate(self, row: Row, original: Row | None) -> None:
        if row["service"] not in _PPP_SERVICES:
            raise ApiTrap("input does not match any value of service", CATEGORY_ARGUMENT)
        if not self.router.profile_exists(row["profile"]):
            raise ApiTrap("input does not match any value of profile", CATEGORY_ARGUMENT)
        for key in ("local-address", "remote-address"):
            if row.get(key):
                row[key] = validate_ipv4(key, row[key])
        for key in ("limit-bytes-in", "limit-bytes-out"):
            if not row[key].isdigit():
                raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT)


class ProfileMenu(TableMenu):
    menu = "ppp/profile"
    section = "/ppp profile"
    fields = (
        "name",
        "local-address",
        "remote-address",
        "bridge",
        "use-mpls",
        "use-compression",
        "use-encryption",
        "only-one",
        "change-tcp-mss",
        "use-upnp",
        "address-list",
        "dns-server",
        "rate-limit",
        "session-timeout",
        "idle-timeout",
        "parent-queue",
        "on-up",
        "on-down",
        "comment",
        "default",
    )
    writable = frozenset(
        {
            "name",
            "local-address",
            "remote-address",
            "bridge",
            "use-mpls",
            "use-compression",
            "use-encryption",
            "only-one",
            "change-tcp-mss",
            "use-upnp",
            "address-list",
            "dns-server",
            "rate-limit",
            "session-timeout",
            "idle-timeout",
            "parent-queue",
            "insert-queue-before",
            "queue-type",
            "incoming-filter",
            "outgoing-filter",
            "on-up",
            "on-down",
            "comment",
        }
    )
    defaults = {
        "use-mpls": "default",
        "use-compression": "default",
        "use-encryption": "default",
        "only-one": "default",
        "change-tcp-mss": "default",
        "use-upnp": "default",
        "address-list": "",
        "on-up": "",
        "on-down": "",
        "default": "false",
    }
    booleans = frozenset({"default"})
    read_only = frozenset({"default"})
    name_field = "name"
    unique = ("name",)
    duplicate_message = "failure: profile with the same name already exists"
    required = ("name",)
    DEFAULT_ID: ClassVar[str] = "*0"
    DEFAULT_ENCRYPTION_ID: ClassVar[str] = "*FFFFFFFE"

    @classmethod
    def builtin_rows(cls) -> list[Row]:
        base = {**cls.defaults, "default": "true"}
        return [
            {".id": cls.DEFAULT_ID, "name": "default", **base},
            {".id": cls.DEFAULT_ENCRYPTION_ID, "name": "default-encryption", **base, "use-encryption": "yes"},
        ]

    @classmethod
    def builtin_baseline(cls, item_id: str) -> Row:
        return next(row for row in cls.builtin_rows() if row[".id"] == item_id)

    def validate(self, row: Row, original: Row | None) -> None:
        for key in ("use-mpls", "use-compression", "only-one", "change-tcp-mss", "use-upnp"):
            if row.get(key, "default") not in _TRISTATE:
                raise ApiTrap(f"input does not match any value of {key}", CATEGORY_ARGUMENT)
        if row.get("use-encryption", "default") not in _TRISTATE | {"required"}:
            raise ApiTrap("input does not match any value of use-encryption", CATEGORY_ARGUMENT)
        for key in ("local-address", "remote-address"):
            # Either an address or the name of an IP pool.
            value = row.get(key, "")
            if value and not _POOL_NAME_RE.fullmatch(value):
                raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT)
        if row.get("rate-limit"):
            row["rate-limit"] = validate_rate_limit(row["rate-limit"])
        if row.get("dns-server"):
            servers = [validate_ipv4("dns-server", part) for part in row["dns-server"].split(",")]
            row["dns-server"] = ",".join(servers)
        for key in ("session-timeout", "idle-timeout"):
            if row.get(key):
                try:
                    row[key] = format_duration(parse_duration(row[key]))
                except ValueError:
                    raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT) from None
        if original is not None and original.get("default") == "true" and row["name"] != original["name"]:
            raise ApiTrap("failure: can not rename default profile")

    def check_remove(self, row: Row) -> None:
        if row.get("default") == "true":
            raise ApiTrap("failure: can not remove default profile")
        in_use = [
            secret["name"]
            for secret in self.router.state.table("ppp/secret").rows
            if secret.get("profile") == row["name"]
        ]
        if in_use:
            raise ApiTrap(f"failure: profile is used by secret {in_use[0]}")

    def after_update(self, old: Row, new: Row) -> None:
        # Secrets reference profiles by item, so a rename shows up under the new name.
        if old.get("name") != new.get("name"):
            for secret in self.router.state.table("ppp/secret").rows:
                if secret.get("profile") == old.get("name"):
                    secret["profile"] = new["name"]
            self.router.changed("ppp/secret")

    def export_lines(self, *, show_sensitive: bool, verbose: bool) -> list[str]:
        lines: list[str] = []
        for row in self.table.rows:
            if row.get("default") == "true":
                args = self._export_args(row, self.builtin_baseline(row[".id"]), show_sensitive, verbose)
                if args and not verbose:
                    lines.append(f"set {row['.id']} {args}")
                continue
            lines.append("add " + self._export_args(row, self.defaults, show_sensitive, verbose))
        return lines


class ActiveMenu(TableMenu):
    """``/ppp active``: sessions exist only because a client dialled in; the API can only kick."""

    menu = "ppp/active"
    section = ""
    fields = (
        "name",
        "service",
        "caller-id",
        "address",
        "uptime",
        "encoding",
        "session-id",
        "limit-bytes-in",
        "limit-bytes-out",
        "radius",
    )
    booleans = frozenset({"radius"})
    name_field = "name"
    verbs = frozenset({"print", "getall", "remove"})
    persistent = False

    def computed(self, row: Row) -> dict[str, str]:
        started = float(row.get("_started", time.monotonic()))
        return {"uptime": format_duration(time.monotonic() - started)}

    def exportable(self, row: Row) -> bool:
        return False
