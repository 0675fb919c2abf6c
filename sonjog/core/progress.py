"""A dependency-free progress bar for long CLI work, drawn on stderr so --json stdout stays clean."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self.done = 0

    def advance(self, step: int = 1, note: str = "") -> None:
        self.done = min(self.done + step, self.total)
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.started
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{elapsed:5.1f}s {note:<24}"
        )
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()
