"""Package profiles on the routers: which PPP profiles each router must hold, the profile outbox that
puts them there (with retries), and the rate of the live sessions in them.

Which routers hold a package's profiles: every active router of the package's operator and of the
operators above it (a reseller's subscribers may run on its parent ISP's routers, never on a
sub-reseller's), the same routers whose profiles `network_diff` checks (`packages_held`), so what is
pushed and what is checked agree by construction. A router holds the profiles of the packages in its
operator's subtree that are on sale or still have subscribers: the package's `router_profile` at its
rate, and, for a package with a data allowance, its fair-usage profile at the fair-usage rate; with the
"suspended profile" suspend mode, the suspended profile too (created when missing, with the suspended
address list; never changed afterwards, but for its address list on a router with a suspension portal,
which the portal command keeps: `portal`).

A command is "bring profile P on router R to what the packages say" (`ProfileCommand`; the same outbox
carries "bring Sonjog's suspension-portal rules on router R to its settings", kind "portal_redirect",
see `portal`); the executor reads the packages when it runs, so a newer edit supersedes a pending
command (one pending command per router, kind and profile, a partial unique index). Failures retry
every `SONJOG_OUTBOX_RETRY_SECONDS` up to `SONJOG_OUTBOX_MAX_ATTEMPTS`, then the command is failed and
visible on the routers page; the reconciler queues a fresh one for whatever is still wrong. Live
sessions: on a MikroTik router a changed rate limit kicks the sessions in the profile (RouterOS fixes a
session's rate when it comes up); on a RADIUS router each live session of an active subscriber in the
profile gets a CoA-Request with its rate (a Disconnect-Request where the NAS does not take CoA or
refuses it), every ACK/NAK recorded on the command's attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from sonjog.catalog.models import Package
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.network import router_io
from sonjog.network.exceptions import ProfileConflict
from sonjog.network.fair_usage import fup_throttled_subscriber_ids
from sonjog.network.models import (
    DriverKind,
    OutboxStatus,
    ProfileAttempt,
    ProfileCommand,
    RadAcct,
    Router,
    RouterCommandKind,
    SuspendMode,
)
from sonjog.operators.models import Operator

logger = logging.getLogger(__name__)

# What the suspended profile is created with when the router has none: the RADIUS "suspended" group's rate.
SUSPENDED_RATE_LIMIT = "256k/256k"

PROFILE_LOCK_NAMESPACE = zlib.crc32(b"sonjog.network.profiles") - 2**31


# -- what each router must hold ----------------------------------------------------------------------


def fup_rate_limit(package: Package) -> str:
    return f"{package.fup_upload_kbps}k/{package.fup_download_kbps}k"


def package_profiles(package: Package) -> dict[str, str]:
    """The PPP profiles a package needs on its routers, by name, with their MikroTik rate limits."""
    wanted = {package.router_profile: package.rate_limit}
    if package.data_allowance_gb is not None:
        wanted.setdefault(package.fup_router_profile, fup_rate_limit(package))
    return wanted


def _ancestor_ids(operator: Operator) -> list[int]:
    return [int(part) for part in operator.path.strip("/").split("/") if part]


def line_routers(operator: Operator) -> QuerySet[Router]:
    """The active routers that may serve the operator's subscribers: its own and its ancestors'."""
    return Router.objects.filter(operator_id__in=_ancestor_ids(operator), is_active=True).order_by("pk")


def packages_held(router: Router) -> QuerySet[Package]:
    """The packages whose profiles the router must hold: its operator subtree's, on sale or still with
    subscribers (taking a package off sale must not take its subscribers' profile away)."""
    live = Subscriber.objects.filter(package=OuterRef("pk")).exclude(service_intent=ServiceIntent.TERMINATED)
    return Package.objects.filter(operator__path__startswith=router.operator.path).filter(
        Q(is_active=True) | Exists(live)
    )


def router_profiles_wanted(router: Router) -> dict[str, router_io.ProfileWanted]:
    """Every profile the router must hold, by name. Packages sharing a name share its rate (refused
    otherwise, `profiles_check`); should rows disagree anyway, the oldest package decides, so pushes
    never flap between two rates."""
    wanted: dict[str, router_io.ProfileWanted] = {}
    for package in packages_held(router).order_by("pk"):
        for name, rate_limit in package_profiles(package).items():
            wanted.setdefault(name, router_io.ProfileWanted(name=name, rate_limit=rate_limit))
    if router.suspend_mode == SuspendMode.PROFILE and router.suspended_profile not in wanted:
        wanted[router.suspended_profile] = router_io.ProfileWanted(
            name=router.suspended_profile,
            rate_limit=None,
            create_rate_limit=SUSPENDED_RATE_LIMIT,
            address_list=router.suspended_address_list,
        )
    return wanted


def profiles_check(package: Package) -> None:
    """Refuse a package whose profile names another package of the same ISP (the root operator's tree)
    already uses at another rate: one profile on a router has one rate, and two packages pushing two
    rates into it would take turns overwriting each other."""
    wanted = package_profiles(package)
    root = f"/{_ancestor_ids(package.operator)[0]}/"
    live = Subscriber.objects.filter(package=OuterRef("pk")).exclude(service_intent=ServiceIntent.TERMINATED)
    others = (
        Package.objects.filter(operator__path__startswith=root)
        .exclude(pk=package.pk)
        .filter(Q(is_active=True) | Exists(live))
        .filter(Q(router_profile__in=wanted) | Q(fup_router_profile__in=wanted, data_allowance_gb__isnull=False))
        .order_by("pk")
    )
    for other in others:
        for name, rate_limit in package_profiles(other).items():
            if name in wanted and wanted[name] != rate_limit:
                raise ProfileConflict(
                    f"the router profile '{name}' is already used by the package '{other.name}' at {rate_limit}; "
                    f"a profile has one rate on the routers, so give this package ({wanted[name]}) another "
                    "profile name or the same speed"
                )


# -- queueing ----------------------------------------------------------------------------------------


def _pushable(router: Router, *, sessions_only: bool) -> bool:
    """MikroTik routers hold profiles; RADIUS routers only have live sessions whose rate may change."""
    if not router.is_active or router.record_only:
        return False
    if router.driver == DriverKind.MIKROTIK:
        return True
    return sessions_only and router.driver == DriverKind.RADIUS


def profile_enqueue(*, router: Router, profile: str, requested_by: str) -> int:
    """Record "bring this profile on this router to what the packages say" in the caller's transaction
    and defer its job there; a pending command for the same router and profile is refreshed."""
    return router_command_enqueue(
        router=router, kind=RouterCommandKind.PROFILE, profile=profile, requested_by=requested_by
    )


def router_command_enqueue(*, router: Router, kind: str, profile: str, requested_by: str) -> int:
    """Queue a command of this outbox (a package profile, or the router's portal rules: `portal`) in the
    caller's transaction and defer its job there; a pending one for the same router, kind and profile is
    refreshed rather than repeated."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO network_profilecommand (router_id, kind, profile, status, requested_by, requested_at,
                attempts, max_attempts, next_attempt_at, last_error, result)
            VALUES (%(router)s, %(kind)s, %(profile)s, 'pending', %(by)s, %(now)s, 0, %(max)s, %(now)s, '', '{}')
            ON CONFLICT (router_id, kind, profile) WHERE status = 'pending'
            DO UPDATE SET requested_by = EXCLUDED.requested_by, requested_at = EXCLUDED.requested_at,
                next_attempt_at = EXCLUDED.next_attempt_at
            RETURNING id
            """,
            {
                "router": router.pk,
                "kind": kind,
                "profile": profile,
                "by": requested_by[:120],
                "now": now,
                "max": settings.SONJOG_OUTBOX_MAX_ATTEMPTS,
            },
        )
        row = cursor.fetchone()
    assert row is not None
    from sonjog.network.tasks import execute_profile_command

    execute_profile_command.defer(command_id=row[0])
    return int(row[0])


