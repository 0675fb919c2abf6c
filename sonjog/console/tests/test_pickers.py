"""Pickers follow the operator: package and zone choices name their operator for a login that sees
several, the new-subscriber form offers the chosen operator's only (reloaded when the operator
changes) and says whose a wrong one is; a search lists the subscriber typed in full first; the
payment picker shows what each match owes and how many more there are."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import operator_today
from sonjog.conftest import make_package, make_subscriber
from sonjog.console.formatting import money
from sonjog.console.tests.conftest import PASSWORD
from sonjog.console.views.collection import PICKER_LIMIT
from sonjog.customers.models import Subscriber

pytestmark = pytest.mark.django_db


def _options(html: str, select_name: str) -> list[str]:
    found = re.search(rf'<select name="{select_name}"[^>]*>(.*?)</select>', html, re.S)
    assert found is not None, select_name
    return [label.strip() for label in re.findall(r"<option[^>]*>(.*?)</option>", found.group(1), re.S)]


def test_the_root_owner_sees_each_package_and_zone_with_its_operator(tree):
    html = tree.login(tree.root.staff["owner"]).get(reverse("console:subscriber_create")).content.decode()
    packages = _options(html, "package")
    # The root's own first; the others appear when the operator select changes.
    assert f"Root 10M (৳1,000.00) — {tree.root.operator.name}" in packages
    assert not any("North" in label for label in packages)
    assert f"Root zone — {tree.root.operator.name}" in _options(html, "zone")
    assert 'hx-get="/' in html and 'hx-trigger="change"' in html


def test_changing_the_operator_reloads_its_packages_and_zones(tree):
    client = tree.login(tree.root.staff["owner"])
    response = client.get(
        reverse("console:subscriber_create"),
        {"operator": tree.north.operator.pk},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="operator",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('hx-swap-oob="true"') == 2
    assert _options(html, "package") == ["---------", "North 10M (৳1,000.00) — North reseller"]
    assert _options(html, "zone") == ["---------", "North zone — North reseller"]
    # An operator outside the scope (or garbage) falls back to the login's own.
    other = client.get(
        reverse("console:subscriber_create"), {"operator": "x"}, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER_NAME="operator"
    )
    assert "Root 10M" in other.content.decode()


def test_a_posted_form_offers_the_posted_operators_choices(tree):
    client = tree.login(tree.root.staff["owner"])
    response = client.post(
        reverse("console:subscriber_create"),
        {"operator": tree.south.operator.pk, "name": "", "phone": "01712340009", "package": tree.south.package.pk},
    )
    assert response.status_code == 400
    assert _options(response.content.decode(), "package") == ["---------", "South 10M (৳1,000.00) — South reseller"]


def test_another_operators_package_is_a_field_error_naming_both(tree):
    client = tree.login(tree.root.staff["owner"])
    before = Subscriber.objects.count()
    response = client.post(
        reverse("console:subscriber_create"),
        {
            "operator": tree.north.operator.pk,
            "name": "Karim",
            "phone": "01712340010",
            "package": tree.root.package.pk,
            "zone": tree.south.zone.pk,
            "activate": "on",
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["package"] == [
        f"“Root 10M” is {tree.root.operator.name}'s package; choose one of North reseller's packages."
    ]
    assert errors["zone"] == ["“South zone” is South reseller's zone; choose one of North reseller's zones."]
    assert Subscriber.objects.count() == before


def test_a_login_of_one_operator_sees_plain_labels(tree):
    html = tree.login(tree.north.staff["billing_clerk"]).get(reverse("console:subscriber_create")).content.decode()
    assert _options(html, "package") == ["---------", "North 10M (৳1,000.00)"]
    assert 'hx-trigger="change"' not in html


def test_list_filters_and_package_change_name_the_operator(tree):
    client = tree.login(tree.root.staff["owner"])
    html = client.get(reverse("console:subscribers")).content.decode()
    packages = _options(html, "package")
    assert "North 10M (৳1,000.00) — North reseller" in packages
    assert "South 10M (৳1,000.00) — South reseller" in packages
    assert "North zone — North reseller" in _options(html, "zone")
    subscriber = tree.north.subscribers[0]
    make_package(tree.north.operator, "1500.00", vat=False, name="North 20M")
    change = client.get(reverse("console:subscriber_package", args=[subscriber.pk])).content.decode()
    assert _options(change, "package") == ["---------", "North 20M (৳1,500.00) — North reseller"]
    clerk = tree.login(tree.north.staff["billing_clerk"]).get(reverse("console:subscribers")).content.decode()
    assert _options(clerk, "package") == ["Any package", "North 10M (৳1,000.00)", "North 20M (৳1,500.00)"]


# -- search --------------------------------------------------------------------------------------


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr[^>]*data-subscriber="(\d+)"', html)


def test_the_list_search_puts_an_exact_username_or_customer_id_first(tree):
    branch = tree.north
    today = operator_today(branch.operator)
    # "zz-amin" contains "amin"; "amin" is created later, so it sorts after by customer ID.
    longer = make_subscriber(branch.operator, branch.package, today - dt.timedelta(days=3), pppoe_username="zz-amin")
    exact = make_subscriber(branch.operator, branch.package, today - dt.timedelta(days=3), pppoe_username="amin")
    client = tree.login(branch.staff["billing_clerk"])
    listing = client.get(
        reverse("console:subscribers"), {"q": "AMIN"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="subscriber-results"
    )
    ids = [int(pk) for pk in re.findall(r'name="subscribers" value="(\d+)"', listing.content.decode())]
    assert ids[:2] == [exact.pk, longer.pk]
    # The customer ID typed in full: the same, whatever else contains it.
    first = branch.subscribers[0]
    ids = [
        int(pk)
        for pk in re.findall(
            r'name="subscribers" value="(\d+)"',
            client.get(
                reverse("console:subscribers"),
                {"q": first.customer_id.lower(), "sort": "-customer_id"},
                HTTP_HX_REQUEST="true",
                HTTP_HX_TARGET="subscriber-results",
            ).content.decode(),
        )
    ]
    assert ids[0] == first.pk


def test_the_list_search_puts_an_exact_phone_first(tree):
    branch = tree.north
    today = operator_today(branch.operator)
    exact = make_subscriber(branch.operator, branch.package, today)
    Subscriber.objects.filter(pk=exact.pk).update(phone="+8801812345678", name="Zed Exact")
    # Another whose name holds the same digits sorts first by name, but is not the number typed.
    Subscriber.objects.filter(pk=branch.subscribers[0].pk).update(name="Aaa shop 01812345678")
    client = tree.login(branch.staff["billing_clerk"])
    for typed in ("01812345678", "1812345678"):
        listing = client.get(
            reverse("console:subscribers"),
            {"q": typed, "sort": "name"},
            HTTP_HX_REQUEST="true",
            HTTP_HX_TARGET="subscriber-results",
        ).content.decode()
        ids = [int(pk) for pk in re.findall(r'name="subscribers" value="(\d+)"', listing)]
        assert ids == [exact.pk, branch.subscribers[0].pk], typed


def test_the_payment_picker_shows_what_each_match_owes(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["collector"])
    html = client.get(
        reverse("console:collect"), {"q": subscriber.customer_id}, HTTP_HX_REQUEST="true"
    ).content.decode()
    row = re.search(rf'<tr data-subscriber="{subscriber.pk}">.*?</tr>', html, re.S)
    assert row is not None
    due = subscriber_balance(subscriber.pk)
    assert due > 0
    assert money(due, subscriber.operator.currency) in row.group(0)
    assert 'id="collect-more"' not in html


def test_the_payment_picker_says_how_many_more_matched(tree):
    branch = tree.north
    today = operator_today(branch.operator)
    for _ in range(PICKER_LIMIT + 3 - len(branch.subscribers)):
        make_subscriber(branch.operator, branch.package, today)
    client = tree.login(branch.staff["collector"])
    html = client.get(reverse("console:collect"), {"q": "Test Subscriber"}, HTTP_HX_REQUEST="true").content.decode()
    assert len(_rows(html)) == PICKER_LIMIT
    assert "3 more matches — refine the search." in html
    # The exact customer ID comes first even when many others match the text.
    last = Subscriber.objects.filter(operator=branch.operator).order_by("-customer_id").first()
    assert last is not None
    html = client.get(reverse("console:collect"), {"q": last.customer_id}, HTTP_HX_REQUEST="true").content.decode()
    assert _rows(html)[0] == str(last.pk)


# -- in a real browser --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_choices_follow_the_operator_and_the_password_shows_once(tree, live_server, browser):
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", tree.root.staff["owner"].username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.goto(live_server.url + reverse("console:subscriber_create"))
    expect(page.locator("#id_package")).to_contain_text("Root 10M (৳1,000.00) — ")
    page.select_option("#id_operator", str(tree.north.operator.pk))
    expect(page.locator("#id_package")).to_contain_text("North 10M (৳1,000.00) — North reseller")
    expect(page.locator("#id_package")).not_to_contain_text("Root 10M")
    expect(page.locator("#id_zone")).to_contain_text("North zone — North reseller")
    page.fill("#id_name", "Browser Made")
    page.fill("#id_phone", "01712349999")
    page.select_option("#id_package", str(tree.north.package.pk))
    page.click("main button:has-text('Create subscriber')")
    expect(page.locator("#shown-pppoe-password")).to_be_visible()
    subscriber = Subscriber.objects.get(name="Browser Made")
    assert subscriber.operator_id == tree.north.operator.pk
    expect(page.locator("#shown-pppoe-password")).to_have_text(subscriber.pppoe_password)
    page.reload()
    expect(page.locator("#shown-pppoe-password")).to_have_count(0)
    page.click("[data-action=reveal-password]")
    expect(page.locator("#shown-pppoe-password")).to_have_text(subscriber.pppoe_password)
