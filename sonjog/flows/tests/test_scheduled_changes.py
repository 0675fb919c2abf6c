"""Changes booked for a later day: applied by the hourly job on their day in the operator's calendar
(with the Dhaka/UTC boundary: 23:30 and 00:30 in Dhaka), through the same flows as the buttons."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import DHAKA, make_operator, make_package, make_subscriber
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import ScheduledChange, ServiceIntent
from sonjog.customers.scheduling import scheduled_change_add, scheduled_change_cancel
from sonjog.flows.scheduled import scheduled_changes_apply

pytestmark = pytest.mark.django_db

BOOKED_AT = dt.datetime(2027, 1, 14, 10, 0, tzinfo=DHAKA)


def test_booked_changes_apply_on_their_day_and_not_before():
    with time_machine.travel(BOOKED_AT, tick=False):
        operator = make_operator(vat_rate=Decimal("0"))
        home, fiber = make_package(operator, "600.00", vat=False), make_package(operator, "1200.00", vat=False)
        today = operator_today(operator)
        moving, leaving, late = (make_subscriber(operator, home, today.replace(day=1)) for _ in range(3))
        tomorrow = today + dt.timedelta(days=1)
        package_change = scheduled_change_add(subscriber=moving, kind="package", effective_date=tomorrow, package=fiber)
        scheduled_change_add(subscriber=leaving, kind="terminate", effective_date=tomorrow, reason="moving away")
        scheduled_change_add(subscriber=late, kind="suspend", effective_date=tomorrow, reason="asked to pause")
        assert scheduled_changes_apply() == {"applied": 0, "failed": 0}
    # 23:30 in Dhaka: still the booking day there, though the server's UTC day has long turned.
    with time_machine.travel(dt.datetime(2027, 1, 14, 23, 30, tzinfo=DHAKA), tick=False):
        assert scheduled_changes_apply() == {"applied": 0, "failed": 0}
    with time_machine.travel(dt.datetime(2027, 1, 15, 0, 30, tzinfo=DHAKA), tick=False):
        assert scheduled_changes_apply() == {"applied": 3, "failed": 0}
        assert scheduled_changes_apply() == {"applied": 0, "failed": 0}
    moving.refresh_from_db()
    leaving.refresh_from_db()
    late.refresh_from_db()
    assert moving.package == fiber
    assert leaving.service_intent == ServiceIntent.TERMINATED and leaving.terminated_on == tomorrow
    assert late.service_intent == ServiceIntent.SUSPENDED
    package_change.refresh_from_db()
    assert package_change.status == ScheduledChange.Status.APPLIED
    assert ledger_verify().ok


def test_what_a_booking_refuses_and_a_change_that_fails_on_its_day():
    with time_machine.travel(BOOKED_AT, tick=False):
        operator = make_operator(vat_rate=Decimal("0"))
        other = make_operator()
        home = make_package(operator, "600.00", vat=False)
        foreign = make_package(other, "600.00", vat=False)
        today = operator_today(operator)
        subscriber = make_subscriber(operator, home, today.replace(day=1))
        tomorrow = today + dt.timedelta(days=1)
        for kwargs, message in [
            ({"kind": "suspend", "effective_date": today, "reason": "x"}, "tomorrow or later"),
            ({"kind": "package", "effective_date": tomorrow, "package": foreign}, "another operator"),
            ({"kind": "package", "effective_date": tomorrow, "package": home}, "already"),
            ({"kind": "suspend", "effective_date": tomorrow, "reason": " "}, "say why"),
            ({"kind": "suspend", "effective_date": today + dt.timedelta(days=400), "reason": "x"}, "ahead"),
        ]:
            with pytest.raises(SubscriberError, match=message):
                scheduled_change_add(subscriber=subscriber, **kwargs)  # type: ignore[arg-type]
        booked = scheduled_change_add(subscriber=subscriber, kind="suspend", effective_date=tomorrow, reason="x")
        with pytest.raises(SubscriberError, match="booked already"):
            scheduled_change_add(subscriber=subscriber, kind="suspend", effective_date=tomorrow, reason="y")
        scheduled_change_cancel(change=booked)
        with pytest.raises(SubscriberError, match="not waiting"):
            scheduled_change_cancel(change=booked)
        rebooked = scheduled_change_add(subscriber=subscriber, kind="suspend", effective_date=tomorrow, reason="y")
        # Made a VIP in the meantime: the suspension cannot happen, and says why.
        type(subscriber).objects.filter(pk=subscriber.pk).update(is_vip=True)
    with time_machine.travel(BOOKED_AT + dt.timedelta(days=1), tick=False):
        assert scheduled_changes_apply() == {"applied": 0, "failed": 1}
    rebooked.refresh_from_db()
    assert rebooked.status == ScheduledChange.Status.FAILED and "VIP" in rebooked.error
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE
