"""Add-on router effects on MikroTik (issue 9, ADR 0008), end to end: the services change add-ons, the
outbox and the reconciler apply them through the driver, over TCP to the RouterOS emulator, and the
tests read the emulator's own tables afterwards.

- An address-list add-on puts the subscriber's address (live session, else its fixed address) on the
  list as an entry tagged ``sonjog:<username>``; ending it takes exactly the tagged entries away.
- A static-IP add-on makes the subscriber's static IP the secret's remote-address while it runs.
Time is the suite's pinned clock; days move with time_machine.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sonjog.catalog.models import AddOn, AddOnEffect
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_subscriber
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.subscribers import subscriber_addon_activate, subscriber_addon_deactivate, subscriber_set_intent
from sonjog.network.desired import desired_secrets
from sonjog.network.drivers.mikrotik import DesiredSecret, MikrotikDriver, RouterConfig
from sonjog.network.models import OutboxCommand
from sonjog.network.reconcile import network_reconcile, router_diff, served_subscribers
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import outbox_drain, outbox_enqueue
from sonjog.network.tests.conftest import ROUTER_PASSWORD, Isp

GAMING = "gaming-boost"


def listed(emulator: RouterOSEmulator, list_name: str) -> set[tuple[str, str]]:
    """(address, comment) of every entry on the list, as the router holds it."""
    return {(row["address"], row.get("comment", "")) for row in emulator.address_list(list_name)}


def secret_of(emulator: RouterOSEmulator, name: str) -> dict[str, str]:
    secret = emulator.secret(name)
    assert secret is not None, name
    return secret


def tag(subscriber: Subscriber) -> str:
    return f"sonjog:{subscriber.pppoe_username}"


def addon(isp: Isp, effect: str, value: str = "", name: str = "") -> AddOn:
    return addon_create(
        operator=isp.operator,
        name=name or f"{effect} {value}".strip(),
        price=Decimal("200.00"),
        effect=effect,
        effect_value=value,
    )


def subscriber_on(isp: Isp, static_ip: str | None = None) -> Subscriber:
    """A subscriber active for 20 days in the router's zone, provisioned on the router."""
    subscriber = make_subscriber(isp.operator, isp.package, isp.days_ago(20), zone=isp.zone)
    if static_ip:
        # Staff's address field (no service writes it yet); set before the activation command runs.
        Subscriber.objects.filter(pk=subscriber.pk).update(static_ip=static_ip)
        subscriber.refresh_from_db()
    outbox_drain()
    return subscriber


def last_actions(subscriber: Subscriber) -> list[str]:
    command = OutboxCommand.objects.filter(subscriber=subscriber).order_by("-pk").first()
    assert command is not None and command.status == "done", command and command.last_error
    return list(command.result["actions"])


def problems_of(isp: Isp, subscriber: Subscriber) -> list[str]:
    report = router_diff(isp.router)
    assert report.reachable, report.error
    return [item.kind for item in report.disagreements if item.username == subscriber.pppoe_username]


@pytest.fixture
def isp(emulator: RouterOSEmulator, db: None) -> Isp:
    return Isp(emulator)


@pytest.fixture
def gaming(isp: Isp) -> AddOn:
    return addon(isp, AddOnEffect.ADDRESS_LIST, GAMING)


