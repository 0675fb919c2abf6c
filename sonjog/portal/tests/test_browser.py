"""The portal in a real browser (Debian's Chromium through Playwright) on a 360 px phone: the subscriber
switches to Bangla, signs in with the code the SMS carried (read back from the delivery log, as any
test reads a sent message), and sees what is owed in Bengali digits, with nothing wider than the
screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sonjog.portal.tests.conftest import billed_subscriber, last_code, sms_operator

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 360, "height": 740}


def test_a_subscriber_signs_in_with_the_sms_code_on_a_phone_and_sees_the_due_in_bangla(live_server, browser):
    operator = sms_operator(name="Dhaka Net")
    subscriber = billed_subscriber(operator)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(15_000)

    page.goto(live_server.url + "/my/")
    expect(page.locator("main h1")).to_have_text("Sign in")
    page.click("#language-form button")
    expect(page.locator("html")).to_have_attribute("lang", "bn")
    expect(page.locator("main h1")).to_have_text("সাইন ইন")
    # portal.css is served and applied (a full-width button on the phone).
    expect(page.locator("#signin-form button[type=submit]")).to_have_css("background-color", "rgb(13, 59, 102)")

    page.fill("#id_who", subscriber.customer_id)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#code-form")).to_be_visible()
    page.fill("#id_code", last_code(subscriber))
    page.click("#code-form button[type=submit]")

    expect(page.locator("#brand")).to_have_text("Dhaka Net")
    expect(page.locator("#owed")).to_contain_text("এখন পাওনা")
    expect(page.locator("#owed-amount")).to_have_text("৳১,০০০.০০")
    expect(page.locator("#pay-by")).to_have_text("০৮/১১/২০২৬")
    # Phone-first: the page fits the screen's width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.click("nav.tabs a[href='/my/bills/']")
    expect(page.locator("#bills li")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("#sign-out")
    expect(page.locator("#signin-form")).to_be_visible()
    context.close()
