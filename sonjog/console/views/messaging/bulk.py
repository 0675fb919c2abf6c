"""Bulk SMS: pick subscribers with the subscriber list's filters, preview the text and its cost, then
confirm; a confirmation posted twice queues nothing twice. And the result page of one bulk send."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sonjog.billing.filters import OVERDUE_AGES, overdue_longer_than
from sonjog.console import formatting
from sonjog.console import selectors as console_selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.forms import BulkSmsForm
from sonjog.console.views.common import page, today_for
from sonjog.console.views.messaging.base import base_context, operator_for
from sonjog.customers.models import ServiceIntent
from sonjog.notifications import selectors as notify
from sonjog.notifications import services as notify_services
from sonjog.notifications.exceptions import InsufficientSmsCredit, NoProviderAccount, NotificationError
from sonjog.notifications.models import BulkSend, Channel, MessageStatus
from sonjog.operators.models import Operator

BULK_DEDUP_PREFIX = "console-bulk"


def overdue_choice(request: HttpRequest) -> str:
    """`overdue` from the overdue list's "SMS these": "0" for everyone overdue, or the days they are
    overdue by more than (the list's age filter); "" when the audience is not the overdue list."""
    raw = request.POST.get("overdue") or request.GET.get("overdue") or ""
    return raw if raw in {"0", *(str(days) for days in OVERDUE_AGES)} else ""


def _recipients(request: HttpRequest, operator: Operator, form: BulkSmsForm) -> Any:
    """The subscribers the filters pick, through the subscriber list's own filter set, within one
    operator; coming from the overdue list, only those overdue (by billing's dues, for that long)."""
    scope = scope_of(request)
    data = form.cleaned_data
    # The form checked each choice among this operator's rows: they are the filters' values as they are.
    chosen = {name: data.get(name) for name in ("q", "zone", "package", "status", "owes")}
    filters = console_selectors.subscriber_filters(scope, None, today_for(scope), operator=operator, defaults=chosen)
    rows = console_selectors.subscriber_list(filters)
    if overdue := overdue_choice(request):
        rows = rows.filter(pk__in=overdue_longer_than([operator.pk], today_for(scope), int(overdue)))
    return rows


def _bulk_already_sent(operator: Operator, token: str) -> int | None:
    """The bulk send an earlier post of this confirmation queued, if any. Only for the nicer answer:
    the messages' unique dedup keys are what keep a repeat from queueing anything. A confirmation is
    posted minutes after its preview, so the last day of the operator's messages is enough to look at."""
    since = timezone.now() - dt.timedelta(days=1)
    return notify.bulk_send_for_key(operator, f"{BULK_DEDUP_PREFIX}:{token}", since)


def _confirm_fields(form: BulkSmsForm, overdue: str) -> dict[str, Any]:
    """The previewed choices, carried unchanged into the confirmation."""
    data = form.cleaned_data
    return {
        "zone": data["zone"].pk if data.get("zone") else "",
        "package": data["package"].pk if data.get("package") else "",
        "status": data.get("status") or "",
        "owes": "on" if data.get("owes") else "",
        "q": data.get("q") or "",
        "template": data["template"].pk if data.get("template") else "",
        "text": data.get("text") or "",
        "overdue": overdue,
    }


def _bulk_initial(request: HttpRequest) -> dict[str, Any]:
    """The subscriber list's filters, when the list sent the user here; else active subscribers."""
    query = request.GET
    # The overdue list's subscribers are overdue whatever their service state (suspended ones too).
    default_status = "" if overdue_choice(request) else ServiceIntent.ACTIVE
    initial: dict[str, Any] = {"status": query.get("status", default_status)}
    for name in ("zone", "package", "q"):
        if query.get(name):
            initial[name] = query[name]
    if query.get("due_min"):
        initial["owes"] = True
    return initial


@console_view("notifications.view_message")
def bulk_view(request: HttpRequest) -> HttpResponse:
    operator = operator_for(request)
    can_send = request.user.has_perm("notifications.add_bulksend")
    if request.method == "POST" and not can_send:
        raise PermissionDenied
    form = BulkSmsForm(request.POST or None, operator=operator, initial=_bulk_initial(request))
    balance = notify.sms_balance(operator)
    overdue = overdue_choice(request)
    context: dict[str, Any] = {
        **base_context(request, operator),
        "form": form,
        "overdue": overdue,
        "overdue_days": int(overdue) if overdue else 0,
        "can_send": can_send,
        "balance": balance,
        "sms_account": notify.active_accounts(operator).get(Channel.SMS),
        "past": notify.bulk_sends_recent(operator),
        "preview": None,
    }
    if request.method != "POST":
        return page(request, "console/messaging_bulk.html", context)
    if not form.is_valid():
        return page(request, "console/messaging_bulk.html", context, status=400)
    recipients = _recipients(request, operator, form)
    template_or_text = form.cleaned_data["template"] or form.cleaned_data["text"]
    status = 200
    if request.POST.get("step") == "confirm":
        token = form.cleaned_data["token"]
        earlier = _bulk_already_sent(operator, token) if token else None
        if not token:
            form.add_error(None, _("This confirmation is not valid; preview the message again."))
            status = 400
        elif earlier is not None:
            messages.info(request, _("This bulk SMS was already queued; nothing was queued twice."))
            return redirect("console:messaging_bulk_result", bulk_id=earlier)
        else:
            try:
                bulk = notify_services.bulk_sms_send(
                    operator=operator,
                    subscribers=recipients,
                    template_or_text=template_or_text,
                    actor=request.user,  # type: ignore[arg-type]
                    dedup_key=f"{BULK_DEDUP_PREFIX}:{token}",
                )
            except InsufficientSmsCredit as error:
                context["send_error"] = str(error)
                status = 409
            except NoProviderAccount:
                context["send_error"] = _("There is no active SMS account: add one under Providers & credit.")
                status = 409
            except NotificationError as error:
                form.add_error(None, str(error))
                status = 400
            else:
                earlier = _bulk_already_sent(operator, token) if not bulk.queued else None
                if earlier is not None and earlier != bulk.pk:
                    # A concurrent post of the same confirmation got there first.
                    messages.info(request, _("This bulk SMS was already queued; nothing was queued twice."))
                    return redirect("console:messaging_bulk_result", bulk_id=earlier)
                messages.success(
                    request,
                    ngettext(
                        "%(queued)s message queued; %(skipped)s skipped.",
                        "%(queued)s messages queued; %(skipped)s skipped.",
                        bulk.queued,
                    )
                    % {"queued": formatting.number(bulk.queued), "skipped": formatting.number(bulk.skipped)},
                )
                return redirect("console:messaging_bulk_result", bulk_id=bulk.pk)
    try:
        preview = notify.bulk_sms_preview(operator, recipients, template_or_text)
    except NotificationError as error:
        form.add_error(None, str(error))
        return page(request, "console/messaging_bulk.html", context, status=400)
    context.update(
        {
            "preview": preview,
            "covered": preview.cost <= balance.balance,
            "token": secrets.token_urlsafe(16),
            "confirm_fields": _confirm_fields(form, overdue),
            "shortfall": max(preview.cost - balance.balance, 0),
        }
    )
    return page(request, "console/messaging_bulk.html", context, status=status)


@console_view("notifications.view_message")
def bulk_result_view(request: HttpRequest, bulk_id: int) -> HttpResponse:
    bulk = scope_of(request).get_or_404(BulkSend.objects.select_related("operator", "requested_by"), pk=bulk_id)
    statuses = notify.bulk_status_counts(bulk)
    return page(
        request,
        "console/messaging_bulk_result.html",
        {
            **base_context(request, bulk.operator),
            "bulk": bulk,
            "statuses": [(value, label, statuses.get(value, 0)) for value, label in MessageStatus.choices],
        },
    )
