"""Reads for the subscriber pages: the list (search, filters and order are the domain's
`SubscriberDueFilterSet`; this module scopes it and adds what the page shows), the collector's
quick picker, and one subscriber's profile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet, Sum

from sonjog.billing.filters import SubscriberDueFilterSet
from sonjog.billing.models import Bill, CreditNote, EntryKind, LedgerEntry, Payment, Statement
from sonjog.console.access import Scope
from sonjog.core.models import AuditEvent
from sonjog.core.money import ZERO
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.customers.selectors import subscriber_search_q
from sonjog.network.models import OutboxCommand
from sonjog.operators.models import Operator


def subscriber_filters(
    scope: Scope,
    params: Mapping[str, Any] | None,
    today: dt.date,
    *,
    operator: Operator | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> SubscriberDueFilterSet:
    """The subscriber list's filters over the subscribers in scope (or one operator's among them):
    empty `params` filter nothing."""
    rows = scope.filter(Subscriber.objects.all())
    operator_ids = scope.operator_ids
    if operator is not None:
        rows = rows.filter(operator_id=operator.pk)
        operator_ids = [operator.pk] if operator.pk in operator_ids else []
    return SubscriberDueFilterSet(params or None, rows, operator_ids=operator_ids, today=today, defaults=defaults)


def subscriber_list(filters: SubscriberDueFilterSet) -> QuerySet[Subscriber]:
    """The filtered, sorted subscribers, each with `due` (what it owes now) and what a row shows."""
    return filters.qs.select_related("package", "zone__parent", "operator")


def subscriber_picker(scope: Scope, text: str, limit: int = 8) -> list[Subscriber]:
    if len(text.strip()) < 2:
        return []
    rows = (
        scope.filter(Subscriber.objects.all())
        .filter(subscriber_search_q(text))
        .exclude(service_intent=ServiceIntent.TERMINATED)
        .select_related("package", "zone__parent")
        .order_by("customer_id")[:limit]
    )
    return list(rows)


# -- the subscriber profile -------------------------------------------------------------------------


@dataclass
class Profile:
    subscriber: Subscriber
    balance: Decimal
    statement: list[Statement]
    bills: list[Bill]
    payments: list[Payment]
    entries: list[LedgerEntry]
    events: list[AuditEvent]
    credit_notes: list[CreditNote]
    terms_mode: str
    outbox: list[OutboxCommand]


def subscriber_profile(subscriber: Subscriber) -> Profile:
    balance = LedgerEntry.objects.filter(subscriber=subscriber).aggregate(total=Sum("amount"))["total"] or ZERO
    statement = list(Statement.objects.filter(subscriber=subscriber).order_by("-period_month")[:36])
    bills: list[Bill] = list(
        Bill.objects.filter(subscriber=subscriber)
        .select_related("invoice", "invoice__credit_note", "package")
        .order_by("-period_month", "-pk")[:24]
    )
    payments: list[Payment] = list(
        Payment.objects.filter(subscriber=subscriber)
        .select_related("collector")
        .prefetch_related("entries__allocations_out__bill")
        .annotate(reversed=Exists(LedgerEntry.objects.filter(payment=OuterRef("pk"), kind=EntryKind.REVERSAL)))
        .order_by("-received_at")[:24]
    )
    for payment in payments:
        # Net per bill: a reversed payment's releases cancel its allocations out.
        net: dict[dt.date, Decimal] = {}
        for entry in payment.entries.all():
            for allocation in entry.allocations_out.all():
                month = allocation.bill.period_month
                net[month] = net.get(month, ZERO) + allocation.amount
        payment.allocated_to = sorted((m, a) for m, a in net.items() if a)  # type: ignore[attr-defined]
    entries: list[LedgerEntry] = list(
        LedgerEntry.objects.filter(subscriber=subscriber)
        .select_related("created_by")
        .annotate(is_reversed=Exists(LedgerEntry.objects.filter(reverses=OuterRef("pk"))))
        .order_by("-period_month", "-pk")[:40]
    )
    events = list(AuditEvent.objects.filter(subscriber=subscriber).select_related("actor").order_by("-created_at")[:50])
    credit_notes = list(
        CreditNote.objects.filter(invoice__bill__subscriber=subscriber).select_related("invoice", "created_by")
    )
    outbox = list(
        OutboxCommand.objects.filter(subscriber=subscriber).select_related("router").order_by("-requested_at")[:5]
    )
    return Profile(
        subscriber=subscriber,
        balance=balance,
        statement=statement,
        bills=bills,
        payments=payments,
        entries=entries,
        events=events,
        credit_notes=credit_notes,
        terms_mode=subscriber.billing_mode or subscriber.operator.billing_mode,
        outbox=outbox,
    )


def subscriber_due(subscriber_id: int) -> Decimal:
    """What to prefill a payment with: the balance when positive, else nothing."""
    total = LedgerEntry.objects.filter(subscriber_id=subscriber_id).aggregate(total=Sum("amount"))["total"] or ZERO
    return max(total, ZERO)
