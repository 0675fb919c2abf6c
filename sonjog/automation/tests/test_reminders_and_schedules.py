"""Who gets a reminder or an expiry notice today, and when the per-operator jobs act for an operator."""

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sonjog.automation.exceptions import InvalidSchedule
from sonjog.automation.models import JobRun, ReminderEvent
from sonjog.automation.selectors import expiry_candidates, generation_open, reminder_candidates
from sonjog.automation.services import (
    due_reminders_send,
    job_run_now,
    operator_schedule_set,
    prepaid_expiry_notices_send,
    reminder_rule_create,
    reminder_rule_remove,
)
from sonjog.billing.models import Bill
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.customers.models import Zone
from sonjog.flows.generation import scheduled_bills_generate
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_set_intent

pytestmark = pytest.mark.django_db
D = dt.date
DHAKA = ZoneInfo("Asia/Dhaka")
TODAY = D(2027, 6, 15)  # the frozen clock's date in Dhaka


@pytest.fixture
def isp(frozen_clock):
    """An anniversary-cycle ISP with 7 days to pay: a subscriber activated on day N owes a bill due
    on day N + 7, so the activation date places each bill's due date around today."""
    operator = make_operator(vat_rate=Decimal("0"), due_days=7, billing_cycle="anniversary")
    home = make_package(operator, "1000.00", vat=False, name="Home")
    office = make_package(operator, "1000.00", vat=False, name="Office")
    return operator, home, office


def people(operator, home, office):
    def sub(activation, package=home, **fields):
        return make_subscriber(operator, package, activation_date=activation, **fields)

    made = {
        "due_in_3_days": sub(D(2027, 6, 11)),  # due 18 June
        "due_today": sub(D(2027, 6, 8)),  # due 15 June
        "due_2_days_ago": sub(D(2027, 6, 6)),  # due 13 June, on Home
        "due_2_days_ago_office": sub(D(2027, 6, 6), office),  # due 13 June, on Office
        "paid": sub(D(2027, 6, 8)),
        "part_paid": sub(D(2027, 6, 8)),
        "cumulative": sub(D(2027, 6, 8), billing_mode="cumulative"),
        "prepaid": sub(D(2027, 6, 8), billing_mode="prepaid"),
        "older_bill_open": sub(D(2027, 5, 8)),  # May's bill (due 15 May) is older and still open
        "suspended": sub(D(2027, 6, 8)),
        "disabled": sub(D(2027, 6, 8)),
    }
    payment_receive(subscriber=made["paid"], amount=Decimal("1000.00"), method="cash")
    payment_receive(subscriber=made["part_paid"], amount=Decimal("400.00"), method="cash")
    subscriber_set_intent(subscriber=made["suspended"], intent="suspended", reason="test")
    subscriber_set_intent(subscriber=made["disabled"], intent="disabled", reason="test")
    return made


def rules(operator, home):
    reminder_rule_create(operator=operator, event=ReminderEvent.BILL_DUE, offset_days=-3)
    reminder_rule_create(operator=operator, event=ReminderEvent.BILL_DUE, offset_days=0)
    reminder_rule_create(operator=operator, event=ReminderEvent.BILL_DUE, offset_days=2, package=home, channel="sms")


def test_reminder_candidates_across_offsets_and_modes(isp):
    operator, home, office = isp
    made = people(operator, home, office)
    names = {subscriber.pk: name for name, subscriber in made.items()}
    assert reminder_candidates(operator, TODAY) == []  # no rules, nobody

    rules(operator, home)
    found = reminder_candidates(operator, TODAY)
    assert sorted((names[c.subscriber_id], c.offset_days) for c in found) == [
        ("cumulative", 0),
        ("due_2_days_ago", 2),
        ("due_in_3_days", -3),
        ("due_today", 0),
        ("part_paid", 0),
        ("suspended", 0),
    ]
    by_name = {names[c.subscriber_id]: c for c in found}
    due_today = by_name["due_today"]
    bill = Bill.objects.get(subscriber=made["due_today"])
    assert (due_today.bill_id, due_today.reference_date, due_today.mode) == (bill.pk, D(2027, 6, 15), "monthly")
    assert due_today.amount_due == Decimal("1000.00") and due_today.channel == ""
    assert due_today.dedup_key == f"due-reminder:{bill.pk}:+0"
    assert due_today.context() == {"amount_due": Decimal("1000.00"), "due_date": D(2027, 6, 15)}
    assert by_name["part_paid"].amount_due == Decimal("600.00")
    assert by_name["cumulative"].mode == "cumulative" and by_name["cumulative"].amount_due == Decimal("1000.00")
    assert by_name["due_2_days_ago"].channel == "sms"
    assert by_name["due_2_days_ago"].dedup_key.endswith(":+2:sms")
    assert by_name["due_in_3_days"].dedup_key.endswith(":-3")

    # The same day asked twice gives the same keys: the notifications side sends each once.
    assert [c.dedup_key for c in reminder_candidates(operator, TODAY)] == [c.dedup_key for c in found]
    # The next day the offsets point at other due dates: due_today is now one day late, not a rule.
    assert "due_today" not in {names[c.subscriber_id] for c in reminder_candidates(operator, TODAY + dt.timedelta(1))}
    # Three days on, today's "due in 3 days" is due today.
    later = reminder_candidates(operator, D(2027, 6, 18))
    assert [(names[c.subscriber_id], c.offset_days) for c in later] == [("due_in_3_days", 0)]

    # Paying May's bill makes June's (due today) the oldest open one.
    payment_receive(subscriber=made["older_bill_open"], amount=Decimal("1000.00"), method="cash")
    assert "older_bill_open" in {names[c.subscriber_id] for c in reminder_candidates(operator, TODAY)}
    # Another operator's rules and bills never mix in.
    assert reminder_candidates(make_operator(), TODAY) == []


