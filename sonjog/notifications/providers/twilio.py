"""Twilio Programmable Messaging (the Messages resource of the 2010-04-01 REST API).

Request: POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP basic auth (account SID, auth
token), form fields To (E.164), Body, and From, or MessagingServiceSid when the sender is a messaging
service ("MG..."); StatusCallback when the account has a callback URL.
Reply: 201 with the message resource as JSON ("sid": "SM...", "status": "queued" ...); errors as JSON
{"code": 21211, "message": "...", "more_info": "...", "status": 400}.
Status callbacks are form posts with MessageSid, MessageStatus (queued, sent, delivered, undelivered,
failed ...) and ErrorCode.

Codes classified: 20003 authentication; 21211 invalid 'To', 21614 'To' not a mobile number, 21612 'To'
not reachable from this sender; 21610 recipient unsubscribed; 21408 region not enabled, 21212/21606/
21659/21660 bad or foreign 'From'; 20429 rate limited; 10001 account not active, which Twilio documents as
mostly a balance at or below zero (so insufficient_balance, though suspensions also produce it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import httpx

from sonjog.notifications.providers.base import (
    DeliveryUpdate,
    FailureReason,
    OutgoingMessage,
    Provider,
    SendResult,
    classify_http_status,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

_CODES: dict[int, FailureReason] = {
    20003: FailureReason.AUTH,
    20005: FailureReason.AUTH,
    21211: FailureReason.INVALID_NUMBER,
    21614: FailureReason.INVALID_NUMBER,
    21612: FailureReason.INVALID_NUMBER,
    21610: FailureReason.REJECTED,
    21408: FailureReason.CONFIGURATION,
    21212: FailureReason.CONFIGURATION,
    21606: FailureReason.CONFIGURATION,
    21659: FailureReason.CONFIGURATION,
    21660: FailureReason.CONFIGURATION,
    20429: FailureReason.TEMPORARY,
    10001: FailureReason.INSUFFICIENT_BALANCE,
}


class Twilio(Provider):
    kind = "twilio"
    default_base_url = "https://api.twilio.com"
    report_id_field: ClassVar[str] = "MessageSid"
    report_status_field: ClassVar[str] = "MessageStatus"

    def send(self, message: OutgoingMessage) -> SendResult:
        account_sid = self.account.username
        sender = self.account.sender_id
        fields = {"To": message.recipient, "Body": message.body}
        fields["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        if message.status_callback_url:
            fields["StatusCallback"] = message.status_callback_url
        auth = (account_sid, self.account.credentials.get("auth_token", ""))
        try:
            with self.client(auth=auth) as client:
                response = client.post(f"{self.base_url}/2010-04-01/Accounts/{account_sid}/Messages.json", data=fields)
        except httpx.HTTPError as error:
            return self.transport_failure(error)
        data = self.json_or_none(response)
        if response.is_success and isinstance(data, dict) and data.get("sid"):
            return SendResult.sent(str(data["sid"]))
        if response.is_success:
            return SendResult.failed(FailureReason.UNKNOWN, f"reply without a message sid: {response.text[:200]}")
        code = data.get("code") if isinstance(data, dict) else None
        detail = str(data.get("message")) if isinstance(data, dict) and data.get("message") else response.text[:300]
        if isinstance(code, int) and code in _CODES:
            return SendResult.failed(_CODES[code], detail, code)
        return SendResult.failed(classify_http_status(response.status_code), detail, code or response.status_code)

    def parse_delivery_report(self, request: HttpRequest) -> list[DeliveryUpdate]:
        updates = super().parse_delivery_report(request)
        error_code = request.POST.get("ErrorCode", "")
        if error_code and updates and updates[0].status == "failed":
            return [DeliveryUpdate(updates[0].provider_message_id, "failed", f"Twilio error {error_code}")]
        return updates
