"""The base of every list filter (DESIGN house rule 9): a django-filter FilterSet in the app that owns
the rows, shared by the console, the API and anything else that lists them.

A filter set never picks its own rows. The caller hands it a queryset already scoped to the acting
operator's subtree, and the ids of the operators in that subtree; every row choice (package, zone,
collector, router...) is offered from those operators only, so another subtree's id is an invalid
choice, a form error like a missing row, and never a way to learn that the row exists.

Bad input never widens a list: a filter set either drops only the filters whose input is unusable
(django-filter's own way, and the default here), or, with `refuse_invalid`, lists nothing at all.
`defaults` give a filter the value it takes when the input names none or an unusable one (a page
that always shows one month or one day)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters.constants import EMPTY_VALUES

from sonjog.core import bounds
from sonjog.core.periods import add_months, parse_period

# The operators of the caller's subtree, or a function giving them (called only when needed: a page
# that never offers a row choice need not read the tree).
OperatorIds = Sequence[int] | Callable[[], Sequence[int]]


class PeriodField(forms.CharField):
    """A month written YYYY-MM whose every day is within the dates anything is billed for."""

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        if bounds.text_problem(text) is not None or len(text) > 20:
            raise ValidationError(_("Write the period as YYYY-MM, for example 2026-03."))
        try:
            period = parse_period(text)
        except ValueError:
            raise ValidationError(_("Write the period as YYYY-MM, for example 2026-03.")) from None
        try:
            bounds.check_date(period)
            bounds.check_date(add_months(period, 1) - dt.timedelta(days=1))
        except bounds.OutOfBounds:
            raise ValidationError(_("That period is out of range.")) from None
        return period


class IdField(forms.Field):
    """A row id typed into a query string: plain ASCII digits of a size ids have."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        found = bounds.query_id(value)
        if found is None:
            raise ValidationError(_("This is not a valid id."), code="invalid_id")
        return found


def day_start(day: dt.date, time_zone: str) -> dt.datetime:
    """The first instant of a calendar day in `time_zone` (an operator's business day)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(time_zone))


class TextFilter(django_filters.CharFilter):
    """Typed text, bounded and free of control characters (`max_length` is required)."""

    field_class = bounds.TextField


class CheckFilter(django_filters.Filter):
    """A tick box: ticked is True, anything else False (which filters nothing)."""

    field_class = forms.BooleanField


class AmountFilter(django_filters.Filter):
    """A money amount, NUMERIC(14,2)."""

    field_class = bounds.AmountField


class IdFilter(django_filters.Filter):
    """Rows pointing at the row with this id. Not a choice: the queryset is already scoped, so an id
    from another subtree (or of no row) simply matches nothing."""

    field_class = IdField


class DateFilter(django_filters.Filter):
    """A calendar date within the dates anything is recorded for."""

    field_class = bounds.DateField


class PeriodFilter(django_filters.Filter):
    """A billing period, YYYY-MM."""

    field_class = PeriodField


class ScopedModelChoiceFilter(django_filters.ModelChoiceFilter):
    """A row chosen among those of the filter set's operators only: `offer` turns the operator ids
    into the queryset of rows that may be chosen (and are shown as the choices)."""

    def __init__(
        self,
        *args: Any,
        offer: Callable[[list[int]], QuerySet[Any]],
        field_class: type[forms.ModelChoiceField] | None = None,
        **kwargs: Any,
    ) -> None:
        self.offer = offer
        if field_class is not None:
            self.field_class = field_class
        super().__init__(*args, **kwargs)

    def get_queryset(self, request: Any) -> QuerySet[Any]:
        return self.offer(self.parent.operator_ids)


class ScopedFilterSet(django_filters.FilterSet):
    """A FilterSet over a caller-scoped queryset; see the module docstring.

    Subclasses may override `prepare` (annotations the filters need, applied first) and `finish`
    (the list's order, applied last); both run whether or not any filter was given."""

    #: List nothing when any input is unusable, rather than only dropping the unusable filters.
    refuse_invalid: ClassVar[bool] = False

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        queryset: QuerySet[Any] | None = None,
        *,
        operator_ids: OperatorIds,
        defaults: Mapping[str, Any] | None = None,
        request: Any = None,
        prefix: str | None = None,
    ) -> None:
        if queryset is None:
            # Never "all rows": the caller's scope is what keeps another operator's rows out.
            raise TypeError(f"{type(self).__name__} needs the caller's scoped queryset")
        super().__init__(data, queryset, request=request, prefix=prefix)
        self._operator_ids = operator_ids
        self.defaults = dict(defaults or {})

    @property
    def operator_ids(self) -> list[int]:
        """The caller's subtree, read only when a row choice is offered or checked."""
        if callable(self._operator_ids):
            self._operator_ids = self._operator_ids()
        return list(self._operator_ids)

    def value(self, name: str) -> Any:
        """What filter `name` filters by: the valid input, else its default (None for none)."""
        if self.is_bound and name not in self.form.errors:  # reading the errors validates the input
            value = self.form.cleaned_data.get(name)
            if value not in EMPTY_VALUES:
                return value
        return self.defaults.get(name)

    @property
    def refused(self) -> bool:
        """The input was unusable and this filter set lists nothing for it."""
        return self.refuse_invalid and self.is_bound and not self.form.is_valid()

    def prepare(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def finish(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = self.prepare(queryset)
        if self.refused:
            return self.finish(queryset.none())
        for name, each in self.filters.items():
            queryset = each.filter(queryset, self.value(name))
        return self.finish(queryset)

    @property
    def qs(self) -> QuerySet[Any]:
        # Unlike django-filter's own, an unbound filter set still prepares, defaults and orders.
        if not hasattr(self, "_qs"):
            self._qs = self.filter_queryset(self.queryset.all())
        return self._qs
