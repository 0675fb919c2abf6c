"""The statement projection and FIFO allocation: derived rows kept in step with the ledger.

Both run inside the caller's transaction, after the caller has appended its ledger entries and while
it holds the subscriber lock, so a reader never sees the ledger and its projection disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection
from django.db.models import Q

from sonjog.billing.calculation import addon_amounts, bill_amounts
from sonjog.billing.models import Allocation, Bill, EntryKind, LedgerEntry
from sonjog.core.db import server_cursor
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, subscriber_period
from sonjog.customers.models import Subscriber, SubscriberAddOn
from sonjog.operators.models import BillingMode

# One statement row per (subscriber, period) with entries; the chain starts from the closing due of
# the last statement before the earliest touched period, so a correction re-projects only forward.
REPROJECT_SQL = """
WITH touched AS (
    SELECT * FROM unnest(%(subscriber_ids)s::bigint[], %(from_months)s::date[]) AS t(subscriber_id, from_month)
), sums AS (
    -- LATERAL: one index range scan per touched subscriber, never a pass over the whole ledger.
    SELECT t.subscriber_id, e.period_month, max(e.operator_id) AS operator_id,
           COALESCE(sum(e.amount) FILTER (WHERE e.category = 'billed'), 0) AS billed,
           COALESCE(-sum(e.amount) FILTER (WHERE e.category = 'paid'), 0) AS paid,
           COALESCE(sum(e.amount) FILTER (WHERE e.category = 'adjusted'), 0) AS adjusted
    FROM touched t
    CROSS JOIN LATERAL (
        SELECT le.period_month, le.operator_id, le.amount, le.category FROM billing_ledgerentry le
        WHERE le.subscriber_id = t.subscriber_id AND le.period_month >= t.from_month
        OFFSET 0  -- keeps the planner from flattening this into a hash join over the whole ledger
    ) e
    GROUP BY t.subscriber_id, e.period_month
), openings AS (
    SELECT t.subscriber_id,
           COALESCE((SELECT s.closing_due FROM billing_statement s
                     WHERE s.subscriber_id = t.subscriber_id AND s.period_month < t.from_month
                     ORDER BY s.period_month DESC LIMIT 1), 0) AS opening
    FROM touched t
), chained AS (
    SELECT s.*, o.opening + sum(s.billed - s.paid + s.adjusted)
               OVER (PARTITION BY s.subscriber_id ORDER BY s.period_month) AS closing_due
    FROM sums s JOIN openings o USING (subscriber_id)
)
INSERT INTO billing_statement
    (operator_id, subscriber_id, period_month, opening_due, billed, paid, adjusted, closing_due)
SELECT operator_id, subscriber_id, period_month, closing_due - (billed - paid + adjusted),
       billed, paid, adjusted, closing_due
FROM chained
ON CONFLICT ON CONSTRAINT statement_one_per_period DO UPDATE SET
    opening_due = EXCLUDED.opening_due, billed = EXCLUDED.billed, paid = EXCLUDED.paid,
    adjusted = EXCLUDED.adjusted, closing_due = EXCLUDED.closing_due
WHERE (billing_statement.opening_due, billing_statement.billed, billing_statement.paid,
       billing_statement.adjusted, billing_statement.closing_due)
      IS DISTINCT FROM (EXCLUDED.opening_due, EXCLUDED.billed, EXCLUDED.paid, EXCLUDED.adjusted, EXCLUDED.closing_due)
"""


def statements_reproject(touched: Iterable[tuple[int, dt.date]]) -> None:
    """Re-project statements for each (subscriber, earliest touched period) and every later period."""
    earliest: dict[int, dt.date] = {}
    for subscriber_id, month in touched:
        if subscriber_id not in earliest or month < earliest[subscriber_id]:
            earliest[subscriber_id] = month
    if not earliest:
        return
    with server_cursor() as cursor:
        cursor.execute(
            REPROJECT_SQL,
            {"subscriber_ids": list(earliest), "from_months": list(earliest.values())},
        )


# Net allocation per (source, bill) for one subscriber, with whether either side is no longer
# effective (source reversed, bill reversed): those must be released before allocating afresh.
_ALLOCATION_STATE_SQL = """
SELECT a.source_id, a.bill_id, sum(a.amount) AS net,
       EXISTS (SELECT 1 FROM billing_ledgerentry r WHERE r.reverses_id = a.source_id) AS source_reversed,
       b.reversed_at IS NOT NULL AS bill_reversed
