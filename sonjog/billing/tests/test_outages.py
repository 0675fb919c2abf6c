"""Outage credits for a zone, a router or a POP at once: amounts, the cap, idempotency, the wall."""

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction

from sonjog.billing.exceptions import BillingError, InvalidDate
from sonjog.billing.models import Bill, LedgerEntry, Outage, OutageCredit
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.services import bill_credit_add, outage_credit_add
from sonjog.billing.services.outages import (
    ALREADY_CREDITED,
    CAPPED,
    CREDIT,
    FULLY_CREDITED,
    NOT_BILLED,
    outage_credits_apply,
    outage_credits_preview,
)
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.core.audit import AuditEvent
from sonjog.customers.models import Pop, ServiceIntent, Subscriber
from sonjog.customers.services import zone_create
from sonjog.flows.outages import outage_credit, outage_preview, outage_subscriber_ids
from sonjog.network.routers import router_create
from sonjog.operators.services import operator_create

D = dt.date
DHAKA = ZoneInfo("Asia/Dhaka")


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=DHAKA)


# 22:00 on 31 May to 02:00 on 1 June in Dhaka: two hours in each of two periods.
ACROSS_START, ACROSS_END = at(D(2027, 5, 31), 22), at(D(2027, 6, 1), 2)


def ledger_rows() -> int:
    return LedgerEntry.objects.count()


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
class TestAmounts:
    def test_an_outage_across_a_period_boundary_is_split_into_each_period(self, operator, package, owner):
        subscriber = make_subscriber(operator, package, activation_date=D(2027, 5, 1))  # May and June billed
        plan = outage_credits_preview(
            operator_ids=[operator.pk], subscriber_ids=[subscriber.pk], start=ACROSS_START, end=ACROSS_END
        )
        (row,) = plan.rows
        # May: 1000 x 120 / (31 x 1440) = 2.69; June: 1000 x 120 / (30 x 1440) = 2.78.
        assert [(p.period_month, p.minutes, p.amount, p.status) for p in row.periods] == [
            (D(2027, 5, 1), 120, Decimal("2.69"), CREDIT),
            (D(2027, 6, 1), 120, Decimal("2.78"), CREDIT),
        ]
        assert plan.total == Decimal("5.47") and len(plan.credited) == 1
        before = subscriber_balance(subscriber.pk)
        zone = zone_create(operator=operator, name="North")
        done = outage_credits_apply(
            operator=operator,
            target_kind="zone",
            target_id=zone.pk,
            target_label="North",
            operator_ids=[operator.pk],
            subscriber_ids=[subscriber.pk],
            start=ACROSS_START,
            end=ACROSS_END,
            reason="fibre cut",
            actor=owner,
        )
        assert done.total == Decimal("5.47")
        assert subscriber_balance(subscriber.pk) == before - Decimal("5.47")
        entries = LedgerEntry.objects.filter(subscriber=subscriber, adjustment_reason="outage").order_by("period_month")
        assert [(e.period_month, e.amount) for e in entries] == [
            (D(2027, 5, 1), Decimal("-2.69")),
            (D(2027, 6, 1), Decimal("-2.78")),
        ]
        # Each entry names its period's bill and the outage it came from.
        assert [e.bill_id for e in entries] == list(
            Bill.objects.filter(subscriber=subscriber).order_by("period_month").values_list("pk", flat=True)
        )
        assert done.outage is not None
        assert all(f"Outage #{done.outage.pk}" in e.memo and "fibre cut" in e.memo for e in entries)
        assert OutageCredit.objects.filter(outage=done.outage).count() == 2
        assert AuditEvent.objects.filter(action="outage.record").count() == 1
        assert ledger_verify().ok

    def test_the_same_amount_as_the_single_subscriber_service(self, operator, package):
        one = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        two = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        start, end = at(D(2027, 6, 10), 9), at(D(2027, 6, 10), 15)  # 360 minutes of June's 43,200
        plan = outage_credits_preview(operator_ids=[operator.pk], subscriber_ids=[one.pk], start=start, end=end)
        single = outage_credit_add(subscriber=two, period_month=D(2027, 6, 1), outage_minutes=360, memo="fibre cut")
        assert plan.total == -single.amount == Decimal("8.33")

    def test_the_credit_is_capped_by_what_is_left_on_the_bill(self, operator, package):
        subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        june = Bill.objects.get(subscriber=subscriber, period_month=D(2027, 6, 1))
        bill_credit_add(bill=june, amount=Decimal("995.00"), memo="goodwill")  # 5.00 left on June
        start, end = at(D(2027, 6, 10), 0), at(D(2027, 6, 12), 0)  # two days: 66.67
        plan = outage_credits_preview(operator_ids=[operator.pk], subscriber_ids=[subscriber.pk], start=start, end=end)
        (period,) = plan.rows[0].periods
        assert (period.status, period.full_amount, period.amount, period.left) == (
            CAPPED,
            Decimal("66.67"),
            Decimal("5.00"),
            Decimal("5.00"),
        )
        done = outage_credits_apply(
            operator=operator,
            target_kind="zone",
            target_id=1,
            target_label="North",
            operator_ids=[operator.pk],
            subscriber_ids=[subscriber.pk],
            start=start,
            end=end,
            reason="flood",
        )
        assert done.total == Decimal("5.00")
        # Now nothing is left: a second, different outage credits nothing and says why.
        later = outage_credits_preview(
            operator_ids=[operator.pk],
            subscriber_ids=[subscriber.pk],
            start=at(D(2027, 6, 13), 0),
            end=at(D(2027, 6, 13), 6),
        )
        assert later.rows[0].periods[0].status == FULLY_CREDITED and later.total == 0
        assert ledger_verify().ok

    def test_a_period_not_billed_yet_is_listed_with_nothing_to_credit(self, operator, package, frozen_clock):
        # Billed through June only (signed up on 15 June); the outage runs into July, seen on 2 July.
        subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        start, end = at(D(2027, 6, 30), 20), at(D(2027, 7, 1), 4)
        frozen_clock.now = at(D(2027, 7, 2), 12)
        plan = outage_credits_preview(operator_ids=[operator.pk], subscriber_ids=[subscriber.pk], start=start, end=end)
        june, july = plan.rows[0].periods
        assert (june.status, june.minutes, june.amount) == (CREDIT, 240, Decimal("5.56"))
        assert (july.status, july.minutes, july.amount) == (NOT_BILLED, 240, 0)

    def test_only_subscribers_in_service_during_the_outage_count(self, operator, package):
        active = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        suspended = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        Subscriber.objects.filter(pk=suspended.pk).update(service_intent=ServiceIntent.SUSPENDED)
        never = make_subscriber(operator, package, activation_date=None)
        joined_after = make_subscriber(operator, package, activation_date=D(2027, 6, 14))
        plan = outage_credits_preview(
            operator_ids=[operator.pk],
            subscriber_ids=[active.pk, suspended.pk, never.pk, joined_after.pk],
            start=at(D(2027, 6, 10), 9),
            end=at(D(2027, 6, 10), 15),
        )
        assert [row.subscriber_id for row in plan.rows] == [active.pk, suspended.pk]
        assert plan.not_in_service == 2

    def test_bad_windows_are_refused(self, operator, package):
        subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
        for start, end in [
            (at(D(2027, 6, 10), 15), at(D(2027, 6, 10), 9)),  # ends before it starts
            (at(D(2027, 6, 14), 9), at(D(2027, 6, 16), 9)),  # not over yet
            (at(D(2027, 3, 1), 0), at(D(2027, 6, 1), 0)),  # three months
        ]:
            with pytest.raises(InvalidDate):
                outage_credits_preview(operator_ids=[operator.pk], subscriber_ids=[subscriber.pk], start=start, end=end)
        with pytest.raises(BillingError, match="reason"):
            outage_credits_apply(
                operator=operator,
                target_kind="zone",
                target_id=1,
                target_label="North",
                operator_ids=[operator.pk],
                subscriber_ids=[subscriber.pk],
                start=at(D(2027, 6, 10), 9),
                end=at(D(2027, 6, 10), 15),
                reason="  ",
            )
        assert Outage.objects.count() == 0

    def test_the_preview_writes_nothing(self, operator, package):
        zone = zone_create(operator=operator, name="North")
        for _ in range(3):
            make_subscriber(operator, package, activation_date=D(2027, 5, 1), zone=zone)
        counts = (ledger_rows(), Outage.objects.count(), OutageCredit.objects.count(), AuditEvent.objects.count())
        plan = outage_preview(place=zone, operator_ids=[operator.pk], start=ACROSS_START, end=ACROSS_END)
        assert len(plan.credited) == 3 and plan.total == Decimal("16.41")
        after = (ledger_rows(), Outage.objects.count(), OutageCredit.objects.count(), AuditEvent.objects.count())
        assert after == counts


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
class TestWho:
    def test_a_zone_with_its_subzones(self, operator, package):
        north = zone_create(operator=operator, name="North")
        block = zone_create(operator=operator, name="Block A", parent=north)
        lane = zone_create(operator=operator, name="Lane 3", parent=block)
        south = zone_create(operator=operator, name="South")
        inside = [make_subscriber(operator, package, D(2027, 6, 1), zone=z).pk for z in (north, block, lane)]
        make_subscriber(operator, package, D(2027, 6, 1), zone=south)
        assert outage_subscriber_ids(place=north, operator_ids=[operator.pk]) == inside

    def test_a_router_serves_its_own_subscribers_and_those_of_its_zones(self, operator, package):
        north = zone_create(operator=operator, name="North")
        block = zone_create(operator=operator, name="Block A", parent=north)
        south = zone_create(operator=operator, name="South")
        router = router_create(operator=operator, name="core", address="127.0.0.1", record_only=True, zones=[north])
        other = router_create(operator=operator, name="edge", address="127.0.0.2", record_only=True, zones=[south])
        in_zone = make_subscriber(operator, package, D(2027, 6, 1), zone=north)
        in_subzone = make_subscriber(operator, package, D(2027, 6, 1), zone=block)
        own = make_subscriber(operator, package, D(2027, 6, 1), zone=south)
        Subscriber.objects.filter(pk=own.pk).update(router=router)
        elsewhere = make_subscriber(operator, package, D(2027, 6, 1), zone=north)
        Subscriber.objects.filter(pk=elsewhere.pk).update(router=other)  # its own router wins
        assert outage_subscriber_ids(place=router, operator_ids=[operator.pk]) == [in_zone.pk, in_subzone.pk, own.pk]

    def test_a_pop(self, operator, package):
        pop = Pop.objects.create(operator=operator, name="Mirpur POP")
        through = make_subscriber(operator, package, D(2027, 6, 1))
        make_subscriber(operator, package, D(2027, 6, 1))
        Subscriber.objects.filter(pk=through.pk).update(pop=pop)
        plan = outage_credit(
            place=pop,
            operator_ids=[operator.pk],
            start=at(D(2027, 6, 10), 9),
            end=at(D(2027, 6, 10), 15),
            reason="power cut at the POP",
        )
        assert [row.subscriber_id for row in plan.credited] == [through.pk]
        assert plan.outage is not None and plan.outage.target_kind == "pop"
        assert plan.outage.target_label == "Mirpur POP"

    def test_another_resellers_zone_and_subscribers_are_behind_the_wall(self, operator, package):
        reseller = operator_create(code="res-x", name="Reseller X", parent=operator, customer_id_prefix="RX")
        theirs = zone_create(operator=reseller, name="Their zone")
        their_subscriber = make_subscriber(reseller, make_package(reseller, "700.00", vat=False), D(2027, 6, 1))
        Subscriber.objects.filter(pk=their_subscriber.pk).update(zone=theirs)
        mine = make_operator(vat_rate=Decimal("0"))  # a sibling ISP: sees neither
        window: dict[str, Any] = {"start": at(D(2027, 6, 10), 9), "end": at(D(2027, 6, 10), 15)}
        with pytest.raises(BillingError):
            outage_preview(place=theirs, operator_ids=[mine.pk], **window)
        with pytest.raises(BillingError):
            outage_credit(place=theirs, operator_ids=[mine.pk], reason="x", **window)
        # Named directly, another operator's subscribers are not credited either.
        plan = outage_credits_preview(operator_ids=[mine.pk], subscriber_ids=[their_subscriber.pk], **window)
        assert plan.rows == [] and plan.not_in_service == 0
        assert Outage.objects.count() == 0 and not LedgerEntry.objects.filter(adjustment_reason="outage").exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_clock")
