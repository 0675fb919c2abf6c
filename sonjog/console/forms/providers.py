"""The provider account form: the fields each provider kind needs (secrets never shown back, kept
when left empty), its options, and the outbound-address check on its base URL."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from sonjog.core import bounds
from sonjog.core.bounds import IntegerField, TextField, URLField, column_field
from sonjog.core.outbound import OutboundRefused, check_outbound_url
from sonjog.notifications.models import KIND_CHANNEL, Channel, ProviderAccount, ProviderKind
from sonjog.notifications.providers import PROVIDERS
from sonjog.operators.models import Operator

# The secrets each provider reads from the account's credentials (see sonjog.notifications.providers).
PROVIDER_SECRETS: dict[str, tuple[str, ...]] = {
    ProviderKind.GENERIC_HTTP: ("api_key", "password"),
    ProviderKind.SSL_WIRELESS: ("api_token",),
    ProviderKind.BULKSMSBD: ("api_key",),
    ProviderKind.TWILIO: ("auth_token",),
    ProviderKind.SMTP: ("password",),
    ProviderKind.WHATSAPP_CLOUD: ("access_token", "app_secret"),
}
# Without these the provider cannot send at all.
REQUIRED_SECRETS: dict[str, frozenset[str]] = {
    ProviderKind.SSL_WIRELESS: frozenset({"api_token"}),
    ProviderKind.BULKSMSBD: frozenset({"api_key"}),
    ProviderKind.TWILIO: frozenset({"auth_token"}),
    ProviderKind.WHATSAPP_CLOUD: frozenset({"access_token"}),
}
SECRET_LABELS = {
    "api_key": _("API key"),
    "password": _("Password"),
    "api_token": _("API token"),
    "auth_token": _("Auth token"),
    "access_token": _("Access token"),
    "app_secret": _("App secret (checks the signature of delivery reports)"),
}
# Account options with their own fields; anything else goes in the JSON options.
SMTP_OPTIONS = ("host", "port", "use_tls", "use_ssl")
WHATSAPP_OPTIONS = ("template_name", "template_language")


OPTIONS_JSON_MAX_LENGTH = 4000


class ProviderAccountForm(forms.Form):
    """One provider account: the fields its kind needs. Secret fields never show what is stored; left
    empty when editing, the stored secret stays."""

    name = column_field(ProviderAccount, "name", label=_("Name"))
    sender_id = column_field(ProviderAccount, "sender_id", label=_("Sender ID"), required=False)
    username = column_field(ProviderAccount, "username", label=_("Username"), required=False)
    base_url = URLField(
        label=_("Base URL"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "url"}),
    )
    cost_per_segment = column_field(
        ProviderAccount,
        "cost_per_segment",
        label=_("Cost per SMS segment"),
        min_value=Decimal("0"),
        initial=Decimal("0"),
    )
    is_active = forms.BooleanField(
        label=_("Active (replaces the active account on this channel)"), required=False, initial=True
    )
    options_json = TextField(
        label=_("Advanced options (JSON)"),
        required=False,
        max_length=OPTIONS_JSON_MAX_LENGTH,
        multiline=True,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_('For example {"path": "/api/send", "method": "GET"}; see the provider notes.'),
    )

    def __init__(
        self,
        *args: Any,
        operator: Operator,
        kind: str,
        editing: ProviderAccount | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.operator, self.kind, self.editing = operator, kind, editing
        channel = KIND_CHANNEL[kind]
        if editing is not None:
            del self.fields["is_active"]
        sender_labels: dict[str, tuple[Any, Any]] = {
            Channel.EMAIL: (_("From address"), _("The address messages come from, e.g. billing@example.net")),
            Channel.WHATSAPP: (_("Phone number ID"), _("The WhatsApp Business phone number ID from Meta")),
        }
        label, help_text = sender_labels.get(
            channel, (_("Sender ID"), _("The approved masking name or sending number"))
        )
        if kind == ProviderKind.TWILIO:
            label, help_text = _("Sending number"), _("The sending number (+1...) or a messaging service SID (MG...)")
        self.fields["sender_id"].label, self.fields["sender_id"].help_text = label, help_text
        if kind == ProviderKind.TWILIO:
            self.fields["username"].label = _("Account SID")
            self.fields["username"].required = True
        elif kind == ProviderKind.SMTP:
            self.fields["username"].label = _("SMTP user")
        elif kind != ProviderKind.GENERIC_HTTP:
            del self.fields["username"]
        default_url = PROVIDERS[kind].default_base_url
        if default_url:
            self.fields["base_url"].help_text = _("Leave empty for the provider's own address (%(url)s).") % {
                "url": default_url
            }
        elif kind == ProviderKind.GENERIC_HTTP:
            self.fields["base_url"].required = True
            self.fields["base_url"].help_text = _("The gateway's address; the path can go in the options.")
        else:
            del self.fields["base_url"]
        if channel != Channel.SMS:
            del self.fields["cost_per_segment"]
        stored = editing.credentials if editing is not None else {}
        for key in PROVIDER_SECRETS[kind]:
            required = key in REQUIRED_SECRETS.get(kind, frozenset()) and not stored.get(key)
            self.fields[f"secret_{key}"] = TextField(
                label=SECRET_LABELS[key],
                required=required,
                max_length=500,
                strip=True,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=_("A value is stored; leave empty to keep it.") if stored.get(key) else "",
            )
        if kind == ProviderKind.SMTP:
            self.fields["option_host"] = TextField(
                label=_("SMTP server"),
                required=False,
                max_length=200,
                help_text=_("Leave empty to use the site's own mail server settings."),
            )
            self.fields["option_port"] = IntegerField(label=_("Port"), required=False, min_value=1, max_value=65535)
            self.fields["option_use_tls"] = forms.BooleanField(label=_("STARTTLS"), required=False)
            self.fields["option_use_ssl"] = forms.BooleanField(label=_("SSL/TLS from the start"), required=False)
        if kind == ProviderKind.WHATSAPP_CLOUD:
            self.fields["option_template_name"] = TextField(
                label=_("Approved template name"),
                required=False,
                max_length=120,
                help_text=_("Messages go through this template with the text as its one parameter."),
            )
            self.fields["option_template_language"] = TextField(
                label=_("Template language code"), required=False, max_length=12, initial="en"
            )
        self.order_fields(
            [
                "name",
                "sender_id",
                "username",
                *[name for name in self.fields if name.startswith("secret_")],
                "base_url",
                *[name for name in self.fields if name.startswith("option_")],
                "cost_per_segment",
                "is_active",
                "options_json",
            ]
        )
        if editing is not None and not self.is_bound:
            self._fill_from(editing)

    def _fill_from(self, account: ProviderAccount) -> None:
        options = dict(account.options or {})
        for name in ("name", "sender_id", "username", "base_url", "cost_per_segment"):
            if name in self.fields:
                self.initial[name] = getattr(account, name)
        for key in (*SMTP_OPTIONS, *WHATSAPP_OPTIONS):
            if f"option_{key}" in self.fields and key in options:
                self.initial[f"option_{key}"] = options.pop(key)
        self.initial["options_json"] = json.dumps(options, ensure_ascii=False) if options else ""

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = ProviderAccount.objects.filter(operator=self.operator, name=name)
        if self.editing is not None:
            others = others.exclude(pk=self.editing.pk)
        if others.exists():
            raise ValidationError(_("This operator already has an account with this name."))
        return name

    def clean_base_url(self) -> str:
        url: str = self.cleaned_data["base_url"]
        if url:
            try:
                check_outbound_url(url)
            except OutboundRefused as error:
                raise ValidationError(str(error), code="outbound_refused") from None
        return url

    def clean_options_json(self) -> dict[str, Any]:
        text = self.cleaned_data["options_json"].strip()
        if not text:
            return {}
        try:
            return bounds.parse_json_object(text, max_length=OPTIONS_JSON_MAX_LENGTH)
        except bounds.OutOfBounds as error:
            raise ValidationError(str(error), code="invalid_options") from None

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = dict(self.cleaned_data.get("options_json") or {})
        data = self.cleaned_data
        if self.kind == ProviderKind.SMTP:
            for key in SMTP_OPTIONS:
                options.pop(key, None)
            if data.get("option_host"):
                # A named server is configured completely here; without one the site's settings apply.
                options["host"] = data["option_host"]
                if data.get("option_port"):
                    options["port"] = data["option_port"]
                options["use_tls"] = bool(data.get("option_use_tls"))
                options["use_ssl"] = bool(data.get("option_use_ssl"))
        if self.kind == ProviderKind.WHATSAPP_CLOUD:
            for key in WHATSAPP_OPTIONS:
                options.pop(key, None)
                if data.get(f"option_{key}"):
                    options[key] = data[f"option_{key}"]
        return options

    def credentials(self) -> dict[str, str]:
        return {key: self.cleaned_data.get(f"secret_{key}") or "" for key in PROVIDER_SECRETS[self.kind]}

    def account_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "sender_id": data.get("sender_id") or "",
            "username": data.get("username") or "",
            "base_url": data.get("base_url") or "",
            "cost_per_segment": data.get("cost_per_segment") or Decimal("0"),
            "options": self.options(),
        }
