"""Refunds of online payments and the daily settlement check, against the gateway emulators over real
HTTP on 127.0.0.1 and the real PostgreSQL: refunds are reserved and bounded (by the services, and by
the database whoever writes), confirmed by the gateway's refund status, and on the subscriber's
ledger once; a refund whose answer was lost is settled by the recheck; the settlement check applies
a payment the gateway has that we left open and reports what is still missing, both ways, on the
operator's calendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from sonjog.automation.services import job_run_now
from sonjog.billing.models import EntryKind, LedgerEntry
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.customers.models import Subscriber
from sonjog.flows.gateway_refunds import refund_request, refunds_recheck, settlement_check, settlements_check_nightly
from sonjog.flows.gateways import attempt_confirm, checkout_start
from sonjog.flows.payments import payment_receive
from sonjog.gateways.clients.base import MemoryTokenStore, State, Status
from sonjog.gateways.clients.bkash import BkashClient
from sonjog.gateways.emulator.bkash import BkashEmulator
from sonjog.gateways.emulator.sslcommerz import SslcommerzEmulator
from sonjog.gateways.models import (
    AttemptState,
    GatewayAccount,
    GatewayRefund,
    PaymentAttempt,
    RefundState,
    SettlementCheck,
)
from sonjog.gateways.refunds import RefundExceedsPayment, RefundRefused
from sonjog.gateways.selectors import refund_left, seen_not_applied_count
from sonjog.gateways.services import (
    Verdict,
    attempt_create,
    attempt_settle,
    credentials_of,
    gateway_account_create,
)

pytestmark = pytest.mark.django_db(transaction=True)

CREDENTIALS = {"username": "sandbox", "password": "pw-1", "app_key": "key-1", "app_secret": "secret-1"}
DHAKA = dt.timezone(dt.timedelta(hours=6))


@pytest.fixture
def bkash() -> Iterator[BkashEmulator]:
    emulator = BkashEmulator(
        username=CREDENTIALS["username"],
        password=CREDENTIALS["password"],
        app_key=CREDENTIALS["app_key"],
        app_secret=CREDENTIALS["app_secret"],
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


class Shop:
    """An ISP whose subscribers pay 800 a month through a bKash account at the emulator."""

    def __init__(self, emulator: BkashEmulator) -> None:
        self.operator = make_operator(vat_rate=Decimal("0"), grace_days=3, due_days=7)
        self.package = make_package(self.operator, "800.00", vat=False)
        self.emulator = emulator
        self.account: GatewayAccount = gateway_account_create(
            operator=self.operator,
            gateway="bkash",
            name="bKash",
            base_url=emulator.api_url,
            merchant_account=emulator.short_code,
            credentials=CREDENTIALS,
        )

    def subscriber(self) -> Subscriber:
        return make_subscriber(self.operator, self.package, operator_today(self.operator) - dt.timedelta(days=10))

    def checkout(self, subscriber: Subscriber, amount: Decimal) -> PaymentAttempt:
        return checkout_start(
            subscriber=subscriber,
            account=self.account,
            amount=amount,
            source=PaymentAttempt.Source.PORTAL,
            return_url="http://127.0.0.1:9/pay/{reference}/return/",
            notify_url="http://127.0.0.1:9/hooks/gateways/bkash/",
        )

    def paid(self, amount: Decimal = Decimal("800.00")) -> PaymentAttempt:
        """A checkout the payer paid and our return applied."""
        subscriber = self.subscriber()
        attempt = self.checkout(subscriber, amount)
        self.emulator.pay(attempt.gateway_payment_id)
        params = {"paymentID": attempt.gateway_payment_id, "status": "success"}
        applied = attempt_confirm(attempt_id=attempt.pk, params=params, via="return")
        assert applied.state == AttemptState.APPLIED, applied.review_reason
        return PaymentAttempt.objects.select_related("payment", "subscriber", "account").get(pk=attempt.pk)


def _refunded_at(emulator: BkashEmulator, attempt: PaymentAttempt) -> list[Decimal]:
    return [refund.amount for refund in emulator.payments[attempt.gateway_payment_id].refunds]


def _refund_entries(attempt: PaymentAttempt) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(subscriber_id=attempt.subscriber_id, memo__contains="Refund SR").order_by("pk")
    )


# -- refunds ---------------------------------------------------------------------------------------


def test_a_partial_refund_then_the_rest_each_confirmed_by_the_gateway_and_debited_once(bkash):
    shop = Shop(bkash)
    attempt = shop.paid()
    owed_after_paying = subscriber_balance(attempt.subscriber_id)

    first = refund_request(attempt=attempt, amount=Decimal("300.00"), reason="Paid twice by mistake", actor=None)
    assert first.state == RefundState.DONE and first.gateway_refund_id and first.entry_id is not None
    assert first.finished_at is not None and first.next_check_at is None
    assert refund_left(attempt) == Decimal("500.00")
    # A part is a debit of its own with the refund, the transaction and the reason named.
    entry = LedgerEntry.objects.get(pk=first.entry_id)
    assert entry.kind == EntryKind.ADJUSTMENT and entry.amount == Decimal("300.00")
    assert first.reference in entry.memo and attempt.transaction_id in entry.memo and "Paid twice" in entry.memo
    assert subscriber_balance(attempt.subscriber_id) == owed_after_paying + Decimal("300.00")

    rest = refund_request(attempt=attempt, amount=refund_left(attempt), reason="The rest", actor=None)
    assert rest.state == RefundState.DONE and rest.amount == Decimal("500.00")
    assert refund_left(attempt) == Decimal("0.00")
    assert _refunded_at(bkash, attempt) == [Decimal("300.00"), Decimal("500.00")]
    assert subscriber_balance(attempt.subscriber_id) == owed_after_paying + Decimal("800.00")
    assert [each.amount for each in _refund_entries(attempt)] == [Decimal("300.00"), Decimal("500.00")]
    # Confirmed by the refund status, not by the refund's own answer only.
    assert [name for name, _path in bkash.calls].count("refund") == 4

    with pytest.raises(RefundExceedsPayment):
        refund_request(attempt=attempt, amount=Decimal("0.01"), reason="One more paisa", actor=None)


def test_a_refund_of_the_whole_payment_reverses_its_entry_dated_today(bkash):
    shop = Shop(bkash)
    attempt = shop.paid()
    owed_before_paying = subscriber_balance(attempt.subscriber_id) + attempt.amount
    refund = refund_request(attempt=attempt, amount=attempt.amount, reason="Service never connected", actor=None)
    assert refund.state == RefundState.DONE and refund.entry is not None
    reversal = refund.entry
    assert reversal.kind == EntryKind.REVERSAL and reversal.amount == attempt.amount
    assert reversal.reverses_id == LedgerEntry.objects.get(payment=attempt.payment, kind=EntryKind.PAYMENT).pk
    assert reversal.effective_date == operator_today(shop.operator)
    assert subscriber_balance(attempt.subscriber_id) == owed_before_paying


def test_more_than_is_left_is_refused_before_the_gateway_is_asked(bkash):
    shop = Shop(bkash)
    attempt = shop.paid()
    asked = len(bkash.calls)
    with pytest.raises(RefundExceedsPayment, match=r"only 800\.00 is left"):
        refund_request(attempt=attempt, amount=Decimal("800.01"), reason="Too much", actor=None)
    with pytest.raises(RefundRefused, match="reason"):
        refund_request(attempt=attempt, amount=Decimal("1.00"), reason="  ", actor=None)
    assert len(bkash.calls) == asked and not GatewayRefund.objects.exists()

    open_attempt = shop.checkout(shop.subscriber(), Decimal("800.00"))
    with pytest.raises(RefundRefused, match="only an applied payment"):
        refund_request(attempt=open_attempt, amount=Decimal("1.00"), reason="Not paid", actor=None)


def test_the_database_refuses_refund_rows_over_the_bound_whoever_writes_them(bkash):
    shop = Shop(bkash)
    attempt = shop.paid()
    now = timezone.now()

    def row(amount: str, state: str = RefundState.PENDING, of: PaymentAttempt = attempt) -> GatewayRefund:
        finished = now if state in (RefundState.DONE, RefundState.FAILED) else None
        return GatewayRefund.objects.create(
            attempt=of,
            amount=Decimal(amount),
            reason="direct",
            reference=f"DIRECT{GatewayRefund.objects.count()}{amount}",
            state=state,
            requested_at=now,
            finished_at=finished,
        )

    with pytest.raises(IntegrityError, match="would exceed"), transaction.atomic():
        row("800.01")
    row("500.00", RefundState.DONE)
    with pytest.raises(IntegrityError, match="would exceed"), transaction.atomic():
        row("300.01")
    failed = row("800.00", RefundState.FAILED)  # a failed refund holds nothing
    row("300.00")
    # Turning the failed one back into a live refund passes the bound again, and is refused.
    with pytest.raises(IntegrityError, match="would exceed"), transaction.atomic():
        GatewayRefund.objects.filter(pk=failed.pk).update(state=RefundState.PENDING, finished_at=None)
    open_attempt = shop.checkout(shop.subscriber(), Decimal("800.00"))
    with pytest.raises(IntegrityError, match="not applied"), transaction.atomic():
        row("1.00", of=open_attempt)


def test_two_refunds_of_the_whole_amount_at_the_same_instant_refund_once(bkash):
    shop = Shop(bkash)
    attempt = shop.paid()
    results = run_at_once(
        lambda: refund_request(attempt=attempt, amount=attempt.amount, reason="first desk", actor=None),
        lambda: refund_request(attempt=attempt, amount=attempt.amount, reason="second desk", actor=None),
    )
    done = [result for result in results if isinstance(result, GatewayRefund)]
    refused = [result for result in results if isinstance(result, RefundRefused)]
    assert len(done) == 1 and len(refused) == 1, results
    assert done[0].state == RefundState.DONE
    assert _refunded_at(bkash, attempt) == [attempt.amount]
    assert GatewayRefund.objects.count() == 1 and len(_refund_entries(attempt)) == 1


def test_a_refund_whose_answer_is_lost_is_unknown_and_the_recheck_settles_it_once(bkash, settings):
    shop = Shop(bkash)
    attempt = shop.paid()
    settings.SONJOG_GATEWAY_TIMEOUT_SECONDS = 1.0
    bkash.fail_next("refund", "timeout_after")  # bKash refunds it, the answer never comes in time
    unknown = refund_request(attempt=attempt, amount=Decimal("200.00"), reason="Overpaid", actor=None)
    assert unknown.state == RefundState.UNKNOWN and unknown.next_check_at is not None
    assert "no answer" in unknown.last_error and unknown.entry_id is None
    assert _refunded_at(bkash, attempt) == [Decimal("200.00")]
    # While its fate is unknown, no other refund of the payment is started.
    with pytest.raises(RefundRefused, match="still"):
        refund_request(attempt=attempt, amount=Decimal("1.00"), reason="Another", actor=None)

    with time_machine.travel(unknown.next_check_at + dt.timedelta(seconds=1)):
        assert refunds_recheck()["done"] == 1
        again = job_run_now("automation.online_payment_recheck")
    assert again.outcome["refunds_checked"] == 0
    unknown.refresh_from_db()
    assert unknown.state == RefundState.DONE and unknown.gateway_refund_id and unknown.entry_id is not None
    assert [each.amount for each in _refund_entries(attempt)] == [Decimal("200.00")]
    assert _refunded_at(bkash, attempt) == [Decimal("200.00")]


def test_a_refund_that_never_reached_the_gateway_fails_on_the_recheck_and_holds_nothing(bkash, settings):
    shop = Shop(bkash)
    attempt = shop.paid()
    settings.SONJOG_GATEWAY_TIMEOUT_SECONDS = 1.0
    bkash.fail_next("refund", "timeout")  # held and dropped: bKash did nothing
    unknown = refund_request(attempt=attempt, amount=attempt.amount, reason="Overpaid", actor=None)
    assert unknown.state == RefundState.UNKNOWN and refund_left(attempt) == Decimal("0.00")
    assert unknown.next_check_at is not None
    with time_machine.travel(unknown.next_check_at + dt.timedelta(seconds=1)):
        assert refunds_recheck()["failed"] == 1
    unknown.refresh_from_db()
    assert unknown.state == RefundState.FAILED and "no record" in unknown.last_error
    assert refund_left(attempt) == attempt.amount and not _refund_entries(attempt)
    assert _refunded_at(bkash, attempt) == []


def test_sslcommerz_a_refund_still_processing_is_pending_until_its_status_says_refunded(bkash):
    ssl = SslcommerzEmulator(stores={"sonjo01": "sonjo01@ssl"}, refunds_instant=False).start()
    try:
        shop = Shop(bkash)
        shop.account = gateway_account_create(
            operator=shop.operator,
            gateway="sslcommerz",
            name="SSLCommerz",
            base_url=ssl.url,
            merchant_account="sonjo01",
            credentials={"store_id": "sonjo01", "store_password": "sonjo01@ssl"},
        )
        attempt = shop.checkout(shop.subscriber(), Decimal("800.00"))
        params = ssl.pay(attempt.gateway_payment_id)
        assert attempt_confirm(attempt_id=attempt.pk, params=params, via="return").state == AttemptState.APPLIED
        attempt.refresh_from_db()
        pending = refund_request(attempt=attempt, amount=Decimal("250.00"), reason="Downgrade", actor=None)
        assert pending.state == RefundState.PENDING and pending.gateway_refund_id
        assert pending.entry_id is None and pending.next_check_at is not None
        ssl.settle_refunds()
        with time_machine.travel(pending.next_check_at + dt.timedelta(seconds=1)):
            assert refunds_recheck()["done"] == 1
        pending.refresh_from_db()
        assert pending.state == RefundState.DONE and pending.entry_id is not None
        assert [each.amount for each in _refund_entries(attempt)] == [Decimal("250.00")]
    finally:
        ssl.stop()


# -- settlement ------------------------------------------------------------------------------------


def _foreign_payment(shop: Shop, amount: str) -> str:
    """A payment to the merchant that none of our attempts started (a checkout made outside Sonjog):
    created and executed at the emulator by the client itself. Its trxID."""
    client = BkashClient(credentials_of(shop.account), token_store=MemoryTokenStore())
    try:
        checkout = client.create(
            merchant_reference="OUTSIDE1",
            amount=Decimal(amount),
            currency="BDT",
            return_url="http://127.0.0.1:9/elsewhere/",
            notify_url="",
            payer_reference="walk-in",
        )
        shop.emulator.pay(checkout.gateway_payment_id)
        status = client.complete(
            checkout=checkout, params={"paymentID": checkout.gateway_payment_id, "status": "success"}
        )
    finally:
        client.close()
    assert status.state == State.PAID
    return status.transaction_id


def _applied_without_the_gateway(shop: Shop) -> PaymentAttempt:
    """An attempt marked applied whose transaction the gateway does not know: through the services
    every path uses (the attempt, the payment through the flow, the settling write), with a gateway
    answer that never came from the gateway: what a forged or mistaken confirmation would leave."""
    subscriber = shop.subscriber()
    attempt = attempt_create(subscriber=subscriber, account=shop.account, amount=Decimal("800.00"), source="staff")
    payment = payment_receive(
        subscriber=subscriber,
        amount=attempt.amount,
        method="bkash",
        reference="GHOSTTRX01",
        gateway="bkash",
        gateway_transaction_id="GHOSTTRX01",
    )
    status = Status(
        state=State.PAID,
        merchant_reference=attempt.merchant_reference,
        transaction_id="GHOSTTRX01",
        amount=attempt.gross,
        currency=attempt.currency,
    )
    attempt_settle(attempt, Verdict(AttemptState.APPLIED), status, timezone.now(), payment.pk)
    return attempt


def test_settlement_applies_a_payment_left_open_and_reports_what_is_missing_both_ways(bkash, settings):
    shop = Shop(bkash)
    applied = shop.paid()
    # Paid at bKash, our side never heard back: the execute's answer was lost, the attempt is open.
    left_open = shop.checkout(shop.subscriber(), Decimal("800.00"))
    bkash.pay(left_open.gateway_payment_id)
    settings.SONJOG_GATEWAY_TIMEOUT_SECONDS = 1.0
    bkash.fail_next("execute", "timeout_after")
    params = {"paymentID": left_open.gateway_payment_id, "status": "success"}
    assert attempt_confirm(attempt_id=left_open.pk, params=params, via="return").state == AttemptState.UNKNOWN
    settings.SONJOG_GATEWAY_TIMEOUT_SECONDS = 10.0
    foreign = _foreign_payment(shop, "450.00")
    ghost = _applied_without_the_gateway(shop)

    check = settlement_check(account=shop.account, day=operator_today(shop.operator))
    assert check.error == ""
    left_open.refresh_from_db()
    assert left_open.state == AttemptState.APPLIED and left_open.payment is not None
    assert check.gateway_count == 3  # ours, the one left open, the foreign one
    assert check.applied_count == 3  # ours, the one the check applied, the ghost
    assert [(item["transaction_id"], item["amount"], item["attempt"]) for item in check.paid_not_applied] == [
        (foreign, "450.00", None)
    ]
    assert [(item["attempt"], item["transaction_id"]) for item in check.applied_not_paid] == [(ghost.pk, "GHOSTTRX01")]
    assert applied.transaction_id not in {item["transaction_id"] for item in check.applied_not_paid}
    # The dashboard's figure counts the foreign payment the latest check found.
    assert seen_not_applied_count([shop.operator.pk]) == 1
    assert seen_not_applied_count([make_operator().pk]) == 0


def test_a_gateway_that_cannot_be_asked_leaves_a_check_with_the_reason(bkash):
    shop = Shop(bkash)
    bkash.fail_next("transactions", "error")
    check = settlement_check(account=shop.account, day=operator_today(shop.operator))
    assert check.error and check.paid_not_applied == [] and check.applied_not_paid == []


@pytest.mark.parametrize(
    ("paid_at", "day"),
    [
        # 23:30 in Dhaka on the last day of January: January's, while the server's clock is in UTC.
        (dt.datetime(2027, 1, 31, 23, 30, tzinfo=DHAKA), dt.date(2027, 1, 31)),
        # 00:30 in Dhaka on 1 February, 18:30 on 31 January in UTC: February's.
        (dt.datetime(2027, 2, 1, 0, 30, tzinfo=DHAKA), dt.date(2027, 2, 1)),
    ],
    ids=["23:30-dhaka-month-end", "00:30-dhaka-next-month"],
)
def test_a_payment_belongs_to_its_day_in_dhaka_on_both_sides(bkash, settings, paid_at, day):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(paid_at, tick=True):
        shop = Shop(bkash)
        attempt = shop.paid()
        assert attempt.payment is not None
        assert timezone.localtime(attempt.payment.received_at, DHAKA).date() == day
        mine = settlement_check(account=shop.account, day=day)
        before = settlement_check(account=shop.account, day=day - dt.timedelta(days=1))
        after = settlement_check(account=shop.account, day=day + dt.timedelta(days=1))
    assert (mine.gateway_count, mine.applied_count, mine.paid_not_applied, mine.applied_not_paid) == (1, 1, [], [])
    for other in (before, after):
        assert (other.gateway_count, other.applied_count, other.paid_not_applied, other.applied_not_paid) == (
            0,
            0,
            [],
            [],
        )


def test_the_nightly_job_checks_yesterday_for_every_active_account(bkash):
    with time_machine.travel(dt.datetime(2027, 1, 31, 23, 30, tzinfo=DHAKA), tick=True):
        shop = Shop(bkash)
        shop.paid()
        foreign = _foreign_payment(shop, "100.00")
        idle = gateway_account_create(
            operator=shop.operator,
            gateway="bkash",
            name="Switched off",
            base_url=bkash.api_url,
            merchant_account="01700000001",
            credentials=CREDENTIALS,
        )
        GatewayAccount.objects.filter(pk=idle.pk).update(active=False)
    # 02:30 in Dhaka the next morning, when the job runs (20:30 UTC).
    with time_machine.travel(dt.datetime(2027, 2, 1, 2, 30, tzinfo=DHAKA), tick=True):
        counts = settlements_check_nightly()
        run = job_run_now("automation.online_settlement")
    assert counts == {"accounts": 1, "paid_not_applied": 1, "applied_not_paid": 0, "errors": 0}
    assert run.outcome["accounts"] == 1
    checks = SettlementCheck.objects.filter(account=shop.account)
    assert {check.day for check in checks} == {dt.date(2027, 1, 31)}
    latest = checks.first()
    assert latest is not None and latest.paid_not_applied[0]["transaction_id"] == foreign
    assert not SettlementCheck.objects.filter(account=idle).exists()
