"""The one field of every second-factor form: the code an authenticator app shows."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the authenticator app"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "data-autofocus": "", "size": 8}
        ),
    )

    def clean_code(self) -> str:
        code = re.sub(r"\s+", "", self.cleaned_data["code"])
        if not re.fullmatch(r"\d{6,8}", code):
            raise forms.ValidationError(_("Enter the 6-digit code the app shows."))
        return code
