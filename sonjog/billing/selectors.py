"""Reads for billing: statements, balances, period summaries. Scoped by the caller's operator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from sonjog.billing.models import (
    Allocation,
    Bill,
    BillingHold,
    CashHandover,
    CreditLine,
    EntryKind,
    FloatAccount,
    FloatEntry,
    LedgerEntry,
    Payment,
    Statement,
)
from sonjog.billing.terms import subscriber_terms
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start, nominal_period
from sonjog.customers.models import Subscriber
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


# --- What a subscriber owes now, and how much of it is overdue: the one definition ---------------
#
# Every page, job and report that says "due", "owes" or "overdue" reads these columns; nothing else
# in Sonjog computes them.
#
# "Owes now" (`due`) is the closing due of the subscriber's latest statement (however far ahead it
# was billed), which the projection keeps equal to the sum of its ledger. Nearly every subscriber has a
# statement for this month or the next, so those are hash-joined from the (operator, period) index;
# only subscribers billed further ahead, or with neither, probe the (subscriber, period) index.
#
# "Overdue" (`is_overdue`, `overdue_amount`) is what is owed beyond the open amounts of the charges still inside
# their due days + grace: FIFO settles the oldest charges first, so whatever remains of the balance
# after setting aside what is not yet late belongs to charges past their grace. A charge for a period
# that has not started is never overdue (its due date lies ahead). Terminated subscribers are never
# overdue (collections, not enforcement); prepaid subscribers owe their whole due once their validity
# has run out (or, never paid, once the grace after activation has), and are overdue from that day even
# before the next period's charge exists.
_DUES_CTE = """
not_yet_late AS (
    -- Due days + grace are far below three months, which lets this use the period index.
    SELECT b.subscriber_id, sum(b.total - b.allocated) AS open_amount
    FROM billing_bill b
    JOIN operators_operator bo ON bo.id = b.operator_id
    WHERE b.operator_id = ANY(%(dues_operator_ids)s) AND b.reversed_at IS NULL AND b.allocated < b.total
      AND b.period_month >= %(dues_recent)s AND b.due_date + bo.grace_days >= %(dues_today)s
      AND (%(dues_only)s::bigint[] IS NULL OR b.subscriber_id = ANY(%(dues_only)s::bigint[]))
    GROUP BY b.subscriber_id
), ahead AS (
    -- Billed further ahead than next month (rare): each such subscriber's latest statement.
    SELECT DISTINCT ON (x.subscriber_id) x.subscriber_id, x.closing_due
    FROM billing_statement x
    WHERE x.operator_id = ANY(%(dues_operator_ids)s) AND x.period_month > %(dues_next_month)s
      AND (%(dues_only)s::bigint[] IS NULL OR x.subscriber_id = ANY(%(dues_only)s::bigint[]))
    ORDER BY x.subscriber_id, x.period_month DESC
), owed AS (
    SELECT s.id, s.operator_id, s.zone_id, s.router_id, s.service_intent, s.router_state, s.session_state,
           s.sync_state, s.activation_date, s.terminated_on, s.expires_on, s.is_vip,
           COALESCE(s.billing_mode, o.billing_mode) AS mode,
           COALESCE(ah.closing_due, nx.closing_due, cur.closing_due, old.closing_due, 0) AS due,
           o.grace_days,
           cur.opening_due AS cur_opening, cur.billed AS cur_billed, cur.paid AS cur_paid,
           cur.adjusted AS cur_adjusted, cur.closing_due AS cur_closing
    FROM customers_subscriber s
    JOIN operators_operator o ON o.id = s.operator_id
    LEFT JOIN ahead ah ON ah.subscriber_id = s.id
    LEFT JOIN billing_statement nx
        ON nx.subscriber_id = s.id AND nx.period_month = %(dues_next_month)s
       AND nx.operator_id = ANY(%(dues_operator_ids)s)
    LEFT JOIN billing_statement cur
        ON cur.subscriber_id = s.id AND cur.period_month = %(dues_month)s
       AND cur.operator_id = ANY(%(dues_operator_ids)s)
    LEFT JOIN LATERAL (
        -- Neither this month nor next: the latest there is.
        SELECT x.closing_due FROM billing_statement x
        WHERE nx.id IS NULL AND cur.id IS NULL AND x.subscriber_id = s.id
        ORDER BY x.period_month DESC LIMIT 1
    ) old ON true
    WHERE s.operator_id = ANY(%(dues_operator_ids)s)
      AND (%(dues_only)s::bigint[] IS NULL OR s.id = ANY(%(dues_only)s::bigint[]))
), dues AS (
    SELECT w.*, COALESCE(nyl.open_amount, 0) AS not_yet_late
    FROM owed w
    LEFT JOIN not_yet_late nyl ON nyl.subscriber_id = w.id
), expired AS (
    SELECT d.*,
           CASE WHEN d.service_intent = 'terminated' THEN false
                WHEN d.mode = 'prepaid' THEN
                    COALESCE(d.expires_on <= %(dues_today)s, d.activation_date + d.grace_days < %(dues_today)s, false)
                ELSE d.due - d.not_yet_late > 0
           END AS is_overdue
    FROM dues d
), judged AS (
    SELECT e.*,
           CASE WHEN NOT e.is_overdue OR e.due <= 0 THEN 0
                WHEN e.mode = 'prepaid' THEN e.due
                ELSE e.due - e.not_yet_late
           END AS overdue_amount
    FROM expired e
)
"""


def dues_cte(operator_ids: list[int], today: dt.date, *, only: list[int] | None = None) -> tuple[str, dict[str, Any]]:
    """The CTEs `dues` and `judged` (one row per subscriber of `operator_ids`, or of `only` among
    them) and their parameters, for a caller to put after `WITH` and select from `judged`: columns
    `id`, `due` (owes now; negative is credit), `is_overdue`, `overdue_amount`, the subscriber's state fields, and
    this period's statement figures (`cur_*`). Parameter names all start with `dues_`."""
    month = month_start(today)
    params = {
        "dues_operator_ids": list(operator_ids),
        "dues_today": today,
        "dues_month": month,
        "dues_next_month": add_months(month, 1),
        "dues_recent": add_months(month, -3),
        "dues_only": list(only) if only is not None else None,
    }
    return _DUES_CTE, params


