"""The profile's daily work: the PPPoE password (shown once at creation, hidden, revealed with the
permission and audited, reset with the router command and an optional SMS), suspending and
reactivating with a reason (warned when the subscriber is still overdue), the next invoice date and
what "Sync: Pending" means."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from sonjog.billing.selectors import subscriber_dues
from sonjog.billing.terms import operator_today
from sonjog.console.formatting import money
from sonjog.console.tests.conftest import add_staff
from sonjog.console.views.profile import next_invoice_date
from sonjog.core.models import AuditEvent
from sonjog.customers.models import ServiceIntent, Subscriber, SyncState
from sonjog.network.models import OutboxCommand, OutboxStatus
from sonjog.network.services import router_create
from sonjog.notifications.models import Event, Message
from sonjog.notifications.services import provider_account_create, sms_credit_add
from sonjog.operators.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db


def _create(client, tree, **extra):
    return client.post(
        reverse("console:subscriber_create"),
        {
            "operator": tree.north.operator.pk,
            "name": "Rahim Uddin",
            "phone": "01712340001",
            "package": tree.north.package.pk,
            "zone": tree.north.zone.pk,
            "activate": "on",
            **extra,
        },
    )


def _sms_account(operator):
    provider_account_create(
        operator=operator,
        name="SSL Wireless",
        kind="ssl_wireless",
        sender_id="MYISP",
        credentials={"api_token": "t0ken"},
        base_url="http://127.0.0.1:9",
        cost_per_segment=Decimal("0.25"),
    )
    sms_credit_add(operator=operator, amount=Decimal("100.00"))


def _on_router(subscriber):
    router = router_create(operator=subscriber.operator, name="core", address="127.0.0.1", api_port=1)
    Subscriber.objects.filter(pk=subscriber.pk).update(router=router)
    return router


# -- the PPPoE password ---------------------------------------------------------------------------


def test_the_new_subscribers_password_is_shown_once_after_creation(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    response = _create(client, tree, pppoe_password="Typed-Secret-9")
    assert response.status_code == 302
    subscriber = Subscriber.objects.get(name="Rahim Uddin")
    first = client.get(response["Location"]).content.decode()
    assert 'id="shown-pppoe-password">Typed-Secret-9<' in first
    again = client.get(response["Location"]).content.decode()
    assert "Typed-Secret-9" not in again
    assert subscriber.pppoe_password == "Typed-Secret-9"


def test_a_generated_password_is_shown_once_too(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    response = _create(client, tree)
    subscriber = Subscriber.objects.get(name="Rahim Uddin")
    assert len(subscriber.pppoe_password) >= 12
    assert subscriber.pppoe_password in client.get(response["Location"]).content.decode()


def test_the_profile_hides_the_password_and_offers_reveal_only_with_the_permission(tree):
    subscriber = tree.north.subscribers[0]
    url = reverse("console:subscriber", args=[subscriber.pk])
    clerk_page = tree.login(tree.north.staff["billing_clerk"]).get(url).content.decode()
    assert subscriber.pppoe_password not in clerk_page
    assert 'data-action="reveal-password"' not in clerk_page
    assert 'data-action="reset-password"' in clerk_page
    owner_page = tree.login(tree.root.staff["owner"]).get(url).content.decode()
    assert subscriber.pppoe_password not in owner_page
    assert 'data-action="reveal-password"' in owner_page


def test_reveal_is_audited_and_shown(tree):
    subscriber = tree.north.subscribers[0]
    owner = tree.root.staff["owner"]
    client = tree.login(owner)
    url = reverse("console:subscriber_password_reveal", args=[subscriber.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 302
    assert subscriber.pppoe_password in client.get(response["Location"]).content.decode()
    event = AuditEvent.objects.get(action="subscriber.pppoe_password.reveal", subscriber=subscriber)
    assert event.actor == owner
    assert subscriber.pppoe_password not in str(event.detail)
    fragment = client.post(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert 'id="shown-pppoe-password"' in fragment.content.decode()
    assert AuditEvent.objects.filter(action="subscriber.pppoe_password.reveal").count() == 2


def test_reveal_without_the_permission_is_refused_and_leaves_no_trace(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["billing_clerk"])
    response = client.post(reverse("console:subscriber_password_reveal", args=[subscriber.pk]))
    assert response.status_code == 403
    assert subscriber.pppoe_password not in response.content.decode()
    assert not AuditEvent.objects.filter(action="subscriber.pppoe_password.reveal").exists()


def test_reveal_of_another_subtrees_subscriber_is_404(tree):
    north_owner = add_staff(tree.north, "owner")
    response = tree.login(north_owner).post(
        reverse("console:subscriber_password_reveal", args=[tree.south.subscribers[0].pk])
    )
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="subscriber.pppoe_password.reveal").exists()


def test_owner_and_manager_hold_the_reveal_permission(tree):
    assert tree.root.staff["owner"].has_perm("customers.reveal_pppoe_password")
    manager = add_staff(tree.root, "manager")
    assert manager.has_perm("customers.reveal_pppoe_password")
    assert "customers.reveal_pppoe_password" not in ROLE_PERMISSIONS["billing_clerk"]


def test_reset_asks_first_then_sets_a_new_password_and_queues_the_router(tree):
    subscriber = tree.north.subscribers[0]
    _on_router(subscriber)
    OutboxCommand.objects.filter(subscriber=subscriber).delete()
    old = subscriber.pppoe_password
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:subscriber_password_reset", args=[subscriber.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert 'id="password-reset-warning"' in confirm.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.pppoe_password == old
    response = client.post(url, {})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.pppoe_password != old and len(subscriber.pppoe_password) >= 12
    command = OutboxCommand.objects.get(subscriber=subscriber)
    assert command.status == OutboxStatus.PENDING
    assert command.requested_by == "PPPoE password reset"
    assert AuditEvent.objects.filter(action="subscriber.pppoe_password.reset", subscriber=subscriber).exists()
    assert not Message.objects.filter(subscriber=subscriber, event=Event.PPPOE_PASSWORD).exists()
    shown = client.get(response["Location"]).content.decode()
    assert subscriber.pppoe_password in shown
    assert subscriber.pppoe_password not in client.get(response["Location"]).content.decode()


def test_reset_sends_the_password_by_sms_when_asked(tree):
    subscriber = tree.north.subscribers[0]
    _sms_account(tree.north.operator)
    client = tree.login(tree.north.staff["billing_clerk"])
    response = client.post(reverse("console:subscriber_password_reset", args=[subscriber.pk]), {"send_sms": "on"})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    message = Message.objects.get(subscriber=subscriber, event=Event.PPPOE_PASSWORD)
    assert message.channel == "sms" and message.recipient == subscriber.phone
    assert subscriber.pppoe_username in message.body and subscriber.pppoe_password in message.body
    assert message.is_urgent
    page = client.get(response["Location"]).content.decode()
    assert "sent to" in page


def test_reset_with_sms_but_no_sms_account_says_so(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["billing_clerk"])
    response = client.post(
        reverse("console:subscriber_password_reset", args=[subscriber.pk]), {"send_sms": "on"}, follow=True
    )
    assert "no SMS was queued" in response.content.decode()
    assert not Message.objects.filter(subscriber=subscriber).filter(event=Event.PPPOE_PASSWORD).exists()


def test_reset_needs_the_change_permission(tree):
    subscriber = tree.north.subscribers[0]
    old = subscriber.pppoe_password
    response = tree.login(tree.north.staff["collector"]).post(
        reverse("console:subscriber_password_reset", args=[subscriber.pk])
    )
    assert response.status_code == 403
    subscriber.refresh_from_db()
    assert subscriber.pppoe_password == old


# -- suspend and reactivate -----------------------------------------------------------------------


def test_suspend_asks_for_a_reason_and_confirmation(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:subscriber_intent", args=[subscriber.pk])
    profile = client.get(reverse("console:subscriber", args=[subscriber.pk])).content.decode()
    assert f"{url}?intent=suspended" in profile
    confirm = client.get(url, {"intent": "suspended"})
    assert confirm.status_code == 200 and 'name="reason"' in confirm.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE
    refused = client.post(url, {"intent": "suspended", "reason": ""})
    assert refused.status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE
    done = client.post(url, {"intent": "suspended", "reason": "customer travelling"})
    assert done.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.SUSPENDED
    event = AuditEvent.objects.get(action="subscriber.intent.suspended", subscriber=subscriber)
    assert event.detail["reason"] == "customer travelling"


def _overdue_subscriber(tree):
    """North's first subscriber, suspended, whose bills are past due and grace two months on."""
    subscriber = tree.north.subscribers[0]
    Subscriber.objects.filter(pk=subscriber.pk).update(service_intent=ServiceIntent.SUSPENDED)
    return subscriber


