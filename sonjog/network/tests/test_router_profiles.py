"""Packages in lock-step with the routers: a package saved through its flow puts its PPP profile on every
router that may serve it, through the profile outbox with retries, against the RouterOS emulator over TCP
(librouteros) and the real worker cycle; a changed rate reaches the profile and the live sessions in it;
`network_diff` shows profile drift made by hand and `network_reconcile` repairs it."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from sonjog.catalog.models import Package
from sonjog.core.jobs import run_worker_cycle
from sonjog.core.models import AuditEvent
from sonjog.customers.models import SyncState, Zone
from sonjog.flows.catalog import package_create, package_update
from sonjog.flows.subscribers import subscriber_create
from sonjog.network.exceptions import ProfileConflict
from sonjog.network.models import OutboxCommand, OutboxStatus, ProfileAttempt, ProfileCommand, Router
from sonjog.network.profiles import line_routers, router_profiles_wanted
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import outbox_execute, router_connection_test, router_create, router_set_active
from sonjog.network.tests.conftest import ROUTER_PASSWORD, Isp
from sonjog.operators.services import operator_create

pytestmark = pytest.mark.django_db(transaction=True)


def profile(emulator, name):
    return next((row for row in emulator.profiles() if row["name"] == name), None)


def new_fiber(isp, name="Fiber 20", download=20480, upload=5120, router_profile="20m"):
    return package_create(
        operator=isp.operator,
        name=name,
        price=Decimal("1500.00"),
        download_kbps=download,
        upload_kbps=upload,
        router_profile=router_profile,
    )


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_new_package_and_its_first_subscriber_land_together(emulator):
    isp = Isp(emulator)
    package = new_fiber(isp)
    (command,) = ProfileCommand.objects.filter(profile="20m")
    assert (command.router, command.status) == (isp.router, OutboxStatus.PENDING)
    # Sold at once: the subscriber's command may run before the profile's; it must not fail for want of it.
    subscriber = subscriber_create(
        operator=isp.operator,
        name="Rahim",
        phone="01712340001",
        package=package,
        zone=isp.zone,
        activation_date=isp.today,
    )
    assert profile(emulator, "20m") is None
    # Whichever job a worker takes first: the subscriber's runs the profile's before it.
    assert outbox_execute(OutboxCommand.objects.get(subscriber=subscriber).pk) == OutboxStatus.DONE
    run_worker_cycle()
    assert profile(emulator, "20m")["rate-limit"] == "5120k/20480k"  # rx/tx from the router: upload first
    assert emulator.secret(subscriber.pppoe_username)["profile"] == "20m"
    subscriber.refresh_from_db()
    assert subscriber.sync_state == SyncState.IN_SYNC
    assert OutboxCommand.objects.get(subscriber=subscriber).attempts == 1  # never refused for a missing profile
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE and command.result["actions"] == ["profile.created"]
    assert emulator.command_count("/ppp/profile/add") == 1
    # `sonjog outbox --profiles` lists them beside the subscribers' commands.
    listed = json.loads(run("outbox", "--profiles", "--json"))["profile_commands"]
    assert {(row["profile"], row["router"], row["status"]) for row in listed} >= {("20m", isp.router.name, "done")}
    assert "20m" in run("outbox", "--profiles", "--status", "done")


def test_editing_the_rate_updates_the_profile_and_live_sessions_redial_at_it(emulator):
    isp = Isp(emulator)
    package = new_fiber(isp)
    subscriber = subscriber_create(
        operator=isp.operator,
        name="Rahim",
        phone="01712340002",
        package=package,
        zone=isp.zone,
        activation_date=isp.today,
    )
    bystander = subscriber_create(
        operator=isp.operator,
        name="Karim",
        phone="01712340003",
        package=isp.package,
        zone=isp.zone,
        activation_date=isp.today,
    )
    run_worker_cycle()
    emulator.add_active_session(subscriber.pppoe_username, "10.9.0.2")
    emulator.add_active_session(bystander.pppoe_username, "10.9.0.3")

    package_update(package=package, download_kbps=40960)  # a price-only edit would push nothing
    (command,) = ProfileCommand.objects.filter(profile="20m", status=OutboxStatus.PENDING)
    run_worker_cycle()
    assert profile(emulator, "20m")["rate-limit"] == "5120k/40960k"
    # RouterOS gave the live session its rate when it came up: it is kicked to dial in at the new one,
    # and only the sessions in that profile are.
    assert [row["name"] for row in emulator.active_sessions()] == [bystander.pppoe_username]
    command.refresh_from_db()
    assert command.result["actions"] == ["profile.updated", f"session.kicked:{subscriber.pppoe_username}"]
    assert command.result["session.kicked"] == 1
    edit = AuditEvent.objects.filter(action="package.update").latest("pk")
    assert edit.detail["before"] == {"download_kbps": 20480} and edit.detail["after"] == {"download_kbps": 40960}

    package_update(package=package, price=Decimal("1600.00"))
    assert not ProfileCommand.objects.filter(status=OutboxStatus.PENDING).exists()


def test_a_router_that_was_down_gets_the_profile_once_it_answers(emulator):
    isp = Isp(emulator)
    emulator.refuse_connections(True)
    new_fiber(isp)
    run_worker_cycle()
    command = ProfileCommand.objects.get(profile="20m")
    assert command.status == OutboxStatus.PENDING and command.attempts == 1
    assert "refused" in command.last_error.lower()
    assert command.next_attempt_at > timezone.now()  # retried later, not hammered
    assert profile(emulator, "20m") is None

    emulator.refuse_connections(False)
    assert router_connection_test(router=isp.router).ok  # it answers: what waits on it goes now
    run_worker_cycle()
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE and command.attempts == 2
    assert profile(emulator, "20m")["rate-limit"] == "5120k/20480k"
    assert [attempt.ok for attempt in ProfileAttempt.objects.filter(command=command)] == [False, True]
    assert emulator.command_count("/ppp/profile/add") == 1


def test_a_command_out_of_attempts_is_failed_and_the_reconciler_queues_it_again(emulator, settings):
    settings.SONJOG_OUTBOX_MAX_ATTEMPTS = 1
    isp = Isp(emulator)
    emulator.refuse_connections(True)
    new_fiber(isp)
    run_worker_cycle()
    failed = ProfileCommand.objects.get(profile="20m")
    assert failed.status == OutboxStatus.FAILED
    emulator.refuse_connections(False)
    assert json.loads(run("network_reconcile", "--json"))["routers"][0]["repairs_queued"] == 1
    run_worker_cycle()
    assert profile(emulator, "20m") is not None
    assert ProfileCommand.objects.filter(profile="20m", status=OutboxStatus.DONE).count() == 1


def test_network_diff_shows_profiles_changed_by_hand_and_network_reconcile_repairs_them(emulator):
    isp = Isp(emulator)
    new_fiber(isp)
    new_fiber(isp, name="Fiber 50", download=51200, upload=51200, router_profile="50m")
    run_worker_cycle()
    twenty = profile(emulator, "20m")
    emulator.execute("/ppp/profile/set", **{".id": twenty[".id"], "rate-limit": "1M/1M"})  # by hand, on the router
    emulator.execute("/ppp/profile/remove", **{".id": profile(emulator, "50m")[".id"]})
    emulator.clear_command_log()

    report = json.loads(run("network_diff", "--json"))["routers"][0]
    items = {item["username"]: item for item in report["items"]}
    assert items["20m"]["kind"] == "profile rate differs from package" and items["20m"]["router_view"] == "1M/1M"
    assert items["20m"]["detail"] == "package Fiber 20 wants 5120k/20480k"
    assert items["50m"]["kind"] == "package profile missing on router"
    assert "10m" not in items
    assert report["repairs_queued"] == 0 and not ProfileCommand.objects.filter(status=OutboxStatus.PENDING).exists()
    assert emulator.command_count("/ppp/profile/set") == emulator.command_count("/ppp/profile/add") == 0

    text = run("network_diff", "--router", isp.router.name)
    assert "20m" in text and "profile rate differs from package" in text

    assert json.loads(run("network_reconcile", "--json"))["routers"][0]["repairs_queued"] == 2
    run_worker_cycle()
    assert profile(emulator, "20m")["rate-limit"] == "5120k/20480k"
    assert profile(emulator, "50m")["rate-limit"] == "51200k/51200k"
    assert json.loads(run("network_diff", "--json"))["routers"][0]["disagreements"] == 0


def test_every_router_that_may_serve_the_package_gets_it_and_no_other(emulator):
    isp = Isp(emulator)
    north = operator_create(code=f"{isp.operator.code}-n", name="North", parent=isp.operator, customer_id_prefix="NR")
    south = operator_create(code=f"{isp.operator.code}-s", name="South", parent=isp.operator, customer_id_prefix="SR")
    other = RouterOSEmulator(username="sonjog", password=ROUTER_PASSWORD).start()
    try:
        north_router = router_create(
            operator=north,
            name="north-1",
            address="127.0.0.1",
            api_port=other.port,
            username="sonjog",
            password=ROUTER_PASSWORD,
        )
        south_router = router_create(operator=south, name="south-1", address="127.0.0.1", api_port=1)
        recorder = router_create(operator=north, name="north-rec", address="127.0.0.1", api_port=1, record_only=True)
        # A reseller's subscribers may run on its own routers and its ISP's, never on a sibling's.
        assert list(line_routers(north)) == [isp.router, north_router, recorder]
        ProfileCommand.objects.all().delete()
        package_create(
            operator=north,
            name="North 30",
            price=Decimal("900"),
            download_kbps=30720,
            upload_kbps=30720,
            router_profile="30m",
        )
        assert sorted(ProfileCommand.objects.values_list("router__name", flat=True)) == [isp.router.name, "north-1"]
        run_worker_cycle()
        assert profile(emulator, "30m") is not None and profile(other, "30m") is not None
        assert not ProfileCommand.objects.filter(router__in=[south_router, recorder]).exists()
        # The ISP's router holds its resellers' packages; a reseller's router holds its own only.
        assert set(router_profiles_wanted(isp.router)) == {"10m", "30m"}
        assert set(router_profiles_wanted(north_router)) == {"30m"}
    finally:
        other.stop()


def test_a_profile_name_has_one_rate_per_isp_and_a_conflict_saves_nothing(emulator):
    isp = Isp(emulator)
    reseller = operator_create(
        code=f"{isp.operator.code}-r", name="Reseller", parent=isp.operator, customer_id_prefix="RS"
    )
    packages_before, commands_before = Package.objects.count(), ProfileCommand.objects.count()
    with pytest.raises(ProfileConflict, match="'10m' is already used by the package 'Home 10' at 10240k/10240k"):
        package_create(
            operator=reseller,
            name="Cheap 10",
            price=Decimal("500"),
            download_kbps=8192,
            upload_kbps=8192,
            router_profile="10m",
        )
    assert Package.objects.count() == packages_before
    assert ProfileCommand.objects.count() == commands_before
    assert not AuditEvent.objects.filter(action="package.create").exists()
    same_speed = package_create(
        operator=reseller,
        name="Home 10 reseller",
        price=Decimal("900"),
        download_kbps=10240,
        upload_kbps=10240,
        router_profile="10m",
    )
    fiber = new_fiber(isp)
    with pytest.raises(ProfileConflict):
        package_update(package=fiber, router_profile="10m")
    fiber.refresh_from_db()
    assert fiber.router_profile == "20m"
    assert same_speed.router_profile == "10m"


def test_a_renamed_profile_is_pushed_and_the_secrets_move_to_it(emulator):
    isp = Isp(emulator)
    subscriber = subscriber_create(
        operator=isp.operator,
        name="Rahim",
        phone="01712340004",
        package=isp.package,
        zone=isp.zone,
        activation_date=isp.today,
    )
    run_worker_cycle()
    assert emulator.secret(subscriber.pppoe_username)["profile"] == "10m"
    package_update(package=isp.package, router_profile="home-10m")
    run_worker_cycle()
    assert profile(emulator, "home-10m")["rate-limit"] == "10240k/10240k"
    assert emulator.secret(subscriber.pppoe_username)["profile"] == "home-10m"
    assert profile(emulator, "10m") is not None  # never removed: staff may still use it


def test_a_new_router_gets_every_profile_it_must_hold(emulator):
    isp = Isp(emulator)
    Package.objects.create(
        operator=isp.operator,
        name="Capped 10",
        price=Decimal("700"),
        download_kbps=10240,
        upload_kbps=10240,
        router_profile="10m",
        data_allowance_gb=50,
        fup_download_kbps=2048,
        fup_upload_kbps=1024,
        fup_router_profile="fup-2m",
    )
    # Off sale and nobody on it: no router holds it.
    Package.objects.create(
        operator=isp.operator,
        name="Old 4",
        price=Decimal("300"),
        download_kbps=4096,
        upload_kbps=4096,
        router_profile="4m",
        is_active=False,
    )
    uttara = Zone.objects.create(operator=isp.operator, name="Uttara")
    fresh = RouterOSEmulator(username="sonjog", password=ROUTER_PASSWORD).start()
    try:
        router = router_create(
            operator=isp.operator,
            name="edge",
            address="127.0.0.1",
            api_port=fresh.port,
            username="sonjog",
            password=ROUTER_PASSWORD,
            suspend_mode="profile",
            zones=[uttara],
        )
        assert sorted(ProfileCommand.objects.filter(router=router).values_list("profile", flat=True)) == [
            "10m",
            "fup-2m",
            "suspended",
        ]
        run_worker_cycle()
        rates = {row["name"]: row.get("rate-limit", "") for row in fresh.profiles()}
        assert rates["10m"] == "10240k/10240k" and rates["fup-2m"] == "1024k/2048k"
        assert rates["suspended"] == "256k/256k" and profile(fresh, "suspended")["address-list"] == "suspended"
        assert "4m" not in rates
        created = AuditEvent.objects.get(action="router.create", detail__router=router.pk)
        assert created.detail["after"]["password"] == "set" and ROUTER_PASSWORD not in json.dumps(created.detail)
    finally:
        fresh.stop()


def test_deactivating_a_router_hands_its_waiting_commands_on_and_reactivating_pushes_again(emulator):
    isp = Isp(emulator)
    spare = Router.objects.create(operator=isp.operator, name="spare", address="127.0.0.1", api_port=1)
    spare.zones.add(isp.zone)
    emulator.refuse_connections(True)
    subscriber = subscriber_create(
        operator=isp.operator,
        name="Rahim",
        phone="01712340005",
        package=isp.package,
        zone=isp.zone,
        activation_date=isp.today,
    )
    waiting = OutboxCommand.objects.get(subscriber=subscriber, router=isp.router)
    router_set_active(router=isp.router, is_active=False)
    waiting.refresh_from_db()
    assert waiting.status == OutboxStatus.DONE and waiting.last_error == "router deactivated before it ran"
    assert OutboxCommand.objects.get(subscriber=subscriber, status=OutboxStatus.PENDING).router == spare
    assert AuditEvent.objects.get(action="router.deactivate").detail["commands_moved"] == 1
    ProfileCommand.objects.all().delete()
    emulator.refuse_connections(False)
    router_set_active(router=isp.router, is_active=True)
    assert list(ProfileCommand.objects.values_list("router", "profile")) == [(isp.router.pk, "10m")]
