"""A RouterOS API server emulator speaking the real MikroTik wire protocol.

It exists so that provisioning code (secrets, profiles, address lists, kicking sessions) can be
tested end to end with an unmodified client library, and so that demos work without a router.
The emulator models the handful of menus an ISP billing system touches; replies follow what a
RouterOS 7 device sends (reply words, trap messages, ``.id`` format, ``true``/``false`` values).

Deliberate properties:

* it only ever binds 127.0.0.1; it is a test double, not something to expose;
* one thread per client connection, one lock around the whole device model, so commands from
  concurrent clients are serialised exactly like a single router CPU would apply them;
* faults (refused connections, slow replies, replies cut mid-sentence) can be switched on and
  off at run time from the test that drives a client.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hmac
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Final, NamedTuple, TextIO

from sonjog.network.routeros import protocol

LOG = logging.getLogger(__name__)

ALLOWED_HOST: Final = "127.0.0.1"
DEFAULT_VERSION: Final = "7.16.2 (stable)"
STATE_FORMAT: Final = 1
_PRELOGIN_COMMAND_LIMIT: Final = 3
_TLS_HANDSHAKE_TIMEOUT: Final = 5.0
_DEFAULT_MAX_WORD: Final = 32 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Errors and small value helpers
# --------------------------------------------------------------------------------------------


class ApiTrap(Exception):
    """A command failed; becomes one or more ``!trap`` sentences followed by ``!done``."""

    def __init__(
        self,
        message: str,
        category: int | None = None,
        *,
        extra: Sequence[tuple[str, int | None]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.traps: list[tuple[str, int | None]] = [(message, category), *extra]


# RouterOS trap categories, as documented for the API.
CATEGORY_MISSING: Final = 0  # missing item or command
CATEGORY_ARGUMENT: Final = 1  # argument value failure
CATEGORY_INTERRUPTED: Final = 2  # execution of command interrupted
CATEGORY_SCRIPTING: Final = 3
CATEGORY_GENERAL: Final = 4
CATEGORY_API: Final = 5


def format_id(number: int) -> str:
    return f"*{number:X}"


def parse_id(text: str) -> int | None:
    if not text.startswith("*"):
        return None
    try:
        return int(text[1:], 16)
    except ValueError:
        return None


_TRUE_WORDS: Final = frozenset({"yes", "true"})
_FALSE_WORDS: Final = frozenset({"no", "false"})


def parse_bool(key: str, value: str) -> str:
    """Accept the spellings clients send (librouteros sends yes/no) and store RouterOS 7's form."""
    lowered = value.strip().lower()
    if lowered in _TRUE_WORDS or lowered == "":
        return "true"
    if lowered in _FALSE_WORDS:
        return "false"
    raise ApiTrap(f"input does not match any value of {key}", CATEGORY_ARGUMENT)


def is_flag_set(attrs: Mapping[str, str], key: str) -> bool:
    """Flag-style arguments (``=verbose=``) are on when present, unless explicitly no/false."""
    if key not in attrs:
        return False
    return attrs[key].strip().lower() not in _FALSE_WORDS


_DURATION_UNITS: Final = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_CLOCK_RE: Final = re.compile(r"(?:(\d+)d\s*)?(\d+):(\d{1,2}):(\d{1,2})(?:\.\d+)?")
_UNIT_RE: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")


def parse_duration(text: str) -> float:
    """Parse RouterOS time values: ``300``, ``5m``, ``1h30m``, ``1w2d``, ``00:05:00``, ``1d 02:00:00``."""
    value = text.strip()
    if not value:
        raise ValueError("empty duration")
    if value.isdigit():
        return float(value)
    clock = _CLOCK_RE.fullmatch(value)
    if clock:
        days, hours, minutes, seconds = (int(part) if part else 0 for part in clock.groups())
        return days * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds
    compact = value.replace(" ", "")
    pieces = _UNIT_RE.findall(compact)
    if not pieces or "".join(number + unit for number, unit in pieces) != compact:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in pieces)


def format_duration(seconds: float) -> str:
    """Format like RouterOS 7 prints uptime/timeout: ``1w2d3h4m5s``, ``0s`` for nothing."""
    remaining = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_timestamp(epoch: float) -> str:
    # RouterOS 7.10+ prints dates as ISO "YYYY-MM-DD HH:MM:SS" in router local time.
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


_EXPORT_PLAIN: Final = re.compile(r"[A-Za-z0-9_.:/+*@,%!-]+")
_EXPORT_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "$": "\\$", "?": "\\?", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def export_quote(value: str) -> str:
    """Quote a value the way /export does: bare when safe, else quoted with ``\\XX`` byte escapes."""
    if _EXPORT_PLAIN.fullmatch(value):
        return value
    out: list[str] = []
    for char in value:
        if char in _EXPORT_ESCAPES:
            out.append(_EXPORT_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            # Non-ASCII and control characters are written byte by byte, as RouterOS does.
            out.extend(f"\\{byte:02X}" for byte in char.encode("utf-8", "surrogateescape"))
    return '"' + "".join(out) + '"'


def _validate_ipv4(key: str, value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT) from None


_POOL_NAME_RE: Final = re.compile(r"[^\s,]+")
_RATE_RE: Final = re.compile(r"\d+(?:\.\d+)?[kKMG]?")
_HOSTNAME_RE: Final = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*")


def validate_rate_limit(value: str) -> str:
    """Check the shape ``rx[/tx] [burst-rx[/tx] [threshold [time [priority [min]]]]]``."""
    tokens = value.split()
    if not tokens or len(tokens) > 6:
        raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
    for index, token in enumerate(tokens):
        halves = token.split("/")
        if len(halves) > 2:
            raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
        for half in halves:
            if index == 3:
                try:
                    parse_duration(half)
                except ValueError:
                    raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT) from None
            elif index == 4:
                if not (half.isdigit() and 1 <= int(half) <= 8):
                    raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
            elif not _RATE_RE.fullmatch(half):
                raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
    return " ".join(tokens)


