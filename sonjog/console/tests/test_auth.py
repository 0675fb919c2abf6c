"""Signing in: throttled per username and address, CSRF-protected, "log out everywhere", and the
interface language kept per login."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt, AccessLog
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sonjog.console.models import ConsoleProfile
from sonjog.console.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post(reverse("console:login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_sign_in_and_out(tree):
    user = tree.north.staff["billing_clerk"]
    client = Client()
    response = sign_in(client, user.username, PASSWORD)
    # A billing clerk lands on billing (ADR 0013), and may open the dashboard too.
    assert response.status_code == 302 and response["Location"] == reverse("console:billing")
    assert client.get(reverse("console:dashboard")).status_code == 200
    assert AccessLog.objects.filter(username=user.username).count() == 1
    client.post(reverse("console:logout"))
    assert client.get(reverse("console:dashboard")).status_code == 302


def test_wrong_password_and_logins_without_an_operator(tree, django_user_model):
    client = Client()
    response = sign_in(client, tree.north.staff["collector"].username, "wrong")
    assert response.status_code == 200 and "Wrong username or password" in response.content.decode()
    django_user_model.objects.create_user("stranger", password=PASSWORD)
    response = sign_in(client, "stranger", PASSWORD)
    assert "Wrong username or password" in response.content.decode()
    assert client.get(reverse("console:dashboard")).status_code == 302


def test_five_failures_lock_the_username_from_that_address_for_fifteen_minutes(tree):
    user = tree.north.staff["collector"]
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(5):
            sign_in(client, user.username, "guess")
        locked = sign_in(client, user.username, PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed sign-ins" in locked.content.decode()
        assert client.get(reverse("console:dashboard")).status_code == 302
        # Another address is not locked out, and the count is stored in the database, not a cache.
        assert sign_in(Client(), user.username, PASSWORD, address="10.0.0.2").status_code == 302
        failures = AccessAttempt.objects.filter(username=user.username, ip_address="10.0.0.1")
        assert sum(failures.values_list("failures_since_start", flat=True)) == 5
        clock.shift(dt.timedelta(minutes=16))
        assert sign_in(client, user.username, PASSWORD).status_code == 302


def test_sign_in_needs_the_csrf_token(tree):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("console:login"), {"username": "x", "password": "y"})
    assert response.status_code == 403


def test_log_out_everywhere_ends_every_session(tree):
    user = tree.north.staff["billing_clerk"]
    laptop, phone = Client(), Client()
    sign_in(laptop, user.username, PASSWORD)
    sign_in(phone, user.username, PASSWORD, address="10.0.0.9")
    assert phone.get(reverse("console:subscribers")).status_code == 200
    other = tree.north.staff["collector"]
    bystander = Client()
    sign_in(bystander, other.username, PASSWORD, address="10.0.0.7")
    response = laptop.post(reverse("console:logout_everywhere"))
    assert response.status_code == 302
    from django.contrib.sessions.models import Session

    owners = {s.get_decoded().get("_auth_user_id") for s in Session.objects.all()}
    assert str(user.pk) not in owners and str(other.pk) in owners
    assert bystander.get(reverse("console:subscribers")).status_code == 200
    assert phone.get(reverse("console:subscribers")).status_code == 302
    assert laptop.get(reverse("console:subscribers")).status_code == 302
    # Signing in again works and is not affected by the old epoch.
    sign_in(phone, user.username, PASSWORD, address="10.0.0.9")
    assert phone.get(reverse("console:subscribers")).status_code == 200


def test_language_is_kept_per_login(tree):
    user = tree.north.staff["billing_clerk"]
    client = Client()
    sign_in(client, user.username, PASSWORD)
    client.post(reverse("console:language"), {"language": "bn"})
    assert ConsoleProfile.objects.get(user=user).language == "bn"
    page = client.get(reverse("console:subscribers")).content.decode()
    assert "গ্রাহক" in page
    # A fresh browser picks the login's language up at sign-in.
    other = Client()
    sign_in(other, user.username, PASSWORD)
    assert "গ্রাহক" in other.get(reverse("console:subscribers")).content.decode()
    assert client.post(reverse("console:language"), {"language": "xx"}).status_code == 400


def test_bangla_formats_money_and_dates(tree):
    from decimal import Decimal

    from django.utils import translation

    from sonjog.console import formatting

    with translation.override("bn"):
        assert formatting.money(Decimal("1234567.5")) == "৳১২,৩৪,৫৬৭.৫০"
        assert formatting.money(Decimal("-80")) == "-৳৮০.০০"
        assert formatting.number(25000) == "২৫,০০০"
    with translation.override("en"):
        assert formatting.money(Decimal("1234567.5")) == "৳1,234,567.50"
        assert formatting.money(Decimal("1234567.5"), whole=True) == "৳1,234,568"