def test_reactivating_someone_still_overdue_warns_first(tree):
    subscriber = _overdue_subscriber(tree)
    later = dt.datetime.combine(operator_today(subscriber.operator) + dt.timedelta(days=60), dt.time(4), dt.UTC)
    url = reverse("console:subscriber_intent", args=[subscriber.pk])
    with time_machine.travel(later, tick=False):
        client = tree.login(tree.north.staff["billing_clerk"])  # signed in then: a session is not kept 60 days
        today = operator_today(subscriber.operator)
        dues = subscriber_dues(subscriber.operator_id, [subscriber.pk], today)[subscriber.pk]
        assert dues.is_overdue and dues.due > 0
        confirm = client.get(url, {"intent": "active"}).content.decode()
        assert 'id="still-overdue"' in confirm
        assert f"Still owes {money(dues.due, subscriber.operator.currency)}" in confirm
        refused = client.post(url, {"intent": "active", "reason": "promised to pay"})
        assert refused.status_code == 400
        assert "Tick this" in refused.content.decode()
        subscriber.refresh_from_db()
        assert subscriber.service_intent == ServiceIntent.SUSPENDED
        done = client.post(url, {"intent": "active", "reason": "promised to pay", "confirm_overdue": "on"})
        assert done.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE


def test_reactivating_someone_who_owes_nothing_overdue_needs_no_extra_tick(tree):
    subscriber = tree.north.subscribers[1]
    Subscriber.objects.filter(pk=subscriber.pk).update(service_intent=ServiceIntent.SUSPENDED)
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:subscriber_intent", args=[subscriber.pk])
    confirm = client.get(url, {"intent": "active"}).content.decode()
    assert 'id="still-overdue"' not in confirm and "confirm_overdue" not in confirm
    assert client.post(url, {"intent": "active", "reason": "paid at the office"}).status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE


