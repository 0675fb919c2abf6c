"""Subscribers who can be sent a sign-in code (their operator has an SMS account and credit), the code
read back from the delivery log as a test reads any sent message, a signed-in portal client, and
Debian's Chromium for the phone-sized browser test."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package
from sonjog.console.tests.conftest import CHROMIUM, CHROMIUM_ARGS
from sonjog.customers.models import Subscriber
from sonjog.flows.subscribers import subscriber_create
from sonjog.notifications.loopback import LoopbackGateway
from sonjog.notifications.models import Event, Message
from sonjog.notifications.services import provider_account_create, sms_credit_add
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create

CODE = re.compile(r"(?<![0-9])([0-9]{6})(?![0-9])")


_numbers = itertools.count(1)


def sms_operator(name: str = "", **settings: Any) -> Operator:
    """An operator whose messages can be queued: an SMS account (a gateway that is never called, since
    no worker runs) and some credit."""
    settings.setdefault("vat_rate", Decimal("0"))
    if name:
        number = next(_numbers)
        settings.setdefault("customer_id_prefix", f"P{number}X")
        operator = operator_create(code=f"portal-{number}", name=name, **settings)
    else:
        operator = make_operator(**settings)
    return sms_enable(operator)


def sms_enable(operator: Operator) -> Operator:
    """Give the operator an SMS account (a gateway that is never called: no worker runs) and credit."""
    provider_account_create(
        operator=operator,
        name="SMS",
        kind="generic_http",
        sender_id="ISP",
        credentials={"api_key": "k"},
        base_url="http://127.0.0.1:9",
        options=LoopbackGateway.account_options(),
        cost_per_segment=Decimal("0.25"),
    )
    sms_credit_add(operator=operator, amount=Decimal("100.00"), note="test credit")
    return operator


_phones = itertools.count(1)


def billed_subscriber(operator: Operator, price: str = "1000.00", **fields: Any) -> Subscriber:
    """A subscriber active since the 1st of this month on a calendar cycle: one full month's bill."""
    package = make_package(operator, price, vat=False)
    first = operator_today(operator).replace(day=1)
    fields.setdefault("phone", f"0181{next(_phones):07d}")
    return subscriber_create(
        operator=operator, name="Rahima Begum", package=package, activation_date=first, activate=True, **fields
    )


def last_code(subscriber: Subscriber) -> str:
    """The code in the newest one-time-code SMS queued for the subscriber."""
    message = Message.objects.filter(subscriber=subscriber, event=Event.OTP).order_by("-created_at", "-id").first()
    assert message is not None, "no sign-in code was queued"
    found = CODE.search(message.body)
    assert found is not None, message.body
    return found.group(1)


def signed_in(subscriber: Subscriber, **client_options: Any) -> Client:
    """A client signed in to the portal the way a subscriber does it: customer ID, then the SMS code."""
    client = Client(**client_options)
    response = client.post("/my/signin/", {"who": subscriber.customer_id})
    assert response.status_code == 302 and response["Location"] == "/my/signin/code/", response.content[:400]
    response = client.post("/my/signin/code/", {"code": last_code(subscriber)})
    assert response.status_code == 302 and response["Location"] == "/my/", response.content[:400]
    return client


@pytest.fixture
def operator(db: None) -> Operator:
    return sms_operator(name="Dhaka Net")


@pytest.fixture
def subscriber(operator: Operator) -> Subscriber:
    return billed_subscriber(operator)


@pytest.fixture(autouse=True)
def _no_jobs_left_behind(request: Any) -> Any:
    """Procrastinate's tables are not flushed between transactional tests: drop the send jobs a test
    queued but never ran, so none runs in a later test."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    from procrastinate.contrib.django import app

    for job in app.job_manager.list_jobs(status="todo"):
        assert job.id is not None
        app.job_manager.cancel_job_by_id(job.id, delete_job=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, as the console's browser tests run it; a missing browser
    fails the test rather than skipping it."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield launched
            finally:
                launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
