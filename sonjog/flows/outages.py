"""A place was out (a zone with its sub-zones, a router, a POP) -> its subscribers are credited.

Who was behind the place is the customers' and the network's knowledge: a zone's subscribers are
those of the zone and every zone under it; a router's are those the network says it serves
(`network.reconcile.served_subscribers`: its own subscribers, and those without a router of their
own in a zone it serves or under one); a POP's are those connected through it. What each of them is
credited is billing's (`billing.services.outages`). The console's "Outage credit" page calls these
functions, never the steps one by one: the preview in the request, the credits queued for the
worker (`billing.outage_credit`), whose progress and result the outage's page shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from django.contrib.auth.models import User
from django.db import transaction

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import Outage
from sonjog.billing.services.outages import (
    OutagePlan,
    outage_credits_apply,
    outage_credits_preview,
    outage_credits_queue,
)
from sonjog.customers.models import Pop, Subscriber, Zone
from sonjog.network.models import Router
from sonjog.network.reconcile import served_subscribers

OutagePlace = Zone | Router | Pop


def _kind_of(place: OutagePlace) -> str:
    if isinstance(place, Zone):
        return Outage.Target.ZONE
    if isinstance(place, Router):
        return Outage.Target.ROUTER
    return Outage.Target.POP


def _label_of(place: OutagePlace) -> str:
    return str(place)


def _place_check(place: OutagePlace, operator_ids: Collection[int]) -> None:
    # The console offers only the caller's places; this holds for every other caller too.
    if place.operator_id not in operator_ids:
        raise BillingError(f"{_kind_of(place)} #{place.pk} is not one of the caller's")


def zone_with_subzones(zone: Zone) -> list[int]:
    """The zone and every zone under it, at any depth (a few rows per operator: read at once)."""
    children: dict[int, list[int]] = {}
    for pk, parent_id in Zone.objects.filter(operator_id=zone.operator_id).values_list("pk", "parent_id"):
        if parent_id is not None:
            children.setdefault(parent_id, []).append(pk)
    found, waiting = [zone.pk], [zone.pk]
    while waiting:
        for child in children.get(waiting.pop(), []):
            if child not in found:
                found.append(child)
                waiting.append(child)
    return found


def outage_subscriber_ids(*, place: OutagePlace, operator_ids: Collection[int]) -> list[int]:
    """The subscribers behind a place, within `operator_ids`, whatever their state (billing decides
    who was in service)."""
    _place_check(place, operator_ids)
    within = Subscriber.objects.filter(operator_id__in=list(operator_ids))
    if isinstance(place, Zone):
        chosen = within.filter(zone_id__in=zone_with_subzones(place))
    elif isinstance(place, Router):
        chosen = within.filter(pk__in=served_subscribers(place).values("pk"))
    else:
        chosen = within.filter(pop=place)
    return list(chosen.order_by("pk").values_list("pk", flat=True))


def outage_preview(
    *, place: OutagePlace, operator_ids: Collection[int], start: dt.datetime, end: dt.datetime
) -> OutagePlan:
    """Who the outage of `place` over [start, end) credits, and how much; writes nothing."""
    return outage_credits_preview(
        operator_ids=operator_ids,
        subscriber_ids=outage_subscriber_ids(place=place, operator_ids=operator_ids),
        start=start,
        end=end,
    )


def outage_credit(
    *,
    place: OutagePlace,
    operator_ids: Collection[int],
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    actor: User | None = None,
) -> OutagePlan:
    """Credit the outage of `place` over [start, end) to its subscribers (idempotent: applying it
    again credits only what was not credited before)."""
    return outage_credits_apply(
        operator=place.operator,
        target_kind=_kind_of(place),
        target_id=place.pk,
        target_label=_label_of(place),
        operator_ids=operator_ids,
        subscriber_ids=outage_subscriber_ids(place=place, operator_ids=operator_ids),
        start=start,
        end=end,
        reason=reason,
        actor=actor,
    )


def outage_credit_queue(
    *,
    place: OutagePlace,
    operator_ids: Collection[int],
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    actor: User | None = None,
) -> tuple[Outage, bool]:
    """Record the outage of `place` and hand its credits to the worker, in one transaction. Returns
    the outage and whether a run was queued now (one already queued or running is left to finish)."""
    from sonjog.flows.tasks import outage_credit_job

    subscriber_ids = outage_subscriber_ids(place=place, operator_ids=operator_ids)
    with transaction.atomic():
        outage, queued = outage_credits_queue(
            operator=place.operator,
            target_kind=_kind_of(place),
            target_id=place.pk,
            target_label=_label_of(place),
            operator_ids=operator_ids,
            subscriber_count=len(subscriber_ids),
            start=start,
            end=end,
            reason=reason,
            actor=actor,
        )
        if queued:
            outage_credit_job.defer(
                outage_id=outage.pk,
                operator_ids=sorted(operator_ids),
                actor_id=actor.pk if actor is not None and actor.pk else None,
            )
    return outage, queued


def outage_place(outage: Outage) -> OutagePlace:
    """The zone, router or POP an outage names."""
    kinds: dict[str, type[OutagePlace]] = {
        Outage.Target.ZONE: Zone,
        Outage.Target.ROUTER: Router,
        Outage.Target.POP: Pop,
    }
    model = kinds[outage.target_kind]
    found = model.objects.select_related("operator").filter(pk=outage.target_id).first()
    if found is None:
        raise BillingError(f"the {outage.get_target_kind_display()} '{outage.target_label}' no longer exists")
    return found


def outage_credit_run(*, outage: Outage, operator_ids: Collection[int], actor: User | None = None) -> OutagePlan:
    """The worker's run of a queued outage: who is behind its place now, credited."""
    return outage_credit(
        place=outage_place(outage),
        operator_ids=operator_ids,
        start=outage.starts_at,
        end=outage.ends_at,
        reason=outage.reason,
        actor=actor,
    )
