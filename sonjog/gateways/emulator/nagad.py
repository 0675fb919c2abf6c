"""A local Nagad: the merchant checkout API (v-0.2.0) with its encryption and signatures, the checkout
page the payer confirms on, refunds, and a day's settlement listing.

The emulator has its own RSA key pair, made when it is built (`public_key_pem` is what a merchant
configures as Nagad's public key), and the public key of each merchant it serves (`add_merchant`).
What a merchant sends sealed is decrypted with the emulator's key and its signature checked with the
merchant's; what it answers sealed is encrypted with the merchant's key and signed with its own. A
request that fails any of that is answered as Nagad answers a refusal: HTTP 4xx with
{"reason", "message"}. The reasons are the emulator's names; live Nagad's codes differ.

The routes:
    POST /api/dfs/check-out/initialize/{merchantId}/{orderId}   "initialize"
    POST /api/dfs/check-out/complete/{paymentReferenceId}       "complete"
    GET  /api/dfs/verify/payment/{paymentReferenceId}           "verify"
    POST /api/dfs/purchase/cancel?paymentRefId=&orderId=        "cancel" (the refund)
    POST /api/dfs/purchase/cancel/status?paymentRefId=&orderId= "cancel_status" (designed here)
    GET  /api/dfs/merchant/transactions/{merchantId}?date=      "transactions" (stand-in for the report)
    GET, POST /check-out/{paymentReferenceId}                   "checkout" (the payer's page)
The quoted names are the operations `fail_next` and `tamper_next` take.

Tests drive the payer with `pay()` or through the page (PIN 1234 pays), read `payments`, and make
calls misbehave with `fail_next` (time out, drop, HTTP 500) or `tamper_next` (the answer signed by a
key that is not the emulator's). `python -m sonjog.gateways.emulator.nagad` runs one for `make demo`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import re
import secrets
import signal
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sonjog.gateways.emulator.http import ALLOWED_HOST, EmulatorServer, Handler, Request, Response

DHAKA = ZoneInfo("Asia/Dhaka")
API = "/api/dfs"
PAGE = "/check-out/"
BDT = "050"
CORRECT_PIN = "1234"
PIN_TRIES = 3
DEFAULT_PAYER = "01711111111"
WALLET = re.compile(r"01[3-9]\d{8}")
OTP = re.compile(r"\d{6}")
ORDER_ID = re.compile(r"[A-Za-z0-9]{1,20}")
REFERENCE_NO = re.compile(r"[A-Za-z0-9_-]{1,40}")
AMOUNT = re.compile(r"\d{1,9}(\.\d{1,2})?")
REQUIRED_HEADERS = ("x-km-api-version", "x-km-ip-v4", "x-km-client-type")
# What the payer's page ends in: the callback's status, status_code and message (the codes are the
# emulator's; the statuses are Nagad's).
OUTCOMES = {
    "Success": ("00_0000_000", "Successful Transaction"),
    "Aborted": ("00_1111_001", "Payment aborted by the customer"),
    "Failed": ("00_1111_002", "Payment failed: wrong PIN"),
}


class Refusal(Exception):
    """Answered as Nagad refuses: HTTP `status` with {"reason", "message"}."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass
class NagadRefund:
    reference_no: str
    cancel_trx_id: str
    amount: Decimal
    message: str
    at: dt.datetime


@dataclass
class NagadPayment:
    """One payment as the emulator's Nagad holds it."""

    payment_ref_id: str
    merchant_id: str
    order_id: str
    challenge: str
    ordered_at: dt.datetime
    status: str = "Initiated"  # -> Ready (completed by the merchant) -> Success | Aborted | Failed
    amount: Decimal | None = None
    callback_url: str = ""
    additional_info: Any = None
    payer: str = ""
    issuer_ref: str = ""
    paid_at: dt.datetime | None = None
    wrong_pins: int = 0
    refunds: list[NagadRefund] = field(default_factory=list)

    @property
    def refunded(self) -> Decimal:
        return sum((refund.amount for refund in self.refunds), Decimal("0.00"))


def _pem(text: str, kind: str) -> bytes:
    """A key as PEM, armouring the bare base64 Nagad's portal hands out."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----", ""]).encode()


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _dhaka(moment: dt.datetime, layout: str = "%Y%m%d%H%M%S") -> str:
    return moment.astimezone(DHAKA).strftime(layout)


def _verify_time(moment: dt.datetime | None) -> str:
    """Verify's way of writing a time: Dhaka wall clock, "2021-06-05 12:07:08.0"."""
    return _dhaka(moment, "%Y-%m-%d %H:%M:%S") + ".0" if moment is not None else ""


