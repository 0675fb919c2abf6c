"""A configurable HTTP SMS gateway, for the many local gateways that take a URL with a few parameters.

Account options (all optional except where noted):
    path            appended to the base URL, e.g. "/api/send"
    method          "GET" (query string) or "POST" (default)
    body            "form" (default) or "json", for POST
    params          our field -> the gateway's parameter name; fields: to, text, sender, api_key, username,
                    password, reference, unicode. Default {"to": "to", "text": "text", "sender": "from",
                    "api_key": "api_key"}. A field missing from the map is not sent.
    static_params   extra fixed parameters, e.g. {"type": "sms"}
    unicode_values  [value for GSM-7, value for UCS-2] sent as the "unicode" parameter, e.g. ["0", "1"]
    number_format   "e164" (+8801...), "digits" (8801..., default) or "national" (01...)
    success         how to recognise success; default: any 2xx. Either {"json_path": "status", "equals": "ok"}
                    (equals may be a list) or {"regex": "^OK"} against the body
    message_id      where the gateway's id is: {"json_path": "data.id"} or {"regex": "ID:(\\w+)"} (group 1)
    error_code_path JSON path of the gateway's error code, e.g. "code"
    error_codes     gateway code -> our reason, e.g. {"105": "insufficient_balance", "102": "invalid_number"}
Credentials: api_key, password. Anything the gateway refuses without a mapped code fails as "rejected",
except HTTP 429/5xx and connection errors, which are retried.
"""

from __future__ import annotations

import re
from typing import Any

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

DEFAULT_PARAMS = {"to": "to", "text": "text", "sender": "from", "api_key": "api_key"}


def json_path(data: Any, path: str) -> Any:
    """Follow "a.b.0.c" through dicts and lists; None where the path leads nowhere."""
    current = data
    for step in path.split("."):
        if isinstance(current, dict):
            current = current.get(step)
        elif isinstance(current, list) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return None
    return current


def format_number(phone: str, number_format: str) -> str:
    if number_format == "e164":
        return phone
    if number_format == "national" and phone.startswith("+880"):
        return "0" + phone[4:]
    return digits_only(phone)


class GenericHttp(Provider):
    kind = "generic_http"

    def fields(self, message: OutgoingMessage) -> dict[str, str]:
        credentials = self.account.credentials
        values = {
            "to": format_number(message.recipient, self.account.option("number_format", "digits")),
            "text": message.body,
            "sender": self.account.sender_id,
            "api_key": credentials.get("api_key", ""),
            "username": self.account.username,
            "password": credentials.get("password", ""),
            "reference": message.reference,
        }
        unicode_values = self.account.option("unicode_values")
        if unicode_values:
            values["unicode"] = str(unicode_values[1] if message.encoding == UCS2 else unicode_values[0])
        names: dict[str, str] = self.account.option("params") or DEFAULT_PARAMS
        fields = {str(k): str(v) for k, v in (self.account.option("static_params") or {}).items()}
        fields.update({names[field]: value for field, value in values.items() if field in names})
        return fields

    def send(self, message: OutgoingMessage) -> SendResult:
        url = self.base_url + str(self.account.option("path", ""))
        fields = self.fields(message)
        method = str(self.account.option("method", "POST")).upper()
        try:
            with self.client() as client:
                if method == "GET":
                    response = client.get(url, params=fields)
                elif self.account.option("body", "form") == "json":
                    response = client.post(url, json=fields)
                else:
                    response = client.post(url, data=fields)
        except httpx.HTTPError as error:
            return self.transport_failure(error)
        data = self.json_or_none(response)
        if self.succeeded(response, data):
            return SendResult.sent(self.message_id(response, data))
        code_path = self.account.option("error_code_path")
        code = json_path(data, code_path) if code_path else None
        mapped = (self.account.option("error_codes") or {}).get(str(code)) if code is not None else None
        detail = response.text[:300] or f"HTTP {response.status_code}"
        if isinstance(mapped, str) and mapped in {reason.value for reason in FailureReason}:
            return SendResult.failed(FailureReason(mapped), detail, code if code is not None else "")
        if not response.is_success:
            return SendResult.failed(classify_http_status(response.status_code), detail, response.status_code)
        return SendResult.failed(FailureReason.REJECTED, detail, code if code is not None else "")

    def succeeded(self, response: httpx.Response, data: Any) -> bool:
        rule = self.account.option("success")
        if not rule:
            return response.is_success
        if not response.is_success:
            return False
        if "regex" in rule:
            return re.search(rule["regex"], response.text) is not None
        expected = rule.get("equals")
        actual = json_path(data, rule.get("json_path", ""))
        accepted = expected if isinstance(expected, list) else [expected]
        return actual is not None and str(actual) in {str(v) for v in accepted}

    def message_id(self, response: httpx.Response, data: Any) -> str:
        rule = self.account.option("message_id") or {}
        if "regex" in rule:
            match = re.search(rule["regex"], response.text)
            return match.group(1) if match and match.groups() else ""
        if "json_path" in rule:
            value = json_path(data, rule["json_path"])
            return "" if value is None else str(value)
        return ""
