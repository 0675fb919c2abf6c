"""`sonjog bench --floats`: one month's generation of a reseller tree with every level's float charged,
against the same month without floats, in the same run (issue 13: with floats <= 1.5x without).

The tree: a root ISP, 5 resellers under it, 2 sub-resellers under each (16 operators), the
subscribers spread evenly over all 16 and over the three billing modes and cycles. Every package of
every reseller is mapped to its parent's at a wholesale price, and every reseller runs on a float
opened before the first month of history with enough money for all of it, so the history holds one
charge per bill and floated level like a tree that has run on floats for years: a subscriber of a
sub-reseller is charged twice (its sub-reseller's float and its reseller's), one of a reseller once,
one of the root not at all.

Both measurements run inside transactions that are rolled back (like `generate_month_s`), with the
billing tables vacuumed before each, so neither meets the other's dead index entries; they alternate
for `rounds` rounds and the medians are reported. The run without floats takes the tree's floats away
inside its transaction, untimed (Django's foreign keys are checked at commit, which never comes).
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from sonjog.billing.models import BillingRun, FloatAccount, FloatEntry
from sonjog.billing.services.floats import MAX_TOPUP, float_account_open, float_topup
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.models import Package
from sonjog.catalog.services import package_wholesale_set
from sonjog.core.money import round_money
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.catalog import package_create
from sonjog.flows.generation import bills_generate
from sonjog.operators.models import BillingCycle, BillingMode, Operator
from sonjog.operators.services import operator_create

RESELLERS = 5
FLOAT_ROUNDS = 3
SUB_RESELLERS_EACH = 2
PACKAGES = [
    ("Home 5 Mbps", "500.00", 5_120),
    ("Home 10 Mbps", "800.00", 10_240),
    ("Home 20 Mbps", "1050.00", 20_480),
    ("Family 40 Mbps", "1500.00", 40_960),
    ("Pro 80 Mbps", "2200.00", 81_920),
    ("Business 150 Mbps", "4500.00", 153_600),
]
# What a parent charges for its package, as a share of its own price, with odd paisa so that the
# prorated charges round.
WHOLESALE_SHARE = Decimal("0.65")
WHOLESALE_ODD = Decimal("0.33")
BILLING_TABLES = (
    "billing_bill",
    "billing_billline",
    "billing_ledgerentry",
    "billing_invoice",
    "billing_statement",
    "billing_billingrun",
    "billing_floatentry",
    "billing_floataccount",
    "billing_documentsequence",
)

# The raw baseline of the same month (as `_RAW_INSERT_SQL` in billing.py, limited to the tree), and
# the charges of the month copied from the month before onto the new bills.
_RAW_SQL = [
    """INSERT INTO billing_bill (operator_id, subscriber_id, package_id, run_id, period_month, period_start,
        period_end, due_date, subtotal, discount, vat, total, is_prorated, created_at)
       SELECT operator_id, subscriber_id, package_id, run_id, %(to)s, period_start, period_end, due_date,
        subtotal, discount, vat, total, is_prorated, now()
       FROM billing_bill WHERE period_month = %(from)s AND reversed_at IS NULL AND kind = 'period'
        AND operator_id = ANY(%(operators)s)""",
    """INSERT INTO billing_ledgerentry (operator_id, subscriber_id, kind, category, amount, effective_date,
        period_month, bill_id, adjustment_reason, memo, created_at)
       SELECT b.operator_id, b.subscriber_id, 'bill', 'billed', b.total, b.period_start, b.period_month, b.id,
        '', '', now() FROM billing_bill b WHERE b.period_month = %(to)s AND b.operator_id = ANY(%(operators)s)""",
    """INSERT INTO billing_billline (bill_id, kind, description, amount, vat, subscriber_addon_id)
       SELECT nb.id, l.kind, l.description, l.amount, l.vat, l.subscriber_addon_id
       FROM billing_bill nb
       JOIN billing_bill ob ON ob.subscriber_id = nb.subscriber_id AND ob.period_month = %(from)s
        AND ob.reversed_at IS NULL AND ob.kind = 'period'
       JOIN billing_billline l ON l.bill_id = ob.id
       WHERE nb.period_month = %(to)s AND nb.operator_id = ANY(%(operators)s)""",
    """INSERT INTO billing_invoice (operator_id, bill_id, year, number, issued_on, total)
       SELECT b.operator_id, b.id, 1999, row_number() OVER (PARTITION BY b.operator_id ORDER BY b.id), now(), b.total
       FROM billing_bill b WHERE b.period_month = %(to)s AND b.operator_id = ANY(%(operators)s)""",
    """INSERT INTO billing_statement (operator_id, subscriber_id, period_month, opening_due, billed, paid,
        adjusted, closing_due)
       SELECT operator_id, subscriber_id, %(to)s, closing_due, billed, 0, 0, closing_due + billed
       FROM billing_statement WHERE period_month = %(from)s AND operator_id = ANY(%(operators)s)""",
]
_RAW_CHARGES_SQL = """
    INSERT INTO billing_floatentry (account_id, kind, amount, balance_after, bill_id, subscriber_id, package_id,
        unit_price, method, reference, memo, created_at)
    SELECT e.account_id, 'charge', e.amount, e.balance_after, nb.id, e.subscriber_id, e.package_id, e.unit_price,
        '', '', '', now()
    FROM billing_bill nb
    JOIN billing_bill ob ON ob.subscriber_id = nb.subscriber_id AND ob.period_month = %(from)s
        AND ob.reversed_at IS NULL AND ob.kind = 'period'
    JOIN billing_floatentry e ON e.bill_id = ob.id AND e.kind = 'charge'
    WHERE nb.period_month = %(to)s AND nb.operator_id = ANY(%(operators)s)