def normalise_list_address(value: str) -> str:
    """Address-list entries accept an address, a network, a range or a DNS name."""
    text = value.strip()
    try:
        if "-" in text and not _HOSTNAME_RE.fullmatch(text):
            first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
            return f"{first}-{last}"
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            if network.num_addresses == 1:
                return str(network.network_address)
            return str(network)
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _HOSTNAME_RE.fullmatch(text) and not text.replace(".", "").isdigit():
        return text
    raise ApiTrap("invalid value for argument address", CATEGORY_ARGUMENT)


# --------------------------------------------------------------------------------------------
# Commands, results, queries
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Command:
    """One parsed API sentence."""

    path: str
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)
    queries: list[str] = dataclasses.field(default_factory=list)
    tag: str | None = None
    unknown_words: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def parse(cls, words: Sequence[str]) -> Command:
        command = cls(path=words[0])
        for word in words[1:]:
            if word.startswith("="):
                key, value = protocol.parse_attribute_word(word)
                command.attrs[key] = value
            elif word.startswith("?"):
                command.queries.append(word)
            elif word.startswith(".tag="):
                command.tag = word[len(".tag=") :]
            elif word.startswith("."):
                # Other API attributes (e.g. ".proplist" sent without "=") are tolerated.
                key, _, value = word.partition("=")
                command.attrs[key] = value
            else:
                command.unknown_words.append(word)
        return command

    @property
    def segments(self) -> list[str]:
        return [segment for segment in self.path.strip("/").split("/") if segment]


@dataclasses.dataclass
class Result:
    rows: list[dict[str, str]] = dataclasses.field(default_factory=list)
    done: dict[str, str] = dataclasses.field(default_factory=dict)
    # True for commands that list data: with ``empty_reply`` an empty list yields "!empty".
    listing: bool = False


class LoggedCommand(NamedTuple):
    """What a client sent: the command path and its ``=key=value`` (and ``.id``-style) attributes."""

    path: str
    attributes: dict[str, str]


def _sign(difference: float) -> int:
    return (difference > 0) - (difference < 0)


def _compare_values(left: str, right: str) -> int:
    """Order values as RouterOS does for ?< and ?>: numbers, addresses and times by value."""
    with contextlib.suppress(ValueError):
        return _sign(int(left) - int(right))
    with contextlib.suppress(ValueError):
        a, b = ipaddress.ip_address(left), ipaddress.ip_address(right)
        if a.version == b.version:
            return _sign(int(a) - int(b))
    with contextlib.suppress(ValueError):
        return _sign(parse_duration(left) - parse_duration(right))
    return (left > right) - (left < right)


def evaluate_query(queries: Sequence[str], row: Mapping[str, str], booleans: Iterable[str] = ()) -> bool:
    """Evaluate RouterOS query words against one item.

    Every word pushes a boolean or, for ``?#``, rewrites the stack; the item matches when every
    value left on the stack is true (an empty stack matches everything).
    """
    boolean_keys = frozenset(booleans)
    stack: list[bool] = []

    def normalise(key: str, value: str) -> str:
        if key in boolean_keys and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
            return "true" if value.strip().lower() in _TRUE_WORDS else "false"
        if key == ".id":
            number = parse_id(value)
            return format_id(number) if number is not None else value
        return value

    def pop() -> bool:
        if not stack:
            raise ApiTrap("invalid query", CATEGORY_ARGUMENT)
        return stack.pop()

    for word in queries:
        body = word[1:]
        if body.startswith("#"):
            _apply_query_operations(stack, body[1:], pop)
        elif body.startswith("-"):
            stack.append(body[1:] not in row)
        elif body[:1] in ("<", ">"):
            key, sep, value = body[1:].partition("=")
            if not sep or key not in row:
                stack.append(False)
                continue
            order = _compare_values(row[key], normalise(key, value))
            stack.append(order < 0 if body[0] == "<" else order > 0)
        elif "=" in body:
            # "?=name=value" and the older "?name=value" mean the same thing.
            key, _, value = (body[1:] if body.startswith("=") else body).partition("=")
            stack.append(key in row and row[key] == normalise(key, value))
        else:
            stack.append(body in row)
    return all(stack)


def _apply_query_operations(stack: list[bool], operations: str, pop: Callable[[], bool]) -> None:
    position = 0
    while position < len(operations):
        char = operations[position]
        if char.isdigit():
            end = position
            while end < len(operations) and operations[end].isdigit():
                end += 1
            index = int(operations[position:end])
            if index >= len(stack):
                raise ApiTrap("invalid query", CATEGORY_ARGUMENT)
            value = stack[-1 - index]
            if end == len(operations):
                # An index ending the word replaces the whole stack with that value.
                stack[:] = [value]
            else:
                stack.append(value)
                if operations[end] == ".":
                    end += 1  # "." right after an index is a no-op separator
            position = end
            continue
        if char == "!":
            stack.append(not pop())
        elif char == "&":
            right, left = pop(), pop()
            stack.append(left and right)
        elif char == "|":
            right, left = pop(), pop()
            stack.append(left or right)
        elif char == ".":
            top = pop()
            stack.extend((top, top))
        else:
            raise ApiTrap("invalid query", CATEGORY_ARGUMENT)
        position += 1


