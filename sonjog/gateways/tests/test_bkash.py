"""The bKash client against the bKash emulator over real HTTP on 127.0.0.1: tokens shared and
refreshed, a payment from create to execute (and the payer's page), timeouts whose outcome only the
status query tells, refunds, the daily listing and the signed webhook. No database.

Both the client and the emulator run on one hand-moved clock, starting at 00:30 on 1 April in Dhaka,
which is still 31 March in UTC: the daily listing must count in bKash's calendar."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sonjog.gateways.clients.base import (
    Checkout,
    Credentials,
    GatewayError,
    GatewayTimeout,
    MemoryTokenStore,
    State,
)
from sonjog.gateways.clients.bkash import BkashClient, webhook_message_valid, webhook_payment
from sonjog.gateways.emulator.bkash import LOW_BALANCE_WALLET, PAYER_PIN, BkashEmulator
from sonjog.gateways.emulator.http import EmulatorServer, Request, Response

ACCOUNT = {
    "username": "sonjog-merchant",
    "password": "merchant-pass-1",
    "app_key": "app-key-0011",
    "app_secret": "app-secret-0011",
}
SHORT_CODE = "01700000000"
RETURN_URL = "http://127.0.0.1:9/payments/bkash/return?attempt=7"
START = dt.datetime(2026, 3, 31, 18, 30, tzinfo=dt.UTC)  # 00:30 on 1 April in Dhaka


class ManualClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Merchant(EmulatorServer):
    """The merchant's webhook endpoint: keeps every message bKash posts."""

    name = "merchant"

    def routes(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.route("POST", "/bkash/webhook", self._webhook)

    def _webhook(self, request: Request) -> Response:
        with self.lock:
            self.received.append(json.loads(request.body))
        return Response(status=200, content_type="text/plain")

    def wait_for(self, count: int, seconds: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{count} webhook(s) expected, {len(self.received)} arrived")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    server = Merchant()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def emulator(clock: ManualClock, merchant: Merchant) -> Iterator[BkashEmulator]:
    server = BkashEmulator(
        username=ACCOUNT["username"],
        password=ACCOUNT["password"],
        app_key=ACCOUNT["app_key"],
        app_secret=ACCOUNT["app_secret"],
        clock=clock,
        short_code=SHORT_CODE,
        webhook_url=f"{merchant.url}/bkash/webhook",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


def make_client(emulator: BkashEmulator, store: MemoryTokenStore, clock: ManualClock, **values: str) -> BkashClient:
    credentials = Credentials(base_url=emulator.api_url, values={**ACCOUNT, **values}, merchant_account=SHORT_CODE)
    return BkashClient(credentials, token_store=store, timeout=1.0, clock=clock)


@pytest.fixture
def client(emulator: BkashEmulator, store: MemoryTokenStore, clock: ManualClock) -> Iterator[BkashClient]:
    with make_client(emulator, store, clock) as made:
        yield made


def calls(emulator: BkashEmulator, operation: str) -> int:
    return sum(1 for name, _ in emulator.calls if name == operation)


def create(client: BkashClient, reference: str = "INV-1", amount: str = "500.00") -> Checkout:
    return client.create(
        merchant_reference=reference,
        amount=Decimal(amount),
        currency="BDT",
        return_url=RETURN_URL,
        notify_url="http://127.0.0.1:9/unused",
        payer_reference="C-1001",
    )


def paid(client: BkashClient, emulator: BkashEmulator, reference: str = "INV-1", amount: str = "500.00") -> Any:
    checkout = create(client, reference, amount)
    emulator.pay(checkout.gateway_payment_id)
    return client.complete(checkout=checkout, params={"paymentID": checkout.gateway_payment_id, "status": "success"})


# -- tokens -------------------------------------------------------------------------------------------
def test_one_grant_serves_every_client_sharing_the_store(emulator, store, clock):
    with make_client(emulator, store, clock) as first, make_client(emulator, store, clock) as second:
        create(first, "INV-1")
        create(second, "INV-2")
        create(first, "INV-3")
    assert calls(emulator, "grant") == 1
    assert calls(emulator, "create") == 3
    assert len(emulator.payments) == 3


def test_the_token_is_refreshed_before_it_expires_and_after(client, emulator, clock):
    create(client, "INV-1")
    clock.advance(minutes=57)  # three minutes left: within the margin, so refreshed before use
    create(client, "INV-2")
    assert (calls(emulator, "grant"), calls(emulator, "refresh")) == (1, 1)
    clock.advance(hours=2)  # long expired: the refresh token still gets a new one, no new grant
    create(client, "INV-3")
    assert (calls(emulator, "grant"), calls(emulator, "refresh")) == (1, 2)
    assert calls(emulator, "create") == 3  # no call was refused for its token


def test_a_token_bkash_refuses_is_dropped_and_granted_again_once(client, emulator, store, clock):
    expires = clock() + dt.timedelta(hours=1)
    stale = {"id_token": "forgotten-by-bkash", "refresh_token": "", "id_token_expires_at": expires.isoformat()}
    store.put(client.token_key, stale, expires)
    create(client, "INV-1")
    assert calls(emulator, "grant") == 1
    assert calls(emulator, "create") == 2  # refused with 401, then accepted with the new token
    assert store.get(client.token_key, clock())["id_token"] != "forgotten-by-bkash"


def test_wrong_credentials_are_refused_with_bkashs_code(emulator, store, clock):
    with make_client(emulator, store, clock, password="not-the-password") as wrong_password:
        with pytest.raises(GatewayError) as refused:
            create(wrong_password)
        assert not isinstance(refused.value, GatewayTimeout)
        assert refused.value.code == "2079"
    with make_client(emulator, MemoryTokenStore(), clock, app_key="someone-elses-key") as wrong_key:
        with pytest.raises(GatewayError) as refused:
            create(wrong_key)
        assert refused.value.code == "2001"
        assert str(refused.value) == "Invalid App Key"
    assert calls(emulator, "create") == 0


# -- payments -----------------------------------------------------------------------------------------
def test_create_pay_execute_is_paid(client, emulator, clock):
    checkout = create(client, "INV-1", "500.00")
    assert checkout.gateway_payment_id.startswith("TR0011")
    assert checkout.redirect_url.startswith(f"{emulator.url}/redirect/tokenized/?paymentID=")
    assert client.status(merchant_reference="INV-1", gateway_payment_id=checkout.gateway_payment_id).state == (
        State.PENDING
    )
    emulator.pay(checkout.gateway_payment_id, wallet="01812345678")
    status = client.complete(checkout=checkout, params={"paymentID": checkout.gateway_payment_id, "status": "success"})
    assert status.state == State.PAID
    assert status.merchant_reference == "INV-1"
    assert status.gateway_payment_id == checkout.gateway_payment_id
    assert len(status.transaction_id) == 10
    assert status.transaction_id == emulator.payments[checkout.gateway_payment_id].trx_id
    assert (status.amount, status.currency) == (Decimal("500.00"), "BDT")
    assert status.payer == "01812345678"
    assert status.merchant_account == SHORT_CODE
    assert status.paid_at == clock()
    assert status.raw["paymentExecuteTime"] == "2026-04-01T00:30:00:000 GMT+0600"


def test_complete_twice_answers_paid_again(client, emulator):
    checkout = create(client)
    emulator.pay(checkout.gateway_payment_id)
    params = {"paymentID": checkout.gateway_payment_id, "status": "success"}
    first = client.complete(checkout=checkout, params=params)
    second = client.complete(checkout=checkout, params=params)
    assert first.state == second.state == State.PAID
    assert second.transaction_id == first.transaction_id
    assert second.amount == Decimal("500.00")
    assert calls(emulator, "execute") == 2 and calls(emulator, "status") == 1


def test_cancelled_failed_and_expired_payments_are_failed(client, emulator):
    cancelled = create(client, "INV-1")
    with httpx.Client() as browser:
        answer = browser.post(
            f"{emulator.url}/redirect/tokenized/",
            data={"paymentID": cancelled.gateway_payment_id, "wallet": "", "pin": "", "action": "cancel"},
        )
    assert answer.status_code == 302
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))
    assert query["status"] == "cancel"
    status = client.complete(checkout=cancelled, params=query)
    assert status.state == State.FAILED and status.raw["transactionStatus"] == "Cancelled"
    assert calls(emulator, "execute") == 0  # the browser's word is checked, not acted on

    expired = create(client, "INV-2")
    emulator.expire(expired.gateway_payment_id)
    assert client.status(merchant_reference="INV-2", gateway_payment_id=expired.gateway_payment_id).state == (
        State.FAILED
    )

    # A browser claiming success on a payment nobody confirmed: bKash refuses the execute.
    unconfirmed = create(client, "INV-3")
    with pytest.raises(GatewayError) as refused:
        client.complete(checkout=unconfirmed, params={"status": "success"})
    assert refused.value.code == "2056"


def test_a_wrong_pin_fails_the_payment_and_insufficient_balance_is_refused(client, emulator):
    wrong_pin = create(client, "INV-1")
    with httpx.Client() as browser:
        answer = browser.post(
            f"{emulator.url}/redirect/tokenized/",
            data={
                "paymentID": wrong_pin.gateway_payment_id,
                "wallet": "01770618575",
                "pin": "99999",
                "action": "confirm",
            },
        )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["location"]).query))
    assert query["status"] == "failure"
    assert client.complete(checkout=wrong_pin, params=query).state == State.FAILED

    poor = create(client, "INV-2")
    emulator.pay(poor.gateway_payment_id, wallet=LOW_BALANCE_WALLET)
    with pytest.raises(GatewayError) as refused:
        client.complete(checkout=poor, params={"paymentID": poor.gateway_payment_id, "status": "success"})
    assert (refused.value.code, str(refused.value)) == ("2023", "Insufficient Balance")
    assert client.status(merchant_reference="INV-2", gateway_payment_id=poor.gateway_payment_id).state == State.FAILED


