"""Pieces every console form shares: choosing a row from the acting scope only (`offer`), the
operator and package choice fields (the domain's own), the billing-period field, and the login form.

Every choice of a row (package, zone, operator, subscriber) is offered from the acting scope only, so
a tampered id fails validation like any other invalid choice; the services then enforce the business
rules (package of the same operator, and so on)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from sonjog.catalog.filters import PackageChoiceField
from sonjog.console.access import Scope
from sonjog.core.bounds import TextField
from sonjog.core.filters import PeriodField
from sonjog.operators.filters import OperatorChoiceField, operators_among
from sonjog.operators.models import Operator

__all__ = ["LoginForm", "OperatorChoiceField", "PackageChoiceField", "PeriodField", "offer", "operators_offered"]


class LoginForm(forms.Form):
    username = TextField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, max_length=4096, widget=forms.PasswordInput)


def offer(form: forms.Form, name: str, queryset: Any) -> None:
    """Restrict a model-choice field to the rows the acting scope may pick."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = queryset


def operators_offered(scope: Scope) -> QuerySet[Operator]:
    return operators_among(scope.operator_ids)
