"""Writing tables out: CSV (UTF-8 with a byte-order mark, so Excel reads Bangla) and XLSX (openpyxl in
write-only mode), both a row at a time, so the memory used does not grow with the row count.

Cells arrive as Python values: text, Decimal money, dates, naive local datetimes, numbers, None. In a
file, dates are ISO (2026-11-18, 2026-11-18 10:00:00) and money is a plain decimal with two places
(1200.00, -250.00): in CSV as text, in XLSX as real dates and numbers shown that way.

Names, addresses and the other text were typed by somebody, perhaps somebody hostile. A spreadsheet
program reads a cell that starts with =, +, -, @, a tab or a carriage return as a formula (OWASP "CSV
injection"), so such text gets a leading single quote in both formats (an XLSX saved on as CSV must
stay harmless). Text that is nothing but a signed number (a phone number, +8801712345678) holds no
formula and is left alone. In XLSX every text cell is written as a string, never a formula, and the
characters XML cannot hold (control characters in rows stored before input was checked) are dropped
rather than failing the whole file."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import IO, Any

from sonjog.core.money import CENT

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")

# Called with the number of rows written so far, every PROGRESS_EVERY rows and once at the end.
Progress = Callable[[int], None]
PROGRESS_EVERY = 5000

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralised(value: Any) -> Any:
    """`value` as a spreadsheet must show it: text a program would run as a formula gets a leading
    single quote; numbers, dates and other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _SIGNED_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(value: Any) -> str:
    """One CSV cell: ISO dates, money with two places, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(value.quantize(CENT))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(neutralised(value))


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    """The table (its first row the header) as CSV lines, the first with a byte-order mark."""
    writer = csv.writer(_Echo())
    first = True
    for values in rows:
        line = writer.writerow([csv_text(value) for value in values])
        if first:
            line = "\ufeff" + line
            first = False
        yield line


def write_csv(target: IO[str], rows: Iterable[list[Any]], progress: Progress | None = None) -> int:
    """Write the table (header first) to a text file opened with newline=""; returns the data rows
    written (the header not counted)."""
    written = -1
    for written, line in enumerate(csv_lines(rows), start=0):
        target.write(line)
        if progress is not None and written and written % PROGRESS_EVERY == 0:
            progress(written)
    written = max(written, 0)
    if progress is not None:
        progress(written)
    return written


# A worksheet holds at most 1,048,576 rows: longer tables go on in further sheets, each with the header.
XLSX_SHEET_ROWS = 1_048_576


def write_xlsx(
    target: str | IO[bytes],
    rows: Iterable[list[Any]],
    sheet_title: str,
    progress: Progress | None = None,
    sheet_rows: int = XLSX_SHEET_ROWS,
) -> int:
    """Write the table (header first, in bold) as a workbook; returns the data rows written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    # A sheet title holds at most 31 characters and none of []:*?/\.
    title = re.sub(r"[\[\]:*?/\\]", " ", sheet_title)[:28] or "Sheet"
    bold = Font(bold=True)
    iterator = iter(rows)
    header = [str(name) for name in next(iterator, [])]
    sheet: Any = None
    sheets = 0
    in_sheet = sheet_rows
    written = 0
    for values in iterator:
        if in_sheet >= sheet_rows:
            sheets += 1
            sheet = workbook.create_sheet(title if sheets == 1 else f"{title} {sheets}")
            sheet.append([_bold(sheet, name, bold, WriteOnlyCell) for name in header])
            in_sheet = 1
        sheet.append([_xlsx_cell(sheet, value, WriteOnlyCell) for value in values])
        in_sheet += 1
        written += 1
        if progress is not None and written % PROGRESS_EVERY == 0:
            progress(written)
    if sheet is None:
        sheet = workbook.create_sheet(title)
        sheet.append([_bold(sheet, name, bold, WriteOnlyCell) for name in header])
    workbook.save(target)
    if progress is not None:
        progress(written)
    return written


def _bold(sheet: Any, text: str, font: Any, cell_class: Any) -> Any:
    cell = cell_class(sheet, value=text)
    cell.font = font
    return cell


def _xlsx_cell(sheet: Any, value: Any, cell_class: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        # openpyxl takes text starting with "=" for a formula; neutralised text never starts so.
        return neutralised(_NOT_IN_XML.sub("", value))
    if isinstance(value, Decimal):
        cell = cell_class(sheet, value=value.quantize(CENT))
        cell.number_format = "0.00"
        return cell
    if isinstance(value, dt.datetime):
        cell = cell_class(sheet, value=value)
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
        return cell
    if isinstance(value, dt.date):
        cell = cell_class(sheet, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    return value
