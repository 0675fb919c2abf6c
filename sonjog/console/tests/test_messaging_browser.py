"""The messaging screens in a real browser (Debian's Chromium through Playwright): an owner rewrites the
due reminder in Bangla and watches the preview follow, sends a bulk SMS after seeing what it costs, and
finds the messages on a subscriber's profile. Screenshots land in docs/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package
from sonjog.console import formatting
from sonjog.console.tests.conftest import PASSWORD, screenshot
from sonjog.console.tests.test_browser import LAPTOP, _sign_in
from sonjog.customers.models import Subscriber, Zone
from sonjog.flows.subscribers import subscriber_create
from sonjog.notifications import selectors as notify
from sonjog.notifications.models import BulkSend, Message, MessageTemplate
from sonjog.notifications.services import provider_account_create, sms_credit_add
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db(transaction=True)

BULK_TEXT = "Dear {{ name }}, your bill of {{ amount_due }} is due. Pay by bKash to stay connected."


def _isp():
    """An ISP with an SMS gateway account, some credit, and subscribers who owe their first bills."""
    operator = make_operator(vat_rate=Decimal("0"), customer_id_prefix="MS")
    package = make_package(operator, "800.00", vat=False, name="Home 8 Mbps")
    dhanmondi = Zone.objects.create(operator=operator, name="Dhanmondi")
    gulshan = Zone.objects.create(operator=operator, name="Gulshan")
    provider_account_create(
        operator=operator,
        name="SSL Wireless",
        kind="ssl_wireless",
        sender_id="DHAKANET",
        credentials={"api_token": "ssl-secret-token"},
        base_url="http://127.0.0.1:9",
        cost_per_segment=Decimal("0.35"),
    )
    sms_credit_add(operator=operator, amount=Decimal("500.00"), note="opening credit")
    started = operator_today(operator) - dt.timedelta(days=40)
    people = [
        ("Farhana Rahman", "01711000101", dhanmondi),
        ("Jamal Hossain", "01711000102", dhanmondi),
        ("Shirin Akter", "01711000103", dhanmondi),
        ("Tanvir Ahmed", "01711000104", gulshan),
    ]
    subscribers = [
        subscriber_create(
            operator=operator, name=name, phone=phone, package=package, zone=zone, activation_date=started
        )
        for name, phone, zone in people
    ]
    owner = staff_create(operator=operator, username="salma", password=PASSWORD, role="owner").user
    return operator, subscribers, dhanmondi, owner


def test_an_owner_writes_a_bangla_reminder_and_sends_a_bulk_sms(live_server, browser):
    operator, subscribers, dhanmondi, owner = _isp()
    farhana = subscribers[0]
    base = live_server.url
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, base, owner.username)

    # Templates: the due reminder by SMS in Bangla, previewed for Farhana as it is typed.
    page.click("nav >> text=Templates")
    expect(page.locator("main h1")).to_have_text("Message templates")
    expect(page.locator("#cell-due_reminder-sms-bn")).to_contain_text("built-in")
    page.click("#cell-due_reminder-sms-bn a")
    expect(page.locator("main h1")).to_contain_text("Due reminder")
    page.fill("#preview-subscriber", farhana.customer_id)
    expect(page.locator("#preview-for")).to_contain_text("Farhana Rahman")
    page.fill("#id_body", "প্রিয় {{ name }}, আপনার বকেয়া {{ amount_due }}। দয়া করে {{ due_date }} এর মধ্যে পরিশোধ করুন।")
    expect(page.locator("#preview-text")).to_contain_text("প্রিয় Farhana Rahman")
    expect(page.locator("#preview-encoding")).to_contain_text("UCS-2")
    expect(page.locator("#preview-segments")).to_have_text(re.compile(r"^[1-9]"))
    # A typo in a variable shows at once, naming the variable.
    page.fill("#id_body", "প্রিয় {{ nam }}, আপনার বকেয়া {{ amount_due }}।")
    expect(page.locator("#preview-error")).to_contain_text("{{ nam }}")
    page.fill("#id_body", "প্রিয় {{ name }}, আপনার বকেয়া {{ amount_due }}। দয়া করে দ্রুত পরিশোধ করুন।")
    expect(page.locator("#preview-text")).to_contain_text("দ্রুত পরিশোধ")
    expect(page.locator("#preview-encoding")).to_contain_text("UCS-2")
    screenshot(page, "messaging-templates")
    page.click("#save-template")
    expect(page.locator(".alert-success")).to_contain_text("Saved")
    expect(page.locator("#cell-due_reminder-sms-bn")).to_contain_text("own")
    saved = MessageTemplate.objects.get(operator=operator, event="due_reminder", channel="sms", language="bn")
    assert saved.body.endswith("দ্রুত পরিশোধ করুন।")

    # Bulk SMS: Dhanmondi's subscribers who owe, previewed with the count and cost before anything goes.
    page.click("nav >> text=Bulk SMS")
    page.select_option("#id_zone", label="Dhanmondi")
    page.check("#id_owes")
    page.fill("#id_text", BULK_TEXT)
    page.click("#bulk-preview-button")
    expected = notify.bulk_sms_preview(
        operator, Subscriber.objects.filter(operator=operator, zone=dhanmondi), BULK_TEXT
    )
    assert expected.count == 3
    expect(page.locator("#preview-count .value")).to_have_text("3")
    expect(page.locator("#preview-segments .value")).to_have_text(str(expected.total_segments))
    expect(page.locator("#preview-cost .value")).to_have_text(formatting.money(expected.cost, "BDT"))
    expect(page.locator("#preview-sample")).to_contain_text("Dear Farhana Rahman")
    assert not BulkSend.objects.exists()
    screenshot(page, "messaging-bulk-preview")
    page.click("#bulk-send")
    expect(page.locator("#result-queued .value")).to_have_text("3")
    expect(page.locator(".alert-success")).to_contain_text("3 messages queued")
    bulk = BulkSend.objects.get()
    assert Message.objects.filter(bulk=bulk).count() == 3
    expect(page.locator("#bulk-statuses")).to_contain_text("Queued")

    # Farhana's profile lists the message beside her bills and payments.
    page.goto(f"{base}/subscribers/{farhana.pk}/")
    timeline = page.locator("#message-timeline")
    expect(timeline).to_contain_text("Bulk message")
    expect(timeline).to_contain_text("Queued")
    timeline.locator("summary").first.click()
    expect(timeline).to_contain_text("Dear Farhana Rahman, your bill of BDT")

    # Providers and credit: the account, the balance and the settings.
    page.click("nav >> text=Providers & credit")
    expect(page.locator("#accounts-table")).to_contain_text("SSL Wireless")
    expect(page.locator("#sms-balance")).to_contain_text("৳500.00")
    assert "ssl-secret-token" not in page.content()
    screenshot(page, "messaging-settings")

    # The delivery log lists the three queued messages, each linking to its subscriber.
    page.click("nav >> text=Delivery log")
    page.select_option("#log-event", "bulk")
    page.click("#log-filters button:has-text('Filter')")
    expect(page.locator("#log-table tbody tr")).to_have_count(3)
    context.close()
