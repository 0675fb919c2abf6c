"""Reads for subscribers, always through the acting operator's subtree (DESIGN rule 5)."""

from __future__ import annotations

from django.db.models import QuerySet

from sonjog.core.scoping import OutOfScope, scoped
from sonjog.customers.models import Subscriber
from sonjog.operators.models import Operator


def subscribers_visible_to(operator: Operator) -> QuerySet[Subscriber]:
    return scoped(Subscriber.objects.all(), operator).select_related("package", "zone", "operator")


def subscriber_for(operator: Operator, *, customer_id: str | None = None, pk: int | None = None) -> Subscriber:
    """One subscriber the operator may see; OutOfScope (answer 404) for anything else, even if it exists."""
    rows = subscribers_visible_to(operator)
    if customer_id is not None:
        found = rows.filter(customer_id=customer_id).first()
    elif pk is not None:
        found = rows.filter(pk=pk).first()
    else:
        raise OutOfScope("no subscriber given")
    if found is None:
        raise OutOfScope("no such subscriber")
    return found
