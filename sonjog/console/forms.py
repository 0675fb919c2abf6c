"""Console forms. Every choice of a row (package, zone, operator, subscriber) is offered from the
acting scope only, so a tampered id fails validation like any other invalid choice; the services
then enforce the business rules (package of the same operator, and so on)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from sonjog.billing.models import AdjustmentReason, LedgerEntry, Payment, PaymentMethod
from sonjog.catalog.models import AddOn, AddOnEffect, Package
from sonjog.console.access import Scope
from sonjog.console.models import BulkAction
from sonjog.core import bounds
from sonjog.core.bounds import AmountField, DateField, IntegerField, TextField, URLField, column_field
from sonjog.core.outbound import OutboundRefused, check_outbound_url
from sonjog.core.periods import add_months, parse_period
from sonjog.customers.exceptions import InvalidPhone
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.customers.phone import normalize_phone
from sonjog.notifications.models import (
    KIND_CHANNEL,
    Channel,
    Event,
    Language,
    MessageTemplate,
    NotificationSettings,
    ProviderAccount,
    ProviderKind,
    SmsCreditEntry,
)
from sonjog.notifications.providers import PROVIDERS
from sonjog.notifications.rendering import VARIABLES, template_variables
from sonjog.operators.models import BillingCycle, BillingMode, Operator


class LoginForm(forms.Form):
    username = TextField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, max_length=4096, widget=forms.PasswordInput)


class OperatorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{'· ' * obj.depth}{obj.name}"


class PackageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.price})"


def _offer(form: forms.Form, name: str, queryset: Any) -> None:
    """Restrict a model-choice field to the rows the acting scope may pick."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = queryset


def _operators_queryset(scope: Scope) -> Any:
    return Operator.objects.filter(pk__in=scope.operator_ids).order_by("path")