@dataclass(frozen=True)
class Dues:
    due: Decimal
    is_overdue: bool
    overdue_amount: Decimal


def latest_due_subquery() -> Subquery:
    return Subquery(
        Statement.objects.filter(subscriber_id=OuterRef("pk")).order_by("-period_month").values("closing_due")[:1]
    )


def with_due(rows: QuerySet[Subscriber], today: dt.date) -> QuerySet[Subscriber]:
    """Annotate `due`, what each subscriber owes now, the way the dashboard reads it: next month's
    statement if billed ahead, else this month's (both joined, so sorting 30,000 rows by due is one
    hash join), else a probe for the latest one (PostgreSQL stops at the first non-null). PostgreSQL
    evaluates it only for the rows a page returns unless sorting or filtering needs it."""
    month = month_start(today)
    return rows.annotate(
        st_next=FilteredRelation("statements", condition=Q(statements__period_month=add_months(month, 1))),
        st_this=FilteredRelation("statements", condition=Q(statements__period_month=month)),
        due=Coalesce(F("st_next__closing_due"), F("st_this__closing_due"), latest_due_subquery(), Value(ZERO)),
    )


def subscriber_dues(operator_id: int, subscriber_ids: list[int], today: dt.date) -> dict[int, Dues]:
    """Owes now and overdue for the given subscribers of one operator, by subscriber id."""
    cte, params = dues_cte([operator_id], today, only=subscriber_ids)
    with connection.cursor() as cursor:
        cursor.execute("WITH " + cte + "SELECT id, due, is_overdue, overdue_amount FROM judged", params)
        return {pk: Dues(due, late, overdue) for pk, due, late, overdue in cursor.fetchall()}


