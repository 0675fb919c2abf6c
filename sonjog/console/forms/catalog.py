"""Forms of the catalogue pages: packages, add-ons (and putting them on or off sale), and zones."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from sonjog.catalog.models import AddOn, AddOnEffect, BillingUnit, Package
from sonjog.console import formatting
from sonjog.console.access import Scope
from sonjog.console.forms.common import OperatorChoiceField, offer, operators_offered
from sonjog.core.bounds import DecimalField, column_field
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


KBPS_PER_MBPS = 1024
# A PPP package faster than 100 Gbps is a typing slip; slower than 10 kbps is not a service.
MBPS_MIN = Decimal("0.01")
MBPS_MAX = Decimal("100000")
# Four places always hit a whole kbps (one kbps is about 0.00098 Mbps), so every stored rate can be
# shown and typed back unchanged.
MBPS_DECIMAL_PLACES = 4
PROFILE_LIST_ID = "router-profiles"


def kbps_from_mbps(mbps: Decimal) -> int:
    """Mbps as typed (2.5) to the kbps the routers and the rows use (2560), to the nearest kbps."""
    return int((mbps * KBPS_PER_MBPS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def mbps_from_kbps(kbps: int) -> Decimal:
    """The shortest Mbps figure that converts back to exactly `kbps` (2560 -> 2.5, 1000 -> 0.977)."""
    exact = Decimal(kbps) / KBPS_PER_MBPS
    for places in range(MBPS_DECIMAL_PLACES + 1):
        candidate = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if kbps_from_mbps(candidate) == kbps:
            return candidate
    return exact.quantize(Decimal(1).scaleb(-MBPS_DECIMAL_PLACES), rounding=ROUND_HALF_UP)


def rate_text(kbps: int) -> str:
    """A rate as staff read it: "10 Mbps"; "2.5 Mbps (2,560 kbps)" when it is not a whole Mbps."""
    mbps = mbps_from_kbps(kbps)
    if kbps % KBPS_PER_MBPS == 0:
        return gettext("%(mbps)s Mbps") % {"mbps": formatting.number(int(mbps))}
    return gettext("%(mbps)s Mbps (%(kbps)s kbps)") % {
        "mbps": formatting.localize_digits(str(mbps)),
        "kbps": formatting.number(kbps),
    }


def speed_text(download_kbps: int, upload_kbps: int) -> str:
    """Download / upload: "10 Mbps / 10 Mbps"."""
    return f"{rate_text(download_kbps)} / {rate_text(upload_kbps)}"


def fair_usage_text(package: Package) -> str:
    """ "FUP: 100 GB then 2 Mbps" (both directions, or "2 Mbps / 1 Mbps"), or "Unlimited"."""
    if package.data_allowance_gb is None:
        return gettext("Unlimited")
    if package.fup_download_kbps == package.fup_upload_kbps:
        then = rate_text(package.fup_download_kbps)
    else:
        then = speed_text(package.fup_download_kbps, package.fup_upload_kbps)
    return gettext("FUP: %(allowance)s GB then %(rate)s") % {
        "allowance": formatting.number(package.data_allowance_gb),
        "rate": then,
    }


class MbpsField(DecimalField):
    """A rate typed in Mbps, decimals allowed; `cleaned_data` holds the Decimal, `kbps_from_mbps`
    turns it into what is stored."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", MBPS_MIN)
        kwargs.setdefault("max_value", MBPS_MAX)
        kwargs.setdefault("widget", forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}))
        super().__init__(max_digits=6 + MBPS_DECIMAL_PLACES, decimal_places=MBPS_DECIMAL_PLACES, **kwargs)


def _profile_input() -> forms.TextInput:
    # The browser offers the names read from the routers (a datalist) and still takes a new one: the
    # push creates a profile that does not exist yet.
    return forms.TextInput(attrs={"list": PROFILE_LIST_ID, "autocomplete": "off"})


# Rates of the form and the row columns they fill.
_RATE_COLUMNS = {
    "download_mbps": "download_kbps",
    "upload_mbps": "upload_kbps",
    "fup_download_mbps": "fup_download_kbps",
    "fup_upload_mbps": "fup_upload_kbps",
}
_FAIR_USAGE_FIELDS = ("fup_download_mbps", "fup_upload_mbps", "fup_router_profile")


