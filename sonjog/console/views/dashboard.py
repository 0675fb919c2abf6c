"""The dashboard: figures for the acting operator's subtree, each card a link to the list behind it,
kept current by Server-Sent Events fed from PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sonjog.billing.selectors import addon_revenue_by_period, float_summary, floats_low
from sonjog.console import charts, formatting, selectors
from sonjog.console.access import Scope, console_view, enter_console, scope_of
from sonjog.console.landing import landing_url
from sonjog.console.views.common import page, today_for
from sonjog.core.money import ZERO
from sonjog.gateways.selectors import ATTENTION, seen_not_applied_count
from sonjog.operators.models import BillingMode

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "sonjog_dashboard"
KEEPALIVE_SECONDS = 20.0
# Bursts (a billing run, a collector's batch) are folded into one refresh.
DEBOUNCE_SECONDS = 0.4


@dataclass
class Card:
    key: str
    label: str
    value: str
    hint: str = ""
    url: str | None = None
    tone: str = ""


def _link(request: HttpRequest, permission: str, name: str, **params: Any) -> str | None:
    if not request.user.has_perm(permission):
        return None
    clean = {key: value for key, value in params.items() if value not in (None, "")}
    return reverse(f"console:{name}") + (f"?{urlencode(clean)}" if clean else "")


def build_cards(
    request: HttpRequest,
    board: selectors.Dashboard,
    currency: str,
    addon_revenue: Decimal | None = None,
    gateway_unapplied: int | None = None,
) -> list[Card]:
    totals, current = board.totals, board.current
    number = formatting.number

    def money(value: Any, currency: str) -> str:
        return formatting.money(value, currency, whole=True)

    view_subscribers = "customers.view_subscriber"
    period = formatting.period_label(current.period_month)
    prepaid = board.mode == BillingMode.PREPAID
    cumulative = board.mode == BillingMode.CUMULATIVE
    month = board.today.strftime("%Y-%m")
    cards = [
        Card(
            "running",
            _("Running subscribers"),
            number(totals.get("running", 0)),
            _("service intent active"),
            _link(request, view_subscribers, "subscribers", status="active"),
        ),
        Card(
            "new",
            _("New this month"),
            number(totals.get("joined", 0)),
            _("activated since the 1st"),
            _link(request, view_subscribers, "subscribers", joined="month"),
            "ok",
        ),
        Card(
            "left",
            _("Left this month"),
            number(totals.get("left_service", 0)),
            _("terminated since the 1st"),
            _link(request, view_subscribers, "subscribers", left="month"),
        ),
        Card(
            "suspended",
            _("Suspended"),
            number(totals.get("suspended", 0)),
            _("service intent suspended"),
            _link(request, view_subscribers, "subscribers", status="suspended"),
            "warn" if totals.get("suspended") else "",
        ),
        Card(
            "generated",
            _("Renewals billed") if prepaid else _("Generated"),
            money(current.generated, currency),
            period,
            _link(request, "billing.view_bill", "billing"),
        ),
        Card(
            "collected",
            _("Collected"),
            money(current.collected, currency),
            period,
            _link(request, "billing.view_payment", "payments", month=month),
            "ok",
        ),
        Card(
            "due",
            _("Balance at period close") if cumulative else _("Due this period"),
            money(current.due, currency),
            period,
            _link(request, view_subscribers, "subscribers", due_min="0.01", sort="-due"),
            "warn" if current.due else "",
        ),
        Card(
            "arrears",
            _("Carried forward") if cumulative else _("Arrears"),
            money(current.arrears, currency),
            _("owed from earlier periods"),
            _link(request, "billing.view_bill", "overdue"),
            "bad" if current.arrears else "",
        ),
        Card(
            "rate",
            _("Collection rate"),
            formatting.localize_digits(f"{current.collection_rate:.1f}%")
            if current.collection_rate is not None
            else "–",
            _("collected ÷ generated, %(period)s") % {"period": period},
            _link(request, "billing.view_bill", "billing"),
        ),
        Card(
            "overdue",
            _("Expired, unpaid") if prepaid else _("Overdue"),
            number(totals.get("overdue", 0)),
            money(totals.get("overdue_total", 0), currency) + " " + _("past due and grace"),
            _link(request, "billing.view_bill", "overdue"),
            "bad" if totals.get("overdue") else "",
        ),
        Card(
            "outstanding",
            _("Outstanding now"),
            money(totals.get("due_total", 0), currency),
            _("%(count)s subscribers owe") % {"count": number(totals.get("due_count", 0))},
            _link(request, view_subscribers, "subscribers", due_min="0.01", sort="-due"),
        ),
        Card(
            "credit",
            _("Credit balances"),
            money(totals.get("credit_total", 0), currency),
            _("paid in advance"),
            _link(request, view_subscribers, "subscribers", due_max="-0.01"),
        ),
        Card(
            "online",
            _("Online now"),
            number(totals.get("online", 0)),
            _("sessions on the routers"),
            _link(request, view_subscribers, "subscribers", online="yes"),
            "ok",
        ),
        Card(
            "mismatch",
            _("Intent/router mismatches"),
            number(totals.get("mismatches", 0)),
            _("router disagrees with intent"),
            _link(request, view_subscribers, "mismatches"),
            "bad" if totals.get("mismatches") else "",
        ),
        Card(
            "sync_failed",
            _("Sync failed"),
            number(totals.get("sync_failed", 0)),
            _("gave up after retries"),
            _link(request, view_subscribers, "mismatches", only="failed"),
            "bad" if totals.get("sync_failed") else "",
        ),
        Card(
            "outbox_failed",
            _("Failed router commands"),
            number(board.failed_commands),
            _("waiting for a retry by staff"),
            _link(request, "network.view_outboxcommand", "outbox", status="failed"),
            "bad" if board.failed_commands else "",
        ),
        Card("tickets", _("Open tickets"), "–", _("support desk not installed yet"), reverse("console:tickets")),
        Card(
            "today",
            _("Collected today"),
            money(board.collected_today, currency),
            ngettext("%(count)s collector", "%(count)s collectors", len(board.collections_today))
            % {"count": number(len(board.collections_today))},
            _link(request, "billing.view_payment", "day_sheet"),
            "ok",
        ),
    ]
    if gateway_unapplied is not None:
        cards.append(
            Card(
                "gateway_unapplied",
                _("Seen by the gateway, not applied"),
                number(gateway_unapplied),
                _("online payments in review, escalated, unknown or found by the settlement check"),
                _link(request, "billing.view_payment", "online_payments", state=ATTENTION),
                "bad" if gateway_unapplied else "ok",
            )
        )
    if addon_revenue is not None:
        cards.append(
            Card(
                "addon_revenue",
                _("Add-on revenue"),
                money(addon_revenue, currency),
                _("add-ons billed, %(period)s") % {"period": period},
                _link(request, "billing.view_bill", "billing"),
            )
        )
    if prepaid or totals.get("expiring"):
        cards.append(
            Card(
                "expiring",
                _("Expiring in 7 days"),
                number(totals.get("expiring", 0)),
                _("prepaid validity ends"),
                _link(request, view_subscribers, "subscribers", expiring="on"),
                "warn",
            )
        )
    return cards


def _live_context(request: HttpRequest, scope: Scope) -> dict[str, Any]:
    today = today_for(scope)
    board = selectors.dashboard(scope, today)
    currency = scope.home.currency
    month = board.current.period_month
    addon_revenue = addon_revenue_by_period(scope.operator_ids, month, month).get(month, ZERO)
    return {
        "board": board,
        # Online payments the gateway saw that are not on the ledger: should be 0 (one count query).
        "cards": build_cards(request, board, currency, addon_revenue, seen_not_applied_count(scope.operator_ids)),
        "currency": currency,
        "refreshed_at": timezone.now(),
        # A reseller's own console (or a parent acting as it): its float at the parent.
        "float": float_summary(scope.home, today) if scope.home.parent_id is not None else None,
        # Resellers below whose floats run low: the parent side is told too.
        "floats_low": floats_low(scope.operator_ids, exclude_operator_id=scope.home.pk) if scope.spans_many else [],
    }


# The business figures are for the roles that run the business: a collector or a support desk
# opening "/" is sent to its own landing page instead (ADR 0013).
DASHBOARD_PERMISSION = "operators.view_dashboard"


@console_view()
def dashboard_view(request: HttpRequest) -> HttpResponseBase:
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        return HttpResponseRedirect(landing_url(request.user))  # type: ignore[arg-type]
    scope = scope_of(request)
    return page(request, "console/dashboard.html", _live_context(request, scope))


@console_view(DASHBOARD_PERMISSION)
def dashboard_live_view(request: HttpRequest) -> HttpResponse:
    """The figures alone, for a swap (the stream's fallback when SSE is unavailable)."""
    scope = scope_of(request)
    return page(request, "console/partials/dashboard_live.html", _live_context(request, scope))


@console_view(DASHBOARD_PERMISSION)
def dashboard_chart_view(request: HttpRequest) -> HttpResponse:
    """The twelve-period chart, loaded by the page after its figures (and again after each live
    refresh): history changes rarely and costs the most to sum, so it never delays the cards."""
    scope = scope_of(request)
    periods = selectors.chart_periods(scope, today_for(scope))
    return HttpResponse(charts.generated_vs_collected(periods, scope.home.currency))


def _listen_params() -> dict[str, Any]:
    database = settings.DATABASES["default"]
    params = {
        "dbname": database["NAME"],
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "autocommit": True,
    }
    return {key: value for key, value in params.items() if value is not None}


def _sse(event: str, html: str) -> str:
    lines = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n\n"


async def dashboard_stream_view(request: HttpRequest) -> HttpResponseBase:
    """Server-Sent Events: after each money write in the viewer's subtree (a NOTIFY from the ledger
    and payment triggers), send the re-rendered figures. Needs the ASGI server: under WSGI a stream
    would hold a worker thread for ever, so it answers 204 and the browser stops asking."""
    if not isinstance(request, ASGIRequest):
        return HttpResponse(status=204)

    def enter() -> tuple[Scope, set[int], str] | HttpResponse:
        entered = enter_console(request)
        if isinstance(entered, HttpResponse):
            return entered
        if not request.user.has_perm(DASHBOARD_PERMISSION):
            raise PermissionDenied
        return entered, set(entered.operator_ids), translation.get_language()

    try:
        entered = await sync_to_async(enter)()
    except PermissionDenied:
        return HttpResponse(status=403)
    if isinstance(entered, HttpResponse):
        return HttpResponse(status=204)
    scope, operator_ids, language = entered

    def render_figures() -> str:
        try:
            with translation.override(language), timezone.override(scope.time_zone):
                return render_to_string(
                    "console/partials/dashboard_live.html",
                    {"scope": scope, **_live_context(request, scope)},
                    request=request,
                )
        finally:
            # A stream may stay open for hours: do not hold a second connection between refreshes.
            connection.close()

    async def events() -> AsyncIterator[str]:
        listener = await psycopg.AsyncConnection.connect(**_listen_params())
        try:
            await listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            yield "retry: 5000\n\n"
            yield _sse("status", f'<span class="live-on">{_live_label(language)}</span>')
            while True:
                relevant = False
                async for notice in listener.notifies(timeout=KEEPALIVE_SECONDS, stop_after=1):
                    relevant = _concerns(notice.payload, operator_ids)
                if not relevant:
                    yield ": keep-alive\n\n"
                    continue
                # Fold the rest of a burst into this refresh.
                async for _notice in listener.notifies(timeout=DEBOUNCE_SECONDS):
                    pass
                html = await sync_to_async(render_figures)()
                yield _sse("figures", html)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(listener.close())

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response


def _live_label(language: str) -> str:
    with translation.override(language):
        return _("live")


def _concerns(payload: str, operator_ids: set[int]) -> bool:
    try:
        return int(payload) in operator_ids
    except ValueError:
        return False
