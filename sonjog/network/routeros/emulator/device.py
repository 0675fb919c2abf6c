"""Direct, in-process access to the emulated device, for the test or demo that runs it.

:class:`DeviceAccess` reads tables as ``print`` shows them, runs commands as a client would
(without touching the command log), seeds secrets, profiles and address-list entries, simulates
subscribers dialling in and hanging up, and resets the device. ``RouterOSEmulator`` inherits it;
all it needs is the ``router`` attribute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from sonjog.network.routeros.emulator.command import Command, Result
from sonjog.network.routeros.emulator.errors import ApiTrap
from sonjog.network.routeros.emulator.menus import AddressListMenu, SecretMenu, TableMenu
from sonjog.network.routeros.emulator.router import Router
from sonjog.network.routeros.emulator.state import RouterState, Row
from sonjog.network.routeros.emulator.values import validate_ipv4


class DeviceAccess:
    """The device as seen from inside the process; every method takes the device lock."""

    router: Router

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
        if not isinstance(menu_object, TableMenu):
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

    def filter_rules(self) -> list[Row]:
        """``/ip firewall filter`` in rule order."""
        return self.rows("ip/firewall/filter")

    def nat_rules(self) -> list[Row]:
        """``/ip firewall nat`` in rule order."""
        return self.rows("ip/firewall/nat")

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
        address_lists: Sequence[str] | None = None,
    ) -> str:
        """Pretend a subscriber dialled in; returns the session's ``.id``.

        Nothing checks the secret exists or is enabled, on purpose: a RADIUS-authenticated or
        already-established session need not match the local secrets. As on RouterOS, the session's
        address goes on the address lists its profile names (``address-list``; a RADIUS reply's
        ``Mikrotik-Address-List`` is given as ``address_lists``), as dynamic entries that go with it.
        """
        address = validate_ipv4("address", address)
        with self.lock:
            if address_lists is None:
                address_lists = self._profile_address_lists(name) if not radius else ()
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
            entries = self.router.menus["ip/firewall/address-list"]
            assert isinstance(entries, AddressListMenu)
            for list_name in address_lists:
                entries.add_session_entry(list_name, address, row[".id"])
            return row[".id"]

    def _profile_address_lists(self, name: str) -> list[str]:
        secret = next((row for row in self.state.table("ppp/secret").rows if row.get("name") == name), None)
        if secret is None:
            return []
        profile = next(
            (row for row in self.state.table("ppp/profile").rows if row.get("name") == secret.get("profile")), None
        )
        value = (profile or {}).get("address-list", "")
        return [part.strip() for part in value.split(",") if part.strip()]

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
            fresh = Router.fresh_state(identity)
            self.state.tables = fresh.tables
            self.state.session_counter = 0
            self.state.resource_overrides.clear()
            self.router.save()


def _api_key(key: str) -> str:
    return key.replace("_", "-")
