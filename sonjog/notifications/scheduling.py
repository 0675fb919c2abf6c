"""Quiet hours: when an operator's subscribers should not be woken by a reminder."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sonjog.notifications.models import NotificationSettings


def in_quiet_hours(local: dt.time, start: dt.time, end: dt.time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight, e.g. 22:00-08:00


def quiet_hours_end(settings: NotificationSettings, time_zone: str, now: dt.datetime) -> dt.datetime | None:
    """When the quiet hours around `now` end (aware), or None when `now` is not in them."""
    if not settings.quiet_hours_enabled:
        return None
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    if not in_quiet_hours(local.time(), settings.quiet_start, settings.quiet_end):
        return None
    end = dt.datetime.combine(local.date(), settings.quiet_end, tzinfo=zone)
    if end <= local:
        end += dt.timedelta(days=1)
    return end
