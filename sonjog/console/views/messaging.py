"""Messaging: templates with a live preview, bulk SMS (preview first, then confirm), provider accounts
and SMS credit, the delivery log and one message's detail.

The configuration pages act for one operator: the login's own, or, for a login that sees a subtree,
any operator in it named with ?operator=<id> (anything else is 404). Rows named by id (a template, an
account, a bulk send, a message) are read through `Scope.get_or_404` and act for their own operator.
Every write is one call of a notifications service."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from sonjog.console import formatting
from sonjog.console import selectors as console_selectors
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.forms import (
    TEMPLATE_BODY_MAX_LENGTH,
    BulkSmsForm,
    MessageTemplateForm,
    NotificationSettingsForm,
    ProviderAccountForm,
    SmsThresholdForm,
    SmsTopUpForm,
    unknown_variables,
    unknown_variables_message,
)
from sonjog.console.views.common import PER_PAGE, page, today_for
from sonjog.core.bounds import QUERY_TEXT_MAX_LENGTH, OutOfBounds, check_text, query_id
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.notifications import selectors as notify
from sonjog.notifications import services as notify_services
from sonjog.notifications.exceptions import (
    InsufficientSmsCredit,
    NoProviderAccount,
    NotificationError,
    ProviderAccountError,
)
from sonjog.notifications.models import (
    BulkSend,
    Channel,
    Event,
    Language,
    Message,
    MessageStatus,
    MessageTemplate,
    ProviderAccount,
    ProviderKind,
)
from sonjog.notifications.rendering import DEFAULT_WORDING, VARIABLES
from sonjog.operators.models import Operator

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# "Owes money": a due of at least one paisa (dues are kept to two decimals).
OWES_MONEY = Decimal("0.01")
BULK_DEDUP_PREFIX = "console-bulk"
# How far back "send again what failed for lack of credit" looks: older reminders are stale by now.
RESEND_WINDOW = dt.timedelta(days=7)


def _operator(request: HttpRequest) -> Operator:
    """The operator a configuration page acts for; one outside the login's scope is 404."""
    scope = scope_of(request)
    raw = request.POST.get("operator") or request.GET.get("operator") or ""
    if not raw:
        return scope.home
    wanted = query_id(raw)
    for operator in scope.operators:
        if operator.pk == wanted:
            return operator
    raise Http404("no such operator")


def _url(name: str, operator: Operator, **kwargs: Any) -> str:
    return f"{reverse(name, kwargs=kwargs or None)}?{urlencode({'operator': operator.pk})}"


def _base(request: HttpRequest, operator: Operator) -> dict[str, Any]:
    scope = scope_of(request)
    return {
        "operator": operator,
        "currency": operator.currency,
        "operators": scope.operators if scope.spans_many else [],
    }


# -- templates ------------------------------------------------------------------------------------


@console_view("notifications.view_message")
def templates_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    rows, own_count = notify.template_grid(operator)
    columns = [
        (channel, channel_label, language, language_label)
        for channel, channel_label in Channel.choices
        for language, language_label in Language.choices
    ]
    return page(
        request,
        "console/messaging_templates.html",
        {**_base(request, operator), "rows": rows, "columns": columns, "own_count": own_count},
    )


@console_view("notifications.view_message")
def template_view(request: HttpRequest, template_id: int) -> HttpResponse:
    """A template by id: its edit page, for the template's own operator."""
    template = scope_of(request).get_or_404(MessageTemplate.objects.all(), pk=template_id)
    return HttpResponseRedirect(
        _url(
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
    operator = _operator(request)
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
            return HttpResponseRedirect(_url("console:messaging_templates", operator))
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
            **_base(request, operator),
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
    operator = _operator(request)
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


# -- bulk SMS ----------------------------------------------------------------------------------------


def _recipients(request: HttpRequest, operator: Operator, form: BulkSmsForm) -> Any:
    """The subscribers the filters pick, through the subscriber list's own selector, within one operator."""
    scope = scope_of(request)
    data = form.cleaned_data
    filters = console_selectors.SubscriberFilters(
        q=data.get("q") or "",
        zone=data.get("zone"),
        package=data.get("package"),
        status=data.get("status") or "",
        due_min=OWES_MONEY if data.get("owes") else None,
        operator_id=operator.pk,
    )
    return console_selectors.subscriber_list(scope, filters, today_for(scope))


def _bulk_already_sent(operator: Operator, token: str) -> int | None:
    """The bulk send an earlier post of this confirmation queued, if any. Only for the nicer answer:
    the messages' unique dedup keys are what keep a repeat from queueing anything. A confirmation is
    posted minutes after its preview, so the last day of the operator's messages is enough to look at."""
    since = timezone.now() - dt.timedelta(days=1)
    return notify.bulk_send_for_key(operator, f"{BULK_DEDUP_PREFIX}:{token}", since)


def _confirm_fields(form: BulkSmsForm) -> dict[str, Any]:
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
    }


def _bulk_initial(request: HttpRequest) -> dict[str, Any]:
    """The subscriber list's filters, when the list sent the user here; else active subscribers."""
    query = request.GET
    initial: dict[str, Any] = {"status": query.get("status", ServiceIntent.ACTIVE)}
    for name in ("zone", "package", "q"):
        if query.get(name):
            initial[name] = query[name]
    if query.get("due_min"):
        initial["owes"] = True
    return initial


@console_view("notifications.view_message")
def bulk_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    can_send = request.user.has_perm("notifications.add_bulksend")
    if request.method == "POST" and not can_send:
        raise PermissionDenied
    form = BulkSmsForm(request.POST or None, operator=operator, initial=_bulk_initial(request))
    balance = notify.sms_balance(operator)
    context: dict[str, Any] = {
        **_base(request, operator),
        "form": form,
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
            "confirm_fields": _confirm_fields(form),
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
            **_base(request, bulk.operator),
            "bulk": bulk,
            "statuses": [(value, label, statuses.get(value, 0)) for value, label in MessageStatus.choices],
        },
    )


