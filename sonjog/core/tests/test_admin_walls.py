"""The Django admin is for the installation's superusers only (issue 10).

Every model registered with the admin site is walked as an operator's staff (a reseller's owner and a
root ISP's owner): no page of it answers with data, and no POST changes a row. Models registered later
are covered without touching this file. Superusers keep the admin, and what they change through it is
on the audit log with its before and after values.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import models
from django.forms import BooleanField as BooleanFormField
from django.forms import MultipleChoiceField
from django.test import Client, RequestFactory
from django.urls import reverse

from sonjog.automation.services import operator_schedule_set, reminder_rule_create
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import Package
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.core.admin_base import AuditedAdmin
from sonjog.core.models import AuditEvent
from sonjog.customers.models import Pop, Zone
from sonjog.flows.payments import payment_receive
from sonjog.notifications.services import (
    notification_settings_save,
    provider_account_create,
    sms_credit_add,
    subscriber_preference_save,
    template_save,
)
from sonjog.operators.models import Operator, Staff
from sonjog.operators.services import operator_create, staff_create

pytestmark = pytest.mark.django_db

PASSWORD = "walls-pass-123"


@dataclass
class Walls:
    root: Operator
    north: Operator
    other: Operator  # another root ISP: a second tenant in the same database
    root_owner: User
    north_owner: User
    superuser: User
    packages: dict[str, Package]


def _seed(operator: Operator) -> Package:
    """One row, or a few, of every kind an operator has, made through the services."""
    package = make_package(operator, "500.00", vat=False, name=f"{operator.code} 10M")
    zone = Zone.objects.create(operator=operator, name=f"{operator.code} zone")
    Pop.objects.create(operator=operator, zone=zone, name=f"{operator.code} pop")
    subscriber = make_subscriber(operator, package, operator_today(operator) - dt.timedelta(days=40), zone=zone)
    payment_receive(subscriber=subscriber, amount=Decimal("200.00"), method="cash")
    notification_settings_save(operator=operator, quiet_hours_enabled=False)
    template_save(operator=operator, event="welcome", channel="sms", language="en", body="Hi {{ name }}")
    subscriber_preference_save(subscriber=subscriber, language="bn")
    provider_account_create(
        operator=operator,
        name=f"{operator.code} sms",
        kind="generic_http",
        base_url="http://127.0.0.1:9/send",
        credentials={"token": "walls-secret"},
    )
    sms_credit_add(operator=operator, amount=Decimal("10.00"))
    operator_schedule_set(operator=operator, generation_day=1)
    reminder_rule_create(operator=operator, event="bill_due", offset_days=-3)
    return package


@pytest.fixture
def walls(settings: Any) -> Walls:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    root = make_operator(vat_rate=Decimal("0"))
    north = operator_create(code=f"{root.code}-north", name="North reseller", parent=root, customer_id_prefix="NR")
    other = make_operator(vat_rate=Decimal("0"))
    packages = {label: _seed(operator) for label, operator in (("root", root), ("north", north), ("other", other))}
    root_owner = staff_create(operator=root, username="walls-root-owner", password=PASSWORD, role="owner").user
    north_owner = staff_create(operator=north, username="walls-north-owner", password=PASSWORD, role="owner").user
    staff_create(operator=other, username="walls-other-owner", password=PASSWORD, role="owner")
    superuser = User.objects.create_superuser("walls-root", "root@example.net", PASSWORD)
    return Walls(root, north, other, root_owner, north_owner, superuser, packages)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _foreign_row(model: type[models.Model], viewer: Staff) -> models.Model | None:
    """A row of `model` outside the viewer's operator subtree, where the model has one."""
    rows = model._base_manager.order_by("pk")
    fields = {field.name: field for field in model._meta.get_fields()}
    outside = viewer.operator.path
    if model is Operator:
        rows = rows.exclude(path__startswith=outside)
    elif "operator" in fields and fields["operator"].related_model is Operator:
        rows = rows.exclude(operator__path__startswith=outside)
    elif "subscriber" in fields:
        rows = rows.exclude(subscriber__operator__path__startswith=outside)
    elif model is User:
        rows = rows.exclude(pk=viewer.user_id)
    return rows.first()


def _stored(row: models.Model) -> dict[str, Any] | None:
    return type(row)._base_manager.filter(pk=row.pk).values().first()


def _tampered(row: models.Model, home: Operator) -> dict[str, Any]:
    """What an intruder would post: the row moved to the intruder's operator, its texts and amounts
    rewritten, its flags flipped."""
    data: dict[str, Any] = {}
    for field in row._meta.concrete_fields:
        if field.primary_key:
            continue
        value = field.value_from_object(row)
        if isinstance(field, models.ForeignKey) and field.related_model is Operator:
            value = home.pk
        elif isinstance(field, models.CharField | models.TextField) and not field.choices:
            value = "tampered"
        elif isinstance(field, models.DecimalField):
            value = "1.00"
        elif isinstance(field, models.BooleanField):
            value = not value
        if isinstance(field, models.BooleanField):
            if value:
                data[field.name] = "on"
            continue
        if isinstance(field, models.JSONField):
            value = json.dumps(value)
        data[field.name] = "" if value is None else str(value)
    return data


