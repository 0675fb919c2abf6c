"""A stand-in NAS that answers RFC 5176 Disconnect/CoA requests on loopback, for tests and demos.

It checks the Request Authenticator with its shared secret and drops requests that fail, as
RFC 5176 section 3.3 requires, so a secret mismatch shows up on the sender as a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pyrad import packet as rad_packet
from pyrad.dictionary import Dictionary

from sonjog.network.radius.coa import (
    COA_ACK,
    COA_NAK,
    COA_REQUEST,
    CODE_NAMES,
    DISCONNECT_ACK,
    DISCONNECT_NAK,
    DISCONNECT_REQUEST,
    load_dictionary,
    request_authenticator_valid,
)

Mode = Literal["ack", "nak", "silent"]
MODES: tuple[Mode, ...] = ("ack", "nak", "silent")


@dataclass(frozen=True)
class ReceivedRequest:
    """One datagram the NAS got; `answer` is what it did about it ("ack", "nak", "silent" or "dropped")."""

    code: int
    code_name: str
    identifier: int
    attributes: dict[str, list[Any]]
    authenticator_valid: bool
    source: tuple[str, int]
    answer: str
    received_at: float = field(default_factory=time.time)


class LoopbackNas:
    """UDP CoA listener on 127.0.0.1 running in a background thread.

    `mode` and `error_cause` may be changed while it runs; each request uses the values current when
    it arrives. `reply_secret` signs replies with a different secret than the one requests are checked
    with, to exercise the sender's Response Authenticator check.
    """

    def __init__(
        self,
        secret: str | bytes = "testing123",
        port: int = 0,
        *,
        mode: Mode = "ack",
        error_cause: int = 503,
        coa_mode: Mode | None = None,
        reply_secret: str | bytes | None = None,
        host: str = "127.0.0.1",
        dictionary: Dictionary | None = None,
    ) -> None:
        self.secret = _as_bytes(secret)
        self.reply_secret = _as_bytes(reply_secret) if reply_secret is not None else None
        self.host = host
        self.mode: Mode = mode
        self.error_cause = error_cause
        # How CoA-Requests are answered when it differs from Disconnect-Requests (a NAS that can end
        # sessions but not change them: "nak" with error_cause 405 Unsupported-Service); None: `mode`.
        self.coa_mode: Mode | None = coa_mode
        self._requested_port = port
        self._dictionary = dictionary or load_dictionary()
        self._received: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("LoopbackNas is not started")
        return int(self._socket.getsockname()[1])

    @property
    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def wait_for(self, count: int, timeout: float = 2.0) -> list[ReceivedRequest]:
        """Block until at least `count` requests arrived (or `timeout` passed) and return them all."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self._received) >= count, timeout)
            return list(self._received)

    def start(self) -> LoopbackNas:
        if self._thread is not None:
            return self
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, self._requested_port))
        # A short poll lets stop() end the thread promptly without closing the socket under it.
        sock.settimeout(0.05)
        self._socket = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"loopback-nas:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> LoopbackNas:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        assert self._socket is not None
        sock = self._socket
        while not self._stop.is_set():
            try:
                data, source = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self._handle(data, (str(source[0]), int(source[1])))
            if reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply, source)

    def _handle(self, data: bytes, source: tuple[str, int]) -> bytes | None:
        try:
            request = rad_packet.CoAPacket(packet=data, secret=self.secret, dict=self._dictionary)
        except rad_packet.PacketError:
            self._record(ReceivedRequest(-1, "malformed", -1, {}, False, source, "dropped"))
            return None

        valid = request.code in (DISCONNECT_REQUEST, COA_REQUEST) and request_authenticator_valid(data, self.secret)
        mode = self.coa_mode if request.code == COA_REQUEST and self.coa_mode is not None else self.mode
        answer: str = mode if valid else "dropped"
        self._record(
            ReceivedRequest(
                code=request.code,
                code_name=CODE_NAMES.get(request.code, str(request.code)),
                identifier=request.id,
                attributes=_decode(request),
                authenticator_valid=valid,
                source=source,
                answer=answer,
            )
        )
        if not valid or mode == "silent":
            return None

        disconnect = request.code == DISCONNECT_REQUEST
        reply = request.CreateReply()
        if mode == "ack":
            reply.code = DISCONNECT_ACK if disconnect else COA_ACK
        else:
            reply.code = DISCONNECT_NAK if disconnect else COA_NAK
            reply.AddAttribute("Error-Cause", self.error_cause)
        if self.reply_secret is not None:
            reply.secret = self.reply_secret
        return bytes(reply.ReplyPacket())

    def _record(self, entry: ReceivedRequest) -> None:
        with self._arrived:
            self._received.append(entry)
            self._arrived.notify_all()


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _decode(request: rad_packet.CoAPacket) -> dict[str, list[Any]]:
    decoded: dict[str, list[Any]] = {}
    # pyrad's keys() maps attribute codes to names; iterating the packet itself yields raw codes.
    for key in request.keys():  # noqa: SIM118
        try:
            values = list(request[key])
        except (KeyError, ValueError, TypeError):
            values = []
        decoded[key if isinstance(key, str) else str(key)] = values
    return decoded