# -- providers, credit and settings ------------------------------------------------------------------


def _settings_context(request: HttpRequest, operator: Operator, **forms: Any) -> dict[str, Any]:
    overview = notify.credit_overview(operator)
    balance = overview.balance
    settings = notify.notification_settings_for(operator)
    return {
        **_base(request, operator),
        "accounts": overview.accounts,
        "balance": balance,
        "alert": overview.alert,
        "entries": overview.entries,
        "topup_form": forms.get("topup_form") or SmsTopUpForm(),
        "threshold_form": forms.get("threshold_form")
        or SmsThresholdForm(initial={"threshold": balance.low_balance_threshold}),
        "settings_form": forms.get("settings_form")
        or NotificationSettingsForm(
            initial={
                "quiet_hours_enabled": settings.quiet_hours_enabled,
                "quiet_start": settings.quiet_start,
                "quiet_end": settings.quiet_end,
                "default_language": settings.default_language,
                "default_channels": list(settings.default_channels or []),
                "muted_events": list(settings.muted_events or []),
                "portal_url": settings.portal_url,
                "payment_instructions": settings.payment_instructions,
            }
        ),
        "kinds": ProviderKind.choices,
        "failed_for_credit": notify.failed_for_credit(operator, timezone.now() - RESEND_WINDOW),
    }


@console_view("notifications.view_message")
def settings_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    return page(request, "console/messaging_settings.html", _settings_context(request, operator))


def _back_to_settings(operator: Operator) -> HttpResponse:
    return HttpResponseRedirect(_url("console:messaging_settings", operator))


