"""MikroTik RouterOS driver: PPP secrets, sessions, profiles and address lists over the API.

Pure Python on top of ``librouteros``; nothing here knows about Django or the database. The
billing side hands in plain values (``DesiredSecret``) and gets plain values back
(``ApplyResult``, ``Observation``), which keeps the driver testable against the RouterOS
emulator and usable from workers, management commands and the CLI alike.

Every write is "read, compare, change only what differs", so running the same command twice
(for instance after a connection dropped before the router's answer arrived) leaves the router
exactly as running it once would. Failures surface as ``RouterError`` subclasses whose message
tells an operator what to check on the router.

A driver holds one API connection and is not thread-safe; give each worker its own.

The parts, one responsibility each: ``types`` (the values in and out), ``errors`` (the
``RouterError`` family and trap translation), ``values`` (how RouterOS spells values),
``connection`` (connect, TLS, login, raw commands), ``secrets``, ``profiles``, ``sessions``
(active sessions, kicks, the reconciler's bulk read), ``address_lists``, ``export``, ``apply``
(one subscriber to its desired state), ``portal`` (the suspension-portal redirect rules) and
``driver`` (``MikrotikDriver`` composed of them).
"""

from sonjog.network.drivers.mikrotik.driver import MikrotikDriver, test_connection
from sonjog.network.drivers.mikrotik.errors import (
    RouterCommandError,
    RouterConnectionLost,
    RouterError,
    RouterLoginFailed,
    RouterRefused,
    RouterTimeout,
    RouterTLSError,
    RouterUnreachable,
)
from sonjog.network.drivers.mikrotik.portal import PORTAL_TAG, WALLED_GARDEN_LIST, PortalRules
from sonjog.network.drivers.mikrotik.types import (
    DEFAULT_API_PORT,
    DEFAULT_API_SSL_PORT,
    ApplyResult,
    ConnectionTestResult,
    DesiredSecret,
    Observation,
    RouterConfig,
    Row,
    SecretState,
    SuspendMode,
)

__all__ = [
    "DEFAULT_API_PORT",
    "DEFAULT_API_SSL_PORT",
    "PORTAL_TAG",
    "WALLED_GARDEN_LIST",
    "ApplyResult",
    "ConnectionTestResult",
    "DesiredSecret",
    "MikrotikDriver",
    "Observation",
    "PortalRules",
    "RouterCommandError",
    "RouterConfig",
    "RouterConnectionLost",
    "RouterError",
    "RouterLoginFailed",
    "RouterRefused",
    "RouterTLSError",
    "RouterTimeout",
    "RouterUnreachable",
    "Row",
    "SecretState",
    "SuspendMode",
    "test_connection",
]
