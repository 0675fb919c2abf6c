"""The emulator itself: :class:`RouterOSEmulator`, the API (and API-SSL) server on 127.0.0.1.

It owns the lifecycle (start, stop, serve forever), the bookkeeping of client connections,
credentials, the command log, and the fault switches tests flip at run time (refused
connections, slow replies, replies cut mid-sentence). The device behind it is a
:class:`~sonjog.network.routeros.emulator.router.Router`; the direct, in-process view of that
device (tables, seeding, simulated dial-ins) comes from
:class:`~sonjog.network.routeros.emulator.device.DeviceAccess`.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import ssl
import threading
from pathlib import Path
from typing import Any, Final

from sonjog.network.routeros import protocol
from sonjog.network.routeros.emulator.command import Command, LoggedCommand
from sonjog.network.routeros.emulator.connection import ALLOWED_HOST, Connection, Listener
from sonjog.network.routeros.emulator.device import DeviceAccess
from sonjog.network.routeros.emulator.faults import ReplyFaults
from sonjog.network.routeros.emulator.router import DEFAULT_VERSION, Router

LOG = logging.getLogger(__name__)

_DEFAULT_MAX_WORD: Final = 32 * 1024 * 1024


class RouterOSEmulator(DeviceAccess):
    """A RouterOS API (and optionally API-SSL) server on 127.0.0.1 backed by an in-memory router.

    >>> emu = RouterOSEmulator(password="secret").start()
    >>> emu.port  # the actual port when 0 was requested
    ...
    >>> emu.stop()
    """

    def __init__(
        self,
        host: str = ALLOWED_HOST,
        port: int = 0,
        tls_port: int | None = None,
        username: str = "admin",
        password: str = "",
        state_file: str | os.PathLike[str] | None = None,
        identity: str = "emulated",
        *,
        empty_reply: bool = False,
        inline_export: bool = False,
        version: str = DEFAULT_VERSION,
        encoding: str = protocol.DEFAULT_ENCODING,
        max_word_length: int = _DEFAULT_MAX_WORD,
    ) -> None:
        if host != ALLOWED_HOST:
            raise ValueError(f"the RouterOS emulator only binds {ALLOWED_HOST}, not {host!r}")
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.username = username
        self.password = password
        self.empty_reply = empty_reply
        self.encoding = encoding
        self.max_word_length = max_word_length
        self.state_file = Path(state_file) if state_file is not None else None
        self.router = Router(
            identity=identity, version=version, state_file=self.state_file, inline_export=inline_export
        )
        self._users: dict[str, str] = {username: password}
        # _lifecycle serialises start/stop/refuse (which join threads); _control guards the
        # small shared fields and is never held while joining, so accept threads can't deadlock.
        self._lifecycle = threading.Lock()
        self._control = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None
        self._listeners: list[Listener] = []
        self._connections: set[Connection] = set()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._refusing = False
        self._faults = ReplyFaults(self._control)
        self._command_log: list[LoggedCommand] = []
        self._total_connections = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    def start(self) -> RouterOSEmulator:
        """Bind and start accepting in background threads; returns self for chaining."""
        with self._lifecycle:
            if self.running:
                raise RuntimeError("emulator already running")
            self._stopping.clear()
            listeners = [Listener(self, self.port, tls=False)]
            if self.tls_port is not None:
                listeners.append(Listener(self, self.tls_port, tls=True))
                self._ssl_context = _server_ssl_context()
            opened: list[Listener] = []
            try:
                for listener in listeners:
                    listener.open()
                    opened.append(listener)
            except OSError:
                for listener in opened:
                    listener.close()
                raise
            self._listeners = listeners
            self.port = listeners[0].port
            if self.tls_port is not None:
                self.tls_port = listeners[1].port
            with self._control:
                self._refusing = False
            self._stopped.clear()
            LOG.info("RouterOS emulator listening on %s", self.describe())
        return self

    def stop(self) -> None:
        """Stop listening, drop every client and wait for the worker threads."""
        with self._lifecycle:
            if not self.running:
                return
            self._stopping.set()
            for listener in self._listeners:
                listener.close()
            self._join_connections()
            self._stopped.set()

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`stop` is called, e.g. from a signal handler."""
        if not self.running:
            self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        finally:
            self.stop()

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to stop; only sets a flag, so safe in a signal handler."""
        self._stopping.set()

    def __enter__(self) -> RouterOSEmulator:
        return self.start() if not self.running else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def describe(self) -> str:
        where = f"{self.host}:{self.port} (api)"
        if self.tls_port is not None:
            where += f", {self.host}:{self.tls_port} (api-ssl)"
        return where

    # -- connection bookkeeping (called by listener/connection threads) ------------------------

    def _spawn_connection(self, sock: socket.socket, peer: Any, tls: bool) -> None:
        with self._control:
            if self._stopping.is_set() or self._refusing:
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                assert self._ssl_context is not None
                sock = self._ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            connection = Connection(self, sock, peer, tls)
            self._connections.add(connection)
            self._total_connections += 1
            # Started under the lock so nobody can snapshot and join a thread not yet started.
            connection.thread.start()

    def _forget_connection(self, connection: Connection) -> None:
        with self._control:
            self._connections.discard(connection)

    def _check_credentials(self, name: str, password: str) -> bool:
        with self._control:
            expected = self._users.get(name)
        return expected is not None and hmac.compare_digest(
            expected.encode("utf-8", "surrogateescape"), password.encode("utf-8", "surrogateescape")
        )

    def _log_command(self, command: Command) -> None:
        attributes = dict(command.attrs)
        if command.path == "/login" and "password" in attributes:
            attributes["password"] = "***"
        if command.tag is not None:
            attributes[".tag"] = command.tag
        with self._control:
            self._command_log.append(LoggedCommand(command.path, attributes))

    def _take_drop(self) -> bool:
        return self._faults.take_drop()

    @property
    def connection_count(self) -> int:
        """Client connections currently open."""
        with self._control:
            return len(self._connections)

    @property
    def total_connections(self) -> int:
        """Client connections accepted since construction."""
        with self._control:
            return self._total_connections

    # -- fault injection ---------------------------------------------------------------------

    def refuse_connections(self, refuse: bool = True, *, drop_existing: bool = False) -> None:
        """Stop listening (clients get ECONNREFUSED) or listen again on the very same ports."""
        with self._lifecycle:
            if not self.running:
                raise RuntimeError("emulator is not running")
            with self._control:
                was_refusing, self._refusing = self._refusing, refuse
            if refuse and not was_refusing:
                for listener in self._listeners:
                    listener.close()
            elif not refuse and was_refusing:
                for listener in self._listeners:
                    listener.open()
        if refuse and drop_existing:
            self.disconnect_all()

    @property
    def refusing(self) -> bool:
        with self._control:
            return self._refusing

    def set_reply_delay(self, seconds: float) -> None:
        """Wait this long before answering every command (login included)."""
        self._faults.set_reply_delay(seconds)

    @property
    def reply_delay(self) -> float:
        return self._faults.reply_delay

    def drop_mid_reply(self, count: int = 1) -> None:
        """For the next ``count`` commands (``/login`` excluded) apply the command, send part of
        the reply (the first sentence plus half of the next, or half of a lone sentence) and
        then reset the connection. The change is applied, the client just never hears back."""
        self._faults.drop_mid_reply(count)

    @property
    def pending_drops(self) -> int:
        return self._faults.pending_drops

    def disconnect_all(self) -> int:
        """Close every client connection now; returns how many were open."""
        return self._join_connections()

    def _join_connections(self) -> int:
        with self._control:
            connections = list(self._connections)
        for connection in connections:
            connection.shutdown()
        for connection in connections:
            if connection.thread is not threading.current_thread():
                connection.thread.join(timeout=5)
        return len(connections)

    # -- command log -------------------------------------------------------------------------

    @property
    def command_log(self) -> list[LoggedCommand]:
        """Snapshot of every sentence received, in order: ``(path, attributes)`` tuples."""
        with self._control:
            return list(self._command_log)

    def command_count(self, path: str) -> int:
        with self._control:
            return sum(1 for entry in self._command_log if entry.path == path)

    def clear_command_log(self) -> None:
        with self._control:
            self._command_log.clear()

    # -- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        with self._control:
            self._users[name] = password


_ssl_context_lock = threading.Lock()


def _server_ssl_context() -> ssl.SSLContext:
    # Imported lazily so plain-TCP users never pay for cryptography's import time.
    from sonjog.network.routeros import tls

    with _ssl_context_lock:
        return tls.server_context()