def test_an_invoice_paid_once_is_refused_as_duplicate_and_bad_amounts_never_leave(client, emulator):
    paid(client, emulator, "INV-1")
    with pytest.raises(GatewayError) as refused:
        create(client, "INV-1")
    assert refused.value.code == "2029"
    with pytest.raises(ValueError):
        create(client, "INV-2", "10.005")
    with pytest.raises(GatewayError) as refused:
        client.create(
            merchant_reference="INV-3",
            amount=Decimal("10.00"),
            currency="USD",
            return_url=RETURN_URL,
            notify_url="",
            payer_reference="C-1",
        )
    assert refused.value.code == "2007"


def test_a_payment_bkash_does_not_know_is_unknown(client):
    status = client.status(merchant_reference="INV-9", gateway_payment_id="TR0011NOSUCH")
    assert status.state == State.UNKNOWN
    assert client.status(merchant_reference="INV-9", gateway_payment_id="").state == State.UNKNOWN


def test_the_payer_page_confirms_over_http(client, emulator):
    checkout = create(client, "INV-42", "750.50")
    with httpx.Client() as browser:
        page = browser.get(checkout.redirect_url)
        assert page.status_code == 200
        assert "Sonjog Demo ISP" in page.text and "750.50" in page.text and "INV-42" in page.text
        assert 'name="wallet"' in page.text and 'name="pin"' in page.text
        assert ">Confirm</button>" in page.text and ">Cancel</button>" in page.text
        answer = browser.post(
            f"{emulator.url}/redirect/tokenized/",
            data={
                "paymentID": checkout.gateway_payment_id,
                "wallet": "01770618575",
                "pin": PAYER_PIN,
                "action": "confirm",
            },
        )
        assert answer.status_code == 302
        location = urllib.parse.urlsplit(answer.headers["location"])
        query = dict(urllib.parse.parse_qsl(location.query))
        assert location._replace(query="").geturl() == RETURN_URL.split("?")[0]
        assert query == {"attempt": "7", "paymentID": checkout.gateway_payment_id, "status": "success"}
        assert browser.get(checkout.redirect_url).status_code == 409  # no second confirm
    status = client.complete(checkout=checkout, params=query)
    assert (status.state, status.amount) == (State.PAID, Decimal("750.50"))


