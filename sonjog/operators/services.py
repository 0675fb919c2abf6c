"""Writes for operators and staff."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.core.audit import audit
from sonjog.operators.billing_settings import BILLING_SETTINGS, setting_text, setting_value
from sonjog.operators.exceptions import OperatorError
from sonjog.operators.models import (
    ConsoleModule,
    Operator,
    OperatorSettingsChange,
    SettingsChangeStatus,
    Staff,
    StaffRole,
)

# Staff and roles live in `staffing` (ADR 0013); their writes and the roles' defaults are re-exported
# here, so every write is still reached through this module.
from sonjog.operators.roles import OWNER_ONLY_PERMISSIONS, ROLE_PERMISSIONS, SONJOG_APPS  # noqa: F401
from sonjog.operators.staffing import (  # noqa: F401
    operator_role_ensure,
    operator_role_refresh,
    operator_role_reset,
    operator_role_update,
    operator_roles_refresh_all,
    password_generate,
    role_group,
    staff_create,
    staff_password_set,
    staff_role_sync,
    staff_set_active,
    staff_update,
)

# What a reseller takes from its parent when it is created without saying otherwise.
INHERITED_SETTINGS = (
    "currency",
    "time_zone",
    "phone_country",
    "billing_mode",
    "billing_cycle",
    "billing_day",
    "due_days",
    "grace_days",
    "vat_rate",
    "vat_inclusive",
)


@transaction.atomic
def operator_create(
    *, code: str, name: str, parent: Operator | None = None, actor: User | None = None, **fields: Any
) -> Operator:
    if Operator.objects.filter(code=code).exists():
        raise OperatorError(f"an operator with code '{code}' already exists")
    if parent is not None:
        # A reseller starts from its parent's settings; it may override any of them.
        for inherited in INHERITED_SETTINGS:
            fields.setdefault(inherited, getattr(parent, inherited))
        fields.setdefault("modules", list(parent.modules))
        _check_modules(parent, fields["modules"])
    fields.setdefault("customer_id_prefix", code.upper()[:6])
    _check_id_format(
        fields["customer_id_prefix"],
        fields.get("customer_id_infix", ""),
        fields.get("customer_id_postfix", ""),
        exclude=None,
    )
    operator = Operator.objects.create(code=code, name=name, parent=parent, path="", **fields)
    operator.path = f"{parent.path if parent else '/'}{operator.pk}/"
    operator.save(update_fields=["path"])
    audit(operator=operator, action="operator.create", actor=actor, after=operator_settings_of(operator))
    return operator


# --------------------------------------------------------------------------------------------------
# Settings, module access, activity and the first root ISP
# --------------------------------------------------------------------------------------------------

# Every setting an operator's owner may change (its code, parent and tree path never change).
OPERATOR_SETTINGS = (
    "name",
    "currency",
    "time_zone",
    "phone_country",
    "customer_id_prefix",
    "customer_id_infix",
    "customer_id_postfix",
    "customer_id_digits",
    *BILLING_SETTINGS,
    "bin_number",
    "document_address",
    "document_phone",
    # Applies at once: it decides which later cash payments wait in a hand-over, not any bill.
    "collection_approval",
)


def operator_settings_of(operator: Operator) -> dict[str, Any]:
    """The operator's settings and module access, as the audit log records them."""
    values = {name: setting_text(getattr(operator, name)) for name in OPERATOR_SETTINGS}
    values["modules"] = list(operator.modules)
    return values


def _check_id_format(prefix: str, infix: str, postfix: str, *, exclude: int | None) -> None:
    # Customer IDs are unique across the installation: two operators numbering with the same
    # prefix, infix and postfix would hand out the same IDs.
    clash = Operator.objects.filter(customer_id_prefix=prefix, customer_id_infix=infix, customer_id_postfix=postfix)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    other = clash.first()
    if other is not None:
        raise OperatorError(
            _("%(operator)s already numbers its customers with this prefix, infix and postfix; choose another.")
            % {"operator": other.name}
        )


def _check_modules(parent: Operator | None, modules: list[str]) -> None:
    unknown = sorted(set(modules) - set(ConsoleModule.values))
    if unknown:
        raise OperatorError(_("Unknown console sections: %(names)s.") % {"names": ", ".join(unknown)})
    if parent is not None:
        beyond = [ConsoleModule(each).label for each in modules if each not in parent.modules]
        if beyond:
            raise OperatorError(
                _("%(parent)s does not have %(names)s itself, so it cannot give them to a reseller.")
                % {"parent": parent.name, "names": ", ".join(str(each) for each in beyond)}
            )


def _acts_for(actor: User | None, operator: Operator) -> bool:
    staff = getattr(actor, "staff", None) if actor is not None else None
    return staff is not None and staff.operator_id == operator.pk


MANAGE_OPERATORS = "operators.manage_operators"


