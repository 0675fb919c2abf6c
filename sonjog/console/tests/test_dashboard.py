"""Dashboard figures agree with the models they summarise, follow the billing mode, and show alerts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from sonjog.billing.models import LedgerEntry
from sonjog.billing.selectors import overdue_ids
from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.console import selectors
from sonjog.console.access import Scope
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.payments import payment_receive
from sonjog.network.models import NetworkAlert
from sonjog.notifications.models import LowBalanceAlert
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db


def test_figures_match_the_rows_behind_them(pinned_day, tree):
    north = tree.north
    today = operator_today(north.operator)
    late = make_subscriber(north.operator, north.package, today - dt.timedelta(days=80), zone=north.zone)
    paid = make_subscriber(north.operator, north.package, today - dt.timedelta(days=80), zone=north.zone)
    payment_receive(subscriber=paid, amount=Decimal("5000.00"), method="cash")
    states = [
        ("active", "disabled", "offline", "in_sync"),
        ("suspended", "enabled", "offline", "in_sync"),
        ("suspended", "disabled", "online", "in_sync"),
        ("active", "enabled", "online", "failed"),
    ]
    for subscriber, (intent, router, session, sync) in zip([*north.subscribers, late, paid], states, strict=True):
        Subscriber.objects.filter(pk=subscriber.pk).update(
            service_intent=intent, router_state=router, session_state=session, sync_state=sync
        )
    scope = Scope(user=tree.root.staff["owner"], operator=tree.root.operator)
    board = selectors.dashboard(scope, today)
    rows = Subscriber.objects.filter(operator__path__startswith=tree.root.operator.path)
    assert board.totals["mismatches"] == rows.filter(selectors.MISMATCH_Q).count() == 3
    assert board.totals["sync_failed"] == 1
    assert board.totals["online"] == 2
    assert board.totals["running"] == rows.filter(service_intent="active").count()
    assert board.totals["suspended"] == 2
    balances = [LedgerEntry.objects.filter(subscriber=s).aggregate(total=Sum("amount"))["total"] or 0 for s in rows]
    assert board.totals["due_total"] == sum(b for b in balances if b > 0)
    assert board.totals["credit_total"] == -sum(b for b in balances if b < 0)
    # "Overdue" is the enforcement sweep's definition, for every intent but terminated (the sweep also
    # leaves VIPs alone; there are none here).
    expected = set()
    for operator in (tree.root.operator, tree.north.operator, tree.south.operator):
        for intent in (ServiceIntent.ACTIVE, ServiceIntent.SUSPENDED, ServiceIntent.DISABLED):
            expected |= set(overdue_ids(operator, today, intent=intent))
    assert not rows.filter(is_vip=True).exists()
    assert board.totals["overdue"] == len(expected) and late.pk in expected


def test_mode_aware_cards_and_the_alert_banner(db):
    operator = make_operator(vat_rate=Decimal("0"), billing_mode="prepaid")
    package = make_package(operator, "800.00", vat=False)
    today = operator_today(operator)
    subscriber = make_subscriber(operator, package, today - dt.timedelta(days=3))
    Subscriber.objects.filter(pk=subscriber.pk).update(expires_on=today + dt.timedelta(days=2))
    NetworkAlert.objects.create(
        operator=operator, kind=NetworkAlert.Kind.ONLINE_DROP, message="Possible network fault on core-9"
    )
    NetworkAlert.objects.create(
        operator=operator, kind=NetworkAlert.Kind.ONLINE_DROP, message="An old one", resolved_at=timezone.now()
    )
    LowBalanceAlert.objects.create(
        operator=operator, balance=Decimal("12.50"), threshold=Decimal("100.00"), created_at=timezone.now()
    )
    owner = staff_create(operator=operator, username="prepaid-owner", password="x-long-pass-1", role="owner").user
    from django.test import Client

    client = Client()
    client.force_login(owner)
    page = client.get(reverse("console:dashboard")).content.decode()
    assert "Possible network fault on core-9" in page and "An old one" not in page
    assert "SMS credit low" in page and "৳12.50 of SMS credit, below the ৳100.00 alert level" in page
    assert "Expired, unpaid" in page and "Renewals billed" in page
    assert 'id="card-expiring"' in page
    cards = {card.key: card for card in client.get(reverse("console:dashboard")).context["cards"]}
    assert cards["expiring"].value == "1"
    assert len(cards) >= 15
    assert all(card.url for card in cards.values())


def _closed_sums_computed(captured) -> bool:
    """Whether a period-sums query reached back into the closed periods (not only the live ones)."""
    return any("FROM billing_statement" in q["sql"] and "sum(billed)" in q["sql"] for q in captured) and any(
        "pg_snapshot_xmin" in q["sql"] for q in captured
    )


@pytest.mark.django_db(transaction=True)
def test_closed_period_sums_are_cached_and_a_correction_in_the_past_shows_at_once(tree):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sonjog.billing.services import adjustment_add
    from sonjog.core.periods import add_months, month_start

    north = tree.north
    today = operator_today(north.operator)
    old = make_subscriber(north.operator, north.package, today - dt.timedelta(days=200), zone=north.zone)
    scope = Scope(user=tree.root.staff["owner"], operator=tree.root.operator)
    five_months_ago = add_months(month_start(today), -5)

    def adjusted(rows):
        return {row.period_month: row.adjusted for row in rows}[five_months_ago]

    with CaptureQueriesContext(connection) as first:
        rows = selectors.period_summary_rows(scope, today)
    assert _closed_sums_computed(first.captured_queries)
    assert adjusted(rows) == 0

    # Money moving in the current period leaves the closed periods' cache alone.
    payment_receive(subscriber=old, amount=Decimal("100.00"), method="cash")
    with CaptureQueriesContext(connection) as second:
        again = selectors.period_summary_rows(scope, today)
    assert not _closed_sums_computed(second.captured_queries)
    assert [r.period_month for r in again] == [r.period_month for r in rows]

    # A credit dated five months back re-projects that period and every later one: seen at once.
    adjustment_add(
        subscriber=old, amount=Decimal("-40.00"), reason="outage", memo="old outage", effective_date=five_months_ago
    )
    with CaptureQueriesContext(connection) as third:
        rows = selectors.period_summary_rows(scope, today)
    assert _closed_sums_computed(third.captured_queries)
    assert adjusted(rows) == Decimal("-40.00")
    fresh = selectors.period_figures(scope.operator_ids, rows[-1].period_month, rows[0].period_month)
    assert {r.period_month: r for r in fresh} == {r.period_month: r for r in rows}


def test_change_records_outlive_every_cached_figure(db):
    import datetime as dt

    from sonjog.console.models import ClosedPeriodChange
    from sonjog.console.services import closed_period_changes_prune

    assert selectors.CLOSED_CACHE_SECONDS < 24 * 3600
    old = ClosedPeriodChange.objects.create(operator_id=1, from_period=dt.date(2025, 1, 1), xid=1)
    ClosedPeriodChange.objects.filter(pk=old.pk).update(recorded_at=timezone.now() - dt.timedelta(days=2))
    ClosedPeriodChange.objects.create(operator_id=1, from_period=dt.date(2025, 1, 1), xid=2)
    assert closed_period_changes_prune() == 1
    assert ClosedPeriodChange.objects.count() == 1
