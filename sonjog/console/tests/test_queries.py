"""Query budgets: list and dashboard pages issue a fixed number of queries whatever the number of
rows, so an N+1 regression fails here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sonjog.billing.models import Invoice
from sonjog.billing.services import adjustment_add, entry_reverse
from sonjog.billing.terms import operator_today
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_subscriber
from sonjog.customers.models import Zone
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_addon_activate
from sonjog.network.models import OutboxCommand, OutboxStatus
from sonjog.network.services import router_create

pytestmark = pytest.mark.django_db

# (url name, args builder, query budget). Budgets include the session, user, permission and scope
# lookups every console page makes (about six).
PAGES = [
    # + 1 since "collected" is money received in the month (billing.selectors.collected), no longer
    # the statements' allocated sums the subscriber pass already read; + 1 for the add-on revenue card
    # (billing.selectors.addon_revenue_by_period, one query over the period's add-on lines); + 1 for
    # the resellers' floats running low (billing.selectors.floats_low, one query for the subtree); + 1 for
    # "seen by the gateway, not applied" (gateways.selectors.seen_not_applied_count, one count).
    ("dashboard", None, 18),
    ("dashboard_chart", None, 8),
    ("dashboard_live", None, 18),
    ("subscribers", None, 12),
    ("overdue", None, 9),
    ("payments", None, 10),
    ("day_sheet", None, 10),
    # + 1 for the period summary's add-on revenue column (one query for all its periods).
    ("billing", None, 10),
    ("runs", None, 9),
    ("corrections", None, 9),
    ("packages", None, 8),
    ("addons", None, 8),
    ("zones", None, 8),
    ("routers", None, 12),
    ("outbox", None, 9),
    ("mismatches", None, 9),
    ("collect", None, 8),
    # The online payments desk: its page of attempts, their count and the counts per state.
    ("online_payments", None, 9),
    ("gateway_accounts", None, 7),
    # The profile: +2 for its billing holds and booked changes panel.
    ("subscriber", "subscriber", 22),
]


def _grow(tree, extra: int) -> None:
    """More subscribers, each with a payment, a correction, a sub-zone, a failed router command and an
    add-on (started today, so charged for the rest of the billed period)."""
    branch = tree.north
    router = router_create(operator=branch.operator, name=f"core-{extra}", address="127.0.0.1", api_port=1)
    today = operator_today(branch.operator)
    addon = addon_create(operator=branch.operator, name=f"Static IP {extra}", price=Decimal("300.00"))
    for index in range(extra):
        zone = Zone.objects.create(operator=branch.operator, parent=branch.zone, name=f"Block {extra}-{index}")
        subscriber = make_subscriber(branch.operator, branch.package, today - dt.timedelta(days=45), zone=zone)
        payment = payment_receive(
            subscriber=subscriber,
            amount=Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk").total,
            method="cash",
        )
        entry_reverse(entry=payment.entries.get(), reason="test")
        adjustment_add(subscriber=subscriber, amount=Decimal("-10.00"), reason="manual", memo="goodwill")
        subscriber_addon_activate(subscriber=subscriber, addon=addon, start_date=today)
        OutboxCommand.objects.create(
            subscriber=subscriber,
            router=router,
            status=OutboxStatus.FAILED,
            requested_by="test",
            requested_at=payment.received_at,
            next_attempt_at=payment.received_at,
        )


def _count(client, url, **params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, url
    return len(captured)


def test_pages_keep_a_fixed_query_budget_whatever_the_row_count(tree):
    client = tree.login(tree.root.staff["owner"])
    urls = {
        name: reverse(f"console:{name}", args=[tree.north.subscribers[0].pk] if args else [])
        for name, args, _budget in PAGES
    }
    _grow(tree, 2)
    for url in urls.values():
        client.get(url)  # first use: content types, permission caches
    few = {name: _count(client, url) for name, url in urls.items()}
    _grow(tree, 5)
    many = {name: _count(client, url) for name, url in urls.items()}
    over_budget = {name: few[name] for name, _args, budget in PAGES if few[name] > budget}
    assert not over_budget, f"over the query budget: {over_budget}"
    growing = {name: (few[name], many[name]) for name in urls if many[name] != few[name]}
    assert not growing, f"query count grows with rows (N+1): {growing}"


def test_search_and_sorted_list_query_count(tree, django_assert_max_num_queries):
    _grow(tree, 4)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:subscribers")
    for params in ({"q": "Test"}, {"sort": "-due"}, {"due_min": "1", "zone": tree.north.zone.pk}):
        client.get(url, params)
        with django_assert_max_num_queries(12):
            client.get(url, params, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="subscriber-results")


def test_dashboard_query_budget(tree, django_assert_max_num_queries):
    _grow(tree, 3)
    client = tree.login(tree.root.staff["owner"])
    for name in ("dashboard", "dashboard_live"):
        client.get(reverse(f"console:{name}"))
        # 17 + 1 for "seen by the gateway, not applied" (one count of the subtree's attempts).
        with django_assert_max_num_queries(18):
            assert client.get(reverse(f"console:{name}")).status_code == 200
