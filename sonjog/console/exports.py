"""Subscriber exports: CSV streamed row by row, XLSX written by openpyxl in write-only mode (constant
memory whatever the row count)."""

from __future__ import annotations

import csv
import io
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
            yield writer.writerow(["" if value is None else value for value in _values(subscriber)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
    return response


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
        sheet.append(_values(subscriber))
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(
        buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename("xlsx")}"'
    return response
