"""What Sonjog's columns can hold, and the one set of checks every interface applies to input before a
service sees it: console forms, query parameters and CLI arguments (DESIGN section 2, house rule 2).

Input outside these bounds is a clear message to the person who typed it (a form error, HTTP 400, CLI
exit code 2), never a database error, an overflow or a traceback:

- amounts: plain decimal notation only (no exponents such as 1e20, no NaN or Infinity), within the
  column's NUMERIC(max_digits, decimal_places), -0 read as 0;
- integers: within the range of their column (PositiveIntegerField 0..2147483647 and so on);
- text: within the column's max_length, without NUL or other control characters (a textarea may hold
  line breaks and tabs), without lone surrogates or the bidirectional overrides that make text display
  as something else than it is;
- dates: within `check_date`'s sanity range;
- page numbers: clamped to 1..last page whatever was typed.

The parse helpers raise `OutOfBounds` (a ValueError) with a message fit for the user; the form fields
turn it into a ValidationError and `sonjog.core.cli` into a one-line usage error.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, models
from django.utils.translation import gettext as _

MONEY_MAX_DIGITS = 14
MONEY_DECIMAL_PLACES = 2
# The sanity range of any date typed in (a billing date, a day sheet, an adjustment); see check_date.
DATE_FLOOR = dt.date(2000, 1, 1)
DATE_CEILING = dt.date(2100, 12, 31)
# Free text in a query string (a search box) is never longer than this.
QUERY_TEXT_MAX_LENGTH = 100
# Page numbers and ids from a query string: more digits than this is not a number we hold.
_ID_MAX_DIGITS = 18

# C0 and C1 control characters, lone surrogates, and the bidirectional embeddings, overrides and
# isolates (U+202A-U+202E, U+2066-U+2069) that make text read differently from what it holds. The
# marks Bangla and mixed text need (ZWJ, ZWNJ, LRM, RLM) are allowed.
_FORBIDDEN_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# A textarea may hold line breaks and tabs.
_FORBIDDEN_IN_TEXTAREA = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_ASCII_DIGITS = re.compile(r"[0-9]+")


class OutOfBounds(ValueError):
    """Input outside what the columns hold; the message is fit to show the user as it is."""


def shown(value: object, limit: int = 40) -> str:
    """`value` as it may be echoed in a message: quoted, control characters escaped, cut short."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)


# -- text ---------------------------------------------------------------------------------------------


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    pattern = _FORBIDDEN_IN_TEXTAREA if multiline else _FORBIDDEN_IN_LINE
    if pattern.search(value) is None:
        return None
    if multiline:
        return _("Remove the control characters (such as a NUL byte) from this text.")
    return _("Remove the control characters (such as a NUL byte, a tab or a line break) from this text.")


def check_text(value: object, *, max_length: int, multiline: bool = False) -> str:
    """`value` as text of at most `max_length` characters without control characters."""
    text = str(value)
    problem = text_problem(text, multiline=multiline)
    if problem is not None:
        raise OutOfBounds(problem)
    if len(text) > max_length:
        raise OutOfBounds(
            _("Write at most %(max)d characters (this has %(length)d).") % {"max": max_length, "length": len(text)}
        )
    return text


def query_text(value: object, *, max_length: int = QUERY_TEXT_MAX_LENGTH) -> str:
    """Free text from a query string (a search box), stripped; OutOfBounds when it cannot be searched for."""
    return check_text(str(value or "").strip(), max_length=max_length)


