"""bKash Tokenized Checkout (API v1.2.0-beta) on httpx: the grant token, payments, refunds and the
signed webhook.

Every call but the token grant carries the merchant's `id_token` (from the grant or refresh API) in
`Authorization` and the app key in `X-APP-Key`. The token lives an hour (`expires_in`), and bKash
asks merchants not to grant one per request, so the token is kept in the shared `TokenStore` under
one key per app key: every worker process uses the same token, refreshes it shortly before it
expires, and drops it when bKash answers that it is no longer valid.

A payment goes: create (bKash answers the `paymentID` and the `bkashURL` the payer is sent to), the
payer confirms with wallet and PIN on bKash's page, bKash sends the browser back to our callback with
`status=success|failure|cancel`, and only then execute takes the money. The callback's status is the
browser's word, so nothing is decided on it alone: a success is executed (bKash's answer counts), any
other status is asked of bKash with query payment.

bKash answers a refusal with HTTP 200 and a `statusCode` other than "0000" (the older Checkout API
used `errorCode`/`errorMessage`); both become `GatewayError` with bKash's code and message.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sonjog.gateways.clients.base import (
    Checkout,
    Credentials,
    GatewayError,
    GatewayTimeout,
    Refund,
    State,
    Status,
    TokenStore,
)
from sonjog.gateways.clients.common import (
    PooledClient,
    amount_text,
    listed_rows,
    parse_amount,
    parse_time,
    request,
    require_values,
    unknown_status,
    utc_now,
)

API_PATH = "/tokenized/checkout"
GATEWAY = "bKash"
SUCCESS = "0000"
# A token this close to its expiry is refreshed first: a call that starts on a token with seconds
# left could reach bKash after it expired.
TOKEN_MARGIN = dt.timedelta(minutes=5)
# bKash's grant answer gives the id_token's lifetime but not the refresh token's; the pair is kept
# this long, after which (or when bKash refuses the refresh token) a new grant is made.
TOKEN_PAIR_KEPT = dt.timedelta(hours=24)

# Execute answers these when the payment was executed before (by an earlier call whose answer was
# lost, or by another worker): the payment may well be paid, so complete() asks query payment.
ALREADY_EXECUTED = frozenset({"2062", "2117"})
# Query payment answers this for a paymentID bKash does not know.
UNKNOWN_PAYMENT = frozenset({"2002"})

PAYMENT_STATES = {
    "Completed": State.PAID,
    "Initiated": State.PENDING,
    "Pending": State.PENDING,
    "Authorized": State.PENDING,  # auth-and-capture: held on the wallet, not yet the merchant's
    "Cancelled": State.FAILED,
    "Failed": State.FAILED,
    "Expired": State.FAILED,
    "Declined": State.FAILED,
}
REFUND_STATES = {
    "Completed": State.PAID,
    "Initiated": State.PENDING,
    "Pending": State.PENDING,
    "Processing": State.PENDING,
    "Failed": State.FAILED,
    "Declined": State.FAILED,
}


def parse_bkash_time(value: Any) -> dt.datetime | None:
    """bKash writes times as "2019-08-07T11:15:56:336 GMT+0600" (milliseconds after a colon), some
    answers without the milliseconds. A time it wrote otherwise is left out rather than guessed."""
    return parse_time(value, ("%Y-%m-%dT%H:%M:%S:%f GMT%z", "%Y-%m-%dT%H:%M:%S GMT%z"))


class BkashClient(PooledClient):
    """One bKash merchant account (credentials.values: username, password, app_key, app_secret)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        token_store: TokenStore,
        timeout: float = 10.0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        require_values(credentials, ("username", "password", "app_key", "app_secret"), GATEWAY)
        self.credentials = credentials
        self._values = credentials.values
        self._tokens = token_store
        self._clock = clock or utc_now
        self._api = credentials.base_url.rstrip("/") + API_PATH
        self._http = httpx.Client(timeout=timeout, headers={"Accept": "application/json"})

    @property
    def token_key(self) -> str:
        """The token store key: one per app key, so every worker of this account shares the token."""
        return f"bkash:{self._values['app_key']}"

    # -- payments -------------------------------------------------------------------------------
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
        """Create payment in mode "0011" (Checkout URL, no agreement). `notify_url` is not sent: bKash
        has no per-payment notification address, its webhook is set up once per merchant with bKash."""
        answer = self._call(
            "create",
            {
                "mode": "0011",
                "payerReference": payer_reference,
                "callbackURL": return_url,
                "amount": amount_text(amount, GATEWAY),
                "currency": currency,
                "intent": "sale",
                "merchantInvoiceNumber": merchant_reference,
            },
        )
        payment_id, url = answer.get("paymentID"), answer.get("bkashURL")
        if not isinstance(payment_id, str) or not payment_id or not isinstance(url, str) or not url:
            raise GatewayError("bKash created a payment without a paymentID or bkashURL", raw=answer)
        return Checkout(gateway_payment_id=payment_id, redirect_url=url)

    def complete(self, *, checkout: Checkout, params: dict[str, str]) -> Status:
        """Execute the payment when the payer came back with status=success; otherwise ask bKash.

        An execute bKash says was done before (2062, 2117) is not a failure: the earlier execute may
        have taken the money while its answer was lost, so the payment's real status is returned."""
        payment_id = checkout.gateway_payment_id
        returned = params.get("paymentID", "")
        if returned and returned != payment_id:
            raise GatewayError(f"the payer came back with paymentID {returned!r}, not {payment_id!r}")
        if params.get("status") != "success":
            return self.status(merchant_reference="", gateway_payment_id=payment_id)
        try:
            answer = self._call("execute", {"paymentID": payment_id})
        except GatewayTimeout:
            raise
        except GatewayError as error:
            if error.code in ALREADY_EXECUTED:
                return self.status(merchant_reference="", gateway_payment_id=payment_id)
            raise
        return self._payment_status(answer, payment_id=payment_id)

    def status(self, *, merchant_reference: str, gateway_payment_id: str) -> Status:
        """Query payment by bKash's paymentID (bKash has no lookup by our invoice number, so a payment
        whose create answer was lost is UNKNOWN here; the daily listing still shows it once paid)."""
        if not gateway_payment_id:
            return unknown_status(merchant_reference)
        try:
            answer = self._call("payment/status", {"paymentID": gateway_payment_id})
        except GatewayTimeout:
            raise
        except GatewayError as error:
            if error.code in UNKNOWN_PAYMENT:
                return unknown_status(merchant_reference, gateway_payment_id, error.raw)
            raise
        return self._payment_status(answer, payment_id=gateway_payment_id)

    def search_transaction(self, *, trx_id: str) -> Status:
        """Search transaction: what bKash knows of one trxID (a webhook or a payer quoting one). Its
        answer names neither the paymentID nor our invoice number, but it does name the receiving
        organisation (`organizationShortCode`)."""
        answer = self._call("general/searchTransaction", {"trxID": trx_id})
        return Status(
            state=self._state(answer, PAYMENT_STATES),
            merchant_reference=str(answer.get("merchantInvoiceNumber") or ""),
            transaction_id=str(answer.get("trxID") or ""),
            amount=parse_amount(answer.get("amount"), GATEWAY),
            currency=str(answer.get("currency") or ""),
            merchant_account=str(answer.get("organizationShortCode") or ""),
            payer=str(answer.get("customerMsisdn") or ""),
            paid_at=parse_bkash_time(answer.get("completedTime")),
            raw=answer,
        )

    def search(self, *, day: dt.date) -> list[Status]:
        """The payments completed on `day` (Asia/Dhaka, bKash's calendar).

        bKash's tokenized API has no such listing: it searches one trxID at a time. A real merchant
        account gets the day's transactions as the settlement report downloaded from the bKash
        merchant portal. `POST {base_url}/tokenized/checkout/general/transactions` with
        {"date": "YYYY-MM-DD"} is the local emulator's stand-in for that report, so this works
        against the emulator only; a live account answers it with an error."""
        answer = self._call("general/transactions", {"date": day.isoformat()})
        found = []
        for row in listed_rows(answer, GATEWAY):
            found.append(
                Status(
                    state=self._state(row, PAYMENT_STATES),
                    merchant_reference=str(row.get("merchantInvoiceNumber") or ""),
                    gateway_payment_id=str(row.get("paymentID") or ""),
                    transaction_id=str(row.get("trxID") or ""),
                    amount=parse_amount(row.get("amount"), GATEWAY),
                    currency=str(row.get("currency") or ""),
                    merchant_account=str(row.get("organizationShortCode") or ""),
                    payer=str(row.get("customerMsisdn") or ""),
                    paid_at=parse_bkash_time(row.get("completedTime")),
                    raw=row,
                )
            )
        return found

    # -- refunds --------------------------------------------------------------------------------
    def refund(self, *, status: Status, amount: Decimal, reason: str, refund_reference: str) -> Refund:
        """Refund (v1.2.0-beta `payment/refund`): `amount` of the paid transaction goes back to the
        payer's wallet; bKash refuses more than is left unrefunded. `refund_reference` travels as the
        refund's `sku`, for the record on bKash's side: bKash does not deduplicate on it, so a refund
        whose answer was lost is checked with refund_status before it is asked for again."""
        answer = self._call(
            "payment/refund",
            {
                **self._refund_target(status),
                "amount": amount_text(amount, GATEWAY),
                "sku": refund_reference[:255],
                "reason": (reason or "Refund")[:255],
            },
        )
        return self._refund(answer)

    def refund_status(self, *, status: Status, refund_reference: str) -> Refund:
        """Refund status: the same `payment/refund` API without an amount. bKash addresses it by the
        original payment and trxID, not by one refund, and answers the transaction's latest refund;
        with several refunds on one payment, an earlier one is known by refund()'s own answer."""
        return self._refund(self._call("payment/refund", self._refund_target(status)))

    @staticmethod
    def _refund_target(status: Status) -> dict[str, str]:
        if not status.gateway_payment_id or not status.transaction_id:
            raise ValueError("a bKash refund needs the payment's paymentID and trxID")
        return {"paymentID": status.gateway_payment_id, "trxID": status.transaction_id}

    def _refund(self, answer: dict[str, Any]) -> Refund:
        refund_id, amount = answer.get("refundTrxID"), parse_amount(answer.get("amount"), GATEWAY)
        if not isinstance(refund_id, str) or not refund_id or amount is None:
            raise GatewayError("bKash's refund answer has no refundTrxID or amount", raw=answer)
        return Refund(state=self._state(answer, REFUND_STATES), refund_id=refund_id, amount=amount, raw=answer)

    # -- answers --------------------------------------------------------------------------------
    def _payment_status(self, answer: dict[str, Any], *, payment_id: str) -> Status:
        """Execute and query answers do not name the receiving merchant, but bKash answers them only
        for payments made under this app key's token, so the account is this client's."""
        return Status(
            state=self._state(answer, PAYMENT_STATES),
            merchant_reference=str(answer.get("merchantInvoiceNumber") or ""),
            gateway_payment_id=str(answer.get("paymentID") or payment_id),
            transaction_id=str(answer.get("trxID") or ""),
            amount=parse_amount(answer.get("amount"), GATEWAY),
            currency=str(answer.get("currency") or ""),
            merchant_account=self.credentials.merchant_account,
            payer=str(answer.get("customerMsisdn") or ""),
            paid_at=parse_bkash_time(answer.get("paymentExecuteTime")),
            raw=answer,
        )

    @staticmethod
    def _state(answer: dict[str, Any], states: dict[str, State]) -> State:
        name = answer.get("transactionStatus")
        if not isinstance(name, str) or name not in states:
            raise GatewayError(f"bKash answered an unknown transactionStatus {name!r}", raw=answer)
        return states[name]

    # -- HTTP and the token ---------------------------------------------------------------------
    def _call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One API call with the shared token; a token bKash refuses is dropped and a new one granted,
        once, since a second refusal is not about the token."""
        token = self._id_token()
        for attempt in range(2):
            code, answer = self._post(operation, body, {"Authorization": token, "X-APP-Key": self._values["app_key"]})
            if not _token_refused(code, answer):
                return _checked(code, answer)
            if attempt == 0:
                self._drop_token(token)
                token = self._grant()
        raise GatewayError(f"bKash refused a freshly granted token: {_message(answer)}", raw=answer)

    def _post(self, operation: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        url = f"{self._api}/{operation}"
        response = request(self._http, "POST", url, gateway=GATEWAY, operation=operation, json=body, headers=headers)
        try:
            answer = response.json()
        except ValueError as error:
            raise GatewayError(f"bKash {operation} answered HTTP {response.status_code}, not JSON") from error
        if not isinstance(answer, dict):
            raise GatewayError(
                f"bKash {operation} answered HTTP {response.status_code} with a JSON that is not an object"
            )
        return response.status_code, answer

    def _id_token(self) -> str:
        now = self._clock()
        kept = self._tokens.get(self.token_key, now)
        if kept and kept.get("id_token"):
            expires = dt.datetime.fromisoformat(kept["id_token_expires_at"])
            if expires - TOKEN_MARGIN > now:
                return str(kept["id_token"])
            if kept.get("refresh_token"):
                try:
                    return self._refresh(str(kept["refresh_token"]))
                except GatewayTimeout:
                    raise
                except GatewayError:
                    pass  # the refresh token is no longer good: a new grant follows
        return self._grant()

    def _grant(self) -> str:
        return self._token_call(
            "token/grant", {"app_key": self._values["app_key"], "app_secret": self._values["app_secret"]}
        )

    def _refresh(self, refresh_token: str) -> str:
        return self._token_call(
            "token/refresh",
            {
                "app_key": self._values["app_key"],
                "app_secret": self._values["app_secret"],
                "refresh_token": refresh_token,
            },
        )

    def _token_call(self, operation: str, body: dict[str, str]) -> str:
        now = self._clock()
        code, answer = self._post(
            operation, body, {"username": self._values["username"], "password": self._values["password"]}
        )
        answer = _checked(code, answer)
        id_token, lifetime = answer.get("id_token"), answer.get("expires_in")
        try:
            seconds = int(lifetime) if isinstance(lifetime, int | str) else 0
        except ValueError:
            seconds = 0
        if not isinstance(id_token, str) or not id_token or seconds <= 0:
            raise GatewayError(f"bKash {operation} answered no id_token or expires_in", raw=_redacted(answer))
        self._tokens.put(
            self.token_key,
            {
                "id_token": id_token,
                "refresh_token": str(answer.get("refresh_token") or ""),
                "id_token_expires_at": (now + dt.timedelta(seconds=seconds)).isoformat(),
            },
            now + max(TOKEN_PAIR_KEPT, dt.timedelta(seconds=seconds)),
        )
        return id_token

    def _drop_token(self, refused: str) -> None:
        """Forget the token bKash refused, unless another worker already replaced it."""
        now = self._clock()
        kept = self._tokens.get(self.token_key, now)
        if kept and kept.get("id_token") == refused:
            self._tokens.put(self.token_key, {}, now)


def _message(answer: dict[str, Any]) -> str:
    for key in ("statusMessage", "errorMessage", "message", "error"):
        if isinstance(answer.get(key), str) and answer[key]:
            return str(answer[key])
    return "no message"


def _token_refused(code: int, answer: dict[str, Any]) -> bool:
    """bKash's API gateway answers HTTP 401 for a missing, unknown or expired token; some answers
    instead carry a message about an invalid or expired token."""
    if code == 401:
        return True
    text = _message(answer).lower()
    return "token" in text and ("invalid" in text or "expired" in text)


def _checked(code: int, answer: dict[str, Any]) -> dict[str, Any]:
    status_code = answer.get("statusCode", answer.get("errorCode"))
    if status_code is not None and str(status_code) != SUCCESS:
        raise GatewayError(_message(answer), code=str(status_code), raw=answer)
    if code >= 400:
        raise GatewayError(f"bKash answered HTTP {code}: {_message(answer)}", code=str(code), raw=answer)
    if status_code is None and code != 200:
        raise GatewayError(f"bKash answered HTTP {code}", code=str(code), raw=answer)
    return answer


def _redacted(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key not in ("id_token", "refresh_token")}


# -- the webhook ------------------------------------------------------------------------------------
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_OPTIONAL_FIELDS = frozenset({"Subject"})
_SIGNATURE_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def sns_string_to_sign(message: dict[str, Any]) -> bytes | None:
    """The canonical text Amazon SNS signs: each field of the message's Type, in byte order of the
    names, as "name\\nvalue\\n" (Subject only when the message has one). None when a field is missing."""
    fields = _SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        return None
    text = []
    for name in fields:
        value = message.get(name)
        if value is None and name in _OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str):
            return None
        text.append(f"{name}\n{value}\n")
    return "".join(text).encode()


def _certificate_url_allowed(url: str, allowed_hosts: Collection[str]) -> bool:
    """Only certificates from the allowed hosts (Amazon SNS's own, or the emulator's) over HTTPS; plain
    HTTP only from a loopback address, where the local emulator serves its certificate."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if not host or host not in {allowed.lower() for allowed in allowed_hosts}:
        return False
    if not parts.path.endswith(".pem"):
        return False
    if parts.scheme == "https":
        return True
    try:
        return parts.scheme == "http" and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_message_valid(
    message: dict[str, Any],
    *,
    fetch_certificate: Callable[[str], bytes],
    allowed_cert_hosts: Collection[str],
) -> bool:
    """Whether a bKash webhook (an Amazon SNS message) is signed by the certificate it names, and that
    certificate comes from an allowed host. Signature version 1 is SHA1withRSA, version 2 SHA256withRSA.

    A valid signature proves who sent the message, not that the payment stands: what it reports is
    still confirmed with bKash (search transaction) before it counts."""
    hash_of = _SIGNATURE_HASHES.get(str(message.get("SignatureVersion")))
    url, signature_text = message.get("SigningCertURL"), message.get("Signature")
    signed = sns_string_to_sign(message)
    if hash_of is None or signed is None or not isinstance(url, str) or not isinstance(signature_text, str):
        return False
    if not _certificate_url_allowed(url, allowed_cert_hosts):
        return False
    try:
        signature = base64.b64decode(signature_text, validate=True)
        pem = fetch_certificate(url)
        public_key = x509.load_pem_x509_certificate(pem).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            return False
        public_key.verify(signature, signed, padding.PKCS1v15(), hash_of())
    except (InvalidSignature, ValueError, TypeError, httpx.HTTPError, OSError):
        return False
    return True


def webhook_payment(message: dict[str, Any]) -> dict[str, Any]:
    """The payment a bKash webhook Notification reports (its Message is JSON text: trxID, amount,
    transactionStatus, debitMSISDN, creditShortCode, dateTime...); {} when it carries none."""
    try:
        value = json.loads(str(message.get("Message") or ""))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
