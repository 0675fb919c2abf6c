"""Nagad's merchant checkout API (v-0.2.0) on httpx: initialize, complete, verify, and the refund.

Every request the merchant signs carries "sensitive data": a small JSON text, encrypted with Nagad's
public key (RSA, PKCS#1 v1.5) so only Nagad reads it, and signed with the merchant's private key
(SHA256withRSA) so Nagad knows who sent it. Nagad answers the same way the other round: encrypted
with the merchant's public key and signed with its own. An answer whose signature does not verify is
refused whatever it says: it did not come from Nagad.

A payment goes: initialize (Nagad answers a `paymentReferenceId` and the challenge), complete (the
amount, under that challenge, and the merchant's callback URL; Nagad answers the `callBackUrl` of its
checkout page), the payer confirms with wallet, OTP and PIN on Nagad's page, Nagad sends the browser
to the merchant's callback with `payment_ref_id` and a status. The callback is the browser's word, so
nothing is decided on it: `complete()` asks verify, which is Nagad's own answer.

Nagad answers a refusal with HTTP 4xx and {"reason": ..., "message": ...}; it becomes `GatewayError`
with the reason as its code. No answer in time, a dropped connection or an HTTP 5xx (Nagad failed
mid-call) is `GatewayTimeout`: whether the call took effect is unknown.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sonjog.gateways.clients.base import Checkout, Credentials, GatewayError, GatewayTimeout, Refund, State, Status
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

API_PATH = "/api/dfs"
GATEWAY = "Nagad"
API_VERSION = "v-0.2.0"
CLIENT_TYPE = "PC_WEB"
BDT = "050"  # ISO 4217 numeric: Nagad's currencyCode for taka, the only currency it settles
DHAKA = ZoneInfo("Asia/Dhaka")  # Nagad's clock and calendar
# PKCS#1 v1.5 padding takes 11 bytes of the key's 256 (RSA-2048): the sensitive data must fit the rest.
RSA_PLAINTEXT_LIMIT = 245

PAYMENT_STATES = {
    "Success": State.PAID,
    "Ready": State.PENDING,  # completed by the merchant, the payer has not confirmed yet
    "Initiated": State.PENDING,
    "OrderInitiated": State.PENDING,
    "InProgress": State.PENDING,
    "Pending": State.PENDING,
    "Aborted": State.FAILED,  # the payer left Nagad's page
    "Cancelled": State.FAILED,
    "Failed": State.FAILED,
    "Fraud": State.FAILED,
    "InvalidRequest": State.FAILED,
    "UnknownFailed": State.FAILED,
    "Expired": State.FAILED,
}
REFUND_STATES = {
    "Success": State.PAID,
    "Pending": State.PENDING,
    "Processing": State.PENDING,
    "Failed": State.FAILED,
}


class NagadRefused(GatewayError):
    """Nagad answered {reason, message}: `code` is the reason, `http_status` the HTTP status (404 is
    how Nagad says it does not know the payment or refund asked about)."""

    def __init__(self, message: str, *, code: str, http_status: int, raw: dict[str, Any]) -> None:
        super().__init__(message, code=code, raw=raw)
        self.http_status = http_status


def parse_nagad_time(value: Any) -> dt.datetime | None:
    """Nagad writes Dhaka wall-clock times, in verify as "2021-06-05 12:07:08.0" and in the signed
    data as "20210605120708". A time it wrote otherwise is left out rather than guessed."""
    return parse_time(value, ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"), zone=DHAKA)


def _pem(text: str, kind: str) -> bytes:
    """Nagad hands its keys out as bare base64 as often as PEM: armour the bare ones."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(_pem(text, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant private key is not an RSA key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_pem(text, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Nagad's public key is not an RSA key")
    return key


def sensitive_text(values: dict[str, str]) -> bytes:
    """The sensitive data as it is encrypted and signed: compact JSON, UTF-8 (a reason in Bangla
    stays three bytes a letter instead of a six-byte escape)."""
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


