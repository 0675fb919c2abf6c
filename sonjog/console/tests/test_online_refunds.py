"""Refunds on the online payment's page and the Settlement page, against the bKash emulator over real
HTTP: the refund form offers what is left, confirms the amount and the subscriber before anything is
asked, refunds through the gateway and lists the refund; it takes the permission that reverses
entries; the Settlement page lists each account's latest checks with both lists and runs a day again;
a reseller's staff see and act on their own subtree only; the dashboard counts what the latest check
found paid and not applied.

Every test runs on the project's pinned clock (sonjog.conftest: 10:00 in Dhaka on 18 November 2026).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from sonjog.billing.terms import operator_today
from sonjog.console.tests.conftest import Branch, Tree
from sonjog.flows.gateways import attempt_confirm, checkout_start
from sonjog.gateways.emulator.bkash import BkashEmulator
from sonjog.gateways.models import (
    AttemptState,
    GatewayAccount,
    GatewayRefund,
    PaymentAttempt,
    RefundState,
    SettlementCheck,
)
from sonjog.gateways.services import gateway_account_create
from sonjog.gateways.settlement import Comparison, settlement_record

pytestmark = pytest.mark.django_db
M = Decimal
CREDENTIALS = {"username": "desk-user", "password": "desk-pass-1", "app_key": "desk-key", "app_secret": "desk-secret"}


@pytest.fixture
def bkash() -> Iterator[BkashEmulator]:
    emulator = BkashEmulator(
        username=CREDENTIALS["username"],
        password=CREDENTIALS["password"],
        app_key=CREDENTIALS["app_key"],
        app_secret=CREDENTIALS["app_secret"],
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def _account(branch: Branch, emulator: BkashEmulator, name: str) -> GatewayAccount:
    return gateway_account_create(
        operator=branch.operator,
        gateway="bkash",
        name=name,
        base_url=emulator.api_url,
        merchant_account=f"0170{branch.operator.pk:07d}",
        credentials=CREDENTIALS,
    )


def _applied(
    branch: Branch, account: GatewayAccount, emulator: BkashEmulator, amount: str = "600.00"
) -> PaymentAttempt:
    attempt = checkout_start(
        subscriber=branch.subscribers[0],
        account=account,
        amount=M(amount),
        source=PaymentAttempt.Source.PORTAL,
        return_url="http://127.0.0.1:9/pay/{reference}/return/",
        notify_url="http://127.0.0.1:9/hooks/gateways/bkash/",
    )
    emulator.pay(attempt.gateway_payment_id)
    params = {"paymentID": attempt.gateway_payment_id, "status": "success"}
    assert attempt_confirm(attempt_id=attempt.pk, params=params, via="return").state == AttemptState.APPLIED
    return attempt


def _body(response: Any) -> str:
    return response.content.decode()


def test_the_refund_form_offers_what_is_left_confirms_then_refunds(tree: Tree, bkash: BkashEmulator) -> None:
    account = _account(tree.root, bkash, "Root bKash")
    attempt = _applied(tree.root, account, bkash)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:online_payment", args=[attempt.pk])
    page = _body(client.get(url))
    assert 'id="refund-form"' in page and 'value="600.00"' in page and 'id="refund-left"' in page

    preview = client.post(url, {"action": "refund", "step": "preview", "amount": "250.00", "reason": "Overpaid"})
    assert preview.status_code == 200
    shown = _body(preview)
    assert 'id="refund-confirm"' in shown and "৳250.00" in shown
    assert tree.root.subscribers[0].customer_id in shown and "Overpaid" in shown
    assert not GatewayRefund.objects.exists()  # nothing is asked before the confirmation

    done = client.post(url, {"action": "refund", "step": "confirm", "amount": "250.00", "reason": "Overpaid"})
    assert done.status_code == 302 and done["Location"] == url
    refund = GatewayRefund.objects.get(attempt=attempt)
    assert (refund.state, refund.amount, refund.requested_by) == (
        RefundState.DONE,
        M("250.00"),
        tree.root.staff["owner"],
    )
    assert refund.entry_id is not None
    after = _body(client.get(url))
    assert f'data-refund="{refund.pk}" data-state="done"' in after
    assert "৳350.00" in after and 'value="350.00"' in after


def test_a_refund_over_what_is_left_or_without_a_reason_is_a_form_error(tree: Tree, bkash: BkashEmulator) -> None:
    account = _account(tree.root, bkash, "Root bKash")
    attempt = _applied(tree.root, account, bkash)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:online_payment", args=[attempt.pk])
    over = client.post(url, {"action": "refund", "step": "confirm", "amount": "600.01", "reason": "Too much"})
    assert over.status_code == 400 and "Only ৳600.00 is left to refund" in _body(over)
    silent = client.post(url, {"action": "refund", "step": "preview", "amount": "10.00", "reason": "   "})
    assert silent.status_code == 400
    assert not GatewayRefund.objects.exists()


def test_refunding_takes_the_permission_that_reverses_entries(tree: Tree, bkash: BkashEmulator) -> None:
    account = _account(tree.north, bkash, "North bKash")
    attempt = _applied(tree.north, account, bkash)
    url = reverse("console:online_payment", args=[attempt.pk])
    # North's reseller staff take payments and see the desk, but reverse no entry.
    staff = tree.login(tree.north.staff["reseller_staff"])
    assert 'id="refund-form"' not in _body(staff.get(url))
    refused = staff.post(url, {"action": "refund", "step": "confirm", "amount": "1.00", "reason": "x"})
    assert refused.status_code == 403
    clerk = tree.login(tree.north.staff["billing_clerk"])
    assert 'id="refund-form"' in _body(clerk.get(url))
    assert not GatewayRefund.objects.exists()


def _check(account: GatewayAccount, marker: str, *, missing: int = 1) -> SettlementCheck:
    day = operator_today(account.operator) - dt.timedelta(days=1)
    comparison = Comparison(
        gateway_count=missing,
        paid_not_applied=[
            {
                "transaction_id": f"{marker}TRX{index}",
                "reference": "",
                "amount": "100.00",
                "currency": "BDT",
                "paid_at": "",
                "payer": "",
                "attempt": None,
                "attempt_state": "",
            }
            for index in range(missing)
        ],
    )
    return settlement_record(account=account, day=day, ran_at=dt.datetime.now(dt.UTC), comparison=comparison)


def test_a_resellers_settlement_page_and_refunds_stay_in_its_subtree(tree: Tree, bkash: BkashEmulator) -> None:
    root_account = _account(tree.root, bkash, "ROOT-ACCOUNT")
    north_account = _account(tree.north, bkash, "NORTH-ACCOUNT")
    south_account = _account(tree.south, bkash, "SOUTH-ACCOUNT")
    for account, marker in ((root_account, "ROOT"), (north_account, "NORTH"), (south_account, "SOUTH")):
        _check(account, marker)
    root_attempt = _applied(tree.root, root_account, bkash)

    clerk = tree.login(tree.north.staff["billing_clerk"])
    page = clerk.get(reverse("console:online_settlement"))
    assert page.status_code == 200
    body = _body(page)
    assert "NORTH-ACCOUNT" in body and "NORTHTRX0" in body
    assert all(name not in body for name in ("ROOT-ACCOUNT", "ROOTTRX0", "SOUTH-ACCOUNT", "SOUTHTRX0"))
    choices = [choice.pk for choice in page.context["form"].fields["gateway_account"].queryset]
    assert choices == [north_account.pk]

    yesterday = operator_today(tree.north.operator) - dt.timedelta(days=1)
    foreign = clerk.post(
        reverse("console:online_settlement"), {"gateway_account": str(root_account.pk), "day": yesterday.isoformat()}
    )
    assert foreign.status_code == 400
    assert SettlementCheck.objects.filter(account=root_account).count() == 1
    own = clerk.post(
        reverse("console:online_settlement"), {"gateway_account": str(north_account.pk), "day": yesterday.isoformat()}
    )
    assert own.status_code == 302
    latest = SettlementCheck.objects.filter(account=north_account).first()
    assert latest is not None and latest.error == "" and latest.paid_not_applied == []
    tomorrow = clerk.post(
        reverse("console:online_settlement"),
        {"gateway_account": str(north_account.pk), "day": (yesterday + dt.timedelta(days=2)).isoformat()},
    )
    assert tomorrow.status_code == 400

    # Another operator's payment, read or refunded, is not found.
    url = reverse("console:online_payment", args=[root_attempt.pk])
    assert clerk.get(url).status_code == 404
    assert clerk.post(url, {"action": "refund", "step": "confirm", "amount": "1.00", "reason": "x"}).status_code == 404
    assert not GatewayRefund.objects.exists()

    # The root's owner sees every account of the tree.
    everything = _body(tree.login(tree.root.staff["owner"]).get(reverse("console:online_settlement")))
    assert all(name in everything for name in ("ROOT-ACCOUNT", "NORTH-ACCOUNT", "SOUTH-ACCOUNT"))


def test_the_dashboard_counts_what_the_latest_check_found_paid_and_not_applied(
    tree: Tree, bkash: BkashEmulator
) -> None:
    account = _account(tree.south, bkash, "South bKash")
    _check(account, "OLD", missing=3)
    _check(account, "NEW", missing=2)  # the latest check of the account is the one that counts

    def card(user: Any) -> str:
        cards = tree.login(user).get(reverse("console:dashboard")).context["cards"]
        (found,) = [each.value for each in cards if each.key == "gateway_unapplied"]
        return str(found)

    assert card(tree.root.staff["owner"]) == "2"
    assert card(tree.north.staff["reseller_staff"]) == "0"