# -- timeouts -----------------------------------------------------------------------------------------
def test_an_execute_that_times_out_is_unknown_until_status_tells(client, emulator):
    checkout = create(client)
    emulator.pay(checkout.gateway_payment_id)
    emulator.fail_next("execute", "timeout")
    params = {"paymentID": checkout.gateway_payment_id, "status": "success"}
    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        client.complete(checkout=checkout, params=params)
    assert time.monotonic() - started < 2.0  # the client's 1 s, not the emulator's 12 s hold
    truth = client.status(merchant_reference="INV-1", gateway_payment_id=checkout.gateway_payment_id)
    assert truth.state == State.PENDING and not truth.transaction_id
    assert client.complete(checkout=checkout, params=params).state == State.PAID


def test_an_execute_done_but_unanswered_shows_paid_in_status(client, emulator, merchant):
    checkout = create(client)
    emulator.pay(checkout.gateway_payment_id)
    emulator.fail_next("execute", "timeout_after")
    with pytest.raises(GatewayTimeout):
        client.complete(checkout=checkout, params={"paymentID": checkout.gateway_payment_id, "status": "success"})
    truth = client.status(merchant_reference="INV-1", gateway_payment_id=checkout.gateway_payment_id)
    assert truth.state == State.PAID
    assert truth.transaction_id == emulator.payments[checkout.gateway_payment_id].trx_id
    again = client.complete(checkout=checkout, params={"paymentID": checkout.gateway_payment_id, "status": "success"})
    assert again.state == State.PAID and again.transaction_id == truth.transaction_id


