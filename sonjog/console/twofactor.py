"""Who must give a TOTP code at sign-in, and where a session stands with its second factor.

A login needs its code when it has a confirmed TOTP device, or when its staff role is listed in
SONJOG_REQUIRE_2FA_ROLES (then, with no device yet, it must enrol before anything else). The
decision is taken once per session and kept in it, so ordinary requests cost no extra query;
django-otp's middleware says whether this session has given its code (`user.is_verified()`).
"""

from __future__ import annotations

import enum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from sonjog.operators.models import StaffRole

SESSION_STATE_KEY = "sonjog_2fa"
SUPERUSER_ROLE = "superuser"


class SecondFactor(enum.StrEnum):
    NONE = "none"  # no code needed
    VERIFY = "verify"  # a confirmed device: the code comes after the password
    ENROL = "enrol"  # the role requires a code but there is no device yet


def required_roles() -> frozenset[str]:
    roles = frozenset(settings.SONJOG_REQUIRE_2FA_ROLES)
    unknown = roles - {*StaffRole.values, SUPERUSER_ROLE}
    if unknown:
        raise ImproperlyConfigured(
            f"SONJOG_REQUIRE_2FA_ROLES names unknown roles {sorted(unknown)}; "
            f"use {', '.join([*StaffRole.values, SUPERUSER_ROLE])}"
        )
    return roles


# The roles an operator's "require two-factor sign-in" setting covers: the logins that handle money.
OPERATOR_REQUIRED_ROLES = frozenset({StaffRole.OWNER, StaffRole.MANAGER, StaffRole.BILLING_CLERK})


def is_required(user: User) -> bool:
    """By the installation (SONJOG_REQUIRE_2FA_ROLES) or by the login's operator (its setting)."""
    roles = required_roles()
    if user.is_superuser and SUPERUSER_ROLE in roles:
        return True
    staff = getattr(user, "staff", None)
    if staff is None:
        return False
    if staff.role in roles:
        return True
    return bool(staff.operator.require_two_factor and staff.role in OPERATOR_REQUIRED_ROLES)


def confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def pending_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def state_for(user: User) -> SecondFactor:
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return SecondFactor.VERIFY
    if is_required(user):
        return SecondFactor.ENROL
    return SecondFactor.NONE


def remember(request: HttpRequest, state: SecondFactor) -> None:
    request.session[SESSION_STATE_KEY] = state.value


def session_state(request: HttpRequest, user: User | AbstractBaseUser | AnonymousUser) -> SecondFactor:
    """This session's standing, decided on its first signed-in request and remembered."""
    stored = request.session.get(SESSION_STATE_KEY)
    if isinstance(stored, str) and stored in SecondFactor._value2member_map_:
        return SecondFactor(stored)
    state = state_for(user)  # type: ignore[arg-type]
    remember(request, state)
    return state


def is_verified(user: Any) -> bool:
    """Whether this session gave its code (django-otp's middleware adds `is_verified` to the user)."""
    check = getattr(user, "is_verified", None)
    return bool(check()) if callable(check) else False


def qr_svg(text: str, module: int = 4, border: int = 4) -> str:
    """An SVG QR code of `text`, drawn with the QR encoder that ships inside reportlab (already a
    dependency for PDFs). One <path> with presentation attributes only: nothing a strict CSP blocks."""
    from reportlab.graphics.barcode import qrencoder

    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(qrencoder.QR8bitByte(text))
    code.make()
    count = code.getModuleCount()
    runs = []
    for row in range(count):
        col = 0
        while col < count:
            if code.isDark(row, col):
                start = col
                while col < count and code.isDark(row, col):
                    col += 1
                runs.append(f"M{start + border} {row + border}h{col - start}v1h-{col - start}z")
            else:
                col += 1
    size = count + 2 * border
    pixels = size * module
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="qr" viewBox="0 0 {size} {size}" width="{pixels}" '
        f'height="{pixels}" role="img" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{"".join(runs)}"/></svg>'
    )
