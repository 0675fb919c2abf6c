"""Changes booked for a later day (`ScheduledChange`): booking, cancelling, and recording how each
went. Applying one on its day is a flow (`sonjog.flows.scheduled`), since a package change bills and
a suspension reaches the router."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from sonjog.catalog.models import Package
from sonjog.core.audit import audit
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import ScheduledChange, ServiceIntent, Subscriber
from sonjog.operators.dates import business_date_problem, operator_today


def scheduled_change_add(
    *,
    subscriber: Subscriber,
    kind: str,
    effective_date: dt.date,
    package: Package | None = None,
    reason: str = "",
    actor: User | None = None,
) -> ScheduledChange:
    """Book a package change, suspension or termination for a later day (tomorrow at the earliest:
    today's is done with the buttons at once). One waiting change of each kind per subscriber."""
    if kind not in ScheduledChange.Kind.values:
        raise SubscriberError(f"unknown change '{kind}'")
    operator = subscriber.operator
    today = operator_today(operator)
    if effective_date <= today:
        raise SubscriberError("book a change for tomorrow or later; make today's with the buttons above")
    problem = business_date_problem(
        operator, effective_date, today, what=str(ScheduledChange.Kind(kind).label), actor=actor
    )
    if problem:
        raise SubscriberError(problem)
    if subscriber.service_intent == ServiceIntent.TERMINATED:
        raise SubscriberError(f"{subscriber.customer_id} is terminated")
    if kind == ScheduledChange.Kind.PACKAGE:
        if package is None:
            raise SubscriberError("choose the package to move to")
        if package.operator_id != subscriber.operator_id:
            raise SubscriberError(f"package '{package}' belongs to another operator")
        if package.pk == subscriber.package_id:
            raise SubscriberError(f"{subscriber.customer_id} is on {package.name} already")
    else:
        package = None
        if not reason.strip():
            raise SubscriberError("say why")
    if kind == ScheduledChange.Kind.SUSPEND and subscriber.is_vip:
        raise SubscriberError(f"{subscriber.customer_id} is a VIP and is never suspended")
    try:
        with transaction.atomic():
            change = ScheduledChange.objects.create(
                subscriber=subscriber,
                kind=kind,
                effective_date=effective_date,
                package=package,
                reason=reason.strip()[:200],
                created_by=actor if actor is not None and actor.is_authenticated else None,
            )
            audit(
                operator=operator,
                action=f"subscriber.scheduled.{kind}",
                actor=actor,
                subscriber=subscriber,
                on=effective_date,
                package=package.name if package else None,
                reason=reason.strip(),
            )
    except IntegrityError:
        raise SubscriberError(
            f"a {ScheduledChange.Kind(kind).label.lower()} is booked already for {subscriber.customer_id}: "
            "cancel it first"
        ) from None
    return change


def scheduled_change_cancel(*, change: ScheduledChange, actor: User | None = None) -> ScheduledChange:
    with transaction.atomic():
        updated = ScheduledChange.objects.filter(pk=change.pk, status=ScheduledChange.Status.PENDING).update(
            status=ScheduledChange.Status.CANCELLED, settled_at=timezone.now()
        )
        if not updated:
            raise SubscriberError("that change is not waiting any more")
        audit(
            operator=change.subscriber.operator,
            action=f"subscriber.scheduled.{change.kind}.cancel",
            actor=actor,
            subscriber=change.subscriber,
            on=change.effective_date,
        )
    change.refresh_from_db()
    return change


def scheduled_change_settle(*, change: ScheduledChange, error: str = "") -> None:
    """Record that the job applied the change (or why it could not)."""
    ScheduledChange.objects.filter(pk=change.pk, status=ScheduledChange.Status.PENDING).update(
        status=ScheduledChange.Status.FAILED if error else ScheduledChange.Status.APPLIED,
        error=error[:300],
        settled_at=timezone.now(),
    )
