"""The money side of a subscriber's life-cycle events: what a package change, a termination and an
add-on starting or ending do to bills already issued. Each runs on a subscriber the caller has locked
(`customers.locks.subscriber_lock`), in the caller's transaction; the flows in
`sonjog.flows.subscribers` call them between the subscriber's own state change and the router command.
Credits name the bill (and the lines) they credit and never exceed what is left to credit on it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import F, Sum

from sonjog.billing.calculation import addon_amounts, bill_amounts, remaining_share
from sonjog.billing.models import AdjustmentReason, Bill, BillLine, EntryKind, Invoice, LedgerEntry
from sonjog.billing.services.floats import float_credit_back, float_package_change
from sonjog.billing.services.money import (
    _adjustment_append,
    _invoice_void_locked,
    _reverse_locked,
    bill_creditable,
    package_line_ids,
)
from sonjog.billing.terms import subscriber_terms
from sonjog.catalog.models import Package
from sonjog.core.money import ZERO, round_money
from sonjog.core.periods import Period, nominal_period, subscriber_period
from sonjog.customers.models import Subscriber, SubscriberAddOn


def package_change_settle(*, subscriber: Subscriber, package: Package, day: dt.date, actor: User | None) -> None:
    """Before `subscriber` (locked, still on its old package) moves to `package` on `day`: if the
    period holding `day` is already billed, credit the old package's remaining days and charge the new
    one's, both prorated by days and with VAT as billed. Only the package's part of the bill changes:
    its add-on lines run on as they are."""
    terms = subscriber_terms(subscriber)
    bill = (
        Bill.objects.filter(
            subscriber=subscriber,
            reversed_at__isnull=True,
            kind=Bill.Kind.PERIOD,
            period_start__lte=day,
            period_end__gt=day,
        )
        .order_by("-period_month")
        .first()
    )
    if bill is not None:
        period = subscriber_period(bill.period_month, terms.anchor_day, bill.period_start)
        assert period is not None
        remaining = (bill.period_end - day).days
        billed_days = (bill.period_end - bill.period_start).days
        # The package in effect on `day` is the period bill's, or that of an earlier change in the
        # period, whose charge stands for its days from that change to the period's end.
        changed_on, segment = _package_segment(subscriber, bill, day)
        credited: Bill | None = bill
        if changed_on is None:
            # Only the package's part of the bill changes: its add-on lines run on as they are.
            package_total = bill.total - _addon_lines_total(bill)
            package_lines: list[int] | None = package_line_ids(bill)
            credit = min(remaining_share(package_total, remaining, billed_days), bill_creditable(bill, package_lines))
        else:
            credited, package_lines, billed_days = segment, None, (bill.period_end - changed_on).days
            credit = (
                min(remaining_share(segment.total, remaining, billed_days), bill_creditable(segment))
                if segment is not None
                else ZERO
            )
        new_full = bill_amounts(
            monthly_price=package.price,
            monthly_discount=subscriber.monthly_discount,
            period=period,
            vat=terms.vat_for(package.vat_applicable),
            prorate=False,
        ).total
        charge = remaining_share(new_full, remaining, period.nominal_days)
        note = f"{subscriber.package.name} -> {package.name} from {day:%Y-%m-%d}"
        if credit > 0 and credited is not None:
            _adjustment_append(
                subscriber,
                -credit,
                AdjustmentReason.PACKAGE_CHANGE,
                f"Credit: {note}",
                actor,
                day,
                credits_bill=credited,
                credits_lines=package_lines,
            )
        charge_bill_id = None
        if charge > 0:
            entry = _adjustment_append(
                subscriber, charge, AdjustmentReason.PACKAGE_CHANGE, f"Charge: {note}", actor, day
            )
            charge_bill_id = entry.bill_id
        # The resellers above: the old package's unused days back, the new one's charged on its charge.
        float_package_change(
            subscriber_operator=subscriber.operator,
            subscriber_id=subscriber.pk,
            old_bill_id=credited.pk if credited is not None else None,
            new_package=package,
            charge_bill_id=charge_bill_id,
            remaining_days=remaining,
            billed_days=billed_days,
            nominal_days=period.nominal_days,
            upgrade=package.price > subscriber.package.price,
            actor=actor,
        )


def termination_settle(*, subscriber: Subscriber, day: dt.date, reason: str, actor: User | None) -> None:
    """Before `subscriber` (locked) ends service on `day`: bills for periods from `day` on are reversed
    (an invoice goes with a credit note, what was paid on it becomes credit); the period holding the
    end is credited for its unused days when the operator prorates last periods; add-on one-off
    charges follow their period."""
    terms = subscriber_terms(subscriber)
    for bill in Bill.objects.filter(
        subscriber=subscriber, reversed_at__isnull=True, kind=Bill.Kind.PERIOD, period_start__gte=day
    ):
        why = f"Terminated before this period: {reason}"
        invoice = Invoice.objects.filter(bill=bill, voided_at__isnull=True).first()
        if invoice is not None:
            # The invoice goes with its bill (a credit note); what was paid on it becomes credit.
            _invoice_void_locked(invoice, why, actor, None, release_payments=True)
        else:
            _reverse_locked(LedgerEntry.objects.get(bill=bill, kind="bill"), why, actor, None)
    current = Bill.objects.filter(
        subscriber=subscriber, reversed_at__isnull=True, kind=Bill.Kind.PERIOD, period_start__lt=day, period_end__gt=day
    ).first()
    if current is not None and terms.prorate_last:
        _unused_days_credit(subscriber, current, day, actor)
    _addon_charges_end(subscriber, day, terms.prorate_last, f"Terminated on {day:%Y-%m-%d}: {reason}", actor)


def _package_segment(subscriber: Subscriber, period_bill: Bill, day: dt.date) -> tuple[dt.date | None, Bill | None]:
    """The latest package change inside `period_bill`'s period on or before `day`: its day and the
    charge it wrote for the new package from then to the period's end (None when the new package
    cost nothing); (None, None) when the package has not changed in the period."""
    changes = LedgerEntry.objects.filter(
        subscriber=subscriber,
        kind=EntryKind.ADJUSTMENT,
        adjustment_reason=AdjustmentReason.PACKAGE_CHANGE,
        reversed_by__isnull=True,
        effective_date__gte=period_bill.period_start,
        effective_date__lte=day,
        effective_date__lt=period_bill.period_end,
    )
    changed_on = changes.order_by("-effective_date").values_list("effective_date", flat=True).first()
    if changed_on is None:
        return None, None
    charge = (
        Bill.objects.filter(
            subscriber=subscriber,
            kind=Bill.Kind.CHARGE,
            reversed_at__isnull=True,
            period_start=changed_on,
            entries__in=changes.filter(amount__gt=0, effective_date=changed_on),
        )
        .order_by("-pk")
        .first()
    )
    return changed_on, charge


def _unused_days_credit(subscriber: Subscriber, current: Bill, day: dt.date, actor: User | None) -> None:
    """Service ends on `day` inside the billed period of `current`: credit what its unused days were
    charged, on the bill that charged them. Without a package change in the period that is the period
    bill; after one, the period bill's add-on lines and the latest change's charge (the package's
    earlier days up to the change were credited by the change itself). The resellers above give back
    what those days cost them, by each float's rule."""
    unused = (current.period_end - day).days
    billed_days = (current.period_end - current.period_start).days
    memo = f"Unused {unused} days after termination on {day:%Y-%m-%d}"
    changed_on, segment = _package_segment(subscriber, current, day)
    parts: list[tuple[Bill, Decimal, list[int] | None, int]] = []
    if changed_on is None:
        parts.append((current, current.total, None, billed_days))
    else:
        addon_lines = list(BillLine.objects.filter(bill=current, kind=BillLine.Kind.ADDON).values_list("pk", flat=True))
        if addon_lines:
            parts.append((current, _addon_lines_total(current), addon_lines, billed_days))
        # The change gave back the period bill's days after it by the prorated rule; a float set to
        # "full" gets the rest of that charge back too (0 unused days: nothing more when prorated).
        float_credit_back(bill_id=current.pk, remaining_days=0, total_days=billed_days, actor=actor)
        if segment is not None:
            parts.append((segment, segment.total, None, (current.period_end - changed_on).days))
    for bill, amount, lines, days in parts:
        credit = min(remaining_share(amount, unused, days), bill_creditable(bill, lines))
        if credit > 0:
            _adjustment_append(
                subscriber,
                -round_money(credit),
                AdjustmentReason.TERMINATION,
                memo,
                actor,
                day,
                credits_bill=bill,
                credits_lines=lines,
            )
        if lines is None:
            float_credit_back(bill_id=bill.pk, remaining_days=unused, total_days=days, actor=actor)


