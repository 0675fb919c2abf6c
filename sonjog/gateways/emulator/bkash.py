"""A local bKash Tokenized Checkout (v1.2.0-beta): the same paths and JSON as bKash, on 127.0.0.1.

The API is served under `{url}/v1.2.0-beta/tokenized/checkout/...`, so the client's `base_url` is
`emulator.api_url`, the same shape as bKash's own (`https://tokenized.pay.bka.sh/v1.2.0-beta`).
Operations, the names `fail_next` takes: grant, refresh, create, execute, status, search_transaction,
refund (bKash's refund and refund status share one API), transactions (the daily listing), checkout
(the payer's page), certificate (the webhook signing certificate).

The payer's side is the checkout page at the `bkashURL` create answers: wallet number and PIN;
PIN 12121 pays, any other fails the payment, Cancel cancels it; each goes back to the merchant's
callbackURL with `paymentID` and `status=success|failure|cancel`. Tests without a browser call
`pay()`. Wallet 01770618576 has too little balance: its payment fails at execute with 2023.

After an execute, a merchant that gave `webhook_url` gets what bKash sends through Amazon SNS: a
Notification signed (SignatureVersion 2, or 1 if asked) with a self-signed RSA certificate made when
the emulator starts and served by it at the message's SigningCertURL; `notify_times` and
`notify_delay` make it arrive twice, or late.

Run alone: `python -m sonjog.gateways.emulator.bkash --port N --username U --password P --app-key K
--app-secret S`.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import html
import json
import re
import secrets
import signal
import string
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import FrameType, MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sonjog.gateways.emulator.http import EmulatorServer, Handler, Request, Response

API_VERSION = "v1.2.0-beta"
API_PREFIX = f"/{API_VERSION}/tokenized/checkout"
CHECKOUT_PATH = "/redirect/tokenized/"
CERTIFICATE_PATH = "/SimpleNotificationService-emulator.pem"
PAYER_PIN = "12121"
PAYER_WALLET = "01770618575"
LOW_BALANCE_WALLET = "01770618576"
DHAKA = dt.timezone(dt.timedelta(hours=6))  # bKash's clock: Bangladesh has kept +06:00 without DST since 2009
TOPIC_ARN = "arn:aws:sns:ap-southeast-1:000000000000:bkash-emulator"
TRANSACTION_TYPE = "bKash Tokenized Checkout via API"

_WALLET = re.compile(r"^01[3-9]\d{8}$")
_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
_ID_CHARACTERS = string.ascii_uppercase + string.digits

# bKash's codes and messages. The grant and refresh refusals (2079, 2080) and "no refund yet" (2033)
# are the emulator's choice: bKash's published list does not settle which code those answers carry.
MESSAGES = {
    "0000": "Successful",
    "2001": "Invalid App Key",
    "2002": "Invalid Payment ID",
    "2006": "Invalid Amount",
    "2007": "Invalid Currency",
    "2008": "Invalid Intent",
    "2023": "Insufficient Balance",
    "2025": "Invalid request body",
    "2026": "The reversal amount cannot be greater than the original transaction amount",
    "2029": "Duplicate for all transactions",
    "2031": "Invalid Merchant Invoice Number",
    "2033": "Transaction not found",
    "2048": "Invalid Payer Reference",
    "2049": "Invalid Merchant Callback URL",
    "2056": "Invalid Payment State",
    "2063": "Mode is not valid as per request data",
    "2065": "Mandatory field missing",
    "2079": "Invalid username and password",
    "2080": "Invalid refresh token",
    "2117": "Payment execution already been called before",
}


def bkash_time(moment: dt.datetime) -> str:
    """bKash's way of writing a time: "2019-08-07T11:15:56:336 GMT+0600", in Dhaka."""
    local = moment.astimezone(DHAKA)
    return f"{local:%Y-%m-%dT%H:%M:%S}:{local.microsecond // 1000:03d} GMT+0600"


def _new_id(length: int) -> str:
    return "".join(secrets.choice(_ID_CHARACTERS) for _ in range(length))


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class EmulatedRefund:
    refund_trx_id: str
    amount: Decimal
    sku: str
    reason: str
    completed_at: dt.datetime


