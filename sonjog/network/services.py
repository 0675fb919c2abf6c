"""Writes for the network side: routers, the enforcement outbox and its executor, sweeps.

Intent changes enqueue a command in the caller's transaction (`outbox_enqueue`) and defer its job in
that same transaction, so a committed intent always has its command and a rolled-back one never does.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from sonjog.core.models import AuditEvent
from sonjog.customers.models import SessionState, Subscriber, SyncState
from sonjog.network import profiles
from sonjog.network import router_io as drivers
from sonjog.network.desired import desired_secret
from sonjog.network.exceptions import NetworkError
from sonjog.network.fair_usage import fup_usage_periods, period_usage_bytes
from sonjog.network.models import (
    DriverKind,
    FupState,
    OutboxAttempt,
    OutboxCommand,
    OutboxStatus,
    Router,
    RouterBackup,
)
from sonjog.network.routers import router_create, router_set_active, router_update

__all__ = [
    "fair_usage_apply",
    "outbox_drain",
    "outbox_enqueue",
    "outbox_execute",
    "outbox_retry",
    "outbox_router_answered",
    "router_backup",
    "router_connection_test",
    "router_create",
    "router_for",
    "router_read",
    "router_set_active",
    "router_update",
]

logger = logging.getLogger(__name__)


def router_for(subscriber: Subscriber) -> Router | None:
    """The subscriber's own router, else the active router serving its zone or the zone's parent."""
    if subscriber.router_id is not None:
        return Router.objects.filter(pk=subscriber.router_id, is_active=True).first()
    if subscriber.zone_id is None:
        return None
    zone = subscriber.zone
    assert zone is not None
    return (
        Router.objects.filter(is_active=True)
        .filter(Q(zones=zone.pk) | Q(zones=zone.parent_id) if zone.parent_id else Q(zones=zone.pk))
        .order_by("pk")
        .first()
    )


def outbox_enqueue(*, subscriber: Subscriber, requested_by: str) -> OutboxCommand | None:
    """Record "reconcile this subscriber on its router" in the caller's transaction.

    De-duplicated: a pending command for the same subscriber and router is refreshed, not repeated."""
    router = router_for(subscriber)
    now = timezone.now()
    if router is None:
        Subscriber.objects.filter(pk=subscriber.pk).update(sync_state=SyncState.RECORD_ONLY, sync_state_at=now)
        return None
    if router.record_only or router.driver == DriverKind.NONE:
        Subscriber.objects.filter(pk=subscriber.pk).update(sync_state=SyncState.RECORD_ONLY, sync_state_at=now)
        return OutboxCommand.objects.create(
            subscriber=subscriber,
            router=router,
            status=OutboxStatus.RECORD_ONLY,
            requested_by=requested_by[:120],
            requested_at=now,
            intent_at=subscriber.service_intent_at,
            next_attempt_at=now,
            completed_at=now,
        )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO network_outboxcommand (subscriber_id, router_id, status, requested_by, requested_at,
                intent_at, attempts, max_attempts, next_attempt_at, last_error, result)
            VALUES (%(subscriber)s, %(router)s, 'pending', %(by)s, %(now)s, %(intent_at)s, 0, %(max)s,
                    %(now)s, '', '{}')
            ON CONFLICT (subscriber_id, router_id) WHERE status = 'pending'
            DO UPDATE SET requested_by = EXCLUDED.requested_by, requested_at = EXCLUDED.requested_at,
                intent_at = EXCLUDED.intent_at, next_attempt_at = EXCLUDED.next_attempt_at
            RETURNING id
            """,
            {
                "subscriber": subscriber.pk,
                "router": router.pk,
                "by": requested_by[:120],
                "now": now,
                "intent_at": subscriber.service_intent_at or now,
                "max": settings.SONJOG_OUTBOX_MAX_ATTEMPTS,
            },
        )
        row = cursor.fetchone()
    assert row is not None
    Subscriber.objects.filter(pk=subscriber.pk).update(sync_state=SyncState.PENDING, sync_state_at=now)
    from sonjog.network.tasks import execute_command

    execute_command.defer(command_id=row[0])
    return OutboxCommand.objects.get(pk=row[0])


# A signed 32-bit namespace for the per-command session advisory lock, apart from the other locks.
OUTBOX_LOCK_NAMESPACE = zlib.crc32(b"sonjog.network.outbox") - 2**31


def _lock_key(command_id: int) -> int:
    return command_id % 2**31


