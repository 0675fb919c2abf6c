"""RADIUS accounting (radacct): open sessions, stale-session closing, session state."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone


def open_session(username: str) -> dict[str, Any] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT acctsessionid, host(framedipaddress), callingstationid, acctstarttime FROM radacct
               WHERE username = %s AND acctstoptime IS NULL ORDER BY acctstarttime DESC LIMIT 1""",
            [username],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return {"acctsessionid": row[0], "framedipaddress": row[1], "caller-id": row[2], "started": row[3]}


def stale_sessions_close() -> int:
    """Close (by UPDATE, never DELETE) sessions with no interim update for 3 intervals."""
    interval = settings.SONJOG_RADIUS_INTERIM_SECONDS
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE radacct SET acctstoptime = COALESCE(acctupdatetime, acctstarttime),
                   acctterminatecause = 'Stale-Session'
               WHERE acctstoptime IS NULL
                 AND COALESCE(acctupdatetime, acctstarttime) < %s - make_interval(secs => %s)""",
            [timezone.now(), interval * 3],
        )
        return cursor.rowcount


def session_states_refresh() -> int:
    """Drive session_state from radacct for subscribers whose router is a RADIUS router.

    A subscriber's router is its own, else the first active router serving its zone or the zone's
    parent: the same resolution the outbox uses (router_for, outbox_enqueue_many), so subscribers
    assigned by zone, the usual set-up, are covered too."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH online AS (
                SELECT DISTINCT ON (username) username, host(framedipaddress) AS ip, callingstationid AS mac
                FROM radacct WHERE acctstoptime IS NULL ORDER BY username, acctstarttime DESC
            ),
            targets AS (
                SELECT s.id, s.pppoe_username
                FROM customers_subscriber s
                JOIN network_router r ON r.id = COALESCE(s.router_id, (
                    SELECT zr.id FROM network_router zr JOIN network_router_zones rz ON rz.router_id = zr.id
                    JOIN customers_zone z ON z.id = s.zone_id
                    WHERE zr.is_active AND rz.zone_id IN (z.id, z.parent_id) ORDER BY zr.id LIMIT 1))
                WHERE r.driver = 'radius'
            )
            UPDATE customers_subscriber s
            SET session_state = CASE WHEN o.username IS NULL THEN 'offline' ELSE 'online' END,
                session_state_at = %(now)s, session_ip = o.ip::inet, session_mac = COALESCE(left(o.mac, 17), '')
            FROM targets t
            LEFT JOIN online o ON o.username = t.pppoe_username
            WHERE s.id = t.id
              AND (s.session_state <> CASE WHEN o.username IS NULL THEN 'offline' ELSE 'online' END
                   OR s.session_ip IS DISTINCT FROM o.ip::inet)
            """,
            {"now": now},
        )
        return cursor.rowcount