def _addon_lines_total(bill: Bill) -> Decimal:
    """What a bill charges for add-ons, VAT included."""
    total = BillLine.objects.filter(bill=bill, kind=BillLine.Kind.ADDON).aggregate(total=Sum(F("amount") + F("vat")))[
        "total"
    ]
    return total if total is not None else ZERO


def _addon_charges_end(locked: Subscriber, day: dt.date, prorate_last: bool, why: str, actor: User | None) -> None:
    """At termination, the one-off charges of add-ons (started in a period already billed) go the way
    of the period bills they stand beside: voided when they bill only days from the end on, credited
    for their unused days when they bill across it and the operator prorates last periods."""
    lines = (
        BillLine.objects.filter(
            bill__subscriber=locked,
            bill__kind=Bill.Kind.CHARGE,
            bill__reversed_at__isnull=True,
            kind=BillLine.Kind.ADDON,
        )
        .select_related("bill", "subscriber_addon")
        .order_by("bill__period_month", "bill_id")
    )
    for line in lines:
        assert line.subscriber_addon is not None
        covered = _covered_by(line, line.subscriber_addon, locked)
        if covered is None or covered[1] <= day:
            continue
        covered_start, covered_end = covered
        if covered_start >= day:
            _reverse_locked(LedgerEntry.objects.get(bill=line.bill, kind="adjustment", amount__gt=0), why, actor, None)
            continue
        if not prorate_last:
            continue
        unused = (covered_end - day).days
        share = remaining_share(line.amount + line.vat, unused, (covered_end - covered_start).days)
        credit = min(share, bill_creditable(line.bill, [line.pk]))
        if credit > 0:
            _adjustment_append(
                locked,
                -credit,
                AdjustmentReason.TERMINATION,
                f"Unused {unused} days of {line.description} after termination on {day:%Y-%m-%d}",
                actor,
                day,
                credits_bill=line.bill,
                credits_lines=[line.pk],
            )


