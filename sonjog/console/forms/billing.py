"""Forms of the money pages: recording a payment, an adjustment, and "Generate invoices"."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from sonjog.billing.models import AdjustmentReason, LedgerEntry, Payment, PaymentMethod
from sonjog.console.access import Scope
from sonjog.console.forms.common import OperatorChoiceField, PeriodField, offer, operators_offered
from sonjog.core.bounds import AmountField, DateField, column_field
from sonjog.operators.models import Operator


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
        offer(self, "operator", operators_offered(scope))

    def operator_ids(self) -> list[int]:
        chosen = self.cleaned_data.get("operator")
        return [chosen.pk] if chosen is not None else self.scope.operator_ids
