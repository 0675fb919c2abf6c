"""Staff in a real browser (Debian's Chromium through Playwright): an ISP's owner creates a field
collector on the Staff page and reads the generated password off the screen once; the collector signs
in on a phone and lands on "Take a payment", with no dashboard figures in its menu. Screenshots land
in docs/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.console.tests.conftest import PASSWORD, screenshot
from sonjog.customers.models import Zone
from sonjog.operators.models import Staff
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def _sign_in(page, base, username, password):
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button:has-text('Sign in')")


def test_an_owner_creates_a_collector_who_lands_on_take_a_payment_on_a_phone(live_server, browser):
    operator = make_operator(vat_rate=Decimal("0"), customer_id_prefix="FC")
    package = make_package(operator, "800.00", vat=False, name="Home 8 Mbps")
    zone = Zone.objects.create(operator=operator, name="Mirpur")
    make_subscriber(operator, package, operator_today(operator) - dt.timedelta(days=20), zone=zone)
    owner = staff_create(operator=operator, username="karim", password=PASSWORD, role="owner").user
    base = live_server.url

    office = browser.new_context(viewport=LAPTOP)
    page = office.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, base, owner.username, PASSWORD)
    expect(page.locator("main h1")).to_have_text("Dashboard")
    page.click("nav >> text=Staff")
    expect(page.locator("main h1")).to_have_text("Staff")
    expect(page.locator("#staff-table")).to_contain_text("karim")
    page.click("text=New staff login")
    page.fill("#id_username", "jamal")
    page.fill("#id_name", "Jamal Hossain")
    page.fill("#id_phone", "01711 000111")
    page.select_option("#id_role", "collector")
    expect(page.locator("input[name=password_choice][value=generate]")).to_be_checked()
    page.click("main button:has-text('Save')")
    expect(page.locator("main h1")).to_have_text("Staff login jamal created")
    password = page.locator("#shown-password").inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{4}-[A-Za-z0-9]{4}-[A-Za-z0-9]{4}", password)
    screenshot(page, "staff-created")
    staff = Staff.objects.select_related("user").get(user__username="jamal")
    assert staff.role == "collector" and staff.phone == "+8801711000111"
    page.click("text=Done")
    expect(page.locator("#staff-table")).to_contain_text("jamal")
    expect(page.locator("#staff-table tr[data-username=jamal]")).to_contain_text("Never")
    screenshot(page, "staff")
    # The collector's role as its operator has it: takes payments, sees no payments list.
    page.click("text=Roles and permissions")
    page.click("nav.actions-row >> text=Collector")
    expect(page.locator("#role-form h2")).to_have_text("Collector")
    expect(page.locator("#id_cell_payments_act")).to_be_checked()
    expect(page.locator("#id_cell_payments_view")).not_to_be_checked()
    expect(page.locator("#id_cell_dashboard_view")).not_to_be_checked()
    screenshot(page, "roles-matrix")
    office.close()

    phone = browser.new_context(viewport=PHONE)
    page = phone.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, base, "jamal", password)
    expect(page).to_have_url(re.compile(r"/collect/$"))
    expect(page.locator("main h1")).to_have_text("Take a payment")
    page.fill("#collect-q", "FC")
    expect(page.locator("#collect-results")).to_contain_text("FC")
    menu = page.locator("nav.sidebar")
    expect(menu).not_to_contain_text("Dashboard")
    expect(menu).not_to_contain_text("Payments")
    expect(menu).to_contain_text("My day sheet")
    screenshot(page, "collector-phone")
    # The front page leads back to the collector's own work, never to the ISP's figures.
    page.goto(base + "/")
    expect(page.locator("main h1")).to_have_text("Take a payment")
    phone.close()
    staff.user.refresh_from_db()
    assert staff.user.last_login is not None
