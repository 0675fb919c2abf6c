"""Template helpers for the console: money, numbers and dates in the reader's language, query-string
links that keep the current filters, and state badges."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django import template
from django.http import QueryDict
from django.utils.html import format_html
from django.utils.safestring import SafeString

from sonjog.billing.models import BillLine, PaymentMethod
from sonjog.core import formatting

register = template.Library()
# money, absolute, num, digits, ldate, ldatetime: the same filters as the portal's.
formatting.register_filters(register)


@register.filter
def period(value: dt.date | None) -> str:
    return formatting.period_label(value)


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "–"
    return formatting.localize_digits(f"{value:.1f}%")


@register.filter
def payment_method(value: str | None) -> str:
    """A payment method's label for a raw method value (selectors that read `values()` give the code)."""
    if value in PaymentMethod.values:
        return str(PaymentMethod(value).label)
    return value or ""


@register.filter
def line_text(line: Any) -> str:
    """A bill line's text in the reader's language: the discount and VAT lines carry Sonjog's own English
    word (billing writes it with the bill), so they are named by their kind; the others keep the
    package, add-on or charge text they were billed with."""
    if line.kind in (BillLine.Kind.DISCOUNT, BillLine.Kind.VAT):
        return str(BillLine.Kind(line.kind).label)
    return str(line.description)


@register.simple_tag(takes_context=True)
def query(context: template.Context, **changes: Any) -> str:
    """The current query string with some parameters replaced (None or '' removes one); changing
    anything but the page goes back to page 1."""
    request = context.get("request")
    params: QueryDict = request.GET.copy() if request is not None else QueryDict(mutable=True)
    if "page" not in changes:
        params.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag
def qs(**params: Any) -> str:
    clean = {key: value for key, value in params.items() if value not in (None, "")}
    return f"?{urlencode(clean)}" if clean else ""


_TONES = {
    "active": "ok",
    "enabled": "ok",
    "online": "ok",
    "in_sync": "ok",
    "done": "ok",
    "suspended": "warn",
    "pending": "warn",
    "running": "warn",
    "queued": "warn",
    "disabled": "muted",
    "offline": "muted",
    "unknown": "muted",
    "record_only": "muted",
    "recorded": "muted",
    "terminated": "bad",
    "absent": "bad",
    "failed": "bad",
}


@register.simple_tag
def badge(value: str, label: str) -> SafeString:
    return format_html('<span class="badge badge-{}">{}</span>', _TONES.get(value, "muted"), label)


@register.simple_tag(takes_context=True)
def sort_link(context: template.Context, field: str, label: str) -> SafeString:
    """A column heading that sorts by `field`, flipping direction when already sorted by it."""
    current = context.get("sort", "")
    if current == field:
        target, arrow = f"-{field}", " ▲"
    elif current == f"-{field}":
        target, arrow = field, " ▼"
    else:
        target, arrow = field, ""
    return format_html('<a href="{}" class="sort">{}{}</a>', query(context, sort=target), label, arrow)
