"""Hostile input for the fuzz tests (console and CLI), and a snapshot of the money tables to prove a
refused input wrote nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from hypothesis import strategies as st

from sonjog.billing.models import Allocation, Bill, BillingRun, LedgerEntry, Payment

# What an attacker types first: NUL bytes, numbers past every column, exponent tricks, NaN, negative
# zero, a 10,000-character string, dates past the calendar's arithmetic, impossible dates, bidi
# controls, SQL and template syntax, digits that are not ASCII digits, line breaks and formula starts.
HOSTILE: list[str] = [
    "\x00",
    "a\x00b",
    "9" * 20,
    "-" + "9" * 20,
    "99999999999",
    "100000000000000",
    "1e20",
    "1E400",
    "-1e-20",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "-0",
    "0",
    "-1",
    "x" * 10_000,
    "9" * 5000,
    "9999-12-31",
    "0000-00-00",
    "1899-12-31",
    "2027-02-30",
    "9999-12",
    "\u202eevil\u202c",
    "\u200fRTL mark",
    "\u2066isolate\u2069",
    "' OR '1'='1",
    "1; DROP TABLE billing_payment; --",
    "%",
    "_",
    "\\",
    "²",
    "١٢٣",
    "১০০",
    "0x10",
    "1,2,3",
    " ",
    "line\nbreak",
    "\r\n",
    "tab\there",
    "\x01\x02\x7f\x85",
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "{{ 7*7 }}",
    "{% debug %}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "http://127.0.0.1:22/",
    "\U0001f4a9" * 50,
]

# Hostile strings plus whatever hypothesis makes of text (no lone surrogates: a browser cannot send
# them and argv cannot hold them).
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


def money_snapshot() -> dict[str, Any]:
    """Row counts and sums of every money table, and of the runs that make bills."""
    snapshot: dict[str, Any] = {}
    for name, model, column in (
        ("ledger", LedgerEntry, "amount"),
        ("payments", Payment, "amount"),
        ("bills", Bill, "total"),
        ("allocations", Allocation, "amount"),
    ):
        found = model.objects.aggregate(rows=Count("pk"), total=Sum(column))  # type: ignore[attr-defined]
        snapshot[name] = (found["rows"], found["total"] or Decimal("0"))
    snapshot["billing_runs"] = BillingRun.objects.count()
    return snapshot
