"""Billing settings take effect from the operator's next period (ADR 0011): held as a pending change,
applied when that day comes (before the hourly generation bills the new period), and refused with
the reason when they would alter bills already issued. The clock is pinned (18 November 2026 in
Dhaka) and moved with time_machine to the days that matter."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from sonjog.automation.operator_settings import (
    SettingsChangeRefused,
    billing_settings_effective_from,
    operator_settings_apply_due,
    operator_settings_change,
    planned_settings,
)
from sonjog.billing.models import Bill, BillingRun
from sonjog.conftest import DHAKA, make_operator, make_package, make_subscriber
from sonjog.core.models import AuditEvent
from sonjog.customers.models import Subscriber
from sonjog.flows.generation import bills_generate, scheduled_bills_generate
from sonjog.operators.billing_settings import next_period_start
from sonjog.operators.models import Operator, OperatorSettingsChange, SettingsChangeStatus
from sonjog.operators.services import operator_create

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 18)  # the suite's pinned day in Dhaka
DECEMBER = dt.date(2026, 12, 1)


def _billed_isp(**settings: object) -> tuple[Operator, Subscriber]:
    operator = make_operator(vat_rate=Decimal("5.00"), vat_inclusive=False, **settings)
    package = make_package(operator, "1000.00", vat=True)
    subscriber = make_subscriber(operator, package, dt.date(2026, 11, 1))
    assert Bill.objects.filter(subscriber=subscriber).count() == 1
    return operator, subscriber


@pytest.mark.parametrize(
    ("cycle", "day", "today", "expected"),
    [
        ("calendar", 1, dt.date(2026, 11, 18), dt.date(2026, 12, 1)),
        ("calendar", 1, dt.date(2026, 12, 31), dt.date(2027, 1, 1)),
        ("calendar", 1, dt.date(2026, 12, 1), dt.date(2027, 1, 1)),
        ("anniversary", 1, dt.date(2027, 2, 28), dt.date(2027, 3, 1)),
        ("fixed_day", 10, dt.date(2026, 11, 18), dt.date(2026, 12, 10)),
        ("fixed_day", 10, dt.date(2026, 11, 5), dt.date(2026, 11, 10)),
        ("fixed_day", 10, dt.date(2026, 11, 10), dt.date(2026, 12, 10)),
        ("fixed_day", 31, dt.date(2027, 1, 31), dt.date(2027, 2, 28)),
        ("fixed_day", 31, dt.date(2028, 1, 31), dt.date(2028, 2, 29)),
        ("fixed_day", 31, dt.date(2027, 2, 28), dt.date(2027, 3, 31)),
        ("fixed_day", 30, dt.date(2026, 12, 31), dt.date(2027, 1, 30)),
    ],
)
def test_the_next_period_starts_on_the_operators_next_period_day(cycle, day, today, expected):
    operator = Operator(billing_cycle=cycle, billing_day=day)
    assert next_period_start(operator, today) == expected


def test_before_any_bill_every_setting_applies_at_once():
    operator = make_operator(vat_rate=Decimal("5.00"))
    assert billing_settings_effective_from(operator, TODAY) is None
    outcome = operator_settings_change(
        operator=operator, values={"vat_rate": Decimal("7.50"), "billing_cycle": "fixed_day", "billing_day": 10}
    )
    operator.refresh_from_db()
    assert outcome.scheduled is None and set(outcome.applied) == {"vat_rate", "billing_cycle", "billing_day"}
    assert (operator.vat_rate, operator.billing_cycle, operator.billing_day) == (Decimal("7.50"), "fixed_day", 10)
    event = AuditEvent.objects.get(operator=operator, action="operator.update")
    assert event.detail["before"]["vat_rate"] == "5.00" and event.detail["after"]["vat_rate"] == "7.50"


def test_once_billed_a_vat_change_waits_for_the_next_period_and_the_new_period_is_billed_with_it():
    operator, subscriber = _billed_isp()
    assert billing_settings_effective_from(operator, TODAY) == DECEMBER

    outcome = operator_settings_change(operator=operator, values={"vat_rate": Decimal("7.50"), "due_days": 10})

    operator.refresh_from_db()
    assert outcome.scheduled is not None and outcome.scheduled.effective_from == DECEMBER
    assert operator.vat_rate == Decimal("5.00") and operator.due_days == 7  # nothing changes before then
    assert planned_settings(operator)["vat_rate"] == Decimal("7.50")
    scheduled = AuditEvent.objects.get(operator=operator, action="operator.settings_scheduled")
    assert scheduled.detail["before"] == {"vat_rate": "5.00", "due_days": 7}
    assert scheduled.detail["after"] == {"vat_rate": "7.50", "due_days": 10}
    assert scheduled.detail["effective_from"] == "2026-12-01"

    # The last evening of November: still the old settings, the job leaves the change alone.
    with time_machine.travel(dt.datetime(2026, 11, 30, 23, 50, tzinfo=DHAKA), tick=False):
        assert operator_settings_apply_due() == {"applied": 0, "refused": 0}
    # Five past midnight on 1 December in Dhaka (still 30 November in UTC): the hourly generation
    # applies the change before it bills the new period.
    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 5, tzinfo=DHAKA), tick=False):
        scheduled_bills_generate(BillingRun.Trigger.NIGHTLY)

    operator.refresh_from_db()
    assert operator.vat_rate == Decimal("7.50") and operator.due_days == 10
    november, december = Bill.objects.filter(subscriber=subscriber).order_by("period_month")
    assert november.vat == Decimal("50.00")  # issued before, unchanged
    assert december.period_start == DECEMBER
    assert december.vat == Decimal("75.00") and december.due_date == DECEMBER + dt.timedelta(days=10)
    change = OperatorSettingsChange.objects.get(operator=operator)
    assert change.status == SettingsChangeStatus.APPLIED and change.decided_at is not None
    assert AuditEvent.objects.filter(operator=operator, action="operator.settings_applied").exists()


def test_a_change_is_refused_when_bills_of_its_period_are_issued_already():
    operator, _subscriber = _billed_isp()
    bills_generate(operator=operator, period_month=DECEMBER, trigger=BillingRun.Trigger.STAFF)  # ahead of time
    with pytest.raises(SettingsChangeRefused) as refused:
        operator_settings_change(operator=operator, values={"vat_rate": Decimal("7.50")})
    assert "1 bill of the period from" in str(refused.value)
    operator.refresh_from_db()
    assert operator.vat_rate == Decimal("5.00")
    assert not OperatorSettingsChange.objects.exists()
    assert not AuditEvent.objects.filter(operator=operator, action__startswith="operator.settings").exists()


def test_moving_the_cycle_of_billed_subscribers_is_refused_but_not_of_those_with_their_own():
    operator, _subscriber = _billed_isp()
    with pytest.raises(SettingsChangeRefused) as refused:
        operator_settings_change(operator=operator, values={"billing_cycle": "fixed_day", "billing_day": 10})
    assert "1 subscriber who follows the operator's billing cycle" in str(refused.value)

    own_cycle = make_operator(vat_rate=Decimal("0"))
    package = make_package(own_cycle, "500.00", vat=False)
    make_subscriber(own_cycle, package, dt.date(2026, 11, 1), billing_cycle="calendar")
    outcome = operator_settings_change(operator=own_cycle, values={"billing_cycle": "fixed_day", "billing_day": 10})
    assert outcome.scheduled is not None and outcome.scheduled.effective_from == DECEMBER


def test_a_billing_day_change_that_moves_no_period_is_allowed():
    operator, _subscriber = _billed_isp()  # calendar cycle: the billing day plays no part
    outcome = operator_settings_change(operator=operator, values={"billing_day": 15})
    assert outcome.scheduled is not None


def test_switching_billed_subscribers_between_prepaid_and_postpaid_is_refused():
    operator, _subscriber = _billed_isp()
    with pytest.raises(SettingsChangeRefused) as refused:
        operator_settings_change(operator=operator, values={"billing_mode": "prepaid"})
    assert "prepaid and postpaid" in str(refused.value)
    outcome = operator_settings_change(operator=operator, values={"billing_mode": "cumulative"})
    assert outcome.scheduled is not None  # monthly and cumulative read the same ledger


def test_currency_and_time_zone_are_refused_once_money_exists_and_other_settings_apply_at_once():
    fresh = make_operator()
    operator_settings_change(operator=fresh, values={"currency": "USD", "time_zone": "Asia/Kolkata"})
    fresh.refresh_from_db()
    assert (fresh.currency, fresh.time_zone) == ("USD", "Asia/Kolkata")

    operator, _subscriber = _billed_isp()
    for values in ({"currency": "USD"}, {"time_zone": "Asia/Kolkata"}):
        with pytest.raises(SettingsChangeRefused):
            operator_settings_change(operator=operator, values=values)
    outcome = operator_settings_change(
        operator=operator, values={"name": "Renamed ISP", "document_phone": "+8809612999999"}
    )
    operator.refresh_from_db()
    assert outcome.scheduled is None and operator.name == "Renamed ISP"


def test_setting_the_values_back_withdraws_the_pending_change_and_a_new_one_replaces_it():
    operator, _subscriber = _billed_isp()
    first = operator_settings_change(operator=operator, values={"vat_rate": Decimal("7.50")}).scheduled
    second = operator_settings_change(operator=operator, values={"vat_rate": Decimal("10.00")}).scheduled
    assert first is not None and second is not None
    first.refresh_from_db()
    assert first.status == SettingsChangeStatus.CANCELLED and second.status == SettingsChangeStatus.PENDING

    outcome = operator_settings_change(operator=operator, values={"vat_rate": Decimal("5.00")})
    assert outcome.cancelled and outcome.scheduled is None
    second.refresh_from_db()
    assert second.status == SettingsChangeStatus.CANCELLED
    assert not OperatorSettingsChange.objects.filter(status=SettingsChangeStatus.PENDING).exists()


def test_a_pending_change_is_refused_on_its_day_if_subscribers_were_billed_on_the_cycle_it_moves():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "500.00", vat=False)
    make_subscriber(operator, package, dt.date(2026, 11, 1), billing_cycle="calendar")
    change = operator_settings_change(
        operator=operator, values={"billing_cycle": "fixed_day", "billing_day": 10}
    ).scheduled
    assert change is not None
    make_subscriber(operator, package, dt.date(2026, 11, 15))  # follows the operator, billed at once

    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 30, tzinfo=DHAKA), tick=False):
        assert operator_settings_apply_due() == {"applied": 0, "refused": 1}
    change.refresh_from_db()
    operator.refresh_from_db()
    assert change.status == SettingsChangeStatus.REFUSED and "billing cycle" in change.reason
    assert operator.billing_cycle == "calendar"


def test_bills_issued_ahead_keep_their_settings_and_the_audit_says_how_many():
    operator, subscriber = _billed_isp()
    operator_settings_change(operator=operator, values={"vat_rate": Decimal("7.50")})
    bills_generate(operator=operator, period_month=DECEMBER, trigger=BillingRun.Trigger.STAFF)

    with time_machine.travel(dt.datetime(2026, 12, 1, 0, 30, tzinfo=DHAKA), tick=False):
        assert operator_settings_apply_due() == {"applied": 1, "refused": 0}
    operator.refresh_from_db()
    assert operator.vat_rate == Decimal("7.50")
    event = AuditEvent.objects.get(operator=operator, action="operator.settings_issued_ahead")
    assert event.detail["bills_with_earlier_settings"] == 1
    assert Bill.objects.get(subscriber=subscriber, period_month=DECEMBER).vat == Decimal("50.00")


def test_a_reseller_inherits_its_parents_billing_settings():
    root = make_operator(vat_rate=Decimal("7.50"), vat_inclusive=False, due_days=4, grace_days=1)
    reseller = operator_create(code=f"{root.code}-r", name="Reseller", parent=root, customer_id_prefix="RR")
    assert (reseller.vat_rate, reseller.vat_inclusive, reseller.due_days, reseller.grace_days) == (
        Decimal("7.50"),
        False,
        4,
        1,
    )
    assert reseller.modules == root.modules
