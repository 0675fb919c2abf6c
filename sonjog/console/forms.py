"""Console forms. Every choice of a row (package, zone, operator, subscriber) is offered from the
acting scope only, so a tampered id fails validation like any other invalid choice; the services
then enforce the business rules (package of the same operator, and so on)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from sonjog.billing.models import AdjustmentReason, PaymentMethod
from sonjog.catalog.models import Package
from sonjog.console.access import Scope
from sonjog.console.models import BulkAction
from sonjog.core.periods import parse_period
from sonjog.customers.exceptions import InvalidPhone
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.customers.phone import normalize_phone
from sonjog.operators.models import BillingCycle, BillingMode, Operator


class LoginForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)


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
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
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
    due_min = forms.DecimalField(label=_("Due from"), required=False, max_digits=14, decimal_places=2)
    due_max = forms.DecimalField(label=_("Due up to"), required=False, max_digits=14, decimal_places=2)
    joined = forms.ChoiceField(required=False, choices=[("", ""), ("month", _("Joined this month"))])
    left = forms.ChoiceField(required=False, choices=[("", ""), ("month", _("Left this month"))])
    network = forms.ChoiceField(
        required=False,
        choices=[("", ""), ("mismatch", _("Intent/router mismatch")), ("sync_failed", _("Sync failed"))],
    )
    expiring = forms.BooleanField(required=False)
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none(), required=False)
    sort = forms.CharField(required=False, max_length=30)

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
    name = forms.CharField(label=_("Name"), max_length=200)
    phone = forms.CharField(label=_("Mobile number"), max_length=20, help_text=_("For example 01712345678"))
    email = forms.EmailField(label=_("E-mail"), required=False)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    national_id = forms.CharField(label=_("National ID"), max_length=30, required=False)
    zone = forms.ModelChoiceField(label=_("Zone"), queryset=Zone.objects.none(), required=False)
    package = PackageChoiceField(label=_("Package"), queryset=Package.objects.none())
    pppoe_username = forms.CharField(
        label=_("PPPoE username"), max_length=64, required=False, help_text=_("Leave empty to use the customer ID")
    )
    pppoe_password = forms.CharField(
        label=_("PPPoE password"), max_length=64, required=False, help_text=_("Leave empty to generate one")
    )
    activate = forms.BooleanField(label=_("Activate now (bills the first period)"), required=False, initial=True)
    activation_date = forms.DateField(
        label=_("Activation date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    billing_mode = forms.ChoiceField(
        label=_("Billing mode"), required=False, choices=[("", _("As the operator")), *BillingMode.choices]
    )
    billing_cycle = forms.ChoiceField(
        label=_("Billing cycle"), required=False, choices=[("", _("As the operator")), *BillingCycle.choices]
    )
    billing_day = forms.IntegerField(label=_("Billing day"), required=False, min_value=1, max_value=31)
    monthly_discount = forms.DecimalField(
        label=_("Monthly discount"), required=False, min_value=Decimal("0"), max_digits=14, decimal_places=2
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
    name = forms.CharField(label=_("Name"), max_length=200)
    phone = forms.CharField(label=_("Mobile number"), max_length=20)
    email = forms.EmailField(label=_("E-mail"), required=False)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    national_id = forms.CharField(label=_("National ID"), max_length=30, required=False)
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
    effective_date = forms.DateField(
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
    amount = forms.DecimalField(label=_("Amount"), min_value=Decimal("0.01"), max_digits=14, decimal_places=2)
    method = forms.ChoiceField(label=_("Method"), choices=PaymentMethod.choices, initial=PaymentMethod.CASH)
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False)
    confirm_duplicate = forms.BooleanField(required=False, widget=forms.HiddenInput)


class AdjustmentForm(forms.Form):
    direction = forms.ChoiceField(
        label=_("Type"),
        choices=[("credit", _("Credit (lowers what they owe)")), ("debit", _("Debit (raises what they owe)"))],
    )
    amount = forms.DecimalField(label=_("Amount"), min_value=Decimal("0.01"), max_digits=14, decimal_places=2)
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=[
            (AdjustmentReason.MANUAL, AdjustmentReason.MANUAL.label),
            (AdjustmentReason.OUTAGE, AdjustmentReason.OUTAGE.label),
        ],
    )
    memo = forms.CharField(label=_("Note"), max_length=300)
    effective_date = forms.DateField(
        label=_("Dated"), required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text=_("Today if empty")
    )

    def signed_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        return -amount if self.cleaned_data["direction"] == "credit" else amount


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300)


class IntentForm(forms.Form):
    intent = forms.ChoiceField(
        choices=[(ServiceIntent.SUSPENDED, _("Suspend")), (ServiceIntent.ACTIVE, _("Reactivate"))]
    )
    reason = forms.CharField(label=_("Reason"), max_length=120, required=False)


class TerminateForm(forms.Form):
    terminated_on = forms.DateField(
        label=_("Last day of service"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Today if empty"),
    )
    reason = forms.CharField(label=_("Reason"), max_length=300)


class PeriodField(forms.CharField):
    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_period(text)
        except ValueError:
            raise ValidationError(_("Write the period as YYYY-MM, for example 2026-03.")) from None


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

    def clean_period(self) -> dt.date:
        period: dt.date = self.cleaned_data["period"]
        if period.year < 2000 or period.year > 2100:
            raise ValidationError(_("That period is out of range."))
        return period


class PackageForm(forms.Form):
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    name = forms.CharField(label=_("Name"), max_length=100)
    price = forms.DecimalField(label=_("Monthly price"), min_value=Decimal("0"), max_digits=14, decimal_places=2)
    download_kbps = forms.IntegerField(label=_("Download (kbps)"), min_value=1)
    upload_kbps = forms.IntegerField(label=_("Upload (kbps)"), min_value=1)
    router_profile = forms.CharField(label=_("Router profile"), max_length=64)
    vat_applicable = forms.BooleanField(label=_("VAT applies"), required=False, initial=True)
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)

    def __init__(self, *args: Any, scope: Scope, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(self, "operator", _operators_queryset(scope))
        self.fields["operator"].initial = scope.home.pk
        if editing or not scope.spans_many:
            self.fields["operator"].required = False
            self.fields["operator"].widget = forms.HiddenInput()


class ZoneForm(forms.Form):
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    name = forms.CharField(label=_("Name"), max_length=100)
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
    message = forms.CharField(label=_("Message"), required=False, max_length=480, widget=forms.Textarea)

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
        if data.get("kind") == BulkAction.Kind.SMS and not (data.get("message") or "").strip():
            self.add_error("message", _("Write the message to send."))
        return data


class DaySheetForm(forms.Form):
    day = forms.DateField(label=_("Day"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    collector = forms.ModelChoiceField(label=_("Collector"), queryset=Subscriber.objects.none(), required=False)

    def __init__(self, *args: Any, collectors: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(self, "collector", collectors)
