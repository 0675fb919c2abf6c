"""Subscriber exports: CSV streamed row by row, XLSX written by openpyxl in write-only mode (constant
memory whatever the row count).

Names, addresses and the other text in an export were typed by somebody, perhaps somebody hostile. A
spreadsheet program reads a cell that starts with =, +, -, @, a tab or a carriage return as a formula
(OWASP "CSV injection"), so such text gets a leading single quote, in both formats: a CSV cell is text
either way, and an XLSX saved on as CSV must stay harmless. Numbers that are numbers (a due of -250.00
is a Decimal) are left as they are, and so is text that is nothing but a signed number (a phone
number, +8801712345678): no formula hides in it. In XLSX every text cell is written as a string, never
a formula, and characters XML cannot hold (control characters in rows stored before input was
checked) are dropped rather than failing the whole export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.customers.models import Subscriber


def _headers() -> list[str]:
    return [
        _("Customer ID"),
        _("Name"),
        _("Phone"),
        _("E-mail"),
        _("Address"),
        _("Zone"),
        _("Package"),
        _("Monthly price"),
        _("Status"),
        _("Billing mode"),
        _("Activated"),
        _("Due"),
        _("Session"),
        _("Operator"),
    ]


def _values(subscriber: Subscriber) -> list[Any]:
    mode = subscriber.billing_mode or subscriber.operator.billing_mode
    return [
        subscriber.customer_id,
        subscriber.name,
        subscriber.phone,
        subscriber.email,
        subscriber.address,
        str(subscriber.zone) if subscriber.zone_id else "",
        subscriber.package.name,
        subscriber.package.price,
        subscriber.service_intent,
        mode,
        subscriber.activation_date,
        subscriber.due,  # type: ignore[attr-defined]
        subscriber.session_state,
        subscriber.operator.code,
    ]


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralised(value: Any) -> Any:
    """`value` as a spreadsheet must show it: text a program would run as a formula gets a leading
    single quote; numbers, dates and other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _SIGNED_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _filename(extension: str) -> str:
    return f"subscribers-{timezone.localdate():%Y%m%d}.{extension}"


class _Echo:
    def write(self, value: str) -> str:
        return value


def subscribers_csv(rows: QuerySet[Subscriber]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        # A byte-order mark so spreadsheet programs read Bangla names as UTF-8.
        yield "\ufeff" + writer.writerow(_headers())
        for subscriber in rows.iterator(chunk_size=2000):
            yield writer.writerow(["" if value is None else neutralised(value) for value in _values(subscriber)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
    return response


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=neutralised(_NOT_IN_XML.sub("", value)))
    # openpyxl takes any text starting with "=" for a formula; this cell holds text.
    cell.data_type = "s"
    return cell


def subscribers_xlsx(rows: QuerySet[Subscriber]) -> HttpResponse:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Subscribers"))
    bold = Font(bold=True)
    header = []
    for title in _headers():
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for subscriber in rows.iterator(chunk_size=2000):
        sheet.append([_xlsx_cell(sheet, value) for value in _values(subscriber)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(
        buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename("xlsx")}"'
    return response
