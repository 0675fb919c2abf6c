"""The HTTP server every gateway emulator runs on: loopback only, one thread per request, routes by
method and path, JSON and form bodies, fault switches, and notifications posted back to the merchant.

A gateway emulator subclasses `EmulatorServer`, registers its routes in `routes()` and keeps its
payments under `self.lock`. Tests (and `make demo`) start one with `.start()`, read `.url`, and stop it
with `.stop()`; `fail_next(operation, kind)` makes the next call of one operation time out (the
emulator holds the request longer than any client waits), answer an error, or drop the connection.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import httpx

ALLOWED_HOST = "127.0.0.1"
HOLD_SECONDS = 12.0  # a "timeout" fault holds the request this long: longer than any client's timeout


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        value = json.loads(self.body)
        return value if isinstance(value, dict) else {}

    def form(self) -> dict[str, str]:
        pairs = urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True)
        return {key: values[-1] for key, values in pairs.items()}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None

    @classmethod
    def of_json(cls, value: Any, status: int = 200) -> Response:
        return cls(status=status, body=json.dumps(value).encode())

    @classmethod
    def of_html(cls, html: str, status: int = 200) -> Response:
        return cls(status=status, body=html.encode(), content_type="text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(status=302, headers={"Location": location}, content_type="text/plain")


Handler = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a burst of clients is queued, not reset at the door (the default is 5)
    daemon_threads = True


class Fault(Exception):
    """Raised inside a handler by `EmulatorServer.fault_for`: how to misbehave on this call."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class EmulatorServer:
    name = "gateway"

    def __init__(self, *, port: int = 0, host: str = ALLOWED_HOST) -> None:
        if host != ALLOWED_HOST:
            raise ValueError(f"a gateway emulator binds {ALLOWED_HOST} only, not {host}")
        self.lock = threading.RLock()
        self._routes: dict[tuple[str, str], Handler] = {}
        self._faults: dict[str, list[str]] = {}
        self.calls: list[tuple[str, str]] = []  # (operation, path) of every request, for tests
        self.notifications: list[tuple[str, int | None]] = []  # (url, status or None) of every post back
        self._threads: list[threading.Thread] = []
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.routes()

    # -- set up --------------------------------------------------------------------------------
    def routes(self) -> None:
        """Register the gateway's routes with `self.route(method, path, handler, operation)`."""

    def route(self, method: str, path: str, handler: Handler, operation: str = "") -> None:
        self._routes[(method, path)] = self._with_faults(handler, operation or path)

    def _with_faults(self, handler: Handler, operation: str) -> Handler:
        def run(request: Request) -> Response:
            with self.lock:
                self.calls.append((operation, request.path))
            kind = self._take_fault(operation)
            if kind == "timeout":  # held, nothing done, then the connection closes unanswered
                time.sleep(HOLD_SECONDS)
                raise Fault("drop")
            if kind == "timeout_after":  # the call takes effect, then the answer never comes in time
                handler(request)
                time.sleep(HOLD_SECONDS)
                raise Fault("drop")
            elif kind is not None:
                raise Fault(kind)
            return handler(request)

        return run

    def fail_next(self, operation: str, kind: str = "timeout", times: int = 1) -> None:
        """The next `times` calls of `operation` misbehave: "timeout" (held, nothing done),
        "timeout_after" (done, then held), "error" (HTTP 500), "drop" (connection closed unanswered)."""
        with self.lock:
            self._faults.setdefault(operation, []).extend([kind] * times)

    def _take_fault(self, operation: str) -> str | None:
        with self.lock:
            pending = self._faults.get(operation)
            return pending.pop(0) if pending else None

    # -- life ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the emulator first"
        return f"http://{ALLOWED_HOST}:{self._server.server_address[1]}"

    def start(self) -> Self:
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parsed.path,
                    query={k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                handler = emulator._routes.get((self.command, parsed.path))
                try:
                    response = handler(request) if handler else Response.of_json({"error": "not found"}, 404)
                except Fault as fault:
                    if fault.kind == "drop":
                        self.close_connection = True
                        return
                    response = Response.of_json({"error": "internal error"}, 500)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for key, value in (response.headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = _serve
            do_POST = _serve
            do_PUT = _serve

        self._server = _Server((ALLOWED_HOST, self._port), _Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name=f"{self.name}-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- posting back ----------------------------------------------------------------------------
    def post_back(
        self,
        url: str,
        *,
        data: dict[str, str] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
        wait: bool = False,
    ) -> None:
        """POST a notification (an IPN, a webhook) to the merchant `times` times after `delay` seconds,
        on a thread of its own unless `wait`; each answer's status is kept in `self.notifications`."""

        def deliver() -> None:
            if delay:
                time.sleep(delay)
            for _ in range(times):
                try:
                    answer = httpx.post(url, data=data, json=json_body, headers=headers, timeout=10.0)
                    status: int | None = answer.status_code
                except httpx.HTTPError:
                    status = None
                with self.lock:
                    self.notifications.append((url, status))

        if wait:
            deliver()
            return
        thread = threading.Thread(target=deliver, daemon=True)
        self._threads.append(thread)
        thread.start()
