"""Pausing billing: a hold stops the bills of the periods that start inside it (a subscriber away for
two months, a line waiting for repair). Generation reads the holds (`generation._holds_of_candidates`);
these are the writes, each one transaction under the subscriber lock."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import Bill, BillingHold
from sonjog.billing.services.locks import subscriber_lock
from sonjog.billing.terms import operator_today
from sonjog.core.audit import audit
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.operators.dates import business_date_problem


def _overlapping(subscriber: Subscriber, start: dt.date, end: dt.date | None, exclude: int | None = None) -> bool:
    holds = BillingHold.objects.filter(subscriber=subscriber).filter(Q(end_date__isnull=True) | Q(end_date__gt=start))
    if end is not None:
        holds = holds.filter(start_date__lt=end)
    if exclude is not None:
        holds = holds.exclude(pk=exclude)
    return holds.exists()


def _billed_inside(subscriber: Subscriber, start: dt.date, end: dt.date | None) -> Bill | None:
    bills = Bill.objects.filter(
        subscriber=subscriber, kind=Bill.Kind.PERIOD, reversed_at__isnull=True, period_start__gte=start
    )
    if end is not None:
        bills = bills.filter(period_start__lt=end)
    return bills.order_by("period_start").first()


def billing_hold_add(
    *,
    subscriber: Subscriber,
    start_date: dt.date,
    end_date: dt.date | None,
    reason: str,
    actor: User | None = None,
) -> BillingHold:
    """Pause billing from `start_date` until `end_date` (the first day billed again; empty: until the
    hold is ended). Refused when it overlaps another hold, when a period starting inside it is billed
    already (void that bill first), for a terminated subscriber, or with a date outside the window."""
    if not reason.strip():
        raise BillingError("say why billing is paused")
    if end_date is not None and end_date <= start_date:
        raise BillingError("the hold must end after it starts")
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if locked.service_intent == ServiceIntent.TERMINATED:
            raise BillingError(f"{locked.customer_id} is terminated: nothing is billed any more")
        operator = locked.operator
        problem = business_date_problem(operator, start_date, operator_today(operator), what="hold", actor=actor)
        if problem:
            raise BillingError(problem)
        if _overlapping(locked, start_date, end_date):
            raise BillingError("billing is already paused for part of that time")
        billed = _billed_inside(locked, start_date, end_date)
        if billed is not None:
            raise BillingError(
                f"the period from {billed.period_start:%d/%m/%Y} is billed already: void its invoice first, "
                "or start the hold after it"
            )
        hold = BillingHold.objects.create(
            operator=operator,
            subscriber=locked,
            start_date=start_date,
            end_date=end_date,
            reason=reason.strip()[:200],
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit(
            operator=operator,
            action="billing.hold.add",
            actor=actor,
            subscriber=locked,
            start=start_date,
            end=end_date,
            reason=reason.strip(),
        )
    return hold


def billing_hold_end(*, hold: BillingHold, end_date: dt.date, actor: User | None = None) -> BillingHold:
    """End a hold on `end_date` (the first day billed again): earlier than planned, or a date for an
    open one. The next generation run bills the periods from there."""
    with transaction.atomic():
        subscriber_lock(hold.subscriber_id)
        locked = BillingHold.objects.select_for_update().get(pk=hold.pk)
        if end_date <= locked.start_date:
            raise BillingError(f"the hold starts on {locked.start_date:%d/%m/%Y}: end it after that")
        if locked.end_date is not None and end_date >= locked.end_date:
            raise BillingError(f"the hold already ends on {locked.end_date:%d/%m/%Y}")
        BillingHold.objects.filter(pk=locked.pk).update(end_date=end_date)
        audit(
            operator=locked.operator,
            action="billing.hold.end",
            actor=actor,
            subscriber=locked.subscriber,
            start=locked.start_date,
            end=end_date,
        )
        locked.refresh_from_db()
    return locked
