from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from sonjog.core.audit import audit

if TYPE_CHECKING:
    from sonjog.customers.models import Subscriber
    from sonjog.operators.models import Operator


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """For rows only services may write (the ledger and its documents): view, never add/change/delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Every add, change and delete made through this ModelAdmin is an audit event ("admin.add",
    "admin.change", "admin.delete") in the same transaction, naming the superuser who made it and the
    row's stored values before and after (for a change, only the fields that changed).

    The values are read back from the database on both sides, so an admin whose `perform_save`
    hands the row to a service records what the service actually stored. Admins customise
    `perform_save` / `perform_delete`, never `save_model` / `delete_model` / `delete_queryset`:
    overriding those would skip the audit, so a subclass that tries is refused when it is defined.

    The event belongs to the row's operator, reached from the row by `audit_operator_path` (dotted
    attributes; "" when the row is itself an Operator), and to a subscriber when
    `audit_subscriber_path` names one. Fields in `audit_exclude_fields`, and encrypted columns, are
    never copied into the log, nor `auto_now` timestamps."""

    audit_operator_path: str = "operator"
    audit_subscriber_path: str = ""
    audit_exclude_fields: tuple[str, ...] = ()

    _AUDITED_HOOKS = ("save_model", "delete_model", "delete_queryset")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in cls._AUDITED_HOOKS:
            if hook in vars(cls):
                raise TypeError(f"{cls.__name__}.{hook} would skip the audit log; override perform_save/perform_delete")

    # -- the hooks admins may override --------------------------------------------------------------

    def perform_save(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)

    def perform_delete(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)

    # -- audited entry points -----------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            before = self._stored_values(type(obj), obj.pk, lock=True) if change and obj.pk is not None else {}
            self.perform_save(request, obj, form, change)
            after = self._stored_values(type(obj), obj.pk)
            if change:
                changed = [name for name in after if before.get(name) != after[name]]
                if not changed:
                    return
                before = {name: before.get(name) for name in changed}
                after = {name: after[name] for name in changed}
            self._record(request, obj, "admin.change" if change else "admin.add", before, after)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            # Recorded first: the row, and so the way to its operator, is gone after the delete.
            self._record(request, obj, "admin.delete", self._values(obj), {})
            self.perform_delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """The changelist's "delete selected" action: one event per row."""
        with transaction.atomic():
            for obj in queryset:
                self._record(request, obj, "admin.delete", self._values(obj), {})
            super().delete_queryset(request, queryset)

    # -- helpers --------------------------------------------------------------------------------------

    def _stored_values(self, model: type[models.Model], pk: Any, *, lock: bool = False) -> dict[str, Any]:
        rows = model._base_manager.filter(pk=pk)
        row = (rows.select_for_update() if lock else rows).first()
        return self._values(row) if row is not None else {}

    def _values(self, row: models.Model) -> dict[str, Any]:
        # `auto_now` stamps change on every save and say nothing the event's own time does not.
        return {
            field.name: field.value_from_object(row)
            for field in row._meta.concrete_fields
            if field.name not in self.audit_exclude_fields
            and not field.name.endswith("_encrypted")
            and not getattr(field, "auto_now", False)
        }

    def _follow(self, obj: Any, path: str) -> Any:
        return reduce(getattr, path.split("."), obj) if path else obj

    def _record(
        self, request: HttpRequest, obj: Any, action: str, before: dict[str, Any], after: dict[str, Any]
    ) -> None:
        operator: Operator | None = self._follow(obj, self.audit_operator_path)
        if operator is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__}: '{self.audit_operator_path}' leads to no operator for {obj!r}"
            )
        subscriber: Subscriber | None = (
            self._follow(obj, self.audit_subscriber_path) if self.audit_subscriber_path else None
        )
        audit(
            operator=operator,
            action=action,
            actor=request.user if isinstance(request.user, User) else None,
            subscriber=subscriber,
            model=obj._meta.label_lower,
            object_id=obj.pk,
            object=str(obj),
            before=before,
            after=after,
        )
