"""The 403, 404 and 500 pages: inside the console's frame (menu, sign-out) for a signed-in login, a
bare page otherwise. The 500 page reads nothing new from the database: it uses the login and scope
the failed request had already loaded, and falls back to the bare page if even that fails."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.functional import empty

from sonjog.console.access import Scope, enter_console

logger = logging.getLogger(__name__)


def _signed_in_scope(request: HttpRequest) -> Scope | None:
    """The console scope of a signed-in login (loading it if the failing view had not), else None."""
    scope = getattr(request, "scope", None)
    if scope is not None:
        return scope  # type: ignore[no-any-return]
    if not request.user.is_authenticated:
        return None
    try:
        entered = enter_console(request)
    except Exception:  # no operator, a broken session: the bare page says it all the same
        return None
    return entered if isinstance(entered, Scope) else None


def _render(
    request: HttpRequest, template: str, status: int, scope: Scope | None, extra: dict[str, Any]
) -> HttpResponse:
    context = {"scope": scope, "in_console": scope is not None, **extra}
    return HttpResponse(loader.render_to_string(template, context, request), status=status)


def permission_denied_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render(request, "403.html", 403, _signed_in_scope(request), {})


def page_not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render(request, "404.html", 404, _signed_in_scope(request), {})


def server_error_view(request: HttpRequest) -> HttpResponse:
    # Only what the request already holds: a login not yet loaded stays unloaded (no query), and
    # the menu's permission checks use the permission cache the failed view's own checks filled.
    user = request.__dict__.get("user")
    loaded = user is not None and getattr(user, "_wrapped", None) is not empty
    scope = getattr(request, "scope", None) if user is not None and loaded and user.is_authenticated else None
    try:
        return _render(request, "500.html", 500, scope, {})
    except Exception:
        logger.exception("the 500 page itself failed; answering with the bare one")
        return HttpResponse(loader.render_to_string("500.html", {"in_console": False}), status=500)
