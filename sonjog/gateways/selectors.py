"""Reads of the gateways app for the console, the API and reports: merchant accounts and payment
attempts of a set of operators (the caller's subtree), the attempt list's filters (DESIGN house rule
9), the count of attempts in each state, "seen by the gateway, not applied", a payment's refunds and
what is left to refund of it, and the settlement checks.

Every function takes the operator ids of the caller's scope; none picks its own rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import django_filters
from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber
from django.utils.translation import gettext_lazy as _

from sonjog.core import bounds
from sonjog.core.filters import DateFilter, OperatorIds, ScopedFilterSet, ScopedModelChoiceFilter, TextFilter, day_start
from sonjog.core.money import ZERO
from sonjog.gateways.models import (
    AttemptState,
    Gateway,
    GatewayAccount,
    GatewayRefund,
    InboundRequest,
    PaymentAttempt,
    RefundState,
    SettlementCheck,
)
from sonjog.operators.filters import OperatorChoiceField, operators_among

# What staff must look at: money the gateway may have taken that is not on the ledger. Parked for
# review (a mismatch, a hold, a duplicate), escalated (no final answer in 48 hours) and unknown (no
# answer yet, the recheck is on it).
NEEDS_ATTENTION: tuple[str, ...] = (AttemptState.REVIEW, AttemptState.ESCALATED, AttemptState.UNKNOWN)
ATTENTION = "attention"


def gateway_accounts_among(operator_ids: Sequence[int]) -> QuerySet[GatewayAccount]:
    """The merchant accounts of these operators, by operator (root first), gateway and name."""
    return (
        GatewayAccount.objects.filter(operator_id__in=list(operator_ids))
        .select_related("operator")
        .order_by("operator__path", "gateway", "name", "pk")
    )


def attempts_among(operator_ids: Sequence[int]) -> QuerySet[PaymentAttempt]:
    """The payment attempts of these operators' subscribers, with what a list row shows."""
    return PaymentAttempt.objects.filter(operator_id__in=list(operator_ids)).select_related(
        "subscriber", "account", "operator"
    )


def attempt_state_counts(operator_ids: Sequence[int]) -> dict[str, int]:
    """How many attempts of these operators are in each state (every state named, 0 included), and
    under ATTENTION how many need attention. One query."""
    counts = dict.fromkeys(AttemptState.values, 0)
    rows = (
        PaymentAttempt.objects.filter(operator_id__in=list(operator_ids))
        .order_by()
        .values_list("state")
        .annotate(count=Count("pk"))
    )
    for state, count in rows:
        counts[state] = count
    counts[ATTENTION] = sum(counts[state] for state in NEEDS_ATTENTION)
    return counts


