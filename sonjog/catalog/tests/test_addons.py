"""The add-on catalogue: create, edit and take off sale through the services, audited; the database
refuses what the services would."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from sonjog.catalog.exceptions import CatalogError
from sonjog.catalog.models import AddOn, AddOnEffect
from sonjog.catalog.services import addon_create, addon_set_active, addon_update
from sonjog.conftest import make_operator
from sonjog.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_create_edit_and_take_off_sale_are_audited_with_before_and_after(operator, owner):
    addon = addon_create(
        operator=operator,
        name="  Static IP ",
        price=Decimal("300.00"),
        effect=AddOnEffect.STATIC_IP,
        effect_value="public-pool",
        actor=owner,
    )
    assert (addon.name, addon.price, addon.vat_applicable, addon.is_active) == (
        "Static IP",
        Decimal("300.00"),
        True,
        True,
    )
    created = AuditEvent.objects.get(action="addon.create")
    assert created.actor == owner and created.detail["price"] == "300.00"

    addon_update(addon=addon, price=Decimal("350.00"), vat_applicable=False, actor=owner)
    update = AuditEvent.objects.get(action="addon.update")
    assert update.detail["before"] == {"price": "300.00", "vat_applicable": True}
    assert update.detail["after"] == {"price": "350.00", "vat_applicable": False}
    # Nothing changed, nothing recorded.
    addon_update(addon=addon, price=Decimal("350.00"), actor=owner)
    assert AuditEvent.objects.filter(action="addon.update").count() == 1

    addon_set_active(addon=addon, is_active=False, actor=owner)
    addon.refresh_from_db()
    assert not addon.is_active
    off = AuditEvent.objects.filter(action="addon.update").latest("pk")
    assert (off.detail["before"], off.detail["after"]) == ({"is_active": True}, {"is_active": False})


def test_service_rules(operator):
    addon_create(operator=operator, name="IPTV", price=Decimal("199.00"))
    with pytest.raises(CatalogError, match="already exists"):
        addon_create(operator=operator, name="IPTV", price=Decimal("1.00"))
    for price in ("0", "-5", "1.005"):
        with pytest.raises(CatalogError):
            addon_create(operator=operator, name=f"Bad {price}", price=Decimal(price))
    with pytest.raises(CatalogError, match="address list"):
        addon_create(operator=operator, name="Boost", price=Decimal("50"), effect=AddOnEffect.ADDRESS_LIST)
    with pytest.raises(CatalogError, match="unknown router effect"):
        addon_create(operator=operator, name="Boost", price=Decimal("50"), effect="vlan")
    boost = addon_create(
        operator=operator, name="Boost", price=Decimal("50"), effect=AddOnEffect.ADDRESS_LIST, effect_value=" gaming "
    )
    assert boost.effect_value == "gaming"
    with pytest.raises(CatalogError, match="already exists"):
        addon_update(addon=boost, name="IPTV")
    # A billing-only add-on keeps no router value.
    assert addon_update(addon=boost, effect=AddOnEffect.NONE).effect_value == ""
    # The same name is fine for another operator.
    assert addon_create(operator=make_operator(), name="IPTV", price=Decimal("199.00")).pk


def test_the_database_refuses_a_free_addon_and_an_unnamed_address_list(operator):
    for fields in ({"price": Decimal("0")}, {"effect": AddOnEffect.ADDRESS_LIST, "effect_value": ""}):
        values = {"operator": operator, "name": "Raw", "price": Decimal("10"), **fields}
        with pytest.raises(IntegrityError), transaction.atomic():
            AddOn.objects.create(**values)