# --------------------------------------------------------------------------------------------
# Device model
# --------------------------------------------------------------------------------------------

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


class _Menu:
    """A menu directory and the commands it accepts."""

    menu: ClassVar[str]
    verbs: ClassVar[frozenset[str]]

    def __init__(self, router: Router) -> None:
        self.router = router

    def execute(self, verb: str, command: Command) -> Result:
        handler = getattr(self, "cmd_" + verb.replace("-", "_"))
        result: Result = handler(command)
        return result


_PRINT_ARGUMENTS: Final = frozenset(
    {".proplist", "count-only", "detail", "without-paging", "terse", "brief", "stats", "value-list", "as-value"}
)
_TABLE_VERBS: Final = frozenset({"print", "getall", "add", "set", "remove", "enable", "disable", "unset", "export"})


class _TableMenu(_Menu):
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
        return Result(rows=_apply_proplist(rows, command.attrs.get(".proplist")), listing=True)

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


def _apply_proplist(rows: list[Row], proplist: str | None) -> list[Row]:
    if proplist is None:
        return rows
    wanted = [name.strip() for name in proplist.split(",") if name.strip()]
    return [{key: row[key] for key in wanted if key in row} for row in rows]


_PPP_SERVICES: Final = frozenset({"any", "async", "l2tp", "ovpn", "pppoe", "pptp", "sstp"})
_TRISTATE: Final = frozenset({"yes", "no", "default"})


class SecretMenu(_TableMenu):
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
                row[key] = _validate_ipv4(key, row[key])
        for key in ("limit-bytes-in", "limit-bytes-out"):
            if not row[key].isdigit():
                raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT)


class ProfileMenu(_TableMenu):
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
            servers = [_validate_ipv4("dns-server", part) for part in row["dns-server"].split(",")]
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


class ActiveMenu(_TableMenu):
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


class AddressListMenu(_TableMenu):
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


class FileMenu(_TableMenu):
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


class ResourceMenu(_Menu):
    menu = "system/resource"
    verbs = frozenset({"print", "getall"})

    def cmd_print(self, command: Command) -> Result:
        row = self.router.resource()
        if not evaluate_query(command.queries, row):
            return Result(listing=True)
        return Result(rows=_apply_proplist([row], command.attrs.get(".proplist")), listing=True)

    cmd_getall = cmd_print


class IdentityMenu(_Menu):
    menu = "system/identity"
    verbs = frozenset({"print", "getall", "set", "export"})

    def cmd_print(self, command: Command) -> Result:
        row = {"name": self.router.state.identity}
        return Result(rows=_apply_proplist([row], command.attrs.get(".proplist")), listing=True)

    cmd_getall = cmd_print

    def cmd_set(self, command: Command) -> Result:
        for key in command.attrs:
            if key != "name":
                raise ApiTrap(f"unknown parameter {key}", CATEGORY_ARGUMENT)
        name = command.attrs.get("name", "")
        if not name:
            raise ApiTrap("missing value(s) of argument(s) name", CATEGORY_ARGUMENT)
        self.router.state.identity = name
        self.router.changed("system/identity")
        return Result()

    def cmd_export(self, command: Command) -> Result:
        return self.router.run_export(command, [self])

    def export_lines(self, *, show_sensitive: bool, verbose: bool) -> list[str]:
        identity = self.router.state.identity
        return [f"set name={export_quote(identity)}"] if verbose or identity != "MikroTik" else []


# Sections in the order a RouterOS export lists them.
_EXPORT_ORDER: Final = ("ppp/profile", "ip/firewall/address-list", "ppp/secret", "system/identity")
_EXPORT_SECTIONS: Final = {
    "ppp/profile": "/ppp profile",
    "ip/firewall/address-list": "/ip firewall address-list",
    "ppp/secret": "/ppp secret",
    "system/identity": "/system identity",
}