def test_a_dropped_connection_is_a_timeout_and_a_500_is_an_error(client, emulator):
    checkout = create(client)
    emulator.fail_next("status", "drop")
    with pytest.raises(GatewayTimeout):
        client.status(merchant_reference="INV-1", gateway_payment_id=checkout.gateway_payment_id)
    emulator.fail_next("status", "error")
    with pytest.raises(GatewayError) as refused:
        client.status(merchant_reference="INV-1", gateway_payment_id=checkout.gateway_payment_id)
    assert not isinstance(refused.value, GatewayTimeout) and refused.value.code == "500"


# -- refunds ------------------------------------------------------------------------------------------
def test_partial_refunds_are_bounded_by_what_is_left(client, emulator):
    status = paid(client, emulator, "INV-1", "500.00")
    first = client.refund(status=status, amount=Decimal("100.00"), reason="Double payment", refund_reference="R-1")
    second = client.refund(status=status, amount=Decimal("150.00"), reason="Outage", refund_reference="R-2")
    assert (first.state, first.amount) == (State.PAID, Decimal("100.00"))
    assert (second.state, second.amount) == (State.PAID, Decimal("150.00"))
    assert first.refund_id != second.refund_id
    assert first.raw["originalTrxID"] == status.transaction_id
    with pytest.raises(GatewayError) as refused:
        client.refund(status=status, amount=Decimal("250.01"), reason="Too much", refund_reference="R-3")
    assert refused.value.code == "2026"
    latest = client.refund_status(status=status, refund_reference="R-2")
    assert (latest.state, latest.refund_id, latest.amount) == (State.PAID, second.refund_id, Decimal("150.00"))
    rest = client.refund(status=status, amount=Decimal("250.00"), reason="The rest", refund_reference="R-3")
    assert rest.state == State.PAID
    assert emulator.payments[status.gateway_payment_id].refunded == Decimal("500.00")
    assert [refund.sku for refund in emulator.payments[status.gateway_payment_id].refunds] == ["R-1", "R-2", "R-3"]


