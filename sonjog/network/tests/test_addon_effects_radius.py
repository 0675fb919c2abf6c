"""Add-on effects in RADIUS (issue 9, ADR 0008): the real FreeRADIUS 3 reads the radreply view, which
carries `Mikrotik-Address-List` for each running address-list add-on, `Framed-IP-Address` while the
static IP is in force, and `Framed-Pool` for a static-IP add-on that names a pool.

Whether a stretch runs is judged by the database clock (the clock FreeRADIUS answers by), which a
pinned clock cannot move: these tests run on the real clock and date everything from the operator's
today, so they hold on any day.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from sonjog.billing.terms import operator_today
from sonjog.catalog.models import AddOn, AddOnEffect, Package
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_operator
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.subscribers import (
    subscriber_addon_activate,
    subscriber_addon_deactivate,
    subscriber_create,
    subscriber_set_intent,
)
from sonjog.network.radius.freeradius import FreeRadiusServer, db_params_from_django
from sonjog.network.tests.radius_client import RadReply
from sonjog.network.tests.radius_client import radtest as shared_radtest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_clock]

RADIUS_SECRET = "testing123"
PACKAGE_RATE = "5120k/20480k"


@pytest.fixture(scope="module")
def radius(django_db_setup: None, django_db_blocker: Any) -> Iterator[FreeRadiusServer]:
    with django_db_blocker.unblock():
        params = db_params_from_django(connection.settings_dict)
        # Never point RADIUS at a real database (the xdist suffix is already in TEST NAME).
        assert params["dbname"] == connection.settings_dict["TEST"]["NAME"], params
    with FreeRadiusServer(params, clients=[("127.0.0.1", RADIUS_SECRET)]) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_jobs_left_behind(transactional_db: None) -> Iterator[None]:
    """Procrastinate's tables are not flushed between tests: drop what a test queued and never ran."""
    yield
    from procrastinate.contrib.django import app

    for job in app.job_manager.list_jobs(status="todo"):
        assert job.id is not None
        app.job_manager.cancel_job_by_id(job.id, delete_job=True)


_phones = itertools.count(1)


class Isp:
    """An operator whose subscribers authenticate through FreeRADIUS (no router: the views are all)."""

    def __init__(self) -> None:
        self.operator = make_operator(vat_rate=Decimal("0"))
        self.package = Package.objects.create(
            operator=self.operator,
            name="Home 20",
            price=Decimal("1000.00"),
            download_kbps=20480,
            upload_kbps=5120,
            router_profile="20m",
            vat_applicable=False,
        )
        self.today = operator_today(self.operator)

    def days_ago(self, days: int) -> dt.date:
        return self.today - dt.timedelta(days=days)

    def subscriber(self, static_ip: str | None = None) -> Subscriber:
        subscriber = subscriber_create(
            operator=self.operator,
            name="Rahim",
            phone=f"0181{next(_phones):07d}",
            package=self.package,
            activation_date=self.days_ago(20),
        )
        if static_ip:
            Subscriber.objects.filter(pk=subscriber.pk).update(static_ip=static_ip)
            subscriber.refresh_from_db()
        return subscriber

    def addon(self, name: str, effect: str, value: str = "") -> AddOn:
        return addon_create(
            operator=self.operator, name=name, price=Decimal("150.00"), effect=effect, effect_value=value
        )


@pytest.fixture
def isp() -> Isp:
    return Isp()


def login(server: FreeRadiusServer, subscriber: Subscriber) -> RadReply:
    reply = shared_radtest(server, subscriber.pppoe_username, subscriber.pppoe_password, RADIUS_SECRET)
    assert reply.code == "Access-Accept", reply.output
    return reply