class NagadClient(PooledClient):
    """One Nagad merchant account (credentials.values: merchant_id, merchant_private_key and
    gateway_public_key, PEM or bare base64; merchant_number, the merchant's wallet, if Nagad gave one).

    `client_ip` is the X-KM-IP-V4 header: the address of the payer's device as the merchant saw it
    (Nagad asks for it on every call); the server's own address when there is no payer."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: float = 10.0,
        clock: Callable[[], dt.datetime] | None = None,
        client_ip: str = "127.0.0.1",
    ) -> None:
        require_values(credentials, ("merchant_id", "merchant_private_key", "gateway_public_key"), GATEWAY)
        self.credentials = credentials
        self.merchant_id = credentials.values["merchant_id"]
        self._merchant_key = load_private_key(credentials.values["merchant_private_key"])
        self._nagad_key = load_public_key(credentials.values["gateway_public_key"])
        self._clock = clock or utc_now
        self._api = credentials.base_url.rstrip("/") + API_PATH
        self._http = httpx.Client(
            timeout=timeout,
            headers={
                "Accept": "application/json",
                "X-KM-Api-Version": API_VERSION,
                "X-KM-IP-V4": client_ip,
                "X-KM-Client-Type": CLIENT_TYPE,
            },
        )

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
        """Initialize, then complete: the payer goes to the `callBackUrl` of Nagad's checkout page.

        `merchant_reference` is Nagad's `orderId` (letters and digits, at most 20). `return_url` is the
        `merchantCallbackURL` Nagad sends the browser back to. `notify_url` is not sent: Nagad has no
        server-to-server notification in this API, so the return and the recheck ask verify."""
        if currency not in ("BDT", BDT):
            raise GatewayError(f"Nagad settles taka (BDT) only, not {currency!r}", code="currency")
        order_amount = amount_text(amount, GATEWAY)
        now = self._clock().astimezone(DHAKA)
        challenge = secrets.token_hex(20)
        sent = {
            "merchantId": self.merchant_id,
            "datetime": now.strftime("%Y%m%d%H%M%S"),
            "orderId": merchant_reference,
            "challenge": challenge,
        }
        body: dict[str, Any] = {"dateTime": sent["datetime"], **self._sealed("sensitiveData", sent)}
        if self.credentials.values.get("merchant_number"):
            body["accountNumber"] = self.credentials.values["merchant_number"]
        answer = self._call(
            "initialize", "POST", f"/check-out/initialize/{self.merchant_id}/{merchant_reference}", json_body=body
        )
        opened = self._opened(answer, "initialize")
        payment_id = opened.get("paymentReferenceId")
        if not isinstance(payment_id, str) or not payment_id:
            raise GatewayError("Nagad initialized a payment without a paymentReferenceId", raw=opened)
        # The challenge coming back inside data signed by Nagad ties this answer to this request: an
        # old answer replayed to us carries an old challenge.
        if opened.get("challenge") != challenge:
            raise GatewayError("Nagad's initialize answer does not carry our challenge", raw=opened)

        order = {
            "merchantId": self.merchant_id,
            "orderId": merchant_reference,
            "currencyCode": BDT,
            "amount": order_amount,
            "challenge": challenge,
        }
        answer = self._call(
            "complete",
            "POST",
            f"/check-out/complete/{payment_id}",
            json_body={
                **self._sealed("sensitiveData", order),
                "merchantCallbackURL": return_url,
                "additionalMerchantInfo": {"payerReference": payer_reference},
            },
        )
        url = answer.get("callBackUrl")
        if answer.get("status") != "Success" or not isinstance(url, str) or not url:
            raise GatewayError(
                f"Nagad did not open the checkout: status {answer.get('status')!r}, no callBackUrl", raw=answer
            )
        return Checkout(gateway_payment_id=payment_id, redirect_url=url)

    def complete(self, *, checkout: Checkout, params: dict[str, str]) -> Status:
        """The payer came back to the callback (`payment_ref_id`, `status`, ...): whatever the status
        there says, the answer is verify's. A callback naming another payment than the checkout's is
        refused (someone's link, or a forged one)."""
        returned = params.get("payment_ref_id", "")
        payment_id = checkout.gateway_payment_id or returned
        if returned and returned != payment_id:
            raise GatewayError(f"the payer came back with payment_ref_id {returned!r}, not {payment_id!r}")
        return self.status(merchant_reference="", gateway_payment_id=payment_id)

    def status(self, *, merchant_reference: str, gateway_payment_id: str) -> Status:
        """Verify payment by Nagad's paymentReferenceId. Nagad has no lookup by our orderId, so a
        payment whose initialize answer was lost is UNKNOWN here (nobody could pay it: the payer was
        never sent to the checkout). A reference Nagad answers "not found" (HTTP 404) is UNKNOWN too.

        Verify's answer is plain JSON, neither encrypted nor signed: its trust rests on the TLS
        connection to Nagad's host, the same as every other gateway's status API."""
        if not gateway_payment_id:
            return unknown_status(merchant_reference)
        try:
            answer = self._call("verify", "GET", f"/verify/payment/{gateway_payment_id}")
        except NagadRefused as error:
            if error.http_status == 404:
                return unknown_status(merchant_reference, gateway_payment_id, error.raw)
            raise
        answered_id = answer.get("paymentRefId")
        if answered_id not in (None, "", gateway_payment_id):
            raise GatewayError(f"Nagad verified payment {answered_id!r}, not {gateway_payment_id!r}", raw=answer)
        return self._status(answer, payment_id=gateway_payment_id)

    def search(self, *, day: dt.date) -> list[Status]:
        """The payments taken on `day` (Asia/Dhaka, Nagad's calendar).

        Nagad's merchant API has no day listing: a real merchant downloads the day's settlement report
        from Nagad's merchant portal. `GET {base_url}/api/dfs/merchant/transactions/{merchantId}
        ?date=YYYY-MM-DD` is the local emulator's stand-in for that report (rows shaped like verify's
        answer), so this works against the emulator only; a live account answers it with an error."""
        answer = self._call(
            "transactions", "GET", f"/merchant/transactions/{self.merchant_id}", query={"date": day.isoformat()}
        )
        return [
            self._status(row, payment_id=str(row.get("paymentRefId") or "")) for row in listed_rows(answer, GATEWAY)
        ]

    # -- refunds --------------------------------------------------------------------------------
    def refund(self, *, status: Status, amount: Decimal, reason: str, refund_reference: str) -> Refund:
        """Purchase cancel: `amount` of the paid payment goes back to the payer's wallet, partly or in
        full, several times up to what is left; Nagad refuses more. `refund_reference` is the request's
        `referenceNo`, the refund's identity: asked again with the same reference and amount (after an
        answer was lost), the one refund is answered, never a second.

        `originalRequestDate` is the Dhaka date the payment was ordered on, taken from verify's
        `orderDateTime` (the day it was paid, or today, when the status does not carry it)."""
        payment_id, order_id = self._refund_target(status)
        if status.amount is None:
            raise ValueError("a Nagad refund needs the payment's amount (the status from verify)")
        request = {
            "merchantId": self.merchant_id,
            "originalRequestDate": self._order_day(status).strftime("%Y%m%d"),
            "originalAmount": amount_text(status.amount, GATEWAY),
            "cancelAmount": amount_text(amount, GATEWAY),
            "referenceNo": refund_reference,
            "referenceMessage": "",
        }
        request["referenceMessage"] = _fitting_message(request, reason or "Refund")
        answer = self._call(
            "cancel",
            "POST",
            "/purchase/cancel",
            query={"paymentRefId": payment_id, "orderId": order_id},
            json_body=self._sealed("sensitiveDataCancelRequest", request),
        )
        return self._refund(self._opened(answer, "cancel"), refund_reference)

    def refund_status(self, *, status: Status, refund_reference: str) -> Refund:
        """What became of the refund `refund_reference` of this payment.

        Nagad's published API names no refund status call; this one is designed like purchase cancel
        (and the emulator serves it): `POST /api/dfs/purchase/cancel/status?paymentRefId=&orderId=`
        with sensitiveData {merchantId, referenceNo, datetime}, answered encrypted and signed like the
        cancel. A reference Nagad does not know (HTTP 404) is UNKNOWN: the refund never reached it,
        and asking for it again with the same reference is safe."""
        payment_id, order_id = self._refund_target(status)
        request = {
            "merchantId": self.merchant_id,
            "referenceNo": refund_reference,
            "datetime": self._clock().astimezone(DHAKA).strftime("%Y%m%d%H%M%S"),
        }
        try:
            answer = self._call(
                "cancel_status",
                "POST",
                "/purchase/cancel/status",
                query={"paymentRefId": payment_id, "orderId": order_id},
                json_body=self._sealed("sensitiveData", request),
            )
        except NagadRefused as error:
            if error.http_status == 404:
                return Refund(state=State.UNKNOWN, refund_id="", amount=Decimal("0"), raw=error.raw)
            raise
        return self._refund(self._opened(answer, "cancel status"), refund_reference)

    @staticmethod
    def _refund_target(status: Status) -> tuple[str, str]:
        if not status.gateway_payment_id or not status.merchant_reference:
            raise ValueError("a Nagad refund needs the payment's paymentReferenceId and orderId")
        return status.gateway_payment_id, status.merchant_reference

    def _order_day(self, status: Status) -> dt.date:
        ordered = parse_nagad_time(status.raw.get("orderDateTime")) or status.paid_at or self._clock()
        return ordered.astimezone(DHAKA).date()

    def _refund(self, answer: dict[str, Any], refund_reference: str) -> Refund:
        name, refund_id = answer.get("status"), answer.get("cancelTrxId")
        amount = parse_amount(answer.get("cancelAmount"), GATEWAY)
        if not isinstance(name, str) or name not in REFUND_STATES:
            raise GatewayError(f"Nagad answered an unknown refund status {name!r}", raw=answer)
        if answer.get("referenceNo") != refund_reference:
            raise GatewayError(f"Nagad answered refund {answer.get('referenceNo')!r}, not {refund_reference!r}")
        if not isinstance(refund_id, str) or not refund_id or amount is None:
            raise GatewayError("Nagad's refund answer has no cancelTrxId or cancelAmount", raw=answer)
        return Refund(state=REFUND_STATES[name], refund_id=refund_id, amount=amount, raw=answer)

    # -- answers --------------------------------------------------------------------------------
    def _status(self, answer: dict[str, Any], *, payment_id: str) -> Status:
        name = answer.get("status")
        if not isinstance(name, str) or name not in PAYMENT_STATES:
            raise GatewayError(f"Nagad answered an unknown payment status {name!r}", raw=answer)
        code = str(answer.get("currencyCode") or BDT)
        return Status(
            state=PAYMENT_STATES[name],
            merchant_reference=str(answer.get("orderId") or ""),
            gateway_payment_id=str(answer.get("paymentRefId") or payment_id),
            transaction_id=str(answer.get("issuerPaymentRefNo") or ""),
            amount=parse_amount(answer.get("amount"), GATEWAY),
            currency="BDT" if code == BDT else code,
            merchant_account=str(answer.get("merchantId") or ""),
            payer=str(answer.get("clientMobileNo") or ""),
            paid_at=parse_nagad_time(answer.get("issuerPaymentDateTime")),
            raw=answer,
        )

    # -- the sealing both ways ------------------------------------------------------------------
    def _sealed(self, field: str, values: dict[str, str]) -> dict[str, str]:
        """`values` encrypted for Nagad under `field`, with the merchant's signature over the same text."""
        text = sensitive_text(values)
        if len(text) > RSA_PLAINTEXT_LIMIT:
            raise ValueError(f"Nagad's sensitive data is {len(text)} bytes, more than one RSA block holds")
        encrypted = self._nagad_key.encrypt(text, padding.PKCS1v15())
        signature = self._merchant_key.sign(text, padding.PKCS1v15(), hashes.SHA256())
        return {field: base64.b64encode(encrypted).decode(), "signature": base64.b64encode(signature).decode()}

    def _opened(self, answer: dict[str, Any], operation: str) -> dict[str, Any]:
        """Decrypt an answer's sensitiveData with the merchant's key and check Nagad signed it."""
        sealed, signature_text = answer.get("sensitiveData"), answer.get("signature")
        if not isinstance(sealed, str) or not sealed or not isinstance(signature_text, str) or not signature_text:
            raise GatewayError(f"Nagad's {operation} answer has no sensitiveData or signature", raw=answer)
        try:
            text = self._merchant_key.decrypt(base64.b64decode(sealed, validate=True), padding.PKCS1v15())
            signature = base64.b64decode(signature_text, validate=True)
        except ValueError as error:  # not base64, or not encrypted for this key
            raise GatewayError(
                f"Nagad's {operation} answer does not decrypt with the merchant key", raw=answer
            ) from error
        try:
            self._nagad_key.verify(signature, text, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as error:
            raise GatewayError(
                f"Nagad's {operation} answer is not signed by Nagad's key: refused", code="signature", raw=answer
            ) from error
        try:
            opened = json.loads(text)
        except ValueError as error:
            raise GatewayError(f"Nagad's {operation} answer holds data that is not JSON", raw=answer) from error
        if not isinstance(opened, dict):
            raise GatewayError(f"Nagad's {operation} answer holds data that is not an object", raw=answer)
        return opened

    # -- HTTP -----------------------------------------------------------------------------------
    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = self._api + path
        response = request(self._http, method, url, gateway=GATEWAY, operation=operation, params=query, json=json_body)
        code = response.status_code
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        reason = answer.get("reason") if isinstance(answer.get("reason"), str) else ""
        message = str(answer.get("message") or reason)
        if code >= 500:
            # Nagad failed mid-call, with or without a reason: a refund may have gone through.
            said = f" ({message})" if message else ""
            raise GatewayTimeout(
                f"Nagad {operation}: HTTP {code}{said}, whether it took effect is unknown",
                code=reason or str(code),
                raw=answer,
            )
        if reason:
            raise NagadRefused(f"Nagad {operation} refused: {message}", code=reason, http_status=code, raw=answer)
        if code != 200 or not answer:
            raise GatewayError(f"Nagad {operation} answered HTTP {code}, not its protocol", code=str(code), raw=answer)
        return answer


def _fitting_message(request: dict[str, str], reason: str) -> str:
    """The refund's reason, cut to what still fits one RSA block beside the rest of the request."""
    message = " ".join(reason.split())
    while message and len(sensitive_text({**request, "referenceMessage": message})) > RSA_PLAINTEXT_LIMIT:
        message = message[:-1]
    return message
