"""The invoice as a PDF (reportlab), the one drawing the console and the portal both hand out.

It lives with the invoice rather than in an interface: the staff's copy and the subscriber's copy are
the same document, and one interface may not import another.

reportlab has no complex-script shaping, so Bangla text cannot be set correctly in a PDF: the PDF is
written in English with amounts as "BDT 1,234.00", and the printable HTML invoice (which the browser
shapes properly) is the Bangla document.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

from django.utils import translation
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from sonjog.billing.models import Bill, BillLine, Invoice
from sonjog.core.formatting import local_date


def _amount(value: Decimal, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def _date(value: dt.date) -> str:
    """A date as the operator's English writes it (day/month/year: sonjog/formats/en), as on the
    printable invoice; the PDF is English whatever the reader's language (see the module docstring)."""
    with translation.override("en"):
        return local_date(value)


def _latin(text: str) -> str:
    """Characters the built-in PDF fonts cannot draw become '?', never a broken glyph box."""
    return text.encode("latin-1", "replace").decode("latin-1")


def vat_rate_of(bill: Bill) -> Decimal:
    """The VAT rate the bill was charged at, read back from its own figures (the operator's rate may
    have changed since)."""
    net = bill.total - bill.vat
    return (bill.vat / net * 100).quantize(Decimal("0.1")).normalize() if net > 0 else Decimal("0")


def payment_state(bill: Bill) -> tuple[str, str]:
    """(key, English label) of what is paid of the bill now: void, paid, partly_paid or unpaid."""
    if bill.reversed_at is not None:
        return "void", "Void"
    if bill.allocated >= bill.total:
        return "paid", "Paid"
    if bill.allocated > 0:
        return "partly_paid", f"Partly paid ({bill.allocated} of {bill.total})"
    return "unpaid", "Unpaid"


def invoice_pdf(invoice: Invoice) -> bytes:
    bill = invoice.bill
    subscriber = bill.subscriber
    operator = subscriber.operator
    currency = operator.currency
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.setTitle(str(invoice))
    width, height = A4
    x, y = 20 * mm, height - 25 * mm

    page.setFont("Helvetica-Bold", 16)
    page.drawString(x, y, _latin(operator.name))
    page.setFont("Helvetica-Bold", 13)
    page.drawRightString(width - x, y, "CREDIT NOTE ISSUED - VOID" if invoice.voided_at else "INVOICE")
    y -= 8 * mm
    page.setFont("Helvetica", 9)
    for detail in (
        operator.document_address,
        operator.document_phone,
        f"BIN {operator.bin_number}" if operator.bin_number else "",
    ):
        if detail:
            page.drawString(x, y - 5 * mm, _latin(detail))
            y -= 4.5 * mm
    page.setFont("Helvetica", 10)
    last_day = bill.period_end - dt.timedelta(days=1)
    for label, value in (
        ("Invoice", str(invoice)),
        ("Issued", _date(invoice.issued_on)),
        ("Service", f"{_date(bill.period_start)} - {_date(last_day)}"),
        ("Due by", _date(bill.due_date)),
        ("VAT rate", f"{vat_rate_of(bill)}%" if bill.vat else "none"),
        ("State", payment_state(bill)[1]),
    ):
        page.drawRightString(width - x - 45 * mm, y, label + ":")
        page.drawString(width - x - 43 * mm, y, value)
        y -= 5 * mm
    y -= 4 * mm
    page.setFont("Helvetica-Bold", 10)
    page.drawString(x, y, "Bill to")
    page.setFont("Helvetica", 10)
    for line in (
        f"{subscriber.name} ({subscriber.customer_id})",
        subscriber.address,
        subscriber.phone,
        f"Zone: {subscriber.zone}" if subscriber.zone_id else "",
    ):
        if line:
            y -= 5 * mm
            page.drawString(x, y, _latin(line))

    y -= 12 * mm
    page.setFillColor(colors.HexColor("#eef2f6"))
    page.rect(x, y - 2 * mm, width - 2 * x, 8 * mm, stroke=0, fill=1)
    page.setFillColor(colors.black)
    page.setFont("Helvetica-Bold", 10)
    amount_right = width - x - 42 * mm
    page.drawString(x + 2 * mm, y, "Description")
    page.drawRightString(amount_right, y, "Amount")
    page.drawRightString(width - x - 2 * mm, y, "VAT")
    page.setFont("Helvetica", 10)
    # Every line with its own VAT; the bill's VAT line is their sum, drawn once under them.
    for bill_line in bill.lines.order_by("pk"):
        if bill_line.kind == BillLine.Kind.VAT:
            continue
        if y < 40 * mm:
            page.showPage()
            page.setFont("Helvetica", 10)
            y = height - 25 * mm
        y -= 7 * mm
        page.drawString(x + 2 * mm, y, _latin(bill_line.description))
        page.drawRightString(amount_right, y, _amount(bill_line.amount, currency))
        page.drawRightString(width - x - 2 * mm, y, _amount(bill_line.vat, currency) if bill_line.vat else "-")
    y -= 4 * mm
    page.line(x, y, width - x, y)
    if bill.vat:
        y -= 7 * mm
        page.drawString(x + 2 * mm, y, "VAT")
        page.drawRightString(width - x - 2 * mm, y, _amount(bill.vat, currency))
    y -= 7 * mm
    page.setFont("Helvetica-Bold", 11)
    page.drawString(x + 2 * mm, y, "Total")
    page.drawRightString(width - x - 2 * mm, y, _amount(invoice.total, currency))
    if invoice.voided_at:
        credit_note = getattr(invoice, "credit_note", None)
        y -= 10 * mm
        page.setFont("Helvetica", 10)
        page.setFillColor(colors.HexColor("#b42318"))
        note = f"Voided by credit note {credit_note}" if credit_note else "Voided"
        page.drawString(x, y, _latin(note + (f": {credit_note.reason}" if credit_note else "")))
        page.setFillColor(colors.black)
    page.setFont("Helvetica", 8)
    page.drawString(x, 15 * mm, _latin(f"{operator.name} - generated by Sonjog"))
    page.showPage()
    page.save()
    return buffer.getvalue()
