"""What every channel provider shares: the outgoing message, the typed result, delivery reports."""

from __future__ import annotations

import functools
import json
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from sonjog.core.outbound import OutboundUnresolved, check_outbound_url

if TYPE_CHECKING:
    from django.http import HttpRequest

    from sonjog.notifications.models import ProviderAccount


class FailureReason(StrEnum):
    INSUFFICIENT_BALANCE = "insufficient_balance"  # the provider account (or our SMS credit) is empty
    INVALID_NUMBER = "invalid_number"
    INVALID_ADDRESS = "invalid_address"  # e-mail recipient refused
    AUTH = "auth"  # credentials wrong, expired or not allowed from here
    CONFIGURATION = "configuration"  # sender ID not approved, account missing a setting
    REJECTED = "rejected"  # the provider refused this message (content, policy, opted out)
    TEMPORARY = "temporary"  # network, 5xx, rate limits: worth trying again
    UNKNOWN = "unknown"  # an answer we cannot read; not retried, since it may have gone out


@dataclass(frozen=True)
class OutgoingMessage:
    recipient: str  # E.164 ("+8801712345678") for phones, an address for e-mail
    body: str
    subject: str = ""
    encoding: str = ""  # GSM-7 / UCS-2 for SMS: some gateways need a "unicode" flag
    reference: str = ""  # our own id for the message, where the provider accepts one
    status_callback_url: str = ""


@dataclass(frozen=True)
class SendResult:
    ok: bool
    provider_message_id: str = ""
    reason: FailureReason | None = None
    detail: str = ""
    provider_code: str = ""

    @classmethod
    def sent(cls, provider_message_id: str) -> SendResult:
        return cls(ok=True, provider_message_id=provider_message_id)

    @classmethod
    def failed(cls, reason: FailureReason, detail: str, provider_code: str | int = "") -> SendResult:
        return cls(ok=False, reason=reason, detail=detail[:2000], provider_code=str(provider_code))

    @property
    def retryable(self) -> bool:
        return self.reason == FailureReason.TEMPORARY


@dataclass(frozen=True)
class DeliveryUpdate:
    provider_message_id: str
    status: str  # "delivered" or "failed"
    error: str = ""


class ReportError(ValueError):
    """A delivery report we cannot use; `field` names what was missing or wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def digits_only(phone: str) -> str:
    """+8801712345678 -> 8801712345678, the form most Bangladeshi gateways want."""
    return phone.lstrip("+")


def classify_http_status(status_code: int) -> FailureReason:
    if status_code in (401, 403):
        return FailureReason.AUTH
    if status_code in (408, 425, 429) or status_code >= 500:
        return FailureReason.TEMPORARY
    return FailureReason.REJECTED


def request_payload(request: HttpRequest) -> dict[str, Any]:
    """A report's fields from a JSON body, a form body or the query string, whichever it came in."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            raise ReportError("body", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ReportError("body", "the JSON body must be an object")
        return data
    if request.method == "POST" and request.POST:
        return {key: request.POST.get(key) for key in request.POST}
    return {key: request.GET.get(key) for key in request.GET if key != "token"}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every provider call: loading the CA bundle takes ~40 ms, which
    per message capped a worker at a couple of dozen sends a second. Contexts are safe to share."""
    return httpx.create_ssl_context()


def _refuse_private_destination(request: httpx.Request) -> None:
    """Before every request (a redirect's too): the gateway's host must still resolve to public
    addresses only (sonjog.core.outbound); OutboundRefused otherwise. A name that does not resolve
    now is a transport failure like any other, tried again later."""
    try:
        check_outbound_url(str(request.url))
    except OutboundUnresolved as error:
        raise httpx.ConnectError(str(error), request=request) from None


class Provider:
    """One provider's wire format. Subclasses implement `send`; delivery reports default to a
    configurable id/status field pair (options report_id_field, report_status_field)."""

    kind: ClassVar[str]
    default_base_url: ClassVar[str] = ""
    timeout_seconds: ClassVar[float] = 15.0
    delivered_values: ClassVar[frozenset[str]] = frozenset({"delivered", "delivrd", "success", "successful"})
    failed_values: ClassVar[frozenset[str]] = frozenset(
        {"failed", "undelivered", "undeliv", "rejected", "rejectd", "expired", "error", "canceled"}
    )
    report_id_field: ClassVar[str] = "message_id"
    report_status_field: ClassVar[str] = "status"

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account

    @property
    def base_url(self) -> str:
        return (self.account.base_url or self.default_base_url).rstrip("/")

    def send(self, message: OutgoingMessage) -> SendResult:
        raise NotImplementedError

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            timeout=float(self.account.option("timeout", self.timeout_seconds)),
            verify=_tls_context(),
            event_hooks={"request": [_refuse_private_destination]},
            **kwargs,
        )

    def transport_failure(self, error: httpx.HTTPError) -> SendResult:
        # Connection refused, DNS, timeouts: the provider may be down for a moment. A read timeout is
        # ambiguous (it may have accepted the message); retrying accepts a rare duplicate over a loss.
        return SendResult.failed(FailureReason.TEMPORARY, f"{type(error).__name__}: {error}")

    @staticmethod
    def json_or_none(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def parse_delivery_report(self, request: HttpRequest) -> list[DeliveryUpdate]:
        data = request_payload(request)
        id_field = self.account.option("report_id_field", self.report_id_field)
        status_field = self.account.option("report_status_field", self.report_status_field)
        provider_id = str(data.get(id_field) or "").strip()
        if not provider_id:
            raise ReportError(id_field, f"'{id_field}' is missing")
        raw_status = str(data.get(status_field) or "").strip()
        if not raw_status:
            raise ReportError(status_field, f"'{status_field}' is missing")
        status = self.map_report_status(raw_status)
        if status is None:
            raise ReportError(status_field, f"'{status_field}' has an unknown value '{raw_status}'")
        if not status:
            return []
        return [DeliveryUpdate(provider_id, status, "" if status == "delivered" else raw_status)]

    def map_report_status(self, raw: str) -> str | None:
        """'delivered', 'failed', '' for an intermediate state we ignore, None for nonsense."""
        value = raw.strip().lower()
        delivered = {v.lower() for v in self.account.option("delivered_values", [])} | self.delivered_values
        failed = {v.lower() for v in self.account.option("failed_values", [])} | self.failed_values
        if value in delivered:
            return "delivered"
        if value in failed:
            return "failed"
        if value in {
            "sent",
            "queued",
            "accepted",
            "scheduled",
            "sending",
            "submitted",
            "enroute",
            "buffered",
            "pending",
        }:
            return ""
        return None
