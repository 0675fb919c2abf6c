"""Network alerts: raised when a fault starts, resolved when it ends, one open alert per router and kind.

"Router unreachable" is raised by whatever finds the router silent (the reconciler, a connection test)
and resolved by the next one that reaches it. An online drop is raised by the sampler
(`sampling.online_sample`) and resolved when the router's online count is back above the drop line
measured against the peak the drop was raised from. A partial unique index
(`networkalert_one_open_per_router`) holds "one open alert per router and kind" whatever races, so a
second outage raises a new alert only after the first was resolved.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from sonjog.network.drivers.mikrotik import ConnectionTestResult
from sonjog.network.models import DriverKind, NetworkAlert, Router
from sonjog.network.services import router_connection_test

__all__ = [
    "alert_raise",
    "alert_resolve",
    "router_answered_alerts",
    "router_connection_check",
    "router_reachability_record",
    "router_unreachable_alert",
]


def alert_raise(*, router: Router, kind: str, message: str, baseline_online: int | None = None) -> NetworkAlert | None:
    """Open an alert of `kind` for the router, unless one is open already (then None)."""
    if NetworkAlert.objects.filter(router=router, kind=kind, resolved_at__isnull=True).exists():
        return None
    try:
        with transaction.atomic():
            return NetworkAlert.objects.create(
                operator_id=router.operator_id,
                router=router,
                kind=kind,
                message=message[:300],
                baseline_online=baseline_online,
            )
    except IntegrityError:
        return None  # raised by someone else in the meantime: that one stands


def alert_resolve(*, router: Router, kind: str, now: dt.datetime | None = None) -> int:
    """Resolve the router's open alert of `kind`; how many were resolved (0 or 1)."""
    return NetworkAlert.objects.filter(router=router, kind=kind, resolved_at__isnull=True).update(
        resolved_at=now or timezone.now()
    )


def router_unreachable_alert(*, router: Router, error: str) -> NetworkAlert | None:
    return alert_raise(
        router=router,
        kind=NetworkAlert.Kind.ROUTER_UNREACHABLE,
        message=f"Router {router.name} ({router.address}:{router.api_port}) does not answer: {error}",
    )


def router_answered_alerts(*, router: Router) -> int:
    return alert_resolve(router=router, kind=NetworkAlert.Kind.ROUTER_UNREACHABLE)


def router_reachability_record(*, router: Router, answered: bool, error: str = "") -> None:
    """What a contact with the router showed: raise or resolve its "unreachable" alert."""
    if answered:
        router_answered_alerts(router=router)
    else:
        router_unreachable_alert(router=router, error=error)


def router_connection_check(*, router: Router) -> ConnectionTestResult:
    """Staff's "Test connection": the test itself (kept on the router), then the router's "unreachable"
    alert raised when it did not answer, resolved when it did."""
    result = router_connection_test(router=router)
    if router.driver == DriverKind.MIKROTIK:  # the others have nothing to connect to
        router_reachability_record(router=router, answered=result.ok, error=result.message)
    return result