def overdue_ids(operator: Operator, today: dt.date, *, intent: str, only: list[int] | None = None) -> list[int]:
    """Subscribers of this operator (not its subtree) with the given service intent and an overdue
    amount, VIPs left out: the ones the overdue sweep suspends (or, suspended, keeps suspended)."""
    cte, params = dues_cte([operator.pk], today, only=only)
    sql = (
        "WITH "
        + cte
        + """SELECT id FROM judged
             WHERE service_intent = %(intent)s AND NOT is_vip AND is_overdue ORDER BY id"""
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params | {"intent": intent})
        return [row[0] for row in cursor.fetchall()]


# --- Collected: money received in a date range ---------------------------------------------------
#
# "Collected" on every card, list, day sheet and export is money received in [start, end) by the
# payment's received time, taken in the operator's time zone by the caller's bounds. A payment later
# reversed (entered in error, bounced) was never money in hand and is left out. What was *allocated*
# to a billing period is a different figure (the statements' `paid`), named so wherever it is shown.


def _reversed() -> Exists:
    return Exists(LedgerEntry.objects.filter(payment=OuterRef("pk"), kind=EntryKind.REVERSAL))


def with_reversed(rows: QuerySet[Payment]) -> QuerySet[Payment]:
    """Payments as lists show them: each annotated `reversed`, newest first."""
    return rows.annotate(reversed=_reversed()).order_by("-received_at", "-pk")


def payments_received(
    operator_ids: list[int], start: dt.datetime, end: dt.datetime, *, standing_only: bool = False
) -> QuerySet[Payment]:
    """Payments received in [start, end), each annotated `reversed`, newest first; with
    `standing_only`, the reversed ones left out (what counts as collected)."""
    rows = Payment.objects.filter(operator_id__in=operator_ids, received_at__gte=start, received_at__lt=end)
    if standing_only:
        rows = rows.filter(~_reversed())
    return with_reversed(rows)


def collected(
    operator_ids: list[int], start: dt.datetime, end: dt.datetime, *, collector_id: int | None = None
) -> Decimal:
    """Money received in [start, end), reversed payments left out."""
    rows = payments_received(operator_ids, start, end, standing_only=True)
    if collector_id is not None:
        rows = rows.filter(collector_id=collector_id)
    total = rows.aggregate(total=Sum("amount"))["total"]
    return total if total is not None else ZERO


# --- Handed over: how much of the cash collected is still in the collectors' hands -------------------
#
# Where an operator asks for it (`collection_approval`), each cash payment its collectors take joins
# the collector's hand-over of that day (billing.services.handover). Of the money collected (the very
# rows `collected` sums, from `payments_received`), a payment is "awaiting hand-over" while its
# hand-over is pending, "disputed" while a manager disputes it, and "handed over" once approved; the
# rest (other methods, owners' cash, cash taken while the setting was off) is in no hand-over.
HANDOVER_PARTS: dict[str, str] = {
    "awaiting": CashHandover.State.PENDING,
    "disputed": CashHandover.State.DISPUTED,
    "handed_over": CashHandover.State.APPROVED,
}


def handover_sums(amount: str = "amount") -> dict[str, Coalesce]:
    """Aggregates over payments, one per part of HANDOVER_PARTS: what of `amount` is in hand-overs of
    that state. Put them beside a sum of the same rows (one query, no rows multiplied: a payment is in
    one hand-over at most)."""
    return {
        name: Coalesce(Sum(amount, filter=Q(handover_link__handover__state=state)), Value(ZERO))
        for name, state in HANDOVER_PARTS.items()
    }


@dataclass(frozen=True)
class HandoverSplit:
    collected: Decimal
    awaiting: Decimal
    disputed: Decimal
    handed_over: Decimal

    @property
    def outside(self) -> Decimal:
        """Collected but in no hand-over (not cash, an owner's, or taken while approval was off)."""
        return self.collected - self.awaiting - self.disputed - self.handed_over


