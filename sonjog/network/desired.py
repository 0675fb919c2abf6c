"""What each router should hold for a subscriber, derived from intent (the single source of truth)."""

from __future__ import annotations

from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.network.drivers.mikrotik import DesiredSecret, SecretState
from sonjog.network.models import Router, SuspendMode


def desired_state(intent: str) -> SecretState:
    if intent == ServiceIntent.ACTIVE:
        return "enabled"
    if intent == ServiceIntent.TERMINATED:
        return "absent"
    return "disabled"


def _fair_usage_throttled(subscriber_id: int) -> bool:
    from sonjog.automation.selectors import fup_throttled_subscriber_ids

    return subscriber_id in fup_throttled_subscriber_ids([subscriber_id])


def desired_secret(subscriber: Subscriber, router: Router) -> DesiredSecret:
    state = desired_state(subscriber.service_intent)
    # Staff-disabled accounts are cut off; only billing suspensions may use the redirect modes.
    suspend_mode = router.suspend_mode if subscriber.service_intent == ServiceIntent.SUSPENDED else SuspendMode.DISABLE
    profile = subscriber.package.router_profile
    if state == "enabled" and _fair_usage_throttled(subscriber.pk):
        profile = subscriber.package.fup_router_profile
    return DesiredSecret(
        name=subscriber.pppoe_username,
        password=subscriber.pppoe_password,
        profile=profile,
        remote_address=subscriber.static_ip or None,
        comment=f"{subscriber.customer_id} {subscriber.name}"[:120],
        state=state,
        suspend_mode=suspend_mode,  # type: ignore[arg-type]
        suspended_profile=router.suspended_profile,
        suspended_list=router.suspended_address_list,
    )
