"""Defects found walking the demo ISP's console as its staff would, in English and in Bangla: links a
collector cannot open, English and Latin digits left on Bangla pages, money without the currency,
months written as numbers, and a sidebar entry laid out unlike the others."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from sonjog.automation.services import reminder_rule_create
from sonjog.billing.models import BillLine, Invoice
from sonjog.billing.terms import operator_today
from sonjog.conftest import make_subscriber
from sonjog.console import formatting
from sonjog.console.tests.conftest import Tree
from sonjog.core.jobs import run_worker_cycle
from sonjog.core.periods import add_months, month_start
from sonjog.flows.payments import payment_receive
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create
from sonjog.transfer.columns import FIELDS
from sonjog.transfer.models import ImportBatch

pytestmark = pytest.mark.django_db

BENGALI_DIGITS = re.compile("[০-৯]")


def _in_bangla(client: Client) -> Client:
    """Switch the login to Bangla the way the console's language select does."""
    response = client.post(reverse("console:language"), {"language": "bn"})
    assert response.status_code == 302
    return client


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="(/[^"]*)"', html)


def _options(html: str, select_name: str) -> list[str]:
    found = re.search(rf'<select name="{select_name}"[^>]*>(.*?)</select>', html, re.S)
    assert found is not None, select_name
    return [label.strip() for label in re.findall(r"<option[^>]*>(.*?)</option>", found.group(1), re.S)]


# -- a collector's view of a subscriber ----------------------------------------------------------------


def test_a_collector_is_shown_no_link_on_the_profile_that_it_cannot_open(tree: Tree):
    """A collector saw every invoice (403) and other people's receipts (404) as links on the profile."""
    north = tree.north
    subscriber = north.subscribers[0]
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")
    by_clerk = payment_receive(
        subscriber=subscriber, amount=Decimal("100.00"), method="cash", collector=north.staff["billing_clerk"]
    )
    by_collector = payment_receive(
        subscriber=subscriber, amount=Decimal("200.00"), method="cash", collector=north.staff["collector"]
    )
    client = tree.login(north.staff["collector"])
    html = client.get(reverse("console:subscriber", args=[subscriber.pk])).content.decode()

    assert str(invoice) in html  # the number is still shown
    assert reverse("console:invoice", args=[invoice.pk]) not in html
    assert reverse("console:invoice_pdf", args=[invoice.pk]) not in html
    assert reverse("console:receipt", args=[by_clerk.pk]) not in html
    assert reverse("console:receipt", args=[by_collector.pk]) in html
    broken = {
        href: status
        for href in set(_hrefs(html))
        if not href.startswith(("/static/", "/logout/"))
        and (status := client.get(href, follow=True).status_code) != 200
    }
    assert not broken, broken
    # Whoever may open invoices and every receipt still gets the links.
    clerk_html = tree.login(north.staff["billing_clerk"]).get(reverse("console:subscriber", args=[subscriber.pk]))
    assert reverse("console:invoice", args=[invoice.pk]) in clerk_html.content.decode()
    assert reverse("console:receipt", args=[by_collector.pk]) in clerk_html.content.decode()


# -- English left on Bangla pages ----------------------------------------------------------------------


def test_the_invoice_names_its_discount_line_in_the_readers_language(tree: Tree):
    """Billing writes the discount line as the English word "Discount"; the Bangla invoice showed it."""
    root = tree.root
    today = operator_today(root.operator)
    subscriber = make_subscriber(
        root.operator, root.package, today - dt.timedelta(days=3), zone=root.zone, monthly_discount=Decimal("50.00")
    )
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).latest("pk")
    assert invoice.bill.lines.filter(kind=BillLine.Kind.DISCOUNT, description="Discount").exists()
    client = _in_bangla(tree.login(root.staff["owner"]))
    html = client.get(reverse("console:invoice", args=[invoice.pk])).content.decode()
    discount_row = re.search(r'<tr data-kind="discount"><td>(.*?)</td>', html)
    assert discount_row is not None
    with translation.override("bn"):
        assert discount_row.group(1) == str(BillLine.Kind.DISCOUNT.label) != "Discount"
    english = tree.login(root.staff["billing_clerk"]).get(reverse("console:invoice", args=[invoice.pk]))
    assert '<tr data-kind="discount"><td>Discount</td>' in english.content.decode()