# -- searching ----------------------------------------------------------------------------------------
def test_search_lists_the_days_payments_in_dhaka(client, emulator, clock):
    one = paid(client, emulator, "INV-1", "500.00")
    clock.advance(hours=23)  # 23:30 in Dhaka, still 1 April
    two = paid(client, emulator, "INV-2", "1200.00")
    create(client, "INV-3")  # never paid: not in the listing
    clock.advance(hours=1)  # 00:30 on 2 April in Dhaka
    paid(client, emulator, "INV-4", "300.00")
    found = client.search(day=dt.date(2026, 4, 1))
    assert [(s.merchant_reference, s.transaction_id, s.amount) for s in found] == [
        ("INV-1", one.transaction_id, Decimal("500.00")),
        ("INV-2", two.transaction_id, Decimal("1200.00")),
    ]
    assert all(s.state == State.PAID and s.merchant_account == SHORT_CODE for s in found)
    assert found[0].paid_at == START
    assert client.search(day=dt.date(2026, 3, 31)) == []  # the UTC date of the first two
    assert [s.merchant_reference for s in client.search(day=dt.date(2026, 4, 2))] == ["INV-4"]


def test_search_transaction_by_trx_id(client, emulator):
    status = paid(client, emulator, "INV-1", "500.00")
    found = client.search_transaction(trx_id=status.transaction_id)
    assert (found.state, found.transaction_id, found.amount) == (State.PAID, status.transaction_id, Decimal("500.00"))
    assert (found.merchant_account, found.payer) == (SHORT_CODE, "01770618575")
    with pytest.raises(GatewayError) as refused:
        client.search_transaction(trx_id="NOSUCHTRX1")
    assert refused.value.code == "2033"


# -- the webhook --------------------------------------------------------------------------------------
def fetch(url: str) -> bytes:
    answer = httpx.get(url, timeout=2.0)
    answer.raise_for_status()
    return answer.content


def test_the_webhook_is_signed_and_a_tampered_one_is_not(client, emulator, merchant):
    status = paid(client, emulator, "INV-1", "500.00")
    (message,) = merchant.wait_for(1)
    assert message["Type"] == "Notification" and message["SignatureVersion"] == "2"
    assert webhook_payment(message)["trxID"] == status.transaction_id
    assert webhook_payment(message)["amount"] == "500.00"
    assert webhook_message_valid(message, fetch_certificate=fetch, allowed_cert_hosts={"127.0.0.1"})

    payload = webhook_payment(message) | {"amount": "5000.00"}
    tampered = message | {"Message": json.dumps(payload, separators=(",", ":"))}
    assert not webhook_message_valid(tampered, fetch_certificate=fetch, allowed_cert_hosts={"127.0.0.1"})
    assert not webhook_message_valid(
        message | {"Signature": "not base64!"}, fetch_certificate=fetch, allowed_cert_hosts={"127.0.0.1"}
    )


def test_a_certificate_from_a_host_not_allowed_is_never_fetched(client, emulator, merchant):
    paid(client, emulator)
    (message,) = merchant.wait_for(1)
    fetched: list[str] = []

    def recording_fetch(url: str) -> bytes:
        fetched.append(url)
        return fetch(url)

    amazon = {"sns.ap-southeast-1.amazonaws.com"}
    assert not webhook_message_valid(message, fetch_certificate=recording_fetch, allowed_cert_hosts=amazon)
    elsewhere = message | {"SigningCertURL": "https://sns.ap-southeast-1.amazonaws.com.evil.test/cert.pem"}
    assert not webhook_message_valid(elsewhere, fetch_certificate=recording_fetch, allowed_cert_hosts=amazon)
    not_a_pem = message | {"SigningCertURL": f"{emulator.url}/redirect/tokenized/"}
    assert not webhook_message_valid(not_a_pem, fetch_certificate=recording_fetch, allowed_cert_hosts={"127.0.0.1"})
    assert fetched == []


def test_signature_version_1_and_a_webhook_delivered_twice_late(client, emulator, merchant):
    emulator.signature_version = "1"
    emulator.notify_times, emulator.notify_delay = 2, 0.3
    paid(client, emulator)
    assert merchant.received == []  # not yet: it comes late
    first, second = merchant.wait_for(2)
    assert first == second
    assert first["SignatureVersion"] == "1"
    assert webhook_message_valid(first, fetch_certificate=fetch, allowed_cert_hosts={"127.0.0.1"})
    assert [status for _, status in emulator.notifications] == [200, 200]
