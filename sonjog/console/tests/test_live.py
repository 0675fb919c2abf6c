"""Live dashboard: a payment recorded elsewhere (another connection, through the service) reaches an
open dashboard without a reload, by NOTIFY -> LISTEN -> Server-Sent Events from the ASGI app."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal

import pytest
from django.test import Client
from playwright.sync_api import expect

from sonjog.conftest import make_operator, make_package, make_subscriber, process_env
from sonjog.console.tests.conftest import screenshot
from sonjog.customers.models import Zone
from sonjog.flows.payments import payment_receive
from sonjog.operators.services import operator_create, staff_create

# The dashboard is served by uvicorn in its own process, on the real clock; nothing here depends on
# the date (the payment lands in whatever period both processes call today).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_clock]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_env() -> dict[str, str]:
    """The environment of a real server process talking to this test database."""
    env = process_env()
    # Static files straight from the apps (no collectstatic in a test run).
    env["SONJOG_DEBUG"] = "true"
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


@pytest.fixture
def uvicorn_server(transactional_db):
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "sonjog.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=_server_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"uvicorn exited with {process.returncode}: {output}")
            try:
                with urllib.request.urlopen(base + "/login/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 60 seconds")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_payment_elsewhere_updates_the_open_dashboard(uvicorn_server, browser):
    root = make_operator(vat_rate=Decimal("0"))
    reseller = operator_create(code=f"{root.code}-r", name="Reseller", parent=root, customer_id_prefix="RS")
    package = make_package(root, "1000.00", vat=False)
    zone = Zone.objects.create(operator=root, name="Mirpur")
    import datetime as dt

    from sonjog.billing.terms import operator_today

    subscriber = make_subscriber(root, package, operator_today(root) - dt.timedelta(days=3), zone=zone)
    outsider = make_subscriber(reseller, make_package(reseller, "500.00", vat=False), operator_today(root))
    owner = staff_create(operator=reseller, username="reseller-owner", password="x-long-pass-1", role="owner").user

    # The reseller's owner has the dashboard open; a session made here is valid in the server process.
    client = Client()
    client.force_login(owner)
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": uvicorn_server}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(uvicorn_server + "/")
    expect(page.locator("#live-status .live-on")).to_be_visible()
    collected = page.locator("#card-collected .value")
    expect(collected).to_have_text("৳0")
    page.evaluate("window.__notReloaded = true")

    # Money in another operator's subtree (the root's own subscriber) does not concern this viewer.
    payment_receive(subscriber=subscriber, amount=Decimal("150.00"), method="cash")
    page.wait_for_timeout(1500)
    expect(collected).to_have_text("৳0")

    # A payment for one of the reseller's subscribers, recorded on another connection, arrives live.
    payment_receive(subscriber=outsider, amount=Decimal("250.00"), method="bkash")
    expect(collected).to_have_text("৳250")
    expect(page.locator("#card-today .value")).to_have_text("৳250")
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "dashboard-live")
    context.close()
