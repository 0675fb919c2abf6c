"""The first run in a real browser (Debian's Chromium through Playwright): a new ISP owner opens the
console of an empty installation, lands on the first-run page, sets up the ISP and its owner, arrives
signed in on the dashboard, and creates a reseller that appears on the Operators page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sonjog.console.tests.conftest import screenshot
from sonjog.operators.models import Operator, Staff

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}
PASSWORD = "Jamuna-bridge-2026"


def test_a_new_isp_sets_up_from_an_empty_database_and_adds_a_reseller(live_server, browser):
    assert not Operator.objects.exists()
    base = live_server.url
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)

    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    expect(page.locator("h1")).to_have_text("Set up your ISP")
    expect(page.locator("#id_currency")).to_have_value("BDT")
    expect(page.locator("#id_time_zone")).to_have_value("Asia/Dhaka")

    page.fill("#id_code", "dhakanet")
    page.fill("#id_name", "DhakaNet Broadband")
    page.fill("#id_customer_id_prefix", "DN")
    page.select_option("#id_billing_mode", "monthly")
    page.fill("#id_vat_rate", "7.5")
    page.select_option("#id_vat_inclusive", "exclusive")
    page.fill("#id_bin_number", "000123456-0101")
    page.fill("#id_document_address", "House 12, Road 5, Dhanmondi, Dhaka")
    page.fill("#id_owner_username", "karim")
    page.fill("#id_owner_password", "short")
    page.click("button:has-text('Set up and sign in')")
    # The installation's password rules, as at every sign-in: nothing is created yet.
    expect(page.locator("#field-owner_password .errorlist")).to_be_visible()
    assert not Operator.objects.exists()
    screenshot(page, "setup")

    page.fill("#id_owner_password", PASSWORD)
    page.click("button:has-text('Set up and sign in')")
    expect(page.locator("main h1")).to_have_text("Dashboard")
    expect(page.locator("header .operator")).to_have_text("DhakaNet Broadband")
    root = Operator.objects.get()
    assert (root.code, str(root.vat_rate), root.vat_inclusive) == ("dhakanet", "7.50", False)
    assert Staff.objects.get().user.username == "karim"

    page.click("nav >> text=Operators")
    expect(page.locator("main h1")).to_have_text("Operators")
    page.click("text=New reseller")
    expect(page.locator("#id_parent")).to_have_value(str(root.pk))
    expect(page.locator("#id_vat_rate")).to_have_value("7.50")  # a reseller starts from its parent's settings
    page.fill("#id_code", "dhakanet-mirpur")
    page.fill("#id_name", "Mirpur Link")
    page.fill("#id_customer_id_prefix", "MP")
    page.uncheck("input[name=modules][value=network]")
    page.fill("#id_owner_username", "mirpur-owner")
    page.fill("#id_owner_password", PASSWORD)
    page.click("button:has-text('Save')")

    expect(page.locator("main h1")).to_have_text("Operators")
    row = page.locator("tr[data-operator='dhakanet-mirpur']")
    expect(row).to_contain_text("Mirpur Link")
    expect(row).to_contain_text("Active")
    expect(page.locator(".alert-success")).to_contain_text("Reseller Mirpur Link created.")
    screenshot(page, "operators")
    reseller = Operator.objects.get(code="dhakanet-mirpur")
    assert reseller.parent == root and "network" not in reseller.modules
    assert Staff.objects.get(user__username="mirpur-owner").operator == reseller

    # The first-run page is gone now.
    response = page.goto(base + "/setup/")
    assert response is not None and response.status == 404
    context.close()
