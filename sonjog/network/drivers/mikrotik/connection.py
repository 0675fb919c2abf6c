"""One API session to a RouterOS device: connecting (TCP, optional TLS, login), explaining why opening
failed depending on the step that was running, and running raw commands over the text-only API.

``RouterSession`` is the base every part of the driver builds on: it owns the connection, reopens it
after a break, and turns librouteros's exceptions into ``RouterError``s. A connection that broke in the
middle of a reply is closed and never reused.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

import librouteros
from librouteros.api import Api
from librouteros.exceptions import ConnectionClosed, LibRouterosError, MultiTrapError, TrapError
from librouteros.login import plain as plain_login
from librouteros.types import ReplyDict

from sonjog.network.drivers.mikrotik.errors import (
    RouterCommandError,
    RouterConnectionLost,
    RouterError,
    RouterLoginFailed,
    RouterRefused,
    RouterTimeout,
    RouterTLSError,
    RouterUnreachable,
    command_error,
    is_missing_item,
    transport_error,
    trap_text,
    where,
)
from sonjog.network.drivers.mikrotik.types import DEFAULT_API_PORT, DEFAULT_API_SSL_PORT, RouterConfig, Row
from sonjog.network.drivers.mikrotik.values import text_row

# Whoever calls this over the API must use the same encoding as the router's own text; RouterOS
# stores what it receives, so UTF-8 everywhere keeps Bangla names and comments intact.
_ENCODING: Final = "utf-8"
_TLS_PROBE_TIMEOUT: Final = 3.0


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


def client_tls_context(verify: bool) -> ssl.SSLContext:
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


def open_api(config: RouterConfig) -> Api:
    """Connect and log in; every failure comes out as the ``RouterError`` that explains it."""
    phase = _Phase()
    context = client_tls_context(config.verify_tls) if config.use_tls else None

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
        raise connect_error(config, exc, phase.name) from exc


def connect_error(config: RouterConfig, exc: BaseException, phase: str) -> RouterError:
    address = config.address
    service = "api-ssl" if config.use_tls else "api"
    if phase == "login" and isinstance(exc, TrapError | MultiTrapError):
        text, _ = trap_text(exc)
        return RouterLoginFailed(
            f"Router {address} rejected the login for user {config.username!r} ({text}). "
            "Check the user name and password, and that the user exists under /user with a group "
            "that has the 'api', 'read' and 'write' policies.",
            **where(config),
        )
    if phase == "handshake" or isinstance(exc, ssl.SSLError):
        return tls_error(config, exc)
    if isinstance(exc, ConnectionRefusedError):
        return RouterRefused(
            f"Router {address} refused the connection. Is the {service} service enabled on port "
            f"{config.port}? On the router: /ip service enable {service}, and check its port and "
            "'available-from' under /ip service.",
            **where(config),
        )
    if isinstance(exc, TimeoutError):
        if phase == "connect":
            return RouterTimeout(
                f"No answer from {address} within {config.timeout:g}s. Check that the router is reachable "
                f"from this server (ping, VPN or tunnel up) and that its firewall input chain allows "
                f"TCP {config.port} from here.",
                **where(config),
            )
        return RouterTimeout(
            f"Router {address} accepted the connection but did not answer the login within "
            f"{config.timeout:g}s. The router may be overloaded (check CPU in /system resource) or the "
            "API service may be stuck; try again, or restart it with /ip service disable/enable "
            f"{service}.",
            **where(config),
        )
    if isinstance(exc, socket.gaierror):
        return RouterUnreachable(
            f"Cannot resolve router host {config.host!r}: check the address in the router settings "
            "and this server's DNS.",
            **where(config),
        )
    if phase == "connect" and isinstance(exc, OSError):
        reason = errno.errorcode.get(exc.errno or 0, "") or str(exc)
        return RouterUnreachable(
            f"Cannot reach router {address} ({reason}). Check the address, the route or VPN to the "
            "router, and that it is powered on.",
            **where(config),
        )
    if (
        phase == "login"
        and not config.use_tls
        and isinstance(exc, ConnectionClosed | ConnectionError)
        and port_speaks_tls(config)
    ):
        return RouterTLSError(
            f"Port {config.port} on {config.host} speaks TLS: it is the API-SSL port. Turn on TLS "
            f"for this router, or use the plain API port ({DEFAULT_API_PORT}).",
            **where(config),
        )
    if phase == "login":
        return RouterConnectionLost(
            f"Router {address} closed the connection during login ({exc or type(exc).__name__}). Check "
            f"'available-from' of /ip service {service} includes this server's address, and that the "
            "router is not at its API session limit.",
            **where(config),
        )
    return RouterConnectionLost(f"Connection to {address} failed: {exc}", **where(config))


def tls_error(config: RouterConfig, exc: BaseException) -> RouterTLSError:
    address = config.address
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
    return RouterTLSError(f"TLS handshake with {address} failed: {detail}", **where(config))


def port_speaks_tls(config: RouterConfig) -> bool:
    """A plain API client on the API-SSL port just sees the connection die; find out why."""
    context = client_tls_context(verify=False)
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


class RouterSession:
    """One API session to one RouterOS device.

    Use it as a context manager. A call made after the connection broke opens a new one, so a
    long-lived session recovers by itself; a failed call is never retried here, the caller decides
    (every method of the driver is safe to repeat).
    """

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self._api: Api | None = None

    # -- connection lifecycle ----------------------------------------------------------------

    def __enter__(self) -> Self:
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

    def connect(self) -> Self:
        if self._api is None:
            self._api = open_api(self.config)
        return self

    def close(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(OSError):
                api.close()

    def _connection(self) -> Api:
        if self._api is None:
            self._api = open_api(self.config)
        return self._api

    def _where(self) -> dict[str, Any]:
        return where(self.config)

    # -- raw command execution ---------------------------------------------------------------

    def _run(self, path: str, attrs: Mapping[str, str] | None = None, queries: Sequence[str] = ()) -> list[Row]:
        api = self._connection()
        words = [f"={key}={value}" for key, value in (attrs or {}).items()]
        words.extend(queries)
        try:
            return [text_row(row) for row in api.rawCmd(path, *words)]
        except (TrapError, MultiTrapError) as exc:
            # A trap is a complete answer: the connection is still in step and stays usable.
            raise command_error(self.config, exc, path) from exc
        except (LibRouterosError, OSError) as exc:
            # Half a reply may still be in flight, so this connection can never be trusted again.
            self.close()
            raise transport_error(self.config, exc, path) from exc

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
            if not is_missing_item(error):
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
                if not is_missing_item(error):
                    raise
        return removed
