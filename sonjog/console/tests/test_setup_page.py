"""The first-run page: an empty installation sends the console to /setup/, which creates the root ISP
and its owner and signs the owner in; once any operator exists the page is a 404."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sonjog.conftest import make_operator
from sonjog.core.models import AuditEvent
from sonjog.operators.models import Operator, Staff, StaffRole

pytestmark = pytest.mark.django_db

PASSWORD = "Padma-bridge-2026"


def _form(**changes: str) -> dict[str, Any]:
    data = {
        "code": "dhakanet",
        "name": "DhakaNet Broadband",
        "currency": "BDT",
        "time_zone": "Asia/Dhaka",
        "phone_country": "BD",
        "customer_id_prefix": "DN",
        "customer_id_infix": "",
        "customer_id_postfix": "",
        "customer_id_digits": "5",
        "billing_mode": "monthly",
        "billing_cycle": "calendar",
        "billing_day": "1",
        "due_days": "7",
        "grace_days": "3",
        "vat_rate": "5",
        "vat_inclusive": "inclusive",
        "bin_number": "000123456-0101",
        "document_address": "Dhanmondi, Dhaka",
        "document_phone": "+8809612000000",
        "owner_username": "karim",
        "owner_password": PASSWORD,
        "owner_email": "karim@dhakanet.example",
    }
    data.update(changes)
    return data


def _nothing_written() -> None:
    assert Operator.objects.count() == 0 and User.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_an_empty_installation_sends_the_console_to_the_first_run_page():
    client = Client()
    for url in (reverse("console:dashboard"), reverse("console:subscribers")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == reverse("console:setup")
    page = client.get(reverse("console:setup"))
    assert page.status_code == 200
    body = page.content.decode()
    for name in ("code", "currency", "time_zone", "customer_id_prefix", "billing_cycle", "vat_rate", "owner_password"):
        assert f'name="{name}"' in body
    assert "csrfmiddlewaretoken" in body


def test_the_form_creates_the_root_isp_and_its_owner_and_signs_the_owner_in():
    client = Client()
    response = client.post(reverse("console:setup"), _form(vat_inclusive="exclusive", vat_rate="7.5"))
    assert response.status_code == 302
    assert response["Location"] == reverse("console:dashboard")

    operator = Operator.objects.get()
    assert (operator.code, operator.name, operator.parent_id) == ("dhakanet", "DhakaNet Broadband", None)
    assert operator.vat_rate == Decimal("7.50") and operator.vat_inclusive is False
    assert operator.bin_number == "000123456-0101"
    staff = Staff.objects.select_related("user").get()
    assert staff.role == StaffRole.OWNER and staff.user.username == "karim" and staff.operator == operator
    dashboard = client.get(reverse("console:dashboard"))
    assert dashboard.status_code == 200
    assert "DhakaNet Broadband" in dashboard.content.decode()
    assert client.get(reverse("console:operators")).status_code == 200  # the owner manages operators


def test_once_an_operator_exists_the_page_is_gone():
    make_operator()
    client = Client()
    assert client.get(reverse("console:setup")).status_code == 404
    before = (Operator.objects.count(), User.objects.count())
    assert client.post(reverse("console:setup"), _form()).status_code == 404
    assert (Operator.objects.count(), User.objects.count()) == before
    # The console asks for a sign-in again, not for setup.
    assert client.get(reverse("console:dashboard"))["Location"].startswith(reverse("console:login"))


def test_after_setup_the_page_is_404_even_for_the_owner():
    client = Client()
    client.post(reverse("console:setup"), _form())
    assert client.get(reverse("console:setup")).status_code == 404


def test_the_form_needs_its_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("console:setup"), _form())
    assert response.status_code == 403
    _nothing_written()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("owner_password", "short"),
        ("owner_password", "password"),
        ("owner_username", ""),
        ("code", "Dhaka Net"),
        ("currency", "TAKA"),
        ("time_zone", "Mars/Olympus"),
        ("vat_rate", "100"),
        ("billing_day", "32"),
        ("billing_mode", "weekly"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_writes_nothing(field, value):
    response = Client().post(reverse("console:setup"), _form(**{field: value}))
    assert response.status_code == 400
    assert f'id="field-{field}"' in response.content.decode()
    assert "field-error" in response.content.decode()
    _nothing_written()
    assert "_auth_user_id" not in Client().session


def test_the_password_is_never_sent_back():
    response = Client().post(reverse("console:setup"), _form(vat_rate="100"))
    assert PASSWORD not in response.content.decode()


def test_a_superuser_signed_in_on_an_empty_database_is_sent_to_the_first_run_page():
    admin = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    client.force_login(admin)
    for name in ("dashboard", "subscribers", "import"):
        response = client.get(reverse(f"console:{name}"))
        assert response.status_code == 302 and response["Location"] == reverse("console:setup"), name
    assert client.get(reverse("console:setup")).status_code == 200
