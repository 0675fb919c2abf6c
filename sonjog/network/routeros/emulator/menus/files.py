"""``/file``: just enough for ``/export file=...`` and reading the file back over the API."""

from __future__ import annotations

import time
from collections.abc import Mapping

from sonjog.network.routeros.emulator.errors import ApiTrap
from sonjog.network.routeros.emulator.menus.base import TableMenu
from sonjog.network.routeros.emulator.state import Row
from sonjog.network.routeros.emulator.values import format_timestamp


class FileMenu(TableMenu):
    """Just enough of ``/file`` for ``/export file=...`` followed by reading the file back."""

    menu = "file"
    section = ""
    fields = ("name", "type", "size", "creation-time", "contents")
    writable = frozenset({"name", "contents"})
    defaults = {"contents": ""}
    booleans = frozenset()
    name_field = "name"
    unique = ("name",)
    duplicate_message = "failure: file already exists"
    required = ("name",)
    verbs = frozenset({"print", "getall", "add", "set", "remove"})

    def prepare(self, row: Row, changes: Mapping[str, str], original: Row | None) -> None:
        if original is not None and "name" in changes and changes["name"] != original["name"]:
            raise ApiTrap("failure: can not rename file")
        if original is None:
            row["_created"] = repr(time.time())
        row["size"] = str(len(row.get("contents", "").encode("utf-8", "surrogateescape")))
        row["type"] = _file_type(row["name"])

    def computed(self, row: Row) -> dict[str, str]:
        return {"creation-time": format_timestamp(float(row.get("_created", time.time())))}

    def exportable(self, row: Row) -> bool:
        return False

    def write_file(self, name: str, contents: str) -> None:
        """Create or overwrite a file, as ``/export file=...`` does."""
        existing = next((row for row in self.table.rows if row["name"] == name), None)
        if existing is None:
            row: Row = {"name": name, "contents": contents}
            self.prepare(row, row, None)
            self.table.rows.append({".id": self.table.allocate_id(), **row})
        else:
            existing["contents"] = contents
            self.prepare(existing, {"contents": contents}, existing)
        self._finish_write()


def _file_type(name: str) -> str:
    if name.endswith(".rsc"):
        return "script"
    if name.endswith(".backup"):
        return "backup"
    return "file"
