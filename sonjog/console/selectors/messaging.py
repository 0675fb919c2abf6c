"""Reads for the messaging pages that list rows: the delivery log's filters (notifications'
`MessageFilterSet`) over the messages in scope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sonjog.console.access import Scope
from sonjog.notifications.filters import MessageFilterSet
from sonjog.notifications.models import Message


def message_filters(scope: Scope, params: Mapping[str, Any] | None) -> MessageFilterSet:
    # By operator id rather than by tree path: PostgreSQL then walks the (operator, created_at) index
    # newest first and stops after a page.
    rows = Message.objects.filter(operator_id__in=scope.operator_ids)
    return MessageFilterSet(params or None, rows, operator_ids=scope.operator_ids)
