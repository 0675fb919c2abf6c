"""Every write of the gateways app: merchant accounts, the attempt state machine, stored inbound
requests and the token store.

The state machine, one row per checkout (`PaymentAttempt`):

    created --create at the gateway--> pending --confirm: paid, matches--> applied
                                        |  ^         paid, does not match / held--> review
                                        |  +-- still pending (recheck later)
                                        +--> failed (refused, cancelled, expired)
    any open state --no answer in time--> unknown --rechecked 1, 5, 15, 60 min, then hourly--> ...
                                                    --48 hours without an answer--> escalated

What the answer means for the money is decided here (`judge`); recording the payment is
`sonjog.flows.gateways.attempt_confirm`'s, which calls these under the attempt's row lock.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from sonjog.core.audit import audit
from sonjog.customers.models import Subscriber
from sonjog.gateways.clients.base import Checkout, Credentials, GatewayClient, State, Status
from sonjog.gateways.exceptions import GatewayAccountInvalid, NoGatewayAccount
from sonjog.gateways.fees import split
from sonjog.gateways.models import (
    OPEN_STATES,
    AttemptState,
    FeeMode,
    Gateway,
    GatewayAccount,
    GatewayToken,
    InboundRequest,
    PaymentAttempt,
)
from sonjog.network.crypto import decrypt, encrypt
from sonjog.operators.models import Operator

# Minutes after each check of an open attempt before the next one; hourly after the last, until
# ESCALATE_AFTER from its creation.
RECHECK_MINUTES = (1, 5, 15, 60)
ESCALATE_AFTER = dt.timedelta(hours=48)

REQUIRED_CREDENTIALS = {
    Gateway.BKASH: ("username", "password", "app_key", "app_secret"),
    Gateway.NAGAD: ("merchant_id", "merchant_private_key", "gateway_public_key"),
    Gateway.SSLCOMMERZ: ("store_id", "store_password"),
}


# -- accounts ------------------------------------------------------------------------------------
def gateway_account_create(
    *,
    operator: Operator,
    gateway: str,
    name: str,
    base_url: str,
    merchant_account: str,
    credentials: dict[str, str],
    mode: str = GatewayAccount.Mode.SANDBOX,
    fee_rate: Decimal = Decimal("0"),
    fee_mode: str = FeeMode.ABSORBED,
    actor: User | None = None,
) -> GatewayAccount:
    """A merchant account of `operator` at `gateway`; the credentials are encrypted at rest."""
    if gateway not in Gateway.values:
        raise GatewayAccountInvalid(f"unknown gateway '{gateway}'; use one of {', '.join(Gateway.values)}")
    missing = [key for key in REQUIRED_CREDENTIALS[Gateway(gateway)] if not credentials.get(key)]
    if missing:
        raise GatewayAccountInvalid(f"{gateway} needs {', '.join(missing)}")
    if not Decimal("0") <= fee_rate < Decimal("20"):
        raise GatewayAccountInvalid(f"the fee rate must be from 0 to under 20 % (got {fee_rate})")
    with transaction.atomic():
        account = GatewayAccount.objects.create(
            operator=operator,
            gateway=gateway,
            name=name,
            base_url=base_url.rstrip("/"),
            merchant_account=merchant_account,
            credentials=encrypt(json.dumps(credentials)),
            mode=mode,
            fee_rate=fee_rate,
            fee_mode=fee_mode,
        )
        audit(operator=operator, action="gateway.account_create", actor=actor, account=account.pk, gateway=gateway)
    return account


# What `gateway_account_update` may change besides the credentials, which its audit never shows.
ACCOUNT_FIELDS = ("name", "mode", "base_url", "merchant_account", "fee_rate", "fee_mode", "active")


def gateway_account_update(*, account: GatewayAccount, actor: User | None, **changes: Any) -> GatewayAccount:
    """Change a merchant account: any of ACCOUNT_FIELDS, and `credentials` (the gateway's credential
    names; a blank value keeps the stored one, so a form never has to show a secret back).

    Audited with the before and after of the fields that changed and the names, never the values, of
    the credentials replaced."""
    unknown = set(changes) - {*ACCOUNT_FIELDS, "credentials"}
    if unknown:
        raise TypeError(f"gateway_account_update() got unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        locked = GatewayAccount.objects.select_for_update().get(pk=account.pk)
        wanted = _account_fields_checked(locked, {name: changes[name] for name in ACCOUNT_FIELDS if name in changes})
        before = {name: getattr(locked, name) for name in wanted}
        after = {name: value for name, value in wanted.items() if value != before[name]}
        replaced = _credentials_merge(locked, dict(changes.get("credentials") or {}))
        if not after and not replaced:
            return locked
        for name, value in after.items():
            setattr(locked, name, value)
        locked.save()
        audit(
            operator=locked.operator,
            action="gateway.account_update",
            actor=actor,
            account=locked.pk,
            gateway=locked.gateway,
            before={name: before[name] for name in after},
            after=after,
            credentials_replaced=replaced,
        )
    return locked


def _account_fields_checked(account: GatewayAccount, wanted: dict[str, Any]) -> dict[str, Any]:
    """The non-secret changes, normalised as `gateway_account_create` stores them, or the refusal."""
    for name in ("name", "merchant_account"):
        if name in wanted:
            wanted[name] = str(wanted[name]).strip()
            if not wanted[name]:
                raise GatewayAccountInvalid(f"a gateway account needs its {name.replace('_', ' ')}")
    if "base_url" in wanted:
        wanted["base_url"] = str(wanted["base_url"]).strip().rstrip("/")
        if not wanted["base_url"]:
            raise GatewayAccountInvalid("a gateway account needs the gateway's API address")
    if "mode" in wanted and wanted["mode"] not in GatewayAccount.Mode.values:
        raise GatewayAccountInvalid(
            f"unknown mode '{wanted['mode']}'; use one of {', '.join(GatewayAccount.Mode.values)}"
        )
    if "fee_mode" in wanted and wanted["fee_mode"] not in FeeMode.values:
        raise GatewayAccountInvalid(f"unknown fee mode '{wanted['fee_mode']}'; use one of {', '.join(FeeMode.values)}")
    if "fee_rate" in wanted:
        wanted["fee_rate"] = Decimal(wanted["fee_rate"])
        if not Decimal("0") <= wanted["fee_rate"] < Decimal("20"):
            raise GatewayAccountInvalid(f"the fee rate must be from 0 to under 20 % (got {wanted['fee_rate']})")
    if "active" in wanted:
        wanted["active"] = bool(wanted["active"])
    merchant = wanted.get("merchant_account")
    if merchant is not None and merchant != account.merchant_account:
        taken = GatewayAccount.objects.filter(
            operator_id=account.operator_id, gateway=account.gateway, merchant_account=merchant
        ).exclude(pk=account.pk)
        if taken.exists():
            raise GatewayAccountInvalid(f"the operator already has a {account.gateway} account {merchant}")
    return wanted


def _credentials_merge(account: GatewayAccount, given: dict[str, Any]) -> list[str]:
    """Put the non-blank `given` credentials into `account` (encrypted); the names of those replaced."""
    if not given:
        return []
    required = REQUIRED_CREDENTIALS[Gateway(account.gateway)]
    strange = set(given) - set(required)
    if strange:
        raise GatewayAccountInvalid(f"{account.gateway} takes no credential named {', '.join(sorted(strange))}")
    stored = json.loads(decrypt(account.credentials)) if account.credentials else {}
    replaced = [key for key in required if given.get(key) and given[key] != stored.get(key)]
    stored.update({key: given[key] for key in replaced})
    missing = [key for key in required if not stored.get(key)]
    if missing:
        raise GatewayAccountInvalid(f"{account.gateway} needs {', '.join(missing)}")
    if replaced:
        account.credentials = encrypt(json.dumps(stored))
    return replaced


def credentials_of(account: GatewayAccount) -> Credentials:
    values = json.loads(decrypt(account.credentials)) if account.credentials else {}
    return Credentials(base_url=account.base_url, values=values, merchant_account=account.merchant_account)


class DatabaseTokenStore:
    """The token store every worker shares: one row per key, encrypted."""

    def get(self, key: str, now: dt.datetime) -> dict[str, Any] | None:
        row = GatewayToken.objects.filter(key=key, expires_at__gt=now).first()
        return json.loads(decrypt(row.value)) if row is not None else None

    def put(self, key: str, value: dict[str, Any], expires_at: dt.datetime) -> None:
        GatewayToken.objects.update_or_create(
            key=key, defaults={"value": encrypt(json.dumps(value)), "expires_at": expires_at}
        )


def client_for(account: GatewayAccount, *, timeout: float | None = None) -> GatewayClient:
    """The client of `account`'s gateway, with its decrypted credentials; each call waits at most
    `timeout` seconds (SONJOG_GATEWAY_TIMEOUT_SECONDS) before the outcome counts as unknown."""
    timeout = timeout if timeout is not None else settings.SONJOG_GATEWAY_TIMEOUT_SECONDS
    from sonjog.gateways.clients.bkash import BkashClient
    from sonjog.gateways.clients.nagad import NagadClient
    from sonjog.gateways.clients.sslcommerz import SslcommerzClient

    credentials = credentials_of(account)
    if account.gateway == Gateway.BKASH:
        return BkashClient(credentials, token_store=DatabaseTokenStore(), timeout=timeout)
    if account.gateway == Gateway.NAGAD:
        return NagadClient(credentials, timeout=timeout)
    return SslcommerzClient(credentials, timeout=timeout)


def accounts_for(operator: Operator) -> list[GatewayAccount]:
    """The active merchant accounts a subscriber of `operator` pays into: the operator's own (a
    reseller's subscribers pay the reseller)."""
    return list(GatewayAccount.objects.filter(operator=operator, active=True).order_by("gateway", "name"))