def _claim(command_id: int) -> bool:
    """Take one command to run. The runner holds a session advisory lock on the command until its
    outcome is recorded; PostgreSQL drops the lock with the session, so a command still marked
    running whose lock is free belongs to a worker that died (kill -9, a lost machine), and the
    next executor takes it over at once instead of waiting for a timeout."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [OUTBOX_LOCK_NAMESPACE, _lock_key(command_id)])
        row = cursor.fetchone()
        if not (row and row[0]):
            return False  # running now, in another session
        now = timezone.now()
        cursor.execute(
            """UPDATE network_outboxcommand SET status = 'running', started_at = %s
               WHERE id = %s AND (status = 'running' OR (status = 'pending' AND next_attempt_at <= %s))""",
            [now, command_id, now],
        )
        if cursor.rowcount == 1:
            return True
    _release(command_id)
    return False


def _release(command_id: int) -> None:
    if connection.connection is None:
        return  # the connection is gone, and the lock with it
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [OUTBOX_LOCK_NAMESPACE, _lock_key(command_id)])
    except DatabaseError:
        logger.warning("could not release the lock of outbox command %s; it goes with the session", command_id)


def outbox_execute(command_id: int, *, force: bool = False, sessions: drivers.Sessions | None = None) -> str:
    """Run one command through its router's driver. Reads the subscriber's intent *now*, so whatever
    was asked last is what lands. Returns the command's status afterwards."""
    if force:
        OutboxCommand.objects.filter(pk=command_id, status=OutboxStatus.PENDING).update(next_attempt_at=timezone.now())
    if not _claim(command_id):
        return OutboxCommand.objects.filter(pk=command_id).values_list("status", flat=True).first() or "missing"
    try:
        return _execute_claimed(command_id, sessions)
    finally:
        _release(command_id)


def _execute_claimed(command_id: int, sessions: drivers.Sessions | None) -> str:
    command = OutboxCommand.objects.select_related("router", "subscriber__package").get(pk=command_id)
    subscriber, router = command.subscriber, command.router
    desired = desired_secret(subscriber, router)
    if router.driver == DriverKind.MIKROTIK:
        # A secret needs its profile on the router first: a new package's first subscribers would be
        # refused otherwise, if their commands ran before the package's profile command.
        profiles.profiles_run_due(router=router, profile=desired.profile, sessions=sessions)
    started = timezone.now()
    try:
        outcome = drivers.apply(router, subscriber, desired, sessions)
    except drivers.DriverError as error:
        _record_failure(command, started, desired.state, error)
        return OutboxCommand.objects.get(pk=command_id).status
    finished = timezone.now()
    latency_ms = (finished - (command.intent_at or command.requested_at)).total_seconds() * 1000
    with transaction.atomic():
        OutboxAttempt.objects.create(
            command=command,
            started_at=started,
            finished_at=finished,
            ok=True,
            desired=desired.state,
            actions=outcome.actions,
        )
        OutboxCommand.objects.filter(pk=command.pk).update(
            status=OutboxStatus.DONE,
            attempts=command.attempts + 1,
            completed_at=finished,
            latency_ms=latency_ms,
            last_error="",
            result={"actions": outcome.actions, "router_state": outcome.router_state, "online": outcome.online},
        )
        _observed(subscriber.pk, outcome.router_state, outcome.online, outcome.session, finished, in_sync=True)
        # The router answered (a RADIUS NAS only if a session was kicked: otherwise nothing was
        # sent to it): whatever else waits out a retry on it may go now.
        if router.driver == DriverKind.MIKROTIK or any(a.startswith("session.") for a in outcome.actions):
            outbox_router_answered(router=router)
    return OutboxStatus.DONE.value


def _record_failure(command: OutboxCommand, started: dt.datetime, desired: str, error: Exception) -> None:
    now = timezone.now()
    attempts = command.attempts + 1
    failed = attempts >= command.max_attempts
    with transaction.atomic():
        OutboxAttempt.objects.create(
            command=command, started_at=started, finished_at=now, ok=False, desired=desired, error=str(error)[:2000]
        )
        try:
            with transaction.atomic():
                OutboxCommand.objects.filter(pk=command.pk).update(
                    status=OutboxStatus.FAILED if failed else OutboxStatus.PENDING,
                    attempts=attempts,
                    last_error=str(error)[:2000],
                    next_attempt_at=now + dt.timedelta(seconds=settings.SONJOG_OUTBOX_RETRY_SECONDS),
                )
        except IntegrityError:
            # A newer command for the same subscriber and router was queued while this one ran; it
            # will carry the latest intent, so this one steps aside.
            OutboxCommand.objects.filter(pk=command.pk).update(
                status=OutboxStatus.DONE, attempts=attempts, last_error=f"superseded after: {error}"[:2000]
            )
            return
        Subscriber.objects.filter(pk=command.subscriber_id).update(
            sync_state=SyncState.FAILED if failed else SyncState.PENDING, sync_state_at=now
        )


