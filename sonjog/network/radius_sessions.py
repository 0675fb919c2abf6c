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
    """Drive session_state from radacct for subscribers on RADIUS routers (and any with sessions)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH online AS (
                SELECT DISTINCT ON (username) username, host(framedipaddress) AS ip, callingstationid AS mac
                FROM radacct WHERE acctstoptime IS NULL ORDER BY username, acctstarttime DESC
            )
            UPDATE customers_subscriber s
            SET session_state = CASE WHEN o.username IS NULL THEN 'offline' ELSE 'online' END,
                session_state_at = %(now)s, session_ip = o.ip::inet, session_mac = COALESCE(left(o.mac, 17), '')
            FROM customers_subscriber s2
            LEFT JOIN online o ON o.username = s2.pppoe_username
            JOIN network_router r ON r.id = s2.router_id AND r.driver = 'radius'
            WHERE s.id = s2.id
              AND (s.session_state <> CASE WHEN o.username IS NULL THEN 'offline' ELSE 'online' END
                   OR s.session_ip IS DISTINCT FROM o.ip::inet)
            """,
            {"now": now},
        )
        return cursor.rowcount
