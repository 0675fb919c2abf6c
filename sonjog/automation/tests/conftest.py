"""Shared set-ups for the automation tests."""

import datetime as dt
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum

from sonjog.billing.models import Allocation
from sonjog.catalog.models import Package
from sonjog.conftest import make_operator, make_subscriber
from sonjog.customers.models import Zone
from sonjog.network.models import RadAcct
from sonjog.network.services import router_create

D = dt.date
DHAKA = ZoneInfo("Asia/Dhaka")
GB = 1_000_000_000
_sessions = itertools.count(1)


def dhaka(*parts):
    return dt.datetime(*parts).replace(tzinfo=DHAKA)


def session(subscriber, start, stop, octets_in, octets_out, update=None):
    number = next(_sessions)
    RadAcct.objects.create(
        acctsessionid=f"s{number}",
        acctuniqueid=f"u{number}",
        username=subscriber.pppoe_username,
        nasipaddress="10.0.0.1",
        acctstarttime=start,
        acctupdatetime=update or stop,
        acctstoptime=stop,
        acctinputoctets=octets_in,
        acctoutputoctets=octets_out,
    )


def package(operator, name, allowance_gb):
    return Package.objects.create(
        operator=operator,
        name=name,
        price=Decimal("800.00"),
        download_kbps=10240,
        upload_kbps=10240,
        router_profile="10m",
        vat_applicable=False,
        data_allowance_gb=allowance_gb,
    )


@pytest.fixture
def fup_isp(frozen_clock):
    """Frozen at 15 June 2027, noon in Dhaka: the calendar period is 1 June to 1 July (Dhaka)."""
    operator = make_operator(vat_rate=Decimal("0"))
    capped = package(operator, "Capped 1 GB", 1)
    unlimited = package(operator, "Unlimited", None)
    zone = Zone.objects.create(operator=operator, name="Mirpur")
    router = router_create(operator=operator, name="core", address="127.0.0.1", password="x")
    router.zones.add(zone)
    people = {
        name: make_subscriber(operator, pkg, activation_date=D(2027, 5, 1), zone=zone)
        for name, pkg in [("heavy", capped), ("light", capped), ("spanning", capped), ("unlimited", unlimited)]
    }
    session(people["heavy"], dhaka(2027, 6, 10, 8), dhaka(2027, 6, 10, 20), 600_000_000, 500_000_000)
    # Light: May's traffic does not count; an open session counts up to its last interim update.
    session(people["light"], dhaka(2027, 5, 20), dhaka(2027, 5, 21), 4 * GB, GB)
    session(people["light"], dhaka(2027, 6, 3), dhaka(2027, 6, 3, 6), 300_000_000, 100_000_000)
    session(people["light"], dhaka(2027, 6, 14), None, 60_000_000, 40_000_000, update=dhaka(2027, 6, 15))
    # Spanning: 48 hours across the period start, half of them in June, so half its 1.6 GB counts.
    session(people["spanning"], dhaka(2027, 5, 31), dhaka(2027, 6, 2), 1_000_000_000, 600_000_000)
    session(people["unlimited"], dhaka(2027, 6, 5), dhaka(2027, 6, 6), 50 * GB, 50 * GB)
    return operator, people


def lose_allocations(subscriber):
    """Release every allocation of the subscriber without reallocating: the state an import of
    historical payments (or a bug) leaves behind, which settle_credit exists to repair."""
    for source_id, bill_id, amount in (
        Allocation.objects.filter(bill__subscriber=subscriber)
        .values_list("source_id", "bill_id")
        .annotate(net=Sum("amount"))
        .filter(net__gt=0)
    ):
        Allocation.objects.create(source_id=source_id, bill_id=bill_id, amount=-amount)
