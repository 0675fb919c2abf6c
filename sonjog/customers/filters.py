"""The subscriber list's filters (DESIGN house rule 9), shared by every interface that lists
subscribers: search, zone (with its sub-zones), package, intent, billing mode, online, joined or
left this month, network trouble, prepaid validity running out, operator, and the order.

What each subscriber owes is billing's: the filters that need it (due ranges, "owes money") extend
this set in `sonjog.billing.filters`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import django_filters
from django.db.models import F, OrderBy, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from sonjog.catalog.filters import PackageChoiceField, packages_among
from sonjog.core import bounds
from sonjog.core.filters import CheckFilter, OperatorIds, ScopedFilterSet, ScopedModelChoiceFilter, TextFilter
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.customers.selectors import MISMATCH_Q, subscriber_search_q, subscriber_search_rank
from sonjog.operators.filters import OperatorChoiceField, operators_among
from sonjog.operators.models import BillingMode

SORT_MAX_LENGTH = 30
DEFAULT_SORT = "customer_id"
# How long before a prepaid subscriber's validity ends "expiring" starts.
EXPIRING_DAYS = 7


def zones_among(operator_ids: list[int]) -> QuerySet[Zone]:
    return Zone.objects.filter(operator_id__in=operator_ids).select_related("parent").order_by("name")


class SubscriberFilterSet(ScopedFilterSet):
    """Subscribers by what staff look for. `today` is the operator's calendar day ("this month",
    "expiring"). `sort` names a column of `SORTS`, `-` first for descending; an unknown one falls back
    to the customer ID. Unusable input (another subtree's zone, a malformed value) lists nothing:
    a list that silently ignored a filter would show rows the user did not ask for as if they had."""

    refuse_invalid = True
    SORTS: ClassVar[dict[str, str]] = {
        "customer_id": "customer_id",
        "name": "name",
        "package": "package__price",
        "zone": "zone__name",
        "activation_date": "activation_date",
        "status": "service_intent",
    }

    q = TextFilter(label=_("Search"), max_length=bounds.QUERY_TEXT_MAX_LENGTH, method="filter_search")
    zone = ScopedModelChoiceFilter(label=_("Zone"), offer=zones_among, empty_label=_("Any zone"), method="filter_zone")
    package = ScopedModelChoiceFilter(
        label=_("Package"), offer=packages_among, field_class=PackageChoiceField, empty_label=_("Any package")
    )
    status = django_filters.ChoiceFilter(
        field_name="service_intent", label=_("Status"), choices=ServiceIntent.choices, empty_label=_("Any status")
    )
    mode = django_filters.ChoiceFilter(
        label=_("Billing mode"), choices=BillingMode.choices, empty_label=_("Any mode"), method="filter_mode"
    )
    online = django_filters.ChoiceFilter(
        label=_("Online"),
        choices=[("yes", _("Online")), ("no", _("Offline"))],
        empty_label=_("Online or not"),
        method="filter_online",
    )
    # The dashboard's links: this month's joiners and leavers, network trouble, validity running out.
    joined = django_filters.ChoiceFilter(
        label=_("Joined this month"),
        choices=[("month", _("Joined this month"))],
        empty_label="",
        method="filter_joined",
    )
    left = django_filters.ChoiceFilter(
        label=_("Left this month"), choices=[("month", _("Left this month"))], empty_label="", method="filter_left"
    )
    network = django_filters.ChoiceFilter(
        label=_("Network"),
        choices=[("mismatch", _("Intent/router mismatch")), ("sync_failed", _("Sync failed"))],
        empty_label="",
        method="filter_network",
    )
    expiring = CheckFilter(label=_("Expiring"), method="filter_expiring")
    operator = ScopedModelChoiceFilter(label=_("Operator"), offer=operators_among, field_class=OperatorChoiceField)
    # Validated like any input; the order itself is applied last, in `finish`.
    sort = TextFilter(label=_("Sort"), max_length=SORT_MAX_LENGTH, method="filter_nothing")

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        queryset: QuerySet[Subscriber] | None = None,
        *,
        operator_ids: OperatorIds,
        today: dt.date,
        defaults: Mapping[str, Any] | None = None,
        request: Any = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(data, queryset, operator_ids=operator_ids, defaults=defaults, request=request, prefix=prefix)
        self.today = today

    @property
    def chosen_sort(self) -> str:
        """The order asked for, as written (shown back in the page); the customer ID by default."""
        value = "" if self.refused else self.value("sort")
        return str(value or DEFAULT_SORT)

    def finish(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        chosen = self.chosen_sort
        sort = chosen if chosen.lstrip("-") in self.SORTS else DEFAULT_SORT
        descending = sort.startswith("-")
        column = self.SORTS[sort.lstrip("-")]
        # A search puts the subscriber typed in full (customer ID, PPPoE username, phone) first.
        searched = "" if self.refused else self.value("q")
        first: list[Any] = [subscriber_search_rank(searched)] if searched else []
        if column == "customer_id":
            # customer_id is unique (and NOT NULL): its index gives the order, no tie-breaker needed.
            return queryset.order_by(*first, F(column).desc() if descending else F(column).asc())
        ordering: OrderBy = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
        return queryset.order_by(*first, ordering, "pk")

    def filter_nothing(self, queryset: QuerySet[Any], name: str, value: Any) -> QuerySet[Any]:
        return queryset

    def filter_search(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(subscriber_search_q(value))

    def filter_zone(self, queryset: QuerySet[Any], name: str, value: Zone) -> QuerySet[Any]:
        return queryset.filter(Q(zone=value) | Q(zone__parent=value))

    def filter_mode(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        # A subscriber without its own mode follows its operator's.
        return queryset.filter(Q(billing_mode=value) | Q(billing_mode__isnull=True, operator__billing_mode=value))

    def filter_online(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(session_state="online" if value == "yes" else "offline")

    def _this_month(self) -> tuple[dt.date, dt.date]:
        month = month_start(self.today)
        return month, add_months(month, 1)

    def filter_joined(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        start, end = self._this_month()
        return queryset.filter(activation_date__gte=start, activation_date__lt=end)

    def filter_left(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        start, end = self._this_month()
        return queryset.filter(terminated_on__gte=start, terminated_on__lt=end)

    def filter_network(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(MISMATCH_Q) if value == "mismatch" else queryset.filter(sync_state="failed")

    def filter_expiring(self, queryset: QuerySet[Any], name: str, value: bool) -> QuerySet[Any]:
        if not value:
            return queryset
        until = self.today + dt.timedelta(days=EXPIRING_DAYS)
        return queryset.filter(expires_on__gte=self.today, expires_on__lt=until).exclude(
            service_intent=ServiceIntent.TERMINATED
        )