def package_profiles_push(
    *, package: Package, requested_by: str, rate_changed_profiles: frozenset[str] | None = None
) -> int:
    """Queue the package's profiles on every router that may serve it, in the caller's transaction.

    `rate_changed_profiles` None (a new package, a renamed profile): every profile goes to the MikroTik
    routers. Otherwise only the named profiles, whose rate changed, go (to MikroTik routers, and to
    RADIUS routers for their live sessions' CoA). Returns how many commands were queued."""
    names = package_profiles(package)
    targets = sorted(names if rate_changed_profiles is None else set(names) & rate_changed_profiles)
    queued = 0
    for router in line_routers(package.operator):
        sessions_only = rate_changed_profiles is not None
        if not _pushable(router, sessions_only=sessions_only):
            continue
        for name in targets:
            profile_enqueue(router=router, profile=name, requested_by=requested_by)
            queued += 1
    return queued


_MIKROTIK_SERVED_SQL = """
SELECT s.id FROM customers_subscriber s
JOIN network_router r ON r.id = COALESCE(s.router_id, (
    SELECT zr.id FROM network_router zr JOIN network_router_zones rz ON rz.router_id = zr.id
    JOIN customers_zone z ON z.id = s.zone_id
    WHERE zr.is_active AND rz.zone_id IN (z.id, z.parent_id) ORDER BY zr.id LIMIT 1))
WHERE s.package_id = %(package)s AND s.service_intent <> 'terminated' AND r.driver = 'mikrotik'
ORDER BY s.id
"""


