"""Shared fixtures: a small ISP built through the real services, against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User

from sonjog.catalog.models import Package
from sonjog.customers.models import Subscriber
from sonjog.flows.subscribers import subscriber_create
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create, staff_create

_codes = itertools.count(1)


def make_operator(**settings: Any) -> Operator:
    number = next(_codes)
    settings.setdefault("customer_id_prefix", f"T{number}X")
    return operator_create(code=f"isp-{number}", name=f"ISP {number}", **settings)


def make_package(operator: Operator, price: str = "1000.00", vat: bool = True, name: str = "") -> Package:
    return Package.objects.create(
        operator=operator,
        name=name or f"{price} plan {next(_codes)}",
        price=Decimal(price),
        download_kbps=10240,
        upload_kbps=10240,
        router_profile="10m",
        vat_applicable=vat,
    )


_phones = itertools.count(10_000_000)


def make_subscriber(
    operator: Operator, package: Package, activation_date: dt.date | None, **fields: object
) -> Subscriber:
    return subscriber_create(
        operator=operator,
        name="Test Subscriber",
        phone=f"0171{next(_phones) % 10_000_000:07d}",
        package=package,
        activation_date=activation_date,
        activate=activation_date is not None,
        **fields,  # type: ignore[arg-type]
    )


def run_at_once(*callables: Any) -> list[Any]:
    """Start every callable at the same instant, each on its own thread and so its own PostgreSQL
    connection; collect what each returned or raised."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(callables))
    results: list[Any] = [None] * len(callables)

    def worker(index: int, function: Any) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = function()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, f)) for i, f in enumerate(callables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a real `sonjog` (or server) process that talks to this test database."""
    import os

    from django.db import connection

    env = dict(os.environ)
    name = connection.settings_dict["NAME"]
    if env.get("DATABASE_URL"):
        base, _slash, _old = env["DATABASE_URL"].rpartition("/")
        env["DATABASE_URL"] = f"{base}/{name}"
    else:
        env["SONJOG_DATABASE_NAME"] = name
    env.update(extra)
    return env


@pytest.fixture
def operator(db: None) -> Operator:
    return make_operator(vat_rate=Decimal("0"))


@pytest.fixture
def package(operator: Operator) -> Package:
    return make_package(operator, "1000.00", vat=False)


@pytest.fixture
def owner(operator: Operator) -> User:
    return staff_create(operator=operator, username=f"owner{operator.pk}", password="x-long-pass-1", role="owner").user


@pytest.fixture
def clerk(operator: Operator) -> User:
    return staff_create(
        operator=operator, username=f"clerk{operator.pk}", password="x-long-pass-1", role="billing_clerk"
    ).user


FROZEN_NOW = dt.datetime(2027, 6, 15, 6, 0, tzinfo=dt.UTC)  # noon in Dhaka


@pytest.fixture
def frozen_clock():
    """The services read the clock through django.utils.timezone.now; freeze it at 15 June 2027."""
    from unittest import mock

    from django.utils import timezone

    class Clock:
        now = FROZEN_NOW

        def advance(self, **delta: float) -> None:
            self.now = self.now + dt.timedelta(**delta)

    clock = Clock()
    with mock.patch.object(timezone, "now", side_effect=lambda: clock.now):
        yield clock


# Every test runs on a pinned clock, never the real date or hour: a quiet mid-month morning in Dhaka
# unless the test asks for a day of its own (`pinned_day`, `at`) or is marked `real_clock` because it
# shares time with another process (a browser, a server, the worker) that cannot be pinned with it.
# The clock ticks from the pinned instant so that timeouts, retries and durations still advance.
PINNED_NOW = dt.datetime(2026, 11, 18, 4, 0, tzinfo=dt.UTC)  # 10:00 in Dhaka


@pytest.fixture(autouse=True)
def _pinned_clock(request: pytest.FixtureRequest) -> Any:
    if request.node.get_closest_marker("real_clock"):
        yield None
        return
    import time_machine

    with time_machine.travel(PINNED_NOW, tick=True) as traveller:
        yield traveller


# The days on which every date-sensitive test is run (`pinned_day`): month starts and ends, leap days,
# the year end, and the two sides of midnight in Dhaka while the server's own clock is in UTC.
DHAKA = dt.timezone(dt.timedelta(hours=6))
PINNED_DAYS: dict[str, tuple[dt.datetime, str | None]] = {
    "1st": (dt.datetime(2026, 12, 1, 10, 0, tzinfo=DHAKA), None),
    "2nd": (dt.datetime(2026, 12, 2, 10, 0, tzinfo=DHAKA), None),
    "mid-month": (dt.datetime(2026, 12, 15, 10, 0, tzinfo=DHAKA), None),
    "30th-of-30": (dt.datetime(2026, 11, 30, 10, 0, tzinfo=DHAKA), None),
    "31st-of-31": (dt.datetime(2027, 1, 31, 10, 0, tzinfo=DHAKA), None),
    "feb-28": (dt.datetime(2027, 2, 28, 10, 0, tzinfo=DHAKA), None),
    "feb-29": (dt.datetime(2028, 2, 29, 10, 0, tzinfo=DHAKA), None),
    "dec-31": (dt.datetime(2026, 12, 31, 10, 0, tzinfo=DHAKA), None),
    "23:30-dhaka-utc-server": (dt.datetime(2026, 12, 31, 23, 30, tzinfo=DHAKA), "UTC"),
    "00:30-dhaka-utc-server": (dt.datetime(2027, 1, 1, 0, 30, tzinfo=DHAKA), "UTC"),
}


@pytest.fixture(params=list(PINNED_DAYS), ids=list(PINNED_DAYS))
def pinned_day(request: pytest.FixtureRequest, settings: Any) -> Any:
    """Run the test once on each of PINNED_DAYS; yields the pinned instant. With the server in UTC,
    Django's own time zone is UTC while operators stay in Asia/Dhaka."""
    import time_machine

    instant, server_zone = PINNED_DAYS[request.param]
    if server_zone:
        settings.TIME_ZONE = server_zone
    with time_machine.travel(instant, tick=True):
        yield instant


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup: None, django_db_blocker: Any) -> Any:
    """Worker threads and helper processes in the tests may leave connections to the test database;
    end them before pytest-django drops it."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _private_outbound_allowed(settings: Any) -> None:
    """The fake gateways listen on 127.0.0.1, which an installation refuses to send to by default
    (sonjog.core.outbound); the tests of that refusal turn the setting off again."""
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = True
