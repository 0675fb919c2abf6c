"""Filter pieces for the operator tree: choosing an operator of the caller's subtree."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from sonjog.operators.models import Operator


class OperatorChoiceField(forms.ModelChoiceField):
    """An operator, shown indented by its depth in the tree."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{'· ' * obj.depth}{obj.name}"


def operators_among(operator_ids: list[int]) -> QuerySet[Operator]:
    """The operators of a subtree, root first: what an operator choice offers."""
    return Operator.objects.filter(pk__in=operator_ids).order_by("path")
