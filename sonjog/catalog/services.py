"""Writes for the catalogue (packages and add-ons): each one transaction, audited with what changed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from sonjog.catalog.exceptions import CatalogError
from sonjog.catalog.models import AddOn, AddOnEffect, BillingUnit, Package
from sonjog.core.audit import audit
from sonjog.core.money import round_money
from sonjog.operators.models import Operator

ADDON_FIELDS = ("name", "price", "vat_applicable", "effect", "effect_value", "is_active")


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise CatalogError("an add-on needs a name")
    return name


def _checked_price(price: Decimal) -> Decimal:
    if price is None or price <= 0:
        raise CatalogError(f"an add-on's monthly price must be more than zero (got {price})")
    if round_money(price) != price:
        raise CatalogError(f"the price {price} has more than two decimal places")
    return price


def _checked_effect(effect: str, effect_value: str) -> tuple[str, str]:
    if effect not in AddOnEffect.values:
        raise CatalogError(f"unknown router effect '{effect}'; use one of {', '.join(AddOnEffect.values)}")
    effect_value = effect_value.strip()
    if effect == AddOnEffect.ADDRESS_LIST and not effect_value:
        raise CatalogError("an address-list add-on needs the name of the address list")
    # A billing-only add-on carries no router value that could be mistaken for one.
    return effect, "" if effect == AddOnEffect.NONE else effect_value


def addon_create(
    *,
    operator: Operator,
    name: str,
    price: Decimal,
    vat_applicable: bool = True,
    effect: str = AddOnEffect.NONE,
    effect_value: str = "",
    is_active: bool = True,
    actor: User | None = None,
) -> AddOn:
    name = _checked_name(name)
    price = _checked_price(price)
    effect, effect_value = _checked_effect(effect, effect_value)
    if AddOn.objects.filter(operator=operator, name=name).exists():
        raise CatalogError(f"an add-on named '{name}' already exists")
    try:
        with transaction.atomic():
            addon = AddOn.objects.create(
                operator=operator,
                name=name,
                price=price,
                vat_applicable=vat_applicable,
                effect=effect,
                effect_value=effect_value,
                is_active=is_active,
            )
            audit(
                operator=operator,
                action="addon.create",
                actor=actor,
                addon=addon.pk,
                name=name,
                price=price,
                vat_applicable=vat_applicable,
                effect=effect,
                effect_value=effect_value,
            )
    except IntegrityError:
        # The unique name per operator, taken by a concurrent request.
        raise CatalogError(f"an add-on named '{name}' already exists") from None
    return addon


def addon_update(
    *,
    addon: AddOn,
    name: str | None = None,
    price: Decimal | None = None,
    vat_applicable: bool | None = None,
    effect: str | None = None,
    effect_value: str | None = None,
    is_active: bool | None = None,
    actor: User | None = None,
) -> AddOn:
    """Change an add-on's terms; arguments left None stay as they are. Bills already issued keep their
    amounts, the next bills use the new price."""
    with transaction.atomic():
        locked = AddOn.objects.select_for_update().get(pk=addon.pk)
        wanted: dict[str, Any] = {}
        if name is not None:
            wanted["name"] = _checked_name(name)
        if price is not None:
            wanted["price"] = _checked_price(price)
        if vat_applicable is not None:
            wanted["vat_applicable"] = vat_applicable
        if is_active is not None:
            wanted["is_active"] = is_active
        if effect is not None or effect_value is not None:
            wanted["effect"], wanted["effect_value"] = _checked_effect(
                effect if effect is not None else locked.effect,
                effect_value if effect_value is not None else locked.effect_value,
            )
        changed = {key: value for key, value in wanted.items() if getattr(locked, key) != value}
        if not changed:
            return locked
        others = AddOn.objects.filter(operator_id=locked.operator_id).exclude(pk=locked.pk)
        if "name" in changed and others.filter(name=changed["name"]).exists():
            raise CatalogError(f"an add-on named '{changed['name']}' already exists")
        before = {key: getattr(locked, key) for key in changed}
        for key, value in changed.items():
            setattr(locked, key, value)
        try:
            with transaction.atomic():
                locked.save(update_fields=list(changed))
        except IntegrityError:
            raise CatalogError(f"an add-on named '{locked.name}' already exists") from None
        audit(
            operator=locked.operator,
            action="addon.update",
            actor=actor,
            addon=locked.pk,
            fields=", ".join(sorted(changed)),
            before=before,
            after=changed,
        )
    return locked


def addon_set_active(*, addon: AddOn, is_active: bool, actor: User | None = None) -> AddOn:
    """Put an add-on on sale or take it off sale. Off sale, it cannot be activated for anyone new;
    subscribers who have it keep it (and are billed for it) until it is deactivated for them."""
    return addon_update(addon=addon, is_active=is_active, actor=actor)


# -- packages -------------------------------------------------------------------------------------

PACKAGE_FIELDS = (
    "name",
    "price",
    "download_kbps",
    "upload_kbps",
    "router_profile",
    "vat_applicable",
    "is_active",
    "billing_unit",
    "data_allowance_gb",
    "fup_download_kbps",
    "fup_upload_kbps",
    "fup_router_profile",
)


def _check_package_terms(package: Package) -> None:
    """The rules a package's terms keep together (the forms say the same per field, earlier): a billing
    unit that bill generation handles, and a fair-usage rate no faster than the package's own, on a
    profile of its own, once there is an allowance to run out of."""
    if package.billing_unit not in BillingUnit.values:
        raise CatalogError(f"unknown billing unit '{package.billing_unit}'; use one of {', '.join(BillingUnit.values)}")
    if package.download_kbps <= 0 or package.upload_kbps <= 0:
        raise CatalogError("a package's download and upload rates must be more than zero")
    if package.data_allowance_gb is None:
        return
    if package.data_allowance_gb <= 0:
        raise CatalogError("a data allowance must be at least 1 GB; leave it empty for unlimited")
    if package.fup_download_kbps <= 0 or package.fup_upload_kbps <= 0:
        raise CatalogError("the fair-usage download and upload rates must be more than zero")
    if package.fup_download_kbps > package.download_kbps:
        raise CatalogError(
            f"the fair-usage download ({package.fup_download_kbps} kbps) is above the package's "
            f"download ({package.download_kbps} kbps)"
        )
    if package.fup_upload_kbps > package.upload_kbps:
        raise CatalogError(
            f"the fair-usage upload ({package.fup_upload_kbps} kbps) is above the package's "
            f"upload ({package.upload_kbps} kbps)"
        )
    if not package.fup_router_profile:
        raise CatalogError("a package with a data allowance needs a fair-usage router profile")
    if package.fup_router_profile == package.router_profile:
        raise CatalogError(
            f"the fair-usage router profile cannot be the package's own profile '{package.router_profile}'"
        )


def package_create(
    *,
    operator: Operator,
    name: str,
    price: Decimal,
    download_kbps: int,
    upload_kbps: int,
    router_profile: str,
    vat_applicable: bool = True,
    is_active: bool = True,
    billing_unit: str = BillingUnit.MONTH,
    data_allowance_gb: int | None = None,
    fup_download_kbps: int | None = None,
    fup_upload_kbps: int | None = None,
    fup_router_profile: str | None = None,
    actor: User | None = None,
) -> Package:
    """A package (tariff) of the operator; names are unique per operator. The fair-usage terms left
    None take the model's defaults (they only matter once there is a data allowance)."""
    if price < 0:
        raise CatalogError("a price cannot be negative")
    if Package.objects.filter(operator=operator, name=name.strip()).exists():
        raise CatalogError(f"a package named '{name.strip()}' already exists")
    fair_usage: dict[str, Any] = {
        key: value
        for key, value in (
            ("fup_download_kbps", fup_download_kbps),
            ("fup_upload_kbps", fup_upload_kbps),
            ("fup_router_profile", fup_router_profile.strip() if fup_router_profile is not None else None),
        )
        if value is not None
    }
    package = Package(
        operator=operator,
        name=name.strip(),
        price=price,
        download_kbps=download_kbps,
        upload_kbps=upload_kbps,
        router_profile=router_profile.strip(),
        vat_applicable=vat_applicable,
        is_active=is_active,
        billing_unit=billing_unit,
        data_allowance_gb=data_allowance_gb,
        **fair_usage,
    )
    _check_package_terms(package)
    try:
        with transaction.atomic():
            package.save(force_insert=True)
            audit(operator=operator, action="package.create", actor=actor, package=package.pk, name=package.name)
    except IntegrityError:
        raise CatalogError(f"a package named '{name.strip()}' already exists") from None
    return package


