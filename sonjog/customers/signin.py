"""One-time sign-in codes for the subscriber portal, and the portal's sign-out epoch.

A code is six digits from `secrets`; only a keyed hash of it is stored (HMAC with the installation's
secret key and the subscriber's id), so a copy of the database does not let anyone try the million
codes offline. Issuing is rate-limited per subscriber (an SMS costs the operator money, and a flood of
them is a nuisance to the subscriber); checking is single use, refuses an expired code, and burns the
code at the CODE_ATTEMPTS-th wrong try. Both lock a row first, so two requests at once behave as one
after the other: two checks of one code cannot both succeed, two issues cannot both pass the limit.

Sending the code is not done here (customers does not know notifications): `sonjog.flows.portal`
issues the code and queues the SMS in one transaction.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets

from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac

from sonjog.customers.exceptions import SignInCodeRateLimited
from sonjog.customers.models import PortalAccess, SignInCode, Subscriber

CODE_DIGITS = 6
CODE_LIFETIME = dt.timedelta(minutes=10)
# The wrong try that burns a code: five mistakes are forgiven, the sixth ends the code.
CODE_ATTEMPTS = 6
# At most one code per ISSUE_SPACING, and ISSUE_PER_WINDOW codes per ISSUE_WINDOW, per subscriber.
ISSUE_SPACING = dt.timedelta(seconds=60)
ISSUE_WINDOW = dt.timedelta(hours=1)
ISSUE_PER_WINDOW = 5

_HASH_PURPOSE = "sonjog.customers.signin.code"


def _code_hash(subscriber_id: int, code: str) -> str:
    return salted_hmac(_HASH_PURPOSE, f"{subscriber_id}:{code}", algorithm="sha256").hexdigest()


def _access_lock(subscriber_id: int) -> PortalAccess:
    """The subscriber's portal row, created on first use, locked until the transaction ends. Not the
    subscriber's own lock (`customers.locks`): signing in must not queue behind a billing run."""
    PortalAccess.objects.get_or_create(subscriber_id=subscriber_id)
    return PortalAccess.objects.select_for_update().get(subscriber_id=subscriber_id)


def _wait_seconds(until: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def signin_code_issue(*, subscriber: Subscriber, now: dt.datetime) -> str:
    """A new code for the subscriber (returned in clear for the caller to send, never stored), valid for
    CODE_LIFETIME from `now`; SignInCodeRateLimited with the wait when one was issued within the last
    minute or five within the last hour."""
    with transaction.atomic():
        _access_lock(subscriber.pk)
        recent = list(
            SignInCode.objects.filter(subscriber_id=subscriber.pk, created_at__gt=now - ISSUE_WINDOW)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[:ISSUE_PER_WINDOW]
        )
        waits = []
        if recent and recent[0] > now - ISSUE_SPACING:
            waits.append(recent[0] + ISSUE_SPACING)
        if len(recent) >= ISSUE_PER_WINDOW:
            # The oldest of the last five leaves the hour first and makes room for the next.
            waits.append(recent[ISSUE_PER_WINDOW - 1] + ISSUE_WINDOW)
        if waits:
            wait = _wait_seconds(max(waits), now)
            raise SignInCodeRateLimited(f"a sign-in code was sent recently; wait {wait} seconds", wait_seconds=wait)
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        SignInCode.objects.create(
            subscriber_id=subscriber.pk,
            code_hash=_code_hash(subscriber.pk, code),
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    return code


def signin_code_check(*, subscriber: Subscriber, code: str, now: dt.datetime) -> bool:
    """Whether `code` is the subscriber's newest code, unused, unexpired and not burned; a right code is
    used up by this call, a wrong one counts towards CODE_ATTEMPTS. The code row is locked for the
    check, so of two checks at once with the right code exactly one succeeds."""
    with transaction.atomic():
        latest = (
            SignInCode.objects.select_for_update().filter(subscriber_id=subscriber.pk).order_by("-created_at", "-id")
        )
        row = latest.first()
        if row is None or row.used_at is not None or row.attempts >= CODE_ATTEMPTS or now >= row.expires_at:
            return False
        given = "".join(code.split())
        if constant_time_compare(_code_hash(subscriber.pk, given), row.code_hash):
            row.used_at = now
            row.save(update_fields=["used_at"])
            return True
        row.attempts += 1
        row.save(update_fields=["attempts"])
        return False


def portal_epoch(subscriber_id: int) -> int:
    """The epoch the subscriber's portal sessions must carry (0 until the first "sign out everywhere")."""
    found = PortalAccess.objects.filter(subscriber_id=subscriber_id).values_list("epoch", flat=True).first()
    return found or 0


def portal_sign_out_everywhere(*, subscriber: Subscriber) -> int:
    """End every portal session of the subscriber by raising its epoch; returns the new epoch."""
    with transaction.atomic():
        access = _access_lock(subscriber.pk)
        access.epoch += 1
        access.save(update_fields=["epoch", "updated_at"])
    return access.epoch
