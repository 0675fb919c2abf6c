"""Writes for routers: create, edit, deactivate and reactivate, each one transaction, audited with what
changed (credentials only as "replaced", never their values), with typed errors.

A router that Sonjog drives gets every package profile it must hold queued in the same transaction
(`profiles.router_profiles_push`) when it is created, reactivated, pointed at another device or
taken out of record-only mode; its suspension-portal rules (`portal.portal_redirect_sync`) likewise, and
whenever the portal settings, the suspended list or profile, or the suspend mode change. Deactivating
a router hands its waiting subscriber commands to whatever router now serves those subscribers.
`sonjog.network.services` re-exports these functions.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from sonjog.core import bounds
from sonjog.core.audit import audit
from sonjog.customers.models import Zone
from sonjog.network.enforcement import outbox_enqueue_many
from sonjog.network.exceptions import RouterInvalid, RouterNameTaken
from sonjog.network.models import DriverKind, OutboxCommand, OutboxStatus, Router, SuspendMode
from sonjog.network.portal import portal_redirect_sync, walled_garden_entries
from sonjog.network.profiles import router_profiles_push
from sonjog.operators.models import Operator

# What staff may change on a router (credentials are write-only: given to replace, never read back).
ROUTER_FIELDS = (
    "name",
    "address",
    "driver",
    "api_port",
    "use_tls",
    "username",
    "coa_port",
    "supports_coa",
    "record_only",
    "suspend_mode",
    "suspended_profile",
    "suspended_address_list",
    "portal_address",
    "portal_port",
    "walled_garden",
)
CREDENTIALS = ("password", "radius_secret")
# A change of any of these means the profiles must be (re)checked on the router Sonjog now talks to.
_REPUSH_FIELDS = frozenset(
    {"address", "driver", "api_port", "use_tls", "username", "password", "record_only", "suspend_mode"}
    | {"suspended_profile", "suspended_address_list"}
)
# A change of any of these (or of the device Sonjog talks to) means the portal rules must be re-checked.
_PORTAL_FIELDS = _REPUSH_FIELDS | {"portal_address", "portal_port", "walled_garden"}


def _max_length(name: str) -> int:
    field = Router._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """Every given field in the shape the model stores, or RouterInvalid saying what is wrong."""
    checked = dict(fields)
    if "name" in checked:
        checked["name"] = str(checked["name"]).strip()
        if not checked["name"]:
            raise RouterInvalid("a router needs a name")
        if len(checked["name"]) > _max_length("name"):
            raise RouterInvalid(f"a router name has at most {_max_length('name')} characters")
    if "address" in checked:
        try:
            checked["address"] = bounds.parse_host(checked["address"])
        except ValueError as error:
            raise RouterInvalid(str(error)) from None
    if "driver" in checked and checked["driver"] not in DriverKind.values:
        raise RouterInvalid(f"unknown driver '{checked['driver']}'; use one of {', '.join(DriverKind.values)}")
    if "suspend_mode" in checked and checked["suspend_mode"] not in SuspendMode.values:
        raise RouterInvalid(
            f"unknown suspend mode '{checked['suspend_mode']}'; use one of {', '.join(SuspendMode.values)}"
        )
    if "portal_address" in checked:
        checked["portal_address"] = _portal_address(checked["portal_address"])
    if "walled_garden" in checked:
        try:
            checked["walled_garden"] = "\n".join(walled_garden_entries(str(checked["walled_garden"] or "")))
        except ValueError as error:
            raise RouterInvalid(str(error)) from None
    for port in ("api_port", "coa_port", "portal_port"):
        if port in checked and not (isinstance(checked[port], int) and 1 <= checked[port] <= 65535):
            raise RouterInvalid(f"the {port.replace('_', ' ')} must be a number from 1 to 65535")
    for text in ("username", "suspended_profile", "suspended_address_list"):
        if text in checked:
            checked[text] = str(checked[text]).strip()
            limit = _max_length(text)
            if len(checked[text]) > limit:
                raise RouterInvalid(f"the {text.replace('_', ' ')} has at most {limit} characters")
    return checked


def _portal_address(value: Any) -> str | None:
    """The portal's IPv4 address, or None (no portal) for nothing given."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise RouterInvalid(f"the portal address must be an IPv4 address, not '{text[:60]}'") from None
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        raise RouterInvalid(f"{address} cannot be the portal's address: give the portal server's IPv4 address")
    return str(address)


