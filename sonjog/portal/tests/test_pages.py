"""The portal over HTTP: signing in by code (and choosing the provider when a phone number has several),
by PPPoE login, what each page shows, that no id in a URL reaches another subscriber's rows, the
throttles and sign-outs, CSRF, and the pages in Bangla."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from sonjog.billing.models import Invoice
from sonjog.billing.selectors import subscriber_balance
from sonjog.catalog.models import AddOn
from sonjog.core.models import AuditEvent
from sonjog.customers.models import SignInCode, Subscriber
from sonjog.flows.payments import payment_receive
from sonjog.flows.portal import CHANGE_REQUEST_ACTION
from sonjog.flows.subscribers import subscriber_reset_pppoe_password
from sonjog.network.models import RadAcct
from sonjog.notifications.models import Message
from sonjog.operators.services import operator_create
from sonjog.portal.tests.conftest import billed_subscriber, last_code, signed_in, sms_enable, sms_operator

pytestmark = pytest.mark.django_db

DHAKA = dt.timezone(dt.timedelta(hours=6))
GB = 1_000_000_000


def _text(response) -> str:
    return response.content.decode()


# -- signing in ----------------------------------------------------------------------------------------


def test_signing_in_with_a_code_by_customer_id_shows_what_is_owed(subscriber):
    client = Client()
    assert client.get("/my/")["Location"] == "/my/signin/"
    response = client.post("/my/signin/", {"who": subscriber.customer_id.lower()})
    assert response["Location"] == "/my/signin/code/"
    page = client.get("/my/signin/code/")
    assert "Dhaka Net" in _text(page) and subscriber.phone[-3:] in _text(page)
    response = client.post("/my/signin/code/", {"code": last_code(subscriber)})
    assert response["Location"] == "/my/"

    home = client.get("/my/")
    assert home.status_code == 200
    owed = subscriber_balance(subscriber.pk)
    assert owed == Decimal("1000.00")
    text = _text(home)
    assert 'id="owed-amount">৳1,000.00<' in text
    assert 'id="pay-by">08/11/2026<' in text  # due 7 days after the 1st, day/month/year
    assert "Dhaka Net" in text and subscriber.package.name in text
    assert 'id="next-bill">01/12/2026<' in text
    # No gateway wired: no Pay now button.
    assert 'id="pay-now"' not in text
    assert home["Cache-Control"].startswith("max-age=0") and "no-store" in home["Cache-Control"]


def test_a_phone_number_with_accounts_at_two_operators_asks_which(subscriber):
    other_operator = sms_operator(name="Chittagong Fiber")
    twin = billed_subscriber(other_operator, phone=subscriber.phone)
    client = Client()
    response = client.post("/my/signin/", {"who": "0" + subscriber.phone[4:]})  # typed as 01XXXXXXXXX
    assert response["Location"] == "/my/signin/choose/"
    page = _text(client.get("/my/signin/choose/"))
    assert "Dhaka Net" in page and "Chittagong Fiber" in page
    assert subscriber.customer_id not in page and twin.customer_id not in page
    assert not Message.objects.filter(event="otp").exists()

    # Only the accounts the phone matched can be chosen.
    stranger = billed_subscriber(other_operator)
    assert client.post("/my/signin/choose/", {"account": stranger.pk}).status_code == 422
    response = client.post("/my/signin/choose/", {"account": twin.pk})
    assert response["Location"] == "/my/signin/code/"
    assert not Message.objects.filter(subscriber=subscriber, event="otp").exists()
    client.post("/my/signin/code/", {"code": last_code(twin)})
    assert "Chittagong Fiber" in _text(client.get("/my/"))


def test_an_unknown_customer_id_or_phone_is_said_so(subscriber):
    response = Client().post("/my/signin/", {"who": "01999999999"})
    assert response.status_code == 422
    assert "no account with that customer ID or phone number" in _text(response)


def test_an_operator_without_sms_says_sign_in_another_way():
    operator = sms_operator(name="Quiet Net")
    operator.provider_accounts.update(is_active=False)
    subscriber = billed_subscriber(operator)
    response = Client().post("/my/signin/", {"who": subscriber.customer_id})
    assert response.status_code == 422
    assert "could not send a code" in _text(response) and "Quiet Net" in _text(response)
    assert not SignInCode.objects.exists()


def test_the_code_page_refuses_a_wrong_code_a_used_one_and_an_expired_one(subscriber):
    client = Client()
    client.post("/my/signin/", {"who": subscriber.customer_id})
    code = last_code(subscriber)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = client.post("/my/signin/code/", {"code": wrong})
    assert response.status_code == 422 and "not right" in _text(response)
    assert client.post("/my/signin/code/", {"code": "12ab"}).status_code == 422
    # Bengali digits from a Bangla keyboard are the same code.
    bengali = code.translate(str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯"))
    assert client.post("/my/signin/code/", {"code": bengali})["Location"] == "/my/"

    # Signed out, the same code does not sign in again.
    client.post("/my/signout/")
    client.post("/my/signin/", {"who": subscriber.customer_id}, follow=True)  # too soon for a new code
    assert client.post("/my/signin/code/", {"code": code}).status_code == 422

    # A new code, a minute on; eleven minutes after that it has expired.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61), tick=False):
        client.post("/my/signin/code/", {"resend": "1"})
        fresh = last_code(subscriber)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=12), tick=False):
        response = client.post("/my/signin/code/", {"code": fresh})
    assert response.status_code == 422


def test_asking_again_too_soon_names_the_wait(subscriber):
    client = Client()
    client.post("/my/signin/", {"who": subscriber.customer_id})
    response = client.post("/my/signin/code/", {"resend": "1"}, follow=True)
    assert "You can ask for another in" in _text(response) and "second" in _text(response)
    assert Message.objects.filter(subscriber=subscriber, event="otp").count() == 1
    # Typing the customer ID again leads to the code page too, with the same notice.
    response = client.post("/my/signin/", {"who": subscriber.customer_id}, follow=True)
    assert response.redirect_chain[-1][0] == "/my/signin/code/"
    assert "You can ask for another in" in _text(response)


def test_pppoe_sign_in_and_its_throttle(operator):
    subscriber = billed_subscriber(operator, pppoe_username="rahim.home", pppoe_password="s3cret-pw")
    client = Client()
    response = client.post("/my/signin/pppoe/", {"username": "rahim.home", "password": "s3cret-pw"})
    assert response["Location"] == "/my/"
    assert subscriber.customer_id in _text(client.get("/my/"))

    stranger = Client()
    for attempt in range(4):
        response = stranger.post("/my/signin/pppoe/", {"username": "rahim.home", "password": f"guess{attempt}"})
        assert response.status_code == 422 and "Wrong PPPoE username or password" in _text(response)
    # The fifth wrong password locks the (username, address) for the cool-off, right password or not.
    assert stranger.post("/my/signin/pppoe/", {"username": "rahim.home", "password": "guess4"}).status_code == 429
    response = stranger.post("/my/signin/pppoe/", {"username": "rahim.home", "password": "s3cret-pw"})
    assert response.status_code == 429 and "Try again in" in _text(response)
    # A name that does not exist is refused like a wrong password.
    assert Client().post("/my/signin/pppoe/", {"username": "nobody", "password": "x"}).status_code == 422


def test_a_new_pppoe_password_ends_the_sessions_signed_in_with_the_old(operator):
    subscriber = billed_subscriber(operator, pppoe_username="karim.home", pppoe_password="old-pw-1")
    by_password = Client()
    by_password.post("/my/signin/pppoe/", {"username": "karim.home", "password": "old-pw-1"})
    by_code = signed_in(subscriber)
    subscriber_reset_pppoe_password(subscriber=subscriber)
    assert by_password.get("/my/")["Location"] == "/my/signin/"
    assert by_code.get("/my/").status_code == 200


def test_signing_out_everywhere_ends_every_session(subscriber):
    phone = signed_in(subscriber)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61), tick=False):
        laptop = signed_in(subscriber)
    assert laptop.get("/my/").status_code == 200
    response = phone.post("/my/signout/everywhere/")
    assert response["Location"] == "/my/signin/"
    assert phone.get("/my/").status_code == 302 and laptop.get("/my/").status_code == 302


def test_an_idle_session_is_signed_out(subscriber):
    client = signed_in(subscriber)
    start = dt.datetime.now(dt.UTC)
    # Used after 11 hours: still signed in, and idle counts from then.
    with time_machine.travel(start + dt.timedelta(hours=11), tick=False):
        assert client.get("/my/").status_code == 200
    with time_machine.travel(start + dt.timedelta(hours=22), tick=False):
        assert client.get("/my/").status_code == 200
    with time_machine.travel(start + dt.timedelta(hours=34, minutes=1), tick=False):
        assert client.get("/my/").status_code == 302


def test_a_session_cookie_used_by_another_browser_is_signed_out(subscriber):
    client = signed_in(subscriber, HTTP_USER_AGENT="Phone A")
    assert client.get("/my/").status_code == 200
    assert client.get("/my/", HTTP_USER_AGENT="Laptop B").status_code == 302
    assert client.get("/my/").status_code == 302


def test_every_post_needs_its_csrf_token(subscriber):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/my/signin/", {"who": subscriber.customer_id}).status_code == 403
    assert client.post("/my/signin/pppoe/", {"username": "a", "password": "b"}).status_code == 403
    assert not Message.objects.filter(event="otp").exists()


# -- what a signed-in subscriber sees, and nothing of anyone else -------------------------------------------


def _payment(subscriber: Subscriber, amount: str):
    return payment_receive(subscriber=subscriber, amount=Decimal(amount), method="bkash", reference="TX1")


def test_no_invoice_or_receipt_of_another_subscriber_by_id(operator, subscriber):
    neighbour = billed_subscriber(operator)
    elsewhere = billed_subscriber(sms_operator(name="Sylhet Online"))
    own_payment, neighbours, elsewheres = (
        _payment(subscriber, "400.00"),
        _payment(neighbour, "1.00"),
        _payment(elsewhere, "2.00"),
    )
    own_invoice = Invoice.objects.get(bill__subscriber=subscriber)
    client = signed_in(subscriber)

    assert client.get(f"/my/invoices/{own_invoice.pk}/").status_code == 200
    pdf = client.get(f"/my/invoices/{own_invoice.pk}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert client.get(f"/my/payments/{own_payment.pk}/receipt/").status_code == 200
    for other in (neighbour, elsewhere):
        invoice = Invoice.objects.get(bill__subscriber=other)
        assert client.get(f"/my/invoices/{invoice.pk}/").status_code == 404
        assert client.get(f"/my/invoices/{invoice.pk}/pdf/").status_code == 404
    for payment in (neighbours, elsewheres):
        assert client.get(f"/my/payments/{payment.pk}/receipt/").status_code == 404
    assert client.get("/my/invoices/999999999/").status_code == 404
    # The lists name only the subscriber's own.
    assert f'data-payment="{neighbours.pk}"' not in _text(client.get("/my/payments/"))


def test_bills_payments_and_receipt_pages(subscriber):
    payment = _payment(subscriber, "400.00")
    client = signed_in(subscriber)
    bills = _text(client.get("/my/bills/"))
    invoice = Invoice.objects.get(bill__subscriber=subscriber)
    assert str(invoice) in bills and "Partly paid" in bills and "01/11/2026 – 30/11/2026" in bills
    payments = _text(client.get("/my/payments/"))
    assert "৳400.00" in payments and "TX1" in payments
    receipt = _text(client.get(f"/my/payments/{payment.pk}/receipt/"))
    assert "৳400.00" in receipt and "Four Hundred" in receipt and "৳600.00" in receipt  # balance after
    home = _text(client.get("/my/"))
    assert 'id="owed-amount">৳600.00<' in home


def test_a_subscriber_in_credit_has_nothing_to_pay(subscriber):
    _payment(subscriber, "1500.00")
    home = _text(signed_in(subscriber).get("/my/"))
    assert "Nothing to pay" in home and "৳500.00" in home and 'id="pay-by"' not in home


def test_a_suspended_subscriber_is_told_why(subscriber):
    from sonjog.flows.enforcement import overdue_sweep

    overdue_sweep(operator=subscriber.operator)
    subscriber.refresh_from_db()
    assert subscriber.service_intent == "suspended"
    home = _text(signed_in(subscriber).get("/my/"))
    assert 'data-state="suspended_unpaid"' in home and "because a bill is unpaid" in home
    assert 'id="overdue"' in home


def test_a_change_request_is_recorded_for_staff(operator, subscriber):
    from sonjog.conftest import make_package

    better = make_package(operator, "1500.00", vat=False, name="Fiber 50M")
    AddOn.objects.create(operator=operator, name="Static IP", price=Decimal("300.00"))
    client = signed_in(subscriber)
    page = _text(client.get("/my/change/"))
    assert "Fiber 50M (৳1,500.00)" in page and "Static IP (৳300.00)" in page
    assert client.post("/my/change/", {}).status_code == 422
    response = client.post("/my/change/", {"package": better.pk, "note": "evenings are slow"})
    assert response["Location"] == "/my/"
    event = AuditEvent.objects.get(action=CHANGE_REQUEST_ACTION)
    assert event.subscriber_id == subscriber.pk and event.operator_id == operator.pk
    assert event.detail["package"] == "Fiber 50M" and event.detail["note"] == "evenings are slow"
    # Another operator's package is not a choice.
    foreign = make_package(sms_operator(), "100.00", vat=False)
    assert client.post("/my/change/", {"package": foreign.pk}).status_code == 422
    subscriber.refresh_from_db()
    assert subscriber.package.name != "Fiber 50M"


def _session(subscriber, start, stop, download, upload, number):
    RadAcct.objects.create(
        acctsessionid=f"s{number}",
        acctuniqueid=f"u{subscriber.pk}-{number}",
        username=subscriber.pppoe_username,
        nasipaddress="10.0.0.1",
        acctstarttime=start,
        acctupdatetime=stop or start,
        acctstoptime=stop,
        acctinputoctets=upload,
        acctoutputoctets=download,
        framedipaddress="100.64.0.9",
    )


def test_sessions_and_data_per_day(operator, subscriber):
    # 16 Nov 22:00 to 17 Nov 02:00 in Dhaka: half before midnight, half after.
    _session(
        subscriber,
        dt.datetime(2026, 11, 16, 22, tzinfo=DHAKA),
        dt.datetime(2026, 11, 17, 2, tzinfo=DHAKA),
        4 * GB,
        2 * GB,
        1,
    )
    _session(subscriber, dt.datetime(2026, 11, 18, 8, tzinfo=DHAKA), None, GB, 0, 2)  # online since 08:00
    # Somebody else's session does not count.
    other = billed_subscriber(operator)
    _session(
        other, dt.datetime(2026, 11, 17, 9, tzinfo=DHAKA), dt.datetime(2026, 11, 17, 10, tzinfo=DHAKA), 9 * GB, 0, 3
    )
    page = _text(signed_in(subscriber).get("/my/usage/"))
    assert 'data-day="2026-11-16" data-octets="3000000000"' in page
    assert 'data-day="2026-11-17" data-octets="3000000000"' in page
    assert 'data-day="2026-11-18" data-octets="1000000000"' in page
    assert 'id="usage-download">5.00 GB<' in page and 'id="usage-upload">2.00 GB<' in page
    assert page.count('class="bar"') == 30
    assert "100.64.0.9" in page and "Online" in page and "4:00" in page
    assert "<script" not in page and "style=" not in page


def test_messages_received_hide_codes(subscriber):
    client = signed_in(subscriber)
    _payment(subscriber, "100.00")
    page = _text(client.get("/my/messages/"))
    assert "One-time code" in page and last_code(subscriber) not in page
    assert "Payment received" in page and "BDT 100.00" in page


# -- Bangla -------------------------------------------------------------------------------------------------


def test_pages_in_bangla_by_accept_language(subscriber):
    payment = _payment(subscriber, "400.00")
    client = signed_in(subscriber, HTTP_ACCEPT_LANGUAGE="bn")
    home = _text(client.get("/my/"))
    assert '<html lang="bn">' in home
    assert "এখন পাওনা" in home and 'id="owed-amount">৳৬০০.০০<' in home
    assert 'id="pay-by">০৮/১১/২০২৬<' in home
    assert "সাইন আউট" in home
    receipt = _text(client.get(f"/my/payments/{payment.pk}/receipt/"))
    assert "৳৪০০.০০" in receipt and "চারশত" in receipt
    assert "০১/১১/২০২৬" in _text(client.get("/my/bills/"))


def test_the_language_switch(subscriber):
    client = signed_in(subscriber)
    assert "Owes now" in _text(client.get("/my/"))
    response = client.post("/i18n/setlang/", {"language": "bn", "next": "/my/"})
    assert response["Location"] == "/my/"
    home = _text(client.get("/my/"))
    assert "এখন পাওনা" in home and "৳১,০০০.০০" in home
    client.post("/i18n/setlang/", {"language": "en", "next": "/my/"})
    assert "Owes now" in _text(client.get("/my/"))


def test_a_reseller_subscriber_sees_the_reseller(operator):
    reseller = operator_create(
        code=f"{operator.code}-north", name="North Link", parent=operator, customer_id_prefix="NL"
    )
    subscriber = billed_subscriber(sms_enable(reseller))
    home = _text(signed_in(subscriber).get("/my/"))
    assert 'id="brand">North Link<' in home and "Dhaka Net" not in home
