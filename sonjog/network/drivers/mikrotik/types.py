"""The plain values the MikroTik driver takes and gives back: connection settings, the desired state of
one subscriber, and what the router reported.

Nothing here talks to a router; the billing side builds these from intent and reads them back, which
keeps the driver free of Django and the database.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

Row = dict[str, str]

DEFAULT_API_PORT: Final = 8728
DEFAULT_API_SSL_PORT: Final = 8729

SecretState = Literal["enabled", "disabled", "absent"]
SuspendMode = Literal["disable", "address_list", "profile"]
_STATES: Final = frozenset({"enabled", "disabled", "absent"})
_SUSPEND_MODES: Final = frozenset({"disable", "address_list", "profile"})


@dataclasses.dataclass(frozen=True)
class RouterConfig:
    host: str
    port: int = DEFAULT_API_PORT
    username: str = "admin"
    password: str = dataclasses.field(default="", repr=False)
    use_tls: bool = False
    timeout: float = 5.0
    verify_tls: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    kind: str | None
    message: str
    details: dict[str, str]
    latency_ms: float


@dataclasses.dataclass(frozen=True)
class DesiredSecret:
    """What the billing system wants one subscriber's PPP account on the router to look like."""

    name: str
    password: str = dataclasses.field(repr=False)
    profile: str
    remote_address: str | None = None
    comment: str = ""
    state: SecretState = "enabled"
    suspend_mode: SuspendMode = "disable"
    suspended_profile: str = "suspended"
    suspended_list: str = "suspended"
    address: str | None = None
    # Firewall address lists the subscriber's address belongs on besides suspension (add-on effects);
    # only honoured while the state is "enabled".
    address_lists: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a PPP secret needs a name")
        if self.state not in _STATES:
            raise ValueError(f"state must be one of {sorted(_STATES)}, not {self.state!r}")
        if self.suspend_mode not in _SUSPEND_MODES:
            raise ValueError(f"suspend_mode must be one of {sorted(_SUSPEND_MODES)}, not {self.suspend_mode!r}")


@dataclasses.dataclass
class ApplyResult:
    changed: bool
    actions: list[str]
    router_state: SecretState
    online: bool
    session: Row | None
    # Things the operator should know that are not failures (e.g. nothing to put on the list).
    warnings: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Observation:
    """One subscriber as the router sees it right now."""

    name: str
    exists: bool
    disabled: bool = False
    profile: str | None = None
    comment: str = ""
    remote_address: str | None = None
    online: bool = False
    address: str | None = None
    caller_id: str | None = None
    uptime: str | None = None
    session_id: str | None = None
    suspended_listed: bool = False
    password: str | None = dataclasses.field(default=None, repr=False)
    # Of the add-on address lists asked about: the lists holding the subscriber's session address or
    # remote address (whoever put it there), and the entries Sonjog put there for this subscriber
    # (tagged with its name) as (list, address) pairs.
    address_lists: frozenset[str] = frozenset()
    owned_entries: tuple[tuple[str, str], ...] = ()
