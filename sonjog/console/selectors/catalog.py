"""Reads for the catalogue pages (packages, add-ons, zones, each with its subscriber count) and the
history of bulk actions."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from sonjog.catalog.models import AddOn, Package
from sonjog.console.access import Scope
from sonjog.console.models import BulkAction
from sonjog.customers.models import Zone


def packages(scope: Scope) -> QuerySet[Package]:
    return (
        scope.filter(Package.objects.all())
        .select_related("operator")
        .annotate(subscriber_count=Count("subscribers", filter=~Q(subscribers__service_intent="terminated")))
        .order_by("operator__path", "price", "name")
    )


def zones(scope: Scope) -> QuerySet[Zone]:
    return (
        scope.filter(Zone.objects.all())
        .select_related("operator", "parent")
        .annotate(subscriber_count=Count("subscribers"))
        .order_by("operator__path", "parent__name", "name")
    )


def addons(scope: Scope) -> QuerySet[AddOn]:
    """The add-on catalogue in scope, each with how many subscribers have it running."""
    return (
        scope.filter(AddOn.objects.all())
        .select_related("operator")
        .annotate(subscriber_count=Count("subscriptions", filter=Q(subscriptions__end_date__isnull=True)))
        .order_by("operator__path", "name")
    )


def bulk_actions(scope: Scope) -> QuerySet[BulkAction]:
    return scope.filter(BulkAction.objects.all()).select_related("actor", "package").order_by("-created_at")
