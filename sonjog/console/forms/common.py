"""Pieces every console form shares: choosing a row from the acting scope only (`offer`), the
operator choice field (the domain's own), the package and add-on choice fields (priced in the reader's
language), the billing-period field, and the login form.

Every choice of a row (package, zone, operator, subscriber) is offered from the acting scope only, so
a tampered id fails validation like any other invalid choice; the services then enforce the business
rules (package of the same operator, and so on)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from sonjog.catalog import filters as catalog_filters
from sonjog.console.access import Scope
from sonjog.console.formatting import money
from sonjog.core.bounds import TextField
from sonjog.core.filters import PeriodField
from sonjog.operators.filters import OperatorChoiceField, operators_among
from sonjog.operators.models import Operator

__all__ = [
    "LoginForm",
    "OperatorChoiceField",
    "PackageChoiceField",
    "PeriodField",
    "PricedChoiceField",
    "offer",
    "operators_offered",
    "show_prices",
]


def priced_label(row: Any) -> str:
    """A package or add-on with its price as the reader's language writes money, in its operator's
    currency: "Home 10 Mbps (৳800.00)", "Home 10 Mbps (৳৮০০.০০)"."""
    return f"{row.name} ({money(row.price, row.operator.currency)})"


def show_prices(field: forms.Field) -> None:
    """Label a package field's choices as `priced_label` does (the list filters' own package fields),
    reading each package's operator with it."""
    assert isinstance(field, forms.ModelChoiceField) and field.queryset is not None
    field.label_from_instance = priced_label  # type: ignore[method-assign, assignment]
    field.queryset = field.queryset.select_related("operator")


class PricedChoiceField(forms.ModelChoiceField):
    """A package or add-on, labelled by `priced_label` (`offer` reads the operators with the rows: one
    query for the choices, not one per choice)."""

    def label_from_instance(self, obj: Any) -> str:
        return priced_label(obj)


class PackageChoiceField(PricedChoiceField, catalog_filters.PackageChoiceField):
    """A package, shown with its price in the reader's language."""


class LoginForm(forms.Form):
    username = TextField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, max_length=4096, widget=forms.PasswordInput)


def offer(form: forms.Form, name: str, queryset: Any) -> None:
    """Restrict a model-choice field to the rows the acting scope may pick."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    if isinstance(field, PricedChoiceField):
        queryset = queryset.select_related("operator")
    field.queryset = queryset


def operators_offered(scope: Scope) -> QuerySet[Operator]:
    return operators_among(scope.operator_ids)
