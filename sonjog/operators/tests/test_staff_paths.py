"""No staff login lands on a bare 403 (ADR 0013): every path that makes a staff login or changes one
(the services, the console, the CLI, the Django admin's staff and user pages, the first-run setup, a
role's matrix edited) leaves it in exactly its role's group, so it signs in to a page it may open; and
the database refuses a commit that would leave a staff row outside its role's group."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from sonjog.conftest import make_operator
from sonjog.console.landing import landing_url
from sonjog.core.tests.test_admin_walls import _change_form_data
from sonjog.operators.models import Operator, OperatorRole, Staff, StaffRole
from sonjog.operators.services import (
    operator_create,
    operator_role_update,
    role_group,
    root_isp_setup,
    staff_create,
    staff_role_sync,
    staff_update,
)
from sonjog.operators.staffing import operator_roles_refresh_all

pytestmark = pytest.mark.django_db

PASSWORD = "paths-pass-123"


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def isp() -> Operator:
    return make_operator(vat_rate=Decimal("0"))


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("paths-root", "", PASSWORD)


def _role_groups(user: User) -> list[str]:
    return sorted(user.groups.filter(operator_role__isnull=False).values_list("name", flat=True))


def _check_deferred() -> None:
    """Run the deferred constraint triggers now, as the commit would."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def assert_lands_on_a_page(user: User) -> None:
    """In exactly its role's group, and its sign-in opens a page (never a 403)."""
    staff = Staff.objects.select_related("operator").get(user=user)
    expected = OperatorRole.objects.get(operator=staff.operator, base_role=staff.role).group.name
    assert _role_groups(user) == [expected]
    _check_deferred()
    fresh = User.objects.get(pk=user.pk)  # no cached permissions
    client = Client()
    client.force_login(fresh)
    landing = landing_url(fresh)
    assert client.get(landing).status_code == 200, (staff.role, landing)
    final = client.get("/", follow=True)
    assert final.status_code == 200, (staff.role, final.redirect_chain)


@pytest.mark.parametrize("role", StaffRole.values)
def test_the_service_puts_every_role_in_its_group(isp: Operator, role: str) -> None:
    staff = staff_create(operator=isp, username=f"svc-{role}", password=PASSWORD, role=role)
    assert_lands_on_a_page(staff.user)


def test_the_cli(isp: Operator) -> None:
    call_command(
        "staff_create", "--operator", isp.code, "--username", "cli-clerk", "--role", "billing_clerk", stdout=StringIO()
    )
    assert_lands_on_a_page(User.objects.get(username="cli-clerk"))


def test_the_first_run_setup() -> None:
    owner = root_isp_setup(code="paths-isp", name="Paths ISP", owner_username="first-owner", owner_password=PASSWORD)
    assert_lands_on_a_page(owner.user)


