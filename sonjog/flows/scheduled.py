"""Changes booked for a later day, applied on it: the package change (prorated, re-provisioned,
notified), the suspension (router, message) or the termination, each through the same flow as the
console's buttons and in its own transaction, so one refusal never holds up the rest."""

from __future__ import annotations

from django.db import transaction

from sonjog.billing.exceptions import BillingError
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import ScheduledChange, ServiceIntent
from sonjog.customers.scheduling import scheduled_change_settle
from sonjog.flows.subscribers import subscriber_change_package, subscriber_set_intent, subscriber_terminate
from sonjog.network.exceptions import NetworkError
from sonjog.operators.dates import operator_today
from sonjog.operators.models import Operator


def scheduled_changes_apply() -> dict[str, int]:
    """Apply every waiting change whose day has come in its operator's calendar."""
    counts = {"applied": 0, "failed": 0}
    due_by_operator: dict[int, list[ScheduledChange]] = {}
    for change in (
        ScheduledChange.objects.filter(status=ScheduledChange.Status.PENDING)
        .select_related("subscriber", "package")
        .order_by("effective_date", "pk")
    ):
        due_by_operator.setdefault(change.subscriber.operator_id, []).append(change)
    operators = Operator.objects.in_bulk(list(due_by_operator))
    for operator_id, changes in due_by_operator.items():
        today = operator_today(operators[operator_id])
        for change in changes:
            if change.effective_date > today:
                continue
            try:
                with transaction.atomic():
                    _apply(change)
                    scheduled_change_settle(change=change)
                counts["applied"] += 1
            except (SubscriberError, BillingError, NetworkError) as error:
                scheduled_change_settle(change=change, error=str(error))
                counts["failed"] += 1
    return counts


def _apply(change: ScheduledChange) -> None:
    subscriber = change.subscriber
    reason = change.reason or f"booked for {change.effective_date:%d/%m/%Y}"
    if change.kind == ScheduledChange.Kind.PACKAGE:
        assert change.package is not None
        subscriber_change_package(
            subscriber=subscriber, package=change.package, effective_date=change.effective_date, actor=change.created_by
        )
    elif change.kind == ScheduledChange.Kind.SUSPEND:
        subscriber_set_intent(
            subscriber=subscriber, intent=ServiceIntent.SUSPENDED, reason=reason, actor=change.created_by
        )
    else:
        subscriber_terminate(
            subscriber=subscriber, terminated_on=change.effective_date, reason=reason, actor=change.created_by
        )