def test_address_list_addons_are_in_the_reply_while_they_run(radius: FreeRadiusServer, isp: Isp) -> None:
    gaming = isp.addon("Gaming boost", AddOnEffect.ADDRESS_LIST, "gaming-boost")
    iptv = isp.addon("IPTV", AddOnEffect.ADDRESS_LIST, "iptv")
    booked = isp.addon("Night pack", AddOnEffect.ADDRESS_LIST, "night")
    subscriber, neighbour = isp.subscriber(), isp.subscriber()
    subscriber_addon_activate(subscriber=subscriber, addon=gaming, start_date=isp.days_ago(3))
    subscriber_addon_activate(subscriber=subscriber, addon=iptv, start_date=isp.today)
    subscriber_addon_activate(subscriber=subscriber, addon=booked, start_date=isp.today + dt.timedelta(days=1))

    reply = login(radius, subscriber)
    assert sorted(reply.values("Mikrotik-Address-List")) == ["gaming-boost", "iptv"], reply.output
    assert reply.values("Mikrotik-Rate-Limit") == [PACKAGE_RATE]
    assert login(radius, neighbour).values("Mikrotik-Address-List") == []

    subscriber_addon_deactivate(subscriber=subscriber, addon=gaming)  # from today
    assert login(radius, subscriber).values("Mikrotik-Address-List") == ["iptv"]

    # Suspended: the suspended group's list only; the add-on's comes back with the service.
    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.SUSPENDED, reason="test")
    suspended = login(radius, subscriber)
    assert suspended.values("Mikrotik-Address-List") == ["suspended"], suspended.output
    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.ACTIVE, reason="test")
    assert login(radius, subscriber).values("Mikrotik-Address-List") == ["iptv"]


def test_static_ip_follows_the_static_ip_addon_and_a_named_pool_stands_in_for_a_missing_address(
    radius: FreeRadiusServer, isp: Isp
) -> None:
    real_ip = isp.addon("Real IP", AddOnEffect.STATIC_IP)
    pooled = isp.addon("Public IP", AddOnEffect.STATIC_IP, "public-pool")
    legacy = isp.subscriber(static_ip="100.64.9.1")  # never had the add-on: keeps its address
    billed = isp.subscriber(static_ip="100.64.9.2")
    from_pool = isp.subscriber()
    subscriber_addon_activate(subscriber=billed, addon=real_ip, start_date=isp.days_ago(5))
    subscriber_addon_activate(subscriber=from_pool, addon=pooled, start_date=isp.days_ago(5))

    assert login(radius, legacy).values("Framed-IP-Address") == ["100.64.9.1"]
    assert login(radius, billed).values("Framed-IP-Address") == ["100.64.9.2"]
    pool_reply = login(radius, from_pool)
    assert pool_reply.values("Framed-Pool") == ["public-pool"], pool_reply.output
    assert pool_reply.values("Framed-IP-Address") == []

    subscriber_addon_deactivate(subscriber=billed, addon=real_ip)  # from today
    subscriber_addon_deactivate(subscriber=from_pool, addon=pooled)
    ended = login(radius, billed)
    assert ended.values("Framed-IP-Address") == [] and ended.values("Framed-Pool") == [], ended.output
    assert login(radius, from_pool).values("Framed-Pool") == []
    assert login(radius, legacy).values("Framed-IP-Address") == ["100.64.9.1"]


def test_the_reply_view_finds_one_username_through_indexes(isp: Isp) -> None:
    """FreeRADIUS asks radreply for one user name per login: every branch of the view must reach the
    subscriber by its unique user name, not scan subscribers or their add-ons."""
    subscriber = isp.subscriber(static_ip="100.64.9.3")
    subscriber_addon_activate(
        subscriber=subscriber,
        addon=isp.addon("Gaming", AddOnEffect.ADDRESS_LIST, "gaming"),
        start_date=isp.days_ago(1),
    )
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute(
                "EXPLAIN SELECT id, username, attribute, value, op FROM radreply WHERE username = %s ORDER BY id",
                [subscriber.pppoe_username],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
    assert "Seq Scan on customers_subscriber " not in plan, plan
    assert "Seq Scan on customers_subscriberaddon" not in plan, plan
