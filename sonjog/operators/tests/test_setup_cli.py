"""`sonjog setup`: the root ISP and its owner from flags or questions; bad input is one line naming the
flag, exit code 2, and nothing written; a second root only when asked for."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from sonjog.conftest import process_env
from sonjog.core.models import AuditEvent
from sonjog.operators.models import Operator, Staff, StaffRole

pytestmark = pytest.mark.django_db

PASSWORD = "Rupsha-river-2026"

GOOD = {
    "--name": "DhakaNet Broadband",
    "--code": "dhakanet",
    "--currency": "BDT",
    "--time-zone": "Asia/Dhaka",
    "--customer-id-prefix": "DN",
    "--customer-id-infix": "-",
    "--customer-id-postfix": "X",
    "--customer-id-digits": "6",
    "--billing-mode": "cumulative",
    "--billing-cycle": "fixed_day",
    "--billing-day": "10",
    "--due-days": "5",
    "--grace-days": "2",
    "--vat-rate": "7.5",
    "--bin": "000123456-0101",
    "--address": "House 12, Road 5, Dhanmondi, Dhaka",
    "--phone": "+8809612000000",
    "--owner-username": "karim",
    "--owner-password": PASSWORD,
    "--owner-email": "karim@dhakanet.example",
}


def _args(overrides: dict[str, str] | None = None, *extra: str) -> list[str]:
    values = {**GOOD, **(overrides or {})}
    return ["--no-input", *[f"{flag}={value}" for flag, value in values.items()], "--vat-exclusive", *extra]


def _setup(*args: str) -> str:
    out = StringIO()
    call_command("setup", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _nothing_written() -> None:
    assert Operator.objects.count() == 0
    assert User.objects.count() == 0
    assert Staff.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_a_good_run_creates_the_root_isp_with_every_setting_and_its_owner():
    data = json.loads(_setup(*_args(None, "--json")))

    operator = Operator.objects.get()
    assert data == {
        "operator_id": operator.pk,
        "code": "dhakanet",
        "name": "DhakaNet Broadband",
        "currency": "BDT",
        "time_zone": "Asia/Dhaka",
        "owner": "karim",
    }
    assert operator.parent is None and operator.path == f"/{operator.pk}/"
    assert (operator.customer_id_prefix, operator.customer_id_infix, operator.customer_id_postfix) == ("DN", "-", "X")
    assert operator.customer_id_digits == 6
    assert (operator.billing_mode, operator.billing_cycle, operator.billing_day) == ("cumulative", "fixed_day", 10)
    assert (operator.due_days, operator.grace_days) == (5, 2)
    assert operator.vat_rate == Decimal("7.50") and operator.vat_inclusive is False
    assert operator.bin_number == "000123456-0101"
    assert operator.document_address.startswith("House 12") and operator.document_phone == "+8809612000000"
    assert sorted(operator.modules) == sorted(
        ["collection", "billing", "network", "messaging", "catalog", "automation", "resellers"]
    )
    staff = Staff.objects.select_related("user").get()
    assert staff.operator == operator and staff.role == StaffRole.OWNER
    assert staff.user.email == "karim@dhakanet.example" and not staff.user.is_staff
    owner = User.objects.get(username="karim")
    assert owner.check_password(PASSWORD)
    assert owner.has_perm("operators.manage_operators") and owner.has_perm("billing.add_payment")
    assert AuditEvent.objects.filter(operator=operator, action="operator.create").exists()


def test_defaults_fill_what_is_not_given():
    _setup("--no-input", "--name=Small ISP", "--code=small", "--owner-username=rina", f"--owner-password={PASSWORD}")
    operator = Operator.objects.get()
    assert (operator.currency, operator.time_zone, operator.phone_country) == ("BDT", "Asia/Dhaka", "BD")
    assert (operator.billing_mode, operator.billing_cycle, operator.billing_day) == ("monthly", "calendar", 1)
    assert (operator.due_days, operator.grace_days, operator.vat_rate) == (7, 3, Decimal("5.00"))
    assert operator.vat_inclusive is True and operator.customer_id_digits == 5


BAD_FLAGS = [
    ("--name", ""),
    ("--name", "bad\x00name"),
    ("--code", "Dhaka Net"),
    ("--code", "-dhakanet"),
    ("--currency", "TAKA"),
    ("--currency", "৳"),
    ("--time-zone", "Mars/Olympus"),
    ("--phone-country", "BGD"),
    ("--customer-id-prefix", "D N"),
    ("--customer-id-prefix", "ABCDEFGHIJKLM"),
    ("--customer-id-digits", "0"),
    ("--customer-id-digits", "13"),
    ("--customer-id-digits", "five"),
    ("--billing-mode", "weekly"),
    ("--billing-cycle", "fortnightly"),
    ("--billing-day", "0"),
    ("--billing-day", "32"),
    ("--due-days", "-1"),
    ("--due-days", "366"),
    ("--grace-days", "3.5"),
    ("--vat-rate", "100"),
    ("--vat-rate", "-1"),
    ("--vat-rate", "1e1"),
    ("--vat-rate", "NaN"),
    ("--bin", "1" * 21),
    ("--address", "a" * 301),
    ("--phone", "1" * 31),
    ("--owner-username", "bad name"),
    ("--owner-username", ""),
    ("--owner-password", ""),
    ("--owner-password", "short"),
    ("--owner-password", "password"),
    ("--owner-email", "not-an-address"),
]


@pytest.mark.parametrize(("flag", "value"), BAD_FLAGS, ids=[f"{flag}={value[:12]!r}" for flag, value in BAD_FLAGS])
def test_each_bad_flag_exits_2_with_one_line_naming_it_and_writes_nothing(flag, value):
    with pytest.raises(CommandError) as raised:
        _setup(*_args({flag: value}))
    assert raised.value.returncode == 2
    message = str(raised.value)
    assert "\n" not in message
    assert flag in message, message
    _nothing_written()


def test_a_customer_id_format_longer_than_the_column_is_refused():
    with pytest.raises(CommandError) as raised:
        _setup(
            *_args(
                {
                    "--customer-id-prefix": "A" * 12,
                    "--customer-id-infix": "B" * 12,
                    "--customer-id-postfix": "C" * 12,
                    "--customer-id-digits": "6",
                }
            )
        )
    assert raised.value.returncode == 2
    assert "--customer-id-digits" in str(raised.value) and "40" in str(raised.value)
    _nothing_written()


def test_inclusive_and_exclusive_together_are_refused():
    with pytest.raises(CommandError) as raised:
        _setup(*_args(None, "--vat-inclusive"))
    assert raised.value.returncode == 2
    _nothing_written()


def test_no_input_needs_the_name_code_and_owner():
    with pytest.raises(CommandError) as raised:
        _setup("--no-input", "--name=X ISP", "--code=x-isp", "--owner-username=x")
    assert raised.value.returncode == 2
    assert "--owner-password" in str(raised.value)
    _nothing_written()


def test_the_password_may_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SONJOG_OWNER_PASSWORD", PASSWORD)
    _setup("--no-input", "--name=Env ISP", "--code=env-isp", "--owner-username=envowner")
    assert User.objects.get(username="envowner").check_password(PASSWORD)


def test_the_password_may_come_from_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO(f"{PASSWORD}\n"))
    _setup("--no-input", "--name=Stdin ISP", "--code=stdin-isp", "--owner-username=stdin", "--owner-password-stdin")
    assert User.objects.get(username="stdin").check_password(PASSWORD)


def test_a_second_root_is_refused_unless_asked_for():
    _setup(*_args())
    with pytest.raises(CommandError) as raised:
        _setup(*_args({"--code": "second", "--owner-username": "second-owner", "--customer-id-prefix": "SC"}))
    assert raised.value.returncode == 2
    assert "--another-root" in str(raised.value) and "dhakanet" in str(raised.value)
    assert Operator.objects.count() == 1 and User.objects.count() == 1

    _setup(
        *_args({"--code": "second", "--owner-username": "second-owner", "--customer-id-prefix": "SC"}, "--another-root")
    )
    assert Operator.objects.filter(parent__isnull=True).count() == 2
    assert Staff.objects.get(user__username="second-owner").operator.code == "second"


def test_a_taken_code_username_or_id_format_is_refused_and_writes_nothing_more():
    _setup(*_args())
    before = (Operator.objects.count(), User.objects.count(), AuditEvent.objects.count())
    for overrides, flag in (
        ({"--owner-username": "other"}, "--code"),
        ({"--code": "other"}, "--owner-username"),
    ):
        with pytest.raises(CommandError) as raised:
            _setup(*_args(overrides, "--another-root"))
        assert raised.value.returncode == 2 and flag in str(raised.value)
    with pytest.raises(CommandError) as raised:
        _setup(*_args({"--code": "other", "--owner-username": "other"}, "--another-root"))
    assert raised.value.returncode == 2 and "prefix" in str(raised.value)
    assert (Operator.objects.count(), User.objects.count(), AuditEvent.objects.count()) == before


def test_interactive_setup_asks_with_defaults_and_asks_again_for_a_bad_answer(monkeypatch):
    answers = iter(
        [
            "Village Net",  # name
            "village",  # code
            "",  # currency: BDT
            "",  # time zone
            "",  # phone country
            "VN",  # prefix
            "",
            "",
            "",  # digits: 5
            "",  # mode
            "",  # cycle
            "",  # billing day
            "",  # due days
            "",  # grace days
            "150",  # VAT rate: refused, asked again below
            "",  # prices: inclusive
            "",
            "",
            "",
            "rahim",  # owner username
            "",  # owner e-mail
            "0",  # VAT rate again
        ]
    )
    passwords = iter([PASSWORD, PASSWORD])
    asked: list[str] = []

    def answer(prompt: str = "") -> str:
        asked.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", answer)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(passwords))
    err = StringIO()
    call_command("setup", stdout=StringIO(), stderr=err)

    operator = Operator.objects.get()
    assert (operator.name, operator.code, operator.customer_id_prefix) == ("Village Net", "village", "VN")
    assert operator.vat_rate == Decimal("0") and operator.currency == "BDT"
    assert any("[BDT]" in prompt for prompt in asked)
    assert "VAT rate" in err.getvalue()
    assert User.objects.get(username="rahim").check_password(PASSWORD)


@pytest.mark.django_db(transaction=True)
@pytest.mark.real_clock
def test_the_real_command_line_exits_2_with_one_line_on_stderr():
    command = [sys.executable, "-m", "sonjog.cli", "setup", *_args({"--vat-rate": "120"})]
    finished = subprocess.run(command, env=process_env(), capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 2, finished.stderr
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--vat-rate" in lines[0]
    assert Operator.objects.count() == 0

    good = subprocess.run(
        [sys.executable, "-m", "sonjog.cli", "setup", *_args()],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "dhakanet" in good.stdout
    assert Operator.objects.get().code == "dhakanet"