class Router:
    """The emulated device: state, menus and command execution (no networking)."""

    def __init__(
        self,
        *,
        identity: str,
        version: str = DEFAULT_VERSION,
        state_file: Path | None = None,
        inline_export: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.version = version
        self.state_file = state_file
        self.inline_export = inline_export
        self.state = self._fresh_state(identity)
        self.menus: dict[str, _Menu] = {}
        for menu_class in (
            SecretMenu,
            ProfileMenu,
            ActiveMenu,
            AddressListMenu,
            FileMenu,
            ResourceMenu,
            IdentityMenu,
        ):
            menu = menu_class(self)
            self.menus[menu.menu] = menu
        self.directories: frozenset[str] = frozenset(
            "/".join(parts[:depth])
            for parts in (menu.split("/") for menu in self.menus)
            for depth in range(1, len(parts) + 1)
        )
        if state_file is not None and state_file.exists():
            self.load()

    @staticmethod
    def _fresh_state(identity: str) -> RouterState:
        tables = {
            "ppp/secret": Table(),
            "ppp/profile": Table(next_id=1, rows=ProfileMenu.builtin_rows()),
            "ppp/active": Table(),
            "ip/firewall/address-list": Table(),
            "file": Table(),
        }
        return RouterState(tables=tables, identity=identity)

    # -- persistence -------------------------------------------------------------------------

    def changed(self, menu: str) -> None:
        if self.state_file is None:
            return
        persistent = menu == "system/identity" or getattr(self.menus.get(menu), "persistent", False)
        if persistent:
            self.save()

    def snapshot(self) -> dict[str, Any]:
        tables: dict[str, Any] = {}
        for name, menu in self.menus.items():
            if isinstance(menu, _TableMenu) and menu.persistent:
                tables[name] = {"next_id": menu.table.next_id, "rows": menu.persisted_rows()}
        return {"format": STATE_FORMAT, "identity": self.state.identity, "tables": tables}

    def save(self) -> None:
        """Write the configuration atomically: a crash leaves either the old or the new file."""
        if self.state_file is None:
            return
        with self.lock:
            data = json.dumps(self.snapshot(), ensure_ascii=False, indent=1)
            target = self.state_file
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp_name, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name)
                raise

    def load(self) -> None:
        assert self.state_file is not None
        with self.lock:
            try:
                data = json.loads(self.state_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read RouterOS emulator state {self.state_file}: {exc}") from exc
            if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
                raise ValueError(f"{self.state_file} is not a RouterOS emulator state file")
            self.state.identity = str(data.get("identity", self.state.identity))
            for name, stored in dict(data.get("tables", {})).items():
                if name not in self.state.tables:
                    continue
                rows = [{str(k): str(v) for k, v in dict(row).items()} for row in stored.get("rows", [])]
                self.state.tables[name] = Table(next_id=int(stored.get("next_id", 1)), rows=rows)

    # -- helpers used by menus ---------------------------------------------------------------

    def profile_exists(self, name: str) -> bool:
        return any(row.get("name") == name for row in self.state.table("ppp/profile").rows)

    def purge_expired(self) -> None:
        menu = self.menus["ip/firewall/address-list"]
        assert isinstance(menu, AddressListMenu)
        menu.purge(time.monotonic())

    def resource(self) -> Row:
        uptime = time.monotonic() - self.state.boot_monotonic
        row = {
            "uptime": format_duration(uptime),
            "version": self.version,
            "build-time": "2024-12-05 10:28:36",
            "factory-software": "7.1",
            "free-memory": "912261120",
            "total-memory": "1073741824",
            "cpu": "QEMU",
            "cpu-count": "1",
            "cpu-frequency": "2400",
            "cpu-load": "1",
            "free-hdd-space": "84156416",
            "total-hdd-space": "134217728",
            "write-sect-since-reboot": "1024",
            "write-sect-total": "4096",
            "architecture-name": "x86_64",
            "board-name": "CHR",
            "platform": "MikroTik",
        }
        row.update(self.state.resource_overrides)
        return row

    def export_text(
        self,
        menus: Sequence[str] | None = None,
        *,
        show_sensitive: bool = False,
        verbose: bool = False,
        terse: bool = False,
    ) -> str:
        with self.lock:
            self.purge_expired()
            version_number = self.version.split()[0]
            lines = [f"# {format_timestamp(time.time())} by RouterOS {version_number}", "#"]
            for name in _EXPORT_ORDER:
                if menus is not None and name not in menus:
                    continue
                menu = self.menus[name]
                assert isinstance(menu, _TableMenu | IdentityMenu)
                section_lines = menu.export_lines(show_sensitive=show_sensitive, verbose=verbose)
                if not section_lines:
                    continue
                header = _EXPORT_SECTIONS[name]
                if terse:
                    lines.extend(f"{header} {line}" for line in section_lines)
                else:
                    lines.append(header)
                    lines.extend(section_lines)
            return "\n".join(lines) + "\n"

    def run_export(self, command: Command, menus: Sequence[_Menu] | None) -> Result:
        allowed = {"file", "compact", "verbose", "terse", "show-sensitive", "hide-sensitive"}
        for key in command.attrs:
            if key not in allowed:
                raise ApiTrap(f"unknown parameter {key}", CATEGORY_ARGUMENT)
        text = self.export_text(
            [menu.menu for menu in menus] if menus is not None else None,
            show_sensitive=is_flag_set(command.attrs, "show-sensitive"),
            verbose=is_flag_set(command.attrs, "verbose"),
            terse=is_flag_set(command.attrs, "terse"),
        )
        file_name = command.attrs.get("file", "").strip()
        if file_name:
            if not file_name.endswith(".rsc"):
                file_name += ".rsc"
            file_menu = self.menus["file"]
            assert isinstance(file_menu, FileMenu)
            file_menu.write_file(file_name, text)
            return Result()
        # A real router writes nothing back to an API client for a plain /export.
        if self.inline_export:
            return Result(done={"ret": text})
        return Result()

    # -- command execution -------------------------------------------------------------------

    def resolve(self, command: Command) -> tuple[_Menu | None, str]:
        """Find the menu and verb, raising the traps RouterOS sends for unknown paths."""
        segments = command.segments
        if not segments:
            raise _unknown_path("")
        *directory, verb = segments
        for depth in range(1, len(directory) + 1):
            if "/".join(directory[:depth]) not in self.directories:
                raise _unknown_path(directory[depth - 1])
        menu_name = "/".join(directory)
        if not directory:
            if verb in ("login", "quit", "cancel", "export"):
                return None, verb
            raise _unknown_path(verb)
        menu = self.menus.get(menu_name)
        if menu is None or verb not in menu.verbs:
            raise _unknown_path(verb)
        return menu, verb

    def execute(self, command: Command) -> Result:
        """Run a command that needs no connection context (everything except login/quit/cancel)."""
        if command.unknown_words:
            raise ApiTrap("unknown parameter", CATEGORY_ARGUMENT)
        menu, verb = self.resolve(command)
        with self.lock:
            if menu is None:
                if verb == "export":
                    return self.run_export(command, None)
                if verb == "cancel":
                    return Result()
                raise _unknown_path(verb)
            return menu.execute(verb, command)


def _unknown_path(segment: str) -> ApiTrap:
    return ApiTrap(
        f"no such command or directory ({segment})",
        CATEGORY_MISSING,
        extra=[("no such command prefix", None)],
    )


# --------------------------------------------------------------------------------------------
# Networking
# --------------------------------------------------------------------------------------------


def _encode_reply(sentences: Sequence[Sequence[str]], encoding: str) -> list[bytes]:
    return [protocol.encode_sentence(sentence, encoding) for sentence in sentences]


class _Listener:
    """One listening socket plus the thread accepting on it; can be closed and reopened."""

    def __init__(self, emulator: RouterOSEmulator, port: int, tls: bool) -> None:
        self.emulator = emulator
        self.port = port
        self.tls = tls
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Needed to rebind the same port right after "refusing" while old connections linger.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ALLOWED_HOST, self.port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.sock = sock
        kind = "api-ssl" if self.tls else "api"
        self.thread = threading.Thread(
            target=self._accept_loop, args=(sock,), name=f"routeros-emulator-{kind}-{self.port}", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        sock, thread = self.sock, self.thread
        self.sock, self.thread = None, None
        if sock is None:
            return
        # shutdown() takes the socket out of LISTEN at once and wakes the blocked accept();
        # close() alone would leave it listening until accept() returned.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _accept_loop(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            self.emulator._spawn_connection(conn, peer, self.tls)


class _Connection:
    def __init__(self, emulator: RouterOSEmulator, sock: socket.socket, peer: Any, tls: bool) -> None:
        self.emulator = emulator
        self.sock = sock
        self.peer = peer
        self.tls = tls
        self.logged_in = False
        self.username: str | None = None
        self.prelogin_commands = 0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"routeros-emulator-conn-{peer}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._handshake()
            self._serve()
        except (OSError, protocol.ProtocolError, ssl.SSLError) as exc:
            LOG.debug("connection %s ended: %s", self.peer, exc)
        finally:
            self._close()
            self.emulator._forget_connection(self)

    def _handshake(self) -> None:
        if isinstance(self.sock, ssl.SSLSocket):
            self.sock.settimeout(_TLS_HANDSHAKE_TIMEOUT)
            self.sock.do_handshake()
            self.sock.settimeout(None)

    def _close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            with contextlib.suppress(OSError):
                self.sock.close()

    def shutdown(self) -> None:
        """Called from other threads: wakes the blocked recv() so the thread ends."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def abort(self) -> None:
        """Close with a TCP reset, like a router that crashed or lost the link mid-reply."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close()

    # -- protocol loop -----------------------------------------------------------------------

    def _serve(self) -> None:
        emulator = self.emulator
        stream = protocol.SentenceStream(
            self.sock, encoding=emulator.encoding, max_word_length=emulator.max_word_length
        )
        while not self.closed.is_set():
            try:
                words = stream.read_sentence()
            except protocol.ConnectionClosed:
                return
            if not words:
                continue  # the API ignores empty sentences
            command = Command.parse(words)
            emulator._log_command(command)
            sentences, close_after = self._respond(command)
            if not self._send(command, sentences):
                return
            if close_after:
                return

    def _send(self, command: Command, sentences: list[list[str]]) -> bool:
        emulator = self.emulator
        delay = emulator.reply_delay
        if delay > 0 and emulator._stopping.wait(delay):
            return False
        encoded = _encode_reply(sentences, emulator.encoding)
        if command.path != "/login" and emulator._take_drop():
            self.sock.sendall(b"".join(encoded)[: _cut_point(encoded)])
            self.abort()
            return False
        self.sock.sendall(b"".join(encoded))
        return True

    def _respond(self, command: Command) -> tuple[list[list[str]], bool]:
        tag = [f".tag={command.tag}"] if command.tag is not None else []
        path = command.path
        if path == "/quit":
            return [["!fatal", "session terminated on request", *tag]], True
        if path == "/login":
            return self._login(command, tag), False
        if not self.logged_in:
            self.prelogin_commands += 1
            if self.prelogin_commands >= _PRELOGIN_COMMAND_LIMIT:
                return [["!fatal", "not logged in", *tag]], True
            return [["!trap", "=message=not logged in", *tag], ["!done", *tag]], False
        try:
            result = self.emulator.router.execute(command)
        except ApiTrap as trap:
            return _trap_sentences(trap, tag), False
        sentences: list[list[str]] = []
        for row in result.rows:
            sentences.append(["!re", *(protocol.attribute_word(k, v) for k, v in row.items()), *tag])
        if result.listing and not result.rows and self.emulator.empty_reply:
            sentences.append(["!empty", *tag])
        sentences.append(["!done", *(protocol.attribute_word(k, v) for k, v in result.done.items()), *tag])
        return sentences, False

    def _login(self, command: Command, tag: list[str]) -> list[list[str]]:
        name = command.attrs.get("name", "")
        password = command.attrs.get("password", "")
        if self.emulator._check_credentials(name, password):
            self.logged_in = True
            self.username = name
            return [["!done", *tag]]
        return [["!trap", "=message=invalid user name or password (6)", *tag], ["!done", *tag]]


def _cut_point(encoded: Sequence[bytes]) -> int:
    """Where to cut a reply: after the first sentence and half of the next, or mid-sentence.

    Either way the client has started parsing and then sees the stream die, which is the
    nastiest case for a client's error handling.
    """
    if len(encoded) > 1:
        return len(encoded[0]) + max(1, len(encoded[1]) // 2)
    return max(1, len(encoded[0]) // 2)


def _trap_sentences(trap: ApiTrap, tag: list[str]) -> list[list[str]]:
    sentences: list[list[str]] = []
    for message, category in trap.traps:
        words = ["!trap"]
        if category is not None:
            words.append(f"=category={category}")
        words.append(f"=message={message}")
        sentences.append([*words, *tag])
    sentences.append(["!done", *tag])
    return sentences


class RouterOSEmulator:
    """A RouterOS API (and optionally API-SSL) server on 127.0.0.1 backed by an in-memory router.

    >>> emu = RouterOSEmulator(password="secret").start()
    >>> emu.port  # the actual port when 0 was requested
    ...
    >>> emu.stop()
    """

    def __init__(
        self,
        host: str = ALLOWED_HOST,
        port: int = 0,
        tls_port: int | None = None,
        username: str = "admin",
        password: str = "",
        state_file: str | os.PathLike[str] | None = None,
        identity: str = "emulated",
        *,
        empty_reply: bool = False,
        inline_export: bool = False,
        version: str = DEFAULT_VERSION,
        encoding: str = protocol.DEFAULT_ENCODING,
        max_word_length: int = _DEFAULT_MAX_WORD,
    ) -> None:
        if host != ALLOWED_HOST:
            raise ValueError(f"the RouterOS emulator only binds {ALLOWED_HOST}, not {host!r}")
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.username = username
        self.password = password
        self.empty_reply = empty_reply
        self.encoding = encoding
        self.max_word_length = max_word_length
        self.state_file = Path(state_file) if state_file is not None else None
        self.router = Router(
            identity=identity, version=version, state_file=self.state_file, inline_export=inline_export
        )
        self._users: dict[str, str] = {username: password}
        # _lifecycle serialises start/stop/refuse (which join threads); _control guards the
        # small shared fields and is never held while joining, so accept threads can't deadlock.
        self._lifecycle = threading.Lock()
        self._control = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None
        self._listeners: list[_Listener] = []
        self._connections: set[_Connection] = set()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._refusing = False
        self._reply_delay = 0.0
        self._drops_pending = 0
        self._command_log: list[LoggedCommand] = []
        self._total_connections = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    def start(self) -> RouterOSEmulator:
        """Bind and start accepting in background threads; returns self for chaining."""
        with self._lifecycle:
            if self.running:
                raise RuntimeError("emulator already running")
            self._stopping.clear()
            listeners = [_Listener(self, self.port, tls=False)]
            if self.tls_port is not None:
                listeners.append(_Listener(self, self.tls_port, tls=True))
                self._ssl_context = _server_ssl_context()
            opened: list[_Listener] = []
            try:
                for listener in listeners:
                    listener.open()
                    opened.append(listener)
            except OSError:
                for listener in opened:
                    listener.close()
                raise
            self._listeners = listeners
            self.port = listeners[0].port
            if self.tls_port is not None:
                self.tls_port = listeners[1].port
            with self._control:
                self._refusing = False
            self._stopped.clear()
            LOG.info("RouterOS emulator listening on %s", self.describe())
        return self

    def stop(self) -> None:
        """Stop listening, drop every client and wait for the worker threads."""
        with self._lifecycle:
            if not self.running:
                return
            self._stopping.set()
            for listener in self._listeners:
                listener.close()
            self._join_connections()
            self._stopped.set()

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`stop` is called, e.g. from a signal handler."""
        if not self.running:
            self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> RouterOSEmulator:
        return self.start() if not self.running else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def describe(self) -> str:
        where = f"{self.host}:{self.port} (api)"
        if self.tls_port is not None:
            where += f", {self.host}:{self.tls_port} (api-ssl)"
        return where

    # -- connection bookkeeping (called by listener/connection threads) ------------------------

    def _spawn_connection(self, sock: socket.socket, peer: Any, tls: bool) -> None:
        with self._control:
            if self._stopping.is_set() or self._refusing:
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                assert self._ssl_context is not None
                sock = self._ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            connection = _Connection(self, sock, peer, tls)
            self._connections.add(connection)
            self._total_connections += 1
            # Started under the lock so nobody can snapshot and join a thread not yet started.
            connection.thread.start()

    def _forget_connection(self, connection: _Connection) -> None:
        with self._control:
            self._connections.discard(connection)

    def _check_credentials(self, name: str, password: str) -> bool:
        with self._control:
            expected = self._users.get(name)
        return expected is not None and hmac.compare_digest(
            expected.encode("utf-8", "surrogateescape"), password.encode("utf-8", "surrogateescape")
        )

    def _log_command(self, command: Command) -> None:
        attributes = dict(command.attrs)
        if command.path == "/login" and "password" in attributes:
            attributes["password"] = "***"
        if command.tag is not None:
            attributes[".tag"] = command.tag
        with self._control:
            self._command_log.append(LoggedCommand(command.path, attributes))

    def _take_drop(self) -> bool:
        with self._control:
            if self._drops_pending > 0:
                self._drops_pending -= 1
                return True
            return False

    @property
    def connection_count(self) -> int:
        """Client connections currently open."""
        with self._control:
            return len(self._connections)

    @property
    def total_connections(self) -> int:
        """Client connections accepted since construction."""
        with self._control:
            return self._total_connections

    # -- fault injection ---------------------------------------------------------------------

    def refuse_connections(self, refuse: bool = True, *, drop_existing: bool = False) -> None:
        """Stop listening (clients get ECONNREFUSED) or listen again on the very same ports."""
        with self._lifecycle:
            if not self.running:
                raise RuntimeError("emulator is not running")
            with self._control:
                was_refusing, self._refusing = self._refusing, refuse
            if refuse and not was_refusing:
                for listener in self._listeners:
                    listener.close()
            elif not refuse and was_refusing:
                for listener in self._listeners:
                    listener.open()
        if refuse and drop_existing:
            self.disconnect_all()

    @property
    def refusing(self) -> bool:
        with self._control:
            return self._refusing

    def set_reply_delay(self, seconds: float) -> None:
        """Wait this long before answering every command (login included)."""
        if seconds < 0:
            raise ValueError("delay must not be negative")
        with self._control:
            self._reply_delay = float(seconds)

    @property
    def reply_delay(self) -> float:
        with self._control:
            return self._reply_delay

    def drop_mid_reply(self, count: int = 1) -> None:
        """For the next ``count`` commands (``/login`` excluded) apply the command, send part of
        the reply (the first sentence plus half of the next, or half of a lone sentence) and
        then reset the connection. The change is applied, the client just never hears back."""
        if count < 0:
            raise ValueError("count must not be negative")
        with self._control:
            self._drops_pending = count

    @property
    def pending_drops(self) -> int:
        with self._control:
            return self._drops_pending

    def disconnect_all(self) -> int:
        """Close every client connection now; returns how many were open."""
        return self._join_connections()

    def _join_connections(self) -> int:
        with self._control:
            connections = list(self._connections)
        for connection in connections:
            connection.shutdown()
        for connection in connections:
            if connection.thread is not threading.current_thread():
                connection.thread.join(timeout=5)
        return len(connections)

    # -- command log -------------------------------------------------------------------------

    @property
    def command_log(self) -> list[LoggedCommand]:
        """Snapshot of every sentence received, in order: ``(path, attributes)`` tuples."""
        with self._control:
            return list(self._command_log)

    def command_count(self, path: str) -> int:
        with self._control:
            return sum(1 for entry in self._command_log if entry.path == path)

    def clear_command_log(self) -> None:
        with self._control:
            self._command_log.clear()

    # -- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        with self._control:
            self._users[name] = password

    # -- state access ------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Hold this while reading or mutating :attr:`state` directly."""
        return self.router.lock

    @property
    def state(self) -> RouterState:
        """The live device state (tables keyed by menu, e.g. ``state.tables["ppp/secret"]``).

        Mutate it only while holding :attr:`lock`, then call :meth:`save` when persisting.
        """
        return self.router.state

    def save(self) -> None:
        self.router.save()

    def execute(self, path: str, **attributes: str) -> Result:
        """Run a command as if an API client had sent it (keys may use ``_`` for ``-``).

        Raises :class:`ApiTrap` where a client would get ``!trap``. Not recorded in
        :attr:`command_log`, which only lists what arrived over the wire.
        """
        command = Command(path=path, attrs={_api_key(k): str(v) for k, v in attributes.items()})
        return self.router.execute(command)

    def rows(self, menu: str) -> list[Row]:
        """Items of a list menu as ``print`` would show them (copies)."""
        menu_object = self.router.menus.get(menu.strip("/").replace(" ", "/"))
        if not isinstance(menu_object, _TableMenu):
            raise KeyError(menu)
        with self.lock:
            return menu_object.rendered_rows()

    def secrets(self) -> list[Row]:
        return self.rows("ppp/secret")

    def profiles(self) -> list[Row]:
        return self.rows("ppp/profile")

    def active_sessions(self) -> list[Row]:
        return self.rows("ppp/active")

    def address_list(self, list_name: str | None = None) -> list[Row]:
        rows = self.rows("ip/firewall/address-list")
        return [row for row in rows if list_name is None or row["list"] == list_name]

    def files(self) -> list[Row]:
        return self.rows("file")

    def secret(self, name: str) -> Row | None:
        return next((row for row in self.secrets() if row["name"] == name), None)

    def add_secret(
        self, name: str, password: str = "", profile: str = "default", service: str = "any", **props: str
    ) -> str:
        """Add a PPP secret (validated like the API does); returns its ``.id``."""
        result = self.execute(
            "/ppp/secret/add", name=name, password=password, profile=profile, service=service, **props
        )
        return result.done["ret"]

    def bulk_load_secrets(self, secrets: Sequence[Mapping[str, str]]) -> int:
        """Load many PPP secrets at once (benchmarks and demos): validated as one batch, so loading
        n secrets costs O(n) instead of n separate adds each scanning the table."""
        with self.lock:
            table = self.state.table("ppp/secret")
            names = {row.get("name") for row in table.rows}
            for secret in secrets:
                name = secret["name"]
                if not name or name in names:
                    raise ApiTrap("failure: secret with the same name already exists")
                names.add(name)
                row: Row = {".id": table.allocate_id(), **SecretMenu.defaults, **secret}
                table.rows.append(row)
            self.save()
        return len(secrets)

    def add_profile(self, name: str, **props: str) -> str:
        return self.execute("/ppp/profile/add", name=name, **props).done["ret"]

    def add_address_list_entry(self, list_name: str, address: str, **props: str) -> str:
        return self.execute("/ip/firewall/address-list/add", list=list_name, address=address, **props).done["ret"]

    def add_active_session(
        self,
        name: str,
        address: str,
        caller_id: str = "",
        *,
        service: str = "pppoe",
        uptime: float = 0.0,
        encoding: str = "",
        radius: bool = False,
    ) -> str:
        """Pretend a subscriber dialled in; returns the session's ``.id``.

        Nothing checks the secret exists or is enabled, on purpose: a RADIUS-authenticated or
        already-established session need not match the local secrets.
        """
        address = _validate_ipv4("address", address)
        with self.lock:
            table = self.state.table("ppp/active")
            self.state.session_counter += 1
            row: Row = {
                ".id": table.allocate_id(),
                "name": name,
                "service": service,
                "caller-id": caller_id,
                "address": address,
                "encoding": encoding,
                "session-id": f"0x{0x81000000 + self.state.session_counter:X}",
                "limit-bytes-in": "0",
                "limit-bytes-out": "0",
                "radius": "true" if radius else "false",
                "_started": repr(time.monotonic() - uptime),
            }
            table.rows.append(row)
            return row[".id"]

    def remove_active_session(self, name_or_id: str) -> bool:
        """The subscriber hung up (not a kick: nothing is logged as an API command)."""
        with self.lock:
            table = self.state.table("ppp/active")
            for row in list(table.rows):
                if name_or_id in (row[".id"], row["name"]):
                    table.rows.remove(row)
                    return True
            return False

    @property
    def identity(self) -> str:
        with self.lock:
            return self.state.identity

    @identity.setter
    def identity(self, name: str) -> None:
        self.execute("/system/identity/set", name=name)

    def set_resource(self, **values: str | int) -> None:
        """Override ``/system/resource`` values, e.g. ``set_resource(cpu_load=85)``."""
        with self.lock:
            self.state.resource_overrides.update({_api_key(k): str(v) for k, v in values.items()})

    def export_text(self, *, show_sensitive: bool = False, verbose: bool = False, terse: bool = False) -> str:
        """The configuration as ``/export`` would write it to a file."""
        return self.router.export_text(show_sensitive=show_sensitive, verbose=verbose, terse=terse)

    def reset_state(self) -> None:
        """Back to factory state (plus this emulator's identity); persisted if there is a state file."""
        with self.lock:
            identity = self.state.identity
            fresh = Router._fresh_state(identity)
            self.state.tables = fresh.tables
            self.state.session_counter = 0
            self.state.resource_overrides.clear()
            self.router.save()


def _api_key(key: str) -> str:
    return key.replace("_", "-")


_ssl_context_lock = threading.Lock()


def _server_ssl_context() -> ssl.SSLContext:
    # Imported lazily so plain-TCP users never pay for cryptography's import time.
    from sonjog.network.routeros import tls

    with _ssl_context_lock:
        return tls.server_context()


# --------------------------------------------------------------------------------------------
# Command line entry points
# --------------------------------------------------------------------------------------------


def run_emulator(
    port: int = 8728,
    tls_port: int | None = None,
    user: str = "admin",
    password: str = "",
    state_file: str | os.PathLike[str] | None = None,
    *,
    identity: str = "emulated",
    empty_reply: bool = False,
    inline_export: bool = False,
    stdout: TextIO | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. Prints one line saying where it listens."""
    emulator = RouterOSEmulator(
        port=port,
        tls_port=tls_port,
        username=user,
        password=password,
        state_file=state_file,
        identity=identity,
        empty_reply=empty_reply,
        inline_export=inline_export,
    )
    emulator.start()
    out = stdout if stdout is not None else sys.stdout
    details = f"user {user!r}"
    if state_file is not None:
        details += f", state {os.fspath(state_file)}"
    print(f"RouterOS API emulator listening on {emulator.describe()}; {details}", file=out, flush=True)
    with _stop_on_signals(emulator):
        emulator.serve_forever()


@contextlib.contextmanager
def _stop_on_signals(emulator: RouterOSEmulator) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        # Only flag the stop here; serve_forever() notices and shuts down outside the handler.
        emulator._stopping.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="RouterOS API emulator (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=8728, help="API port (0 picks a free one)")
    parser.add_argument("--tls-port", type=int, default=None, help="also serve API-SSL on this port")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="")
    parser.add_argument("--state", default=None, help="JSON file the configuration is kept in")
    parser.add_argument("--identity", default="emulated")
    parser.add_argument("--empty-reply", action="store_true", help="send !empty for empty prints (7.18+)")
    parser.add_argument("--inline-export", action="store_true", help="return /export text in =ret=")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_emulator(
        args.port,
        args.tls_port,
        args.user,
        args.password,
        args.state,
        identity=args.identity,
        empty_reply=args.empty_reply,
        inline_export=args.inline_export,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