def test_expiry_candidates_for_prepaid_subscribers(isp):
    operator, home, _office = isp
    made = {
        # Activated on the 18th/15th/13th of May, May's period paid: valid until that day in June.
        "expires_in_3_days": make_subscriber(operator, home, activation_date=D(2027, 5, 18), billing_mode="prepaid"),
        "expires_today": make_subscriber(operator, home, activation_date=D(2027, 5, 15), billing_mode="prepaid"),
        "expired_2_days_ago": make_subscriber(operator, home, activation_date=D(2027, 5, 13), billing_mode="prepaid"),
        "monthly": make_subscriber(operator, home, activation_date=D(2027, 5, 15)),
    }
    for subscriber in made.values():
        payment_receive(subscriber=subscriber, amount=Decimal("1000.00"), method="cash")
    for subscriber in made.values():
        subscriber.refresh_from_db()
    assert made["expires_in_3_days"].expires_on == D(2027, 6, 18)
    assert made["expired_2_days_ago"].expires_on == D(2027, 6, 13)
    for offset in (-3, 0, 2):
        reminder_rule_create(operator=operator, event=ReminderEvent.PREPAID_EXPIRY, offset_days=offset)
    names = {subscriber.pk: name for name, subscriber in made.items()}
    found = expiry_candidates(operator, TODAY)
    assert [(names[c.subscriber_id], c.offset_days) for c in found] == [
        ("expires_in_3_days", -3),
        ("expires_today", 0),
        ("expired_2_days_ago", 2),
    ]
    assert found[0].dedup_key == f"prepaid-expiry:{made['expires_in_3_days'].pk}:2027-06-18:-3"
    assert found[0].context() == {"expiry": D(2027, 6, 18)}
    # Bill-due reminders never go to prepaid subscribers.
    reminder_rule_create(operator=operator, event=ReminderEvent.BILL_DUE, offset_days=0)
    assert all(c.mode != "prepaid" for c in reminder_candidates(operator, TODAY))


def test_a_zone_rule_reaches_the_zone_and_its_sub_zones_only(isp):
    operator, home, _office = isp
    uttara = Zone.objects.create(operator=operator, name="Uttara")
    sector_7 = Zone.objects.create(operator=operator, name="Sector 7", parent=uttara)
    mirpur = Zone.objects.create(operator=operator, name="Mirpur")
    made = {
        "uttara": make_subscriber(operator, home, activation_date=D(2027, 6, 8), zone=uttara),
        "sector_7": make_subscriber(operator, home, activation_date=D(2027, 6, 8), zone=sector_7),
        "mirpur": make_subscriber(operator, home, activation_date=D(2027, 6, 8), zone=mirpur),
        "no_zone": make_subscriber(operator, home, activation_date=D(2027, 6, 8)),
        "prepaid_uttara": make_subscriber(
            operator, home, activation_date=D(2027, 5, 15), billing_mode="prepaid", zone=sector_7
        ),
        "prepaid_mirpur": make_subscriber(
            operator, home, activation_date=D(2027, 5, 15), billing_mode="prepaid", zone=mirpur
        ),
    }
    for name in ("prepaid_uttara", "prepaid_mirpur"):
        payment_receive(subscriber=made[name], amount=Decimal("1000.00"), method="cash")
    names = {subscriber.pk: name for name, subscriber in made.items()}
    due = reminder_rule_create(operator=operator, event=ReminderEvent.BILL_DUE, offset_days=0, zone=uttara)
    expiry = reminder_rule_create(operator=operator, event=ReminderEvent.PREPAID_EXPIRY, offset_days=0, zone=uttara)
    assert sorted(names[c.subscriber_id] for c in reminder_candidates(operator, TODAY)) == ["sector_7", "uttara"]
    assert all(c.rule_id == due.pk for c in reminder_candidates(operator, TODAY))
    assert [(names[c.subscriber_id], c.rule_id) for c in expiry_candidates(operator, TODAY)] == [
        ("prepaid_uttara", expiry.pk)
    ]
    # The same offset for every zone is a different rule, and it reaches everyone.
    reminder_rule_create(operator=operator, event=ReminderEvent.BILL_DUE, offset_days=0)
    assert len(reminder_candidates(operator, TODAY)) == 2 + 4
    other = make_operator()
    with pytest.raises(InvalidSchedule, match=r"zone 'Mirpur' belongs to another operator"):
        reminder_rule_create(operator=other, event=ReminderEvent.BILL_DUE, offset_days=0, zone=mirpur)