def _refused(response: Any) -> bool:
    """Sent to the admin's login page (or refused outright), never a page of data."""
    if response.status_code == 403:
        return True
    return response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("login", ["north_owner", "root_owner"])
def test_operator_staff_get_nothing_from_any_admin_page(walls: Walls, login: str) -> None:
    user: User = getattr(walls, login)
    viewer = Staff.objects.select_related("operator").get(user=user)
    client = _client(user)
    registry = admin.site._registry
    assert {Package, Staff, Operator, Zone} <= set(registry)
    failures: list[str] = []

    for url in (reverse("admin:index"), reverse("admin:password_change"), "/admin/catalog/"):
        if not _refused(client.get(url)):
            failures.append(f"GET {url}")

    for model in registry:
        count_before = model._base_manager.count()
        for view in ("changelist", "add"):
            url = _url(model, view)
            if not _refused(client.get(url)):
                failures.append(f"GET {url}")
        row = _foreign_row(model, viewer)
        if row is not None:
            before = _stored(row)
            for view in ("change", "delete", "history"):
                url = _url(model, view, row.pk)
                if not _refused(client.get(url)):
                    failures.append(f"GET {url}")
            change_url = _url(model, "change", row.pk)
            if not _refused(client.post(change_url, _tampered(row, viewer.operator))):
                failures.append(f"POST {change_url}")
            delete_url = _url(model, "delete", row.pk)
            if not _refused(client.post(delete_url, {"post": "yes"})):
                failures.append(f"POST {delete_url}")
            if _stored(row) != before:
                failures.append(f"{model._meta.label} #{row.pk} changed")
            add_url = _url(model, "add")
            if not _refused(client.post(add_url, _tampered(row, viewer.operator))):
                failures.append(f"POST {add_url}")
        if model._base_manager.count() != count_before:
            failures.append(f"{model._meta.label}: rows added or deleted")

    assert failures == []


def test_a_reseller_cannot_move_its_own_staff_row_to_the_root(walls: Walls) -> None:
    """The attack of the issue: a reseller's owner edits its Staff row to work for the root ISP."""
    own = Staff.objects.get(user=walls.north_owner)
    client = _client(walls.north_owner)
    response = client.post(
        _url(Staff, "change", own.pk), {"user": own.user_id, "operator": walls.root.pk, "role": "owner"}
    )
    assert _refused(response)
    own.refresh_from_db()
    assert own.operator == walls.north
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


def test_staff_cannot_sign_in_to_the_admin(walls: Walls) -> None:
    client = Client()
    response = client.post(reverse("admin:login"), {"username": "walls-root-owner", "password": PASSWORD})
    assert response.status_code == 200  # the form again, with its error
    assert "_auth_user_id" not in client.session
    assert _refused(client.get(_url(Package, "changelist")))

    signed_in = client.post(reverse("admin:login"), {"username": "walls-root", "password": PASSWORD})
    assert signed_in.status_code == 302 and client.session["_auth_user_id"] == str(walls.superuser.pk)


def test_an_inactive_superuser_is_refused(walls: Walls) -> None:
    client = _client(walls.superuser)
    User.objects.filter(pk=walls.superuser.pk).update(is_active=False)
    assert _refused(client.get(reverse("admin:index")))


def test_a_superuser_still_has_every_changelist(walls: Walls) -> None:
    client = _client(walls.superuser)
    answers = {model._meta.label: client.get(_url(model, "changelist")).status_code for model in admin.site._registry}
    assert answers == dict.fromkeys(answers, 200)
    assert client.get(reverse("admin:index")).status_code == 200


def test_every_admin_that_can_write_is_audited(walls: Walls) -> None:
    request = RequestFactory().get("/admin/")
    request.user = walls.superuser
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_config is not None
        and model._meta.app_config.name.startswith("sonjog.")
        and not isinstance(model_admin, AuditedAdmin)
        and (
            model_admin.has_add_permission(request)
            or model_admin.has_change_permission(request)
            or model_admin.has_delete_permission(request)
        )
    ]
    assert unaudited == []


def _change_form_data(model_admin: Any, obj: models.Model, user: User) -> dict[str, Any]:
    """The change form as the admin renders it for `obj`, ready to post back."""
    request = RequestFactory().get("/admin/")
    request.user = user
    form = model_admin.get_form(request, obj, change=True)(instance=obj)
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, BooleanFormField):
            if value:
                data[name] = "on"
        elif isinstance(field, MultipleChoiceField) or isinstance(value, list):
            data[name] = value
        else:
            data[name] = "" if value is None else value
    return data


