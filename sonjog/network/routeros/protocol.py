"""RouterOS API wire format: word length prefixes, words and sentences.

A sentence is a sequence of words ended by a zero-length word. Every word is sent as
``<length prefix><bytes>``; the prefix takes 1 to 5 bytes depending on the length:

=====================  =====  ==========================================
length                 bytes  first byte
=====================  =====  ==========================================
``0x00 .. 0x7F``       1      ``0xxxxxxx``
``0x80 .. 0x3FFF``     2      ``10xxxxxx`` (length OR 0x8000)
``0x4000 .. 0x1FFFFF`` 3      ``110xxxxx`` (length OR 0xC00000)
``0x200000 ..          4      ``1110xxxx`` (length OR 0xE0000000)
0xFFFFFFF``
``>= 0x10000000``      5      ``0xF0`` followed by the length in 4 bytes
=====================  =====  ==========================================

A first byte of ``0xF8`` or above is a reserved control byte; nothing legitimate sends one,
so it is treated as a protocol error. All multi-byte values are big-endian.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Final

MAX_WORD_LENGTH: Final = 0xFFFFFFFF
DEFAULT_ENCODING: Final = "utf-8"
# surrogateescape lets a word with bytes that are not valid in the chosen encoding pass through
# the emulator unchanged instead of being mangled or rejected.
_ERRORS: Final = "surrogateescape"
_RECV_CHUNK: Final = 65536


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid API stream."""


class ConnectionClosed(ProtocolError):
    """The peer closed the connection (cleanly between sentences or in the middle of one)."""

    def __init__(self, message: str, *, mid_sentence: bool = False) -> None:
        super().__init__(message)
        self.mid_sentence = mid_sentence


def encode_length(length: int) -> bytes:
    """Return the length prefix for a word of ``length`` bytes."""
    if length < 0:
        raise ValueError(f"negative word length {length}")
    if length < 0x80:
        return bytes((length,))
    if length < 0x4000:
        return (length | 0x8000).to_bytes(2, "big")
    if length < 0x200000:
        return (length | 0xC00000).to_bytes(3, "big")
    if length < 0x10000000:
        return (length | 0xE0000000).to_bytes(4, "big")
    if length <= MAX_WORD_LENGTH:
        return b"\xf0" + length.to_bytes(4, "big")
    raise ValueError(f"word length {length} does not fit in the API length prefix")


def prefix_size(first_byte: int) -> int:
    """Total size in bytes of a length prefix that starts with ``first_byte``."""
    if first_byte < 0x80:
        return 1
    if first_byte < 0xC0:
        return 2
    if first_byte < 0xE0:
        return 3
    if first_byte < 0xF0:
        return 4
    if first_byte == 0xF0:
        return 5
    raise ProtocolError(f"reserved control byte 0x{first_byte:02X} in length prefix")


def decode_length(prefix: bytes) -> int:
    """Decode a complete length prefix (as sized by :func:`prefix_size`)."""
    if not prefix:
        raise ProtocolError("empty length prefix")
    size = prefix_size(prefix[0])
    if len(prefix) != size:
        raise ProtocolError(f"length prefix should be {size} bytes, got {len(prefix)}")
    if size == 1:
        return prefix[0]
    if size == 5:
        return int.from_bytes(prefix[1:], "big")
    # Strip the marker bits: 2 bytes keep 14 bits, 3 keep 21, 4 keep 28.
    value_bits = 7 * size
    return int.from_bytes(prefix, "big") & ((1 << value_bits) - 1)


def encode_word(word: str | bytes, encoding: str = DEFAULT_ENCODING) -> bytes:
    data = word if isinstance(word, bytes) else word.encode(encoding, _ERRORS)
    return encode_length(len(data)) + data


def encode_sentence(words: Iterable[str | bytes], encoding: str = DEFAULT_ENCODING) -> bytes:
    """Encode words followed by the zero-length terminator word."""
    return b"".join(encode_word(word, encoding) for word in words) + b"\x00"


