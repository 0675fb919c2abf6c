"""Loopback stand-ins for the providers: real HTTP servers (127.0.0.1, port 0) that speak each provider's
documented request and reply shapes, keep a little state (credentials, credit, sent ids) and record every
request so tests can assert exactly what the client sent. Also a loopback SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

BD_MOBILE = re.compile(r"^8801[3-9]\d{8}$")
_ids = itertools.count(1000)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: Any  # dict/list -> JSON, str -> text
    headers: dict[str, str] = field(default_factory=dict)


class FakeGateway:
    """Base class: start() binds 127.0.0.1:0; `outages` answers the next N requests with HTTP 503."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.outages = 0
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(
                    method=self.command,
                    path=split.path,
                    query={k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with gateway._lock:
                    gateway.requests.append(recorded)
                    outage = gateway.outages > 0
                    if outage:
                        gateway.outages -= 1
                reply = Reply(503, "Service Unavailable") if outage else gateway.handle(recorded)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                data = payload.encode()
                self.send_response(reply.status)
                content_type = "text/plain" if isinstance(reply.body, str) else "application/json"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Self:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


class SslWirelessFake(FakeGateway):
    """ISMS Plus v3: POST /api/v3/send-sms, JSON in, JSON out (HTTP 200 with status_code inside)."""

    def __init__(self, api_token: str = "ssl-token", sid: str = "MYISP", credit: int = 100) -> None:
        super().__init__()
        self.api_token, self.sid, self.credit = api_token, sid, credit
        self.csms_ids: set[str] = set()

    def _failed(self, code: int, message: str) -> Reply:
        return Reply(200, {"status": "FAILED", "status_code": code, "error_message": message})

    def handle(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != "/api/v3/send-sms":
            return self._failed(4004, "End point Not Found")
        try:
            data = request.json
        except ValueError:
            return self._failed(4005, "Invalid request format")
        if data.get("api_token") != self.api_token:
            return self._failed(4001, "Unauthorized")
        if data.get("sid") != self.sid:
            return self._failed(4002, "SID/Stakeholder is not permitted")
        if not all(data.get(key) for key in ("msisdn", "sms", "csms_id")):
            return self._failed(4022, "Required Parameter Missing")
        if not BD_MOBILE.match(str(data["msisdn"])):
            return self._failed(4025, "Invalid Cell No.")
        if data["csms_id"] in self.csms_ids:
            return self._failed(4023, "Duplicate CMS ID")
        if self.credit <= 0:
            return self._failed(4030, "Limit Exceed")
        self.credit -= 1
        self.csms_ids.add(data["csms_id"])
        reference = f"REF{next(_ids)}"
        sms_type = "EN" if str(data["sms"]).isascii() else "BN"
        info = {
            "sms_status": "SUCCESS",
            "status_message": "Success",
            "msisdn": data["msisdn"],
            "sms_type": sms_type,
            "sms_body": data["sms"],
            "csms_id": data["csms_id"],
            "reference_id": reference,
        }
        return Reply(200, {"status": "SUCCESS", "status_code": 200, "error_message": "", "smsinfo": [info]})


class BulkSmsBdFake(FakeGateway):
    """bulksmsbd.net /api/smsapi, GET or POST; replies with response_code (202 = submitted)."""

    def __init__(self, api_key: str = "bulk-key", senderid: str = "8809617000000", balance: int = 100) -> None:
        super().__init__()
        self.api_key, self.senderid, self.balance = api_key, senderid, balance

    def _reply(self, code: int, error: str = "") -> Reply:
        body: dict[str, Any] = {"response_code": code, "success_message": "", "error_message": error}
        if code == 202:
            body.update(message_id=next(_ids), success_message="SMS Submitted Successfully")
        return Reply(200, body)

    def handle(self, request: Recorded) -> Reply:
        if request.path != "/api/smsapi":
            return Reply(404, "Not Found")
        fields = request.form if request.method == "POST" else request.query
        if not all(fields.get(key) for key in ("api_key", "type", "number", "senderid", "message")):
            return self._reply(1003, "Please Required all fields/Contact Your System Administrator")
        if fields["api_key"] != self.api_key:
            return self._reply(1011, "User Id not found")
        if fields["senderid"] != self.senderid:
            return self._reply(1002, "sender id not correct/sender id is disabled")
        if not BD_MOBILE.match(fields["number"]):
            return self._reply(1001, "Invalid Number")
        if self.balance <= 0:
            return self._reply(1007, "Balance Insufficient")
        self.balance -= 1
        return self._reply(202)


class TwilioFake(FakeGateway):
    """The Messages resource: form POST with basic auth; 201 + resource JSON or an error object."""

    def __init__(
        self, account_sid: str = "AC" + "1" * 32, auth_token: str = "twilio-token", sender: str = "+15005550006"
    ) -> None:
        super().__init__()
        self.account_sid, self.auth_token, self.sender = account_sid, auth_token, sender

    def _error(self, status: int, code: int, message: str) -> Reply:
        more = f"https://www.twilio.com/docs/errors/{code}"
        return Reply(status, {"code": code, "message": message, "more_info": more, "status": status})

    def handle(self, request: Recorded) -> Reply:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return self._error(401, 20003, "Authenticate")
        if request.method != "POST" or request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return self._error(404, 20404, "The requested resource was not found")
        form = request.form
        if not re.match(r"^\+[1-9]\d{7,14}$", form.get("To", "")):
            return self._error(400, 21211, f"The 'To' number {form.get('To', '')} is not a valid phone number.")
        if form.get("From") != self.sender:
            return self._error(400, 21606, "The 'From' phone number provided is not a valid message-capable number.")
        sid = f"SM{next(_ids):032x}"
        resource = {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"], "body": form["Body"]}
        return Reply(201, resource)


class WhatsAppFake(FakeGateway):
    """Cloud API: POST /{version}/{phone_number_id}/messages with a bearer token."""

    def __init__(self, phone_number_id: str = "109876543210", token: str = "wa-token") -> None:
        super().__init__()
        self.phone_number_id, self.token = phone_number_id, token
        self.not_on_whatsapp: set[str] = set()
        self.window_closed: set[str] = set()

    def _error(self, status: int, code: int, message: str, details: str = "") -> Reply:
        error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Az1"}
        if details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return Reply(status, {"error": error})

    def handle(self, request: Recorded) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, 190, "Error validating access token: Session has expired")
        if request.method != "POST" or request.path != f"/v21.0/{self.phone_number_id}/messages":
            return self._error(400, 100, "Unsupported post request")
        body = request.json
        to = body.get("to", "")
        if body.get("messaging_product") != "whatsapp":
            return self._error(400, 100, "Invalid parameter", "messaging_product is required")
        if to in self.not_on_whatsapp:
            return self._error(400, 131026, "Message undeliverable", "Recipient is not a WhatsApp user")
        if to in self.window_closed and body.get("type") == "text":
            return self._error(
                400, 131047, "Re-engagement message", "More than 24 hours have passed since the customer replied"
            )
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.HBgM{next(_ids)}"}],
            },
        )


class GenericFake(FakeGateway):
    """A typical local gateway: GET /sms/send?user=&key=&to=&msg=&from= answering
    {"status": "ok", "data": {"id": ...}} or {"status": "error", "code": 105, "message": ...}."""

    def __init__(self, key: str = "gen-key", balance: int = 100) -> None:
        super().__init__()
        self.key, self.balance = key, balance

    def handle(self, request: Recorded) -> Reply:
        fields = request.query
        if fields.get("key") != self.key:
            return Reply(200, {"status": "error", "code": 101, "message": "bad key"})
        if not BD_MOBILE.match(fields.get("to", "")):
            return Reply(200, {"status": "error", "code": 102, "message": "bad number"})
        if self.balance <= 0:
            return Reply(200, {"status": "error", "code": 105, "message": "no balance"})
        self.balance -= 1
        return Reply(200, {"status": "ok", "data": {"id": f"G{next(_ids)}"}})


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class LoopbackSmtp(Controller):
    """aiosmtpd bound to 127.0.0.1 port 0; the port the kernel chose is read back before use."""

    def __init__(self) -> None:
        self.inbox = _Inbox()
        super().__init__(self.inbox, hostname="127.0.0.1", port=0)

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
