"""What each router should hold for a subscriber, derived from intent (the single source of truth).

Intent is the subscriber's service intent, its package (and a fair-usage throttle), and the network
effects of its running add-ons (ADR 0008): the add-on address lists its address belongs on while it is
active, and whether its static IP is in force. One subscriber costs a query for each of the last two;
a batch (`desired_secrets`, what the reconciler uses) costs one query each for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.customers.selectors import NO_NETWORK_EFFECTS, NetworkEffects, addon_network_effects
from sonjog.network.drivers.mikrotik import DesiredSecret, SecretState
from sonjog.network.fair_usage import fup_throttled_subscriber_ids
from sonjog.network.models import Router, SuspendMode


def desired_state(intent: str) -> SecretState:
    if intent == ServiceIntent.ACTIVE:
        return "enabled"
    if intent == ServiceIntent.TERMINATED:
        return "absent"
    return "disabled"


def _fair_usage_throttled_ids(subscriber_ids: list[int]) -> set[int]:
    return fup_throttled_subscriber_ids(subscriber_ids)


def desired_secret(
    subscriber: Subscriber,
    router: Router,
    *,
    effects: NetworkEffects | None = None,
    throttled: bool | None = None,
) -> DesiredSecret:
    """The subscriber's desired secret on `router`. `effects` and `throttled` are read now when not
    given; a caller handling many subscribers reads them for all at once (`desired_secrets`)."""
    state = desired_state(subscriber.service_intent)
    if effects is None:
        effects = addon_network_effects([subscriber.pk], at=timezone.now()).get(subscriber.pk, NO_NETWORK_EFFECTS)
    if throttled is None:
        throttled = state == "enabled" and subscriber.pk in _fair_usage_throttled_ids([subscriber.pk])
    # Staff-disabled accounts are cut off; only billing suspensions may use the redirect modes.
    suspend_mode = router.suspend_mode if subscriber.service_intent == ServiceIntent.SUSPENDED else SuspendMode.DISABLE
    profile = subscriber.package.router_profile
    if state == "enabled" and throttled:
        profile = subscriber.package.fup_router_profile
    # Add-on lists apply while the service runs; the suspended list is suspension's, never an add-on's.
    address_lists = (
        tuple(name for name in effects.address_lists if name != router.suspended_address_list)
        if state == "enabled"
        else ()
    )
    return DesiredSecret(
        name=subscriber.pppoe_username,
        password=subscriber.pppoe_password,
        profile=profile,
        remote_address=(subscriber.static_ip or None) if effects.static_ip_in_force else None,
        comment=f"{subscriber.customer_id} {subscriber.name}"[:120],
        state=state,
        suspend_mode=suspend_mode,  # type: ignore[arg-type]
        suspended_profile=router.suspended_profile,
        suspended_list=router.suspended_address_list,
        address_lists=address_lists,
    )


def desired_secrets(subscribers: Sequence[Subscriber], router: Router) -> dict[int, DesiredSecret]:
    """Every subscriber's desired secret on `router`, by subscriber id, with the add-on effects and the
    fair-usage throttles read in one query each for the whole batch."""
    ids = [subscriber.pk for subscriber in subscribers]
    effects = addon_network_effects(ids, at=timezone.now())
    throttled = _fair_usage_throttled_ids(ids) if ids else set()
    return {
        subscriber.pk: desired_secret(
            subscriber,
            router,
            effects=effects.get(subscriber.pk, NO_NETWORK_EFFECTS),
            throttled=subscriber.pk in throttled,
        )
        for subscriber in subscribers
    }
