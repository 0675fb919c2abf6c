"""Message templates: the grid of events by channel and language, editing one wording, and the live
preview that renders the text being typed for a real subscriber."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.console import selectors as console_selectors
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.forms import (
    TEMPLATE_BODY_MAX_LENGTH,
    MessageTemplateForm,
    unknown_variables,
    unknown_variables_message,
)
from sonjog.console.views.common import page
from sonjog.console.views.messaging.base import base_context, operator_for, url_for
from sonjog.core.bounds import QUERY_TEXT_MAX_LENGTH, OutOfBounds, check_text
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.notifications import selectors as notify
from sonjog.notifications import services as notify_services
from sonjog.notifications.exceptions import NotificationError
from sonjog.notifications.models import Channel, Event, Language, MessageTemplate
from sonjog.notifications.rendering import DEFAULT_WORDING, VARIABLES
from sonjog.operators.models import Operator


@console_view("notifications.view_message")
def templates_view(request: HttpRequest) -> HttpResponse:
    operator = operator_for(request)
    rows, own_count = notify.template_grid(operator)
    columns = [
        (channel, channel_label, language, language_label)
        for channel, channel_label in Channel.choices
        for language, language_label in Language.choices
    ]
    return page(
        request,
        "console/messaging_templates.html",
        {**base_context(request, operator), "rows": rows, "columns": columns, "own_count": own_count},
    )


@console_view("notifications.view_message")
def template_view(request: HttpRequest, template_id: int) -> HttpResponse:
    """A template by id: its edit page, for the template's own operator."""
    template = scope_of(request).get_or_404(MessageTemplate.objects.all(), pk=template_id)
    return HttpResponseRedirect(
        url_for(
            "console:messaging_template_edit",
            template.operator,
            event=template.event,
            channel=template.channel,
            language=template.language,
        )
    )


def _check_template_key(event: str, channel: str, language: str) -> None:
    if event not in Event.values or channel not in Channel.values or language not in Language.values:
        raise Http404("no such event, channel or language")


def _preview_subscriber(scope: Scope, operator: Operator, lookup: str) -> Subscriber | None:
    """The subscriber a preview renders for: found by customer ID, else by name, phone or PPPoE user;
    with nothing typed, the operator's first active subscriber."""
    rows = scope.filter(Subscriber.objects.filter(operator=operator)).select_related("operator", "package")
    lookup = lookup.strip()
    if not lookup:
        return (
            rows.filter(service_intent=ServiceIntent.ACTIVE).order_by("customer_id").first()
            or rows.order_by("customer_id").first()
        )
    exact = rows.filter(customer_id__iexact=lookup).first()
    if exact is not None:
        return exact
    return rows.filter(console_selectors.subscriber_search_q(lookup)).order_by("customer_id").first()


def _preview_input_problem(subject: str, body: str, lookup: str) -> str:
    """Why the text typed into a preview cannot be previewed (the template form says the same on save)."""
    try:
        check_text(subject, max_length=MessageTemplate._meta.get_field("subject").max_length or 0)
        check_text(body, max_length=TEMPLATE_BODY_MAX_LENGTH, multiline=True)
        check_text(lookup.strip(), max_length=QUERY_TEXT_MAX_LENGTH)
    except OutOfBounds as error:
        return str(error)
    return ""


