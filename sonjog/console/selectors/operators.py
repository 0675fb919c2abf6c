"""The Operators page: the caller's part of the tree, in tree order, with what each operator runs."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count
from django.utils.translation import gettext as _

from sonjog.console.access import Scope
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.operators.billing_settings import setting_value
from sonjog.operators.models import ConsoleModule, Operator, OperatorSettingsChange, SettingsChangeStatus, Staff


@dataclass
class OperatorRow:
    operator: Operator
    depth: int  # below the caller's own operator (0 for it)
    subscribers: int  # not terminated
    staff: int
    pending: OperatorSettingsChange | None
    is_own: bool  # the caller's own operator: no module access or deactivation for it

    @property
    def indent(self) -> range:
        return range(self.depth)

    @property
    def module_labels(self) -> list[str]:
        return [str(label) for value, label in ConsoleModule.choices if value in self.operator.modules]

    @property
    def all_modules(self) -> bool:
        return set(self.operator.modules) >= set(ConsoleModule.values)


def operator_rows(scope: Scope) -> list[OperatorRow]:
    operators = scope.operators
    ids = [each.pk for each in operators]
    subscribers = dict(
        Subscriber.objects.filter(operator_id__in=ids)
        .exclude(service_intent=ServiceIntent.TERMINATED)
        .values("operator_id")
        .annotate(count=Count("id"))
        .values_list("operator_id", "count")
    )
    staff = dict(
        Staff.objects.filter(operator_id__in=ids, user__is_active=True)
        .values("operator_id")
        .annotate(count=Count("id"))
        .values_list("operator_id", "count")
    )
    pending = {
        change.operator_id: change
        for change in OperatorSettingsChange.objects.filter(operator_id__in=ids, status=SettingsChangeStatus.PENDING)
    }
    top = min((each.depth for each in operators), default=0)
    own = scope.operator.pk if scope.operator is not None else None
    return [
        OperatorRow(
            operator=each,
            depth=each.depth - top,
            subscribers=subscribers.get(each.pk, 0),
            staff=staff.get(each.pk, 0),
            pending=pending.get(each.pk),
            is_own=each.pk == own,
        )
        for each in operators
    ]


def operator_in_scope(scope: Scope, operator_id: int) -> Operator | None:
    """The operator with this id if the caller's scope holds it (None otherwise: the caller says 404)."""
    if operator_id not in scope.operator_ids:
        return None
    return Operator.objects.select_related("parent").filter(pk=operator_id).first()


def settings_change_lines(change: OperatorSettingsChange) -> list[tuple[str, str]]:
    """A pending change as (setting, new value) in words: "Billing mode: Cumulative (balance forward)"."""
    lines = []
    for name, stored in change.values.items():
        field = Operator._meta.get_field(name)
        value = setting_value(name, stored)
        choices = dict(getattr(field, "choices", None) or [])
        shown = str(choices.get(value, value))
        if isinstance(value, bool):
            shown = str(_("yes") if value else _("no"))
        lines.append((str(getattr(field, "verbose_name", name)).capitalize(), shown))
    return lines


def settings_change_recent(operator: Operator) -> OperatorSettingsChange | None:
    """The latest decided change (applied, refused or cancelled), to say what became of it."""
    return (
        OperatorSettingsChange.objects.filter(operator=operator)
        .exclude(status=SettingsChangeStatus.PENDING)
        .order_by("-decided_at")
        .first()
    )