"""


class _Rollback(Exception):
    pass


def _tree() -> tuple[list[Operator], dict[int, list[Package]]]:
    """The 16 operators (root first, each parent before its children) and their packages, mapped."""
    root = operator_create(
        code="bench-float-isp",
        name="Float bench ISP",
        customer_id_prefix="FB",
        billing_mode=BillingMode.MONTHLY,
        billing_cycle=BillingCycle.CALENDAR,
    )
    operators = [root]
    for n in range(1, RESELLERS + 1):
        reseller = operator_create(
            code=f"bench-float-r{n}", name=f"Float reseller {n}", parent=root, customer_id_prefix=f"FBR{n}X"
        )
        operators.append(reseller)
        for m in range(1, SUB_RESELLERS_EACH + 1):
            operators.append(
                operator_create(
                    code=f"bench-float-r{n}s{m}",
                    name=f"Float sub-reseller {n}.{m}",
                    parent=reseller,
                    customer_id_prefix=f"FBR{n}S{m}X",
                )
            )
    packages: dict[int, list[Package]] = {}
    for operator in operators:
        packages[operator.pk] = []
        for index, (name, price, kbps) in enumerate(PACKAGES):
            package = package_create(
                operator=operator,
                name=name,
                price=Decimal(price),
                download_kbps=kbps,
                upload_kbps=kbps,
                router_profile=name.split()[0].lower() + f"-{kbps // 1024}m",
            )
            if operator.parent_id is not None:
                parent = packages[operator.parent_id][index]
                package = package_wholesale_set(
                    package=package,
                    parent_package=parent,
                    wholesale_price=round_money(parent.price * WHOLESALE_SHARE) + WHOLESALE_ODD,
                )
            packages[operator.pk].append(package)
    return operators, packages


def _subscribers(
    operators: list[Operator], packages: dict[int, list[Package]], count: int, first_month: dt.date, today: dt.date
) -> dict[int, int]:
    """`count` subscribers spread evenly over the operators (set-based, as `seed_isp` does); returns
    how many each operator has."""
    rng = random.Random(13)
    window_days = (today - first_month).days
    counts = {operator.pk: count // len(operators) for operator in operators}
    counts[operators[0].pk] += count - sum(counts.values())
    rows = []
    for operator in operators:
        for sequence in range(1, counts[operator.pk] + 1):
            customer_id = f"{operator.customer_id_prefix}{sequence:0{operator.customer_id_digits}d}"
            if rng.random() < 0.4:
                activation = first_month - dt.timedelta(days=rng.randint(1, 27))
            else:
                activation = first_month + dt.timedelta(days=rng.randint(0, max(window_days, 0)))
            mode = rng.choices([BillingMode.MONTHLY, BillingMode.CUMULATIVE, BillingMode.PREPAID], [60, 25, 15])[0]
            cycle = rng.choices(
                [BillingCycle.CALENDAR, BillingCycle.ANNIVERSARY, BillingCycle.FIXED_DAY], [60, 25, 15]
            )[0]
            rows.append(
                Subscriber(
                    operator=operator,
                    customer_id=customer_id,
                    name=f"Float subscriber {sequence}",
                    phone=f"+8801{rng.choice('3456789')}{rng.randint(0, 99_999_999):08d}",
                    package=rng.choice(packages[operator.pk]),
                    pppoe_username=customer_id.lower(),
                    pppoe_password=f"pw{rng.randint(100_000, 999_999)}",
                    activation_date=activation,
                    billing_mode=None if mode == operator.billing_mode else mode,
                    billing_cycle=None if cycle == operator.billing_cycle else cycle,
                    billing_day=20 if cycle == BillingCycle.FIXED_DAY else None,
                    service_intent=ServiceIntent.ACTIVE,
                    service_intent_at=timezone.now(),
                )
            )
        Operator.objects.filter(pk=operator.pk).update(customer_id_next=counts[operator.pk] + 1)
    Subscriber.objects.bulk_create(rows, batch_size=5000)
    return counts


def _floats_open(
    operators: list[Operator], packages: dict[int, list[Package]], counts: dict[int, int], months: int
) -> None:
    """Every reseller on a float at its parent, topped up with what the most expensive package would
    cost every subscriber charged there for every month, and some to spare."""
    by_id = {operator.pk: operator for operator in operators}
    charged_at: dict[int, int] = dict.fromkeys(by_id, 0)
    for operator in operators:
        level = operator
        while level.parent_id is not None:
            charged_at[level.pk] += counts[operator.pk]
            level = by_id[level.parent_id]
    for operator in operators[1:]:
        float_account_open(operator=operator)
        dearest = max(package.wholesale_price or Decimal(0) for package in packages[operator.pk])
        need = round_money(dearest * charged_at[operator.pk] * (months + 2) * Decimal("1.2"))
        while need > 0:
            amount = min(need, MAX_TOPUP)
            float_topup(operator=operator, amount=amount, method="bank", reference="bench float")
            need -= amount


def _vacuum() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {', '.join(BILLING_TABLES)}")


def _analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE customers_subscriber, {', '.join(BILLING_TABLES)}")


def run_float_bench(
    *, subscribers: int, months: int, progress: Callable[[str], None], rounds: int = FLOAT_ROUNDS
) -> dict[str, Any]:
    results: dict[str, Any] = {"float_subscribers": subscribers, "float_months": months}
    started = time.perf_counter()
    with transaction.atomic():
        operators, packages = _tree()
        root = operators[0]
        today = operator_today(root)
        first_month = add_months(month_start(today), -(months - 1))
        counts = _subscribers(operators, packages, subscribers, first_month, today)
        _floats_open(operators, packages, counts, months)
    _analyze()
    progress("float tree, subscribers and floats")
    for index in range(months):
        month = add_months(first_month, index)
        for operator in operators:
            result = bills_generate(operator=operator, period_month=month, trigger=BillingRun.Trigger.CLI, today=today)
            if result.float_refused:
                raise RuntimeError(f"float bench: {operator.code} {month:%Y-%m}: {result.errors[:1]}")
        if index % 4 == 0:
            _analyze()
        progress(f"float history {month:%Y-%m}")
    _analyze()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    results["float_seed_s"] = round(time.perf_counter() - started, 2)
    results["float_operators"] = len(operators)
    results["float_history_charges"] = FloatEntry.objects.filter(
        kind=FloatEntry.Kind.CHARGE, account__operator__in=operators
    ).count()

    target = add_months(month_start(today), 1)
    account_ids = list(FloatAccount.objects.filter(operator__in=operators).values_list("pk", flat=True))

    def generate(with_floats: bool) -> tuple[float, list[Any]]:
        _vacuum()
        seconds = 0.0
        runs: list[Any] = []
        try:
            with transaction.atomic():
                if not with_floats:
                    with connection.cursor() as cursor:
                        cursor.execute("DELETE FROM billing_floataccount WHERE id = ANY(%s)", [account_ids])
                begun = time.perf_counter()
                runs = [
                    bills_generate(operator=operator, period_month=target, trigger="cli", today=today)
                    for operator in operators
                ]
                seconds = time.perf_counter() - begun
                raise _Rollback
        except _Rollback:
            pass
        return seconds, runs

    with_times: list[float] = []
    without_times: list[float] = []
    for round_number in range(rounds):
        order = (False, True) if round_number % 2 == 0 else (True, False)
        for with_floats in order:
            seconds, runs = generate(with_floats)
            (with_times if with_floats else without_times).append(seconds)
            bills = sum(run.created for run in runs)
            if with_floats:
                results["float_debits"] = sum(run.float_charges for run in runs)
                results["float_refused"] = sum(run.float_refused for run in runs)
                results["float_month_bills"] = bills
            else:
                results["generate_without_float_bills"] = bills
        progress(f"float generation round {round_number + 1}")
    results["generate_with_float_s"] = round(statistics.median(with_times), 3)
    results["generate_without_float_s"] = round(statistics.median(without_times), 3)
    results["generate_with_float_rounds_s"] = [round(each, 3) for each in with_times]
    results["generate_without_float_rounds_s"] = [round(each, 3) for each in without_times]
    results["generate_float_ratio"] = round(statistics.median(with_times) / statistics.median(without_times), 2)
    # One charge per bill and floated level: a sub-reseller's subscriber twice, a reseller's once.
    results["float_debits_per_bill"] = round(results["float_debits"] / max(results["float_month_bills"], 1), 3)

    _vacuum()
    raw_seconds = 0.0
    charges_seconds = 0.0
    params: dict[str, Any] = {"from": month_start(today), "to": target, "operators": [o.pk for o in operators]}
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for sql in _RAW_SQL:
                step = time.perf_counter()
                cursor.execute(sql, params)
                raw_seconds += time.perf_counter() - step
            step = time.perf_counter()
            cursor.execute(_RAW_CHARGES_SQL, params)
            charges_seconds = time.perf_counter() - step
            results["float_raw_charges"] = cursor.rowcount
            raise _Rollback
    except _Rollback:
        pass
    results["float_raw_insert_s"] = round(raw_seconds, 3)
    results["float_raw_insert_with_charges_s"] = round(raw_seconds + charges_seconds, 3)
    results["generate_without_float_vs_raw_ratio"] = round(statistics.median(without_times) / raw_seconds, 2)
    results["generate_with_float_vs_raw_ratio"] = round(
        statistics.median(with_times) / (raw_seconds + charges_seconds), 2
    )
    progress("float raw baseline")
    verify_seconds, report = _timed(ledger_verify)
    results["float_ledger_verify_s"] = round(verify_seconds, 2)
    results["float_ledger_verify_ok"] = report.ok
    results["float_entries"] = report.counts.get("float_entries")
    progress("float ledger verify")
    return results


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value
