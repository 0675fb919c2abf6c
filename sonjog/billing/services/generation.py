"""bill_generate_period: the one way bills come into being (nightly, staff, activation, catch-up).

Exactly once, by three layers: a run lock per (operator, period) so two full runs do not duplicate
work, a row lock per subscriber (taken in id order, so concurrent runs cannot deadlock) that
serialises every money write of one subscriber, and the partial unique index
`bill_one_effective_per_period`, which holds even if both locks were bypassed: inserts use
ON CONFLICT DO NOTHING against it and count a conflict as "skipped_existing".

The work is set-based: subscribers are read in one query, amounts computed in Python with the same
functions every other path uses, and rows written with one INSERT ... SELECT FROM unnest(...) per
table. That keeps a 30,000-subscriber month within a small factor of a raw INSERT.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from sonjog.billing.calculation import addon_amounts, addon_period, bill_amounts
from sonjog.billing.models import BillingRun, DocumentSequence
from sonjog.billing.services.floats import (
    ChainPrices,
    FundedBill,
    chain_prices,
    float_charges_write,
    floats_fund,
)
from sonjog.billing.services.generation_sql import ADDONS_SQL, CANDIDATES_SQL, INSERT_RUN_SQL, INTERRUPTED_SQL
from sonjog.billing.services.projection import money_changed, statements_reproject
from sonjog.billing.terms import BillingTerms, operator_today, terms_for
from sonjog.core.db import server_cursor
from sonjog.core.periods import Period, add_months, month_start, subscriber_period
from sonjog.customers.models import Subscriber
from sonjog.operators.models import Operator

RUN_LOCK_NAMESPACE = zlib.crc32(b"sonjog.billing.run")


@dataclass
class GenerationResult:
    period: dt.date
    created: int = 0
    backfilled: int = 0
    skipped_existing: int = 0
    skipped_future_joiners: int = 0
    # Periods not billed because billing was paused for them (a billing hold).
    skipped_held: int = 0
    # Subscribers not billed because their reseller's float cannot cover the bill (named in `errors`).
    float_refused: int = 0
    # Charges written on resellers' floats for the bills of this run (one per bill and level).
    float_charges: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    run_id: int | None = None
    # An earlier run of this period that was killed before it finished, found and closed by this one.
    resumed_run_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": f"{self.period:%Y-%m}",
            "created": self.created,
            "backfilled": self.backfilled,
            "skipped_existing": self.skipped_existing,
            "skipped_future_joiners": self.skipped_future_joiners,
            "skipped_held": self.skipped_held,
            "float_refused": self.float_refused,
            "float_charges": self.float_charges,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "resumed_interrupted_run": self.resumed_run_id,
        }

    def add(self, other: GenerationResult) -> None:
        self.created += other.created
        self.backfilled += other.backfilled
        self.skipped_existing += other.skipped_existing
        self.skipped_future_joiners += other.skipped_future_joiners
        self.skipped_held += other.skipped_held
        self.float_refused += other.float_refused
        self.float_charges += other.float_charges
        self.errors.extend(other.errors)


def document_numbers_reserve(*, operator_id: int, kind: str, year: int, count: int) -> int:
    """Reserve `count` consecutive numbers and return the first. The sequence row stays locked until
    the caller's transaction ends, so numbers are gapless: a rollback gives them back."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {DocumentSequence._meta.db_table} (operator_id, kind, year, last_number)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT ON CONSTRAINT document_sequence_unique
            DO UPDATE SET last_number = {DocumentSequence._meta.db_table}.last_number + EXCLUDED.last_number
            RETURNING last_number""",
            [operator_id, kind, year, count],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]) - count + 1


@dataclass(frozen=True, slots=True)
class _PlannedAddOnLine:
    subscriber_addon_id: int
    description: str
    amount: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class _AddOnStretch:
    """A subscriber's add-on over [start, end) with what it costs, as read for one run."""

    id: int
    start: dt.date
    end: dt.date | None
    name: str
    price: Decimal
    vat_applicable: bool
    # Period label -> the first day an effective one-off charge billed it from, to that period's end.
    charged_from: dict[dt.date, dt.date] = field(default_factory=dict)

    def end_in(self, period: Period) -> dt.date | None:
        """Where a bill of `period` stops billing the add-on: its end, or the day a one-off charge
        for that period took over."""
        charged = self.charged_from.get(period.month)
        if charged is None:
            return self.end
        return charged if self.end is None else min(self.end, charged)


