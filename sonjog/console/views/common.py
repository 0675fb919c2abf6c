"""Small helpers shared by the console views."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from sonjog.billing.terms import operator_today
from sonjog.console.access import Scope, scope_of
from sonjog.core.bounds import page_number

PER_PAGE = 50


def today_for(scope: Scope) -> dt.date:
    return operator_today(scope.home)


def page_of(request: HttpRequest, rows: Any, per_page: int = PER_PAGE, count: int | None = None) -> Page:
    """The page of `rows` that ?page= asks for, clamped to 1..the last page whatever it says."""
    paginator = Paginator(rows, per_page)
    if count is not None:
        # The caller already knows the total (or a cheaper way to get it).
        paginator.count = count  # type: ignore[misc]
    return paginator.page(page_number(request.GET.get("page"), paginator.num_pages))


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    scope = scope_of(request)
    context.setdefault("scope", scope)
    context.setdefault("today", today_for(scope))
    return render(request, template, context, status=status)


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a trusted proxy rewrote it
    # (run uvicorn with --proxy-headers --forwarded-allow-ips behind nginx to get real addresses).
    return request.META.get("REMOTE_ADDR") or None