def test_applying_twice_credits_once_and_an_overlapping_outage_is_skipped(operator, package, owner):
    north = zone_create(operator=operator, name="North")
    router = router_create(operator=operator, name="core", address="127.0.0.1", record_only=True, zones=[north])
    subscribers = [make_subscriber(operator, package, D(2027, 5, 1), zone=north) for _ in range(3)]
    first = outage_credit(
        place=north, operator_ids=[operator.pk], start=ACROSS_START, end=ACROSS_END, reason="fibre cut", actor=owner
    )
    assert len(first.credited) == 3 and first.total == Decimal("16.41")
    entries = ledger_rows()
    again = outage_credit(
        place=north, operator_ids=[operator.pk], start=ACROSS_START, end=ACROSS_END, reason="fibre cut", actor=owner
    )
    assert again.outage == first.outage and again.credited == [] and again.total == 0
    assert {p.status for row in again.skipped for p in row.periods} == {ALREADY_CREDITED}
    # The same cut entered again by its router, an hour later and longer: overlapping, so skipped.
    by_router = outage_credit(
        place=router,
        operator_ids=[operator.pk],
        start=ACROSS_START + dt.timedelta(hours=1),
        end=ACROSS_END + dt.timedelta(hours=1),
        reason="fibre cut",
    )
    assert first.outage is not None and by_router.outage != first.outage and by_router.total == 0
    assert {p.other_outage_id for row in by_router.skipped for p in row.periods} == {first.outage.pk}
    assert ledger_rows() == entries
    for subscriber in subscribers:
        assert OutageCredit.objects.filter(subscriber=subscriber).count() == 2  # May and June, once each
    # Past the lock, the database still refuses a second link of the same outage, subscriber and period.
    link = OutageCredit.objects.filter(outage=first.outage).first()
    assert link is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        OutageCredit.objects.create(
            outage=link.outage,
            subscriber_id=link.subscriber_id,
            period_month=link.period_month,
            entry=LedgerEntry.objects.filter(subscriber_id=link.subscriber_id, kind="bill").earliest("pk"),
            minutes=1,
        )
    assert ledger_verify().ok


