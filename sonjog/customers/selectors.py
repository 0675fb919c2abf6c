"""Reads for subscribers, always through the acting operator's subtree (DESIGN rule 5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from sonjog.catalog.models import AddOnEffect
from sonjog.core.scoping import OutOfScope, scoped
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn
from sonjog.operators.models import Operator

# Intent and what the router last confirmed disagree (the router side's "disabled" already covers
# suspension by profile or address list), or a subscriber who should be cut off is still online. The
# same condition twice: as a queryset filter, and as SQL over a subscriber row aliased `s`.
MISMATCH_Q = (
    Q(service_intent=ServiceIntent.ACTIVE, router_state__in=["disabled", "absent"])
    | Q(service_intent__in=[ServiceIntent.SUSPENDED, ServiceIntent.DISABLED], router_state="enabled")
    | Q(service_intent__in=[ServiceIntent.SUSPENDED, ServiceIntent.DISABLED], session_state="online")
    | Q(service_intent=ServiceIntent.TERMINATED, router_state__in=["enabled", "disabled"])
)
MISMATCH_SQL = """(
    (s.service_intent = 'active' AND s.router_state IN ('disabled', 'absent'))
    OR (s.service_intent IN ('suspended', 'disabled') AND (s.router_state = 'enabled' OR s.session_state = 'online'))
    OR (s.service_intent = 'terminated' AND s.router_state IN ('enabled', 'disabled'))
)"""


def _phone_digits(text: str) -> str:
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits.startswith("880"):
        digits = digits[3:]
    return digits.lstrip("0")


def subscriber_search_q(text: str) -> Q:
    """What a typed search matches: part of the name, customer ID or PPPoE username, the whole e-mail,
    or (four digits or more) part of the phone number, written with or without 0 or +880."""
    text = text.strip()
    condition = (
        Q(name__icontains=text)
        | Q(customer_id__icontains=text)
        | Q(pppoe_username__icontains=text)
        | Q(email__iexact=text)
    )
    digits = _phone_digits(text)
    if len(digits) >= 4:
        condition |= Q(phone__contains=digits)
    return condition


def subscriber_search_exact_q(text: str) -> Q:
    """The matches of a typed search that are exactly who was asked for: the whole customer ID or
    PPPoE username (any case), or the whole phone number however it was written."""
    text = text.strip()
    condition = Q(customer_id__iexact=text) | Q(pppoe_username__iexact=text)
    digits = _phone_digits(text)
    if len(digits) >= 7:
        # Stored E.164: a Bangladesh number as +880 and its ten digits, any other as + and all of them.
        condition |= Q(phone=f"+880{digits}") | Q(phone="+" + "".join(ch for ch in text if ch.isdigit()))
    return condition


def subscriber_search_rank(text: str) -> Case:
    """0 for an exact match of `text` (see `subscriber_search_exact_q`), 1 for any other: a search
    lists the subscriber typed in full first, whatever else contains it."""
    return Case(When(subscriber_search_exact_q(text), then=Value(0)), default=Value(1), output_field=IntegerField())


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
    address on the list named `value`; `static_ip` keeps the subscriber's fixed address in force (or,
    in RADIUS, has one taken from the pool `value` when the subscriber has none; see NetworkEffects)."""

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


@dataclass(frozen=True)
class NetworkEffects:
    """What a subscriber's add-ons ask of the network at one moment (ADR 0008): the address lists its
    address belongs on, and whether its `static_ip` is in force.

    The static-IP rule: a subscriber's `static_ip` is in force while a static-IP add-on runs for it.
    A subscriber for whom no static-IP add-on has ever started keeps its address unconditionally (an
    address set before add-ons existed, or one the operator includes in the package). Once billed as
    an add-on the address follows it: ending the add-on takes the address off the router and out of
    RADIUS (the field stays, as the subscriber's reservation), starting it again brings it back."""

    address_lists: tuple[str, ...] = ()
    static_ip_running: bool = False
    static_ip_started: bool = False

    @property
    def static_ip_in_force(self) -> bool:
        return self.static_ip_running or not self.static_ip_started


NO_NETWORK_EFFECTS = NetworkEffects()


def addon_network_effects(subscriber_ids: Collection[int], *, at: dt.datetime) -> dict[int, NetworkEffects]:
    """The network effects of many subscribers' add-ons in one query, each subscriber judged on its
    operator's calendar day at the instant `at` (a stretch runs on the days [start_date, end_date)).
    Subscribers without any add-on that has an effect are left out: they get NO_NETWORK_EFFECTS."""
    if not subscriber_ids:
        return {}
    rows = (
        SubscriberAddOn.objects.filter(subscriber_id__in=list(subscriber_ids))
        .exclude(addon__effect=AddOnEffect.NONE)
        .values_list(
            "subscriber_id",
            "subscriber__operator__time_zone",
            "start_date",
            "end_date",
            "addon__effect",
            "addon__effect_value",
        )
    )
    days: dict[str, dt.date] = {}
    lists: dict[int, set[str]] = {}
    running: set[int] = set()
    started: set[int] = set()
    for subscriber_id, time_zone, start, end, effect, value in rows:
        day = days.get(time_zone)
        if day is None:
            day = days[time_zone] = timezone.localtime(at, ZoneInfo(time_zone)).date()
        lists.setdefault(subscriber_id, set())
        if start > day:
            continue  # booked ahead: nothing yet
        runs = end is None or end > day
        if effect == AddOnEffect.ADDRESS_LIST and runs:
            lists[subscriber_id].add(value)
        elif effect == AddOnEffect.STATIC_IP:
            started.add(subscriber_id)
            if runs:
                running.add(subscriber_id)
    return {
        subscriber_id: NetworkEffects(
            address_lists=tuple(sorted(names)),
            static_ip_running=subscriber_id in running,
            static_ip_started=subscriber_id in started,
        )
        for subscriber_id, names in lists.items()
    }
