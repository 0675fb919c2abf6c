"""The command line: ``python -m sonjog.network.routeros.emulator`` and ``sonjog
routeros_emulator`` both end in :func:`run_emulator`, which serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TextIO

from sonjog.network.routeros.emulator.server import RouterOSEmulator


def run_emulator(
    port: int = 8728,
    tls_port: int | None = None,
    user: str = "admin",
    password: str = "",
    state_file: str | os.PathLike[str] | None = None,
    *,
    identity: str = "emulated",
    empty_reply: bool = False,
    inline_export: bool = False,
    stdout: TextIO | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. Prints one line saying where it listens."""
    emulator = RouterOSEmulator(
        port=port,
        tls_port=tls_port,
        username=user,
        password=password,
        state_file=state_file,
        identity=identity,
        empty_reply=empty_reply,
        inline_export=inline_export,
    )
    emulator.start()
    out = stdout if stdout is not None else sys.stdout
    details = f"user {user!r}"
    if state_file is not None:
        details += f", state {os.fspath(state_file)}"
    print(f"RouterOS API emulator listening on {emulator.describe()}; {details}", file=out, flush=True)
    with _stop_on_signals(emulator):
        emulator.serve_forever()


@contextlib.contextmanager
def _stop_on_signals(emulator: RouterOSEmulator) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        # Only flag the stop here; serve_forever() notices and shuts down outside the handler.
        emulator.request_stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="RouterOS API emulator (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=8728, help="API port (0 picks a free one)")
    parser.add_argument("--tls-port", type=int, default=None, help="also serve API-SSL on this port")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="")
    parser.add_argument("--state", default=None, help="JSON file the configuration is kept in")
    parser.add_argument("--identity", default="emulated")
    parser.add_argument("--empty-reply", action="store_true", help="send !empty for empty prints (7.18+)")
    parser.add_argument("--inline-export", action="store_true", help="return /export text in =ret=")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_emulator(
        args.port,
        args.tls_port,
        args.user,
        args.password,
        args.state,
        identity=args.identity,
        empty_reply=args.empty_reply,
        inline_export=args.inline_export,
    )
    return 0
