"""The operator settings and first-owner forms, shared by `sonjog setup` and the console (the first-run
page, the Operators page): one set of rules for what a valid setting is, whichever way it comes in."""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from sonjog.core.bounds import DecimalField, EmailField, IntegerField, TextField
from sonjog.operators.models import BillingCycle, BillingMode, Operator

_CODE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_ID_PART = re.compile(r"^[A-Za-z0-9\-/_.]*$")
CUSTOMER_ID_MAX_LENGTH = 40  # Subscriber.customer_id


def time_zone_names() -> list[str]:
    return sorted(zoneinfo.available_timezones())


class OperatorSettingsForm(forms.Form):
    """Every setting of an operator. `creating` adds its code, which never changes afterwards."""

    code = TextField(
        label=_("Code"),
        max_length=40,
        help_text=_("Short name in lower case, digits and hyphens, for example dhakanet. It never changes."),
    )
    name = TextField(label=_("Name"), max_length=200)
    currency = TextField(label=_("Currency"), max_length=3, initial="BDT", help_text=_("ISO code, for example BDT"))
    time_zone = TextField(label=_("Time zone"), max_length=64, initial="Asia/Dhaka")
    phone_country = TextField(
        label=_("Phone country"), max_length=2, initial="BD", help_text=_("Country whose phone numbers are accepted")
    )
    customer_id_prefix = TextField(label=_("Customer ID prefix"), max_length=12, required=False)
    customer_id_infix = TextField(label=_("Customer ID infix"), max_length=12, required=False)
    customer_id_postfix = TextField(label=_("Customer ID postfix"), max_length=12, required=False)
    customer_id_digits = IntegerField(label=_("Customer ID digits"), min_value=1, max_value=12, initial=5)
    billing_mode = forms.ChoiceField(label=_("Billing mode"), choices=BillingMode.choices, initial=BillingMode.MONTHLY)
    billing_cycle = forms.ChoiceField(
        label=_("Billing cycle"), choices=BillingCycle.choices, initial=BillingCycle.CALENDAR
    )
    billing_day = IntegerField(
        label=_("Billing day"),
        min_value=1,
        max_value=31,
        initial=1,
        help_text=_("Day of month for the fixed-day cycle (29 to 31 fall on the last day of shorter months)"),
    )
    due_days = IntegerField(label=_("Days until due"), min_value=0, max_value=365, initial=7)
    grace_days = IntegerField(label=_("Grace days before suspension"), min_value=0, max_value=365, initial=3)
    vat_rate = DecimalField(
        label=_("VAT rate %"),
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("99.99"),
        initial=Decimal("5.00"),
    )
    vat_inclusive = forms.TypedChoiceField(
        label=_("Prices"),
        choices=[("inclusive", _("include VAT")), ("exclusive", _("exclude VAT (VAT is added)"))],
        coerce=lambda value: value == "inclusive",
        initial="inclusive",
    )
    bin_number = TextField(label=_("VAT registration (BIN)"), max_length=20, required=False)
    document_address = TextField(label=_("Address on documents"), max_length=300, required=False)
    document_phone = TextField(label=_("Phone on documents"), max_length=30, required=False)

    def __init__(self, *args: Any, creating: bool = True, **kwargs: Any) -> None:
        initial = kwargs.get("initial")
        if initial and isinstance(initial.get("vat_inclusive"), bool):
            initial["vat_inclusive"] = "inclusive" if initial["vat_inclusive"] else "exclusive"
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["code"]

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not _CODE.fullmatch(code):
            raise ValidationError(
                _("Use lower-case letters, digits and hyphens (not at either end), for example dhakanet.")
            )
        if Operator.objects.filter(code=code).exists():
            raise ValidationError(_("An operator with this code already exists."))
        return code

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if not _CURRENCY.fullmatch(currency):
            raise ValidationError(_("Give the three-letter ISO code, for example BDT or USD."))
        return currency

    def clean_time_zone(self) -> str:
        name = self.cleaned_data["time_zone"].strip()
        if name not in zoneinfo.available_timezones():
            raise ValidationError(_("Unknown time zone; give one such as Asia/Dhaka."))
        return name

    def clean_phone_country(self) -> str:
        country = self.cleaned_data["phone_country"].strip().upper()
        if not _COUNTRY.fullmatch(country):
            raise ValidationError(_("Give the two-letter country code, for example BD."))
        return country

    def _id_part(self, name: str) -> str:
        value: str = self.cleaned_data.get(name) or ""
        value = value.strip()
        if not _ID_PART.fullmatch(value):
            raise ValidationError(_("Use letters, digits and - / _ . only."))
        return value

    def clean_customer_id_prefix(self) -> str:
        return self._id_part("customer_id_prefix")

    def clean_customer_id_infix(self) -> str:
        return self._id_part("customer_id_infix")

    def clean_customer_id_postfix(self) -> str:
        return self._id_part("customer_id_postfix")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None
        parts = ("customer_id_prefix", "customer_id_infix", "customer_id_postfix")
        if all(name in data for name in parts) and data.get("customer_id_digits"):
            length = sum(len(data[name]) for name in parts) + data["customer_id_digits"]
            if length > CUSTOMER_ID_MAX_LENGTH:
                self.add_error(
                    "customer_id_digits",
                    _("A customer ID may be at most %(max)d characters; this format makes %(length)d.")
                    % {"max": CUSTOMER_ID_MAX_LENGTH, "length": length},
                )
        return data

    def settings(self) -> dict[str, Any]:
        """The cleaned settings, as the services take them (without the code)."""
        return {name: value for name, value in self.cleaned_data.items() if name != "code"}


class OwnerForm(forms.Form):
    """A first owner login, under the installation's password rules (AUTH_PASSWORD_VALIDATORS), the
    same rules every sign-in password follows."""

    owner_username = TextField(label=_("Owner's username"), max_length=150)
    owner_password = forms.CharField(
        label=_("Owner's password"), strip=False, max_length=4096, widget=forms.PasswordInput(render_value=False)
    )
    owner_email = EmailField(label=_("Owner's e-mail"), required=False)

    def __init__(self, *args: Any, require: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require = require
        if not require:
            for field in self.fields.values():
                field.required = False

    def clean_owner_username(self) -> str:
        username = self.cleaned_data["owner_username"].strip()
        if username and not re.fullmatch(r"[\w.@+-]+", username):
            raise ValidationError(_("Use letters, digits and @ . + - _ only."))
        if username and User.objects.filter(username=username).exists():
            raise ValidationError(_("This username is taken."))
        return username

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None
        username, password = data.get("owner_username"), data.get("owner_password")
        if not self.require and not username and not password:
            return data
        if username and not password and "owner_password" not in self.errors:
            self.add_error("owner_password", _("Give the owner a password."))
        elif password and not username and "owner_username" not in self.errors:
            self.add_error("owner_username", _("Give the owner a username."))
        elif password:
            try:
                validate_password(password, User(username=username or "", email=data.get("owner_email") or ""))
            except ValidationError as error:
                self.add_error("owner_password", error)
        return data

    @property
    def wanted(self) -> bool:
        return bool(self.cleaned_data.get("owner_username"))
