"""Forms of the Schedule & reminders page: when an operator's bills and reminders go out, and its rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from sonjog.automation.models import OperatorSchedule, ReminderChannel, ReminderEvent, ReminderRule
from sonjog.catalog.models import Package
from sonjog.core.bounds import column_field
from sonjog.customers.models import Zone
from sonjog.operators.models import Operator


class OperatorScheduleForm(forms.Form):
    generation_day = column_field(
        OperatorSchedule,
        "generation_day",
        label=_("Generate bills from day"),
        min_value=1,
        max_value=31,
        required=False,
        help_text=_("Empty: as soon as each period starts. 31 means the last day of every month."),
    )
    generation_hour = column_field(
        OperatorSchedule,
        "generation_hour",
        label=_("Generate bills from hour"),
        required=True,
        min_value=0,
        max_value=23,
        help_text=_("Local time, 0-23."),
    )
    reminder_hour = column_field(
        OperatorSchedule,
        "reminder_hour",
        label=_("Send reminders from hour"),
        required=True,
        min_value=0,
        max_value=23,
        help_text=_("Local time, 0-23."),
    )


class ReminderRuleForm(forms.Form):
    event = forms.ChoiceField(label=_("Reminder"), choices=ReminderEvent.choices)
    offset_days = column_field(
        ReminderRule,
        "offset_days",
        required=True,
        label=_("Days from the date"),
        min_value=-60,
        max_value=60,
        help_text=_("-3 is three days before the due date (or the validity end), 0 the day itself, 2 two days after."),
    )
    package = forms.ModelChoiceField(
        label=_("Package"),
        queryset=Package.objects.none(),
        required=False,
        empty_label=_("Every package"),
    )
    zone = forms.ModelChoiceField(
        label=_("Zone"),
        queryset=Zone.objects.none(),
        required=False,
        empty_label=_("Every zone"),
        help_text=_("A zone includes its sub-zones."),
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=ReminderChannel.choices, required=False)

    def __init__(self, *args: Any, operator: Operator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the operator's own packages: a rule never reaches into another operator's catalogue.
        self.fields["package"].queryset = Package.objects.filter(operator=operator).order_by("name")  # type: ignore[attr-defined]
        self.fields["zone"].queryset = Zone.objects.filter(operator=operator).select_related("parent")  # type: ignore[attr-defined]
