"""Who may see and do what: another subtree's rows are 404 by URL and by form tampering; a role
without the permission gets 403; nothing is written in either case."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sonjog.billing.models import Invoice, LedgerEntry, Payment
from sonjog.console.models import BulkAction
from sonjog.console.tests.conftest import add_staff
from sonjog.customers.models import Subscriber
from sonjog.flows.payments import payment_receive

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        LedgerEntry.objects.count(),
        Payment.objects.count(),
        Subscriber.objects.count(),
        BulkAction.objects.count(),
    )


@pytest.fixture
def south_rows(tree):
    subscriber = tree.south.subscribers[0]
    payment = payment_receive(subscriber=subscriber, amount=subscriber_invoice(subscriber).total, method="cash")
    return {
        "subscriber": subscriber,
        "invoice": subscriber_invoice(subscriber),
        "payment": payment,
        "entry": payment.entries.get(),
    }


def subscriber_invoice(subscriber: Subscriber) -> Invoice:
    return Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")


def test_signed_out_visitors_are_sent_to_sign_in(tree):
    response = Client().get(reverse("console:subscribers"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


def test_a_resellers_clerk_gets_404_for_another_resellers_rows_by_url(tree, south_rows):
    client = tree.login(tree.north.staff["billing_clerk"])
    subscriber = south_rows["subscriber"]
    before = _snapshot()
    urls = [
        reverse("console:subscriber", args=[subscriber.pk]),
        reverse("console:subscriber_network", args=[subscriber.pk]),
        reverse("console:subscriber_payment", args=[subscriber.pk]),
        reverse("console:subscriber_contact", args=[subscriber.pk]),
        reverse("console:subscriber_package", args=[subscriber.pk]),
        reverse("console:subscriber_adjustment", args=[subscriber.pk]),
        reverse("console:entry_reverse", args=[subscriber.pk, south_rows["entry"].pk]),
        reverse("console:invoice", args=[south_rows["invoice"].pk]),
        reverse("console:invoice_pdf", args=[south_rows["invoice"].pk]),
        reverse("console:receipt", args=[south_rows["payment"].pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    posts = {
        reverse("console:subscriber_payment", args=[subscriber.pk]): {"amount": "100", "method": "cash"},
        reverse("console:subscriber_adjustment", args=[subscriber.pk]): {
            "direction": "credit",
            "amount": "50",
            "reason": "manual",
            "memo": "tamper",
        },
        reverse("console:entry_reverse", args=[subscriber.pk, south_rows["entry"].pk]): {"reason": "tamper"},
        reverse("console:subscriber_intent", args=[subscriber.pk]): {"intent": "suspended"},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 404, url
    assert _snapshot() == before
    # Their own reseller's subscriber opens normally.
    assert client.get(reverse("console:subscriber", args=[tree.north.subscribers[0].pk])).status_code == 200


def test_an_entry_of_another_subtree_cannot_be_reached_through_an_own_subscriber(tree, south_rows):
    client = tree.login(tree.north.staff["billing_clerk"])
    own = tree.north.subscribers[0]
    url = reverse("console:entry_reverse", args=[own.pk, south_rows["entry"].pk])
    before = _snapshot()
    assert client.post(url, {"reason": "swap the id"}).status_code == 404
    assert _snapshot() == before


def test_form_tampering_with_another_subtrees_package_and_zone_is_a_field_error(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    before = _snapshot()
    response = client.post(
        reverse("console:subscriber_create"),
        {
            "operator": tree.north.operator.pk,
            "name": "Tampered",
            "phone": "01711000001",
            "package": tree.south.package.pk,
            "zone": tree.south.zone.pk,
            "activate": "on",
        },
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "package" in form.errors and "zone" in form.errors
    assert _snapshot() == before

    own = tree.north.subscribers[0]
    response = client.post(reverse("console:subscriber_package", args=[own.pk]), {"package": tree.south.package.pk})
    assert response.status_code == 400 and "package" in response.context["form"].errors
    response = client.post(
        reverse("console:subscriber_contact", args=[own.pk]),
        {"name": own.name, "phone": own.phone, "zone": tree.south.zone.pk},
    )
    assert response.status_code == 400 and "zone" in response.context["form"].errors
    own.refresh_from_db()
    assert own.package_id == tree.north.package.pk and own.zone_id == tree.north.zone.pk
    assert _snapshot() == before


def test_operator_field_tampering_is_refused(tree):
    """A reseller's clerk cannot create a subscriber under the sibling reseller by posting its id."""
    client = tree.login(tree.north.staff["billing_clerk"])
    before = _snapshot()
    response = client.post(
        reverse("console:subscriber_create"),
        {
            "operator": tree.south.operator.pk,
            "name": "Elsewhere",
            "phone": "01711000002",
            "package": tree.north.package.pk,
        },
    )
    assert response.status_code == 400 and "operator" in response.context["form"].errors
    assert _snapshot() == before