def _check_whole(router: Router) -> None:
    """Rules on the fields together, once they are all known."""
    if router.driver == DriverKind.MIKROTIK and not router.username:
        raise RouterInvalid("a MikroTik router needs the API user name")
    if router.suspend_mode == SuspendMode.PROFILE and not router.suspended_profile:
        raise RouterInvalid("the suspended-profile mode needs the name of the suspended profile")
    if router.suspend_mode == SuspendMode.ADDRESS_LIST and not router.suspended_address_list:
        raise RouterInvalid("the address-list mode needs the name of the suspended address list")
    if router.portal_address and not router.suspended_address_list:
        raise RouterInvalid("the suspension portal needs the name of the suspended address list")


def _checked_zones(operator: Operator, zones: Iterable[Zone]) -> list[Zone]:
    """A router serves zones of its own operator's tree only (a reseller's zones on its ISP's router is
    usual; another branch's zones never)."""
    chosen = list(zones)
    ids = [zone.pk for zone in chosen]
    allowed = set(
        Zone.objects.filter(pk__in=ids, operator__path__startswith=operator.path).values_list("pk", flat=True)
    )
    foreign = [zone for zone in chosen if zone.pk not in allowed]
    if foreign:
        raise RouterInvalid(f"the zone '{foreign[0]}' belongs to another operator")
    return sorted(chosen, key=lambda zone: zone.pk)


def _name_taken(operator_id: int, name: str, exclude: int | None = None) -> bool:
    others = Router.objects.filter(operator_id=operator_id, name=name)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    return others.exists()


def router_create(
    *,
    operator: Operator,
    name: str,
    address: str,
    driver: str = DriverKind.MIKROTIK,
    api_port: int = 8728,
    use_tls: bool = False,
    username: str = "admin",
    password: str = "",
    radius_secret: str = "",
    coa_port: int = 3799,
    supports_coa: bool = True,
    record_only: bool = False,
    suspend_mode: str = SuspendMode.DISABLE,
    suspended_profile: str = "suspended",
    suspended_address_list: str = "suspended",
    portal_address: str | None = None,
    portal_port: int = 80,
    walled_garden: str = "",
    zones: Iterable[Zone] = (),
    actor: User | None = None,
) -> Router:
    """A router (NAS) of the operator, with its credentials encrypted at rest; a router Sonjog drives
    gets the package profiles it must hold queued in the same transaction."""
    fields = _checked(
        {
            "name": name,
            "address": address,
            "driver": driver,
            "api_port": api_port,
            "use_tls": use_tls,
            "username": username,
            "coa_port": coa_port,
            "supports_coa": supports_coa,
            "record_only": record_only,
            "suspend_mode": suspend_mode,
            "suspended_profile": suspended_profile,
            "suspended_address_list": suspended_address_list,
            "portal_address": portal_address,
            "portal_port": portal_port,
            "walled_garden": walled_garden,
        }
    )
    served = _checked_zones(operator, zones)
    if _name_taken(operator.pk, fields["name"]):
        raise RouterNameTaken(f"a router named '{fields['name']}' already exists")
    router = Router(operator=operator, **fields)
    _check_whole(router)
    router.password = password
    router.radius_secret = radius_secret
    try:
        with transaction.atomic():
            router.save()
            router.zones.set(served)
            audit(
                operator=operator,
                action="router.create",
                actor=actor,
                router=router.pk,
                after={
                    **fields,
                    "zones": [zone.pk for zone in served],
                    **{
                        key: "set" for key, value in (("password", password), ("radius_secret", radius_secret)) if value
                    },
                },
            )
            router_profiles_push(router=router, requested_by="router added")
            if router.portal_address:
                portal_redirect_sync(router, requested_by="router added")
    except IntegrityError:
        raise RouterNameTaken(f"a router named '{fields['name']}' already exists") from None
    return router