def test_a_superusers_price_change_is_audited_with_before_and_after(walls: Walls) -> None:
    package = walls.packages["other"]
    client = _client(walls.superuser)
    data = _change_form_data(admin.site._registry[Package], package, walls.superuser)
    data["price"] = "1.00"

    response = client.post(_url(Package, "change", package.pk), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    package.refresh_from_db()
    assert package.price == Decimal("1.00")
    event = AuditEvent.objects.get(action="admin.change")
    assert (event.operator, event.actor) == (walls.other, walls.superuser)
    assert event.detail["model"] == "catalog.package" and event.detail["object_id"] == package.pk
    assert event.detail["before"] == {"price": "500.00"}
    assert event.detail["after"] == {"price": "1.00"}


def test_a_superusers_delete_is_audited_with_what_was_deleted(walls: Walls) -> None:
    zone = Zone.objects.create(operator=walls.north, name="Empty zone")
    client = _client(walls.superuser)

    response = client.post(_url(Zone, "delete", zone.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Zone.objects.filter(pk=zone.pk).exists()
    event = AuditEvent.objects.get(action="admin.delete")
    assert (event.operator, event.actor) == (walls.north, walls.superuser)
    assert event.detail["before"]["name"] == "Empty zone" and event.detail["after"] == {}


def test_a_superusers_template_save_through_its_service_is_audited(walls: Walls) -> None:
    from sonjog.notifications.models import MessageTemplate

    template = MessageTemplate.objects.get(operator=walls.north, event="welcome")
    client = _client(walls.superuser)
    data = _change_form_data(admin.site._registry[MessageTemplate], template, walls.superuser)
    data["body"] = "Welcome, {{ name }}"

    assert client.post(_url(MessageTemplate, "change", template.pk), data).status_code == 302

    admin_event = AuditEvent.objects.get(action="admin.change")
    assert admin_event.detail["before"] == {"body": "Hi {{ name }}"}
    assert admin_event.detail["after"] == {"body": "Welcome, {{ name }}"}
    service_event = AuditEvent.objects.filter(action="notifications.template_save").latest("pk")
    assert service_event.actor == walls.superuser
    assert service_event.detail["before"] == {"body": "Hi {{ name }}"}


def test_an_admin_cannot_override_the_audited_hooks() -> None:
    with pytest.raises(TypeError, match="skip the audit"):

        class Careless(AuditedAdmin):
            def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
                obj.save()


def test_staff_logins_are_not_admin_staff(walls: Walls) -> None:
    made = staff_create(operator=walls.north, username="walls-clerk", password=PASSWORD, role="billing_clerk")
    assert made.user.is_staff is False
    assert User.objects.get(pk=walls.north_owner.pk).is_staff is False


def test_the_migration_takes_the_admin_from_existing_staff(walls: Walls) -> None:
    User.objects.filter(pk__in=[walls.root_owner.pk, walls.north_owner.pk]).update(is_staff=True)
    staff_superuser = staff_create(operator=walls.root, username="walls-boss", password=PASSWORD, role="owner").user
    User.objects.filter(pk=staff_superuser.pk).update(is_staff=True, is_superuser=True)
    plain = User.objects.create_user("walls-plain", password=PASSWORD, is_staff=True)  # no Staff row

    migration = importlib.import_module("sonjog.operators.migrations.0002_staff_not_admin")
    migration.staff_not_admin(django_apps, None)

    flags = dict(
        User.objects.filter(
            pk__in=[walls.root_owner.pk, walls.north_owner.pk, staff_superuser.pk, plain.pk]
        ).values_list("username", "is_staff")
    )
    assert flags == {"walls-root-owner": False, "walls-north-owner": False, "walls-boss": True, "walls-plain": True}


def test_a_role_changed_in_the_admin_carries_its_permissions(walls: Walls) -> None:
    from sonjog.operators.models import Staff

    clerk = staff_create(operator=walls.north, username="walls-clerk", password="x-long-pass-1", role="collector")
    assert not clerk.user.has_perm("billing.add_adjustment")
    client = _client(walls.superuser)
    data = _change_form_data(admin.site._registry[Staff], clerk, walls.superuser)
    data["role"] = "billing_clerk"
    response = client.post(_url(Staff, "change", clerk.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    user = type(clerk.user).objects.get(pk=clerk.user.pk)  # a fresh object: permissions are cached
    assert user.has_perm("billing.add_adjustment")
    # Exactly the group of the operator's own billing clerk role (ADR 0013).
    assert list(user.groups.values_list("name", flat=True)) == [f"role:{walls.north.pk}:billing_clerk"]
    event = AuditEvent.objects.get(action="admin.change", detail__model="operators.staff")
    assert event.detail["before"] == {"role": "collector"} and event.detail["after"] == {"role": "billing_clerk"}


def test_a_superuser_cannot_change_billing_settings_in_the_admin(walls: Walls) -> None:
    # They change from the next period through the Operators page (ADR 0011); the admin shows them only.
    operator = walls.other
    client = _client(walls.superuser)
    data = _change_form_data(admin.site._registry[Operator], operator, walls.superuser)
    data.update({"billing_mode": "prepaid", "due_days": "30", "name": "Renamed ISP"})

    response = client.post(_url(Operator, "change", operator.pk), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    operator.refresh_from_db()
    assert operator.name == "Renamed ISP"
    assert (operator.billing_mode, operator.due_days) != ("prepaid", 30)