def split_sentences(data: bytes, encoding: str = DEFAULT_ENCODING) -> list[list[str]]:
    """Decode a byte string holding only complete sentences (handy for tests and logging)."""
    sentences: list[list[str]] = []
    current: list[str] = []
    pos = 0
    while pos < len(data):
        size = prefix_size(data[pos])
        if pos + size > len(data):
            raise ProtocolError("truncated length prefix")
        length = decode_length(data[pos : pos + size])
        pos += size
        if length == 0:
            sentences.append(current)
            current = []
            continue
        if pos + length > len(data):
            raise ProtocolError("truncated word")
        current.append(data[pos : pos + length].decode(encoding, _ERRORS))
        pos += length
    if current:
        raise ProtocolError("data ends in the middle of a sentence")
    return sentences


class SentenceReader:
    """Incremental reader of sentences from a ``recv``-like callable.

    ``max_word_length`` bounds how much a single word may make us buffer, so a garbage or hostile
    length prefix cannot make the process allocate gigabytes.
    """

    def __init__(
        self,
        recv: Callable[[int], bytes],
        *,
        encoding: str = DEFAULT_ENCODING,
        max_word_length: int = MAX_WORD_LENGTH,
    ) -> None:
        self._recv = recv
        self._buffer = bytearray()
        self.encoding = encoding
        self.max_word_length = max_word_length

    def _fill(self, needed: int, *, mid_sentence: bool) -> None:
        while len(self._buffer) < needed:
            chunk = self._recv(max(_RECV_CHUNK, needed - len(self._buffer)))
            if not chunk:
                raise ConnectionClosed("connection closed by peer", mid_sentence=mid_sentence)
            self._buffer += chunk

    def _take(self, count: int, *, mid_sentence: bool) -> bytes:
        self._fill(count, mid_sentence=mid_sentence)
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def read_word(self, *, mid_sentence: bool = True) -> str:
        first = self._take(1, mid_sentence=mid_sentence)
        size = prefix_size(first[0])
        prefix = first + self._take(size - 1, mid_sentence=True) if size > 1 else first
        length = decode_length(prefix)
        if length > self.max_word_length:
            raise ProtocolError(f"word of {length} bytes exceeds the limit of {self.max_word_length}")
        return self._take(length, mid_sentence=True).decode(self.encoding, _ERRORS)

    def read_sentence(self) -> list[str]:
        """Read words up to the terminator; an empty list means an empty sentence was received."""
        words: list[str] = []
        while True:
            word = self.read_word(mid_sentence=bool(words))
            if word == "":
                return words
            words.append(word)


class SentenceStream:
    """A blocking socket speaking API sentences; used by the emulator and by raw-socket tests."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        encoding: str = DEFAULT_ENCODING,
        max_word_length: int = MAX_WORD_LENGTH,
    ) -> None:
        self.sock = sock
        self.encoding = encoding
        self.reader = SentenceReader(sock.recv, encoding=encoding, max_word_length=max_word_length)

    def write_sentence(self, words: Sequence[str | bytes]) -> None:
        self.sock.sendall(encode_sentence(words, self.encoding))

    def write_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_sentence(self) -> list[str]:
        return self.reader.read_sentence()

    def read_until_done(self) -> list[list[str]]:
        """Read reply sentences up to and including ``!done`` (or a ``!fatal``)."""
        replies: list[list[str]] = []
        while True:
            sentence = self.read_sentence()
            replies.append(sentence)
            if sentence and sentence[0] in ("!done", "!fatal"):
                return replies

    def command(self, *words: str) -> list[list[str]]:
        self.write_sentence(words)
        return self.read_until_done()

    def close(self) -> None:
        self.sock.close()


def attribute_word(key: str, value: str) -> str:
    return f"={key}={value}"


def parse_attribute_word(word: str) -> tuple[str, str]:
    """Split ``=key=value`` (value may itself contain ``=``); ``=key`` alone means an empty value."""
    if not word.startswith("="):
        raise ValueError(f"not an attribute word: {word!r}")
    key, sep, value = word[1:].partition("=")
    return key, value if sep else ""


def words_to_dict(words: Iterable[str]) -> dict[str, str]:
    """Collect the ``=key=value`` words of a reply sentence into a dict (other words ignored)."""
    result: dict[str, str] = {}
    for word in words:
        if word.startswith("="):
            key, value = parse_attribute_word(word)
            result[key] = value
    return result
