"""Forms of a collector's cash hand-over (issue 15): approving it with the amount counted, or
disputing it with a note. Each carries the amount the manager was shown (`expected`), which the
service checks against the payments when it decides."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from sonjog.billing.models import CashHandover
from sonjog.core.bounds import AmountField, column_field


class HandoverApproveForm(forms.Form):
    counted = AmountField(label=_("Counted"), min_value=Decimal("0.00"), help_text=_("The cash handed over"))
    approval_note = column_field(CashHandover, "approval_note", label=_("Note"), required=False)
    expected = AmountField(label=_("Expected"), min_value=Decimal("0.00"), widget=forms.HiddenInput)


class HandoverDisputeForm(forms.Form):
    note = column_field(CashHandover, "note", label=_("What is wrong"), required=True)
    # Not `counted`: the approve form beside it on the page has that field.
    count = AmountField(label=_("Counted"), min_value=Decimal("0.00"), required=False, help_text=_("If counted"))
    expected = AmountField(label=_("Expected"), min_value=Decimal("0.00"), widget=forms.HiddenInput)