def _check_operator_reach(actor: User | None, operator: Operator) -> None:
    """A staff actor changes only operators of its own subtree, with the permission to manage them;
    no actor (the command line) and an installation superuser with no staff record may change any."""
    staff = getattr(actor, "staff", None) if actor is not None else None
    if staff is None:
        return
    assert actor is not None
    mine = staff.operator
    within = operator.pk == mine.pk or (staff.sees_subtree and operator.path.startswith(mine.path))
    if not within or not actor.has_perm(MANAGE_OPERATORS):
        raise OperatorError(_("You may not manage this operator."))


@transaction.atomic
def operator_update(*, operator: Operator, actor: User | None = None, **changes: Any) -> Operator:
    """Change settings (any of OPERATOR_SETTINGS) and module access at once, audited with before and
    after. Billing settings of an operator that has issued bills go through the pending change of
    `sonjog.automation.operator_settings` instead, which calls this when their day comes.

    Module access is set from above: an operator's own staff cannot change it, it stays within the
    parent's, and a module taken away is taken from the whole subtree below too."""
    unknown = sorted(set(changes) - {*OPERATOR_SETTINGS, "modules"})
    if unknown:
        raise OperatorError(f"not an operator setting: {', '.join(unknown)}")
    _check_operator_reach(actor, operator)
    locked = Operator.objects.select_for_update().get(pk=operator.pk)
    before = operator_settings_of(locked)
    modules = changes.pop("modules", None)
    if modules is not None:
        modules = [each for each in ConsoleModule.values if each in set(modules)]
        if modules != list(locked.modules):
            if _acts_for(actor, locked):
                raise OperatorError(_("An operator's console sections are set by the operator above it."))
            if locked.parent_id is None and actor is not None and getattr(actor, "staff", None) is not None:
                raise OperatorError(_("A root ISP always has every console section."))
            _check_modules(locked.parent, modules)
    for name, value in changes.items():
        setattr(locked, name, value)
    if {"customer_id_prefix", "customer_id_infix", "customer_id_postfix"} & set(changes):
        _check_id_format(
            locked.customer_id_prefix, locked.customer_id_infix, locked.customer_id_postfix, exclude=locked.pk
        )
    narrowed: list[str] = []
    if modules is not None and modules != list(locked.modules):
        narrowed = [each for each in locked.modules if each not in modules]
        locked.modules = modules
    locked.save()
    after = operator_settings_of(locked)
    changed = [name for name in after if after[name] != before[name]]
    if changed:
        audit(
            operator=locked,
            action="operator.update",
            actor=actor,
            before={name: before[name] for name in changed},
            after={name: after[name] for name in changed},
        )
    if narrowed:
        _subtree_modules_narrow(locked, narrowed, actor)
    return locked


def _subtree_modules_narrow(operator: Operator, removed: list[str], actor: User | None) -> None:
    below = Operator.objects.select_for_update().filter(path__startswith=operator.path).exclude(pk=operator.pk)
    for each in below.order_by("path"):
        kept = [module for module in each.modules if module not in removed]
        if kept != list(each.modules):
            audit(
                operator=each,
                action="operator.update",
                actor=actor,
                before={"modules": list(each.modules)},
                after={"modules": kept},
                because=f"{operator.code} lost {', '.join(removed)}",
            )
            each.modules = kept
            each.save(update_fields=["modules"])


@transaction.atomic
def operator_set_active(*, operator: Operator, is_active: bool, actor: User | None = None) -> list[Operator]:
    """Deactivate an operator with its whole subtree (its staff can no longer sign in; its
    subscribers are no longer billed, reminded or suspended by the scheduled jobs), or reactivate one
    operator whose parent is active. Returns the operators changed."""
    _check_operator_reach(actor, operator)
    if _acts_for(actor, operator):
        raise OperatorError(_("Staff cannot deactivate or reactivate their own operator."))
    if is_active:
        parent = operator.parent
        if parent is not None and not parent.is_active:
            raise OperatorError(_("%(parent)s is deactivated; reactivate it first.") % {"parent": parent.name})
        targets = list(Operator.objects.select_for_update().filter(pk=operator.pk, is_active=False))
    else:
        targets = list(
            Operator.objects.select_for_update().filter(path__startswith=operator.path, is_active=True).order_by("path")
        )
    for each in targets:
        each.is_active = is_active
        each.save(update_fields=["is_active"])
        audit(
            operator=each,
            action="operator.activate" if is_active else "operator.deactivate",
            actor=actor,
            before={"is_active": not is_active},
            after={"is_active": is_active},
        )
    return targets


