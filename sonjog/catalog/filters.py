"""Filter pieces for the catalogue: choosing a package of the caller's subtree."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from sonjog.catalog.models import Package


class PackageChoiceField(forms.ModelChoiceField):
    """A package, shown with its price."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.price})"


def packages_among(operator_ids: list[int]) -> QuerySet[Package]:
    """Every package of these operators, on sale or not, cheapest first."""
    return Package.objects.filter(operator_id__in=operator_ids).order_by("price", "name")