# -- attempts ------------------------------------------------------------------------------------
def _reference() -> str:
    # 20 characters, letters and digits only: within every gateway's limits for a merchant reference.
    return "SJ" + secrets.token_hex(9).upper()


def attempt_create(
    *, subscriber: Subscriber, account: GatewayAccount, amount: Decimal, source: str, now: dt.datetime | None = None
) -> PaymentAttempt:
    """A new checkout for crediting `subscriber` `amount` through `account` (the payer pays the
    gross-up when the fee is passed on). Committed before the payer leaves for the gateway."""
    if account.operator_id != subscriber.operator_id:
        raise NoGatewayAccount("the subscriber's operator has no such gateway account")
    if not account.active:
        raise NoGatewayAccount(f"{account} is not active")
    gross, fee = split(amount, account.fee_rate, passed_on=account.fee_mode == FeeMode.PASSED_ON)
    return PaymentAttempt.objects.create(
        operator_id=subscriber.operator_id,
        subscriber=subscriber,
        account=account,
        merchant_reference=_reference(),
        source=source,
        amount=amount,
        gross=gross,
        fee=fee,
        currency=subscriber.operator.currency,
        created_at=now or timezone.now(),
    )


def attempt_opened(attempt: PaymentAttempt, checkout: Checkout, now: dt.datetime) -> None:
    """The gateway created the payment: the payer goes to `checkout.redirect_url`; the recheck asks
    about it if nobody comes back."""
    attempt.state = AttemptState.PENDING
    attempt.gateway_payment_id = checkout.gateway_payment_id
    attempt.redirect_url = checkout.redirect_url
    attempt.next_check_at = now + dt.timedelta(minutes=RECHECK_MINUTES[0])
    attempt.save(update_fields=["state", "gateway_payment_id", "redirect_url", "next_check_at", "updated_at"])


