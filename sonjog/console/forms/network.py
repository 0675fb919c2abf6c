"""The router form: driver, address and API port, TLS, credentials (never shown back, kept when left
empty, replaced when given), zones served (the acting scope's zones of the router's operator tree),
record-only, and the suspend mode with its profile or address list."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from sonjog.console.access import Scope
from sonjog.console.forms.common import OperatorChoiceField, offer, operators_offered
from sonjog.core import bounds
from sonjog.core.bounds import TextField, column_field
from sonjog.customers.models import Zone
from sonjog.network.models import DriverKind, Router, SuspendMode
from sonjog.operators.models import Operator

CREDENTIAL_MAX_LENGTH = 256


class ZonesField(forms.ModelMultipleChoiceField):
    """Zones by name, with their operator's when the acting scope spans several."""

    show_operator = False

    def label_from_instance(self, obj: Any) -> str:
        zone: Zone = obj
        return f"{zone} ({zone.operator.name})" if self.show_operator else str(zone)


class RouterForm(forms.Form):
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    name = column_field(Router, "name", label=_("Name"))
    driver = forms.ChoiceField(label=_("Driver"), choices=DriverKind.choices, initial=DriverKind.MIKROTIK)
    address = TextField(
        label=_("Address"), max_length=253, help_text=_("The router's IP address or host name, as this server sees it")
    )
    api_port = column_field(Router, "api_port", label=_("API port"), min_value=1, max_value=65535, initial=8728)
    use_tls = forms.BooleanField(label=_("API over TLS (api-ssl, usually port 8729)"), required=False)
    username = column_field(Router, "username", label=_("API user"), required=False, initial="admin")
    password = forms.CharField(
        label=_("API password"),
        required=False,
        strip=False,
        max_length=CREDENTIAL_MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    radius_secret = forms.CharField(
        label=_("RADIUS shared secret (CoA / Disconnect)"),
        required=False,
        strip=False,
        max_length=CREDENTIAL_MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    coa_port = column_field(Router, "coa_port", label=_("CoA port"), min_value=1, max_value=65535, initial=3799)
    supports_coa = forms.BooleanField(
        label=_("Change live sessions' rates by CoA (otherwise disconnect them)"), required=False, initial=True
    )
    zones = ZonesField(label=_("Zones served"), queryset=Zone.objects.none(), required=False)
    record_only = forms.BooleanField(
        label=_("Record only (never send anything to this router)"), required=False, initial=False
    )
    suspend_mode = forms.ChoiceField(label=_("Suspension"), choices=SuspendMode.choices, initial=SuspendMode.DISABLE)
    suspended_profile = column_field(
        Router,
        "suspended_profile",
        label=_("Suspended profile"),
        required=False,
        initial="suspended",
        help_text=_("The PPP profile suspended subscribers are moved to (redirect by profile)"),
    )
    suspended_address_list = column_field(
        Router,
        "suspended_address_list",
        label=_("Suspended address list"),
        required=False,
        initial="suspended",
        help_text=_("The firewall address list suspended subscribers are put on (redirect by list)"),
    )

    def __init__(self, *args: Any, scope: Scope, editing: Router | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scope = scope
        self.editing = editing
        offer(self, "operator", operators_offered(scope))
        self.fields["operator"].initial = scope.home.pk
        if editing is not None or not scope.spans_many:
            self.fields["operator"].required = False
            self.fields["operator"].widget = forms.HiddenInput()
        zones = scope.filter(Zone.objects.select_related("operator", "parent"))
        if editing is not None:
            zones = zones.filter(operator__path__startswith=editing.operator.path)
        zones_field = self.fields["zones"]
        assert isinstance(zones_field, ZonesField)
        zones_field.show_operator = scope.spans_many
        offer(self, "zones", zones.order_by("operator__path", "parent__name", "name"))
        if editing is not None:
            keep = _("Leave empty to keep the stored one; it is never shown.")
            self.fields["password"].help_text = keep
            self.fields["radius_secret"].help_text = keep

    def clean_address(self) -> str:
        try:
            return bounds.parse_host(self.cleaned_data["address"])
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def clean_password(self) -> str:
        return _no_control_characters(self.cleaned_data.get("password") or "")

    def clean_radius_secret(self) -> str:
        return _no_control_characters(self.cleaned_data.get("radius_secret") or "")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        operator = self.owner()
        for zone in data.get("zones") or []:
            if not zone.operator.path.startswith(operator.path):
                self.add_error("zones", _("The zone %(zone)s belongs to another operator.") % {"zone": zone})
                break
        driver = data.get("driver")
        if driver == DriverKind.MIKROTIK and not (data.get("username") or "").strip():
            self.add_error("username", _("A MikroTik router needs the API user."))
        if driver == DriverKind.MIKROTIK and self.editing is None and not data.get("password"):
            self.add_error("password", _("Give the API user's password."))
        mode = data.get("suspend_mode")
        if mode == SuspendMode.PROFILE and not (data.get("suspended_profile") or "").strip():
            self.add_error("suspended_profile", _("Name the profile suspended subscribers are moved to."))
        if mode == SuspendMode.ADDRESS_LIST and not (data.get("suspended_address_list") or "").strip():
            self.add_error("suspended_address_list", _("Name the address list suspended subscribers are put on."))
        return data

    def owner(self) -> Operator:
        if self.editing is not None:
            return self.editing.operator
        chosen: Operator | None = self.cleaned_data.get("operator")
        return chosen or self.scope.home

    def settings(self) -> dict[str, Any]:
        """The router's fields for `router_create` / `router_update` (credentials left out)."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "driver": data["driver"],
            "address": data["address"],
            "api_port": data["api_port"],
            "use_tls": data["use_tls"],
            "username": data.get("username") or "",
            "coa_port": data["coa_port"],
            "supports_coa": data["supports_coa"],
            "record_only": data["record_only"],
            "suspend_mode": data["suspend_mode"],
            "suspended_profile": data.get("suspended_profile") or "suspended",
            "suspended_address_list": data.get("suspended_address_list") or "suspended",
        }


def _no_control_characters(value: str) -> str:
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise ValidationError(_("This cannot contain control characters."))
    return value


def router_initial(router: Router) -> dict[str, Any]:
    return {
        "name": router.name,
        "driver": router.driver,
        "address": router.address,
        "api_port": router.api_port,
        "use_tls": router.use_tls,
        "username": router.username,
        "coa_port": router.coa_port,
        "supports_coa": router.supports_coa,
        "record_only": router.record_only,
        "suspend_mode": router.suspend_mode,
        "suspended_profile": router.suspended_profile,
        "suspended_address_list": router.suspended_address_list,
        "zones": list(router.zones.values_list("pk", flat=True)),
    }


class RouterActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", _("Active")), ("0", _("Inactive"))], coerce=lambda v: v == "1")