@transaction.atomic
def operator_settings_schedule(
    *, operator: Operator, values: dict[str, Any], effective_from: dt.date, actor: User | None = None
) -> OperatorSettingsChange:
    """Hold billing settings until `effective_from`, replacing any change still pending."""
    unknown = sorted(set(values) - set(BILLING_SETTINGS))
    if not values or unknown:
        raise OperatorError(f"not a billing setting: {', '.join(unknown) or '(none)'}")
    replaced = OperatorSettingsChange.objects.select_for_update().filter(
        operator=operator, status=SettingsChangeStatus.PENDING
    )
    for earlier in replaced:
        _settings_change_close(earlier, SettingsChangeStatus.CANCELLED, actor, reason="replaced by a later change")
    stored = {name: setting_text(value) for name, value in values.items()}
    change = OperatorSettingsChange.objects.create(
        operator=operator,
        values=stored,
        effective_from=effective_from,
        requested_by=actor if actor is not None and actor.pk else None,
    )
    audit(
        operator=operator,
        action="operator.settings_scheduled",
        actor=actor,
        effective_from=effective_from,
        before={name: setting_text(getattr(operator, name)) for name in stored},
        after=stored,
    )
    return change


def _settings_change_close(
    change: OperatorSettingsChange, status: str, actor: User | None, *, reason: str = ""
) -> None:
    change.status = status
    change.reason = reason[:500]
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "reason", "decided_at"])
    audit(
        operator=change.operator,
        action=f"operator.settings_{status}",
        actor=actor,
        change=change.pk,
        effective_from=change.effective_from,
        values=change.values,
        reason=reason,
    )


@transaction.atomic
def operator_settings_cancel(*, change: OperatorSettingsChange, actor: User | None = None) -> None:
    locked = OperatorSettingsChange.objects.select_for_update().get(pk=change.pk)
    if locked.status != SettingsChangeStatus.PENDING:
        raise OperatorError(_("This change is no longer pending."))
    _settings_change_close(locked, SettingsChangeStatus.CANCELLED, actor)


@transaction.atomic
def operator_settings_apply(*, change: OperatorSettingsChange, actor: User | None = None) -> Operator:
    """Copy a pending change onto its operator (its day has come)."""
    locked = OperatorSettingsChange.objects.select_for_update().select_related("operator").get(pk=change.pk)
    if locked.status != SettingsChangeStatus.PENDING:
        raise OperatorError(_("This change is no longer pending."))
    values = {name: setting_value(name, stored) for name, stored in locked.values.items()}
    operator = operator_update(operator=locked.operator, actor=actor, **values)
    _settings_change_close(locked, SettingsChangeStatus.APPLIED, actor)
    return operator


@transaction.atomic
def operator_settings_refuse(*, change: OperatorSettingsChange, reason: str) -> None:
    """A pending change that can no longer apply as asked (bills of its periods were issued first)."""
    locked = OperatorSettingsChange.objects.select_for_update().select_related("operator").get(pk=change.pk)
    if locked.status == SettingsChangeStatus.PENDING:
        _settings_change_close(locked, SettingsChangeStatus.REFUSED, None, reason=reason)


@transaction.atomic
def reseller_create(
    *,
    parent: Operator,
    code: str,
    name: str,
    actor: User | None = None,
    owner_username: str = "",
    owner_password: str = "",
    owner_email: str = "",
    **fields: Any,
) -> Operator:
    """A reseller (or sub-reseller) under an active operator of the actor's subtree, with its first
    owner login when one is given, in one transaction."""
    _check_operator_reach(actor, parent)
    if not parent.is_active:
        raise OperatorError(_("%(parent)s is deactivated; reactivate it first.") % {"parent": parent.name})
    operator = operator_create(code=code, name=name, parent=parent, actor=actor, **fields)
    if owner_username:
        staff_create(
            operator=operator,
            username=owner_username,
            password=owner_password,
            role=StaffRole.OWNER,
            email=owner_email,
            actor=actor,
        )
    return operator


# One installation sets up its first root ISP once: concurrent first-run forms queue on this lock.
_SETUP_LOCK = zlib.crc32(b"sonjog.operators.setup")


@transaction.atomic
def root_isp_setup(
    *,
    code: str,
    name: str,
    owner_username: str,
    owner_password: str,
    owner_email: str = "",
    another_root: bool = False,
    first_run: bool = False,
    actor: User | None = None,
    **fields: Any,
) -> Staff:
    """Create a root ISP and its first owner login, in one transaction.

    A second root is refused unless `another_root` (a hosting company runs many ISPs in one
    database); `first_run` (the first-run page) refuses as soon as any operator exists at all."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SETUP_LOCK])
    existing = Operator.objects.filter(parent__isnull=True).order_by("pk").first()
    if first_run and Operator.objects.exists():
        raise OperatorError(_("This installation is already set up."))
    if existing is not None and not another_root:
        raise OperatorError(
            _(
                "A root ISP already exists (%(name)s, code %(code)s). Resellers are created under it from the "
                "Operators page; a hosting company running another ISP in this database says so with "
                "--another-root."
            )
            % {"name": existing.name, "code": existing.code}
        )
    operator = operator_create(code=code, name=name, parent=None, actor=actor, **fields)
    owner = staff_create(
        operator=operator, username=owner_username, password=owner_password, role=StaffRole.OWNER, email=owner_email
    )
    return owner