class SubscriberFilterForm(forms.Form):
    q = TextField(label=_("Search"), required=False, max_length=bounds.QUERY_TEXT_MAX_LENGTH)
    zone = forms.ModelChoiceField(
        label=_("Zone"), queryset=Zone.objects.none(), required=False, empty_label=_("Any zone")
    )
    package = PackageChoiceField(
        label=_("Package"), queryset=Package.objects.none(), required=False, empty_label=_("Any package")
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *ServiceIntent.choices]
    )
    mode = forms.ChoiceField(
        label=_("Billing mode"), required=False, choices=[("", _("Any mode")), *BillingMode.choices]
    )
    online = forms.ChoiceField(
        label=_("Online"),
        required=False,
        choices=[("", _("Online or not")), ("yes", _("Online")), ("no", _("Offline"))],
    )
    due_min = AmountField(label=_("Due from"), required=False)
    due_max = AmountField(label=_("Due up to"), required=False)
    joined = forms.ChoiceField(required=False, choices=[("", ""), ("month", _("Joined this month"))])
    left = forms.ChoiceField(required=False, choices=[("", ""), ("month", _("Left this month"))])
    network = forms.ChoiceField(
        required=False,
        choices=[("", ""), ("mismatch", _("Intent/router mismatch")), ("sync_failed", _("Sync failed"))],
    )
    expiring = forms.BooleanField(required=False)
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none(), required=False)
    sort = TextField(required=False, max_length=30)

    def __init__(self, *args: Any, scope: Scope, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scope = scope
        _offer(self, "zone", scope.filter(Zone.objects.select_related("parent")).order_by("name"))
        _offer(self, "package", scope.filter(Package.objects.all()).order_by("price", "name"))
        _offer(self, "operator", _operators_queryset(scope))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        low, high = data.get("due_min"), data.get("due_max")
        if low is not None and high is not None and low > high:
            self.add_error("due_max", _("The upper bound is below the lower bound."))
        return data


class SubscriberCreateForm(forms.Form):
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    name = column_field(Subscriber, "name", label=_("Name"))
    phone = column_field(Subscriber, "phone", label=_("Mobile number"), help_text=_("For example 01712345678"))
    email = column_field(Subscriber, "email", label=_("E-mail"), required=False)
    address = column_field(Subscriber, "address", label=_("Address"), required=False)
    national_id = column_field(Subscriber, "national_id", label=_("National ID"), required=False)
    zone = forms.ModelChoiceField(label=_("Zone"), queryset=Zone.objects.none(), required=False)
    package = PackageChoiceField(label=_("Package"), queryset=Package.objects.none())
    pppoe_username = column_field(
        Subscriber,
        "pppoe_username",
        label=_("PPPoE username"),
        required=False,
        help_text=_("Leave empty to use the customer ID"),
    )
    pppoe_password = column_field(
        Subscriber,
        "pppoe_password",
        label=_("PPPoE password"),
        required=False,
        help_text=_("Leave empty to generate one"),
    )
    activate = forms.BooleanField(label=_("Activate now (bills the first period)"), required=False, initial=True)
    activation_date = DateField(
        label=_("Activation date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    billing_mode = forms.ChoiceField(
        label=_("Billing mode"), required=False, choices=[("", _("As the operator")), *BillingMode.choices]
    )
    billing_cycle = forms.ChoiceField(
        label=_("Billing cycle"), required=False, choices=[("", _("As the operator")), *BillingCycle.choices]
    )
    billing_day = column_field(
        Subscriber, "billing_day", label=_("Billing day"), required=False, min_value=1, max_value=31
    )
    monthly_discount = column_field(
        Subscriber, "monthly_discount", label=_("Monthly discount"), required=False, min_value=Decimal("0")
    )
    is_vip = forms.BooleanField(label=_("VIP (never suspended)"), required=False)

    def __init__(self, *args: Any, scope: Scope, can_discount: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scope = scope
        _offer(self, "operator", _operators_queryset(scope))
        self.fields["operator"].initial = scope.home.pk
        _offer(self, "zone", scope.filter(Zone.objects.select_related("parent")).order_by("name"))
        _offer(self, "package", scope.filter(Package.objects.filter(is_active=True)).order_by("price"))
        if not can_discount:
            del self.fields["monthly_discount"]
        if not scope.spans_many:
            self.fields["operator"].widget = forms.HiddenInput()

    def clean_phone(self) -> str:
        operator = self.cleaned_data.get("operator") or self.scope.home
        try:
            return normalize_phone(self.cleaned_data["phone"], operator.phone_country)
        except InvalidPhone as error:
            raise ValidationError(str(error)) from None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        operator: Operator | None = data.get("operator")
        if operator is None:
            return data
        package, zone = data.get("package"), data.get("zone")
        if package is not None and package.operator_id != operator.pk:
            self.add_error("package", _("This package belongs to another operator."))
        if zone is not None and zone.operator_id != operator.pk:
            self.add_error("zone", _("This zone belongs to another operator."))
        username = (data.get("pppoe_username") or "").strip()
        # Usernames are unique across the whole database (one RADIUS namespace), not only per operator.
        if username and Subscriber.objects.filter(pppoe_username=username).exists():
            self.add_error("pppoe_username", _("This PPPoE username is already in use."))
        if data.get("billing_cycle") == BillingCycle.FIXED_DAY and not data.get("billing_day"):
            self.add_error("billing_day", _("A fixed-day cycle needs its day."))
        return data


class ContactForm(forms.Form):
    name = column_field(Subscriber, "name", label=_("Name"))
    phone = column_field(Subscriber, "phone", label=_("Mobile number"))
    email = column_field(Subscriber, "email", label=_("E-mail"), required=False)
    address = column_field(Subscriber, "address", label=_("Address"), required=False)
    national_id = column_field(Subscriber, "national_id", label=_("National ID"), required=False)
    zone = forms.ModelChoiceField(label=_("Zone"), queryset=Zone.objects.none(), required=False)

    def __init__(self, *args: Any, subscriber: Subscriber, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscriber = subscriber
        _offer(self, "zone", Zone.objects.filter(operator_id=subscriber.operator_id).select_related("parent"))

    def clean_phone(self) -> str:
        try:
            return normalize_phone(self.cleaned_data["phone"], self.subscriber.operator.phone_country)
        except InvalidPhone as error:
            raise ValidationError(str(error)) from None


class ChangePackageForm(forms.Form):
    package = PackageChoiceField(label=_("New package"), queryset=Package.objects.none())
    effective_date = DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text=_("Today if empty")
    )

    def __init__(self, *args: Any, subscriber: Subscriber, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(
            self,
            "package",
            Package.objects.filter(operator_id=subscriber.operator_id, is_active=True)
            .exclude(pk=subscriber.package_id)
            .order_by("price"),
        )


class PaymentForm(forms.Form):
    amount = AmountField(label=_("Amount"), min_value=Decimal("0.01"))
    method = forms.ChoiceField(label=_("Method"), choices=PaymentMethod.choices, initial=PaymentMethod.CASH)
    reference = column_field(Payment, "reference", label=_("Reference"), required=False)
    confirm_duplicate = forms.BooleanField(required=False, widget=forms.HiddenInput)


class AdjustmentForm(forms.Form):
    direction = forms.ChoiceField(
        label=_("Type"),
        choices=[("credit", _("Credit (lowers what they owe)")), ("debit", _("Debit (raises what they owe)"))],
    )
    amount = AmountField(label=_("Amount"), min_value=Decimal("0.01"))
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=[
            (AdjustmentReason.MANUAL, AdjustmentReason.MANUAL.label),
            (AdjustmentReason.OUTAGE, AdjustmentReason.OUTAGE.label),
        ],
    )
    memo = column_field(LedgerEntry, "memo", label=_("Note"), required=True)
    effective_date = DateField(
        label=_("Dated"), required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text=_("Today if empty")
    )

    def signed_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        return -amount if self.cleaned_data["direction"] == "credit" else amount


class ReasonForm(forms.Form):
    reason = TextField(label=_("Reason"), max_length=300)


class IntentForm(forms.Form):
    intent = forms.ChoiceField(
        choices=[(ServiceIntent.SUSPENDED, _("Suspend")), (ServiceIntent.ACTIVE, _("Reactivate"))]
    )
    reason = TextField(label=_("Reason"), max_length=120, required=False)


class TerminateForm(forms.Form):
    terminated_on = DateField(
        label=_("Last day of service"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Today if empty"),
    )
    reason = TextField(label=_("Reason"), max_length=300)


class PeriodField(forms.CharField):
    """A month written YYYY-MM whose every day is within the dates anything is billed for."""

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        if bounds.text_problem(text) is not None or len(text) > 20:
            raise ValidationError(_("Write the period as YYYY-MM, for example 2026-03."))
        try:
            period = parse_period(text)
        except ValueError:
            raise ValidationError(_("Write the period as YYYY-MM, for example 2026-03.")) from None
        try:
            bounds.check_date(period)
            bounds.check_date(add_months(period, 1) - dt.timedelta(days=1))
        except bounds.OutOfBounds:
            raise ValidationError(_("That period is out of range.")) from None
        return period


class GenerateForm(forms.Form):
    period = PeriodField(
        label=_("Period (YYYY-MM)"), widget=forms.TextInput(attrs={"maxlength": 7, "placeholder": "2026-03"})
    )
    operator = OperatorChoiceField(
        label=_("Operator"), queryset=Operator.objects.none(), required=False, empty_label=_("All operators I manage")
    )

    def __init__(self, *args: Any, scope: Scope, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scope = scope
        _offer(self, "operator", _operators_queryset(scope))

    def operator_ids(self) -> list[int]:
        chosen = self.cleaned_data.get("operator")
        return [chosen.pk] if chosen is not None else self.scope.operator_ids


class _OperatorOwnedForm(forms.Form):
    """A catalogue row's form: its operator is chosen among the caller's only when it spans many, and
    fixed once the row exists."""

    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())

    def __init__(self, *args: Any, scope: Scope, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(self, "operator", _operators_queryset(scope))
        self.fields["operator"].initial = scope.home.pk
        if editing or not scope.spans_many:
            self.fields["operator"].required = False
            self.fields["operator"].widget = forms.HiddenInput()


class PackageForm(_OperatorOwnedForm):
    name = column_field(Package, "name", label=_("Name"))
    price = column_field(Package, "price", label=_("Monthly price"), min_value=Decimal("0"))
    download_kbps = column_field(Package, "download_kbps", label=_("Download (kbps)"), min_value=1)
    upload_kbps = column_field(Package, "upload_kbps", label=_("Upload (kbps)"), min_value=1)
    router_profile = column_field(Package, "router_profile", label=_("Router profile"))
    vat_applicable = forms.BooleanField(label=_("VAT applies"), required=False, initial=True)
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)


class AddOnForm(_OperatorOwnedForm):
    name = column_field(AddOn, "name", label=_("Name"))
    price = column_field(AddOn, "price", label=_("Monthly price"), min_value=Decimal("0.01"))
    vat_applicable = forms.BooleanField(label=_("VAT applies"), required=False, initial=True)
    effect = forms.ChoiceField(label=_("Router effect"), choices=AddOnEffect.choices, initial=AddOnEffect.NONE)
    effect_value = column_field(
        AddOn,
        "effect_value",
        label=_("Address list or pool"),
        required=False,
        help_text=_("The address-list name on the router; for a static IP, the address pool (optional)."),
    )
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("effect") == AddOnEffect.ADDRESS_LIST and not (data.get("effect_value") or "").strip():
            self.add_error("effect_value", _("Name the address list the router puts these subscribers on."))
        return data


class AddOnSaleForm(forms.Form):
    on_sale = forms.TypedChoiceField(choices=[("1", _("On sale")), ("0", _("Off sale"))], coerce=lambda v: v == "1")


class AddOnChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.price})"


class AddOnActivateForm(forms.Form):
    addon = AddOnChoiceField(label=_("Add-on"), queryset=AddOn.objects.none())
    start_date = DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text=_("Today if empty")
    )

    def __init__(self, *args: Any, subscriber: Subscriber, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        running = SubscriberAddOn.objects.filter(subscriber=subscriber, end_date__isnull=True).values("addon_id")
        _offer(
            self,
            "addon",
            AddOn.objects.filter(operator_id=subscriber.operator_id, is_active=True)
            .exclude(pk__in=running)
            .order_by("name"),
        )


class AddOnDeactivateForm(forms.Form):
    end_date = DateField(
        label=_("Ends on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The first day without it; today if empty. Days already billed from then on are credited."),
    )


class ZoneForm(forms.Form):
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    name = column_field(Zone, "name", label=_("Name"))
    parent = forms.ModelChoiceField(
        label=_("Inside zone"), queryset=Zone.objects.none(), required=False, empty_label=_("(top level)")
    )

    def __init__(self, *args: Any, scope: Scope, editing: Zone | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(self, "operator", _operators_queryset(scope))
        self.fields["operator"].initial = scope.home.pk
        parents = scope.filter(Zone.objects.filter(parent__isnull=True))
        if editing is not None:
            parents = parents.filter(operator_id=editing.operator_id).exclude(pk=editing.pk)
        _offer(self, "parent", parents.order_by("name"))
        if editing is not None or not scope.spans_many:
            self.fields["operator"].required = False
            self.fields["operator"].widget = forms.HiddenInput()
        self.editing = editing
        self.scope = scope

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        operator = self.editing.operator if self.editing is not None else (data.get("operator") or self.scope.home)
        parent = data.get("parent")
        if parent is not None and parent.operator_id != operator.pk:
            self.add_error("parent", _("This zone belongs to another operator."))
        return data


class BulkActionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Action"), choices=BulkAction.Kind.choices)
    subscribers = forms.ModelMultipleChoiceField(queryset=Subscriber.objects.none(), required=False)
    all_matching = forms.BooleanField(required=False)
    package = PackageChoiceField(label=_("Package"), queryset=Package.objects.none(), required=False)
    message = TextField(label=_("Message"), required=False, max_length=480, multiline=True, widget=forms.Textarea)

    def __init__(self, *args: Any, scope: Scope, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(self, "subscribers", scope.filter(Subscriber.objects.all()))
        _offer(self, "package", scope.filter(Package.objects.filter(is_active=True)))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("subscribers") and not data.get("all_matching"):
            raise ValidationError(_("Tick at least one subscriber."))
        if data.get("kind") == BulkAction.Kind.CHANGE_PACKAGE and data.get("package") is None:
            self.add_error("package", _("Choose the package to move them to."))
        if data.get("kind") == BulkAction.Kind.SMS:
            self.add_error("kind", _("Send SMS from Messaging, Bulk SMS: it shows the count and the cost first."))
        return data


class DaySheetForm(forms.Form):
    day = DateField(label=_("Day"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    collector = forms.ModelChoiceField(label=_("Collector"), queryset=Subscriber.objects.none(), required=False)

    def __init__(self, *args: Any, collectors: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(self, "collector", collectors)


# -- messaging --------------------------------------------------------------------------------------


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
        _offer(self, "zone", Zone.objects.filter(operator=operator).select_related("parent").order_by("name"))
        _offer(self, "package", Package.objects.filter(operator=operator).order_by("price", "name"))
        _offer(
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
