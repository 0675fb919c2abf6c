"""Session hygiene and response headers that every signed-in page needs, whichever app serves it."""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext

SEEN_KEY = "sonjog_seen"
AGENT_KEY = "sonjog_agent"
# The last-seen stamp is rewritten at most this often, so a busy console does not write its session
# row on every click; idle expiry is therefore exact to within this many seconds.
SEEN_REFRESH_SECONDS = 300


def _agent_digest(request: HttpRequest) -> str:
    agent = str(request.META.get("HTTP_USER_AGENT", ""))
    return hashlib.sha256(agent.encode("utf-8", "replace")).hexdigest()[:32]


def _idle_limit_seconds() -> float:
    return float(settings.SONJOG_SESSION_IDLE_HOURS) * 3600


class SessionGuardMiddleware(MiddlewareMixin):
    """Signs a session out when it was idle longer than SONJOG_SESSION_IDLE_HOURS, or when it comes
    back with a different User-Agent than it signed in with (a copied cookie used from elsewhere).
    A session is bound on the response of the request that signed it in, whichever view did that."""

    def process_request(self, request: HttpRequest) -> None:
        session = request.session
        if SESSION_KEY not in session:
            return
        now = int(time.time())
        seen = session.get(SEEN_KEY)
        bound_agent = session.get(AGENT_KEY)
        idle = isinstance(seen, int) and now - seen > _idle_limit_seconds()
        moved = bound_agent is not None and bound_agent != _agent_digest(request)
        if idle or moved:
            logout(request)
            return
        self._stamp(request, now)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session and AGENT_KEY not in session:
            self._stamp(request, int(time.time()))
        return response

    @staticmethod
    def _stamp(request: HttpRequest, now: int) -> None:
        session = request.session
        seen = session.get(SEEN_KEY)
        if not isinstance(seen, int) or now - seen >= SEEN_REFRESH_SECONDS:
            # Writing the session also moves its stored expiry (SESSION_COOKIE_AGE) forward.
            session[SEEN_KEY] = now
        if AGENT_KEY not in session:
            session[AGENT_KEY] = _agent_digest(request)


class PrivateResponseMiddleware(MiddlewareMixin):
    """Nothing shown to a signed-in session is kept by the browser or a proxy: pages, PDFs, exports
    and fragments all get `Cache-Control: no-store` (and its older companions)."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            add_never_cache_headers(response)
        return response


# -- PostgreSQL away ----------------------------------------------------------------------------

DATABASE_FAILURES = (OperationalError, InterfaceError)
# How often the "retrying" page reloads itself, and what Retry-After tells API clients.
DATABASE_RETRY_SECONDS = 5
_DATABASE_FAILED = "_sonjog_database_failed"


def _note_database_failure(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    # Django turns an exception raised by a middleware into a 500 response before it reaches the
    # middleware above; it sends this signal on the way, while the exception is still at hand.
    if request is not None and isinstance(sys.exc_info()[1], DATABASE_FAILURES):
        setattr(request, _DATABASE_FAILED, True)


def _close_broken_connections() -> None:
    # The failed connection would otherwise be kept (CONN_MAX_AGE) and fail the next request too.
    for each in connections.all(initialized_only=True):
        with contextlib.suppress(Exception):
            each.close()


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with a short page that retries (HTML), or {"error": ...} for a client asking for JSON.
    Nothing here touches the database: no session, no user, no context processors."""
    _close_broken_connections()
    language = translation.get_language_from_request(request)
    with translation.override(language):
        message = gettext("Database unavailable, retrying")
        response: HttpResponse
        if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
            response = JsonResponse({"error": message}, status=503)
        else:
            page = render_to_string(
                "core/database_unavailable.html",
                {"message": message, "retry_seconds": DATABASE_RETRY_SECONDS, "language": language},
            )
            response = HttpResponse(page, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_SECONDS)
    add_never_cache_headers(response)
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """While PostgreSQL is unreachable (down, restarting, failing over) every request that needs it
    gets a 503 "retrying" answer instead of a 500, and its broken connection is closed, so the first
    request after the database is back reconnects: no restart of the web process. Catches Django's
    OperationalError and InterfaceError raised by the view (process_exception) or by any middleware
    below this one (sessions, authentication, axes), which Django reports through
    got_request_exception before answering 500."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        got_request_exception.connect(_note_database_failure, dispatch_uid="sonjog.core.database_unavailable")

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_FAILURES):
            return database_unavailable_response(request)
        return None

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code == 500 and getattr(request, _DATABASE_FAILED, False):
            return database_unavailable_response(request)
        return response
