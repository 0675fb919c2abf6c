"""The ``/system`` menus: ``resource`` (uptime, version, load; read only) and ``identity``."""

from __future__ import annotations

from sonjog.network.routeros.emulator.command import Command, Result
from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, ApiTrap
from sonjog.network.routeros.emulator.menus.base import Menu, apply_proplist
from sonjog.network.routeros.emulator.query import evaluate_query
from sonjog.network.routeros.emulator.values import export_quote


class ResourceMenu(Menu):
    menu = "system/resource"
    verbs = frozenset({"print", "getall"})

    def cmd_print(self, command: Command) -> Result:
        row = self.router.resource()
        if not evaluate_query(command.queries, row):
            return Result(listing=True)
        return Result(rows=apply_proplist([row], command.attrs.get(".proplist")), listing=True)

    cmd_getall = cmd_print


class IdentityMenu(Menu):
    menu = "system/identity"
    verbs = frozenset({"print", "getall", "set", "export"})

    def cmd_print(self, command: Command) -> Result:
        row = {"name": self.router.state.identity}
        return Result(rows=apply_proplist([row], command.attrs.get(".proplist")), listing=True)

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