def attempt_lock(attempt_id: int) -> PaymentAttempt:
    """The attempt, locked until the caller's transaction ends: every confirmation path waits here,
    so a return, two notifications and a recheck arriving together settle it once."""
    return (
        # The attempt's row only: locking the joined account and operator rows too would queue every
        # confirmation of one operator behind each other (and deadlock them under load).
        PaymentAttempt.objects.select_for_update(of=("self",))
        .select_related("account", "subscriber__operator")
        .get(pk=attempt_id)
    )


@dataclass(frozen=True)
class Verdict:
    state: str  # AttemptState.APPLIED (apply it), REVIEW, FAILED or PENDING (still waiting)
    reason: str = ""


def judge(attempt: PaymentAttempt, status: Status) -> Verdict:
    """What the gateway's own answer means for `attempt`: paid money is applied only when the amount,
    currency, merchant reference and receiving account are exactly ours."""
    if status.state == State.PAID:
        mismatches = []
        if status.merchant_reference != attempt.merchant_reference:
            mismatches.append(f"reference {status.merchant_reference!r}, not {attempt.merchant_reference!r}")
        if status.amount is None or status.amount != attempt.gross:
            mismatches.append(f"amount {status.amount}, not {attempt.gross}")
        if (status.currency or attempt.currency) != attempt.currency:
            mismatches.append(f"currency {status.currency}, not {attempt.currency}")
        if status.merchant_account and status.merchant_account != attempt.account.merchant_account:
            mismatches.append(f"merchant account {status.merchant_account}, not {attempt.account.merchant_account}")
        if not status.transaction_id:
            mismatches.append("no transaction id")
        if mismatches:
            return Verdict(AttemptState.REVIEW, "the gateway reports " + "; ".join(mismatches))
        return Verdict(AttemptState.APPLIED)
    if status.state == State.HELD:
        return Verdict(AttemptState.REVIEW, "the gateway holds the payment for review (risk)")
    if status.state == State.FAILED:
        return Verdict(AttemptState.FAILED, "the gateway reports the payment failed or cancelled")
    return Verdict(AttemptState.PENDING)


