"""The backup destination form: the FTP or FTPS server router backups are copied to (the password never
shown back, kept when left empty), and how many backups of each router Sonjog keeps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from sonjog.core import bounds
from sonjog.core.bounds import TextField
from sonjog.network.backups import MAX_KEEP_COUNT
from sonjog.network.models import DEFAULT_BACKUPS_KEPT, BackupDestination, BackupProtocol

CREDENTIAL_MAX_LENGTH = 256


class BackupDestinationForm(forms.Form):
    keep_count = forms.IntegerField(
        label=_("Backups kept per router"),
        min_value=1,
        max_value=MAX_KEEP_COUNT,
        initial=DEFAULT_BACKUPS_KEPT,
        help_text=_("Older backups are deleted when a new one is taken."),
    )
    enabled = forms.BooleanField(label=_("Copy every backup to this server"), required=False)
    protocol = forms.ChoiceField(label=_("Protocol"), choices=BackupProtocol.choices, initial=BackupProtocol.FTP)
    host = TextField(label=_("Server"), max_length=253, required=False, help_text=_("Host name or IP address"))
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535, initial=21)
    username = TextField(label=_("User name"), max_length=128, required=False)
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        max_length=CREDENTIAL_MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    directory = TextField(
        label=_("Directory"),
        max_length=255,
        required=False,
        help_text=_("Where on the server; each backup goes to <directory>/<operator code>/<router>-<date>.rsc"),
    )

    def __init__(self, *args: Any, editing: BackupDestination | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing is not None and editing.password_encrypted:
            self.fields["password"].help_text = _("Leave empty to keep the stored one; it is never shown.")

    def clean_host(self) -> str:
        host = (self.cleaned_data.get("host") or "").strip()
        if not host:
            return ""
        try:
            return bounds.parse_host(host)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password") or ""
        if any(ord(character) < 32 for character in password):
            raise ValidationError(_("The password may not contain control characters."))
        return password

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("enabled"):
            if not data.get("host"):
                self.add_error("host", _("Name the server backups are copied to."))
            if not (data.get("username") or "").strip():
                self.add_error("username", _("Give the user name Sonjog signs in to the server with."))
        return data


def destination_initial(destination: BackupDestination | None) -> dict[str, Any]:
    if destination is None:
        return {}
    return {
        "keep_count": destination.keep_count,
        "enabled": destination.enabled,
        "protocol": destination.protocol,
        "host": destination.host,
        "port": destination.port,
        "username": destination.username,
        "directory": destination.directory,
    }
