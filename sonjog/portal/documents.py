"""The subscriber's invoice as a PDF (reportlab).

The console draws its invoice PDF in `sonjog.console.pdf`, which is an interface module and so out of
the portal's reach; no app below the interfaces draws one. This is the portal's own, from the same
rows and in the same shape (the operator's header, the service period, each line with its VAT, the
total, a void's credit note). Like the console's it is English with amounts as "BDT 1,234.00":
reportlab cannot shape Bangla script, and the portal's invoice page is the Bangla document.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from sonjog.billing.models import Bill, BillLine, Invoice

_STATE_TEXT = {"void": "Void", "paid": "Paid", "partly_paid": "Partly paid", "unpaid": "Unpaid"}


def _amount(value: Decimal, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def _day(value: dt.date) -> str:
    return f"{value:%d/%m/%Y}"


def _latin(text: str) -> str:
    """What the built-in PDF fonts cannot draw becomes '?', never a box."""
    return text.encode("latin-1", "replace").decode("latin-1")


def vat_rate(bill: Bill) -> Decimal:
    """The rate the bill was charged at, from its own figures (the operator's rate may have changed)."""
    net = bill.total - bill.vat
    return (bill.vat / net * 100).quantize(Decimal("0.1")).normalize() if net > 0 else Decimal("0")


def invoice_pdf(invoice: Invoice, state: str) -> bytes:
    """The invoice of a bill whose payment state (`portal.selectors.bill_state`) is `state`."""
    bill = invoice.bill
    subscriber = bill.subscriber
    operator = subscriber.operator
    currency = operator.currency
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.setTitle(str(invoice))
    width, height = A4
    left, top = 20 * mm, height - 25 * mm
    right = width - left

    page.setFont("Helvetica-Bold", 16)
    page.drawString(left, top, _latin(operator.name))
    page.setFont("Helvetica-Bold", 13)
    page.drawRightString(right, top, "CREDIT NOTE ISSUED - VOID" if invoice.voided_at else "INVOICE")
    y = top - 8 * mm
    page.setFont("Helvetica", 9)
    bin_text = f"BIN {operator.bin_number}" if operator.bin_number else ""
    for detail in (operator.document_address, operator.document_phone, bin_text):
        if detail:
            page.drawString(left, y - 5 * mm, _latin(detail))
            y -= 4.5 * mm

    page.setFont("Helvetica", 10)
    rate = vat_rate(bill)
    for label, value in (
        ("Invoice", str(invoice)),
        ("Issued", _day(invoice.issued_on)),
        ("Service", f"{_day(bill.period_start)} - {_day(bill.period_end - dt.timedelta(days=1))}"),
        ("Due by", _day(bill.due_date)),
        ("VAT rate", f"{rate}%" if bill.vat else "none"),
        ("State", _STATE_TEXT.get(state, state)),
    ):
        page.drawRightString(right - 45 * mm, y, label + ":")
        page.drawString(right - 43 * mm, y, value)
        y -= 5 * mm

    y -= 4 * mm
    page.setFont("Helvetica-Bold", 10)
    page.drawString(left, y, "Bill to")
    page.setFont("Helvetica", 10)
    for line in (f"{subscriber.name} ({subscriber.customer_id})", subscriber.address, subscriber.phone):
        if line:
            y -= 5 * mm
            page.drawString(left, y, _latin(line))

    y -= 12 * mm
    page.setFillColor(colors.HexColor("#eef2f6"))
    page.rect(left, y - 2 * mm, right - left, 8 * mm, stroke=0, fill=1)
    page.setFillColor(colors.black)
    page.setFont("Helvetica-Bold", 10)
    amount_at = right - 42 * mm
    page.drawString(left + 2 * mm, y, "Description")
    page.drawRightString(amount_at, y, "Amount")
    page.drawRightString(right - 2 * mm, y, "VAT")
    page.setFont("Helvetica", 10)
    # Each line with its own VAT; the bill's VAT line is their sum, drawn once below them.
    for bill_line in bill.lines.exclude(kind=BillLine.Kind.VAT).order_by("pk"):
        if y < 40 * mm:
            page.showPage()
            page.setFont("Helvetica", 10)
            y = top
        y -= 7 * mm
        page.drawString(left + 2 * mm, y, _latin(bill_line.description))
        page.drawRightString(amount_at, y, _amount(bill_line.amount, currency))
        page.drawRightString(right - 2 * mm, y, _amount(bill_line.vat, currency) if bill_line.vat else "-")
    y -= 4 * mm
    page.line(left, y, right, y)
    if bill.vat:
        y -= 7 * mm
        page.drawString(left + 2 * mm, y, "VAT")
        page.drawRightString(right - 2 * mm, y, _amount(bill.vat, currency))
    y -= 7 * mm
    page.setFont("Helvetica-Bold", 11)
    page.drawString(left + 2 * mm, y, "Total")
    page.drawRightString(right - 2 * mm, y, _amount(invoice.total, currency))
    credit_note = getattr(invoice, "credit_note", None) if invoice.voided_at else None
    if invoice.voided_at:
        y -= 10 * mm
        page.setFont("Helvetica", 10)
        page.setFillColor(colors.HexColor("#b42318"))
        note = f"Voided by credit note {credit_note}: {credit_note.reason}" if credit_note else "Voided"
        page.drawString(left, y, _latin(note))
        page.setFillColor(colors.black)
    page.setFont("Helvetica", 8)
    page.drawString(left, 15 * mm, _latin(f"{operator.name} - generated by Sonjog"))
    page.showPage()
    page.save()
    return buffer.getvalue()
