"""The demo's reseller runs on a float: its packages mapped, the float topped up, the next run charges it."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from sonjog.billing.models import BillingRun, FloatAccount, FloatEntry
from sonjog.billing.services import bill_generate_period
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.models import Package
from sonjog.demo.floats import demo_floats_ensure
from sonjog.demo.seed import seed_isp
from sonjog.operators.models import Operator

pytestmark = pytest.mark.django_db


@time_machine.travel(dt.datetime(2027, 3, 5, 6, 0, tzinfo=dt.UTC), tick=False)
def test_the_demo_reseller_gets_a_float_that_the_next_run_charges():
    seed_isp(subscribers=60, months=3)
    north = Operator.objects.get(code="demo-north")
    account = demo_floats_ensure(north)
    assert account is not None and demo_floats_ensure(north) is None  # once
    assert not Package.objects.filter(operator=north, wholesale_package__isnull=True).exists()
    account.refresh_from_db()
    opening = account.balance
    assert opening > 0 and FloatEntry.objects.filter(kind="topup").count() == 1
    with time_machine.travel(dt.datetime(2027, 4, 2, 6, 0, tzinfo=dt.UTC), tick=False):
        result = bill_generate_period(operator=north, period_month=dt.date(2027, 4, 1), trigger=BillingRun.Trigger.CLI)
    assert result.float_charges == result.created + result.backfilled > 0 and result.float_refused == 0
    assert FloatAccount.objects.get(pk=account.pk).balance < opening
    report = ledger_verify()
    assert report.ok, report.violations