# --------------------------------------------------------------------------------------------
# address lists
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_address_list_addon_lists_the_online_address_while_it_runs_and_only_its_own_entry_goes(
    isp: Isp, emulator: RouterOSEmulator, gaming: AddOn
) -> None:
    subscriber = subscriber_on(isp)
    emulator.add_active_session(subscriber.pppoe_username, "10.20.0.7", caller_id="AA:BB:CC:00:00:07")
    # Entries Sonjog does not own: staff's own entry on the same list, and another list entirely.
    emulator.add_address_list_entry(GAMING, "10.99.0.1", comment="staff: test box")
    emulator.add_address_list_entry("vip", "10.20.0.7")

    subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=isp.days_ago(10))
    outbox_drain()

    assert listed(emulator, GAMING) == {("10.20.0.7", tag(subscriber)), ("10.99.0.1", "staff: test box")}
    assert "addon_list.added" in last_actions(subscriber)
    assert problems_of(isp, subscriber) == []

    # Applying again sends no write: the entry is already there.
    emulator.clear_command_log()
    outbox_enqueue(subscriber=subscriber, requested_by="test: again")
    outbox_drain()
    assert [entry.path for entry in emulator.command_log if not entry.path.endswith("/print")] == ["/login"]
    assert last_actions(subscriber) == []

    subscriber_addon_deactivate(subscriber=subscriber, addon=gaming)  # from today
    outbox_drain()

    assert listed(emulator, GAMING) == {("10.99.0.1", "staff: test box")}
    assert listed(emulator, "vip") == {("10.20.0.7", "")}
    assert last_actions(subscriber) == ["addon_list.removed"]
    assert problems_of(isp, subscriber) == []


@pytest.mark.django_db
def test_reconciler_puts_back_an_entry_removed_by_hand_and_follows_a_new_session_address(
    isp: Isp, emulator: RouterOSEmulator, gaming: AddOn
) -> None:
    subscriber = subscriber_on(isp)
    emulator.add_active_session(subscriber.pppoe_username, "10.20.0.8")
    subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=isp.days_ago(10))
    outbox_drain()
    (entry,) = emulator.address_list(GAMING)

    emulator.execute("/ip/firewall/address-list/remove", numbers=entry[".id"])  # by hand, on the router
    assert problems_of(isp, subscriber) == [f"not on add-on address list {GAMING}"]
    report = network_reconcile(isp.router)[isp.router.name]
    assert report.repairs_queued == 1
    outbox_drain()
    assert listed(emulator, GAMING) == {("10.20.0.8", tag(subscriber))}

    # The subscriber redials and gets another address: the old entry would list whoever gets it next.
    emulator.remove_active_session(subscriber.pppoe_username)
    emulator.add_active_session(subscriber.pppoe_username, "10.20.0.99")
    assert problems_of(isp, subscriber) == [f"not on add-on address list {GAMING}"]
    network_reconcile(isp.router)
    outbox_drain()
    assert listed(emulator, GAMING) == {("10.20.0.99", tag(subscriber))}
    assert problems_of(isp, subscriber) == []


@pytest.mark.django_db
def test_an_entry_left_behind_after_the_addon_ended_is_found_and_removed(
    isp: Isp, emulator: RouterOSEmulator, gaming: AddOn
) -> None:
    subscriber = subscriber_on(isp)
    emulator.add_active_session(subscriber.pppoe_username, "10.20.0.9")
    subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=isp.days_ago(10))
    subscriber_addon_deactivate(subscriber=subscriber, addon=gaming, end_date=isp.days_ago(2))
    outbox_drain()
    assert listed(emulator, GAMING) == set()
    # An old tagged entry (a router restored from backup, a failed run): Sonjog's, so it goes.
    emulator.add_address_list_entry(GAMING, "10.20.0.9", comment=tag(subscriber))

    assert problems_of(isp, subscriber) == [f"still on address list {GAMING} without the add-on"]
    network_reconcile(isp.router)
    outbox_drain()
    assert listed(emulator, GAMING) == set()


