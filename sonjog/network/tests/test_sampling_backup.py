"""Online sampling with the network-fault alert, and router configuration backups."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.flows.subscribers import subscriber_create
from sonjog.network.models import NetworkAlert, OnlineSample, RouterBackup
from sonjog.network.reconcile import network_reconcile
from sonjog.network.sampling import online_sample
from sonjog.network.services import router_backup
from sonjog.network.tests.conftest import Isp

pytestmark = pytest.mark.django_db(transaction=True)


def sign_up(isp, count):
    return [
        subscriber_create(
            operator=isp.operator,
            name=f"S{n}",
            phone=f"0171{n:07d}",
            package=isp.package,
            zone=isp.zone,
            activation_date=isp.today,
        )
        for n in range(count)
    ]


def test_a_sudden_drop_in_online_subscribers_raises_one_alert(emulator, settings):
    settings.SONJOG_ONLINE_DROP_PERCENT = 30
    isp = Isp(emulator)
    subscribers = sign_up(isp, 20)
    run_worker_cycle()
    for number, subscriber in enumerate(subscribers):
        emulator.add_active_session(subscriber.pppoe_username, f"10.9.0.{number + 2}")
    network_reconcile()
    start = timezone.now()
    online_sample(now=start)
    assert OnlineSample.objects.get(router=isp.router).online == 20
    assert OnlineSample.objects.filter(zone=isp.zone, online=20).exists()

    # Fifteen sessions drop at once (a fibre cut): 75% down within the window.
    for subscriber in subscribers[:15]:
        emulator.remove_active_session(subscriber.pppoe_username)
    network_reconcile()
    assert Subscriber.objects.filter(pk__in=[s.pk for s in subscribers], session_state="online").count() == 5
    online_sample(now=start + dt.timedelta(minutes=5))
    alert = NetworkAlert.objects.get(router=isp.router)
    assert alert.kind == NetworkAlert.Kind.ONLINE_DROP and "fell to 5" in alert.message
    online_sample(now=start + dt.timedelta(minutes=10))  # still down: no second alert while one is open
    assert NetworkAlert.objects.count() == 1


def test_a_small_dip_raises_nothing(emulator):
    isp = Isp(emulator)
    subscribers = sign_up(isp, 20)
    run_worker_cycle()
    for number, subscriber in enumerate(subscribers):
        emulator.add_active_session(subscriber.pppoe_username, f"10.9.1.{number + 2}")
    network_reconcile()
    start = timezone.now()
    online_sample(now=start)
    for subscriber in subscribers[:3]:  # 15% down: ordinary churn
        emulator.remove_active_session(subscriber.pppoe_username)
    network_reconcile()
    online_sample(now=start + dt.timedelta(minutes=5))
    assert not NetworkAlert.objects.exists()


def test_router_backup_stores_the_exported_configuration(emulator):
    isp = Isp(emulator)
    subscribers = sign_up(isp, 2)
    run_worker_cycle()
    backup = router_backup(isp.router)
    assert RouterBackup.objects.filter(router=isp.router).count() == 1
    assert backup.taken_at is not None
    assert "/ppp secret" in backup.content or "/ppp/secret" in backup.content
    for subscriber in subscribers:
        assert subscriber.pppoe_username in backup.content
