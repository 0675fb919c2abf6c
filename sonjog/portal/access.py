"""Who is signed in to the portal, and the rows they may see.

The portal has no Django users: a session is signed in as one subscriber by keeping the subscriber's
id and the portal epoch it signed in under (`sonjog.customers.signin.portal_epoch`). Every portal view
is wrapped in `portal_view`, which takes the subscriber from the session and nowhere else, and ends
the session when the epoch moved on ("sign out on every device"), the operator was deactivated, the
session sat idle longer than SONJOG_SESSION_IDLE_HOURS, it came back with another browser (user
agent), or, for a session signed in with the PPPoE password, that password was changed since. Rows
named by an id in the URL are fetched through `own_or_404`, inside the subscriber's own rows, so
another subscriber's invoice is exactly as missing as one that does not exist.

The keys live beside anything else in the session (a staff login in the same browser keeps its own),
and signing in or out of the portal touches only them, with a new session key each time.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import salted_hmac

from sonjog.customers.models import Subscriber
from sonjog.customers.signin import portal_epoch

M = TypeVar("M", bound=Model)

SUBSCRIBER_KEY = "portal_subscriber"
EPOCH_KEY = "portal_epoch"
SEEN_KEY = "portal_seen"
AGENT_KEY = "portal_agent"
PPPOE_KEY = "portal_pppoe"
# The sign-in in progress: the subscriber a code was sent to, or the subscribers a phone matched.
PENDING_KEY = "portal_pending"
CHOICES_KEY = "portal_choices"
PORTAL_KEYS = (SUBSCRIBER_KEY, EPOCH_KEY, SEEN_KEY, AGENT_KEY, PPPOE_KEY, PENDING_KEY, CHOICES_KEY)
# The last-seen stamp is rewritten at most this often, so browsing does not write the session each click.
SEEN_REFRESH_SECONDS = 300


def _agent_digest(request: HttpRequest) -> str:
    agent = str(request.META.get("HTTP_USER_AGENT", ""))
    return hashlib.sha256(agent.encode("utf-8", "replace")).hexdigest()[:32]


def _password_digest(password: str) -> str:
    # Keyed, so the session table does not hold anything that confirms a guessed password.
    return salted_hmac("sonjog.portal.pppoe", password, algorithm="sha256").hexdigest()[:32]


def portal_sign_in(request: HttpRequest, subscriber: Subscriber, *, pppoe_password: str | None = None) -> None:
    """Sign the session in as `subscriber`, under its current epoch, with a new session key."""
    session = request.session
    for key in PORTAL_KEYS:
        session.pop(key, None)
    session.cycle_key()
    session[SUBSCRIBER_KEY] = subscriber.pk
    session[EPOCH_KEY] = portal_epoch(subscriber.pk)
    session[SEEN_KEY] = int(time.time())
    session[AGENT_KEY] = _agent_digest(request)
    if pppoe_password is not None:
        session[PPPOE_KEY] = _password_digest(pppoe_password)


def portal_sign_out(request: HttpRequest) -> None:
    session = request.session
    if any(key in session for key in PORTAL_KEYS):
        for key in PORTAL_KEYS:
            session.pop(key, None)
        session.cycle_key()


def signed_in_subscriber(request: HttpRequest) -> Subscriber | None:
    """The subscriber this session is signed in as, with its operator and package; None (and the portal
    keys gone) when it is not, or no longer may be."""
    session = request.session
    subscriber_id = session.get(SUBSCRIBER_KEY)
    if not isinstance(subscriber_id, int):
        return None
    subscriber = Subscriber.objects.select_related("operator", "package").filter(pk=subscriber_id).first()
    now = int(time.time())
    seen = session.get(SEEN_KEY)
    idle = not isinstance(seen, int) or now - seen > float(settings.SONJOG_SESSION_IDLE_HOURS) * 3600
    if (
        subscriber is None
        or not subscriber.operator.is_active
        or idle
        or session.get(EPOCH_KEY) != portal_epoch(subscriber.pk)
        or session.get(AGENT_KEY) != _agent_digest(request)
        or (PPPOE_KEY in session and session[PPPOE_KEY] != _password_digest(subscriber.pppoe_password))
    ):
        portal_sign_out(request)
        return None
    if isinstance(seen, int) and now - seen >= SEEN_REFRESH_SECONDS:
        session[SEEN_KEY] = now
    return subscriber


def signin_redirect(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(reverse("portal:signin"))


ViewFunction = TypeVar("ViewFunction", bound=Callable[..., HttpResponseBase])


def portal_view(view: ViewFunction) -> ViewFunction:
    """A page for a signed-in subscriber: `request.subscriber` is set, the operator's time zone is on
    while the page is drawn, and nothing of it is kept by a browser or proxy cache."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        subscriber = signed_in_subscriber(request)
        if subscriber is None:
            response: HttpResponseBase = signin_redirect(request)
        else:
            request.subscriber = subscriber  # type: ignore[attr-defined]
            with timezone.override(ZoneInfo(subscriber.operator.time_zone)):
                response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    return wrapper  # type: ignore[return-value]


def subscriber_of(request: HttpRequest) -> Subscriber:
    subscriber: Subscriber = request.subscriber  # type: ignore[attr-defined]
    return subscriber


def own_or_404(queryset: QuerySet[M], subscriber: Subscriber, subscriber_field: str = "subscriber", **lookup: Any) -> M:
    """The row matching `lookup` among the subscriber's own rows (`subscriber_field` names the path to
    the subscriber; the row's own `operator` must be the subscriber's too), else 404: another
    subscriber's row, of this operator or any other, is indistinguishable from a missing one."""
    rows = queryset.filter(**{f"{subscriber_field}_id": subscriber.pk, "operator_id": subscriber.operator_id})
    try:
        return rows.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):  # type: ignore[attr-defined]
        raise Http404 from None
