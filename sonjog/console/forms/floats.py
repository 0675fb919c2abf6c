"""Resellers' floats: the settings a parent gives a reseller's float, top-ups, adjustments, and the
tariff mapper's two fields on a reseller's package."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from sonjog.billing.models import FloatAccount, FloatEntry
from sonjog.catalog.models import Package
from sonjog.core.bounds import AmountField, column_field
from sonjog.operators.models import Operator

# The services' own bound (MAX_TOPUP): the form says it before the service has to.
FLOAT_MAX = Decimal("100000000.00")


class FloatSettingsForm(forms.Form):
    credit_limit = AmountField(
        label=_("Credit limit"),
        min_value=Decimal("0"),
        max_value=FLOAT_MAX,
        initial=Decimal("0"),
        help_text=_("0: prepaid. The float may go this far below zero."),
    )
    minimum_balance = AmountField(
        label=_("Minimum balance"),
        required=False,
        min_value=-FLOAT_MAX,
        max_value=FLOAT_MAX,
        help_text=_("Below it the reseller's new connections stop. Empty: only the credit limit stops them."),
    )
    hold_renewals = forms.BooleanField(label=_("Hold renewals below the minimum balance"), required=False)
    low_balance_alert = AmountField(
        label=_("Alert below"), min_value=Decimal("0"), max_value=FLOAT_MAX, initial=Decimal("0")
    )
    credit_back = forms.ChoiceField(
        label=_("Credit back on refunds and early ends"),
        choices=FloatAccount.CreditBack.choices,
        initial=FloatAccount.CreditBack.PRORATED,
    )

    @staticmethod
    def initial_for(account: FloatAccount) -> dict[str, Any]:
        return {
            "credit_limit": account.credit_limit,
            "minimum_balance": account.minimum_balance,
            "hold_renewals": account.hold_renewals,
            "low_balance_alert": account.low_balance_alert,
            "credit_back": account.credit_back,
        }


class FloatOpenForm(FloatSettingsForm):
    """Opening a float for one of the resellers offered (those with none yet)."""

    operator = forms.ModelChoiceField(label=_("Reseller"), queryset=Operator.objects.none())

    def __init__(self, *args: Any, resellers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: forms.ModelChoiceField = self.fields["operator"]  # type: ignore[assignment]
        field.queryset = resellers
        self.order_fields(["operator"])


class FloatTopupForm(forms.Form):
    amount = AmountField(label=_("Amount"), min_value=Decimal("0.01"), max_value=FLOAT_MAX)
    method = forms.ChoiceField(label=_("Method"), choices=FloatEntry.Method.choices, initial=FloatEntry.Method.CASH)
    reference = column_field(FloatEntry, "reference", label=_("Reference"), required=False)
    memo = column_field(FloatEntry, "memo", label=_("Note"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("method") not in (None, FloatEntry.Method.CASH) and not (data.get("reference") or "").strip():
            self.add_error("reference", gettext("A bank, bKash or Nagad top-up needs its transaction reference."))
        return data


class FloatAdjustForm(forms.Form):
    amount = AmountField(
        label=_("Amount"),
        min_value=-FLOAT_MAX,
        max_value=FLOAT_MAX,
        help_text=_("Positive adds to the float, negative takes from it."),
    )
    memo = column_field(FloatEntry, "memo", label=_("Note"), required=True)

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(gettext("An adjustment cannot be zero."))
        return amount


class WholesaleForm(forms.Form):
    """The tariff mapper: which package of the parent a reseller's package is bought as, and at what
    price the parent charges the reseller's float for it. Both or neither."""

    wholesale_package = forms.ModelChoiceField(
        label=_("Parent's package"), queryset=Package.objects.none(), required=False
    )
    wholesale_price = column_field(
        Package, "wholesale_price", label=_("Wholesale price"), required=False, min_value=Decimal("0")
    )

    def __init__(self, *args: Any, parent: Operator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: forms.ModelChoiceField = self.fields["wholesale_package"]  # type: ignore[assignment]
        field.queryset = Package.objects.filter(operator=parent).order_by("name", "pk")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if (data.get("wholesale_package") is None) != (data.get("wholesale_price") is None):
            raise forms.ValidationError(gettext("Give both the parent's package and the wholesale price, or neither."))
        return data
