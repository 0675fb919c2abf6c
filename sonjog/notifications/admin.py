from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from sonjog.core.admin_base import AuditedAdmin, ReadOnlyAdmin
from sonjog.notifications import services
from sonjog.notifications.exceptions import InvalidTemplate
from sonjog.notifications.models import (
    BulkSend,
    LowBalanceAlert,
    Message,
    MessageTemplate,
    NotificationSettings,
    ProviderAccount,
    SmsBalance,
    SmsCreditEntry,
    SubscriberPreference,
)
from sonjog.notifications.rendering import validate_template_text


@admin.register(ProviderAccount)
class ProviderAccountAdmin(ReadOnlyAdmin):
    """Secrets never show: the encrypted columns are not listed and nothing here decrypts them. Accounts
    are created through provider_account_create, which encrypts; the admin only switches them."""

    list_display = ["name", "operator", "channel", "kind", "sender_id", "cost_per_segment", "is_active", "has_secrets"]
    list_filter = ["channel", "kind", "is_active"]
    search_fields = ["name", "sender_id", "operator__code"]
    fields = [
        "operator",
        "name",
        "channel",
        "kind",
        "sender_id",
        "username",
        "base_url",
        "options",
        "cost_per_segment",
        "is_active",
    ]
    actions = ["activate", "deactivate"]

    @admin.display(boolean=True, description="secrets stored")
    def has_secrets(self, obj: ProviderAccount) -> bool:
        return bool(obj.credentials_encrypted)

    @admin.action(description="Make active (retires the other account on the channel)")
    def activate(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        for account in queryset:
            services.provider_account_set_active(account=account, active=True, actor=_actor(request))

    @admin.action(description="Deactivate")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        for account in queryset:
            services.provider_account_set_active(account=account, active=False, actor=_actor(request))


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class MessageTemplateForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = MessageTemplate
        fields = ["operator", "event", "channel", "language", "subject", "body", "is_active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for field in ("body", "subject"):
            try:
                validate_template_text(data.get(field) or "")
            except InvalidTemplate as error:
                self.add_error(field, str(error))
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(AuditedAdmin):
    form = MessageTemplateForm
    list_display = ["operator", "event", "channel", "language", "is_active", "updated_at"]
    list_filter = ["event", "channel", "language", "is_active"]

    def perform_save(self, request: HttpRequest, obj: MessageTemplate, form: Any, change: bool) -> None:
        saved = services.template_save(
            operator=obj.operator,
            event=obj.event,
            channel=obj.channel,
            language=obj.language,
            body=obj.body,
            subject=obj.subject,
            is_active=obj.is_active,
            actor=request.user,  # type: ignore[arg-type]
        )
        obj.pk = saved.pk


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(AuditedAdmin):
    list_display = ["operator", "quiet_hours_enabled", "quiet_start", "quiet_end", "default_language"]

    def perform_save(self, request: HttpRequest, obj: NotificationSettings, form: Any, change: bool) -> None:
        saved = services.notification_settings_save(
            operator=obj.operator,
            quiet_hours_enabled=obj.quiet_hours_enabled,
            quiet_start=obj.quiet_start,
            quiet_end=obj.quiet_end,
            default_language=obj.default_language,
            default_channels=obj.default_channels,
            muted_events=obj.muted_events,
            portal_url=obj.portal_url,
            payment_instructions=obj.payment_instructions,
            actor=request.user,  # type: ignore[arg-type]
        )
        obj.pk = saved.pk


@admin.register(SubscriberPreference)
class SubscriberPreferenceAdmin(AuditedAdmin):
    list_display = ["subscriber", "language", "muted_channels"]
    raw_id_fields = ["subscriber"]
    audit_operator_path = "subscriber.operator"
    audit_subscriber_path = "subscriber"

    def perform_save(self, request: HttpRequest, obj: SubscriberPreference, form: Any, change: bool) -> None:
        saved = services.subscriber_preference_save(
            subscriber=obj.subscriber, language=obj.language, muted_channels=obj.muted_channels
        )
        obj.pk = saved.pk


@admin.register(SmsBalance)
class SmsBalanceAdmin(ReadOnlyAdmin):
    """Read-only: credit changes through sms_credit_add so every change has its ledger line."""

    list_display = ["operator", "balance", "low_balance_threshold", "updated_at"]


@admin.register(SmsCreditEntry)
class SmsCreditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "operator", "kind", "amount", "balance_after", "message_id", "note"]
    list_filter = ["kind"]


@admin.register(LowBalanceAlert)
class LowBalanceAlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "operator", "balance", "threshold", "resolved_at"]


@admin.register(BulkSend)
class BulkSendAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "operator", "queued", "skipped", "total_segments", "estimated_cost"]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "operator",
        "channel",
        "event",
        "recipient",
        "status",
        "segments",
        "cost",
        "attempts",
        "failure_reason",
    ]
    list_filter = ["channel", "status", "event", "provider"]
    search_fields = ["recipient", "provider_message_id", "subscriber__customer_id"]
    list_select_related = ["operator"]
