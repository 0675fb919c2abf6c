"""Writes the console owns: sign-in bookkeeping, per-login settings, bulk actions, router connection
tests. Domain writes are not here: the console calls the catalog, customers, billing, network and
flows services for those."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from sonjog.catalog.models import Package
from sonjog.console import twofactor
from sonjog.console.exceptions import ConsoleError
from sonjog.console.models import BulkAction, ClosedPeriodChange, ConsoleProfile, new_session_epoch
from sonjog.core.audit import audit
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.subscribers import subscriber_change_package, subscriber_set_intent
from sonjog.operators.models import Operator

logger = logging.getLogger(__name__)


# -- sign-in --------------------------------------------------------------------------------------
# Failed sign-ins are counted by django-axes (settings AXES_*), for every path that authenticates.


def signin_log_prune(*, older_than_days: int = 30) -> int:
    """Drop django-axes' record of successful sign-ins and sign-outs older than the given age; its
    failure counters expire by themselves after the cool-off."""
    from axes.handlers.proxy import AxesProxyHandler

    return int(AxesProxyHandler.reset_logs(age_days=older_than_days))


def two_factor_enrol_start(*, user: User) -> TOTPDevice:
    """The device being set up: the unconfirmed one from an earlier visit (its key may already be in
    the authenticator app), or a new one with a fresh random key."""
    if twofactor.confirmed_device(user) is not None:
        raise ConsoleError("two-factor sign-in is already on for this login")
    device = twofactor.pending_device(user)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Sonjog console", confirmed=False)
    return device


def two_factor_confirm(*, user: User, code: str) -> TOTPDevice:
    """Turn two-factor sign-in on once the authenticator app shows a code that matches the key."""
    with transaction.atomic():
        device = twofactor.pending_device(user)
        if device is None:
            raise ConsoleError("no two-factor set-up is in progress for this login")
        if not device.verify_token(code.strip()):
            raise ConsoleError("the code does not match")
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        _audit_login(user, "two_factor.enable")
    return device


def two_factor_check(*, user: User, code: str) -> TOTPDevice | None:
    """The confirmed device that accepts this code, or None. A match is remembered by the device, so
    the same code is never accepted twice; misses slow further tries (django-otp's throttle)."""
    device = twofactor.confirmed_device(user)
    if device is None:
        return None
    with transaction.atomic():
        return device if device.verify_token(code.strip()) else None


def two_factor_disable(*, user: User, code: str) -> None:
    """Turn two-factor sign-in off: needs a current code, and is refused where the role requires it."""
    if twofactor.is_required(user):
        raise ConsoleError("this login's role requires two-factor sign-in")
    if two_factor_check(user=user, code=code) is None:
        raise ConsoleError("the code does not match")
    TOTPDevice.objects.filter(user=user).delete()
    _audit_login(user, "two_factor.disable")


def _audit_login(user: User, action: str) -> None:
    # The audit log is per operator; a superuser without a staff record has none to write into.
    staff = getattr(user, "staff", None)
    if staff is not None:
        audit(operator=staff.operator, action=action, actor=user, login=user.get_username())


def closed_period_changes_prune(*, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Drop change records no cached figure can still depend on: cached closed-period sums live an
    hour (selectors.CLOSED_CACHE_SECONDS), so a day-old record is past every entry's lifetime."""
    deleted, _ = ClosedPeriodChange.objects.filter(recorded_at__lt=timezone.now() - older_than).delete()
    return deleted


def console_profile_ensure(*, user: User) -> ConsoleProfile:
    profile, _created = ConsoleProfile.objects.get_or_create(user=user)
    return profile


def language_set(*, user: User, language: str) -> ConsoleProfile:
    if language not in {code for code, _name in settings.LANGUAGES}:
        raise ConsoleError(f"unknown language '{language}'")
    profile = console_profile_ensure(user=user)
    if profile.language != language:
        ConsoleProfile.objects.filter(pk=profile.pk).update(language=language)
        profile.language = language
    return profile


def sessions_revoke_all(*, user: User) -> ConsoleProfile:
    """Log out everywhere: a new epoch makes every console session opened under the old one invalid,
    and the login's stored sessions are deleted too, so the Django admin forgets it as well."""
    profile = console_profile_ensure(user=user)
    profile.session_epoch = new_session_epoch()
    ConsoleProfile.objects.filter(pk=profile.pk).update(session_epoch=profile.session_epoch)
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session

        # Session rows do not index their user; decoding the live ones is fine for a rare action.
        doomed = [
            session.pk
            for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator(chunk_size=1000)
            if session.get_decoded().get("_auth_user_id") == str(user.pk)
        ]
        Session.objects.filter(pk__in=doomed).delete()
    return profile


# -- network --------------------------------------------------------------------------------------


# -- bulk actions ---------------------------------------------------------------------------------


def bulk_action_start(
    *,
    operator: Operator,
    kind: str,
    subscriber_ids: list[int],
    actor: User | None,
    package: Package | None = None,
    message: str = "",
) -> BulkAction:
    """Record the action and queue its job in the same transaction: a committed action always has its
    job, a rolled-back one never runs."""
    if kind not in BulkAction.Kind.values:
        raise ConsoleError(f"unknown bulk action '{kind}'")
    ids = sorted(set(subscriber_ids))
    if not ids:
        raise ConsoleError("choose at least one subscriber")
    if kind == BulkAction.Kind.CHANGE_PACKAGE and package is None:
        raise ConsoleError("choose the package to move them to")
    if kind == BulkAction.Kind.SMS:
        raise ConsoleError("send SMS from Messaging, Bulk SMS: it shows the count and the cost first")
    from sonjog.console.tasks import run_bulk_action

    with transaction.atomic():
        action = BulkAction.objects.create(
            operator=operator,
            actor=actor,
            kind=kind,
            subscriber_ids=ids,
            package=package,
            message=message.strip(),
            total=len(ids),
        )
        run_bulk_action.defer(action_id=action.pk)
    return action


def bulk_action_run(action_id: int, *, step: int = 25) -> BulkAction:
    """Apply the action subscriber by subscriber, each in its own transaction through the subscriber
    services, moving `done` after every `step` so the progress bar moves. One subscriber's refusal
    (a VIP cannot be suspended, a terminated one cannot be moved) is recorded and the rest go on."""
    action = BulkAction.objects.select_related("package", "actor").get(pk=action_id)
    if action.finished:
        return action
    BulkAction.objects.filter(pk=action.pk).update(status=BulkAction.Status.RUNNING)
    if action.kind == BulkAction.Kind.SMS:
        # Requests recorded before bulk SMS had its own page stay records; new ones are refused above.
        BulkAction.objects.filter(pk=action.pk).update(
            status=BulkAction.Status.RECORDED, done=action.total, finished_at=timezone.now()
        )
        action.refresh_from_db()
        return action
    failed = 0
    errors: list[dict[str, str]] = []
    pending = 0
    subscribers = Subscriber.objects.filter(pk__in=action.subscriber_ids).order_by("pk")
    for done, subscriber in enumerate(subscribers.iterator(chunk_size=500), start=1):
        try:
            if action.kind == BulkAction.Kind.SUSPEND:
                subscriber_set_intent(
                    subscriber=subscriber, intent=ServiceIntent.SUSPENDED, reason="bulk suspend", actor=action.actor
                )
            elif action.kind == BulkAction.Kind.REACTIVATE:
                subscriber_set_intent(
                    subscriber=subscriber, intent=ServiceIntent.ACTIVE, reason="bulk reactivate", actor=action.actor
                )
            elif action.kind == BulkAction.Kind.CHANGE_PACKAGE:
                assert action.package is not None
                if subscriber.package_id != action.package.pk:
                    subscriber_change_package(subscriber=subscriber, package=action.package, actor=action.actor)
        except Exception as error:  # one subscriber's refusal must not stop the rest
            failed += 1
            errors.append({"subscriber": subscriber.customer_id, "error": str(error)})
            logger.info("bulk action %s: %s refused: %s", action.pk, subscriber.customer_id, error)
        pending += 1
        if pending >= step:
            BulkAction.objects.filter(pk=action.pk).update(done=done, failed=failed, errors=errors[:500])
            pending = 0
    # Subscribers deleted since the action was queued count as done: there is nothing left to change.
    BulkAction.objects.filter(pk=action.pk).update(
        status=BulkAction.Status.DONE, done=action.total, failed=failed, errors=errors[:500], finished_at=timezone.now()
    )
    action.refresh_from_db()
    return action
