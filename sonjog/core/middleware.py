"""Session hygiene and response headers that every signed-in page needs, whichever app serves it."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers
from django.utils.deprecation import MiddlewareMixin

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
