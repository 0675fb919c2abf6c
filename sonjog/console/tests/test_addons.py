"""Add-ons in the console: the catalogue page under Setup, the profile's panel (activate, end), the
invoice and its PDF with each line's VAT, the period summary's column and the dashboard card; every
id a request names is looked up in the caller's subtree."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import re
import zlib
from decimal import Decimal

import pytest
from django.urls import reverse

from sonjog.billing.models import Bill, BillLine, Invoice
from sonjog.billing.services import bill_generate_period
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import AddOn
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.console.tests.conftest import add_staff
from sonjog.core.models import AuditEvent
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import SubscriberAddOn
from sonjog.flows.subscribers import subscriber_activate, subscriber_addon_activate
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db


def _addon(branch, name="Static IP", price="300.00", **fields):
    return addon_create(operator=branch.operator, name=name, price=Decimal(price), **fields)


def pdf_text(content: bytes) -> str:
    """The text operators a reportlab PDF draws: its page streams (ASCII85 over Flate), decoded with the
    standard library, since no PDF text extractor is installed."""
    found = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", content, re.DOTALL):
        data = stream.strip()
        if data.endswith(b"~>"):
            data = base64.a85decode(data[:-2])
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        found.append(data.decode("latin-1"))
    return "\n".join(found)


def test_the_catalogue_page_creates_edits_and_takes_addons_off_sale(tree):
    owner = add_staff(tree.north, "owner")
    client = tree.login(owner)
    created = client.post(
        reverse("console:addon_create"),
        {
            "name": "Gaming boost",
            "price": "150",
            "vat_applicable": "on",
            "effect": "address_list",
            "effect_value": "gaming",
            "is_active": "on",
        },
    )
    assert created.status_code == 302
    boost = AddOn.objects.get(name="Gaming boost")
    assert (boost.operator, boost.price, boost.effect_value) == (tree.north.operator, Decimal("150.00"), "gaming")
    listed = client.get(reverse("console:addons"))
    assert listed.status_code == 200 and "Gaming boost" in listed.content.decode()
    # Bad input is a field error with nothing written.
    for body, field in (
        ({"name": "Free", "price": "0", "effect": "none"}, "price"),
        ({"name": "Huge", "price": "1e20", "effect": "none"}, "price"),
        ({"name": "Listed", "price": "10", "effect": "address_list", "effect_value": ""}, "effect_value"),
        ({"name": "", "price": "10", "effect": "none"}, "name"),
    ):
        response = client.post(reverse("console:addon_create"), body)
        assert response.status_code == 400 and field in response.context["form"].errors, body
    duplicate = client.post(reverse("console:addon_create"), {"name": "Gaming boost", "price": "1", "effect": "none"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    assert AddOn.objects.filter(operator=tree.north.operator).count() == 1

    edited = client.post(
        reverse("console:addon_edit", args=[boost.pk]),
        {
            "name": "Gaming boost+",
            "price": "175.50",
            "effect": "address_list",
            "effect_value": "gaming",
            "is_active": "on",
        },
    )
    assert edited.status_code == 302
    boost.refresh_from_db()
    assert (boost.name, boost.price, boost.vat_applicable) == ("Gaming boost+", Decimal("175.50"), False)
    audit = AuditEvent.objects.filter(action="addon.update").latest("pk")
    assert audit.detail["before"]["price"] == "150.00" and audit.detail["after"]["price"] == "175.50"

    assert client.post(reverse("console:addon_sale", args=[boost.pk]), {"on_sale": "0"}).status_code == 302
    boost.refresh_from_db()
    assert not boost.is_active
    assert client.get(reverse("console:addon_sale", args=[boost.pk])).status_code == 405


def test_another_operators_addon_is_not_found(tree):
    south_addon = _addon(tree.south, "South IPTV")
    root_addon = _addon(tree.root, "Root IPTV")
    north_owner = tree.login(add_staff(tree.north, "owner"))
    for addon in (south_addon, root_addon):
        assert north_owner.get(reverse("console:addon_edit", args=[addon.pk])).status_code == 404
        assert north_owner.post(reverse("console:addon_sale", args=[addon.pk]), {"on_sale": "0"}).status_code == 404
    listed = north_owner.get(reverse("console:addons")).content.decode()
    assert "South IPTV" not in listed and "Root IPTV" not in listed
    # The root ISP's owner sees its resellers' add-ons.
    root_owner = tree.login(tree.root.staff["owner"])
    assert root_owner.get(reverse("console:addon_edit", args=[south_addon.pk])).status_code == 200
    south_addon.refresh_from_db()
    assert south_addon.is_active


def test_the_profile_activates_and_ends_an_addon_with_the_package_change_permission(tree):
    subscriber = tree.north.subscribers[0]
    static_ip = _addon(tree.north)
    foreign = _addon(tree.south, "South IPTV")
    clerk = tree.login(tree.north.staff["billing_clerk"])
    profile_url = reverse("console:subscriber", args=[subscriber.pk])
    page = clerk.get(profile_url).content.decode()
    assert 'id="addon-activate"' in page and "Static IP" in page and "South IPTV" not in page

    activate_url = reverse("console:subscriber_addon_activate", args=[subscriber.pk])
    refused = clerk.post(activate_url, {"addon": foreign.pk})
    assert refused.status_code == 400 and "addon" in refused.context["form"].errors
    today = operator_today(tree.north.operator)
    assert clerk.post(activate_url, {"addon": static_ip.pk, "start_date": f"{today}"}).status_code == 302
    stretch = SubscriberAddOn.objects.get(subscriber=subscriber)
    assert (stretch.addon, stretch.start_date, stretch.end_date) == (static_ip, today, None)
    # The current period was billed: the rest of it is a one-off charge.
    charge = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
    assert charge.lines.get().subscriber_addon == stretch
    page = clerk.get(profile_url).content.decode()
    assert 'data-action="end-addon"' in page
    again = clerk.post(activate_url, {"addon": static_ip.pk})
    assert again.status_code == 400  # already running: no longer offered

    end_url = reverse("console:subscriber_addon_deactivate", args=[subscriber.pk, static_ip.pk])
    assert clerk.get(end_url).status_code == 200
    # Another operator's add-on id, or one the subscriber does not have, is not found.
    assert (
        clerk.get(reverse("console:subscriber_addon_deactivate", args=[subscriber.pk, foreign.pk])).status_code == 404
    )
    other = _addon(tree.north, "IPTV")
    assert clerk.get(reverse("console:subscriber_addon_deactivate", args=[subscriber.pk, other.pk])).status_code == 404
    ended = clerk.post(end_url, {"end_date": f"{today + dt.timedelta(days=1)}"})
    assert ended.status_code == 302
    stretch.refresh_from_db()
    assert stretch.end_date == today + dt.timedelta(days=1)
    assert AuditEvent.objects.filter(subscriber=subscriber, action="subscriber.addon.deactivate").exists()

    # Support staff see the panel but may not change it.
    support = tree.login(tree.north.staff["support"])
    page = support.get(profile_url).content.decode()
    assert 'id="addons"' in page and 'id="addon-activate"' not in page
    assert support.post(activate_url, {"addon": other.pk}).status_code == 403
    # Another reseller's clerk cannot reach the subscriber at all.
    south_clerk = tree.login(tree.south.staff["billing_clerk"])
    assert south_clerk.post(activate_url, {"addon": other.pk}).status_code == 404
    assert SubscriberAddOn.objects.filter(subscriber=subscriber).count() == 1


def _vat_isp():
    operator = make_operator(vat_rate=Decimal("15.00"), vat_inclusive=False, billing_cycle="calendar")
    package = make_package(operator, "1000.00", vat=True, name="Home 10M")
    static_ip = addon_create(operator=operator, name="Static IP", price=Decimal("300.00"))
    iptv = addon_create(operator=operator, name="IPTV", price=Decimal("199.00"), vat_applicable=False)
    today = operator_today(operator)
    subscriber = make_subscriber(operator, package, activation_date=None)
    for addon in (static_ip, iptv):
        subscriber_addon_activate(subscriber=subscriber, addon=addon, start_date=month_start(today))
    subscriber_activate(subscriber=subscriber, activation_date=month_start(today))
    owner = staff_create(operator=operator, username=f"vat-owner-{operator.pk}", password="x-long-pass-1", role="owner")
    return operator, subscriber, owner.user


def test_the_invoice_and_its_pdf_show_every_line_with_its_vat(tree):
    _operator, subscriber, owner = _vat_isp()
    client = tree.login(owner)
    invoice = Invoice.objects.get(bill__subscriber=subscriber)
    page = client.get(reverse("console:invoice", args=[invoice.pk])).content.decode()
    lines = re.findall(
        r'<tr data-kind="(\w+)"><td>([^<]+)</td><td class="num">([^<]+)</td><td class="num">(.*?)</td>', page
    )
    assert [(kind, name) for kind, name, _amount, _vat in lines] == [
        ("package", "Home 10M"),
        ("addon", "Static IP"),
        ("addon", "IPTV"),
    ]
    assert "৳300.00" in lines[1][2] and "৳45.00" in lines[1][3] and "—" in lines[2][3]
    assert "৳195.00" in page and "৳1,694.00" in page
    pdf = client.get(reverse("console:invoice_pdf", args=[invoice.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for shown in ("(Static IP)", "(BDT 300.00)", "(BDT 45.00)", "(IPTV)", "(BDT 195.00)", "(BDT 1,694.00)"):
        assert shown in text, shown
    assert BillLine.objects.filter(bill=invoice.bill, kind="addon").count() == 2


def test_addon_revenue_on_the_period_summary_and_the_dashboard(tree):
    operator, _subscriber, owner = _vat_isp()
    client = tree.login(owner)
    month = month_start(operator_today(operator))
    billing = client.get(reverse("console:billing"))
    assert billing.status_code == 200
    summary = dict((row.period_month, addons) for row, addons in billing.context["summary"])
    assert summary[month] == Decimal("544.00")  # 300 + 45 VAT + 199
    assert 'data-column="addons">৳544.00' in billing.content.decode()
    cards = {card.key: card for card in client.get(reverse("console:dashboard")).context["cards"]}
    assert cards["addon_revenue"].value == "৳544"
    assert cards["addon_revenue"].url == reverse("console:billing")
    # Next month's run bills them again, as lines of the period bill.
    bill_generate_period(operator=operator, period_month=add_months(month, 1), trigger="cli")
    billing = client.get(reverse("console:billing"))
    summary = dict((row.period_month, addons) for row, addons in billing.context["summary"])
    assert summary[add_months(month, 1)] == Decimal("544.00")
    # Another tenant's figures are not in a reseller's summary.
    north = tree.login(tree.north.staff["billing_clerk"])
    assert all(addons == 0 for _row, addons in north.get(reverse("console:billing")).context["summary"])


@pytest.mark.parametrize("language", ["en", "bn"])
def test_addon_pages_render_in_both_languages(tree, language):
    subscriber = tree.north.subscribers[0]
    static_ip = _addon(tree.north)
    subscriber_addon_activate(subscriber=subscriber, addon=static_ip)
    client = tree.login(tree.root.staff["owner"])
    client.post(reverse("console:language"), {"language": language})
    for url in (
        reverse("console:addons"),
        reverse("console:addon_create"),
        reverse("console:addon_edit", args=[static_ip.pk]),
        reverse("console:subscriber", args=[subscriber.pk]),
        reverse("console:subscriber_addon_activate", args=[subscriber.pk]),
        reverse("console:subscriber_addon_deactivate", args=[subscriber.pk, static_ip.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    nav = client.get(reverse("console:dashboard")).content.decode()
    assert reverse("console:addons") in nav
    if language == "bn":
        assert "অ্যাড-অন" in nav
