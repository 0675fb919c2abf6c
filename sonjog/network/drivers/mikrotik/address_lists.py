"""Firewall address lists (``/ip/firewall/address-list``): putting an address on a list, taking it off,
and listing a list's entries."""

from __future__ import annotations

from sonjog.network.drivers.mikrotik.connection import RouterSession
from sonjog.network.drivers.mikrotik.errors import RouterCommandError
from sonjog.network.drivers.mikrotik.types import Row
from sonjog.network.drivers.mikrotik.values import normalise_address


class AddressListsMixin(RouterSession):
    def address_list_add(self, list_name: str, address: str, comment: str = "") -> bool:
        """Put an address on a list; returns False when it was already there."""
        attrs = {"list": list_name, "address": address}
        if comment:
            attrs["comment"] = comment
        try:
            self._run("/ip/firewall/address-list/add", attrs)
        except RouterCommandError as error:
            if "already have such entry" in error.router_message:
                return False
            raise
        return True

    def address_list_remove(self, list_name: str, address: str) -> int:
        rows = self._print(
            "/ip/firewall/address-list",
            f"?=list={list_name}",
            f"?=address={normalise_address(address)}",
            proplist=".id",
        )
        return self._remove_ids("/ip/firewall/address-list", [row[".id"] for row in rows])

    def address_list_entries(self, list_name: str) -> list[Row]:
        return self._print("/ip/firewall/address-list", f"?=list={list_name}")
