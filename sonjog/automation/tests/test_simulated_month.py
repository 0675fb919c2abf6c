"""A simulated month with a frozen clock: 500 subscribers across the three billing modes, the real
scheduler jobs run day by day (each twice), real messages through a local SMS gateway, and the
outcome checked subscriber by subscriber: every message, suspension and reactivation."""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db.models import Count

from sonjog.automation.models import ReminderEvent
from sonjog.automation.services import (
    due_reminders_send,
    prepaid_expiry_notices_send,
    reminder_rule_create,
    settle_credit,
)
from sonjog.billing.models import Bill, BillingRun, Payment
from sonjog.billing.selectors import subscriber_balance
from sonjog.conftest import make_operator, make_package
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.flows.enforcement import overdue_sweep
from sonjog.flows.generation import scheduled_bills_generate
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_create
from sonjog.network.models import OutboxCommand
from sonjog.notifications.models import Message
from sonjog.notifications.services import provider_account_create, sms_credit_add
from sonjog.notifications.tests.fakes import SslWirelessFake

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBERS = int(os.environ.get("SONJOG_SIMULATED_SUBSCRIBERS", "500"))
FIRST_DAY = dt.date(2027, 6, 1)
LAST_DAY = dt.date(2027, 7, 2)
D = dt.date


def behaviour(index: int) -> str:
    """Who pays when: most on the 3rd, some late on the 15th, some never."""
    return {0: "never", 1: "never", 2: "late"}.get(index % 10, "prompt")


def mode(index: int) -> str:
    return ("monthly", "cumulative", "prepaid")[index % 3]


def run_jobs() -> None:
    scheduled_bills_generate(BillingRun.Trigger.NIGHTLY)
    settle_credit()
    overdue_sweep()
    due_reminders_send()
    prepaid_expiry_notices_send()
    run_worker_cycle()


def snapshot() -> tuple[object, ...]:
    return (
        Bill.objects.count(),
        Payment.objects.count(),
        OutboxCommand.objects.count(),
        tuple(Message.objects.values_list("status").annotate(n=Count("pk")).order_by("status")),
        tuple(Subscriber.objects.values_list("service_intent").annotate(n=Count("pk")).order_by("service_intent")),
    )


@pytest.fixture
def gateway():
    fake = SslWirelessFake(credit=1_000_000).start()
    yield fake
    fake.stop()


