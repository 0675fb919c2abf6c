"""The delivery log (filtered, paged by cursor), one message's detail with its error masked of stored
secrets, and sending one failed message again."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.console import formatting, selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.views.common import PER_PAGE, page
from sonjog.core.bounds import query_id
from sonjog.notifications import selectors as notify
from sonjog.notifications import services as notify_services
from sonjog.notifications.models import Channel, Event, Message, MessageStatus, ProviderAccount

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _cursor(message: Message) -> str:
    micros = (message.created_at - EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}.{message.pk}"


def _parse_cursor(text: str) -> tuple[dt.datetime, int] | None:
    micros_text, _dot, pk_text = text.partition(".")
    micros, pk = query_id(micros_text), query_id(pk_text)
    if micros is None or pk is None:
        return None
    try:
        return EPOCH + dt.timedelta(microseconds=micros), pk
    except OverflowError:
        return None


def waiting_note(message: Message, now: dt.datetime, quiet_ends: dict[int, dt.time | None]) -> str:
    """Why a queued message has not gone yet, with the time it will, in its operator's time zone:
    "held until 08:00" (quiet hours), "next attempt at 14:32" (a retry), or "" when it is due now.
    `quiet_ends` caches each operator's quiet-hours end (None: no quiet hours)."""
    if message.status != MessageStatus.QUEUED or message.next_attempt_at <= now:
        return ""
    local = message.next_attempt_at.astimezone(ZoneInfo(message.operator.time_zone))
    today = now.astimezone(ZoneInfo(message.operator.time_zone)).date()
    when = formatting.localize_digits(f"{local:%H:%M}")
    if local.date() != today and local.date() != today + dt.timedelta(days=1):
        when = f"{when} {formatting.local_date(local.date())}"
    if message.attempts:
        return _("next attempt at %(when)s") % {"when": when}
    if message.operator_id not in quiet_ends:
        settings = notify.notification_settings_for(message.operator)
        quiet_ends[message.operator_id] = settings.quiet_end if settings.quiet_hours_enabled else None
    if quiet_ends[message.operator_id] == local.time().replace(second=0, microsecond=0):
        return _("held for quiet hours until %(when)s") % {"when": when}
    return _("held until %(when)s") % {"when": when}


@console_view("notifications.view_message")
def log_view(request: HttpRequest) -> HttpResponse:
    filters = selectors.message_filters(scope_of(request), request.GET)
    # An unusable filter value is shown as an error and ignored, not an error page.
    chosen = {name: filters.value(name) or "" for name in ("status", "channel", "event")}
    bulk = filters.value("bulk")
    before = _parse_cursor(request.GET.get("before", ""))
    shown, more = notify.message_log(filters.qs, before=before, limit=PER_PAGE)
    now = timezone.now()
    quiet_ends: dict[int, dt.time | None] = {}
    for message in shown:
        message.waiting = waiting_note(message, now, quiet_ends)  # type: ignore[attr-defined]
    return page(
        request,
        "console/messaging_log.html",
        {
            "form": filters.form,
            "rows": shown,
            "older": _cursor(shown[-1]) if more else "",
            "paged": before is not None,
            "chosen": chosen,
            "bulk_id": str(bulk) if bulk is not None else "",
            "statuses": MessageStatus.choices,
            "channels": Channel.choices,
            "events": Event.choices,
        },
    )


def _masked(text: str, account: ProviderAccount | None) -> str:
    """A provider's error may echo a request; never let it show a stored secret."""
    if account is None or not text:
        return text
    for secret in account.credentials.values():
        if secret and len(secret) >= 4:
            text = text.replace(secret, "••••")
    return text


@require_POST
@console_view("notifications.change_message")
def message_resend_view(request: HttpRequest, message_id: int) -> HttpResponse:
    message = scope_of(request).get_or_404(Message.objects.select_related("operator"), pk=message_id)
    if message.status != MessageStatus.FAILED:
        messages.error(request, _("Only a failed message can be sent again."))
    elif notify_services.messages_resend(operator=message.operator, message_ids=[message.pk], actor=request.user):  # type: ignore[arg-type]
        messages.success(request, _("Queued again."))
    else:
        messages.info(request, _("This message was already sent again."))
    return redirect("console:messaging_message", message_id=message.pk)


@console_view("notifications.view_message")
def message_view(request: HttpRequest, message_id: int) -> HttpResponse:
    message = scope_of(request).get_or_404(
        Message.objects.select_related("subscriber", "operator", "account", "bulk"), pk=message_id
    )
    return page(
        request,
        "console/messaging_message.html",
        {
            "message": message,
            "waiting": waiting_note(message, timezone.now(), {}),
            "currency": message.operator.currency,
            "last_error": _masked(message.last_error, message.account),
            "resent_as": Message.objects.filter(resent_from=message).only("pk").first(),
        },
    )
