"""Forms of a subscriber's plans: a billing hold, billing ahead, a change booked for a later day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from sonjog.catalog.models import Package
from sonjog.console.formatting import period_label
from sonjog.console.forms.common import PackageChoiceField, offer
from sonjog.core.bounds import DateField, TextField
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ScheduledChange, Subscriber
from sonjog.flows.generation import BILL_AHEAD_MONTHS

DATE_INPUT = {"type": "date"}


class HoldForm(forms.Form):
    start_date = DateField(label=_("Pause billing from"), widget=forms.DateInput(attrs=DATE_INPUT))
    end_date = DateField(
        label=_("Bill again from"),
        required=False,
        widget=forms.DateInput(attrs=DATE_INPUT),
        help_text=_("Empty: until the hold is ended"),
    )
    reason = TextField(label=_("Reason"), max_length=200)


class HoldEndForm(forms.Form):
    end_date = DateField(label=_("Bill again from"), widget=forms.DateInput(attrs=DATE_INPUT))


class BillAheadForm(forms.Form):
    through = forms.TypedChoiceField(label=_("Bill every month up to"), coerce=dt.date.fromisoformat)

    def __init__(self, *args: Any, today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        first = month_start(today)
        months = [add_months(first, ahead) for ahead in range(1, BILL_AHEAD_MONTHS + 1)]
        # The month as the reader's language names it ("March 2027", "মার্চ ২০২৭"), not "03/2027".
        self.fields["through"].choices = [(month.isoformat(), period_label(month)) for month in months]  # type: ignore[attr-defined]


class ScheduleForm(forms.Form):
    kind = forms.ChoiceField(label=_("Change"), choices=ScheduledChange.Kind.choices)
    effective_date = DateField(label=_("On"), widget=forms.DateInput(attrs=DATE_INPUT))
    package = PackageChoiceField(label=_("New package"), queryset=Package.objects.none(), required=False)
    reason = TextField(label=_("Reason"), max_length=200, required=False)

    def __init__(self, *args: Any, subscriber: Subscriber, can_terminate: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer(
            self,
            "package",
            Package.objects.filter(operator_id=subscriber.operator_id, is_active=True)
            .exclude(pk=subscriber.package_id)
            .order_by("price"),
        )
        if not can_terminate:
            self.fields["kind"].choices = [  # type: ignore[attr-defined]
                choice for choice in ScheduledChange.Kind.choices if choice[0] != ScheduledChange.Kind.TERMINATE
            ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == ScheduledChange.Kind.PACKAGE and not data.get("package"):
            self.add_error("package", _("Choose the package to move to."))
        if data.get("kind") in (ScheduledChange.Kind.SUSPEND, ScheduledChange.Kind.TERMINATE) and not data.get(
            "reason"
        ):
            self.add_error("reason", _("Say why."))
        return data
