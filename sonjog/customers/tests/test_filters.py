"""The subscriber list's filters (customers' FilterSet): what each filter picks, and that another
subtree's rows are never offered, never accepted and never listed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.http import QueryDict

from sonjog.billing.terms import operator_today
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.scoping import scoped
from sonjog.customers.filters import SubscriberFilterSet
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create

pytestmark = pytest.mark.django_db


def _subscriber(operator, package, joined, zone, name):
    subscriber = make_subscriber(operator, package, joined, zone=zone)
    Subscriber.objects.filter(pk=subscriber.pk).update(name=name)  # test data: one name per row
    subscriber.refresh_from_db()
    return subscriber


@pytest.fixture
def world():
    isp = make_operator(vat_rate=Decimal("0"))
    reseller = operator_create(code=f"r{isp.pk}", name="Reseller", parent=isp)
    stranger = make_operator(vat_rate=Decimal("0"))
    today = operator_today(isp)
    town = Zone.objects.create(operator=isp, name="Town")
    block = Zone.objects.create(operator=isp, parent=town, name="Block A")
    village = Zone.objects.create(operator=reseller, name="Village")
    elsewhere = Zone.objects.create(operator=stranger, name="Elsewhere")
    cheap, dear = make_package(isp, "500.00", vat=False), make_package(isp, "1500.00", vat=False)
    resold = make_package(reseller, "800.00", vat=False)
    foreign = make_package(stranger, "700.00", vat=False)
    joined = today - dt.timedelta(days=60)
    rows = {
        "in_town": _subscriber(isp, cheap, joined, town, "Rahim Uddin"),
        "in_block": _subscriber(isp, dear, joined, block, "Karim Mia"),
        "in_village": _subscriber(reseller, resold, joined, village, "Salma Begum"),
        "stranger": _subscriber(stranger, foreign, joined, elsewhere, "Rahim Stranger"),
    }
    return {
        "isp": isp,
        "reseller": reseller,
        "stranger": stranger,
        "today": today,
        "town": town,
        "block": block,
        "elsewhere": elsewhere,
        "cheap": cheap,
        "foreign": foreign,
        "rows": rows,
    }


def _filters(world, params=None, operator: Operator | None = None) -> SubscriberFilterSet:
    operator = operator or world["isp"]
    ids = list(Operator.objects.filter(path__startswith=operator.path).values_list("pk", flat=True))
    return SubscriberFilterSet(
        QueryDict(params) if params is not None else None,
        scoped(Subscriber.objects.all(), operator),
        operator_ids=ids,
        today=world["today"],
    )


def _names(filters: SubscriberFilterSet) -> set[str]:
    return {row.name for row in filters.qs}


def test_no_input_lists_the_whole_scope_in_customer_id_order(world):
    filters = _filters(world)
    listed = list(filters.qs)
    assert {row.name for row in listed} == {"Rahim Uddin", "Karim Mia", "Salma Begum"}
    assert [row.customer_id for row in listed] == sorted(row.customer_id for row in listed)
    assert filters.chosen_sort == "customer_id"


def test_a_zone_takes_its_sub_zones_along(world):
    assert _names(_filters(world, f"zone={world['town'].pk}")) == {"Rahim Uddin", "Karim Mia"}
    assert _names(_filters(world, f"zone={world['block'].pk}")) == {"Karim Mia"}


def test_another_subtrees_zone_or_package_is_a_form_error_and_lists_nothing(world):
    for params in (f"zone={world['elsewhere'].pk}", f"package={world['foreign'].pk}", "zone=999999999"):
        filters = _filters(world, params)
        assert params.split("=")[0] in filters.form.errors
        assert list(filters.qs) == []
    # A reseller's login never sees its parent's zone either.
    filters = _filters(world, f"zone={world['town'].pk}", operator=world["reseller"])
    assert "zone" in filters.form.errors and list(filters.qs) == []


def test_choices_are_offered_from_the_subtree_only(world):
    form = _filters(world).form
    assert world["elsewhere"] not in form.fields["zone"].queryset
    assert set(form.fields["zone"].queryset) == {world["town"], world["block"], *Zone.objects.filter(name="Village")}
    assert world["foreign"] not in form.fields["package"].queryset
    assert set(form.fields["operator"].queryset) == {world["isp"], world["reseller"]}
    reseller_form = _filters(world, operator=world["reseller"]).form
    assert set(reseller_form.fields["operator"].queryset) == {world["reseller"]}


def test_search_status_package_and_operator(world):
    assert _names(_filters(world, "q=rahim")) == {"Rahim Uddin"}  # the stranger's Rahim stays out
    phone = world["rows"]["in_block"].phone
    assert _names(_filters(world, f"q=%2B880{phone[1:]}")) == {"Karim Mia"}
    assert _names(_filters(world, f"package={world['cheap'].pk}")) == {"Rahim Uddin"}
    assert _names(_filters(world, f"operator={world['reseller'].pk}")) == {"Salma Begum"}
    Subscriber.objects.filter(pk=world["rows"]["in_town"].pk).update(service_intent=ServiceIntent.SUSPENDED)
    assert _names(_filters(world, "status=suspended")) == {"Rahim Uddin"}


def test_mode_follows_the_operator_unless_the_subscriber_has_its_own(world):
    Subscriber.objects.filter(pk=world["rows"]["in_block"].pk).update(billing_mode="prepaid")
    monthly = _names(_filters(world, f"mode={world['isp'].billing_mode}"))
    assert "Karim Mia" not in monthly and "Rahim Uddin" in monthly
    assert _names(_filters(world, "mode=prepaid")) == {"Karim Mia"}


def test_dashboard_links_network_trouble_joiners_and_expiring(world):
    town = world["rows"]["in_town"]
    Subscriber.objects.filter(pk=town.pk).update(service_intent=ServiceIntent.ACTIVE, router_state="absent")
    Subscriber.objects.filter(pk=world["rows"]["in_block"].pk).update(sync_state="failed")
    assert _names(_filters(world, "network=mismatch")) == {"Rahim Uddin"}
    assert _names(_filters(world, "network=sync_failed")) == {"Karim Mia"}
    assert _names(_filters(world, "joined=month")) == set()
    Subscriber.objects.filter(pk=town.pk).update(activation_date=world["today"])
    assert _names(_filters(world, "joined=month")) == {"Rahim Uddin"}
    Subscriber.objects.filter(pk=town.pk).update(expires_on=world["today"] + dt.timedelta(days=6))
    Subscriber.objects.filter(pk=world["rows"]["in_block"].pk).update(expires_on=world["today"] + dt.timedelta(days=7))
    assert _names(_filters(world, "expiring=on")) == {"Rahim Uddin"}


def test_unknown_sort_falls_back_and_bad_input_is_an_error(world):
    filters = _filters(world, "sort=bogus")
    assert filters.form.is_valid() and filters.chosen_sort == "bogus"
    assert len(list(filters.qs)) == 3
    named = [row.name for row in _filters(world, "sort=-name").qs]
    assert named == sorted(named, reverse=True)
    for params in ("sort=" + "x" * 31, "q=Ra%00him", "status=nonsense", "online=maybe"):
        filters = _filters(world, params)
        assert filters.form.errors and list(filters.qs) == [], params
        assert filters.chosen_sort == "customer_id"


def test_a_filter_set_needs_the_callers_scoped_queryset(world):
    with pytest.raises(TypeError):
        SubscriberFilterSet(None, operator_ids=[world["isp"].pk], today=world["today"])