def check_json(value: Any, *, depth: int = 0) -> Any:
    """A decoded JSON value that PostgreSQL's jsonb takes: no NUL or control characters in strings
    (values may hold line breaks and tabs), finite numbers, at most 20 levels deep."""
    if depth > 20:
        raise OutOfBounds(_("These options are nested too deeply."))
    if isinstance(value, dict):
        for key, item in value.items():
            if text_problem(str(key)) is not None:
                raise OutOfBounds(_("An option name holds a control character: %(name)s.") % {"name": shown(key)})
            check_json(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth=depth + 1)
    elif isinstance(value, str):
        problem = text_problem(value, multiline=True)
        if problem is not None:
            raise OutOfBounds(problem)
    elif isinstance(value, float) and not math.isfinite(value):
        raise OutOfBounds(_("Numbers in the options must be finite."))
    return value


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def parse_json_object(text: str, *, max_length: int = 4000) -> dict[str, Any]:
    """A JSON object typed by a user (advanced options), checked with `check_json`."""
    check_text(text, max_length=max_length, multiline=True)

    def refuse_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        value = json.loads(text, parse_constant=refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise OutOfBounds(_('Write the options as a JSON object, for example {"path": "/send"}.'))
    return check_json(value)  # type: ignore[no-any-return]


# -- numbers ------------------------------------------------------------------------------------------


def integer_range(internal_type: str = "IntegerField") -> tuple[int, int]:
    """The values a column of this Django type holds in the database, e.g. (0, 2147483647) for
    "PositiveIntegerField"."""
    low, high = connection.ops.integer_field_range(internal_type)
    return int(low), int(high)


def parse_int(value: object, *, minimum: int, maximum: int) -> int:
    """A whole number written in plain digits, within [minimum, maximum]."""
    if isinstance(value, bool):
        raise OutOfBounds(_("%(value)s is not a whole number.") % {"value": shown(value)})
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not _ASCII_DIGITS.fullmatch(digits):
            raise OutOfBounds(_("%(value)s is not a whole number.") % {"value": shown(value)})
        if len(digits.lstrip("0")) > max(len(str(abs(minimum))), len(str(abs(maximum)))):
            number = maximum + 1 if text[:1] != "-" else minimum - 1
        else:
            number = int(text)
    if not minimum <= number <= maximum:
        raise OutOfBounds(
            _("%(value)s is out of range: use a whole number from %(min)d to %(max)d.")
            % {"value": shown(value), "min": minimum, "max": maximum}
        )
    return number


def query_id(value: object) -> int | None:
    """A row id from a query string: plain ASCII digits of a size ids have, else None (ignored)."""
    text = str(value or "").strip()
    if not _ASCII_DIGITS.fullmatch(text) or len(text) > _ID_MAX_DIGITS:
        return None
    return int(text)


def page_number(value: object, last_page: int) -> int:
    """The page to show for a typed page number: 1 for junk, the last page for anything past it."""
    last_page = max(int(last_page), 1)
    text = str(value or "").strip().lstrip("0")
    if not _ASCII_DIGITS.fullmatch(text):
        return 1
    if len(text) > len(str(last_page)):
        return last_page
    return min(int(text), last_page)


def _max_magnitude(max_digits: int, decimal_places: int) -> Decimal:
    return Decimal(10) ** (max_digits - decimal_places)


def check_decimal(number: Decimal, *, max_digits: int, decimal_places: int, original: object = None) -> Decimal:
    """`number` fits NUMERIC(max_digits, decimal_places) exactly; returned quantized, -0 as 0."""
    echo = shown(number if original is None else original)
    if not number.is_finite():
        raise OutOfBounds(_("%(value)s is not a number.") % {"value": echo})
    if abs(number) >= _max_magnitude(max_digits, decimal_places):
        largest = _max_magnitude(max_digits, decimal_places) - Decimal(1).scaleb(-decimal_places)
        raise OutOfBounds(_("%(value)s is too large; the most is %(max)s.") % {"value": echo, "max": f"{largest:,}"})
    step = Decimal(1).scaleb(-decimal_places)
    quantized = number.quantize(step)
    if quantized != number:
        if decimal_places == MONEY_DECIMAL_PLACES:
            raise OutOfBounds(_("%(value)s has more than two decimal places.") % {"value": echo})
        raise OutOfBounds(
            _("%(value)s has more than %(places)d decimal places.") % {"value": echo, "places": decimal_places}
        )
    return quantized.copy_abs() if quantized == 0 else quantized


def parse_decimal(value: object, *, max_digits: int, decimal_places: int) -> Decimal:
    """A number written in plain decimal notation (thousands commas allowed) that fits the column."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        text = str(value).strip().replace(",", "")
        if not _PLAIN_DECIMAL.fullmatch(text):
            raise OutOfBounds(
                _("%(value)s is not an amount of money; write digits, e.g. 1500 or 1500.50.") % {"value": shown(value)}
            )
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
            raise OutOfBounds(_("%(value)s is not a number.") % {"value": shown(value)}) from None
    return check_decimal(number, max_digits=max_digits, decimal_places=decimal_places, original=value)


def parse_amount(value: object) -> Decimal:
    """An amount of money: NUMERIC(14,2), plain notation, at most 999,999,999,999.99 either way."""
    return parse_decimal(value, max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


def parse_host(value: object) -> str:
    """A host name or an IP address to listen on or connect to."""
    text = str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if len(text) > 253 or not _HOST_NAME.fullmatch(text) or re.fullmatch(r"[0-9.]+", text):
        raise OutOfBounds(_("%(value)s is not a host name or an IP address.") % {"value": shown(value)})
    return text


# -- dates --------------------------------------------------------------------------------------------


def check_date(value: dt.date) -> dt.date:
    """The one check every typed date goes through (forms, query parameters, CLI). For now a sanity
    floor and ceiling, so that date arithmetic never overflows; per-operator business bounds tighten
    it here."""
    if not DATE_FLOOR <= value <= DATE_CEILING:
        raise OutOfBounds(
            _("Pick a date from %(floor)s to %(ceiling)s.")
            % {"floor": DATE_FLOOR.isoformat(), "ceiling": DATE_CEILING.isoformat()}
        )
    return value


def parse_date(value: object) -> dt.date:
    """A date written as YYYY-MM-DD, within `check_date`."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return check_date(value)
    text = str(value).strip()
    try:
        day = dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise OutOfBounds(_("%(value)s is not a date; write it as YYYY-MM-DD.") % {"value": shown(value)})
    return check_date(day)


# -- form fields ----------------------------------------------------------------------------------------


def _as_validation_error(error: OutOfBounds, code: str) -> ValidationError:
    return ValidationError(str(error), code=code)


class TextField(forms.CharField):
    """Text bounded by its column: `max_length` is required; control characters are refused (a
    `multiline` field, a textarea, keeps line breaks and tabs)."""

    def __init__(self, *, max_length: int, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        super().__init__(max_length=max_length, **kwargs)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value:
            problem = text_problem(str(value), multiline=self.multiline)
            if problem is not None:
                raise ValidationError(problem, code="control_character")


class EmailField(forms.EmailField):
    def __init__(self, *, max_length: int = 254, **kwargs: Any) -> None:
        super().__init__(max_length=max_length, **kwargs)

    def validate(self, value: Any) -> None:
        problem = text_problem(str(value)) if value else None
        if problem is not None:
            raise ValidationError(problem, code="control_character")
        super().validate(value)


class URLField(forms.URLField):
    """An http(s) address of at most `max_length` characters, without control characters."""

    default_validators = [URLValidator(schemes=["http", "https"])]

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(max_length=max_length, **kwargs)

    def to_python(self, value: Any) -> Any:
        problem = text_problem(str(value).strip()) if value else None
        if problem is not None:
            raise ValidationError(problem, code="control_character")
        return super().to_python(value)


class IntegerField(forms.IntegerField):
    """A whole number within its column's range (`column`: the Django field type, IntegerField by
    default); `min_value`/`max_value` may only narrow it."""

    def __init__(
        self,
        *,
        min_value: int | None = None,
        max_value: int | None = None,
        column: str = "IntegerField",
        **kwargs: Any,
    ) -> None:
        low, high = integer_range(column)
        super().__init__(
            min_value=low if min_value is None else max(min_value, low),
            max_value=high if max_value is None else min(max_value, high),
            **kwargs,
        )

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and len(str(value)) > 40:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class DecimalField(forms.DecimalField):
    """A number in plain decimal notation (no 1e20, NaN or Infinity) that fits NUMERIC(max_digits,
    decimal_places); -0 is read as 0."""

    def __init__(self, *, max_digits: int, decimal_places: int, **kwargs: Any) -> None:
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        if not isinstance(value, Decimal):
            text = str(value).strip()
            if not _PLAIN_DECIMAL.fullmatch(text):
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            value = text
        number = super().to_python(value)
        assert self.max_digits is not None and self.decimal_places is not None
        if number is not None and number.is_finite() and number == 0:
            number = number.copy_abs()
        if number is not None and abs(number) >= _max_magnitude(self.max_digits, self.decimal_places):
            # Said here, before the digit validators: "at most 14 digits" is not how people count money.
            try:
                check_decimal(number, max_digits=self.max_digits, decimal_places=self.decimal_places)
            except OutOfBounds as error:
                raise _as_validation_error(error, "max_digits") from None
        return number


class AmountField(DecimalField):
    """Money: NUMERIC(14,2)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
        super().__init__(**kwargs)


def validate_date(value: dt.date) -> None:
    try:
        check_date(value)
    except OutOfBounds as error:
        raise _as_validation_error(error, "date_out_of_range") from None


class DateField(forms.DateField):
    """A date within `check_date`."""

    default_validators = [validate_date]


def column_field(model: type[models.Model], name: str, **kwargs: Any) -> forms.Field:
    """The bounded form field for `model.name`: its max_length, integer range or NUMERIC size come
    from the column; keyword arguments (label, required, narrower min_value, ...) are passed on.
    A model TextField has no length of its own: give `max_length`."""
    field = model._meta.get_field(name)
    kwargs.setdefault("required", not (field.blank or field.null))  # type: ignore[union-attr]
    if isinstance(field, models.EmailField):
        return EmailField(max_length=min(kwargs.pop("max_length", field.max_length), field.max_length), **kwargs)
    if isinstance(field, (models.CharField, models.TextField)):
        column_length = field.max_length
        wanted = kwargs.pop("max_length", column_length)
        if wanted is None:
            raise TypeError(f"{model.__name__}.{name} has no max_length: give one")
        return TextField(max_length=wanted if column_length is None else min(wanted, column_length), **kwargs)
    if isinstance(field, models.DecimalField):
        assert field.max_digits is not None and field.decimal_places is not None
        return DecimalField(max_digits=field.max_digits, decimal_places=field.decimal_places, **kwargs)
    if isinstance(field, models.IntegerField):
        return IntegerField(column=field.get_internal_type(), **kwargs)
    if isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField):
        return DateField(**kwargs)
    raise TypeError(f"no bounded form field for {model.__name__}.{name} ({type(field).__name__})")
