"""Reads for the network pages: routers with their failed commands, the command outbox (filtered by
network's `OutboxFilterSet`) and intent/router mismatches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, Q, QuerySet

from sonjog.console.access import Scope
from sonjog.customers.models import Subscriber
from sonjog.customers.selectors import MISMATCH_Q
from sonjog.network.filters import OutboxFilterSet
from sonjog.network.models import OutboxCommand, OutboxStatus, Router


def routers(scope: Scope) -> QuerySet[Router]:
    return (
        scope.filter(Router.objects.all())
        .select_related("operator")
        .annotate(failed=Count("outbox", filter=Q(outbox__status=OutboxStatus.FAILED)))
        .prefetch_related("zones")
        .order_by("name")
    )


def outbox_filters(scope: Scope, params: Mapping[str, Any] | None) -> OutboxFilterSet:
    """The outbox's filters over the commands of the subscribers in scope, newest first."""
    rows = (
        OutboxCommand.objects.filter(scope.q("subscriber__operator"))
        .select_related("subscriber", "router")
        .order_by("-requested_at", "-pk")
    )
    # Its filters offer no row choice, so the subtree is never read: the page needs no more queries.
    return OutboxFilterSet(params or None, rows, operator_ids=lambda: scope.operator_ids)


def mismatches(scope: Scope, only_failed: bool = False) -> QuerySet[Subscriber]:
    rows = scope.filter(Subscriber.objects.all())
    rows = rows.filter(sync_state="failed") if only_failed else rows.filter(MISMATCH_Q | Q(sync_state="failed"))
    return rows.select_related("zone__parent", "router", "package").order_by("customer_id")