def collected_handover(
    operator_ids: list[int], start: dt.datetime, end: dt.datetime, *, collector_id: int | None = None
) -> HandoverSplit:
    """Money received in [start, end) (`collected`, reversed payments left out) and how much of it is
    awaiting hand-over, disputed and handed over."""
    rows = payments_received(operator_ids, start, end, standing_only=True)
    if collector_id is not None:
        rows = rows.filter(collector_id=collector_id)
    sums = rows.order_by().aggregate(collected=Coalesce(Sum("amount"), Value(ZERO)), **handover_sums())
    return HandoverSplit(**sums)


def handover_payments(handover_id: int, *, standing_only: bool = False) -> QuerySet[Payment]:
    """The payments of one hand-over, each annotated `reversed`, newest first; with `standing_only`,
    the reversed ones left out (what the hand-over expects)."""
    rows = Payment.objects.filter(handover_link__handover_id=handover_id)
    if standing_only:
        rows = rows.filter(~_reversed())
    return with_reversed(rows)


def handover_standing(handover_id: int) -> Decimal:
    """What a hand-over expects: the sum of its standing payments (the database checks the same sum
    when it is decided)."""
    total = handover_payments(handover_id, standing_only=True).order_by().aggregate(total=Sum("amount"))["total"]
    return total if total is not None else ZERO


def _standing_of_handover(value: Any) -> Subquery:
    rows = Payment.objects.filter(handover_link__handover=OuterRef("pk")).filter(~_reversed()).order_by()
    return Subquery(rows.values("handover_link__handover").annotate(value=value).values("value")[:1])


def handovers(operator_ids: list[int]) -> QuerySet[CashHandover]:
    """Hand-overs of the operators (whose collectors they are), newest day first, each annotated with
    what its standing payments add up to now (`standing`) and how many there are (`standing_count`):
    an open hand-over's running figure, a decided one's `expected` unless a payment was reversed since."""
    return (
        CashHandover.objects.filter(operator_id__in=operator_ids)
        .annotate(
            standing=Coalesce(_standing_of_handover(Sum("amount")), Value(ZERO)),
            standing_count=Coalesce(_standing_of_handover(Count("pk")), Value(0)),
        )
        .select_related("collector", "operator", "approved_by", "disputed_by")
        .order_by("-day", "collector__username", "pk")
    )


# --- Add-on revenue: what add-ons were billed for, apart from packages -----------------------------
#
# The add-on lines of effective bills (period bills and the one-off charges of add-ons started in a
# period already billed), VAT included as in "generated", by the bill's period, less what credits
# took off those very lines (an add-on ended early, its share of an outage or a termination credit:
# a credit note's lines say which line each credit came off). Driven by the partial index on add-on
# lines, so it costs what the add-on lines cost, however many package lines there are.
_ADDON_REVENUE_SQL = """
WITH billed AS (
    SELECT b.period_month, sum(l.amount + l.vat) AS amount
    FROM billing_billline l
    JOIN billing_bill b ON b.id = l.bill_id
    WHERE l.kind = 'addon' AND b.reversed_at IS NULL AND b.operator_id = ANY(%(ids)s)
      AND b.period_month >= %(since)s AND b.period_month <= %(until)s
    GROUP BY b.period_month
), credited AS (
    SELECT b.period_month, sum(c.amount + c.vat) AS amount
    FROM billing_creditline c
    JOIN billing_billline l ON l.id = c.bill_line_id
    JOIN billing_bill b ON b.id = l.bill_id
    WHERE l.kind = 'addon' AND b.reversed_at IS NULL AND b.operator_id = ANY(%(ids)s)
      AND b.period_month >= %(since)s AND b.period_month <= %(until)s
    GROUP BY b.period_month
)
SELECT billed.period_month, billed.amount - COALESCE(credited.amount, 0)
FROM billed LEFT JOIN credited ON credited.period_month = billed.period_month
"""


