"""The console in a real browser (Debian's Chromium through Playwright), used the way a new ISP clerk
would: sign in, add a subscriber, see the first bill, take cash, meet the duplicate guard, generate
next month, reverse a payment and watch the statement follow, find people, switch to Bangla.
Screenshots of the main pages land in docs/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from sonjog.billing.models import LedgerEntry, Payment, Statement
from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.console.tests.conftest import PASSWORD, screenshot
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import Subscriber, Zone
from sonjog.flows.payments import payment_receive
from sonjog.network.models import OutboxCommand, OutboxStatus
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def _isp():
    """A small ISP with a few months of history, so the pages have something to show."""
    operator = make_operator(vat_rate=Decimal("0"), customer_id_prefix="DN")
    package = make_package(operator, "1000.00", vat=False, name="Home 10 Mbps")
    make_package(operator, "1500.00", vat=False, name="Family 20 Mbps")
    zone = Zone.objects.create(operator=operator, name="Mirpur")
    Zone.objects.create(operator=operator, name="Uttara")
    today = operator_today(operator)
    for days in (200, 150, 95, 60, 33):
        subscriber = make_subscriber(operator, package, today - dt.timedelta(days=days), zone=zone)
        for statement in list(Statement.objects.filter(subscriber=subscriber, billed__gt=0).order_by("period_month"))[
            :-1
        ]:
            payment_receive(subscriber=subscriber, amount=statement.billed, method="bkash", confirm_duplicate=True)
    clerk = staff_create(operator=operator, username="rina", password=PASSWORD, role="billing_clerk").user
    owner = staff_create(operator=operator, username="karim", password=PASSWORD, role="owner").user
    return operator, package, zone, clerk, owner, today


def _sign_in(page, base, username, lands_on="Dashboard"):
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("main h1")).to_have_text(lands_on)


def _cell(page, period, column):
    """A statement figure as shown: columns are opening, billed, paid, adjusted, closing."""
    index = {"opening": 2, "billed": 3, "paid": 4, "adjusted": 5, "closing": 6}[column]
    return page.locator(f"#statement tr[data-period='{period}'] td:nth-child({index})").inner_text().strip()


def test_a_new_clerk_works_through_the_day(live_server, browser):
    _operator, _package, _zone, clerk, _owner, today = _isp()
    base = live_server.url
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)

    # A billing clerk lands on billing (ADR 0013); the dashboard is one click away.
    _sign_in(page, base, clerk.username, lands_on="Period summary")
    page.click("nav >> text=Dashboard")
    expect(page.locator("#card-running .value")).to_have_text("5")
    page.wait_for_selector("#chart svg")
    screenshot(page, "dashboard")

    # A new subscriber: activation bills the first, prorated period at once.
    page.click("nav >> text=New subscriber")
    page.fill("#id_name", "Ayesha Siddiqua")
    page.fill("#id_phone", "01812-345678")
    page.select_option("#id_package", label="Home 10 Mbps (৳1,000.00)")
    page.select_option("#id_zone", label="Mirpur")
    page.click("button:has-text('Create subscriber')")
    expect(page.locator(".alert-success")).to_contain_text("created")
    subscriber = Subscriber.objects.get(name="Ayesha Siddiqua")
    profile_url = page.url
    first_bill = LedgerEntry.objects.get(subscriber=subscriber, kind="bill")
    expect(page.locator("#bills tbody tr")).to_have_count(1)
    expect(page.locator("#bills")).to_contain_text(f"৳{first_bill.amount:,.2f}")
    expect(page.locator("#bills")).to_contain_text("INV-")
    period = f"{first_bill.period_month:%Y-%m}"
    assert _cell(page, period, "closing") == f"৳{first_bill.amount:,.2f}"
    screenshot(page, "profile")

    # Cash for the first bill; the amount is already filled in with what is owed.
    page.click("#profile-actions >> text=Record payment")
    expect(page.locator("#id_amount")).to_have_value(f"{first_bill.amount}")
    page.select_option("#id_method", "cash")
    page.fill("#id_reference", "counter 1")
    page.click("#payment-form button:has-text('Record payment')")
    expect(page.locator("#receipt-amount")).to_have_text(f"৳{first_bill.amount:,.2f}")
    expect(page.locator("#receipt-balance")).to_have_text("৳0.00")
    screenshot(page, "receipt")

    # The same cash again within 30 seconds: the guard asks first, and "do not record" records nothing.
    page.goto(profile_url)
    page.click("#profile-actions >> text=Record payment")
    page.fill("#id_amount", f"{first_bill.amount}")
    page.select_option("#id_method", "cash")
    page.click("#payment-form button:has-text('Record payment')")
    expect(page.locator("#duplicate-guard")).to_contain_text("same payment twice")
    expect(page.locator("#confirm-duplicate")).to_be_visible()
    page.click("text=Do not record")
    assert Payment.objects.filter(subscriber=subscriber).count() == 1

    # Next month's invoices: a confirmation with the count first, then the five outcomes.
    next_month = add_months(month_start(today), 1)
    page.click("nav >> text=Generate invoices")
    page.fill("#id_period", f"{next_month:%Y-%m}")
    page.click("button:has-text('Check')")
    expect(page.locator("#would-create")).to_contain_text("6 invoices will be created")
    page.click("button:has-text('ahead of time')")  # next month has not started: billed ahead
    expect(page.locator("#outcome-created .value")).to_have_text("6")
    expect(page.locator("#outcome-backfilled .value")).to_have_text("0")
    expect(page.locator("#outcome-skipped-existing .value")).to_have_text("0")
    expect(page.locator("#outcome-future-joiners .value")).to_have_text("0")
    expect(page.locator("#outcome-errors .value")).to_have_text("0")
    page.click("nav >> text=Period summary")
    expect(page.locator("#period-summary")).to_be_visible()
    screenshot(page, "billing")

    # Reverse the cash with a reason: the payment's period owes again and the next period opens with it.
    page.goto(profile_url)
    assert _cell(page, period, "paid") == f"৳{first_bill.amount:,.2f}"
    assert _cell(page, f"{next_month:%Y-%m}", "opening") == "৳0.00"
    page.click("#payments >> text=Reverse")
    page.fill("#id_reason", "Note was counterfeit")
    page.click("button:has-text('Save')")
    expect(page.locator(".alert-success")).to_contain_text("reversed")
    assert _cell(page, period, "paid") == "৳0.00"
    assert _cell(page, period, "closing") == f"৳{first_bill.amount:,.2f}"
    assert _cell(page, f"{next_month:%Y-%m}", "opening") == f"৳{first_bill.amount:,.2f}"
    expect(page.locator("#payments tbody tr.reversed")).to_have_count(1)
    expect(page.locator("#activity")).to_contain_text("entry.reverse")

    # Finding people: the list searches as you type.
    page.click("nav >> text=Subscribers")
    expect(page.locator("#subscriber-table tbody tr")).to_have_count(6)
    screenshot(page, "subscribers")
    page.fill("#id_q", "Ayesha")
    expect(page.locator("#subscriber-table tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=Ayesha"))

    # The collector's screen finds by phone number and goes straight to the payment form.
    page.click("nav >> text=Take a payment")
    page.fill("#collect-q", "01812345678")
    expect(page.locator("#collect-table")).to_contain_text("Ayesha Siddiqua")
    screenshot(page, "collection")

    # Bangla, kept for this login.
    page.select_option("#language-form select", "bn")
    expect(page.locator("main h1")).to_have_text("পেমেন্ট নিন")
    page.click("nav >> text=ড্যাশবোর্ড")
    expect(page.locator("main h1")).to_have_text("ড্যাশবোর্ড")
    expect(page.locator("#card-running .value")).to_have_text("৬")
    page.wait_for_selector("#chart svg")
    screenshot(page, "dashboard-bn")

    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state())
    small = phone.new_page()
    small.goto(profile_url)
    expect(small.locator("main h1")).to_contain_text("Ayesha Siddiqua")
    screenshot(small, "profile-phone")
    phone.close()
    context.close()


def test_routers_test_button_and_outbox_retry(live_server, browser):
    operator, _package, zone, _clerk, owner, _today = _isp()
    emulator = RouterOSEmulator(username="sonjog", password="r0uter").start()
    try:
        router = router_create(
            operator=operator,
            name="core-1",
            address="127.0.0.1",
            api_port=emulator.port,
            username="sonjog",
            password="r0uter",
        )
        router.zones.add(zone)
        broken = router_create(operator=operator, name="edge-2", address="127.0.0.1", api_port=1, password="x")
        subscriber = Subscriber.objects.filter(operator=operator).earliest("pk")
        failed = OutboxCommand.objects.create(
            subscriber=subscriber,
            router=broken,
            status=OutboxStatus.FAILED,
            requested_by="test",
            requested_at=today_start(),
            next_attempt_at=today_start(),
            attempts=10,
            last_error="connection refused",
        )
        page = browser.new_context(viewport=LAPTOP).new_page()
        page.set_default_timeout(15_000)
        _sign_in(page, live_server.url, owner.username)
        page.click("nav >> text=Routers")
        page.click("button[data-test-router='core-1']")
        expect(page.locator(".alert-success")).to_contain_text("core-1 answered in")
        page.click("button[data-test-router='edge-2']")
        expect(page.locator(".alert-error")).to_contain_text("edge-2")
        screenshot(page, "routers")
        page.goto(live_server.url + "/network/outbox/?status=failed")
        page.click("#outbox-table button:has-text('Retry')")
        expect(page.locator(".alert-success")).to_contain_text(f"Command #{failed.pk} queued again")
        failed.refresh_from_db()
        assert failed.status == OutboxStatus.PENDING and failed.attempts == 0
    finally:
        emulator.stop()


def today_start():
    from django.utils import timezone

    return timezone.now()
