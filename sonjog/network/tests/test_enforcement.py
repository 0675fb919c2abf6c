"""End to end against the RouterOS emulator over TCP, driven by librouteros, with a real worker cycle."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.verification import ledger_verify
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.enforcement import overdue_sweep
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_create, subscriber_set_intent
from sonjog.network.models import OutboxCommand, OutboxStatus
from sonjog.network.reconcile import network_diff, network_reconcile
from sonjog.network.services import outbox_drain, outbox_retry
from sonjog.network.tests.conftest import Isp

pytestmark = pytest.mark.django_db(transaction=True)


def secret_state(emulator, name):
    secret = emulator.secret(name)
    if secret is None:
        return "absent"
    return "disabled" if secret.get("disabled") == "true" else "enabled"


def sets_for(emulator, name, disabled):
    """How many times the router was told to set this secret's disabled flag to `disabled`."""
    ids = {row[".id"] for row in emulator.secrets() if row["name"] == name}
    return sum(
        1
        for path, attrs in emulator.command_log
        if path == "/ppp/secret/set" and attrs.get(".id") in ids and attrs.get("disabled") == disabled
    )


def make_overdue_subscriber(isp):
    # Activated 45 days ago: last month's bill is past due (7 days) + grace (3 days).
    return subscriber_create(
        operator=isp.operator,
        name="Karim",
        phone="01712345678",
        package=isp.package,
        zone=isp.zone,
        activation_date=isp.days_ago(45),
    )


def test_signup_overdue_sweep_payment_round_trip(emulator):
    isp = Isp(emulator)
    subscriber = make_overdue_subscriber(isp)
    assert OutboxCommand.objects.filter(subscriber=subscriber, status="pending").count() == 1
    run_worker_cycle()
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"
    secret = emulator.secret(subscriber.pppoe_username)
    assert secret["profile"] == "10m" and subscriber.customer_id in secret["comment"]
    subscriber.refresh_from_db()
    assert (subscriber.router_state, subscriber.sync_state) == ("enabled", "in_sync")

    emulator.add_active_session(subscriber.pppoe_username, "10.20.0.5", caller_id="AA:BB:CC:00:11:22")
    result = overdue_sweep(operator=isp.operator)
    assert result["suspended"] == 1
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.SUSPENDED
    run_worker_cycle()
    assert secret_state(emulator, subscriber.pppoe_username) == "disabled"
    assert emulator.active_sessions() == []  # the kick
    # Sweeping again changes nothing: already suspended.
    assert overdue_sweep(operator=isp.operator)["suspended"] == 0

    payment_receive(subscriber=subscriber, amount=subscriber_balance(subscriber.pk), method="cash")
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE  # in the payment's own transaction
    run_worker_cycle()  # one worker cycle later, the router agrees
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"
    assert sets_for(emulator, subscriber.pppoe_username, "no") == 1
    done = OutboxCommand.objects.filter(subscriber=subscriber, status=OutboxStatus.DONE)
    assert done.count() == 3 and all(c.latency_ms is not None for c in done)
    assert ledger_verify().ok


def test_router_down_during_payment_converges_once_it_returns(emulator):
    isp = Isp(emulator)
    subscriber = make_overdue_subscriber(isp)
    run_worker_cycle()
    overdue_sweep(operator=isp.operator)
    run_worker_cycle()
    assert secret_state(emulator, subscriber.pppoe_username) == "disabled"

    emulator.refuse_connections(True)
    payment_receive(subscriber=subscriber, amount=subscriber_balance(subscriber.pk), method="bkash")
    run_worker_cycle()
    command = OutboxCommand.objects.filter(subscriber=subscriber).order_by("-pk").first()
    assert command is not None
    assert command.status == OutboxStatus.PENDING and command.attempts == 1
    assert "refused" in command.last_error.lower()
    assert command.next_attempt_at > timezone.now()  # retried later, not hammered
    subscriber.refresh_from_db()
    assert subscriber.sync_state == "pending"

    emulator.refuse_connections(False)
    OutboxCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())  # two minutes pass
    assert outbox_drain() == {"done": 1}
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"
    assert outbox_drain() == {}  # nothing left, nothing sent twice
    assert sets_for(emulator, subscriber.pppoe_username, "no") == 1
    assert command.attempt_log.count() == 2


def test_router_dying_mid_reply_is_retried_and_lands_once(emulator):
    isp = Isp(emulator)
    subscriber = make_overdue_subscriber(isp)
    emulator.drop_mid_reply(1)
    run_worker_cycle()
    command = OutboxCommand.objects.get(subscriber=subscriber)
    assert command.status == OutboxStatus.PENDING and command.attempts == 1
    OutboxCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())
    outbox_drain()
    assert [row["name"] for row in emulator.secrets()] == [subscriber.pppoe_username]
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"


