"""Online payments settle once, from the gateway's own answer, whichever path asks and however often:
the browser's return, notifications that come twice and late, a staff member's check and the
recheck. Against the bKash emulator over real HTTP; the other gateways in test_gateway_flows_*."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from sonjog.billing.models import Payment
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.enforcement import overdue_sweep
from sonjog.flows.gateways import attempt_confirm, attempts_recheck, checkout_start
from sonjog.gateways.emulator.bkash import BkashEmulator
from sonjog.gateways.fees import fee_on
from sonjog.gateways.models import AttemptState, FeeMode, GatewayAccount, PaymentAttempt
from sonjog.gateways.services import gateway_account_create
from sonjog.network.models import OutboxCommand, Router

pytestmark = pytest.mark.django_db(transaction=True)

CREDENTIALS = {"username": "sandbox", "password": "pw-1", "app_key": "key-1", "app_secret": "secret-1"}


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
    def __init__(self, emulator: BkashEmulator, **account: object) -> None:
        self.operator = make_operator(vat_rate=Decimal("0"), grace_days=3, due_days=7)
        self.package = make_package(self.operator, "800.00", vat=False)
        self.router = Router.objects.create(operator=self.operator, name="core", address="127.0.0.1", record_only=True)
        self.account: GatewayAccount = gateway_account_create(
            operator=self.operator,
            gateway="bkash",
            name="bKash",
            base_url=emulator.api_url,
            merchant_account=emulator.short_code,
            credentials=CREDENTIALS,
            **account,  # type: ignore[arg-type]
        )
        self.emulator = emulator

    def suspended(self) -> Subscriber:
        subscriber = make_subscriber(self.operator, self.package, operator_today(self.operator) - dt.timedelta(days=45))
        Subscriber.objects.filter(pk=subscriber.pk).update(router=self.router)
        assert subscriber.pk in overdue_sweep(operator=self.operator)["subscriber_ids"]
        subscriber.refresh_from_db()
        assert subscriber.service_intent == ServiceIntent.SUSPENDED
        return subscriber

    def checkout(self, subscriber: Subscriber, amount: Decimal | None = None) -> PaymentAttempt:
        owed = subscriber_balance(subscriber.pk)
        return checkout_start(
            subscriber=subscriber,
            account=self.account,
            amount=amount or owed,
            source=PaymentAttempt.Source.SUSPENSION,
            return_url="http://127.0.0.1:8000/pay/{reference}/return/",
            notify_url="http://127.0.0.1:8000/hooks/gateways/bkash/",
        )


def _return_params(attempt: PaymentAttempt, status: str = "success") -> dict[str, str]:
    return {"paymentID": attempt.gateway_payment_id, "status": status, "signature": "x"}


def test_a_return_then_two_late_notifications_record_one_payment_and_reconnect(bkash):
    shop = Shop(bkash)
    subscriber = shop.suspended()
    attempt = shop.checkout(subscriber)
    assert attempt.state == AttemptState.PENDING and attempt.redirect_url.startswith(bkash.url)
    bkash.pay(attempt.gateway_payment_id)

    settled = attempt_confirm(attempt_id=attempt.pk, params=_return_params(attempt), via="return")
    assert settled.state == AttemptState.APPLIED
    for _ in range(2):  # the webhook, twice, after the return settled it
        assert attempt_confirm(attempt_id=attempt.pk, via="webhook").state == AttemptState.APPLIED
    payment = Payment.objects.get(subscriber=subscriber)
    assert payment.gateway == "bkash" and payment.gateway_transaction_id == settled.transaction_id
    assert payment.amount == attempt.amount and payment.method == "bkash"
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE
    assert OutboxCommand.objects.filter(subscriber=subscriber).exists()
    assert subscriber_balance(subscriber.pk) <= 0


def test_a_return_a_notification_and_the_recheck_at_the_same_instant_record_one_payment(bkash):
    shop = Shop(bkash)
    subscriber = shop.suspended()
    attempt = shop.checkout(subscriber)
    bkash.pay(attempt.gateway_payment_id)
    results = run_at_once(
        lambda: attempt_confirm(attempt_id=attempt.pk, params=_return_params(attempt), via="return"),
        lambda: attempt_confirm(attempt_id=attempt.pk, params=_return_params(attempt), via="webhook"),
        lambda: attempt_confirm(attempt_id=attempt.pk, via="recheck"),
    )
    assert all(isinstance(result, PaymentAttempt) for result in results), results
    assert Payment.objects.filter(subscriber=subscriber).count() == 1
    assert [call for call, _path in bkash.calls].count("execute") == 1


def test_an_execute_that_times_out_ends_unknown_and_the_recheck_applies_it(bkash, settings):
    shop = Shop(bkash)
    subscriber = shop.suspended()
    attempt = shop.checkout(subscriber)
    bkash.pay(attempt.gateway_payment_id)
    bkash.fail_next("execute", "timeout_after")  # bKash completes it, the answer never comes in time
    settings.SONJOG_GATEWAY_TIMEOUT_SECONDS = 1.0
    unknown = attempt_confirm(attempt_id=attempt.pk, params=_return_params(attempt), via="return")
    assert unknown.state == AttemptState.UNKNOWN and unknown.next_check_at is not None
    assert not Payment.objects.filter(subscriber=subscriber).exists()

    with time_machine.travel(unknown.next_check_at + dt.timedelta(seconds=1)):
        counts = attempts_recheck()
    assert counts["applied"] == 1
    assert Payment.objects.filter(subscriber=subscriber).count() == 1


def test_an_amount_the_gateway_reports_differently_is_parked_not_applied(bkash):
    shop = Shop(bkash)
    subscriber = shop.suspended()
    attempt = shop.checkout(subscriber)
    bkash.pay(attempt.gateway_payment_id)
    # Our side expected more than the checkout the gateway holds: the answer must not be trusted.
    PaymentAttempt.objects.filter(pk=attempt.pk).update(gross=attempt.gross + Decimal("1.00"))
    parked = attempt_confirm(attempt_id=attempt.pk, params=_return_params(attempt), via="return")
    assert parked.state == AttemptState.REVIEW
    assert "amount" in parked.review_reason
    assert not Payment.objects.filter(subscriber=subscriber).exists()
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.SUSPENDED


def test_a_cancelled_checkout_fails_and_records_nothing(bkash):
    shop = Shop(bkash)
    subscriber = shop.suspended()
    attempt = shop.checkout(subscriber)
    failed = attempt_confirm(attempt_id=attempt.pk, params=_return_params(attempt, "cancel"), via="return")
    assert failed.state in (AttemptState.FAILED, AttemptState.PENDING)
    assert not Payment.objects.filter(subscriber=subscriber).exists()


def test_a_passed_on_fee_is_grossed_up_and_the_subscriber_is_credited_what_was_owed(bkash):
    shop = Shop(bkash, fee_rate=Decimal("1.850"), fee_mode=FeeMode.PASSED_ON)
    subscriber = shop.suspended()
    attempt = shop.checkout(subscriber)
    assert attempt.gross - attempt.fee >= attempt.amount == subscriber_balance(subscriber.pk)
    assert attempt.fee == fee_on(attempt.gross, Decimal("1.850"))
    less = attempt.gross - Decimal("0.01")
    assert less - fee_on(less, Decimal("1.850")) < attempt.amount  # and no smaller gross would do
    bkash.pay(attempt.gateway_payment_id)
    assert attempt_confirm(attempt_id=attempt.pk, params=_return_params(attempt), via="return").state == "applied"
    assert Payment.objects.get(subscriber=subscriber).amount == attempt.amount


def test_an_attempt_nobody_comes_back_to_is_escalated_after_48_hours(bkash):
    shop = Shop(bkash)
    subscriber = shop.suspended()
    attempt = shop.checkout(subscriber)
    start = timezone.now()
    with time_machine.travel(start + dt.timedelta(hours=49)):
        attempts_recheck()
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.ESCALATED


def _nagad_keys() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_nagad_a_paid_checkout_confirmed_by_the_return_and_by_the_recheck_records_one_payment(bkash):
    import urllib.parse

    from sonjog.gateways.emulator.nagad import NagadEmulator

    nagad = NagadEmulator().start()
    try:
        private, public = _nagad_keys()
        nagad.add_merchant("683002007104225", public)
        shop = Shop(bkash)
        shop.account = gateway_account_create(
            operator=shop.operator,
            gateway="nagad",
            name="Nagad",
            base_url=nagad.url,
            merchant_account="683002007104225",
            credentials={
                "merchant_id": "683002007104225",
                "merchant_private_key": private,
                "gateway_public_key": nagad.public_key_pem,
            },
        )
        subscriber = shop.suspended()
        attempt = shop.checkout(subscriber)
        assert attempt.state == AttemptState.PENDING, attempt.last_error
        callback = nagad.pay(attempt.gateway_payment_id)
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))
        assert attempt_confirm(attempt_id=attempt.pk, params=params, via="return").state == AttemptState.APPLIED
        assert attempt_confirm(attempt_id=attempt.pk, via="recheck").state == AttemptState.APPLIED
        payment = Payment.objects.get(subscriber=subscriber)
        assert payment.method == "nagad" and payment.amount == attempt.amount
        subscriber.refresh_from_db()
        assert subscriber.service_intent == ServiceIntent.ACTIVE
    finally:
        nagad.stop()


def test_sslcommerz_the_return_and_two_ipns_record_one_payment_and_a_risky_one_is_parked(bkash):
    from sonjog.gateways.emulator.sslcommerz import SslcommerzEmulator

    ssl = SslcommerzEmulator(stores={"sonjo01": "sonjo01@ssl"}).start()
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
        subscriber = shop.suspended()
        attempt = shop.checkout(subscriber)
        assert attempt.state == AttemptState.PENDING, attempt.last_error
        params = ssl.pay(attempt.gateway_payment_id)
        for via in ("return", "ipn", "ipn"):
            assert attempt_confirm(attempt_id=attempt.pk, params=params, via=via).state == AttemptState.APPLIED
        assert Payment.objects.filter(subscriber=subscriber).count() == 1
        assert Payment.objects.get(subscriber=subscriber).method == "card"

        other = shop.suspended()
        risky = shop.checkout(other)
        ssl.risky(risky.merchant_reference)
        params = ssl.pay(risky.gateway_payment_id)
        parked = attempt_confirm(attempt_id=risky.pk, params=params, via="return")
        assert parked.state == AttemptState.REVIEW and "risk" in parked.review_reason
        assert not Payment.objects.filter(subscriber=other).exists()
    finally:
        ssl.stop()
