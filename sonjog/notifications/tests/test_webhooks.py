"""Delivery-report webhooks: token checks, per-provider shapes, 400s that name the field."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from django.test import Client

from sonjog.notifications.models import Message, ProviderAccount
from sonjog.notifications.services import message_queue, message_send, provider_account_create
from sonjog.notifications.tests.conftest import Isp, make_isp
from sonjog.notifications.tests.fakes import SslWirelessFake, TwilioFake, WhatsAppFake

pytestmark = pytest.mark.django_db


@pytest.fixture
def isp(gateway: SslWirelessFake) -> Isp:
    return make_isp(gateway)


def sent_message(isp: Isp, channel: str = "sms") -> Message:
    message = message_queue(operator=isp.operator, channel=channel, recipient=isp.subscriber.phone, body="Hello")
    assert message is not None
    assert message_send(message.pk) == "sent"
    message.refresh_from_db()
    return message


def hook(account: ProviderAccount, token: str | None = "hook-secret") -> str:
    query = f"?token={token}" if token is not None else ""
    return f"/hooks/notifications/{account.kind}/{account.pk}/{query}"


def test_bad_requests_name_the_field(isp: Isp) -> None:
    assert isp.sms is not None
    client = Client()
    cases = [
        (hook(isp.sms, None), {"reference_id": "R", "status": "DELIVERED"}, 400, "token"),
        # A wrong token answers as an unknown account: the hook never confirms which ids exist.
        (hook(isp.sms, "guess"), {"reference_id": "R", "status": "DELIVERED"}, 404, "account_id"),
        (hook(isp.sms), {"status": "DELIVERED"}, 400, "reference_id"),
        (hook(isp.sms), {"reference_id": "R"}, 400, "status"),
        (hook(isp.sms), {"reference_id": "R", "status": "EXPLODED"}, 400, "status"),
        (f"/hooks/notifications/ssl_wireless/{isp.sms.pk + 999}/?token=x", {}, 404, "account_id"),
        (f"/hooks/notifications/pigeon/{isp.sms.pk}/?token=x", {}, 404, "provider"),
    ]
    for url, data, status, field in cases:
        response = client.post(url, data)
        assert (response.status_code, response.json()["field"]) == (status, field), url
    response = client.post(hook(isp.sms), "{not json", content_type="application/json")
    assert (response.status_code, response.json()["field"]) == (400, "body")


def test_token_in_header_and_reports_only_touch_the_accounts_own_messages(isp: Isp, gateway: SslWirelessFake) -> None:
    message = sent_message(isp)
    other = make_isp(gateway)
    assert other.sms is not None and isp.sms is not None
    client = Client()
    foreign = client.post(
        hook(other.sms, None),
        {"reference_id": message.provider_message_id, "status": "FAILED"},
        headers={"X-Sonjog-Token": "hook-secret"},
    )
    assert foreign.json() == {"ok": True, "delivered": 0, "failed": 0, "unchanged": 0, "unknown": 1}
    message.refresh_from_db()
    assert message.status == "sent"
    failed = client.post(hook(isp.sms), {"reference_id": message.provider_message_id, "status": "FAILED"})
    assert failed.json()["failed"] == 1
    message.refresh_from_db()
    assert (message.status, message.failure_reason) == ("failed", "undelivered")
    late = client.post(hook(isp.sms), {"reference_id": message.provider_message_id, "status": "DELIVERED"})
    assert late.json()["unchanged"] == 1  # final states stay final


@pytest.fixture
def twilio() -> Iterator[TwilioFake]:
    fake = TwilioFake().start()
    try:
        yield fake
    finally:
        fake.stop()


def test_twilio_status_callback(isp: Isp, twilio: TwilioFake, settings) -> None:
    settings.SONJOG_PUBLIC_URL = "https://billing.isp.example"
    account = provider_account_create(
        operator=isp.operator,
        name="Twilio",
        kind="twilio",
        username=twilio.account_sid,
        sender_id=twilio.sender,
        credentials={"auth_token": twilio.auth_token},
        base_url=twilio.url,
        webhook_token="hook-secret",
    )
    message = sent_message(isp)
    assert message.account_id == account.pk and message.provider_message_id.startswith("SM")
    assert twilio.last.form["StatusCallback"] == f"https://billing.isp.example{hook(account)}"
    response = Client().post(
        hook(account), {"MessageSid": message.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    assert response.json()["failed"] == 1
    message.refresh_from_db()
    assert (message.status, message.last_error) == ("failed", "Twilio error 30003")


@pytest.fixture
def whatsapp() -> Iterator[WhatsAppFake]:
    fake = WhatsAppFake().start()
    try:
        yield fake
    finally:
        fake.stop()


def test_whatsapp_handshake_and_signed_status_webhook(isp: Isp, whatsapp: WhatsAppFake) -> None:
    account = provider_account_create(
        operator=isp.operator,
        name="WhatsApp",
        kind="whatsapp_cloud",
        sender_id=whatsapp.phone_number_id,
        credentials={"access_token": whatsapp.token, "app_secret": "app-secret"},
        base_url=whatsapp.url,
        webhook_token="hook-secret",
    )
    client = Client()
    base = f"/hooks/notifications/whatsapp_cloud/{account.pk}/"
    challenge = client.get(base, {"hub.mode": "subscribe", "hub.verify_token": "hook-secret", "hub.challenge": "42"})
    assert (challenge.status_code, challenge.content) == (200, b"42")
    refused = client.get(base, {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"})
    assert refused.status_code == 404

    message = sent_message(isp, channel="whatsapp")
    assert message.provider_message_id.startswith("wamid.")
    payload = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "statuses": [
                                    {"id": message.provider_message_id, "status": "sent", "timestamp": "1"},
                                    {"id": message.provider_message_id, "status": "delivered", "timestamp": "2"},
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    signature = "sha256=" + hmac.new(b"app-secret", payload, hashlib.sha256).hexdigest()
    forged = client.post(
        hook(account), payload, content_type="application/json", headers={"X-Hub-Signature-256": "sha256=00"}
    )
    assert (forged.status_code, forged.json()["field"]) == (400, "X-Hub-Signature-256")
    signed = client.post(
        hook(account), payload, content_type="application/json", headers={"X-Hub-Signature-256": signature}
    )
    assert signed.json()["delivered"] == 1
    message.refresh_from_db()
    assert message.status == "delivered"