@pytest.mark.django_db
def test_a_period_billed_later_is_credited_when_the_outage_is_applied_again(operator, package, frozen_clock):
    from sonjog.billing.services import bill_generate_period

    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    start, end = at(D(2027, 6, 30), 20), at(D(2027, 7, 1), 4)
    frozen_clock.now = at(D(2027, 7, 2), 12)
    zone = _zone_of(subscriber)
    first = outage_credit(place=zone, operator_ids=[operator.pk], start=start, end=end, reason="x")
    assert first.total == Decimal("5.56")  # June only
    bill_generate_period(operator=operator, period_month=D(2027, 7, 1), trigger="cli")
    second = outage_credit(place=zone, operator_ids=[operator.pk], start=start, end=end, reason="x")
    # July: 1000 x 240 / (31 x 1440) = 5.38; June is not credited again.
    assert second.total == Decimal("5.38")
    assert [p.status for p in second.rows[0].periods] == [ALREADY_CREDITED, CREDIT]
    assert ledger_verify().ok


def _zone_of(subscriber):
    if subscriber.zone_id is None:
        zone = zone_create(operator=subscriber.operator, name=f"Z{subscriber.pk}")
        Subscriber.objects.filter(pk=subscriber.pk).update(zone=zone)
        subscriber.zone = zone
    return subscriber.zone


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_applies_credit_each_subscriber_once():
    import time_machine

    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "1000.00", vat=False)
    with time_machine.travel(dt.datetime(2027, 6, 15, 6, 0, tzinfo=dt.UTC), tick=True):
        north = zone_create(operator=operator, name="North")
        subscribers = [make_subscriber(operator, package, D(2027, 5, 1), zone=north) for _ in range(6)]

        def press():
            return outage_credit(
                place=north, operator_ids=[operator.pk], start=ACROSS_START, end=ACROSS_END, reason="fibre cut"
            )

        results = run_at_once(press, press, press)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert len({r.outage.pk for r in results}) == 1
    assert sum(r.total for r in results) == Decimal("32.82")  # 6 x 5.47, once
    assert sum(len(r.credited) for r in results) == 6
    for subscriber in subscribers:
        credits = LedgerEntry.objects.filter(subscriber=subscriber, adjustment_reason="outage")
        assert credits.count() == 2
    assert ledger_verify().ok
