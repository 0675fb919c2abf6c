"""Who is on the other end of a request: the client's address, for the sign-in throttle and logs."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _meta_name(header: str) -> str:
    """`X-Forwarded-For`, `HTTP_X_FORWARDED_FOR` and `x_forwarded_for` all name the same META key."""
    name = header.strip().upper().replace("-", "_")
    if name in {"REMOTE_ADDR"} or name.startswith("HTTP_"):
        return name
    return f"HTTP_{name}"


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, unless SONJOG_TRUSTED_PROXY_HEADER names a header that the
    reverse proxy in front of Sonjog sets. Of a list such as X-Forwarded-For the last entry counts: it
    is the one that proxy appended; earlier entries are whatever the client chose to send. A missing or
    malformed header falls back to REMOTE_ADDR rather than to nothing."""
    remote = request.META.get("REMOTE_ADDR") or None
    header = getattr(settings, "SONJOG_TRUSTED_PROXY_HEADER", "")
    if not header:
        return remote
    raw = str(request.META.get(_meta_name(header), "")).strip()
    if not raw:
        return remote
    return _valid(raw.split(",")[-1]) or remote
