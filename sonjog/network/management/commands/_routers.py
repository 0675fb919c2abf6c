from __future__ import annotations

from sonjog.core.cli import usage_error
from sonjog.network.models import Router


def router_by_name(name: str) -> Router:
    matches = list(Router.objects.filter(name=name).select_related("operator"))
    if not matches:
        raise usage_error(f"no router named '{name}'")
    if len(matches) > 1:
        raise usage_error(
            f"{len(matches)} routers are named '{name}' (operators: "
            f"{', '.join(r.operator.code for r in matches)}); rename one"
        )
    return matches[0]
