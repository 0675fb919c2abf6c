"""The gateway account form: one operator's merchant account at bKash, Nagad or SSLCommerz, with the
credentials that gateway needs. Credentials are write-only: never shown back (not even after a form
error), and left empty when editing they keep what is stored. The API address passes the same
outbound check as every address this installation calls."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from sonjog.console.access import Scope
from sonjog.console.forms.common import OperatorChoiceField, offer, operators_offered
from sonjog.core.bounds import TextField, URLField, column_field
from sonjog.core.outbound import OutboundRefused, check_outbound_url
from sonjog.gateways.clients.nagad import load_private_key, load_public_key
from sonjog.gateways.models import FeeMode, Gateway, GatewayAccount
from sonjog.gateways.services import REQUIRED_CREDENTIALS
from sonjog.operators.models import Operator

CREDENTIAL_MAX_LENGTH = 200
# An RSA key of 4096 bits is about 3,300 characters of PEM.
KEY_MAX_LENGTH = 8000
CREDENTIAL_LABELS: dict[str, Promise] = {
    "username": _("Username"),
    "password": _("Password"),
    "app_key": _("App key"),
    "app_secret": _("App secret"),
    "merchant_id": _("Merchant ID"),
    "merchant_private_key": _("Merchant private key (PEM)"),
    "gateway_public_key": _("Nagad's public key (PEM)"),
    "store_id": _("Store ID"),
    "store_password": _("Store password"),
}
# Keys are pasted into a text area; every other credential is one line.
KEY_CREDENTIALS = frozenset({"merchant_private_key", "gateway_public_key"})


class SecretTextarea(forms.Textarea):
    """A text area that never shows a value, not even the one just posted."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        return super().get_context(name, None, attrs)


def credential_field_name(key: str) -> str:
    return f"credential_{key}"


class GatewayAccountForm(forms.Form):
    """A merchant account of `gateway`: new (for an operator of the caller's scope) or `editing`."""

    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    name = column_field(GatewayAccount, "name", label=_("Name"))
    mode = forms.ChoiceField(label=_("Mode"), choices=GatewayAccount.Mode.choices, initial=GatewayAccount.Mode.SANDBOX)
    base_url = URLField(
        label=_("API address"),
        max_length=300,
        widget=forms.TextInput(attrs={"inputmode": "url"}),
        help_text=_("The gateway's API root for this mode, as the gateway gave it (sandbox or live)."),
    )
    merchant_account = column_field(
        GatewayAccount,
        "merchant_account",
        label=_("Merchant account"),
        help_text=_(
            "What the gateway names as the receiving merchant: bKash's organisation short code, Nagad's "
            "merchant ID, SSLCommerz's store ID. A payment naming another account is parked for review."
        ),
    )
    fee_rate = column_field(
        GatewayAccount,
        "fee_rate",
        label=_("Fee rate (%)"),
        min_value=Decimal("0"),
        max_value=Decimal("19.999"),
        initial=Decimal("0"),
    )
    fee_mode = forms.ChoiceField(label=_("Who pays the fee"), choices=FeeMode.choices, initial=FeeMode.ABSORBED)
    active = forms.BooleanField(label=_("Active (subscribers can pay through it)"), required=False)

    def __init__(
        self, *args: Any, scope: Scope, gateway: str, editing: GatewayAccount | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.scope, self.gateway, self.editing = scope, Gateway(gateway), editing
        if editing is None:
            offer(self, "operator", operators_offered(scope))
            self.fields["operator"].initial = scope.home.pk
            if not scope.spans_many:
                self.fields["operator"].required = False
                self.fields["operator"].widget = forms.HiddenInput()
            del self.fields["active"]
        else:
            del self.fields["operator"]
            if not self.is_bound:
                self.initial.update({name: getattr(editing, name) for name in self.account_field_names()})
        for key in REQUIRED_CREDENTIALS[self.gateway]:
            multiline = key in KEY_CREDENTIALS
            widget: forms.Widget = (
                SecretTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"})
                if multiline
                else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            )
            self.fields[credential_field_name(key)] = TextField(
                label=CREDENTIAL_LABELS[key],
                required=editing is None,
                max_length=KEY_MAX_LENGTH if multiline else CREDENTIAL_MAX_LENGTH,
                multiline=multiline,
                strip=True,
                widget=widget,
                help_text=_("Stored; never shown. Leave empty to keep it.") if editing is not None else "",
            )

    def account_field_names(self) -> list[str]:
        names = ["name", "mode", "base_url", "merchant_account", "fee_rate", "fee_mode"]
        return [*names, "active"] if self.editing is not None else names

    def owner(self) -> Operator:
        if self.editing is not None:
            return self.editing.operator
        chosen: Operator | None = self.cleaned_data.get("operator")
        return chosen or self.scope.home

    def clean_base_url(self) -> str:
        url: str = self.cleaned_data["base_url"]
        try:
            check_outbound_url(url)
        except OutboundRefused as error:
            raise ValidationError(str(error), code="outbound_refused") from None
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for key, loader in (("merchant_private_key", load_private_key), ("gateway_public_key", load_public_key)):
            text = data.get(credential_field_name(key))
            if not text or key not in REQUIRED_CREDENTIALS[self.gateway]:
                continue
            # A browser sends a text area's line breaks as CRLF; a key is stored as it is written.
            text = data[credential_field_name(key)] = text.replace("\r\n", "\n")
            try:
                loader(text)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                self.add_error(
                    credential_field_name(key), _("This is not an RSA key in PEM (or the bare base64 Nagad gives).")
                )
        merchant = (data.get("merchant_account") or "").strip()
        if merchant and "merchant_account" not in self.errors and not self.errors.get("operator"):
            others = GatewayAccount.objects.filter(
                operator=self.owner(), gateway=self.gateway, merchant_account=merchant
            )
            if self.editing is not None:
                others = others.exclude(pk=self.editing.pk)
            if others.exists():
                self.add_error(
                    "merchant_account",
                    _("This operator already has a %(gateway)s account with this merchant account.")
                    % {"gateway": self.gateway.label},
                )
        return data

    def account_fields(self) -> dict[str, Any]:
        """The account's fields for `gateway_account_create` / `gateway_account_update`."""
        data = self.cleaned_data
        return {name: data[name] for name in self.account_field_names()}

    def credentials(self) -> dict[str, str]:
        """The credentials typed in; an empty one (editing) keeps the stored value."""
        return {
            key: self.cleaned_data.get(credential_field_name(key)) or "" for key in REQUIRED_CREDENTIALS[self.gateway]
        }


class GatewayAccountActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", _("Active")), ("0", _("Inactive"))], coerce=lambda v: v == "1")
