"""Sign-in with throttling, sign-out, "log out everywhere" and the language switch."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from sonjog.console import services
from sonjog.console.access import SESSION_EPOCH_KEY, console_view, scope_for
from sonjog.console.exceptions import ConsoleError
from sonjog.console.forms import LoginForm
from sonjog.console.models import LoginAttempt
from sonjog.console.views.common import client_ip, safe_next


def _failures(username: str, ip_address: str | None) -> tuple[int, int]:
    """Recent failures for this username from this address, and minutes until the oldest expires."""
    since = timezone.now() - services.LOGIN_WINDOW
    recent = list(
        LoginAttempt.objects.filter(
            username=username.strip().lower(), ip_address=ip_address, succeeded=False, attempted_at__gte=since
        )
        .order_by("attempted_at")
        .values_list("attempted_at", flat=True)
    )
    if not recent:
        return 0, 0
    wait = recent[0] + services.LOGIN_WINDOW - timezone.now()
    return len(recent), max(1, int(wait.total_seconds() // 60) + 1)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    form = LoginForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        ip_address = client_ip(request)
        failures, wait_minutes = _failures(username, ip_address)
        if failures >= services.LOGIN_FAILURE_LIMIT:
            error = ngettext(
                "Too many failed sign-ins for this username. Try again in %(minutes)d minute.",
                "Too many failed sign-ins for this username. Try again in %(minutes)d minutes.",
                wait_minutes,
            ) % {"minutes": wait_minutes}
            status = 429
        else:
            user = authenticate(request, username=username, password=form.cleaned_data["password"])
            if user is None or scope_for(user) is None:  # type: ignore[arg-type]
                services.login_attempt_record(username=username, ip_address=ip_address, succeeded=False)
                error = _("Wrong username or password.")
            else:
                services.login_attempt_record(username=username, ip_address=ip_address, succeeded=True)
                login(request, user)
                profile = services.console_profile_ensure(user=user)  # type: ignore[arg-type]
                request.session[SESSION_EPOCH_KEY] = profile.session_epoch
                response = HttpResponseRedirect(safe_next(request, reverse("console:dashboard")))
                _remember_language(response, profile.language)
                return response
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    return render(request, "console/login.html", {"form": form, "error": error, "next": next_url}, status=status)


def _remember_language(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect(reverse("console:login"))


@require_POST
@console_view()
def logout_everywhere_view(request: HttpRequest) -> HttpResponse:
    services.sessions_revoke_all(user=request.user)  # type: ignore[arg-type]
    logout(request)
    messages.info(request, _("You were signed out on every device."))
    return HttpResponseRedirect(reverse("console:login"))


@require_POST
@console_view()
def language_view(request: HttpRequest) -> HttpResponse:
    language = request.POST.get("language", "")
    try:
        profile = services.language_set(user=request.user, language=language)  # type: ignore[arg-type]
    except ConsoleError:
        return HttpResponse(status=400)
    # The profile may have just been created: this (already verified) session belongs to its epoch.
    request.session[SESSION_EPOCH_KEY] = profile.session_epoch
    translation.activate(profile.language)
    response = HttpResponseRedirect(safe_next(request, reverse("console:dashboard")))
    _remember_language(response, profile.language)
    return response
