"""Forms of the messaging pages: message templates (checked for unknown variables), bulk SMS, SMS
credit and the operator's message settings. Provider accounts have their own module."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from sonjog.catalog.models import Package
from sonjog.console.forms.common import PackageChoiceField, offer
from sonjog.core import bounds
from sonjog.core.bounds import AmountField, TextField, URLField, column_field
from sonjog.customers.models import ServiceIntent, Zone
from sonjog.notifications.models import (
    Channel,
    Event,
    Language,
    MessageTemplate,
    NotificationSettings,
    SmsCreditEntry,
)
from sonjog.notifications.rendering import VARIABLES, template_variables
from sonjog.operators.models import Operator


def unknown_variables(text: str) -> list[str]:
    return sorted({name for name in template_variables(text) if name not in VARIABLES})


def _placeholder(name: str) -> str:
    return "{{ " + name + " }}"


def unknown_variables_message(names: list[str]) -> str:
    """The error a template or bulk text with unknown `{{ names }}` gets, naming what is allowed."""
    return ngettext(
        "Unknown variable %(names)s. Use only: %(allowed)s.",
        "Unknown variables %(names)s. Use only: %(allowed)s.",
        len(names),
    ) % {
        "names": ", ".join(_placeholder(name) for name in names),
        "allowed": ", ".join(_placeholder(name) for name in VARIABLES),
    }


def _checked_template_text(text: str) -> str:
    # Browsers send CRLF line ends; in an SMS the CR is one more character paid for.
    text = text.replace("\r\n", "\n")
    unknown = unknown_variables(text)
    if unknown:
        raise ValidationError(unknown_variables_message(unknown), code="unknown_variable")
    return text


TEMPLATE_BODY_MAX_LENGTH = 2000


class MessageTemplateForm(forms.Form):
    subject = column_field(MessageTemplate, "subject", label=_("Subject"), required=False)
    body = column_field(
        MessageTemplate,
        "body",
        label=_("Text"),
        max_length=TEMPLATE_BODY_MAX_LENGTH,
        multiline=True,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    is_active = forms.BooleanField(
        label=_("Use this wording"),
        required=False,
        initial=True,
        help_text=_("Untick to fall back to the built-in wording without losing this text."),
    )

    def __init__(self, *args: Any, channel: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if channel != Channel.EMAIL:
            del self.fields["subject"]

    def clean_subject(self) -> str:
        return _checked_template_text(self.cleaned_data["subject"])

    def clean_body(self) -> str:
        return _checked_template_text(self.cleaned_data["body"])


class SmsTemplateChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.get_event_display()} · {obj.get_language_display()}"


class BulkSmsForm(forms.Form):
    """Who gets a bulk SMS (the subscriber list's filters, within one operator) and what it says."""

    zone = forms.ModelChoiceField(
        label=_("Zone"), queryset=Zone.objects.none(), required=False, empty_label=_("Any zone")
    )
    package = PackageChoiceField(
        label=_("Package"), queryset=Package.objects.none(), required=False, empty_label=_("Any package")
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *ServiceIntent.choices]
    )
    owes = forms.BooleanField(label=_("Owes money"), required=False)
    q = TextField(label=_("Search"), required=False, max_length=bounds.QUERY_TEXT_MAX_LENGTH)
    template = SmsTemplateChoiceField(
        label=_("SMS template"),
        queryset=MessageTemplate.objects.none(),
        required=False,
        empty_label=_("(write the text below)"),
    )
    text = TextField(
        label=_("Message"),
        required=False,
        max_length=1000,
        multiline=True,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Variables such as {{ name }} and {{ amount_due }} take each subscriber's own values."),
    )
    token = TextField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, operator: Operator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operator = operator
        offer(self, "zone", Zone.objects.filter(operator=operator).select_related("parent").order_by("name"))
        offer(self, "package", Package.objects.filter(operator=operator).order_by("price", "name"))
        offer(
            self,
            "template",
            MessageTemplate.objects.filter(operator=operator, channel=Channel.SMS, is_active=True).order_by(
                "event", "language"
            ),
        )

    def clean_text(self) -> str:
        return _checked_template_text(self.cleaned_data["text"])

    def clean_token(self) -> str:
        token: str = self.cleaned_data["token"]
        if token and not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token):
            raise ValidationError(_("This confirmation is not valid; preview the message again."))
        return token

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        template, text = data.get("template"), (data.get("text") or "").strip()
        if template is None and not text and "text" not in self.errors:
            self.add_error("text", _("Write the message or pick an SMS template."))
        elif template is not None and text:
            self.add_error("text", _("Pick a template or write the text, not both."))
        return data


# The secrets each provider reads from the account's credentials (see sonjog.notifications.providers).
class SmsTopUpForm(forms.Form):
    amount = AmountField(label=_("Amount"), min_value=Decimal("0.01"))
    note = column_field(SmsCreditEntry, "note", label=_("Note"), required=False, help_text=_("e.g. the invoice number"))


class SmsThresholdForm(forms.Form):
    threshold = AmountField(label=_("Alert when the credit falls below"), min_value=Decimal("0"))


class NotificationSettingsForm(forms.Form):
    quiet_hours_enabled = forms.BooleanField(
        label=_("Hold messages during quiet hours"),
        required=False,
        help_text=_("One-time codes are sent at any hour."),
    )
    quiet_start = forms.TimeField(label=_("Quiet from"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    quiet_end = forms.TimeField(label=_("Quiet until"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    default_language = forms.ChoiceField(
        label=_("Default language"),
        choices=Language.choices,
        help_text=_("For subscribers who have not chosen one."),
    )
    default_channels = forms.MultipleChoiceField(
        label=_("Channels for automatic messages"),
        choices=Channel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked means SMS and e-mail."),
    )
    muted_events = forms.MultipleChoiceField(
        label=_("Do not tell subscribers about"),
        choices=[(value, label) for value, label in Event.choices if value not in (Event.OTP, Event.BULK)],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    portal_url = URLField(
        label=_("Customer portal link"),
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "url"}),
        help_text=_("Shown in messages as {{ portal_link }}."),
    )
    payment_instructions = column_field(
        NotificationSettings,
        "payment_instructions",
        label=_("How to pay"),
        required=False,
        help_text=_(
            "Shown in messages as {{ how_to_pay }}, and in the suspension notice, "
            "e.g. bKash Merchant 01XXXXXXXXX, reference: your customer ID."
        ),
    )