@pytest.mark.django_db
def test_addon_booked_ahead_is_applied_from_its_first_day_and_removed_on_its_end_day(
    isp: Isp, emulator: RouterOSEmulator, gaming: AddOn
) -> None:
    subscriber = subscriber_on(isp)
    emulator.add_active_session(subscriber.pppoe_username, "10.20.0.10")
    tomorrow = isp.today + dt.timedelta(days=1)
    subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=tomorrow)
    outbox_drain()
    assert listed(emulator, GAMING) == set()  # not yet
    assert problems_of(isp, subscriber) == []

    with time_machine.travel(timezone.now() + dt.timedelta(days=1), tick=True):
        assert problems_of(isp, subscriber) == [f"not on add-on address list {GAMING}"]
        network_reconcile(isp.router)
        outbox_drain()
        assert listed(emulator, GAMING) == {("10.20.0.10", tag(subscriber))}
        subscriber_addon_deactivate(subscriber=subscriber, addon=gaming, end_date=tomorrow + dt.timedelta(days=1))
        outbox_drain()
        assert listed(emulator, GAMING) == {("10.20.0.10", tag(subscriber))}  # runs until tonight

    with time_machine.travel(timezone.now() + dt.timedelta(days=2), tick=True):
        assert problems_of(isp, subscriber) == [f"still on address list {GAMING} without the add-on"]
        network_reconcile(isp.router)
        outbox_drain()
        assert listed(emulator, GAMING) == set()


@pytest.mark.django_db
def test_offline_subscriber_without_a_fixed_address_is_listed_once_online(
    isp: Isp, emulator: RouterOSEmulator, gaming: AddOn
) -> None:
    subscriber = subscriber_on(isp)
    subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=isp.days_ago(1))
    outbox_drain()
    assert listed(emulator, GAMING) == set()  # nothing to list yet
    assert problems_of(isp, subscriber) == []  # and nothing the reconciler could do about it

    emulator.add_active_session(subscriber.pppoe_username, "10.20.0.11")
    network_reconcile(isp.router)
    outbox_drain()
    assert listed(emulator, GAMING) == {("10.20.0.11", tag(subscriber))}


@pytest.mark.django_db
def test_suspension_takes_the_addon_list_away_and_reactivation_brings_it_back(
    isp: Isp, emulator: RouterOSEmulator, gaming: AddOn
) -> None:
    # A static IP from before add-ons (no static-IP add-on): always in force, so listable offline too.
    subscriber = subscriber_on(isp, static_ip="100.64.5.5")
    subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=isp.days_ago(5))
    outbox_drain()
    assert listed(emulator, GAMING) == {("100.64.5.5", tag(subscriber))}

    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.DISABLED, reason="staff")
    outbox_drain()
    assert listed(emulator, GAMING) == set()
    assert problems_of(isp, subscriber) == []

    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.ACTIVE, reason="staff")
    outbox_drain()
    assert listed(emulator, GAMING) == {("100.64.5.5", tag(subscriber))}


# --------------------------------------------------------------------------------------------
# static IP
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_static_ip_addon_puts_the_static_ip_on_the_secret_while_it_runs(isp: Isp, emulator: RouterOSEmulator) -> None:
    static = addon(isp, AddOnEffect.STATIC_IP, name="Real IP")
    legacy = subscriber_on(isp, static_ip="100.64.7.1")  # never had the add-on: keeps its address
    billed = subscriber_on(isp, static_ip="100.64.7.2")
    assert secret_of(emulator, legacy.pppoe_username)["remote-address"] == "100.64.7.1"

    subscriber_addon_activate(subscriber=billed, addon=static, start_date=isp.days_ago(10))
    outbox_drain()
    assert secret_of(emulator, billed.pppoe_username)["remote-address"] == "100.64.7.2"

    subscriber_addon_deactivate(subscriber=billed, addon=static)  # from today
    outbox_drain()
    assert "remote-address" not in secret_of(emulator, billed.pppoe_username)
    assert secret_of(emulator, legacy.pppoe_username)["remote-address"] == "100.64.7.1"

    # Put back by hand on the router: the reconciler sees it is not in force and takes it away again.
    emulator.execute(
        "/ppp/secret/set", numbers=secret_of(emulator, billed.pppoe_username)[".id"], remote_address="100.64.7.2"
    )
    assert problems_of(isp, billed) == ["static IP 100.64.7.2 on router, none in force"]
    network_reconcile(isp.router)
    outbox_drain()
    assert "remote-address" not in secret_of(emulator, billed.pppoe_username)

    subscriber_addon_activate(subscriber=billed, addon=static)  # again, from today
    outbox_drain()
    assert secret_of(emulator, billed.pppoe_username)["remote-address"] == "100.64.7.2"
    assert problems_of(isp, billed) == [] and problems_of(isp, legacy) == []


