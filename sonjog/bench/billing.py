"""`sonjog bench`: seed a synthetic ISP into an empty database and measure DESIGN section 6's figures."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import statistics
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from sonjog.bench.console import console_bench
from sonjog.bench.messaging import run_notifications_bench
from sonjog.billing.exceptions import BillingError
from sonjog.billing.selectors import period_summary, subscriber_statement
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.models import Package
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import Subscriber, SubscriberAddOn
from sonjog.demo.seed import seed_isp
from sonjog.flows.generation import bills_generate
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_create
from sonjog.operators.models import Operator


class BenchRollback(Exception):
    """Raised to roll back a measurement's writes."""


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def _p(values: list[float], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))]


# The raw baseline writes the same rows generation writes for one month (bills, ledger entries,
# lines, invoices, statements) with one INSERT ... SELECT each, copying the month just generated.
_RAW_INSERT_SQL = [
    """INSERT INTO billing_bill (operator_id, subscriber_id, package_id, run_id, period_month, period_start,
        period_end, due_date, subtotal, discount, vat, total, is_prorated, created_at)
       SELECT operator_id, subscriber_id, package_id, run_id, %(to)s, period_start, period_end, due_date,
        subtotal, discount, vat, total, is_prorated, now()
       FROM billing_bill WHERE period_month = %(from)s AND reversed_at IS NULL AND kind = 'period'""",
    """INSERT INTO billing_ledgerentry (operator_id, subscriber_id, kind, category, amount, effective_date,
        period_month, bill_id, adjustment_reason, memo, created_at)
       SELECT b.operator_id, b.subscriber_id, 'bill', 'billed', b.total, b.period_start, b.period_month, b.id,
        '', '', now() FROM billing_bill b WHERE b.period_month = %(to)s""",
    # Every line of the month copied (package, add-ons with their VAT, discount, VAT), so the baseline
    # writes the add-on lines generation writes too.
    """INSERT INTO billing_billline (bill_id, kind, description, amount, vat, subscriber_addon_id)
       SELECT nb.id, l.kind, l.description, l.amount, l.vat, l.subscriber_addon_id
       FROM billing_bill nb
       JOIN billing_bill ob ON ob.subscriber_id = nb.subscriber_id AND ob.period_month = %(from)s
        AND ob.reversed_at IS NULL AND ob.kind = 'period'
       JOIN billing_billline l ON l.bill_id = ob.id
       WHERE nb.period_month = %(to)s""",
    """INSERT INTO billing_invoice (operator_id, bill_id, year, number, issued_on, total)
       SELECT b.operator_id, b.id, 1999, row_number() OVER (PARTITION BY b.operator_id ORDER BY b.id), now(), b.total
       FROM billing_bill b WHERE b.period_month = %(to)s""",
    """INSERT INTO billing_statement (operator_id, subscriber_id, period_month, opening_due, billed, paid,
        adjusted, closing_due)
       SELECT operator_id, subscriber_id, %(to)s, closing_due, billed, 0, 0, closing_due + billed
       FROM billing_statement WHERE period_month = %(from)s""",
]


