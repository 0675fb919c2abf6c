"""SSLCommerz (API v4) for one store: the hosted payment page, the order validation API, the transaction
query, refunds and the IPN signature.

The flow, and what each step may be trusted for:

1. `create` asks for a session (`POST /gwprocess/v4/api.php`, a form) and sends the payer to the
   `GatewayPageURL` it answers. The three browser return addresses are our `return_url` with an
   `outcome` marker (`success`, `fail`, `cancel`) so the return view knows which door the payer
   came back through; the marker is a hint for the page shown, never a verdict.
2. The gateway posts the browser back (a form with `val_id`, `tran_id`, `status`, `verify_sign`...)
   and, separately, its IPN to `notify_url`. Both are signed (`ipn_signature_valid`), and neither is
   trusted alone: anybody can post a form.
3. `complete` hands the `val_id` to the order validation API, the gateway's own answer. A browser
   return without a `val_id` (the fail and cancel doors, or a payer who pressed Back) is answered by
   asking about the session itself.
4. `status` asks by our `tran_id` (the transaction query lists every attempt made under it) for the
   recheck, when nobody came back or an answer timed out.

A wrong `val_id` (mistyped, forged, or another store's) raises `GatewayError` with the code
`INVALID_TRANSACTION` rather than reporting the payment failed: the number says nothing about our
payment, which the payer may well have paid, and a failed verdict would close the attempt. The
recheck by `tran_id` then tells the truth.

Amounts: a session in another currency is converted and settled in BDT; the answers carry the BDT
`amount` and, in `currency_type`/`currency_amount`, what we asked for, which is what `Status` reports.
Every call has the client's timeout; no answer, a broken connection or an HTTP 5xx raise
`GatewayTimeout` (the outcome is unknown), anything else that is not the protocol `GatewayError`.
The store password travels in the query string of the validator APIs because that is SSLCommerz's
design; it is never put into an error message.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ssl
import urllib.parse
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from sonjog.gateways.clients.base import Checkout, Credentials, GatewayError, GatewayTimeout, Refund, State, Status
from sonjog.gateways.clients.common import CENT, parse_time, unknown_status

SESSION_PATH = "/gwprocess/v4/api.php"
VALIDATION_PATH = "/validator/api/validationserverAPI.php"
MERCHANT_API_PATH = "/validator/api/merchantTransIDvalidationAPI.php"
SETTLEMENT_PATH = "/validator/api/settlement.php"

# SSLCommerz writes its times (tran_date, validated_on) as Bangladesh wall-clock time without a zone.
GATEWAY_ZONE = ZoneInfo("Asia/Dhaka")

PAID_STATUSES = ("VALID", "VALIDATED")
FAILED_STATUSES = ("FAILED", "CANCELLED", "EXPIRED")
PENDING_STATUSES = ("PENDING", "UNATTEMPTED", "INITIATED")

# A signature over fewer fields would leave these open to tampering: an IPN that does not sign them
# is not taken as signed.
MUST_BE_SIGNED = ("tran_id", "status", "amount")


def ipn_signature_valid(params: Mapping[str, str], store_password: str) -> bool:
    """Whether `params` (an IPN, or the form the browser brings back) carry SSLCommerz's signature
    for this store: `verify_sign` is the MD5 of the fields named in `verify_key` plus `store_passwd`
    (itself the MD5 of the store password), sorted by name and joined as `key=value&...`.

    False when the signature, the list of signed fields or any signed field is missing, or when the
    list leaves out one of `MUST_BE_SIGNED`. Compared in constant time. A valid signature proves the
    fields came from the gateway, not that the money moved: the caller still asks the gateway."""
    verify_sign = params.get("verify_sign") or ""
    verify_key = params.get("verify_key") or ""
    if not verify_sign or not verify_key:
        return False
    names = [name for name in verify_key.split(",") if name]
    if not set(MUST_BE_SIGNED) <= set(names) or any(name not in params for name in names):
        return False
    signed = {name: params[name] for name in names}
    signed["store_passwd"] = hashlib.md5(store_password.encode()).hexdigest()
    expected = signing_digest(signed)
    return hmac.compare_digest(expected.encode(), verify_sign.strip().lower().encode("utf-8", "replace"))


def signing_digest(fields: Mapping[str, str]) -> str:
    """The MD5 SSLCommerz signs with, over `fields` as they are (store_passwd already hashed in)."""
    text = "&".join(f"{name}={fields[name]}" for name in sorted(fields))
    return hashlib.md5(text.encode()).hexdigest()


def with_outcome(url: str, outcome: str) -> str:
    """`url` with `outcome=<outcome>` in its query: an earlier outcome replaced, the rest kept."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(key, value) for key, value in query if key != "outcome"] + [("outcome", outcome)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class SslcommerzClient:
    """One SSLCommerz store's client. `credentials.values` holds `store_id` and `store_password`;
    `credentials.base_url` is the sandbox, the live host or the local emulator."""

    def __init__(self, credentials: Credentials, *, timeout: float = 10.0) -> None:
        store_id = credentials.values.get("store_id", "")
        store_password = credentials.values.get("store_password", "")
        if not store_id or not store_password:
            raise GatewayError("SSLCommerz needs store_id and store_password", code="credentials")
        self._base_url = credentials.base_url.rstrip("/")
        self._store_id = store_id
        self._store_password = store_password
        self._timeout = timeout

    # -- the protocol ----------------------------------------------------------------------------
    def create(
        self,
        *,
        merchant_reference: str,
        amount: Decimal,
        currency: str,
        return_url: str,
        notify_url: str,
        payer_reference: str,
    ) -> Checkout:
        """A session for `amount` under our `merchant_reference` (SSLCommerz's tran_id). The customer
        fields are mandatory at SSLCommerz; Sonjog passes only the payer's reference (the subscriber's
        phone or customer id), so the rest are plain placeholders."""
        payer = payer_reference or "subscriber"
        form = {
            **self._auth(),
            "total_amount": _money_text(amount),
            "currency": currency,
            "tran_id": merchant_reference,
            "success_url": with_outcome(return_url, "success"),
            "fail_url": with_outcome(return_url, "fail"),
            "cancel_url": with_outcome(return_url, "cancel"),
            "ipn_url": notify_url,
            "cus_name": payer,
            "cus_phone": payer,
            "cus_email": "payer@example.invalid",
            "cus_add1": "N/A",
            "cus_city": "N/A",
            "cus_country": "Bangladesh",
            "shipping_method": "NO",
            "num_of_item": "1",
            "product_name": "Internet service",
            "product_category": "Internet",
            "product_profile": "non-physical-goods",
            "value_a": merchant_reference,
        }
        answer = self._call("POST", SESSION_PATH, data=form)
        if str(answer.get("status", "")).upper() != "SUCCESS":
            reason = str(answer.get("failedreason") or "no reason given")
            raise GatewayError(f"SSLCommerz refused the session: {reason}", code="FAILED", raw=answer)
        session_key = str(answer.get("sessionkey") or "")
        page = str(answer.get("GatewayPageURL") or "")
        if not session_key or not page:
            raise GatewayError("SSLCommerz answered SUCCESS without a sessionkey or GatewayPageURL", raw=answer)
        return Checkout(gateway_payment_id=session_key, redirect_url=page)

    def complete(self, *, checkout: Checkout, params: dict[str, str]) -> Status:
        """The order validation API's answer for the `val_id` the browser brought back (the first
        validation answers VALID, later ones VALIDATED: both are paid). Without a `val_id` the session
        is asked about instead. Raises `GatewayError` (code INVALID_TRANSACTION) for a `val_id` the
        gateway does not know as a valid transaction of this store."""
        val_id = (params.get("val_id") or "").strip()
        if not val_id:
            return self._session_status(checkout.gateway_payment_id)
        answer = self._call(
            "GET", VALIDATION_PATH, params={**self._auth(), "val_id": val_id, "format": "json", "v": "1"}
        )
        self._require_connected(answer)
        if str(answer.get("status", "")).upper() == "INVALID_TRANSACTION":
            raise GatewayError(
                "SSLCommerz knows no valid transaction of this store by that val_id",
                code="INVALID_TRANSACTION",
                raw=answer,
            )
        return self._status_of(answer, gateway_payment_id=checkout.gateway_payment_id)

    def status(self, *, merchant_reference: str, gateway_payment_id: str) -> Status:
        """The transaction query by tran_id. It lists every attempt made under the reference (a payer
        may fail with one card and pay with another): a paid attempt wins, else one still pending,
        else the last failed one; UNKNOWN when the gateway has none."""
        answer = self._call(
            "GET", MERCHANT_API_PATH, params={**self._auth(), "tran_id": merchant_reference, "format": "json", "v": "1"}
        )
        self._require_connected(answer)
        attempts = [
            element
            for element in self._elements(answer)
            if str(element.get("tran_id", merchant_reference)) == merchant_reference
        ]
        chosen = (
            _first(attempts, PAID_STATUSES)
            or _first(attempts, PENDING_STATUSES)
            or (attempts[-1] if attempts else None)
        )
        if chosen is None:
            return unknown_status(merchant_reference, gateway_payment_id, answer)
        return self._status_of(
            chosen, gateway_payment_id=gateway_payment_id, default_reference=merchant_reference, raw=answer
        )

    def search(self, *, day: dt.date) -> list[Status]:
        """The store's paid transactions on `day` (Bangladesh calendar).

        SSLCommerz's API v4 has no listing by day: a real store downloads its settlement report from
        the merchant panel. This asks `GET /validator/api/settlement.php?date=YYYY-MM-DD`, which only
        the local emulator serves, standing in for that report until the report is imported; against
        the real gateway it fails with a `GatewayError`."""
        answer = self._call("GET", SETTLEMENT_PATH, params={**self._auth(), "date": day.isoformat(), "format": "json"})
        self._require_connected(answer)
        return [self._status_of(element) for element in self._elements(answer)]

    def refund(self, *, status: Status, amount: Decimal, reason: str, refund_reference: str) -> Refund:
        """Ask SSLCommerz to give `amount` of the paid transaction (by its bank_tran_id) back.
        `refund_reference` is sent as both `refund_trans_id` (unique per refund) and `refe_id` (ours,
        for reconciliation). An accepted request is PENDING: the money goes back later, which
        `refund_status` tells; a refused one (more than is left, not paid) is FAILED, with SSLCommerz's
        reason in `raw["errorReason"]`."""
        if not status.transaction_id:
            raise GatewayError("nothing to refund: the payment has no bank_tran_id", code="not_paid")
        answer = self._call(
            "GET",
            MERCHANT_API_PATH,
            params={
                **self._auth(),
                "bank_tran_id": status.transaction_id,
                "refund_trans_id": refund_reference,
                "refund_amount": _money_text(amount),
                "refund_remarks": reason or "Refund",
                "refe_id": refund_reference,
                "format": "json",
            },
        )
        self._require_connected(answer)
        outcome = str(answer.get("status", "")).lower()
        refund_id = str(answer.get("refund_ref_id") or "")
        if outcome in ("success", "processing"):
            if not refund_id:
                raise GatewayError("SSLCommerz accepted the refund without a refund_ref_id", raw=answer)
            return Refund(state=State.PENDING, refund_id=refund_id, amount=amount, raw=answer)
        if outcome == "failed":
            return Refund(state=State.FAILED, refund_id=refund_id, amount=amount, raw=answer)
        raise GatewayError(f"SSLCommerz answered the refund with status {outcome!r}", raw=answer)

    def refund_status(self, *, status: Status, refund_reference: str) -> Refund:
        """What became of a refund. SSLCommerz's refund query knows a refund only by the
        `refund_ref_id` it gave (`Refund.refund_id` from `refund`), not by our own reference: that is
        what `refund_reference` must carry here. The query does not repeat the amount, so `amount` is
        0 unless the gateway says; the caller keeps what it asked for."""
        answer = self._call(
            "GET", MERCHANT_API_PATH, params={**self._auth(), "refund_ref_id": refund_reference, "format": "json"}
        )
        self._require_connected(answer)
        outcome = str(answer.get("status", "")).lower()
        states = {
            "refunded": State.PAID,
            "processing": State.PENDING,
            "cancelled": State.FAILED,
            "failed": State.FAILED,
        }
        if outcome not in states:
            raise GatewayError(f"SSLCommerz answered the refund query with status {outcome!r}", raw=answer)
        amount = _decimal(answer.get("refund_amount")) or Decimal("0")
        return Refund(state=states[outcome], refund_id=refund_reference, amount=amount, raw=answer)

    # -- helpers -----------------------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        return {"store_id": self._store_id, "store_passwd": self._store_password}

    def _session_status(self, session_key: str) -> Status:
        answer = self._call(
            "GET", MERCHANT_API_PATH, params={**self._auth(), "sessionkey": session_key, "format": "json", "v": "1"}
        )
        self._require_connected(answer)
        return self._status_of(answer, gateway_payment_id=session_key)

    def _call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, data: dict[str, str] | None = None
    ) -> dict[str, Any]:
        operation = path.rsplit("/", 1)[-1]
        try:
            with httpx.Client(verify=_tls_context(), timeout=self._timeout) as http:
                response = http.request(method, self._base_url + path, params=params, data=data)
        except httpx.TimeoutException as error:
            raise GatewayTimeout(f"SSLCommerz did not answer {operation} in {self._timeout:g} s") from error
        except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise GatewayTimeout(
                f"the connection to SSLCommerz broke during {operation}: {type(error).__name__}"
            ) from error
        except httpx.HTTPError as error:
            raise GatewayError(f"SSLCommerz could not be called for {operation}: {type(error).__name__}") from error
        if response.status_code >= 500:
            # The gateway broke while handling it: whether it took effect is as unknown as after a timeout.
            raise GatewayTimeout(f"SSLCommerz answered {operation} with HTTP {response.status_code}")
        if response.status_code >= 400:
            raise GatewayError(f"SSLCommerz answered {operation} with HTTP {response.status_code}", code="http")
        try:
            answer = response.json()
        except ValueError as error:
            raise GatewayError(f"SSLCommerz answered {operation} with something that is not JSON") from error
        if not isinstance(answer, dict):
            raise GatewayError(f"SSLCommerz answered {operation} with JSON that is not an object")
        return answer

    @staticmethod
    def _require_connected(answer: dict[str, Any]) -> None:
        # APIConnect is DONE when the store's credentials and the request were accepted; INVALID_REQUEST,
        # FAILED or INACTIVE mean the question was not even asked.
        connect = str(answer.get("APIConnect", "DONE"))
        if connect != "DONE":
            raise GatewayError(f"SSLCommerz refused the API call: APIConnect {connect}", code=connect, raw=answer)

    @staticmethod
    def _elements(answer: dict[str, Any]) -> list[dict[str, Any]]:
        elements = answer.get("element") or []
        if not isinstance(elements, list) or not all(isinstance(element, dict) for element in elements):
            raise GatewayError("SSLCommerz answered with an element that is not a list of objects", raw=answer)
        return elements

    @staticmethod
    def _status_of(
        record: dict[str, Any],
        *,
        gateway_payment_id: str = "",
        default_reference: str = "",
        raw: dict[str, Any] | None = None,
    ) -> Status:
        """One transaction record (a validation answer, a session query, an element) as a `Status`."""
        text = str(record.get("status", "")).upper()
        if text in PAID_STATUSES:
            state = State.HELD if str(record.get("risk_level", "0")).strip() == "1" else State.PAID
        elif text in FAILED_STATUSES:
            state = State.FAILED
        elif text in PENDING_STATUSES:
            state = State.PENDING
        else:
            state = State.UNKNOWN
        settled = state in (State.PAID, State.HELD)
        asked_currency = str(record.get("currency_type") or "")
        asked_amount = _decimal(record.get("currency_amount"))
        amount: Decimal | None
        if asked_currency and asked_amount is not None:
            amount, currency = asked_amount, asked_currency
        else:
            amount, currency = _decimal(record.get("amount")), str(record.get("currency") or "")
        return Status(
            state=state,
            merchant_reference=str(record.get("tran_id") or default_reference),
            gateway_payment_id=str(record.get("sessionkey") or gateway_payment_id),
            transaction_id=str(record.get("bank_tran_id") or "") if settled else "",
            amount=amount,
            currency=currency,
            merchant_account=str(record.get("store_id") or ""),
            payer=str(record.get("card_no") or ""),
            paid_at=_gateway_time(record.get("tran_date")) if settled else None,
            raw=raw if raw is not None else record,
        )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Building the certificate store costs tens of milliseconds; every call shares one.
    return httpx.create_ssl_context()


def _first(records: list[dict[str, Any]], statuses: tuple[str, ...]) -> dict[str, Any] | None:
    return next((record for record in records if str(record.get("status", "")).upper() in statuses), None)


def _money_text(amount: Decimal) -> str:
    # Money is rounded once, by whoever decided the amount; a client that rounded again could ask the
    # payer for a different sum than the attempt records.
    if amount != amount.quantize(CENT):
        raise ValueError(f"an SSLCommerz amount has at most 2 decimals, not {amount}")
    return f"{amount.quantize(CENT)}"


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as error:
        raise GatewayError(f"SSLCommerz sent an amount that is not a number: {value!r}") from error


def _gateway_time(value: object) -> dt.datetime | None:
    return parse_time(value, ("%Y-%m-%d %H:%M:%S",), zone=GATEWAY_ZONE)