# For a month or two (the dashboard's card) it is cheaper to start from that month's bills and probe
# the add-on lines of each through their partial index (and their credits through theirs) than to
# read every add-on line there is.
_ADDON_REVENUE_FEW_MONTHS_SQL = """
SELECT b.period_month, sum(x.amount)
FROM billing_bill b
CROSS JOIN LATERAL (
    SELECT sum(l.amount + l.vat - COALESCE(c.amount, 0)) AS amount
    FROM billing_billline l
    LEFT JOIN LATERAL (
        SELECT sum(cl.amount + cl.vat) AS amount FROM billing_creditline cl WHERE cl.bill_line_id = l.id
    ) c ON true
    WHERE l.bill_id = b.id AND l.kind = 'addon'
) x
WHERE b.operator_id = ANY(%(ids)s) AND b.reversed_at IS NULL
  AND b.period_month >= %(since)s AND b.period_month <= %(until)s AND x.amount IS NOT NULL
GROUP BY b.period_month
"""


def addon_revenue_by_period(operator_ids: list[int], since: dt.date, until: dt.date) -> dict[dt.date, Decimal]:
    """Billed for add-ons per period label in [since, until] (both months included), net of the credits
    taken off add-on lines; periods without any are absent."""
    few = add_months(month_start(since), 2) > until
    with connection.cursor() as cursor:
        cursor.execute(
            _ADDON_REVENUE_FEW_MONTHS_SQL if few else _ADDON_REVENUE_SQL,
            {"ids": list(operator_ids), "since": since, "until": until},
        )
        return dict(cursor.fetchall())


# What each kind of line brought in per period: package (its discount with it), add-on and one-off
# charge, VAT included, net of the credits taken off lines of that kind. Adds up, per period, to what
# the effective bills of the period charged less the credits naming them.
_REVENUE_BY_LINE_KIND_SQL = """
WITH billed AS (
    SELECT b.period_month, CASE WHEN l.kind = 'discount' THEN 'package' ELSE l.kind END AS kind,
           sum(l.amount + l.vat) AS amount
    FROM billing_bill b
    JOIN billing_billline l ON l.bill_id = b.id AND l.kind <> 'vat'
    WHERE b.reversed_at IS NULL AND b.operator_id = ANY(%(ids)s)
      AND b.period_month >= %(since)s AND b.period_month <= %(until)s
    GROUP BY 1, 2
), credited AS (
    SELECT b.period_month, CASE WHEN l.kind = 'discount' THEN 'package' ELSE l.kind END AS kind,
           sum(c.amount + c.vat) AS amount
    FROM billing_creditline c
    JOIN billing_billline l ON l.id = c.bill_line_id
    JOIN billing_bill b ON b.id = l.bill_id
    WHERE b.reversed_at IS NULL AND b.operator_id = ANY(%(ids)s)
      AND b.period_month >= %(since)s AND b.period_month <= %(until)s
    GROUP BY 1, 2
)
SELECT billed.period_month, billed.kind, billed.amount - COALESCE(credited.amount, 0)
FROM billed LEFT JOIN credited ON credited.period_month = billed.period_month AND credited.kind = billed.kind
"""


def revenue_by_line_kind(operator_ids: list[int], since: dt.date, until: dt.date) -> dict[dt.date, dict[str, Decimal]]:
    """Per period label in [since, until]: what package, add-on and one-off charge lines brought in,
    VAT included, net of the credits taken off them (`addon` is `addon_revenue_by_period`'s figure)."""
    with connection.cursor() as cursor:
        cursor.execute(_REVENUE_BY_LINE_KIND_SQL, {"ids": list(operator_ids), "since": since, "until": until})
        found: dict[dt.date, dict[str, Decimal]] = {}
        for month, kind, amount in cursor.fetchall():
            found.setdefault(month, {})[kind] = amount
    return found


