import datetime as dt
from decimal import Decimal

import pytest

from sonjog.conftest import make_package
from sonjog.core.scoping import OutOfScope
from sonjog.customers.exceptions import InvalidPhone, SubscriberError
from sonjog.customers.phone import normalize_phone
from sonjog.customers.selectors import subscriber_for, subscribers_visible_to
from sonjog.flows.subscribers import subscriber_create
from sonjog.operators.services import operator_create


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("01712345678", "+8801712345678"),
        ("+8801912345678", "+8801912345678"),
        ("8801312345678", "+8801312345678"),
        ("017-1234 5678", "+8801712345678"),
    ],
)
def test_bangladesh_mobile_numbers_are_normalized(raw, normalized):
    assert normalize_phone(raw) == normalized


@pytest.mark.parametrize("raw", ["01212345678", "0171234567", "017123456789", "phone", "", "+4420079460000"])
def test_other_numbers_are_refused_with_an_example(raw):
    with pytest.raises(InvalidPhone, match="01712345678"):
        normalize_phone(raw)


def test_other_countries_take_international_numbers():
    assert normalize_phone("+44 20 7946 0000", "GB") == "+442079460000"


@pytest.mark.django_db
def test_customer_ids_follow_the_operator_format_and_sequence():
    operator = operator_create(
        code="fmt",
        name="Fmt",
        customer_id_prefix="DH",
        customer_id_infix="-",
        customer_id_postfix="X",
        customer_id_digits=4,
        vat_rate=Decimal(0),
    )
    package = make_package(operator)
    first = subscriber_create(operator=operator, name="A", phone="01711111111", package=package, activate=False)
    second = subscriber_create(operator=operator, name="B", phone="01711111112", package=package, activate=False)
    assert (first.customer_id, second.customer_id) == ("DH-0001X", "DH-0002X")
    assert first.pppoe_username == "dh-0001x"
    with pytest.raises(SubscriberError, match="already in use"):
        subscriber_create(
            operator=operator, name="C", phone="01711111113", package=package, pppoe_username="dh-0001x", activate=False
        )


@pytest.mark.django_db
def test_a_reseller_sees_its_subtree_and_nothing_else():
    isp = operator_create(code="root-isp", name="Root", vat_rate=Decimal(0))
    north = operator_create(code="north", name="North", parent=isp)
    north_sub = operator_create(code="north-sub", name="North sub", parent=north)
    south = operator_create(code="south", name="South", parent=isp)
    people = {
        op.code: subscriber_create(
            operator=op, name=op.code, phone="01711111111", package=make_package(op), activate=False
        )
        for op in (isp, north, north_sub, south)
    }
    assert {s.operator.code for s in subscribers_visible_to(north)} == {"north", "north-sub"}
    assert {s.operator.code for s in subscribers_visible_to(isp)} == {"root-isp", "north", "north-sub", "south"}
    assert subscriber_for(north, customer_id=people["north-sub"].customer_id) == people["north-sub"]
    for hidden in ("south", "root-isp"):
        with pytest.raises(OutOfScope):
            subscriber_for(north, customer_id=people[hidden].customer_id)
        with pytest.raises(OutOfScope):
            subscriber_for(north, pk=people[hidden].pk)


@pytest.mark.django_db
def test_package_and_zone_must_belong_to_the_operator():
    mine = operator_create(code="mine", name="Mine", vat_rate=Decimal(0))
    theirs = operator_create(code="theirs", name="Theirs", vat_rate=Decimal(0))
    with pytest.raises(SubscriberError, match="another operator"):
        subscriber_create(operator=mine, name="X", phone="01711111111", package=make_package(theirs))


@pytest.mark.django_db(transaction=True)
def test_jobs_are_deferred_inside_the_callers_transaction():
    """A rolled-back intent change leaves no router job behind; a committed one has exactly one."""
    from django.db import transaction
    from procrastinate.contrib.django.models import ProcrastinateJob

    from sonjog.conftest import make_operator
    from sonjog.customers.models import Zone
    from sonjog.network.services import router_create

    operator = make_operator(vat_rate=Decimal(0))
    zone = Zone.objects.create(operator=operator, name="Z")
    router = router_create(operator=operator, name="r1", address="127.0.0.1", api_port=1, password="x")
    router.zones.add(zone)
    before = ProcrastinateJob.objects.filter(task_name="network.execute_command").count()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        subscriber_create(
            operator=operator,
            name="Gone",
            phone="01711111111",
            package=make_package(operator),
            zone=zone,
            activation_date=dt.date.today(),
        )
        raise Abort
    assert ProcrastinateJob.objects.filter(task_name="network.execute_command").count() == before
    subscriber_create(
        operator=operator,
        name="Kept",
        phone="01711111112",
        package=make_package(operator),
        zone=zone,
        activation_date=dt.date.today(),
    )
    assert ProcrastinateJob.objects.filter(task_name="network.execute_command").count() == before + 1
    ProcrastinateJob.objects.filter(task_name="network.execute_command").delete()
