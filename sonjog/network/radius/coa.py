"""RFC 5176 dynamic authorization: Disconnect-Request and CoA-Request to a NAS, built with pyrad.

Both senders return a `CoaResult` for every network outcome (ACK, NAK, no answer, unreachable NAS,
replies signed with another secret) so that a billing job can record the outcome and move on. They
raise only for caller mistakes that no network exchange could fix (a Disconnect with nothing that
identifies the session).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import socket
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pyrad import packet as rad_packet
from pyrad.dictionary import Dictionary

DICTIONARY_PATH = Path(__file__).with_name("dictionary")

DISCONNECT_REQUEST = 40
DISCONNECT_ACK = 41
DISCONNECT_NAK = 42
COA_REQUEST = 43
COA_ACK = 44
COA_NAK = 45

CODE_NAMES = {
    DISCONNECT_REQUEST: "Disconnect-Request",
    DISCONNECT_ACK: "Disconnect-ACK",
    DISCONNECT_NAK: "Disconnect-NAK",
    COA_REQUEST: "CoA-Request",
    COA_ACK: "CoA-ACK",
    COA_NAK: "CoA-NAK",
}

ERROR_CAUSE = 101

Outcome = Literal["ack", "nak", "timeout", "error"]
AttributeValue = str | int | bytes
AttributeValues = AttributeValue | Sequence[AttributeValue]


@dataclass(frozen=True)
class CoaResult:
    """What the NAS answered to one Disconnect-Request or CoA-Request.

    `reason` explains "timeout" and "error" outcomes (and unexpected NAKs) in words for logs and the UI.
    """

    outcome: Outcome
    error_cause: int | None = None
    error_cause_text: str | None = None
    latency_ms: float = 0.0
    reply_attributes: dict[str, list[Any]] = field(default_factory=dict)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ack"


@functools.cache
def load_dictionary() -> Dictionary:
    """The shipped dictionary, parsed once per process (pyrad's parser is slow and the file never changes)."""
    return Dictionary(str(DICTIONARY_PATH))


def error_cause_text(code: int) -> str | None:
    """Name of an RFC 5176 Error-Cause value, or None for a value the dictionary does not know."""
    values = load_dictionary().attributes["Error-Cause"].values
    encoded = code.to_bytes(4, "big")
    if values.HasBackward(encoded):
        return str(values.GetBackward(encoded))
    return None


def request_authenticator(raw: bytes, secret: bytes) -> bytes:
    """RFC 5176 section 3.3: the Request Authenticator is computed like an Accounting-Request's."""
    return hashlib.md5(raw[:4] + bytes(16) + raw[20:] + secret).digest()


def request_authenticator_valid(raw: bytes, secret: bytes) -> bool:
    if len(raw) < 20:
        return False
    length = int.from_bytes(raw[2:4], "big")
    raw = raw[:length]
    return hmac.compare_digest(request_authenticator(raw, secret), raw[4:20])


def send_disconnect(
    nas_address: str,
    coa_port: int,
    secret: str | bytes,
    *,
    username: str | None = None,
    session_id: str | None = None,
    framed_ip: str | None = None,
    attributes: Mapping[str, AttributeValues] | None = None,
    timeout: float = 2.0,
    retries: int = 1,
    message_authenticator: bool = False,
) -> CoaResult:
    """Ask the NAS to end a session (Disconnect-Request).

    The session is identified by any combination of User-Name, Acct-Session-Id and Framed-IP-Address;
    NASes differ in which of them they match on, so pass every one you know. `retries` counts re-sends
    after the first attempt, each waiting `timeout` seconds.
    """
    if not (username or session_id or framed_ip or attributes):
        raise ValueError("a Disconnect-Request needs username, session_id or framed_ip to identify the session")
    pairs = _identity_pairs(username, session_id, framed_ip)
    pairs.extend(_flatten(attributes or {}))
    return _exchange(DISCONNECT_REQUEST, nas_address, coa_port, secret, pairs, timeout, retries, message_authenticator)


def send_coa(
    nas_address: str,
    coa_port: int,
    secret: str | bytes,
    *,
    username: str,
    attributes: Mapping[str, AttributeValues],
    session_id: str | None = None,
    framed_ip: str | None = None,
    timeout: float = 2.0,
    retries: int = 1,
    message_authenticator: bool = False,
) -> CoaResult:
    """Change the authorization of a live session (CoA-Request), e.g. {"Mikrotik-Rate-Limit": "5M/5M"}."""
    pairs = _identity_pairs(username, session_id, framed_ip)
    pairs.extend(_flatten(attributes))
    return _exchange(COA_REQUEST, nas_address, coa_port, secret, pairs, timeout, retries, message_authenticator)


def _identity_pairs(
    username: str | None, session_id: str | None, framed_ip: str | None
) -> list[tuple[str, AttributeValue]]:
    pairs: list[tuple[str, AttributeValue]] = []
    if username:
        pairs.append(("User-Name", username))
    if session_id:
        pairs.append(("Acct-Session-Id", session_id))
    if framed_ip:
        pairs.append(("Framed-IP-Address", framed_ip))
    return pairs


def _flatten(attributes: Mapping[str, AttributeValues]) -> list[tuple[str, AttributeValue]]:
    pairs: list[tuple[str, AttributeValue]] = []
    for name, value in attributes.items():
        if isinstance(value, str | int | bytes):
            pairs.append((name, value))
        else:
            pairs.extend((name, item) for item in value)
    return pairs


def _build_request(
    code: int, secret: bytes, pairs: Iterable[tuple[str, AttributeValue]], message_authenticator: bool
) -> rad_packet.CoAPacket:
    dictionary = load_dictionary()
    request = rad_packet.CoAPacket(code=code, secret=secret, dict=dictionary)
    if message_authenticator:
        request.add_message_authenticator()
    for name, value in pairs:
        attribute = dictionary.attributes.get(name)
        if attribute is None:
            raise KeyError(f"attribute {name!r} is not in {DICTIONARY_PATH.name}")
        # pyrad encodes 'date' from int only; values often come from text settings.
        if attribute.type == "date" and isinstance(value, str):
            value = int(value)
        request.AddAttribute(name, value)
    return request


def _exchange(
    code: int,
    nas_address: str,
    port: int,
    secret: str | bytes,
    pairs: list[tuple[str, AttributeValue]],
    timeout: float,
    retries: int,
    message_authenticator: bool,
) -> CoaResult:
    secret_bytes = secret.encode() if isinstance(secret, str) else secret
    started = time.monotonic()

    def elapsed_ms() -> float:
        return (time.monotonic() - started) * 1000.0

    try:
        request = _build_request(code, secret_bytes, pairs, message_authenticator)
        raw_request = request.RequestPacket()
    except (KeyError, ValueError, TypeError) as exc:
        return CoaResult("error", latency_ms=elapsed_ms(), reason=f"cannot encode request: {exc}")

    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(nas_address, port, type=socket.SOCK_DGRAM)[0]
    except (OSError, UnicodeError) as exc:
        return CoaResult("error", latency_ms=elapsed_ms(), reason=f"cannot resolve {nas_address}: {exc}")

    ack, nak = (DISCONNECT_ACK, DISCONNECT_NAK) if code == DISCONNECT_REQUEST else (COA_ACK, COA_NAK)
    forged = 0
    try:
        # A connected socket makes the kernel drop datagrams from other hosts and report ICMP
        # port-unreachable as ECONNREFUSED, which turns "nothing listens there" into an immediate error.
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(sockaddr)
            for _attempt in range(max(retries, 0) + 1):
                # Retransmissions reuse the identifier and authenticator (RFC 5176 section 2.3) so the
                # NAS can recognise duplicates.
                sock.send(raw_request)
                deadline = time.monotonic() + timeout
                while (remaining := deadline - time.monotonic()) > 0:
                    sock.settimeout(remaining)
                    try:
                        raw_reply = sock.recv(4096)
                    except TimeoutError:
                        break
                    reply = _decode_reply(request, raw_reply)
                    if reply is None:
                        forged += 1
                        continue
                    if reply.id != request.id:
                        continue
                    return _result(reply, ack, nak, elapsed_ms())
    except ConnectionRefusedError:
        return CoaResult(
            "error",
            latency_ms=elapsed_ms(),
            reason=f"{nas_address}:{port} refused the request (ICMP port unreachable: no CoA listener there)",
        )
    except OSError as exc:
        return CoaResult("error", latency_ms=elapsed_ms(), reason=f"network error talking to {nas_address}: {exc}")

    if forged:
        return CoaResult(
            "error",
            latency_ms=elapsed_ms(),
            reason=f"{forged} reply(ies) from {nas_address}:{port} failed the Response Authenticator check "
            "(shared secret mismatch?)",
        )
    attempts = max(retries, 0) + 1
    return CoaResult(
        "timeout",
        latency_ms=elapsed_ms(),
        reason=f"no reply from {nas_address}:{port} after {attempts} attempt(s) of {timeout:g} s",
    )


def _decode_reply(request: rad_packet.CoAPacket, raw_reply: bytes) -> rad_packet.CoAPacket | None:
    """The decoded reply if it is authentic, None for garbage or a reply signed with another secret."""
    try:
        reply = request.CreateReply(packet=raw_reply)
    except rad_packet.PacketError:
        return None
    if reply.id != request.id:
        # A late answer to some earlier request on a reused port; not evidence of a wrong secret.
        return reply
    if not request.VerifyReply(reply, raw_reply):
        return None
    return reply


def _result(reply: rad_packet.CoAPacket, ack: int, nak: int, latency_ms: float) -> CoaResult:
    attributes = _decoded_attributes(reply)
    cause: int | None = None
    raw_causes = OrderedDict.get(reply, ERROR_CAUSE)
    if raw_causes and len(raw_causes[0]) == 4:
        cause = int.from_bytes(raw_causes[0], "big")
    cause_text = error_cause_text(cause) if cause is not None else None
    if reply.code == ack:
        return CoaResult("ack", cause, cause_text, latency_ms, attributes)
    if reply.code == nak:
        reason = f"NAS refused: Error-Cause {cause} ({cause_text})" if cause is not None else "NAS refused"
        return CoaResult("nak", cause, cause_text, latency_ms, attributes, reason)
    name = CODE_NAMES.get(reply.code, str(reply.code))
    return CoaResult("error", cause, cause_text, latency_ms, attributes, f"unexpected reply code {name}")


def _decoded_attributes(reply: rad_packet.CoAPacket) -> dict[str, list[Any]]:
    decoded: dict[str, list[Any]] = {}
    # pyrad's keys() maps attribute codes to names; iterating the packet itself yields raw codes.
    for key in reply.keys():  # noqa: SIM118
        try:
            values = list(reply[key])
        except (KeyError, ValueError, TypeError):
            values = list(OrderedDict.get(reply, key, []))
        decoded[key if isinstance(key, str) else str(key)] = values
    return decoded
