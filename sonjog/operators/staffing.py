"""Writes for staff logins and their roles (ADR 0013). `sonjog.operators.services` re-exports every
public name, so callers import them from there.

A staff login always holds exactly one role group: the group of its operator's version of its role
(`OperatorRole`). `staff_create` puts it there, `staff_role_sync` keeps it there after any change
(the console, the admin, the CLI), and a deferred database trigger refuses a commit that leaves a
staff row outside its role's group or inside another role's (migration operators.0005).

The acting login (`actor`) is checked on every change it asks for: the staff member's operator must
be in its subtree, it needs `operators.manage_staff`, only an owner makes or manages an owner, and
no role it hands out (or edits towards) may hold a permission it does not hold itself. `actor=None`
is the installation itself: the CLI, `sonjog setup`, the demo, migrations.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from sonjog.core.audit import audit
from sonjog.operators.exceptions import PrivilegeError, StaffError
from sonjog.operators.models import Operator, OperatorRole, RoleOverride, Staff, StaffRole
from sonjog.operators.modules import hidden_modules, module_of_permission
from sonjog.operators.roles import (
    EVERYTHING,
    FIXED_ROLES,
    OWNER_ONLY_PERMISSIONS,
    ROLE_PERMISSIONS,
    SONJOG_APPS,
    matrix_permissions,
)

MANAGE_STAFF = "operators.manage_staff"
ACT_FOR_RESELLERS = "operators.act_for_resellers"
# Twelve characters from an alphabet without look-alikes (0/O, 1/l/I), in groups of four, easy to
# read out over the phone and to type on one.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _unknown_role(role: str) -> str:
    return _("Unknown role '%(role)s'; use one of %(roles)s.") % {"role": role, "roles": ", ".join(StaffRole.values)}


def password_generate() -> str:
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(3))


# -- permissions ------------------------------------------------------------------------------------


def _permission_index() -> dict[str, int]:
    """Every Sonjog permission, "app_label.codename" -> id (a few hundred rows)."""
    rows = Permission.objects.filter(content_type__app_label__in=SONJOG_APPS).values_list(
        "content_type__app_label", "codename", "pk"
    )
    return {f"{app_label}.{codename}": pk for app_label, codename, pk in rows}


def default_permissions(base_role: str, index: Mapping[str, int] | None = None) -> set[str]:
    """The built-in role's permissions, as "app_label.codename" of permissions that exist."""
    index = _permission_index() if index is None else index
    wanted = ROLE_PERMISSIONS[base_role]
    if wanted == [EVERYTHING]:
        held = set(index)
        if base_role != StaffRole.OWNER:
            held -= set(OWNER_ONLY_PERMISSIONS)
        return held
    return {each for each in wanted if each in index}


def _apply_overrides(held: set[str], overrides: Iterable[tuple[str, bool]], index: Mapping[str, int]) -> set[str]:
    granted = {each for each, is_granted in overrides if is_granted and each in index}
    revoked = {each for each, is_granted in overrides if not is_granted}
    return (held - revoked) | granted


def _overrides_of(role_ids: Iterable[int]) -> dict[int, list[tuple[str, bool]]]:
    found: dict[int, list[tuple[str, bool]]] = {}
    rows = RoleOverride.objects.filter(role_id__in=list(role_ids)).values_list(
        "role_id", "permission__content_type__app_label", "permission__codename", "granted"
    )
    for role_id, app_label, codename, is_granted in rows:
        found.setdefault(role_id, []).append((f"{app_label}.{codename}", is_granted))
    return found


def role_permissions(role: OperatorRole, index: Mapping[str, int] | None = None) -> set[str]:
    """What an operator's role may do: the built-in default with the operator's overrides applied."""
    index = _permission_index() if index is None else index
    held = default_permissions(role.base_role, index)
    if role.base_role in FIXED_ROLES:
        return held
    return _apply_overrides(held, _overrides_of([role.pk]).get(role.pk, []), index)


def _within_modules(permissions: Iterable[str], operator: Operator) -> set[str]:
    """What the permissions come to for the operator's staff, after its module access."""
    hidden = hidden_modules(operator)
    return {each for each in permissions if module_of_permission(each) not in hidden}


