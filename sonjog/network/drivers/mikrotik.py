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
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import ipaddress
import socket
import ssl
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Final, Literal

import librouteros
from librouteros.api import Api
from librouteros.exceptions import (
    ConnectionClosed,
    FatalError,
    LibRouterosError,
    MultiTrapError,
    ProtocolError,
    TrapError,
)
from librouteros.login import plain as plain_login
from librouteros.types import ReplyDict

Row = dict[str, str]

DEFAULT_API_PORT: Final = 8728
DEFAULT_API_SSL_PORT: Final = 8729

# Whoever calls this over the API must use the same encoding as the router's own text; RouterOS
# stores what it receives, so UTF-8 everywhere keeps Bangla names and comments intact.
_ENCODING: Final = "utf-8"
_EXPORT_POLL_INTERVAL: Final = 0.1
_FILE_READ_CHUNK: Final = 32768
_TLS_PROBE_TIMEOUT: Final = 3.0

SecretState = Literal["enabled", "disabled", "absent"]
SuspendMode = Literal["disable", "address_list", "profile"]
_STATES: Final = frozenset({"enabled", "disabled", "absent"})
_SUSPEND_MODES: Final = frozenset({"disable", "address_list", "profile"})


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class RouterError(Exception):
    """Anything that went wrong talking to a router; ``kind`` is stable, the message is for people."""

    kind: ClassVar[str] = "error"
    # Whether trying the same thing again later can reasonably succeed without anyone
    # touching the router's configuration.
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.port = port
        self.command = command

    def __str__(self) -> str:
        return self.message


class RouterRefused(RouterError):
    kind = "refused"
    retryable = True


class RouterTimeout(RouterError):
    kind = "timeout"
    retryable = True


class RouterLoginFailed(RouterError):
    kind = "login_failed"


class RouterTLSError(RouterError):
    kind = "tls"


class RouterConnectionLost(RouterError):
    kind = "connection_lost"
    retryable = True


class RouterUnreachable(RouterError):
    """The address does not resolve or there is no route to it (no TCP conversation at all)."""

    kind = "unreachable"
    retryable = True


class RouterCommandError(RouterError):
    """The router answered ``!trap``: it understood the command and refused it."""

    kind = "command"

    def __init__(
        self,
        message: str,
        *,
        router_message: str = "",
        category: int | None = None,
        host: str | None = None,
        port: int | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message, host=host, port=port, command=command)
        self.router_message = router_message
        self.category = category


# --------------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


class _TextApi(Api):
    """librouteros turns ``"1001"`` into ``1001`` and ``"yes"`` into ``True``; a subscriber named
    1001 or a comment saying "no" must come back exactly as stored, so keep every value text."""

    def readSentence(self) -> tuple[str, ReplyDict]:
        reply_word, words = self.protocol.readSentence()
        return reply_word, dict(_split_attribute(word) for word in words)


def _split_attribute(word: str) -> tuple[str, str]:
    # ".section=2"-style API attributes have no leading "=", unlike "=name=value".
    key, _, value = (word[1:] if word.startswith("=") else word).partition("=")
    return key, value


def _text_row(row: Mapping[str, Any]) -> Row:
    return {str(key): str(value) for key, value in row.items()}


def _ros_bool(value: str | None) -> bool:
    # RouterOS 7 prints "true"/"false", RouterOS 6 printed "yes"/"no".
    return (value or "").strip().lower() in ("true", "yes")


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _normalise_address(value: str) -> str:
    """How RouterOS stores an address: ``10.0.0.5/32`` becomes ``10.0.0.5``."""
    text = value.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    return str(network.network_address) if network.num_addresses == 1 else str(network)


def _squash_spaces(value: str) -> str:
    return " ".join(value.split())