def _preview_context(
    request: HttpRequest,
    operator: Operator,
    *,
    event: str,
    channel: str,
    language: str,
    subject: str,
    body: str,
    lookup: str,
) -> dict[str, Any]:
    scope = scope_of(request)
    refused = _preview_input_problem(subject, body, lookup)
    if refused:
        subject, body, lookup = "", "", ""
    subscriber = _preview_subscriber(scope, operator, lookup)
    context: dict[str, Any] = {
        "operator": operator,
        "currency": operator.currency,
        "channel": channel,
        "preview_subscriber": subscriber,
        "preview_lookup": lookup.strip() or (subscriber.customer_id if subscriber is not None else ""),
        "preview": None,
        "preview_error": "",
        "has_sms_account": Channel.SMS in notify.active_accounts(operator),
    }
    subject, body = subject.replace("\r\n", "\n"), body.replace("\r\n", "\n")
    unknown = sorted(set(unknown_variables(subject)) | set(unknown_variables(body)))
    if refused:
        context["preview_error"] = refused
    elif unknown:
        context["preview_error"] = unknown_variables_message(unknown)
    elif not body.strip():
        context["preview_error"] = _("Write the text to see how it reads.")
    elif subscriber is None:
        context["preview_error"] = (
            _("No subscriber of %(operator)s matches “%(lookup)s”.") % {"operator": operator.name, "lookup": lookup}
            if lookup.strip()
            else _("Add a subscriber to see a preview with real values.")
        )
    else:
        draft = MessageTemplate(
            operator=operator, event=event, channel=channel, language=language, subject=subject, body=body
        )
        try:
            context["preview"] = notify.template_preview(draft, subscriber)
        except NotificationError as error:
            context["preview_error"] = str(error)
    return context


@console_view("notifications.change_messagetemplate")
def template_edit_view(request: HttpRequest, event: str, channel: str, language: str) -> HttpResponse:
    _check_template_key(event, channel, language)
    operator = operator_for(request)
    existing = MessageTemplate.objects.filter(
        operator=operator, event=event, channel=channel, language=language
    ).first()
    default = DEFAULT_WORDING.get((event, language))
    if existing is not None:
        initial = {"subject": existing.subject, "body": existing.body, "is_active": existing.is_active}
    else:
        initial = {
            "subject": default.subject if default is not None else "",
            "body": default.body if default is not None else "",
            "is_active": True,
        }
    form = MessageTemplateForm(request.POST or None, initial=initial, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            notify_services.template_save(
                operator=operator,
                event=event,
                channel=channel,
                language=language,
                body=form.cleaned_data["body"],
                subject=form.cleaned_data.get("subject", ""),
                is_active=form.cleaned_data["is_active"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except NotificationError as error:
            form.add_error("body", str(error))
        else:
            messages.success(
                request,
                _("Saved the %(event)s wording for %(channel)s in %(language)s.")
                % {
                    "event": Event(event).label,
                    "channel": Channel(channel).label,
                    "language": Language(language).label,
                },
            )
            return HttpResponseRedirect(url_for("console:messaging_templates", operator))
    source = request.POST if form.is_bound else initial
    preview = _preview_context(
        request,
        operator,
        event=event,
        channel=channel,
        language=language,
        subject=str(source.get("subject") or "") if channel == Channel.EMAIL else "",
        body=str(source.get("body") or ""),
        lookup=request.POST.get("preview_subscriber", ""),
    )
    return page(
        request,
        "console/messaging_template_edit.html",
        {
            **base_context(request, operator),
            **preview,
            "form": form,
            "event": event,
            "event_label": Event(event).label,
            "channel_label": Channel(channel).label,
            "language": language,
            "language_label": Language(language).label,
            "existing": existing,
            "default": default,
            "variables": VARIABLES,
            "subscribers": list(
                scope_of(request)
                .filter(Subscriber.objects.filter(operator=operator))
                .exclude(service_intent=ServiceIntent.TERMINATED)
                .order_by("customer_id")
                .values_list("customer_id", "name")[:100]
            ),
        },
        status=400 if form.errors else 200,
    )


@require_POST
@console_view("notifications.view_message")
def template_preview_view(request: HttpRequest) -> HttpResponse:
    """The live preview: the text being typed, rendered for a real subscriber (an htmx fragment)."""
    operator = operator_for(request)
    event, channel, language = (request.POST.get(name, "") for name in ("event", "channel", "language"))
    if event not in Event.values or channel not in Channel.values or language not in Language.values:
        return HttpResponse(_("Unknown event, channel or language."), status=400)
    context = _preview_context(
        request,
        operator,
        event=event,
        channel=channel,
        language=language,
        subject=request.POST.get("subject", "") if channel == Channel.EMAIL else "",
        body=request.POST.get("body", ""),
        lookup=request.POST.get("preview_subscriber", ""),
    )
    return page(request, "console/partials/message_preview.html", context)
