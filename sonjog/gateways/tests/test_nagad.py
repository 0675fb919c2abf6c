"""The Nagad client against the Nagad emulator, over real HTTP on 127.0.0.1: the sealed requests and
answers both ways, the payer's page, verify as the only word on a payment, refunds, the day listing
on Dhaka's calendar, and the faults (an unknown key, a forged answer, no answer in time)."""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sonjog.gateways.clients.base import Checkout, Credentials, GatewayError, GatewayTimeout, State
from sonjog.gateways.clients.nagad import NagadClient
from sonjog.gateways.emulator.nagad import NagadEmulator

DHAKA = ZoneInfo("Asia/Dhaka")
MERCHANT_ID = "683002007104225"
RETURN_URL = "http://127.0.0.1:9/gateways/nagad/return"


def _key_pair() -> tuple[str, str]:
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


@pytest.fixture(scope="module")
def merchant_keys() -> tuple[str, str]:
    return _key_pair()


@pytest.fixture
def emulator(merchant_keys: tuple[str, str]) -> Iterator[NagadEmulator]:
    server = NagadEmulator()
    server.add_merchant(MERCHANT_ID, merchant_keys[1], name="Sonjog Test ISP")
    server.start()
    yield server
    server.stop()


def make_client(
    emulator: NagadEmulator,
    private_key: str,
    *,
    merchant_id: str = MERCHANT_ID,
    gateway_public_key: str | None = None,
    timeout: float = 10.0,
) -> NagadClient:
    credentials = Credentials(
        base_url=emulator.url,
        values={
            "merchant_id": merchant_id,
            "merchant_private_key": private_key,
            "gateway_public_key": gateway_public_key or emulator.public_key_pem,
        },
        merchant_account=merchant_id,
    )
    return NagadClient(credentials, timeout=timeout)


@pytest.fixture
def client(emulator: NagadEmulator, merchant_keys: tuple[str, str]) -> Iterator[NagadClient]:
    with make_client(emulator, merchant_keys[0]) as nagad:
        yield nagad


def reference() -> str:
    return "SJ" + secrets.token_hex(9).upper()


def open_payment(client: NagadClient, amount: str = "550.00") -> tuple[Checkout, str]:
    order_id = reference()
    checkout = client.create(
        merchant_reference=order_id,
        amount=Decimal(amount),
        currency="BDT",
        return_url=f"{RETURN_URL}?ref={order_id}",
        notify_url="http://127.0.0.1:9/unused",
        payer_reference="T1X000042",
    )
    return checkout, order_id


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def paid(client: NagadClient, emulator: NagadEmulator, amount: str = "550.00") -> tuple[Checkout, str]:
    checkout, order_id = open_payment(client, amount)
    emulator.pay(checkout.gateway_payment_id)
    return checkout, order_id


# -- paying ----------------------------------------------------------------------------------------
def test_a_paid_payment_is_confirmed_by_verify(client: NagadClient, emulator: NagadEmulator) -> None:
    checkout, order_id = open_payment(client)
    assert checkout.redirect_url.startswith(emulator.url + "/check-out/")
    before = client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
    assert before.state == State.PENDING  # completed by us, not yet confirmed by the payer

    back = emulator.pay(checkout.gateway_payment_id, account="01911222333")
    params = query_of(back)
    assert back.startswith(f"{RETURN_URL}?ref={order_id}&")
    assert params["payment_ref_id"] == checkout.gateway_payment_id
    assert (params["status"], params["order_id"], params["merchant"]) == ("Success", order_id, MERCHANT_ID)

    status = client.complete(checkout=checkout, params=params)
    payment = emulator.payments[checkout.gateway_payment_id]
    assert status.state == State.PAID
    assert status.transaction_id == payment.issuer_ref != ""
    assert status.amount == Decimal("550.00")
    assert (status.currency, status.merchant_reference, status.merchant_account) == ("BDT", order_id, MERCHANT_ID)
    assert status.gateway_payment_id == checkout.gateway_payment_id
    assert status.payer == "019******33"
    assert status.paid_at is not None and status.paid_at.astimezone(dt.UTC) <= dt.datetime.now(dt.UTC)
    assert payment.additional_info == {"payerReference": "T1X000042"}


def test_verify_answers_the_same_twice(client: NagadClient, emulator: NagadEmulator) -> None:
    checkout, order_id = paid(client, emulator)
    first = client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
    second = client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
    assert first == second
    assert first.state == State.PAID
    assert [operation for operation, _path in emulator.calls].count("verify") == 2