# --- What was credited of a bill, line by line: the credit notes of one bill -------------------------


@dataclass(frozen=True)
class CreditNoteLine:
    kind: str
    description: str
    amount: Decimal
    vat: Decimal


@dataclass(frozen=True)
class BillCredit:
    """One entry that credited a bill (a credit, a credit taken back, the void), with the lines it
    credited: what a credit note shows."""

    entry_id: int
    kind: str  # "credit", "taken_back" or "void"
    effective_date: dt.date
    memo: str
    amount: Decimal
    lines: tuple[CreditNoteLine, ...]


def bill_credits(bill_id: int) -> list[BillCredit]:
    """Every credit of one bill in the order made, each with the bill lines it credited (package,
    discount, add-ons; VAT per line)."""
    entries = (
        LedgerEntry.objects.filter(bill_id=bill_id, kind__in=[EntryKind.ADJUSTMENT, EntryKind.REVERSAL])
        .exclude(kind=EntryKind.ADJUSTMENT, amount__gt=0)
        .select_related("reverses")
        .order_by("id")
    )
    lines: dict[int, list[CreditNoteLine]] = {}
    for entry_id, kind, description, amount, vat in (
        CreditLine.objects.filter(entry__bill_id=bill_id)
        .order_by("entry_id", "bill_line_id")
        .values_list("entry_id", "bill_line__kind", "bill_line__description", "amount", "vat")
    ):
        lines.setdefault(entry_id, []).append(CreditNoteLine(kind, description, amount, vat))
    found = []
    for entry in entries:
        if entry.kind == EntryKind.ADJUSTMENT:
            kind = "credit"
        elif entry.reverses is not None and entry.reverses.kind == EntryKind.ADJUSTMENT and entry.reverses.amount < 0:
            kind = "taken_back"
        else:
            kind = "void"
        found.append(
            BillCredit(entry.pk, kind, entry.effective_date, entry.memo, -entry.amount, tuple(lines.get(entry.pk, ())))
        )
    return found


@dataclass(frozen=True)
class PaymentOnBill:
    payment_id: int
    entry_id: int
    received_at: dt.datetime
    method: str
    reference: str
    amount: Decimal  # what of the payment stands allocated to the bill


def payments_on_bill(bill_id: int) -> list[PaymentOnBill]:
    """The payments with money standing on a bill (allocations net of releases), oldest first: what
    must be reversed or moved before the bill's invoice can be voided."""
    rows = (
        Allocation.objects.filter(bill_id=bill_id, source__kind=EntryKind.PAYMENT)
        .values(
            "source_id",
            "source__payment_id",
            "source__payment__received_at",
            "source__payment__method",
            "source__payment__reference",
        )
        .annotate(amount=Sum("amount"))
        .filter(amount__gt=0)
        .order_by("source__payment__received_at", "source_id")
    )
    return [
        PaymentOnBill(
            payment_id=row["source__payment_id"],
            entry_id=row["source_id"],
            received_at=row["source__payment__received_at"],
            method=row["source__payment__method"],
            reference=row["source__payment__reference"],
            amount=row["amount"],
        )
        for row in rows
    ]


def billing_hold_current(subscriber: Subscriber, day: dt.date) -> BillingHold | None:
    """The billing hold in force on `day`, or the next one planned, if any."""
    return (
        BillingHold.objects.filter(subscriber=subscriber)
        .filter(Q(end_date__isnull=True) | Q(end_date__gt=day))
        .order_by("start_date")
        .first()
    )


