"""Reads for subscribers, always through the acting operator's subtree (DESIGN rule 5)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import F, Q, QuerySet

from sonjog.catalog.models import AddOnEffect
from sonjog.core.scoping import OutOfScope, scoped
from sonjog.customers.models import Subscriber, SubscriberAddOn
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


def subscriber_addons(subscriber: Subscriber, limit: int = 20) -> list[SubscriberAddOn]:
    """The subscriber's add-ons, running ones first, then the latest ended, with their catalogue rows."""
    return list(
        SubscriberAddOn.objects.filter(subscriber=subscriber)
        .select_related("addon")
        .order_by(F("end_date").desc(nulls_first=True), "-start_date", "-pk")[:limit]
    )


@dataclass(frozen=True)
class AddOnEffectNow:
    """What one running add-on asks of the router or RADIUS: `address_list` puts the subscriber's
    address on the list named `value`; `static_ip` gives the subscriber its fixed address (from the
    pool `value`, when one is named)."""

    effect: str
    value: str
    addon_name: str


def addon_effects(subscriber_id: int, day: dt.date) -> list[AddOnEffectNow]:
    """The router effects of the add-ons running for a subscriber on `day`: the read side a router
    driver or the RADIUS views derive their extra rows from. Billing-only add-ons are left out."""
    rows = (
        SubscriberAddOn.objects.filter(subscriber_id=subscriber_id, start_date__lte=day)
        .filter(Q(end_date__isnull=True) | Q(end_date__gt=day))
        .exclude(addon__effect=AddOnEffect.NONE)
        .select_related("addon")
        .order_by("addon__name")
    )
    return [AddOnEffectNow(row.addon.effect, row.addon.effect_value, row.addon.name) for row in rows]
