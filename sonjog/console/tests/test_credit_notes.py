"""The invoice page shows what each credit of the bill took off which line (issue 9: a credit note
mirrors the lines it credits), and a void that took credits back says so."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from sonjog.billing.models import Invoice
from sonjog.billing.services import bill_credit_add, invoice_void
from sonjog.billing.terms import operator_today

pytestmark = pytest.mark.django_db


def _rows(page: str) -> list[str]:
    """The credits table's rows as text."""
    table = page.split('id="invoice-credits"', 1)[1].split("</table>", 1)[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in table.split("<tr")[2:]]


def test_the_invoice_lists_its_credits_line_by_line(tree):
    subscriber = tree.north.subscribers[0]
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")
    package_line = invoice.bill.lines.get(kind="package").description
    owner = tree.login(tree.root.staff["owner"])
    page = owner.get(reverse("console:invoice", args=[invoice.pk])).content.decode()
    assert 'id="invoice-credits"' not in page
    bill_credit_add(bill=invoice.bill, amount=Decimal("100.00"), memo="router down two days")
    invoice_void(invoice=invoice, reason="billed by mistake")
    page = owner.get(reverse("console:invoice", args=[invoice.pk])).content.decode()
    remainder = invoice.total - Decimal("100.00")
    today = f"{operator_today(subscriber.operator):%d/%m/%Y}"
    assert _rows(page) == [
        f'data-kind="credit"> {today} Credit: router down two days ৳100.00',
        f'class="small" data-line-kind="package"> {package_line} ৳100.00 —',
        # The void took the credit back first, so it credited only what was left of the bill.
        f'data-kind="taken_back"> {today} Credit taken back ৳-100.00',
        f'class="small" data-line-kind="package"> {package_line} ৳-100.00 —',
        f'data-kind="void"> {invoice.bill.period_start:%d/%m/%Y} Void: billed by mistake ৳{invoice.total:,.2f}',
        f'class="small" data-line-kind="package"> {package_line} ৳{invoice.total:,.2f} —',
    ]
    assert invoice.credit_note.amount == remainder  # type: ignore[attr-defined]
