"""A payment reconnects and notifies whichever door it comes through: the console's payment form,
`sonjog record_payment`, and the flow itself (what the API, the gateways and the portal will call).
And no door records money around the flow."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from sonjog.billing.models import Payment
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_subscriber
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.enforcement import overdue_sweep
from sonjog.flows.payments import payment_receive
from sonjog.network.models import OutboxCommand, Router
from sonjog.notifications.loopback import LoopbackGateway
from sonjog.notifications.models import Message
from sonjog.notifications.services import provider_account_create, sms_credit_add
from sonjog.operators.models import Operator

pytestmark = pytest.mark.django_db

SONJOG = Path(__file__).resolve().parents[2]


def _suspended_overdue(operator: Operator, package: Package) -> Subscriber:
    provider_account_create(
        operator=operator,
        name="SMS",
        kind="generic_http",
        sender_id="ISP",
        credentials={"api_key": "k"},
        base_url="http://127.0.0.1:9",
        options=LoopbackGateway.account_options(),
        cost_per_segment=Decimal("0.25"),
    )
    sms_credit_add(operator=operator, amount=Decimal("100.00"), note="test credit")
    router = Router.objects.create(operator=operator, name="core", address="127.0.0.1", record_only=True)
    # Activated 45 days ago: last period's bill is past its due days and grace.
    subscriber = make_subscriber(operator, package, operator_today(operator) - dt.timedelta(days=45))
    Subscriber.objects.filter(pk=subscriber.pk).update(router=router)
    assert subscriber.pk in overdue_sweep(operator=operator)["subscriber_ids"]
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.SUSPENDED
    return subscriber


def _by_console(subscriber: Subscriber, user: User) -> None:
    client = Client()
    client.force_login(user)
    amount = subscriber_balance(subscriber.pk)
    response = client.post(
        reverse("console:subscriber_payment", args=[subscriber.pk]), {"amount": str(amount), "method": "cash"}
    )
    assert response.status_code == 302, response.content[:500]


def _by_cli(subscriber: Subscriber, user: User) -> None:
    amount = subscriber_balance(subscriber.pk)
    call_command(
        "record_payment", subscriber=subscriber.customer_id, amount=str(amount), method="bkash", stdout=StringIO()
    )


def _by_flow(subscriber: Subscriber, user: User) -> None:
    payment_receive(subscriber=subscriber, amount=subscriber_balance(subscriber.pk), method="nagad", actor=user)


@pytest.mark.parametrize("door", [_by_console, _by_cli, _by_flow], ids=["console", "cli", "flow"])
def test_a_payment_through_any_door_reconnects_and_notifies(
    door: Callable[[Subscriber, User], None], operator: Operator, package: Package, clerk: User
) -> None:
    subscriber = _suspended_overdue(operator, package)
    commands_before = OutboxCommand.objects.filter(subscriber=subscriber).count()
    door(subscriber, clerk)
    payment = Payment.objects.get(subscriber=subscriber)
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE
    assert OutboxCommand.objects.filter(subscriber=subscriber).count() == commands_before + 1
    assert Message.objects.filter(subscriber=subscriber, dedup_key=f"payment_received:payment:{payment.pk}").exists()
    assert Message.objects.filter(subscriber=subscriber, event="reactivation").exists()


def test_a_payment_that_leaves_something_overdue_does_not_reconnect(
    operator: Operator, package: Package, clerk: User
) -> None:
    subscriber = _suspended_overdue(operator, package)
    payment_receive(subscriber=subscriber, amount=Decimal("1.00"), method="cash", actor=clerk)
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.SUSPENDED
    assert Message.objects.filter(subscriber=subscriber, event="payment_received").exists()


def _calls(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name
    ]


def test_no_entry_point_records_money_around_the_flow() -> None:
    """Interfaces, commands and jobs take money through `payment_receive`; only billing itself, the
    flow and tests call billing's `payment_record`."""
    offenders = []
    for path in SONJOG.rglob("*.py"):
        relative = path.relative_to(SONJOG)
        if relative.parts[0] in {"billing", "flows"} or "tests" in relative.parts or "migrations" in relative.parts:
            continue
        offenders += [f"{relative}:{line}" for line in _calls(path, "payment_record")]
    assert offenders == []