def test_the_void_page_names_the_payment_method_not_its_code(tree: Tree):
    root = tree.root
    subscriber = root.subscribers[0]
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")
    payment_receive(subscriber=subscriber, amount=invoice.total, method="bkash", reference="TX-1")
    html = tree.login(root.staff["owner"]).get(reverse("console:invoice_void", args=[invoice.pk])).content.decode()
    assert "<td>bKash</td>" in html and "<td>bkash</td>" not in html


def test_bill_ahead_offers_months_by_name(tree: Tree):
    """The months were offered as "01/2027" in both languages."""
    root = tree.root
    subscriber = root.subscribers[0]
    next_month = add_months(month_start(operator_today(root.operator)), 1)
    url = reverse("console:subscriber_bill_ahead", args=[subscriber.pk])
    english = tree.login(root.staff["owner"]).get(url).content.decode()
    with translation.override("en"):
        assert formatting.period_label(next_month) in _options(english, "through")
    assert f"{next_month:%m/%Y}" not in english
    bangla = _in_bangla(tree.login(root.staff["billing_clerk"])).get(url).content.decode()
    with translation.override("bn"):
        named = formatting.period_label(next_month)
    assert named in _options(bangla, "through") and BENGALI_DIGITS.search(named)


def test_package_and_add_on_pickers_price_in_the_operators_currency(tree: Tree):
    """Package and add-on choices read "Home 10 Mbps (1000.00)": no currency, Latin digits in Bangla."""
    root = tree.root
    owner = tree.login(root.staff["owner"])
    create_form = owner.get(reverse("console:subscriber_create")).content.decode()
    assert f"{root.package.name} (৳1,000.00) — {root.operator.name}" in _options(create_form, "package")
    clerk = _in_bangla(tree.login(tree.north.staff["billing_clerk"]))
    listing = clerk.get(reverse("console:subscribers")).content.decode()
    assert f"{tree.north.package.name} (৳১,০০০.০০)" in _options(listing, "package")
    bulk_choices = re.search(r'<select name="package" id="bulk-package">(.*?)</select>', listing, re.S)
    assert bulk_choices is not None and "(৳১,০০০.০০)" in bulk_choices.group(1)
    change = clerk.get(reverse("console:subscriber_package", args=[tree.north.subscribers[0].pk])).content.decode()
    assert "(1000.00)" not in change


# -- numbers in the reader's digits ---------------------------------------------------------------------


def test_counts_rates_and_offsets_use_bengali_digits_on_bangla_pages(tree: Tree):
    root = tree.root
    router = router_create(operator=root.operator, name="core-walk", address="127.0.0.1", api_port=1)
    reminder_rule_create(operator=root.operator, event="bill_due", offset_days=-3)
    client = _in_bangla(tree.login(root.staff["owner"]))

    backups = client.get(reverse("console:router_backups", args=[router.pk])).content.decode()
    assert "১০" in backups and "newest 10" not in backups and " 10টি" not in backups
    roles = client.get(reverse("console:role_edit", args=[root.operator.pk]), {"role": "owner"}).content.decode()
    # The count in Bengali digits, whether or not the sentence around it is translated yet.
    assert re.search(r'<p class="muted small">১(টি| active)', roles), roles
    operators = client.get(reverse("console:operators")).content.decode()
    assert "0.00%" not in operators and "০.০০%" in operators
    rules = client.get(reverse("console:automation_rules")).content.decode()
    assert '<td class="num">-৩</td>' in rules