def router_update(
    *,
    router: Router,
    actor: User | None = None,
    password: str | None = None,
    radius_secret: str | None = None,
    zones: Iterable[Zone] | None = None,
    **fields: Any,
) -> Router:
    """Change a router's settings; fields not given stay as they are. A credential given (non-empty)
    replaces the stored one; None or "" keeps it. `zones` given replaces the zones served."""
    unknown = set(fields) - set(ROUTER_FIELDS)
    if unknown:
        raise RouterInvalid(f"cannot change {', '.join(sorted(unknown))} of a router")
    wanted = _checked(fields)
    with transaction.atomic():
        locked = Router.objects.select_for_update().select_related("operator").get(pk=router.pk)
        changed = {key: value for key, value in wanted.items() if getattr(locked, key) != value}
        before: dict[str, Any] = {key: getattr(locked, key) for key in changed}
        after: dict[str, Any] = dict(changed)
        if "name" in changed and _name_taken(locked.operator_id, changed["name"], exclude=locked.pk):
            raise RouterNameTaken(f"a router named '{changed['name']}' already exists")
        for key, value in changed.items():
            setattr(locked, key, value)
        _check_whole(locked)
        update_fields = list(changed)
        for key, value in (("password", password), ("radius_secret", radius_secret)):
            if value:
                setattr(locked, key, value)
                update_fields.append(f"{key}_encrypted")
                before[key], after[key] = "(hidden)", "replaced"
        if zones is not None:
            served = _checked_zones(locked.operator, zones)
            old = sorted(locked.zones.values_list("pk", flat=True))
            new = [zone.pk for zone in served]
            if old != new:
                locked.zones.set(served)
                before["zones"], after["zones"] = old, new
        if not after:
            return locked
        if update_fields:
            try:
                with transaction.atomic():
                    locked.save(update_fields=update_fields)
            except IntegrityError:
                raise RouterNameTaken(f"a router named '{locked.name}' already exists") from None
        audit(
            operator=locked.operator,
            action="router.update",
            actor=actor,
            router=locked.pk,
            fields=", ".join(sorted(after)),
            before=before,
            after=after,
        )
        if _REPUSH_FIELDS & set(after):
            router_profiles_push(router=locked, requested_by="router changed")
        # Turned on, changed or turned off: the command brings the rules to the settings (none without a
        # portal address), so a router that never had a portal is not written to for its other edits.
        if _PORTAL_FIELDS & set(after) and (locked.portal_address or "portal_address" in after):
            portal_redirect_sync(locked, requested_by="router changed")
    return locked


def router_set_active(*, router: Router, is_active: bool, actor: User | None = None) -> Router:
    """Deactivate a router (it is never deleted: its history stays) or bring it back. Deactivated, it
    is driven no more: its waiting subscriber commands go to whatever router now serves those
    subscribers. Reactivated, it gets its package profiles queued."""
    with transaction.atomic():
        locked = Router.objects.select_for_update().select_related("operator").get(pk=router.pk)
        if locked.is_active == is_active:
            return locked
        locked.is_active = is_active
        locked.save(update_fields=["is_active"])
        moved: list[int] = []
        if not is_active:
            waiting = OutboxCommand.objects.filter(router=locked, status=OutboxStatus.PENDING)
            moved = sorted(waiting.values_list("subscriber_id", flat=True))
            waiting.update(
                status=OutboxStatus.DONE, completed_at=timezone.now(), last_error="router deactivated before it ran"
            )
            outbox_enqueue_many(moved, "router deactivated")
            if moved:
                from sonjog.network.tasks import drain_outbox_soon

                drain_outbox_soon()
        else:
            router_profiles_push(router=locked, requested_by="router reactivated")
            if locked.portal_address:
                portal_redirect_sync(locked, requested_by="router reactivated")
        audit(
            operator=locked.operator,
            action="router.activate" if is_active else "router.deactivate",
            actor=actor,
            router=locked.pk,
            before={"is_active": not is_active},
            after={"is_active": is_active},
            commands_moved=len(moved),
        )
    return locked
