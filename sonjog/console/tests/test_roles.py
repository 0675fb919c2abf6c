"""Roles as a permission matrix per operator (ADR 0013): one operator's change to a role reaches that
operator's logins only; nobody gives a role more than they may do themselves; the owner's role is
fixed; a role can go back to the built-in one; a release's new defaults still reach edited roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sonjog.console.selectors.staff import cell_field_name
from sonjog.console.tests.conftest import add_staff
from sonjog.core.models import AuditEvent
from sonjog.operators.models import OperatorRole, RoleOverride
from sonjog.operators.roles import ROLE_PERMISSIONS
from sonjog.operators.services import operator_role_update
from sonjog.operators.staffing import operator_roles_refresh_all

pytestmark = pytest.mark.django_db


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # no cached permissions


def _matrix_post(client, operator, role: str, **cells: bool) -> Any:
    """Post the role's matrix as shown, with the named cells ticked or not."""
    url = reverse("console:role_edit", args=[operator.pk])
    form = client.get(url, {"role": role}).context["form"]
    data = {name: "on" for name, value in form.initial.items() if name.startswith("cell_") and value}
    data.update({"role": role, "name": form.initial.get("name", ""), "landing": form.initial.get("landing", "")})
    for cell, on in cells.items():
        name = cell_field_name(cell.replace("__", "."))
        if on:
            data[name] = "on"
        else:
            data.pop(name, None)
    return client.post(url, data)


def test_removing_act_on_payments_from_one_operators_clerks(tree):
    north_clerk, south_clerk = tree.north.staff["billing_clerk"], tree.south.staff["billing_clerk"]
    client = tree.login(tree.root.staff["owner"])
    response = _matrix_post(client, tree.north.operator, "billing_clerk", payments__act=False)
    assert response.status_code == 302
    north_url = reverse("console:subscriber_payment", args=[tree.north.subscribers[0].pk])
    south_url = reverse("console:subscriber_payment", args=[tree.south.subscribers[0].pk])
    assert tree.login(_fresh(north_clerk)).get(north_url).status_code == 403
    assert tree.login(_fresh(north_clerk)).post(north_url, {"amount": "10", "method": "cash"}).status_code == 403
    assert tree.login(_fresh(south_clerk)).get(south_url).status_code == 200
    # The rest of the clerk's work is untouched.
    assert _fresh(north_clerk).has_perm("billing.view_payment") and _fresh(north_clerk).has_perm("billing.view_bill")
    event = AuditEvent.objects.get(action="role.update")
    assert event.operator == tree.north.operator and event.detail["before"]["permissions"] == ["billing.add_payment"]
    assert RoleOverride.objects.filter(role__operator=tree.north.operator, granted=False).count() == 1
    # Ticking it again puts the role back to the built-in one: no override is left.
    assert _matrix_post(client, tree.north.operator, "billing_clerk", payments__act=True).status_code == 302
    assert tree.login(_fresh(north_clerk)).get(north_url).status_code == 200
    assert not RoleOverride.objects.filter(role__operator=tree.north.operator).exists()


def test_granting_a_cell_and_the_page_shows_it(tree):
    client = tree.login(tree.root.staff["owner"])
    collector = tree.north.staff["collector"]
    assert not _fresh(collector).has_perm("customers.grant_discount")
    assert _matrix_post(client, tree.north.operator, "collector", special__discount=True).status_code == 302
    assert _fresh(collector).has_perm("customers.grant_discount")
    page = client.get(reverse("console:role_edit", args=[tree.north.operator.pk]), {"role": "collector"})
    assert page.context["form"].initial[cell_field_name("special.discount")] is True
    assert 'id="role-matrix"' in page.content.decode()


def test_nobody_gives_a_role_what_they_may_not_do(tree):
    # The root's clerks may manage staff (the owner said so), but they may not void invoices...
    operator_role_update(
        operator=tree.root.operator,
        base_role="billing_clerk",
        changes={"operators.manage_staff": True, "operators.view_staff": True},
        actor=tree.root.staff["owner"],
    )
    clerk = tree.login(tree.root.staff["billing_clerk"])
    collector_role = tree.root.operator
    before = set(RoleOverride.objects.values_list("role_id", "permission_id", "granted"))
    response = _matrix_post(clerk, collector_role, "collector", special__void=True)
    assert response.status_code == 400 and "billing.void_invoice" in response.content.decode()
    assert set(RoleOverride.objects.values_list("role_id", "permission_id", "granted")) == before
    # ... nor edit a role more powerful than theirs.
    assert _matrix_post(clerk, collector_role, "manager", special__void=False).status_code == 403
    # What they hold they may give.
    assert _matrix_post(clerk, collector_role, "collector", corrections__view=True).status_code == 302


