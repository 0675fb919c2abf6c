"""Each role lands where its work is after sign-in (ADR 0012); a collector sees "Take a payment", its
own day sheet and its own receipts, never the ISP's figures or another collector's money."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from sonjog.billing.models import Payment
from sonjog.console.tests.conftest import PASSWORD, add_staff
from sonjog.flows.payments import payment_receive

pytestmark = pytest.mark.django_db

LANDINGS = {
    "owner": "console:dashboard",
    "manager": "console:dashboard",
    "billing_clerk": "console:billing",
    "collector": "console:collect",
    "network_engineer": "console:routers",
    "support": "console:subscribers",
    "reseller_staff": "console:dashboard",
}


def _sign_in(username: str, **extra: str) -> tuple[Client, str]:
    client = Client()
    response = client.post(reverse("console:login"), {"username": username, "password": PASSWORD, **extra})
    assert response.status_code == 302
    return client, response["Location"]


@pytest.mark.parametrize("role", list(LANDINGS))
def test_each_role_lands_on_its_page(tree, role):
    user = tree.north.staff.get(role) or add_staff(tree.north, role)
    client, landing = _sign_in(user.username)
    assert landing == reverse(LANDINGS[role])
    page = client.get(landing)
    assert page.status_code == 200
    # The front page ("/", where a visitor is sent from) leads to the same place.
    assert client.get("/", follow=True).redirect_chain[-1:] in ([], [(landing, 302)])
    _client, via_front = _sign_in(user.username, next="/")
    assert via_front == landing


def test_an_explicit_next_page_is_kept(tree):
    subscriber = tree.north.subscribers[0]
    target = reverse("console:subscriber", args=[subscriber.pk])
    _client, landing = _sign_in(tree.north.staff["collector"].username, next=target)
    assert landing == target


def test_a_collector_never_sees_the_isps_figures(tree):
    collector = tree.north.staff["collector"]
    client = tree.login(collector)
    front = client.get("/")
    assert front.status_code == 302 and front["Location"] == reverse("console:collect")
    for name in ("dashboard_live", "dashboard_chart", "payments", "billing", "overdue"):
        assert client.get(reverse(f"console:{name}")).status_code == 403, name
    menu = client.get(reverse("console:collect")).content.decode().split('class="sidebar"')[1].split("<main")[0]
    assert reverse("console:payments") not in menu and 'href="/"' not in menu  # no dashboard, no payments list
    assert "My day sheet" in menu and reverse("console:collect") in menu


def test_a_collector_sees_only_its_own_day_sheet_and_receipts(tree):
    collector = tree.north.staff["collector"]
    other = tree.north.staff["billing_clerk"]
    first, second = tree.north.subscribers
    own = payment_receive(subscriber=first, amount=Decimal("111"), method="cash", collector=collector)
    theirs = payment_receive(subscriber=second, amount=Decimal("222"), method="cash", collector=other)
    client = tree.login(collector)
    sheet = client.get(reverse("console:day_sheet"))
    assert sheet.status_code == 200
    payments = {payment.pk for payment in sheet.context["sheet"]["payments"]}
    assert payments == {own.pk}
    # Naming another collector changes nothing.
    sheet = client.get(reverse("console:day_sheet"), {"collector": other.pk})
    assert {payment.pk for payment in sheet.context["sheet"]["payments"]} == {own.pk}
    assert 'name="collector"' not in sheet.content.decode()
    assert client.get(reverse("console:receipt", args=[own.pk])).status_code == 200
    assert client.get(reverse("console:receipt", args=[theirs.pk])).status_code == 404
    # Someone who sees payments still sees everyone's.
    clerk = tree.login(other)
    sheet = clerk.get(reverse("console:day_sheet"), {"collector": ""})
    assert {own.pk, theirs.pk} <= {payment.pk for payment in sheet.context["sheet"]["payments"]}
    assert clerk.get(reverse("console:receipt", args=[own.pk])).status_code == 200
    assert Payment.objects.count() == 2