def _group_name(operator: Operator, base_role: str) -> str:
    return f"role:{operator.pk}:{base_role}"


def operator_role_refresh(role: OperatorRole, index: Mapping[str, int] | None = None) -> None:
    """Give the role's group exactly the role's permissions."""
    index = _permission_index() if index is None else index
    role.group.permissions.set([index[each] for each in role_permissions(role, index)])


def operator_role_ensure(*, operator: Operator, base_role: str) -> OperatorRole:
    """The operator's version of a built-in role, made (as the built-in default) on first use."""
    if base_role not in StaffRole.values:
        raise StaffError(_unknown_role(base_role))
    role = OperatorRole.objects.select_related("group").filter(operator=operator, base_role=base_role).first()
    if role is not None:
        return role
    with transaction.atomic():
        group, _created = Group.objects.get_or_create(name=_group_name(operator, base_role))
        role, created = OperatorRole.objects.get_or_create(
            operator=operator, base_role=base_role, defaults={"group": group}
        )
        if created:
            operator_role_refresh(role)
    return role


def role_group(role: str, operator: Operator) -> Group:
    """The auth group that carries the operator's version of `role`."""
    return operator_role_ensure(operator=operator, base_role=role).group


def operator_roles_refresh_all() -> int:
    """Bring every operator's role group up to date with the code's defaults and its overrides (after
    every migrate: a permission a release adds to a built-in role reaches the logins that exist)."""
    index = _permission_index()
    count = 0
    for role in OperatorRole.objects.select_related("group"):
        operator_role_refresh(role, index)
        count += 1
    return count


# -- who may do what to whom ------------------------------------------------------------------------


class Authority:
    """What one acting login may do to staff and roles, reading each operator's roles once (a staff
    list asks this for every row). `actor=None` is the installation itself and may do anything."""

    def __init__(self, actor: User | None) -> None:
        self.actor = actor
        self.unlimited = actor is None or actor.is_superuser
        self._own: Staff | None = None
        self._index: dict[str, int] | None = None
        self._roles: dict[int, dict[str, set[str]]] = {}

    @property
    def own(self) -> Staff:
        if self._own is None:
            assert self.actor is not None
            self._own = Staff.objects.select_related("operator").filter(user=self.actor).first()
            if self._own is None:
                raise PrivilegeError(_("This login belongs to no operator."))
        return self._own

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = _permission_index()
        return self._index

    def role_permissions(self, operator: Operator, base_role: str) -> set[str]:
        """The operator's version of a role, as its staff get it (after module access)."""
        if operator.pk not in self._roles:
            roles = {role.pk: role for role in OperatorRole.objects.filter(operator=operator)}
            overrides = _overrides_of(roles)
            by_base = {}
            for each in StaffRole.values:
                held = default_permissions(each, self.index)
                role = next((role for role in roles.values() if role.base_role == each), None)
                if role is not None and each not in FIXED_ROLES:
                    held = _apply_overrides(held, overrides.get(role.pk, []), self.index)
                by_base[each] = _within_modules(held, operator)
            self._roles[operator.pk] = by_base
        return self._roles[operator.pk][base_role]

    def check_reach(self, operator: Operator) -> None:
        """The actor may manage staff and roles of `operator`: its own operator, or (acting for
        resellers) one below it."""
        if self.unlimited:
            return
        assert self.actor is not None
        own = self.own
        if not self.actor.has_perm(MANAGE_STAFF):
            raise PrivilegeError(_("You may not manage staff (permission operators.manage_staff)."))
        if operator.pk == own.operator_id:
            return
        if own.sees_subtree and self.actor.has_perm(ACT_FOR_RESELLERS) and operator.path.startswith(own.operator.path):
            return
        raise PrivilegeError(_("That operator is outside your part of the operator tree."))

    def check_power(self, operator: Operator, base_role: str) -> None:
        """The actor may hand out the operator's version of `base_role`, or manage a login that holds
        it: only an owner for an owner, and never a role that can do more than the actor."""
        if self.unlimited:
            return
        assert self.actor is not None
        if base_role == StaffRole.OWNER and self.own.role != StaffRole.OWNER:
            raise PrivilegeError(_("Only an owner can make or manage an owner."))
        beyond = self.role_permissions(operator, base_role) - self.actor.get_all_permissions()
        if beyond:
            raise PrivilegeError(
                _("The role %(role)s can do more than you can (%(permissions)s).")
                % {
                    "role": StaffRole(base_role).label,
                    "permissions": ", ".join(sorted(beyond)[:3]) + (", ..." if len(beyond) > 3 else ""),
                }
            )

    def check_grants(self, permissions: Iterable[str]) -> None:
        """The actor holds every permission it is about to give a role."""
        if self.unlimited:
            return
        assert self.actor is not None
        beyond = set(permissions) - self.actor.get_all_permissions()
        if beyond:
            raise PrivilegeError(
                _("You cannot give a role what you may not do yourself (%(permissions)s).")
                % {"permissions": ", ".join(sorted(beyond))}
            )

    def may_manage(self, staff: Staff) -> bool:
        """Whether the actor may change this login (role, details, active, password): never itself."""
        if self.actor is not None and self.actor.pk == staff.user_id:
            return False
        try:
            self.check_reach(staff.operator)
            self.check_power(staff.operator, staff.role)
        except PrivilegeError:
            return False
        return True

    def grantable(self, operator: Operator) -> list[str]:
        """The roles the actor may give a login of `operator`, in StaffRole order."""
        try:
            self.check_reach(operator)
        except PrivilegeError:
            return []
        grantable = []
        for base_role in StaffRole.values:
            try:
                self.check_power(operator, base_role)
            except PrivilegeError:
                continue
            grantable.append(base_role)
        return grantable

    def may_edit_roles(self, operator: Operator) -> bool:
        try:
            self.check_reach(operator)
        except PrivilegeError:
            return False
        return True


