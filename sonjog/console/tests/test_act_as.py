""" "Act as reseller": the root's staff see the console as a reseller's owner would, for a while, with a
banner; read-only unless the role may act as a reseller; every event names the person and the
reseller; nobody acts as an operator outside their own subtree."""

from __future__ import annotations

import datetime as dt

import time_machine
from django.urls import reverse
from django.utils import timezone

from sonjog.core.models import AuditEvent
from sonjog.customers.models import Subscriber
from sonjog.operators.staffing import operator_role_update

DASHBOARD = reverse("console:dashboard")
SUBSCRIBERS = reverse("console:subscribers")


def act(client, operator):
    return client.post(reverse("console:act_start", args=[operator.pk]))


def test_the_owner_acts_as_a_reseller_and_sees_its_console_only(tree):
    owner = tree.login(tree.root.staff["owner"])
    page = owner.get(reverse("console:operators")).content.decode()
    assert reverse("console:act_start", args=[tree.north.operator.pk]) in page
    response = act(owner, tree.north.operator)
    assert response.status_code == 302 and response["Location"] == DASHBOARD
    listing = owner.get(SUBSCRIBERS).content.decode()
    assert 'id="acting-banner"' in listing and "Acting as North reseller" in listing
    # The reseller's subscribers, not the root's nor the other reseller's.
    for subscriber in tree.north.subscribers:
        assert subscriber.customer_id in listing
    for subscriber in tree.root.subscribers + tree.south.subscribers:
        assert subscriber.customer_id not in listing
    south_profile = owner.get(reverse("console:subscriber", args=[tree.south.subscribers[0].pk]))
    assert south_profile.status_code == 404
    # Back to the owner's own console.
    owner.post(reverse("console:act_stop"))
    listing = owner.get(SUBSCRIBERS).content.decode()
    assert 'id="acting-banner"' not in listing and tree.south.subscribers[0].customer_id in listing


def test_writes_while_acting_record_the_person_and_the_reseller(tree):
    owner_user = tree.root.staff["owner"]
    owner = tree.login(owner_user)
    act(owner, tree.north.operator)
    subscriber = tree.north.subscribers[0]
    response = owner.post(
        reverse("console:subscriber_intent", args=[subscriber.pk]), {"intent": "suspended", "reason": "a complaint"}
    )
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.service_intent == "suspended"
    event = AuditEvent.objects.filter(action="subscriber.intent.suspended").get()
    assert event.actor == owner_user and event.operator == tree.north.operator
    assert event.detail["acting_as"] == tree.north.operator.code
    started = AuditEvent.objects.get(action="console.act_as")
    assert started.actor == owner_user and started.detail["by_operator"] == tree.root.operator.code


def test_without_the_permission_to_act_it_is_read_only(tree):
    clerk_user = tree.root.staff["billing_clerk"]
    clerk = tree.login(clerk_user)
    assert not clerk_user.has_perm("operators.act_as_reseller")
    act(clerk, tree.north.operator)
    page = clerk.get(SUBSCRIBERS).content.decode()
    assert "Viewing as North reseller (read-only)" in page
    subscriber = tree.north.subscribers[0]
    response = clerk.post(
        reverse("console:subscriber_intent", args=[subscriber.pk]), {"intent": "suspended", "reason": "x"}
    )
    assert response.status_code == 403
    subscriber.refresh_from_db()
    assert subscriber.service_intent == "active"
    # Ending it is still allowed.
    assert clerk.post(reverse("console:act_stop")).status_code == 302
    assert "acting-banner" not in clerk.get(SUBSCRIBERS).content.decode()


