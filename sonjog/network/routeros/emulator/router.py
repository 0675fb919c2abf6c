"""The emulated device without networking: :class:`Router` wires the menus to the state,
resolves a command to its menu and verb (with the traps RouterOS sends for unknown paths), runs
it under the device lock, builds ``/export`` and saves the configuration after each change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from sonjog.network.routeros.emulator.command import Command, Result
from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, CATEGORY_MISSING, ApiTrap
from sonjog.network.routeros.emulator.menus import (
    ActiveMenu,
    AddressListMenu,
    FileMenu,
    FilterMenu,
    IdentityMenu,
    Menu,
    NatMenu,
    ProfileMenu,
    ResourceMenu,
    SecretMenu,
    TableMenu,
)
from sonjog.network.routeros.emulator.persistence import STATE_FORMAT, read_state_file, write_state_file
from sonjog.network.routeros.emulator.state import RouterState, Row, Table
from sonjog.network.routeros.emulator.values import format_duration, format_timestamp, is_flag_set

DEFAULT_VERSION: Final = "7.16.2 (stable)"

# Sections in the order a RouterOS export lists them.
_EXPORT_ORDER: Final = (
    "ppp/profile",
    "ip/firewall/address-list",
    "ip/firewall/filter",
    "ip/firewall/nat",
    "ppp/secret",
    "system/identity",
)
_EXPORT_SECTIONS: Final = {
    "ppp/profile": "/ppp profile",
    "ip/firewall/address-list": "/ip firewall address-list",
    "ip/firewall/filter": "/ip firewall filter",
    "ip/firewall/nat": "/ip firewall nat",
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
        self.state = self.fresh_state(identity)
        self.menus: dict[str, Menu] = {}
        for menu_class in (
            SecretMenu,
            ProfileMenu,
            ActiveMenu,
            AddressListMenu,
            FilterMenu,
            NatMenu,
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
    def fresh_state(identity: str) -> RouterState:
        tables = {
            "ppp/secret": Table(),
            "ppp/profile": Table(next_id=1, rows=ProfileMenu.builtin_rows()),
            "ppp/active": Table(),
            "ip/firewall/address-list": Table(),
            "ip/firewall/filter": Table(),
            "ip/firewall/nat": Table(),
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
            if isinstance(menu, TableMenu) and menu.persistent:
                tables[name] = {"next_id": menu.table.next_id, "rows": menu.persisted_rows()}
        return {"format": STATE_FORMAT, "identity": self.state.identity, "tables": tables}

    def save(self) -> None:
        """Write the configuration atomically: a crash leaves either the old or the new file."""
        if self.state_file is None:
            return
        with self.lock:
            write_state_file(self.state_file, self.snapshot())

    def load(self) -> None:
        assert self.state_file is not None
        with self.lock:
            read_state_file(self.state_file, self.state)

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
                assert isinstance(menu, TableMenu | IdentityMenu)
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

    def run_export(self, command: Command, menus: Sequence[Menu] | None) -> Result:
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

    def resolve(self, command: Command) -> tuple[Menu | None, str]:
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
