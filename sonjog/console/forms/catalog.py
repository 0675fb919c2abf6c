"""Forms of the catalogue pages: packages, add-ons (and putting them on or off sale), and zones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from sonjog.catalog.models import AddOn, AddOnEffect, Package
from sonjog.console.access import Scope
from sonjog.console.forms.common import OperatorChoiceField, offer, operators_offered
from sonjog.core.bounds import column_field
from sonjog.customers.models import Zone
from sonjog.operators.models import Operator


class _OperatorOwnedForm(forms.Form):
    """A catalogue row's form: its operator is chosen among the caller's only when it spans many, and
    fixed once the row exists."""

    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())

    def __init__(self, *args: Any, scope: Scope, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer(self, "operator", operators_offered(scope))
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


class ZoneForm(forms.Form):
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    name = column_field(Zone, "name", label=_("Name"))
    parent = forms.ModelChoiceField(
        label=_("Inside zone"), queryset=Zone.objects.none(), required=False, empty_label=_("(top level)")
    )

    def __init__(self, *args: Any, scope: Scope, editing: Zone | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer(self, "operator", operators_offered(scope))
        self.fields["operator"].initial = scope.home.pk
        parents = scope.filter(Zone.objects.filter(parent__isnull=True))
        if editing is not None:
            parents = parents.filter(operator_id=editing.operator_id).exclude(pk=editing.pk)
        offer(self, "parent", parents.order_by("name"))
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
