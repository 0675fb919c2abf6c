"""The admin lists every notifications model and never shows a secret."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sonjog.notifications.services import notify_event, template_save
from sonjog.notifications.tests.conftest import make_isp
from sonjog.notifications.tests.fakes import SslWirelessFake

pytestmark = pytest.mark.django_db

MODELS = [
    "provideraccount",
    "messagetemplate",
    "notificationsettings",
    "subscriberpreference",
    "smsbalance",
    "smscreditentry",
    "lowbalancealert",
    "bulksend",
    "message",
]


def test_admin_pages_render_without_secrets(gateway: SslWirelessFake) -> None:
    isp = make_isp(gateway)
    assert isp.sms is not None
    notify_event(subscriber=isp.subscriber, event="welcome")
    template_save(operator=isp.operator, event="welcome", channel="sms", language="en", body="Hi {{ name }}")
    admin = User.objects.create_superuser("root", "root@example.net", "x-long-pass-1")
    client = Client()
    client.force_login(admin)
    for model in MODELS:
        response = client.get(f"/admin/notifications/{model}/")
        assert response.status_code == 200, model
    page = client.get(f"/admin/notifications/provideraccount/{isp.sms.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "ssl-token" not in html and "hook-secret" not in html and isp.sms.credentials_encrypted not in html
    refused = client.post(
        "/admin/notifications/messagetemplate/add/",
        {"operator": isp.operator.pk, "event": "otp", "channel": "sms", "language": "en", "body": "{{ pin }}"},
    )
    assert refused.status_code == 200 and "unknown variable" in refused.content.decode()