def test_the_callback_is_not_trusted(client: NagadClient, emulator: NagadEmulator) -> None:
    """A callback saying Success for a payment nobody paid is answered by verify: still pending. One
    naming another payment than the checkout's is refused."""
    checkout, order_id = open_payment(client)
    forged = {"payment_ref_id": checkout.gateway_payment_id, "status": "Success", "order_id": order_id}
    assert client.complete(checkout=checkout, params=forged).state == State.PENDING

    other, _ = open_payment(client)
    with pytest.raises(GatewayError, match="payment_ref_id"):
        client.complete(checkout=checkout, params={"payment_ref_id": other.gateway_payment_id, "status": "Success"})


def test_a_payment_nagad_does_not_know_is_unknown(client: NagadClient) -> None:
    assert client.status(merchant_reference="SJX", gateway_payment_id="bm8tc3VjaA").state == State.UNKNOWN
    assert client.status(merchant_reference="SJX", gateway_payment_id="").state == State.UNKNOWN


def test_nagad_takes_taka_only(client: NagadClient, emulator: NagadEmulator) -> None:
    with pytest.raises(GatewayError) as refused:
        client.create(
            merchant_reference=reference(),
            amount=Decimal("10.00"),
            currency="USD",
            return_url=RETURN_URL,
            notify_url="",
            payer_reference="x",
        )
    assert refused.value.code == "currency"
    assert emulator.calls == []


# -- the payer's page ------------------------------------------------------------------------------
def test_the_checkout_page_takes_the_payment_over_http(client: NagadClient, emulator: NagadEmulator) -> None:
    checkout, order_id = open_payment(client, "1234.50")
    with httpx.Client(timeout=5.0) as browser:
        page = browser.get(checkout.redirect_url)
        assert page.status_code == 200
        for shown in ("BDT 1234.50", "Sonjog Test ISP", MERCHANT_ID, order_id, 'name="account"', 'name="otp"'):
            assert shown in page.text
        assert 'name="pin"' in page.text and "Confirm" in page.text and "Cancel" in page.text

        no_otp = browser.post(checkout.redirect_url, data={"action": "confirm", "account": "01711111111", "pin": "1"})
        assert no_otp.status_code == 400 and "6-digit OTP" in no_otp.text

        form = {"action": "confirm", "account": "01811000222", "otp": "123456"}
        wrong = browser.post(checkout.redirect_url, data={**form, "pin": "9999"})
        assert wrong.status_code == 400 and "Wrong PIN: 2 tries left" in wrong.text
        assert client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id).state == (
            State.PENDING
        )

        confirmed = browser.post(checkout.redirect_url, data={**form, "pin": "1234"})
        assert confirmed.status_code == 302
        back = confirmed.headers["Location"]
        assert back.startswith(RETURN_URL + "?")
        params = query_of(back)
        assert (params["status"], params["status_code"], params["order_id"]) == ("Success", "00_0000_000", order_id)

        assert browser.get(checkout.redirect_url).status_code == 410  # paid: the page is closed

    status = client.complete(checkout=checkout, params=params)
    assert (status.state, status.amount, status.payer) == (State.PAID, Decimal("1234.50"), "018******22")
    assert params["issuer_payment_ref"] == status.transaction_id


def test_a_payer_who_cancels_on_the_page_leaves_it_failed(client: NagadClient, emulator: NagadEmulator) -> None:
    checkout, _ = open_payment(client)
    with httpx.Client(timeout=5.0) as browser:
        answer = browser.post(checkout.redirect_url, data={"action": "cancel"})
    assert answer.status_code == 302
    params = query_of(answer.headers["Location"])
    assert (params["status"], params["payment_ref_id"]) == ("Aborted", checkout.gateway_payment_id)
    status = client.complete(checkout=checkout, params=params)
    assert status.state == State.FAILED
    assert status.transaction_id == ""
    with pytest.raises(ValueError, match="Aborted"):
        emulator.pay(checkout.gateway_payment_id)


