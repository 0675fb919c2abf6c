"""The demo ISP's messaging: a generic HTTP account on the local gateway, credit and reminder rules, set
up once; a message queued for a demo subscriber goes all the way to "sent" through a real worker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from sonjog.automation.models import ReminderRule
from sonjog.conftest import make_operator, make_package
from sonjog.core.jobs import run_worker_cycle
from sonjog.demo.messaging import demo_messaging_ensure
from sonjog.notifications.loopback import LoopbackGateway
from sonjog.notifications.models import Message, ProviderAccount
from sonjog.notifications.selectors import sms_balance
from sonjog.notifications.services import notification_settings_save, notify_event
from sonjog.notifications.tests.conftest import add_subscriber


@pytest.mark.django_db(transaction=True)
def test_demo_messaging_sends_through_the_local_gateway() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE queue_name = 'notifications'")
    root = make_operator(vat_rate=Decimal("0"))
    notification_settings_save(operator=root, quiet_hours_enabled=False)
    package = make_package(root, "500.00", vat=False)
    account = demo_messaging_ensure(root)
    assert demo_messaging_ensure(root).pk == account.pk  # a second start adds nothing
    assert ProviderAccount.objects.filter(operator=root).count() == 1
    assert sorted(ReminderRule.objects.filter(operator=root).values_list("event", "offset_days")) == [
        ("bill_due", -3),
        ("bill_due", 0),
        ("bill_due", 2),
        ("prepaid_expiry", -3),
    ]
    assert sms_balance(root).balance == Decimal("5000.00")

    gateway = LoopbackGateway().start()
    try:
        ProviderAccount.objects.filter(pk=account.pk).update(base_url=gateway.url)  # the demo's port may be taken
        subscriber = add_subscriber(root, package, name="Demo Person")
        [message] = notify_event(subscriber=subscriber, event="package_change")
        run_worker_cycle(queues=["notifications"])
    finally:
        gateway.stop()
    message = Message.objects.get(pk=message.pk)
    assert (message.status, gateway.received) == ("sent", 2)  # the welcome text and this one
    assert message.provider_message_id.startswith("lb-")
    assert sms_balance(root).balance == Decimal("5000.00") - 2 * Decimal("0.35")