def test_the_owner_role_is_fixed_and_other_subtrees_are_404(tree):
    client = tree.login(tree.root.staff["owner"])
    assert _matrix_post(client, tree.root.operator, "owner", payments__act=False).status_code == 403
    assert not RoleOverride.objects.exists()
    north_owner = tree.login(add_staff(tree.north, "owner"))
    for operator in (tree.root.operator, tree.south.operator):
        url = reverse("console:role_edit", args=[operator.pk])
        assert north_owner.get(url).status_code == 404
        assert north_owner.post(url, {"role": "collector"}).status_code == 404
    assert north_owner.get(reverse("console:role_edit", args=[999999])).status_code == 404
    # ?operator= of another subtree falls back to its own.
    response = north_owner.get(reverse("console:roles"), {"operator": tree.root.operator.pk})
    assert response["Location"] == reverse("console:role_edit", args=[tree.north.operator.pk])


def test_roles_without_the_staff_permission_cannot_edit(tree):
    url = reverse("console:role_edit", args=[tree.north.operator.pk])
    for role in ("billing_clerk", "collector", "support"):
        client = tree.login(tree.north.staff[role])
        assert client.get(url).status_code == 403
        assert client.post(url, {"role": "collector", "cell_special_discount": "on"}).status_code == 403
    assert not RoleOverride.objects.exists()


def test_a_partly_held_cell_left_unticked_is_kept_and_reset_goes_back(tree):
    operator = tree.north.operator
    owner = tree.root.staff["owner"]
    # Router commands' "act" and routers' "act" (add and change): give the support role half of one.
    operator_role_update(operator=operator, base_role="support", changes={"network.change_router": True}, actor=owner)
    client = tree.login(owner)
    page = client.get(reverse("console:role_edit", args=[operator.pk]), {"role": "support"})
    assert "partly" in page.content.decode()
    response = _matrix_post(client, operator, "support")
    assert response.status_code == 302
    assert _fresh(tree.north.staff["support"]).has_perm("network.change_router")  # kept
    # Back to the built-in role: overrides, name and landing go.
    OperatorRole.objects.filter(operator=operator, base_role="support").update(name="Help desk", landing="billing")
    response = client.post(reverse("console:role_edit", args=[operator.pk]), {"role": "support", "action": "reset"})
    assert response.status_code == 302
    role = OperatorRole.objects.get(operator=operator, base_role="support")
    assert (role.name, role.landing) == ("", "") and not role.overrides.exists()
    assert not _fresh(tree.north.staff["support"]).has_perm("network.change_router")
    assert AuditEvent.objects.filter(action="role.reset").count() == 1


def test_name_and_landing(tree):
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:role_edit", args=[tree.north.operator.pk])
    form = client.get(url, {"role": "collector"}).context["form"]
    data = {name: "on" for name, value in form.initial.items() if name.startswith("cell_") and value}
    response = client.post(url, {**data, "role": "collector", "name": "Field cashier", "landing": "subscribers"})
    assert response.status_code == 302
    labels = {
        row.staff.user.username: row.role_label for row in client.get(reverse("console:staff")).context["page_obj"]
    }
    assert labels[tree.north.staff["collector"].username] == "Field cashier"
    signed = tree.login(tree.north.staff["collector"])
    assert signed.get("/")["Location"] == reverse("console:subscribers")
    assert client.post(url, {**data, "role": "collector", "landing": "the-moon"}).status_code == 400


def test_a_release_that_adds_a_default_reaches_edited_roles(tree, monkeypatch):
    owner = tree.root.staff["owner"]
    operator_role_update(
        operator=tree.north.operator, base_role="support", changes={"customers.grant_discount": True}, actor=owner
    )
    support = tree.north.staff["support"]
    assert not _fresh(support).has_perm("customers.view_zone")
    monkeypatch.setitem(ROLE_PERMISSIONS, "support", [*ROLE_PERMISSIONS["support"], "customers.view_zone"])
    operator_roles_refresh_all()  # what the migrate after the release does
    fresh = _fresh(support)
    assert fresh.has_perm("customers.view_zone") and fresh.has_perm("customers.grant_discount")
