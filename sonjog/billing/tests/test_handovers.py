"""Field collection's two-step approval (issue 15): a collector's cash waits in a hand-over of the
day until a manager approves the amount counted; the subscriber's payment never waits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction

from sonjog.billing.exceptions import HandoverChanged, HandoverDecided, HandoverError, HandoverOwnCash
from sonjog.billing.models import CashHandover, CashHandoverPayment, LedgerEntry, Payment, Receipt
from sonjog.billing.selectors import collected, collected_handover, handover_standing
from sonjog.billing.services import entry_reverse
from sonjog.billing.services.handover import handover_approve, handover_dispute
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.models import Package
from sonjog.conftest import DHAKA, make_operator, make_package, make_subscriber, run_at_once
from sonjog.core.filters import day_start
from sonjog.core.models import AuditEvent
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_set_intent
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create, staff_create

PASSWORD = "handover-pass-1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Four logins per test: PBKDF2 would take most of its time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _staff(operator: Operator, role: str, name: str) -> User:
    return staff_create(operator=operator, username=f"{name}-{operator.code}", password=PASSWORD, role=role).user


class Shop:
    """An ISP that approves hand-overs, with a collector, a manager, an owner and subscribers."""

    def __init__(self, *, approval: bool = True) -> None:
        self.operator = make_operator(vat_rate=Decimal("0"), collection_approval=approval)
        self.package: Package = make_package(self.operator, "500.00", vat=False)
        today = operator_today(self.operator)
        self.subscribers = [make_subscriber(self.operator, self.package, today - dt.timedelta(days=40)) for _ in "ab"]
        self.collector = _staff(self.operator, "collector", "rahim")
        self.second_collector = _staff(self.operator, "collector", "karim")
        self.manager = _staff(self.operator, "manager", "manager")
        self.owner = _staff(self.operator, "owner", "owner")

    def pay(
        self,
        amount: str,
        *,
        by: User | None = None,
        method: str = "cash",
        subscriber: Subscriber | None = None,
        at: dt.datetime | None = None,
    ) -> Payment:
        who = by or self.collector
        return payment_receive(
            subscriber=subscriber or self.subscribers[0],
            amount=Decimal(amount),
            method=method,
            collector=who,
            actor=who,
            received_at=at,
            confirm_duplicate=True,
        )


def _handover_of(payment: Payment) -> CashHandover | None:
    link = CashHandoverPayment.objects.filter(payment=payment).select_related("handover").first()
    return link.handover if link is not None else None


def _today_bounds(operator: Operator) -> tuple[dt.datetime, dt.datetime]:
    today = operator_today(operator)
    return day_start(today, operator.time_zone), day_start(today + dt.timedelta(days=1), operator.time_zone)


# -- on and off -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_with_approval_off_cash_joins_no_handover_and_counts_as_collected_as_before():
    shop = Shop(approval=False)
    payment = shop.pay("300.00")
    assert _handover_of(payment) is None
    assert not CashHandover.objects.exists()
    start, end = _today_bounds(shop.operator)
    split = collected_handover([shop.operator.pk], start, end)
    assert split.collected == collected([shop.operator.pk], start, end) == Decimal("300.00")
    assert (split.awaiting, split.handed_over, split.outside) == (Decimal("0.00"), Decimal("0.00"), Decimal("300.00"))


@pytest.mark.django_db
def test_with_approval_on_a_collectors_cash_of_the_day_forms_one_pending_handover():
    shop = Shop()
    first = shop.pay("300.00")
    second = shop.pay("200.00", subscriber=shop.subscribers[1])
    bkash = shop.pay("100.00", method="bkash")
    owners = shop.pay("50.00", by=shop.owner)
    others = shop.pay("70.00", by=shop.second_collector)

    handover = _handover_of(first)
    assert handover is not None and handover.state == CashHandover.State.PENDING
    assert handover.day == operator_today(shop.operator) and handover.collector_id == shop.collector.pk
    assert _handover_of(second) == handover
    assert _handover_of(bkash) is None  # not cash: nothing in the collector's hands
    assert _handover_of(owners) is None  # the owner's cash is the operator's already
    assert _handover_of(others) not in (None, handover)  # each collector hands over their own
    assert handover_standing(handover.pk) == Decimal("500.00")
    assert handover.expected is None  # fixed only when decided

    start, end = _today_bounds(shop.operator)
    split = collected_handover([shop.operator.pk], start, end)
    assert split.collected == collected([shop.operator.pk], start, end) == Decimal("720.00")
    assert split.awaiting == Decimal("570.00") and split.handed_over == Decimal("0.00")
    assert split.outside == Decimal("150.00")
    mine = collected_handover([shop.operator.pk], start, end, collector_id=shop.collector.pk)
    assert (mine.collected, mine.awaiting) == (Decimal("600.00"), Decimal("500.00"))


@pytest.mark.django_db
def test_the_subscriber_is_paid_receipted_and_reconnected_at_once_whatever_the_handover_waits_for():
    shop = Shop()
    subscriber = shop.subscribers[0]
    subscriber_set_intent(subscriber=subscriber, intent=ServiceIntent.SUSPENDED, reason="overdue", actor=shop.manager)
    owed = LedgerEntry.objects.filter(subscriber=subscriber).values_list("amount", flat=True)
    payment = shop.pay(str(sum(owed, Decimal("0.00"))))
    assert _handover_of(payment).state == CashHandover.State.PENDING  # type: ignore[union-attr]
    assert Receipt.objects.filter(payment=payment).exists()
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE
    assert ledger_verify().ok


# -- one hand-over per payment, and the database's rules -------------------------------------------


@pytest.mark.django_db
def test_a_payment_belongs_to_one_handover_and_stays_in_it():
    shop = Shop()
    payment = shop.pay("300.00")
    handover = _handover_of(payment)
    assert handover is not None
    other = CashHandover.objects.create(operator=shop.operator, collector=shop.second_collector, day=handover.day)
    with pytest.raises(IntegrityError), transaction.atomic():
        CashHandoverPayment.objects.create(payment=payment, handover=other)
    with pytest.raises(IntegrityError), transaction.atomic():
        CashHandoverPayment.objects.filter(payment=payment).update(handover=other)
    with pytest.raises(IntegrityError), transaction.atomic():
        CashHandoverPayment.objects.filter(payment=payment).delete()
    assert _handover_of(payment) == handover


@pytest.mark.django_db
def test_the_database_takes_only_open_handovers_cash_and_the_collectors_own_day():
    shop = Shop()
    handover = _handover_of(shop.pay("300.00"))
    assert handover is not None
    day = handover.day

    def link(payment: Payment, into: CashHandover) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_cashhandoverpayment (payment_id, handover_id, created_at) VALUES (%s, %s, now())",
                [payment.pk, into.pk],
            )

    shop.operator.collection_approval = False
    Operator.objects.filter(pk=shop.operator.pk).update(collection_approval=False)
    loose = [
        shop.pay("10.00", method="nagad"),
        shop.pay("11.00", by=shop.second_collector),
        shop.pay("12.00", at=dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), tzinfo=DHAKA)),
    ]
    for payment in loose:
        assert _handover_of(payment) is None
        with pytest.raises(IntegrityError, match="not cash its collector took"):
            link(payment, handover)
    fits = shop.pay("13.00")
    handover_approve(handover=handover, counted=Decimal("300.00"), actor=shop.manager)
    with pytest.raises(IntegrityError, match="joins only an open hand-over"):
        link(fits, handover)


@pytest.mark.django_db
def test_an_approved_handover_never_changes_and_expected_is_its_payments_sum():
    shop = Shop()
    handover = _handover_of(shop.pay("300.00"))
    assert handover is not None
    with pytest.raises(IntegrityError, match="standing payments add up to"), transaction.atomic():
        CashHandover.objects.filter(pk=handover.pk).update(
            state="approved", expected=Decimal("250.00"), counted=Decimal("250.00"), approved_at=handover.created_at
        )
    approved = handover_approve(handover=handover, counted=Decimal("300.00"), actor=shop.manager)
    for change in ({"counted": Decimal("1.00")}, {"state": "pending", "expected": None, "counted": None}):
        with pytest.raises(IntegrityError, match="approved"), transaction.atomic():
            CashHandover.objects.filter(pk=approved.pk).update(**change)
    with pytest.raises(IntegrityError), transaction.atomic():
        CashHandover.objects.filter(pk=approved.pk).delete()


# -- deciding -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_shortfall_is_recorded_as_the_difference_and_the_payments_stay_as_they_are():
    shop = Shop()
    payments = [shop.pay("300.00"), shop.pay("200.00", subscriber=shop.subscribers[1])]
    handover = _handover_of(payments[0])
    assert handover is not None
    ledger_before = list(LedgerEntry.objects.order_by("pk").values_list("pk", "amount"))

    approved = handover_approve(
        handover=handover, counted=Decimal("450.00"), expected=Decimal("500.00"), actor=shop.manager, note="torn note"
    )
    assert approved.state == CashHandover.State.APPROVED
    assert (approved.expected, approved.counted, approved.shortfall) == (
        Decimal("500.00"),
        Decimal("450.00"),
        Decimal("50.00"),
    )
    assert approved.approved_by == shop.manager and approved.approval_note == "torn note"
    assert [Payment.objects.get(pk=p.pk).amount for p in payments] == [Decimal("300.00"), Decimal("200.00")]
    assert list(LedgerEntry.objects.order_by("pk").values_list("pk", "amount")) == ledger_before
    event = AuditEvent.objects.get(action="handover.approve")
    assert event.detail["shortfall"] == "50.00" and event.actor == shop.manager

    start, end = _today_bounds(shop.operator)
    split = collected_handover([shop.operator.pk], start, end)
    assert (split.awaiting, split.handed_over) == (Decimal("0.00"), Decimal("500.00"))

    with pytest.raises(HandoverDecided, match="approved already"):
        handover_approve(handover=handover, counted=Decimal("500.00"), actor=shop.owner)
    # Cash taken later that day opens the day's next hand-over; the approved one stays as it was.
    late = shop.pay("80.00")
    assert _handover_of(late) not in (None, handover)
    assert CashHandover.objects.filter(day=handover.day, collector=shop.collector).count() == 2


@pytest.mark.django_db
def test_more_counted_than_taken_is_recorded_too():
    shop = Shop()
    handover = _handover_of(shop.pay("300.00"))
    assert handover is not None
    approved = handover_approve(handover=handover, counted=Decimal("310.00"), actor=shop.manager)
    assert approved.shortfall == Decimal("-10.00")


@pytest.mark.django_db
def test_an_amount_other_than_the_one_shown_is_refused_and_nothing_written():
    shop = Shop()
    handover = _handover_of(shop.pay("300.00"))
    assert handover is not None
    shop.pay("40.00", subscriber=shop.subscribers[1])  # taken while the manager's page was open
    with pytest.raises(HandoverChanged, match=r"340\.00"):
        handover_approve(handover=handover, counted=Decimal("300.00"), expected=Decimal("300.00"), actor=shop.manager)
    handover.refresh_from_db()
    assert handover.state == CashHandover.State.PENDING and handover.expected is None
    assert not AuditEvent.objects.filter(action="handover.approve").exists()


@pytest.mark.django_db
def test_a_reversed_payment_is_not_expected_of_the_collector():
    shop = Shop()
    kept = shop.pay("300.00")
    mistaken = shop.pay("999.00", subscriber=shop.subscribers[1])
    entry_reverse(entry=LedgerEntry.objects.get(payment=mistaken, kind="payment"), reason="keyed wrong")
    handover = _handover_of(kept)
    assert handover is not None and _handover_of(mistaken) == handover
    assert handover_standing(handover.pk) == Decimal("300.00")
    assert handover_approve(handover=handover, counted=Decimal("300.00"), actor=shop.manager).shortfall == 0


@pytest.mark.django_db
def test_a_dispute_needs_a_note_stays_open_and_is_approved_once_settled():
    shop = Shop()
    handover = _handover_of(shop.pay("300.00"))
    assert handover is not None
    with pytest.raises(HandoverError, match="needs a note"):
        handover_dispute(handover=handover, note="  ", actor=shop.manager)
    disputed = handover_dispute(
        handover=handover, note="Rahim says one more receipt", counted=Decimal("250.00"), actor=shop.manager
    )
    assert (disputed.state, disputed.expected, disputed.counted) == ("disputed", Decimal("300.00"), Decimal("250.00"))
    with pytest.raises(HandoverDecided, match="disputed already"):
        handover_dispute(handover=handover, note="again", actor=shop.owner)
    start, end = _today_bounds(shop.operator)
    assert collected_handover([shop.operator.pk], start, end).disputed == Decimal("300.00")

    # The missing receipt is found and recorded: it joins the disputed hand-over, still open.
    found = shop.pay("50.00", subscriber=shop.subscribers[1])
    assert _handover_of(found) == handover
    approved = handover_approve(
        handover=handover, counted=Decimal("350.00"), expected=Decimal("350.00"), actor=shop.owner
    )
    assert (approved.expected, approved.shortfall, approved.note) == (
        Decimal("350.00"),
        Decimal("0.00"),
        "Rahim says one more receipt",
    )
    assert approved.disputed_by == shop.manager and approved.approved_by == shop.owner


@pytest.mark.django_db
def test_nobody_decides_their_own_cash_and_a_collector_decides_nothing():
    shop = Shop()
    managers_cash = _handover_of(shop.pay("120.00", by=shop.manager))
    collectors = _handover_of(shop.pay("300.00"))
    assert managers_cash is not None and collectors is not None
    with pytest.raises(HandoverOwnCash):
        handover_approve(handover=managers_cash, counted=Decimal("120.00"), actor=shop.manager)
    with pytest.raises(HandoverOwnCash):
        handover_dispute(handover=managers_cash, note="mine", actor=shop.manager)
    with pytest.raises(HandoverError, match="permission"):
        handover_approve(handover=collectors, counted=Decimal("300.00"), actor=shop.second_collector)
    assert handover_approve(handover=managers_cash, counted=Decimal("120.00"), actor=shop.owner).state == "approved"


@pytest.mark.django_db
def test_a_resellers_collector_hands_over_to_the_reseller():
    shop = Shop()
    reseller = operator_create(
        code=f"{shop.operator.code}-r", name="Reseller", parent=shop.operator, customer_id_prefix="RSX"
    )
    Operator.objects.filter(pk=reseller.pk).update(collection_approval=True)
    package = make_package(reseller, "400.00", vat=False)
    subscriber = make_subscriber(reseller, package, operator_today(reseller) - dt.timedelta(days=40))
    collector = _staff(reseller, "collector", "rcol")
    # The ISP's own collector takes the reseller's subscriber's cash too: it is handed over at the ISP.
    payments = [shop.pay("100.00", by=collector, subscriber=subscriber), shop.pay("90.00", subscriber=subscriber)]
    at_reseller, at_isp = (_handover_of(each) for each in payments)
    assert at_reseller is not None and at_reseller.operator_id == reseller.pk
    assert at_isp is not None and at_isp.operator_id == shop.operator.pk


# -- time: the operator's calendar ----------------------------------------------------------------


@pytest.mark.django_db
def test_cash_taken_at_00_30_in_dhaka_belongs_to_that_dhaka_day_on_a_utc_server(settings):
    settings.TIME_ZONE = "UTC"
    shop = Shop()
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 30, tzinfo=DHAKA), tick=False):
        before_midnight = shop.pay("100.00")
    with time_machine.travel(dt.datetime(2027, 1, 1, 0, 30, tzinfo=DHAKA), tick=False):
        # 18:30 on 31 December in UTC, the server's own calendar.
        after_midnight = shop.pay("200.00", subscriber=shop.subscribers[1])
        backdated = shop.pay("50.00", at=dt.datetime(2026, 12, 31, 23, 59, tzinfo=DHAKA))
    december, january = _handover_of(before_midnight), _handover_of(after_midnight)
    assert december is not None and december.day == dt.date(2026, 12, 31)
    assert january is not None and january.day == dt.date(2027, 1, 1)
    assert _handover_of(backdated) == december
    assert handover_standing(december.pk) == Decimal("150.00")
    assert handover_standing(january.pk) == Decimal("200.00")
    new_year = day_start(dt.date(2027, 1, 1), "Asia/Dhaka")
    split = collected_handover([shop.operator.pk], new_year, new_year + dt.timedelta(days=1))
    assert (split.collected, split.awaiting) == (Decimal("200.00"), Decimal("200.00"))


# -- at once, on real connections -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_managers_approving_at_once_approve_once():
    shop = Shop()
    handover = _handover_of(shop.pay("300.00"))
    assert handover is not None
    results = run_at_once(
        lambda: handover_approve(handover=handover, counted=Decimal("300.00"), actor=shop.manager),
        lambda: handover_approve(handover=handover, counted=Decimal("280.00"), actor=shop.owner),
    )
    approved = [each for each in results if isinstance(each, CashHandover)]
    refused = [each for each in results if isinstance(each, HandoverDecided)]
    assert len(approved) == 1 and len(refused) == 1, results
    handover.refresh_from_db()
    assert handover.state == "approved" and handover.counted == approved[0].counted
    assert AuditEvent.objects.filter(action="handover.approve").count() == 1


@pytest.mark.django_db(transaction=True)
def test_cash_taken_while_a_manager_approves_is_in_the_figure_or_in_the_next_handover():
    shop = Shop()
    handover = _handover_of(shop.pay("300.00"))
    assert handover is not None
    results = run_at_once(
        lambda: handover_approve(handover=handover, counted=Decimal("300.00"), actor=shop.manager),
        lambda: shop.pay("40.00", subscriber=shop.subscribers[1]),
        lambda: shop.pay("60.00", subscriber=shop.subscribers[0]),
    )
    assert not [each for each in results if isinstance(each, Exception)], results
    everything = Decimal("0.00")
    for each in CashHandover.objects.filter(collector=shop.collector):
        standing = handover_standing(each.pk)
        everything += standing
        if each.state == "approved":
            assert each.expected == standing  # nothing joined it after the figure was fixed
    assert everything == Decimal("400.00")
    assert CashHandoverPayment.objects.count() == 3