def test_three_wrong_pins_fail_the_payment(client: NagadClient) -> None:
    checkout, _ = open_payment(client)
    form = {"action": "confirm", "account": "01711111111", "otp": "000000", "pin": "0000"}
    with httpx.Client(timeout=5.0) as browser:
        answers = [browser.post(checkout.redirect_url, data=form) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [400, 400, 302]
    params = query_of(answers[-1].headers["Location"])
    assert params["status"] == "Failed"
    assert client.complete(checkout=checkout, params=params).state == State.FAILED


# -- keys and signatures ---------------------------------------------------------------------------
def test_a_merchant_key_nagad_does_not_know_is_refused(emulator: NagadEmulator, merchant_keys: tuple[str, str]) -> None:
    stranger_private, _stranger_public = _key_pair()
    with make_client(emulator, stranger_private) as impostor, pytest.raises(GatewayError) as refused:
        open_payment(impostor)
    assert refused.value.code == "InvalidSignature"
    assert not isinstance(refused.value, GatewayTimeout)

    with (
        make_client(emulator, merchant_keys[0], merchant_id="683000000000001") as unknown,
        pytest.raises(GatewayError) as refused,
    ):
        open_payment(unknown)
    assert refused.value.code == "InvalidMerchant"
    assert emulator.payments == {}


def test_an_answer_not_signed_by_nagad_is_refused(client: NagadClient, emulator: NagadEmulator) -> None:
    emulator.tamper_next("initialize")
    with pytest.raises(GatewayError, match="not signed by Nagad") as refused:
        open_payment(client)
    assert refused.value.code == "signature"

    checkout, order_id = paid(client, emulator)
    status = client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
    emulator.tamper_next("cancel")
    with pytest.raises(GatewayError, match="not signed by Nagad"):
        client.refund(status=status, amount=Decimal("10.00"), reason="forged", refund_reference="RF1")


def test_a_client_holding_another_nagad_key_is_refused(emulator: NagadEmulator, merchant_keys: tuple[str, str]) -> None:
    """Configured with a second Nagad's public key, the client seals its request for a key this Nagad
    does not hold: refused before anything is created. (OpenSSL's implicit rejection decrypts a block
    sealed for another key to noise rather than failing, so it is the signature over it that fails.)"""
    other = NagadEmulator()
    with (
        make_client(emulator, merchant_keys[0], gateway_public_key=other.public_key_pem) as confused,
        pytest.raises(GatewayError) as refused,
    ):
        open_payment(confused)
    assert refused.value.code in ("InvalidSignature", "InvalidSensitiveData")
    assert emulator.payments == {}


# -- no answer in time -----------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["timeout", "drop", "error"])
def test_a_verify_without_an_answer_is_unknown_until_asked_again(
    emulator: NagadEmulator, merchant_keys: tuple[str, str], fault: str
) -> None:
    with make_client(emulator, merchant_keys[0], timeout=1.0) as impatient:
        checkout, order_id = open_payment(impatient)
        params = query_of(emulator.pay(checkout.gateway_payment_id))
        emulator.fail_next("verify", fault)
        started = time.monotonic()
        with pytest.raises(GatewayTimeout):
            impatient.complete(checkout=checkout, params=params)
        assert time.monotonic() - started < 5
        status = impatient.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
    assert status.state == State.PAID
    assert status.transaction_id == emulator.payments[checkout.gateway_payment_id].issuer_ref


# -- refunds ---------------------------------------------------------------------------------------
def test_partial_refunds_up_to_what_was_paid(client: NagadClient, emulator: NagadEmulator) -> None:
    checkout, order_id = paid(client, emulator, "500.00")
    status = client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)

    first = client.refund(status=status, amount=Decimal("200.00"), reason="দুই মাসের অগ্রিম ফেরত", refund_reference="R1")
    second = client.refund(status=status, amount=Decimal("250.00"), reason="Overpaid", refund_reference="R2")
    assert (first.state, first.amount, second.state, second.amount) == (
        State.PAID,
        Decimal("200.00"),
        State.PAID,
        Decimal("250.00"),
    )
    assert first.refund_id and second.refund_id and first.refund_id != second.refund_id

    with pytest.raises(GatewayError) as refused:
        client.refund(status=status, amount=Decimal("50.01"), reason="too much", refund_reference="R3")
    assert refused.value.code == "InvalidCancelAmount" and "50.00" in str(refused.value)

    again = client.refund(status=status, amount=Decimal("200.00"), reason="asked twice", refund_reference="R1")
    assert again.refund_id == first.refund_id  # the same refund, not a third
    payment = emulator.payments[checkout.gateway_payment_id]
    assert [refund.amount for refund in payment.refunds] == [Decimal("200.00"), Decimal("250.00")]
    assert payment.refunds[0].message == "দুই মাসের অগ্রিম ফেরত"

    assert client.refund_status(status=status, refund_reference="R1") == first
    assert client.refund_status(status=status, refund_reference="R2").amount == Decimal("250.00")
    assert client.refund_status(status=status, refund_reference="R9").state == State.UNKNOWN
    # The rest is still paid; the payment itself stays Success at verify.
    assert client.refund(status=status, amount=Decimal("50.00"), reason="rest", refund_reference="R4").state == (
        State.PAID
    )
    assert client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id).state == (
        State.PAID
    )


def test_an_unpaid_payment_is_not_refunded(client: NagadClient) -> None:
    checkout, order_id = open_payment(client)
    status = client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
    with pytest.raises(GatewayError) as refused:
        client.refund(status=status, amount=Decimal("10.00"), reason="", refund_reference="R1")
    assert refused.value.code == "InvalidPaymentStatus"


