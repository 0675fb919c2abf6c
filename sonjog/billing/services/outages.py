"""Outage credits for many subscribers at once: a preview of who gets how much, then the credits.

Who was hit (a zone, a router, a POP) is not billing's business: a flow (`sonjog.flows.outages`)
asks customers and network for the subscriber ids and hands them here. Billing decides, for each
of them, what the outage is worth: the subscribers in service (active or suspended) whose billed
period the outage overlaps get `price x outage_minutes / minutes_in_period` of that period's bill
(`calculation.outage_credit`, the single-subscriber rule), an outage across a period boundary
split into its minutes in each period, and never more than is left to credit on the bill.

`outage_credits_apply` credits one subscriber per transaction, under the subscriber lock, through
`money.outage_credit_add` (the one service that books an outage credit); one subscriber's failure
never stops the others.

Why an `Outage` row with unique credit links, not a key in the adjustment's memo: a memo is free
text (300 characters, cut, edited by whoever writes it) and nothing in the database can hold it
unique, while `OutageCredit(outage, subscriber, period_month)` is a unique index that holds even when
someone skips the lock, it is cheap to read for a whole zone in one query (the preview shows
"already credited" before anyone presses anything), and it says afterwards which entry credited whom
for which outage. The `Outage` itself is unique on (operator, what, from, until), so pressing
"Credit" twice, a retry or two clerks at once find the same outage; under the subscriber lock a
period already linked to it, or to another outage whose window overlaps this one (the same fibre cut
entered once by zone and once by router), is skipped with the reason. A period billed only later is
credited by applying the same outage again: the periods credited before are skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from sonjog.billing.calculation import outage_credit
from sonjog.billing.exceptions import BillingError, InvalidDate
from sonjog.billing.models import Bill, LedgerEntry, Outage, OutageCredit
from sonjog.billing.services.locks import subscriber_lock
from sonjog.billing.services.money import outage_credit_add
from sonjog.billing.terms import subscriber_terms
from sonjog.core.audit import audit
from sonjog.core.money import ZERO
from sonjog.core.periods import add_months, month_start, nominal_period
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.operators.models import Operator

# Suspended subscribers are billed for their periods like active ones, so the outage is theirs too.
AFFECTED_INTENTS = (ServiceIntent.ACTIVE, ServiceIntent.SUSPENDED)
# Longer than two months is a typing mistake, not an outage to credit in one go.
LONGEST_OUTAGE = dt.timedelta(days=62)

# What happens to one subscriber's period.
CREDIT = "credit"  # credited in full
CAPPED = "capped"  # credited what was left on the bill, less than the outage is worth
NOT_BILLED = "not_billed"  # no bill for the period yet: nothing to credit
FULLY_CREDITED = "fully_credited"  # the bill has nothing left to credit
TOO_SHORT = "too_short"  # worth less than a paisa
ALREADY_CREDITED = "already_credited"  # this outage, or one overlapping it, credited the period
FAILED = "failed"  # the credit service refused it (its message says why)

CREDITED = (CREDIT, CAPPED)

# How often a run moves the outage's progress, and how many of its rows the outage keeps to show.
PROGRESS_STEP = 25
ROWS_KEPT = 500


@dataclass(frozen=True)
class PeriodCredit:
    """What the outage is worth in one period of one subscriber."""

    period_month: dt.date
    minutes: int
    status: str
    amount: Decimal = ZERO  # credited (or, in a preview, to be): after the cap
    full_amount: Decimal = ZERO  # what the minutes are worth before the cap
    left: Decimal | None = None  # what was left to credit on the bill
    other_outage_id: int | None = None  # ALREADY_CREDITED: by which outage
    error: str = ""


@dataclass
class SubscriberOutage:
    subscriber_id: int
    customer_id: str
    name: str
    periods: list[PeriodCredit]

    @property
    def amount(self) -> Decimal:
        return sum((period.amount for period in self.periods if period.status in CREDITED), ZERO)

    @property
    def credited(self) -> bool:
        return self.amount > 0


@dataclass
class OutagePlan:
    """A preview (`outage` None) or what `outage_credits_apply` did."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    rows: list[SubscriberOutage]
    # Chosen but not in service during the outage: disabled, terminated, not yet activated.
    not_in_service: int = 0
    outage: Outage | None = None

    @property
    def credited(self) -> list[SubscriberOutage]:
        return [row for row in self.rows if row.credited]

    @property
    def skipped(self) -> list[SubscriberOutage]:
        return [row for row in self.rows if not row.credited]

    @property
    def total(self) -> Decimal:
        return sum((row.amount for row in self.rows), ZERO)


