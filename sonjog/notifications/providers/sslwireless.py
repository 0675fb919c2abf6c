"""SSL Wireless (Bangladesh), "ISMS Plus" API v3.

Request: POST {base}/api/v3/send-sms with a JSON body
    {"api_token": ..., "sid": <masking/sender>, "msisdn": "8801XXXXXXXXX", "sms": <text>, "csms_id": <ours>}
Reply (HTTP 200 either way):
    {"status": "SUCCESS" | "FAILED", "status_code": 200 | 4xxx, "error_message": "...",
     "smsinfo": [{"sms_status": "SUCCESS", "status_message": "Success", "msisdn": "...", "sms_type": "EN",
                  "sms_body": "...", "csms_id": "...", "reference_id": "..."}]}

Confirmed from public client code using this API: the endpoint, the JSON field names, status/status_code,
`smsinfo[].reference_id` as the provider's id, `csms_id` as the client's unique id (max 20 characters), and
the code table: 4001 unauthorized, 4002 SID not permitted, 4003 IP blacklisted, 4004 endpoint not found,
4005 invalid request format, 4020 invalid CSMS ID, 4022 required parameter missing, 4023 duplicate CSMS ID,
4025 invalid cell number, 4026 blocked cell number, 4027 message too long, 4028 invalid message data,
4029 too many requests, 4030 limit exceeded, 4031 TPS exceeded, 5000 unknown error.
Not confirmed: that 4030 ("limit exceeded") means the account's credit is used up (treated here as
insufficient_balance), and the shape of SSL Wireless delivery-report callbacks (we read `reference_id`
and `status` by default; both field names are account options).
"""

from __future__ import annotations

from typing import ClassVar

import httpx

from sonjog.notifications.providers.base import (
    FailureReason,
    OutgoingMessage,
    Provider,
    SendResult,
    classify_http_status,
    digits_only,
)

_CODES: dict[int, FailureReason] = {
    4001: FailureReason.AUTH,
    4002: FailureReason.CONFIGURATION,
    4003: FailureReason.AUTH,
    4004: FailureReason.CONFIGURATION,
    4005: FailureReason.CONFIGURATION,
    4020: FailureReason.CONFIGURATION,
    4022: FailureReason.CONFIGURATION,
    4025: FailureReason.INVALID_NUMBER,
    4026: FailureReason.REJECTED,
    4027: FailureReason.REJECTED,
    4028: FailureReason.REJECTED,
    4029: FailureReason.TEMPORARY,
    4030: FailureReason.INSUFFICIENT_BALANCE,
    4031: FailureReason.TEMPORARY,
    5000: FailureReason.TEMPORARY,
}
DUPLICATE_CSMS_ID = 4023


class SslWireless(Provider):
    kind = "ssl_wireless"
    default_base_url = "https://smsplus.sslwireless.com"
    report_id_field: ClassVar[str] = "reference_id"

    def send(self, message: OutgoingMessage) -> SendResult:
        payload = {
            "api_token": self.account.credentials.get("api_token", ""),
            "sid": self.account.sender_id,
            "msisdn": digits_only(message.recipient),
            "sms": message.body,
            "csms_id": message.reference[:20],
        }
        try:
            with self.client() as client:
                response = client.post(f"{self.base_url}/api/v3/send-sms", json=payload)
        except httpx.HTTPError as error:
            return self.transport_failure(error)
        data = self.json_or_none(response)
        if not isinstance(data, dict):
            if response.is_success:
                return SendResult.failed(FailureReason.UNKNOWN, f"unreadable reply: {response.text[:200]}")
            return SendResult.failed(classify_http_status(response.status_code), f"HTTP {response.status_code}")
        code = data.get("status_code")
        if data.get("status") == "SUCCESS" and code == 200:
            info = data.get("smsinfo") or [{}]
            return SendResult.sent(str(info[0].get("reference_id") or ""))
        detail = str(data.get("error_message") or data.get("status") or f"HTTP {response.status_code}")
        if code == DUPLICATE_CSMS_ID:
            # Our csms_id is the message's own id, so a duplicate means an earlier attempt (one whose
            # reply we lost) was accepted: the message is out, not to be sent twice.
            return SendResult.sent(f"csms:{payload['csms_id']}")
        if isinstance(code, int) and code in _CODES:
            return SendResult.failed(_CODES[code], detail, code)
        if response.is_server_error:
            return SendResult.failed(FailureReason.TEMPORARY, detail, response.status_code)
        return SendResult.failed(FailureReason.REJECTED, detail, code or response.status_code)
