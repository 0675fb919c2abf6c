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

The modules, each importing only those above it in this list:

* ``errors`` -- :class:`ApiTrap` and the trap categories;
* ``values`` -- ids, booleans, durations, timestamps, export quoting, address/rate validators;
* ``command``, ``query``, ``state`` -- a parsed sentence and its result, query evaluation, the tables;
* ``persistence`` -- the JSON state file;
* ``menus`` -- the generic list menu and the ``/ppp``, ``/ip firewall`` (address lists, filter, nat),
  ``/file``, ``/system`` menus;
* ``router`` -- the device: menus wired to the state, command resolution, ``/export``;
* ``device``, ``faults`` -- in-process access to the device; the reply fault switches;
* ``connection`` -- listeners and per-client connections (login, replies, ``.tag``);
* ``server`` -- :class:`RouterOSEmulator`, the server tests and the demo start;
* ``cli``, ``__main__`` -- ``python -m sonjog.network.routeros.emulator``.

Everything public is re-exported here, so ``from sonjog.network.routeros.emulator import X``
is the way in.
"""

# A test reaches ``os.replace`` through ``emulator.os`` to break the atomic state write.
import os  # noqa: F401

from sonjog.network.routeros.emulator.cli import build_parser, main, run_emulator
from sonjog.network.routeros.emulator.command import Command, LoggedCommand, Result
from sonjog.network.routeros.emulator.connection import ALLOWED_HOST
from sonjog.network.routeros.emulator.errors import (
    CATEGORY_API,
    CATEGORY_ARGUMENT,
    CATEGORY_GENERAL,
    CATEGORY_INTERRUPTED,
    CATEGORY_MISSING,
    CATEGORY_SCRIPTING,
    ApiTrap,
)
from sonjog.network.routeros.emulator.menus import (
    ActiveMenu,
    AddressListMenu,
    FileMenu,
    FilterMenu,
    IdentityMenu,
    NatMenu,
    ProfileMenu,
    ResourceMenu,
    SecretMenu,
)
from sonjog.network.routeros.emulator.persistence import STATE_FORMAT
from sonjog.network.routeros.emulator.query import evaluate_query
from sonjog.network.routeros.emulator.router import DEFAULT_VERSION, Router
from sonjog.network.routeros.emulator.server import RouterOSEmulator
from sonjog.network.routeros.emulator.state import RouterState, Row, Table
from sonjog.network.routeros.emulator.values import (
    export_quote,
    format_duration,
    format_id,
    format_timestamp,
    is_flag_set,
    normalise_list_address,
    parse_bool,
    parse_duration,
    parse_id,
    validate_rate_limit,
)

__all__ = [
    "ALLOWED_HOST",
    "CATEGORY_API",
    "CATEGORY_ARGUMENT",
    "CATEGORY_GENERAL",
    "CATEGORY_INTERRUPTED",
    "CATEGORY_MISSING",
    "CATEGORY_SCRIPTING",
    "DEFAULT_VERSION",
    "STATE_FORMAT",
    "ActiveMenu",
    "AddressListMenu",
    "ApiTrap",
    "Command",
    "FileMenu",
    "FilterMenu",
    "IdentityMenu",
    "LoggedCommand",
    "NatMenu",
    "ProfileMenu",
    "ResourceMenu",
    "Result",
    "Router",
    "RouterOSEmulator",
    "RouterState",
    "Row",
    "SecretMenu",
    "Table",
    "build_parser",
    "evaluate_query",
    "export_quote",
    "format_duration",
    "format_id",
    "format_timestamp",
    "is_flag_set",
    "main",
    "normalise_list_address",
    "parse_bool",
    "parse_duration",
    "parse_id",
    "run_emulator",
    "validate_rate_limit",
]
