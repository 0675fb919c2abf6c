"""Forms of the first-run page and the Operators page: the operators app's settings and owner forms,
with the reseller's place in the tree and its console sections (module access)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from sonjog.console.access import Scope
from sonjog.console.forms.common import OperatorChoiceField, offer
from sonjog.operators.forms import OperatorSettingsForm, OwnerForm
from sonjog.operators.models import ConsoleModule, Operator

__all__ = ["OperatorEditForm", "OwnerForm", "ResellerCreateForm", "SetupForm"]


class SetupForm(OperatorSettingsForm):
    """The first run: the root ISP's settings (the owner's login is an OwnerForm beside it)."""


def _modules_field(offered: list[str]) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=_("Console sections its staff see"),
        choices=[(value, label) for value, label in ConsoleModule.choices if value in offered],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "The dashboard and subscribers are always there. A section taken away is taken from its resellers too."
        ),
    )


class ResellerCreateForm(OperatorSettingsForm):
    """A reseller (or sub-reseller) under an active operator of the caller's subtree."""

    parent = OperatorChoiceField(label=_("Under"), queryset=Operator.objects.none())

    field_order = ["parent", "code", "name"]

    def __init__(self, *args: Any, scope: Scope, parent: Operator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer(self, "parent", Operator.objects.filter(pk__in=scope.operator_ids, is_active=True).order_by("path"))
        self.fields["parent"].initial = parent.pk
        self.fields["customer_id_prefix"].help_text = _("Empty: the code in capitals")
        self.fields["modules"] = _modules_field(list(parent.modules))
        self.fields["modules"].initial = list(parent.modules)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        parent = data.get("parent")
        if parent is not None and data.get("modules"):
            beyond = [each for each in data["modules"] if each not in parent.modules]
            if beyond:
                self.add_error(
                    "modules",
                    _("%(parent)s does not have these sections itself: %(names)s.")
                    % {"parent": parent.name, "names": ", ".join(str(ConsoleModule(each).label) for each in beyond)},
                )
        return data

    def settings(self) -> dict[str, Any]:
        values = super().settings()
        values.pop("parent", None)
        if not values.get("customer_id_prefix"):
            values.pop("customer_id_prefix", None)  # the service derives it from the code
        return values


class OperatorEditForm(OperatorSettingsForm):
    """Every setting of an operator; its console sections only when the caller sits above it."""

    collection_approval = forms.BooleanField(
        label=_("Collectors hand over their cash for approval"),
        required=False,
        help_text=_(
            "Each collector's cash of a day waits as a hand-over until a manager approves the amount counted. "
            "Payments, receipts and reconnections never wait. Applies at once."
        ),
    )

    def __init__(self, *args: Any, operator: Operator, modules_editable: bool, **kwargs: Any) -> None:
        super().__init__(*args, creating=False, **kwargs)
        if modules_editable and operator.parent is not None:
            self.fields["modules"] = _modules_field(list(operator.parent.modules))

    def settings(self) -> dict[str, Any]:
        return super().settings()