# -- staff ------------------------------------------------------------------------------------------


def _staff_values(staff: Staff) -> dict[str, Any]:
    user = staff.user
    return {
        "username": user.username,
        "name": user.get_full_name(),
        "email": user.email,
        "phone": staff.phone,
        "operator": staff.operator.code,
        "role": staff.role,
        "sees_subtree": staff.sees_subtree,
        "active": user.is_active,
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    changed = [name for name in after if before.get(name) != after[name]]
    return {name: before.get(name) for name in changed}, {name: after[name] for name in changed}


def _check_username(username: str) -> None:
    if not username or len(username) > 150:
        raise StaffError(_("A username has 1 to 150 characters."))
    try:
        User.username_validator(username)
    except ValidationError:
        raise StaffError(_("A username may have letters, digits and @ . + - _ only.")) from None
    if User.objects.filter(username__iexact=username).exists():
        raise StaffError(_("The username '%(username)s' is taken.") % {"username": username})


def _check_email(email: str) -> None:
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise StaffError(_("'%(email)s' is not an e-mail address.") % {"email": email}) from None


def _check_password(password: str, user: User | None = None) -> None:
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise StaffError(" ".join(error.messages)) from None


def _check_role_group(staff: Staff) -> None:
    """The login is in its role's group and in no other role's: what the database trigger checks at
    commit, checked here at once so the caller gets a clear error instead."""
    expected = OperatorRole.objects.filter(operator_id=staff.operator_id, base_role=staff.role).values_list(
        "group_id", flat=True
    )
    held = set(staff.user.groups.filter(operator_role__isnull=False).values_list("pk", flat=True))
    if held != set(expected) or not held:
        raise StaffError(_("The login '%(username)s' is not in its role's group.") % {"username": staff.user.username})


def staff_role_sync(*, staff: Staff) -> None:
    """Give the login exactly its role's group: its operator's version of its role, dropping every
    other role's group (after the role or the operator changed, wherever that was done)."""
    with transaction.atomic():
        group = role_group(staff.role, staff.operator)
        others = Group.objects.filter(operator_role__isnull=False).exclude(pk=group.pk)
        staff.user.groups.remove(*others.filter(user=staff.user))
        staff.user.groups.add(group)
        _check_role_group(staff)


@transaction.atomic
def staff_create(
    *,
    operator: Operator,
    username: str,
    password: str,
    role: str,
    email: str = "",
    name: str = "",
    phone: str = "",
    sees_subtree: bool = True,
    actor: User | None = None,
) -> Staff:
    """A new staff login for `operator` with `role`, in its role's group from the start."""
    if role not in StaffRole.values:
        raise StaffError(_unknown_role(role))
    if not operator.is_active:
        raise StaffError(_("The operator %(code)s is deactivated.") % {"code": operator.code})
    authority = Authority(actor)
    authority.check_reach(operator)
    authority.check_power(operator, role)
    _check_username(username)
    _check_email(email)
    _check_password(password, User(username=username, email=email, first_name=name))
    # Not is_staff: the Django admin is for the installation's superusers; staff work in the console.
    user = User.objects.create_user(username=username, password=password, email=email, first_name=name)
    staff = Staff.objects.create(user=user, operator=operator, role=role, sees_subtree=sees_subtree, phone=phone)
    staff_role_sync(staff=staff)
    audit(operator=operator, action="staff.create", actor=actor, object_id=staff.pk, after=_staff_values(staff))
    return staff


def _check_not_self(actor: User | None, staff: Staff, refusal: str) -> None:
    if actor is not None and actor.pk == staff.user_id:
        raise PrivilegeError(refusal)


def _locked(staff: Staff) -> Staff:
    return Staff.objects.select_for_update().select_related("user", "operator").get(pk=staff.pk)


@transaction.atomic
def staff_update(
    *,
    staff: Staff,
    actor: User | None = None,
    role: str | None = None,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    sees_subtree: bool | None = None,
) -> Staff:
    """Change a login's role or details; a new role moves it to that role's group at once."""
    staff = _locked(staff)
    authority = Authority(actor)
    authority.check_reach(staff.operator)
    authority.check_power(staff.operator, staff.role)
    before = _staff_values(staff)
    if role is not None and role != staff.role:
        if role not in StaffRole.values:
            raise StaffError(_unknown_role(role))
        _check_not_self(actor, staff, _("You cannot change your own role."))
        authority.check_power(staff.operator, role)
        staff.role = role
    if sees_subtree is not None and sees_subtree != staff.sees_subtree:
        _check_not_self(actor, staff, _("You cannot change what you see yourself."))
        staff.sees_subtree = sees_subtree
    if phone is not None:
        staff.phone = phone
    user = staff.user
    if email is not None and email != user.email:
        _check_email(email)
        user.email = email
    if name is not None and name != user.get_full_name():
        user.first_name, user.last_name = name, ""
    after = {**_staff_values(staff)}
    old, new = _changes(before, after)
    if not new:
        return staff
    user.save(update_fields=["email", "first_name", "last_name"])
    staff.save(update_fields=["role", "sees_subtree", "phone"])
    staff_role_sync(staff=staff)
    audit(operator=staff.operator, action="staff.update", actor=actor, object_id=staff.pk, before=old, after=new)
    return staff


@transaction.atomic
def staff_set_active(*, staff: Staff, active: bool, actor: User | None = None) -> Staff:
    """Deactivate a login (it can no longer sign in and its sessions stop working) or reactivate it."""
    staff = _locked(staff)
    authority = Authority(actor)
    authority.check_reach(staff.operator)
    authority.check_power(staff.operator, staff.role)
    _check_not_self(actor, staff, _("You cannot deactivate or reactivate yourself."))
    if staff.user.is_active == active:
        return staff
    if active and not staff.operator.is_active:
        raise StaffError(_("The operator %(code)s is deactivated.") % {"code": staff.operator.code})
    User.objects.filter(pk=staff.user_id).update(is_active=active)
    staff.user.is_active = active
    audit(
        operator=staff.operator,
        action="staff.reactivate" if active else "staff.deactivate",
        actor=actor,
        object_id=staff.pk,
        before={"active": not active},
        after={"active": active},
    )
    return staff


@transaction.atomic
def staff_password_set(*, staff: Staff, password: str, actor: User | None = None) -> None:
    """Give a login a new password (a reset: its signed-in sessions end with the old one)."""
    staff = _locked(staff)
    authority = Authority(actor)
    authority.check_reach(staff.operator)
    authority.check_power(staff.operator, staff.role)
    _check_not_self(actor, staff, _("You cannot reset your own password here."))
    _check_password(password, staff.user)
    staff.user.set_password(password)
    staff.user.save(update_fields=["password"])
    # The password itself is never written to the log, only that it changed.
    audit(
        operator=staff.operator,
        action="staff.password_reset",
        actor=actor,
        object_id=staff.pk,
        before={"password": "(old)"},
        after={"password": "(new)"},
    )


# -- roles ------------------------------------------------------------------------------------------


@transaction.atomic
def operator_role_update(
    *,
    operator: Operator,
    base_role: str,
    changes: Mapping[str, bool],
    name: str | None = None,
    landing: str | None = None,
    actor: User | None = None,
) -> OperatorRole:
    """Change an operator's version of a role: `changes` maps matrix permissions to whether the role
    holds them; permissions not named keep what they had. The owner's role is fixed, and the actor
    may give a role only permissions it holds itself."""
    if base_role in FIXED_ROLES:
        raise StaffError(_("The %(role)s role always has every permission.") % {"role": StaffRole(base_role).label})
    authority = Authority(actor)
    authority.check_reach(operator)
    authority.check_power(operator, base_role)
    controlled = matrix_permissions()
    unknown = sorted(set(changes) - controlled)
    if unknown:
        raise StaffError(
            _("These permissions are not part of the matrix: %(permissions)s.") % {"permissions": ", ".join(unknown)}
        )
    role = operator_role_ensure(operator=operator, base_role=base_role)
    role = OperatorRole.objects.select_for_update().select_related("group").get(pk=role.pk)
    index = _permission_index()
    held = role_permissions(role, index)
    wanted = {each for each, on in changes.items() if on and each in index}
    dropped = {each for each, on in changes.items() if not on}
    authority.check_grants(wanted - held)
    after_permissions = (held - dropped) | wanted
    defaults = default_permissions(base_role, index)
    RoleOverride.objects.filter(
        role=role, permission_id__in=[index[each] for each in changes if each in index]
    ).delete()
    RoleOverride.objects.bulk_create(
        [
            RoleOverride(role=role, permission_id=index[each], granted=each in after_permissions)
            for each in sorted(changes)
            if each in index and ((each in after_permissions) != (each in defaults))
        ]
    )
    before = {"name": role.name, "landing": role.landing}
    if name is not None:
        role.name = name.strip()
    if landing is not None:
        role.landing = landing
    role.save(update_fields=["name", "landing"])
    operator_role_refresh(role, index)
    gained, lost = sorted(after_permissions - held), sorted(held - after_permissions)
    old, new = _changes(before, {"name": role.name, "landing": role.landing})
    if gained or lost or new:
        audit(
            operator=operator,
            action="role.update",
            actor=actor,
            role=base_role,
            before={**old, "permissions": lost},
            after={**new, "permissions": gained},
        )
    return role


@transaction.atomic
def operator_role_reset(*, operator: Operator, base_role: str, actor: User | None = None) -> OperatorRole:
    """Put an operator's role back to the built-in one (permissions, name and landing)."""
    authority = Authority(actor)
    authority.check_reach(operator)
    authority.check_power(operator, base_role)
    role = operator_role_ensure(operator=operator, base_role=base_role)
    index = _permission_index()
    held = role_permissions(role, index)
    defaults = default_permissions(base_role, index)
    authority.check_grants(defaults - held)
    before = {"name": role.name, "landing": role.landing}
    RoleOverride.objects.filter(role=role).delete()
    OperatorRole.objects.filter(pk=role.pk).update(name="", landing="")
    role.name, role.landing = "", ""
    operator_role_refresh(role, index)
    audit(
        operator=operator,
        action="role.reset",
        actor=actor,
        role=base_role,
        before={**before, "permissions": sorted(held - defaults)},
        after={"name": "", "landing": "", "permissions": sorted(defaults - held)},
    )
    return role