def _status_record(attempt: PaymentAttempt, status: Status) -> None:
    attempt.last_status = {
        "state": str(status.state),
        "transaction_id": status.transaction_id,
        "amount": str(status.amount) if status.amount is not None else None,
        "currency": status.currency,
        "merchant_reference": status.merchant_reference,
        "merchant_account": status.merchant_account,
    }
    if status.transaction_id:
        attempt.transaction_id = status.transaction_id
    if status.payer:
        attempt.payer = status.payer[:40]


def attempt_settle(
    attempt: PaymentAttempt, verdict: Verdict, status: Status | None, now: dt.datetime, payment_id: int | None = None
) -> None:
    """Write what a confirmation concluded, on the locked attempt."""
    attempt.checks += 1
    if status is not None:
        _status_record(attempt, status)
    attempt.state = verdict.state
    if verdict.state == AttemptState.PENDING:
        _schedule(attempt, now)
    else:
        attempt.next_check_at = None
        attempt.finished_at = now
        attempt.review_reason = verdict.reason[:300] if verdict.state == AttemptState.REVIEW else ""
    if verdict.state == AttemptState.APPLIED:
        attempt.payment_id = payment_id
    attempt.save()
    if verdict.state in (AttemptState.REVIEW, AttemptState.APPLIED):
        audit(
            operator=attempt.subscriber.operator,
            action=f"gateway.attempt_{verdict.state}",
            subscriber=attempt.subscriber,
            attempt=attempt.merchant_reference,
            transaction=attempt.transaction_id,
            amount=attempt.amount,
            reason=verdict.reason,
        )