def package_secrets_requeue(*, package: Package, requested_by: str) -> int:
    """The package's profile name changed: queue a command for each of its subscribers on a MikroTik
    router, whose secret names the old profile (RADIUS groups go by package, so nothing changes there)."""
    with connection.cursor() as cursor:
        cursor.execute(_MIKROTIK_SERVED_SQL, {"package": package.pk})
        subscriber_ids = [row[0] for row in cursor.fetchall()]
    if subscriber_ids:
        from sonjog.network.enforcement import outbox_enqueue_many
        from sonjog.network.tasks import drain_outbox_soon

        outbox_enqueue_many(subscriber_ids, requested_by)
        drain_outbox_soon()
    return len(subscriber_ids)


def router_profiles_push(*, router: Router, requested_by: str) -> int:
    """Queue every profile the router must hold (a new router, one reactivated or pointed elsewhere)."""
    if not _pushable(router, sessions_only=False):
        return 0
    names = sorted(router_profiles_wanted(router))
    for name in names:
        profile_enqueue(router=router, profile=name, requested_by=requested_by)
    return len(names)


# -- running a command -------------------------------------------------------------------------------


def _lock_key(command_id: int) -> int:
    return command_id % 2**31


def _claim(command_id: int) -> bool:
    """Take one command to run, holding a session advisory lock until its outcome is recorded (the
    subscriber outbox's scheme: a running command whose lock is free belonged to a worker that died)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [PROFILE_LOCK_NAMESPACE, _lock_key(command_id)])
        row = cursor.fetchone()
        if not (row and row[0]):
            return False
        now = timezone.now()
        cursor.execute(
            """UPDATE network_profilecommand SET status = 'running', started_at = %s
               WHERE id = %s AND (status = 'running' OR (status = 'pending' AND next_attempt_at <= %s))""",
            [now, command_id, now],
        )
        if cursor.rowcount == 1:
            return True
    _release(command_id)
    return False


def _release(command_id: int) -> None:
    if connection.connection is None:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [PROFILE_LOCK_NAMESPACE, _lock_key(command_id)])
    except DatabaseError:
        logger.warning("could not release the lock of profile command %s; it goes with the session", command_id)


def profile_execute(command_id: int, *, sessions: router_io.Sessions | None = None, force: bool = False) -> str:
    """Run one profile command through its router's driver; returns its status afterwards."""
    if force:
        ProfileCommand.objects.filter(pk=command_id, status=OutboxStatus.PENDING).update(next_attempt_at=timezone.now())
    if not _claim(command_id):
        return ProfileCommand.objects.filter(pk=command_id).values_list("status", flat=True).first() or "missing"
    try:
        return _execute_claimed(command_id, sessions)
    finally:
        _release(command_id)


