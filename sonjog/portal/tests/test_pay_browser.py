"""Paying online in a real browser (Debian's Chromium through Playwright) on a 360 px phone, in Bangla.

A subscriber cut off for an overdue bill signs in to the portal with the SMS code, taps the bKash
button, pays on the bKash emulator's checkout page and comes back to the status page, which reloads
itself until the worker has run the reconnection on the RouterOS emulator. The same subscriber,
not signed in, is sent to the suspension page (known by the session's address) and pays there on
SSLCommerz's page. A checkout cancelled at bKash records nothing and says so.

These tests share time with the browser, the gateway emulators and the worker, so they run on the
real clock (`real_clock`) and assert nothing that depends on the date. Playwright's sync API keeps
an event loop running on the test's thread, so whatever runs the worker (which runs its own loop)
does it on a thread of its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from django.db import connections
from django.utils import timezone, translation
from playwright.sync_api import Page, expect

from sonjog.billing.models import Payment
from sonjog.billing.selectors import subscriber_balance
from sonjog.console.tests.conftest import screenshot
from sonjog.core.formatting import money
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import ServiceIntent, SessionState, Subscriber
from sonjog.gateways.emulator.bkash import PAYER_PIN, PAYER_WALLET, BkashEmulator
from sonjog.gateways.emulator.sslcommerz import SslcommerzEmulator
from sonjog.gateways.models import AttemptState, GatewayAccount, PaymentAttempt
from sonjog.gateways.services import gateway_account_create
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.notifications.loopback import LoopbackGateway
from sonjog.notifications.models import Event, Message
from sonjog.notifications.services import provider_account_create, sms_credit_add
from sonjog.operators.models import Operator
from sonjog.portal.tests.conftest import last_code
from sonjog.portal.tests.test_online_payment import BKASH, SuspendedHome

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_clock]

PHONE = {"width": 360, "height": 740}
BENGALI_DIGIT = re.compile("[০-৯]")
SSL_STORE = {"store_id": "isp01", "store_password": "isp01@ssl"}
T = TypeVar("T")


@pytest.fixture
def router_emulator() -> Iterator[RouterOSEmulator]:
    emulator = RouterOSEmulator(username="sonjog", password="r0uter").start()
    emulator.add_profile("10m", rate_limit="10240k/10240k")
    emulator.add_profile("suspended", rate_limit="256k/256k")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def sms_gateway() -> Iterator[LoopbackGateway]:
    """Where the operator's SMS go when the worker sends them: a local gateway that accepts them all."""
    gateway = LoopbackGateway().start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def bkash() -> Iterator[BkashEmulator]:
    emulator = BkashEmulator(
        username=BKASH["username"], password=BKASH["password"], app_key=BKASH["app_key"], app_secret=BKASH["app_secret"]
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def _on_a_thread(work: Callable[[], T]) -> T:
    """Run `work` on a thread of its own and hand back what it returned: the worker runs an event loop
    of its own, which cannot start on the test's thread while Playwright's is running there."""
    results: list[T] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as error:  # re-raised on the test's thread
            failures.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the work did not finish"
    if failures:
        raise failures[0]
    return results[0]


def _suspended_home(router_emulator: RouterOSEmulator, sms_gateway: LoopbackGateway) -> SuspendedHome:
    """test_online_payment's suspended subscriber (the suspension runs the worker, so on a thread),
    whose operator can send SMS: the sign-in code and the "payment received" message."""
    home = _on_a_thread(lambda: SuspendedHome(router_emulator))
    _sms_enable(home.operator, sms_gateway)
    return home


def _sms_enable(operator: Operator, sms_gateway: LoopbackGateway) -> None:
    provider_account_create(
        operator=operator,
        name="SMS",
        kind="generic_http",
        sender_id="ISP",
        credentials={"api_key": "k"},
        base_url=sms_gateway.url,
        options=LoopbackGateway.account_options(),
        cost_per_segment=Decimal("0.25"),
    )
    sms_credit_add(operator=operator, amount=Decimal("100.00"), note="test credit")


def _bkash_account(operator: Operator, bkash: BkashEmulator) -> GatewayAccount:
    return gateway_account_create(
        operator=operator,
        gateway="bkash",
        name="bKash",
        base_url=bkash.api_url,
        merchant_account=bkash.short_code,
        credentials=BKASH,
    )


def _in_bangla(amount: Decimal) -> str:
    """What the portal writes for `amount` to a Bangla reader: ৳ and Bengali digits."""
    with translation.override("bn"):
        return money(amount)


def _bangla_text(message: str) -> str:
    """The portal's text for a Bangla reader (English where the catalogue has no translation yet)."""
    with translation.override("bn"):
        return translation.gettext(message)


def _phone(browser: Any) -> tuple[Any, Page]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def _switch_to_bangla(page: Page) -> None:
    """The header's language button, whatever page it is on (it names the other language)."""
    page.click("#language-form button[value=bn]")
    expect(page.locator("html")).to_have_attribute("lang", "bn")


def _sign_in(page: Page, base_url: str, subscriber: Subscriber) -> None:
    page.goto(base_url + "/my/")
    _switch_to_bangla(page)
    page.fill("#id_who", subscriber.customer_id)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#code-form")).to_be_visible()
    page.fill("#id_code", last_code(subscriber))
    page.click("#code-form button[type=submit]")
    expect(page.locator("#owed")).to_be_visible()


def _pay_button(page: Page, action: str) -> Any:
    """The pay button of one gateway, found by its form's address (its label is translated)."""
    return page.locator(f"#pay-now form[action='{action}']").get_by_role("button")


def _pay_on_bkash(page: Page, bkash: BkashEmulator, *, confirm: bool) -> None:
    """The payer on bKash's checkout page: wallet and PIN, then Confirm (or Cancel)."""
    expect(page).to_have_url(re.compile("^" + re.escape(f"{bkash.url}/redirect/tokenized/")))
    page.fill("input[name=wallet]", PAYER_WALLET)
    page.fill("input[name=pin]", PAYER_PIN)
    page.get_by_role("button", name="Confirm" if confirm else "Cancel").click()


def _expect_status_page(page: Page, base_url: str, attempt: PaymentAttempt) -> None:
    expect(page).to_have_url(f"{base_url}/pay/{attempt.merchant_reference}/")
    expect(page.locator("html")).to_have_attribute("lang", "bn")
    expect(page.locator("#pay-amount")).to_have_text(_in_bangla(attempt.gross))


def _reconnected(page: Page, home: SuspendedHome) -> None:
    """The status page says "reconnecting" until the worker runs the router command, then, reloading
    itself, "online"; the router's secret is on the subscriber's own profile again."""
    progress = page.locator("#pay-progress")
    expect(progress).to_have_attribute("data-stage", "reconnecting")
    _on_a_thread(run_worker_cycle)
    expect(progress).to_have_attribute("data-stage", "online")
    expect(progress).to_have_text(_bangla_text("Payment confirmed. You are online."))
    secret = home.emulator.secret(home.subscriber.pppoe_username)
    assert secret is not None
    assert secret.get("disabled") != "true" and secret.get("profile") == "10m", secret
    home.subscriber.refresh_from_db()
    assert home.subscriber.service_intent == ServiceIntent.ACTIVE
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def _paid_once(home: SuspendedHome, attempt: PaymentAttempt, owed: Decimal) -> None:
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.APPLIED
    payment = Payment.objects.get(subscriber=home.subscriber)
    assert payment.pk == attempt.payment_id and payment.amount == owed
    assert subscriber_balance(home.subscriber.pk) == 0
    assert Message.objects.filter(subscriber=home.subscriber, event=Event.PAYMENT_RECEIVED).count() == 1


def test_a_suspended_subscriber_pays_by_bkash_from_the_portal_in_bangla_and_is_back_online(
    live_server, browser, router_emulator, sms_gateway, bkash
):
    home = _suspended_home(router_emulator, sms_gateway)
    account = _bkash_account(home.operator, bkash)
    owed = subscriber_balance(home.subscriber.pk)
    assert owed > 0
    context, page = _phone(browser)

    _sign_in(page, live_server.url, home.subscriber)
    expect(page.locator("#owed")).to_contain_text("এখন পাওনা")
    expect(page.locator("#owed-amount")).to_have_text(_in_bangla(owed))
    assert BENGALI_DIGIT.search(page.inner_text("#owed-amount"))
    pay = _pay_button(page, f"/pay/start/{account.pk}/")
    expect(pay).to_have_count(1)
    expect(pay).to_contain_text(_in_bangla(owed))
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    pay.tap()

    _pay_on_bkash(page, bkash, confirm=True)
    attempt = PaymentAttempt.objects.get(subscriber=home.subscriber)
    assert attempt.source == PaymentAttempt.Source.PORTAL and attempt.amount == owed
    _expect_status_page(page, live_server.url, attempt)
    _reconnected(page, home)
    _paid_once(home, attempt, owed)
    screenshot(page, "portal-pay-bn")
    context.close()


def test_the_suspension_page_in_bangla_pays_by_sslcommerz_and_reconnects(
    live_server, browser, router_emulator, sms_gateway, bkash
):
    home = _suspended_home(router_emulator, sms_gateway)
    # The live server sees the browser as 127.0.0.1: that is the session's address the router reported.
    Subscriber.objects.filter(pk=home.subscriber.pk).update(
        session_state=SessionState.ONLINE, session_ip="127.0.0.1", session_state_at=timezone.now()
    )
    bkash_account = _bkash_account(home.operator, bkash)
    ssl = SslcommerzEmulator(stores={SSL_STORE["store_id"]: SSL_STORE["store_password"]}).start()
    try:
        ssl_account = gateway_account_create(
            operator=home.operator,
            gateway="sslcommerz",
            name="SSLCommerz",
            base_url=ssl.url,
            merchant_account=SSL_STORE["store_id"],
            credentials=SSL_STORE,
        )
        owed = subscriber_balance(home.subscriber.pk)
        context, page = _phone(browser)

        page.goto(live_server.url + "/suspended/")
        _switch_to_bangla(page)
        expect(page.locator("#suspended")).to_have_attribute("data-reason", "overdue")
        expect(page.locator("#suspended")).to_contain_text(home.subscriber.customer_id)
        expect(page.locator("#suspended-why")).to_be_visible()
        expect(page.locator("#owed-amount")).to_have_text(_in_bangla(owed))
        expect(page.locator("#pay-now button")).to_have_count(2)
        expect(_pay_button(page, f"/suspended/pay/{bkash_account.pk}/")).to_contain_text(_in_bangla(owed))
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "suspension-page-bn")
        _pay_button(page, f"/suspended/pay/{ssl_account.pk}/").tap()

        # SSLCommerz's page (not translated, as the real one is not): a way to pay, then Pay; its
        # answer posts the signed fields back to the portal by itself.
        expect(page).to_have_url(re.compile("^" + re.escape(ssl.url)))
        page.get_by_role("button", name="Pay", exact=True).click()
        attempt = PaymentAttempt.objects.get(subscriber=home.subscriber)
        assert attempt.source == PaymentAttempt.Source.SUSPENSION and attempt.amount == owed
        _expect_status_page(page, live_server.url, attempt)
        _reconnected(page, home)
        _paid_once(home, attempt, owed)
        context.close()
    finally:
        ssl.stop()