def outbox_retry(command: OutboxCommand) -> OutboxCommand:
    """Staff's manual retry of a failed command: back to pending with a fresh attempt budget."""
    if command.status != OutboxStatus.FAILED:
        raise NetworkError(f"command #{command.pk} is {command.status}; only failed commands can be retried")
    try:
        with transaction.atomic():
            OutboxCommand.objects.filter(pk=command.pk).update(
                status=OutboxStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
            )
    except IntegrityError:
        raise NetworkError("a newer command for this subscriber is already waiting") from None
    from sonjog.network.tasks import execute_command

    execute_command.defer(command_id=command.pk)
    command.refresh_from_db()
    return command


def outbox_drain(*, limit: int = 1000) -> dict[str, int]:
    """Execute every due pending command (the retry path), and take over commands whose worker died
    (running, with their lock free: see `_claim`). Commands are taken router by router over one
    connection each; several drains may run at once, since each command is claimed before it runs.
    Commands that become due while the drain runs (a router answered again) are taken in a next
    round, each command at most once per drain."""
    counts: dict[str, int] = {}
    seen: set[int] = set()
    with drivers.Sessions() as sessions:
        # Profiles first: the secrets that follow may need them.
        for status, count in profiles.profiles_drain(sessions=sessions, limit=limit).items():
            counts[f"profile_{status}"] = count
        while len(seen) < limit:
            due = [
                pk
                for pk in OutboxCommand.objects.filter(
                    Q(status=OutboxStatus.PENDING, next_attempt_at__lte=timezone.now()) | Q(status=OutboxStatus.RUNNING)
                )
                .order_by("router_id", "next_attempt_at")
                .values_list("pk", flat=True)[: limit + len(seen)]
                if pk not in seen
            ][: limit - len(seen)]
            if not due:
                break
            seen.update(due)
            for command_id in due:
                status = outbox_execute(command_id, sessions=sessions)
                if status != OutboxStatus.RUNNING:  # still running: another live worker has it
                    counts[status] = counts.get(status, 0) + 1
    return counts


def outbox_router_answered(*, router: Router) -> int:
    """The router answered (a connection test, a reconciliation, a command that went through): its
    commands waiting out a retry after failures become due now, and a drain is queued for them, in
    the caller's transaction. Returns how many were woken."""
    now = timezone.now()
    with transaction.atomic():
        woken = OutboxCommand.objects.filter(
            router=router, status=OutboxStatus.PENDING, next_attempt_at__gt=now
        ).update(next_attempt_at=now)
        woken += profiles.profiles_wake(router=router)
        if woken:
            from sonjog.network.tasks import drain_outbox_soon

            drain_outbox_soon()
    return woken


def _observed(
    subscriber_id: int,
    router_state: str,
    online: bool,
    session: dict[str, Any] | None,
    at: dt.datetime,
    *,
    in_sync: bool | None = None,
) -> None:
    fields: dict[str, Any] = {
        "router_state": router_state,
        "router_state_at": at,
        "session_state": SessionState.ONLINE if online else SessionState.OFFLINE,
        "session_state_at": at,
        "session_ip": (session or {}).get("address") or None,
        "session_mac": ((session or {}).get("caller-id") or "")[:17],
        "session_uptime": ((session or {}).get("uptime") or "")[:32],
    }
    if in_sync is not None:
        fields["sync_state"] = SyncState.IN_SYNC if in_sync else SyncState.PENDING
        fields["sync_state_at"] = at
    Subscriber.objects.filter(pk=subscriber_id).update(**fields)


def router_connection_test(*, router: Router) -> drivers.mikrotik.ConnectionTestResult:
    """Try the router's API now and keep the outcome on the router, where lists show it."""
    result = drivers.test(router)
    with transaction.atomic():
        Router.objects.filter(pk=router.pk).update(
            last_test_at=timezone.now(), last_test_ok=result.ok, last_test_message=result.message[:300]
        )
        if result.ok and router.driver == DriverKind.MIKROTIK:  # others have nothing to connect to
            outbox_router_answered(router=router)
    return result


