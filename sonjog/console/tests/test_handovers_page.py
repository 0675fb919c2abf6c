"""The Hand-overs pages (issue 15): managers approve or dispute collectors' cash of a day, each
seeing its own subtree only; the collector sees its hand-over's state on its day sheet; the setting is
on the operator's edit page; the dashboard tells cash awaiting hand-over from cash handed over."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sonjog.billing.models import CashHandover, CashHandoverPayment, Payment
from sonjog.console.tests.conftest import Tree, add_staff, operator_form_data
from sonjog.core.models import AuditEvent
from sonjog.flows.payments import payment_receive
from sonjog.operators.models import Operator

pytestmark = pytest.mark.django_db


@dataclass
class Cash:
    tree: Tree
    manager: User  # north's manager
    north: CashHandover  # north's collector's
    root: CashHandover  # the root ISP's billing clerk's
    south: CashHandover  # south's billing clerk's


def _pay(who: User, subscriber: Any, amount: str) -> Payment:
    return payment_receive(
        subscriber=subscriber, amount=Decimal(amount), method="cash", collector=who, actor=who, confirm_duplicate=True
    )


def _handover(payment: Payment) -> CashHandover:
    return CashHandoverPayment.objects.select_related("handover").get(payment=payment).handover


@pytest.fixture
def cash(tree: Tree) -> Cash:
    Operator.objects.filter(pk__in=[b.operator.pk for b in (tree.root, tree.north, tree.south)]).update(
        collection_approval=True
    )
    manager = add_staff(tree.north, "manager")
    north = _handover(_pay(tree.north.staff["collector"], tree.north.subscribers[0], "300.00"))
    root = _handover(_pay(tree.root.staff["billing_clerk"], tree.root.subscribers[0], "200.00"))
    south = _handover(_pay(tree.south.staff["billing_clerk"], tree.south.subscribers[0], "100.00"))
    return Cash(tree, manager, north, root, south)


def _listed(client: Client, **params: str) -> set[int]:
    response = client.get(reverse("console:handovers"), params)
    assert response.status_code == 200
    return {row.pk for row in response.context["page_obj"]}


def _url(handover: CashHandover) -> str:
    return reverse("console:handover", args=[handover.pk])


def _approve(client: Client, handover: CashHandover, counted: str, expected: str, **extra: str) -> Any:
    data = {"action": "approve", "approve-counted": counted, "approve-expected": expected, "approve-approval_note": ""}
    return client.post(_url(handover), {**data, **extra})


# -- walls ----------------------------------------------------------------------------------------


def test_a_resellers_manager_sees_and_decides_its_own_subtrees_handovers_only(cash):
    north = cash.tree.login(cash.manager)
    assert _listed(north) == {cash.north.pk}
    assert _listed(north, state="all") == {cash.north.pk}
    for foreign in (cash.root, cash.south):
        assert north.get(_url(foreign)).status_code == 404
        assert _approve(north, foreign, "1.00", "1.00", step="confirm").status_code == 404
        assert north.post(_url(foreign), {"action": "dispute", "dispute-note": "x"}).status_code == 404
        foreign.refresh_from_db()
        assert foreign.state == "pending"
    # The root ISP's owner sees its resellers' too.
    owner = cash.tree.login(cash.tree.root.staff["owner"])
    assert _listed(owner) == {cash.north.pk, cash.root.pk, cash.south.pk}


@pytest.mark.parametrize(
    ("branch", "role"),
    [("north", "collector"), ("north", "support"), ("north", "billing_clerk"), ("south", "billing_clerk")],
)
def test_roles_without_the_permission_get_403(cash, branch, role):
    client = cash.tree.login(getattr(cash.tree, branch).staff[role])
    assert client.get(reverse("console:handovers")).status_code == 403
    assert client.get(_url(cash.north)).status_code == 403
    assert _approve(client, cash.north, "300.00", "300.00", step="confirm").status_code == 403
    cash.north.refresh_from_db()
    assert cash.north.state == "pending"


# -- approving and disputing ----------------------------------------------------------------------


def test_approve_says_what_and_how_much_then_records_the_shortfall(cash):
    client = cash.tree.login(cash.manager)
    page = client.get(_url(cash.north))
    assert page.status_code == 200 and "৳300.00" in page.content.decode()
    assert page.context["approve"]["counted"].value() == Decimal("300.00")

    confirm = _approve(client, cash.north, "250.00", "300.00", **{"approve-approval_note": "short by 50"})
    body = confirm.content.decode()
    assert confirm.status_code == 200 and 'id="handover-confirm"' in body
    assert "collector-" in body and "৳250.00 counted" in body
    assert "a shortfall of ৳50.00 is recorded" in body
    cash.north.refresh_from_db()
    assert cash.north.state == "pending"  # nothing yet: the confirmation first

    done = _approve(client, cash.north, "250.00", "300.00", step="confirm", **{"approve-approval_note": "short by 50"})
    assert done.status_code == 302 and done["Location"] == reverse("console:handovers")
    cash.north.refresh_from_db()
    assert (cash.north.state, cash.north.expected, cash.north.counted, cash.north.shortfall) == (
        "approved",
        Decimal("300.00"),
        Decimal("250.00"),
        Decimal("50.00"),
    )
    assert cash.north.approved_by == cash.manager and cash.north.approval_note == "short by 50"
    listed = client.get(reverse("console:handovers"), {"state": "approved"})
    assert "a shortfall of ৳50.00" in listed.content.decode()  # the flashed message
    again = _approve(client, cash.north, "300.00", "300.00", step="confirm")
    assert again.status_code == 409 and "approved already" in again.content.decode()
    assert AuditEvent.objects.filter(action="handover.approve").count() == 1


def test_cash_taken_since_the_page_was_shown_is_shown_before_anything_is_approved(cash):
    client = cash.tree.login(cash.manager)
    _approve(client, cash.north, "300.00", "300.00")
    _pay(cash.tree.north.staff["collector"], cash.tree.north.subscribers[1], "40.00")
    stale = _approve(client, cash.north, "300.00", "300.00", step="confirm")
    assert stale.status_code == 409
    body = stale.content.decode()
    assert 'id="handover-changed"' in body and "৳340.00" in body
    cash.north.refresh_from_db()
    assert cash.north.state == "pending"
    assert _approve(client, cash.north, "340.00", "340.00", step="confirm").status_code == 302
    cash.north.refresh_from_db()
    assert cash.north.expected == Decimal("340.00") and cash.north.shortfall == 0


def test_a_dispute_needs_a_note_and_keeps_the_handover_open(cash):
    client = cash.tree.login(cash.manager)
    empty = client.post(_url(cash.north), {"action": "dispute", "dispute-note": "", "dispute-expected": "300.00"})
    assert empty.status_code == 400
    disputed = client.post(
        _url(cash.north),
        {"action": "dispute", "dispute-note": "Two receipts missing", "dispute-count": "", "dispute-expected": "300"},
    )
    assert disputed.status_code == 302
    cash.north.refresh_from_db()
    assert cash.north.state == "disputed" and cash.north.note == "Two receipts missing"
    assert _listed(client, state="disputed") == {cash.north.pk}
    assert _listed(client) == {cash.north.pk}  # still open
    assert _approve(client, cash.north, "300.00", "300.00", step="confirm").status_code == 302


def test_nobody_approves_their_own_cash_on_the_page(cash):
    own = _handover(_pay(cash.manager, cash.tree.north.subscribers[1], "75.00"))
    client = cash.tree.login(cash.manager)
    refused = _approve(client, own, "75.00", "75.00", step="confirm")
    assert refused.status_code == 409 and "your own cash" in refused.content.decode()
    own.refresh_from_db()
    assert own.state == "pending"


# -- the collector's day sheet, the dashboard and the setting --------------------------------------


def test_the_collector_sees_its_handovers_state_on_its_day_sheet(cash):
    collector = cash.tree.login(cash.tree.north.staff["collector"])
    sheet = collector.get(reverse("console:day_sheet"))
    body = sheet.content.decode()
    assert sheet.status_code == 200
    assert [each.pk for each in sheet.context["handovers"]] == [cash.north.pk]
    assert sheet.context["split"].awaiting == Decimal("300.00")
    assert f'id="day-handover-{cash.north.pk}"' in body and 'data-state="pending"' in body
    assert cash.root.pk not in {each.pk for each in sheet.context["handovers"]}

    manager = cash.tree.login(cash.manager)
    _approve(manager, cash.north, "300.00", "300.00", step="confirm")
    after = collector.get(reverse("console:day_sheet"))
    assert after.context["split"].handed_over == Decimal("300.00")
    assert after.context["split"].awaiting == Decimal("0.00")
    assert 'data-state="approved"' in after.content.decode()


def test_the_dashboard_tells_cash_awaiting_hand_over_from_cash_handed_over(cash):
    owner = cash.tree.login(cash.tree.root.staff["owner"])
    _approve(owner, cash.root, "200.00", "200.00", step="confirm")
    response = owner.get(reverse("console:dashboard_live"))
    rows = {row["collector_id"]: row for row in response.context["board"].collections_today}
    north = rows[cash.tree.north.staff["collector"].pk]
    root = rows[cash.tree.root.staff["billing_clerk"].pk]
    assert (north["total"], north["awaiting"], north["handed_over"]) == (
        Decimal("300.00"),
        Decimal("300.00"),
        Decimal("0.00"),
    )
    assert (root["awaiting"], root["handed_over"]) == (Decimal("0.00"), Decimal("200.00"))
    body = response.content.decode()
    assert "৳300.00 collected, awaiting hand-over" in body and "৳200.00 handed over" in body


def test_the_setting_is_on_the_operators_edit_page_and_applies_at_once(tree):
    owner = tree.login(tree.root.staff["owner"])
    url = reverse("console:operator_edit", args=[tree.north.operator.pk])
    page = owner.get(url)
    assert 'id="field-collection_approval"' in page.content.decode()
    saved = owner.post(url, {**operator_form_data(tree.north.operator), "collection_approval": "on"})
    assert saved.status_code == 302
    tree.north.operator.refresh_from_db()
    assert tree.north.operator.collection_approval is True
    event = AuditEvent.objects.filter(action="operator.update", operator=tree.north.operator).latest("pk")
    assert event.detail["after"]["collection_approval"] is True
    payment = _pay(tree.north.staff["collector"], tree.north.subscribers[0], "120.00")
    assert _handover(payment).state == "pending"
    # Switched off again: cash taken from now on joins no hand-over; the open one stays to decide.
    owner.post(url, operator_form_data(tree.north.operator))
    later = _pay(tree.north.staff["collector"], tree.north.subscribers[1], "80.00")
    assert not CashHandoverPayment.objects.filter(payment=later).exists()
    assert CashHandover.objects.filter(operator=tree.north.operator, state="pending").count() == 1


def test_the_pages_keep_a_fixed_number_of_queries(cash):
    client = cash.tree.login(cash.tree.root.staff["owner"])
    for url in (reverse("console:handovers"), _url(cash.north), reverse("console:day_sheet")):
        client.get(url)
        with CaptureQueriesContext(connection) as few:
            client.get(url)
        _pay(cash.tree.root.staff["billing_clerk"], cash.tree.root.subscribers[1], "10.00")
        _pay(cash.tree.north.staff["collector"], cash.tree.north.subscribers[1], "10.00")
        with CaptureQueriesContext(connection) as many:
            client.get(url)
        assert len(many) == len(few), url


def test_the_pages_in_bangla(cash):
    client = cash.tree.login(cash.tree.root.staff["owner"])
    client.post(reverse("console:language"), {"language": "bn"})
    listed = client.get(reverse("console:handovers")).content.decode()
    assert 'lang="bn"' in listed
    assert "আদায়কারী" in listed  # "Collector"
    assert "৳৩০০.০০" in listed and "৳২০০.০০" in listed  # Bengali digits
    page = client.get(_url(cash.north)).content.decode()
    assert "৳৩০০.০০" in page
    confirm = _approve(client, cash.north, "250.00", "300.00")
    body = confirm.content.decode()
    assert confirm.status_code == 200 and "৳২৫০.০০" in body and "৳৫০.০০" in body
    assert 'value="250.00"' in body  # the hidden amount stays machine-readable
    done = _approve(client, cash.north, "250.00", "300.00", step="confirm")
    assert done.status_code == 302
    sheet = cash.tree.login(cash.tree.north.staff["collector"])
    sheet.post(reverse("console:language"), {"language": "bn"})
    assert "৳৩০০.০০" in sheet.get(reverse("console:day_sheet")).content.decode()