def test_bulk_actions_refuse_other_subtrees_subscribers(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    before = _snapshot()
    response = client.post(
        reverse("console:bulk_start"),
        {"kind": "suspend", "subscribers": [tree.north.subscribers[0].pk, tree.south.subscribers[0].pk]},
    )
    assert response.status_code == 302
    assert _snapshot() == before


def test_filters_naming_another_subtrees_zone_list_nothing(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    response = client.get(reverse("console:subscribers"), {"zone": tree.south.zone.pk})
    assert response.status_code == 200
    assert "zone" in response.context["form"].errors
    assert list(response.context["page_obj"]) == []
    listed = client.get(reverse("console:subscribers"))
    ids = {row.pk for row in listed.context["page_obj"]}
    assert ids == {s.pk for s in tree.north.subscribers}


def test_catalog_rows_of_another_subtree_are_404(tree):
    client = tree.login(add_staff(tree.north, "owner"))
    assert client.get(reverse("console:package_edit", args=[tree.south.package.pk])).status_code == 404
    assert client.get(reverse("console:zone_edit", args=[tree.south.zone.pk])).status_code == 404
    response = client.post(reverse("console:package_edit", args=[tree.south.package.pk]), {"name": "x", "price": "1"})
    assert response.status_code == 404
    tree.south.package.refresh_from_db()
    assert tree.south.package.name == "South 10M"
    assert client.get(reverse("console:package_edit", args=[tree.north.package.pk])).status_code == 200


def test_the_root_sees_its_resellers_and_a_superuser_without_staff_sees_everything(tree):
    root = tree.login(tree.root.staff["owner"])
    for branch in (tree.root, tree.north, tree.south):
        assert root.get(reverse("console:subscriber", args=[branch.subscribers[0].pk])).status_code == 200
    superuser = User.objects.create_superuser("root-admin", "", "x-long-pass-1")
    client = Client()
    client.force_login(superuser)
    response = client.get(reverse("console:subscribers"))
    assert response.status_code == 200
    assert response.context["page_obj"].paginator.count == Subscriber.objects.count()


def test_a_login_that_sees_only_its_own_operator(tree):
    limited = add_staff(tree.root, "support", sees_subtree=False)
    client = tree.login(limited)
    assert client.get(reverse("console:subscriber", args=[tree.north.subscribers[0].pk])).status_code == 404
    assert client.get(reverse("console:subscriber", args=[tree.root.subscribers[0].pk])).status_code == 200


@pytest.mark.parametrize(
    ("role", "method", "name", "args"),
    [
        ("collector", "post", "subscriber_adjustment", "subscriber"),
        ("collector", "post", "entry_reverse", "entry"),
        ("collector", "post", "generate", None),
        ("collector", "post", "subscriber_create", None),
        ("collector", "post", "subscriber_intent", "subscriber"),
        ("collector", "post", "bulk_start", None),
        ("collector", "get", "billing", None),
        ("support", "post", "subscriber_payment", "subscriber"),
        ("support", "get", "collect", None),
        ("billing_clerk", "post", "invoice_void", "invoice"),
        ("billing_clerk", "post", "subscriber_terminate", "subscriber"),
        ("billing_clerk", "post", "package_create", None),
        ("billing_clerk", "get", "routers", None),
        ("reseller_staff", "post", "subscriber_adjustment", "subscriber"),
        ("reseller_staff", "post", "generate", None),
    ],
)
def test_roles_without_the_permission_get_403(tree, role, method, name, args):
    subscriber = tree.north.subscribers[0]
    payment = payment_receive(subscriber=subscriber, amount=subscriber_invoice(subscriber).total, method="cash")
    values = {
        "subscriber": [subscriber.pk],
        "entry": [subscriber.pk, payment.entries.get().pk],
        "invoice": [subscriber_invoice(subscriber).pk],
        None: [],
    }
    client = tree.login(tree.north.staff[role])
    before = _snapshot()
    response = getattr(client, method)(reverse(f"console:{name}", args=values[args]), {"reason": "x", "amount": "1"})
    assert response.status_code == 403
    assert _snapshot() == before


def test_reversing_an_invoiced_bill_needs_the_void_permission(tree):
    subscriber = tree.north.subscribers[0]
    bill_entry = LedgerEntry.objects.filter(subscriber=subscriber, kind="bill").earliest("pk")
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:entry_reverse", args=[subscriber.pk, bill_entry.pk])
    assert client.post(url, {"reason": "wrong bill"}).status_code == 403
    assert not LedgerEntry.objects.filter(reverses=bill_entry).exists()
