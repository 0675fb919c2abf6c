"""Billing's list filters: payments by the operator's business dates (across the Dhaka midnight while
the server runs in UTC), method and collector; bills by period and state; the subscriber list's due
filters. Another subtree's rows are never offered, never accepted and never listed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.http import QueryDict

from sonjog.billing.filters import BillFilterSet, PaymentFilterSet, SubscriberDueFilterSet, collectors_among
from sonjog.billing.models import Bill, Payment
from sonjog.billing.selectors import subscriber_balance, with_reversed
from sonjog.billing.services import payment_record
from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.scoping import scoped
from sonjog.customers.models import Subscriber
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create, staff_create

pytestmark = pytest.mark.django_db

DHAKA = ZoneInfo("Asia/Dhaka")


@pytest.fixture
def world(settings):
    settings.TIME_ZONE = "UTC"  # the server's clock in UTC, the operators in Dhaka
    isp = make_operator(vat_rate=Decimal("0"))
    reseller = operator_create(code=f"r{isp.pk}", name="Reseller", parent=isp)
    stranger = make_operator(vat_rate=Decimal("0"))
    today = operator_today(isp)
    joined = today - dt.timedelta(days=60)
    package, resold, foreign = (make_package(op, "1000.00", vat=False) for op in (isp, reseller, stranger))
    owing = make_subscriber(isp, package, joined)
    settled = make_subscriber(reseller, resold, joined)
    outsider = make_subscriber(stranger, foreign, joined)
    cashier = staff_create(operator=isp, username=f"cash{isp.pk}", password="x-long-pass-1", role="collector").user
    alien = staff_create(operator=stranger, username=f"alien{isp.pk}", password="x-long-pass-1", role="collector").user
    return {
        "isp": isp,
        "reseller": reseller,
        "stranger": stranger,
        "today": today,
        "package": package,
        "foreign": foreign,
        "owing": owing,
        "settled": settled,
        "outsider": outsider,
        "cashier": cashier,
        "alien": alien,
    }


def _ids(operator: Operator) -> list[int]:
    return list(Operator.objects.filter(path__startswith=operator.path).values_list("pk", flat=True))


def _payments(world, params=None, **options) -> PaymentFilterSet:
    isp = world["isp"]
    return PaymentFilterSet(
        QueryDict(params) if params is not None else None,
        with_reversed(scoped(Payment.objects.all(), isp)),
        operator_ids=_ids(isp),
        time_zone=isp.time_zone,
        **options,
    )


def _pay(subscriber, amount: str, at: dt.datetime, **fields) -> Payment:
    return payment_record(subscriber=subscriber, amount=Decimal(amount), method="cash", received_at=at, **fields)


def test_payments_fall_on_the_operators_business_day_not_the_servers(world):
    today = world["today"]
    month = today.replace(day=1)
    # 23:30 on the last day of the previous month and 00:30 on the 1st, in Dhaka: both the same UTC day.
    last_night = dt.datetime.combine(month - dt.timedelta(days=1), dt.time(23, 30), tzinfo=DHAKA)
    first_morning = dt.datetime.combine(month, dt.time(0, 30), tzinfo=DHAKA)
    assert last_night.astimezone(dt.UTC).date() == first_morning.astimezone(dt.UTC).date()
    before = _pay(world["owing"], "100.00", last_night)
    after = _pay(world["owing"], "200.00", first_morning, collector=world["cashier"])
    _pay(world["outsider"], "300.00", first_morning)  # another operator's: never listed
    assert set(_payments(world, f"month={month:%Y-%m}").qs) == {after}
    previous = (month - dt.timedelta(days=1)).replace(day=1)
    assert set(_payments(world, f"month={previous:%Y-%m}").qs) == {before}
    assert set(_payments(world, f"day={month - dt.timedelta(days=1):%Y-%m-%d}").qs) == {before}
    assert set(_payments(world, f"received_from={month:%Y-%m-%d}&received_to={month:%Y-%m-%d}").qs) == {after}
    assert set(_payments(world, f"received_to={month - dt.timedelta(days=1):%Y-%m-%d}").qs) == {before}
    assert set(_payments(world, f"collector={world['cashier'].pk}").qs) == {after}
    assert set(_payments(world, "method=cash").qs) == {before, after}
    assert set(_payments(world, "method=bkash").qs) == set()


def test_another_subtrees_collector_is_an_error_and_narrows_nothing(world):
    _pay(world["owing"], "100.00", dt.datetime.now(DHAKA) - dt.timedelta(hours=1))
    filters = _payments(world, f"collector={world['alien'].pk}")
    assert "collector" in filters.form.errors
    assert filters.value("collector") is None
    assert list(filters.qs) == list(_payments(world).qs)
    assert world["alien"] not in filters.form.fields["collector"].queryset
    assert set(collectors_among(_ids(world["isp"]))) == {world["cashier"]}


def test_defaults_stand_in_for_missing_or_unusable_input(world):
    today = world["today"]
    this_month = today.replace(day=1)
    for params in (None, "", "month=2026-13", "month=1800-01", "month=%00"):
        filters = _payments(world, params, defaults={"month": this_month})
        assert filters.value("month") == this_month, params
    chosen = _payments(world, "month=2026-01", defaults={"month": this_month})
    assert chosen.value("month") == dt.date(2026, 1, 1)
    backwards = _payments(world, "received_from=2026-03-02&received_to=2026-03-01")
    assert "received_to" in backwards.form.errors


def _subscribers(world, params=None) -> SubscriberDueFilterSet:
    isp = world["isp"]
    return SubscriberDueFilterSet(
        QueryDict(params) if params is not None else None,
        scoped(Subscriber.objects.all(), isp),
        operator_ids=_ids(isp),
        today=world["today"],
    )


def test_the_due_filters_read_what_each_subscriber_owes_now(world):
    settled = world["settled"]
    _pay(settled, str(subscriber_balance(settled.pk)), dt.datetime.now(DHAKA) - dt.timedelta(minutes=5))
    owing = world["owing"]
    assert {row.pk for row in _subscribers(world, "owes=on").qs} == {owing.pk}
    assert {row.pk for row in _subscribers(world, "due_max=0").qs} == {settled.pk}
    due = next(row.due for row in _subscribers(world).qs if row.pk == owing.pk)
    assert due > 0
    assert {row.pk for row in _subscribers(world, f"due_min={due}&due_max={due}").qs} == {owing.pk}
    assert [row.pk for row in _subscribers(world, "sort=-due").qs] == [owing.pk, settled.pk]
    backwards = _subscribers(world, "due_min=10&due_max=1")
    assert "due_max" in backwards.form.errors and list(backwards.qs) == []
    assert list(_subscribers(world, "due_min=1e400").qs) == []


def _bills(world, params=None, operator=None) -> BillFilterSet:
    operator = operator or world["isp"]
    return BillFilterSet(
        QueryDict(params) if params is not None else None,
        scoped(Bill.objects.all(), operator),
        operator_ids=_ids(operator),
    )


def test_bills_by_period_state_and_package(world):
    bills = list(_bills(world).qs)
    assert bills and {bill.subscriber_id for bill in bills} == {world["owing"].pk, world["settled"].pk}
    first = min(bill.period_month for bill in bills)
    assert {bill.period_month for bill in _bills(world, f"period={first:%Y-%m}").qs} == {first}
    assert {bill.period_month for bill in _bills(world, f"period_to={first:%Y-%m}").qs} == {first}
    later = f"{first + dt.timedelta(days=32):%Y-%m}"
    assert all(bill.period_month > first for bill in _bills(world, f"period_from={later}").qs)
    settled_bill = next(bill for bill in bills if bill.subscriber_id == world["settled"].pk)
    _pay(world["settled"], str(settled_bill.total), dt.datetime.now(DHAKA) - dt.timedelta(minutes=5))
    assert settled_bill in set(_bills(world, "state=paid").qs)
    assert settled_bill not in set(_bills(world, "state=open").qs)
    assert {bill.subscriber_id for bill in _bills(world, f"package={world['package'].pk}").qs} == {world["owing"].pk}
    foreign = _bills(world, f"package={world['foreign'].pk}")
    assert "package" in foreign.form.errors
    # Bills drop only the unusable filter; the caller's scope still holds.
    assert {bill.subscriber_id for bill in foreign.qs} == {world["owing"].pk, world["settled"].pk}
    reseller = _bills(world, f"package={world['package'].pk}", operator=world["reseller"])
    assert "package" in reseller.form.errors
    assert {bill.subscriber_id for bill in reseller.qs} == {world["settled"].pk}
