"""The suspension portal end to end, over real HTTP: a suspended subscriber's browser is sent to
/suspended/ (known by its session's address), pays there by bKash on the emulator's checkout page,
comes back, and is reconnected on the RouterOS emulator while bKash's signed webhook arrives twice
and late: one payment. The same with SSLCommerz (its IPN twice) and Nagad (its callback)."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from sonjog.billing.models import Payment
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_operator
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import ServiceIntent, SessionState, Subscriber, Zone
from sonjog.flows.enforcement import overdue_sweep
from sonjog.flows.subscribers import subscriber_create
from sonjog.gateways.emulator.bkash import PAYER_PIN, BkashEmulator
from sonjog.gateways.emulator.sslcommerz import SslcommerzEmulator
from sonjog.gateways.models import AttemptState, InboundRequest, PaymentAttempt
from sonjog.gateways.services import gateway_account_create
from sonjog.network.models import ProfileCommand
from sonjog.network.profiles import profile_execute
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_clock]

BKASH = {"username": "isp", "password": "pw", "app_key": "k", "app_secret": "s"}
ADDRESS = "100.64.0.23"


@pytest.fixture
def router_emulator() -> Iterator[RouterOSEmulator]:
    emulator = RouterOSEmulator(username="sonjog", password="r0uter").start()
    emulator.add_profile("10m", rate_limit="10240k/10240k")
    emulator.add_profile("suspended", rate_limit="256k/256k")
    try:
        yield emulator
    finally:
        emulator.stop()


class SuspendedHome:
    """An ISP on a router, and one of its subscribers cut off for an overdue bill, online at ADDRESS."""

    def __init__(self, router_emulator: RouterOSEmulator) -> None:
        self.operator = make_operator(vat_rate=Decimal("0"), grace_days=3, due_days=7)
        self.package = Package.objects.create(
            operator=self.operator,
            name="Home 10",
            price=Decimal("700.00"),
            download_kbps=10240,
            upload_kbps=10240,
            router_profile="10m",
            vat_applicable=False,
        )
        zone = Zone.objects.create(operator=self.operator, name="Mirpur")
        self.router = router_create(
            operator=self.operator,
            name="core",
            address="127.0.0.1",
            api_port=router_emulator.port,
            username="sonjog",
            password="r0uter",
        )
        self.router.zones.add(zone)
        for command_id in ProfileCommand.objects.filter(router=self.router).values_list("pk", flat=True):
            profile_execute(command_id)
        today = operator_today(self.operator)
        self.subscriber = subscriber_create(
            operator=self.operator,
            name="Karim",
            phone="01712345678",
            package=self.package,
            zone=zone,
            activation_date=today - dt.timedelta(days=45),
        )
        run_worker_cycle()
        assert self.subscriber.pk in overdue_sweep(operator=self.operator)["subscriber_ids"]
        run_worker_cycle()
        self.emulator = router_emulator
        assert self.secret_disabled_or_suspended()
        # What the reconciler records from /ppp/active: the session's address.
        Subscriber.objects.filter(pk=self.subscriber.pk).update(
            session_state=SessionState.ONLINE, session_ip=ADDRESS, session_state_at=timezone.now()
        )

    def secret_disabled_or_suspended(self) -> bool:
        secret = self.emulator.secret(self.subscriber.pppoe_username)
        assert secret is not None
        return secret.get("disabled") == "true" or secret.get("profile") == "suspended"


def _wait(condition, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _gateway_address(response: Any) -> str:
    assert response.status_code == 200
    found = re.search(r'id="pay-continue" href="([^"]+)"', response.content.decode())
    assert found is not None
    return html.unescape(found[1])


def _pay_buttons(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)">', html)


def test_a_suspended_subscriber_pays_by_bkash_on_the_suspension_page_and_is_back_online(
    router_emulator, live_server, settings
):
    settings.SONJOG_GATEWAY_CERT_HOSTS = ["127.0.0.1"]
    home = SuspendedHome(router_emulator)
    bkash = BkashEmulator(
        webhook_url=f"{live_server.url}/hooks/gateways/bkash/",
        notify_times=2,
        notify_delay=0.5,
        username=BKASH["username"],
        password=BKASH["password"],
        app_key=BKASH["app_key"],
        app_secret=BKASH["app_secret"],
    ).start()
    try:
        account = gateway_account_create(
            operator=home.operator,
            gateway="bkash",
            name="bKash",
            base_url=bkash.api_url,
            merchant_account=bkash.short_code,
            credentials=BKASH,
        )
        browser = httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=15)
        # The router sends the suspended browser to the portal; the portal knows it by its address.
        # (The live server sees 127.0.0.1, so the visit is made as the router's dst-nat would show it.)
        client = Client(REMOTE_ADDR=ADDRESS)
        page = client.get("/suspended/")
        assert page.status_code == 200
        text = page.content.decode()
        owed = subscriber_balance(home.subscriber.pk)
        assert 'data-reason="overdue"' in text and "Karim" in text
        (action,) = _pay_buttons(text)
        assert action == f"/suspended/pay/{account.pk}/"
        started = client.post(action, HTTP_HOST=live_server.url.removeprefix("http://"))
        # A page of ours moves on to the gateway (a redirect after a form post would break the CSP's
        # form-action in a browser).
        gateway_page = _gateway_address(started)
        assert gateway_page.startswith(bkash.url)
        attempt = PaymentAttempt.objects.get(subscriber=home.subscriber)
        assert attempt.amount == owed and attempt.source == "suspension"

        # The payer on bKash's page: wallet, PIN, Confirm; bKash sends the browser back to us.
        checkout = httpx.get(gateway_page, timeout=10)
        assert checkout.status_code == 200
        assert attempt.gateway_payment_id in checkout.text
        confirm = httpx.post(
            f"{bkash.url}/redirect/tokenized/",
            data={
                "paymentID": attempt.gateway_payment_id,
                "wallet": "01770618575",
                "pin": PAYER_PIN,
                "action": "confirm",
            },
            timeout=10,
        )
        assert confirm.status_code in (302, 303), confirm.text
        back = confirm.headers["Location"]
        assert back.startswith(f"{live_server.url}/pay/{attempt.merchant_reference}/return/")
        returned = browser.get(back.removeprefix(live_server.url))
        assert returned.status_code == 302
        status_url = returned.headers["Location"]

        attempt.refresh_from_db()
        assert attempt.state == AttemptState.APPLIED
        status = browser.get(status_url).text
        assert 'data-stage="reconnecting"' in status or 'data-stage="online"' in status
        run_worker_cycle()  # the worker runs the reconnection on the router
        assert not home.secret_disabled_or_suspended()
        assert 'data-stage="online"' in browser.get(status_url).text

        # bKash's webhook, twice and late, after the return settled it: still one payment.
        _wait(lambda: len(bkash.notifications) >= 2)
        assert [status for _url, status in bkash.notifications] == [200, 200]
        assert Payment.objects.filter(subscriber=home.subscriber).count() == 1
        webhooks = InboundRequest.objects.filter(attempt=attempt, kind="webhook")
        assert webhooks.count() == 2 and set(webhooks.values_list("outcome", flat=True)) == {"applied"}
        home.subscriber.refresh_from_db()
        assert home.subscriber.service_intent == ServiceIntent.ACTIVE
    finally:
        bkash.stop()


def test_sslcommerz_ipns_twice_and_a_forged_one(router_emulator, live_server):
    home = SuspendedHome(router_emulator)
    ssl = SslcommerzEmulator(stores={"isp01": "isp01@ssl"}, ipn_times=2, ipn_delay=0.3).start()
    try:
        account = gateway_account_create(
            operator=home.operator,
            gateway="sslcommerz",
            name="SSLCommerz",
            base_url=ssl.url,
            merchant_account="isp01",
            credentials={"store_id": "isp01", "store_password": "isp01@ssl"},
        )
        client = Client(REMOTE_ADDR=ADDRESS)
        started = client.post(f"/suspended/pay/{account.pk}/", HTTP_HOST=live_server.url.removeprefix("http://"))
        assert _gateway_address(started).startswith(ssl.url)
        attempt = PaymentAttempt.objects.get(subscriber=home.subscriber)
        # A forged IPN (no valid verify_sign) is stored and refused, and changes nothing.
        forged = httpx.post(
            f"{live_server.url}/hooks/gateways/sslcommerz/",
            data={"tran_id": attempt.merchant_reference, "val_id": "x", "status": "VALID", "amount": "1.00"},
            timeout=10,
        )
        assert forged.status_code == 400
        assert InboundRequest.objects.get(kind="ipn").outcome == "bad_signature"
        attempt.refresh_from_db()
        assert attempt.state == AttemptState.PENDING

        ssl.pay(attempt.gateway_payment_id)  # the payer pays; the IPN comes twice
        _wait(lambda: len(ssl.notifications) >= 2)
        assert [status for _url, status in ssl.notifications] == [200, 200]
        attempt.refresh_from_db()
        assert attempt.state == AttemptState.APPLIED
        assert Payment.objects.filter(subscriber=home.subscriber).count() == 1
        assert Payment.objects.get(subscriber=home.subscriber).gateway_transaction_id == attempt.transaction_id
    finally:
        ssl.stop()


def test_the_suspension_page_knows_nobody_at_an_unknown_address_and_pays_for_nobody(router_emulator):
    home = SuspendedHome(router_emulator)
    stranger = Client(REMOTE_ADDR="100.64.9.9")
    assert stranger.get("/suspended/").status_code == 404
    assert stranger.post("/suspended/pay/1/").status_code == 404
    assert not PaymentAttempt.objects.exists()
    assert urllib.parse.quote(home.subscriber.customer_id) not in stranger.get("/suspended/").content.decode()


@pytest.mark.parametrize(("gateway", "status"), [("bkash", 400), ("nagad", 404), ("sslcommerz", 404), ("paypal", 404)])
def test_junk_at_a_gateway_hook_is_stored_refused_and_changes_nothing(gateway, status):
    answer = Client().post(f"/hooks/gateways/{gateway}/", {"tran_id": "SJ" + "1" * 18, "amount": "1.00"})
    assert answer.status_code == status
    assert not PaymentAttempt.objects.exists() and not Payment.objects.exists()
    if gateway != "paypal":
        (stored,) = InboundRequest.objects.all()
        assert stored.body and stored.outcome in {"unknown_reference", "not_supported", "bad_signature", "not_json"}