def test_the_console_create_and_edit(isp: Operator) -> None:
    owner = staff_create(operator=isp, username="console-owner", password=PASSWORD, role="owner").user
    client = Client()
    client.force_login(owner)
    response = client.post(
        reverse("console:staff_create"),
        {"username": "console-made", "name": "Console Made", "role": "support", "password_choice": "generate"},
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    made = Staff.objects.get(user__username="console-made")
    assert_lands_on_a_page(made.user)
    response = client.post(reverse("console:staff_edit", args=[made.pk]), {"name": "Console Made", "role": "collector"})
    assert response.status_code == 302
    assert_lands_on_a_page(made.user)


def test_a_role_change_or_an_operator_move_by_the_service(isp: Operator) -> None:
    reseller = operator_create(code=f"{isp.code}-r", name="Reseller", parent=isp)
    staff = staff_create(operator=isp, username="mover", password=PASSWORD, role="collector")
    staff_update(staff=staff, role="network_engineer")
    assert_lands_on_a_page(staff.user)
    # A row moved to another operator by hand (the admin, a shell) and then synced.
    Staff.objects.filter(pk=staff.pk).update(operator=reseller)
    staff.refresh_from_db()
    staff_role_sync(staff=staff)
    assert _role_groups(staff.user) == [f"role:{reseller.pk}:network_engineer"]
    assert_lands_on_a_page(staff.user)


def test_the_admin_staff_page_add_and_change(isp: Operator, superuser: User) -> None:
    client = Client()
    client.force_login(superuser)
    plain = User.objects.create_user("admin-made", password=PASSWORD)
    response = client.post(
        reverse("admin:operators_staff_add"),
        {"user": plain.pk, "operator": isp.pk, "role": "support", "sees_subtree": "on", "phone": ""},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    staff = Staff.objects.get(user=plain)
    assert_lands_on_a_page(plain)
    data = _change_form_data(admin.site._registry[Staff], staff, superuser)
    data["role"] = "collector"
    response = client.post(reverse("admin:operators_staff_change", args=[staff.pk]), data)
    assert response.status_code == 302
    assert_lands_on_a_page(plain)


def test_the_admin_user_page_cannot_take_the_role_group_away(isp: Operator, superuser: User) -> None:
    staff = staff_create(operator=isp, username="admin-user", password=PASSWORD, role="billing_clerk")
    extra = Group.objects.create(name="newsletter")
    client = Client()
    client.force_login(superuser)
    data = _change_form_data(admin.site._registry[User], staff.user, superuser)
    offered = client.get(reverse("admin:auth_user_change", args=[staff.user.pk])).context["adminform"].form
    assert list(offered.fields["groups"].queryset) == [extra]  # role groups follow the role, not this box
    data["groups"] = [extra.pk]
    joined = staff.user.date_joined.astimezone()
    data.update({"date_joined_0": f"{joined:%Y-%m-%d}", "date_joined_1": f"{joined:%H:%M:%S}"})
    response = client.post(reverse("admin:auth_user_change", args=[staff.user.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert set(staff.user.groups.values_list("name", flat=True)) == {"newsletter", f"role:{isp.pk}:billing_clerk"}
    assert_lands_on_a_page(staff.user)


def test_a_role_matrix_edit_keeps_the_logins_in_their_group(isp: Operator) -> None:
    clerk = staff_create(operator=isp, username="matrix-clerk", password=PASSWORD, role="billing_clerk")
    operator_role_update(
        operator=isp, base_role="billing_clerk", changes={"billing.add_payment": False, "billing.view_bill": False}
    )
    operator_roles_refresh_all()  # what every migrate does
    fresh = User.objects.get(pk=clerk.user.pk)
    assert not fresh.has_perm("billing.add_payment") and fresh.has_perm("customers.view_subscriber")
    # Billing (its landing) is gone: it lands on the next page it may open.
    assert landing_url(fresh) == reverse("console:dashboard")
    assert_lands_on_a_page(clerk.user)


def test_a_login_whose_role_may_open_nothing_lands_on_its_account_page(isp: Operator) -> None:
    collector = staff_create(operator=isp, username="bare", password=PASSWORD, role="collector")
    operator_role_update(
        operator=isp,
        base_role="collector",
        changes={"customers.view_subscriber": False, "billing.add_payment": False},
    )
    fresh = User.objects.get(pk=collector.user.pk)
    assert landing_url(fresh) == reverse("console:two_factor")
    assert_lands_on_a_page(collector.user)


# -- the database's own line ------------------------------------------------------------------------


def _refused_at_commit() -> Any:
    return pytest.raises(IntegrityError, match="group")


def test_a_staff_row_made_by_hand_without_its_group_is_refused(isp: Operator) -> None:
    user = User.objects.create_user("by-hand", password=PASSWORD)
    with _refused_at_commit(), transaction.atomic():
        Staff.objects.create(user=user, operator=isp, role="support")
        _check_deferred()


def test_taking_the_role_group_away_by_hand_is_refused(isp: Operator) -> None:
    staff = staff_create(operator=isp, username="ungrouped", password=PASSWORD, role="support")
    with _refused_at_commit(), transaction.atomic():
        staff.user.groups.clear()
        _check_deferred()


def test_a_second_role_group_by_hand_is_refused(isp: Operator) -> None:
    staff = staff_create(operator=isp, username="doubled", password=PASSWORD, role="support")
    with _refused_at_commit(), transaction.atomic():
        staff.user.groups.add(role_group("owner", isp))
        _check_deferred()


def test_a_role_changed_by_hand_without_the_sync_is_refused(isp: Operator) -> None:
    staff = staff_create(operator=isp, username="unsynced", password=PASSWORD, role="support")
    role_group("owner", isp)
    with _refused_at_commit(), transaction.atomic():
        Staff.objects.filter(pk=staff.pk).update(role="owner")
        _check_deferred()


def test_deleting_a_role_that_logins_hold_is_refused(isp: Operator) -> None:
    staff = staff_create(operator=isp, username="holder", password=PASSWORD, role="support")
    role = OperatorRole.objects.get(operator=isp, base_role="support")
    with pytest.raises(IntegrityError), transaction.atomic():
        role.delete()
        _check_deferred()
    assert _role_groups(staff.user) == [role.group.name]


def test_deleting_a_staff_login_is_allowed(isp: Operator) -> None:
    staff = staff_create(operator=isp, username="leaver", password=PASSWORD, role="support")
    with transaction.atomic():
        staff.user.delete()
        _check_deferred()
    assert not Staff.objects.filter(pk=staff.pk).exists()


def test_the_migration_moves_staff_from_the_installation_wide_groups(isp: Operator) -> None:
    """Before operators.0006 a role's group was one for the whole installation ("role:<role>")."""
    import importlib

    from django.apps import apps as django_apps

    staff = staff_create(operator=isp, username="legacy", password=PASSWORD, role="collector")
    legacy = Group.objects.create(name="role:collector")
    with transaction.atomic():
        OperatorRole.objects.filter(operator=isp).delete()
        staff.user.groups.set([legacy])
        Group.objects.filter(name=f"role:{isp.pk}:collector").delete()
        migration = importlib.import_module("sonjog.operators.migrations.0006_operator_roles")
        migration.staff_to_operator_roles(django_apps, None)
        operator_roles_refresh_all()
        _check_deferred()
    assert _role_groups(staff.user) == [f"role:{isp.pk}:collector"]
    assert not Group.objects.filter(name="role:collector").exists()
    assert User.objects.get(pk=staff.user.pk).has_perm("billing.add_payment")