@require_POST
@console_view("notifications.add_smscreditentry")
def credit_add_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    form = SmsTopUpForm(request.POST)
    if form.is_valid():
        try:
            notify_services.sms_credit_add(
                operator=operator,
                amount=form.cleaned_data["amount"],
                note=form.cleaned_data["note"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except NotificationError as error:
            form.add_error("amount", str(error))
        else:
            messages.success(request, _("SMS credit topped up."))
            return _back_to_settings(operator)
    return page(
        request, "console/messaging_settings.html", _settings_context(request, operator, topup_form=form), status=400
    )


@require_POST
@console_view("notifications.change_provideraccount")
def credit_threshold_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    form = SmsThresholdForm(request.POST)
    if form.is_valid():
        try:
            notify_services.sms_credit_threshold_set(
                operator=operator,
                threshold=form.cleaned_data["threshold"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except NotificationError as error:
            form.add_error("threshold", str(error))
        else:
            messages.success(request, _("Low-balance alert level saved."))
            return _back_to_settings(operator)
    return page(
        request,
        "console/messaging_settings.html",
        _settings_context(request, operator, threshold_form=form),
        status=400,
    )


@require_POST
@console_view("notifications.change_provideraccount")
def notification_settings_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    form = NotificationSettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            notify_services.notification_settings_save(
                operator=operator,
                quiet_hours_enabled=data["quiet_hours_enabled"],
                quiet_start=data["quiet_start"],
                quiet_end=data["quiet_end"],
                default_language=data["default_language"],
                default_channels=data["default_channels"],
                muted_events=data["muted_events"],
                portal_url=data["portal_url"],
                payment_instructions=data["payment_instructions"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except NotificationError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Message settings saved."))
            return _back_to_settings(operator)
    return page(
        request,
        "console/messaging_settings.html",
        _settings_context(request, operator, settings_form=form),
        status=400,
    )


@console_view("notifications.change_provideraccount")
def account_create_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    if kind not in ProviderKind.values:
        return page(
            request,
            "console/messaging_account.html",
            {**_base(request, operator), "kinds": ProviderKind.choices, "form": None},
        )
    form = ProviderAccountForm(request.POST if request.method == "POST" else None, operator=operator, kind=kind)
    if request.method == "POST" and form.is_valid():
        try:
            account = notify_services.provider_account_create(
                operator=operator,
                kind=kind,
                credentials=form.credentials(),
                is_active=form.cleaned_data["is_active"],
                actor=request.user,  # type: ignore[arg-type]
                **form.account_fields(),
            )
        except ProviderAccountError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Account %(name)s added.") % {"name": account.name})
            return _back_to_settings(operator)
    return page(
        request,
        "console/messaging_account.html",
        {
            **_base(request, operator),
            "form": form,
            "kind": kind,
            "kind_label": ProviderKind(kind).label,
            "title": _("New %(kind)s account") % {"kind": ProviderKind(kind).label},
        },
        status=400 if form.errors else 200,
    )


@console_view("notifications.change_provideraccount")
def account_edit_view(request: HttpRequest, account_id: int) -> HttpResponse:
    account = scope_of(request).get_or_404(ProviderAccount.objects.select_related("operator"), pk=account_id)
    operator = account.operator
    form = ProviderAccountForm(
        request.POST if request.method == "POST" else None, operator=operator, kind=account.kind, editing=account
    )
    if request.method == "POST" and form.is_valid():
        try:
            notify_services.provider_account_update(
                account=account,
                credentials=form.credentials(),
                actor=request.user,  # type: ignore[arg-type]
                **form.account_fields(),
            )
        except ProviderAccountError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Account %(name)s saved.") % {"name": form.cleaned_data["name"]})
            return _back_to_settings(operator)
    return page(
        request,
        "console/messaging_account.html",
        {
            **_base(request, operator),
            "form": form,
            "kind": account.kind,
            "kind_label": account.get_kind_display(),
            "account": account,
            "title": _("Edit account %(name)s") % {"name": account.name},
        },
        status=400 if form.errors else 200,
    )


@require_POST
@console_view("notifications.change_provideraccount")
def account_active_view(request: HttpRequest, account_id: int) -> HttpResponse:
    account = scope_of(request).get_or_404(ProviderAccount.objects.select_related("operator"), pk=account_id)
    active = request.POST.get("active") == "1"
    notify_services.provider_account_set_active(account=account, active=active, actor=request.user)  # type: ignore[arg-type]
    if active:
        messages.success(
            request,
            _("%(name)s is now the active %(channel)s account.")
            % {"name": account.name, "channel": account.get_channel_display()},
        )
    else:
        messages.success(request, _("%(name)s deactivated.") % {"name": account.name})
    return _back_to_settings(account.operator)


# -- the delivery log --------------------------------------------------------------------------------


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


@console_view("notifications.view_message")
def log_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    chosen = {name: request.GET.get(name, "") for name in ("status", "channel", "event")}
    allowed = {"status": MessageStatus.values, "channel": Channel.values, "event": Event.values}
    for name, value in list(chosen.items()):
        if value not in allowed[name]:
            chosen[name] = ""  # an unknown filter value is ignored, not an error page
    bulk = query_id(request.GET.get("bulk"))
    bulk_id = str(bulk) if bulk is not None else ""
    before = _parse_cursor(request.GET.get("before", ""))
    shown, more = notify.message_log(
        scope.operator_ids,
        **chosen,
        bulk_id=bulk,
        before=before,
        limit=PER_PAGE,
    )
    return page(
        request,
        "console/messaging_log.html",
        {
            "rows": shown,
            "older": _cursor(shown[-1]) if more else "",
            "paged": before is not None,
            "chosen": chosen,
            "bulk_id": bulk_id,
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
def credit_resend_view(request: HttpRequest) -> HttpResponse:
    operator = _operator(request)
    failed = notify.failed_for_credit(operator, timezone.now() - RESEND_WINDOW)
    queued = notify_services.messages_resend(operator=operator, message_ids=failed, actor=request.user)  # type: ignore[arg-type]
    messages.success(
        request,
        ngettext("%(count)d message queued again.", "%(count)d messages queued again.", queued) % {"count": queued},
    )
    return _back_to_settings(operator)


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
            "currency": message.operator.currency,
            "last_error": _masked(message.last_error, message.account),
            "resent_as": Message.objects.filter(resent_from=message).only("pk").first(),
        },
    )
