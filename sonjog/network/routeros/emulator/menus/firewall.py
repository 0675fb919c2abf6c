"""``/ip firewall``: the address lists (entries by list and address, with optional timeouts after
which they vanish, and the dynamic entries a PPP session's profile puts there while it is up, neither of
which reaches the saved configuration, as on a router), and the ``filter`` and ``nat`` rule tables
(ordered rules with the matchers and actions a billing system writes, ``place-before`` on add).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import time
from collections.abc import Mapping
from typing import ClassVar, Final

from sonjog.network.routeros.emulator.command import Command, Result
from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, CATEGORY_MISSING, ApiTrap
from sonjog.network.routeros.emulator.menus.base import TableMenu
from sonjog.network.routeros.emulator.state import Row
from sonjog.network.routeros.emulator.values import (
    format_duration,
    format_timestamp,
    normalise_list_address,
    parse_duration,
)


class AddressListMenu(TableMenu):
    menu = "ip/firewall/address-list"
    section = "/ip firewall address-list"
    fields = ("list", "address", "creation-time", "timeout", "dynamic", "disabled", "comment")
    writable = frozenset({"list", "address", "timeout", "disabled", "comment"})
    defaults = {"disabled": "false", "dynamic": "false"}
    booleans = frozenset({"disabled", "dynamic"})
    read_only = frozenset({"creation-time", "dynamic", "timeout"})
    unique = ("list", "address")
    duplicate_message = "failure: already have such entry"
    required = ("list", "address")

    def prepare(self, row: Row, changes: Mapping[str, str], original: Row | None) -> None:
        if original is None:
            row["_created"] = repr(time.time())
        if "timeout" in changes:
            timeout = changes["timeout"].strip()
            row.pop("timeout", None)
            if timeout and timeout != "none-static":
                try:
                    seconds = parse_duration(timeout)
                except ValueError:
                    raise ApiTrap("invalid value for argument timeout", CATEGORY_ARGUMENT) from None
                row["_expires"] = repr(time.monotonic() + seconds)
                row["dynamic"] = "true"
            else:
                row.pop("_expires", None)
                row["dynamic"] = "false"

    def validate(self, row: Row, original: Row | None) -> None:
        row["address"] = normalise_list_address(row["address"])
        if not row["list"].strip():
            raise ApiTrap("missing value(s) of argument(s) list", CATEGORY_ARGUMENT)

    def computed(self, row: Row) -> dict[str, str]:
        values = {"creation-time": format_timestamp(float(row.get("_created", time.time())))}
        if "_expires" in row:
            values["timeout"] = format_duration(float(row["_expires"]) - time.monotonic())
        return values

    def exportable(self, row: Row) -> bool:
        return row.get("dynamic") != "true"

    def persisted_rows(self) -> list[Row]:
        # Dynamic (timed) entries live in RAM only on a real router and vanish on reboot.
        return [dict(row) for row in self.table.rows if row.get("dynamic") != "true"]

    def purge(self, now: float) -> bool:
        """Drop timed-out entries, and the entries of PPP sessions that ended (hung up or kicked)."""
        before = len(self.table.rows)
        live_sessions = {row[".id"] for row in self.router.state.table("ppp/active").rows}
        self.table.rows[:] = [
            row
            for row in self.table.rows
            if float(row.get("_expires", "inf")) > now and row.get("_session", "") in live_sessions | {""}
        ]
        return len(self.table.rows) != before

    def add_session_entry(self, list_name: str, address: str, session_id: str) -> bool:
        """A PPP session came up in a profile (or with a RADIUS reply) naming this list: RouterOS puts
        its address there as a dynamic entry that lives as long as the session. An entry already there
        (staff's own) is left as it is."""
        if any(row.get("list") == list_name and row.get("address") == address for row in self.table.rows):
            return False
        self.table.rows.append(
            {
                ".id": self.table.allocate_id(),
                "list": list_name,
                "address": address,
                **self.defaults,
                "dynamic": "true",
                "_created": repr(time.time()),
                "_session": session_id,
            }
        )
        return True


# -- /ip firewall filter and /ip firewall nat ----------------------------------------------------------

_FILTER_ACTIONS: Final = frozenset(
    {
        "accept",
        "drop",
        "reject",
        "jump",
        "return",
        "passthrough",
        "log",
        "tarpit",
        "fasttrack-connection",
        "add-src-to-address-list",
        "add-dst-to-address-list",
    }
)
_NAT_ACTIONS: Final = frozenset(
    {
        "accept",
        "dst-nat",
        "src-nat",
        "masquerade",
        "redirect",
        "netmap",
        "same",
        "return",
        "passthrough",
        "jump",
        "log",
        "add-src-to-address-list",
        "add-dst-to-address-list",
    }
)
_PROTOCOLS: Final = frozenset({"tcp", "udp", "icmp", "gre", "ipsec-esp", "ipsec-ah", "sctp", "dccp", "udp-lite"})
_PORT_PROTOCOLS: Final = frozenset({"tcp", "udp", "sctp", "dccp", "udp-lite", "6", "17"})
_NAME_RE: Final = re.compile(r"[^\s,]+")
_CONNECTION_STATES: Final = frozenset({"established", "related", "new", "invalid", "untracked"})


def _negated(value: str) -> tuple[bool, str]:
    """Matchers take a leading ``!`` for "not"."""
    return (True, value[1:]) if value.startswith("!") else (False, value)


def _port_spec(key: str, value: str) -> str:
    """``80``, ``8000-8080``, ``53,80,443`` (with an optional leading ``!``)."""
    negated, text = _negated(value.strip())
    parts: list[str] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        numbers = [low, high] if high else [low]
        if not all(number.isdigit() and 0 <= int(number) <= 65535 for number in numbers):
            raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT)
        if high and int(high) < int(low):
            raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT)
        parts.append(f"{int(low)}-{int(high)}" if high else str(int(low)))
    return ("!" if negated else "") + ",".join(parts)


