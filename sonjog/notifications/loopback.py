"""A local SMS gateway that accepts every message: what `sonjog bench` sends to when it measures
sending throughput, so the figure is Sonjog's own cost (claim, credit, HTTP call, record) and not a
provider's, and where the demo ISP's messages go. It speaks the shape the generic HTTP provider is
configured for by `account_options`."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackGateway:
    """Binds 127.0.0.1 (on a free port unless one is given); `received` counts the messages it accepted."""

    path = "/send"

    def __init__(self, port: int = 0) -> None:
        self.received = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with gateway._lock:
                    gateway.received += 1
                    message_id = next(gateway._ids)
                body = json.dumps({"status": "ok", "id": f"lb-{message_id}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # thousands of requests; the counters say what happened

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-gateway", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @classmethod
    def account_options(cls) -> dict[str, Any]:
        """Generic HTTP provider options that talk to this gateway."""
        return {
            "path": cls.path,
            "body": "json",
            "success": {"json_path": "status", "equals": "ok"},
            "message_id": {"json_path": "id"},
        }