def addon_start_charge(*, subscriber: Subscriber, stretch: SubscriberAddOn, actor: User | None) -> Decimal:
    """An add-on stretch just started on `subscriber` (locked). Periods not billed yet get it as a line
    of their bill when they are generated. A period already billed that it starts in (or before) is
    charged now: a one-off charge of the add-on's prorated share of the rest of that period, with VAT
    as its bill line would carry, whose line names the stretch. Returns what was charged."""
    terms = subscriber_terms(subscriber)
    vat = terms.vat_for(stretch.addon.vat_applicable)
    charged = ZERO
    billed = Bill.objects.filter(
        subscriber=subscriber, reversed_at__isnull=True, kind=Bill.Kind.PERIOD, period_end__gt=stretch.start_date
    ).order_by("period_month")
    for bill in billed:
        nominal_start, nominal_end = nominal_period(bill.period_month, terms.anchor_day)
        period = Period(bill.period_month, nominal_start, nominal_end, bill.period_start, bill.period_end)
        # As generation would have billed it: a whole period like the package, part of one by days.
        amounts = addon_amounts(
            monthly_price=stretch.addon.price,
            period=period,
            start=stretch.start_date,
            end=None,
            vat=vat,
            prorate=bill.is_prorated,
        )
        if amounts is None or amounts.total <= 0:
            continue
        effective = max(stretch.start_date, bill.period_start)
        note = (
            f"{stretch.addon.name} {effective:%Y-%m-%d} to {bill.period_end:%Y-%m-%d} "
            f"({(bill.period_end - effective).days} days; {bill.period_month:%Y-%m} was already billed)"
        )
        entry = _adjustment_append(subscriber, amounts.total, AdjustmentReason.ADDON, note, actor, effective)
        # The charge's one line is the add-on's: what revenue counts and what ending it credits.
        BillLine.objects.filter(bill=entry.bill).update(kind=BillLine.Kind.ADDON, subscriber_addon=stretch)
        charged += amounts.total
    return charged


