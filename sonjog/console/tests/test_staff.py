"""The staff page: the staff of the caller's subtree, created, edited, deactivated and given new
passwords from the console; every change audited; another subtree's logins are 404; nobody hands
out or touches a role with more power than their own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from sonjog.console.tests.conftest import PASSWORD, add_staff
from sonjog.core.models import AuditEvent
from sonjog.operators.models import Staff
from sonjog.operators.services import operator_role_update

pytestmark = pytest.mark.django_db


def _signs_in(username: str, password: str) -> bool:
    return authenticate(RequestFactory().post("/login/"), username=username, password=password) is not None


def _snapshot() -> tuple[object, ...]:
    return (
        User.objects.count(),
        Staff.objects.count(),
        AuditEvent.objects.filter(action__startswith="staff.").count(),
        sorted(User.objects.values_list("username", "password", "is_active")),
        sorted(Staff.objects.values_list("pk", "role", "operator_id", "sees_subtree")),
    )


def _staff(user: User) -> Staff:
    return Staff.objects.select_related("user", "operator").get(user=user)


def _new(client: Client, **fields: str) -> Any:
    data = {"username": "mita", "name": "Mita Rani", "role": "collector", "password_choice": "generate", **fields}
    return client.post(reverse("console:staff_create"), data)


def test_the_list_shows_the_subtree_with_role_sign_in_and_two_factor(tree):
    owner = tree.root.staff["owner"]
    client = tree.login(owner)
    collector = tree.north.staff["collector"]
    collector.last_login = collector.date_joined
    collector.save(update_fields=["last_login"])
    TOTPDevice.objects.create(user=tree.north.staff["support"], name="phone", confirmed=True)
    body = client.get(reverse("console:staff")).content.decode()
    for user in User.objects.filter(staff__isnull=False):
        assert f'data-username="{user.username}"' in body
    rows = {row.staff.user.username: row for row in client.get(reverse("console:staff")).context["page_obj"]}
    assert rows[tree.north.staff["support"].username].two_factor == "on"
    assert rows[tree.north.staff["collector"].username].two_factor == "off"
    assert rows[collector.username].staff.user.last_login is not None
    assert rows[owner.username].manageable is False  # not oneself
    assert rows[tree.north.staff["billing_clerk"].username].manageable is True


def test_a_reseller_owner_sees_only_its_own_staff(tree):
    north_owner = add_staff(tree.north, "owner")
    body = tree.login(north_owner).get(reverse("console:staff")).content.decode()
    for user in (*tree.root.staff.values(), *tree.south.staff.values()):
        assert f'data-username="{user.username}"' not in body
    for user in tree.north.staff.values():
        assert f'data-username="{user.username}"' in body


def test_create_with_a_generated_password_shown_once(tree):
    client = tree.login(tree.root.staff["owner"])
    response = _new(client, operator=str(tree.north.operator.pk), phone="01712 345678", email="mita@example.net")
    assert response.status_code == 200
    password = response.context["password"]
    assert password and password in response.content.decode()
    staff = Staff.objects.select_related("user").get(user__username="mita")
    assert staff.operator == tree.north.operator and staff.role == "collector" and staff.phone == "+8801712345678"
    assert staff.user.get_full_name() == "Mita Rani" and staff.user.email == "mita@example.net"
    assert _signs_in("mita", password)
    event = AuditEvent.objects.get(action="staff.create", detail__after__username="mita")
    assert event.actor == tree.root.staff["owner"] and event.operator == tree.north.operator
    assert event.detail["after"]["username"] == "mita" and password not in json.dumps(event.detail)
    # Nothing keeps it: the list and the login's page do not show it again.
    assert password not in client.get(reverse("console:staff")).content.decode()
    assert password not in client.get(reverse("console:staff_edit", args=[staff.pk])).content.decode()


def test_create_with_a_typed_password_and_bad_input(tree):
    client = tree.login(tree.root.staff["owner"])
    before = _snapshot()
    assert _new(client, password_choice="type", password="").status_code == 400
    assert _new(client, password_choice="type", password="short").status_code == 400
    assert _new(client, password_choice="type", password="password123").status_code == 400
    assert _new(client, username=tree.north.staff["collector"].username.upper()).status_code == 400
    assert _new(client, phone="12345").status_code == 400
    assert _new(client, role="sultan").status_code == 400
    assert _snapshot() == before
    response = _new(client, password_choice="type", password="Meghna-bridge-7")
    assert response.status_code == 200, response.context["form"].errors
    assert "Meghna-bridge-7" not in response.content.decode()
    assert _signs_in("mita", "Meghna-bridge-7")


def test_edit_role_and_details_audited_with_before_and_after(tree):
    client = tree.login(tree.root.staff["owner"])
    member = _staff(tree.north.staff["collector"])
    url = reverse("console:staff_edit", args=[member.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"name": "Karim Mia", "email": "karim@example.net", "phone": "", "role": "support", "sees_subtree": "on"}
    )
    assert response.status_code == 302
    member = _staff(member.user)
    assert member.role == "support" and member.user.get_full_name() == "Karim Mia"
    fresh = User.objects.get(pk=member.user_id)
    assert fresh.has_perm("billing.view_bill") and not fresh.has_perm("billing.add_payment")
    event = AuditEvent.objects.get(action="staff.update")
    assert event.detail["before"]["role"] == "collector" and event.detail["after"]["role"] == "support"
    assert event.detail["after"]["email"] == "karim@example.net"


def test_deactivate_signs_out_and_reactivate(tree):
    owner = tree.login(tree.root.staff["owner"])
    clerk = tree.north.staff["billing_clerk"]
    member = _staff(clerk)
    their_session = Client()
    assert their_session.post(reverse("console:login"), {"username": clerk.username, "password": PASSWORD})[
        "Location"
    ] == reverse("console:billing")
    assert their_session.get(reverse("console:subscribers")).status_code == 200

    response = owner.post(reverse("console:staff_active", args=[member.pk]), {"active": "0"})
    assert response.status_code == 302
    assert not User.objects.get(pk=clerk.pk).is_active
    assert their_session.get(reverse("console:subscribers")).status_code == 302  # signed out
    assert not _signs_in(clerk.username, PASSWORD)
    assert clerk.username in owner.get(reverse("console:staff") + "?status=inactive").content.decode()
    assert AuditEvent.objects.filter(action="staff.deactivate", detail__after={"active": False}).count() == 1

    owner.post(reverse("console:staff_active", args=[member.pk]), {"active": "1"})
    assert _signs_in(clerk.username, PASSWORD)
    assert AuditEvent.objects.filter(action="staff.reactivate").count() == 1
    # GET does nothing.
    assert owner.get(reverse("console:staff_active", args=[member.pk])).status_code == 405


def test_reset_password_shown_once_and_the_old_one_stops_working(tree):
    client = tree.login(tree.root.staff["owner"])
    clerk = tree.south.staff["billing_clerk"]
    url = reverse("console:staff_password", args=[_staff(clerk).pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"password_choice": "generate"})
    assert response.status_code == 200
    password = response.context["password"]
    assert password in response.content.decode()
    assert _signs_in(clerk.username, password) and not _signs_in(clerk.username, PASSWORD)
    event = AuditEvent.objects.get(action="staff.password_reset")
    assert password not in json.dumps(event.detail) and event.actor == tree.root.staff["owner"]
    assert client.post(url, {"password_choice": "type", "password": "1234"}).status_code == 400


def test_ids_outside_the_subtree_are_404_on_every_staff_url(tree):
    north_owner = add_staff(tree.north, "owner")
    client = tree.login(north_owner)
    before = _snapshot()
    for victim in (tree.root.staff["owner"], tree.root.staff["billing_clerk"], tree.south.staff["billing_clerk"]):
        pk = _staff(victim).pk
        assert client.get(reverse("console:staff_edit", args=[pk])).status_code == 404
        assert client.post(reverse("console:staff_edit", args=[pk]), {"name": "x", "role": "owner"}).status_code == 404
        assert client.post(reverse("console:staff_active", args=[pk]), {"active": "0"}).status_code == 404
        assert client.get(reverse("console:staff_password", args=[pk])).status_code == 404
        assert (
            client.post(reverse("console:staff_password", args=[pk]), {"password_choice": "generate"}).status_code
            == 404
        )
    for missing in ("999999", "0"):
        assert client.get(f"/staff/{missing}/edit/").status_code == 404
    # Nor can it make staff for the root ISP or another reseller (the choice is not offered).
    for operator in (tree.root.operator, tree.south.operator):
        response = _new(client, operator=str(operator.pk), role="owner")
        assert response.status_code == 400 and "operator" in response.context["form"].errors
    assert _snapshot() == before
    # Its own reseller's staff it does manage.
    assert client.get(reverse("console:staff_edit", args=[_staff(tree.north.staff["collector"]).pk])).status_code == 200


def test_a_manager_cannot_make_or_touch_an_owner(tree):
    manager = add_staff(tree.root, "manager")
    client = tree.login(manager)
    before = _snapshot()
    response = _new(client, role="owner")
    assert response.status_code == 400 and "role" in response.context["form"].errors
    owner = _staff(tree.root.staff["owner"])
    assert client.get(reverse("console:staff_edit", args=[owner.pk])).status_code == 403
    assert client.post(reverse("console:staff_active", args=[owner.pk]), {"active": "0"}).status_code == 403
    assert (
        client.post(reverse("console:staff_password", args=[owner.pk]), {"password_choice": "generate"}).status_code
        == 403
    )
    # Nor turn a clerk into an owner.
    clerk = _staff(tree.root.staff["billing_clerk"])
    response = client.post(reverse("console:staff_edit", args=[clerk.pk]), {"name": "x", "role": "owner"})
    assert response.status_code == 400
    assert _snapshot() == before
    # A manager may make another manager or a clerk.
    response = _new(client, role="manager")
    assert response.status_code == 200, response.context["form"].errors


def test_a_login_cannot_hand_out_more_than_it_has(tree):
    # The root's billing clerks are given the staff page (by the owner), not more.
    operator_role_update(
        operator=tree.root.operator,
        base_role="billing_clerk",
        changes={"operators.manage_staff": True, "operators.view_staff": True},
        actor=tree.root.staff["owner"],
    )
    clerk = tree.root.staff["billing_clerk"]
    client = tree.login(clerk)
    roles = dict(client.get(reverse("console:staff_create")).context["form"].fields["role"].choices)
    # Only the roles that can do no more than a billing clerk can.
    assert set(roles) == {"billing_clerk", "collector", "support", "reseller_staff"}
    manager = _staff(add_staff(tree.root, "manager"))
    before = _snapshot()
    for role in ("manager", "network_engineer", "owner"):
        assert _new(client, role=role).status_code == 400
    assert client.get(reverse("console:staff_edit", args=[manager.pk])).status_code == 403
    assert _snapshot()[:3] == before[:3]
    assert _new(client, role="collector").status_code == 200


def test_nobody_deactivates_or_resets_themselves(tree):
    owner = tree.root.staff["owner"]
    client = tree.login(owner)
    own = _staff(owner)
    assert client.get(reverse("console:staff_edit", args=[own.pk])).status_code == 403
    assert client.post(reverse("console:staff_active", args=[own.pk]), {"active": "0"}).status_code == 403
    assert User.objects.get(pk=owner.pk).is_active


def test_roles_without_the_staff_permission_get_403(tree):
    for role in ("billing_clerk", "collector", "support", "reseller_staff"):
        client = tree.login(tree.north.staff[role])
        assert client.get(reverse("console:staff")).status_code == 403
        assert client.get(reverse("console:staff_create")).status_code == 403
        assert client.post(reverse("console:staff_create"), {"username": "x"}).status_code == 403
        pk = _staff(tree.north.staff["collector"]).pk
        assert client.post(reverse("console:staff_active", args=[pk]), {"active": "0"}).status_code == 403