def _execute_claimed(command_id: int, sessions: router_io.Sessions | None) -> str:
    command = ProfileCommand.objects.select_related("router__operator").get(pk=command_id)
    router = command.router
    started = timezone.now()
    actions: list[str] = []
    error = ""
    if not _pushable(router, sessions_only=True):
        actions = ["router.not_driven"]  # deactivated or record only since it was queued
    elif command.kind == RouterCommandKind.PORTAL_REDIRECT:
        from sonjog.network.portal import portal_apply, portal_driven

        if not portal_driven(router):
            actions = ["router.not_driven"]  # RADIUS since it was queued: its NAS gets the rules by hand
        else:
            try:
                actions = portal_apply(router, sessions)
            except router_io.DriverError as failure:
                error = str(failure)
    elif router.driver == DriverKind.MIKROTIK:
        wanted = router_profiles_wanted(router).get(command.profile)
        if wanted is None:
            actions = ["profile.unused"]  # no package needs it any more; never removed
        else:
            try:
                actions = router_io.ensure_profile(router, wanted, sessions)
            except router_io.DriverError as failure:
                error = str(failure)
    else:
        actions, error = _radius_session_rates(router, command.profile)
    if error:
        _record_failure(command, started, actions, error)
        return ProfileCommand.objects.filter(pk=command.pk).values_list("status", flat=True).first() or "missing"
    finished = timezone.now()
    with transaction.atomic():
        ProfileAttempt.objects.create(
            command=command, started_at=started, finished_at=finished, ok=True, actions=actions
        )
        ProfileCommand.objects.filter(pk=command.pk).update(
            status=OutboxStatus.DONE,
            attempts=command.attempts + 1,
            completed_at=finished,
            last_error="",
            result={"actions": actions, **_answer_counts(actions)},
        )
        if router.driver == DriverKind.MIKROTIK and actions != ["router.not_driven"]:
            # The router answered: subscriber commands waiting out a retry on it (a secret refused for
            # want of this very profile, say) may go now.
            from sonjog.network.services import outbox_router_answered

            outbox_router_answered(router=router)
    return OutboxStatus.DONE.value


def _answer_counts(actions: list[str]) -> dict[str, int]:
    """How many live sessions got each answer ("coa.ack": 3, "disconnect.ack": 1, "session.kicked": 2)."""
    counts: dict[str, int] = {}
    for action in actions:
        kind = action.split(":", 1)[0]
        if kind.startswith(("coa.", "disconnect.", "session.")):
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def _record_failure(command: ProfileCommand, started: dt.datetime, actions: list[str], error: str) -> None:
    now = timezone.now()
    attempts = command.attempts + 1
    failed = attempts >= command.max_attempts
    with transaction.atomic():
        ProfileAttempt.objects.create(
            command=command, started_at=started, finished_at=now, ok=False, actions=actions, error=error[:2000]
        )
        try:
            with transaction.atomic():
                ProfileCommand.objects.filter(pk=command.pk).update(
                    status=OutboxStatus.FAILED if failed else OutboxStatus.PENDING,
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt_at=now + dt.timedelta(seconds=settings.SONJOG_OUTBOX_RETRY_SECONDS),
                )
        except IntegrityError:
            # A newer command for the same router and profile (or portal) was queued while this one ran;
            # it reads the packages (the settings) afresh, so this one steps aside.
            ProfileCommand.objects.filter(pk=command.pk).update(
                status=OutboxStatus.DONE, attempts=attempts, last_error=f"superseded after: {error}"[:2000]
            )


