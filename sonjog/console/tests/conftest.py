"""A small ISP tree for console tests: a root ISP with two resellers, each with a package, a zone and
subscribers, and staff logins of every role, all made through the real services."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.customers.models import Subscriber, Zone
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create, staff_create

PASSWORD = "console-pass-123"


@dataclass
class Branch:
    operator: Operator
    package: Package
    zone: Zone
    subscribers: list[Subscriber] = field(default_factory=list)
    staff: dict[str, User] = field(default_factory=dict)


@dataclass
class Tree:
    root: Branch
    north: Branch
    south: Branch

    def login(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client


def _branch(operator: Operator, label: str) -> Branch:
    package = make_package(operator, "1000.00", vat=False, name=f"{label} 10M")
    zone = Zone.objects.create(operator=operator, name=f"{label} zone")
    return Branch(operator=operator, package=package, zone=zone)


def add_staff(branch: Branch, role: str, **options: Any) -> User:
    user = staff_create(
        operator=branch.operator,
        username=f"{role}-{branch.operator.code}",
        password=PASSWORD,
        role=role,
        **options,
    ).user
    branch.staff[role] = user
    return user


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Cached closed-period sums belong to one test's data."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """PBKDF2 takes a quarter of a second per login made; these tests make dozens."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_jobs_left_behind(request: Any) -> Any:
    """Procrastinate's tables are not flushed between transactional tests: drop jobs a test queued
    but never ran, so none runs in a later test."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    from procrastinate.contrib.django import app

    for job in app.job_manager.list_jobs(status="todo"):
        assert job.id is not None
        app.job_manager.cancel_job_by_id(job.id, delete_job=True)


@pytest.fixture
def tree(db: None) -> Tree:
    root_operator = make_operator(vat_rate=Decimal("0"))
    north_operator = operator_create(
        code=f"{root_operator.code}-north", name="North reseller", parent=root_operator, customer_id_prefix="NR"
    )
    south_operator = operator_create(
        code=f"{root_operator.code}-south", name="South reseller", parent=root_operator, customer_id_prefix="SR"
    )
    result = Tree(_branch(root_operator, "Root"), _branch(north_operator, "North"), _branch(south_operator, "South"))
    for branch in (result.root, result.north, result.south):
        today = operator_today(branch.operator)
        branch.subscribers = [
            make_subscriber(branch.operator, branch.package, today - dt.timedelta(days=40), zone=branch.zone),
            make_subscriber(branch.operator, branch.package, today - dt.timedelta(days=5), zone=branch.zone),
        ]
    add_staff(result.root, "owner")
    add_staff(result.root, "billing_clerk")
    add_staff(result.north, "reseller_staff")
    add_staff(result.north, "billing_clerk")
    add_staff(result.north, "collector")
    add_staff(result.north, "support")
    add_staff(result.south, "billing_clerk")
    return result


# -- browsers ---------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright. It must be installed (CI installs it); a missing
    browser fails the test rather than skipping it."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running on this thread; the ORM calls the tests make
    # between browser steps are ordinary synchronous code.
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


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


OPERATOR_SETTINGS = (
    "name",
    "currency",
    "time_zone",
    "phone_country",
    "customer_id_prefix",
    "customer_id_infix",
    "customer_id_postfix",
    "customer_id_digits",
    "billing_mode",
    "billing_cycle",
    "billing_day",
    "due_days",
    "grace_days",
    "vat_rate",
    "bin_number",
    "document_address",
    "document_phone",
)


def operator_form_data(operator: Operator) -> dict[str, str]:
    """An operator's edit form (its settings) as the browser posts it."""
    return {
        **{name: str(getattr(operator, name)) for name in OPERATOR_SETTINGS},
        "vat_inclusive": "inclusive" if operator.vat_inclusive else "exclusive",
    }
