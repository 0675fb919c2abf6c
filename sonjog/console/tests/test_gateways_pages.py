"""The online payment pages: gateway accounts (added through the form with their credentials encrypted
at rest, edited with blank secrets kept, deactivated), the online payments desk (filters, the
needs-attention view, counts, the detail with what the gateway sent), "check now" against a gateway
that does not answer, "replay" of a stored request (against the bKash emulator, to an applied
payment with its receipt), every id scoped to the caller's subtree, the dashboard's card, Bangla.

Every test runs on the project's pinned clock (sonjog.conftest: 10:00 in Dhaka on 18 November 2026).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sonjog.billing.models import Payment
from sonjog.console.tests.conftest import Tree, add_staff
from sonjog.core.models import AuditEvent
from sonjog.customers.models import Subscriber
from sonjog.flows.gateways import checkout_start
from sonjog.gateways.clients.base import Checkout
from sonjog.gateways.emulator.bkash import BkashEmulator
from sonjog.gateways.models import AttemptState, GatewayAccount, InboundRequest, PaymentAttempt
from sonjog.gateways.services import (
    attempt_create,
    attempt_opened,
    credentials_of,
    gateway_account_create,
    inbound_store,
)
from sonjog.operators.models import Operator

pytestmark = pytest.mark.django_db
M = Decimal

# Nothing listens on the discard port of the loopback: a gateway there refuses every connection at once.
CLOSED = "http://127.0.0.1:9"
BKASH = {
    "username": "merchant-user",
    "password": "bk-pass-SECRET-1",
    "app_key": "bk-key-7",
    "app_secret": "bk-SECRET-2",
}


def _account(operator: Operator, name: str = "bKash main", **options: Any) -> GatewayAccount:
    values = {
        "gateway": "bkash",
        "base_url": CLOSED,
        "merchant_account": f"0170{operator.pk:07d}",
        "credentials": dict(BKASH),
        "fee_rate": M("1.5"),
        **options,
    }
    return gateway_account_create(operator=operator, name=name, **values)


def _attempt(subscriber: Subscriber, account: GatewayAccount, amount: str = "500.00", **row: Any) -> PaymentAttempt:
    created = row.pop("created_at", timezone.now())
    attempt = attempt_create(subscriber=subscriber, account=account, amount=M(amount), source="portal", now=created)
    if row:
        PaymentAttempt.objects.filter(pk=attempt.pk).update(**row)
        attempt.refresh_from_db()
    return attempt


def _body(response: Any) -> str:
    return response.content.decode()


def _form(**changes: str) -> dict[str, str]:
    return {
        "operator": "",
        "gateway": "bkash",
        "name": "bKash collections",
        "mode": "sandbox",
        "base_url": CLOSED,
        "merchant_account": "01711000000",
        "fee_rate": "1.85",
        "fee_mode": "passed_on",
        "credential_username": BKASH["username"],
        "credential_password": BKASH["password"],
        "credential_app_key": BKASH["app_key"],
        "credential_app_secret": BKASH["app_secret"],
        **changes,
    }


# -- gateway accounts -----------------------------------------------------------------------------


def test_an_account_added_through_the_form_keeps_its_credentials_encrypted_and_unshown(tree: Tree) -> None:
    client = tree.login(tree.root.staff["owner"])
    chooser = client.get(reverse("console:gateway_account_create"))
    assert chooser.status_code == 200 and 'id="gateway-choice-form"' in _body(chooser)
    shown = client.get(reverse("console:gateway_account_create"), {"gateway": "bkash"})
    assert all(f'name="credential_{key}"' in _body(shown) for key in BKASH)
    response = client.post(reverse("console:gateway_account_create"), _form(operator=str(tree.north.operator.pk)))
    assert response.status_code == 302 and response["Location"] == reverse("console:gateway_accounts")
    account = GatewayAccount.objects.get(merchant_account="01711000000")
    assert (account.operator, account.gateway, account.fee_rate, account.fee_mode) == (
        tree.north.operator,
        "bkash",
        M("1.850"),
        "passed_on",
    )
    for secret in (BKASH["password"], BKASH["app_secret"], BKASH["app_key"], BKASH["username"]):
        assert secret not in account.credentials  # encrypted at rest
    assert credentials_of(account).values == BKASH
    assert AuditEvent.objects.filter(action="gateway.account_create", operator=tree.north.operator).exists()
    listed = _body(client.get(reverse("console:gateway_accounts")))
    assert f'data-account="{account.pk}"' in listed and "1.85%" in listed and "North reseller" in listed
    edit = _body(client.get(reverse("console:gateway_account", args=[account.pk])))
    assert all(secret not in listed + edit for secret in (BKASH["password"], BKASH["app_secret"]))


def test_the_form_refuses_what_the_gateway_could_not_use(tree: Tree) -> None:
    client = tree.login(tree.north.staff["reseller_staff"])
    assert client.get(reverse("console:gateway_account_create")).status_code == 403
    client = tree.login(add_staff(tree.north, "owner"))
    missing = client.post(reverse("console:gateway_account_create"), _form(credential_app_secret=""))
    assert missing.status_code == 400 and "credential_app_secret" in missing.context["form"].errors
    too_dear = client.post(reverse("console:gateway_account_create"), _form(fee_rate="20"))
    assert too_dear.status_code == 400 and "fee_rate" in too_dear.context["form"].errors
    assert client.post(reverse("console:gateway_account_create"), _form()).status_code == 302
    again = client.post(reverse("console:gateway_account_create"), _form(name="Second"))
    assert again.status_code == 400 and "merchant_account" in again.context["form"].errors
    # A secret typed in is not sent back, not even with a form error.
    assert BKASH["password"] not in _body(again) and BKASH["app_secret"] not in _body(again)
    assert GatewayAccount.objects.count() == 1


def test_a_nagad_account_takes_rsa_keys_in_a_text_area(tree: Tree) -> None:
    client = tree.login(tree.root.staff["owner"])
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    nagad_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    private_pem = merchant_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = nagad_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    shown = _body(client.get(reverse("console:gateway_account_create"), {"gateway": "nagad"}))
    assert '<textarea name="credential_merchant_private_key"' in shown
    data = {
        "operator": str(tree.root.operator.pk),
        "gateway": "nagad",
        "name": "Nagad",
        "mode": "live",
        "base_url": CLOSED,
        "merchant_account": "683002007104225",
        "fee_rate": "1.5",
        "fee_mode": "absorbed",
        "credential_merchant_id": "683002007104225",
        "credential_merchant_private_key": "not a key",
        "credential_gateway_public_key": public_pem.replace("\n", "\r\n"),
    }
    refused = client.post(reverse("console:gateway_account_create"), data)
    assert refused.status_code == 400 and "credential_merchant_private_key" in refused.context["form"].errors
    assert "BEGIN PUBLIC KEY" not in _body(refused)
    assert (
        client.post(
            reverse("console:gateway_account_create"), {**data, "credential_merchant_private_key": private_pem}
        ).status_code
        == 302
    )
    account = GatewayAccount.objects.get(gateway="nagad")
    stored = credentials_of(account).values
    assert stored["merchant_private_key"] == private_pem.strip() and "\r" not in stored["gateway_public_key"]
    assert "PRIVATE KEY" not in account.credentials


def test_editing_with_blank_secrets_keeps_them_and_the_audit_never_holds_one(tree: Tree) -> None:
    account = _account(tree.root.operator)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:gateway_account", args=[account.pk])
    edit = {
        **_form(name="bKash renamed", merchant_account=account.merchant_account, fee_rate="2"),
        "action": "save",
        "active": "on",
        **{f"credential_{key}": "" for key in BKASH},
    }
    assert client.post(url, edit).status_code == 302
    account.refresh_from_db()
    assert (account.name, account.fee_rate, account.fee_mode) == ("bKash renamed", M("2.000"), "passed_on")
    assert credentials_of(account).values == BKASH
    event = AuditEvent.objects.filter(action="gateway.account_update").latest("pk")
    assert event.detail["before"]["name"] == "bKash main" and event.detail["after"]["name"] == "bKash renamed"
    assert event.detail["credentials_replaced"] == []
    assert client.post(url, {**edit, "credential_password": "new-pass-SECRET-3"}).status_code == 302
    account.refresh_from_db()
    assert credentials_of(account).values == {**BKASH, "password": "new-pass-SECRET-3"}
    event = AuditEvent.objects.filter(action="gateway.account_update").latest("pk")
    assert event.detail["credentials_replaced"] == ["password"]
    every_detail = json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))
    assert all(secret not in every_detail for secret in ("new-pass-SECRET-3", BKASH["password"], BKASH["app_secret"]))


def test_deactivating_and_activating_an_account(tree: Tree) -> None:
    account = _account(tree.root.operator)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:gateway_account", args=[account.pk])
    assert client.post(url, {"action": "active", "active": "0"}).status_code == 302
    account.refresh_from_db()
    assert not account.active
    listed = _body(client.get(reverse("console:gateway_accounts")))
    assert f'data-activate-account="{account.pk}"' in listed
    assert client.post(url, {"action": "active", "active": "1"}).status_code == 302
    account.refresh_from_db()
    assert account.active
    assert client.post(url, {"action": "active", "active": "maybe"}).status_code == 400


def test_managing_accounts_is_for_owners_and_managers(tree: Tree) -> None:
    account = _account(tree.north.operator)
    manager = add_staff(tree.north, "manager")
    assert tree.login(manager).get(reverse("console:gateway_accounts")).status_code == 200
    for role in ("reseller_staff", "billing_clerk", "collector", "support"):
        client = tree.login(tree.north.staff[role])
        assert client.get(reverse("console:gateway_accounts")).status_code == 403, role
        assert (
            client.post(
                reverse("console:gateway_account", args=[account.pk]), {"action": "active", "active": "0"}
            ).status_code
            == 403
        )
    account.refresh_from_db()
    assert account.active
    menu = _body(tree.login(manager).get(reverse("console:dashboard")))
    assert reverse("console:gateway_accounts") in menu and reverse("console:online_payments") in menu


# -- scoping --------------------------------------------------------------------------------------


def test_a_resellers_staff_see_only_their_subtrees_accounts_and_attempts(tree: Tree) -> None:
    accounts = {branch: _account(getattr(tree, branch).operator) for branch in ("root", "north", "south")}
    attempts = {
        branch: _attempt(getattr(tree, branch).subscribers[0], accounts[branch], state=AttemptState.REVIEW)
        for branch in accounts
    }
    owner = tree.login(add_staff(tree.north, "owner"))
    listed = _body(owner.get(reverse("console:gateway_accounts")))
    assert f'data-account="{accounts["north"].pk}"' in listed
    assert (
        f'data-account="{accounts["south"].pk}"' not in listed and f'data-account="{accounts["root"].pk}"' not in listed
    )
    for other in ("root", "south"):
        url = reverse("console:gateway_account", args=[accounts[other].pk])
        assert owner.get(url).status_code == 404
        assert owner.post(url, {"action": "active", "active": "0"}).status_code == 404
        assert owner.post(url, {**_form(), "action": "save"}).status_code == 404
    refused = owner.post(reverse("console:gateway_account_create"), _form(operator=str(tree.south.operator.pk)))
    assert refused.status_code == 400 and "operator" in refused.context["form"].errors
    assert not GatewayAccount.objects.filter(merchant_account="01711000000").exists()
    # One operator in scope: the choice is not offered, and its own operator is used.
    assert owner.post(reverse("console:gateway_account_create"), _form()).status_code == 302
    assert GatewayAccount.objects.get(merchant_account="01711000000").operator == tree.north.operator

    staff = tree.login(tree.north.staff["reseller_staff"])
    desk = _body(staff.get(reverse("console:online_payments")))
    assert f'data-attempt="{attempts["north"].pk}"' in desk
    assert f'data-attempt="{attempts["south"].pk}"' not in desk and f'data-attempt="{attempts["root"].pk}"' not in desk
    searched = _body(staff.get(reverse("console:online_payments"), {"q": attempts["south"].merchant_reference}))
    assert f'data-attempt="{attempts["south"].pk}"' not in searched
    for other in ("root", "south"):
        url = reverse("console:online_payment", args=[attempts[other].pk])
        assert staff.get(url).status_code == 404
        assert staff.post(url, {"action": "check"}).status_code == 404
    assert all(each.checks == 0 for each in PaymentAttempt.objects.all())
    everyone = _body(tree.login(tree.root.staff["owner"]).get(reverse("console:online_payments")))
    assert all(f'data-attempt="{attempt.pk}"' in everyone for attempt in attempts.values())


def test_a_replay_names_only_a_request_of_its_own_attempt(tree: Tree) -> None:
    own = _attempt(tree.north.subscribers[0], _account(tree.north.operator))
    foreign = _attempt(tree.south.subscribers[0], _account(tree.south.operator))
    stored = inbound_store(
        gateway="bkash",
        kind="ipn",
        method="POST",
        path="/gateways/bkash/webhook/",
        params={},
        body="",
        source_address=None,
    )
    InboundRequest.objects.filter(pk=stored.pk).update(attempt=foreign, account=foreign.account)
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:online_payment", args=[own.pk])
    for inbound in (str(stored.pk), "", "x", "9" * 30):
        assert client.post(url, {"action": "replay", "inbound": inbound}).status_code == 404
    stored.refresh_from_db()
    assert stored.processed_at is None and stored.outcome == ""
    foreign.refresh_from_db()
    assert foreign.checks == 0


# -- the desk -------------------------------------------------------------------------------------


def test_the_desk_opens_on_what_needs_attention_with_counts_per_state(tree: Tree) -> None:
    account = _account(tree.root.operator)
    first, second = tree.root.subscribers
    review = _attempt(first, account, state=AttemptState.REVIEW, review_reason="amount 10.00, not 500.00")
    escalated = _attempt(first, account, state=AttemptState.ESCALATED)
    unknown = _attempt(second, account, state=AttemptState.UNKNOWN, last_error="recheck: no answer")
    pending = _attempt(second, account, state=AttemptState.PENDING)
    failed = _attempt(second, account, state=AttemptState.FAILED)
    client = tree.login(tree.root.staff["billing_clerk"])
    response = client.get(reverse("console:online_payments"))
    assert response.status_code == 200
    body = _body(response)
    shown = {
        attempt.pk
        for attempt in (review, escalated, unknown, pending, failed)
        if f'data-attempt="{attempt.pk}"' in body
    }
    assert shown == {review.pk, escalated.pk, unknown.pk}
    assert response.context["chosen_state"] == "attention"
    tabs = {value: count for value, _label, count in response.context["tabs"]}
    assert tabs == {
        "attention": 3,
        "created": 0,
        "pending": 1,
        "unknown": 1,
        "applied": 0,
        "failed": 1,
        "review": 1,
        "escalated": 1,
    }
    assert response.context["total"] == 5
    everything = _body(client.get(reverse("console:online_payments"), {"state": ""}))
    assert all(f'data-attempt="{attempt.pk}"' in everything for attempt in (review, pending, failed))
    only_pending = _body(client.get(reverse("console:online_payments"), {"state": "pending"}))
    assert f'data-attempt="{pending.pk}"' in only_pending and f'data-attempt="{review.pk}"' not in only_pending


def test_the_desk_filters_by_gateway_days_and_what_is_searched(tree: Tree) -> None:
    bkash = _account(tree.root.operator)
    ssl = gateway_account_create(
        operator=tree.root.operator,
        gateway="sslcommerz",
        name="Cards",
        base_url=CLOSED,
        merchant_account="sonjogstore",
        credentials={"store_id": "sonjogstore", "store_password": "store-SECRET"},
    )
    first, second = tree.root.subscribers
    # 23:30 in Dhaka on 15 November is 17:30 UTC; 00:30 on the 16th in Dhaka is still the 15th (18:30) in UTC.
    late_on_15th = _attempt(
        first, bkash, created_at=dt.datetime(2026, 11, 15, 17, 30, tzinfo=dt.UTC), transaction_id="TRX9A1"
    )
    early_on_16th = _attempt(second, ssl, created_at=dt.datetime(2026, 11, 15, 18, 30, tzinfo=dt.UTC))
    today = _attempt(second, bkash)
    client = tree.login(tree.root.staff["owner"])

    def listed(**params: str) -> set[int]:
        response = client.get(reverse("console:online_payments"), params)
        assert response.status_code == 200, params
        return {each.pk for each, _tone in response.context["rows"]}

    assert listed(state="") == {late_on_15th.pk, early_on_16th.pk, today.pk}
    assert listed(gateway="sslcommerz") == {early_on_16th.pk}
    assert listed(gateway="bkash") == {late_on_15th.pk, today.pk}
    assert listed(created_from="2026-11-16") == {early_on_16th.pk, today.pk}
    assert listed(created_to="2026-11-15") == {late_on_15th.pk}
    assert listed(created_from="2026-11-16", created_to="2026-11-16") == {early_on_16th.pk}
    assert listed(q=first.customer_id) == {late_on_15th.pk}
    assert listed(q=early_on_16th.merchant_reference.lower()) == {early_on_16th.pk}
    assert listed(q="trx9a1") == {late_on_15th.pk}
    assert listed(q="nothing-like-it") == set()
    assert listed(operator=str(tree.north.operator.pk)) == set()
    # Unusable input lists nothing rather than more than was asked for.
    refused = client.get(reverse("console:online_payments"), {"created_from": "9999-12-31"})
    assert refused.status_code == 400 and refused.context["rows"] == []
    assert client.get(reverse("console:online_payments"), {"state": "sideways"}).context["rows"] == []


def test_the_detail_shows_amounts_the_last_answer_and_what_the_gateway_sent(tree: Tree) -> None:
    account = _account(tree.root.operator, fee_mode="passed_on", fee_rate=M("1.85"))
    attempt = _attempt(
        tree.root.subscribers[0],
        account,
        "1000.00",
        state=AttemptState.REVIEW,
        review_reason="the gateway reports amount 900.00, not 1018.85",
        transaction_id="TRXREVIEW1",
        last_status={"state": "paid", "amount": "900.00", "transaction_id": "TRXREVIEW1"},
    )
    assert (attempt.gross, attempt.fee) == (M("1018.85"), M("18.85"))
    handled = inbound_store(
        gateway="bkash",
        kind="return",
        method="GET",
        path=f"/pay/{attempt.merchant_reference}/return/",
        params={"paymentID": "PID1", "status": "success"},
        body="",
        source_address="127.0.0.1",
    )
    InboundRequest.objects.filter(pk=handled.pk).update(attempt=attempt, outcome="review", processed_at=timezone.now())
    broken = inbound_store(
        gateway="bkash",
        kind="webhook",
        method="POST",
        path="/gateways/bkash/webhook/",
        params={},
        body="{}",
        source_address=None,
    )
    InboundRequest.objects.filter(pk=broken.pk).update(attempt=attempt, outcome="error", error="KeyError: 'Message'")
    response = tree.login(tree.root.staff["owner"]).get(reverse("console:online_payment", args=[attempt.pk]))
    assert response.status_code == 200
    body = _body(response)
    assert "৳1,000.00" in body and "৳1,018.85" in body and "৳18.85" in body
    assert "the gateway reports amount 900.00" in body and "TRXREVIEW1" in body and "900.00" in body
    assert f'data-inbound="{handled.pk}"' in body and f'data-inbound="{broken.pk}"' in body
    assert "KeyError: &#x27;Message&#x27;" in body
    assert f'data-replay="{broken.pk}"' in body and f'data-replay="{handled.pk}"' not in body
    assert "check-now-form" not in body  # parked for review: nothing left to ask the gateway


def test_check_now_on_a_gateway_that_does_not_answer_leaves_the_outcome_unknown(tree: Tree) -> None:
    attempt = _attempt(tree.north.subscribers[0], _account(tree.north.operator))
    # The gateway created the payment and the payer left for it: there is a payment to ask about.
    attempt_opened(attempt, Checkout(gateway_payment_id="TR0011PAYMENT", redirect_url=f"{CLOSED}/pay"), timezone.now())
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:online_payment", args=[attempt.pk])
    assert 'id="check-now-form"' in _body(client.get(url))
    response = client.post(url, {"action": "check"}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.UNKNOWN and attempt.checks == 1 and attempt.payment_id is None
    assert attempt.last_error.startswith("staff: bKash") and "no answer" in attempt.last_error
    assert attempt.next_check_at is not None and attempt.next_check_at > timezone.now()
    body = _body(response)
    assert 'id="attempt-error"' in body and attempt.last_error in body
    assert "The gateway did not answer" in body
    assert not Payment.objects.filter(subscriber=attempt.subscriber, method="bkash").exists()
    # It needs attention now, and the dashboard counts it.
    desk = _body(client.get(reverse("console:online_payments")))
    assert f'data-attempt="{attempt.pk}"' in desk
    # Asking and replaying record money: a login that may only look cannot.
    support = tree.login(tree.north.staff["support"])
    assert support.post(url, {"action": "check"}).status_code == 403


def test_who_may_see_and_act_on_the_desk(tree: Tree) -> None:
    attempt = _attempt(tree.north.subscribers[0], _account(tree.north.operator))
    url = reverse("console:online_payment", args=[attempt.pk])
    for role in ("collector", "support"):
        client = tree.login(tree.north.staff[role])
        assert client.get(reverse("console:online_payments")).status_code == 403, role
        assert client.get(url).status_code == 403, role
        assert client.post(url, {"action": "check"}).status_code == 403, role
    attempt.refresh_from_db()
    assert attempt.checks == 0
    staff = tree.login(tree.north.staff["reseller_staff"])
    assert 'id="check-now-form"' in _body(staff.get(url))
    assert staff.post(url, {"action": "sideways"}).status_code == 400


@pytest.fixture
def bkash_emulator() -> Iterator[BkashEmulator]:
    emulator = BkashEmulator(
        username=BKASH["username"],
        password=BKASH["password"],
        app_key=BKASH["app_key"],
        app_secret=BKASH["app_secret"],
        short_code="01799999999",
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def test_replaying_a_return_whose_handling_never_ran_applies_the_payment(
    tree: Tree, bkash_emulator: BkashEmulator
) -> None:
    subscriber = tree.north.subscribers[0]
    account = _account(tree.north.operator, base_url=bkash_emulator.api_url, merchant_account="01799999999")
    attempt = checkout_start(
        subscriber=subscriber,
        account=account,
        amount=M("600.00"),
        source="portal",
        return_url="http://127.0.0.1:9/pay/{reference}/return/",
        notify_url="http://127.0.0.1:9/pay/{reference}/notify/",
    )
    assert attempt.state == AttemptState.PENDING, attempt.last_error
    bkash_emulator.pay(attempt.gateway_payment_id)
    # The payer came back; the process died before handling it: stored, never processed.
    stored = inbound_store(
        gateway="bkash",
        kind="return",
        method="GET",
        path=f"/pay/{attempt.merchant_reference}/return/",
        params={"paymentID": attempt.gateway_payment_id, "status": "success"},
        body="",
        source_address="127.0.0.1",
    )
    InboundRequest.objects.filter(pk=stored.pk).update(attempt=attempt, account=account)
    client = tree.login(tree.north.staff["reseller_staff"])
    url = reverse("console:online_payment", args=[attempt.pk])
    assert f'data-replay="{stored.pk}"' in _body(client.get(url))
    response = client.post(url, {"action": "replay", "inbound": str(stored.pk)}, follow=True)
    attempt.refresh_from_db()
    stored.refresh_from_db()
    assert attempt.state == AttemptState.APPLIED and attempt.payment is not None
    assert attempt.payment.amount == M("600.00") and attempt.payment.gateway_transaction_id == attempt.transaction_id
    assert stored.processed_at is not None and stored.outcome == "applied" and stored.error == ""
    body = _body(response)
    assert "Request handled again" in body
    assert reverse("console:receipt", args=[attempt.payment_id]) in body and f"MR-{attempt.payment_id}" in body
    assert f'data-replay="{stored.pk}"' not in body and "check-now-form" not in body
    assert AuditEvent.objects.filter(action="gateway.attempt_applied", subscriber=subscriber).exists()
    # A second replay of the same request does nothing more.
    again = client.post(url, {"action": "replay", "inbound": str(stored.pk)}, follow=True)
    assert "handled already" in _body(again)
    assert Payment.objects.filter(gateway_transaction_id=attempt.transaction_id).count() == 1


# -- the dashboard, Bangla, query counts ----------------------------------------------------------


def test_the_dashboard_counts_what_the_gateway_saw_and_was_not_applied(tree: Tree) -> None:
    client = tree.login(tree.root.staff["owner"])
    card = client.get(reverse("console:dashboard")).context["cards"]
    (unapplied,) = [each for each in card if each.key == "gateway_unapplied"]
    assert unapplied.value == "0" and unapplied.tone == "ok"
    assert unapplied.url == reverse("console:online_payments") + "?state=attention"
    account = _account(tree.south.operator)
    _attempt(tree.south.subscribers[0], account, state=AttemptState.REVIEW)
    _attempt(tree.south.subscribers[1], account, state=AttemptState.UNKNOWN)
    _attempt(tree.south.subscribers[1], account, state=AttemptState.PENDING)
    body = _body(client.get(reverse("console:dashboard")))
    assert 'id="card-gateway_unapplied"' in body
    (unapplied,) = [
        each for each in client.get(reverse("console:dashboard")).context["cards"] if each.key == "gateway_unapplied"
    ]
    assert unapplied.value == "2" and unapplied.tone == "bad"
    # North's own dashboard does not count south's.
    north = tree.login(tree.north.staff["reseller_staff"]).get(reverse("console:dashboard")).context["cards"]
    assert [each.value for each in north if each.key == "gateway_unapplied"] == ["0"]


def test_the_desk_in_bangla(tree: Tree) -> None:
    account = _account(tree.root.operator)
    attempt = _attempt(
        tree.root.subscribers[0], account, "1250.00", state=AttemptState.UNKNOWN, last_error="recheck: no answer"
    )
    client = tree.login(tree.root.staff["owner"])
    client.post(reverse("console:language"), {"language": "bn"})
    desk = _body(client.get(reverse("console:online_payments")))
    assert 'lang="bn"' in desk
    assert "৳১,২৫০.০০" in desk  # Bengali digits; lakh grouping starts above 99,999
    assert "বিকাশ" in desk
    assert "২০২৬" in desk  # the row's date, in Bengali digits
    assert "<span data-count>১</span>" in desk
    detail = _body(client.get(reverse("console:online_payment", args=[attempt.pk])))
    assert "৳১,২৫০.০০" in detail and "recheck: no answer" in detail
    accounts = _body(client.get(reverse("console:gateway_accounts")))
    assert "১.৫%" in accounts


def _queries(client: Any, url: str, **params: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


def test_the_desk_and_the_accounts_keep_a_fixed_query_count(tree: Tree) -> None:
    client = tree.login(tree.root.staff["owner"])
    branches = (tree.root, tree.north, tree.south)
    for branch in branches:
        account = _account(branch.operator)
        _attempt(branch.subscribers[0], account, state=AttemptState.REVIEW)
    urls = [reverse("console:online_payments"), reverse("console:gateway_accounts")]
    for url in urls:
        client.get(url)
    few = [_queries(client, url) for url in urls] + [_queries(client, urls[0], state="")]
    for branch in branches:
        account = _account(branch.operator, name="Second", merchant_account=f"0188{branch.operator.pk:07d}")
        for subscriber in branch.subscribers:
            for state in (AttemptState.REVIEW, AttemptState.UNKNOWN, AttemptState.FAILED):
                _attempt(subscriber, account, state=state)
    many = [_queries(client, url) for url in urls] + [_queries(client, urls[0], state="")]
    assert few == many
    assert max(many) <= 10
