"""The SSLCommerz client against the SSLCommerz emulator, over real HTTP on 127.0.0.1: sessions, the
payment page, validation, the transaction query, signed IPNs delivered to a real listener, risk,
timeouts, refunds and the settlement listing on the Dhaka calendar. No database."""

from __future__ import annotations

import datetime as dt
import hashlib
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine

from sonjog.gateways.clients.base import Checkout, Credentials, GatewayError, GatewayTimeout, State, Status
from sonjog.gateways.clients.sslcommerz import SslcommerzClient, ipn_signature_valid, signing_digest
from sonjog.gateways.emulator.sslcommerz import PAGE_PATH, PAY_PATH, SslcommerzEmulator

DHAKA = ZoneInfo("Asia/Dhaka")
STORE_ID = "sonjogtest01"
STORE_PASSWORD = "sonjogtest01@ssl"
OTHER_STORE, OTHER_PASSWORD = "otherstore02", "otherstore02@ssl"
RETURN_URL = "http://127.0.0.1:9/pay/sslcommerz/return?attempt=7"
REPOSITORY = Path(__file__).resolve().parents[3]


class Listener:
    """The merchant's IPN listener: a loopback HTTP server that keeps every POST and when it came."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, dict[str, str]]] = []
        self._arrived = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
                with listener._arrived:
                    listener.received.append((time.monotonic(), self.path, form))
                    listener._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/gateways/sslcommerz/ipn"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[float, str, dict[str, str]]]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FormReader(HTMLParser):
    """The first form of a page: its action, method, hidden fields and buttons."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.fields: dict[str, str] = {}
        self.buttons: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and not self.action:
            self.action, self.method = values.get("action", ""), values.get("method", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "button" and values.get("value"):
            self.buttons.append(values["value"])


@pytest.fixture
def emulator():
    server = SslcommerzEmulator(stores={STORE_ID: STORE_PASSWORD, OTHER_STORE: OTHER_PASSWORD})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.stop()


def client_of(
    emulator: SslcommerzEmulator, *, timeout: float = 5.0, store: str = STORE_ID, password: str = STORE_PASSWORD
) -> SslcommerzClient:
    credentials = Credentials(
        base_url=emulator.url, values={"store_id": store, "store_password": password}, merchant_account=store
    )
    return SslcommerzClient(credentials, timeout=timeout)


def open_checkout(
    client: SslcommerzClient,
    listener: Listener,
    reference: str,
    amount: str = "500.00",
    currency: str = "BDT",
) -> Checkout:
    return client.create(
        merchant_reference=reference,
        amount=Decimal(amount),
        currency=currency,
        return_url=RETURN_URL,
        notify_url=listener.url,
        payer_reference="01711000001",
    )


def paid(client: SslcommerzClient, emulator: SslcommerzEmulator, listener: Listener, reference: str) -> Status:
    checkout = open_checkout(client, listener, reference)
    status = client.complete(checkout=checkout, params=emulator.pay(checkout.gateway_payment_id))
    assert status.state == State.PAID
    return status


# -- session, pay, validate ------------------------------------------------------------------------
def test_a_session_paid_and_validated_is_paid_with_the_bank_transaction(emulator, listener):
    client = client_of(emulator)
    checkout = open_checkout(client, listener, "SJ00000000000000001A")

    assert checkout.redirect_url.startswith(f"{emulator.url}{PAGE_PATH}?")
    session = emulator.payments[checkout.gateway_payment_id]
    assert session.tran_id == "SJ00000000000000001A"
    assert session.amount == Decimal("500.00")
    assert session.ipn_url == listener.url
    # Each door back is our return address with its marker, the address's own query kept.
    for door, url in (("success", session.success_url), ("fail", session.fail_url), ("cancel", session.cancel_url)):
        assert parse_qs(urlsplit(url).query) == {"attempt": ["7"], "outcome": [door]}
    assert session.form["shipping_method"] == "NO"
    assert session.form["cus_phone"] == "01711000001"

    params = emulator.pay(checkout.gateway_payment_id, method="bkash")
    assert params["status"] == "VALID"
    assert ipn_signature_valid(params, STORE_PASSWORD)

    status = client.complete(checkout=checkout, params=params)
    assert status.state == State.PAID
    assert status.transaction_id == params["bank_tran_id"] != ""
    assert status.merchant_reference == "SJ00000000000000001A"
    assert status.gateway_payment_id == checkout.gateway_payment_id
    assert (status.amount, status.currency) == (Decimal("500.00"), "BDT")
    assert status.merchant_account == STORE_ID
    assert status.payer.startswith("017")
    assert status.paid_at is not None and status.paid_at.tzinfo is not None
    assert status.raw["status"] == "VALID"

    # A second validation (the IPN handler, a retry) says VALIDATED: paid all the same.
    again = client.complete(checkout=checkout, params=params)
    assert (again.state, again.raw["status"], again.transaction_id) == (State.PAID, "VALIDATED", status.transaction_id)


def test_a_foreign_currency_session_reports_what_was_asked_not_the_bdt_it_settled(emulator, listener):
    client = client_of(emulator)
    checkout = open_checkout(client, listener, "SJUSD0000000000001", amount="10.00", currency="USD")
    status = client.complete(checkout=checkout, params=emulator.pay(checkout.gateway_payment_id, method="card"))

    assert (status.state, status.amount, status.currency) == (State.PAID, Decimal("10.00"), "USD")
    assert (status.raw["amount"], status.raw["currency"]) == ("1100.00", "BDT")


def test_a_wrong_val_id_is_a_gateway_error_and_the_payment_stands(emulator, listener):
    """Decision: a val_id SSLCommerz does not know as a valid transaction of this store raises
    GatewayError (INVALID_TRANSACTION) instead of reporting FAILED. It says nothing about our payment:
    a failed verdict would close an attempt the payer may have paid. The recheck tells the truth."""
    client = client_of(emulator)
    checkout = open_checkout(client, listener, "SJWRONGVAL000000001")
    params = emulator.pay(checkout.gateway_payment_id)

    with pytest.raises(GatewayError) as refused:
        client.complete(checkout=checkout, params={**params, "val_id": "2501010000001NoSuchValId0000"})
    assert refused.value.code == "INVALID_TRANSACTION"
    assert not isinstance(refused.value, GatewayTimeout)

    # Another store's genuine val_id is not ours either.
    other = client_of(emulator, store=OTHER_STORE, password=OTHER_PASSWORD)
    theirs = open_checkout(other, listener, "SJOTHERSTORE00000001")
    their_params = emulator.pay(theirs.gateway_payment_id)
    with pytest.raises(GatewayError, match="no valid transaction"):
        client.complete(checkout=checkout, params=their_params)

    status = client.status(merchant_reference="SJWRONGVAL000000001", gateway_payment_id=checkout.gateway_payment_id)
    assert (status.state, status.transaction_id) == (State.PAID, params["bank_tran_id"])


def test_a_return_without_val_id_asks_about_the_session(emulator, listener):
    client = client_of(emulator)
    waiting = open_checkout(client, listener, "SJNOVALID0000000001")
    # The payer pressed Back before paying: still pending, whatever the browser says.
    assert client.complete(checkout=waiting, params={"status": "VALID"}).state == State.PENDING

    cancelled = emulator.cancel(waiting.gateway_payment_id)
    assert cancelled["status"] == "CANCELLED" and "val_id" not in cancelled
    assert client.complete(checkout=waiting, params=cancelled).state == State.FAILED

    declined_checkout = open_checkout(client, listener, "SJNOVALID0000000002")
    declined = emulator.decline(declined_checkout.gateway_payment_id)
    status = client.complete(checkout=declined_checkout, params=declined)
    assert (status.state, status.transaction_id, status.paid_at) == (State.FAILED, "", None)


def test_the_session_is_refused_with_the_gateways_reason(emulator, listener):
    with pytest.raises(GatewayError, match="Store Credential Error"):
        open_checkout(client_of(emulator, password="wrong"), listener, "SJREFUSED0000000001")
    client = client_of(emulator)
    with pytest.raises(GatewayError, match="total_amount"):
        open_checkout(client, listener, "SJREFUSED0000000002", amount="0.00")
    with pytest.raises(GatewayError, match="Currency 'XYZ'"):
        open_checkout(client, listener, "SJREFUSED0000000003", currency="XYZ")
    with pytest.raises(GatewayError, match="tran_id"):
        open_checkout(client, listener, "SJ" + "X" * 40)
    # Rounding is the caller's: the client refuses to send a third decimal rather than round it.
    with pytest.raises(ValueError, match="2 decimals"):
        open_checkout(client, listener, "SJREFUSED0000000004", amount="10.005")
    assert not emulator.payments

    # What the client always sends, left out by hand, is refused too.
    answer = httpx.post(
        f"{emulator.url}/gwprocess/v4/api.php",
        data={"store_id": STORE_ID, "store_passwd": STORE_PASSWORD, "total_amount": "10.00", "currency": "BDT"},
    ).json()
    assert answer["status"] == "FAILED" and "tran_id" in answer["failedreason"]

    with pytest.raises(GatewayError, match="store_id and store_password"):
        SslcommerzClient(Credentials(base_url=emulator.url, values={"store_id": STORE_ID}, merchant_account=STORE_ID))


def test_wrong_credentials_on_the_validator_apis_are_refusals(emulator, listener):
    checkout = open_checkout(client_of(emulator), listener, "SJBADAUTH0000000001")
    params = emulator.pay(checkout.gateway_payment_id)
    wrong = client_of(emulator, password="wrong")

    with pytest.raises(GatewayError) as refused:
        wrong.complete(checkout=checkout, params=params)
    assert refused.value.code == "FAILED"
    with pytest.raises(GatewayError, match="APIConnect FAILED"):
        wrong.status(merchant_reference="SJBADAUTH0000000001", gateway_payment_id="")


# -- the transaction query ---------------------------------------------------------------------------
def test_status_picks_the_paid_attempt_among_those_under_one_tran_id(emulator, listener):
    client = client_of(emulator)
    reference = "SJATTEMPTS000000001"
    assert client.status(merchant_reference=reference, gateway_payment_id="").state == State.UNKNOWN

    first = open_checkout(client, listener, reference)
    assert client.status(merchant_reference=reference, gateway_payment_id="").state == State.PENDING
    emulator.decline(first.gateway_payment_id)
    assert client.status(merchant_reference=reference, gateway_payment_id="").state == State.FAILED

    second = open_checkout(client, listener, reference)
    params = emulator.pay(second.gateway_payment_id, method="nagad")
    third = open_checkout(client, listener, reference)
    emulator.cancel(third.gateway_payment_id)

    status = client.status(merchant_reference=reference, gateway_payment_id=second.gateway_payment_id)
    assert (status.state, status.transaction_id, status.amount) == (State.PAID, params["bank_tran_id"], Decimal("500"))
    assert status.raw["no_of_trans_found"] == 3
    assert status.gateway_payment_id == second.gateway_payment_id


# -- the IPN ---------------------------------------------------------------------------------------------
def test_the_ipn_signature_proves_the_fields_and_nothing_else(emulator, listener):
    checkout = open_checkout(client_of(emulator), listener, "SJSIGNATURE00000001")
    params = emulator.pay(checkout.gateway_payment_id)

    assert ipn_signature_valid(params, STORE_PASSWORD)
    assert not ipn_signature_valid({**params, "amount": "5000.00"}, STORE_PASSWORD)
    assert not ipn_signature_valid({**params, "status": "VALIDATED"}, STORE_PASSWORD)
    assert not ipn_signature_valid({k: v for k, v in params.items() if k != "verify_sign"}, STORE_PASSWORD)
    assert not ipn_signature_valid({k: v for k, v in params.items() if k != "verify_key"}, STORE_PASSWORD)
    assert not ipn_signature_valid({k: v for k, v in params.items() if k != "bank_tran_id"}, STORE_PASSWORD)
    assert not ipn_signature_valid(params, OTHER_PASSWORD)
    assert not ipn_signature_valid({**params, "verify_sign": "ক" * 32}, STORE_PASSWORD)
    assert not ipn_signature_valid({}, STORE_PASSWORD)

    # Correctly signed, but over too few fields to say which payment and how much.
    narrow = {"tran_id": params["tran_id"], "status": "VALID", "val_id": params["val_id"]}
    hashed = hashlib.md5(STORE_PASSWORD.encode()).hexdigest()
    narrow_sign = signing_digest({**narrow, "store_passwd": hashed})
    assert not ipn_signature_valid(
        {**narrow, "amount": "1.00", "verify_key": "tran_id,status,val_id", "verify_sign": narrow_sign},
        STORE_PASSWORD,
    )


def test_the_ipn_arrives_twice_and_late_signed_and_the_gateway_is_asked_after_it(emulator, listener):
    emulator.ipn_times = 2
    emulator.ipn_delay = 0.5
    client = client_of(emulator)
    checkout = open_checkout(client, listener, "SJIPNTWICE000000001")

    paid_at = time.monotonic()
    params = emulator.pay(checkout.gateway_payment_id)
    assert listener.received == []  # the browser came back first; the IPN is still on its way

    arrivals = listener.wait_for(2)
    assert len(arrivals) == 2
    for arrived_at, path, form in arrivals:
        assert arrived_at - paid_at >= 0.5
        assert path == "/gateways/sslcommerz/ipn"
        assert form == params
        assert ipn_signature_valid(form, STORE_PASSWORD)
    deadline = time.monotonic() + 5
    while len(emulator.notifications) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.notifications == [(listener.url, 200), (listener.url, 200)]

    # Never trusted alone: what the IPN claims is what the gateway's own answer says.
    status = client.complete(checkout=checkout, params=arrivals[-1][2])
    assert (status.state, status.transaction_id) == (State.PAID, params["bank_tran_id"])

    # A cancellation is notified too, signed the same way.
    emulator.ipn_times, emulator.ipn_delay = 1, 0.0
    other = open_checkout(client, listener, "SJIPNTWICE000000002")
    emulator.cancel(other.gateway_payment_id)
    cancelled = listener.wait_for(3)[-1][2]
    assert cancelled["status"] == "CANCELLED" and ipn_signature_valid(cancelled, STORE_PASSWORD)


# -- risk -------------------------------------------------------------------------------------------------
def test_a_risky_payment_is_held(emulator, listener):
    client = client_of(emulator)
    emulator.risky("SJRISKY000000000001")
    checkout = open_checkout(client, listener, "SJRISKY000000000001")
    params = emulator.pay(checkout.gateway_payment_id, method="card")
    assert params["risk_level"] == "1"

    held = client.complete(checkout=checkout, params=params)
    assert (held.state, held.transaction_id, held.amount) == (State.HELD, params["bank_tran_id"], Decimal("500.00"))
    assert client.status(merchant_reference="SJRISKY000000000001", gateway_payment_id="").state == State.HELD

    # The store-wide switch does the same for every payment.
    assert open_checkout(client, listener, "SJSAFE00000000000001").gateway_payment_id
    safe = emulator.session_of("SJSAFE00000000000001")
    assert safe is not None
    emulator.risk_level = 1
    risky_params = emulator.pay(safe.session_key)
    assert client.status(merchant_reference="SJSAFE00000000000001", gateway_payment_id="").state == State.HELD
    assert risky_params["risk_title"] == "Risky"


# -- timeouts ----------------------------------------------------------------------------------------------
def test_a_validation_that_times_out_is_unknown_and_the_query_tells_the_truth_later(emulator, listener):
    client = client_of(emulator, timeout=1.0)
    checkout = open_checkout(client, listener, "SJTIMEOUT0000000001")
    params = emulator.pay(checkout.gateway_payment_id)

    emulator.fail_next("validate", "timeout_after")  # validated at the gateway, the answer never arrives
    started = time.monotonic()
    with pytest.raises(GatewayTimeout, match="did not answer"):
        client.complete(checkout=checkout, params=params)
    assert time.monotonic() - started < 5
    assert emulator.payments[checkout.gateway_payment_id].status == "VALIDATED"

    emulator.fail_next("query", "drop")
    with pytest.raises(GatewayTimeout, match="broke"):
        client.status(merchant_reference="SJTIMEOUT0000000001", gateway_payment_id=checkout.gateway_payment_id)
    emulator.fail_next("query", "error")  # a 5xx: the gateway broke mid-call, as unknown as a timeout
    with pytest.raises(GatewayTimeout, match="HTTP 500"):
        client.status(merchant_reference="SJTIMEOUT0000000001", gateway_payment_id=checkout.gateway_payment_id)

    status = client.status(merchant_reference="SJTIMEOUT0000000001", gateway_payment_id=checkout.gateway_payment_id)
    assert (status.state, status.transaction_id, status.amount) == (
        State.PAID,
        params["bank_tran_id"],
        Decimal("500.00"),
    )


def test_an_unreachable_gateway_is_a_timeout(listener):
    closed = SslcommerzEmulator(stores={STORE_ID: STORE_PASSWORD})
    closed.start()
    url = closed.url
    closed.stop()
    client = SslcommerzClient(
        Credentials(
            base_url=url, values={"store_id": STORE_ID, "store_password": STORE_PASSWORD}, merchant_account=STORE_ID
        ),
        timeout=1.0,
    )
    with pytest.raises(GatewayTimeout):
        client.status(merchant_reference="SJNOBODY00000000001", gateway_payment_id="")


# -- refunds -----------------------------------------------------------------------------------------------
def test_partial_refunds_are_bounded_by_what_is_left(emulator, listener):
    client = client_of(emulator)
    status = paid(client, emulator, listener, "SJREFUND00000000001")

    first = client.refund(status=status, amount=Decimal("200.00"), reason="Paid twice", refund_reference="RF1")
    assert first.state == State.PENDING and first.refund_id
    assert first.amount == Decimal("200.00")
    second = client.refund(status=status, amount=Decimal("250.00"), reason="Outage credit", refund_reference="RF2")
    assert second.state == State.PENDING and second.refund_id != first.refund_id

    too_much = client.refund(status=status, amount=Decimal("100.00"), reason="More", refund_reference="RF3")
    assert too_much.state == State.FAILED
    assert "50.00" in too_much.raw["errorReason"]

    rest = client.refund(status=status, amount=Decimal("50.00"), reason="The rest", refund_reference="RF4")
    assert rest.state == State.PENDING
    assert client.refund(status=status, amount=Decimal("0.01"), reason="More", refund_reference="RF5").state == (
        State.FAILED
    )
    payment = emulator.payments[status.gateway_payment_id]
    assert payment.refunded == Decimal("500.00")
    assert [refund.refe_id for refund in payment.refunds] == ["RF1", "RF2", "RF4"]
    assert payment.refunds[0].remarks == "Paid twice"

    with pytest.raises(GatewayError, match="no bank_tran_id"):
        client.refund(
            status=Status(state=State.FAILED, merchant_reference="SJREFUND00000000001"),
            amount=Decimal("1.00"),
            reason="x",
            refund_reference="RF6",
        )


def test_a_refund_asked_again_after_a_timeout_is_made_once(emulator, listener):
    client = client_of(emulator, timeout=1.0)
    status = paid(client, emulator, listener, "SJREFUNDRETRY000001")

    emulator.fail_next("refund", "timeout_after")
    with pytest.raises(GatewayTimeout):
        client.refund(status=status, amount=Decimal("300.00"), reason="Moved away", refund_reference="RFRETRY")
    retried = client.refund(status=status, amount=Decimal("300.00"), reason="Moved away", refund_reference="RFRETRY")

    payment = emulator.payments[status.gateway_payment_id]
    assert [refund.refund_ref_id for refund in payment.refunds] == [retried.refund_id]
    assert payment.refunded == Decimal("300.00")


def test_the_refund_status_follows_the_refund(emulator, listener):
    client = client_of(emulator)
    status = paid(client, emulator, listener, "SJREFUNDSTATUS00001")
    instant = client.refund(status=status, amount=Decimal("100.00"), reason="Closed", refund_reference="RFS1")
    done = client.refund_status(status=status, refund_reference=instant.refund_id)
    assert (done.state, done.refund_id) == (State.PAID, instant.refund_id)
    assert done.raw["tran_id"] == "SJREFUNDSTATUS00001"

    emulator.refunds_instant = False
    slow = client.refund(status=status, amount=Decimal("100.00"), reason="Closed", refund_reference="RFS2")
    assert client.refund_status(status=status, refund_reference=slow.refund_id).state == State.PENDING
    emulator.settle_refunds()
    assert client.refund_status(status=status, refund_reference=slow.refund_id).state == State.PAID

    unknown = client.refund_status(status=status, refund_reference="nosuchrefund")
    assert unknown.state == State.FAILED and unknown.raw["errorReason"] == "Unknown Refund Ref ID"


# -- the settlement listing ------------------------------------------------------------------------------------
def test_search_lists_a_days_payments_on_the_dhaka_calendar(emulator, listener):
    client = client_of(emulator)
    other = client_of(emulator, store=OTHER_STORE, password=OTHER_PASSWORD)

    def pay(who: SslcommerzClient, reference: str) -> str:
        checkout = open_checkout(who, listener, reference)
        return emulator.pay(checkout.gateway_payment_id)["bank_tran_id"]

    # 00:05 in Dhaka on 31 January is still 30 January in UTC; 23:30 is 17:30 UTC the same day.
    with time_machine.travel(dt.datetime(2025, 1, 31, 0, 5, tzinfo=DHAKA), tick=False) as traveller:
        early = pay(client, "SJDAY00000000000001")
        traveller.move_to(dt.datetime(2025, 1, 31, 23, 30, tzinfo=DHAKA))
        late = pay(client, "SJDAY00000000000002")
        pay(other, "SJDAY00000000000003")  # another store's
        emulator.cancel(open_checkout(client, listener, "SJDAY00000000000004").gateway_payment_id)
        traveller.move_to(dt.datetime(2025, 2, 1, 0, 10, tzinfo=DHAKA))
        february = pay(client, "SJDAY00000000000005")

    january_31 = client.search(day=dt.date(2025, 1, 31))
    assert [status.transaction_id for status in january_31] == [early, late]
    assert all(status.state == State.PAID and status.merchant_account == STORE_ID for status in january_31)
    assert january_31[1].paid_at == dt.datetime(2025, 1, 31, 23, 30, tzinfo=DHAKA)
    assert january_31[1].paid_at.astimezone(dt.UTC).date() == dt.date(2025, 1, 31)
    assert january_31[0].paid_at is not None
    assert january_31[0].paid_at.astimezone(dt.UTC).date() == dt.date(2025, 1, 30)

    assert [status.transaction_id for status in client.search(day=dt.date(2025, 2, 1))] == [february]
    assert client.search(day=dt.date(2025, 1, 30)) == []


# -- the payment page ----------------------------------------------------------------------------------------
def test_the_payment_page_pays_and_posts_the_browser_back(emulator, listener):
    client = client_of(emulator)
    checkout = open_checkout(client, listener, "SJPAGE0000000000001")

    page = httpx.get(checkout.redirect_url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "500.00 BDT" in page.text and STORE_ID in page.text
    for method in ("Card", "bKash", "Nagad"):
        assert method in page.text
    form = FormReader(page.text)
    assert (form.action, form.method, form.buttons) == (PAY_PATH, "post", ["pay", "decline", "cancel"])

    answer = httpx.post(f"{emulator.url}{form.action}", data={**form.fields, "method": "nagad", "action": "pay"})
    assert answer.status_code == 200
    back = FormReader(answer.text)
    session = emulator.payments[checkout.gateway_payment_id]
    assert (back.action, back.method) == (session.success_url, "post")
    assert back.fields["status"] == "VALID" and ipn_signature_valid(back.fields, STORE_PASSWORD)
    assert "submit()" in answer.text

    status = client.complete(checkout=checkout, params=back.fields)
    assert status.state == State.PAID and status.raw["card_type"].startswith("NAGAD")

    assert httpx.get(checkout.redirect_url).status_code == 410  # paid: the page is closed
    assert httpx.get(f"{emulator.url}{PAGE_PATH}?Q=pay&SESSIONKEY=NOSUCHSESSION").status_code == 404

    leaving = open_checkout(client, listener, "SJPAGE0000000000002")
    cancel = httpx.post(
        f"{emulator.url}{PAY_PATH}", data={"SESSIONKEY": leaving.gateway_payment_id, "action": "cancel"}
    )
    cancelled = FormReader(cancel.text)
    assert parse_qs(urlsplit(cancelled.action).query)["outcome"] == ["cancel"]
    assert client.complete(checkout=leaving, params=cancelled.fields).state == State.FAILED


# -- the command line ----------------------------------------------------------------------------------------
def test_the_emulator_runs_from_the_command_line(listener):
    process = subprocess.Popen(
        [sys.executable, "-m", "sonjog.gateways.emulator.sslcommerz", "--port", "0", "--store", "clistore:cli@ssl"],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("SSLCommerz emulator listening on http://127.0.0.1:")
        url = line.split(" on ", 1)[1].split(";", 1)[0]
        client = SslcommerzClient(
            Credentials(base_url=url, values={"store_id": "clistore", "store_password": "cli@ssl"}, merchant_account="")
        )
        checkout = client.create(
            merchant_reference="SJCLI00000000000001",
            amount=Decimal("99.00"),
            currency="BDT",
            return_url=RETURN_URL,
            notify_url=listener.url,
            payer_reference="01711000002",
        )
        assert httpx.get(checkout.redirect_url).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0

    refused = subprocess.run(
        [sys.executable, "-m", "sonjog.gateways.emulator.sslcommerz", "--port", "0", "--store", "nopassword"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "ID:PASSWORD" in refused.stderr
