"""The demo's gateways: the three emulators start on their ports, the demo ISP has an account at each,
and a checkout through each one opens (the next start renews Nagad's keys and keeps the accounts)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.demo.gateways import demo_gateways_start
from sonjog.flows.gateways import checkout_start
from sonjog.gateways.models import AttemptState, GatewayAccount

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_gateways_take_a_checkout_each_and_a_restart_keeps_three_accounts():
    root = make_operator(vat_rate=Decimal("0"))
    subscriber = make_subscriber(root, make_package(root, "500.00", vat=False), None)
    for _start in range(2):
        gateways = demo_gateways_start(root, "http://127.0.0.1:8000/")
        try:
            assert GatewayAccount.objects.filter(operator=root).count() == 3
            for account in gateways.accounts:
                attempt = checkout_start(
                    subscriber=subscriber,
                    account=account,
                    amount=Decimal("500.00"),
                    source="portal",
                    return_url="http://127.0.0.1:8000/pay/{reference}/return/",
                    notify_url="http://127.0.0.1:8000/hooks/gateways/x/",
                )
                assert attempt.state == AttemptState.PENDING, (account.gateway, attempt.last_error)
        finally:
            gateways.stop()
