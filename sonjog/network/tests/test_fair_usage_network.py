"""Fair usage on the network: a throttled subscriber runs on the package's reduced rate, on MikroTik
(profile switch with a kick) and in RADIUS (the fup group's reply), and comes back next period."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.core.jobs import run_worker_cycle
from sonjog.flows.subscribers import subscriber_create
from sonjog.network.models import FupState, RadAcct
from sonjog.network.services import fair_usage_apply
from sonjog.network.tests.conftest import Isp

pytestmark = pytest.mark.django_db(transaction=True)

GB = 1_000_000_000


def test_over_the_allowance_moves_the_subscriber_to_the_fair_usage_rate(emulator):
    isp = Isp(emulator)
    emulator.add_profile("fup", rate_limit="1024k/1024k")
    capped = Package.objects.create(
        operator=isp.operator,
        name="Capped 10",
        price=Decimal("700"),
        download_kbps=10240,
        upload_kbps=10240,
        router_profile="10m",
        data_allowance_gb=50,
        fup_download_kbps=2048,
        fup_upload_kbps=1024,
    )
    subscriber = subscriber_create(
        operator=isp.operator,
        name="Heavy",
        phone="01711111111",
        package=capped,
        zone=isp.zone,
        activation_date=operator_today(isp.operator),
    )
    run_worker_cycle()
    emulator.add_active_session(subscriber.pppoe_username, "10.7.0.2")
    now = timezone.now()
    RadAcct.objects.create(
        acctsessionid="s1",
        acctuniqueid="u1",
        username=subscriber.pppoe_username,
        nasipaddress="127.0.0.1",
        acctstarttime=now,
        acctupdatetime=now,
        acctinputoctets=20 * GB,
        acctoutputoctets=40 * GB,
    )
    fair_usage_apply()
    assert FupState.objects.filter(subscriber=subscriber, released_at__isnull=True).exists()
    run_worker_cycle()
    assert emulator.secret(subscriber.pppoe_username)["profile"] == "fup"
    assert emulator.active_sessions() == []  # kicked, so the session reconnects on the reduced profile
    with connection.cursor() as cursor:
        cursor.execute("SELECT groupname FROM radusergroup WHERE username = %s", [subscriber.pppoe_username])
        group = cursor.fetchone()[0]
        cursor.execute(
            "SELECT value FROM radgroupreply WHERE groupname = %s AND attribute = 'Mikrotik-Rate-Limit'", [group]
        )
        assert (group, cursor.fetchone()[0]) == (f"fup-{capped.pk}", "1024k/2048k")

    FupState.objects.filter(subscriber=subscriber).update(released_at=timezone.now())  # the next period
    from sonjog.network.services import outbox_enqueue

    outbox_enqueue(subscriber=subscriber, requested_by="fair usage released")
    run_worker_cycle()
    assert emulator.secret(subscriber.pppoe_username)["profile"] == "10m"