def test_reminder_rules_are_validated(isp):
    operator, home, _office = isp
    rule = reminder_rule_create(operator=operator, event="bill_due", offset_days=-3)
    with pytest.raises(InvalidSchedule, match="already exists"):
        reminder_rule_create(operator=operator, event="bill_due", offset_days=-3)
    with pytest.raises(InvalidSchedule, match="within 60 days"):
        reminder_rule_create(operator=operator, event="bill_due", offset_days=90)
    with pytest.raises(InvalidSchedule, match="unknown reminder event"):
        reminder_rule_create(operator=operator, event="birthday", offset_days=0)
    with pytest.raises(InvalidSchedule, match="unknown channel"):
        reminder_rule_create(operator=operator, event="bill_due", offset_days=0, channel="pigeon")
    other = make_operator()
    with pytest.raises(InvalidSchedule, match="another operator"):
        reminder_rule_create(operator=other, event="bill_due", offset_days=0, package=home)
    reminder_rule_remove(rule=rule)
    assert not operator.reminder_rules.exists()


def test_reminders_wait_for_the_operators_reminder_hour(isp, frozen_clock):
    operator, home, office = isp
    people(operator, home, office)
    rules(operator, home)
    operator_schedule_set(operator=operator, reminder_hour=13)  # it is 12:00 in Dhaka
    early = due_reminders_send()
    assert (early["waiting"], early["operators"], early["candidates"]) == (1, 0, 0)
    assert prepaid_expiry_notices_send()["waiting"] == 1
    frozen_clock.advance(hours=1)
    on_time = due_reminders_send()
    assert (on_time["waiting"], on_time["operators"], on_time["candidates"]) == (0, 1, 6)
    # The real notify_event ran for each; this operator set up no messaging, so nothing was queued.
    assert (on_time["errors"], on_time["queued"], on_time["failures"]) == (0, 0, [])
    run = job_run_now("automation.due_reminders")
    assert run.status == JobRun.Status.OK and run.outcome["candidates"] == 6


def test_operator_schedules_are_validated(isp):
    operator, _home, _office = isp
    cases: list[tuple[dict[str, Any], str]] = [
        ({"generation_day": 0}, "1 to 31"),
        ({"generation_hour": 24}, "0 to 23"),
        ({"reminder_hour": -1}, "0 to 23"),
    ]
    for fields, message in cases:
        with pytest.raises(InvalidSchedule, match=message):
            operator_schedule_set(operator=operator, **fields)
    schedule = operator_schedule_set(operator=operator, generation_day=31, generation_hour=6)
    assert operator_schedule_set(operator=operator, generation_day=31, generation_hour=6).pk == schedule.pk
    # The 31st means the month's last day in short months.
    assert not generation_open(schedule, dt.datetime(2027, 6, 29, 7, tzinfo=DHAKA))
    assert generation_open(schedule, dt.datetime(2027, 6, 30, 7, tzinfo=DHAKA))
    assert not generation_open(schedule, dt.datetime(2027, 6, 30, 5, tzinfo=DHAKA))


def test_generation_honours_the_operators_day_and_hour(frozen_clock):
    calendar = make_operator(vat_rate=Decimal("0"))
    scheduled = make_operator(vat_rate=Decimal("0"))
    for operator in (calendar, scheduled):
        make_subscriber(operator, make_package(operator), activation_date=D(2027, 6, 1))
    operator_schedule_set(operator=scheduled, generation_day=2, generation_hour=10)

    def july_bills(operator):
        return Bill.objects.filter(subscriber__operator=operator, period_month=D(2027, 7, 1)).count()

    frozen_clock.now = dt.datetime(2027, 7, 1, 11, tzinfo=DHAKA)  # 1 July, 11:00: before day 2
    result = scheduled_bills_generate("nightly")
    assert (result["operators"], result["waiting"], result["created"]) == (1, 1, 1)
    assert (july_bills(calendar), july_bills(scheduled)) == (1, 0)
    frozen_clock.now = dt.datetime(2027, 7, 2, 9, 30, tzinfo=DHAKA)  # day 2, before 10:00
    assert scheduled_bills_generate("nightly")["waiting"] == 1 and july_bills(scheduled) == 0
    frozen_clock.now = dt.datetime(2027, 7, 2, 10, 17, tzinfo=DHAKA)
    result = scheduled_bills_generate("nightly")
    assert (result["waiting"], result["created"]) == (0, 1) and july_bills(scheduled) == 1
    assert scheduled_bills_generate("nightly")["created"] == 0
