"""Forms of the subscriber pages: creating a subscriber, contact details, package changes, add-ons,
suspension and termination, and bulk actions on the list."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import ModelChoiceIterator
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from sonjog.catalog.models import AddOn, Package
from sonjog.console.access import Scope
from sonjog.console.forms.common import (
    OperatorChoiceField,
    PackageChoiceField,
    PricedChoiceField,
    offer,
    operators_offered,
)
from sonjog.console.models import BulkAction
from sonjog.core.bounds import DateField, TextField, column_field
from sonjog.customers.exceptions import InvalidPhone
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.customers.phone import normalize_phone
from sonjog.operators.models import BillingCycle, BillingMode, Operator


def label_with_operator(field: forms.Field) -> None:
    """Name each choice's operator after it ("Home 10 Mbps (800.00) — North reseller"): what a picker
    shows a login that sees several operators, whose packages and zones may share names."""
    assert isinstance(field, forms.ModelChoiceField) and field.queryset is not None
    own_label = field.label_from_instance

    def label(obj: Any) -> str:
        return f"{own_label(obj)} — {obj.operator.name}"

    field.label_from_instance = label  # type: ignore[method-assign]
    field.queryset = field.queryset.select_related("operator")


class _OfferedChoices(ModelChoiceIterator):
    """The choices a select shows, narrower than what the field accepts (so a choice of the wrong
    operator still reaches `clean` and gets an error naming the operators)."""

    def __init__(self, field: forms.ModelChoiceField, queryset: QuerySet[Any]) -> None:
        super().__init__(field)
        self.queryset = queryset


def _show_only(field: forms.Field, queryset: QuerySet[Any]) -> None:
    assert isinstance(field, forms.ModelChoiceField)
    field.widget.choices = _OfferedChoices(field, queryset)  # type: ignore[attr-defined]


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
        offer(self, "operator", operators_offered(scope))
        self.fields["operator"].initial = scope.home.pk
        offer(self, "zone", scope.filter(Zone.objects.select_related("parent")).order_by("name"))
        offer(self, "package", scope.filter(Package.objects.filter(is_active=True)).order_by("price"))
        if not can_discount:
            del self.fields["monthly_discount"]
        if not scope.spans_many:
            self.fields["operator"].widget = forms.HiddenInput()
            return
        label_with_operator(self.fields["package"])
        label_with_operator(self.fields["zone"])
        # The package and zone selects offer the chosen operator's only (the page reloads them when the
        # operator changes); what is posted is still checked against the whole scope in `clean`.
        chosen = self.chosen_operator()
        for name in ("package", "zone"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField) and field.queryset is not None
            _show_only(field, field.queryset.filter(operator=chosen))
        self.fields["operator"].widget.attrs.update(
            {"hx-get": reverse("console:subscriber_create"), "hx-trigger": "change", "hx-swap": "none"}
        )

    def chosen_operator(self) -> Operator:
        """The operator the form is filled for: the posted (or asked-for) one when it is in scope, else
        the login's own."""
        wanted = self.data.get("operator") if self.data else self.initial.get("operator")
        field = self.fields["operator"]
        assert isinstance(field, forms.ModelChoiceField)
        try:
            found = field.clean(wanted) if wanted not in (None, "") else None
        except ValidationError:
            found = None
        return found if found is not None else self.scope.home

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
            self.add_error(
                "package",
                _("“%(package)s” is %(owner)s's package; choose one of %(operator)s's packages.")
                % {"package": package.name, "owner": package.operator.name, "operator": operator.name},
            )
        if zone is not None and zone.operator_id != operator.pk:
            self.add_error(
                "zone",
                _("“%(zone)s” is %(owner)s's zone; choose one of %(operator)s's zones.")
                % {"zone": zone, "owner": zone.operator.name, "operator": operator.name},
            )
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
        offer(self, "zone", Zone.objects.filter(operator_id=subscriber.operator_id).select_related("parent"))

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

    def __init__(self, *args: Any, subscriber: Subscriber, with_operator: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer(
            self,
            "package",
            Package.objects.filter(operator_id=subscriber.operator_id, is_active=True)
            .exclude(pk=subscriber.package_id)
            .order_by("price"),
        )
        if with_operator:
            label_with_operator(self.fields["package"])


class ReasonForm(forms.Form):
    reason = TextField(label=_("Reason"), max_length=300)


class InvoiceVoidForm(ReasonForm):
    move_payments = forms.BooleanField(
        label=_("Move what was paid on it to the other open bills (kept as credit if there are none)"),
        required=False,
    )


class IntentForm(forms.Form):
    intent = forms.ChoiceField(
        choices=[(ServiceIntent.SUSPENDED, _("Suspend")), (ServiceIntent.ACTIVE, _("Reactivate"))],
        widget=forms.HiddenInput,
    )
    reason = TextField(label=_("Reason"), max_length=120)
    # Reactivating a subscriber who is still overdue: the next overdue sweep suspends them again.
    confirm_overdue = forms.BooleanField(
        label=_("Reactivate anyway: I know the overdue sweep will suspend again until it is paid"), required=False
    )


class PasswordResetForm(forms.Form):
    send_sms = forms.BooleanField(label=_("Send the new password to the subscriber by SMS"), required=False)


class TerminateForm(forms.Form):
    terminated_on = DateField(
        label=_("Last day of service"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Today if empty"),
    )
    reason = TextField(label=_("Reason"), max_length=300)


class AddOnChoiceField(PricedChoiceField):
    """An add-on, shown with its price in the reader's language."""


class AddOnActivateForm(forms.Form):
    addon = AddOnChoiceField(label=_("Add-on"), queryset=AddOn.objects.none())
    start_date = DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text=_("Today if empty")
    )

    def __init__(self, *args: Any, subscriber: Subscriber, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        running = SubscriberAddOn.objects.filter(subscriber=subscriber, end_date__isnull=True).values("addon_id")
        offer(
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


class BulkActionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Action"), choices=BulkAction.Kind.choices)
    subscribers = forms.ModelMultipleChoiceField(queryset=Subscriber.objects.none(), required=False)
    all_matching = forms.BooleanField(required=False)
    package = PackageChoiceField(label=_("Package"), queryset=Package.objects.none(), required=False)
    message = TextField(label=_("Message"), required=False, max_length=480, multiline=True, widget=forms.Textarea)

    def __init__(self, *args: Any, scope: Scope, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer(self, "subscribers", scope.filter(Subscriber.objects.all()))
        offer(self, "package", scope.filter(Package.objects.filter(is_active=True)))

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
