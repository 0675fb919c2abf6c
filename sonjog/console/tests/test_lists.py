"""The payments and overdue lists as clerks use them every day: filters, page size and jumping to a
page, the total of what is listed, and exporting exactly what the list shows.

The tree's clock is pinned at 18 November 2026, 10:00 in Dhaka. Each branch's first subscriber owes
October's bill (late since 19 October: 30 days) and November's (late since 11 November: 7 days);
its second subscriber joined on 13 November and owes nothing overdue."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from sonjog.billing.filters import overdue_longer_than
from sonjog.billing.models import LedgerEntry
from sonjog.billing.services import entry_reverse
from sonjog.conftest import DHAKA, make_subscriber
from sonjog.console.tests.conftest import Tree, add_staff

pytestmark = pytest.mark.django_db


def _csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def _payments(tree: Tree):
    from sonjog.flows.payments import payment_receive

    collector = add_staff(tree.root, "collector")
    first, second = tree.root.subscribers
    made = [
        payment_receive(
            subscriber=first,
            amount=Decimal("300.00"),
            method="cash",
            collector=collector,
            received_at=dt.datetime(2026, 11, 2, 11, 0, tzinfo=DHAKA),
        ),
        payment_receive(
            subscriber=second,
            amount=Decimal("200.00"),
            method="bkash",
            reference="=HYPERLINK(1)",
            received_at=dt.datetime(2026, 11, 10, 9, 0, tzinfo=DHAKA),
        ),
        payment_receive(
            subscriber=first,
            amount=Decimal("50.00"),
            method="cash",
            collector=collector,
            received_at=dt.datetime(2026, 11, 15, 18, 0, tzinfo=DHAKA),
        ),
        # 23:30 on 31 October in Dhaka: October's, never November's.
        payment_receive(
            subscriber=second,
            amount=Decimal("70.00"),
            method="cash",
            received_at=dt.datetime(2026, 10, 31, 23, 30, tzinfo=DHAKA),
        ),
    ]
    mistaken = payment_receive(
        subscriber=second,
        amount=Decimal("999.00"),
        method="cash",
        collector=collector,
        received_at=dt.datetime(2026, 11, 16, 12, 0, tzinfo=DHAKA),
    )
    entry_reverse(entry=LedgerEntry.objects.get(payment=mistaken, kind="payment"), reason="keyed twice")
    return collector, made


def test_payments_filter_by_method_collector_and_range_with_the_total_of_what_is_listed(tree):
    collector, _made = _payments(tree)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:payments")

    month = client.get(url).context
    # This month: four received, the reversed one listed but not counted.
    assert month["page_obj"].paginator.count == 4
    assert month["collected"] == Decimal("550.00")

    cash = client.get(url, {"method": "cash"}).context
    assert cash["page_obj"].paginator.count == 3 and cash["collected"] == Decimal("350.00")

    by_collector = client.get(url, {"collector": collector.pk}).context
    assert by_collector["collected"] == Decimal("350.00")

    # A range of days replaces the month: 31 October to 10 November, in Dhaka's days.
    ranged = client.get(url, {"received_from": "2026-10-31", "received_to": "2026-11-10"})
    assert ranged.context["month"] is None
    assert ranged.context["page_obj"].paginator.count == 3
    assert ranged.context["collected"] == Decimal("570.00")
    assert "Payments from 31/10/2026 to 10/11/2026" in ranged.content.decode()

    backwards = client.get(url, {"received_from": "2026-11-10", "received_to": "2026-11-01"})
    assert "The last day is before the first." in backwards.content.decode()


def test_payments_page_size_and_jump_to_page(tree):
    _payments(tree)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:payments")
    small = client.get(url, {"per_page": "25"}).context
    assert small["page_obj"].paginator.per_page == 25
    # Sizes not offered fall back to the default rather than listing 10,000 rows.
    assert client.get(url, {"per_page": "10000"}).context["page_obj"].paginator.per_page == 50
    body = client.get(url, {"per_page": "100", "method": "cash"}).content.decode()
    assert 'id="list-controls"' in body and '<option value="100" selected>' in body
    # The page-size form keeps the filters.
    assert '<input type="hidden" name="method" value="cash">' in body
    # Any page number lands on a real page.
    assert client.get(url, {"page": "999"}).context["page_obj"].number == 1


def test_payments_export_is_the_filtered_view_in_csv_and_xlsx(tree):
    _payments(tree)
    client = tree.login(tree.root.staff["owner"])
    rows = _csv(client.get(reverse("console:payments_export", args=["csv"]), {"method": "bkash"}))
    assert rows[0][:4] == ["Received", "Customer ID", "Subscriber", "Amount"]
    assert len(rows) == 2
    received, customer_id, _name, amount, method, reference = rows[1][:6]
    # Dhaka's wall clock, and a reference that would be a formula made harmless.
    assert (received, amount, method, reference) == ("2026-11-10 09:00:00", "200.00", "bKash", "'=HYPERLINK(1)")
    assert customer_id == tree.root.subscribers[1].customer_id

    response = client.get(reverse("console:payments_export", args=["xlsx"]), {"month": "2026-11"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.values)
    assert len(values) == 1 + 4
    assert {row[4] for row in values[1:]} == {"Cash", "bKash"}
    assert any(row[7] == "yes" for row in values[1:])  # the reversed one is marked


def test_a_reseller_exports_only_its_own_payments(tree):
    from sonjog.flows.payments import payment_receive

    payment_receive(subscriber=tree.north.subscribers[0], amount=Decimal("10.00"), method="cash")
    _payments(tree)
    rows = _csv(tree.login(tree.north.staff["billing_clerk"]).get(reverse("console:payments_export", args=["csv"])))
    assert [row[1] for row in rows[1:]] == [tree.north.subscribers[0].customer_id]


def test_overdue_by_age_follows_billings_dues(tree):
    operators = [tree.root.operator.pk]
    today = dt.date(2026, 11, 18)
    late = tree.root.subscribers[0]
    # Overdue by 30 days exactly (October's bill) and 7 days (November's).
    assert overdue_longer_than(operators, today, 0) == [late.pk]
    assert overdue_longer_than(operators, today, 7) == [late.pk]
    assert overdue_longer_than(operators, today, 15) == [late.pk]
    assert overdue_longer_than(operators, today, 29) == [late.pk]
    assert overdue_longer_than(operators, today, 30) == []


def test_overdue_list_filters_by_zone_and_age(tree):
    # Joined on 1 November: November's bill is late since 11 November, 7 days: overdue, not by more.
    recent = make_subscriber(tree.north.operator, tree.north.package, dt.date(2026, 11, 1), zone=tree.north.zone)
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:overdue")
    everyone = client.get(url).context
    assert everyone["total"] == 4
    assert recent.pk in [row.pk for row in everyone["rows"]]

    week = client.get(url, {"age": "7"}).context
    assert week["total"] == 3 and recent.pk not in [row.pk for row in week["rows"]]
    assert client.get(url, {"age": "30"}).context["total"] == 0

    north = client.get(url, {"zone": tree.north.zone.pk}).context
    assert sorted(row.pk for row in north["rows"]) == sorted([tree.north.subscribers[0].pk, recent.pk])
    north_week = client.get(url, {"zone": tree.north.zone.pk, "age": "15"}).context
    assert [row.pk for row in north_week["rows"]] == [tree.north.subscribers[0].pk]

    body = client.get(url, {"zone": tree.north.zone.pk, "age": "15"}).content.decode()
    assert f"export.csv?zone={tree.north.zone.pk}&amp;age=15" in body


def test_overdue_filters_refuse_what_they_do_not_offer(tree):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:overdue")
    # Another subtree's zone is not a choice: an error, and nobody listed rather than everybody.
    foreign = clerk.get(url, {"zone": tree.south.zone.pk})
    assert foreign.status_code == 200 and foreign.context["total"] == 0
    assert 'id="filter-errors"' in foreign.content.decode()
    odd = clerk.get(url, {"age": "9"})
    assert odd.context["total"] == 0 and 'id="filter-errors"' in odd.content.decode()
    # The clerk's own list is north's only.
    assert [row.pk for row in clerk.get(url).context["rows"]] == [tree.north.subscribers[0].pk]


def test_overdue_page_size_and_jump(tree):
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:overdue")
    context = client.get(url, {"per_page": "25", "page": "7"}).context
    assert (context["per_page"], context["number"], context["pages"]) == (25, 1, 1)


def test_overdue_export_is_the_filtered_view(tree):
    client = tree.login(tree.root.staff["owner"])
    rows = _csv(client.get(reverse("console:overdue_export", args=["csv"]), {"zone": tree.south.zone.pk}))
    assert rows[0][:2] == ["Customer ID", "Name"]
    assert [row[0] for row in rows[1:]] == [tree.south.subscribers[0].customer_id]
    assert rows[1][6:8] == ["1741.94", "1741.94"]
    response = client.get(reverse("console:overdue_export", args=["xlsx"]))
    values = list(load_workbook(io.BytesIO(response.content)).active.values)
    assert len(values) == 1 + 3
    assert client.get(reverse("console:overdue_export", args=["pdf"])).status_code == 404


def test_subscriber_export_still_works(tree):
    client = tree.login(tree.root.staff["owner"])
    rows = _csv(client.get(reverse("console:subscribers_export", args=["csv"])))
    assert rows[0][0] == "Customer ID" and len(rows) == 1 + 6
    response = client.get(reverse("console:subscribers_export", args=["xlsx"]))
    assert len(list(load_workbook(io.BytesIO(response.content)).active.values)) == 1 + 6
