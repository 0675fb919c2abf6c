"""Providers, credit and settings: the operator's channel accounts (add, edit, activate), SMS credit
(top-up, low-balance level, resending what failed for lack of credit) and its message settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from sonjog.console.access import console_view, scope_of
from sonjog.console.forms import NotificationSettingsForm, ProviderAccountForm, SmsThresholdForm, SmsTopUpForm
from sonjog.console.views.common import page
from sonjog.console.views.messaging.base import base_context, operator_for, url_for
from sonjog.notifications import selectors as notify
from sonjog.notifications import services as notify_services
from sonjog.notifications.exceptions import NotificationError, ProviderAccountError
from sonjog.notifications.models import ProviderAccount, ProviderKind
from sonjog.operators.models import Operator

# How far back "send again what failed for lack of credit" looks: older reminders are stale by now.
RESEND_WINDOW = dt.timedelta(days=7)


def _settings_context(request: HttpRequest, operator: Operator, **forms: Any) -> dict[str, Any]:
    overview = notify.credit_overview(operator)
    balance = overview.balance
    settings = notify.notification_settings_for(operator)
    return {
        **base_context(request, operator),
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
    operator = operator_for(request)
    return page(request, "console/messaging_settings.html", _settings_context(request, operator))


def _back_to_settings(operator: Operator) -> HttpResponse:
    return HttpResponseRedirect(url_for("console:messaging_settings", operator))


@require_POST
@console_view("notifications.add_smscreditentry")
def credit_add_view(request: HttpRequest) -> HttpResponse:
    operator = operator_for(request)
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
    operator = operator_for(request)
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
    operator = operator_for(request)
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
    operator = operator_for(request)
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    if kind not in ProviderKind.values:
        return page(
            request,
            "console/messaging_account.html",
            {**base_context(request, operator), "kinds": ProviderKind.choices, "form": None},
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
            **base_context(request, operator),
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
            **base_context(request, operator),
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


@require_POST
@console_view("notifications.change_message")
def credit_resend_view(request: HttpRequest) -> HttpResponse:
    operator = operator_for(request)
    failed = notify.failed_for_credit(operator, timezone.now() - RESEND_WINDOW)
    queued = notify_services.messages_resend(operator=operator, message_ids=failed, actor=request.user)  # type: ignore[arg-type]
    messages.success(
        request,
        ngettext("%(count)d message queued again.", "%(count)d messages queued again.", queued) % {"count": queued},
    )
    return _back_to_settings(operator)
