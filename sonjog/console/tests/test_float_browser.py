"""A reseller's float in a real browser (Debian's Chromium through Playwright), clicking what people
click: the root ISP's owner tops up the reseller's float and gets a receipt; the reseller's clerk
adds subscribers until the float refuses the next one with what it would cost; the owner acts as
the reseller and sees the reseller's own dashboard figures, and the same in Bangla.

The reseller bills full first periods (no proration), so each sign-up costs its float exactly the
wholesale month price whatever day the test runs."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from sonjog.billing.models import FloatAccount, FloatEntry
from sonjog.billing.services.floats import float_account_open
from sonjog.catalog.services import package_wholesale_set
from sonjog.conftest import make_operator, make_package
from sonjog.console.tests.conftest import PASSWORD, screenshot
from sonjog.customers.models import Subscriber
from sonjog.operators.services import operator_create, staff_create

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}


def _tree():
    root = make_operator(vat_rate=Decimal("0"), customer_id_prefix="MG")
    reseller = operator_create(
        code=f"{root.code}-bhola",
        name="Bhola Link",
        parent=root,
        customer_id_prefix="BL",
        prorate_first_period=False,
    )
    wholesale = make_package(root, "700.00", vat=False, name="Wholesale 20M")
    retail = make_package(reseller, "900.00", vat=False, name="Bhola 20M")
    package_wholesale_set(package=retail, parent_package=wholesale, wholesale_price=Decimal("500.00"))
    float_account_open(operator=reseller, low_balance_alert=Decimal("300.00"))
    owner = staff_create(operator=root, username="karim", password=PASSWORD, role="owner").user
    clerk = staff_create(operator=reseller, username="bhola-rina", password=PASSWORD, role="reseller_staff").user
    return root, reseller, owner, clerk


def _sign_in(page, base, username):
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("main h1")).to_be_visible()


def _sign_up(page, base, name, phone):
    page.goto(base + "/")
    page.click("nav >> text=New subscriber")
    page.fill("#id_name", name)
    page.fill("#id_phone", phone)
    page.select_option("#id_package", label="Bhola 20M (৳900.00)")
    page.click("button:has-text('Create subscriber')")


def test_the_root_tops_up_the_reseller_adds_until_refused_and_the_root_acts_as_it(live_server, browser):
    _root, reseller, owner, clerk = _tree()
    base = live_server.url
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)

    # The owner tops up Bhola Link's float by bKash and gets a receipt.
    _sign_in(page, base, owner.username)
    page.click("nav >> text=Floats")
    row = page.locator(f"#floats-table tr[data-operator='{reseller.code}']")
    expect(row.locator("[data-balance]")).to_have_text("৳0.00")
    row.locator("text=Open").click()
    page.fill("#id_topup-amount", "1200")
    page.select_option("#id_topup-method", "bkash")
    page.click("#float-topup-form button:has-text('Record the top-up')")
    # A mobile-money top-up needs its transaction id: said on the form, nothing written.
    expect(page.locator("#float-topup-form")).to_contain_text("needs its transaction reference")
    assert not FloatEntry.objects.exists()
    page.fill("#id_topup-reference", "9BK7TX0042")
    page.click("#float-topup-form button:has-text('Record the top-up')")
    expect(page.locator("#float-receipt [data-amount]")).to_have_text("৳1,200.00")
    expect(page.locator("#float-receipt [data-balance-after]")).to_have_text("৳1,200.00")
    screenshot(page, "float-topup")

    # The reseller's clerk adds subscribers: two fit (500.00 each at the parent), the third is refused.
    clerk_context = browser.new_context(viewport=LAPTOP)
    clerk_page = clerk_context.new_page()
    clerk_page.set_default_timeout(15_000)
    _sign_in(clerk_page, base, clerk.username)
    for number in (1, 2):
        _sign_up(clerk_page, base, f"Bhola subscriber {number}", f"0181234560{number}")
        expect(clerk_page.locator(".alert-success")).to_contain_text("created")
    _sign_up(clerk_page, base, "Bhola subscriber 3", "01812345603")
    refusal = clerk_page.locator("main")
    expect(refusal).to_contain_text("The reseller's float cannot cover")
    expect(refusal).to_contain_text("Bhola Link: ৳500.00 from ৳200.00 leaves ৳-300.00")
    screenshot(clerk_page, "float-refused")
    assert Subscriber.objects.filter(operator=reseller).count() == 2
    assert FloatAccount.objects.get(operator=reseller).balance == Decimal("200.00")

    # The clerk's own dashboard: the float, and the alert (below 300.00).
    clerk_page.goto(base + "/")
    expect(clerk_page.locator("#float-balance")).to_have_text("৳200.00")
    expect(clerk_page.locator("[data-alert='float_low']")).to_be_visible()
    own_panel = clerk_page.locator("#float-panel").inner_text()

    # The owner acts as Bhola Link: the same panel, the reseller's subscribers only, and a banner.
    page.click("nav >> text=Operators")
    page.click(f"tr[data-operator='{reseller.code}'] button[data-action='act-as']")
    expect(page.locator("#acting-banner")).to_contain_text("Acting as Bhola Link")
    expect(page.locator("#float-panel")).to_be_visible()
    assert page.locator("#float-panel").inner_text() == own_panel
    page.click("nav >> text=Subscribers")
    expect(page.locator("#subscriber-table tbody tr")).to_have_count(2)
    screenshot(page, "act-as-reseller")

    # In Bangla, the banner and the figures too; then back to the owner's own console.
    page.select_option("#language-form select", "bn")
    expect(page.locator("#acting-banner")).to_contain_text("Bhola Link")
    page.goto(base + "/")
    expect(page.locator("#float-balance")).to_have_text("৳২০০.০০")
    screenshot(page, "act-as-reseller-bn")
    page.click("#acting-banner button")
    expect(page.locator("#acting-banner")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/$"))
    context.close()
    clerk_context.close()
