"""What the subscriber portal asks of the apps below it: a sign-in code sent by SMS, and a request for a
package or add-on change written down for staff.

A code is issued (customers) and its SMS queued (notifications) in one transaction: when no SMS can be
queued (the operator has no SMS account, the subscriber no number that takes one) the code is not kept
either, so it neither counts against the subscriber's rate limit nor waits unseen.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sonjog.catalog.models import AddOn, Package
from sonjog.core.audit import audit
from sonjog.customers.exceptions import SignInCodeNotSent, SubscriberError
from sonjog.customers.models import Subscriber, SubscriberAddOn
from sonjog.customers.signin import signin_code_issue
from sonjog.notifications.models import Channel, Event
from sonjog.notifications.services import notify_event
from sonjog.operators.dates import operator_today

CHANGE_REQUEST_ACTION = "portal.change_request"


def portal_code_send(*, subscriber: Subscriber, now: dt.datetime | None = None) -> None:
    """Issue a sign-in code and queue it to the subscriber by SMS, in the subscriber's language (the
    operator's wording for the one-time-code event). SignInCodeRateLimited when one was sent too
    recently; SignInCodeNotSent when no SMS could be queued (then nothing is issued)."""
    with transaction.atomic():
        code = signin_code_issue(subscriber=subscriber, now=now or timezone.now())
        queued = notify_event(subscriber=subscriber, event=Event.OTP, context={"otp": code}, channels=[Channel.SMS])
        if not queued:
            raise SignInCodeNotSent(f"no SMS could be queued for {subscriber.customer_id}")


def portal_change_request(
    *,
    subscriber: Subscriber,
    package: Package | None = None,
    addon_start: AddOn | None = None,
    addon_stop: AddOn | None = None,
    note: str = "",
) -> None:
    """Write down a subscriber's request for another package or an add-on on or off, for staff to act
    on: an audit event on the subscriber (`portal.change_request`), which the console's profile lists
    with its other events. Nothing changes until staff make the change through the usual flows."""
    note = note.strip()
    if package is None and addon_start is None and addon_stop is None and not note:
        raise SubscriberError("say what you would like changed")
    if package is not None and (package.operator_id != subscriber.operator_id or not package.is_active):
        raise SubscriberError(f"package '{package}' is not on offer")
    if package is not None and package.pk == subscriber.package_id:
        raise SubscriberError(f"{subscriber.customer_id} is already on '{package}'")
    if addon_start is not None and (addon_start.operator_id != subscriber.operator_id or not addon_start.is_active):
        raise SubscriberError(f"add-on '{addon_start}' is not on offer")
    today = operator_today(subscriber.operator)
    running = SubscriberAddOn.objects.filter(subscriber_id=subscriber.pk, start_date__lte=today).filter(
        Q(end_date__isnull=True) | Q(end_date__gt=today)
    )
    if addon_stop is not None and not running.filter(addon_id=addon_stop.pk).exists():
        raise SubscriberError(f"add-on '{addon_stop}' is not running for {subscriber.customer_id}")
    with transaction.atomic():
        audit(
            operator=subscriber.operator,
            action=CHANGE_REQUEST_ACTION,
            subscriber=subscriber,
            package=package.name if package is not None else None,
            package_id=package.pk if package is not None else None,
            addon_start=addon_start.name if addon_start is not None else None,
            addon_start_id=addon_start.pk if addon_start is not None else None,
            addon_stop=addon_stop.name if addon_stop is not None else None,
            addon_stop_id=addon_stop.pk if addon_stop is not None else None,
            note=note,
        )
