from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from sonjog.catalog.models import Package
from sonjog.conftest import make_operator, make_package
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.flows.subscribers import subscriber_create
from sonjog.notifications.models import ProviderAccount
from sonjog.notifications.services import notification_settings_save, provider_account_create, sms_credit_add
from sonjog.notifications.tests.fakes import LoopbackSmtp, SslWirelessFake
from sonjog.operators.models import Operator

_phones = itertools.count(20_000_000)


def add_subscriber(operator: Operator, package: Package, name: str = "Rahim Uddin", **fields: Any) -> Subscriber:
    """A subscriber that is not activated (no bills) unless an activation date is given."""
    fields.setdefault("activate", fields.get("activation_date") is not None)
    return subscriber_create(
        operator=operator, name=name, phone=f"0181{next(_phones) % 10_000_000:07d}", package=package, **fields
    )


@dataclass
class Isp:
    operator: Operator
    package: Package
    subscriber: Subscriber
    sms: ProviderAccount | None


def make_isp(
    gateway: SslWirelessFake | None,
    *,
    credit: str = "10.00",
    cost: str = "0.25",
    token: str = "ssl-token",
    quiet_hours: bool = False,
    **subscriber_fields: Any,
) -> Isp:
    """An operator with one subscriber and, given a gateway, an SSL Wireless account pointing at it.
    Quiet hours are off unless asked for: a test that sends must not depend on the hour it runs at."""
    operator = make_operator(vat_rate=Decimal("0"))
    notification_settings_save(operator=operator, quiet_hours_enabled=quiet_hours)
    package = make_package(operator, "500.00", vat=False, name="Home 10")
    subscriber = add_subscriber(operator, package, **subscriber_fields)
    account = None
    if gateway is not None:
        account = provider_account_create(
            operator=operator,
            name="SSL",
            kind="ssl_wireless",
            sender_id="MYISP",
            credentials={"api_token": token},
            base_url=gateway.url,
            cost_per_segment=Decimal(cost),
            webhook_token="hook-secret",
        )
        if Decimal(credit) > 0:
            sms_credit_add(operator=operator, amount=Decimal(credit))
    return Isp(operator, package, subscriber, account)


@pytest.fixture
def gateway() -> Iterator[SslWirelessFake]:
    fake = SslWirelessFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def smtp_server() -> Iterator[LoopbackSmtp]:
    server = LoopbackSmtp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def jobs(transactional_db: None) -> Iterator[None]:
    """Procrastinate's tables are not flushed between tests: start without stale send jobs."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name = 'notifications.send_message'")
    yield


def work() -> None:
    run_worker_cycle(queues=["notifications"])


def time_passes(clock: Any, **delta: float) -> None:
    """Advance the frozen clock, and let the jobs scheduled up to the new 'now' become due: Procrastinate
    compares scheduled_at with the database's own clock, which the frozen clock does not move."""
    clock.advance(**delta)
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE procrastinate_jobs SET scheduled_at = now()
               WHERE status = 'todo' AND task_name = 'notifications.send_message' AND scheduled_at <= %s""",
            [clock.now],
        )


def scheduled_jobs() -> list[tuple[int, dt.datetime | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (args->>'message_id')::bigint, scheduled_at FROM procrastinate_jobs
               WHERE status = 'todo' AND task_name = 'notifications.send_message' ORDER BY id"""
        )
        return list(cursor.fetchall())
