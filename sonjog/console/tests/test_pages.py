"""Every console page answers for a staff member who may see it, in English and in Bangla."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sonjog.billing.models import Invoice, Payment
from sonjog.flows.payments import payment_receive

pytestmark = pytest.mark.django_db


def _pages(tree):
    subscriber = tree.north.subscribers[0]
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")
    payment = payment_receive(subscriber=subscriber, amount=invoice.total, method="cash")
    return [
        reverse("console:dashboard"),
        reverse("console:dashboard_live"),
        reverse("console:subscribers"),
        reverse("console:subscribers") + "?q=Test&sort=-due&status=active&online=no&due_min=0",
        reverse("console:subscribers_export", args=["csv"]),
        reverse("console:subscribers_export", args=["xlsx"]),
        reverse("console:subscriber_create"),
        reverse("console:subscriber", args=[subscriber.pk]),
        reverse("console:subscriber_network", args=[subscriber.pk]),
        reverse("console:subscriber_contact", args=[subscriber.pk]),
        reverse("console:subscriber_package", args=[subscriber.pk]),
        reverse("console:subscriber_payment", args=[subscriber.pk]),
        reverse("console:subscriber_adjustment", args=[subscriber.pk]),
        reverse("console:subscriber_terminate", args=[subscriber.pk]),
        reverse("console:entry_reverse", args=[subscriber.pk, payment.entries.get().pk]),
        reverse("console:invoice", args=[invoice.pk]),
        reverse("console:invoice_pdf", args=[invoice.pk]),
        reverse("console:invoice_void", args=[invoice.pk]),
        reverse("console:receipt", args=[payment.pk]),
        reverse("console:billing"),
        reverse("console:generate"),
        reverse("console:runs"),
        reverse("console:overdue"),
        reverse("console:corrections"),
        reverse("console:payments"),
        reverse("console:collect") + "?q=test",
        reverse("console:day_sheet"),
        reverse("console:packages"),
        reverse("console:package_create"),
        reverse("console:package_edit", args=[tree.north.package.pk]),
        reverse("console:zones"),
        reverse("console:zone_create"),
        reverse("console:zone_edit", args=[tree.north.zone.pk]),
        reverse("console:routers"),
        reverse("console:outbox"),
        reverse("console:mismatches"),
        reverse("console:tickets"),
    ]


@pytest.mark.parametrize("language", ["en", "bn"])
def test_every_page_renders_for_the_owner(tree, language):
    client = tree.login(tree.root.staff["owner"])
    client.post(reverse("console:language"), {"language": language})
    for url in _pages(tree):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    assert Payment.objects.count() == 1
