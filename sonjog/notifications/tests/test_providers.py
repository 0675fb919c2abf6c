"""Each provider against a loopback server speaking its documented shapes; the requests are asserted."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from sonjog.notifications.models import ProviderAccount
from sonjog.notifications.providers import FailureReason, OutgoingMessage, provider_for
from sonjog.notifications.segments import GSM7, UCS2
from sonjog.notifications.tests.fakes import (
    BulkSmsBdFake,
    FakeGateway,
    GenericFake,
    SslWirelessFake,
    TwilioFake,
    WhatsAppFake,
)

TO = "+8801712345678"
BANGLA = "আপনার বিল ৫০০ টাকা"


def account(kind: str, base_url: str, credentials: dict[str, str] | None = None, **fields: Any) -> ProviderAccount:
    channel = {"smtp": "email", "whatsapp_cloud": "whatsapp"}.get(kind, "sms")
    made = ProviderAccount(kind=kind, channel=channel, base_url=base_url, cost_per_segment=Decimal("0.25"), **fields)
    made.credentials = credentials or {}
    return made


def serve(fake: FakeGateway) -> Iterator[Any]:
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def ssl_fake() -> Iterator[SslWirelessFake]:
    yield from serve(SslWirelessFake())


@pytest.fixture
def bulk_fake() -> Iterator[BulkSmsBdFake]:
    yield from serve(BulkSmsBdFake())


@pytest.fixture
def twilio_fake() -> Iterator[TwilioFake]:
    yield from serve(TwilioFake())


@pytest.fixture
def wa_fake() -> Iterator[WhatsAppFake]:
    yield from serve(WhatsAppFake())


@pytest.fixture
def generic_fake() -> Iterator[GenericFake]:
    yield from serve(GenericFake())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- SSL Wireless ----------------------------------------------------------------------------------


def ssl_account(fake: SslWirelessFake, token: str = "ssl-token", sid: str = "MYISP") -> ProviderAccount:
    return account("ssl_wireless", fake.url, {"api_token": token}, sender_id=sid)


def test_ssl_wireless_sends_json_and_returns_reference_id(ssl_fake: SslWirelessFake) -> None:
    result = provider_for(ssl_account(ssl_fake)).send(OutgoingMessage(TO, BANGLA, encoding=UCS2, reference="sj42"))
    assert result.ok and result.provider_message_id.startswith("REF")
    sent = ssl_fake.last
    assert (sent.method, sent.path) == ("POST", "/api/v3/send-sms")
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "api_token": "ssl-token",
        "sid": "MYISP",
        "msisdn": "8801712345678",
        "sms": BANGLA,
        "csms_id": "sj42",
    }


@pytest.mark.parametrize(
    ("setup", "message", "reason", "code"),
    [
        ({"token": "wrong"}, OutgoingMessage(TO, "hi", reference="a1"), FailureReason.AUTH, "4001"),
        ({"sid": "OTHER"}, OutgoingMessage(TO, "hi", reference="a2"), FailureReason.CONFIGURATION, "4002"),
        ({}, OutgoingMessage("+8801212345678", "hi", reference="a3"), FailureReason.INVALID_NUMBER, "4025"),
        ({"credit": 0}, OutgoingMessage(TO, "hi", reference="a4"), FailureReason.INSUFFICIENT_BALANCE, "4030"),
    ],
)
def test_ssl_wireless_classifies_documented_codes(
    ssl_fake: SslWirelessFake, setup: dict[str, Any], message: OutgoingMessage, reason: FailureReason, code: str
) -> None:
    ssl_fake.credit = setup.get("credit", ssl_fake.credit)
    used = ssl_account(ssl_fake, token=setup.get("token", "ssl-token"), sid=setup.get("sid", "MYISP"))
    result = provider_for(used).send(message)
    assert not result.ok
    assert (result.reason, result.provider_code) == (reason, code)
    assert not result.retryable


def test_ssl_wireless_duplicate_csms_id_means_already_sent(ssl_fake: SslWirelessFake) -> None:
    provider = provider_for(ssl_account(ssl_fake))
    first = provider.send(OutgoingMessage(TO, "hi", reference="sj7"))
    again = provider.send(OutgoingMessage(TO, "hi", reference="sj7"))
    assert first.ok and again.ok and again.provider_message_id == "csms:sj7"
    assert ssl_fake.credit == 99  # charged once


def test_ssl_wireless_outage_and_unreachable_are_temporary(ssl_fake: SslWirelessFake) -> None:
    ssl_fake.outages = 1
    result = provider_for(ssl_account(ssl_fake)).send(OutgoingMessage(TO, "hi", reference="o1"))
    assert (result.reason, result.retryable) == (FailureReason.TEMPORARY, True)
    down = account("ssl_wireless", f"http://127.0.0.1:{free_port()}", {"api_token": "x"}, sender_id="MYISP")
    assert provider_for(down).send(OutgoingMessage(TO, "hi", reference="o2")).reason == FailureReason.TEMPORARY


# --- BulkSMSBD -------------------------------------------------------------------------------------


def bulk_account(fake: BulkSmsBdFake, key: str = "bulk-key", **options: Any) -> ProviderAccount:
    return account("bulksmsbd", fake.url, {"api_key": key}, sender_id="8809617000000", options=options)


def test_bulksmsbd_posts_form_fields(bulk_fake: BulkSmsBdFake) -> None:
    result = provider_for(bulk_account(bulk_fake)).send(OutgoingMessage(TO, "Bill 500", encoding=GSM7))
    assert result.ok and result.provider_message_id.isdigit()
    sent = bulk_fake.last
    assert (sent.method, sent.path, sent.query) == ("POST", "/api/smsapi", {})
    assert sent.form == {
        "api_key": "bulk-key",
        "type": "text",
        "number": "8801712345678",
        "senderid": "8809617000000",
        "message": "Bill 500",
    }


def test_bulksmsbd_get_mode_and_unicode_type(bulk_fake: BulkSmsBdFake) -> None:
    used = bulk_account(bulk_fake, method="GET", unicode_type="unicode")
    assert provider_for(used).send(OutgoingMessage(TO, BANGLA, encoding=UCS2)).ok
    sent = bulk_fake.last
    assert sent.method == "GET" and sent.body == b""
    assert sent.query["type"] == "unicode" and sent.query["message"] == BANGLA


@pytest.mark.parametrize(
    ("key", "to", "balance", "reason", "code"),
    [
        ("wrong", TO, 5, FailureReason.AUTH, "1011"),
        ("bulk-key", "+8801012345678", 5, FailureReason.INVALID_NUMBER, "1001"),
        ("bulk-key", TO, 0, FailureReason.INSUFFICIENT_BALANCE, "1007"),
    ],
)
def test_bulksmsbd_error_codes(
    bulk_fake: BulkSmsBdFake, key: str, to: str, balance: int, reason: FailureReason, code: str
) -> None:
    bulk_fake.balance = balance
    result = provider_for(bulk_account(bulk_fake, key=key)).send(OutgoingMessage(to, "hi"))
    assert (result.ok, result.reason, result.provider_code) == (False, reason, code)


def test_bulksmsbd_5xx_is_temporary(bulk_fake: BulkSmsBdFake) -> None:
    bulk_fake.outages = 1
    assert provider_for(bulk_account(bulk_fake)).send(OutgoingMessage(TO, "hi")).retryable


# --- Twilio ----------------------------------------------------------------------------------------


def twilio_account(fake: TwilioFake, token: str = "twilio-token", sender: str = "+15005550006") -> ProviderAccount:
    return account("twilio", fake.url, {"auth_token": token}, username=fake.account_sid, sender_id=sender)


def test_twilio_posts_form_with_basic_auth(twilio_fake: TwilioFake) -> None:
    outgoing = OutgoingMessage(TO, "Hello", status_callback_url="https://isp.example/hooks/x/?token=t")
    result = provider_for(twilio_account(twilio_fake)).send(outgoing)
    assert result.ok and result.provider_message_id.startswith("SM")
    sent = twilio_fake.last
    assert sent.path == f"/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages.json"
    credentials = base64.b64encode(f"{twilio_fake.account_sid}:twilio-token".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {credentials}"
    assert sent.form == {
        "To": TO,
        "From": "+15005550006",
        "Body": "Hello",
        "StatusCallback": "https://isp.example/hooks/x/?token=t",
    }


def test_twilio_messaging_service_sender(twilio_fake: TwilioFake) -> None:
    provider_for(twilio_account(twilio_fake, sender="MG" + "2" * 32)).send(OutgoingMessage(TO, "x"))
    assert twilio_fake.last.form["MessagingServiceSid"] == "MG" + "2" * 32 and "From" not in twilio_fake.last.form


def test_twilio_errors(twilio_fake: TwilioFake) -> None:
    bad_auth = provider_for(twilio_account(twilio_fake, token="nope")).send(OutgoingMessage(TO, "x"))
    assert (bad_auth.reason, bad_auth.provider_code) == (FailureReason.AUTH, "20003")
    bad_to = provider_for(twilio_account(twilio_fake)).send(OutgoingMessage("01712", "x"))
    assert (bad_to.reason, bad_to.provider_code) == (FailureReason.INVALID_NUMBER, "21211")
    assert "not a valid phone number" in bad_to.detail
    bad_from = provider_for(twilio_account(twilio_fake, sender="+15550000000")).send(OutgoingMessage(TO, "x"))
    assert (bad_from.reason, bad_from.provider_code) == (FailureReason.CONFIGURATION, "21606")
    twilio_fake.outages = 1
    assert provider_for(twilio_account(twilio_fake)).send(OutgoingMessage(TO, "x")).retryable


# --- WhatsApp Cloud --------------------------------------------------------------------------------


def wa_account(fake: WhatsAppFake, token: str = "wa-token", **options: Any) -> ProviderAccount:
    return account("whatsapp_cloud", fake.url, {"access_token": token}, sender_id=fake.phone_number_id, options=options)


def test_whatsapp_sends_text_with_bearer_token(wa_fake: WhatsAppFake) -> None:
    result = provider_for(wa_account(wa_fake)).send(OutgoingMessage(TO, BANGLA))
    assert result.ok and result.provider_message_id.startswith("wamid.")
    sent = wa_fake.last
    assert (sent.path, sent.headers["authorization"]) == ("/v21.0/109876543210/messages", "Bearer wa-token")
    assert sent.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "8801712345678",
        "type": "text",
        "text": {"preview_url": False, "body": BANGLA},
    }


def test_whatsapp_template_mode_carries_text_as_parameter(wa_fake: WhatsAppFake) -> None:
    wa_fake.window_closed.add("8801712345678")
    used = wa_account(wa_fake, template_name="isp_notice", template_language="bn")
    assert provider_for(used).send(OutgoingMessage(TO, BANGLA)).ok
    assert wa_fake.last.json["template"] == {
        "name": "isp_notice",
        "language": {"code": "bn"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": BANGLA}]}],
    }


def test_whatsapp_error_codes(wa_fake: WhatsAppFake) -> None:
    expired = provider_for(wa_account(wa_fake, token="old")).send(OutgoingMessage(TO, "x"))
    assert (expired.reason, expired.provider_code) == (FailureReason.AUTH, "190")
    wa_fake.not_on_whatsapp.add("8801712345678")
    undeliverable = provider_for(wa_account(wa_fake)).send(OutgoingMessage(TO, "x"))
    assert (undeliverable.reason, undeliverable.provider_code) == (FailureReason.INVALID_NUMBER, "131026")
    assert "not a WhatsApp user" in undeliverable.detail
    wa_fake.not_on_whatsapp.clear()
    wa_fake.window_closed.add("8801712345678")
    window = provider_for(wa_account(wa_fake)).send(OutgoingMessage(TO, "x"))
    assert (window.reason, window.provider_code, window.retryable) == (FailureReason.REJECTED, "131047", False)
    wa_fake.outages = 1
    assert provider_for(wa_account(wa_fake)).send(OutgoingMessage(TO, "x")).reason == FailureReason.TEMPORARY


# --- Generic HTTP ----------------------------------------------------------------------------------

GENERIC_OPTIONS = {
    "path": "/sms/send",
    "method": "GET",
    "params": {"to": "to", "text": "msg", "sender": "from", "api_key": "key", "username": "user"},
    "static_params": {"route": "2"},
    "success": {"json_path": "status", "equals": "ok"},
    "message_id": {"json_path": "data.id"},
    "error_code_path": "code",
    "error_codes": {"101": "auth", "102": "invalid_number", "105": "insufficient_balance"},
}


def generic_account(fake: GenericFake, key: str = "gen-key") -> ProviderAccount:
    return account(
        "generic_http", fake.url, {"api_key": key}, sender_id="ISP", username="isp1", options=GENERIC_OPTIONS
    )


def test_generic_gateway_uses_configured_names(generic_fake: GenericFake) -> None:
    result = provider_for(generic_account(generic_fake)).send(OutgoingMessage(TO, "Due 500 & pay"))
    assert result.ok and result.provider_message_id.startswith("G")
    sent = generic_fake.last
    assert (sent.method, sent.path) == ("GET", "/sms/send")
    assert sent.query == {
        "route": "2",
        "to": "8801712345678",
        "msg": "Due 500 & pay",
        "from": "ISP",
        "key": "gen-key",
        "user": "isp1",
    }


def test_generic_gateway_maps_its_error_codes(generic_fake: GenericFake) -> None:
    assert provider_for(generic_account(generic_fake, key="x")).send(OutgoingMessage(TO, "a")).reason == "auth"
    bad = provider_for(generic_account(generic_fake)).send(OutgoingMessage("+8801112345678", "a"))
    assert (bad.reason, bad.provider_code) == (FailureReason.INVALID_NUMBER, "102")
    generic_fake.balance = 0
    assert provider_for(generic_account(generic_fake)).send(OutgoingMessage(TO, "a")).reason == "insufficient_balance"
    generic_fake.outages = 1
    assert provider_for(generic_account(generic_fake)).send(OutgoingMessage(TO, "a")).retryable
