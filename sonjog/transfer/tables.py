"""Reading the tables people bring: CSV in any common encoding and delimiter, XLSX, and the values
in them (dates written day-first as in Bangladesh, amounts with currency signs and Bangla digits)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal, InvalidOperation

from sonjog.transfer.exceptions import TransferError

MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_ROWS = 100_000

_BANGLA_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")


def read_table(file_name: str, data: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV or XLSX file, every cell as stripped text; rows that are
    entirely empty are dropped. Raises TransferError naming what is wrong with the file."""
    if not data:
        raise TransferError("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise TransferError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it")
    is_workbook = file_name.lower().endswith((".xlsx", ".xlsm")) or data[:2] == b"PK"
    table = _read_xlsx(data) if is_workbook else _read_csv(data)
    table = [row for row in table if any(cell for cell in row)]
    if not table:
        raise TransferError("the file has no rows")
    header = [cell or f"column {index + 1}" for index, cell in enumerate(table[0])]
    if len(set(header)) != len(header):
        duplicated = sorted({name for name in header if header.count(name) > 1})
        raise TransferError("the header names a column twice: " + ", ".join(duplicated))
    rows = [(row + [""] * len(header))[: len(header)] for row in table[1:]]
    if not rows:
        raise TransferError("the file has a header but no rows")
    if len(rows) > MAX_ROWS:
        raise TransferError(f"the file has {len(rows)} rows; import at most {MAX_ROWS} at a time")
    return header, rows


def _read_csv(data: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1252 decodes nearly everything
        raise TransferError("the file is not text in UTF-8 or Windows-1252: save it as CSV UTF-8")
    if "\x00" in text:
        raise TransferError("the file is not a CSV (it holds binary data); save it as CSV UTF-8 or XLSX")
    sample = text[:20000]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]


def _read_xlsx(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        raise TransferError(f"the file is not a readable XLSX workbook ({error.__class__.__name__})") from None
    try:
        sheet = workbook.worksheets[0]
        return [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:\s.*)?$")
_DAY_MONTH_NAME = re.compile(r"^(\d{1,2})[\s\-]([A-Za-z]{3,9})[\s\-,]+(\d{4})$")
_MONTH_NAME_DAY = re.compile(r"^([A-Za-z]{3,9})\s+(\d{1,2}),?\s+(\d{4})$")


def parse_date(raw: str) -> dt.date:
    """A date as people write it here: 2024-03-15, 15/03/2024, 15-03-2024, 15.03.2024 (day first,
    as in Bangladesh), 15 Mar 2024, Mar 15, 2024. ValueError says what was not understood."""
    text = raw.strip().translate(_BANGLA_DIGITS)
    for pattern, order in ((_ISO, "ymd"), (_DAY_FIRST, "dmy")):
        match = pattern.match(text)
        if match:
            parts = dict(zip(order, (int(group) for group in match.groups()), strict=True))
            return _date(parts["y"], parts["m"], parts["d"], raw)
    for pattern, order in ((_DAY_MONTH_NAME, "dmy"), (_MONTH_NAME_DAY, "mdy")):
        match = pattern.match(text)
        if match:
            values = dict(zip(order, match.groups(), strict=True))
            month = _MONTHS.get(values["m"].lower())
            if month is None:
                break
            return _date(int(values["y"]), month, int(values["d"]), raw)
    raise ValueError(f"'{raw}' is not a date (write 2024-03-15 or 15/03/2024)")


def _date(year: int, month: int, day: int, raw: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"'{raw}' is not a date in the calendar") from None


_MONEY_NOISE = re.compile(r"(?i)(bdt|tk\.?|taka|৳|\$|,|\s)")


def parse_money(raw: str) -> Decimal:
    """An amount: 1,200.50, -300, (300) for a negative, ৳ 500, 500 Tk, Bangla digits. ValueError says
    what was not understood."""
    text = _MONEY_NOISE.sub("", raw.strip().translate(_BANGLA_DIGITS))
    negative = text.startswith("(") and text.endswith(")")
    if negative:
        text = text[1:-1]
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"'{raw}' is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"'{raw}' is not an amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"'{raw}' has more than two decimal places")
    if abs(amount) >= Decimal("1000000000"):
        raise ValueError(f"'{raw}' is too large for a balance")
    amount = amount.quantize(Decimal("0.01"))
    return -amount if negative else amount