def test_a_refund_whose_answer_was_lost_is_found_by_refund_status(
    emulator: NagadEmulator, merchant_keys: tuple[str, str]
) -> None:
    with make_client(emulator, merchant_keys[0], timeout=1.0) as impatient:
        checkout, order_id = paid(impatient, emulator, "300.00")
        status = impatient.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
        emulator.fail_next("cancel", "timeout_after")
        with pytest.raises(GatewayTimeout):
            impatient.refund(status=status, amount=Decimal("120.00"), reason="lost", refund_reference="RL1")
        found = impatient.refund_status(status=status, refund_reference="RL1")
        retried = impatient.refund(status=status, amount=Decimal("120.00"), reason="lost", refund_reference="RL1")
    assert (found.state, found.amount) == (State.PAID, Decimal("120.00"))
    assert retried.refund_id == found.refund_id
    assert len(emulator.payments[checkout.gateway_payment_id].refunds) == 1


def test_a_refund_the_next_day_names_the_day_the_payment_was_ordered(
    client: NagadClient, emulator: NagadEmulator
) -> None:
    """Paid at 00:15 in Dhaka on 1 February (UTC still says 31 January), refunded the next night:
    originalRequestDate is 20270201, neither UTC's day nor the refund's (the emulator refuses both)."""
    with time_machine.travel(dt.datetime(2027, 2, 1, 0, 15, tzinfo=DHAKA), tick=False):
        checkout, order_id = paid(client, emulator)
    with time_machine.travel(dt.datetime(2027, 2, 2, 0, 20, tzinfo=DHAKA), tick=False):
        status = client.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
        refund = client.refund(status=status, amount=Decimal("50.00"), reason="", refund_reference="RN1")
    assert refund.state == State.PAID
    assert status.paid_at == dt.datetime(2027, 2, 1, 0, 15, tzinfo=DHAKA)


# -- the day's listing -----------------------------------------------------------------------------
def test_search_lists_the_payments_of_a_dhaka_day(client: NagadClient, emulator: NagadEmulator) -> None:
    """23:30 in Dhaka on the 31st is the 31st; 00:15 on the 1st is the 1st, though UTC still calls it
    the 31st."""
    with time_machine.travel(dt.datetime(2027, 1, 31, 23, 30, tzinfo=DHAKA), tick=False):
        late, late_order = paid(client, emulator, "700.00")
        open_payment(client)  # opened, never paid: not in the listing
    with time_machine.travel(dt.datetime(2027, 2, 1, 0, 15, tzinfo=DHAKA), tick=False):
        early, early_order = paid(client, emulator, "800.00")

    on_31st = client.search(day=dt.date(2027, 1, 31))
    on_1st = client.search(day=dt.date(2027, 2, 1))
    assert [(s.merchant_reference, s.amount, s.state) for s in on_31st] == [(late_order, Decimal("700.00"), State.PAID)]
    assert [(s.merchant_reference, s.amount) for s in on_1st] == [(early_order, Decimal("800.00"))]
    assert on_31st[0].gateway_payment_id == late.gateway_payment_id
    assert on_1st[0].transaction_id == emulator.payments[early.gateway_payment_id].issuer_ref
    assert client.search(day=dt.date(2027, 1, 30)) == []


# -- the command line ------------------------------------------------------------------------------
@pytest.mark.real_clock
def test_the_emulator_runs_from_the_command_line(tmp_path: Path, merchant_keys: tuple[str, str]) -> None:
    merchant_key_file = tmp_path / "merchant.pem"
    merchant_key_file.write_text(merchant_keys[1])
    nagad_key_file = tmp_path / "nagad.pem"
    command = [
        sys.executable,
        "-m",
        "sonjog.gateways.emulator.nagad",
        "--port",
        "0",
        "--public-key-out",
        str(nagad_key_file),
        "--merchant",
        f"{MERCHANT_ID}:{merchant_key_file}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        listening = process.stdout.readline()
        assert listening.startswith("Nagad emulator listening on http://127.0.0.1:"), listening
        assert process.stdout.readline().strip() == f"Nagad public key: {nagad_key_file}"
        url = listening.split(" on ", 1)[1].split(";", 1)[0]
        credentials = Credentials(
            base_url=url,
            values={
                "merchant_id": MERCHANT_ID,
                "merchant_private_key": merchant_keys[0],
                "gateway_public_key": nagad_key_file.read_text(),
            },
            merchant_account=MERCHANT_ID,
        )
        with NagadClient(credentials, timeout=5.0) as nagad:
            checkout, order_id = open_payment(nagad)
            status = nagad.status(merchant_reference=order_id, gateway_payment_id=checkout.gateway_payment_id)
        assert (status.state, status.amount) == (State.PENDING, Decimal("550.00"))
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