@dataclass
class EmulatedPayment:
    payment_id: str
    amount: Decimal
    amount_text: str  # as the merchant sent it: bKash echoes it back unchanged
    currency: str
    intent: str
    merchant_invoice_number: str
    payer_reference: str
    callback_url: str
    created_at: dt.datetime
    transaction_status: str = "Initiated"
    confirmed: bool = False  # the payer confirmed with the right PIN; execute may now take the money
    wallet: str = ""
    trx_id: str = ""
    executed_at: dt.datetime | None = None
    refunds: list[EmulatedRefund] = field(default_factory=list)

    @property
    def refunded(self) -> Decimal:
        return sum((refund.amount for refund in self.refunds), Decimal("0.00"))

    @property
    def open(self) -> bool:
        return self.transaction_status == "Initiated" and not self.confirmed


class BkashEmulator(EmulatorServer):
    name = "bkash"

    def __init__(
        self,
        *,
        username: str,
        password: str,
        app_key: str,
        app_secret: str,
        port: int = 0,
        token_seconds: int = 3600,
        refresh_seconds: int = 28 * 24 * 3600,
        webhook_url: str | None = None,
        notify_times: int = 1,
        notify_delay: float = 0.0,
        signature_version: str = "2",
        merchant_name: str = "Sonjog Demo ISP",
        short_code: str = "01700000000",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(port=port)
        self.username, self.password, self.app_key, self.app_secret = username, password, app_key, app_secret
        self.token_seconds = token_seconds
        self.refresh_seconds = refresh_seconds
        self.webhook_url = webhook_url
        self.notify_times = notify_times
        self.notify_delay = notify_delay
        self.signature_version = signature_version
        self.merchant_name = merchant_name
        self.short_code = short_code
        self.low_balance_wallets: set[str] = {LOW_BALANCE_WALLET}
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._payments: dict[str, EmulatedPayment] = {}
        self._id_tokens: dict[str, dt.datetime] = {}
        self._refresh_tokens: dict[str, dt.datetime] = {}
        self._signing_key: rsa.RSAPrivateKey | None = None
        self._certificate_pem = b""

    # -- set up ---------------------------------------------------------------------------------
    def routes(self) -> None:
        api = API_PREFIX
        self.route("POST", f"{api}/token/grant", self._grant, "grant")
        self.route("POST", f"{api}/token/refresh", self._refresh, "refresh")
        self.route("POST", f"{api}/create", self._authorized(self._create), "create")
        self.route("POST", f"{api}/execute", self._authorized(self._execute), "execute")
        self.route("POST", f"{api}/payment/status", self._authorized(self._query), "status")
        self.route(
            "POST", f"{api}/general/searchTransaction", self._authorized(self._search_transaction), "search_transaction"
        )
        self.route("POST", f"{api}/payment/refund", self._authorized(self._refund), "refund")
        self.route("POST", f"{api}/general/transactions", self._authorized(self._transactions), "transactions")
        self.route("GET", CHECKOUT_PATH, self._checkout_page, "checkout")
        self.route("POST", CHECKOUT_PATH, self._checkout_submit, "checkout")
        self.route("GET", CERTIFICATE_PATH, self._certificate, "certificate")

    def start(self) -> BkashEmulator:
        """Makes the webhook signing key and its self-signed certificate, then serves."""
        with self.lock:
            if self._signing_key is None:
                self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._certificate_pem = self._self_signed(self._signing_key)
        super().start()
        return self

    def _self_signed(self, key: rsa.RSAPrivateKey) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bKash emulator SNS signing")])
        now = self._clock()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def api_url(self) -> str:
        """What a client's `base_url` is for this emulator."""
        return f"{self.url}/{API_VERSION}"

    @property
    def certificate_url(self) -> str:
        return f"{self.url}{CERTIFICATE_PATH}"

    @property
    def certificate_pem(self) -> bytes:
        return self._certificate_pem

    # -- test controls --------------------------------------------------------------------------
    @property
    def payments(self) -> Mapping[str, EmulatedPayment]:
        """A read-only snapshot of every payment: changing it changes nothing here."""
        with self.lock:
            return MappingProxyType(copy.deepcopy(self._payments))

    def pay(self, payment_id: str, wallet: str = PAYER_WALLET) -> None:
        """What the payer's Confirm with the right PIN does: the payment may now be executed."""
        with self.lock:
            payment = self._payments[payment_id]
            if not payment.open:
                raise ValueError(f"payment {payment_id} is {payment.transaction_status}, not open")
            payment.confirmed, payment.wallet = True, wallet

    def expire(self, payment_id: str) -> None:
        """The payment's time ran out before it was executed (bKash gives the payer minutes, not hours)."""
        with self.lock:
            payment = self._payments[payment_id]
            if payment.transaction_status == "Completed":
                raise ValueError(f"payment {payment_id} is completed and cannot expire")
            payment.transaction_status = "Expired"

    # -- answers --------------------------------------------------------------------------------
    @staticmethod
    def _error(code: str) -> Response:
        return Response.of_json({"statusCode": code, "statusMessage": MESSAGES[code]})

    @staticmethod
    def _ok(answer: dict[str, Any]) -> Response:
        return Response.of_json({**answer, "statusCode": "0000", "statusMessage": MESSAGES["0000"]})

    def _authorized(self, handler: Callable[[dict[str, Any]], Response]) -> Handler:
        """bKash's API gateway: a missing, unknown or expired id_token is HTTP 401 before anything else."""

        def run(request: Request) -> Response:
            token = request.headers.get("authorization", "")
            with self.lock:
                expires = self._id_tokens.get(token)
            if expires is None:
                return Response.of_json({"message": "Unauthorized"}, 401)
            if expires <= self._clock():
                return Response.of_json({"message": "The incoming token has expired"}, 401)
            if request.headers.get("x-app-key") != self.app_key:
                return self._error("2001")
            try:
                body = request.json()
            except ValueError:
                return self._error("2025")
            return handler(body)

        return run

    # -- tokens ---------------------------------------------------------------------------------
    def _credentials_refusal(self, request: Request, body: dict[str, Any]) -> Response | None:
        if body.get("app_key") != self.app_key:
            return self._error("2001")
        username, password = request.headers.get("username"), request.headers.get("password")
        if username != self.username or password != self.password or body.get("app_secret") != self.app_secret:
            return self._error("2079")
        return None

    def _issue(self, refresh_token: str | None) -> Response:
        now = self._clock()
        id_token = secrets.token_urlsafe(48)
        with self.lock:
            self._id_tokens[id_token] = now + dt.timedelta(seconds=self.token_seconds)
            if refresh_token is None:
                refresh_token = secrets.token_urlsafe(48)
                self._refresh_tokens[refresh_token] = now + dt.timedelta(seconds=self.refresh_seconds)
        return self._ok(
            {
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": self.token_seconds,
                "refresh_token": refresh_token,
            }
        )

    def _grant(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self._error("2025")
        return self._credentials_refusal(request, body) or self._issue(None)

    def _refresh(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return self._error("2025")
        refusal = self._credentials_refusal(request, body)
        if refusal is not None:
            return refusal
        refresh_token = str(body.get("refresh_token") or "")
        with self.lock:
            expires = self._refresh_tokens.get(refresh_token)
        if expires is None or expires <= self._clock():
            return self._error("2080")
        return self._issue(refresh_token)

    # -- payments -------------------------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> Response:
        fields = ("mode", "payerReference", "callbackURL", "amount", "currency", "intent", "merchantInvoiceNumber")
        if any(not isinstance(body.get(name), str) or not body[name] for name in fields):
            return self._error("2065")
        if body["mode"] != "0011":
            return self._error("2063")
        if len(body["payerReference"]) > 255:
            return self._error("2048")
        if not body["callbackURL"].startswith(("http://", "https://")):
            return self._error("2049")
        if not _AMOUNT.match(body["amount"]) or Decimal(body["amount"]) <= 0:
            return self._error("2006")
        if body["currency"] != "BDT":
            return self._error("2007")
        if body["intent"] != "sale":
            return self._error("2008")
        invoice = body["merchantInvoiceNumber"]
        if len(invoice) > 255:
            return self._error("2031")
        now = self._clock()
        payment_id = f"TR0011{_new_id(8)}{int(now.timestamp() * 1000)}"
        with self.lock:
            if any(
                p.merchant_invoice_number == invoice and p.transaction_status == "Completed"
                for p in self._payments.values()
            ):
                return self._error("2029")
            payment = EmulatedPayment(
                payment_id=payment_id,
                amount=Decimal(body["amount"]).quantize(Decimal("0.01")),
                amount_text=body["amount"],
                currency=body["currency"],
                intent=body["intent"],
                merchant_invoice_number=invoice,
                payer_reference=body["payerReference"],
                callback_url=body["callbackURL"],
                created_at=now,
            )
            self._payments[payment_id] = payment
        callback = payment.callback_url
        return self._ok(
            {
                "paymentID": payment_id,
                "bkashURL": _with_query(
                    f"{self.url}{CHECKOUT_PATH}",
                    paymentID=payment_id,
                    hash=secrets.token_urlsafe(24),
                    mode="0011",
                    apiVersion=API_VERSION,
                ),
                "callbackURL": callback,
                "successCallbackURL": _with_query(callback, paymentID=payment_id, status="success"),
                "failureCallbackURL": _with_query(callback, paymentID=payment_id, status="failure"),
                "cancelledCallbackURL": _with_query(callback, paymentID=payment_id, status="cancel"),
                "amount": payment.amount_text,
                "intent": payment.intent,
                "currency": payment.currency,
                "paymentCreateTime": bkash_time(now),
                "transactionStatus": payment.transaction_status,
                "merchantInvoiceNumber": invoice,
            }
        )

    def _execute(self, body: dict[str, Any]) -> Response:
        notification: dict[str, str] | None = None
        with self.lock:
            payment = self._payments.get(str(body.get("paymentID") or ""))
            if payment is None:
                return self._error("2002")
            if payment.transaction_status == "Completed":
                return self._error("2117")
            if payment.transaction_status != "Initiated" or not payment.confirmed:
                return self._error("2056")
            if payment.wallet in self.low_balance_wallets:
                payment.transaction_status = "Failed"
                return self._error("2023")
            payment.transaction_status = "Completed"
            payment.trx_id = _new_id(10)
            payment.executed_at = self._clock()
            answer = {
                "paymentID": payment.payment_id,
                "customerMsisdn": payment.wallet,
                "payerReference": payment.payer_reference,
                "paymentExecuteTime": bkash_time(payment.executed_at),
                "trxID": payment.trx_id,
                "transactionStatus": payment.transaction_status,
                "amount": payment.amount_text,
                "currency": payment.currency,
                "intent": payment.intent,
                "merchantInvoiceNumber": payment.merchant_invoice_number,
            }
            if self.webhook_url:
                notification = self._notification(payment)
        if notification is not None and self.webhook_url:
            self.post_back(
                self.webhook_url,
                json_body=notification,
                headers={
                    "Content-Type": "text/plain; charset=UTF-8",
                    "x-amz-sns-message-type": notification["Type"],
                    "x-amz-sns-message-id": notification["MessageId"],
                    "x-amz-sns-topic-arn": notification["TopicArn"],
                },
                delay=self.notify_delay,
                times=self.notify_times,
            )
        return self._ok(answer)

    def _query(self, body: dict[str, Any]) -> Response:
        with self.lock:
            payment = self._payments.get(str(body.get("paymentID") or ""))
            if payment is None:
                return self._error("2002")
            answer: dict[str, Any] = {
                "paymentID": payment.payment_id,
                "mode": "0011",
                "paymentCreateTime": bkash_time(payment.created_at),
                "amount": payment.amount_text,
                "currency": payment.currency,
                "intent": payment.intent,
                "merchantInvoiceNumber": payment.merchant_invoice_number,
                "transactionStatus": payment.transaction_status,
                "payerReference": payment.payer_reference,
                "userVerificationStatus": "Complete" if payment.confirmed else "Incomplete",
            }
            if payment.executed_at is not None:
                answer |= {
                    "paymentExecuteTime": bkash_time(payment.executed_at),
                    "trxID": payment.trx_id,
                    "customerMsisdn": payment.wallet,
                }
        return self._ok(answer)

    def _search_transaction(self, body: dict[str, Any]) -> Response:
        trx_id = str(body.get("trxID") or "")
        with self.lock:
            payment = next((p for p in self._payments.values() if trx_id and p.trx_id == trx_id), None)
            if payment is None or payment.executed_at is None:
                return self._error("2033")
            return self._ok(
                {
                    "trxID": payment.trx_id,
                    "initiationTime": bkash_time(payment.created_at),
                    "completedTime": bkash_time(payment.executed_at),
                    "transactionType": TRANSACTION_TYPE,
                    "customerMsisdn": payment.wallet,
                    "transactionStatus": payment.transaction_status,
                    "amount": payment.amount_text,
                    "currency": payment.currency,
                    "organizationShortCode": self.short_code,
                }
            )

    def _transactions(self, body: dict[str, Any]) -> Response:
        """The emulator's stand-in for the settlement report a merchant downloads from bKash's portal:
        the payments completed on one Dhaka calendar day."""
        try:
            day = dt.date.fromisoformat(str(body.get("date") or ""))
        except ValueError:
            return self._error("2025")
        with self.lock:
            paid = sorted(
                (
                    p
                    for p in self._payments.values()
                    if p.executed_at is not None and p.executed_at.astimezone(DHAKA).date() == day
                ),
                key=lambda p: (p.executed_at, p.trx_id),
            )
            rows = [
                {
                    "paymentID": p.payment_id,
                    "trxID": p.trx_id,
                    "merchantInvoiceNumber": p.merchant_invoice_number,
                    "amount": p.amount_text,
                    "currency": p.currency,
                    "transactionStatus": p.transaction_status,
                    "customerMsisdn": p.wallet,
                    "completedTime": bkash_time(p.executed_at),
                    "organizationShortCode": self.short_code,
                    "refundedAmount": f"{p.refunded:.2f}",
                }
                for p in paid
                if p.executed_at is not None
            ]
        return self._ok({"date": day.isoformat(), "transactions": rows})

    # -- refunds --------------------------------------------------------------------------------
    def _refund(self, body: dict[str, Any]) -> Response:
        """Refund when the body has an amount, refund status when it has not (one API at bKash)."""
        with self.lock:
            payment = self._payments.get(str(body.get("paymentID") or ""))
            if payment is None:
                return self._error("2002")
            if not payment.trx_id or body.get("trxID") != payment.trx_id:
                return self._error("2033")
            if "amount" not in body:
                if not payment.refunds:
                    return self._error("2033")
                return self._ok(self._refund_answer(payment, payment.refunds[-1]))
            amount_text = str(body.get("amount") or "")
            if not _AMOUNT.match(amount_text) or Decimal(amount_text) <= 0:
                return self._error("2006")
            amount = Decimal(amount_text).quantize(Decimal("0.01"))
            if amount > payment.amount - payment.refunded:
                return self._error("2026")
            refund = EmulatedRefund(
                refund_trx_id=_new_id(10),
                amount=amount,
                sku=str(body.get("sku") or ""),
                reason=str(body.get("reason") or ""),
                completed_at=self._clock(),
            )
            payment.refunds.append(refund)
            return self._ok(self._refund_answer(payment, refund))

    @staticmethod
    def _refund_answer(payment: EmulatedPayment, refund: EmulatedRefund) -> dict[str, Any]:
        return {
            "completedTime": bkash_time(refund.completed_at),
            "transactionStatus": "Completed",
            "originalTrxID": payment.trx_id,
            "refundTrxID": refund.refund_trx_id,
            "amount": f"{refund.amount:.2f}",
            "currency": payment.currency,
            "charge": "0.00",
        }

    # -- the payer's page -----------------------------------------------------------------------
    def _checkout_page(self, request: Request) -> Response:
        with self.lock:
            payment = self._payments.get(request.query.get("paymentID", ""))
            if payment is None:
                return Response.of_html(_page("bKash", "<p>Unknown payment.</p>"), 404)
            snapshot = copy.deepcopy(payment)
        if not snapshot.open:
            return Response.of_html(
                _page("bKash", f"<p>This payment is {html.escape(snapshot.transaction_status)}.</p>"), 409
            )
        return Response.of_html(self._form(snapshot, wallet="", error=""))

    def _form(self, payment: EmulatedPayment, *, wallet: str, error: str) -> str:
        escape = html.escape
        warning = f'<p class="error">{escape(error)}</p>' if error else ""
        body = f"""
<dl>
  <dt>Merchant</dt><dd class="merchant">{escape(self.merchant_name)}</dd>
  <dt>Invoice</dt><dd>{escape(payment.merchant_invoice_number)}</dd>
  <dt>Amount</dt><dd class="amount">৳ {payment.amount:.2f} {escape(payment.currency)}</dd>
</dl>
{warning}
<form method="post" action="{CHECKOUT_PATH}">
  <input type="hidden" name="paymentID" value="{escape(payment.payment_id)}">
  <label>Your bKash account number
    <input name="wallet" inputmode="numeric" autocomplete="tel" placeholder="e.g 01XXXXXXXXX"
           value="{escape(wallet)}"></label>
  <label>PIN <input name="pin" type="password" inputmode="numeric" maxlength="5"></label>
  <button type="submit" name="action" value="confirm">Confirm</button>
  <button type="submit" name="action" value="cancel">Cancel</button>
</form>"""
        return _page("bKash Checkout", body)

    def _checkout_submit(self, request: Request) -> Response:
        form = request.form()
        with self.lock:
            payment = self._payments.get(form.get("paymentID", ""))
            if payment is None:
                return Response.of_html(_page("bKash", "<p>Unknown payment.</p>"), 404)
            if not payment.open:
                return Response.of_html(
                    _page("bKash", f"<p>This payment is {html.escape(payment.transaction_status)}.</p>"), 409
                )
            wallet = form.get("wallet", "").strip()
            if form.get("action") == "cancel":
                payment.transaction_status, outcome = "Cancelled", "cancel"
            elif not _WALLET.match(wallet):
                return Response.of_html(
                    self._form(copy.deepcopy(payment), wallet=wallet, error="Enter an 11-digit bKash account number."),
                    400,
                )
            elif form.get("pin") == PAYER_PIN:
                payment.confirmed, payment.wallet, outcome = True, wallet, "success"
            else:
                payment.transaction_status, payment.wallet, outcome = "Failed", wallet, "failure"
            location = _with_query(payment.callback_url, paymentID=payment.payment_id, status=outcome)
        return Response.redirect(location)

    # -- the webhook ----------------------------------------------------------------------------
    def _certificate(self, request: Request) -> Response:
        return Response(body=self._certificate_pem, content_type="application/x-pem-file")

    def _notification(self, payment: EmulatedPayment) -> dict[str, str]:
        """An Amazon SNS Notification whose Message is bKash's webhook payload for the payment."""
        assert payment.executed_at is not None and self._signing_key is not None
        payload = {
            "dateTime": payment.executed_at.astimezone(DHAKA).strftime("%Y%m%d%H%M%S"),
            "debitMSISDN": payment.wallet,
            "creditOrganizationName": self.merchant_name,
            "creditShortCode": self.short_code,
            "trxID": payment.trx_id,
            "transactionStatus": payment.transaction_status,
            "transactionType": TRANSACTION_TYPE,
            "amount": payment.amount_text,
            "currency": payment.currency,
            # What bKash fills in here is not pinned down by its documents; the emulator puts our
            # invoice number, and the receiver confirms by trxID anyway.
            "transactionReference": payment.merchant_invoice_number,
        }
        stamp = self._clock().astimezone(dt.UTC)
        message = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": TOPIC_ARN,
            "Message": json.dumps(payload, separators=(",", ":")),
            "Timestamp": f"{stamp:%Y-%m-%dT%H:%M:%S}.{stamp.microsecond // 1000:03d}Z",
            "SignatureVersion": self.signature_version,
            "SigningCertURL": self.certificate_url,
            "UnsubscribeURL": f"{self.url}/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:{uuid.uuid4()}",
        }
        signed = "".join(
            f"{name}\n{message[name]}\n" for name in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
        )
        algorithm: hashes.HashAlgorithm = hashes.SHA1() if self.signature_version == "1" else hashes.SHA256()
        signature = self._signing_key.sign(signed.encode(), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; max-width: 24rem; margin: 2rem auto; padding: 0 1rem; }}
header {{ background: #e2136e; color: #fff; padding: .75rem 1rem; font-weight: bold; }}
label {{ display: block; margin: .75rem 0; }} input {{ display: block; width: 100%; padding: .4rem; }}
button {{ margin-right: .5rem; padding: .5rem 1rem; }} .error {{ color: #b00020; }}
dt {{ font-size: .8rem; color: #555; }} dd {{ margin: 0 0 .5rem; }}
</style></head>
<body><header>bKash</header>{body}</body></html>"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bKash Tokenized Checkout emulator (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--app-key", required=True)
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--webhook-url", default=None, help="where to POST the signed payment notifications")
    parser.add_argument("--token-seconds", type=int, default=3600)
    options = parser.parse_args(argv)
    emulator = BkashEmulator(
        port=options.port,
        username=options.username,
        password=options.password,
        app_key=options.app_key,
        app_secret=options.app_secret,
        webhook_url=options.webhook_url,
        token_seconds=options.token_seconds,
    )
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    emulator.start()
    print(f"bKash emulator listening; base_url {emulator.api_url}", file=sys.stdout, flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