def _address_spec(key: str, value: str) -> str:
    """An address, a network or a range (with an optional leading ``!``)."""
    negated, text = _negated(value.strip())
    try:
        if "-" in text:
            first, last = (ipaddress.IPv4Address(part.strip()) for part in text.split("-", 1))
            normal = f"{first}-{last}"
        elif "/" in text:
            network = ipaddress.IPv4Network(text, strict=False)
            normal = str(network.network_address) if network.num_addresses == 1 else str(network)
        else:
            normal = str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT) from None
    return ("!" if negated else "") + normal


class FirewallRuleMenu(TableMenu):
    """An ordered rule table: a rule's position is its meaning, so ``add`` appends, or inserts before
    the rule named by ``place-before``; ``print`` lists in table order."""

    actions: ClassVar[frozenset[str]] = frozenset()
    fields = (
        "chain",
        "action",
        "protocol",
        "src-address",
        "dst-address",
        "src-address-list",
        "dst-address-list",
        "src-port",
        "dst-port",
        "in-interface",
        "out-interface",
        "connection-state",
        "to-addresses",
        "to-ports",
        "jump-target",
        "log",
        "log-prefix",
        "bytes",
        "packets",
        "invalid",
        "dynamic",
        "disabled",
        "comment",
    )
    writable = frozenset(
        {
            "chain",
            "action",
            "protocol",
            "src-address",
            "dst-address",
            "src-address-list",
            "dst-address-list",
            "src-port",
            "dst-port",
            "in-interface",
            "out-interface",
            "connection-state",
            "jump-target",
            "log",
            "log-prefix",
            "disabled",
            "comment",
        }
    )
    defaults = {"action": "accept", "log": "false", "log-prefix": "", "disabled": "false", "invalid": "false"}
    booleans = frozenset({"disabled", "log", "invalid", "dynamic"})
    read_only = frozenset({"bytes", "packets", "invalid", "dynamic"})
    required = ("chain",)

    def computed(self, row: Row) -> dict[str, str]:
        return {"bytes": "0", "packets": "0", "dynamic": "false"}

    def validate(self, row: Row, original: Row | None) -> None:
        if not _NAME_RE.fullmatch(row.get("chain", "")):
            raise ApiTrap("missing value(s) of argument(s) chain", CATEGORY_ARGUMENT)
        if row.get("action", "accept") not in self.actions:
            raise ApiTrap("input does not match any value of action", CATEGORY_ARGUMENT)
        if row.get("action") == "jump" and not row.get("jump-target"):
            raise ApiTrap("failure: jump-target not specified")
        protocol = _negated(row.get("protocol", ""))[1]
        if protocol and protocol not in _PROTOCOLS and not (protocol.isdigit() and int(protocol) <= 255):
            raise ApiTrap("input does not match any value of protocol", CATEGORY_ARGUMENT)
        for key in ("src-port", "dst-port", "to-ports"):
            if row.get(key):
                row[key] = _port_spec(key, row[key])
        for key in ("src-port", "dst-port"):
            if row.get(key) and (row.get("protocol", "").startswith("!") or protocol not in _PORT_PROTOCOLS):
                raise ApiTrap(f"failure: {key} can be specified only for tcp, udp, sctp, dccp and udp-lite")
        for key in ("src-address", "dst-address", "to-addresses"):
            if row.get(key):
                row[key] = _address_spec(key, row[key])
        for key in ("src-address-list", "dst-address-list", "in-interface", "out-interface"):
            if row.get(key) and not _NAME_RE.fullmatch(_negated(row[key])[1]):
                raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT)
        states = [part for part in _negated(row.get("connection-state", ""))[1].split(",") if part]
        if any(state not in _CONNECTION_STATES for state in states):
            raise ApiTrap("input does not match any value of connection-state", CATEGORY_ARGUMENT)

    def export_lines(self, *, show_sensitive: bool, verbose: bool) -> list[str]:
        # A rule's action is always written out, default or not, as RouterOS does.
        baseline = {key: value for key, value in self.defaults.items() if key != "action"}
        return ["add " + self._export_args(row, baseline, show_sensitive, verbose) for row in self.table.rows]

    def cmd_add(self, command: Command) -> Result:
        attrs = dict(command.attrs)
        reference = attrs.pop("place-before", None)
        before: str | None = None
        if reference is not None:
            target = self.table.by_id(reference.strip())
            if target is None:
                raise ApiTrap("no such item", CATEGORY_MISSING)
            before = target[".id"]
        result = super().cmd_add(dataclasses.replace(command, attrs=attrs))
        if before is not None:
            rows = self.table.rows
            row = rows.pop()
            rows.insert(next(i for i, existing in enumerate(rows) if existing[".id"] == before), row)
            self._finish_write()
        return result


class FilterMenu(FirewallRuleMenu):
    menu = "ip/firewall/filter"
    section = "/ip firewall filter"
    actions = _FILTER_ACTIONS


class NatMenu(FirewallRuleMenu):
    menu = "ip/firewall/nat"
    section = "/ip firewall nat"
    actions = _NAT_ACTIONS
    writable = FirewallRuleMenu.writable | {"to-addresses", "to-ports"}