def router_read(*, router: Router) -> drivers.RouterReading:
    """Read the router's identity, resources and PPP profiles now ("Read from router"); a router that
    answers counts as a passed connection test, one that does not as a failed one."""
    try:
        reading = drivers.read(router)
    except drivers.DriverError as error:
        Router.objects.filter(pk=router.pk).update(
            last_test_at=timezone.now(), last_test_ok=False, last_test_message=str(error)[:300]
        )
        raise
    with transaction.atomic():
        Router.objects.filter(pk=router.pk).update(
            last_test_at=timezone.now(),
            last_test_ok=True,
            last_test_message=f"read: RouterOS {reading.details.get('version', '')}"[:300],
        )
        outbox_router_answered(router=router)
    return reading


def router_backup(router: Router) -> RouterBackup:
    text = drivers.export_config(router)
    return RouterBackup.objects.create(router=router, taken_at=timezone.now(), content=text)


# -- fair usage -------------------------------------------------------------------------------------

FUP_LOCK = (zlib.crc32(b"sonjog.automation.fup") - 2**31, 0)

_THROTTLE_SQL = """
INSERT INTO automation_fupstate (subscriber_id, period_month, usage_bytes, allowance_bytes, throttled_at)
SELECT * FROM unnest(%(ids)s::bigint[], %(months)s::date[], %(usage)s::bigint[], %(allowance)s::bigint[],
                     %(now)s::timestamptz[])
ORDER BY 1
ON CONFLICT (subscriber_id, period_month) DO UPDATE SET
    released_at = NULL, throttled_at = EXCLUDED.throttled_at, usage_bytes = EXCLUDED.usage_bytes,
    allowance_bytes = EXCLUDED.allowance_bytes
WHERE automation_fupstate.released_at IS NOT NULL
RETURNING subscriber_id
"""


def fair_usage_apply(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Throttle subscribers past their package's data allowance in their current billing period and
    release throttles whose period has ended (or whose subscriber no longer qualifies: a package
    without an allowance, a bigger allowance, termination). Each change queues a router command in
    the same transaction; the network side decides what the throttle looks like on the router."""
    now = now or timezone.now()
    periods = fup_usage_periods(now)
    usage = period_usage_bytes(periods)
    over = {p.subscriber_id: p for p in periods if usage.get(p.subscriber_id, 0) > p.allowance_bytes}
    with transaction.atomic():
        # One fair-usage pass at a time: two would race on the same subscribers' open rows.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(FUP_LOCK))
        release_ids = [
            state_id
            for state_id, subscriber_id, period_month in FupState.objects.filter(released_at__isnull=True).values_list(
                "pk", "subscriber_id", "period_month"
            )
            if subscriber_id not in over or over[subscriber_id].period_month != period_month
        ]
        released = list(
            FupState.objects.filter(pk__in=release_ids)
            .values_list("subscriber_id", flat=True)
            .order_by("subscriber_id")
        )
        FupState.objects.filter(pk__in=release_ids).update(released_at=now)
        throttled: list[int] = []
        if over:
            ordered = sorted(over.values(), key=lambda p: p.subscriber_id)
            with connection.cursor() as cursor:
                cursor.execute(
                    _THROTTLE_SQL,
                    {
                        "ids": [p.subscriber_id for p in ordered],
                        "months": [p.period_month for p in ordered],
                        "usage": [usage[p.subscriber_id] for p in ordered],
                        "allowance": [p.allowance_bytes for p in ordered],
                        "now": [now] * len(ordered),
                    },
                )
                throttled = [row[0] for row in cursor.fetchall()]
        changed = sorted(set(released) | set(throttled))
        commands = 0
        subscribers = Subscriber.objects.select_related("zone", "operator").in_bulk(changed)
        for subscriber_id in changed:
            subscriber = subscribers[subscriber_id]
            if outbox_enqueue(subscriber=subscriber, requested_by="fair usage") is not None:
                commands += 1
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    operator_id=subscribers[subscriber_id].operator_id,
                    action="subscriber.fup.throttled" if subscriber_id in throttled else "subscriber.fup.released",
                    subscriber_id=subscriber_id,
                    detail=(
                        {"usage_bytes": usage[subscriber_id], "allowance_bytes": over[subscriber_id].allowance_bytes}
                        if subscriber_id in throttled
                        else {}
                    ),
                )
                for subscriber_id in changed
            ]
        )
    return {
        "checked": len(periods),
        "over_allowance": len(over),
        "throttled": len(throttled),
        "released": len(released),
        "commands": commands,
    }
