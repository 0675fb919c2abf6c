"""A package's new rate reaches the live sessions on RADIUS routers: a CoA-Request with the new
Mikrotik-Rate-Limit per live session (from radacct) to a real UDP NAS on loopback, a Disconnect-Request
only where the NAS does not take CoA or refuses it, every ACK/NAK recorded on the command, and a NAS that
does not answer retried like any router command. The RADIUS rows themselves are views: they already hold
the new rate the moment the package is saved."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_operator
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Zone
from sonjog.flows.catalog import package_update
from sonjog.flows.subscribers import subscriber_create
from sonjog.network.models import OutboxStatus, ProfileAttempt, ProfileCommand, RadAcct
from sonjog.network.radius.coa import COA_REQUEST, DISCONNECT_REQUEST
from sonjog.network.radius.nas_listener import LoopbackNas
from sonjog.network.services import outbox_drain, router_create

pytestmark = pytest.mark.django_db(transaction=True)

COA_SECRET = "coa-s3cret"


@pytest.fixture
def nas() -> Iterator[LoopbackNas]:
    with LoopbackNas(COA_SECRET) as listener:
        yield listener


def radius_isp(nas: LoopbackNas, **router_options: object):
    operator = make_operator(vat_rate=Decimal("0"))
    package = Package.objects.create(
        operator=operator,
        name="Home 10",
        price=Decimal("1000.00"),
        download_kbps=10240,
        upload_kbps=2048,
        router_profile="10m",
        vat_applicable=False,
    )
    zone = Zone.objects.create(operator=operator, name="Mirpur")
    router = router_create(
        operator=operator,
        name="nas-1",
        address="127.0.0.1",
        driver="radius",
        radius_secret=COA_SECRET,
        coa_port=nas.port,
        zones=[zone],
        **router_options,  # type: ignore[arg-type]
    )
    online, offline = (
        subscriber_create(
            operator=operator,
            name=name,
            phone=phone,
            package=package,
            zone=zone,
            activation_date=operator_today(operator),
        )
        for name, phone in (("Online", "01712350001"), ("Offline", "01712350002"))
    )
    now = timezone.now()
    RadAcct.objects.create(
        acctsessionid="81a00001",
        acctuniqueid="u-81a00001",
        username=online.pppoe_username,
        nasipaddress="127.0.0.1",
        framedipaddress="100.64.0.7",
        acctstarttime=now,
        acctupdatetime=now,
    )
    run_worker_cycle()  # the sign-ups' own commands
    nas.clear()
    return package, router, online, offline


def rate_in_radius(package: Package) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT value FROM radgroupreply WHERE groupname = %s AND attribute = 'Mikrotik-Rate-Limit'",
            [f"package-{package.pk}"],
        )
        return cursor.fetchone()[0]


def test_a_new_rate_reaches_each_live_session_by_coa_and_the_ack_is_recorded(nas):
    package, router, online, _offline = radius_isp(nas)
    package_update(package=package, download_kbps=20480)
    assert rate_in_radius(package) == "2048k/20480k"  # the rows are views: new logins get it at once
    (command,) = ProfileCommand.objects.filter(router=router, status=OutboxStatus.PENDING)
    assert command.profile == "10m"
    run_worker_cycle()
    (request,) = nas.received  # the offline subscriber has no session to change
    assert request.code == COA_REQUEST and request.answer == "ack"
    assert request.attributes["User-Name"] == [online.pppoe_username]
    assert request.attributes["Acct-Session-Id"] == ["81a00001"]
    assert request.attributes["Mikrotik-Rate-Limit"] == ["2048k/20480k"]
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE
    assert command.result == {"actions": [f"coa.ack:{online.pppoe_username}"], "coa.ack": 1}


def test_a_nas_that_refuses_coa_gets_a_disconnect_instead_and_both_answers_are_kept(nas):
    nas.coa_mode, nas.error_cause = "nak", 405  # Unsupported-Service: it can end sessions, not change them
    nas.mode = "ack"
    package, _router, online, _offline = radius_isp(nas)
    package_update(package=package, upload_kbps=4096)
    run_worker_cycle()
    assert [(r.code, r.answer) for r in nas.received] == [(COA_REQUEST, "nak"), (DISCONNECT_REQUEST, "ack")]
    command = ProfileCommand.objects.get(status=OutboxStatus.DONE, requested_by__startswith="package")
    name = online.pppoe_username
    assert command.result["actions"] == [f"coa.nak:{name}:405", f"disconnect.ack:{name}"]


def test_a_nas_without_coa_is_sent_a_disconnect_only(nas):
    package, _router, online, _offline = radius_isp(nas, supports_coa=False)
    package_update(package=package, download_kbps=5120)
    run_worker_cycle()
    assert [(r.code, r.answer) for r in nas.received] == [(DISCONNECT_REQUEST, "ack")]
    assert nas.received[0].attributes["User-Name"] == [online.pppoe_username]


def test_a_nas_that_does_not_answer_is_retried_and_a_session_already_gone_counts_as_done(nas):
    package, router, online, _offline = radius_isp(nas)
    nas.mode = "silent"
    package_update(package=package, download_kbps=30720)
    run_worker_cycle()
    command = ProfileCommand.objects.get(router=router, requested_by__startswith="package")
    assert command.status == OutboxStatus.PENDING and command.attempts == 1
    assert "no reply" in command.last_error and online.pppoe_username in command.last_error

    nas.mode, nas.error_cause = "nak", 503  # Session-Context-Not-Found: it hung up meanwhile
    ProfileCommand.objects.filter(pk=command.pk).update(next_attempt_at=timezone.now())  # two minutes pass
    assert outbox_drain() == {"profile_done": 1}  # the periodic drain's retry
    command.refresh_from_db()
    assert command.status == OutboxStatus.DONE and command.attempts == 2
    assert command.result["actions"] == [f"coa.nak:{online.pppoe_username}:503"]
    assert [attempt.ok for attempt in ProfileAttempt.objects.filter(command=command)] == [False, True]