_SERVED_BY_SQL = """
SELECT s.id FROM customers_subscriber s
WHERE s.id = ANY(%(ids)s::bigint[])
  AND COALESCE(s.router_id, (
      SELECT zr.id FROM network_router zr JOIN network_router_zones rz ON rz.router_id = zr.id
      JOIN customers_zone z ON z.id = s.zone_id
      WHERE zr.is_active AND rz.zone_id IN (z.id, z.parent_id) ORDER BY zr.id LIMIT 1)) = %(router)s
"""


def _radius_session_rates(router: Router, profile: str) -> tuple[list[str], str]:
    """Give every live session of an active subscriber in `profile` on this RADIUS router the rate its
    RADIUS group now holds. Each session is tried even when another fails; returns the answers and
    the failures (empty when every session took its rate or is gone)."""
    packages = {
        package.pk: package
        for package in packages_held(router).filter(
            Q(router_profile=profile) | Q(fup_router_profile=profile, data_allowance_gb__isnull=False)
        )
    }
    online = (
        Subscriber.objects.filter(
            package_id__in=packages,
            service_intent=ServiceIntent.ACTIVE,
            operator__path__startswith=router.operator.path,
        )
        .filter(Exists(RadAcct.objects.filter(username=OuterRef("pppoe_username"), acctstoptime__isnull=True)))
        .order_by("pk")
    )
    candidates = {subscriber.pk: subscriber for subscriber in online}
    if not candidates:
        return [], ""
    with connection.cursor() as cursor:
        cursor.execute(_SERVED_BY_SQL, {"ids": list(candidates), "router": router.pk})
        served = sorted(row[0] for row in cursor.fetchall())
    throttled = fup_throttled_subscriber_ids(served)
    actions: list[str] = []
    errors: list[str] = []
    for subscriber_id in served:
        subscriber = candidates[subscriber_id]
        package = packages[subscriber.package_id]
        if subscriber_id in throttled and package.data_allowance_gb is not None:
            rate_limit = fup_rate_limit(package) if package.fup_router_profile == profile else None
        else:
            rate_limit = package.rate_limit if package.router_profile == profile else None
        if rate_limit is None:
            continue  # in this package, but running on its other profile
        try:
            actions.extend(router_io.change_session_rate(router, subscriber.pppoe_username, rate_limit))
        except router_io.DriverError as failure:
            errors.append(f"{subscriber.pppoe_username}: {failure}")
    return actions, "; ".join(errors)


def profiles_run_due(*, router: Router, profile: str, sessions: router_io.Sessions | None) -> None:
    """Run the due commands for this profile on this router now: a subscriber about to be put into a
    profile needs the profile there first (a new package's first subscriber)."""
    due = ProfileCommand.objects.filter(
        router=router,
        kind=RouterCommandKind.PROFILE,
        profile=profile,
        status=OutboxStatus.PENDING,
        next_attempt_at__lte=timezone.now(),
    ).values_list("pk", flat=True)
    for command_id in list(due):
        profile_execute(command_id, sessions=sessions)


def profiles_drain(*, sessions: router_io.Sessions, limit: int = 1000) -> dict[str, int]:
    """Execute every due profile command (and take over those whose worker died), router by router."""
    counts: dict[str, int] = {}
    due = list(
        ProfileCommand.objects.filter(
            Q(status=OutboxStatus.PENDING, next_attempt_at__lte=timezone.now()) | Q(status=OutboxStatus.RUNNING)
        )
        .order_by("router_id", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for command_id in due:
        status = profile_execute(command_id, sessions=sessions)
        if status != OutboxStatus.RUNNING:
            counts[status] = counts.get(status, 0) + 1
    return counts


def profiles_wake(*, router: Router) -> int:
    """The router answered: its profile commands waiting out a retry become due now."""
    now = timezone.now()
    return ProfileCommand.objects.filter(router=router, status=OutboxStatus.PENDING, next_attempt_at__gt=now).update(
        next_attempt_at=now
    )
