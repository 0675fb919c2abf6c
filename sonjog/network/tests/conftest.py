from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_operator
from sonjog.customers.models import Zone
from sonjog.network.models import ProfileCommand
from sonjog.network.profiles import profile_execute
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create

ROUTER_PASSWORD = "r0uter-secret"


@pytest.fixture
def emulator() -> Iterator[RouterOSEmulator]:
    emu = RouterOSEmulator(username="sonjog", password=ROUTER_PASSWORD).start()
    emu.add_profile("10m", rate_limit="10240k/10240k")
    emu.add_profile("suspended", rate_limit="256k/256k")
    try:
        yield emu
    finally:
        emu.stop()


class Isp:
    def __init__(self, emulator: RouterOSEmulator, **router_options: object) -> None:
        self.operator = make_operator(vat_rate=Decimal("0"), grace_days=3, due_days=7)
        self.package = Package.objects.create(
            operator=self.operator,
            name="Home 10",
            price=Decimal("1000.00"),
            download_kbps=10240,
            upload_kbps=10240,
            router_profile="10m",
            vat_applicable=False,
        )
        self.zone = Zone.objects.create(operator=self.operator, name="Mirpur")
        self.router = router_create(
            operator=self.operator,
            name=f"core-{self.operator.pk}",
            address="127.0.0.1",
            api_port=emulator.port,
            username="sonjog",
            password=ROUTER_PASSWORD,
            **router_options,  # type: ignore[arg-type]
        )
        self.router.zones.add(self.zone)
        # A new router gets its package profiles queued; the emulator holds them already, so settle
        # those commands now and start every test from a router in step (and its fault switches
        # untouched by them).
        for command_id in ProfileCommand.objects.filter(router=self.router).values_list("pk", flat=True):
            profile_execute(command_id)
        emulator.clear_command_log()
        self.today = operator_today(self.operator)

    def days_ago(self, days: int) -> dt.date:
        return self.today - dt.timedelta(days=days)