def run_bench(
    *,
    subscribers: int,
    months: int,
    progress: Callable[[str], None],
    send_sample: int = 3000,
    send_workers: int = 4,
) -> dict[str, Any]:
    results: dict[str, Any] = {"subscribers": subscribers, "months": months}
    started = time.perf_counter()
    seed_isp(subscribers=subscribers, months=months, random_seed=42, progress=progress)
    results["seed_s"] = round(time.perf_counter() - started, 2)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    progress("vacuum analyze")

    operators = list(Operator.objects.filter(code__startswith="demo-").order_by("pk"))
    root = operators[0]
    today = operator_today(root)
    target = add_months(month_start(today), 1)

    # One month's generation for every operator (the whole ISP), then the raw baseline of the same rows.
    def generate_all() -> list[Any]:
        return [bills_generate(operator=o, period_month=target, trigger="cli", today=today) for o in operators]

    # Measured inside a transaction that is rolled back, exactly like the raw baseline below, so the
    # ratio compares like with like; then the month is generated for real (that second run meets the
    # first one's dead index entries, so it is reported separately and not used for the ratio).
    try:
        with transaction.atomic():
            seconds, runs = _timed(generate_all)
            raise BenchRollback
    except BenchRollback:
        pass
    results["generate_month_s"] = round(seconds, 3)
    results["generate_month_bills"] = sum(run.created for run in runs)
    results["addon_subscribers"] = (
        SubscriberAddOn.objects.filter(subscriber__operator__in=operators).values("subscriber").distinct().count()
    )
    committed_seconds, _ = _timed(generate_all)
    results["generate_month_committed_s"] = round(committed_seconds, 3)
    progress("generation")
    raw_seconds = 0.0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for sql in _RAW_INSERT_SQL:
                step_started = time.perf_counter()
                cursor.execute(sql, {"from": target, "to": add_months(target, 1)})
                raw_seconds += time.perf_counter() - step_started
            raise BenchRollback
    except BenchRollback:
        pass
    results["raw_insert_s"] = round(raw_seconds, 3)
    results["generate_vs_raw_ratio"] = round(seconds / raw_seconds, 2) if raw_seconds else None
    progress("raw insert baseline")

    summary_times = [_timed(lambda: period_summary(root, months=36))[0] for _ in range(7)]
    results["period_summary_ms"] = round(statistics.median(summary_times) * 1000, 1)
    results["period_summary_rows"] = len(period_summary(root, months=36))
    ids = list(Subscriber.objects.values_list("pk", flat=True))
    rng = random.Random(5)
    sample = rng.sample(ids, min(50, len(ids)))
    statement_times = []
    for pk in sample:
        statement_started = time.perf_counter()
        subscriber_statement(pk)
        statement_times.append(time.perf_counter() - statement_started)
    results["statement_ms"] = round(statistics.median(statement_times) * 1000, 2)
    results["statement_p95_ms"] = round(_p(statement_times, 95) * 1000, 2)
    progress("reads")

    payers = rng.sample(ids, min(300, len(ids)))

    def pay_all() -> None:
        for pk in payers:
            # Confirmed: a seeded payment made seconds ago may match by chance in a small run.
            payment_receive(
                subscriber=Subscriber(pk=pk),
                amount=Decimal("100.00"),
                method="cash",
                reference="bench",
                confirm_duplicate=True,
            )

    seconds, _ = _timed(pay_all)
    results["payments_per_s"] = round(len(payers) / seconds, 1)
    progress("payments")

    results.update(console_bench(root, samples=20))
    progress("console pages")

    results.update(
        run_notifications_bench(operators=operators, send_sample=send_sample, workers=send_workers, progress=progress)
    )

    results["concurrency_duplicates"] = _concurrency_round(root, add_months(target, 1), rng, ids)
    progress("concurrency")
    verify_seconds, report = _timed(ledger_verify)
    results["ledger_verify_s"] = round(verify_seconds, 2)
    results["ledger_verify_ok"] = report.ok
    results["counts"] = report.counts
    return results


def _concurrency_round(root: Operator, period: dt.date, rng: random.Random, ids: list[int]) -> int:
    """4 generators of the same period + sign-ups + payments at once, each on its own connection;
    returns how many (subscriber, period) pairs ended with more than one effective bill, plus any
    invoice-number gaps or duplicates. Must be 0."""
    package = Package.objects.filter(operator=root).first()
    assert package is not None
    barrier = threading.Barrier(6)
    errors: list[str] = []

    def guarded(function: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                barrier.wait(timeout=30)
                function()
            except Exception as error:
                errors.append(repr(error))
            finally:
                connection.close()

        return body

    def generate() -> None:
        bills_generate(operator=root, period_month=period, trigger="nightly")

    def signups() -> None:
        for n in range(20):
            subscriber_create(
                operator=root, name=f"Bench signup {n}", phone=f"0171{rng.randint(0, 9_999_999):07d}", package=package
            )

    def payments() -> None:
        for pk in rng.sample(ids, 50):
            with contextlib.suppress(BillingError):
                payment_receive(subscriber=Subscriber(pk=pk), amount=Decimal("10.00"), method="nagad")

    threads = [threading.Thread(target=guarded(f)) for f in (generate, generate, generate, generate, signups, payments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"concurrency round failed: {errors}")
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (SELECT count(*) FROM (SELECT 1 FROM billing_bill WHERE reversed_at IS NULL
                       GROUP BY subscriber_id, period_month HAVING count(*) > 1) d)
                    + (SELECT count(*) FROM (SELECT 1 FROM billing_invoice GROUP BY operator_id, year
                       HAVING max(number) <> count(*)) g)"""
        )
        row = cursor.fetchone()
    return int(row[0]) if row else -1
