"""Add-ons in a real browser (Debian's Chromium through Playwright): a billing clerk gives a subscriber
a static IP from the profile, generates next month from the billing page, and finds the add-on on the
invoice with its own VAT, in the PDF, and in Bangla. Screenshots land in docs/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from sonjog.billing.models import Bill, BillLine, Invoice
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.console.tests.conftest import PASSWORD, screenshot
from sonjog.console.tests.test_addons import pdf_text
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import SubscriberAddOn, Zone
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}


def _isp():
    operator = make_operator(
        vat_rate=Decimal("15.00"), vat_inclusive=False, billing_cycle="calendar", customer_id_prefix="AO"
    )
    package = make_package(operator, "1000.00", vat=True, name="Home 10 Mbps")
    addon_create(
        operator=operator, name="Static IP", price=Decimal("300.00"), effect="static_ip", effect_value="public"
    )
    addon_create(operator=operator, name="IPTV", price=Decimal("199.00"), vat_applicable=False)
    zone = Zone.objects.create(operator=operator, name="Mirpur")
    today = operator_today(operator)
    subscriber = make_subscriber(operator, package, today - dt.timedelta(days=40), zone=zone)
    make_subscriber(operator, package, today - dt.timedelta(days=70), zone=zone)
    clerk = staff_create(operator=operator, username="nasrin", password=PASSWORD, role="billing_clerk").user
    return operator, subscriber, clerk, today


def test_a_clerk_adds_a_static_ip_and_finds_it_on_next_months_invoice(live_server, browser):
    operator, subscriber, clerk, today = _isp()
    base = live_server.url
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)

    page.goto(base + "/")
    page.fill("#id_username", clerk.username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    # A billing clerk lands on billing (ADR 0013); the dashboard is one click away.
    expect(page.locator("main h1")).to_have_text("Period summary")
    page.click("nav >> text=Dashboard")
    expect(page.locator("main h1")).to_have_text("Dashboard")
    expect(page.locator("#card-addon_revenue .value")).to_have_text("৳0")

    # The profile's add-on panel: pick one, from today.
    profile_url = base + reverse("console:subscriber", args=[subscriber.pk])
    page.goto(profile_url)
    expect(page.locator("#addons")).to_contain_text("No add-ons.")
    page.select_option("#addon-activate select[name=addon]", label="Static IP (৳300.00)")
    page.click("#addon-activate button:has-text('Activate')")
    expect(page.locator(".alert-success")).to_contain_text("Add-on Static IP activated.")
    expect(page.locator("#addons-table tbody tr")).to_have_count(1)
    expect(page.locator("#addons-table")).to_contain_text("running")
    stretch = SubscriberAddOn.objects.get(subscriber=subscriber)
    assert stretch.start_date == today
    # This period was billed already: the rest of it is a one-off charge, VAT included.
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    assert charge.lines.get().kind == "addon"
    expect(page.locator("#ledger")).to_contain_text("Add-on")
    screenshot(page, "addons-profile")

    # Next month from the billing page: a confirmation, then the outcomes.
    next_month = add_months(month_start(today), 1)
    page.click("nav >> text=Period summary")
    page.click("main >> text=Generate invoices")
    page.fill("#id_period", f"{next_month:%Y-%m}")
    page.click("button:has-text('Check')")
    expect(page.locator("#would-create")).to_contain_text("2 invoices will be created")
    page.click("button:has-text('ahead of time')")  # next month has not started: billed ahead
    expect(page.locator("#outcome-created .value")).to_have_text("2")
    expect(page.locator("#outcome-errors .value")).to_have_text("0")
    page.click("nav >> text=Period summary")
    # 300 + 45 VAT on next month's bill.
    expect(page.locator(f"#period-summary tr[data-period='{next_month:%Y-%m}'] [data-column=addons]")).to_have_text(
        "৳345.00"
    )
    screenshot(page, "addons-billing")

    # The invoice: every line with its VAT.
    invoice = Invoice.objects.get(bill__subscriber=subscriber, bill__period_month=next_month, bill__kind="period")
    assert BillLine.objects.filter(bill=invoice.bill, kind="addon").count() == 1
    page.goto(profile_url)
    page.click(f"#bills a:has-text('{invoice}')")
    expect(page.locator("main h1")).to_have_text(operator.name)
    addon_row = page.locator("#invoice-lines tr[data-kind=addon]")
    expect(addon_row).to_have_count(1)
    expect(addon_row.locator("td").nth(0)).to_have_text("Static IP")
    expect(addon_row.locator("td").nth(1)).to_have_text("৳300.00")
    expect(addon_row.locator("td").nth(2)).to_have_text("৳45.00")
    expect(page.locator("#invoice-lines tr[data-kind=package] td").nth(2)).to_have_text("৳150.00")
    expect(page.locator("#invoice-vat")).to_contain_text("৳195.00")
    expect(page.locator("#invoice tfoot")).to_contain_text("৳1,495.00")
    screenshot(page, "addons-invoice")

    # The PDF, fetched with the clerk's session.
    pdf_link = page.locator("a:has-text('PDF')").first
    pdf = context.request.get(base + pdf_link.get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.body())
    for shown in ("(Static IP)", "(BDT 300.00)", "(BDT 45.00)", "(BDT 1,495.00)"):
        assert shown in text, shown

    # In Bangla: the same lines under Bangla headings, with Bangla digits.
    page.select_option("#language-form select", "bn")
    expect(page.locator("#invoice thead")).to_contain_text("ভ্যাট")
    expect(addon_row.locator("td").nth(0)).to_have_text("Static IP")
    expect(addon_row.locator("td").nth(2)).to_have_text(re.compile("৪৫"))
    screenshot(page, "addons-invoice-bn")
    page.goto(profile_url)
    expect(page.locator("#addons h2")).to_have_text("অ্যাড-অন")
    expect(page.locator("#addons-table")).to_contain_text("চালু")
    context.close()
    assert ledger_verify().ok
