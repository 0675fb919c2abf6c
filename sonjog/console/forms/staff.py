"""Staff logins and roles: creating and changing a login, resetting its password, and a role's
permission matrix. Roles on offer are those the acting login may give (`Authority.grantable`);
the services check the same again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from sonjog.console.access import Scope
from sonjog.console.forms.common import offer
from sonjog.console.selectors.staff import cell_field_name
from sonjog.core.bounds import EmailField, TextField, column_field
from sonjog.customers.exceptions import InvalidPhone
from sonjog.customers.phone import normalize_phone
from sonjog.operators.filters import OperatorChoiceField, operators_among
from sonjog.operators.models import Landing, Operator, Staff, StaffRole
from sonjog.operators.roles import ROLE_LANDING
from sonjog.operators.staffing import Authority

GENERATE = "generate"
TYPE = "type"


def role_choices(roles: list[str], labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    labels = labels or {}
    return [(role, labels.get(role) or str(StaffRole(role).label)) for role in roles]


class PasswordChoiceMixin(forms.Form):
    password_choice = forms.ChoiceField(
        label=_("Password"),
        choices=[(GENERATE, _("Generate one and show it once")), (TYPE, _("Type one"))],
        initial=GENERATE,
        widget=forms.RadioSelect,
    )
    password = forms.CharField(
        label=_("New password"),
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not a common password."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password_choice") == TYPE and not data.get("password"):
            self.add_error("password", _("Type the password, or let Sonjog generate one."))
        return data


class StaffCreateForm(PasswordChoiceMixin):
    operator = OperatorChoiceField(label=_("Operator"), queryset=Operator.objects.none())
    username = TextField(label=_("Username"), max_length=150, help_text=_("What they sign in with"))
    name = TextField(label=_("Name"), max_length=150)
    email = EmailField(label=_("E-mail"), required=False)
    phone = column_field(Staff, "phone", label=_("Mobile number"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=())
    sees_subtree = forms.BooleanField(label=_("Sees resellers' data"), required=False, initial=True)

    field_order = ["operator", "username", "name", "email", "phone", "role", "sees_subtree"]

    def __init__(self, *args: Any, scope: Scope, authority: Authority, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reachable = [operator for operator in scope.operators if authority.may_edit_roles(operator)]
        offer(self, "operator", operators_among([operator.pk for operator in reachable]))
        self.fields["operator"].initial = scope.home.pk
        self.fields["operator"].required = False  # the acting operator when none is chosen
        if len(reachable) <= 1:
            self.fields["operator"].widget = forms.HiddenInput()
        offered: list[str] = []
        for operator in reachable:
            offered += [role for role in authority.grantable(operator) if role not in offered]
        self.fields["role"].choices = role_choices(  # type: ignore[attr-defined]
            [role for role in StaffRole.values if role in offered]
        )
        self.scope = scope
        self.authority = authority

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"].strip()
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError(_("This username is taken."))
        return username

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        operator: Operator = data.get("operator") or self.scope.home
        data["operator"] = operator
        role = data.get("role")
        if role and role not in self.authority.grantable(operator):
            self.add_error("role", _("You cannot give this role at this operator."))
        if data.get("phone"):
            try:
                data["phone"] = normalize_phone(data["phone"], operator.phone_country)
            except InvalidPhone as error:
                self.add_error("phone", str(error))
        return data


class StaffEditForm(forms.Form):
    name = TextField(label=_("Name"), max_length=150)
    email = EmailField(label=_("E-mail"), required=False)
    phone = column_field(Staff, "phone", label=_("Mobile number"), required=False)
    role = forms.ChoiceField(label=_("Role"), choices=())
    sees_subtree = forms.BooleanField(label=_("Sees resellers' data"), required=False)

    def __init__(self, *args: Any, staff: Staff, authority: Authority, labels: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        grantable = authority.grantable(staff.operator)
        if staff.role not in grantable:
            grantable = [staff.role, *grantable]
        self.fields["role"].choices = role_choices(  # type: ignore[attr-defined]
            [role for role in StaffRole.values if role in grantable], labels=labels
        )
        self.staff = staff

    def clean_phone(self) -> str:
        phone: str = self.cleaned_data.get("phone") or ""
        if not phone:
            return ""
        try:
            return normalize_phone(phone, self.staff.operator.phone_country)
        except InvalidPhone as error:
            raise ValidationError(str(error)) from None


class PasswordResetForm(PasswordChoiceMixin):
    pass


class RoleForm(forms.Form):
    """A role's name, landing page and its matrix: one checkbox per cell (section x view/act, and the
    special permissions). A cell is ticked when the role holds every permission of it."""

    name = TextField(label=_("Name"), max_length=60, required=False)
    landing = forms.ChoiceField(label=_("Lands on after sign-in"), required=False, choices=())

    def __init__(self, *args: Any, base_role: str, cells: dict[str, tuple[str, ...]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        built_in = Landing(ROLE_LANDING[base_role]).label
        self.fields["name"].widget.attrs["placeholder"] = str(StaffRole(base_role).label)
        self.fields["landing"].choices = [  # type: ignore[attr-defined]
            ("", _("%(page)s (the built-in role's)") % {"page": built_in}),
            *Landing.choices,
        ]
        self.cells = cells
        for cell in cells:
            self.fields[cell_field_name(cell)] = forms.BooleanField(required=False)

    def cell_values(self) -> dict[str, bool]:
        return {cell: bool(self.cleaned_data.get(cell_field_name(cell))) for cell in self.cells}


__all__ = [
    "GENERATE",
    "TYPE",
    "PasswordResetForm",
    "RoleForm",
    "StaffCreateForm",
    "StaffEditForm",
    "cell_field_name",
]
