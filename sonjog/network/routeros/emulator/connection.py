"""The sockets: :class:`Listener` accepts on 127.0.0.1 (plain API or API-SSL) and hands each
client to a :class:`Connection`, one thread per client, which reads sentences, handles ``/login``,
``/quit`` and the not-logged-in refusals, runs everything else on the router and writes the
``!re``/``!empty``/``!trap``/``!done``/``!fatal`` replies (with ``.tag``), applying reply faults.

Both reach the server that owns them only through :class:`ConnectionHost`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Sequence
from typing import Any, Final, Protocol

from sonjog.network.routeros import protocol
from sonjog.network.routeros.emulator.command import Command
from sonjog.network.routeros.emulator.errors import ApiTrap
from sonjog.network.routeros.emulator.faults import cut_point
from sonjog.network.routeros.emulator.router import Router

LOG = logging.getLogger(__name__)

ALLOWED_HOST: Final = "127.0.0.1"
_PRELOGIN_COMMAND_LIMIT: Final = 3
_TLS_HANDSHAKE_TIMEOUT: Final = 5.0


class ConnectionHost(Protocol):
    """What listeners and connections need from their server (implemented by RouterOSEmulator).

    The underscored members are the server's internal hooks. They are looked up on the server at
    every use, so a test may wrap one on a running emulator (``_log_command``, say).
    """

    encoding: str
    max_word_length: int
    empty_reply: bool
    _stopping: threading.Event

    @property
    def router(self) -> Router: ...

    @property
    def reply_delay(self) -> float: ...

    def _spawn_connection(self, sock: socket.socket, peer: Any, tls: bool) -> None: ...

    def _forget_connection(self, connection: Connection) -> None: ...

    def _check_credentials(self, name: str, password: str) -> bool: ...

    def _log_command(self, command: Command) -> None: ...

    def _take_drop(self) -> bool: ...


def _encode_reply(sentences: Sequence[Sequence[str]], encoding: str) -> list[bytes]:
    return [protocol.encode_sentence(sentence, encoding) for sentence in sentences]


class Listener:
    """One listening socket plus the thread accepting on it; can be closed and reopened."""

    def __init__(self, emulator: ConnectionHost, port: int, tls: bool) -> None:
        self.emulator = emulator
        self.port = port
        self.tls = tls
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Needed to rebind the same port right after "refusing" while old connections linger.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ALLOWED_HOST, self.port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.sock = sock
        kind = "api-ssl" if self.tls else "api"
        self.thread = threading.Thread(
            target=self._accept_loop, args=(sock,), name=f"routeros-emulator-{kind}-{self.port}", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        sock, thread = self.sock, self.thread
        self.sock, self.thread = None, None
        if sock is None:
            return
        # shutdown() takes the socket out of LISTEN at once and wakes the blocked accept();
        # close() alone would leave it listening until accept() returned.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _accept_loop(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            self.emulator._spawn_connection(conn, peer, self.tls)


class Connection:
    def __init__(self, emulator: ConnectionHost, sock: socket.socket, peer: Any, tls: bool) -> None:
        self.emulator = emulator
        self.sock = sock
        self.peer = peer
        self.tls = tls
        self.logged_in = False
        self.username: str | None = None
        self.prelogin_commands = 0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"routeros-emulator-conn-{peer}", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._handshake()
            self._serve()
        except (OSError, protocol.ProtocolError, ssl.SSLError) as exc:
            LOG.debug("connection %s ended: %s", self.peer, exc)
        finally:
            self._close()
            self.emulator._forget_connection(self)

    def _handshake(self) -> None:
        if isinstance(self.sock, ssl.SSLSocket):
            self.sock.settimeout(_TLS_HANDSHAKE_TIMEOUT)
            self.sock.do_handshake()
            self.sock.settimeout(None)

    def _close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            with contextlib.suppress(OSError):
                self.sock.close()

    def shutdown(self) -> None:
        """Called from other threads: wakes the blocked recv() so the thread ends."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def abort(self) -> None:
        """Close with a TCP reset, like a router that crashed or lost the link mid-reply."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close()

    # -- protocol loop -----------------------------------------------------------------------

    def _serve(self) -> None:
        emulator = self.emulator
        stream = protocol.SentenceStream(
            self.sock, encoding=emulator.encoding, max_word_length=emulator.max_word_length
        )
        while not self.closed.is_set():
            try:
                words = stream.read_sentence()
            except protocol.ConnectionClosed:
                return
            if not words:
                continue  # the API ignores empty sentences
            command = Command.parse(words)
            emulator._log_command(command)
            sentences, close_after = self._respond(command)
            if not self._send(command, sentences):
                return
            if close_after:
                return

    def _send(self, command: Command, sentences: list[list[str]]) -> bool:
        emulator = self.emulator
        delay = emulator.reply_delay
        if delay > 0 and emulator._stopping.wait(delay):
            return False
        encoded = _encode_reply(sentences, emulator.encoding)
        if command.path != "/login" and emulator._take_drop():
            self.sock.sendall(b"".join(encoded)[: cut_point(encoded)])
            self.abort()
            return False
        self.sock.sendall(b"".join(encoded))
        return True

    def _respond(self, command: Command) -> tuple[list[list[str]], bool]:
        tag = [f".tag={command.tag}"] if command.tag is not None else []
        path = command.path
        if path == "/quit":
            return [["!fatal", "session terminated on request", *tag]], True
        if path == "/login":
            return self._login(command, tag), False
        if not self.logged_in:
            self.prelogin_commands += 1
            if self.prelogin_commands >= _PRELOGIN_COMMAND_LIMIT:
                return [["!fatal", "not logged in", *tag]], True
            return [["!trap", "=message=not logged in", *tag], ["!done", *tag]], False
        try:
            result = self.emulator.router.execute(command)
        except ApiTrap as trap:
            return _trap_sentences(trap, tag), False
        sentences: list[list[str]] = []
        for row in result.rows:
            sentences.append(["!re", *(protocol.attribute_word(k, v) for k, v in row.items()), *tag])
        if result.listing and not result.rows and self.emulator.empty_reply:
            sentences.append(["!empty", *tag])
        sentences.append(["!done", *(protocol.attribute_word(k, v) for k, v in result.done.items()), *tag])
        return sentences, False

    def _login(self, command: Command, tag: list[str]) -> list[list[str]]:
        name = command.attrs.get("name", "")
        password = command.attrs.get("password", "")
        if self.emulator._check_credentials(name, password):
            self.logged_in = True
            self.username = name
            return [["!done", *tag]]
        return [["!trap", "=message=invalid user name or password (6)", *tag], ["!done", *tag]]


def _trap_sentences(trap: ApiTrap, tag: list[str]) -> list[list[str]]:
    sentences: list[list[str]] = []
    for message, category in trap.traps:
        words = ["!trap"]
        if category is not None:
            words.append(f"=category={category}")
        words.append(f"=message={message}")
        sentences.append([*words, *tag])
    sentences.append(["!done", *tag])
    return sentences