def package_update(*, package: Package, actor: User | None = None, **fields: Any) -> Package:
    """Change a package's terms. Bills already issued keep their amounts; the next bill uses the new
    price. Router profiles of subscribers on it are reconciled by the network side."""
    unknown = set(fields) - set(PACKAGE_FIELDS)
    if unknown:
        raise CatalogError(f"cannot change {', '.join(sorted(unknown))} of a package")
    if fields.get("price") is not None and fields["price"] < 0:
        raise CatalogError("a price cannot be negative")
    if "name" in fields:
        fields["name"] = fields["name"].strip()
        if Package.objects.filter(operator_id=package.operator_id, name=fields["name"]).exclude(pk=package.pk).exists():
            raise CatalogError(f"a package named '{fields['name']}' already exists")
    if isinstance(fields.get("fup_router_profile"), str):
        fields["fup_router_profile"] = fields["fup_router_profile"].strip()
    with transaction.atomic():
        locked = Package.objects.select_for_update().get(pk=package.pk)
        changed = {key: value for key, value in fields.items() if getattr(locked, key) != value}
        if not changed:
            return locked
        before = {key: getattr(locked, key) for key in changed}
        for key, value in changed.items():
            setattr(locked, key, value)
        _check_package_terms(locked)
        locked.save(update_fields=list(changed))
        audit(
            operator=locked.operator,
            action="package.update",
            actor=actor,
            package=locked.pk,
            fields=", ".join(sorted(changed)),
            before=before,
            after=changed,
        )
    return locked


