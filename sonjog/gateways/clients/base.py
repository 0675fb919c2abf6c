"""What every gateway client offers the gateways app, whatever the gateway calls it.

A client speaks one gateway's real HTTP API (bKash Tokenized Checkout, Nagad, SSLCommerz) with httpx,
with timeouts on every call, and turns the gateway's answers into these few values. It writes nothing
to the database: the `PaymentAttempt` state machine (`sonjog.gateways.services`) decides what an answer
means for the money. A client never trusts a browser return or a notification by itself: `status`
asks the gateway.

Errors: `GatewayTimeout` when the gateway did not answer in time or the connection broke mid-call
(the outcome is unknown: the caller rechecks later), `GatewayError` when it answered with a refusal
or something that is not its protocol (the message names what it said).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol


class GatewayError(Exception):
    """The gateway answered, and the answer is a refusal or not its protocol."""

    def __init__(self, message: str, *, code: str = "", raw: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.raw = raw or {}


class GatewayTimeout(GatewayError):
    """No answer in time (or the connection broke): whether the call took effect is unknown."""


class State(StrEnum):
    """A payment as the gateway sees it."""

    PENDING = "pending"  # created, the payer has not finished (or the gateway has not settled it)
    PAID = "paid"  # the money is taken: bKash "Completed", Nagad "Success", SSLCommerz "VALID"/"VALIDATED"
    HELD = "held"  # paid but held by the gateway for review (SSLCommerz risk_level 1)
    FAILED = "failed"  # refused, cancelled or expired: no money moved
    UNKNOWN = "unknown"  # the gateway does not know the payment (yet)


@dataclass(frozen=True)
class Credentials:
    """One operator's merchant account at one gateway (decrypted for the call, never logged).

    bKash: username, password, app_key, app_secret. Nagad: merchant_id, merchant_private_key (PEM),
    gateway_public_key (PEM). SSLCommerz: store_id, store_password. `base_url` is the gateway's API
    root (the sandbox, the live host or the local emulator)."""

    base_url: str
    values: dict[str, str]
    merchant_account: str  # what the gateway's answers name as the receiving merchant (compared on confirm)


@dataclass(frozen=True)
class Checkout:
    """A payment created at the gateway: where to send the payer, and the gateway's id for it."""

    gateway_payment_id: str  # bKash paymentID, Nagad paymentReferenceId, SSLCommerz sessionkey
    redirect_url: str


@dataclass(frozen=True)
class Status:
    """What the gateway says about one payment, from its own status/verify/validation API."""

    state: State
    merchant_reference: str  # ours: bKash merchantInvoiceNumber, Nagad orderId, SSLCommerz tran_id
    gateway_payment_id: str = ""
    transaction_id: str = ""  # bKash trxID, Nagad issuerPaymentRefNo, SSLCommerz bank_tran_id
    amount: Decimal | None = None
    currency: str = ""
    merchant_account: str = ""
    payer: str = ""  # the wallet number or card, masked as the gateway gives it
    paid_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refund:
    """A refund as the gateway records it."""

    state: State  # PAID once the money went back, PENDING while it is processing, FAILED if refused
    refund_id: str
    amount: Decimal
    raw: dict[str, Any] = field(default_factory=dict)


class TokenStore(Protocol):
    """Where a client keeps an access token between calls (bKash's grant token), shared by every
    worker process: `get` returns a token still valid at `now`, or None."""

    def get(self, key: str, now: dt.datetime) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any], expires_at: dt.datetime) -> None: ...


class MemoryTokenStore:
    """A token store in this process (tests of a client alone)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[dict[str, Any], dt.datetime]] = {}

    def get(self, key: str, now: dt.datetime) -> dict[str, Any] | None:
        stored = self._values.get(key)
        return stored[0] if stored is not None and stored[1] > now else None

    def put(self, key: str, value: dict[str, Any], expires_at: dt.datetime) -> None:
        self._values[key] = (value, expires_at)


class GatewayClient(Protocol):
    """One gateway account's client. Every call has a timeout; none writes to the database."""

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
        """Create the payment at the gateway for `amount` and return where the payer goes."""
        ...

    def complete(self, *, checkout: Checkout, params: dict[str, str]) -> Status:
        """Finish the payment after the browser came back with `params` (bKash: execute; Nagad: verify
        by the payment reference; SSLCommerz: validate the `val_id`): the gateway's own answer."""
        ...

    def status(self, *, merchant_reference: str, gateway_payment_id: str) -> Status:
        """Ask the gateway what became of the payment (bKash query payment, Nagad verify, SSLCommerz
        transaction query by tran_id)."""
        ...

    def search(self, *, day: dt.date) -> list[Status]:
        """The gateway's payments to this merchant on `day` (its calendar), for the settlement check."""
        ...

    def refund(self, *, status: Status, amount: Decimal, reason: str, refund_reference: str) -> Refund:
        """Give `amount` of a paid payment back."""
        ...

    def refund_status(self, *, status: Status, refund_reference: str) -> Refund:
        """What became of a refund asked for earlier."""
        ...
