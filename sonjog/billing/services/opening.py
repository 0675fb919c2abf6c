"""Opening balances: what an imported subscriber owed (or had in credit) in the system it came from.

A positive balance is an open item like any charge (a `charge` bill carrying one `opening_balance`
entry), so the first payment settles it before any bill Sonjog issues; a negative one is credit, a
source that FIFO allocation sets against the first bills. Both are written set-based for a whole
import batch: thousands of rows in a handful of statements.

`opening_balances_remove` is the one path that deletes ledger rows (ADR 0014): an import undone
while nothing else has touched its subscribers. The append-only trigger lets a DELETE through only for
`opening_balance` entries, only inside a transaction that set `sonjog.import_undo`, and this function
sets it only after checking that each subscriber has no other entry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import connection, transaction

from sonjog.billing.exceptions import BillingError, InvalidAmount
from sonjog.billing.models import Bill, BillLine, EntryCategory, EntryKind, LedgerEntry, Statement
from sonjog.billing.services.projection import statements_reproject
from sonjog.billing.terms import subscriber_terms
from sonjog.core.money import round_money
from sonjog.customers.models import Subscriber


@dataclass(frozen=True)
class OpeningBalance:
    subscriber: Subscriber
    amount: Decimal


def opening_balances_record(
    *, balances: Sequence[OpeningBalance], day: dt.date, memo: str, actor: User | None = None
) -> int:
    """Append each non-zero opening balance dated `day`; the subscribers are new (an import), so no
    lock is contended and nothing is allocated yet. Returns how many entries were written."""
    rows = [balance for balance in balances if balance.amount != 0]
    for balance in rows:
        if round_money(balance.amount) != balance.amount:
            raise InvalidAmount(f"the opening balance {balance.amount} has more than two decimal places")
    if not rows:
        return 0
    text = (memo.strip() or "Opening balance")[:200]
    with transaction.atomic():
        months: dict[int, dt.date] = {}
        charges: list[Bill] = []
        for balance in rows:
            subscriber = balance.subscriber
            terms = subscriber_terms(subscriber)
            months[subscriber.pk] = terms.period_month_of(day)
            if balance.amount > 0:
                charges.append(
                    Bill(
                        operator_id=subscriber.operator_id,
                        subscriber=subscriber,
                        package_id=subscriber.package_id,
                        kind=Bill.Kind.CHARGE,
                        period_month=months[subscriber.pk],
                        period_start=day,
                        period_end=day + dt.timedelta(days=1),
                        # Owed before the move: due at once.
                        due_date=day,
                        subtotal=balance.amount,
                        discount=Decimal("0.00"),
                        vat=Decimal("0.00"),
                        total=balance.amount,
                    )
                )
        Bill.objects.bulk_create(charges, batch_size=1000)
        BillLine.objects.bulk_create(
            (BillLine(bill=bill, kind=BillLine.Kind.CHARGE, description=text, amount=bill.total) for bill in charges),
            batch_size=1000,
        )
        charge_of = {bill.subscriber_id: bill for bill in charges}
        LedgerEntry.objects.bulk_create(
            (
                LedgerEntry(
                    operator_id=balance.subscriber.operator_id,
                    subscriber=balance.subscriber,
                    kind=EntryKind.OPENING_BALANCE,
                    category=EntryCategory.ADJUSTED,
                    amount=balance.amount,
                    effective_date=day,
                    period_month=months[balance.subscriber.pk],
                    bill=charge_of.get(balance.subscriber.pk),
                    memo=text[:300],
                    created_by=actor if actor is not None and actor.is_authenticated else None,
                )
                for balance in rows
            ),
            batch_size=1000,
        )
        statements_reproject(months.items())
    return len(rows)


def opening_balances_remove(*, subscriber_ids: Sequence[int]) -> int:
    """Delete the opening balances (with their charges and statements) of subscribers whose ledger
    holds nothing else; refuse, changing nothing, if any holds more. Returns the entries deleted."""
    ids = sorted(set(subscriber_ids))
    if not ids:
        return 0
    with transaction.atomic():
        touched = (
            LedgerEntry.objects.filter(subscriber_id__in=ids)
            .exclude(kind=EntryKind.OPENING_BALANCE)
            .values_list("subscriber__customer_id", flat=True)[:5]
        )
        if touched:
            raise BillingError(
                "these subscribers have ledger entries besides their opening balance: " + ", ".join(touched)
            )
        bill_ids = list(Bill.objects.filter(subscriber_id__in=ids).values_list("pk", flat=True))
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL sonjog.import_undo = 'on'")
            cursor.execute(
                "DELETE FROM billing_ledgerentry WHERE subscriber_id = ANY(%s) AND kind = 'opening_balance'", [ids]
            )
            deleted = cursor.rowcount
            cursor.execute("SET LOCAL sonjog.import_undo = 'off'")
        Statement.objects.filter(subscriber_id__in=ids).delete()
        BillLine.objects.filter(bill_id__in=bill_ids).delete()
        Bill.objects.filter(pk__in=bill_ids).delete()
    return deleted