def test_a_cancelled_bkash_checkout_records_nothing_and_says_so(
    live_server, browser, router_emulator, sms_gateway, bkash
):
    home = _suspended_home(router_emulator, sms_gateway)
    account = _bkash_account(home.operator, bkash)
    owed = subscriber_balance(home.subscriber.pk)
    context, page = _phone(browser)

    _sign_in(page, live_server.url, home.subscriber)
    _pay_button(page, f"/pay/start/{account.pk}/").tap()
    _pay_on_bkash(page, bkash, confirm=False)
    attempt = PaymentAttempt.objects.get(subscriber=home.subscriber)
    _expect_status_page(page, live_server.url, attempt)
    progress = page.locator("#pay-progress")
    expect(progress).to_have_attribute("data-stage", "failed")
    expect(progress).to_have_text(
        _bangla_text("The payment did not go through. No money was taken; you can try again.")
    )
    # The page has stopped reloading: nothing is coming.
    assert page.locator("#pay-progress meta[http-equiv=refresh]").count() == 0

    attempt.refresh_from_db()
    assert attempt.state == AttemptState.FAILED and attempt.payment_id is None
    assert not Payment.objects.filter(subscriber=home.subscriber).exists()
    assert subscriber_balance(home.subscriber.pk) == owed
    assert not Message.objects.filter(subscriber=home.subscriber, event=Event.PAYMENT_RECEIVED).exists()
    home.subscriber.refresh_from_db()
    assert home.subscriber.service_intent != ServiceIntent.ACTIVE
    context.close()
