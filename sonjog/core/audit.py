from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sonjog.core.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from sonjog.customers.models import Subscriber
    from sonjog.operators.models import Operator


def audit(
    *,
    operator: Operator,
    action: str,
    actor: User | None = None,
    subscriber: Subscriber | None = None,
    **detail: Any,
) -> None:
    AuditEvent.objects.create(
        operator=operator,
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        subscriber=subscriber,
        detail={k: str(v) if not isinstance(v, int | float | bool | type(None)) else v for k, v in detail.items()},
    )
