"""What every messaging page shares: the operator a configuration page acts for (the login's own, or,
for a login that sees a subtree, any operator in it named with ?operator=<id>; anything else is 404),
links that keep that choice, and the context every page starts from."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest
from django.urls import reverse

from sonjog.console.access import scope_of
from sonjog.core.bounds import query_id
from sonjog.operators.models import Operator


def operator_for(request: HttpRequest) -> Operator:
    """The operator a configuration page acts for; one outside the login's scope is 404."""
    scope = scope_of(request)
    raw = request.POST.get("operator") or request.GET.get("operator") or ""
    if not raw:
        return scope.home
    wanted = query_id(raw)
    for operator in scope.operators:
        if operator.pk == wanted:
            return operator
    raise Http404("no such operator")


def url_for(name: str, operator: Operator, **kwargs: Any) -> str:
    return f"{reverse(name, kwargs=kwargs or None)}?{urlencode({'operator': operator.pk})}"


def base_context(request: HttpRequest, operator: Operator) -> dict[str, Any]:
    scope = scope_of(request)
    return {
        "operator": operator,
        "currency": operator.currency,
        "operators": scope.operators if scope.spans_many else [],
    }
