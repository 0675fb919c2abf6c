"""Operator scoping: every query that takes an id from a user goes through these (DESIGN rule 5)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.db.models import Model, Q, QuerySet

if TYPE_CHECKING:
    from sonjog.operators.models import Operator

M = TypeVar("M", bound=Model)


def subtree_q(operator: Operator, field: str = "operator") -> Q:
    """Rows owned by `operator` or any operator below it."""
    return Q(**{f"{field}__path__startswith": operator.path})


def scoped(queryset: QuerySet[M], operator: Operator, field: str = "operator") -> QuerySet[M]:
    return queryset.filter(subtree_q(operator, field))


class OutOfScope(LookupError):
    """The row exists nowhere the acting operator may see; callers answer 404, never 403."""