@dataclass(slots=True)
class _PlannedBill:
    subscriber_id: int
    package_id: int
    period_month: dt.date
    period_start: dt.date
    period_end: dt.date
    due_date: dt.date
    subtotal: Decimal
    discount: Decimal
    vat: Decimal
    total: Decimal
    is_prorated: bool
    is_target: bool
    addon_lines: tuple[_PlannedAddOnLine, ...] = ()
    # What a reseller's float charge is prorated by: the period and whether the bill is prorated.
    period: Period | None = None
    prorate: bool = False


def _run_record_open(
    operator: Operator, period_month: dt.date, trigger: str, actor: User | None, started_at: dt.datetime
) -> BillingRun:
    """The run's record, committed on its own before any work: a run killed mid-way (SIGKILL, a lost
    connection) leaves it `running` with a database session that no longer exists. Inside a caller's
    transaction it simply joins it (nothing committed can then outlive the work anyway)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
        return BillingRun.objects.create(
            operator=operator,
            period_month=period_month,
            trigger=trigger,
            status=BillingRun.Status.RUNNING,
            backend_pid=row[0] if row else None,
            actor=actor if actor is not None and actor.pk else None,
            started_at=started_at,
            finished_at=started_at,
            seconds=0,
        )


def _interrupted_runs_close(operator: Operator, period_month: dt.date, own_run_id: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(INTERRUPTED_SQL, [operator.pk, period_month, own_run_id])
        return sorted(row[0] for row in cursor.fetchall())


def bill_generate_period(
    *,
    operator: Operator,
    period_month: dt.date,
    trigger: str,
    actor: User | None = None,
    subscriber_ids: list[int] | None = None,
    today: dt.date | None = None,
    started_by: dt.date | None = None,
    on_bills_created: Callable[[int], None] | None = None,
    new_connection: bool = False,
) -> GenerationResult:
    """Bill `period_month` (and any missing earlier periods since activation) for the operator's
    subscribers, or only `subscriber_ids`. One transaction; one subscriber's error never aborts it.

    `started_by` limits the run to periods that have begun by that date: the nightly job passes today,
    so an anniversary subscriber is billed on their own day, not on the 1st. A reseller's subscriber
    whose floats cannot cover a bill is left out and named in `errors` (`new_connection`: above each
    float's minimum balance, not only its floor). `on_bills_created(run_id)`
    is called inside the run's transaction when it created or backfilled bills: the flows layer queues
    the subscribers' notices there (`sonjog.flows.generation`), so they commit with the bills."""
    started = time.monotonic()
    started_at = timezone.now()
    period_month = period_month.replace(day=1)
    today = today or operator_today(operator)
    result = GenerationResult(period=period_month)
    run = _run_record_open(operator, period_month, trigger, actor, started_at)
    try:
        _generate(
            operator,
            period_month,
            subscriber_ids,
            started_by,
            actor,
            today,
            run,
            result,
            started,
            on_bills_created,
            new_connection,
        )
    except BaseException:
        if not connection.in_atomic_block:
            # Failed, not killed: say so now rather than when the connection is gone.
            BillingRun.objects.filter(pk=run.pk, status=BillingRun.Status.RUNNING).update(
                status=BillingRun.Status.INTERRUPTED, finished_at=timezone.now()
            )
        raise
    return result


def _generate(
    operator: Operator,
    period_month: dt.date,
    subscriber_ids: list[int] | None,
    started_by: dt.date | None,
    actor: User | None,
    today: dt.date,
    run: BillingRun,
    result: GenerationResult,
    started: float,
    on_bills_created: Callable[[int], None] | None,
    new_connection: bool = False,
) -> None:
    with transaction.atomic():
        if subscriber_ids is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)",
                    [RUN_LOCK_NAMESPACE, operator.pk * 10000 + period_month.year * 12 + period_month.month],
                )
        resumed = _interrupted_runs_close(operator, period_month, run.pk)
        if resumed:
            result.resumed_run_id = resumed[-1]
        planned = _plan(operator, period_month, subscriber_ids, result, started_by)
        chain = chain_prices(operator, lock=True)
        funded: list[FundedBill] = []
        if chain.charged and planned:
            planned, funded = _floats_fund(chain, planned, result, renewal=not new_connection)
        inserted = _insert(operator, run.pk, planned, actor, today)
        if funded:
            result.float_charges = float_charges_write(chain, funded, {(row[1], row[2]): row[0] for row in inserted})
        inserted_keys = {(row[1], row[2]) for row in inserted}
        for bill in planned:
            landed = (bill.subscriber_id, bill.period_month) in inserted_keys
            if bill.is_target:
                if landed:
                    result.created += 1
                else:
                    result.skipped_existing += 1
            elif landed:
                result.backfilled += 1
        statements_reproject((row[1], row[2]) for row in inserted if not row[5])
        _consume_credit(inserted)
        result.seconds = time.monotonic() - started
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRun.Status.FINISHED,
            resumed_id=result.resumed_run_id,
            created=result.created,
            backfilled=result.backfilled,
            skipped_existing=result.skipped_existing,
            skipped_future_joiners=result.skipped_future_joiners,
            error_count=len(result.errors),
            errors=result.errors[:1000],
            finished_at=timezone.now(),
            seconds=result.seconds,
        )
        result.run_id = run.pk
        if on_bills_created is not None and (result.created or result.backfilled):
            on_bills_created(run.pk)