def test_commands_fail_after_the_attempt_budget_and_can_be_retried(emulator, settings):
    settings.SONJOG_OUTBOX_MAX_ATTEMPTS = 2
    isp = Isp(emulator)
    emulator.refuse_connections(True)
    subscriber = make_overdue_subscriber(isp)
    command = OutboxCommand.objects.get(subscriber=subscriber)
    for _ in range(2):
        OutboxCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())
        outbox_drain()
    command.refresh_from_db()
    assert command.status == OutboxStatus.FAILED and command.attempts == 2
    assert Subscriber.objects.get(pk=subscriber.pk).sync_state == "failed"
    emulator.refuse_connections(False)
    outbox_retry(command)
    run_worker_cycle()
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"


def test_newer_intent_supersedes_a_pending_command(emulator):
    isp = Isp(emulator)
    subscriber = make_overdue_subscriber(isp)
    subscriber_set_intent(subscriber=subscriber, intent="disabled", reason="staff")
    subscriber_set_intent(subscriber=subscriber, intent="active", reason="staff changed their mind")
    assert OutboxCommand.objects.filter(subscriber=subscriber).count() == 1  # de-duplicated
    run_worker_cycle()
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"
    assert emulator.command_count("/ppp/secret/add") == 1


def test_record_only_router_never_touches_the_router(emulator):
    isp = Isp(emulator, record_only=True)
    subscriber = make_overdue_subscriber(isp)
    command = OutboxCommand.objects.get(subscriber=subscriber)
    assert command.status == OutboxStatus.RECORD_ONLY
    overdue_sweep(operator=isp.operator)
    run_worker_cycle()
    assert emulator.command_log == []
    assert Subscriber.objects.get(pk=subscriber.pk).sync_state == "record_only"


def test_vip_is_never_suspended(emulator):
    isp = Isp(emulator)
    vip = subscriber_create(
        operator=isp.operator,
        name="VIP",
        phone="01812345678",
        package=isp.package,
        zone=isp.zone,
        activation_date=isp.days_ago(45),
        is_vip=True,
    )
    assert overdue_sweep(operator=isp.operator)["suspended"] == 0
    assert Subscriber.objects.get(pk=vip.pk).service_intent == ServiceIntent.ACTIVE


def test_diff_shows_drift_and_reconcile_repairs_it(emulator):
    isp = Isp(emulator)
    subscriber = make_overdue_subscriber(isp)
    run_worker_cycle()
    # Someone disables the secret by hand on the router and adds one Sonjog does not know.
    emulator.execute("/ppp/secret/set", **{".id": emulator.secret(subscriber.pppoe_username)[".id"], "disabled": "yes"})
    emulator.add_secret("walk-in", password="x", profile="10m")
    report = network_diff()[isp.router.name]
    kinds = {item.kind for item in report.disagreements}
    assert kinds == {"billed active but disabled on router", "on router but unknown to Sonjog"}
    reconciled = network_reconcile()[isp.router.name]
    assert reconciled.repairs_queued == 1
    assert Subscriber.objects.get(pk=subscriber.pk).router_state == "disabled"  # reality recorded
    run_worker_cycle()
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"
    assert {item.kind for item in network_diff()[isp.router.name].disagreements} == {"on router but unknown to Sonjog"}
    assert emulator.secret("walk-in") is not None  # reported, never deleted


def test_terminated_subscriber_is_removed_from_the_router(emulator):
    from sonjog.flows.subscribers import subscriber_terminate

    isp = Isp(emulator)
    subscriber = make_overdue_subscriber(isp)
    run_worker_cycle()
    payment_receive(subscriber=subscriber, amount=Decimal("100.00"), method="cash")
    subscriber_terminate(subscriber=subscriber, reason="moved")
    run_worker_cycle()
    assert secret_state(emulator, subscriber.pppoe_username) == "absent"


def test_packages_must_map_exactly_onto_router_profiles(emulator):
    from sonjog.catalog.models import Package
    from sonjog.network.reconcile import rate_kbps

    isp = Isp(emulator)
    Package.objects.create(
        operator=isp.operator,
        name="Fiber 50",
        price=Decimal("2000"),
        download_kbps=51200,
        upload_kbps=51200,
        router_profile="50m",
    )
    emulator.add_profile("50m", rate_limit="40M/40M")  # the router was set up with a different speed
    Package.objects.create(
        operator=isp.operator,
        name="Fiber 100",
        price=Decimal("3000"),
        download_kbps=102400,
        upload_kbps=102400,
        router_profile="100m",
    )  # no such profile on the router
    items = {item.username: item for item in network_diff()[isp.router.name].disagreements}
    assert items["50m"].kind == "profile rate differs from package" and items["50m"].router_view == "40M/40M"
    assert items["100m"].kind == "package profile missing on router"
    assert "10m" not in items
    assert rate_kbps("10M/20M 12M/24M 8M/16M 10/10") == (10000, 20000)
    assert rate_kbps("512k") == (512, 512)
