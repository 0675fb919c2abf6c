"""The profile's plans: pausing billing and ending the hold, billing ahead, booking a change for a
later day and cancelling it; all inside the caller's subtree."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from sonjog.billing.models import Bill, BillingHold
from sonjog.billing.terms import operator_today
from sonjog.console.tests.conftest import Tree
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ScheduledChange

pytestmark = pytest.mark.django_db


def test_pause_billing_then_end_the_hold(tree: Tree):
    subscriber = tree.root.subscribers[0]
    client = tree.login(tree.root.staff["billing_clerk"])
    today = operator_today(tree.root.operator)
    start = add_months(month_start(today), 1)
    url = reverse("console:subscriber_hold", args=[subscriber.pk])
    refused = client.post(url, {"start_date": start.isoformat(), "reason": ""})
    assert refused.status_code == 400 and not BillingHold.objects.exists()
    client.post(url, {"start_date": start.isoformat(), "reason": "abroad for two months"})
    hold = BillingHold.objects.get(subscriber=subscriber)
    profile = client.get(reverse("console:subscriber", args=[subscriber.pk])).content.decode()
    assert "abroad for two months" in profile and "End hold" in profile
    # The next invoice date moves past the hold: none while it has no end.
    assert 'id="next-invoice-date">—' in profile
    ended = add_months(start, 2)
    client.post(reverse("console:subscriber_hold_end", args=[subscriber.pk, hold.pk]), {"end_date": ended.isoformat()})
    hold.refresh_from_db()
    assert hold.end_date == ended
    profile = client.get(reverse("console:subscriber", args=[subscriber.pk])).content.decode()
    assert ended.strftime("%d/%m/%Y") in profile
    # Someone else's hold, or another branch's subscriber: 404.
    other = tree.login(tree.south.staff["billing_clerk"])
    assert other.post(reverse("console:subscriber_hold_end", args=[subscriber.pk, hold.pk]), {}).status_code == 404
    assert other.get(url).status_code == 404


def test_bill_ahead_issues_the_months_chosen(tree: Tree):
    subscriber = tree.root.subscribers[0]
    client = tree.login(tree.root.staff["billing_clerk"])
    today = operator_today(tree.root.operator)
    through = add_months(month_start(today), 3)
    page = client.get(reverse("console:subscriber_bill_ahead", args=[subscriber.pk])).content.decode()
    assert "advance payment" in page and f"{through:%B %Y}" in page
    before = Bill.objects.filter(subscriber=subscriber).count()
    response = client.post(
        reverse("console:subscriber_bill_ahead", args=[subscriber.pk]), {"through": through.isoformat()}, follow=True
    )
    assert "3 bills issued ahead" in response.content.decode()
    assert Bill.objects.filter(subscriber=subscriber).count() == before + 3
    bad = client.post(reverse("console:subscriber_bill_ahead", args=[subscriber.pk]), {"through": "2099-01-01"})
    assert bad.status_code == 400


def test_book_a_package_change_and_cancel_it(tree: Tree):
    from sonjog.conftest import make_package

    subscriber = tree.north.subscribers[0]
    faster = make_package(tree.north.operator, "1500.00", vat=False, name="North 50M")
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:subscriber_schedule", args=[subscriber.pk])
    tomorrow = operator_today(tree.north.operator) + dt.timedelta(days=1)
    missing = client.post(url, {"kind": "package", "effective_date": tomorrow.isoformat()})
    assert missing.status_code == 400 and "Choose the package" in missing.content.decode()
    foreign = client.post(
        url, {"kind": "package", "effective_date": tomorrow.isoformat(), "package": tree.south.package.pk}
    )
    assert foreign.status_code == 400 and not ScheduledChange.objects.exists()
    client.post(url, {"kind": "package", "effective_date": tomorrow.isoformat(), "package": faster.pk})
    change = ScheduledChange.objects.get()
    assert (change.kind, change.package, change.effective_date) == ("package", faster, tomorrow)
    profile = client.get(reverse("console:subscriber", args=[subscriber.pk])).content.decode()
    assert "North 50M" in profile and "Cancel it" in profile
    other = tree.login(tree.south.staff["billing_clerk"])
    assert other.post(reverse("console:subscriber_schedule_cancel", args=[subscriber.pk, change.pk])).status_code == 404
    client.post(reverse("console:subscriber_schedule_cancel", args=[subscriber.pk, change.pk]))
    change.refresh_from_db()
    assert change.status == ScheduledChange.Status.CANCELLED
