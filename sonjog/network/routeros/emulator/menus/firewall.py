"""``/ip firewall address-list``: entries by list and address, with optional timeouts after
which they vanish (and which never reach the saved configuration, as on a router).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, ApiTrap
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
        before = len(self.table.rows)
        self.table.rows[:] = [row for row in self.table.rows if float(row.get("_expires", "inf")) > now]
        return len(self.table.rows) != before
