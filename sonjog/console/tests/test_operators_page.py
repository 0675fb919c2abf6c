"""The Operators page: the caller's subtree in tree order; creating, editing and deactivating
resellers, every change audited with before and after; module access hiding a section from that
operator's staff; billing settings from the next period; and the tenant walls (a reseller owner gets
404 for its parent's and its siblings' ids)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sonjog.billing.models import BillingRun
from sonjog.console.tests.conftest import PASSWORD, Tree, add_staff, operator_form_data
from sonjog.core.models import AuditEvent
from sonjog.flows.generation import bills_generate
from sonjog.operators.models import ConsoleModule, Operator, OperatorSettingsChange, SettingsChangeStatus, Staff

pytestmark = pytest.mark.django_db


def _settings_of(operator: Operator, **changes: Any) -> dict[str, Any]:
    """The edit form as the browser posts it, from the operator's settings."""
    data: dict[str, Any] = operator_form_data(operator)
    data["modules"] = list(operator.modules)
    data.update(changes)
    return data


def _new_reseller(parent: Operator, code: str, **changes: Any) -> dict[str, Any]:
    data = _settings_of(parent, code=code, name=f"Reseller {code}", customer_id_prefix=code.upper()[:4], **changes)
    data["parent"] = parent.pk
    return data


def _menu(client: Client) -> str:
    """A page every login may open, with the menu (the dashboard may send a role to its landing page)."""
    response = client.get(reverse("console:two_factor"))
    assert response.status_code == 200
    return response.content.decode().split("</nav>")[0]


def _owner(tree: Tree, branch: str = "north") -> User:
    found = getattr(tree, branch)
    return found.staff.get("owner") or add_staff(found, "owner")


# -- the list ---------------------------------------------------------------------------------------


def test_the_root_owner_sees_the_whole_tree_in_order_with_subscriber_counts(tree):
    response = tree.login(tree.root.staff["owner"]).get(reverse("console:operators"))
    assert response.status_code == 200
    body = response.content.decode()
    rows = list(response.context["rows"])
    assert [row.operator for row in rows] == [tree.root.operator, tree.north.operator, tree.south.operator]
    assert [row.subscribers for row in rows] == [2, 2, 2]
    assert [row.depth for row in rows] == [0, 1, 1]
    assert all(row.operator.is_active for row in rows)
    assert "North reseller" in body and "South reseller" in body
    assert 'data-action="deactivate"' in body


def test_staff_without_the_permission_get_403_and_no_menu_entry(tree):
    manager = add_staff(tree.root, "manager")
    for user in (tree.root.staff["billing_clerk"], manager, tree.north.staff["reseller_staff"]):
        client = tree.login(user)
        assert client.get(reverse("console:operators")).status_code == 403
        assert reverse("console:operators") not in _menu(client)
    assert reverse("console:operators") in _menu(tree.login(tree.root.staff["owner"]))


# -- create, edit, deactivate ----------------------------------------------------------------------