def seen_not_applied_count(operator_ids: Sequence[int]) -> int:
    """Money the gateways have that is not on the ledger: the attempts needing attention
    (NEEDS_ATTENTION), and the paid transactions the latest settlement check of each merchant account
    found not applied, less those whose attempt is counted already or has been applied since. The
    dashboard's figure; it should be 0. One query."""
    ids = list(operator_ids)
    attention = list(NEEDS_ATTENTION)
    attempts = PaymentAttempt._meta.db_table
    accounts = GatewayAccount._meta.db_table
    checks = SettlementCheck._meta.db_table
    sql = f"""
        SELECT
            (SELECT count(*) FROM {attempts} p WHERE p.operator_id = ANY(%s) AND p.state = ANY(%s))
            + (SELECT count(*)
               FROM {accounts} a
               CROSS JOIN LATERAL (
                   SELECT c.paid_not_applied FROM {checks} c
                   WHERE c.account_id = a.id
                   ORDER BY c.day DESC, c.ran_at DESC, c.id DESC
                   LIMIT 1
               ) latest
               CROSS JOIN LATERAL jsonb_array_elements(latest.paid_not_applied) AS item
               LEFT JOIN {attempts} p ON p.id = (item ->> 'attempt')::bigint
               WHERE a.operator_id = ANY(%s)
                 AND (p.id IS NULL OR NOT (p.state = ANY(%s) OR p.state = %s)))
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, attention, ids, attention, AttemptState.APPLIED.value])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def refund_left(attempt: PaymentAttempt) -> Decimal:
    """What is left to refund of a payment: what it credited the subscriber less its refunds that
    have not failed (the bound the database keeps); nothing for a payment that is not applied."""
    if attempt.state != AttemptState.APPLIED:
        return ZERO
    taken = (
        GatewayRefund.objects.filter(attempt_id=attempt.pk)
        .exclude(state=RefundState.FAILED)
        .aggregate(total=Sum("amount"))["total"]
    )
    return max(attempt.amount - (taken or ZERO), ZERO)


def attempt_refunds(attempt: PaymentAttempt) -> QuerySet[GatewayRefund]:
    """The refunds of one payment, oldest first, with who asked for each."""
    return GatewayRefund.objects.filter(attempt=attempt).select_related("requested_by").order_by("requested_at", "pk")


def settlement_checks_among(operator_ids: Sequence[int], *, per_account: int = 7) -> list[SettlementCheck]:
    """The latest `per_account` settlement checks of each merchant account of these operators (the
    newest day first, a day run again: its latest run first), by account. One query."""
    ranked = (
        SettlementCheck.objects.filter(account__operator_id__in=list(operator_ids))
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("account_id")],
                order_by=[F("day").desc(), F("ran_at").desc(), F("pk").desc()],
            )
        )
        .filter(rank__lte=per_account)
        .select_related("account__operator")
        .order_by(
            "account__operator__path", "account__gateway", "account__name", "account_id", "-day", "-ran_at", "-pk"
        )
    )
    return list(ranked)


def attempt_inbound(attempt: PaymentAttempt) -> QuerySet[InboundRequest]:
    """Every request a gateway (or the payer's browser) sent about `attempt`, oldest first."""
    return InboundRequest.objects.filter(attempt=attempt).order_by("received_at", "pk")


def is_replayable(inbound: InboundRequest) -> bool:
    """A stored request whose handling failed (or never ran) can be handled again."""
    return inbound.processed_at is None


class AttemptFilterSet(ScopedFilterSet):
    """Payment attempts by state (or all those needing attention), gateway, the operator's business
    days they were started on, operator, and a search by customer ID, merchant reference, gateway
    payment id or transaction id (each matched whole, letter case aside). Unusable input lists
    nothing: a desk that silently dropped a filter would show rows nobody asked for."""

    refuse_invalid = True

    state = django_filters.ChoiceFilter(
        label=_("State"),
        choices=[(ATTENTION, _("Needs attention")), *AttemptState.choices],
        empty_label=_("Any state"),
        method="filter_state",
    )
    gateway = django_filters.ChoiceFilter(
        field_name="account__gateway", label=_("Gateway"), choices=Gateway.choices, empty_label=_("Any gateway")
    )
    created_from = DateFilter(label=_("From"), method="filter_created_from")
    created_to = DateFilter(label=_("To"), method="filter_created_to")
    operator = ScopedModelChoiceFilter(label=_("Operator"), offer=operators_among, field_class=OperatorChoiceField)
    q = TextFilter(label=_("Search"), max_length=bounds.QUERY_TEXT_MAX_LENGTH, method="filter_search")

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        queryset: QuerySet[PaymentAttempt] | None = None,
        *,
        operator_ids: OperatorIds,
        time_zone: str,
        defaults: Mapping[str, Any] | None = None,
        request: Any = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(data, queryset, operator_ids=operator_ids, defaults=defaults, request=request, prefix=prefix)
        self.time_zone = time_zone

    def filter_state(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        if value == ATTENTION:
            return queryset.filter(state__in=NEEDS_ATTENTION)
        return queryset.filter(state=value)

    def filter_created_from(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        return queryset.filter(created_at__gte=day_start(value, self.time_zone))

    def filter_created_to(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        return queryset.filter(created_at__lt=day_start(value + dt.timedelta(days=1), self.time_zone))

    def filter_search(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        text = value.strip()
        if not text:
            return queryset
        return queryset.filter(
            Q(subscriber__customer_id__iexact=text)
            | Q(merchant_reference__iexact=text)
            | Q(transaction_id__iexact=text)
            | Q(gateway_payment_id__iexact=text)
        )

    def finish(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.order_by("-created_at", "-pk")


def attempt_filters(
    operator_ids: Sequence[int],
    data: Mapping[str, Any] | None,
    *,
    time_zone: str,
    defaults: Mapping[str, Any] | None = None,
) -> AttemptFilterSet:
    """The attempt list of these operators, filtered as `data` asks."""
    return AttemptFilterSet(
        data, attempts_among(operator_ids), operator_ids=list(operator_ids), time_zone=time_zone, defaults=defaults
    )