class PackageForm(_OperatorOwnedForm):
    """A package's terms, rates in Mbps. `package_fields()` gives what the package flows take (rates
    in kbps); the fair-usage terms are part of it only when there is a data allowance."""

    name = column_field(Package, "name", label=_("Name"))
    price = column_field(Package, "price", label=_("Monthly price"), min_value=Decimal("0"))
    download_mbps = MbpsField(label=_("Download (Mbps)"), help_text=_("Decimals allowed: 2.5 is 2,560 kbps."))
    upload_mbps = MbpsField(label=_("Upload (Mbps)"))
    router_profile = column_field(
        Package,
        "router_profile",
        label=_("Router profile"),
        widget=_profile_input(),
        help_text=_("Pick a PPP profile the routers have, or type a new name: it is created on them."),
    )
    billing_unit = forms.ChoiceField(
        label=_("Validity"),
        choices=BillingUnit.choices,
        initial=BillingUnit.MONTH,
        required=False,
        help_text=_(
            "Each bill covers one month. Shorter validities (days, weeks) are not offered: "
            "bill generation only bills by the month today."
        ),
    )
    data_allowance_gb = column_field(
        Package,
        "data_allowance_gb",
        label=_("Data allowance (GB)"),
        min_value=1,
        required=False,
        help_text=_("Empty: unlimited. Past the allowance the subscriber runs at the fair-usage speed."),
    )
    fup_download_mbps = MbpsField(label=_("Fair-usage download (Mbps)"), required=False)
    fup_upload_mbps = MbpsField(label=_("Fair-usage upload (Mbps)"), required=False)
    fup_router_profile = column_field(
        Package,
        "fup_router_profile",
        label=_("Fair-usage router profile"),
        required=False,
        widget=_profile_input(),
        help_text=_("Only used with a data allowance; ignored when the package is unlimited."),
    )
    vat_applicable = forms.BooleanField(label=_("VAT applies"), required=False, initial=True)
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)

    @staticmethod
    def initial_for(package: Package) -> dict[str, Any]:
        """The form's initial values for an existing package (rates back in Mbps; an unlimited
        package shows empty fair-usage fields)."""
        initial: dict[str, Any] = {
            "name": package.name,
            "price": package.price,
            "download_mbps": mbps_from_kbps(package.download_kbps),
            "upload_mbps": mbps_from_kbps(package.upload_kbps),
            "router_profile": package.router_profile,
            "billing_unit": package.billing_unit,
            "data_allowance_gb": package.data_allowance_gb,
            "vat_applicable": package.vat_applicable,
            "is_active": package.is_active,
        }
        if package.data_allowance_gb is not None:
            initial["fup_download_mbps"] = mbps_from_kbps(package.fup_download_kbps)
            initial["fup_upload_mbps"] = mbps_from_kbps(package.fup_upload_kbps)
            initial["fup_router_profile"] = package.fup_router_profile
        return initial

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("billing_unit"):
            data["billing_unit"] = BillingUnit.MONTH
        if data.get("data_allowance_gb") is None:
            if "data_allowance_gb" not in self.errors:
                # Unlimited: the fair-usage terms do not apply, so they are neither checked nor written.
                for name in _FAIR_USAGE_FIELDS:
                    data[name] = None
                    self.errors.pop(name, None)
            return data
        missing = {
            "fup_download_mbps": gettext("Give the speed the subscriber falls back to once the allowance is used."),
            "fup_upload_mbps": gettext("Give the speed the subscriber falls back to once the allowance is used."),
            "fup_router_profile": gettext("Name the router profile that holds the fair-usage speed."),
        }
        for name, message in missing.items():
            if name not in self.errors and not data.get(name):
                self.add_error(name, message)
        for fair, own, label in (
            ("fup_download_mbps", "download_mbps", gettext("download")),
            ("fup_upload_mbps", "upload_mbps", gettext("upload")),
        ):
            if data.get(fair) and data.get(own) and kbps_from_mbps(data[fair]) > kbps_from_mbps(data[own]):
                self.add_error(
                    fair,
                    gettext(
                        "The fair-usage %(direction)s (%(fair)s) cannot be faster than the package's "
                        "%(direction)s (%(own)s)."
                    )
                    % {
                        "direction": label,
                        "fair": rate_text(kbps_from_mbps(data[fair])),
                        "own": rate_text(kbps_from_mbps(data[own])),
                    },
                )
        profile, fair_profile = (data.get("router_profile") or "").strip(), (data.get("fup_router_profile") or "")
        if profile and fair_profile.strip() == profile:
            self.add_error(
                "fup_router_profile",
                gettext("Use a profile of its own for fair usage: '%(profile)s' carries the package's full speed.")
                % {"profile": profile},
            )
        return data

    def package_fields(self) -> dict[str, Any]:
        """What the package flows take, from a valid form: rates in kbps, no operator."""
        data = dict(self.cleaned_data)
        data.pop("operator", None)
        unlimited = data.get("data_allowance_gb") is None
        for form_name, column in _RATE_COLUMNS.items():
            value = data.pop(form_name)
            if value is not None:
                data[column] = kbps_from_mbps(value)
        if unlimited:
            for name in (*_FAIR_USAGE_FIELDS, "fup_download_kbps", "fup_upload_kbps"):
                data.pop(name, None)
        return data


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