def next_invoice_date(subscriber: Subscriber) -> dt.date | None:
    """The day the subscriber's next period bill will cover from, as generation will bill it: the
    period after the latest billed one (the first from activation when none is), none starting before
    `billing_starts_on`, none whose start a billing hold covers; None when nothing more will be billed
    (not activated, terminated by then, held without end)."""
    activation = subscriber.activation_date
    if activation is None or subscriber.service_intent == "terminated":
        return None
    terms = subscriber_terms(subscriber)
    latest = (
        Bill.objects.filter(subscriber=subscriber, kind=Bill.Kind.PERIOD, reversed_at__isnull=True)
        .order_by("-period_month")
        .values_list("period_month", flat=True)
        .first()
    )
    month = add_months(latest, 1) if latest is not None else terms.period_month_of(activation)
    if subscriber.billing_starts_on is not None:
        month = max(month, terms.first_month_from(subscriber.billing_starts_on, activation))
    holds = list(BillingHold.objects.filter(subscriber=subscriber).values_list("start_date", "end_date"))
    for _step in range(60):
        start = max(nominal_period(month, terms.anchor_day)[0], activation)
        if subscriber.terminated_on is not None and start >= subscriber.terminated_on:
            return None
        nominal = nominal_period(month, terms.anchor_day)[0]
        if not any(begin <= nominal and (end is None or nominal < end) for begin, end in holds):
            return start
        month = add_months(month, 1)
    return None


# --- Resellers' floats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloatSummary:
    """A reseller's float as its dashboard shows it. `runway_days`: how many days the balance lasts at
    the last 30 days' rate of charges (None when nothing was charged); `margin_month`: what the
    reseller's own subscribers paid this month less what its float was charged this month."""

    account: FloatAccount
    charged_today: Decimal
    charged_month: Decimal
    charged_30_days: Decimal
    collected_month: Decimal
    runway_days: int | None

    @property
    def margin_month(self) -> Decimal:
        return self.collected_month - self.charged_month

    @property
    def low(self) -> bool:
        return self.account.balance < self.account.low_balance_alert

    @property
    def headroom(self) -> Decimal:
        """What the float can still be charged before its floor."""
        return self.account.balance + self.account.credit_limit


def float_summary(operator: Operator, today: dt.date) -> FloatSummary | None:
    """The float `operator` keeps at its parent, with today's and this month's charges (in the
    operator's calendar), its runway and its margin; None when it runs on no float."""
    account = FloatAccount.objects.filter(operator=operator).select_related("operator").first()
    if account is None:
        return None
    zone = ZoneInfo(operator.time_zone)
    day_start = dt.datetime.combine(today, dt.time.min, tzinfo=zone)
    month_from = dt.datetime.combine(month_start(today), dt.time.min, tzinfo=zone)
    window_from = day_start - dt.timedelta(days=29)
    sums = FloatEntry.objects.filter(
        account=account, kind__in=[FloatEntry.Kind.CHARGE, FloatEntry.Kind.CREDIT_BACK]
    ).aggregate(
        today=Sum("amount", filter=Q(created_at__gte=day_start)),
        month=Sum("amount", filter=Q(created_at__gte=month_from)),
        window=Sum("amount", filter=Q(created_at__gte=window_from)),
    )
    charged = {key: -(value or ZERO) for key, value in sums.items()}
    daily = charged["window"] / 30
    runway = int(account.balance + account.credit_limit) // int(daily) if daily >= 1 else None
    return FloatSummary(
        account=account,
        charged_today=charged["today"],
        charged_month=charged["month"],
        charged_30_days=charged["window"],
        collected_month=collected([operator.pk], month_from, day_start + dt.timedelta(days=1)),
        runway_days=max(runway, 0) if runway is not None else None,
    )


def floats_low(operator_ids: list[int], *, exclude_operator_id: int | None = None) -> list[FloatAccount]:
    """The floats among `operator_ids` standing below their alert level, lowest first: what a parent's
    dashboard warns about (its own float, if any, is the reseller side's panel)."""
    rows = FloatAccount.objects.filter(operator_id__in=operator_ids, balance__lt=F("low_balance_alert")).select_related(
        "operator"
    )
    if exclude_operator_id is not None:
        rows = rows.exclude(operator_id=exclude_operator_id)
    return list(rows.order_by("balance", "operator__path"))
