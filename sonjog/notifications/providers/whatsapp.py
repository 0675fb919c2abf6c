"""WhatsApp Business Cloud API (Meta Graph API).

Request: POST {base}/{version}/{phone_number_id}/messages with "Authorization: Bearer <token>" and JSON
    {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "8801XXXXXXXXX",
     "type": "text", "text": {"preview_url": false, "body": "..."}}
Reply: {"messaging_product": "whatsapp", "contacts": [{"input": ..., "wa_id": ...}],
        "messages": [{"id": "wamid...."}]}
Errors: {"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}.

WhatsApp only lets a business start a conversation with an approved template; free text works only within
24 hours of the customer's last message (error 131047 otherwise). With the account option
"template_name" (and "template_language", default "en") we send that template with the rendered text as
its single body parameter, the usual way to carry operator-written wording through one approved template.

Delivery reports arrive on the "messages" webhook as entry[].changes[].value.statuses[] with id and status
(sent, delivered, read, failed + errors[]). Meta verifies the callback URL with a GET carrying
hub.mode=subscribe, hub.verify_token and hub.challenge; the account's webhook token is the verify token.
When the credentials hold the app secret, POSTs must also carry a valid X-Hub-Signature-256.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

import httpx

from sonjog.notifications.providers.base import (
    DeliveryUpdate,
    FailureReason,
    OutgoingMessage,
    Provider,
    ReportError,
    SendResult,
    classify_http_status,
    digits_only,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

_CODES: dict[int, FailureReason] = {
    0: FailureReason.AUTH,  # AuthException
    3: FailureReason.AUTH,  # capability or permissions
    10: FailureReason.AUTH,  # permission denied
    190: FailureReason.AUTH,  # access token expired
    4: FailureReason.TEMPORARY,  # API call volume
    80007: FailureReason.TEMPORARY,  # WABA rate limit
    130429: FailureReason.TEMPORARY,  # Cloud API throughput
    131048: FailureReason.TEMPORARY,  # spam rate limit
    131056: FailureReason.TEMPORARY,  # business/consumer pair rate limit
    1: FailureReason.TEMPORARY,  # API unknown
    2: FailureReason.TEMPORARY,  # API service
    131000: FailureReason.TEMPORARY,  # something went wrong
    131016: FailureReason.TEMPORARY,  # service unavailable
    131026: FailureReason.INVALID_NUMBER,  # undeliverable: not on WhatsApp, old app, terms not accepted
    131047: FailureReason.REJECTED,  # re-engagement: more than 24 hours since the customer wrote
    131042: FailureReason.INSUFFICIENT_BALANCE,  # business eligibility: payment issue
    131031: FailureReason.AUTH,  # account locked
    131051: FailureReason.CONFIGURATION,  # unsupported message type
    132000: FailureReason.CONFIGURATION,  # template parameter count mismatch
    132001: FailureReason.CONFIGURATION,  # template does not exist
    133010: FailureReason.CONFIGURATION,  # phone number not registered
    100: FailureReason.CONFIGURATION,  # invalid parameter
    131008: FailureReason.CONFIGURATION,  # required parameter missing
    131009: FailureReason.CONFIGURATION,  # parameter value invalid
    368: FailureReason.REJECTED,  # temporarily blocked for policy violations
}


def classify_code(code: Any, status_code: int) -> FailureReason:
    if isinstance(code, int) and code in _CODES:
        return _CODES[code]
    if isinstance(code, int) and 200 <= code <= 299:
        return FailureReason.AUTH  # API permission range
    return classify_http_status(status_code)


class WhatsAppCloud(Provider):
    kind = "whatsapp_cloud"
    default_base_url = "https://graph.facebook.com"

    def payload(self, message: OutgoingMessage) -> dict[str, Any]:
        base: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": digits_only(message.recipient),
        }
        template = self.account.option("template_name")
        if template:
            base["type"] = "template"
            base["template"] = {
                "name": template,
                "language": {"code": self.account.option("template_language", "en")},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": message.body}]}],
            }
        else:
            base["type"] = "text"
            base["text"] = {"preview_url": False, "body": message.body}
        return base

    def send(self, message: OutgoingMessage) -> SendResult:
        version = self.account.option("api_version", "v21.0")
        url = f"{self.base_url}/{version}/{self.account.sender_id}/messages"
        headers = {"Authorization": f"Bearer {self.account.credentials.get('access_token', '')}"}
        try:
            with self.client(headers=headers) as client:
                response = client.post(url, json=self.payload(message))
        except httpx.HTTPError as error:
            return self.transport_failure(error)
        data = self.json_or_none(response)
        if response.is_success and isinstance(data, dict):
            messages = data.get("messages") or []
            if messages and messages[0].get("id"):
                return SendResult.sent(str(messages[0]["id"]))
            return SendResult.failed(FailureReason.UNKNOWN, f"reply without a message id: {response.text[:200]}")
        problem = data.get("error") if isinstance(data, dict) else None
        if not isinstance(problem, dict):
            return SendResult.failed(classify_http_status(response.status_code), f"HTTP {response.status_code}")
        code = problem.get("code")
        details = (problem.get("error_data") or {}).get("details") or ""
        detail = f"{problem.get('message', '')} {details}".strip()
        return SendResult.failed(classify_code(code, response.status_code), detail, code if code is not None else "")

    def verify_signature(self, request: HttpRequest) -> None:
        secret = self.account.credentials.get("app_secret", "")
        if not secret:
            return
        header = request.headers.get("X-Hub-Signature-256", "")
        expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(header, expected):
            raise ReportError("X-Hub-Signature-256", "the signature does not match the body")

    def parse_delivery_report(self, request: HttpRequest) -> list[DeliveryUpdate]:
        self.verify_signature(request)
        try:
            data = json.loads(request.body or b"")
        except ValueError:
            raise ReportError("body", "the body is not valid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
            raise ReportError("entry", "'entry' must be a list")
        updates: list[DeliveryUpdate] = []
        for entry in data["entry"]:
            for change in (entry or {}).get("changes") or []:
                for status in ((change or {}).get("value") or {}).get("statuses") or []:
                    provider_id = str(status.get("id") or "")
                    if not provider_id:
                        raise ReportError("statuses.id", "a status has no 'id'")
                    raw = str(status.get("status") or "")
                    if raw in ("delivered", "read"):
                        updates.append(DeliveryUpdate(provider_id, "delivered"))
                    elif raw == "failed":
                        errors = status.get("errors") or [{}]
                        error = errors[0] if isinstance(errors[0], dict) else {}
                        updates.append(
                            DeliveryUpdate(provider_id, "failed", f"{error.get('code', '')} {error.get('title', '')}")
                        )
                    elif raw not in ("sent", "deleted", "warning"):
                        raise ReportError("statuses.status", f"unknown status '{raw}'")
        return updates