def _byte_count(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _list_tag(name: str) -> str:
    # Entries we put on the suspended list carry the subscriber's name so a later run can find
    # (and remove) them even after the subscriber's address has changed.
    return f"sonjog:{name}"


def _is_missing_item(error: RouterCommandError) -> bool:
    return "no such item" in error.router_message


def _client_tls_context(verify: bool) -> ssl.SSLContext:
    if verify:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # API-SSL without a certificate assigned only offers anonymous Diffie-Hellman suites, which
    # OpenSSL leaves out by default; without verification we accept any peer anyway.
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("HIGH:!eNULL:@SECLEVEL=0")
    return context


def _trap_text(error: TrapError | MultiTrapError) -> tuple[str, int | None]:
    traps = error.traps if isinstance(error, MultiTrapError) else (error,)
    message = "; ".join(str(trap.message) for trap in traps)
    raw_category = traps[0].category if traps else None
    try:
        category = int(raw_category) if raw_category is not None else None
    except (TypeError, ValueError):
        category = None
    return message, category


# What OpenSSL reports when the other side answers a ClientHello with something that is not TLS.
_NOT_TLS_REASONS: Final = frozenset({"WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING", "PACKET_LENGTH_TOO_LONG"})


def _not_a_tls_peer(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | ssl.SSLEOFError | ConnectionResetError | ConnectionAbortedError):
        return True
    return isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) in _NOT_TLS_REASONS


class _Phase:
    """Which step of opening a connection is running, so the same socket error can be explained
    differently depending on whether it happened in TCP connect, the TLS handshake or login."""

    def __init__(self) -> None:
        self.name = "connect"


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------


