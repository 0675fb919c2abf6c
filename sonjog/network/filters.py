"""The router command outbox's list filters (DESIGN house rule 9), shared by every interface.

Commands belong to an operator through their subscriber: the caller scopes the queryset by
`subscriber__operator`."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from sonjog.core.filters import IdFilter, ScopedFilterSet
from sonjog.network.models import OutboxStatus


class OutboxFilterSet(ScopedFilterSet):
    """Commands by status and router. An unusable value (an unknown status, a router id that is no
    number) drops only that filter. The router is named by id, not offered as a choice: within the
    caller's commands, another subtree's router (a reseller's subscribers may be served by its ISP's
    router) matches only commands the caller sees anyway."""

    status = django_filters.ChoiceFilter(label=_("Status"), choices=OutboxStatus.choices, empty_label=_("Any status"))
    router = IdFilter(field_name="router_id", label=_("Router"))