@pytest.fixture
def emulator():
    emu = RouterOSEmulator(username="sonjog", password="r0uter-secret", identity="core-walk").start()
    try:
        yield emu
    finally:
        emu.stop()


def test_the_router_read_page_gives_memory_in_units_and_the_load_as_a_percentage(tree: Tree, emulator):
    """Memory read as raw byte counts ("912261120 / 1073741824"), the CPU load as "1 %"."""
    root = tree.root
    router = router_create(
        operator=root.operator,
        name="core-walk",
        address="127.0.0.1",
        api_port=emulator.port,
        username="sonjog",
        password="r0uter-secret",
    )
    client = tree.login(root.staff["owner"])
    read = client.get(reverse("console:router_read", args=[router.pk]))
    details = read.context["details"]
    memory = re.search(r'<dd id="router-memory">(.*?)</dd>', read.content.decode(), re.S)
    assert memory is not None
    assert details["total_memory"] not in memory.group(1) and ("MB" in memory.group(1) or "GB" in memory.group(1))
    assert f"<dd>{details['cpu_load']}%</dd>" in read.content.decode()
    bangla = _in_bangla(client).get(reverse("console:router_read", args=[router.pk])).content.decode()
    memory = re.search(r'<dd id="router-memory">(.*?)</dd>', bangla, re.S)
    assert memory is not None and BENGALI_DIGITS.search(memory.group(1))


@pytest.mark.django_db(transaction=True)
def test_one_imported_subscriber_is_said_in_the_singular(tree: Tree):
    north = tree.north
    client = tree.login(north.staff["reseller_staff"])
    text = f"Name,Mobile,Package\nOnly One,01715000001,{north.package.name}\n"
    client.post(
        reverse("console:import"),
        {"kind": "file", "operator": north.operator.pk, "file": SimpleUploadedFile("one.csv", text.encode())},
    )
    batch = ImportBatch.objects.get()
    mapping = {f"map_{field.key}": batch.mapping.get(field.key, "") for field in FIELDS}
    mapping.update({"billing_from": "next", "balance_sign": "owes", "apply": "1"})
    client.post(reverse("console:import_batch", args=[batch.pk]), mapping)
    run_worker_cycle(queues=["console"])
    progress = client.get(reverse("console:import_batch", args=[batch.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "1 subscriber imported, 0 with an opening balance." in progress
    assert "1 subscribers" not in progress


def test_the_ticked_count_of_the_bulk_bar_starts_in_the_readers_digits(tree: Tree):
    """The bulk bar said "0 বেছে নেওয়া" (console.js keeps the count in the page's digits as boxes are ticked)."""
    client = _in_bangla(tree.login(tree.root.staff["owner"]))
    assert '<span id="bulk-count">০</span>' in client.get(reverse("console:subscribers")).content.decode()
    script = (Path(__file__).resolve().parents[1] / "static" / "console" / "console.js").read_text()
    assert "counter.textContent = localDigits(ticked)" in script


# -- layout ---------------------------------------------------------------------------------------------


def test_the_sidebars_sign_out_everywhere_entry_is_laid_out_like_its_links(tree: Tree):
    """The entry is a button styled `linklike` (no padding); its own `.nav-button` padding lost to that
    rule, so it sat flush against the sidebar's edge. A rule more specific than `button.linklike`
    gives it the links' padding."""
    html = tree.login(tree.root.staff["owner"]).get(reverse("console:dashboard")).content.decode()
    assert 'class="linklike nav-button"' in html
    css = (Path(__file__).resolve().parents[1] / "static" / "console" / "console.css").read_text()
    link_padding = re.search(r"\.sidebar a \{[^}]*padding: ([^;]+);", css)
    button_rule = re.search(r"\.sidebar button\.nav-button \{([^}]*)\}", css)
    assert link_padding is not None and button_rule is not None
    assert f"padding: {link_padding.group(1)};" in button_rule.group(1)
    assert "display: block" in button_rule.group(1)
