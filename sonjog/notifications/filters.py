"""The delivery log's list filters (DESIGN house rule 9), shared by every interface: status,
channel, event and bulk send. Paging stays with the caller (the log is keyset-paged)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _

from sonjog.core.filters import IdFilter, ScopedFilterSet
from sonjog.notifications.models import Channel, Event, MessageStatus


class MessageFilterSet(ScopedFilterSet):
    """Messages by status, channel, event and the bulk send that queued them. An unusable value (an
    unknown status, a bulk send id that is no number) drops only that filter; the id of another
    subtree's bulk send matches nothing in the caller's scoped queryset."""

    status = django_filters.ChoiceFilter(label=_("Status"), choices=MessageStatus.choices, empty_label=_("Any status"))
    channel = django_filters.ChoiceFilter(label=_("Channel"), choices=Channel.choices, empty_label=_("Any channel"))
    event = django_filters.ChoiceFilter(label=_("Event"), choices=Event.choices, empty_label=_("Any event"))
    bulk = IdFilter(field_name="bulk_id", label=_("Bulk send"))
