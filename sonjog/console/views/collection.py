"""Collection: find a subscriber fast, take the money, print the receipt; the collector's day sheet."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from sonjog.billing.exceptions import BillingError, HandoverChanged, InvalidAmount
from sonjog.billing.models import CashHandover
from sonjog.billing.selectors import (
    HandoverSplit,
    collected_handover,
    handover_payments,
    handover_standing,
    handovers,
    with_due,
)
from sonjog.billing.services.handover import APPROVE_PERMISSION, OPEN_STATES, handover_approve, handover_dispute
from sonjog.console import formatting, selectors
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.forms.handovers import HandoverApproveForm, HandoverDisputeForm
from sonjog.console.views.common import page, page_of, today_for
from sonjog.core.bounds import OutOfBounds, query_id, query_text
from sonjog.core.money import ZERO
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.customers.selectors import subscriber_search_q, subscriber_search_rank

# How many matches the payment picker lists; past that it says how many more there are.
PICKER_LIMIT = 8


def payment_picker(scope: Scope, text: str, limit: int = PICKER_LIMIT) -> tuple[list[Subscriber], int]:
    """Who a typed search finds to take money from (never the terminated), the exact customer ID,
    PPPoE username or phone first, each with `due` (what it owes now, billing's definition), and how
    many more matched than are listed."""
    if len(text.strip()) < 2:
        return [], 0
    rows = (
        scope.filter(Subscriber.objects.all())
        .filter(subscriber_search_q(text))
        .exclude(service_intent=ServiceIntent.TERMINATED)
    )
    found = list(
        with_due(rows, today_for(scope))
        .select_related("package", "zone__parent", "operator")
        .order_by(subscriber_search_rank(text), "customer_id")[: limit + 1]
    )
    if len(found) <= limit:
        return found, 0
    return found[:limit], rows.count() - limit


@console_view("billing.add_payment")
def collect_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    error = ""
    try:
        text = query_text(request.GET.get("q", ""))
    except OutOfBounds as refused:
        text, error = "", str(refused)
    found, more = payment_picker(scope, text)
    context = {
        "q": text,
        "found": found,
        "more": more,
        "spans_many": scope.spans_many,
        "error": error,
        "currency": scope.home.currency,
    }
    if request.htmx:  # type: ignore[attr-defined]
        # A live-search fragment: htmx swaps in only a 2xx answer, and this one carries the message.
        return page(request, "console/partials/collect_results.html", context)
    return page(request, "console/collect.html", context, status=400 if error else 200)


@console_view()
def day_sheet_view(request: HttpRequest) -> HttpResponse:
    """A day's payments. Who may see payments sees everyone's (their own by default when they do not
    see the bills); a login that only takes payments (a collector) sees its own and nobody else's."""
    scope = scope_of(request)
    sees_payments = request.user.has_perm("billing.view_payment")
    if not sees_payments and not request.user.has_perm("billing.add_payment"):
        raise PermissionDenied
    defaults: dict[str, Any] = {"day": today_for(scope)}
    if not sees_payments or (not request.GET and not request.user.has_perm("billing.view_bill")):
        defaults["collector"] = request.user
    names = ("day", "collector") if sees_payments else ("day",)
    params = {name: request.GET[name] for name in names if name in request.GET}
    filters = selectors.payment_filters(scope, params or None, defaults=defaults)
    form = filters.form
    day, collector = filters.value("day"), filters.value("collector")
    payments = filters.qs if sees_payments else filters.qs.filter(collector=request.user)
    sheet = selectors.payment_sheet(payments)
    shown_collector = collector if sees_payments else request.user
    day_handovers, split = _day_handovers(scope, day, shown_collector.pk if shown_collector else None)
    return page(
        request,
        "console/day_sheet.html",
        {
            "form": form,
            "day": day,
            "collector": shown_collector,
            "own_only": not sees_payments,
            "sheet": sheet,
            "handovers": day_handovers,
            "split": split,
            "currency": scope.home.currency,
        },
    )


def _day_handovers(
    scope: Scope, day: dt.date | None, collector_id: int | None
) -> tuple[list[CashHandover], HandoverSplit | None]:
    """A day's hand-overs in scope (one collector's, or everyone's) and how much of the day's money is
    awaiting hand-over and handed over (billing's `collected_handover`): only where there are any or
    the operator approves hand-overs."""
    if day is None:
        return [], None
    rows = handovers(scope.operator_ids).filter(day=day)
    if collector_id is not None:
        rows = rows.filter(collector_id=collector_id)
    found = list(rows)
    if not found and not scope.home.collection_approval:
        return [], None
    start, end = selectors.day_bounds(scope, day)
    return found, collected_handover(scope.operator_ids, start, end, collector_id=collector_id)


# -- Hand-overs: collectors' cash waiting for a manager's approval (issue 15) -------------------------

HANDOVER_STATES: dict[str, tuple[str, ...]] = {
    "open": OPEN_STATES,
    "pending": (CashHandover.State.PENDING,),
    "disputed": (CashHandover.State.DISPUTED,),
    "approved": (CashHandover.State.APPROVED,),
    "all": tuple(CashHandover.State.values),
}


@console_view(APPROVE_PERMISSION)
def handovers_view(request: HttpRequest) -> HttpResponse:
    """Hand-overs per collector and day, open ones (pending and disputed) first by default, of the
    operators in the caller's scope: a reseller's manager sees its own subtree's only."""
    scope = scope_of(request)
    state = request.GET.get("state", "open")
    if state not in HANDOVER_STATES:
        state = "open"
    rows = handovers(scope.operator_ids).filter(state__in=HANDOVER_STATES[state])
    collector_id = query_id(request.GET.get("collector"))
    if collector_id is not None:
        rows = rows.filter(collector_id=collector_id)
    open_rows = CashHandover.objects.filter(operator_id__in=scope.operator_ids, state__in=OPEN_STATES)
    waiting = open_rows.aggregate(
        count=Count("pk"),
        pending=Count("pk", filter=Q(state=CashHandover.State.PENDING)),
        disputed=Count("pk", filter=Q(state=CashHandover.State.DISPUTED)),
    )
    return page(
        request,
        "console/handovers.html",
        {
            "page_obj": page_of(request, rows),
            "state": state,
            "states": [
                ("open", _("Open")),
                ("pending", CashHandover.State.PENDING.label),
                ("disputed", CashHandover.State.DISPUTED.label),
                ("approved", CashHandover.State.APPROVED.label),
                ("all", _("All")),
            ],
            "waiting": waiting,
            "currency": scope.home.currency,
        },
    )


@console_view(APPROVE_PERMISSION)
def handover_view(request: HttpRequest, handover_id: int) -> HttpResponse:
    """One hand-over: its payments, and for an open one "Approve" (with the amount counted, confirmed
    on a page that says what and how much) and "Dispute" (with a note)."""
    scope = scope_of(request)
    handover = scope.get_or_404(handovers(scope.operator_ids), pk=handover_id)
    standing: Decimal = handover.standing  # type: ignore[attr-defined]
    data = request.POST if request.method == "POST" else None
    action = request.POST.get("action", "") if data is not None else ""
    approve = HandoverApproveForm(
        data if action == "approve" else None, prefix="approve", initial={"counted": standing, "expected": standing}
    )
    dispute = HandoverDisputeForm(
        data if action == "dispute" else None, prefix="dispute", initial={"expected": standing}
    )
    context: dict[str, Any] = {
        "handover": handover,
        "standing": standing,
        "approve": approve,
        "dispute": dispute,
        "is_open": handover.state in OPEN_STATES,
        "payments": handover_payments(handover.pk).select_related("subscriber", "collector"),
        "currency": scope.home.currency,
    }
    status = 200
    if action == "approve" and approve.is_valid():
        answer = _approve(request, handover, approve, context)
        if answer is not None:
            return answer
        status = 409
    elif action == "dispute" and dispute.is_valid():
        try:
            handover_dispute(
                handover=handover,
                note=dispute.cleaned_data["note"],
                counted=dispute.cleaned_data["count"],
                expected=dispute.cleaned_data["expected"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except BillingError as error:
            dispute.add_error(None, str(error))
            status = 409
        else:
            messages.success(request, _("The hand-over is marked disputed."))
            return redirect("console:handovers")
    elif data is not None:
        status = 400
    return page(request, "console/handover.html", context, status=status)


def _approve(
    request: HttpRequest, handover: CashHandover, form: HandoverApproveForm, context: dict[str, Any]
) -> HttpResponse | None:
    """First the confirmation (what and how much), then the approval; None when refused (the form
    carries why)."""
    counted: Decimal = form.cleaned_data["counted"]
    seen: Decimal = form.cleaned_data["expected"]
    standing = handover_standing(handover.pk)
    confirm = {
        **context,
        "counted": counted,
        "expected": standing,
        "difference": standing - counted,
        "note": form.cleaned_data["approval_note"],
        "changed": seen != standing,
    }
    if request.POST.get("step") != "confirm" or seen != standing:
        return page(request, "console/handover_confirm.html", confirm, status=409 if confirm["changed"] else 200)
    try:
        approved = handover_approve(
            handover=handover,
            counted=counted,
            expected=seen,
            note=form.cleaned_data["approval_note"],
            actor=request.user,  # type: ignore[arg-type]
        )
    except HandoverChanged:
        fresh = handover_standing(handover.pk)
        confirm.update(expected=fresh, difference=fresh - counted, changed=True)
        return page(request, "console/handover_confirm.html", confirm, status=409)
    except InvalidAmount as error:
        form.add_error("counted", str(error))
        return None
    except BillingError as error:
        form.add_error(None, str(error))
        return None
    currency = context["currency"]
    values = {
        "who": approved.collector.get_username(),
        "day": formatting.local_date(approved.day),
        "counted": formatting.money(approved.counted, currency),
        "shortfall": formatting.money(approved.shortfall, currency),
        "surplus": formatting.money(-(approved.shortfall or ZERO), currency),
    }
    if approved.shortfall and approved.shortfall > 0:
        text = _("Hand-over of %(who)s for %(day)s approved: %(counted)s counted, a shortfall of %(shortfall)s.")
    elif approved.shortfall and approved.shortfall < 0:
        text = _("Hand-over of %(who)s for %(day)s approved: %(counted)s counted, %(surplus)s more than expected.")
    else:
        text = _("Hand-over of %(who)s for %(day)s approved: %(counted)s counted.")
    messages.success(request, text % values)
    return redirect("console:handovers")