def bill_generation_preview(
    *, operator: Operator, period_month: dt.date, subscriber_ids: list[int] | None = None
) -> GenerationResult:
    """What `bill_generate_period` would do now, counted by the same planner: `created` and
    `backfilled` are the bills it would write; nothing is written and no row is locked."""
    result = GenerationResult(period=period_month.replace(day=1))
    for bill in _plan(operator, result.period, subscriber_ids, result, None, lock=False):
        if bill.is_target:
            result.created += 1
        else:
            result.backfilled += 1
    return result


def _plan(
    operator: Operator,
    period_month: dt.date,
    only_ids: list[int] | None,
    result: GenerationResult,
    started_by: dt.date | None,
    *,
    lock: bool = True,
) -> list[_PlannedBill]:
    # The earliest any period labelled `period_month` can start is the month before's last days
    # (anniversary/fixed day), so "terminated after" is checked against the month's first day - 1.
    with server_cursor() as cursor:
        cursor.execute(
            CANDIDATES_SQL if lock else CANDIDATES_SQL.replace("FOR NO KEY UPDATE OF s", ""),
            {
                "operator_id": operator.pk,
                "month": period_month,
                "earliest": period_month,
                "only_ids": only_ids,
            },
        )
        rows = cursor.fetchall()
    addons = _addons_of_candidates(operator, period_month, only_ids, rows)
    terms_cache: dict[tuple[Any, ...], Any] = {}
    amounts_cache: dict[tuple[Any, ...], Any] = {}
    planned: list[_PlannedBill] = []
    for (
        subscriber_id,
        customer_id,
        activation_date,
        terminated_on,
        mode,
        cycle,
        billing_day,
        discount,
        package_id,
        price,
        vat_applicable,
        _package_name,
        last_billed_month,
        target_exists,
        billing_starts_on,
        holds,
    ) in rows:
        try:
            key = (mode, cycle, billing_day, activation_date.day)
            terms = terms_cache.get(key)
            if terms is None:
                terms = terms_for(
                    operator, mode=mode, cycle=cycle, billing_day=billing_day, activation_date=activation_date
                )
                terms_cache[key] = terms
            first_month = terms.period_month_of(activation_date)
            if billing_starts_on is not None:
                # Billed elsewhere before (an import): the first period Sonjog bills is the one that
                # starts on or after that day.
                first_month = max(first_month, terms.first_month_from(billing_starts_on, activation_date))
            if first_month > period_month:
                result.skipped_future_joiners += 1
                continue
            if target_exists:
                result.skipped_existing += 1
                months = []
            else:
                months = [period_month]
            # Backfill: every month after the latest bill (or from activation) up to the target.
            month = add_months(last_billed_month, 1) if last_billed_month else first_month
            month = max(month, first_month)
            while month < period_month:
                months.append(month)
                month = add_months(month, 1)
            vat = terms.vat_for(vat_applicable)
            for month in months:
                period = subscriber_period(month, terms.anchor_day, activation_date, terminated_on)
                if period is None or (started_by is not None and period.nominal_start > started_by):
                    continue
                # A billing hold (pause) covers the period's start: not billed.
                if holds and any(period.nominal_start in hold for hold in holds):
                    result.skipped_held += 1
                    continue
                prorate = (period.start == activation_date and terms.prorate_first) or (
                    period.end == terminated_on and terms.prorate_last
                )
                # Most subscribers share a package, a discount and the same period bounds: compute each
                # distinct combination once.
                amounts_key = (price, discount, vat, prorate, period)
                amounts = amounts_cache.get(amounts_key)
                if amounts is None:
                    amounts = bill_amounts(
                        monthly_price=price, monthly_discount=discount, period=period, vat=vat, prorate=prorate
                    )
                    amounts_cache[amounts_key] = amounts
                bill = _PlannedBill(
                    subscriber_id=subscriber_id,
                    package_id=package_id,
                    period_month=month,
                    period_start=period.start,
                    period_end=period.end,
                    due_date=period.start + dt.timedelta(days=terms.due_days),
                    subtotal=amounts.subtotal,
                    discount=amounts.discount,
                    vat=amounts.vat,
                    total=amounts.total,
                    is_prorated=prorate and period.is_prorated,
                    is_target=month == period_month,
                    period=period,
                    prorate=prorate,
                )
                stretches = addons.get(subscriber_id)
                if stretches:
                    _addon_lines_add(bill, stretches, period, terms, prorate)
                planned.append(bill)
        except (ValueError, ArithmeticError) as error:
            result.errors.append({"subscriber": customer_id, "error": str(error)})
    return planned


