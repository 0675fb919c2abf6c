"""`sonjog staff_create`: a staff login from the command line; a generated password is printed once;
bad input is one line, exit code 2, and nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory

from sonjog.conftest import make_operator, process_env
from sonjog.core.models import AuditEvent
from sonjog.operators.models import Operator, Staff
from sonjog.operators.services import staff_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def isp() -> Operator:
    return make_operator(vat_rate=Decimal("0"))


def _run(*args: str) -> str:
    out = StringIO()
    call_command("staff_create", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _signs_in(username: str, password: str) -> bool:
    return authenticate(RequestFactory().post("/login/"), username=username, password=password) is not None


def test_a_generated_password_is_printed_once_and_works(isp: Operator) -> None:
    out = _run("--operator", isp.code, "--username", "rahim", "--role", "collector", "--name", "Rahim Uddin")
    lines = out.strip().splitlines()
    assert lines[0] == f"Created rahim (Collector) for {isp.code}"
    password = lines[1].rpartition(": ")[2]
    assert len(password) == 14 and out.count(password) == 1
    staff = Staff.objects.select_related("user").get(user__username="rahim")
    assert staff.operator == isp and staff.role == "collector" and staff.user.get_full_name() == "Rahim Uddin"
    assert _signs_in("rahim", password)
    event = AuditEvent.objects.get(action="staff.create")
    assert password not in json.dumps(event.detail) and event.detail["after"]["role"] == "collector"


def test_a_given_password_and_json(isp: Operator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONJOG_STAFF_PASSWORD", "Karnaphuli-2026")
    out = _run(
        "--operator", isp.code, "--username", "nila", "--role", "support", "--email", "nila@example.net", "--json"
    )
    data = json.loads(out)
    assert data["username"] == "nila" and data["role"] == "support" and data["password"] is None
    assert _signs_in("nila", "Karnaphuli-2026")
    assert User.objects.get(username="nila").email == "nila@example.net"


def test_the_password_from_standard_input(isp: Operator) -> None:
    out = StringIO()
    call_command(
        "staff_create",
        *["--operator", isp.code, "--username", "piped", "--role", "manager", "--password-stdin"],
        stdin=StringIO("Padma-river-2026\n"),
        stdout=out,
    )
    assert "Password" not in out.getvalue() and _signs_in("piped", "Padma-river-2026")
    with pytest.raises(CommandError, match="one way only") as refused:
        call_command(
            "staff_create",
            *["--operator", isp.code, "--username", "twice", "--role", "support"],
            *["--password-stdin", "--password", "Padma-river-2026"],
            stdin=StringIO("x\n"),
            stdout=StringIO(),
        )
    assert refused.value.returncode == 2 and not User.objects.filter(username="twice").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operator", "nowhere", "--username", "x1", "--role", "support"], "no operator with code 'nowhere'"),
        (["--username", "x2", "--role", "support"], "--operator"),
        (["--operator", "{isp}", "--username", "x3", "--role", "accountant"], "unknown role 'accountant'"),
        (["--operator", "{isp}", "--username", "taken", "--role", "support"], "The username 'taken' is taken"),
        (["--operator", "{isp}", "--username", "TAKEN", "--role", "support"], "The username 'TAKEN' is taken"),
        (["--operator", "{isp}", "--username", "x4", "--role", "support", "--password", "short"], "too short"),
        (["--operator", "{isp}", "--username", "x5", "--role", "support", "--password", "password123"], "common"),
        (["--operator", "{isp}", "--username", "bad name!", "--role", "support"], "letters, digits"),
        (["--operator", "{isp}", "--username", "x6", "--role", "support", "--email", "not-mail"], "e-mail"),
        (["--operator", "{isp}", "--username", "x7\x01", "--role", "support"], "--username"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(isp: Operator, args: list[str], message: str) -> None:
    staff_create(operator=isp, username="taken", password="already-here-1", role="support")
    before = (User.objects.count(), Staff.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError) as refused:
        _run(*[each.replace("{isp}", isp.code) for each in args])
    assert refused.value.returncode == 2
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert (User.objects.count(), Staff.objects.count(), AuditEvent.objects.count()) == before


def test_a_deactivated_operator_gets_no_new_staff(isp: Operator) -> None:
    Operator.objects.filter(pk=isp.pk).update(is_active=False)
    with pytest.raises(CommandError, match="deactivated") as refused:
        _run("--operator", isp.code, "--username", "late", "--role", "support")
    assert refused.value.returncode == 2 and not User.objects.filter(username="late").exists()


@pytest.mark.django_db(transaction=True)
def test_the_real_command_line_exits_2_with_one_line_on_stderr() -> None:
    operator = make_operator()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sonjog.cli",
            "staff_create",
            "--operator",
            operator.code,
            "--username",
            "z",
            "--role",
            "x",
        ],
        capture_output=True,
        text=True,
        env=process_env(),
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "CommandError: unknown role 'x'; use one of owner, manager, billing_clerk, collector, network_engineer, "
        "support, reseller_staff"
    ]
    assert not User.objects.filter(username="z").exists()
