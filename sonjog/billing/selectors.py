"""Reads for billing: statements, balances, period summaries. Scoped by the caller's operator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum

from sonjog.billing.models import LedgerEntry, Statement
from sonjog.core.money import ZERO
from sonjog.operators.models import Operator


def subscriber_balance(subscriber_id: int) -> Decimal:
    """What the subscriber owes now (negative: credit): the sum of its ledger."""
    total = LedgerEntry.objects.filter(subscriber_id=subscriber_id).aggregate(total=Sum("amount"))["total"]
    return total if total is not None else ZERO


def subscriber_statement(subscriber_id: int) -> list[dict[str, Any]]:
    return [
        {
            "period": f"{row['period_month']:%Y-%m}",
            "opening_due": row["opening_due"],
            "billed": row["billed"],
            "paid": row["paid"],
            "adjusted": row["adjusted"],
            "closing_due": row["closing_due"],
        }
        for row in Statement.objects.filter(subscriber_id=subscriber_id)
        .order_by("period_month")
        .values("period_month", "opening_due", "billed", "paid", "adjusted", "closing_due")
    ]


@dataclass(frozen=True)
class PeriodSummaryRow:
    period_month: dt.date
    generated: Decimal
    collected: Decimal
    adjusted: Decimal
    due: Decimal
    subscribers_billed: int


# Generated and collected per period come from the ledger's categories; "due" is what was still owed
# at each period's close, summed over subscribers (the statements' closing dues).
_PERIOD_SUMMARY_SQL = """
SELECT s.period_month, sum(s.billed), sum(s.paid), sum(s.adjusted), sum(s.closing_due),
       count(*) FILTER (WHERE s.billed > 0)
FROM billing_statement s
JOIN operators_operator o ON o.id = s.operator_id
WHERE o.path LIKE %(path)s
GROUP BY s.period_month
ORDER BY s.period_month DESC
LIMIT %(limit)s
"""


def period_summary(operator: Operator, months: int = 36) -> list[PeriodSummaryRow]:
    with connection.cursor() as cursor:
        cursor.execute(_PERIOD_SUMMARY_SQL, {"path": operator.path + "%", "limit": months})
        rows = cursor.fetchall()
    return [PeriodSummaryRow(*row) for row in reversed(rows)]
