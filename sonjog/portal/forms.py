"""The portal's forms: signing in (who, which account, the code, or the PPPoE login) and asking for a
package or add-on change. Bounds only; the rules are the services'."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from sonjog.catalog.models import AddOn, Package
from sonjog.core.formatting import money
from sonjog.customers.signin import CODE_DIGITS
from sonjog.portal.formatting import western_digits


class IdentifyForm(forms.Form):
    who = forms.CharField(
        label=_("Customer ID or phone number"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "inputmode": "text"}),
    )

    def clean_who(self) -> str:
        return western_digits(self.cleaned_data["who"]).strip()


class ChooseForm(forms.Form):
    """Which of the accounts a phone number matched (the choices come from the session, never the post)."""

    account = forms.TypedChoiceField(label=_("Your provider"), coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args: Any, choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = choices  # type: ignore[attr-defined]


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "size": 8}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(western_digits(self.cleaned_data["code"]).split())
        if not code.isdigit() or len(code) != CODE_DIGITS:
            raise forms.ValidationError(_("The code is the 6 digits in the SMS."))
        return code


class PppoeForm(forms.Form):
    username = forms.CharField(
        label=_("PPPoE username"), max_length=64, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        label=_("PPPoE password"),
        max_length=64,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class PackageChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def __init__(self, *args: Any, currency: str = "BDT", **kwargs: Any) -> None:
        self.currency = currency
        super().__init__(*args, **kwargs)

    def label_from_instance(self, obj: Package | AddOn) -> str:  # type: ignore[override]
        return f"{obj.name} ({money(obj.price, self.currency)})"


class ChangeRequestForm(forms.Form):
    """Another package, an add-on on, an add-on off, or just a note: at least one of them."""

    package = PackageChoiceField(queryset=Package.objects.none(), required=False, label=_("Move to package"))
    addon_start = PackageChoiceField(queryset=AddOn.objects.none(), required=False, label=_("Start an add-on"))
    addon_stop = forms.ModelChoiceField(queryset=AddOn.objects.none(), required=False, label=_("Stop an add-on"))
    note = forms.CharField(label=_("Note"), max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(
        self,
        *args: Any,
        packages: Any,
        addons_offered: Any,
        addons_running: Any,
        currency: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for name, queryset in (("package", packages), ("addon_start", addons_offered), ("addon_stop", addons_running)):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = queryset
            if isinstance(field, PackageChoiceField):
                field.currency = currency

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not any(cleaned.get(name) for name in ("package", "addon_start", "addon_stop", "note")):
            raise forms.ValidationError(_("Choose a package or an add-on, or write a note."))
        return cleaned
