"""Sign-in (password, then a TOTP code where the login has or needs one), the lockout page shared by
every sign-in path, sign-out, "log out everywhere" and the language switch.

Failed sign-ins are counted by django-axes: its backend refuses a locked-out (username, address)
before the password is checked, and its middleware swaps whatever page the view drew for
`lockout_response` once the limit is reached, on the console's login, the admin's and any other."""

from __future__ import annotations

import datetime as dt
import math
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from sonjog.console import services, twofactor
from sonjog.console.access import SESSION_EPOCH_KEY, console_view, scope_for
from sonjog.console.exceptions import ConsoleError
from sonjog.console.forms import LoginForm
from sonjog.console.landing import landing_url
from sonjog.console.twofactor import SecondFactor
from sonjog.console.twofactor_forms import CodeForm
from sonjog.console.views.common import page, safe_next


def _login_page(request: HttpRequest, form: LoginForm, error: str, status: int = 200) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    return render(request, "console/login.html", {"form": form, "error": error, "next": next_url}, status=status)


def _with_next(url_name: str, target: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': target})}"


def _count_failure(request: HttpRequest, username: str) -> None:
    """A refused sign-in that django.contrib.auth.authenticate did not itself report (a valid password
    for a login with no console access, a wrong second-factor code) counts towards the same lockout."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if user is not None and scope_for(user) is None:  # type: ignore[arg-type]
            _count_failure(request, username)
            user = None
        if user is None:
            error = _("Wrong username or password.")
        else:
            return _signed_in(request, user)  # type: ignore[arg-type]
    return _login_page(request, form, error)


def _signed_in(request: HttpRequest, user: User) -> HttpResponse:
    login(request, user)
    profile = services.console_profile_ensure(user=user)
    request.session[SESSION_EPOCH_KEY] = profile.session_epoch
    state = twofactor.state_for(user)
    twofactor.remember(request, state)
    # Each role lands where its work is; a "next" of the site's front page (where an unsigned visitor
    # is sent from) is no reason to land elsewhere.
    landing = landing_url(user)
    target = safe_next(request, landing)
    if target == reverse("console:dashboard"):
        target = landing
    if state is SecondFactor.VERIFY:
        target = _with_next("console:two_factor_verify", target)
    elif state is SecondFactor.ENROL:
        target = _with_next("console:two_factor", target)
    response = HttpResponseRedirect(target)
    _remember_language(response, profile.language)
    return response


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def two_factor_verify_view(request: HttpRequest) -> HttpResponse:
    """The second step: the password was right, now the code from the authenticator app."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("console:login"))
    target = safe_next(request, reverse("console:dashboard"))
    state = twofactor.session_state(request, request.user)
    if twofactor.is_verified(request.user) or state is SecondFactor.NONE:
        return HttpResponseRedirect(target)
    if state is SecondFactor.ENROL:
        return HttpResponseRedirect(_with_next("console:two_factor", target))
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        device = services.two_factor_check(user=request.user, code=form.cleaned_data["code"])  # type: ignore[arg-type]
        if device is not None:
            otp_login(request, device)
            # A new session key once both factors are in: nothing seen before this point carries over.
            request.session.cycle_key()
            return HttpResponseRedirect(target)
        form.add_error("code", _("That code is not right. Wait for the next code in the app and try again."))
        status = 422
        _count_failure(request, request.user.get_username())
        if getattr(request, "axes_locked_out", False):
            # Too many wrong codes: the half-signed-in session ends and the lockout page follows.
            logout(request)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    return render(request, "console/two_factor_verify.html", {"form": form, "next": next_url}, status=status)


@sensitive_post_parameters("code")
@console_view()
def two_factor_view(request: HttpRequest) -> HttpResponse:
    """Turn two-factor sign-in on (scan the key, confirm a code) or off (with a current code)."""
    user: User = request.user  # type: ignore[assignment]
    device = twofactor.confirmed_device(user)
    required = twofactor.is_required(user)
    form = CodeForm(request.POST if request.method == "POST" and "code" in request.POST else None)
    here = request.get_full_path()
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "start" and device is None:
            services.two_factor_enrol_start(user=user)
            return HttpResponseRedirect(here)
        if action == "enable" and device is None and form.is_valid():
            try:
                device = services.two_factor_confirm(user=user, code=form.cleaned_data["code"])
            except ConsoleError:
                form.add_error("code", _("That code does not match. Check the app's clock and try the next code."))
            else:
                otp_login(request, device)
                twofactor.remember(request, SecondFactor.VERIFY)
                messages.success(request, _("Two-factor sign-in is on. Sign-ins now ask for a code from the app."))
                return HttpResponseRedirect(safe_next(request, reverse("console:two_factor")))
        if action == "disable" and device is not None and form.is_valid():
            if required:
                form.add_error("code", _("Your role requires two-factor sign-in; it cannot be turned off."))
            else:
                try:
                    services.two_factor_disable(user=user, code=form.cleaned_data["code"])
                except ConsoleError:
                    form.add_error(
                        "code", _("That code is not right. Wait for the next code in the app and try again.")
                    )
                else:
                    twofactor.remember(request, twofactor.state_for(user))
                    messages.success(request, _("Two-factor sign-in is off."))
                    return HttpResponseRedirect(reverse("console:two_factor"))
    pending = None if device is not None else twofactor.pending_device(user)
    context = {
        "device": device,
        "pending": pending,
        "required": required,
        "form": form,
        "next": request.POST.get("next") or request.GET.get("next") or "",
    }
    if pending is not None:
        context["otpauth_uri"] = pending.config_url
        context["secret"] = _grouped_secret(pending.config_url)
        context["qr"] = twofactor.qr_svg(pending.config_url)
    status = 422 if form.is_bound and form.errors else 200
    return page(request, "console/two_factor.html", context, status=status)


def _grouped_secret(otpauth_uri: str) -> str:
    """The base32 key from the otpauth URI, in groups of four, for typing into an app by hand."""
    from urllib.parse import parse_qs, urlparse

    secret = parse_qs(urlparse(otpauth_uri).query).get("secret", [""])[0]
    return " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))


def _lockout_wait(request: HttpRequest, credentials: dict[str, object] | None) -> dt.timedelta:
    """How long until the lock on this (username, address) lifts: the cool-off counted from the last
    failure that django-axes recorded for each locked combination."""
    from axes.handlers.proxy import AxesProxyHandler
    from axes.helpers import get_cool_off, get_failure_limit

    AxesProxyHandler.update_request(request)
    cool_off = get_cool_off(request) or dt.timedelta(0)
    limit = get_failure_limit(request, credentials)
    until = None
    for attempts in AxesProxyHandler.get_implementation().get_user_attempts(request, credentials):
        figures = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        if (figures["failures"] or 0) >= limit and figures["last"] is not None:
            ends = figures["last"] + cool_off
            until = ends if until is None else max(until, ends)
    if until is None:
        return cool_off
    return max(until - timezone.now(), dt.timedelta(seconds=1))


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponseBase | None = None,
    credentials: dict[str, object] | None = None,
) -> HttpResponse:
    """django-axes' lockout page (AXES_LOCKOUT_CALLABLE), in the visitor's language, naming when to
    try again: the console's sign-in page for console paths, JSON for API clients, and a small page
    of its own for the admin and anything else."""
    wait = _lockout_wait(request, credentials)
    seconds = max(1, math.ceil(wait.total_seconds()))
    minutes = max(1, math.ceil(seconds / 60))
    message = ngettext(
        "Too many failed sign-ins for this username. Try again in %(minutes)d minute.",
        "Too many failed sign-ins for this username. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    status = int(getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429))
    accept = request.headers.get("Accept", "")
    match = getattr(request, "resolver_match", None)
    response: HttpResponse
    if "application/json" in accept and "text/html" not in accept:
        response = JsonResponse({"detail": message, "retry_after": seconds}, status=status)
    elif match is not None and match.view_name.startswith("console:"):
        username = (credentials or {}).get("username") or request.POST.get("username", "")
        form = LoginForm(initial={"username": username})
        response = _login_page(request, form, message, status=status)
    else:
        response = render(
            request, "console/locked_out.html", {"error": message, "retry_url": request.path}, status=status
        )
    response["Retry-After"] = str(seconds)
    add_never_cache_headers(response)
    return response


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
