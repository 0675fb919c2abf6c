"""Forms of the online payments desk that give money back and check a day: a refund of an applied
payment (amount and reason, confirmed on a second step), and "Run now" of the settlement check for
one merchant account and day. The account is offered from the caller's scope only; the services
enforce the bounds (the amount left to refund, an applied payment)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from sonjog.console.formatting import money
from sonjog.console.forms.common import offer
from sonjog.core.bounds import AmountField, DateField, column_field
from sonjog.gateways.models import GatewayAccount, GatewayRefund

# A day further back than this is not checked from the console: the gateways' own listings do not
# keep the days for ever, and a typing slip (year 2002) should be refused, not sent.
SETTLEMENT_DAYS_BACK = 400


class RefundForm(forms.Form):
    amount = AmountField(label=_("Amount to refund"), min_value=Decimal("0.01"))
    reason = column_field(GatewayRefund, "reason", label=_("Reason"), required=True)

    def __init__(self, *args: Any, left: Decimal, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = left
        self.currency = currency
        field = self.fields["amount"]
        assert isinstance(field, forms.DecimalField)
        field.widget.attrs["max"] = str(left)

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount > self.left:
            raise ValidationError(
                _("Only %(left)s is left to refund of this payment.") % {"left": money(self.left, self.currency)},
                code="over_refund",
            )
        return amount

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if not reason:
            raise ValidationError(_("Say why the money goes back."), code="required")
        return reason


class AccountChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        assert isinstance(obj, GatewayAccount)
        return f"{obj.get_gateway_display()} · {obj.name} ({obj.operator.name})"


class SettlementRunForm(forms.Form):
    gateway_account = AccountChoiceField(label=_("Gateway account"), queryset=GatewayAccount.objects.none())
    day = DateField(label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, accounts: QuerySet[GatewayAccount], today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer(self, "gateway_account", accounts)
        self.today = today

    def clean_day(self) -> dt.date:
        day: dt.date = self.cleaned_data["day"]
        if day > self.today:
            raise ValidationError(_("A day that has not come yet has nothing to check."), code="future")
        if day < self.today - dt.timedelta(days=SETTLEMENT_DAYS_BACK):
            raise ValidationError(
                _("Check a day within the last %(days)s days.") % {"days": SETTLEMENT_DAYS_BACK}, code="too_old"
            )
        return day
