"""Billing's list filters (DESIGN house rule 9), shared by every interface: bills, payments, and the
subscriber list's filters that need what each subscriber owes (billing's `with_due`).

Dates are the operator's business dates: a payment "received on 5 March" is one received between
the first instants of 5 and 6 March in the acting operator's time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import django_filters
from django import forms
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from sonjog.billing.models import Bill, Payment, PaymentMethod
from sonjog.billing.selectors import dues_cte, with_due
from sonjog.catalog.filters import PackageChoiceField, packages_among
from sonjog.core.filters import (
    AmountFilter,
    CheckFilter,
    DateFilter,
    OperatorIds,
    PeriodFilter,
    ScopedFilterSet,
    ScopedModelChoiceFilter,
    day_start,
)
from sonjog.core.periods import add_months
from sonjog.customers.filters import SubscriberFilterSet, zones_among
from sonjog.operators.filters import OperatorChoiceField, operators_among

# "Owes money": a due of at least one paisa (dues are kept to two decimals).
OWES_MONEY = Decimal("0.01")


class _DueRangeForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("due_min"), data.get("due_max")
        if low is not None and high is not None and low > high:
            self.add_error("due_max", _("The upper bound is below the lower bound."))
        return data


class SubscriberDueFilterSet(SubscriberFilterSet):
    """The subscriber list's filters with what each subscriber owes now: every row is annotated `due`
    (billing's `with_due`), which `due_min`, `due_max`, `owes` and the `due` order read."""

    SORTS: ClassVar[dict[str, str]] = {**SubscriberFilterSet.SORTS, "due": "due"}

    due_min = AmountFilter(field_name="due", lookup_expr="gte", label=_("Due from"))
    due_max = AmountFilter(field_name="due", lookup_expr="lte", label=_("Due up to"))
    owes = CheckFilter(label=_("Owes money"), method="filter_owes")

    class Meta:
        form = _DueRangeForm

    def prepare(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return with_due(queryset, self.today)

    def filter_owes(self, queryset: QuerySet[Any], name: str, value: bool) -> QuerySet[Any]:
        return queryset.filter(due__gte=OWES_MONEY) if value else queryset


class BillFilterSet(ScopedFilterSet):
    """Bills by period (one, or a range of periods), kind, state, package, the subscriber's zone (with
    its sub-zones) and operator. The caller orders them."""

    period = PeriodFilter(field_name="period_month", label=_("Period"))
    period_from = PeriodFilter(field_name="period_month", lookup_expr="gte", label=_("From"))
    period_to = PeriodFilter(field_name="period_month", lookup_expr="lte", label=_("To"))
    kind = django_filters.ChoiceFilter(label=_("Kind"), choices=Bill.Kind.choices, empty_label=_("Any kind"))
    state = django_filters.ChoiceFilter(
        label=_("State"),
        choices=[("open", _("Open")), ("paid", _("Paid")), ("reversed", _("Reversed"))],
        empty_label=_("Any state"),
        method="filter_state",
    )
    package = ScopedModelChoiceFilter(
        label=_("Package"), offer=packages_among, field_class=PackageChoiceField, empty_label=_("Any package")
    )
    zone = ScopedModelChoiceFilter(label=_("Zone"), offer=zones_among, empty_label=_("Any zone"), method="filter_zone")
    operator = ScopedModelChoiceFilter(label=_("Operator"), offer=operators_among, field_class=OperatorChoiceField)

    def filter_state(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        if value == "reversed":
            return queryset.filter(reversed_at__isnull=False)
        standing = queryset.filter(reversed_at__isnull=True)
        # `allocated` is kept by the database, never above the total: equal is paid in full.
        return standing.filter(allocated__lt=F("total")) if value == "open" else standing.filter(allocated=F("total"))

    def filter_zone(self, queryset: QuerySet[Any], name: str, value: Any) -> QuerySet[Any]:
        return queryset.filter(Q(subscriber__zone=value) | Q(subscriber__zone__parent=value))


def collectors_among(operator_ids: list[int]) -> QuerySet[User]:
    """Logins that may collect money for these operators: their staff."""
    return User.objects.filter(staff__operator_id__in=operator_ids).order_by("username")


class _ReceivedRangeForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("received_from"), data.get("received_to")
        if start is not None and end is not None and start > end:
            self.add_error("received_to", _("The last day is before the first."))
        return data


class PaymentFilterSet(ScopedFilterSet):
    """Payments by when they were received (a billing month, one day, or a range of days, all the
    operator's business dates in `time_zone`), method and collector."""

    month = PeriodFilter(label=_("Month"), method="filter_month")
    day = DateFilter(label=_("Day"), method="filter_day")
    received_from = DateFilter(label=_("From"), method="filter_received_from")
    received_to = DateFilter(label=_("To"), method="filter_received_to")
    method = django_filters.ChoiceFilter(label=_("Method"), choices=PaymentMethod.choices, empty_label=_("Any method"))
    collector = ScopedModelChoiceFilter(label=_("Collector"), offer=collectors_among)

    class Meta:
        form = _ReceivedRangeForm

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        queryset: QuerySet[Payment] | None = None,
        *,
        operator_ids: OperatorIds,
        time_zone: str,
        defaults: Mapping[str, Any] | None = None,
        request: Any = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(data, queryset, operator_ids=operator_ids, defaults=defaults, request=request, prefix=prefix)
        self.time_zone = time_zone

    def received_between(self, first_day: dt.date, after_last_day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) of the business days from `first_day` up to, not including, `after_last_day`."""
        return day_start(first_day, self.time_zone), day_start(after_last_day, self.time_zone)

    def _received(self, queryset: QuerySet[Any], first_day: dt.date, after_last_day: dt.date) -> QuerySet[Any]:
        start, end = self.received_between(first_day, after_last_day)
        return queryset.filter(received_at__gte=start, received_at__lt=end)

    def filter_month(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        return self._received(queryset, value, add_months(value, 1))

    def filter_day(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        return self._received(queryset, value, value + dt.timedelta(days=1))

    def filter_received_from(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        return queryset.filter(received_at__gte=day_start(value, self.time_zone))

    def filter_received_to(self, queryset: QuerySet[Any], name: str, value: dt.date) -> QuerySet[Any]:
        return queryset.filter(received_at__lt=day_start(value + dt.timedelta(days=1), self.time_zone))


# -- The overdue list ------------------------------------------------------------------------------

# "Overdue by more than N days", offered on the overdue list.
OVERDUE_AGES = (7, 15, 30, 60)


def overdue_longer_than(operator_ids: list[int], today: dt.date, days: int) -> list[int]:
    """Subscribers of these operators overdue by more than `days` days, by billing's one definition
    (`dues_cte`) evaluated as of `days` days ago: a charge counts as late only once its due date plus
    grace lies more than `days` days back, a prepaid validity only once it ran out at least `days`
    days ago. What they owe is what they owe now (the latest statement), so money paid since counts."""
    cte, params = dues_cte(operator_ids, today - dt.timedelta(days=days))
    with connection.cursor() as cursor:
        cursor.execute("WITH " + cte + "SELECT id FROM judged WHERE is_overdue", params)
        return [row[0] for row in cursor.fetchall()]


class OverdueFilterSet(ScopedFilterSet):
    """Who the overdue list shows: by zone (with its sub-zones) and by how long overdue. Filters the
    caller's scoped subscribers; the overdue list itself (billing's dues) is read for those only.
    Unusable input (another subtree's zone, an age not offered) lists nothing."""

    refuse_invalid = True

    zone = ScopedModelChoiceFilter(label=_("Zone"), offer=zones_among, empty_label=_("Any zone"), method="filter_zone")
    age = django_filters.TypedChoiceFilter(
        label=_("Overdue for"),
        choices=[
            ("", _("Any time")),
            ("7", _("more than 7 days")),
            ("15", _("more than 15 days")),
            ("30", _("more than 30 days")),
            ("60", _("more than 60 days")),
        ],
        coerce=int,
        method="filter_age",
    )

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        queryset: QuerySet[Any] | None = None,
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
    def narrowed(self) -> bool:
        """Some filter is in force (or the input was unusable): the list is not everyone overdue."""
        return self.refused or any(self.value(name) not in (None, "") for name in self.filters)

    def filter_zone(self, queryset: QuerySet[Any], name: str, value: Any) -> QuerySet[Any]:
        return queryset.filter(Q(zone=value) | Q(zone__parent=value))

    def filter_age(self, queryset: QuerySet[Any], name: str, value: int | None) -> QuerySet[Any]:
        if not value:
            return queryset
        return queryset.filter(pk__in=overdue_longer_than(self.operator_ids, self.today, value))