def addon_billed(stretch: SubscriberAddOn) -> bool:
    """Whether anything ever billed this stretch (reversed charges count: their lines keep naming it)."""
    return BillLine.objects.filter(kind=BillLine.Kind.ADDON, subscriber_addon=stretch).exists()


def addon_end_credit(*, subscriber: Subscriber, stretch: SubscriberAddOn, day: dt.date, actor: User | None) -> Decimal:
    """A running stretch ends on `day` (the first day without it): every bill that already charged it
    for days from then on (the current period's, any billed ahead, a one-off charge) is credited for
    those days, off the add-on's own line, never more than is left to credit on it. Returns the credit."""
    lines = list(
        BillLine.objects.filter(
            bill__subscriber=subscriber,
            bill__reversed_at__isnull=True,
            kind=BillLine.Kind.ADDON,
            subscriber_addon=stretch,
        )
        .select_related("bill")
        .order_by("bill__period_month", "bill_id")
    )
    credited = ZERO
    for line in lines:
        covered = _covered_by(line, stretch, subscriber)
        if covered is None:
            continue
        covered_start, covered_end = covered
        unused_from = max(day, covered_start)
        unused_days = (covered_end - unused_from).days
        if unused_days <= 0:
            continue
        share = remaining_share(line.amount + line.vat, unused_days, (covered_end - covered_start).days)
        # An add-on's credit comes off its own line (what an outage credited of it already aside).
        credit = min(share, bill_creditable(line.bill, [line.pk]))
        if credit <= 0:
            continue
        _adjustment_append(
            subscriber,
            -credit,
            AdjustmentReason.ADDON,
            f"{stretch.addon.name} ended {day:%Y-%m-%d}: {unused_days} unused days of {line.bill.period_month:%Y-%m}",
            actor,
            unused_from,
            credits_bill=line.bill,
            credits_lines=[line.pk],
        )
        credited += credit
    return credited


def _covered_by(line: BillLine, stretch: SubscriberAddOn, subscriber: Subscriber) -> tuple[dt.date, dt.date] | None:
    """The days [start, end) an add-on line bills. A period bill's line covers its period from the
    add-on's start; a one-off charge (the add-on started in a period already billed) covers the rest
    of its period, which the subscriber's terms give from the charge's period label."""
    bill = line.bill
    if bill.kind == Bill.Kind.PERIOD:
        # A period bill that has a line for this stretch and a one-off charge of it for the same
        # period was issued after the charge (the first bill was voided): it bills only the days
        # before the charge took over.
        charged = (
            Bill.objects.filter(
                subscriber_id=bill.subscriber_id,
                kind=Bill.Kind.CHARGE,
                reversed_at__isnull=True,
                period_month=bill.period_month,
                lines__kind=BillLine.Kind.ADDON,
                lines__subscriber_addon=stretch,
            )
            .order_by("period_start")
            .values_list("period_start", flat=True)
            .first()
        )
        end = bill.period_end if charged is None else min(bill.period_end, charged)
        return max(stretch.start_date, bill.period_start), end
    if subscriber.activation_date is None:
        return None
    period = subscriber_period(
        bill.period_month, subscriber_terms(subscriber).anchor_day, subscriber.activation_date, subscriber.terminated_on
    )
    if period is None:
        return None
    # The charge bills from the day it was made for (its `period_start`) to the period's end.
    return max(stretch.start_date, period.start, bill.period_start), period.end