def package_wholesale_set(
    *,
    package: Package,
    parent_package: Package | None,
    wholesale_price: Decimal | None,
    actor: User | None = None,
) -> Package:
    """Map a reseller's package to one of its parent's packages at the wholesale price per billing
    unit that the parent charges the reseller's float (the tariff mapper); None and None unmaps it.
    Bills already charged keep the price snapshotted on their float entries."""
    if (parent_package is None) != (wholesale_price is None):
        raise CatalogError("a mapped package needs both the parent's package and the wholesale price")
    if parent_package is not None and wholesale_price is not None:
        operator = package.operator
        if operator.parent_id is None:
            raise CatalogError("the root ISP's packages are not bought from anyone")
        if parent_package.operator_id != operator.parent_id:
            raise CatalogError(f"'{parent_package.name}' is not a package of {operator.name}'s parent")
        if parent_package.billing_unit != package.billing_unit:
            raise CatalogError("the parent's package must bill by the same unit as this package")
        if not wholesale_price.is_finite() or wholesale_price < 0 or wholesale_price > Decimal("99999999.99"):
            raise CatalogError(f"a wholesale price must be between 0 and 99,999,999.99 (got {wholesale_price})")
        if round_money(wholesale_price) != wholesale_price:
            raise CatalogError(f"the wholesale price {wholesale_price} has more than two decimal places")
    with transaction.atomic():
        locked = Package.objects.select_for_update().get(pk=package.pk)
        before = {"parent_package": locked.wholesale_package_id, "wholesale_price": str(locked.wholesale_price)}
        locked.wholesale_package = parent_package
        locked.wholesale_price = wholesale_price
        locked.save(update_fields=["wholesale_package", "wholesale_price"])
        audit(
            operator=locked.operator,
            action="package.wholesale",
            actor=actor,
            package=locked.pk,
            before=before,
            after={
                "parent_package": parent_package.pk if parent_package else None,
                "wholesale_price": str(wholesale_price),
            },
        )
    return locked
