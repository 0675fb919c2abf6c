"""What every menu shares: :class:`Menu` (a directory and its verbs) and :class:`TableMenu`, the
generic list menu (print with queries and ``.proplist``, add, set, unset, enable, disable, remove,
export) that the concrete menus tune with class attributes and hooks.

Menus reach the rest of the device only through :class:`MenuHost`, which the router implements,
so this package never imports the router.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar, Final, Protocol

from sonjog.network.routeros.emulator.command import Command, Result
from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, CATEGORY_MISSING, ApiTrap
from sonjog.network.routeros.emulator.query import evaluate_query
from sonjog.network.routeros.emulator.state import RouterState, Row, Table
from sonjog.network.routeros.emulator.values import export_quote, is_flag_set, parse_bool


class MenuHost(Protocol):
    """What a menu needs from the device it belongs to (implemented by the router)."""

    @property
    def state(self) -> RouterState: ...

    def changed(self, menu: str) -> None:
        """A menu's items changed: persist them if the menu is persistent."""

    def purge_expired(self) -> None:
        """Drop timed-out items before they are read or matched."""

    def profile_exists(self, name: str) -> bool: ...

    def resource(self) -> Row: ...

    def run_export(self, command: Command, menus: Sequence[Menu] | None) -> Result: ...


class Menu:
    """A menu directory and the commands it accepts."""

    menu: ClassVar[str]
    verbs: ClassVar[frozenset[str]]

    def __init__(self, router: MenuHost) -> None:
        self.router = router

    def execute(self, verb: str, command: Command) -> Result:
        handler = getattr(self, "cmd_" + verb.replace("-", "_"))
        result: Result = handler(command)
        return result


_PRINT_ARGUMENTS: Final = frozenset(
    {".proplist", "count-only", "detail", "without-paging", "terse", "brief", "stats", "value-list", "as-value"}
)
_TABLE_VERBS: Final = frozenset({"print", "getall", "add", "set", "remove", "enable", "disable", "unset", "export"})


