"""The Floats pages: the parent lists its resellers' floats, opens one, tops it up (with a receipt),
adjusts it and changes its settings; the reseller's own staff see their float read-only; every id is
scoped. And the tariff mapper's fields on a reseller's package."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from sonjog.billing.models import BillingRun, FloatAccount, FloatEntry
from sonjog.billing.services import bill_generate_period
from sonjog.billing.services.floats import float_account_open, float_topup
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.catalog.services import package_wholesale_set
from sonjog.conftest import make_package
from sonjog.console.tests.conftest import Tree
from sonjog.core.periods import add_months, month_start

pytestmark = pytest.mark.django_db
M = Decimal

OPEN = {
    "credit_limit": "500.00",
    "minimum_balance": "",
    "low_balance_alert": "100.00",
    "credit_back": "prorated",
}


def _floats_of(tree: Tree) -> dict[str, FloatAccount]:
    return {account.operator.code: account for account in FloatAccount.objects.select_related("operator")}


def _package_form(package: Package, **extra: str) -> dict[str, str]:
    return {
        "name": package.name,
        "price": str(package.price),
        "download_mbps": "10",
        "upload_mbps": "10",
        "router_profile": package.router_profile,
        "is_active": "on",
        **extra,
    }


def test_the_list_shows_each_reseller_with_its_float_or_an_open_button(tree):
    account = float_account_open(operator=tree.north.operator, credit_limit=M("250.00"), minimum_balance=M("50"))
    float_topup(operator=tree.north.operator, amount=M("1200.00"), method="cash")
    client = tree.login(tree.root.staff["owner"])
    response = client.get(reverse("console:floats"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-operator="{tree.north.operator.code}"' in body
    assert f'data-operator="{tree.south.operator.code}"' in body
    assert reverse("console:float", args=[account.pk]) in body
    assert "1,200.00" in body and "250.00" in body and "50.00" in body
    assert f"?open={tree.south.operator.pk}" in body
    assert f"?open={tree.north.operator.pk}" not in body
    assert reverse("console:floats") in client.get(reverse("console:dashboard")).content.decode()


def test_opening_a_float(tree):
    client = tree.login(tree.root.staff["owner"])
    shown = client.get(reverse("console:floats"), {"open": tree.south.operator.pk})
    assert 'id="float-open-form"' in shown.content.decode()
    response = client.post(reverse("console:floats"), {**OPEN, "operator": str(tree.south.operator.pk)})
    account = FloatAccount.objects.get(operator=tree.south.operator)
    assert response.status_code == 302 and response["Location"] == reverse("console:float", args=[account.pk])
    assert (account.credit_limit, account.minimum_balance, account.low_balance_alert) == (M("500"), None, M("100"))
    # The root ISP keeps no float: it is not offered, and naming it is a form error.
    refused = client.post(reverse("console:floats"), {**OPEN, "operator": str(tree.root.operator.pk)})
    assert refused.status_code == 400
    assert not FloatAccount.objects.filter(operator=tree.root.operator).exists()


def test_a_top_up_shows_its_receipt(tree):
    account = float_account_open(operator=tree.north.operator)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:float", args=[account.pk])
    response = client.post(
        url,
        {
            "action": "topup",
            "topup-amount": "2500.00",
            "topup-method": "bkash",
            "topup-reference": "TRX-991",
            "topup-memo": "June float",
        },
        follow=True,
    )
    entry = FloatEntry.objects.get(account=account)
    assert (entry.kind, entry.amount, entry.balance_after, entry.reference) == (
        "topup",
        M("2500"),
        M("2500"),
        "TRX-991",
    )
    assert entry.created_by == tree.root.staff["owner"]
    body = response.content.decode()
    assert response.status_code == 200 and 'id="float-receipt"' in body
    receipt = body.split('id="float-receipt"')[1].split("</section>")[0]
    assert f"<dd data-entry>{entry.pk}</dd>" in receipt
    assert "2,500.00" in receipt and "TRX-991" in receipt and "bKash" in receipt
    assert tree.root.staff["owner"].username in receipt
    assert FloatAccount.objects.get(pk=account.pk).balance == M("2500.00")


@pytest.mark.parametrize(
    "changes",
    [
        {"topup-amount": "0"},
        {"topup-amount": "-10"},
        {"topup-amount": "1.001"},
        {"topup-amount": "1e20"},
        {"topup-amount": "NaN"},
        {"topup-method": "cheque"},
        {"topup-method": "bank", "topup-reference": ""},
    ],
)
def test_a_bad_top_up_is_a_form_error_and_writes_nothing(tree, changes):
    account = float_account_open(operator=tree.north.operator)
    client = tree.login(tree.root.staff["owner"])
    data = {"action": "topup", "topup-amount": "100.00", "topup-method": "cash", "topup-reference": "", **changes}
    response = client.post(reverse("console:float", args=[account.pk]), data)
    assert response.status_code == 400
    assert 'id="float-topup-form"' in response.content.decode()
    assert not FloatEntry.objects.filter(account=account).exists()
    assert FloatAccount.objects.get(pk=account.pk).balance == 0


def test_an_adjustment_needs_a_note_and_a_floor_refusal_is_a_form_error(tree):
    account = float_account_open(operator=tree.north.operator)
    float_topup(operator=tree.north.operator, amount=M("300.00"), method="cash")
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:float", args=[account.pk])
    assert client.post(url, {"action": "adjust", "adjust-amount": "-50.00", "adjust-memo": ""}).status_code == 400
    below = client.post(url, {"action": "adjust", "adjust-amount": "-400.00", "adjust-memo": "too much"})
    assert below.status_code == 400 and "cannot cover" in below.content.decode()
    done = client.post(url, {"action": "adjust", "adjust-amount": "-50.00", "adjust-memo": "cable bought for them"})
    assert done.status_code == 302
    entry = FloatEntry.objects.filter(account=account).latest("pk")
    assert (entry.kind, entry.amount, entry.memo) == ("adjustment", M("-50.00"), "cable bought for them")
    assert FloatAccount.objects.get(pk=account.pk).balance == M("250.00")


def test_the_settings_form_changes_the_float(tree):
    account = float_account_open(operator=tree.north.operator)
    client = tree.login(tree.root.staff["owner"])
    response = client.post(
        reverse("console:float", args=[account.pk]),
        {
            "action": "settings",
            "settings-credit_limit": "1000.00",
            "settings-minimum_balance": "-200.00",
            "settings-hold_renewals": "on",
            "settings-low_balance_alert": "300.00",
            "settings-credit_back": "full",
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.credit_limit, account.minimum_balance, account.hold_renewals, account.credit_back) == (
        M("1000"),
        M("-200"),
        True,
        "full",
    )


def test_the_statement_lists_charges_with_the_subscriber_and_the_wholesale_price(tree):
    north = tree.north
    root_package = make_package(tree.root.operator, "700.00", vat=False, name="Root wholesale 10M")
    package_wholesale_set(package=north.package, parent_package=root_package, wholesale_price=M("450.00"))
    account = float_account_open(operator=north.operator)
    float_topup(operator=north.operator, amount=M("5000.00"), method="cash")
    next_month = add_months(month_start(operator_today(north.operator)), 1)
    bill_generate_period(operator=north.operator, period_month=next_month, trigger=BillingRun.Trigger.STAFF)
    charges = FloatEntry.objects.filter(account=account, kind="charge")
    assert charges.count() == 2
    for login in (tree.root.staff["owner"], north.staff["reseller_staff"]):
        body = tree.login(login).get(reverse("console:float", args=[account.pk])).content.decode()
        rows = body.split('id="float-entries"')[1]
        assert rows.index('data-kind="charge"') < rows.index('data-kind="topup"')  # newest first
        subscriber_id = charges.values_list("subscriber_id", flat=True)[0]
        assert reverse("console:subscriber", args=[subscriber_id]) in rows
        assert "450.00" in rows and north.package.name in rows


def test_the_resellers_staff_see_their_float_read_only_and_cannot_move_it(tree):
    account = float_account_open(operator=tree.north.operator)
    float_topup(operator=tree.north.operator, amount=M("800.00"), method="cash")
    url = reverse("console:float", args=[account.pk])
    for role in ("reseller_staff", "billing_clerk"):
        client = tree.login(tree.north.staff[role])
        response = client.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        assert 'id="float-read-only"' in body and "800.00" in body
        assert 'id="float-topup-form"' not in body and 'id="float-adjust-form"' not in body
        assert 'id="float-settings-form"' not in body
        for data in (
            {"action": "topup", "topup-amount": "100.00", "topup-method": "cash"},
            {"action": "adjust", "adjust-amount": "100.00", "adjust-memo": "mine"},
            {"action": "settings", **{f"settings-{name}": value for name, value in OPEN.items()}},
        ):
            assert client.post(url, data).status_code == 404
    assert FloatEntry.objects.filter(account=account).count() == 1
    assert FloatAccount.objects.get(pk=account.pk).credit_limit == 0
    # Not the parent side: the Floats list is not theirs either.
    assert tree.login(tree.north.staff["reseller_staff"]).get(reverse("console:floats")).status_code == 403


def test_another_resellers_float_is_a_404(tree):
    south = float_account_open(operator=tree.south.operator)
    float_topup(operator=tree.south.operator, amount=M("900.00"), method="cash", memo="south's own money")
    url = reverse("console:float", args=[south.pk])
    client = tree.login(tree.north.staff["reseller_staff"])
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "topup", "topup-amount": "1.00", "topup-method": "cash"}).status_code == 404
    assert tree.login(tree.north.staff["billing_clerk"]).get(url).status_code == 404
    assert FloatEntry.objects.filter(account=south).count() == 1
    # The root's billing clerk reads it but does not move it (moving a float is the owner's).
    clerk = tree.login(tree.root.staff["billing_clerk"])
    assert clerk.get(url).status_code == 200
    assert clerk.post(url, {"action": "topup", "topup-amount": "1.00", "topup-method": "cash"}).status_code == 403
    assert tree.login(tree.root.staff["owner"]).get(reverse("console:float", args=[south.pk + 999])).status_code == 404


def test_the_package_form_maps_a_resellers_package_to_its_parents(tree):
    root_package = make_package(tree.root.operator, "700.00", vat=False, name="Root wholesale 10M")
    package = tree.north.package
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:package_edit", args=[package.pk])
    shown = client.get(url).content.decode()
    assert 'id="wholesale"' in shown and "Root wholesale 10M" in shown
    saved = client.post(url, _package_form(package, wholesale_package=str(root_package.pk), wholesale_price="450.00"))
    assert saved.status_code == 302, saved.content.decode()
    package.refresh_from_db()
    assert (package.wholesale_package_id, package.wholesale_price) == (root_package.pk, M("450.00"))
    # The reseller's own staff see the mapping but cannot set it.
    owner = tree.login(tree.north.staff.get("owner") or _north_owner(tree))
    mine = owner.get(url).content.decode()
    assert "data-wholesale" in mine and 'name="wholesale_price"' not in mine


def _north_owner(tree):
    from sonjog.console.tests.conftest import add_staff

    return add_staff(tree.north, "owner")


@pytest.mark.parametrize(
    "changes",
    [
        {"wholesale_package": "south", "wholesale_price": "450.00"},
        {"wholesale_package": "own", "wholesale_price": "450.00"},
        {"wholesale_package": "root", "wholesale_price": ""},
        {"wholesale_package": "", "wholesale_price": "450.00"},
        {"wholesale_package": "root", "wholesale_price": "-1"},
        {"wholesale_package": "root", "wholesale_price": "1.001"},
    ],
)
def test_a_wrong_wholesale_mapping_is_refused_and_nothing_is_saved(tree, changes):
    root_package = make_package(tree.root.operator, "700.00", vat=False, name="Root wholesale 10M")
    package = tree.north.package
    named = {"south": str(tree.south.package.pk), "own": str(package.pk), "root": str(root_package.pk), "": ""}
    data = _package_form(
        package, name="Renamed", **{**changes, "wholesale_package": named[changes["wholesale_package"]]}
    )
    response = tree.login(tree.root.staff["owner"]).post(reverse("console:package_edit", args=[package.pk]), data)
    assert response.status_code == 400
    package.refresh_from_db()
    assert (package.name, package.wholesale_package_id, package.wholesale_price) == ("North 10M", None, None)


def test_a_root_package_has_no_wholesale_fields(tree):
    body = tree.login(tree.root.staff["owner"]).get(reverse("console:package_edit", args=[tree.root.package.pk]))
    assert 'id="wholesale"' not in body.content.decode()
