"""Reads the network side answers for others: who is behind an address right now (the suspension
portal's visitor).

`subscriber_at_address` is the one definition of "the subscriber whose session holds this address".
Evidence, all of it open sessions as of `now`:

- RADIUS accounting: a `radacct` row whose framed address is it, started by `now` and not stopped by
  then (no stop time, or one after `now` when asking about the past), and not stale (a row with no stop
  time needs an interim update or its start within three interim intervals before `now`, the rule
  `radius_sessions.stale_sessions_close` closes rows by, so a row the NAS stopped reporting on claims
  nothing even before that job has run);
- the router side: a subscriber on a MikroTik router last seen online at that address (`session_ip`,
  recorded by the reconciler and the outbox from `/ppp/active`), seen by `now`; the session is taken to
  have begun its reported uptime before it was seen. Subscribers on RADIUS routers are known by
  `radacct` alone: their `session_ip` is a copy of it that may lag behind.

The most recently begun session wins: an address goes from one session to the next, never to two at
once, so the later start is the one holding it now (a closed session never claims anything).

A static IP is not a session, and is used only as a last resort: when no open session holds the
address, a subscriber whose `static_ip` it is, while that address is in force (ADR 0008: the router or
RADIUS hands it out only to that subscriber), with no open session at another address (a suspended
RADIUS subscriber gets a pool address, not its static one), and only when exactly one subscriber
qualifies. Nothing else (a pool, a zone, an address seen long ago) is ever taken as a guess.

Two NAS of one installation may hand out the same private address; give `operator` (the portal's
operator) to look in its subtree only. Without it, the latest session anywhere wins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from typing import Final

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet

from sonjog.customers.models import ServiceIntent, SessionState, Subscriber
from sonjog.customers.selectors import NO_NETWORK_EFFECTS, addon_network_effects
from sonjog.network.models import RadAcct
from sonjog.operators.models import Operator

_UPTIME_PART: Final = re.compile(r"(\d+)(w|d|h|m|s)")
_UPTIME_SECONDS: Final = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

# Subscribers served by a MikroTik router: their own router, else the first active one of their zone or
# its parent (the outbox's resolution, `services.router_for`).
_ON_MIKROTIK_SQL = """
SELECT s.id FROM customers_subscriber s
JOIN network_router r ON r.id = COALESCE(s.router_id, (
    SELECT zr.id FROM network_router zr JOIN network_router_zones rz ON rz.router_id = zr.id
    JOIN customers_zone z ON z.id = s.zone_id
    WHERE zr.is_active AND rz.zone_id IN (z.id, z.parent_id) ORDER BY zr.id LIMIT 1))