def _addons_of_candidates(
    operator: Operator, period_month: dt.date, only_ids: list[int] | None, candidates: list[tuple[Any, ...]]
) -> dict[int, list[_AddOnStretch]]:
    """The add-on stretches of every candidate that may overlap a period this run bills, by subscriber:
    one query for the whole run. A period labelled M starts on or after M's first day and ends by the
    first of M + 2, and the earliest period a candidate can be billed for is the one after its latest
    bill (or, never billed, the one holding its activation day), or the run's own period when that
    lies before (a voided period billed again)."""
    if not candidates:
        return {}
    # Columns of CANDIDATES_SQL: 2 is the activation date, 12 the latest billed period. The target
    # itself may lie before the latest bill (a voided period billed again).
    since = min(
        period_month,
        min(add_months(row[12], 1) if row[12] else add_months(month_start(row[2]), -1) for row in candidates),
    )
    with server_cursor() as cursor:
        cursor.execute(
            ADDONS_SQL,
            {
                "operator_id": operator.pk,
                "since": since,
                "since_month": add_months(month_start(since), -1),
                "until": add_months(period_month, 2),
                "only_ids": only_ids,
            },
        )
        found: dict[int, list[_AddOnStretch]] = {}
        for subscriber_id, stretch_id, start, end, name, price, vat_applicable, months, starts in cursor.fetchall():
            charged_from: dict[dt.date, dt.date] = {}
            for month, charged_start in zip(months or (), starts or (), strict=True):
                charged_from[month] = min(charged_start, charged_from.get(month, charged_start))
            stretch = _AddOnStretch(stretch_id, start, end, name, price, vat_applicable, charged_from)
            found.setdefault(subscriber_id, []).append(stretch)
    return found


def _addon_lines_add(
    bill: _PlannedBill, stretches: list[_AddOnStretch], period: Period, terms: BillingTerms, prorate: bool
) -> None:
    """Put each add-on overlapping the bill's period on it as a line of its own, and add the lines to
    the bill's subtotal, VAT and total (the discount stays the package's). Days a one-off charge
    already billed for this period are left out (ADR 0008)."""
    lines: list[_PlannedAddOnLine] = []
    for stretch in stretches:
        end = stretch.end_in(period)
        amounts = addon_amounts(
            monthly_price=stretch.price,
            period=period,
            start=stretch.start,
            end=end,
            vat=terms.vat_for(stretch.vat_applicable),
            prorate=prorate,
        )
        if amounts is None:
            continue
        covered = addon_period(period, stretch.start, end)
        assert covered is not None
        whole = covered.start == period.start and covered.end == period.end
        shortened = covered.is_prorated and (prorate or not whole)
        description = f"{stretch.name} ({covered.days} days)" if shortened else stretch.name
        lines.append(_PlannedAddOnLine(stretch.id, description[:200], amounts.subtotal, amounts.vat))
        bill.subtotal += amounts.subtotal
        bill.vat += amounts.vat
        bill.total += amounts.total
    bill.addon_lines = tuple(lines)


