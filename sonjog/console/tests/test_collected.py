""" "Collected" is one figure: the dashboard card, the payments list it links to and the day sheets of
the same range add up to the same amount of money received."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from sonjog.billing.models import LedgerEntry
from sonjog.billing.services import entry_reverse
from sonjog.conftest import DHAKA, make_operator, make_package, make_subscriber
from sonjog.console import selectors
from sonjog.console.access import Scope
from sonjog.core.periods import add_months
from sonjog.flows.payments import payment_receive
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=DHAKA)


@time_machine.travel(dt.datetime(2026, 12, 20, 12, 0, tzinfo=DHAKA), tick=False)
def test_card_list_and_day_sheets_add_up_to_the_money_received():
    operator = make_operator(vat_rate=Decimal("0"), billing_cycle="anniversary")
    package = make_package(operator, "700.00", vat=False)
    anniversary = make_subscriber(operator, package, dt.date(2026, 10, 25))
    calendar = make_subscriber(operator, package, dt.date(2026, 9, 1), billing_cycle="calendar")
    december = dt.date(2026, 12, 1)
    received = [
        # Received on 2 December for a period that began in November: December's money.
        (anniversary, "700.00", _at(dt.date(2026, 12, 2), 10)),
        # 00:30 on 1 December in Dhaka is still 30 November in UTC.
        (calendar, "300.00", _at(december, 0, 30)),
        (calendar, "150.00", _at(dt.date(2026, 12, 19), 18)),
        # 23:30 on 30 November in Dhaka: November's, however late.
        (anniversary, "50.00", _at(dt.date(2026, 11, 30), 23, 30)),
    ]
    for subscriber, amount, at in received:
        payment_receive(subscriber=subscriber, amount=Decimal(amount), method="cash", received_at=at)
    mistaken = payment_receive(
        subscriber=calendar, amount=Decimal("999.00"), method="cash", received_at=_at(dt.date(2026, 12, 5), 11)
    )
    entry_reverse(entry=LedgerEntry.objects.get(payment=mistaken, kind="payment"), reason="keyed twice")

    owner = staff_create(operator=operator, username="collected-owner", password="x-long-pass-1", role="owner").user
    scope = Scope(user=owner, operator=operator)
    board = selectors.dashboard(scope, dt.date(2026, 12, 20))
    expected = Decimal("1150.00")
    assert board.current.collected == expected

    sheets = Decimal("0.00")
    day = december
    while day < add_months(december, 1):
        sheets += selectors.day_sheet(scope, day, None)["total"]
        day += dt.timedelta(days=1)
    assert sheets == expected

    from django.test import Client

    client = Client()
    client.force_login(owner)
    cards = {card.key: card for card in client.get(reverse("console:dashboard")).context["cards"]}
    listed = client.get(cards["collected"].url)
    assert listed.status_code == 200
    assert listed.context["collected"] == expected
    rows = [p for p in listed.context["page_obj"] if not p.reversed]
    assert sum((p.amount for p in rows), Decimal("0.00")) == expected
    assert "৳1,150.00" in listed.content.decode()