def attempt_unknown(attempt: PaymentAttempt, error: str, now: dt.datetime) -> None:
    """The gateway did not answer: the outcome is unknown until a recheck learns it."""
    attempt.checks += 1
    attempt.last_error = error[:300]
    if attempt.state == AttemptState.PENDING or attempt.state == AttemptState.CREATED:
        attempt.state = AttemptState.UNKNOWN
    _schedule(attempt, now)
    attempt.save()


def _schedule(attempt: PaymentAttempt, now: dt.datetime) -> None:
    if now - attempt.created_at >= ESCALATE_AFTER:
        attempt.state = AttemptState.ESCALATED
        attempt.next_check_at = None
        attempt.finished_at = now
        attempt.review_reason = "no final answer from the gateway after 48 hours"
        return
    index = max(attempt.checks - 1, 0)
    minutes = RECHECK_MINUTES[index] if index < len(RECHECK_MINUTES) else RECHECK_MINUTES[-1]
    attempt.next_check_at = now + dt.timedelta(minutes=minutes)


def attempt_failed_to_open(attempt: PaymentAttempt, error: str, now: dt.datetime) -> None:
    """The gateway refused to create the payment (or did not answer): nobody can pay it."""
    attempt.state = AttemptState.FAILED
    attempt.last_error = error[:300]
    attempt.finished_at = now
    attempt.save(update_fields=["state", "last_error", "finished_at", "updated_at"])


def attempts_due(now: dt.datetime, limit: int = 200) -> list[int]:
    """The open attempts whose next check is due, oldest first."""
    return list(
        PaymentAttempt.objects.filter(state__in=[AttemptState.PENDING, AttemptState.UNKNOWN], next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", flat=True)[:limit]
    )


def attempt_by_reference(reference: str) -> PaymentAttempt | None:
    return PaymentAttempt.objects.filter(merchant_reference=reference).select_related("account").first()


def attempt_reference_by_transaction(gateway: str, transaction_id: str) -> str:
    """The merchant reference of the attempt a gateway transaction settled ("" when none did)."""
    if not transaction_id:
        return ""
    found = PaymentAttempt.objects.filter(account__gateway=gateway, transaction_id=transaction_id)
    return found.values_list("merchant_reference", flat=True).first() or ""


def is_open(state: str) -> bool:
    return state in OPEN_STATES


# -- inbound requests ----------------------------------------------------------------------------
def inbound_store(
    *,
    gateway: str,
    kind: str,
    method: str,
    path: str,
    params: dict[str, str],
    body: str,
    source_address: str | None,
    now: dt.datetime | None = None,
) -> InboundRequest:
    """Keep what arrived, committed before anything acts on it."""
    return InboundRequest.objects.create(
        gateway=gateway,
        kind=kind,
        method=method,
        path=path[:500],
        params=params,
        body=body[:20000],
        source_address=source_address,
        received_at=now or timezone.now(),
    )


def inbound_done(
    inbound: InboundRequest, *, attempt: PaymentAttempt | None, outcome: str, error: str = "", now: dt.datetime
) -> None:
    inbound.attempt = attempt
    inbound.account_id = attempt.account_id if attempt is not None else None
    inbound.outcome = outcome[:20]
    inbound.error = error
    inbound.processed_at = now if not error else None
    inbound.save(update_fields=["attempt", "account", "outcome", "error", "processed_at"])


# -- bKash's signed webhooks ---------------------------------------------------------------------
def webhook_cert_hosts() -> list[str]:
    """The hosts a webhook's signing certificate may come from (settings; the emulator's in tests)."""
    return list(settings.SONJOG_GATEWAY_CERT_HOSTS)


def certificate_fetch(url: str) -> bytes:
    """The signing certificate at `url` (its host was checked against `webhook_cert_hosts`)."""
    answer = httpx.get(url, timeout=5.0)
    answer.raise_for_status()
    return answer.content
