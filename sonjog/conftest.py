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
from sonjog.customers.services import subscriber_create
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
