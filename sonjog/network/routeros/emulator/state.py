"""The router's data model: the rows of each menu (:class:`Table`) and everything else the
device knows (:class:`RouterState`). Plain data; the menus give it meaning and the router guards it
with one lock.
"""

from __future__ import annotations

import dataclasses
import time

from sonjog.network.routeros.emulator.values import format_id, parse_id

Row = dict[str, str]


@dataclasses.dataclass
class Table:
    """Rows of one menu; internal bookkeeping keys start with ``_`` and are never shown."""

    next_id: int = 1
    rows: list[Row] = dataclasses.field(default_factory=list)

    def by_id(self, item_id: str) -> Row | None:
        number = parse_id(item_id)
        if number is None:
            return None
        wanted = format_id(number)
        return next((row for row in self.rows if row[".id"] == wanted), None)

    def allocate_id(self) -> str:
        item_id = format_id(self.next_id)
        self.next_id += 1
        return item_id


@dataclasses.dataclass
class RouterState:
    """Everything the emulated router knows. Guard access with ``RouterOSEmulator.lock``."""

    tables: dict[str, Table]
    identity: str
    boot_monotonic: float = dataclasses.field(default_factory=time.monotonic)
    session_counter: int = 0
    resource_overrides: dict[str, str] = dataclasses.field(default_factory=dict)

    def table(self, menu: str) -> Table:
        return self.tables[menu]