def test_a_month_runs_itself(gateway, frozen_clock):
    frozen_clock.now = dt.datetime(2027, 6, 1, 6, 0, tzinfo=dt.UTC)  # noon in Dhaka, outside quiet hours
    operator = make_operator(vat_rate=Decimal("0"), due_days=7, grace_days=3)
    package = make_package(operator, "500.00", vat=False, name="Home 10")
    provider_account_create(
        operator=operator,
        name="SSL",
        kind="ssl_wireless",
        sender_id="MYISP",
        credentials={"api_token": "ssl-token"},
        base_url=gateway.url,
        cost_per_segment=Decimal("0.25"),
    )
    sms_credit_add(operator=operator, amount=Decimal("100000.00"))
    for offset in (-3, 0, 2):
        reminder_rule_create(operator=operator, event=ReminderEvent.BILL_DUE, offset_days=offset)
    reminder_rule_create(operator=operator, event=ReminderEvent.PREPAID_EXPIRY, offset_days=-3)
    subscribers = [
        subscriber_create(
            operator=operator,
            name=f"Subscriber {n}",
            phone=f"0171{n:07d}",
            package=package,
            activation_date=FIRST_DAY,
            billing_mode=mode(n),
        )
        for n in range(SUBSCRIBERS)
    ]
    by_id = {s.pk: n for n, s in enumerate(subscribers)}

    suspended_on: dict[int, dt.date] = {}
    reactivated_on: dict[int, dt.date] = {}
    day = FIRST_DAY
    while day <= LAST_DAY:
        frozen_clock.now = dt.datetime.combine(day, dt.time(6, 0), tzinfo=dt.UTC)
        before_intents = dict(Subscriber.objects.values_list("pk", "service_intent"))
        for n, subscriber in enumerate(subscribers):
            pays_today = (behaviour(n) == "prompt" and day == D(2027, 6, 3)) or (
                behaviour(n) == "late" and day == D(2027, 6, 15)
            )
            if pays_today:
                payment_receive(subscriber=subscriber, amount=subscriber_balance(subscriber.pk), method="bkash")
        run_jobs()
        after_first = snapshot()
        run_jobs()  # every job twice a day: the second run must change nothing
        assert snapshot() == after_first, day
        for pk, intent in Subscriber.objects.values_list("pk", "service_intent"):
            if intent != before_intents[pk]:
                (suspended_on if intent == "suspended" else reactivated_on)[pk] = day
        day += dt.timedelta(days=1)

    # Enforcement: who was cut off, and when; who came back after paying.
    expected_suspended = {}
    for n, subscriber in enumerate(subscribers):
        if mode(n) == "prepaid":
            if behaviour(n) != "prompt":
                expected_suspended[subscriber.pk] = D(2027, 6, 5)  # never paid: activation + 3 days' grace
            else:
                expected_suspended[subscriber.pk] = D(2027, 7, 1)  # validity ran out, July not prepaid
        elif behaviour(n) != "prompt":
            expected_suspended[subscriber.pk] = D(2027, 6, 12)  # due 8 June + 3 days' grace
    late_prepaid = {s.pk for n, s in enumerate(subscribers) if behaviour(n) == "late" and mode(n) == "prepaid"}
    late_postpaid = {s.pk for n, s in enumerate(subscribers) if behaviour(n) == "late" and mode(n) != "prepaid"}
    # Late postpaid payers paid on the 15th, after their suspension on the 12th; the last suspension
    # recorded for late prepaid payers is 1 July (reactivated on the 15th, expired again).
    for pk in late_prepaid:
        expected_suspended[pk] = D(2027, 7, 1)
    assert suspended_on == expected_suspended
    assert reactivated_on == {pk: D(2027, 6, 15) for pk in late_prepaid | late_postpaid}

    # Messages: exactly who got what, all actually sent through the gateway.
    received: dict[str, set[int]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for event, subscriber_id in Message.objects.values_list("event", "subscriber_id"):
        received[event].add(by_id[subscriber_id])
        counts[event] += 1
    everyone = set(range(SUBSCRIBERS))
    unpaid_postpaid = {n for n in everyone if mode(n) != "prepaid" and behaviour(n) != "prompt"}
    prepaid_payers = {n for n in everyone if mode(n) == "prepaid" and behaviour(n) != "never"}
    payers = {n for n in everyone if behaviour(n) != "never"}
    suspended_ever = {by_id[pk] for pk in expected_suspended}
    assert received["welcome"] == everyone and counts["welcome"] == SUBSCRIBERS
    assert received["activation"] == everyone and counts["activation"] == SUBSCRIBERS
    assert received["payment_received"] == payers and counts["payment_received"] == len(payers)
    # Reminders 3 days before, on, and 2 days after the 8 June due date, to whoever had not paid.
    assert received["due_reminder"] == unpaid_postpaid and counts["due_reminder"] == 3 * len(unpaid_postpaid)
    # Prepaid validity ending 1 July: one notice three days before, to the prepaid subscribers who paid.
    assert received["prepaid_expiry"] == prepaid_payers and counts["prepaid_expiry"] == len(prepaid_payers)
    assert received["suspension"] == suspended_ever
    assert counts["suspension"] == len(suspended_on) + len(late_prepaid)  # late prepaid: suspended twice
    assert received["reactivation"] == {by_id[pk] for pk in reactivated_on}
    # A bill notice for June (at activation) and for July (generated on 1 July), for everyone.
    assert received["bill_generated"] == everyone and counts["bill_generated"] == 2 * SUBSCRIBERS
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert len(gateway.requests) == Message.objects.count()
    assert Bill.objects.filter(period_month=D(2027, 7, 1)).count() == SUBSCRIBERS
