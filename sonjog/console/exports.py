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
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.billing.models import Payment
from sonjog.customers.models import Subscriber
from sonjog.transfer.writers import neutralised


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


_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _filename(stem: str, extension: str) -> str:
    return f"{stem}-{timezone.localdate():%Y%m%d}.{extension}"


class _Echo:
    def write(self, value: str) -> str:
        return value


def table_csv(headers: list[str], rows: Iterable[list[Any]], stem: str) -> StreamingHttpResponse:
    """Any list's export as CSV, streamed row by row, text cells neutralised."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        # A byte-order mark so spreadsheet programs read Bangla names as UTF-8.
        yield "\ufeff" + writer.writerow(headers)
        for values in rows:
            yield writer.writerow(["" if value is None else neutralised(value) for value in values])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(stem, "csv")}"'
    return response


def subscribers_csv(rows: QuerySet[Subscriber]) -> StreamingHttpResponse:
    return table_csv(_headers(), (_values(subscriber) for subscriber in rows.iterator(chunk_size=2000)), "subscribers")


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=neutralised(_NOT_IN_XML.sub("", value)))
    # openpyxl takes any text starting with "=" for a formula; this cell holds text.
    cell.data_type = "s"
    return cell


def table_xlsx(headers: list[str], rows: Iterable[list[Any]], stem: str, sheet_title: str) -> HttpResponse:
    """Any list's export as XLSX (openpyxl write-only: constant memory), text cells written as text."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    bold = Font(bold=True)
    header = []
    for title in headers:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for values in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in values])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(
        buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(stem, "xlsx")}"'
    return response


def subscribers_xlsx(rows: QuerySet[Subscriber]) -> HttpResponse:
    return table_xlsx(
        _headers(),
        (_values(subscriber) for subscriber in rows.iterator(chunk_size=2000)),
        "subscribers",
        _("Subscribers"),
    )


# -- payments and the overdue list ----------------------------------------------------------------


def _local(moment: dt.datetime, time_zone: str) -> dt.datetime:
    # Spreadsheets hold no time zones: the operator's wall-clock time, as the page shows it. Named,
    # not the active zone: a streamed CSV is written after the view (and its middleware) returned.
    return moment.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)


def payment_headers() -> list[str]:
    return [
        _("Received"),
        _("Customer ID"),
        _("Subscriber"),
        _("Amount"),
        _("Method"),
        _("Reference"),
        _("Collector"),
        _("Reversed"),
        _("Operator"),
    ]


def payment_rows(payments: QuerySet[Payment], time_zone: str) -> Iterator[list[Any]]:
    for payment in payments.iterator(chunk_size=2000):
        yield [
            _local(payment.received_at, time_zone),
            payment.subscriber.customer_id,
            payment.subscriber.name,
            payment.amount,
            payment.get_method_display(),
            payment.reference,
            payment.collector.get_username() if payment.collector is not None else "",
            _("yes") if payment.reversed else "",  # type: ignore[attr-defined]
            payment.operator.code,
        ]


def overdue_headers() -> list[str]:
    return [
        _("Customer ID"),
        _("Name"),
        _("Phone"),
        _("Zone"),
        _("Status"),
        _("VIP"),
        _("Overdue"),
        _("Owes now"),
        _("Operator"),
    ]


def overdue_rows(subscribers: Iterable[Subscriber]) -> Iterator[list[Any]]:
    for subscriber in subscribers:
        yield [
            subscriber.customer_id,
            subscriber.name,
            subscriber.phone,
            str(subscriber.zone) if subscriber.zone_id else "",
            subscriber.get_service_intent_display(),
            _("yes") if subscriber.is_vip else "",
            subscriber.overdue_amount,  # type: ignore[attr-defined]
            subscriber.due,  # type: ignore[attr-defined]
            subscriber.operator.code,
        ]