def test_the_root_owner_creates_a_sub_reseller_with_its_owner(tree):
    owner = tree.root.staff["owner"]
    client = tree.login(owner)
    data = _new_reseller(
        tree.north.operator,
        "north-mirpur",
        modules=["collection", "billing"],
        owner_username="mirpur-owner",
        owner_password=PASSWORD,
        owner_email="owner@mirpur.example",
    )
    response = client.post(reverse("console:operator_create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]

    created = Operator.objects.get(code="north-mirpur")
    assert created.parent == tree.north.operator
    assert created.path == f"{tree.north.operator.path}{created.pk}/"
    assert created.modules == ["collection", "billing"]
    assert created.customer_id_prefix == "NORT"
    staff = Staff.objects.get(user__username="mirpur-owner")
    assert staff.operator == created and staff.role == "owner"
    event = AuditEvent.objects.get(operator=created, action="operator.create")
    assert event.actor == owner and event.detail["after"]["modules"] == ["collection", "billing"]
    listing = client.get(reverse("console:operators"))
    assert [row.operator.code for row in listing.context["rows"]][:3] == [
        tree.root.operator.code,
        tree.north.operator.code,
        "north-mirpur",
    ]


def test_a_reseller_cannot_be_given_sections_its_parent_lacks(tree):
    client = tree.login(tree.root.staff["owner"])
    client.post(
        reverse("console:operator_edit", args=[tree.north.operator.pk]),
        _settings_of(tree.north.operator, modules=["collection", "billing"]),
    )
    response = client.post(
        reverse("console:operator_create"), _new_reseller(tree.north.operator, "north-x", modules=["network"])
    )
    assert response.status_code == 400
    assert not Operator.objects.filter(code="north-x").exists()


def test_editing_is_audited_with_before_and_after(tree):
    owner = tree.root.staff["owner"]
    north = tree.north.operator
    response = tree.login(owner).post(
        reverse("console:operator_edit", args=[north.pk]),
        _settings_of(north, name="North Net", customer_id_digits=6, document_phone="+8809612111111"),
    )
    assert response.status_code == 302
    north.refresh_from_db()
    assert (north.name, north.customer_id_digits, north.document_phone) == ("North Net", 6, "+8809612111111")
    event = AuditEvent.objects.get(operator=north, action="operator.update")
    assert event.actor == owner
    assert event.detail["before"] == {"name": "North reseller", "customer_id_digits": 5, "document_phone": ""}
    assert event.detail["after"] == {"name": "North Net", "customer_id_digits": 6, "document_phone": "+8809612111111"}


def test_another_operators_customer_id_format_is_refused(tree):
    response = tree.login(tree.root.staff["owner"]).post(
        reverse("console:operator_edit", args=[tree.north.operator.pk]),
        _settings_of(tree.north.operator, customer_id_prefix="SR"),  # South's
    )
    assert response.status_code == 400
    assert "South reseller already numbers its customers" in response.content.decode()
    tree.north.operator.refresh_from_db()
    assert tree.north.operator.customer_id_prefix == "NR"


def test_deactivating_a_reseller_locks_its_staff_out_and_reactivating_lets_them_in(tree):
    owner = tree.root.staff["owner"]
    client = tree.login(owner)
    north = tree.north.operator
    sub = tree.login(owner).post(reverse("console:operator_create"), _new_reseller(north, "north-sub"))
    assert sub.status_code == 302
    clerk = tree.north.staff["billing_clerk"]
    assert tree.login(clerk).get(reverse("console:subscribers")).status_code == 200

    response = client.post(reverse("console:operator_active", args=[north.pk]), {"active": "0"})
    assert response.status_code == 302
    north.refresh_from_db()
    assert not north.is_active and not Operator.objects.get(code="north-sub").is_active
    assert tree.login(clerk).get(reverse("console:subscribers")).status_code == 403
    signin = Client().post(reverse("console:login"), {"username": clerk.username, "password": PASSWORD})
    assert signin.status_code == 200 and "_auth_user_id" not in signin.client.session
    events = AuditEvent.objects.filter(action="operator.deactivate").order_by("pk")
    assert [(e.operator.code, e.detail["before"], e.detail["after"]) for e in events] == [
        (north.code, {"is_active": True}, {"is_active": False}),
        ("north-sub", {"is_active": True}, {"is_active": False}),
    ]
    assert tree.south.operator.is_active  # a sibling is untouched

    client.post(reverse("console:operator_active", args=[north.pk]), {"active": "1"})
    north.refresh_from_db()
    assert north.is_active and not Operator.objects.get(code="north-sub").is_active
    assert tree.login(clerk).get(reverse("console:subscribers")).status_code == 200
    assert AuditEvent.objects.filter(operator=north, action="operator.activate").exists()


def test_staff_cannot_deactivate_their_own_operator(tree):
    owner = _owner(tree)
    client = tree.login(owner)
    page = client.get(reverse("console:operators")).content.decode()
    assert (
        'data-action="deactivate"' not in page.split(f'data-operator="{tree.north.operator.code}"')[1].split("</tr>")[0]
    )
    client.post(reverse("console:operator_active", args=[tree.north.operator.pk]), {"active": "0"})
    tree.north.operator.refresh_from_db()
    assert tree.north.operator.is_active


# -- module access ---------------------------------------------------------------------------------


def test_module_access_hides_a_section_from_that_operators_staff_and_its_resellers(tree):
    engineer = add_staff(tree.north, "network_engineer")
    collector = tree.north.staff["collector"]
    south_engineer = add_staff(tree.south, "network_engineer")
    root_owner = tree.root.staff["owner"]
    client = tree.login(root_owner)
    client.post(reverse("console:operator_create"), _new_reseller(tree.north.operator, "north-sub"))
    assert tree.login(engineer).get(reverse("console:routers")).status_code == 200
    assert reverse("console:routers") in _menu(tree.login(engineer))
    assert reverse("console:collect") in _menu(tree.login(collector))

    kept = [each for each in ConsoleModule.values if each not in ("network", "collection")]
    response = client.post(
        reverse("console:operator_edit", args=[tree.north.operator.pk]), _settings_of(tree.north.operator, modules=kept)
    )
    assert response.status_code == 302

    engineer = User.objects.get(pk=engineer.pk)
    nav = _menu(tree.login(engineer))
    assert reverse("console:routers") not in nav and reverse("console:outbox") not in nav
    assert reverse("console:mismatches") not in nav  # the whole Network section is gone
    assert tree.login(engineer).get(reverse("console:routers")).status_code == 403
    assert tree.login(engineer).get(reverse("console:outbox")).status_code == 403
    collector_client = tree.login(collector)
    assert reverse("console:collect") not in _menu(collector_client)
    assert collector_client.get(reverse("console:collect")).status_code == 403
    # The sub-reseller loses them too; a sibling and the root keep them.
    assert Operator.objects.get(code="north-sub").modules == kept
    assert tree.login(south_engineer).get(reverse("console:routers")).status_code == 200
    assert client.get(reverse("console:routers")).status_code == 200
    events = AuditEvent.objects.filter(action="operator.update", detail__after__has_key="modules")
    assert {event.operator.code for event in events} == {tree.north.operator.code, "north-sub"}
    north_event = events.get(operator=tree.north.operator)
    assert "network" in north_event.detail["before"]["modules"]
    assert north_event.detail["after"]["modules"] == kept

    # Given back, the section is there again.
    client.post(
        reverse("console:operator_edit", args=[tree.north.operator.pk]),
        _settings_of(Operator.objects.get(pk=tree.north.operator.pk), modules=list(ConsoleModule.values)),
    )
    assert tree.login(User.objects.get(pk=engineer.pk)).get(reverse("console:routers")).status_code == 200


def test_a_reseller_owner_cannot_change_its_own_sections(tree):
    owner = _owner(tree)
    client = tree.login(owner)
    page = client.get(reverse("console:operator_edit", args=[tree.north.operator.pk]))
    assert page.status_code == 200 and 'name="modules"' not in page.content.decode()
    tree.login(tree.root.staff["owner"]).post(
        reverse("console:operator_edit", args=[tree.north.operator.pk]),
        _settings_of(tree.north.operator, modules=["collection", "billing", "resellers"]),
    )
    client.post(
        reverse("console:operator_edit", args=[tree.north.operator.pk]),
        _settings_of(tree.north.operator, modules=list(ConsoleModule.values)),  # tampered
    )
    tree.north.operator.refresh_from_db()
    assert tree.north.operator.modules == ["collection", "billing", "resellers"]


# -- billing settings from the next period ---------------------------------------------------------


def test_a_billing_change_shows_the_day_it_applies_from_and_waits_for_it(tree):
    client = tree.login(tree.root.staff["owner"])
    south = tree.south.operator
    edit = client.get(reverse("console:operator_edit", args=[south.pk])).content.decode()
    assert "01/12/2026" in edit  # the first day of the next period, as Bangladesh writes it

    response = client.post(
        reverse("console:operator_edit", args=[south.pk]), _settings_of(south, vat_rate="7.50"), follow=True
    )
    body = response.content.decode()
    assert "apply from 01/12/2026" in body
    south.refresh_from_db()
    assert south.vat_rate == Decimal("0.00")
    change = OperatorSettingsChange.objects.get(operator=south, status=SettingsChangeStatus.PENDING)
    assert change.effective_from == dt.date(2026, 12, 1) and change.values == {"vat_rate": "7.50"}
    assert "Changes from 01/12/2026" in body

    edit = client.get(reverse("console:operator_edit", args=[south.pk])).content.decode()
    assert 'id="pending-change"' in edit and "7.50" in edit
    client.post(reverse("console:operator_settings_cancel", args=[south.pk]))
    change.refresh_from_db()
    assert change.status == SettingsChangeStatus.CANCELLED


def test_a_billing_change_that_would_alter_issued_bills_is_refused_with_the_reason(tree):
    south = tree.south.operator
    bills_generate(operator=south, period_month=dt.date(2026, 12, 1), trigger=BillingRun.Trigger.STAFF)
    response = tree.login(tree.root.staff["owner"]).post(
        reverse("console:operator_edit", args=[south.pk]), _settings_of(south, vat_rate="7.50")
    )
    assert response.status_code == 400
    assert "bills of the period from 01/12/2026 are issued already" in response.content.decode()
    assert not OperatorSettingsChange.objects.exists()


# -- tenant walls ----------------------------------------------------------------------------------


def test_a_reseller_owner_sees_only_its_subtree_and_gets_404_for_its_parent_and_siblings(tree):
    owner = _owner(tree)
    client = tree.login(owner)
    created = client.post(reverse("console:operator_create"), _new_reseller(tree.north.operator, "north-sub"))
    assert created.status_code == 302
    sub = Operator.objects.get(code="north-sub")
    assert sub.parent == tree.north.operator

    listing = client.get(reverse("console:operators"))
    assert [row.operator for row in listing.context["rows"]] == [tree.north.operator, sub]
    body = listing.content.decode()
    assert tree.root.operator.name not in body.split("<main>")[1] and "South reseller" not in body

    before = (Operator.objects.count(), AuditEvent.objects.count(), OperatorSettingsChange.objects.count())
    for other in (tree.root.operator, tree.south.operator):
        assert client.get(reverse("console:operator_edit", args=[other.pk])).status_code == 404
        assert client.post(reverse("console:operator_edit", args=[other.pk]), _settings_of(other)).status_code == 404
        assert client.post(reverse("console:operator_active", args=[other.pk]), {"active": "0"}).status_code == 404
        assert client.post(reverse("console:operator_settings_cancel", args=[other.pk])).status_code == 404
        assert client.get(reverse("console:operator_create") + f"?parent={other.pk}").status_code == 404
        tampered = client.post(reverse("console:operator_create"), _new_reseller(other, "tampered"))
        assert tampered.status_code == 400
    assert client.get(reverse("console:operator_edit", args=[999999])).status_code == 404
    assert client.get(reverse("console:operator_edit", args=[sub.pk])).status_code == 200
    assert (Operator.objects.count(), AuditEvent.objects.count(), OperatorSettingsChange.objects.count()) == before
    tree.root.operator.refresh_from_db()
    tree.south.operator.refresh_from_db()
    assert tree.root.operator.is_active and tree.south.operator.is_active
