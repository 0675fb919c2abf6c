"""How RouterOS spells values over the API, and the few conversions every menu of the driver shares:
booleans in both RouterOS 6 and 7 spelling, addresses as the router stores them, and the comment tag
that marks address-list entries Sonjog owns."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from sonjog.network.drivers.mikrotik.types import Row


def text_row(row: Mapping[str, Any]) -> Row:
    return {str(key): str(value) for key, value in row.items()}


def ros_bool(value: str | None) -> bool:
    # RouterOS 7 prints "true"/"false", RouterOS 6 printed "yes"/"no".
    return (value or "").strip().lower() in ("true", "yes")


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def normalise_address(value: str) -> str:
    """How RouterOS stores an address: ``10.0.0.5/32`` becomes ``10.0.0.5``."""
    text = value.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    return str(network.network_address) if network.num_addresses == 1 else str(network)


def squash_spaces(value: str) -> str:
    return " ".join(value.split())


def byte_count(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def list_tag(name: str) -> str:
    # Entries we put on an address list carry the subscriber's name so a later run can find (and
    # remove) them even after the subscriber's address has changed; entries without it are not ours.
    return f"sonjog:{name}"
