"""The suspension portal, network side: Sonjog's redirect rules (dst-nat of TCP 80 to the portal, the walled
garden, DNS, the drop) on a router through the profile outbox, against the RouterOS emulator over TCP
(librouteros inside the driver) and the real worker cycle; `sonjog portal_redirect [--check]`; the
suspended profile putting sessions on the suspended list; the visitor found by address
(`subscriber_at_address`); and the real FreeRADIUS naming the router's suspended list for a suspended
subscriber."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import librouteros
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from librouteros.exceptions import TrapError

from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import ServiceIntent, SessionState, Subscriber, Zone
from sonjog.flows.subscribers import subscriber_set_intent
from sonjog.network.exceptions import RouterInvalid
from sonjog.network.models import OutboxStatus, ProfileCommand, RadAcct, RouterCommandKind
from sonjog.network.portal import portal_check, portal_redirect_sync, walled_garden_entries
from sonjog.network.profiles import profile_execute
from sonjog.network.radius.freeradius import FreeRadiusServer, db_params_from_django
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.selectors import subscriber_at_address, uptime_seconds
from sonjog.network.services import outbox_drain, outbox_enqueue, router_create, router_update
from sonjog.network.tests.conftest import ROUTER_PASSWORD, Isp
from sonjog.network.tests.radius_client import radtest

pytestmark = pytest.mark.django_db(transaction=True)

PORTAL = "203.0.113.80"
GARDEN = "pay.example-gateway.com\nCheckout.Example-Wallet.com.bd\n198.51.100.0/24\n"
WRITES = ("/add", "/set", "/unset", "/remove", "/enable", "/disable", "/move")


def writes(emulator: RouterOSEmulator) -> list[tuple[str, dict[str, str]]]:
    return [(entry.path, entry.attributes) for entry in emulator.command_log if entry.path.endswith(WRITES)]


def portal_on(isp: Isp, **settings: Any) -> ProfileCommand:
    """Turn the portal on through the router service, which queues the command; return it."""
    isp.router = router_update(
        router=isp.router, portal_address=PORTAL, portal_port=8080, walled_garden=GARDEN, **settings
    )
    return ProfileCommand.objects.get(
        router=isp.router, kind=RouterCommandKind.PORTAL_REDIRECT, status=OutboxStatus.PENDING
    )


def sync(isp: Isp) -> ProfileCommand:
    command_id = portal_redirect_sync(isp.router, requested_by="test")
    assert command_id is not None
    assert profile_execute(command_id) == OutboxStatus.DONE
    return ProfileCommand.objects.get(pk=command_id)


def ours(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in rows if row.get("comment", "").startswith("sonjog:portal")]


def rule(emulator: RouterOSEmulator, menu: str, key: str) -> dict[str, str]:
    rows = emulator.nat_rules() if menu == "nat" else emulator.filter_rules()
    (found,) = [row for row in rows if row.get("comment") == f"sonjog:portal {key}"]
    return found


def tables(emulator: RouterOSEmulator) -> dict[tuple[str, str], dict[str, str]]:
    """Every NAT and filter rule by (table, .id): ids are numbered per table."""
    return {
        **{("nat", row[".id"]): row for row in emulator.nat_rules()},
        **{("filter", row[".id"]): row for row in emulator.filter_rules()},
    }


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def run_failing(*args: str, code: int) -> tuple[str, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=out, stderr=io.StringIO())
    assert caught.value.returncode == code, str(caught.value)
    assert "\n" not in str(caught.value)
    return out.getvalue(), str(caught.value)


# --------------------------------------------------------------------------------------------
# the rules on the router
# --------------------------------------------------------------------------------------------


def test_turning_the_portal_on_puts_the_rules_on_the_router(emulator):
    isp = Isp(emulator)
    command = portal_on(isp)
    run_worker_cycle()
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE, command.last_error

    (nat,) = emulator.nat_rules()
    assert nat["comment"] == "sonjog:portal redirect-http"
    assert {key: nat[key] for key in ("chain", "action", "protocol", "dst-port", "src-address-list")} == {
        "chain": "dstnat",
        "action": "dst-nat",
        "protocol": "tcp",
        "dst-port": "80",
        "src-address-list": "suspended",
    }
    assert (nat["to-addresses"], nat["to-ports"], nat["dst-address-list"]) == (PORTAL, "8080", "!sonjog-walled-garden")

    filters = emulator.filter_rules()
    assert [row["comment"] for row in filters] == [
        "sonjog:portal dns-udp",
        "sonjog:portal dns-tcp",
        "sonjog:portal walled-garden",
        "sonjog:portal drop",
    ]
    assert all(row["chain"] == "forward" and row["src-address-list"] == "suspended" for row in filters)
    assert [(row["action"], row.get("protocol"), row.get("dst-port")) for row in filters] == [
        ("accept", "udp", "53"),
        ("accept", "tcp", "53"),
        ("accept", None, None),
        ("drop", None, None),
    ]
    assert filters[2]["dst-address-list"] == "sonjog-walled-garden"
    # The portal itself is in the garden (the redirected traffic is forwarded to it); host names as given,
    # in lower case, for RouterOS to resolve.
    garden = emulator.address_list("sonjog-walled-garden")
    assert [row["address"] for row in garden] == [
        PORTAL,
        "pay.example-gateway.com",
        "checkout.example-wallet.com.bd",
        "198.51.100.0/24",
    ]
    assert {row["comment"] for row in garden} == {"sonjog:portal walled-garden"}
    assert (
        command.result["actions"][0] == f"garden.added:{PORTAL}"
        and "nat.added:redirect-http" in command.result["actions"]
    )
    # The router backup shows them like a router's /export would.
    export = emulator.export_text()
    assert "/ip firewall nat\nadd action=dst-nat chain=dstnat" in export
    assert "/ip firewall filter\nadd action=accept chain=forward" in export


def test_a_second_sync_changes_nothing(emulator):
    isp = Isp(emulator)
    portal_on(isp)
    run_worker_cycle()
    emulator.clear_command_log()

    again = sync(isp)

    assert again.result["actions"] == []
    assert writes(emulator) == []
    assert portal_check(isp.router) == []


def test_a_rule_changed_by_hand_is_fixed_and_only_it(emulator):
    isp = Isp(emulator)
    portal_on(isp)
    run_worker_cycle()
    nat = rule(emulator, "nat", "redirect-http")
    emulator.execute("/ip/firewall/nat/set", **{".id": nat[".id"], "to-ports": "81"})
    drop = rule(emulator, "filter", "drop")
    emulator.execute("/ip/firewall/filter/disable", **{".id": drop[".id"]})
    emulator.execute("/ip/firewall/filter/set", **{".id": drop[".id"], "in-interface": "ether9"})
    emulator.clear_command_log()

    assert sorted(portal_check(isp.router)) == [
        "filter.updated:drop(disabled,in-interface)",
        "nat.updated:redirect-http(to-ports)",
    ]
    fixed = sync(isp)

    assert rule(emulator, "nat", "redirect-http")["to-ports"] == "8080"
    drop = rule(emulator, "filter", "drop")
    assert drop["disabled"] == "false" and "in-interface" not in drop
    assert sorted(fixed.result["actions"]) == [
        "filter.updated:drop(disabled,in-interface)",
        "nat.updated:redirect-http(to-ports)",
    ]
    assert [path for path, _ in writes(emulator)] == [
        "/ip/firewall/nat/set",
        "/ip/firewall/filter/set",
        "/ip/firewall/filter/unset",
    ]


def test_rules_without_the_comment_are_never_touched(emulator):
    isp = Isp(emulator)
    staff_filter = emulator.execute(
        "/ip/firewall/filter/add", chain="forward", action="accept", connection_state="established,related"
    ).done["ret"]
    staff_nat = emulator.execute(
        "/ip/firewall/nat/add", chain="srcnat", action="masquerade", comment="wan masquerade"
    ).done["ret"]
    # Staff's own redirect of the same traffic, and a garden entry of their own: not Sonjog's either.
    emulator.execute(
        "/ip/firewall/nat/add",
        chain="dstnat",
        action="dst-nat",
        protocol="tcp",
        dst_port="80",
        src_address_list="suspended",
        to_addresses="192.0.2.1",
        comment="old captive page",
    )
    emulator.add_address_list_entry("sonjog-walled-garden", "pay.example-gateway.com", comment="staff")
    before = tables(emulator)
    portal_on(isp)
    run_worker_cycle()
    sync(isp)

    after = tables(emulator)
    assert {key: after.get(key) for key in before} == before
    assert {("filter", staff_filter), ("nat", staff_nat)} <= set(after)
    # Staff's entry holds the host already: Sonjog neither adds it again nor takes it.
    held = [row for row in emulator.address_list("sonjog-walled-garden") if row["address"] == "pay.example-gateway.com"]
    assert [row["comment"] for row in held] == ["staff"]

    # Turning the portal off takes Sonjog's rules away, and only those.
    router_update(router=isp.router, portal_address="")
    run_worker_cycle()
    assert ours(emulator.nat_rules()) == [] and ours(emulator.filter_rules()) == []
    assert set(tables(emulator)) == set(before)
    assert [row["comment"] for row in emulator.address_list("sonjog-walled-garden")] == ["staff"]


def test_a_rule_removed_by_hand_comes_back_in_its_place(emulator):
    isp = Isp(emulator)
    portal_on(isp)
    run_worker_cycle()
    staff = emulator.execute("/ip/firewall/filter/add", chain="forward", action="accept", comment="lan").done["ret"]
    garden = rule(emulator, "filter", "walled-garden")
    emulator.execute("/ip/firewall/filter/remove", **{".id": garden[".id"]})
    emulator.execute("/ip/firewall/nat/remove", **{".id": rule(emulator, "nat", "redirect-http")[".id"]})
    # A stray copy of Sonjog's drop (an old script ran twice) is Sonjog's, and one too many.
    emulator.execute(
        "/ip/firewall/filter/add",
        chain="forward",
        action="drop",
        src_address_list="suspended",
        comment="sonjog:portal drop",
    )
    emulator.clear_command_log()

    back = sync(isp)

    assert [row["comment"] for row in emulator.filter_rules()] == [
        "sonjog:portal dns-udp",
        "sonjog:portal dns-tcp",
        "sonjog:portal walled-garden",  # before the drop, not after it
        "sonjog:portal drop",
        "lan",
    ]
    assert rule(emulator, "filter", "walled-garden")[".id"] != garden[".id"]
    assert staff in {row[".id"] for row in emulator.filter_rules()}
    assert rule(emulator, "nat", "redirect-http")["to-addresses"] == PORTAL
    assert sorted(back.result["actions"]) == [
        "filter.added:walled-garden",
        "filter.removed:drop(duplicate)",
        "nat.added:redirect-http",
    ]
    placed = [attrs for path, attrs in writes(emulator) if path == "/ip/firewall/filter/add"]
    assert placed[0]["place-before"] == rule(emulator, "filter", "drop")[".id"]


def test_the_walled_garden_follows_the_settings(emulator):
    isp = Isp(emulator)
    portal_on(isp)
    run_worker_cycle()
    router_update(router=isp.router, walled_garden="pay.example-gateway.com\n# a note\n\n203.0.113.99/32")
    run_worker_cycle()
    assert [row["address"] for row in emulator.address_list("sonjog-walled-garden")] == [
        PORTAL,
        "pay.example-gateway.com",
        "203.0.113.99",
    ]
    isp.router.refresh_from_db()
    assert isp.router.walled_garden == "pay.example-gateway.com\n203.0.113.99"


def test_bad_portal_settings_are_refused(emulator):
    isp = Isp(emulator)
    for fields, words in (
        ({"portal_address": "portal.example.com"}, "IPv4"),
        ({"portal_address": "2001:db8::1"}, "IPv4"),
        ({"portal_address": "127.0.0.1"}, "cannot be"),
        ({"portal_address": PORTAL, "portal_port": 0}, "portal port"),
        ({"portal_address": PORTAL, "walled_garden": "https://pay.example.com/checkout"}, "line 1"),
        ({"portal_address": PORTAL, "walled_garden": "ok.example.com\n*.example.com"}, "line 2"),
        ({"portal_address": PORTAL, "suspended_address_list": ""}, "suspended address list"),
    ):
        with pytest.raises(RouterInvalid, match=words):
            router_update(router=isp.router, **fields)
    assert not ProfileCommand.objects.filter(kind=RouterCommandKind.PORTAL_REDIRECT).exists()
    assert walled_garden_entries("A.Example.COM.\n10.0.0.1/32\na.example.com") == ["a.example.com", "10.0.0.1"]


def test_a_router_that_cannot_be_reached_keeps_the_command_for_a_retry(emulator):
    isp = Isp(emulator)
    command = portal_on(isp)
    emulator.refuse_connections()
    assert profile_execute(command.pk) == OutboxStatus.PENDING
    command.refresh_from_db()
    assert command.attempts == 1 and "refused" in command.last_error
    emulator.refuse_connections(False)
    assert profile_execute(command.pk, force=True) == OutboxStatus.DONE
    assert len(ours(emulator.filter_rules())) == 4


def test_radius_and_record_only_routers_are_sent_nothing(emulator):
    operator = make_operator(vat_rate=Decimal("0"))
    bras = router_create(operator=operator, name="bras", address="127.0.0.1", driver="radius", portal_address=PORTAL)
    quiet = router_create(
        operator=operator, name="quiet", address="127.0.0.1", api_port=emulator.port, record_only=True
    )
    router_update(router=quiet, portal_address=PORTAL)
    assert portal_redirect_sync(bras) is None and portal_redirect_sync(quiet) is None
    assert not ProfileCommand.objects.filter(kind=RouterCommandKind.PORTAL_REDIRECT).exists()


def test_the_emulators_rule_tables_over_the_api(emulator, tmp_path):
    """/ip firewall filter and nat as a client sees them: ordered rules, place-before, the traps a router
    sends for bad values, and the configuration kept across a restart."""
    client = librouteros.connect(
        "127.0.0.1", "sonjog", ROUTER_PASSWORD, port=emulator.port, timeout=5, encoding="utf-8"
    )
    try:
        rules = client.path("ip", "firewall", "filter")
        last = rules.add(chain="forward", action="drop", comment="last")
        first = rules.add(chain="forward", action="accept", protocol="udp", **{"dst-port": "53", "place-before": last})
        assert [row["comment"] if "comment" in row else row["dst-port"] for row in rules] == [53, "last"]
        assert [row[".id"] for row in rules] == [first, last]
        for bad in (
            {"chain": "forward", "dst-port": "53"},  # ports need tcp or udp
            {"chain": "forward", "action": "teleport"},
            {"chain": "forward", "protocol": "tcp", "dst-port": "99999"},
            {"chain": "forward", "place-before": "*FF"},
            {"action": "accept"},
        ):
            with pytest.raises(TrapError):
                rules.add(**bad)
        nat = client.path("ip", "firewall", "nat")
        rule_id = nat.add(
            chain="dstnat",
            action="dst-nat",
            protocol="tcp",
            **{"dst-port": "80", "to-addresses": PORTAL, "to-ports": "8080"},
        )
        with pytest.raises(TrapError):
            nat.add(chain="dstnat", action="dst-nat", **{"to-addresses": "portal.example.com"})
        with pytest.raises(TrapError):
            rules.add(chain="forward", **{"to-ports": "80"})  # a filter rule has no NAT target
        nat.update(**{".id": rule_id, "to-ports": "81"})
        (row,) = nat
        assert (row["to-ports"], row["disabled"], row["dynamic"]) == (81, False, False)  # librouteros types them
        tuple(client("/ip/firewall/nat/unset", numbers=rule_id, **{"value-name": "to-ports"}))
        assert "to-ports" not in next(iter(nat))
    finally:
        client.close()

    state = tmp_path / "router.json"
    with RouterOSEmulator(password="p", state_file=state) as kept:
        kept.execute("/ip/firewall/nat/add", chain="srcnat", action="masquerade")
    with RouterOSEmulator(password="p", state_file=state) as again:
        assert [(row["chain"], row["action"]) for row in again.nat_rules()] == [("srcnat", "masquerade")]


# --------------------------------------------------------------------------------------------
# the suspended profile puts sessions on the suspended list
# --------------------------------------------------------------------------------------------


def test_the_suspended_profile_puts_suspended_sessions_on_the_list(emulator):
    isp = Isp(emulator, suspend_mode="profile")
    # The router's own suspended profile had no address list (the fixture's): the portal command sets it.
    assert next(p for p in emulator.profiles() if p["name"] == "suspended").get("address-list", "") == ""
    portal_on(isp)
    run_worker_cycle()
    suspended_profile = next(p for p in emulator.profiles() if p["name"] == "suspended")
    assert suspended_profile["address-list"] == "suspended"
    assert suspended_profile["rate-limit"] == "256k/256k"  # nothing else of staff's profile changes

    subscriber = make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone)
    run_worker_cycle()
    emulator.add_active_session(subscriber.pppoe_username, "100.64.0.20")
    assert emulator.address_list("suspended") == []  # in the package's profile: not listed

    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.SUSPENDED, reason="overdue")
    run_worker_cycle()
    assert emulator.secret(subscriber.pppoe_username)["profile"] == "suspended"
    assert emulator.active_sessions() == []  # kicked, to dial in on the suspended profile
    emulator.add_active_session(subscriber.pppoe_username, "100.64.0.21")
    (listed,) = emulator.address_list("suspended")
    assert (listed["address"], listed["dynamic"]) == ("100.64.0.21", "true")  # what the NAT rule matches

    # Applying the subscriber again (a reconciliation) leaves the session's entry to the router.
    subscriber.refresh_from_db()
    outbox_enqueue(subscriber=subscriber, requested_by="test")
    outbox_drain()
    assert [row["address"] for row in emulator.address_list("suspended")] == ["100.64.0.21"]
    # Reactivated: the profile goes back and the kick ends the session, and its entry with it.
    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.ACTIVE, reason="paid")
    run_worker_cycle()
    assert emulator.address_list("suspended") == []


def test_a_new_suspended_profile_is_made_with_the_list(emulator):
    isp = Isp(emulator)
    emulator.execute("/ppp/profile/remove", numbers="suspended")
    router_update(router=isp.router, suspend_mode="profile", suspended_address_list="unpaid", portal_address=PORTAL)
    run_worker_cycle()
    made = next(p for p in emulator.profiles() if p["name"] == "suspended")
    assert made["address-list"] == "unpaid"
    assert rule(emulator, "nat", "redirect-http")["src-address-list"] == "unpaid"
    assert {row["src-address-list"] for row in ours(emulator.filter_rules())} == {"unpaid"}


# --------------------------------------------------------------------------------------------
# sonjog portal_redirect
# --------------------------------------------------------------------------------------------


def test_the_command_runs_now_and_check_reports_with_its_exit_codes(emulator):
    isp = Isp(emulator)
    ProfileCommand.objects.all().delete()
    router_update(router=isp.router, portal_address=PORTAL, walled_garden=GARDEN)
    ProfileCommand.objects.filter(kind=RouterCommandKind.PORTAL_REDIRECT).delete()  # as if never queued
    name = isp.router.name

    out, message = run_failing("portal_redirect", "--router", name, "--check", code=1)
    assert "nat.added:redirect-http" in out and name in message
    assert ours(emulator.nat_rules()) == []  # --check changes nothing

    done = run("portal_redirect", "--router", name)
    assert done.startswith(f"{name}: ") and "filter.added:drop" in done
    assert run("portal_redirect", "--router", name, "--check").strip() == f"{name}: in step"
    assert json.loads(run("portal_redirect", "--check", "--json")) == {
        "routers": [{"router": name, "in_sync": True, "differences": [], "error": ""}]
    }
    assert run("portal_redirect", "--router", name) == f"{name}: already in step\n"

    emulator.execute("/ip/firewall/nat/set", **{".id": rule(emulator, "nat", "redirect-http")[".id"], "to-ports": "81"})
    out, _ = run_failing("portal_redirect", "--check", code=1)
    assert "nat.updated:redirect-http(to-ports)" in out

    emulator.refuse_connections()
    out, _ = run_failing("portal_redirect", "--router", name, "--check", code=1)
    assert "cannot read" in out
    out, _ = run_failing("portal_redirect", "--router", name, code=1)
    assert "not applied" in out
    emulator.refuse_connections(False)

    run_failing("portal_redirect", "--router", "no-such-router", code=2)
    run_failing("portal_redirect", "--router", "x" * 500, code=2)
    bras = router_create(operator=isp.operator, name="bras", address="127.0.0.1", driver="radius")
    _, message = run_failing("portal_redirect", "--router", bras.name, "--check", code=2)
    assert "radius driver" in message


# --------------------------------------------------------------------------------------------
# the visitor by address
# --------------------------------------------------------------------------------------------


def _session(
    subscriber: Subscriber, ip: str, start: dt.datetime, stop: dt.datetime | None = None, **extra: Any
) -> None:
    RadAcct.objects.create(
        acctsessionid=f"s-{subscriber.pk}-{start.timestamp():.0f}",
        acctuniqueid=f"u-{subscriber.pk}-{start.timestamp():.0f}-{ip}",
        username=subscriber.pppoe_username,
        nasipaddress="10.9.0.1",
        acctstarttime=start,
        acctupdatetime=extra.pop("updated", stop or start),
        acctstoptime=stop,
        framedipaddress=ip,
        **extra,
    )


def test_the_open_session_wins_over_an_old_closed_one_with_the_same_address():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator)
    earlier, later = (make_subscriber(operator, package, None) for _ in range(2))
    now = timezone.now()
    _session(earlier, "100.64.1.7", now - dt.timedelta(hours=5), stop=now - dt.timedelta(hours=4))
    _session(later, "100.64.1.7", now - dt.timedelta(minutes=30), updated=now - dt.timedelta(minutes=2))

    assert subscriber_at_address("100.64.1.7", now) == later
    # Before the later session began, nobody held it (the earlier one had closed): no guess.
    assert subscriber_at_address("100.64.1.7", now - dt.timedelta(hours=2)) is None
    # During the earlier one, it was the earlier subscriber's.
    assert subscriber_at_address("100.64.1.7", now - dt.timedelta(hours=4, minutes=30)) == earlier
    RadAcct.objects.filter(username=later.pppoe_username).update(acctstoptime=now - dt.timedelta(minutes=1))
    assert subscriber_at_address("100.64.1.7", now) is None
    assert subscriber_at_address("not an address", now) is None


def test_two_open_sessions_the_latest_begun_wins_and_stale_ones_claim_nothing():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator)
    ghost, current = (make_subscriber(operator, package, None) for _ in range(2))
    now = timezone.now()
    # The NAS lost the ghost's stop (a reboot): still open, but silent far past its interim updates.
    _session(ghost, "100.64.1.8", now - dt.timedelta(days=2), updated=now - dt.timedelta(days=1))
    assert subscriber_at_address("100.64.1.8", now) is None
    RadAcct.objects.filter(username=ghost.pppoe_username).update(acctupdatetime=now - dt.timedelta(minutes=1))
    assert subscriber_at_address("100.64.1.8", now) == ghost
    _session(current, "100.64.1.8", now - dt.timedelta(minutes=10), updated=now - dt.timedelta(minutes=1))
    assert subscriber_at_address("100.64.1.8", now) == current
    # Scoped to another operator's tree, neither is found.
    assert subscriber_at_address("100.64.1.8", now, operator=make_operator(vat_rate=Decimal("0"))) is None


def test_router_side_sessions_and_the_static_ip_last_resort(emulator):
    isp = Isp(emulator)
    now = timezone.now()
    seen, fixed = (make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone) for _ in range(2))
    # The reconciler saw `seen` online at the address, up for an hour, five minutes ago.
    Subscriber.objects.filter(pk=seen.pk).update(
        session_state=SessionState.ONLINE,
        session_ip="10.20.0.5",
        session_state_at=now - dt.timedelta(minutes=5),
        session_uptime="1h",
    )
    assert subscriber_at_address("10.20.0.5", now) == seen
    # A RADIUS session begun after that wins: the address moved on.
    radius_user = make_subscriber(isp.operator, isp.package, None)
    _session(radius_user, "10.20.0.5", now - dt.timedelta(minutes=20), updated=now - dt.timedelta(minutes=1))
    assert subscriber_at_address("10.20.0.5", now) == radius_user
    RadAcct.objects.all().delete()

    # A static IP answers only when no session claims the address and its holder is online nowhere else.
    Subscriber.objects.filter(pk=fixed.pk).update(static_ip="10.20.0.9")
    assert subscriber_at_address("10.20.0.9", now) == fixed
    Subscriber.objects.filter(pk=fixed.pk).update(
        session_state=SessionState.ONLINE, session_ip="10.20.7.7", session_state_at=now
    )
    assert subscriber_at_address("10.20.0.9", now) is None
    Subscriber.objects.filter(pk__in=[fixed.pk, seen.pk]).update(session_state=SessionState.OFFLINE)
    assert subscriber_at_address("10.20.0.9", now) == fixed
    Subscriber.objects.filter(pk=seen.pk).update(static_ip="10.20.0.9")  # two holders: no guess
    assert subscriber_at_address("10.20.0.9", now) is None
    assert uptime_seconds("1w2d3h4m5s") == 788645 and uptime_seconds("1d 02:00:00") == 93600
    assert uptime_seconds("soon") is None


# --------------------------------------------------------------------------------------------
# RADIUS: the reply names the router's suspended list
# --------------------------------------------------------------------------------------------

RADIUS_SECRET = "testing123"


@pytest.fixture(scope="module")
def radius(django_db_setup: None, django_db_blocker: Any) -> Iterator[FreeRadiusServer]:
    from django.db import connection

    with django_db_blocker.unblock():
        params = db_params_from_django(connection.settings_dict)
        assert params["dbname"] == connection.settings_dict["TEST"]["NAME"], params
    with FreeRadiusServer(params, clients=[("127.0.0.1", RADIUS_SECRET)]) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_jobs_left_behind(transactional_db: None) -> Iterator[None]:
    """Procrastinate's tables are not flushed between tests: drop the jobs a test queued but never ran."""
    yield
    from procrastinate.contrib.django import app

    for job in app.job_manager.list_jobs(status="todo"):
        assert job.id is not None
        app.job_manager.cancel_job_by_id(job.id, delete_job=True)