def _masked(wallet: str) -> str:
    return wallet[:3] + "*" * (len(wallet) - 5) + wallet[-2:] if len(wallet) > 5 else wallet


class _PrefixRoutes(dict[tuple[str, str], Handler]):
    """The base server looks a route up by exact path; Nagad's paths carry ids. A route registered
    with a path ending in "/" also serves every path under it (the longest such prefix wins)."""

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        if key in self:
            return self[key]
        method, path = key
        prefixes = [p for m, p in self if m == method and p.endswith("/") and path.startswith(p) and path != p]
        return self[(method, max(prefixes, key=len))] if prefixes else default


class NagadEmulator(EmulatorServer):
    name = "nagad"

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = ALLOWED_HOST,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key_pem = _public_pem(self._key.public_key())
        self._forger: rsa.RSAPrivateKey | None = None
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._merchants: dict[str, tuple[rsa.RSAPublicKey, str]] = {}
        self._tampered: dict[str, int] = {}
        self.payments: dict[str, NagadPayment] = {}  # by paymentReferenceId
        super().__init__(port=port, host=host)

    # -- set up --------------------------------------------------------------------------------
    def add_merchant(self, merchant_id: str, public_key_pem: str, name: str = "") -> None:
        """Serve `merchant_id`, whose requests are signed by the private half of `public_key_pem`."""
        key = serialization.load_pem_public_key(_pem(public_key_pem, "PUBLIC KEY"))
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("a Nagad merchant key is an RSA key")
        with self.lock:
            self._merchants[merchant_id] = (key, name or f"Merchant {merchant_id}")

    def routes(self) -> None:
        self._routes = _PrefixRoutes()
        self.route("POST", f"{API}/check-out/initialize/", self._initialize, "initialize")
        self.route("POST", f"{API}/check-out/complete/", self._complete, "complete")
        self.route("GET", f"{API}/verify/payment/", self._verify, "verify")
        self.route("POST", f"{API}/purchase/cancel", self._cancel, "cancel")
        self.route("POST", f"{API}/purchase/cancel/status", self._cancel_status, "cancel_status")
        self.route("GET", f"{API}/merchant/transactions/", self._transactions, "transactions")
        self.route("GET", PAGE, self._page, "checkout")
        self.route("POST", PAGE, self._page, "checkout")

    def route(self, method: str, path: str, handler: Handler, operation: str = "") -> None:
        super().route(method, path, self._refusing(handler), operation)

    @staticmethod
    def _refusing(handler: Handler) -> Handler:
        def run(request: Request) -> Response:
            try:
                return handler(request)
            except Refusal as refusal:
                return Response.of_json({"reason": refusal.reason, "message": refusal.message}, refusal.status)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return Response.of_json({"reason": "InvalidRequest", "message": "the body is not JSON"}, 400)

        return run

    def tamper_next(self, operation: str, times: int = 1) -> None:
        """The next `times` sealed answers of `operation` ("initialize", "cancel", "cancel_status")
        are signed by a key that is not the emulator's, as a forged answer would be."""
        with self.lock:
            self._tampered[operation] = self._tampered.get(operation, 0) + times

    # -- test controls -------------------------------------------------------------------------
    def pay(self, payment_ref_id: str, account: str = DEFAULT_PAYER) -> str:
        """The payer confirms with the right OTP and PIN: the payment is taken. Returns the URL Nagad
        sends the browser to (the merchant's callback with the outcome)."""
        with self.lock:
            payment = self._payment(payment_ref_id)
            if payment.status != "Ready":
                raise ValueError(f"payment {payment_ref_id} is {payment.status}, not ready to pay")
            self._take(payment, account)
            return self._callback(payment)

    def _take(self, payment: NagadPayment, account: str) -> None:
        payment.status = "Success"
        payment.payer = account
        payment.paid_at = self._clock()
        payment.issuer_ref = "7" + secrets.token_hex(4).upper()[:7]

    # -- the merchant API ----------------------------------------------------------------------
    def _initialize(self, request: Request) -> Response:
        self._require_headers(request)
        merchant_id, _, order_id = request.path.removeprefix(f"{API}/check-out/initialize/").partition("/")
        body = request.json()
        key, _name = self._merchant(merchant_id)
        sent = self._opened(body, "sensitiveData", key)
        if sent.get("merchantId") != merchant_id or sent.get("orderId") != order_id:
            raise Refusal("InvalidRequest", "merchantId or orderId differs from the path")
        if not ORDER_ID.fullmatch(order_id):
            raise Refusal("InvalidOrderId", "orderId must be 1 to 20 letters and digits")
        challenge = sent.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise Refusal("InvalidRequest", "no challenge in sensitiveData")
        now = self._clock()
        with self.lock:
            if any(p.merchant_id == merchant_id and p.order_id == order_id for p in self.payments.values()):
                raise Refusal("DuplicateOrderId", f"order {order_id} was initialized before")
            raw_id = f"{_dhaka(now)}.{merchant_id}.{order_id}.{secrets.token_hex(4)}"
            payment_ref_id = base64.urlsafe_b64encode(raw_id.encode()).decode().rstrip("=")
            self.payments[payment_ref_id] = NagadPayment(
                payment_ref_id=payment_ref_id,
                merchant_id=merchant_id,
                order_id=order_id,
                challenge=challenge,
                ordered_at=now,
            )
        answer = {"paymentReferenceId": payment_ref_id, "challenge": challenge, "acceptDateTime": _dhaka(now)}
        return Response.of_json(self._sealed(answer, key, "initialize"))

    def _complete(self, request: Request) -> Response:
        self._require_headers(request)
        payment_ref_id = request.path.removeprefix(f"{API}/check-out/complete/")
        body = request.json()
        with self.lock:
            payment = self._payment(payment_ref_id)
            merchant_id = payment.merchant_id
        key, _name = self._merchant(merchant_id)
        order = self._opened(body, "sensitiveData", key)
        with self.lock:
            if order.get("merchantId") != merchant_id or order.get("orderId") != payment.order_id:
                raise Refusal("InvalidRequest", "merchantId or orderId is not the payment's")
            if order.get("challenge") != payment.challenge:
                raise Refusal("InvalidChallenge", "the challenge is not the one this payment was initialized with")
            if order.get("currencyCode") != BDT:
                raise Refusal("InvalidCurrency", f"currencyCode must be {BDT} (taka)")
            amount = self._amount(order.get("amount"), "amount")
            callback = body.get("merchantCallbackURL")
            if not isinstance(callback, str) or urllib.parse.urlsplit(callback).scheme not in ("http", "https"):
                raise Refusal("InvalidCallbackUrl", "merchantCallbackURL must be an http(s) URL")
            if payment.status != "Initiated":
                raise Refusal("DuplicateRequest", f"payment {payment_ref_id} was completed before")
            payment.amount = amount
            payment.callback_url = callback
            payment.additional_info = body.get("additionalMerchantInfo")
            payment.status = "Ready"
        return Response.of_json({"status": "Success", "callBackUrl": f"{self.url}{PAGE}{payment_ref_id}"})

    def _verify(self, request: Request) -> Response:
        with self.lock:
            return Response.of_json(self._verified(self._payment(request.path.removeprefix(f"{API}/verify/payment/"))))

    def _verified(self, payment: NagadPayment) -> dict[str, Any]:
        last_refund = payment.refunds[-1] if payment.refunds else None
        return {
            "merchantId": payment.merchant_id,
            "orderId": payment.order_id,
            "paymentRefId": payment.payment_ref_id,
            "amount": _money(payment.amount) if payment.amount is not None else "",
            "clientMobileNo": _masked(payment.payer),
            "merchantMobileNo": "",
            "orderDateTime": _verify_time(payment.ordered_at),
            "issuerPaymentDateTime": _verify_time(payment.paid_at),
            "issuerPaymentRefNo": payment.issuer_ref,
            "additionalMerchantInfo": payment.additional_info,
            "status": payment.status,
            "statusCode": OUTCOMES.get(payment.status, ("000", ""))[0],
            "cancelIssuerDateTime": _verify_time(last_refund.at) if last_refund else "",
            "cancelIssuerRefNo": last_refund.cancel_trx_id if last_refund else "",
        }

    def _cancel(self, request: Request) -> Response:
        self._require_headers(request)
        payment = self._addressed(request)
        key, _name = self._merchant(payment.merchant_id)
        asked = self._opened(request.json(), "sensitiveDataCancelRequest", key)
        reference_no = str(asked.get("referenceNo") or "")
        if not REFERENCE_NO.fullmatch(reference_no):
            raise Refusal("InvalidReferenceNo", "referenceNo must be 1 to 40 letters, digits, - or _")
        cancel_amount = self._amount(asked.get("cancelAmount"), "cancelAmount")
        with self.lock:
            if asked.get("merchantId") != payment.merchant_id:
                raise Refusal("InvalidRequest", "merchantId is not the payment's")
            if payment.status != "Success" or payment.amount is None or payment.paid_at is None:
                raise Refusal("InvalidPaymentStatus", f"payment {payment.payment_ref_id} is {payment.status}, not paid")
            if self._amount(asked.get("originalAmount"), "originalAmount") != payment.amount:
                raise Refusal("InvalidOriginalAmount", f"the payment's amount is {_money(payment.amount)}")
            days = {_dhaka(payment.ordered_at, "%Y%m%d"), _dhaka(payment.paid_at, "%Y%m%d")}
            if asked.get("originalRequestDate") not in days:
                raise Refusal("InvalidOriginalRequestDate", f"the payment was ordered on {min(days)}")
            earlier = next((r for r in payment.refunds if r.reference_no == reference_no), None)
            if earlier is not None:
                if earlier.amount != cancel_amount:
                    raise Refusal("DuplicateReferenceNo", f"refund {reference_no} was for {_money(earlier.amount)}")
                refund = earlier  # asked again (its answer was lost): the same refund, not a second
            else:
                left = payment.amount - payment.refunded
                if cancel_amount > left:
                    raise Refusal("InvalidCancelAmount", f"at most {_money(left)} is left to refund")
                refund = NagadRefund(
                    reference_no=reference_no,
                    cancel_trx_id="C" + secrets.token_hex(5).upper(),
                    amount=cancel_amount,
                    message=str(asked.get("referenceMessage") or ""),
                    at=self._clock(),
                )
                payment.refunds.append(refund)
            answer = self._refund_answer(payment, refund)
        return Response.of_json(self._sealed(answer, key, "cancel"))

    def _cancel_status(self, request: Request) -> Response:
        self._require_headers(request)
        payment = self._addressed(request)
        key, _name = self._merchant(payment.merchant_id)
        asked = self._opened(request.json(), "sensitiveData", key)
        with self.lock:
            if asked.get("merchantId") != payment.merchant_id:
                raise Refusal("InvalidRequest", "merchantId is not the payment's")
            refund = next((r for r in payment.refunds if r.reference_no == asked.get("referenceNo")), None)
            if refund is None:
                raise Refusal("RefundNotFound", f"no refund {asked.get('referenceNo')!r} on this payment", 404)
            answer = self._refund_answer(payment, refund)
        return Response.of_json(self._sealed(answer, key, "cancel_status"))

    @staticmethod
    def _refund_answer(payment: NagadPayment, refund: NagadRefund) -> dict[str, str]:
        assert payment.amount is not None
        return {
            "status": "Success",
            "originalAmount": _money(payment.amount),
            "cancelAmount": _money(refund.amount),
            "referenceNo": refund.reference_no,
            "cancelTrxId": refund.cancel_trx_id,
        }

    def _transactions(self, request: Request) -> Response:
        """The day's taken payments of one merchant, by the Dhaka date they were paid on."""
        merchant_id = request.path.removeprefix(f"{API}/merchant/transactions/")
        self._merchant(merchant_id)
        try:
            day = dt.date.fromisoformat(request.query.get("date", ""))
        except ValueError as error:
            raise Refusal("InvalidDate", "date must be YYYY-MM-DD") from error
        with self.lock:
            rows = [
                self._verified(payment)
                for payment in sorted(self.payments.values(), key=lambda p: p.paid_at or p.ordered_at)
                if payment.merchant_id == merchant_id
                and payment.status == "Success"
                and payment.paid_at is not None
                and payment.paid_at.astimezone(DHAKA).date() == day
            ]
        return Response.of_json({"merchantId": merchant_id, "date": day.isoformat(), "transactions": rows})

    # -- the payer's page ----------------------------------------------------------------------
    def _page(self, request: Request) -> Response:
        payment_ref_id = request.path.removeprefix(PAGE)
        with self.lock:
            payment = self.payments.get(payment_ref_id)
            if payment is None:
                return Response.of_html(_page_html("Nagad", "<p>No such payment.</p>"), 404)
            if payment.status != "Ready":
                return Response.of_html(_page_html("Nagad", f"<p>This payment is {payment.status}.</p>"), 410)
            if request.method == "GET":
                return Response.of_html(self._form(payment))
            form = request.form()
            if form.get("action") == "cancel":
                payment.status = "Aborted"
                return Response.redirect(self._callback(payment))
            account = form.get("account", "").strip()
            if not WALLET.fullmatch(account) or not OTP.fullmatch(form.get("otp", "").strip()):
                return Response.of_html(self._form(payment, "Enter an 11-digit Nagad number and the 6-digit OTP."), 400)
            if form.get("pin", "") != CORRECT_PIN:
                payment.wrong_pins += 1
                if payment.wrong_pins >= PIN_TRIES:
                    payment.status = "Failed"
                    payment.payer = account
                    return Response.redirect(self._callback(payment))
                left = PIN_TRIES - payment.wrong_pins
                return Response.of_html(self._form(payment, f"Wrong PIN: {left} tries left."), 400)
            self._take(payment, account)
            return Response.redirect(self._callback(payment))

    def _form(self, payment: NagadPayment, error: str = "") -> str:
        _key, merchant_name = self._merchants.get(payment.merchant_id, (None, payment.merchant_id))
        amount = _money(payment.amount) if payment.amount is not None else ""
        notice = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        body = f"""<dl>
<dt>Merchant</dt><dd class="merchant">{html.escape(merchant_name)} ({html.escape(payment.merchant_id)})</dd>
<dt>Order</dt><dd class="order">{html.escape(payment.order_id)}</dd>
<dt>Amount</dt><dd class="amount">BDT {amount}</dd>
</dl>
{notice}
<form method="post">
<label>Nagad account number <input name="account" inputmode="numeric" maxlength="11" required></label>
<label>Verification code (OTP) <input name="otp" inputmode="numeric" maxlength="6" required></label>
<label>PIN <input name="pin" type="password" inputmode="numeric" maxlength="4" required></label>
<button name="action" value="confirm">Confirm</button>
<button name="action" value="cancel" formnovalidate>Cancel</button>
</form>
<p class="hint">Emulator: any 6-digit OTP; PIN {CORRECT_PIN} pays.</p>"""
        return _page_html("Pay with Nagad", body)

    def _callback(self, payment: NagadPayment) -> str:
        status_code, message = OUTCOMES[payment.status]
        outcome = {
            "merchant": payment.merchant_id,
            "order_id": payment.order_id,
            "payment_ref_id": payment.payment_ref_id,
            "status": payment.status,
            "status_code": status_code,
            "message": message,
            "payment_dt": _dhaka(payment.paid_at or self._clock()),
            "issuer_payment_ref": payment.issuer_ref,
        }
        joiner = "&" if urllib.parse.urlsplit(payment.callback_url).query else "?"
        return payment.callback_url + joiner + urllib.parse.urlencode(outcome)

    # -- checks and sealing --------------------------------------------------------------------
    @staticmethod
    def _require_headers(request: Request) -> None:
        missing = [name for name in REQUIRED_HEADERS if not request.headers.get(name)]
        if missing:
            raise Refusal("InvalidRequest", f"missing headers: {', '.join(missing)}")

    def _merchant(self, merchant_id: str) -> tuple[rsa.RSAPublicKey, str]:
        with self.lock:
            known = self._merchants.get(merchant_id)
        if known is None:
            raise Refusal("InvalidMerchant", f"merchant {merchant_id!r} is not registered", 403)
        return known

    def _payment(self, payment_ref_id: str) -> NagadPayment:
        payment = self.payments.get(payment_ref_id)
        if payment is None:
            raise Refusal("InvalidPaymentRefId", f"no payment {payment_ref_id!r}", 404)
        return payment

    def _addressed(self, request: Request) -> NagadPayment:
        """The payment a cancel names by paymentRefId (or, as Nagad's own sample does, orderId only)."""
        payment_ref_id, order_id = request.query.get("paymentRefId", ""), request.query.get("orderId", "")
        with self.lock:
            if payment_ref_id:
                payment = self._payment(payment_ref_id)
                if order_id and payment.order_id != order_id:
                    raise Refusal("InvalidRequest", "orderId is not the payment's")
                return payment
            found = [p for p in self.payments.values() if order_id and p.order_id == order_id]
            if len(found) != 1:
                raise Refusal("InvalidPaymentRefId", f"no payment for order {order_id!r}", 404)
            return found[0]

    @staticmethod
    def _amount(value: Any, name: str) -> Decimal:
        text = str(value) if isinstance(value, (str, int)) else ""
        try:
            amount = Decimal(text) if AMOUNT.fullmatch(text) else Decimal("0")
        except InvalidOperation:
            amount = Decimal("0")
        if amount <= 0:
            raise Refusal("InvalidAmount", f"{name} must be a positive amount with at most 2 decimals")
        return amount.quantize(Decimal("0.01"))

    def _opened(self, body: dict[str, Any], name: str, merchant_key: rsa.RSAPublicKey) -> dict[str, Any]:
        sealed, signature = body.get(name), body.get("signature")
        if not isinstance(sealed, str) or not isinstance(signature, str):
            raise Refusal("InvalidRequest", f"{name} and signature are required")
        try:
            text = self._key.decrypt(base64.b64decode(sealed, validate=True), padding.PKCS1v15())
        except ValueError as error:
            raise Refusal("InvalidSensitiveData", f"{name} does not decrypt with Nagad's key") from error
        try:
            merchant_key.verify(base64.b64decode(signature, validate=True), text, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError) as error:
            raise Refusal("InvalidSignature", "the signature does not verify with the merchant's key") from error
        try:
            values = json.loads(text)
        except ValueError as error:
            raise Refusal("InvalidSensitiveData", f"{name} is not JSON") from error
        if not isinstance(values, dict):
            raise Refusal("InvalidSensitiveData", f"{name} is not a JSON object")
        return values

    def _sealed(self, values: dict[str, str], merchant_key: rsa.RSAPublicKey, operation: str) -> dict[str, str]:
        text = json.dumps(values, separators=(",", ":")).encode()
        with self.lock:
            tampered = self._tampered.get(operation, 0) > 0
            if tampered:
                self._tampered[operation] -= 1
                if self._forger is None:
                    self._forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            signer = self._forger if tampered and self._forger is not None else self._key
        return {
            "sensitiveData": base64.b64encode(merchant_key.encrypt(text, padding.PKCS1v15())).decode(),
            "signature": base64.b64encode(signer.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode(),
        }


def _page_html(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}
header{{background:#ec1c24;color:#fff;padding:.75rem 1rem;font-weight:bold}}
label{{display:block;margin:.75rem 0}}input{{display:block;width:100%;padding:.4rem}}
.error{{color:#b00020}}.hint{{color:#666;font-size:.85rem}}</style></head>
<body><header>Nagad</header><h1>{html.escape(title)}</h1>
{body}
</body></html>"""


# -- the command line ---------------------------------------------------------------------------------
def _merchant_argument(text: str) -> tuple[str, str]:
    merchant_id, sep, path = text.partition(":")
    if not sep or not merchant_id or not path:
        raise argparse.ArgumentTypeError(f"--merchant takes ID:PUBLIC_KEY_PEM_FILE, not {text!r}")
    try:
        with open(path, encoding="ascii") as handle:
            return merchant_id, handle.read()
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {error.strerror}") from error


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Nagad merchant checkout API emulator (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0 picks a free one)")
    parser.add_argument("--public-key-out", default=None, help="write the emulator's public key (PEM) here")
    parser.add_argument(
        "--merchant",
        action="append",
        default=[],
        type=_merchant_argument,
        metavar="ID:PUBLIC_KEY_PEM_FILE",
        help="a merchant the emulator serves (repeatable)",
    )
    options = parser.parse_args(argv)
    emulator = NagadEmulator(port=options.port)
    try:
        for merchant_id, pem in options.merchant:
            emulator.add_merchant(merchant_id, pem)
    except ValueError as error:
        print(f"nagad emulator: {error}", file=sys.stderr)
        return 2
    if options.public_key_out:
        key_path = options.public_key_out
        with open(key_path, "w", encoding="ascii") as handle:
            handle.write(emulator.public_key_pem)
    else:
        with tempfile.NamedTemporaryFile(
            "w", prefix="nagad-emulator-", suffix=".pem", delete=False, encoding="ascii"
        ) as key_file:
            key_file.write(emulator.public_key_pem)
            key_path = key_file.name
    emulator.start()
    merchants = ", ".join(merchant_id for merchant_id, _pem_text in options.merchant) or "none"
    print(f"Nagad emulator listening on {emulator.url}; merchants: {merchants}", flush=True)
    print(f"Nagad public key: {key_path}", flush=True)
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    while not stopped.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
