"""A local SSLCommerz (API v4) for the tests and `make demo`: stores, sessions, the hosted payment page,
signed browser returns and IPNs, the order validation API, the transaction query (by tran_id and by
session), refunds and their query, and a settlement listing by day.

What it serves, on 127.0.0.1 only:

    POST /gwprocess/v4/api.php                     session (form) -> status, sessionkey, GatewayPageURL
    GET  /gwprocess/v4/gw.php?Q=pay&SESSIONKEY=    the payment page (card / bKash / Nagad; Pay, Decline, Cancel)
    POST /gwprocess/v4/pay.php                     the page's form: answers a page whose form posts itself
                                                   to success_url / fail_url / cancel_url, as SSLCommerz does
    GET  /validator/api/validationserverAPI.php    order validation by val_id (VALID first, then VALIDATED)
    GET  /validator/api/merchantTransIDvalidationAPI.php
              ?tran_id=       every attempt under that tran_id (no_of_trans_found, element)
              ?sessionkey=    one session
              ?bank_tran_id=&refund_amount=&refund_remarks=&refund_trans_id=&refe_id=   a refund
              ?refund_ref_id= a refund's state
    GET  /validator/api/settlement.php?date=YYYY-MM-DD
                                                   the paid transactions of a Bangladesh day: the emulator's
                                                   stand-in for the settlement report a real store downloads
                                                   from the merchant panel (API v4 has no such call)

The browser return is a POST, like the real one: the answer to "Pay" is a small page with a form of
the signed fields that submits itself (a button without JavaScript). The IPN is the same fields,
posted as a form to the session's ipn_url `ipn_times` times after `ipn_delay` seconds, for paid,
declined and cancelled payments alike. Signing follows SSLCommerz: `verify_key` names the fields,
`verify_sign` is the MD5 over them plus md5(store password), sorted and joined as `key=value&...`.

Assumptions where the public documentation says nothing: a session in another currency is converted
to BDT at fixed invented rates (`CURRENCY_RATES`); refunds are in BDT and bounded by what was paid less
what was refunded; a refund asked again with the same `refund_trans_id` answers the refund already
made (so a retry after a timeout cannot refund twice); refunds are refunded at once unless
`refunds_instant` is off (then "processing" until `settle_refunds()`). Times are Bangladesh wall-clock
time from `datetime.now`, so `time_machine` moves them.

Test controls: `pay(session_key, method)`, `decline(...)` and `cancel(...)` do what the page's buttons
do and return the fields the browser would bring back; `risky(tran_id)` (or `risk_level=1`) makes the
next payments risk_level 1; `payments` (by session key); `fail_next(operation, kind)` with the
operations session, page, pay, validate, query, refund, refund_status and settlement.

Run it by hand: `python -m sonjog.gateways.emulator.sslcommerz --port 8095 --store demo:demo@ssl`.
The page is the gateway's, not Sonjog's: like SSLCommerz's own page it is not translated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import html
import secrets
import signal
import string
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import FrameType
from zoneinfo import ZoneInfo

from sonjog.gateways.emulator.http import EmulatorServer, Request, Response

DHAKA = ZoneInfo("Asia/Dhaka")
CENT = Decimal("0.01")

SESSION_PATH = "/gwprocess/v4/api.php"
PAGE_PATH = "/gwprocess/v4/gw.php"
PAY_PATH = "/gwprocess/v4/pay.php"
VALIDATION_PATH = "/validator/api/validationserverAPI.php"
MERCHANT_API_PATH = "/validator/api/merchantTransIDvalidationAPI.php"
SETTLEMENT_PATH = "/validator/api/settlement.php"

# Invented, fixed BDT rates: enough to show that `amount` is BDT while currency_amount is what was asked.
CURRENCY_RATES = {
    "BDT": Decimal("1.0000"),
    "USD": Decimal("110.0000"),
    "EUR": Decimal("120.0000"),
    "GBP": Decimal("140.0000"),
    "AUD": Decimal("72.0000"),
    "CAD": Decimal("80.0000"),
    "SGD": Decimal("82.0000"),
    "INR": Decimal("1.3000"),
    "MYR": Decimal("23.0000"),
}
GATEWAY_FEE = Decimal("0.025")  # what store_amount leaves out

REQUIRED_SESSION_FIELDS = (
    "tran_id",
    "success_url",
    "fail_url",
    "cancel_url",
    "cus_name",
    "cus_email",
    "cus_add1",
    "cus_city",
    "cus_country",
    "cus_phone",
    "shipping_method",
    "product_name",
    "product_category",
    "product_profile",
)

# What each way of paying looks like in the answers: (card_type, card_brand, card_issuer, masked number).
METHODS = {
    "card": ("VISA-Dutch Bangla", "VISA", "DUTCH-BANGLA BANK LIMITED", "455445XXXXXX{last4}"),
    "bkash": ("BKASH-BKash", "MOBILEBANKING", "BKash Mobile Banking", "017XXXXX{last4}"),
    "nagad": ("NAGAD-Nagad", "MOBILEBANKING", "Nagad", "018XXXXX{last4}"),
}

PAID = ("VALID", "VALIDATED")
UNKNOWN_TIME = "0000-00-00 00:00:00"


@dataclass
class EmulatedRefund:
    refund_ref_id: str
    refund_trans_id: str
    refe_id: str
    amount: Decimal
    remarks: str
    status: str  # processing, refunded, cancelled
    initiated_on: dt.datetime
    refunded_on: dt.datetime | None = None


@dataclass
class EmulatedPayment:
    """One session and what became of it."""

    session_key: str
    store_id: str
    tran_id: str
    currency: str  # what the merchant asked in
    currency_amount: Decimal
    rate: Decimal
    amount: Decimal  # BDT, what is settled
    success_url: str
    fail_url: str
    cancel_url: str
    ipn_url: str
    form: dict[str, str]
    created_at: dt.datetime
    status: str = "PENDING"  # PENDING, VALID, VALIDATED, FAILED, CANCELLED
    val_id: str = ""
    bank_tran_id: str = ""
    method: str = ""
    card_no: str = ""
    tran_date: dt.datetime | None = None
    risk_level: int = 0
    error: str = ""
    validations: int = 0
    refunds: list[EmulatedRefund] = field(default_factory=list)

    @property
    def refunded(self) -> Decimal:
        return sum((refund.amount for refund in self.refunds if refund.status != "cancelled"), Decimal("0.00"))

    def record(self) -> dict[str, str]:
        """The transaction as the validator APIs and the IPN spell it (every value a string)."""
        card_type, card_brand, card_issuer, _ = METHODS.get(self.method, ("", "", "", ""))
        moment = self.tran_date or self.created_at
        paid = self.status in PAID
        return {
            "status": self.status,
            "tran_date": _gateway_time(moment),
            "tran_id": self.tran_id,
            "val_id": self.val_id,
            "amount": _money(self.amount),
            "store_amount": _money(self.amount * (1 - GATEWAY_FEE)) if paid else "",
            "bank_tran_id": self.bank_tran_id,
            "card_type": card_type,
            "card_no": self.card_no,
            "card_issuer": card_issuer,
            "card_brand": card_brand,
            "card_issuer_country": "Bangladesh" if self.method else "",
            "card_issuer_country_code": "BD" if self.method else "",
            "store_id": self.store_id,
            "currency": "BDT",
            "currency_type": self.currency,
            "currency_amount": _money(self.currency_amount),
            "currency_rate": f"{self.rate:.4f}",
            "base_fair": "0.00",
            "value_a": self.form.get("value_a", ""),
            "value_b": self.form.get("value_b", ""),
            "value_c": self.form.get("value_c", ""),
            "value_d": self.form.get("value_d", ""),
            "risk_level": str(self.risk_level),
            "risk_title": "Risky" if self.risk_level else "Safe",
            "error": self.error,
        }


class SslcommerzEmulator(EmulatorServer):
    """SSLCommerz for the stores in `stores` (store_id -> store password)."""

    name = "sslcommerz"

    def __init__(
        self,
        *,
        stores: Mapping[str, str],
        port: int = 0,
        ipn_times: int = 1,
        ipn_delay: float = 0.0,
        risk_level: int = 0,
        refunds_instant: bool = True,
    ) -> None:
        self.stores = dict(stores)
        self.ipn_times = ipn_times
        self.ipn_delay = ipn_delay
        self.risk_level = risk_level
        self.refunds_instant = refunds_instant
        self.payments: dict[str, EmulatedPayment] = {}
        self._risky: set[str] = set()
        super().__init__(port=port)

    # -- routes ------------------------------------------------------------------------------------
    def routes(self) -> None:
        self.route("POST", SESSION_PATH, self._session, "session")
        self.route("GET", PAGE_PATH, self._page, "page")
        self.route("POST", PAY_PATH, self._page_action, "pay")
        self.route("GET", VALIDATION_PATH, self._validate, "validate")
        self.route("GET", SETTLEMENT_PATH, self._settlement, "settlement")
        # SSLCommerz answers three APIs at one address, told apart by their parameters; each gets its own
        # fault switch, so the dispatcher is registered as it is and each API is wrapped on its own.
        query = self._with_faults(self._query, "query")
        refund = self._with_faults(self._refund, "refund")
        refund_status = self._with_faults(self._refund_status, "refund_status")

        def merchant_api(request: Request) -> Response:
            if "refund_amount" in request.query or "bank_tran_id" in request.query:
                return refund(request)
            if "refund_ref_id" in request.query:
                return refund_status(request)
            return query(request)

        self._routes[("GET", MERCHANT_API_PATH)] = merchant_api

    # -- test controls -------------------------------------------------------------------------------
    def pay(self, session_key: str, method: str = "bkash") -> dict[str, str]:
        """The payer pays with `method` (card, bkash, nagad): the signed fields the browser brings to
        success_url (the IPN carries the same)."""
        return self._finish(session_key, "pay", method)[1]

    def decline(self, session_key: str, method: str = "card") -> dict[str, str]:
        """The bank declines: the fields the browser brings to fail_url."""
        return self._finish(session_key, "decline", method)[1]

    def cancel(self, session_key: str) -> dict[str, str]:
        """The payer cancels on the page: the fields the browser brings to cancel_url."""
        return self._finish(session_key, "cancel", "")[1]

    def risky(self, tran_id: str) -> None:
        """Payments under `tran_id` come out risk_level 1 (paid, but to be held and checked)."""
        with self.lock:
            self._risky.add(tran_id)

    def settle_refunds(self) -> None:
        """Every refund still processing is refunded now."""
        with self.lock:
            for payment in self.payments.values():
                for refund in payment.refunds:
                    if refund.status == "processing":
                        refund.status = "refunded"
                        refund.refunded_on = _now()

    def session_of(self, tran_id: str) -> EmulatedPayment | None:
        """The latest session opened under `tran_id`."""
        with self.lock:
            found = [payment for payment in self.payments.values() if payment.tran_id == tran_id]
            return found[-1] if found else None

    # -- the session -----------------------------------------------------------------------------------
    def _session(self, request: Request) -> Response:
        form = request.form()
        store_id = self._store_of(form)
        if store_id is None:
            return _session_failed("Store Credential Error Or Store is De-active")
        missing = [name for name in REQUIRED_SESSION_FIELDS if not form.get(name, "").strip()]
        if missing:
            return _session_failed(f"Invalid Information! '{missing[0]}' is missing")
        amount = _amount(form.get("total_amount", ""))
        if amount is None or amount <= 0:
            return _session_failed("Invalid Information! 'total_amount' must be a positive amount with 2 decimals")
        currency = form.get("currency", "").upper()
        if currency not in CURRENCY_RATES:
            return _session_failed(f"Invalid Information! Currency '{currency}' is not supported")
        tran_id = form["tran_id"].strip()
        if len(tran_id) > 30:
            return _session_failed("Invalid Information! 'tran_id' is longer than 30 characters")
        for name in ("success_url", "fail_url", "cancel_url", "ipn_url"):
            value = form.get(name, "")
            if value and not value.startswith(("http://", "https://")):
                return _session_failed(f"Invalid Information! '{name}' is not an http(s) address")
        rate = CURRENCY_RATES[currency]
        session_key = secrets.token_hex(16).upper()
        payment = EmulatedPayment(
            session_key=session_key,
            store_id=store_id,
            tran_id=tran_id,
            currency=currency,
            currency_amount=amount,
            rate=rate,
            amount=(amount * rate).quantize(CENT, ROUND_HALF_UP),
            success_url=form["success_url"],
            fail_url=form["fail_url"],
            cancel_url=form["cancel_url"],
            ipn_url=form.get("ipn_url", ""),
            form=form,
            created_at=_now(),
        )
        with self.lock:
            self.payments[session_key] = payment
        page = f"{self.url}{PAGE_PATH}?Q=pay&SESSIONKEY={session_key}"
        return Response.of_json(
            {
                "status": "SUCCESS",
                "failedreason": "",
                "sessionkey": session_key,
                "GatewayPageURL": page,
                "redirectGatewayURL": page,
                "redirectGatewayURLFailed": "",
                "directPaymentURL": "",
                "store_name": store_id,
                "storeBanner": "",
                "storeLogo": "",
                "is_direct_pay_enable": "0",
            }
        )

    # -- the page ----------------------------------------------------------------------------------------
    def _page(self, request: Request) -> Response:
        with self.lock:
            payment = self.payments.get(request.query.get("SESSIONKEY", ""))
            if payment is None:
                return Response.of_html(
                    _document("Invalid session", "<p>This payment session does not exist.</p>"), 404
                )
            if payment.status != "PENDING":
                return Response.of_html(_document("Closed", "<p>This payment session is already closed.</p>"), 410)
            store, tran_id, key = payment.store_id, payment.tran_id, payment.session_key
            amount = f"{_money(payment.currency_amount)} {payment.currency}"
        choices = "".join(
            f'<label><input type="radio" name="method" value="{value}"{" checked" if value == "bkash" else ""}>'
            f" {label}</label><br>"
            for value, label in (("card", "Card (VISA / Mastercard)"), ("bkash", "bKash"), ("nagad", "Nagad"))
        )
        body = (
            f"<h1>{html.escape(store)}</h1>"
            f'<p>Amount: <strong class="amount">{html.escape(amount)}</strong></p>'
            f"<p>Transaction: {html.escape(tran_id)}</p>"
            f'<form method="post" action="{PAY_PATH}">'
            f'<input type="hidden" name="SESSIONKEY" value="{html.escape(key)}">'
            f"<fieldset><legend>Pay with</legend>{choices}</fieldset>"
            '<button type="submit" name="action" value="pay">Pay</button> '
            '<button type="submit" name="action" value="decline">Decline (test)</button> '
            '<button type="submit" name="action" value="cancel">Cancel</button>'
            "</form>"
        )
        return Response.of_html(_document("SSLCommerz (emulator)", body))

    def _page_action(self, request: Request) -> Response:
        form = request.form()
        action = form.get("action", "")
        method = form.get("method", "bkash")
        if action not in ("pay", "decline", "cancel") or (action != "cancel" and method not in METHODS):
            return Response.of_html(_document("Bad request", "<p>Choose a way to pay.</p>"), 400)
        try:
            target, fields = self._finish(form.get("SESSIONKEY", ""), action, method)
        except LookupError as error:
            return Response.of_html(_document("Closed", f"<p>{html.escape(str(error))}</p>"), 410)
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in fields.items()
        )
        body = (
            f'<form id="return" method="post" action="{html.escape(target)}">{inputs}'
            '<noscript><button type="submit">Return to the merchant</button></noscript></form>'
            '<script>document.getElementById("return").submit();</script>'
        )
        return Response.of_html(_document("Returning to the merchant", body))

    def _finish(self, session_key: str, action: str, method: str) -> tuple[str, dict[str, str]]:
        """Close the session as paid, declined or cancelled: (the return address, the signed fields)."""
        if action != "cancel" and method not in METHODS:
            raise ValueError(f"pay with one of {', '.join(METHODS)}, not {method!r}")
        with self.lock:
            payment = self.payments.get(session_key)
            if payment is None:
                raise LookupError("this payment session does not exist")
            if payment.status != "PENDING":
                raise LookupError(f"this payment session is already closed ({payment.status})")
            now = _now()
            payment.tran_date = now
            payment.method = method
            if method:
                payment.card_no = METHODS[method][3].format(last4=f"{secrets.randbelow(10_000):04d}")
            if action == "pay":
                payment.status = "VALID"
                payment.val_id = _gateway_id(now)
                payment.bank_tran_id = _gateway_id(now)
                payment.risk_level = 1 if self.risk_level == 1 or payment.tran_id in self._risky else 0
                target = payment.success_url
            elif action == "decline":
                payment.status = "FAILED"
                payment.bank_tran_id = _gateway_id(now)
                payment.error = "Declined by the issuer bank"
                target = payment.fail_url
            else:
                payment.status = "CANCELLED"
                payment.error = "Cancelled by User"
                target = payment.cancel_url
            fields = _signed(_notice_fields(payment), self.stores[payment.store_id])
            ipn_url, times, delay = payment.ipn_url, self.ipn_times, self.ipn_delay
        if ipn_url:
            self.post_back(ipn_url, data=dict(fields), delay=delay, times=times)
        return target, fields

    # -- the validator APIs --------------------------------------------------------------------------------
    def _validate(self, request: Request) -> Response:
        store_id = self._store_of(request.query)
        if store_id is None:
            return _not_connected(request.query)
        with self.lock:
            val_id = request.query.get("val_id", "")
            payment = next(
                (p for p in self.payments.values() if val_id and p.val_id == val_id and p.store_id == store_id), None
            )
            if payment is None:
                return Response.of_json({"APIConnect": "DONE", "status": "INVALID_TRANSACTION", "val_id": val_id})
            answer = {"APIConnect": "DONE", **payment.record(), "validated_on": _gateway_time(_now()), "gw_version": ""}
            payment.validations += 1
            if payment.status == "VALID":
                payment.status = "VALIDATED"  # a val_id is VALID once; every later validation says VALIDATED
        return Response.of_json(answer)

    def _query(self, request: Request) -> Response:
        store_id = self._store_of(request.query)
        if store_id is None:
            return _not_connected(request.query)
        with self.lock:
            if "sessionkey" in request.query:
                payment = self.payments.get(request.query["sessionkey"])
                if payment is None or payment.store_id != store_id:
                    return Response.of_json({"APIConnect": "DONE", "status": "INVALID_TRANSACTION"})
                return Response.of_json({"APIConnect": "DONE", "sessionkey": payment.session_key, **payment.record()})
            tran_id = request.query.get("tran_id", "")
            if not tran_id:
                return Response.of_json({"APIConnect": "INVALID_REQUEST"})
            elements = [p.record() for p in self.payments.values() if p.store_id == store_id and p.tran_id == tran_id]
        return Response.of_json({"APIConnect": "DONE", "no_of_trans_found": len(elements), "element": elements})

    def _refund(self, request: Request) -> Response:
        query = request.query
        store_id = self._store_of(query)
        if store_id is None:
            return _not_connected(query)
        bank_tran_id = query.get("bank_tran_id", "")
        refund_trans_id = query.get("refund_trans_id", "")
        base = {"APIConnect": "DONE", "bank_tran_id": bank_tran_id, "trans_id": "", "refund_ref_id": ""}
        amount = _amount(query.get("refund_amount", ""))
        if not bank_tran_id or not refund_trans_id or not query.get("refund_remarks") or amount is None:
            return Response.of_json({"APIConnect": "INVALID_REQUEST", **_without(base, "APIConnect")})
        with self.lock:
            payment = next(
                (p for p in self.payments.values() if p.store_id == store_id and p.bank_tran_id == bank_tran_id), None
            )
            if payment is None or payment.status not in PAID:
                return Response.of_json({**base, "status": "failed", "errorReason": "Invalid bank_tran_id"})
            base["trans_id"] = payment.tran_id
            earlier = next((r for r in payment.refunds if r.refund_trans_id == refund_trans_id), None)
            if earlier is not None:
                return Response.of_json(
                    {**base, "refund_ref_id": earlier.refund_ref_id, "status": "success", "errorReason": ""}
                )
            left = payment.amount - payment.refunded
            if amount <= 0 or amount > left:
                reason = f"Refund amount must be more than 0 and at most {_money(left)}"
                return Response.of_json({**base, "status": "failed", "errorReason": reason})
            now = _now()
            refund = EmulatedRefund(
                refund_ref_id=secrets.token_hex(7),
                refund_trans_id=refund_trans_id,
                refe_id=query.get("refe_id", ""),
                amount=amount,
                remarks=query["refund_remarks"],
                status="refunded" if self.refunds_instant else "processing",
                initiated_on=now,
                refunded_on=now if self.refunds_instant else None,
            )
            payment.refunds.append(refund)
        return Response.of_json({**base, "refund_ref_id": refund.refund_ref_id, "status": "success", "errorReason": ""})

    def _refund_status(self, request: Request) -> Response:
        store_id = self._store_of(request.query)
        if store_id is None:
            return _not_connected(request.query)
        reference = request.query.get("refund_ref_id", "")
        with self.lock:
            for payment in self.payments.values():
                for refund in payment.refunds:
                    if payment.store_id == store_id and refund.refund_ref_id == reference:
                        return Response.of_json(
                            {
                                "APIConnect": "DONE",
                                "bank_tran_id": payment.bank_tran_id,
                                "tran_id": payment.tran_id,
                                "refund_ref_id": reference,
                                "initiated_on": _gateway_time(refund.initiated_on),
                                "refunded_on": _refund_time(refund.refunded_on),
                                "status": refund.status,
                                "errorReason": "",
                            }
                        )
        return Response.of_json(
            {
                "APIConnect": "DONE",
                "bank_tran_id": "",
                "tran_id": "",
                "refund_ref_id": reference,
                "initiated_on": UNKNOWN_TIME,
                "refunded_on": UNKNOWN_TIME,
                "status": "failed",
                "errorReason": "Unknown Refund Ref ID",
            }
        )

    def _settlement(self, request: Request) -> Response:
        store_id = self._store_of(request.query)
        if store_id is None:
            return _not_connected(request.query)
        try:
            day = dt.date.fromisoformat(request.query.get("date", ""))
        except ValueError:
            return Response.of_json({"APIConnect": "INVALID_REQUEST", "errorReason": "date must be YYYY-MM-DD"})
        with self.lock:
            elements = [
                p.record()
                for p in self.payments.values()
                if p.store_id == store_id
                and p.status in PAID
                and p.tran_date is not None
                and p.tran_date.astimezone(DHAKA).date() == day
            ]
        elements.sort(key=lambda element: element["tran_date"])
        return Response.of_json(
            {"APIConnect": "DONE", "date": day.isoformat(), "no_of_trans_found": len(elements), "element": elements}
        )

    def _store_of(self, params: Mapping[str, str]) -> str | None:
        """The store whose id and password `params` carry, or None."""
        store_id = params.get("store_id", "")
        expected = self.stores.get(store_id)
        given = params.get("store_passwd", "")
        if expected is None or not hmac.compare_digest(expected.encode(), given.encode()):
            return None
        return store_id


# -- helpers -------------------------------------------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(DHAKA)


def _gateway_time(moment: dt.datetime) -> str:
    return moment.astimezone(DHAKA).strftime("%Y-%m-%d %H:%M:%S")


def _gateway_id(moment: dt.datetime) -> str:
    # Like SSLCommerz's val_id and bank_tran_id: the time, then random letters and digits.
    alphabet = string.ascii_letters + string.digits
    return moment.astimezone(DHAKA).strftime("%y%m%d%H%M%S") + "".join(secrets.choice(alphabet) for _ in range(15))


def _refund_time(moment: dt.datetime | None) -> str:
    return _gateway_time(moment) if moment is not None else UNKNOWN_TIME


def _money(amount: Decimal) -> str:
    return f"{amount.quantize(CENT, ROUND_HALF_UP)}"


def _amount(text: str) -> Decimal | None:
    try:
        amount = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        return None
    if not amount.is_finite() or amount != amount.quantize(CENT):
        return None
    return amount


def _notice_fields(payment: EmulatedPayment) -> dict[str, str]:
    fields = payment.record()
    if payment.status not in PAID:
        for name in ("val_id", "store_amount", "risk_level", "risk_title"):
            fields.pop(name, None)
    return fields


def _signed(fields: dict[str, str], store_password: str) -> dict[str, str]:
    signed = {**fields, "store_passwd": hashlib.md5(store_password.encode()).hexdigest()}
    text = "&".join(f"{name}={signed[name]}" for name in sorted(signed))
    return {**fields, "verify_sign": hashlib.md5(text.encode()).hexdigest(), "verify_key": ",".join(fields)}


def _session_failed(reason: str) -> Response:
    return Response.of_json({"status": "FAILED", "failedreason": reason, "sessionkey": "", "GatewayPageURL": ""})


def _not_connected(params: Mapping[str, str]) -> Response:
    # Missing credentials are a malformed request; wrong ones fail the authentication.
    if not params.get("store_id") or not params.get("store_passwd"):
        return Response.of_json({"APIConnect": "INVALID_REQUEST"})
    return Response.of_json({"APIConnect": "FAILED", "status": "INVALID"})


def _without(values: dict[str, str], key: str) -> dict[str, str]:
    return {name: value for name, value in values.items() if name != key}


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )


# -- the command line ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="SSLCommerz API v4 emulator (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=8095, help="port to listen on (0 picks a free one)")
    parser.add_argument(
        "--store", action="append", required=True, metavar="ID:PASSWORD", help="a store; repeat for more"
    )
    parser.add_argument("--ipn-times", type=int, default=1, help="deliver each IPN this many times")
    parser.add_argument("--ipn-delay", type=float, default=0.0, help="seconds before the IPN is posted")
    parser.add_argument("--risk-level", type=int, choices=(0, 1), default=0, help="1 marks every payment risky")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    stores: dict[str, str] = {}
    for text in args.store:
        store_id, colon, password = text.partition(":")
        if not colon or not store_id or not password:
            parser.error(f"--store takes ID:PASSWORD, not {text!r}")
        stores[store_id] = password
    emulator = SslcommerzEmulator(
        stores=stores, port=args.port, ipn_times=args.ipn_times, ipn_delay=args.ipn_delay, risk_level=args.risk_level
    )
    emulator.start()
    print(f"SSLCommerz emulator listening on {emulator.url}; stores {', '.join(stores)}", flush=True)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    while not stopped.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