# -- next invoice date and sync -------------------------------------------------------------------


def test_next_invoice_date_is_the_period_after_the_latest_billed(tree):
    subscriber = Subscriber.objects.select_related("operator").get(pk=tree.north.subscribers[0].pk)
    today = operator_today(subscriber.operator)
    # Calendar cycle: billed up to this month, the next bill covers from the 1st of next month.
    expected = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    assert next_invoice_date(subscriber) == expected
    page = tree.login(tree.north.staff["billing_clerk"]).get(reverse("console:subscriber", args=[subscriber.pk]))
    assert 'id="next-invoice-date"' in page.content.decode()
    assert expected.strftime("%d/%m/%Y") in page.content.decode()


def test_next_invoice_date_waits_for_billing_starts_on(tree):
    subscriber = Subscriber.objects.select_related("operator").get(pk=tree.north.subscribers[0].pk)
    today = operator_today(subscriber.operator)
    starts = (today.replace(day=1) + dt.timedelta(days=100)).replace(day=15)
    Subscriber.objects.filter(pk=subscriber.pk).update(billing_starts_on=starts)
    subscriber.refresh_from_db()
    # The period holding the 15th started before it: the first one Sonjog bills starts the next month.
    assert next_invoice_date(subscriber) == (starts + dt.timedelta(days=20)).replace(day=1)
    Subscriber.objects.filter(pk=subscriber.pk).update(billing_starts_on=starts.replace(day=1))
    subscriber.refresh_from_db()
    assert next_invoice_date(subscriber) == starts.replace(day=1)


def test_no_next_invoice_date_before_activation_or_after_termination(tree):
    subscriber = Subscriber.objects.select_related("operator").get(pk=tree.north.subscribers[0].pk)
    subscriber.activation_date = None
    assert next_invoice_date(subscriber) is None
    subscriber.refresh_from_db()
    subscriber.service_intent = ServiceIntent.TERMINATED
    assert next_invoice_date(subscriber) is None


def test_sync_pending_only_with_a_command_waiting(tree):
    subscriber = tree.north.subscribers[0]
    Subscriber.objects.filter(pk=subscriber.pk).update(sync_state=SyncState.PENDING)
    OutboxCommand.objects.filter(subscriber=subscriber).delete()
    client = tree.login(tree.north.staff["billing_clerk"])
    network = reverse("console:subscriber_network", args=[subscriber.pk])
    idle = client.get(network).content.decode()
    assert "Nothing waiting for the router" in idle and "badge-" not in idle.split('id="sync-state"')[1][:60]
    _on_router(subscriber)
    client.post(reverse("console:subscriber_intent", args=[subscriber.pk]), {"intent": "suspended", "reason": "test"})
    waiting = client.get(network).content.decode()
    assert "Nothing waiting for the router" not in waiting
    assert "queued" in waiting
    OutboxCommand.objects.filter(subscriber=subscriber).update(status=OutboxStatus.DONE)
    assert "Nothing waiting for the router" in client.get(network).content.decode()
