from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sonjog.core.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from sonjog.customers.models import Subscriber
    from sonjog.operators.models import Operator


# Set while a parent's staff member acts as one of its resellers (the console's "act as reseller"):
# every event recorded then names the operator acted for beside the person (`actor`).
_ACTING_FOR: ContextVar[str | None] = ContextVar("sonjog_acting_for", default=None)


@contextmanager
def acting_for(operator_code: str | None) -> Iterator[None]:
    """Within the block, audit events say they were recorded acting as `operator_code`."""
    token = _ACTING_FOR.set(operator_code)
    try:
        yield
    finally:
        _ACTING_FOR.reset(token)


def audit(
    *,
    operator: Operator,
    action: str,
    actor: User | None = None,
    subscriber: Subscriber | None = None,
    **detail: Any,
) -> None:
    """Record who did what. Detail values are stored as JSON: numbers, booleans and None as they are,
    mappings and lists (a change's `before`/`after` values) as JSON objects and arrays, and anything
    else (Decimal, dates, model rows) as its text."""
    AuditEvent.objects.create(
        operator=operator,
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        subscriber=subscriber,
        detail={
            **{key: _json_value(value) for key, value in detail.items()},
            **({"acting_as": _ACTING_FOR.get()} if _ACTING_FOR.get() else {}),
        },
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, int | float | bool | type(None)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return str(value)
