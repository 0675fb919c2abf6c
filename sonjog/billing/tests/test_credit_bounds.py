"""Credits against one bill are bounded in the database (ADR 0010): whoever writes the rows, the
credits naming a bill plus a void of it never exceed it, and no bill line is credited past itself."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.models import Sum

from sonjog.billing.exceptions import CreditExceedsBill
from sonjog.billing.models import Bill, BillLine, CreditLine, LedgerEntry
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.services import money, outage_credit_add
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.customers.models import Subscriber

D = dt.date
TWENTY_DAYS = 20 * 24 * 60


def _june_subscriber(price: str = "600.00"):
    operator = make_operator(vat_rate=Decimal("0"), billing_cycle="calendar")
    subscriber = make_subscriber(operator, make_package(operator, price, vat=False), D(2027, 6, 1))
    bill = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
    return operator, subscriber, bill


def _unlocked(subscriber_id: int) -> Subscriber:
    """The subscriber as the services read it, without the row lock: a caller that skips it."""
    return Subscriber.objects.select_related("operator", "package").get(pk=subscriber_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("frozen_clock")
def test_racing_credits_that_skip_every_lock_are_bounded_by_the_database():
    """Two 20-day outage credits of a 30-day period, on two connections at once, with the subscriber
    lock bypassed and both past the Python bound before either writes: the database lets one through
    and refuses the other with a clear error."""
    _operator, subscriber, bill = _june_subscriber()
    both_checked = threading.Barrier(2, timeout=10)
    real_split = money.credit_split

    def split_after_both_checked(credit: Decimal, lines: Any) -> Any:
        both_checked.wait()  # each has read 600.00 left to credit; now both write
        return real_split(credit, lines)

    def credit() -> LedgerEntry:
        return outage_credit_add(
            subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=TWENTY_DAYS, memo="storm"
        )

    with (
        mock.patch.object(money, "subscriber_lock", _unlocked),
        mock.patch.object(money, "credit_split", split_after_both_checked),
    ):
        results = run_at_once(credit, credit)
    made = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, CreditExceedsBill)]
    assert len(made) == 1 and len(refused) == 1, results
    assert made[0].amount == Decimal("-400.00")
    # The refusal came from the database's bound (the Python one had passed), and says what is left.
    assert isinstance(refused[0].__context__, IntegrityError)
    assert "only 200.00 is left to credit on the 2027-06 bill" in str(refused[0])
    credited = -sum(e.amount for e in LedgerEntry.objects.filter(bill=bill, kind="adjustment"))
    assert credited == Decimal("400.00") <= bill.total
    assert subscriber_balance(subscriber.pk) == Decimal("200.00")
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("frozen_clock")
def test_racing_credits_through_the_service_credit_exactly_the_bill():
    _operator, subscriber, bill = _june_subscriber()

    def credit() -> LedgerEntry:
        return outage_credit_add(
            subscriber=subscriber, period_month=D(2027, 6, 1), outage_minutes=TWENTY_DAYS, memo="storm"
        )

    results = run_at_once(credit, credit)
    # Serialised by the subscriber lock: the second is cut to what the first left.
    assert sorted(r.amount for r in results) == [Decimal("-400.00"), Decimal("-200.00")], results
    assert money.bill_creditable(bill) == 0
    assert ledger_verify().ok


def _insert_entry(subscriber: Subscriber, bill: Bill, kind: str, amount: str, reverses: int | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO billing_ledgerentry (operator_id, subscriber_id, kind, category, amount,
                   effective_date, period_month, bill_id, reverses_id, adjustment_reason, memo, created_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'direct', now()) RETURNING id""",
            [
                subscriber.operator_id,
                subscriber.pk,
                kind,
                "billed" if kind == "reversal" else "adjusted",
                Decimal(amount),
                bill.period_start,
                bill.period_month,
                bill.pk,
                reverses,
                "" if kind == "reversal" else "outage",
            ],
        )
        return int(cursor.fetchone()[0])


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_a_direct_sql_credit_past_the_bill_is_refused_by_the_database():
    _operator, subscriber, bill = _june_subscriber()
    with pytest.raises(IntegrityError, match=r"would exceed it: 600\.00 of its 600\.00 is left"), transaction.atomic():
        _insert_entry(subscriber, bill, "adjustment", "-600.01")
    _insert_entry(subscriber, bill, "adjustment", "-400.00")
    asked_too_much = r"200\.00 of its 600\.00 is left to credit, 200\.01 asked"
    with pytest.raises(IntegrityError, match=asked_too_much), transaction.atomic():
        _insert_entry(subscriber, bill, "adjustment", "-200.01")
    # A partly credited bill is not voided under its credits: they are taken back first.
    own = LedgerEntry.objects.get(bill=bill, kind="bill")
    with pytest.raises(IntegrityError, match="exceed"), transaction.atomic():
        _insert_entry(subscriber, bill, "reversal", "-600.00", reverses=own.pk)
    _insert_entry(subscriber, bill, "adjustment", "-200.00")  # exactly what was left
    with pytest.raises(IntegrityError, match=r"0\.00 of its 600\.00 is left"), transaction.atomic():
        _insert_entry(subscriber, bill, "adjustment", "-0.01")
    # A credit naming another subscriber's bill.
    other = make_subscriber(subscriber.operator, subscriber.package, D(2027, 6, 1))
    with pytest.raises(IntegrityError, match="another subscriber"), transaction.atomic():
        _insert_entry(other, bill, "adjustment", "-1.00")


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_a_voided_bill_takes_no_credit_and_lines_are_bounded_one_by_one():
    _operator, subscriber, bill = _june_subscriber()
    money.invoice_void(invoice=bill.invoice, reason="wrong package")
    with pytest.raises(IntegrityError, match=r"0\.00 of its 600\.00 is left"), transaction.atomic():
        _insert_entry(subscriber, bill, "adjustment", "-1.00")

    other_subscriber = make_subscriber(subscriber.operator, subscriber.package, D(2027, 6, 1))
    june = Bill.objects.get(subscriber=other_subscriber, kind=Bill.Kind.PERIOD)
    line = BillLine.objects.get(bill=june, kind="package")
    entry = money.bill_credit_add(bill=june, amount=Decimal("100.00"), memo="goodwill")
    assert list(entry.credit_lines.values_list("bill_line", "amount", "vat")) == [
        (line.pk, Decimal("100.00"), Decimal("0.00"))
    ]

    def line_insert(amount: str, vat: str = "0", on: BillLine = line) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_creditline (entry_id, bill_line_id, amount, vat) VALUES (%s, %s, %s, %s)",
                [entry.pk, on.pk, Decimal(amount), Decimal(vat)],
            )

    with pytest.raises(IntegrityError, match=r"would stand credited 600\.01"), transaction.atomic():
        line_insert("500.01")
    with pytest.raises(IntegrityError, match="VAT"), transaction.atomic():
        line_insert("0", "0.01")
    with pytest.raises((IntegrityError, InternalError), match="append-only"), transaction.atomic():
        CreditLine.objects.filter(entry=entry).update(amount=Decimal("1.00"))
    with pytest.raises((IntegrityError, InternalError), match="append-only"), transaction.atomic():
        CreditLine.objects.filter(entry=entry).delete()
    with pytest.raises(CreditExceedsBill, match=r"only 500\.00 is left to credit"):
        money.bill_credit_add(bill=june, amount=Decimal("500.01"), memo="too much")
    assert ledger_verify().ok


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_the_migration_gives_earlier_credits_and_voids_their_lines():
    """Credits and voids written before credits had lines (here: straight into the ledger) get them
    from migration 0011 the way the services make them now."""
    import importlib

    from django.apps import apps

    from sonjog.billing.services import money_changed

    operator = make_operator(vat_rate=Decimal("15.00"), vat_inclusive=False, billing_cycle="calendar")
    subscriber = make_subscriber(operator, make_package(operator, "1000.00"), D(2027, 5, 1))
    may, june = Bill.objects.filter(subscriber=subscriber).order_by("period_month")

    def entry(bill: Bill, amount: str, reason: str = "outage", **fields: Any) -> LedgerEntry:
        return LedgerEntry.objects.create(
            operator=operator,
            subscriber=subscriber,
            kind=fields.pop("kind", "adjustment"),
            category=fields.pop("category", "adjusted"),
            amount=Decimal(amount),
            effective_date=bill.period_start,
            period_month=bill.period_month,
            bill=bill,
            adjustment_reason=reason,
            **fields,
        )

    outage = entry(june, "-115.00")
    change = entry(june, "-230.00", "package_change")
    entry(june, "115.00", "", kind="reversal", reverses=outage)
    own = LedgerEntry.objects.get(bill=may, kind="bill")
    entry(may, "-1150.00", "", kind="reversal", category="billed", reverses=own)
    Bill.objects.filter(pk=may.pk).update(reversed_at=may.created_at)
    money_changed([subscriber.pk], [(subscriber.pk, may.period_month)])
    assert not ledger_verify().checks["credit_lines_sum_to_credit"]

    migration = importlib.import_module("sonjog.billing.migrations.0011_credit_lines")
    migration.credit_lines_backfill(apps, None)
    report = ledger_verify()
    assert report.ok, report.violations
    assert list(outage.credit_lines.values_list("bill_line__kind", "amount", "vat")) == [
        ("package", Decimal("100.00"), Decimal("15.00"))
    ]
    assert list(change.credit_lines.values_list("bill_line__kind", "amount", "vat")) == [
        ("package", Decimal("200.00"), Decimal("30.00"))
    ]
    assert CreditLine.objects.filter(bill_line__bill=may).aggregate(total=Sum("amount"))["total"] == Decimal("1000.00")