class TableMenu(Menu):
    """Generic behaviour of a RouterOS list menu (add/set/remove/print...)."""

    section: ClassVar[str] = ""
    fields: ClassVar[tuple[str, ...]] = ()
    writable: ClassVar[frozenset[str]] = frozenset()
    defaults: ClassVar[Mapping[str, str]] = {}
    booleans: ClassVar[frozenset[str]] = frozenset({"disabled"})
    sensitive: ClassVar[frozenset[str]] = frozenset()
    read_only: ClassVar[frozenset[str]] = frozenset()
    name_field: ClassVar[str | None] = None
    unique: ClassVar[tuple[str, ...]] = ()
    duplicate_message: ClassVar[str] = "failure: item with the same name already exists"
    required: ClassVar[tuple[str, ...]] = ()
    verbs: ClassVar[frozenset[str]] = _TABLE_VERBS
    persistent: ClassVar[bool] = True

    @property
    def table(self) -> Table:
        return self.router.state.table(self.menu)

    # -- hooks -------------------------------------------------------------------------------

    def validate(self, row: Row, original: Row | None) -> None:
        """Normalise/validate a candidate row in place; raise ApiTrap to refuse it."""

    def prepare(self, row: Row, changes: Mapping[str, str], original: Row | None) -> None:
        """Derive internal keys from the changes (e.g. expiry from a timeout)."""

    def computed(self, row: Row) -> dict[str, str]:
        """Values computed at print time (uptime, remaining timeout...)."""
        return {}

    def check_remove(self, row: Row) -> None:
        """Raise ApiTrap when a row may not be removed."""

    def after_update(self, old: Row, new: Row) -> None:
        """Propagate a change to other tables (e.g. a renamed profile)."""

    def exportable(self, row: Row) -> bool:
        return True

    def persisted_rows(self) -> list[Row]:
        return [dict(row) for row in self.table.rows]

    # -- helpers -----------------------------------------------------------------------------

    def render(self, row: Row) -> Row:
        """The item as print shows it: ``.id`` first, known fields in menu order, no internals."""
        merged = {**row, **self.computed(row)}
        shown: Row = {".id": merged[".id"]}
        for key in self.fields:
            if key in merged:
                shown[key] = merged[key]
        for key, value in merged.items():
            if key not in shown and not key.startswith("_"):
                shown[key] = value
        return shown

    def rendered_rows(self) -> list[Row]:
        self.router.purge_expired()
        return [self.render(row) for row in self.table.rows]

    def _input(self, attrs: Mapping[str, str], *, skip: Iterable[str] = ()) -> Row:
        skipped = {".id", "numbers", *skip}
        values: Row = {}
        for key, value in attrs.items():
            if key in skipped or key.startswith("."):
                continue
            if key not in self.writable:
                raise ApiTrap(f"unknown parameter {key}", CATEGORY_ARGUMENT)
            values[key] = parse_bool(key, value) if key in self.booleans else value
        return values

    def _unique_key(self, row: Row) -> tuple[str, ...] | None:
        if not self.unique:
            return None
        return tuple(row.get(key, "") for key in self.unique)

    def _check_unique(self, candidates: Sequence[Row], replaced: Sequence[Row]) -> None:
        if not self.unique:
            return
        if len(candidates) == len(replaced) and all(
            self._unique_key(candidate) == self._unique_key(row)
            for candidate, row in zip(candidates, replaced, strict=True)
        ):
            return  # an update that keeps every key cannot create a duplicate; skip the table scan
        replaced_ids = {id(row) for row in replaced}
        seen = {self._unique_key(row) for row in self.table.rows if id(row) not in replaced_ids}
        for candidate in candidates:
            key = self._unique_key(candidate)
            if key in seen:
                raise ApiTrap(self.duplicate_message)
            seen.add(key)

    def resolve(self, command: Command) -> list[Row]:
        """Items named by ``=.id=`` or ``=numbers=`` (ids like ``*1F`` or names, comma separated)."""
        reference = command.attrs.get(".id", command.attrs.get("numbers"))
        if reference is None or not reference.strip():
            raise ApiTrap("missing value(s) of argument(s) numbers", CATEGORY_ARGUMENT)
        self.router.purge_expired()
        items: list[Row] = []
        for part in (piece.strip() for piece in reference.split(",")):
            row = self.table.by_id(part)
            if row is None and self.name_field is not None:
                row = next((r for r in self.table.rows if r.get(self.name_field) == part), None)
            if row is None:
                raise ApiTrap("no such item", CATEGORY_MISSING)
            if all(row is not existing for existing in items):
                items.append(row)
        return items

    def _finish_write(self) -> None:
        self.router.changed(self.menu)

    # -- commands ----------------------------------------------------------------------------

    def cmd_print(self, command: Command) -> Result:
        for key in command.attrs:
            if key not in _PRINT_ARGUMENTS and key not in (".id", "where", "follow-only", "interval"):
                raise ApiTrap(f"unknown parameter {key}", CATEGORY_ARGUMENT)
        booleans = self.booleans | {"dynamic", "default", "radius", "invalid"}
        self.router.purge_expired()
        source = self.table.rows
        # A print that starts with an exact name match (what a driver does per subscriber) only has to
        # render the rows with that name; rendering all of them made each lookup O(table size).
        first = command.queries[0] if command.queries else ""
        # Only a pure conjunction may be narrowed this way; `?#` operators can OR the first term away.
        if self.name_field is not None and not any(query.startswith("?#") for query in command.queries):
            for prefix in (f"?{self.name_field}=", f"?={self.name_field}="):
                if first.startswith(prefix):
                    wanted = first[len(prefix) :]
                    source = [row for row in source if row.get(self.name_field) == wanted]
                    break
        rows = [
            shown for shown in (self.render(row) for row in source) if evaluate_query(command.queries, shown, booleans)
        ]
        if is_flag_set(command.attrs, "count-only"):
            return Result(done={"ret": str(len(rows))})
        return Result(rows=apply_proplist(rows, command.attrs.get(".proplist")), listing=True)

    cmd_getall = cmd_print

    def cmd_add(self, command: Command) -> Result:
        changes = self._input(command.attrs)
        for key in self.required:
            if not changes.get(key, "").strip():
                raise ApiTrap(f"missing value(s) of argument(s) {key}", CATEGORY_ARGUMENT)
        row: Row = {**self.defaults, **changes}
        self.prepare(row, changes, None)
        self.validate(row, None)
        self._check_unique([row], [])
        row = {".id": self.table.allocate_id(), **row}
        self.table.rows.append(row)
        self._finish_write()
        return Result(done={"ret": row[".id"]})

    def _update(self, command: Command, changes: Row) -> Result:
        items = self.resolve(command)
        candidates: list[Row] = []
        for row in items:
            candidate = {**row, **changes}
            self.prepare(candidate, changes, row)
            self.validate(candidate, row)
            candidates.append(candidate)
        self._check_unique(candidates, items)
        for row, candidate in zip(items, candidates, strict=True):
            old = dict(row)
            row.clear()
            row.update(candidate)
            self.after_update(old, row)
        self._finish_write()
        return Result()

    def cmd_set(self, command: Command) -> Result:
        return self._update(command, self._input(command.attrs))

    def cmd_enable(self, command: Command) -> Result:
        self._input(command.attrs)
        return self._update(command, {"disabled": "false"})

    def cmd_disable(self, command: Command) -> Result:
        self._input(command.attrs)
        return self._update(command, {"disabled": "true"})

    def cmd_unset(self, command: Command) -> Result:
        names = [name.strip() for name in command.attrs.get("value-name", "").split(",") if name.strip()]
        if not names:
            raise ApiTrap("missing value(s) of argument(s) value-name", CATEGORY_ARGUMENT)
        for name in names:
            if name not in self.writable or name in self.required:
                raise ApiTrap(f"unknown parameter {name}", CATEGORY_ARGUMENT)
        items = self.resolve(command)
        for row in items:
            old = dict(row)
            for name in names:
                if name in self.defaults:
                    row[name] = self.defaults[name]
                else:
                    row.pop(name, None)
            self.prepare(row, dict.fromkeys(names, ""), old)
            self.after_update(old, row)
        self._finish_write()
        return Result()

    def cmd_remove(self, command: Command) -> Result:
        items = self.resolve(command)
        for row in items:
            self.check_remove(row)
        removed = {id(row) for row in items}
        self.table.rows[:] = [row for row in self.table.rows if id(row) not in removed]
        self._finish_write()
        return Result()

    def cmd_export(self, command: Command) -> Result:
        return self.router.run_export(command, [self])

    # -- export ------------------------------------------------------------------------------

    def export_lines(self, *, show_sensitive: bool, verbose: bool) -> list[str]:
        lines: list[str] = []
        for row in self.table.rows:
            if not self.exportable(row):
                continue
            lines.append("add " + self._export_args(row, self.defaults, show_sensitive, verbose))
        return lines

    def _export_args(self, row: Row, baseline: Mapping[str, str], show_sensitive: bool, verbose: bool) -> str:
        args: list[str] = []
        for key in sorted(k for k in row if not k.startswith((".", "_"))):
            if key in self.read_only or (key in self.sensitive and not show_sensitive):
                continue
            value = row[key]
            if not verbose and baseline.get(key) == value:
                continue
            if key in self.booleans:
                value = "yes" if value == "true" else "no"
            args.append(f"{key}={export_quote(value)}")
        return " ".join(args)


def apply_proplist(rows: list[Row], proplist: str | None) -> list[Row]:
    if proplist is None:
        return rows
    wanted = [name.strip() for name in proplist.split(",") if name.strip()]
    return [{key: row[key] for key in wanted if key in row} for row in rows]