class MikrotikDriver:
    """One API session to one RouterOS device.

    Use it as a context manager. A call made after the connection broke opens a new one, so a
    long-lived driver recovers by itself; a failed call is never retried inside the driver,
    the caller decides (every method is safe to repeat).
    """

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self._api: Api | None = None

    # -- connection lifecycle ----------------------------------------------------------------

    def __enter__(self) -> MikrotikDriver:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._api is not None

    def connect(self) -> MikrotikDriver:
        if self._api is None:
            self._api = self._open()
        return self

    def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(OSError):
                api.close()

    def _open(self) -> Api:
        config = self.config
        phase = _Phase()
        context = _client_tls_context(config.verify_tls) if config.use_tls else None

        def wrap(sock: socket.socket) -> socket.socket:
            assert context is not None
            phase.name = "handshake"
            try:
                return context.wrap_socket(sock, server_hostname=config.host)
            except BaseException:
                sock.close()
                raise

        def login(api: Api, username: str, password: str) -> None:
            phase.name = "login"
            plain_login(api, username, password)

        try:
            return librouteros.connect(
                config.host,
                config.username,
                config.password,
                port=config.port,
                timeout=config.timeout,
                encoding=_ENCODING,
                subclass=_TextApi,
                ssl_wrapper=wrap if context is not None else None,
                login_method=login,
            )
        except (LibRouterosError, OSError) as exc:
            raise self._connect_error(exc, phase.name) from exc

    def _connection(self) -> Api:
        if self._api is None:
            self._api = self._open()
        return self._api

    # -- error translation -------------------------------------------------------------------

    def _where(self) -> dict[str, Any]:
        return {"host": self.config.host, "port": self.config.port}

    def _connect_error(self, exc: BaseException, phase: str) -> RouterError:
        config = self.config
        where = config.address
        service = "api-ssl" if config.use_tls else "api"
        if phase == "login" and isinstance(exc, TrapError | MultiTrapError):
            text, _ = _trap_text(exc)
            return RouterLoginFailed(
                f"Router {where} rejected the login for user {config.username!r} ({text}). "
                "Check the user name and password, and that the user exists under /user with a group "
                "that has the 'api', 'read' and 'write' policies.",
                **self._where(),
            )
        if phase == "handshake" or isinstance(exc, ssl.SSLError):
            return self._tls_error(exc)
        if isinstance(exc, ConnectionRefusedError):
            return RouterRefused(
                f"Router {where} refused the connection. Is the {service} service enabled on port "
                f"{config.port}? On the router: /ip service enable {service}, and check its port and "
                "'available-from' under /ip service.",
                **self._where(),
            )
        if isinstance(exc, TimeoutError):
            if phase == "connect":
                return RouterTimeout(
                    f"No answer from {where} within {config.timeout:g}s. Check that the router is reachable "
                    f"from this server (ping, VPN or tunnel up) and that its firewall input chain allows "
                    f"TCP {config.port} from here.",
                    **self._where(),
                )
            return RouterTimeout(
                f"Router {where} accepted the connection but did not answer the login within "
                f"{config.timeout:g}s. The router may be overloaded (check CPU in /system resource) or the "
                "API service may be stuck; try again, or restart it with /ip service disable/enable "
                f"{service}.",
                **self._where(),
            )
        if isinstance(exc, socket.gaierror):
            return RouterUnreachable(
                f"Cannot resolve router host {config.host!r}: check the address in the router settings "
                "and this server's DNS.",
                **self._where(),
            )
        if phase == "connect" and isinstance(exc, OSError):
            reason = errno.errorcode.get(exc.errno or 0, "") or str(exc)
            return RouterUnreachable(
                f"Cannot reach router {where} ({reason}). Check the address, the route or VPN to the "
                "router, and that it is powered on.",
                **self._where(),
            )
        if (
            phase == "login"
            and not config.use_tls
            and isinstance(exc, ConnectionClosed | ConnectionError)
            and self._port_speaks_tls()
        ):
            return RouterTLSError(
                f"Port {config.port} on {config.host} speaks TLS: it is the API-SSL port. Turn on TLS "
                f"for this router, or use the plain API port ({DEFAULT_API_PORT}).",
                **self._where(),
            )
        if phase == "login":
            return RouterConnectionLost(
                f"Router {where} closed the connection during login ({exc or type(exc).__name__}). Check "
                f"'available-from' of /ip service {service} includes this server's address, and that the "
                "router is not at its API session limit.",
                **self._where(),
            )
        return RouterConnectionLost(f"Connection to {where} failed: {exc}", **self._where())

    def _tls_error(self, exc: BaseException) -> RouterTLSError:
        config = self.config
        where = config.address
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = (
                f"the router's certificate is not trusted ({exc.verify_message}). Import a certificate "
                "signed by a CA this server trusts and assign it with /ip service set api-ssl "
                "certificate=..., or turn off certificate verification for this router."
            )
        elif _not_a_tls_peer(exc):
            answer = f"no TLS answer within {config.timeout:g}s" if isinstance(exc, TimeoutError) else "no TLS answer"
            detail = (
                f"{answer}. Port {config.port} is probably the plain API port; API-SSL normally listens on "
                f"{DEFAULT_API_SSL_PORT} (/ip service enable api-ssl), or turn TLS off for this router."
            )
        else:
            detail = (
                f"{exc or type(exc).__name__}. Check that port {config.port} is the API-SSL port "
                f"(normally {DEFAULT_API_SSL_PORT}), that api-ssl is enabled (/ip service enable api-ssl) "
                "and that it has a certificate assigned."
            )
        return RouterTLSError(f"TLS handshake with {where} failed: {detail}", **self._where())

    def _port_speaks_tls(self) -> bool:
        """A plain API client on the API-SSL port just sees the connection die; find out why."""
        config = self.config
        context = _client_tls_context(verify=False)
        try:
            raw = socket.create_connection((config.host, config.port), timeout=min(config.timeout, _TLS_PROBE_TIMEOUT))
        except OSError:
            return False
        try:
            with context.wrap_socket(raw, server_hostname=config.host):
                return True
        except OSError:
            return False
        finally:
            raw.close()

    def _command_error(self, exc: TrapError | MultiTrapError, path: str) -> RouterCommandError:
        text, category = _trap_text(exc)
        return RouterCommandError(
            f"Router {self.config.address} refused {path}: {text}",
            router_message=text,
            category=category,
            command=path,
            **self._where(),
        )

    def _transport_error(self, exc: BaseException, path: str) -> RouterError:
        where = self.config.address
        if isinstance(exc, TimeoutError):
            return RouterTimeout(
                f"Router {where} did not answer {path} within {self.config.timeout:g}s. It may be overloaded "
                "(check CPU in /system resource). The command may or may not have been applied; running it "
                "again is safe.",
                command=path,
                **self._where(),
            )
        if isinstance(exc, FatalError):
            reason = f"the router ended the session ({exc})"
        elif isinstance(exc, ConnectionClosed | ConnectionError):
            reason = "the connection dropped"
        elif isinstance(exc, ProtocolError):
            reason = f"the reply could not be understood ({exc})"
        else:
            reason = f"the connection failed ({exc or type(exc).__name__})"
        return RouterConnectionLost(
            f"Talking to {where}, {reason} while waiting for the reply to {path}. The command may or may "
            "not have been applied; running it again is safe, it re-reads the router first.",
            command=path,
            **self._where(),
        )

    # -- raw command execution ---------------------------------------------------------------

    def _run(self, path: str, attrs: Mapping[str, str] | None = None, queries: Sequence[str] = ()) -> list[Row]:
        api = self._connection()
        words = [f"={key}={value}" for key, value in (attrs or {}).items()]
        words.extend(queries)
        try:
            return [_text_row(row) for row in api.rawCmd(path, *words)]
        except (TrapError, MultiTrapError) as exc:
            # A trap is a complete answer: the connection is still in step and stays usable.
            raise self._command_error(exc, path) from exc
        except (LibRouterosError, OSError) as exc:
            # Half a reply may still be in flight, so this connection can never be trusted again.
            self.close()
            raise self._transport_error(exc, path) from exc

    def _print(self, menu: str, *queries: str, proplist: str | None = None) -> list[Row]:
        attrs = {".proplist": proplist} if proplist else None
        return self._run(f"{menu}/print", attrs, queries)

    def _remove_ids(self, menu: str, ids: Sequence[str]) -> int:
        """Remove items by id; tolerate ones that vanished since we listed them."""
        if not ids:
            return 0
        try:
            self._run(f"{menu}/remove", {".id": ",".join(ids)})
            return len(ids)
        except RouterCommandError as error:
            if not _is_missing_item(error):
                raise
            if len(ids) == 1:
                return 0
        # One id in the batch was gone, which made RouterOS refuse the whole batch.
        removed = 0
        for item_id in ids:
            try:
                self._run(f"{menu}/remove", {".id": item_id})
                removed += 1
            except RouterCommandError as error:
                if not _is_missing_item(error):
                    raise
        return removed

    # -- health ------------------------------------------------------------------------------

    def test_connection(self) -> dict[str, str]:
        resource_rows = self._print("/system/resource")
        identity_rows = self._print("/system/identity")
        resource = resource_rows[0] if resource_rows else {}
        return {
            "identity": identity_rows[0].get("name", "") if identity_rows else "",
            "version": resource.get("version", ""),
            "board": resource.get("board-name", ""),
            "uptime": resource.get("uptime", ""),
            "cpu-load": resource.get("cpu-load", ""),
            "architecture": resource.get("architecture-name", ""),
            "free-memory": resource.get("free-memory", ""),
            "total-memory": resource.get("total-memory", ""),
        }

    # -- PPP secrets -------------------------------------------------------------------------

    def get_secret(self, name: str) -> Row | None:
        rows = self._print("/ppp/secret", f"?=name={name}")
        return rows[0] if rows else None

    def list_secrets(self) -> list[Row]:
        return self._print("/ppp/secret")

    def ensure_secret(
        self,
        name: str,
        password: str,
        profile: str,
        remote_address: str | None = None,
        comment: str = "",
        disabled: bool = False,
    ) -> str:
        """Make the secret look exactly like this; returns "created", "updated" or "unchanged"."""
        outcome, _ = self._ensure_secret(name, password, profile, remote_address, comment, disabled)
        return outcome

    def _ensure_secret(
        self,
        name: str,
        password: str,
        profile: str,
        remote_address: str | None,
        comment: str,
        disabled: bool,
    ) -> tuple[str, Row | None]:
        """Like ensure_secret, also returning the secret as it was before (None if it was created)."""
        current = self.get_secret(name)
        try:
            if current is None:
                attrs = {"name": name, "password": password, "profile": profile, "disabled": _yes_no(disabled)}
                if comment:
                    attrs["comment"] = comment
                if remote_address:
                    attrs["remote-address"] = remote_address
                self._run("/ppp/secret/add", attrs)
                return "created", None

            changes: dict[str, str] = {}
            # Without the 'sensitive' policy the router hides passwords; then we cannot compare
            # and setting it again is the only way to be sure it is right.
            if current.get("password") != password:
                changes["password"] = password
            if current.get("profile", "") != profile:
                changes["profile"] = profile
            if current.get("comment", "") != comment:
                changes["comment"] = comment
            if _ros_bool(current.get("disabled")) != disabled:
                changes["disabled"] = _yes_no(disabled)
            have_remote = _normalise_address(current.get("remote-address", ""))
            want_remote = _normalise_address(remote_address or "")
            unset_remote = False
            if have_remote != want_remote:
                if want_remote:
                    changes["remote-address"] = want_remote
                else:
                    unset_remote = True
            if not changes and not unset_remote:
                return "unchanged", current
            if changes:
                self._run("/ppp/secret/set", {".id": current[".id"], **changes})
            if unset_remote:
                # An empty remote-address is rejected; "no static address" is the unset state.
                self._run("/ppp/secret/unset", {"numbers": current[".id"], "value-name": "remote-address"})
            return "updated", current
        except RouterCommandError as error:
            if "value of profile" in error.router_message:
                raise RouterCommandError(
                    f"Router {self.config.address} has no PPP profile {profile!r} for secret {name!r}. "
                    "Create it under /ppp profile (or sync the package profiles) and try again.",
                    router_message=error.router_message,
                    category=error.category,
                    command=error.command,
                    **self._where(),
                ) from error
            raise

    def set_secret_disabled(self, name: str, disabled: bool) -> bool:
        current = self.get_secret(name)
        if current is None:
            raise RouterCommandError(
                f"Router {self.config.address} has no PPP secret {name!r} to "
                f"{'disable' if disabled else 'enable'}; provision the subscriber first.",
                router_message="no such item",
                command="/ppp/secret/set",
                **self._where(),
            )
        if _ros_bool(current.get("disabled")) == disabled:
            return False
        self._run("/ppp/secret/set", {".id": current[".id"], "disabled": _yes_no(disabled)})
        return True

    def remove_secret(self, name: str) -> bool:
        ids = [row[".id"] for row in self._print("/ppp/secret", f"?=name={name}", proplist=".id")]
        return self._remove_ids("/ppp/secret", ids) > 0

    # -- sessions ----------------------------------------------------------------------------

    def list_active(self) -> list[Row]:
        return self._print("/ppp/active")

    def active_by_name(self) -> dict[str, Row]:
        sessions: dict[str, Row] = {}
        for row in self.list_active():
            sessions.setdefault(row.get("name", ""), row)
        return sessions

    def _sessions_of(self, name: str) -> list[Row]:
        return self._print("/ppp/active", f"?=name={name}")

    def kick(self, name: str) -> int:
        """Disconnect every session of this user; returns how many were dropped."""
        ids = [row[".id"] for row in self._print("/ppp/active", f"?=name={name}", proplist=".id")]
        return self._remove_ids("/ppp/active", ids)

    # -- address lists -----------------------------------------------------------------------

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
            f"?=address={_normalise_address(address)}",
            proplist=".id",
        )
        return self._remove_ids("/ip/firewall/address-list", [row[".id"] for row in rows])

    def address_list_entries(self, list_name: str) -> list[Row]:
        return self._print("/ip/firewall/address-list", f"?=list={list_name}")

    # -- profiles ----------------------------------------------------------------------------

    def list_profiles(self) -> dict[str, Row]:
        return {row.get("name", ""): row for row in self._print("/ppp/profile")}

    def ensure_profile(self, name: str, rate_limit: str | None, **props: str) -> str:
        """Create or align a PPP profile. Keyword names use ``_`` for ``-`` (``address_list=``);
        an empty value clears the property. Returns "created", "updated" or "unchanged"."""
        wanted = {key.replace("_", "-"): str(value) for key, value in props.items()}
        if rate_limit is not None:
            wanted["rate-limit"] = rate_limit
        rows = self._print("/ppp/profile", f"?=name={name}")
        if not rows:
            self._run("/ppp/profile/add", {"name": name, **{k: v for k, v in wanted.items() if v}})
            return "created"
        current = rows[0]
        changes = {
            key: value
            for key, value in wanted.items()
            if value and _squash_spaces(current.get(key, "")) != _squash_spaces(value)
        }
        clears = [key for key, value in wanted.items() if not value and current.get(key, "")]
        if not changes and not clears:
            return "unchanged"
        if changes:
            self._run("/ppp/profile/set", {".id": current[".id"], **changes})
        if clears:
            self._run("/ppp/profile/unset", {"numbers": current[".id"], "value-name": ",".join(clears)})
        return "updated"

    # -- configuration export ----------------------------------------------------------------

    def export_config(self, *, show_sensitive: bool = False, terse: bool = False, wait: float = 3.0) -> str:
        """The router's configuration as ``/export`` text (newlines normalised to ``\\n``).

        Over the API a plain ``/export`` answers nothing, so export into a uniquely named file,
        read it back from ``/file`` and delete it. A router that answers with the text inline
        (``=ret=``) is used as is. ``wait`` bounds how long to wait for the file to appear.
        """
        options: dict[str, str] = {}
        if show_sensitive:
            options["show-sensitive"] = "yes"
        if terse:
            options["terse"] = "yes"
        # Unique per call: two workers exporting the same router must never read each other's
        # file (one of them may include passwords).
        base = f"sonjog-export-{uuid.uuid4().hex[:12]}"
        file_name = f"{base}.rsc"
        try:
            inline = self._inline_text(self._run("/export", {"file": base, **options}))
            if inline is None:
                inline = self._read_file(file_name, wait)
            if inline is None:
                inline = self._inline_text(self._run("/export", options))
            if inline is None:
                raise RouterCommandError(
                    f"Router {self.config.address} produced no export: /export file={base} wrote no readable "
                    "file. Check free disk space (/system resource free-hdd-space) and that the API user's "
                    "group has the 'ftp' and 'read' policies.",
                    command="/export",
                    **self._where(),
                )
            return inline.replace("\r\n", "\n")
        finally:
            self._discard_file(file_name)

    @staticmethod
    def _inline_text(rows: Iterable[Row]) -> str | None:
        for row in rows:
            if row.get("ret"):
                return row["ret"]
        return None

    def _read_file(self, file_name: str, wait: float) -> str | None:
        deadline = time.monotonic() + wait
        while True:
            rows = self._print("/file", f"?=name={file_name}", proplist=".id,name,size,contents")
            if rows:
                row = rows[0]
                if row.get("contents"):
                    return row["contents"]
                size = _byte_count(row.get("size"))
                if size > 0:
                    # Bigger files do not carry 'contents' in a print and need /file/read.
                    return self._read_file_chunks(file_name, size)
            if time.monotonic() >= deadline:
                return None
            time.sleep(_EXPORT_POLL_INTERVAL)

    def _read_file_chunks(self, file_name: str, size: int) -> str:
        parts: list[str] = []
        offset = 0
        while offset < size:
            try:
                rows = self._run(
                    "/file/read", {"file": file_name, "offset": str(offset), "chunk-size": str(_FILE_READ_CHUNK)}
                )
            except RouterCommandError as error:
                raise RouterCommandError(
                    f"The export on {self.config.address} is {size} bytes, too big to read over the API on "
                    "this RouterOS version (needs 7.13+ for /file/read). Upgrade RouterOS or fetch the file "
                    "by SFTP.",
                    router_message=error.router_message,
                    category=error.category,
                    command="/file/read",
                    **self._where(),
                ) from error
            parts.append(rows[0].get("data", "") if rows else "")
            offset += _FILE_READ_CHUNK
        return "".join(parts)

    def _discard_file(self, file_name: str) -> None:
        # Best effort and only on a live connection: cleanup must not hide the real error, nor
        # spend another connect timeout on a router that just went away.
        if self._api is None:
            return
        try:
            ids = [row[".id"] for row in self._print("/file", f"?=name={file_name}", proplist=".id")]
            self._remove_ids("/file", ids)
        except RouterError:
            pass

    # -- subscriber level --------------------------------------------------------------------

    def apply_subscriber(self, desired: DesiredSecret) -> ApplyResult:
        """Bring one subscriber's router state to ``desired`` and report what the router now says."""
        name = desired.name
        actions: list[str] = []
        warnings: list[str] = []
        sessions = self._sessions_of(name)
        session_address = next((row["address"] for row in sessions if row.get("address")), None)
        keep_listed: set[str] = set()

        def record(outcome: str) -> None:
            if outcome != "unchanged":
                actions.append(f"secret.{outcome}")

        def kick() -> None:
            if self.kick(name):
                actions.append("session.kicked")

        if desired.state == "absent":
            if self.remove_secret(name):
                actions.append("secret.removed")
            kick()
        elif desired.state == "enabled" or desired.suspend_mode == "address_list":
            outcome, before = self._ensure_secret(
                name, desired.password, desired.profile, desired.remote_address, desired.comment, False
            )
            record(outcome)
            # A live session keeps the profile it dialled in with (e.g. the payment-page one);
            # it only gets the new profile by reconnecting.
            reconnecting = before is not None and before.get("profile") != desired.profile and bool(sessions)
            if reconnecting:
                kick()
            if desired.state == "disabled":
                # After a kick the old session address may go to someone else on redial.
                live_address = None if reconnecting else session_address
                target = desired.address or live_address or desired.remote_address
                if target:
                    keep_listed.add(_normalise_address(target))
                    if self.address_list_add(desired.suspended_list, target, comment=_list_tag(name)):
                        actions.append("address_list.added")
                else:
                    warnings.append(
                        f"{name} is offline and has no fixed address, so there is nothing to put on "
                        f"{desired.suspended_list!r} yet; apply again once the subscriber connects, or use "
                        "the 'profile' or 'disable' suspend mode."
                    )
        elif desired.suspend_mode == "disable":
            outcome, _ = self._ensure_secret(
                name, desired.password, desired.profile, desired.remote_address, desired.comment, True
            )
            record(outcome)
            # Disabling a secret does not end a session that is already up.
            kick()
        else:
            outcome, before = self._ensure_secret(
                name, desired.password, desired.suspended_profile, desired.remote_address, desired.comment, False
            )
            record(outcome)
            if (before is None or before.get("profile") != desired.suspended_profile) and sessions:
                kick()

        addresses = {
            _normalise_address(value) for value in (session_address, desired.remote_address, desired.address) if value
        }
        removed = self._clear_suspension(desired.suspended_list, name, addresses, keep_listed)
        if removed:
            actions.append("address_list.removed")
        return self._read_back(desired, actions, warnings)

    def _clear_suspension(self, list_name: str, name: str, addresses: set[str], keep: set[str]) -> int:
        """Drop this subscriber's entries from the suspended list, except the ones at ``keep``."""
        tag = _list_tag(name)
        ids = [
            row[".id"]
            for row in self._print("/ip/firewall/address-list", f"?=list={list_name}", proplist=".id,address,comment")
            if (row.get("comment") == tag or row.get("address") in addresses) and row.get("address") not in keep
        ]
        return self._remove_ids("/ip/firewall/address-list", ids)

    def _read_back(self, desired: DesiredSecret, actions: list[str], warnings: list[str]) -> ApplyResult:
        secret = self.get_secret(desired.name)
        sessions = self._sessions_of(desired.name)
        entries = self._print(
            "/ip/firewall/address-list", f"?=list={desired.suspended_list}", proplist=".id,address,comment"
        )
        addresses = {
            _normalise_address(value)
            for value in (
                *(row.get("address") for row in sessions),
                desired.remote_address,
                desired.address,
            )
            if value
        }
        tag = _list_tag(desired.name)
        listed = any(row.get("comment") == tag or row.get("address") in addresses for row in entries)
        suspended_by_profile = (
            secret is not None
            and secret.get("profile") == desired.suspended_profile
            and desired.profile != desired.suspended_profile
        )
        state: SecretState
        if secret is None:
            state = "absent"
        elif _ros_bool(secret.get("disabled")) or suspended_by_profile or listed:
            state = "disabled"
        else:
            state = "enabled"
        return ApplyResult(
            changed=bool(actions),
            actions=actions,
            router_state=state,
            online=bool(sessions),
            session=sessions[0] if sessions else None,
            warnings=warnings,
        )

    # -- bulk read for reconciliation --------------------------------------------------------

    def observe(self, names: Iterable[str] | None = None, suspended_list: str = "suspended") -> dict[str, Observation]:
        """Everything a reconciler needs about every subscriber, in three API calls.

        Without ``names`` the result covers every secret plus every session without a secret
        (e.g. RADIUS users); with ``names`` exactly those names, present or not.
        """
        secrets = {
            row.get("name", ""): row
            for row in self._print("/ppp/secret", proplist=".id,name,password,profile,disabled,comment,remote-address")
        }
        sessions: dict[str, Row] = {}
        for row in self._print("/ppp/active", proplist=".id,name,address,caller-id,uptime,service"):
            sessions.setdefault(row.get("name", ""), row)
        entries = self._print("/ip/firewall/address-list", f"?=list={suspended_list}", proplist="address,comment")
        listed_addresses = {row.get("address", "") for row in entries}
        listed_tags = {row.get("comment", "") for row in entries}

        wanted = list(names) if names is not None else sorted(set(secrets) | set(sessions))
        result: dict[str, Observation] = {}
        for name in wanted:
            secret = secrets.get(name)
            session = sessions.get(name)
            addresses = {
                _normalise_address(value)
                for value in (
                    session.get("address") if session else None,
                    secret.get("remote-address") if secret else None,
                )
                if value
            }
            result[name] = Observation(
                name=name,
                exists=secret is not None,
                disabled=_ros_bool(secret.get("disabled")) if secret else False,
                profile=secret.get("profile") if secret else None,
                comment=secret.get("comment", "") if secret else "",
                remote_address=(secret.get("remote-address") or None) if secret else None,
                online=session is not None,
                address=(session.get("address") or None) if session else None,
                caller_id=(session.get("caller-id") or None) if session else None,
                uptime=(session.get("uptime") or None) if session else None,
                session_id=session.get(".id") if session else None,
                suspended_listed=_list_tag(name) in listed_tags or bool(addresses & listed_addresses),
                password=secret.get("password") if secret else None,
            )
        return result


def test_connection(config: RouterConfig) -> ConnectionTestResult:
    """Connect, log in and read identity and resources; reports problems instead of raising."""
    started = time.monotonic()

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000.0, 1)

    try:
        with MikrotikDriver(config) as driver:
            details = driver.test_connection()
    except RouterError as error:
        return ConnectionTestResult(ok=False, kind=error.kind, message=error.message, details={}, latency_ms=elapsed())
    except Exception as exc:  # the settings page must always get an answer
        return ConnectionTestResult(
            ok=False,
            kind="error",
            message=f"Unexpected error talking to {config.address}: {exc!r}",
            details={},
            latency_ms=elapsed(),
        )
    latency = elapsed()
    message = (
        f"Connected to {details['identity'] or config.host} (RouterOS {details['version']}, "
        f"{details['board']}) in {latency:.0f} ms"
    )
    return ConnectionTestResult(ok=True, kind=None, message=message, details=details, latency_ms=latency)


# Its name starts with "test"; stop pytest from collecting it wherever it gets imported.
test_connection.__test__ = False  # type: ignore[attr-defined]
