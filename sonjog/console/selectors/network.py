"""Reads for the network pages: routers with their failed commands, the command outbox (filtered by
network's `OutboxFilterSet`) and intent/router mismatches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from sonjog.console.access import Scope
from sonjog.customers.models import Subscriber
from sonjog.customers.selectors import MISMATCH_Q
from sonjog.network.filters import OutboxFilterSet
from sonjog.network.models import OutboxCommand, OutboxStatus, ProfileCommand, Router


def routers(scope: Scope) -> QuerySet[Router]:
    """Routers in scope with their failed subscriber commands, and the package profiles that could not
    be pushed to them (how many, and the last error)."""
    # A failure a later command for the same profile made good is history, not a problem.
    made_good = ProfileCommand.objects.filter(
        router=OuterRef("router"), profile=OuterRef("profile"), pk__gt=OuterRef("pk"), status=OutboxStatus.DONE
    )
    failed_profiles = ProfileCommand.objects.filter(router=OuterRef("pk"), status=OutboxStatus.FAILED).exclude(
        Exists(made_good)
    )
    return (
        scope.filter(Router.objects.all())
        .select_related("operator")
        .annotate(failed=Count("outbox", filter=Q(outbox__status=OutboxStatus.FAILED)))
        .annotate(
            profiles_failed=Coalesce(
                Subquery(
                    failed_profiles.order_by().values("router").annotate(n=Count("pk")).values("n"),
                    output_field=IntegerField(),
                ),
                0,
            ),
            profile_error=Subquery(failed_profiles.order_by("-pk").values("last_error")[:1]),
        )
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