def test_the_role_matrix_grants_acting(tree):
    clerk_user = tree.root.staff["billing_clerk"]
    operator_role_update(
        operator=tree.root.operator,
        base_role="billing_clerk",
        changes={"operators.act_as_reseller": True},
        actor=tree.root.staff["owner"],
    )
    clerk_user = type(clerk_user).objects.get(pk=clerk_user.pk)
    assert clerk_user.has_perm("operators.act_as_reseller")
    clerk = tree.login(clerk_user)
    act(clerk, tree.north.operator)
    assert "Acting as North reseller" in clerk.get(SUBSCRIBERS).content.decode()


def test_nobody_acts_outside_their_subtree(tree):
    # A reseller's staff cannot act as its sibling, its parent or itself; a made-up id is the same answer.
    north = tree.login(tree.north.staff["reseller_staff"])
    for target in (tree.south.operator, tree.root.operator, tree.north.operator):
        response = act(north, target)
        assert response.status_code == 302 and response["Location"] == reverse("console:operators")
        assert "acting-banner" not in north.get(SUBSCRIBERS).content.decode()
    assert act(north, type(tree.root.operator)(pk=999_999)).status_code == 302
    assert not AuditEvent.objects.filter(action="console.act_as").exists()
    # GET does not start it.
    owner = tree.login(tree.root.staff["owner"])
    assert owner.get(reverse("console:act_start", args=[tree.north.operator.pk])).status_code == 405


def test_it_ends_by_itself_after_half_an_hour(tree):
    owner = tree.login(tree.root.staff["owner"])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        act(owner, tree.north.operator)
        assert "acting-banner" in owner.get(SUBSCRIBERS).content.decode()
        clock.shift(dt.timedelta(minutes=31))
        page = owner.get(SUBSCRIBERS).content.decode()
        assert "acting-banner" not in page
        assert tree.south.subscribers[0].customer_id in page


def test_a_deactivated_reseller_cannot_be_acted_as(tree):
    owner = tree.login(tree.root.staff["owner"])
    act(owner, tree.north.operator)
    type(tree.north.operator).objects.filter(pk=tree.north.operator.pk).update(is_active=False)
    page = owner.get(SUBSCRIBERS).content.decode()
    assert "acting-banner" not in page
    assert Subscriber.objects.filter(operator=tree.south.operator).exists()


def test_the_resellers_dashboard_shows_its_float_and_the_parent_acting_sees_the_same(tree):
    from decimal import Decimal

    from sonjog.billing.services.floats import float_account_open, float_topup

    float_account_open(operator=tree.north.operator, low_balance_alert=Decimal("5000.00"))
    float_topup(operator=tree.north.operator, amount=Decimal("1234.00"), method="cash")
    reseller = tree.login(tree.north.staff["reseller_staff"])
    own = reseller.get(DASHBOARD).content.decode()
    assert 'id="float-panel"' in own and "৳1,234.00" in own and 'data-alert="float_low"' in own
    owner = tree.login(tree.root.staff["owner"])
    assert 'id="float-panel"' not in owner.get(DASHBOARD).content.decode()
    act(owner, tree.north.operator)
    acting = owner.get(DASHBOARD).content.decode()
    panel = own.split('id="float-panel"', 1)[1].split("</section>", 1)[0]
    assert panel == acting.split('id="float-panel"', 1)[1].split("</section>", 1)[0]


def test_the_parent_is_told_when_a_resellers_float_runs_low(tree):
    from decimal import Decimal

    from sonjog.billing.services.floats import float_account_open, float_topup

    float_account_open(operator=tree.north.operator, low_balance_alert=Decimal("500.00"))
    float_topup(operator=tree.north.operator, amount=Decimal("120.00"), method="cash")
    float_account_open(operator=tree.south.operator, low_balance_alert=Decimal("500.00"))
    float_topup(operator=tree.south.operator, amount=Decimal("900.00"), method="cash")
    owner = tree.login(tree.root.staff["owner"])
    page = owner.get(DASHBOARD).content.decode()
    assert page.count('data-alert="reseller_float_low"') == 1
    assert "North reseller's float stands at ৳120.00, below its ৳500.00 alert level." in page