def outage_window_problem(starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime | None = None) -> str | None:
    """Why [starts_at, ends_at) is not an outage to credit, or None: the views show it as it is."""
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        return "the outage's start and end need a time zone"
    if ends_at <= starts_at:
        return "the outage must end after it starts"
    if ends_at - starts_at > LONGEST_OUTAGE:
        return f"an outage of more than {LONGEST_OUTAGE.days} days is credited in parts, one at a time"
    if ends_at > (now or timezone.now()):
        return "the outage has not ended yet: credit it once it is over"
    return None


def _window_check(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    problem = outage_window_problem(starts_at, ends_at)
    if problem:
        raise InvalidDate(problem)


def outage_credits_preview(
    *,
    operator_ids: Collection[int],
    subscriber_ids: Collection[int],
    start: dt.datetime,
    end: dt.datetime,
) -> OutagePlan:
    """Who among `subscriber_ids` (within `operator_ids`) an outage over [start, end) credits, and
    how much, without writing anything."""
    _window_check(start, end)
    affected, not_in_service = _affected(operator_ids, subscriber_ids, start, end)
    rows = _plan(affected, start, end)
    return OutagePlan(start, end, rows, not_in_service + len(affected) - len(rows))


def _apply_check(operator: Operator, target_kind: str, operator_ids: Collection[int], reason: str) -> None:
    if target_kind not in Outage.Target.values:
        raise BillingError(f"unknown outage target '{target_kind}'")
    if not reason.strip():
        raise BillingError("say why: an outage credit needs a reason")
    if operator.pk not in operator_ids:
        raise BillingError(f"{operator} is not among the operators this outage may credit")


def outage_credits_queue(
    *,
    operator: Operator,
    target_kind: str,
    target_id: int,
    target_label: str,
    operator_ids: Collection[int],
    subscriber_count: int,
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    actor: User | None = None,
) -> tuple[Outage, bool]:
    """Record the outage and mark it queued for a run of `outage_credits_apply` (the caller hands
    it to the worker in this transaction). Returns the outage and whether it was queued now: one
    queued or running already (a second press, two clerks at once) is left to finish."""
    _window_check(start, end)
    _apply_check(operator, target_kind, operator_ids, reason)
    outage = _outage_record(operator, target_kind, target_id, target_label, start, end, reason.strip(), actor)
    queued = (
        Outage.objects.filter(pk=outage.pk)
        .exclude(status__in=(Outage.Status.QUEUED, Outage.Status.RUNNING))
        .update(status=Outage.Status.QUEUED, total=subscriber_count, done=0, error="", finished_at=None)
    )
    outage.refresh_from_db()
    return outage, bool(queued)


def outage_run_failed(outage_id: int, error: str) -> None:
    """A run that stopped on an error: the page says so (what it credited before stays credited,
    and applying the outage again credits the rest)."""
    Outage.objects.filter(pk=outage_id).update(
        status=Outage.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def outage_credits_apply(
    *,
    operator: Operator,
    target_kind: str,
    target_id: int,
    target_label: str,
    operator_ids: Collection[int],
    subscriber_ids: Collection[int],
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    actor: User | None = None,
    step: int = PROGRESS_STEP,
) -> OutagePlan:
    """Credit the outage to every subscriber the preview names: one transaction per subscriber,
    under its lock, through `outage_credit_add`. Idempotent per (outage, subscriber, period): see the
    module's docstring. The result says who was credited how much and why the others were not; the
    outage row shows the run's progress as it goes (every `step` subscribers) and keeps its result."""
    _window_check(start, end)
    _apply_check(operator, target_kind, operator_ids, reason)
    outage = _outage_record(operator, target_kind, target_id, target_label, start, end, reason.strip(), actor)
    affected, not_in_service = _affected(operator_ids, subscriber_ids, start, end)
    Outage.objects.filter(pk=outage.pk).update(
        status=Outage.Status.RUNNING, total=len(affected), done=0, error="", finished_at=None
    )
    rows: list[SubscriberOutage] = []
    # In key order, like every bulk writer of subscribers' money: concurrent applies never deadlock.
    for done, subscriber in enumerate(sorted(affected, key=lambda each: each.pk), start=1):
        row = _credit_one(outage, subscriber.pk, actor)
        if row is not None:
            rows.append(row)
        if done % step == 0:
            Outage.objects.filter(pk=outage.pk).update(done=done)
    plan = OutagePlan(start, end, rows, not_in_service + len(affected) - len(rows), outage=outage)
    _run_record(outage, plan, len(affected))
    return plan


def _run_record(outage: Outage, plan: OutagePlan, looked_at: int) -> None:
    credited, skipped = plan.credited, plan.skipped
    shown = (credited + skipped)[:ROWS_KEPT]
    values = {
        "status": Outage.Status.DONE,
        "done": looked_at,
        "credited_count": len(credited),
        "credited_total": plan.total,
        "skipped_count": len(skipped),
        "not_in_service": plan.not_in_service,
        "rows": [_row_json(row) for row in shown],
        "finished_at": timezone.now(),
    }
    Outage.objects.filter(pk=outage.pk).update(**values)
    for name, value in values.items():
        setattr(outage, name, value)


def _row_json(row: SubscriberOutage) -> dict[str, object]:
    return {
        "subscriber_id": row.subscriber_id,
        "customer_id": row.customer_id,
        "name": row.name,
        "periods": [
            {
                "period_month": period.period_month.isoformat(),
                "minutes": period.minutes,
                "status": period.status,
                "amount": str(period.amount),
                "full_amount": str(period.full_amount),
                "left": None if period.left is None else str(period.left),
                "other_outage_id": period.other_outage_id,
                "error": period.error,
            }
            for period in row.periods
        ],
    }


def outage_last_run(outage: Outage) -> list[SubscriberOutage]:
    """The rows the outage's last run kept (credited first, then skipped with why), as the preview
    shows them; the counts and the total are the outage's own fields."""
    rows = []
    for row in outage.rows or []:
        periods = [
            PeriodCredit(
                period_month=dt.date.fromisoformat(period["period_month"]),
                minutes=int(period["minutes"]),
                status=str(period["status"]),
                amount=Decimal(period["amount"]),
                full_amount=Decimal(period["full_amount"]),
                left=None if period["left"] is None else Decimal(period["left"]),
                other_outage_id=period["other_outage_id"],
                error=str(period["error"]),
            )
            for period in row["periods"]
        ]
        rows.append(SubscriberOutage(int(row["subscriber_id"]), str(row["customer_id"]), str(row["name"]), periods))
    return rows


def _outage_record(
    operator: Operator,
    target_kind: str,
    target_id: int,
    target_label: str,
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    actor: User | None,
) -> Outage:
    # get_or_create retries the read when a concurrent request inserted the same outage first.
    with transaction.atomic():
        outage, created = Outage.objects.get_or_create(
            operator=operator,
            target_kind=target_kind,
            target_id=target_id,
            starts_at=start,
            ends_at=end,
            defaults={
                "target_label": target_label[:200],
                "reason": reason[:200],
                "created_by": actor if actor is not None and actor.pk else None,
            },
        )
        if created:
            audit(
                operator=operator,
                action="outage.record",
                actor=actor,
                outage=outage.pk,
                target=f"{target_kind} {target_label}",
                starts_at=start.isoformat(),
                ends_at=end.isoformat(),
                reason=reason,
            )
    return outage


def _credit_one(outage: Outage, subscriber_id: int, actor: User | None) -> SubscriberOutage | None:
    try:
        with transaction.atomic():
            locked = subscriber_lock(subscriber_id)
            planned = _plan([locked], outage.starts_at, outage.ends_at)
            if not planned:
                return None
            row = planned[0]
            done: list[PeriodCredit] = []
            for period in row.periods:
                if period.status not in CREDITED:
                    done.append(period)
                    continue
                try:
                    entry = outage_credit_add(
                        subscriber=locked,
                        period_month=period.period_month,
                        outage_minutes=period.minutes,
                        memo=_memo(outage, locked),
                        actor=actor,
                    )
                except BillingError as error:
                    done.append(replace(period, status=FAILED, amount=ZERO, error=str(error)))
                    continue
                OutageCredit.objects.create(
                    outage=outage,
                    subscriber=locked,
                    period_month=period.period_month,
                    entry=entry,
                    minutes=period.minutes,
                )
                done.append(replace(period, amount=-entry.amount))
            row.periods = done
            return row
    except IntegrityError as error:
        diag = getattr(error.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) != "outagecredit_once_per_period":
            raise
        # The unique link: someone who skipped the subscriber lock credited this outage here first.
        # Everything this transaction credited is rolled back with it.
        subscriber = Subscriber.objects.get(pk=subscriber_id)
        return SubscriberOutage(
            subscriber.pk,
            subscriber.customer_id,
            subscriber.name,
            [PeriodCredit(month_start(outage.starts_at.date()), 0, ALREADY_CREDITED, other_outage_id=outage.pk)],
        )


def _memo(outage: Outage, subscriber: Subscriber) -> str:
    zone = ZoneInfo(subscriber.operator.time_zone)
    start = outage.starts_at.astimezone(zone)
    end = outage.ends_at.astimezone(zone)
    return (
        f"Outage #{outage.pk} ({outage.get_target_kind_display()} {outage.target_label}) "
        f"{start:%d/%m/%Y %H:%M} to {end:%d/%m/%Y %H:%M}: {outage.reason}"
    )[:300]


def _affected(
    operator_ids: Collection[int], subscriber_ids: Collection[int], start: dt.datetime, end: dt.datetime
) -> tuple[list[Subscriber], int]:
    """The chosen subscribers within `operator_ids` that were in service during the outage, and how
    many others were chosen. Service is today's intent (active or suspended: both are billed) with an
    activation before the outage ended and no termination before it began."""
    chosen = Subscriber.objects.filter(pk__in=list(subscriber_ids), operator_id__in=list(operator_ids))
    candidates = list(
        chosen.filter(service_intent__in=AFFECTED_INTENTS, activation_date__isnull=False)
        .select_related("operator")
        .order_by("pk")
    )
    affected = []
    for subscriber in candidates:
        zone = ZoneInfo(subscriber.operator.time_zone)
        first_day = start.astimezone(zone).date()
        last_day = (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
        assert subscriber.activation_date is not None
        if subscriber.activation_date > last_day:
            continue
        if subscriber.terminated_on is not None and subscriber.terminated_on <= first_day:
            continue
        affected.append(subscriber)
    return affected, chosen.count() - len(affected)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def _overlap_minutes(start: dt.datetime, end: dt.datetime, lo: dt.datetime, hi: dt.datetime) -> int:
    seconds = (min(end, hi) - max(start, lo)).total_seconds()
    return int(seconds // 60) if seconds > 0 else 0


def _plan(subscribers: Iterable[Subscriber], start: dt.datetime, end: dt.datetime) -> list[SubscriberOutage]:
    """Each subscriber's periods that the outage overlaps, what it is worth in each and what stops
    it, in three queries whatever the number of subscribers: the bills, what stands of them (what
    `money.bill_creditable` sums, for all of them at once) and the credits of overlapping outages."""
    subscribers = list(subscribers)
    if not subscribers:
        return []
    ids = [each.pk for each in subscribers]
    # A day of slack either side covers every operator's time zone; the exact overlap is below.
    first_month = add_months(month_start((start - dt.timedelta(days=1)).date()), -1)
    last_month = month_start((end + dt.timedelta(days=1)).date())
    bills = {
        (bill.subscriber_id, bill.period_month): bill
        for bill in Bill.objects.filter(
            subscriber_id__in=ids,
            kind=Bill.Kind.PERIOD,
            reversed_at__isnull=True,
            period_month__gte=first_month,
            period_month__lte=last_month,
        )
    }
    standing = {
        row["bill_id"]: row["standing"]
        for row in LedgerEntry.objects.filter(bill_id__in=[bill.pk for bill in bills.values()])
        .values("bill_id")
        .annotate(standing=Sum("amount"))
    }
    links = {
        (link.subscriber_id, link.period_month): link.outage_id
        for link in OutageCredit.objects.filter(
            subscriber_id__in=ids, outage__starts_at__lt=end, outage__ends_at__gt=start
        ).order_by("outage_id")
    }
    rows: list[SubscriberOutage] = []
    for subscriber in subscribers:
        periods = list(_periods(subscriber, start, end, bills, standing, links))
        if periods:
            rows.append(SubscriberOutage(subscriber.pk, subscriber.customer_id, subscriber.name, periods))
    return rows


def _periods(
    subscriber: Subscriber,
    start: dt.datetime,
    end: dt.datetime,
    bills: dict[tuple[int, dt.date], Bill],
    standing: dict[int, Decimal],
    links: dict[tuple[int, dt.date], int],
) -> Iterable[PeriodCredit]:
    zone = ZoneInfo(subscriber.operator.time_zone)
    first_day = start.astimezone(zone).date()
    last_day = (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
    terms = subscriber_terms(subscriber)
    assert subscriber.activation_date is not None
    month = terms.period_month_of(first_day)
    while True:
        nominal_start, nominal_end = nominal_period(month, terms.anchor_day)
        if nominal_start > last_day:
            return
        bill = bills.get((subscriber.pk, month))
        if bill is not None:
            lo, hi = bill.period_start, bill.period_end
        else:
            lo = max(nominal_start, subscriber.activation_date)
            hi = nominal_end if subscriber.terminated_on is None else min(nominal_end, subscriber.terminated_on)
        minutes = _overlap_minutes(start, end, _midnight(lo, zone), _midnight(hi, zone)) if lo < hi else 0
        if minutes > 0:
            yield _period_credit(subscriber.pk, month, minutes, bill, standing, links)
        month = add_months(month, 1)


def _period_credit(
    subscriber_id: int,
    month: dt.date,
    minutes: int,
    bill: Bill | None,
    standing: dict[int, Decimal],
    links: dict[tuple[int, dt.date], int],
) -> PeriodCredit:
    other = links.get((subscriber_id, month))
    if other is not None:
        return PeriodCredit(month, minutes, ALREADY_CREDITED, other_outage_id=other)
    if bill is None:
        return PeriodCredit(month, minutes, NOT_BILLED)
    # The same arithmetic as `outage_credit_add`, which books it.
    period_minutes = (bill.period_end - bill.period_start).days * 24 * 60
    worth = outage_credit(period_total=bill.total, outage_minutes=minutes, period_minutes=period_minutes)
    left = max(standing.get(bill.pk, ZERO), ZERO)
    if worth <= 0:
        return PeriodCredit(month, minutes, TOO_SHORT, left=left)
    if left <= 0:
        return PeriodCredit(month, minutes, FULLY_CREDITED, full_amount=worth, left=left)
    if worth > left:
        return PeriodCredit(month, minutes, CAPPED, amount=left, full_amount=worth, left=left)
    return PeriodCredit(month, minutes, CREDIT, amount=worth, full_amount=worth, left=left)
