"""The demo's reseller North Net runs on a float at the demo ISP: its packages are mapped to the root's
packages of the same name at a wholesale price, and the float holds about three months of charges, so
the Floats page, the reseller's dashboard and "act as reseller" have something to show; the bills of
the months the seed wrote before the float was opened carry no charges (as for an ISP that starts
using floats today), the next runs charge it."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from sonjog.billing.models import FloatAccount
from sonjog.billing.services.floats import float_account_open, float_topup
from sonjog.catalog.models import Package
from sonjog.catalog.services import package_wholesale_set
from sonjog.core.money import round_money
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.operators.models import Operator

WHOLESALE_SHARE = Decimal("0.60")
MONTHS_OF_FLOAT = 3


@transaction.atomic
def demo_floats_ensure(reseller: Operator) -> FloatAccount | None:
    """North Net's float, once; None when the reseller or the root's packages are not the demo's."""
    parent_id = reseller.parent_id
    if parent_id is None or FloatAccount.objects.filter(operator=reseller).exists():
        return None
    parents = {package.name: package for package in Package.objects.filter(operator_id=parent_id)}
    monthly = Decimal("0.00")
    for package in Package.objects.filter(operator=reseller):
        parent = parents.get(package.name)
        if parent is None:
            return None
        price = round_money(parent.price * WHOLESALE_SHARE)
        package_wholesale_set(package=package, parent_package=parent, wholesale_price=price)
        running = Subscriber.objects.filter(
            operator=reseller, package=package, service_intent__in=[ServiceIntent.ACTIVE, ServiceIntent.SUSPENDED]
        ).count()
        monthly += price * running
    account = float_account_open(operator=reseller, low_balance_alert=round_money(monthly / 2))
    float_topup(
        operator=reseller,
        amount=round_money(max(monthly, Decimal("1000.00")) * MONTHS_OF_FLOAT),
        method="bank",
        reference="DEMO-OPENING",
        memo="Opening float",
    )
    return account
