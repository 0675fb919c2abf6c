"""Online counts per router and zone every 5 minutes, and the "possible network fault" alert (raised on a
sudden drop, resolved when the count recovers)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from sonjog.customers.models import SessionState, Subscriber
from sonjog.network.alerts import alert_raise, alert_resolve
from sonjog.network.models import NetworkAlert, OnlineSample, Router


def online_sample(now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    samples: list[OnlineSample] = []
    alerts = 0
    for router in Router.objects.filter(is_active=True):
        from sonjog.network.reconcile import served_subscribers

        online = served_subscribers(router).filter(session_state=SessionState.ONLINE).count()
        samples.append(OnlineSample(router=router, online=online, sampled_at=now))
        _recovered(router, online, now)
        peak = _dropped(router, online, now)
        if peak is not None and alert_raise(
            router=router,
            kind=NetworkAlert.Kind.ONLINE_DROP,
            message=f"Possible network fault on {router.name}: online fell to {online}",
            baseline_online=peak,
        ):
            alerts += 1
    by_zone = (
        Subscriber.objects.filter(session_state=SessionState.ONLINE, zone__isnull=False)
        .values("zone")
        .annotate(online=Count("pk"))
    )
    samples.extend(OnlineSample(zone_id=row["zone"], online=row["online"], sampled_at=now) for row in by_zone)
    OnlineSample.objects.bulk_create(samples)
    return {"samples": len(samples), "alerts": alerts}


def _below_drop_line(online: int, peak: int) -> bool:
    return online <= peak * (100 - settings.SONJOG_ONLINE_DROP_PERCENT) / 100


def _dropped(router: Router, online: int, now: dt.datetime) -> int | None:
    """A drop of SONJOG_ONLINE_DROP_PERCENT or more against the peak of the window: the peak it fell
    from, or None. (`alert_raise` adds no second alert while one is open for this router.)"""
    window = now - dt.timedelta(minutes=settings.SONJOG_ONLINE_DROP_WINDOW_MINUTES)
    recent = OnlineSample.objects.filter(router=router, sampled_at__gte=window, sampled_at__lt=now)
    peak = max(recent.values_list("online", flat=True), default=0)
    if peak < 10 or not _below_drop_line(online, peak):
        return None
    return peak


def _recovered(router: Router, online: int, now: dt.datetime) -> None:
    """An open drop alert whose router is back above the drop line (against the peak it fell from)
    is resolved, so that the next outage raises a new one."""
    open_alert = NetworkAlert.objects.filter(
        router=router, kind=NetworkAlert.Kind.ONLINE_DROP, resolved_at__isnull=True
    ).first()
    if open_alert is None:
        return
    baseline = open_alert.baseline_online
    # Alerts raised before the baseline was kept are resolved by the first sample that is not a drop.
    back = not _below_drop_line(online, baseline) if baseline is not None else _dropped(router, online, now) is None
    if back:
        alert_resolve(router=router, kind=NetworkAlert.Kind.ONLINE_DROP, now=now)
