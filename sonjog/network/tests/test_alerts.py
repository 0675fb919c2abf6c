"""Network alerts: "router unreachable" raised once by the reconciler and by the console's connection
test when the RouterOS emulator is stopped, resolved when it is started again, and raised anew by the
next outage; an online-drop alert resolved when the count recovers, so a second drop alerts again; and
the database's own "one open alert per router and kind"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from sonjog.console.tests import conftest as console_conftest
from sonjog.console.tests.conftest import Tree, add_staff
from sonjog.core.jobs import run_worker_cycle
from sonjog.flows.subscribers import subscriber_create
from sonjog.network.models import NetworkAlert
from sonjog.network.reconcile import network_reconcile
from sonjog.network.sampling import online_sample
from sonjog.network.services import router_create
from sonjog.network.tests.conftest import ROUTER_PASSWORD, Isp

pytestmark = pytest.mark.django_db(transaction=True)

# The console's ISP tree (a root ISP with resellers north and south) and its fast logins.
tree = console_conftest.tree
_fast_password_hashing = console_conftest._fast_password_hashing

UNREACHABLE = NetworkAlert.Kind.ROUTER_UNREACHABLE


def open_alerts(kind: str) -> list[NetworkAlert]:
    return list(NetworkAlert.objects.filter(kind=kind, resolved_at__isnull=True))


def test_the_reconciler_raises_one_unreachable_alert_and_resolves_it_when_the_router_answers(emulator):
    isp = Isp(emulator)
    network_reconcile()
    assert not NetworkAlert.objects.exists()

    emulator.stop()
    assert not network_reconcile()[isp.router.name].reachable
    network_reconcile()  # still silent: the same alert stays open, no second one
    [alert] = open_alerts(UNREACHABLE)
    assert alert.router == isp.router and alert.operator == isp.operator
    assert isp.router.name in alert.message and "does not answer" in alert.message

    emulator.start()
    assert network_reconcile()[isp.router.name].reachable
    alert.refresh_from_db()
    assert alert.resolved_at is not None and not open_alerts(UNREACHABLE)

    emulator.stop()
    network_reconcile()
    [again] = open_alerts(UNREACHABLE)
    assert again.pk != alert.pk and NetworkAlert.objects.filter(kind=UNREACHABLE).count() == 2
    emulator.start()


def test_the_consoles_connection_test_raises_and_resolves_the_alert(tree: Tree, emulator):
    router = router_create(
        operator=tree.north.operator,
        name="north-core",
        address="127.0.0.1",
        api_port=emulator.port,
        username="sonjog",
        password=ROUTER_PASSWORD,
    )
    client = tree.login(add_staff(tree.north, "owner"))
    url = reverse("console:router_test", args=[router.pk])
    emulator.stop()
    for _attempt in range(2):
        assert client.post(url).status_code == 302
    [alert] = open_alerts(UNREACHABLE)
    assert (alert.router, alert.operator) == (router, tree.north.operator)
    dashboard = client.get(reverse("console:dashboard"))
    assert dashboard.status_code == 200 and "does not answer" in dashboard.content.decode()

    emulator.start()
    assert client.post(url).status_code == 302
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert "does not answer" not in client.get(reverse("console:dashboard")).content.decode()

    emulator.stop()
    client.post(url)
    assert len(open_alerts(UNREACHABLE)) == 1 and NetworkAlert.objects.filter(kind=UNREACHABLE).count() == 2
    emulator.start()


def test_an_online_drop_is_resolved_on_recovery_and_a_second_drop_alerts_again(emulator, settings):
    settings.SONJOG_ONLINE_DROP_PERCENT = 30
    isp = Isp(emulator)
    subscribers = [
        subscriber_create(
            operator=isp.operator,
            name=f"S{n}",
            phone=f"0172{n:07d}",
            package=isp.package,
            zone=isp.zone,
            activation_date=isp.today,
        )
        for n in range(20)
    ]
    run_worker_cycle()

    def sessions(online: int) -> None:
        for number, subscriber in enumerate(subscribers):
            emulator.remove_active_session(subscriber.pppoe_username)
            if number < online:
                emulator.add_active_session(subscriber.pppoe_username, f"10.9.2.{number + 2}")
        network_reconcile()

    start = timezone.now()
    sessions(20)
    online_sample(now=start)
    sessions(5)
    online_sample(now=start + dt.timedelta(minutes=5))
    [first] = open_alerts(NetworkAlert.Kind.ONLINE_DROP)
    assert first.baseline_online == 20 and "fell to 5" in first.message
    # Still down long after: the window's own peak has sunk to 5, yet the alert stays open.
    for minutes in (10, 70, 130):
        online_sample(now=start + dt.timedelta(minutes=minutes))
    assert open_alerts(NetworkAlert.Kind.ONLINE_DROP) == [first]

    sessions(18)  # back above the drop line of the peak it fell from
    online_sample(now=start + dt.timedelta(minutes=135))
    first.refresh_from_db()
    assert first.resolved_at is not None and not open_alerts(NetworkAlert.Kind.ONLINE_DROP)

    sessions(20)
    online_sample(now=start + dt.timedelta(minutes=140))
    sessions(4)
    online_sample(now=start + dt.timedelta(minutes=145))
    [second] = open_alerts(NetworkAlert.Kind.ONLINE_DROP)
    assert second.pk != first.pk and "fell to 4" in second.message


def test_the_database_holds_one_open_alert_per_router_and_kind(emulator):
    isp = Isp(emulator)
    fields = {"operator": isp.operator, "router": isp.router, "kind": UNREACHABLE, "message": "down"}
    NetworkAlert.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        NetworkAlert.objects.create(**fields)
    NetworkAlert.objects.create(**{**fields, "kind": NetworkAlert.Kind.ONLINE_DROP})  # another kind may open
    NetworkAlert.objects.filter(kind=UNREACHABLE).update(resolved_at=timezone.now())
    NetworkAlert.objects.create(**fields)  # resolved ones do not count
    assert NetworkAlert.objects.filter(kind=UNREACHABLE).count() == 2
