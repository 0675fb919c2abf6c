"""BulkSMSBD (bulksmsbd.net), the single-SMS API.

Request: {base}/api/smsapi with api_key, type=text, number=8801XXXXXXXXX, senderid, message. The
provider documents GET and POST for the same URL; we POST the fields form-encoded so the API key stays
out of proxy logs (account option "method": "GET" switches to a query string).
Reply: JSON {"response_code": 202, "message_id": ..., "success_message": "SMS Submitted Successfully",
"error_message": ""}; 202 is success.

Confirmed from the provider's public API page: the URL and parameter names and the code table 202
submitted, 1002 sender ID wrong/disabled, 1003 required fields missing, 1005 internal error, 1006 balance
validity not available, 1007 balance insufficient, 1011 user ID not found, 1012 masking SMS must be in
Bengali, 1013-1017 sender/gateway/price not found, 1018 account disabled, 1019 price disabled, 1020-1021
parent account/price not found. From third-party clients, not the provider's page: 1001 invalid number,
1031 account not verified, 1032 IP not whitelisted, and the `message_id` field of the reply.
Not confirmed: whether Bangla text needs a different `type` (we send "text"; account option
"unicode_type" sets the value used for UCS-2 text) and whether BulkSMSBD pushes delivery reports at all.
"""

from __future__ import annotations

import httpx

from sonjog.notifications.providers.base import (
    FailureReason,
    OutgoingMessage,
    Provider,
    SendResult,
    classify_http_status,
    digits_only,
)
from sonjog.notifications.segments import UCS2

SUBMITTED = 202
_CODES: dict[int, FailureReason] = {
    1001: FailureReason.INVALID_NUMBER,
    1002: FailureReason.CONFIGURATION,
    1003: FailureReason.CONFIGURATION,
    1005: FailureReason.TEMPORARY,
    1006: FailureReason.INSUFFICIENT_BALANCE,
    1007: FailureReason.INSUFFICIENT_BALANCE,
    1011: FailureReason.AUTH,
    1012: FailureReason.REJECTED,
    1013: FailureReason.CONFIGURATION,
    1014: FailureReason.CONFIGURATION,
    1015: FailureReason.CONFIGURATION,
    1016: FailureReason.CONFIGURATION,
    1017: FailureReason.CONFIGURATION,
    1018: FailureReason.AUTH,
    1019: FailureReason.CONFIGURATION,
    1020: FailureReason.CONFIGURATION,
    1021: FailureReason.CONFIGURATION,
    1031: FailureReason.AUTH,
    1032: FailureReason.AUTH,
}


class BulkSmsBd(Provider):
    kind = "bulksmsbd"
    default_base_url = "http://bulksmsbd.net"

    def send(self, message: OutgoingMessage) -> SendResult:
        unicode_type = self.account.option("unicode_type", "text")
        fields = {
            "api_key": self.account.credentials.get("api_key", ""),
            "type": unicode_type if message.encoding == UCS2 else "text",
            "number": digits_only(message.recipient),
            "senderid": self.account.sender_id,
            "message": message.body,
        }
        url = f"{self.base_url}/api/smsapi"
        try:
            with self.client() as client:
                if str(self.account.option("method", "POST")).upper() == "GET":
                    response = client.get(url, params=fields)
                else:
                    response = client.post(url, data=fields)
        except httpx.HTTPError as error:
            return self.transport_failure(error)
        data = self.json_or_none(response)
        if not isinstance(data, dict) or "response_code" not in data:
            if response.is_success:
                return SendResult.failed(FailureReason.UNKNOWN, f"unreadable reply: {response.text[:200]}")
            return SendResult.failed(classify_http_status(response.status_code), f"HTTP {response.status_code}")
        try:
            code = int(data["response_code"])
        except (TypeError, ValueError):
            return SendResult.failed(FailureReason.UNKNOWN, f"unreadable response_code {data['response_code']!r}")
        if code == SUBMITTED:
            return SendResult.sent(str(data.get("message_id") or ""))
        detail = str(data.get("error_message") or data.get("success_message") or f"code {code}")
        return SendResult.failed(_CODES.get(code, FailureReason.REJECTED), detail, code)
