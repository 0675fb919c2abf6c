"""A role that gains a permission in a release gains it for the logins that already exist."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command

from sonjog.conftest import make_operator
from sonjog.operators.models import StaffRole
from sonjog.operators.services import role_group, staff_create


@pytest.mark.django_db(transaction=True)
def test_migrate_brings_existing_role_groups_up_to_date() -> None:
    operator = make_operator()
    support = staff_create(operator=operator, username="support-1", password="long-pass-123", role=StaffRole.SUPPORT)
    group = role_group(StaffRole.SUPPORT, operator)
    view_message = Permission.objects.get(content_type__app_label="notifications", codename="view_message")
    group.permissions.remove(view_message)  # as it was before the release that granted it
    assert not support.user.has_perm("notifications.view_message")

    call_command("migrate", verbosity=0)

    support.user.refresh_from_db()
    refreshed = type(support.user).objects.get(pk=support.user.pk)  # a fresh permission cache
    assert refreshed.has_perm("notifications.view_message")
    assert not refreshed.has_perm("billing.add_payment")  # nothing the role does not grant