def _floats_fund(
    chain: ChainPrices, planned: list[_PlannedBill], result: GenerationResult, *, renewal: bool
) -> tuple[list[_PlannedBill], list[FundedBill]]:
    """The bills the resellers' floats can cover (in subscriber and period order), and their charges;
    the others are left out of the run, each subscriber named with why (billed by a later run once
    the float is topped up)."""
    ordered = sorted(planned, key=lambda bill: (bill.subscriber_id, bill.period_month))
    funded, refused = floats_fund(
        chain,
        (
            (bill.subscriber_id, bill.period_month, bill.package_id, bill.period, bill.prorate)
            for bill in ordered
            if bill.period is not None
        ),
        renewal=renewal,
    )
    if refused:
        names = dict(Subscriber.objects.filter(pk__in=list(refused)).values_list("pk", "customer_id"))
        for subscriber_id, why in refused.items():
            result.errors.append({"subscriber": names.get(subscriber_id, str(subscriber_id)), "error": why})
        result.float_refused += len(refused)
    kept = {(bill.subscriber_id, bill.period_month) for bill in funded}
    return [bill for bill in ordered if (bill.subscriber_id, bill.period_month) in kept], funded


def _insert(
    operator: Operator,
    run_id: int,
    planned: list[_PlannedBill],
    actor: User | None,
    today: dt.date,
) -> list[tuple[Any, ...]]:
    if not planned:
        return []
    now = timezone.now()
    columns = {
        name: [getattr(bill, name) for bill in planned]
        for name in (
            "subscriber_id",
            "package_id",
            "period_month",
            "period_start",
            "period_end",
            "due_date",
            "subtotal",
            "discount",
            "vat",
            "total",
            "is_prorated",
        )
    }
    addon_columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "addon_subscriber_id",
            "addon_period_month",
            "addon_stretch_id",
            "addon_description",
            "addon_amount",
            "addon_vat",
        )
    }
    for bill in planned:
        for line in bill.addon_lines:
            addon_columns["addon_subscriber_id"].append(bill.subscriber_id)
            addon_columns["addon_period_month"].append(bill.period_month)
            addon_columns["addon_stretch_id"].append(line.subscriber_addon_id)
            addon_columns["addon_description"].append(line.description)
            addon_columns["addon_amount"].append(line.amount)
            addon_columns["addon_vat"].append(line.vat)
    with server_cursor() as cursor:
        cursor.execute(
            INSERT_RUN_SQL,
            {
                "operator_id": operator.pk,
                "run_id": run_id,
                "now": now,
                "actor_id": actor.pk if actor is not None and actor.pk else None,
                "year": today.year,
                "issued_on": today,
                **columns,
                **addon_columns,
            },
        )
        inserted = cursor.fetchall()
    return inserted


def _consume_credit(inserted: list[tuple[Any, ...]]) -> None:
    """A subscriber whose balance was below zero (credit) before the new bills gets that credit
    allocated to them now. Everyone else has nothing to allocate, and skipping them keeps the run
    set-based. The balance before comes back from the insert itself for bills projected there; for
    the rest it is the latest closing due minus what this run just billed."""
    if not inserted:
        return
    with_credit = {row[1] for row in inserted if row[5] and row[4] < 0}
    new_totals: dict[int, Decimal] = {}
    for row in inserted:
        if not row[5]:
            new_totals[row[1]] = new_totals.get(row[1], Decimal(0)) + row[3]
    if new_totals:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT t.subscriber_id FROM unnest(%(ids)s::bigint[], %(totals)s::numeric[]) AS t(subscriber_id, total)
                WHERE (SELECT s.closing_due FROM billing_statement s WHERE s.subscriber_id = t.subscriber_id
                       ORDER BY s.period_month DESC LIMIT 1) - t.total < 0
                """,
                {"ids": list(new_totals), "totals": list(new_totals.values())},
            )
            with_credit.update(row[0] for row in cursor.fetchall())
    if with_credit:
        money_changed(sorted(with_credit), [])
