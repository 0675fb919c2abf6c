"""RADIUS enforcement end to end: the real FreeRADIUS 3 reads Sonjog's own test database (the radcheck /
radreply / radusergroup / radgroupreply views over subscribers and packages, and the radacct table),
billing decisions change what it answers, and the outbox kicks live sessions at a loopback NAS.

Nothing here is mocked: FreeRADIUS is the Debian server (one per module, on free loopback ports),
PostgreSQL is pytest-django's test database, requests are sent by radtest/radclient, and the NAS is a
real UDP listener. Data must be committed to be visible to FreeRADIUS, hence transaction=True.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_operator
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import ServiceIntent, SessionState, Subscriber, SyncState, Zone
from sonjog.flows.enforcement import overdue_sweep
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_create, subscriber_set_intent
from sonjog.network.models import OutboxCommand, OutboxStatus, RadAcct, Router
from sonjog.network.radius.freeradius import FreeRadiusServer, db_params_from_django
from sonjog.network.radius.nas_listener import LoopbackNas
from sonjog.network.radius_sessions import session_states_refresh, stale_sessions_close
from sonjog.network.services import outbox_drain, router_create
from sonjog.network.tests.radius_client import RadReply
from sonjog.network.tests.radius_client import radclient as shared_radclient
from sonjog.network.tests.radius_client import radtest as shared_radtest

pytestmark = pytest.mark.django_db(transaction=True)

RADIUS_SECRET = "testing123"  # FreeRADIUS <-> radclient (the NAS's RADIUS client secret)
COA_SECRET = "coa-s3cret"  # Sonjog -> NAS (Disconnect-Request), stored encrypted on the router
NAS_IP = "10.9.0.1"
UPLOAD_KBPS, DOWNLOAD_KBPS = 5120, 20480  # different on purpose: the order in the rate limit matters
PACKAGE_RATE = f"{UPLOAD_KBPS}k/{DOWNLOAD_KBPS}k"


# --------------------------------------------------------------------------------------------
# FreeRADIUS on the Django test database, and how to talk to it
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def radius(django_db_setup: None, django_db_blocker: Any) -> Iterator[FreeRadiusServer]:
    """One FreeRADIUS for the module, connected to the test database pytest-django created.

    django_db_setup guarantees the test database exists and is migrated (views included) before the
    server connects; by then connection.settings_dict names the test database (with the xdist suffix
    when there is one). The server is stopped at module end, before the session drops the database.
    """
    from django.db import connection

    with django_db_blocker.unblock():
        params = db_params_from_django(connection.settings_dict)
        # Never point RADIUS at a real database (the xdist suffix is already in TEST NAME).
        assert params["dbname"] == connection.settings_dict["TEST"]["NAME"], params
    with FreeRadiusServer(params, clients=[("127.0.0.1", RADIUS_SECRET)]) as server:
        yield server


def radtest(server: FreeRadiusServer, username: str, password: str) -> RadReply:
    return shared_radtest(server, username, password, RADIUS_SECRET)


def radclient(server: FreeRadiusServer, kind: str, attributes: str) -> RadReply:
    return shared_radclient(server, kind, attributes, RADIUS_SECRET, wait=2, timeout=10)


def login(server: FreeRadiusServer, subscriber: Subscriber, password: str | None = None) -> RadReply:
    return radtest(server, subscriber.pppoe_username, subscriber.pppoe_password if password is None else password)


def assert_package_accept(reply: RadReply) -> None:
    assert reply.code == "Access-Accept", reply.output
    assert reply.values("Mikrotik-Rate-Limit") == [PACKAGE_RATE], reply.output
    assert reply.values("Framed-Pool") == [] and reply.values("Mikrotik-Address-List") == [], reply.output


def assert_suspended_accept(reply: RadReply) -> None:
    assert reply.code == "Access-Accept", reply.output
    assert reply.values("Framed-Pool") == ["suspended"], reply.output
    assert reply.values("Mikrotik-Address-List") == ["suspended"], reply.output
    assert reply.values("Mikrotik-Rate-Limit") == ["256k/256k"], reply.output


_sessions = itertools.count(1)


def accounting(
    server: FreeRadiusServer, subscriber: Subscriber, status: str, session_id: str, extra: str = ""
) -> RadReply:
    """One Accounting-Request as a MikroTik PPPoE server would send it."""
    attributes = (
        f'User-Name = "{subscriber.pppoe_username}", Acct-Session-Id = "{session_id}", '
        f'NAS-IP-Address = {NAS_IP}, NAS-Port-Id = "<pppoe-{subscriber.pppoe_username}>", '
        "NAS-Port-Type = Ethernet, Service-Type = Framed-User, Framed-Protocol = PPP, "
        f'Framed-IP-Address = 100.64.0.{subscriber.pk % 250 + 2}, Calling-Station-Id = "AA:BB:CC:00:11:22", '
        f"Acct-Status-Type = {status}"
    )
    reply = radclient(server, "acct", attributes + (", " + extra if extra else ""))
    assert reply.code == "Accounting-Response", reply.output
    return reply


def start_session(server: FreeRadiusServer, subscriber: Subscriber, extra: str = "") -> str:
    session_id = f"81a{next(_sessions):05x}"
    accounting(server, subscriber, "Start", session_id, extra)
    return session_id


# --------------------------------------------------------------------------------------------
# a small ISP whose NAS authenticates against Sonjog through FreeRADIUS
# --------------------------------------------------------------------------------------------


@pytest.fixture
def nas() -> Iterator[LoopbackNas]:
    with LoopbackNas(COA_SECRET) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _no_jobs_left_behind(transactional_db: None) -> Iterator[None]:
    """Procrastinate's tables are not flushed between tests: drop the jobs a test queued but never ran
    (or left after failing half-way), so that none runs in, or blocks a queueing lock of, a later test."""
    yield
    from procrastinate.contrib.django import app

    for job in app.job_manager.list_jobs(status="todo"):
        assert job.id is not None
        app.job_manager.cancel_job_by_id(job.id, delete_job=True)


_phones = itertools.count(1)


class RadiusIsp:
    """Operator (due 7 days, grace 3), one package, one zone served by one RADIUS router whose CoA
    port is the loopback NAS."""

    def __init__(self, nas: LoopbackNas) -> None:
        self.operator = make_operator(vat_rate=Decimal("0"), grace_days=3, due_days=7)
        self.package = Package.objects.create(
            operator=self.operator,
            name="Home 20",
            price=Decimal("1000.00"),
            download_kbps=DOWNLOAD_KBPS,
            upload_kbps=UPLOAD_KBPS,
            router_profile="20m",
            vat_applicable=False,
        )
        self.zone = Zone.objects.create(operator=self.operator, name="Mirpur")
        self.router = router_create(
            operator=self.operator,
            name=f"bras-{self.operator.pk}",
            address="127.0.0.1",
            driver="radius",
            radius_secret=COA_SECRET,
            coa_port=nas.port,
        )
        self.router.zones.add(self.zone)
        self.today = operator_today(self.operator)

    def subscriber(self, activated_days_ago: int = 0, **fields: Any) -> Subscriber:
        return subscriber_create(
            operator=self.operator,
            name="Karim",
            phone=f"0171{next(_phones):07d}",
            package=self.package,
            zone=self.zone,
            activation_date=self.today - dt.timedelta(days=activated_days_ago),
            **fields,
        )

    def overdue_subscriber(self) -> Subscriber:
        # Activated 45 days ago: last month's bill is past due (7 days) + grace (3 days).
        subscriber = self.subscriber(activated_days_ago=45)
        run_worker_cycle()  # the activation command: nothing online yet, so nothing to kick
        assert OutboxCommand.objects.get(subscriber=subscriber).status == OutboxStatus.DONE
        return subscriber

    def suspend(self, subscriber: Subscriber) -> OutboxCommand:
        assert overdue_sweep(operator=self.operator)["subscriber_ids"] == [subscriber.pk]
        assert Subscriber.objects.get(pk=subscriber.pk).service_intent == ServiceIntent.SUSPENDED
        return OutboxCommand.objects.get(subscriber=subscriber, status=OutboxStatus.PENDING)


@pytest.fixture
def isp(nas: LoopbackNas) -> RadiusIsp:
    return RadiusIsp(nas)


def radacct_row(session_id: str) -> RadAcct:
    return RadAcct.objects.get(acctsessionid=session_id)


# --------------------------------------------------------------------------------------------
# 1-3: what FreeRADIUS answers follows billing
# --------------------------------------------------------------------------------------------


def test_active_subscriber_gets_the_package_rate_and_a_wrong_password_is_rejected(
    radius: FreeRadiusServer, isp: RadiusIsp
) -> None:
    subscriber = isp.subscriber()
    assert subscriber.service_intent == ServiceIntent.ACTIVE

    accepted = login(radius, subscriber)
    wrong = login(radius, subscriber, password=subscriber.pppoe_password + "x")
    unknown = radtest(radius, "no-such-subscriber", "x")

    assert_package_accept(accepted)
    assert wrong.code == "Access-Reject", wrong.output
    assert wrong.values("Mikrotik-Rate-Limit") == []
    assert unknown.code == "Access-Reject", unknown.output


def test_static_ip_is_sent_and_disabled_or_terminated_subscribers_are_rejected(
    radius: FreeRadiusServer, isp: RadiusIsp
) -> None:
    from sonjog.flows.subscribers import subscriber_terminate

    fixed, disabled, terminated = isp.subscriber(), isp.subscriber(), isp.subscriber()
    Subscriber.objects.filter(pk=fixed.pk).update(static_ip="100.64.9.9")
    subscriber_set_intent(subscriber=disabled, intent=ServiceIntent.DISABLED, reason="staff")
    subscriber_terminate(subscriber=terminated, reason="moved")

    reply = login(radius, fixed)
    assert_package_accept(reply)
    assert reply.values("Framed-IP-Address") == ["100.64.9.9"]
    for gone in (disabled, terminated):
        rejected = login(radius, gone)
        assert rejected.code == "Access-Reject", rejected.output


def test_overdue_sweep_moves_the_subscriber_to_the_suspended_group(radius: FreeRadiusServer, isp: RadiusIsp) -> None:
    subscriber = isp.overdue_subscriber()
    assert_package_accept(login(radius, subscriber))

    command = isp.suspend(subscriber)

    # The views follow intent at once: no outbox round trip is needed for the next login.
    assert_suspended_accept(login(radius, subscriber))
    assert login(radius, subscriber, password="wrong").code == "Access-Reject"
    run_worker_cycle()
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE, command.last_error
    assert command.result["actions"] == ["radius.rows"]  # nobody online: nothing to kick
    assert command.result["router_state"] == "disabled"


def test_payment_reactivates_at_once_and_one_worker_cycle_completes_the_command(
    radius: FreeRadiusServer, isp: RadiusIsp
) -> None:
    subscriber = isp.overdue_subscriber()
    isp.suspend(subscriber)
    run_worker_cycle()
    assert_suspended_accept(login(radius, subscriber))

    payment_receive(subscriber=subscriber, amount=subscriber_balance(subscriber.pk), method="cash")

    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE  # in the payment's own transaction
    assert_package_accept(login(radius, subscriber))
    [pending] = OutboxCommand.objects.filter(subscriber=subscriber, status=OutboxStatus.PENDING)
    run_worker_cycle()
    pending.refresh_from_db()
    assert pending.status == OutboxStatus.DONE, pending.last_error
    assert pending.result["router_state"] == "enabled"
    assert not OutboxCommand.objects.filter(subscriber=subscriber, status=OutboxStatus.PENDING).exists()
    subscriber.refresh_from_db()
    assert (subscriber.router_state, subscriber.sync_state) == ("enabled", SyncState.IN_SYNC)


# --------------------------------------------------------------------------------------------
# 4: accounting through FreeRADIUS drives session state
# --------------------------------------------------------------------------------------------


def _session_state(subscriber: Subscriber) -> tuple[str, str | None, str]:
    subscriber.refresh_from_db()
    return subscriber.session_state, subscriber.session_ip, subscriber.session_mac


def test_accounting_start_interim_stop_land_in_radacct_and_drive_session_state(
    radius: FreeRadiusServer, isp: RadiusIsp
) -> None:
    subscriber = isp.subscriber()
    Subscriber.objects.filter(pk=subscriber.pk).update(router=isp.router)
    framed_ip = f"100.64.0.{subscriber.pk % 250 + 2}"
    assert session_states_refresh() == 0  # offline already: nothing to change

    session_id = start_session(radius, subscriber)
    started = radacct_row(session_id)
    assert (started.username, started.nasipaddress, started.framedipaddress) == (
        subscriber.pppoe_username,
        NAS_IP,
        framed_ip,
    )
    assert started.acctstoptime is None and started.acctstarttime is not None
    assert session_states_refresh() == 1
    assert _session_state(subscriber) == (SessionState.ONLINE, framed_ip, "AA:BB:CC:00:11:22")
    assert session_states_refresh() == 0  # idempotent

    accounting(
        radius,
        subscriber,
        "Interim-Update",
        session_id,
        "Acct-Session-Time = 300, Acct-Input-Octets = 1500, Acct-Output-Octets = 7000",
    )
    interim = radacct_row(session_id)
    assert interim.acctupdatetime is not None and started.acctupdatetime is not None
    assert interim.acctupdatetime >= started.acctupdatetime
    assert (interim.acctsessiontime, interim.acctinputoctets, interim.acctoutputoctets) == (300, 1500, 7000)
    assert interim.acctstoptime is None
    assert session_states_refresh() == 0
    assert _session_state(subscriber)[0] == SessionState.ONLINE

    accounting(
        radius,
        subscriber,
        "Stop",
        session_id,
        "Acct-Session-Time = 600, Acct-Input-Octets = 3000, Acct-Output-Octets = 9000, "
        "Acct-Terminate-Cause = User-Request",
    )
    stopped = radacct_row(session_id)
    assert stopped.acctstoptime is not None and stopped.acctterminatecause == "User-Request"
    assert (stopped.acctsessiontime, stopped.acctinputoctets, stopped.acctoutputoctets) == (600, 3000, 9000)
    assert RadAcct.objects.filter(username=subscriber.pppoe_username).count() == 1
    assert session_states_refresh() == 1
    assert _session_state(subscriber) == (SessionState.OFFLINE, None, "")


def test_session_state_also_follows_radacct_for_subscribers_routed_by_zone(
    radius: FreeRadiusServer, isp: RadiusIsp
) -> None:
    # The usual set-up: no router on the subscriber, the RADIUS router serves its zone (as the outbox,
    # router_for() and the online sampler's served_subscribers() all resolve it).
    subscriber = isp.subscriber()
    assert subscriber.router_id is None

    session_id = start_session(radius, subscriber)
    assert session_states_refresh() == 1
    assert _session_state(subscriber)[0] == SessionState.ONLINE

    accounting(radius, subscriber, "Stop", session_id, "Acct-Session-Time = 60")
    assert session_states_refresh() == 1
    assert _session_state(subscriber)[0] == SessionState.OFFLINE


def test_session_state_ignores_subscribers_of_mikrotik_routers(radius: FreeRadiusServer, isp: RadiusIsp) -> None:
    subscriber = isp.subscriber()
    Router.objects.filter(pk=isp.router.pk).update(driver="mikrotik")
    Subscriber.objects.filter(pk=subscriber.pk).update(session_state=SessionState.ONLINE)

    # The MikroTik observer owns their state: a missing radacct session must not flip them offline.
    assert session_states_refresh() == 0
    assert _session_state(subscriber)[0] == SessionState.ONLINE


# --------------------------------------------------------------------------------------------
# 5: suspension kicks the live session at the NAS
# --------------------------------------------------------------------------------------------


def test_suspension_disconnects_the_open_session_at_the_nas(
    radius: FreeRadiusServer, isp: RadiusIsp, nas: LoopbackNas
) -> None:
    subscriber = isp.overdue_subscriber()
    session_id = start_session(radius, subscriber)
    assert nas.received == []

    command = isp.suspend(subscriber)
    run_worker_cycle()

    [request] = nas.received
    assert request.code_name == "Disconnect-Request" and request.authenticator_valid
    assert request.attributes["User-Name"] == [subscriber.pppoe_username]
    assert request.attributes["Acct-Session-Id"] == [session_id]
    assert request.attributes["Framed-IP-Address"] == [f"100.64.0.{subscriber.pk % 250 + 2}"]
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE, command.last_error
    assert command.attempts == 1
    assert command.result["actions"] == ["radius.rows", "session.disconnected"]
    # The NAS re-authenticates the user, and now gets the suspended reply.
    assert_suspended_accept(login(radius, subscriber))


def test_payment_kicks_the_walled_garden_session_so_the_package_rate_applies(
    radius: FreeRadiusServer, isp: RadiusIsp, nas: LoopbackNas
) -> None:
    subscriber = isp.overdue_subscriber()
    first = start_session(radius, subscriber)
    isp.suspend(subscriber)
    run_worker_cycle()
    # The NAS ends the kicked session; the subscriber dials again and lands in the suspended pool.
    accounting(radius, subscriber, "Stop", first, "Acct-Session-Time = 60, Acct-Terminate-Cause = Admin-Reset")
    assert_suspended_accept(login(radius, subscriber))
    second = start_session(radius, subscriber)

    payment_receive(subscriber=subscriber, amount=subscriber_balance(subscriber.pk), method="bkash")
    run_worker_cycle()

    assert [request.attributes["Acct-Session-Id"] for request in nas.received] == [[first], [second]]
    command = OutboxCommand.objects.filter(subscriber=subscriber).latest("pk")
    assert command.status == OutboxStatus.DONE, command.last_error
    assert command.result["actions"] == ["radius.rows", "session.disconnected"]
    assert command.result["router_state"] == "enabled"
    assert_package_accept(login(radius, subscriber))


def test_nak_session_not_found_counts_as_done(radius: FreeRadiusServer, isp: RadiusIsp, nas: LoopbackNas) -> None:
    subscriber = isp.overdue_subscriber()
    start_session(radius, subscriber)
    nas.mode, nas.error_cause = "nak", 503

    command = isp.suspend(subscriber)
    run_worker_cycle()

    assert [request.answer for request in nas.received] == ["nak"]
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE, command.last_error
    assert command.result["actions"] == ["radius.rows", "session.already_gone"]


@pytest.mark.parametrize(
    ("mode", "cause", "expected_error"),
    [
        ("nak", 404, r" nak \(Error-Cause 404 Invalid-Request\)"),
        ("silent", None, r" timeout: no reply from 127\.0\.0\.1:\d+ after 2 attempt"),
    ],
    ids=["nak-404", "silent"],
)
def test_refused_or_unanswered_disconnect_is_retried_until_the_nas_acks(
    radius: FreeRadiusServer, isp: RadiusIsp, nas: LoopbackNas, mode: str, cause: int | None, expected_error: str
) -> None:
    subscriber = isp.overdue_subscriber()
    session_id = start_session(radius, subscriber)
    nas.mode = mode  # type: ignore[assignment]
    if cause is not None:
        nas.error_cause = cause

    command = isp.suspend(subscriber)
    run_worker_cycle()

    command.refresh_from_db()
    assert command.status == OutboxStatus.PENDING
    assert command.attempts == 1
    assert re.search(expected_error, command.last_error), command.last_error
    assert f"127.0.0.1:{nas.port}" in command.last_error
    assert command.next_attempt_at > timezone.now()  # retried later, not hammered
    assert Subscriber.objects.get(pk=subscriber.pk).sync_state == SyncState.PENDING
    tried = len(nas.received)
    assert tried >= 1 and all(request.answer == mode for request in nas.received)

    nas.mode = "ack"
    OutboxCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())  # the retry is due
    assert outbox_drain() == {"done": 1}

    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE and command.attempts == 2 and command.last_error == ""
    assert [attempt.ok for attempt in command.attempt_log.all()] == [False, True]
    last = nas.received[-1]
    assert len(nas.received) == tried + 1 and last.answer == "ack"
    assert last.attributes["Acct-Session-Id"] == [session_id]
    assert Subscriber.objects.get(pk=subscriber.pk).sync_state == SyncState.IN_SYNC
    assert outbox_drain() == {}  # nothing left, nothing sent twice


def test_unreachable_coa_port_is_retried_with_the_reason_recorded(radius: FreeRadiusServer, isp: RadiusIsp) -> None:
    subscriber = isp.overdue_subscriber()
    start_session(radius, subscriber)
    with LoopbackNas(COA_SECRET) as closed:
        closed_port = closed.port  # nothing listens there once it stops
    Router.objects.filter(pk=isp.router.pk).update(coa_port=closed_port)

    command = isp.suspend(subscriber)
    run_worker_cycle()

    command.refresh_from_db()
    assert command.status == OutboxStatus.PENDING and command.attempts == 1
    # The operator needs to read *why*, not just "error".
    assert "refused" in command.last_error and "no CoA listener" in command.last_error, command.last_error


# --------------------------------------------------------------------------------------------
# 6: stale sessions
# --------------------------------------------------------------------------------------------


# FreeRADIUS dates accounting rows by the database's clock, which a pinned clock cannot move.
@pytest.mark.real_clock
def test_sessions_silent_for_three_intervals_are_closed_not_deleted(radius: FreeRadiusServer, isp: RadiusIsp) -> None:
    interval = settings.SONJOG_RADIUS_INTERIM_SECONDS
    margin = interval // 2
    subscriber = isp.subscriber()
    # Acct-Delay-Time makes FreeRADIUS date the event that many seconds in the past.
    never_updated = start_session(radius, subscriber, f"Acct-Delay-Time = {3 * interval + margin}")
    updated_long_ago = start_session(radius, subscriber, f"Acct-Delay-Time = {6 * interval}")
    accounting(radius, subscriber, "Interim-Update", updated_long_ago, f"Acct-Delay-Time = {3 * interval + margin}")
    almost_stale = start_session(radius, subscriber, f"Acct-Delay-Time = {6 * interval}")
    accounting(radius, subscriber, "Interim-Update", almost_stale, f"Acct-Delay-Time = {3 * interval - margin}")
    fresh = start_session(radius, subscriber)
    closed_earlier = start_session(radius, subscriber, f"Acct-Delay-Time = {6 * interval}")
    accounting(radius, subscriber, "Stop", closed_earlier, f"Acct-Delay-Time = {5 * interval}, Acct-Session-Time = 9")
    before = {row.acctsessionid: row for row in RadAcct.objects.all()}
    assert len(before) == 5 and all(before[s].acctstoptime is None for s in before if s != closed_earlier)

    assert stale_sessions_close() == 2

    after = {row.acctsessionid: row for row in RadAcct.objects.all()}
    assert after.keys() == before.keys()  # closed by UPDATE, never deleted
    for session_id, last_heard in (
        (never_updated, before[never_updated].acctstarttime),
        (updated_long_ago, before[updated_long_ago].acctupdatetime),
    ):
        assert after[session_id].acctstoptime == last_heard
        assert after[session_id].acctterminatecause == "Stale-Session"
    for session_id in (almost_stale, fresh):
        assert after[session_id].acctstoptime is None and after[session_id].acctterminatecause is None
    assert after[closed_earlier].acctstoptime == before[closed_earlier].acctstoptime
    assert after[closed_earlier].acctterminatecause is None
    assert stale_sessions_close() == 0


# --------------------------------------------------------------------------------------------
# sweeps and sign-up as seen from RADIUS
# --------------------------------------------------------------------------------------------


def test_overdue_sweep_succeeds_while_a_drain_is_already_queued(
    radius: FreeRadiusServer, isp: RadiusIsp, nas: LoopbackNas
) -> None:
    from sonjog.automation.tasks import drain_outbox

    subscriber = isp.overdue_subscriber()
    start_session(radius, subscriber)
    # The every-minute drain is queued and not yet picked up, e.g. while the worker waits out a silent
    # NAS (2 x 2 s per command). drain_outbox has a queueing lock, so a second defer() is refused.
    drain_outbox.defer()
    try:
        result = overdue_sweep(operator=isp.operator)
    finally:
        run_worker_cycle()

    assert result["subscriber_ids"] == [subscriber.pk]
    assert [request.answer for request in nas.received] == ["ack"]  # the queued drain did the work
    assert OutboxCommand.objects.filter(subscriber=subscriber).latest("pk").status == OutboxStatus.DONE


def test_a_pppoe_username_never_means_two_subscribers_to_radius(radius: FreeRadiusServer, nas: LoopbackNas) -> None:
    from sonjog.customers.exceptions import SubscriberError

    first, second = RadiusIsp(nas), RadiusIsp(nas)
    karim = first.subscriber(pppoe_username="karim", pppoe_password="first-pw")
    try:
        other = second.subscriber(pppoe_username="karim", pppoe_password="second-pw")
    except SubscriberError:
        return  # refused at sign-up: the one RADIUS namespace stays unambiguous

    # Accepted: then both operators' subscribers must still be able to log in, each with their own
    # password and package, through the one FreeRADIUS that reads every operator's rows.
    replies = {sub.pppoe_password: login(radius, sub) for sub in (karim, other)}
    assert {password: reply.code for password, reply in replies.items()} == {
        "first-pw": "Access-Accept",
        "second-pw": "Access-Accept",
    }
