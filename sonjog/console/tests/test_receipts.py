"""A money receipt is a fixed document: what it states is frozen when the payment is recorded, and
every showing after the first says "reprint"."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from sonjog.billing.models import Receipt
from sonjog.billing.services import adjustment_add
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.flows.payments import payment_receive
from sonjog.operators.services import staff_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]
# frozen_clock: 15 June 2027, noon in Dhaka.


def test_the_receipt_states_what_was_true_when_it_was_issued():
    operator = make_operator(
        vat_rate=Decimal("0"),
        billing_cycle="calendar",
        document_address="House 12, Road 5, Dhanmondi, Dhaka",
        document_phone="+8801711000000",
        bin_number="000123456-0101",
    )
    package = make_package(operator, "1200.00", vat=False)
    subscriber = make_subscriber(operator, package, dt.date(2027, 5, 1))  # May and June billed
    clerk = staff_create(operator=operator, username="receipt-clerk", password="x-long-pass-1", role="billing_clerk")
    adjustment_add(subscriber=subscriber, amount=Decimal("500.00"), reason="manual", memo="Installation")
    payment = payment_receive(subscriber=subscriber, amount=Decimal("2400.00"), method="bkash", collector=clerk.user)
    receipt = Receipt.objects.get(payment=payment)
    content = receipt.content
    assert content["balance_after"] == "500.00" and content["paid_up_to"] == "2027-06-30"
    assert [(item["kind"], item["amount"]) for item in content["settled"]] == [("period", "1200.00")] * 2
    assert content["operator"]["bin"] == "000123456-0101" and content["collector"] == "receipt-clerk"

    # Later money changes nothing the receipt says; the next receipt names the charge it settled.
    later = payment_receive(subscriber=subscriber, amount=Decimal("500.00"), method="cash")
    receipt.refresh_from_db()
    assert receipt.content == content
    assert [(i["kind"], i["description"]) for i in later.receipt.content["settled"]] == [("charge", "Installation")]

    from django.test import Client

    client = Client()
    client.force_login(clerk.user)
    url = reverse("console:receipt", args=[payment.pk])
    first = client.get(url).content.decode()
    assert "REPRINT" not in first
    assert "Taka Two Thousand Four Hundred Only" in first and "দুই হাজার চারশত টাকা মাত্র" in first
    assert "৳500.00" in first  # still owed at the time, not the 0.00 of today
    assert "000123456-0101" in first, first[first.find("receipt") :][:3000]
    assert "30/06/2027" in first, first[first.find("Paid up") :][:300]
    again = client.get(url + "?layout=58").content.decode()
    assert 'id="receipt-reprint"' in again and "receipt-58" in again


def test_a_payment_from_before_receipts_gets_a_reconstructed_one(db):
    operator = make_operator(vat_rate=Decimal("0"))
    subscriber = make_subscriber(operator, make_package(operator, "800.00", vat=False), dt.date(2027, 6, 1))
    payment = payment_receive(subscriber=subscriber, amount=Decimal("800.00"), method="cash")
    Receipt.objects.filter(payment=payment).delete()
    owner = staff_create(operator=operator, username="receipt-owner", password="x-long-pass-1", role="owner").user
    from django.test import Client

    client = Client()
    client.force_login(owner)
    page = client.get(reverse("console:receipt", args=[payment.pk])).content.decode()
    assert "Recorded before receipts were kept" in page and 'id="receipt-balance"' not in page
    assert Receipt.objects.get(payment=payment).reconstructed


def test_the_invoice_states_the_last_day_of_service_the_vat_rate_the_bin_and_whether_it_is_paid():
    operator = make_operator(vat_rate=Decimal("7.50"), vat_inclusive=False, bin_number="000999888-0202")
    subscriber = make_subscriber(operator, make_package(operator, "1000.00"), dt.date(2027, 6, 1))
    owner = staff_create(operator=operator, username="invoice-owner", password="x-long-pass-1", role="owner").user
    from django.test import Client

    from sonjog.billing.models import Invoice

    invoice = Invoice.objects.get(bill__subscriber=subscriber, bill__period_month=dt.date(2027, 6, 1))
    client = Client()
    client.force_login(owner)
    url = reverse("console:invoice", args=[invoice.pk])
    page = client.get(url).content.decode()
    assert "01/06/2027 – 30/06/2027" in page and "7.5%" in page and "000999888-0202" in page
    assert "Unpaid" in page
    payment_receive(subscriber=subscriber, amount=Decimal("500.00"), method="cash")
    assert "Partly paid: ৳500.00 of ৳1,075.00" in client.get(url).content.decode()
    payment_receive(subscriber=subscriber, amount=Decimal("575.00"), method="cash")
    assert "badge-ok" in client.get(url).content.decode()
    pdf = client.get(reverse("console:invoice_pdf", args=[invoice.pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
