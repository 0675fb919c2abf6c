"""Fault injection on replies: a delay before every answer, and answers cut off mid-sentence.

:class:`ReplyFaults` holds the switches a test flips on a running emulator (through
:meth:`RouterOSEmulator.set_reply_delay` and :meth:`RouterOSEmulator.drop_mid_reply`); each
connection reads them before it sends a reply, and :func:`cut_point` says where a dropped reply
stops. Refusing connections is the server's part, as it closes and reopens the listeners.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class ReplyFaults:
    """The reply switches, guarded by the lock passed in: the server's control lock, so that one
    lock keeps guarding all of the server's small shared fields."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._reply_delay = 0.0
        self._drops_pending = 0

    def set_reply_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("delay must not be negative")
        with self._lock:
            self._reply_delay = float(seconds)

    @property
    def reply_delay(self) -> float:
        with self._lock:
            return self._reply_delay

    def drop_mid_reply(self, count: int) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._drops_pending = count

    @property
    def pending_drops(self) -> int:
        with self._lock:
            return self._drops_pending

    def take_drop(self) -> bool:
        """Use up one pending drop: True when this reply is to be cut."""
        with self._lock:
            if self._drops_pending > 0:
                self._drops_pending -= 1
                return True
            return False


def cut_point(encoded: Sequence[bytes]) -> int:
    """Where to cut a reply: after the first sentence and half of the next, or mid-sentence.

    Either way the client has started parsing and then sees the stream die, which is the
    nastiest case for a client's error handling.
    """
    if len(encoded) > 1:
        return len(encoded[0]) + max(1, len(encoded[1]) // 2)
    return max(1, len(encoded[0]) // 2)