FROM billing_allocation a
JOIN billing_bill b ON b.id = a.bill_id
WHERE b.subscriber_id = %s
GROUP BY a.source_id, a.bill_id, b.reversed_at
HAVING sum(a.amount) <> 0
"""


def allocations_rebalance(subscriber_id: int) -> None:
    """Release allocations that lost their source or bill, then allocate FIFO: the oldest unallocated
    payment or credit goes to the oldest open bill. Appends rows only; idempotent."""
    with connection.cursor() as cursor:
        cursor.execute(_ALLOCATION_STATE_SQL, [subscriber_id])
        state = cursor.fetchall()
    releases = [
        Allocation(source_id=source_id, bill_id=bill_id, amount=-net)
        for source_id, bill_id, net, source_reversed, bill_reversed in state
        if source_reversed or bill_reversed
    ]
    allocated_from: dict[int, Decimal] = {}
    allocated_to: dict[int, Decimal] = {}
    for source_id, bill_id, net, source_reversed, bill_reversed in state:
        if not (source_reversed or bill_reversed):
            allocated_from[source_id] = allocated_from.get(source_id, ZERO) + net
            allocated_to[bill_id] = allocated_to.get(bill_id, ZERO) + net

    sources: list[tuple[int, list[Decimal]]] = [
        (entry_id, [-amount - allocated_from.get(entry_id, ZERO)])
        for entry_id, amount in LedgerEntry.objects.filter(
            subscriber_id=subscriber_id,
            kind__in=[EntryKind.PAYMENT, EntryKind.ADJUSTMENT, EntryKind.OPENING_BALANCE],
            amount__lt=0,
            reversed_by__isnull=True,
        )
        .order_by("effective_date", "id")
        .values_list("id", "amount")
    ]
    bills: list[tuple[int, list[Decimal]]] = [
        (bill_id, [total - allocated_to.get(bill_id, ZERO)])
        for bill_id, total in Bill.objects.filter(subscriber_id=subscriber_id, reversed_at__isnull=True)
        .order_by("period_month", "id")
        .values_list("id", "total")
    ]
    new_rows = list(releases)
    source_index = 0
    # Each remaining amount sits in a one-element list so it can be decremented in place.
    for bill_id, bill_open in bills:
        while bill_open[0] > 0 and source_index < len(sources):
            source_id, source_left = sources[source_index]
            if source_left[0] <= 0:
                source_index += 1
                continue
            amount = min(source_left[0], bill_open[0])
            new_rows.append(Allocation(source_id=source_id, bill_id=bill_id, amount=amount))
            source_left[0] -= amount
            bill_open[0] -= amount
    if new_rows:
        Allocation.objects.bulk_create(new_rows)


def paid_run_end(subscriber_id: int) -> tuple[dt.date | None, dt.date | None]:
    """The (exclusive) end and the period label of the last period bill in the unbroken run of fully
    paid ones, oldest first: what the subscriber has paid for without a gap."""
    paid_through: dt.date | None = None
    last_month: dt.date | None = None
    bills = Bill.objects.filter(subscriber_id=subscriber_id, reversed_at__isnull=True, kind=Bill.Kind.PERIOD)
    for total, allocated, period_end, period_month in bills.order_by("period_month").values_list(
        "total", "allocated", "period_end", "period_month"
    ):
        if allocated < total:
            break
        paid_through, last_month = period_end, period_month
    return paid_through, last_month


def prepaid_expiry(subscriber_id: int) -> dt.date | None:
    """For a prepaid subscriber: the end of the last bill in the unbroken run of fully paid bills,
    carried further by whatever credit is left over, period by period, at what each period's bill
    would be: the package and the add-ons running in it."""
    from sonjog.billing.terms import subscriber_terms

    subscriber = Subscriber.objects.select_related("operator", "package").get(pk=subscriber_id)
    if subscriber.activation_date is None:
        return None
    terms = subscriber_terms(subscriber)
    if terms.mode != BillingMode.PREPAID:
        return subscriber.expires_on
    paid_through, last_month = paid_run_end(subscriber_id)
    credit = -sum(LedgerEntry.objects.filter(subscriber_id=subscriber_id).values_list("amount", flat=True), ZERO)
    month = add_months(last_month, 1) if last_month else terms.period_month_of(subscriber.activation_date)
    vat = terms.vat_for(subscriber.package.vat_applicable)
    addons: list[SubscriberAddOn] | None = None
    # Credit buys whole future periods first, then the days it can pay for in the next one.
    for _ahead in range(120):
        if credit <= 0:
            break
        period = subscriber_period(month, terms.anchor_day, subscriber.activation_date)
        if period is None:
            break
        price = bill_amounts(
            monthly_price=subscriber.package.price,
            monthly_discount=subscriber.monthly_discount,
            period=period,
            vat=vat,
        ).total
        if addons is None:
            # Read once, and only for a subscriber with credit to spend.
            addons = list(
                SubscriberAddOn.objects.filter(subscriber_id=subscriber_id)
                .filter(Q(end_date__isnull=True) | Q(end_date__gt=period.start))
                .select_related("addon")
            )
        for stretch in addons:
            line = addon_amounts(
                monthly_price=stretch.addon.price,
                period=period,
                start=stretch.start_date,
                end=stretch.end_date,
                vat=terms.vat_for(stretch.addon.vat_applicable),
            )
            if line is not None:
                price += line.total
        if price <= 0:
            break
        if credit >= price:
            credit -= price
            paid_through = period.end
            month = add_months(month, 1)
            continue
        paid_through = period.start + dt.timedelta(days=int(period.days * credit / price))
        break
    return paid_through


def money_changed(subscriber_ids: Iterable[int], touched: Iterable[tuple[int, dt.date]]) -> None:
    """After any ledger append: keep allocations, statements and prepaid expiry in step."""
    ids = sorted(set(subscriber_ids))
    for subscriber_id in ids:
        allocations_rebalance(subscriber_id)
    statements_reproject(touched)
    # Only prepaid subscribers (their own override, or their operator's mode) carry a validity date.
    prepaid_ids = (
        Subscriber.objects.filter(pk__in=ids, activation_date__isnull=False)
        .filter(
            Q(billing_mode=BillingMode.PREPAID)
            | Q(billing_mode__isnull=True, operator__billing_mode=BillingMode.PREPAID)
        )
        .values_list("pk", flat=True)
    )
    for subscriber_id in prepaid_ids:
        expiry = prepaid_expiry(subscriber_id)
        Subscriber.objects.filter(pk=subscriber_id).exclude(expires_on=expiry).update(expires_on=expiry)