WHERE s.id = ANY(%(ids)s::bigint[]) AND r.driver = 'mikrotik'
"""


@dataclasses.dataclass(frozen=True, order=True)
class _Claim:
    """One open session holding the address; claims compare by when the session began."""

    since: dt.datetime
    from_radius: bool
    tiebreak: int
    subscriber_id: int


def uptime_seconds(uptime: str) -> int | None:
    """RouterOS's uptime (``1w2d3h4m5s``, ``00:05:00``, ``1d 02:00:00``) in seconds; None when unreadable."""
    text = uptime.strip()
    if not text:
        return None
    clock = re.fullmatch(r"(?:(\d+)d\s*)?(\d+):(\d{1,2}):(\d{1,2})", text)
    if clock:
        days, hours, minutes, seconds = (int(part) if part else 0 for part in clock.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    parts = _UPTIME_PART.findall(text.replace(" ", ""))
    if not parts or "".join(number + unit for number, unit in parts) != text.replace(" ", ""):
        return None
    return sum(int(number) * _UPTIME_SECONDS[unit] for number, unit in parts)


def _in_scope(operator: Operator | None) -> Q:
    return Q(operator__path__startswith=operator.path) if operator is not None else Q()


def _open_radius_rows(now: dt.datetime) -> QuerySet[RadAcct]:
    """`radacct` rows open at `now`: begun by then, and either stopped only after it, or not stopped and
    heard of within three interim intervals before it (the staleness rule `stale_sessions_close` closes
    rows by)."""
    fresh_after = now - dt.timedelta(seconds=settings.SONJOG_RADIUS_INTERIM_SECONDS * 3)
    running = Q(acctstoptime__isnull=True) & (Q(acctupdatetime__gt=fresh_after) | Q(acctstarttime__gt=fresh_after))
    return RadAcct.objects.filter(
        Q(acctstarttime__lte=now) | Q(acctstarttime__isnull=True, acctupdatetime__lte=now)
    ).filter(running | Q(acctstoptime__gt=now))


def _radius_claims(address: str, now: dt.datetime, scope: Q) -> list[_Claim]:
    """The open RADIUS sessions at `address`, of subscribers in scope."""
    at_address = _open_radius_rows(now).filter(framedipaddress=address)
    by_user = dict(
        Subscriber.objects.filter(scope)
        .filter(pppoe_username__in=at_address.values("username"))
        .values_list("pppoe_username", "pk")
    )
    claims: list[_Claim] = []
    for row_id, username, started, updated in at_address.filter(username__in=list(by_user)).values_list(
        "radacctid", "username", "acctstarttime", "acctupdatetime"
    ):
        since = started or updated
        if since is not None and username is not None:
            claims.append(_Claim(since=since, from_radius=True, tiebreak=row_id, subscriber_id=by_user[username]))
    return claims


def _router_claims(address: str, now: dt.datetime, scope: Q) -> list[_Claim]:
    """Subscribers on MikroTik routers last seen online at `address`."""
    seen = list(
        Subscriber.objects.filter(scope)
        .filter(session_state=SessionState.ONLINE, session_ip=address, session_state_at__lte=now)
        .values_list("pk", "session_state_at", "session_uptime")
    )
    if not seen:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_ON_MIKROTIK_SQL, {"ids": [row[0] for row in seen]})
        on_mikrotik = {row[0] for row in cursor.fetchall()}
    claims: list[_Claim] = []
    for subscriber_id, seen_at, uptime in seen:
        if subscriber_id not in on_mikrotik:
            continue
        assert seen_at is not None
        seconds = uptime_seconds(uptime)
        since = seen_at - dt.timedelta(seconds=seconds) if seconds is not None else seen_at
        claims.append(_Claim(since=since, from_radius=False, tiebreak=subscriber_id, subscriber_id=subscriber_id))
    return claims


def _static_holder(address: str, now: dt.datetime, scope: Q) -> int | None:
    """The one subscriber whose static IP `address` is, in force, and not online elsewhere."""
    holders = list(
        Subscriber.objects.filter(scope)
        .filter(static_ip=address)
        .exclude(service_intent=ServiceIntent.TERMINATED)
        .values_list("pk", "pppoe_username", "session_state", "session_ip")
    )
    if not holders:
        return None
    effects = addon_network_effects([row[0] for row in holders], at=now)
    online_elsewhere = set(
        _open_radius_rows(now)
        .filter(username__in=[row[1] for row in holders])
        .exclude(framedipaddress=address)
        .values_list("username", flat=True)
    )
    qualified = [
        subscriber_id
        for subscriber_id, username, session_state, session_ip in holders
        if effects.get(subscriber_id, NO_NETWORK_EFFECTS).static_ip_in_force
        and username not in online_elsewhere
        and not (session_state == SessionState.ONLINE and session_ip and session_ip != address)
    ]
    return qualified[0] if len(qualified) == 1 else None


def subscriber_at_address(address: str, now: dt.datetime, *, operator: Operator | None = None) -> Subscriber | None:
    """The subscriber whose open session holds `address` (an IPv4 or IPv6 address) at `now`, by the
    rules in this module's docstring; None when no open session holds it (nor, as a last resort, an
    in-force static IP), or when `address` is not an address at all."""
    try:
        ip = str(ipaddress.ip_address(str(address).strip()))
    except ValueError:
        return None
    scope = _in_scope(operator)
    claims = _radius_claims(ip, now, scope) + _router_claims(ip, now, scope)
    if claims:
        winner = max(claims).subscriber_id
    else:
        holder = _static_holder(ip, now, scope)
        if holder is None:
            return None
        winner = holder
    return Subscriber.objects.select_related("operator", "package").get(pk=winner)