# --------------------------------------------------------------------------------------------
# one read of the effects per batch
# --------------------------------------------------------------------------------------------


def _queries(function: object) -> int:
    with CaptureQueriesContext(connection) as captured:
        function()  # type: ignore[operator]
    return len(captured)


@pytest.mark.django_db
def test_desired_state_of_a_batch_reads_addon_effects_once_not_per_subscriber(
    isp: Isp, emulator: RouterOSEmulator, gaming: AddOn
) -> None:
    static = addon(isp, AddOnEffect.STATIC_IP, name="Real IP")
    first = subscriber_on(isp, static_ip="100.64.8.1")
    subscriber_addon_activate(subscriber=first, addon=gaming, start_date=isp.days_ago(5))
    outbox_drain()
    few = list(served_subscribers(isp.router))
    few_reads = _queries(lambda: desired_secrets(few, isp.router))
    few_diff = _queries(lambda: router_diff(isp.router))

    for index in range(6):
        subscriber = subscriber_on(isp, static_ip=f"100.64.8.{index + 10}")
        subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=isp.days_ago(5))
        subscriber_addon_activate(subscriber=subscriber, addon=static, start_date=isp.days_ago(5))
    outbox_drain()
    many = list(served_subscribers(isp.router))
    assert len(many) == len(few) + 6

    assert _queries(lambda: desired_secrets(many, isp.router)) == few_reads == 2  # add-ons, fair usage
    assert _queries(lambda: router_diff(isp.router)) == few_diff
    desired = desired_secrets(many, isp.router)
    assert all(desired[subscriber.pk].address_lists == (GAMING,) for subscriber in many)
    assert router_diff(isp.router).disagreements == []


# --------------------------------------------------------------------------------------------
# the driver alone
# --------------------------------------------------------------------------------------------


def test_driver_applies_address_lists_idempotently_and_never_touches_untagged_entries(
    emulator: RouterOSEmulator,
) -> None:
    config = RouterConfig("127.0.0.1", port=emulator.port, username="sonjog", password=ROUTER_PASSWORD)
    emulator.add_address_list_entry("iptv", "10.1.1.1")  # staff's own entry with the same address
    emulator.add_address_list_entry("games", "10.1.1.50", comment="sonjog:someone-else")
    wanted = DesiredSecret("rahim", "pw", "10m", remote_address="10.1.1.1", address_lists=("games", "iptv"))

    with MikrotikDriver(config) as driver:
        first = driver.apply_subscriber(wanted)
        emulator.clear_command_log()
        second = driver.apply_subscriber(wanted)
        writes = [entry.path for entry in emulator.command_log if not entry.path.endswith("/print")]
        seen = driver.observe(["rahim"], address_lists=["games", "iptv"])["rahim"]
        ended = driver.apply_subscriber(DesiredSecret("rahim", "pw", "10m", remote_address="10.1.1.1"))

    assert first.actions == ["secret.created", "addon_list.added"]
    assert (second.actions, writes) == ([], [])
    assert seen.address_lists == {"games", "iptv"}
    assert seen.owned_entries == (("games", "10.1.1.1"),)  # the iptv entry is staff's, not Sonjog's
    assert ended.actions == ["addon_list.removed"]
    assert listed(emulator, "iptv") == {("10.1.1.1", "")}
    assert listed(emulator, "games") == {("10.1.1.50", "sonjog:someone-else")}