def test_the_radius_reply_for_a_suspended_subscriber_names_its_routers_suspended_list(radius):
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator)
    zone = Zone.objects.create(operator=operator, name="Uttara")
    bras = router_create(
        operator=operator,
        name="bras",
        address="127.0.0.1",
        driver="radius",
        suspended_address_list="unpaid",
        portal_address=PORTAL,
    )
    bras.zones.add(zone)
    today = operator_today(operator)
    served, roaming = make_subscriber(operator, package, today, zone=zone), make_subscriber(operator, package, today)
    active = radtest(radius, served.pppoe_username, served.pppoe_password, RADIUS_SECRET)
    assert active.code == "Access-Accept" and active.values("Mikrotik-Address-List") == [], active.output

    for subscriber in (served, roaming):
        subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.SUSPENDED, reason="overdue")
    reply = radtest(radius, served.pppoe_username, served.pppoe_password, RADIUS_SECRET)
    assert reply.code == "Access-Accept", reply.output
    # Once, and the list the NAS's redirect rules match: the one set on the router that serves it.
    assert reply.values("Mikrotik-Address-List") == ["unpaid"], reply.output
    assert reply.values("Framed-Pool") == ["suspended"] and reply.values("Mikrotik-Rate-Limit") == ["256k/256k"]
    # A subscriber no router serves keeps the suspended group's list.
    other = radtest(radius, roaming.pppoe_username, roaming.pppoe_password, RADIUS_SECRET)
    assert other.values("Mikrotik-Address-List") == ["suspended"], other.output
    # The router's list renamed: the next login names the new one (a view: nothing to push).
    router_update(router=bras, suspended_address_list="blocked")
    renamed = radtest(radius, served.pppoe_username, served.pppoe_password, RADIUS_SECRET)
    assert renamed.values("Mikrotik-Address-List") == ["blocked"], renamed.output
