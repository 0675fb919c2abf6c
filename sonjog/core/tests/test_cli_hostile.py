"""Every `sonjog` command given hostile arguments: exit code 2, one line, no traceback, nothing written.

In-process through call_command (a CommandError with returncode 2 and a one-line message), and a few
as real `sonjog` processes (exit status 2, exactly one line on stderr, nothing on stdout)."""

from __future__ import annotations

import io
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonjog.billing.models import Payment
from sonjog.conftest import make_operator, make_package, make_subscriber, process_env
from sonjog.core.tests.hostile import hostile_text, money_snapshot
from sonjog.customers.models import Subscriber
from sonjog.network.models import OutboxCommand
from sonjog.operators.models import Operator

CID = "{cid}"  # the fixture subscriber's customer ID
LONG = "x" * 10_000
HUGE = "9" * 20
PAY = ["--subscriber", CID, "--method", "cash"]
SETUP = [
    "--no-input",
    *["--name", "Hostile ISP", "--code", "hostile", "--owner-username", "hostile-owner"],
    *["--owner-password", "a-long-enough-pass-1"],
]

# Arguments each command must refuse before doing anything. Commands that run for long (demo, worker,
# bench, seed, the emulator) appear here only with arguments that can never be accepted.
REFUSED: dict[str, list[list[str]]] = {
    "record_payment": [
        [*PAY, "--amount", "1e20"],
        [*PAY, "--amount", "100000000000000"],
        [*PAY, "--amount", "1E400"],
        [*PAY, "--amount", "NaN"],
        [*PAY, "--amount", "Infinity"],
        [*PAY, "--amount", "-0"],
        [*PAY, "--amount", HUGE],
        [*PAY, "--amount", "1.001"],
        [*PAY, "--amount", "0x10"],
        [*PAY, "--amount", "\x00"],
        [*PAY, "--amount", "10", "--reference", LONG],
        [*PAY, "--amount", "10", "--reference", "\x00"],
        [*PAY, "--amount", "10", "--reference", "first\nsecond"],
        ["--subscriber", "\x00", "--amount", "10", "--method", "cash"],
        ["--subscriber", LONG, "--amount", "10", "--method", "cash"],
        ["--subscriber", CID, "--amount", "10", "--method", "\x00"],
        ["--subscriber", CID, "--amount", "10"],
        [*PAY, "--amount", "10", "--no-such-option"],
    ],
    "generate_bills": [
        ["--period", "9999-12"],
        ["--period", "1899-12"],
        ["--period", "2101-01"],
        ["--period", "0000-00"],
        ["--period", "\x00"],
        ["--period", LONG],
        ["--period", "2027-07", "--operator", "\x00"],
        ["--period", "2027-07", "--operator", LONG],
    ],
    "statement": [["\x00"], [LONG], [], [CID, "extra"]],
    "float_topup": [
        [],
        ["--amount", "10"],
        ["--operator", "nowhere"],
        ["--operator", "\x00", "--amount", "10"],
        ["--operator", LONG, "--amount", "10"],
        ["--operator", "nowhere", "--amount", "10"],
        ["--operator", "nowhere", "--amount", "1e20"],
        ["--operator", "nowhere", "--amount", "NaN"],
        ["--operator", "nowhere", "--amount", "-0"],
        ["--operator", "nowhere", "--amount", "-5"],
        ["--operator", "nowhere", "--amount", "1.001"],
        ["--operator", "nowhere", "--amount", HUGE],
        ["--operator", "nowhere", "--amount", "10", "--method", "cheque"],
        ["--operator", "nowhere", "--amount", "10", "--method", "\x00"],
        ["--operator", "nowhere", "--amount", "10", "--reference", LONG],
        ["--operator", "nowhere", "--amount", "10", "--reference", "first\nsecond"],
        ["--operator", "nowhere", "--amount", "10", "--note", LONG],
        ["--operator", "nowhere", "--amount", "10", "--no-such-option"],
    ],
    "float_statement": [["\x00"], [LONG], [], ["nowhere"], ["nowhere", "extra"]],
    "export": [
        [],
        ["\x00"],
        [LONG],
        ["/etc/hostname"],
        ["/etc/hostname/below"],
        ["/tmp/sonjog-hostile-export", "--operator", "\x00"],
        ["/tmp/sonjog-hostile-export", "--operator", "nowhere"],
        ["/tmp/sonjog-hostile-export", "--only", "passwords"],
        ["/tmp/sonjog-hostile-export", "--format", "pdf"],
    ],
    "import": [
        [],
        ["subscribers"],
        ["nothing", "file.csv"],
        ["subscribers", "\x00", "--operator", "nowhere"],
        ["subscribers", LONG, "--operator", "nowhere"],
        ["subscribers", "/etc/hostname"],
        ["subscribers", "/etc/hostname", "--operator", "\x00"],
        ["subscribers", "/etc/hostname", "--operator", LONG],
        ["mikrotik", "\x00", "--operator", "nowhere"],
        ["undo", "\x00"],
        ["undo", HUGE],
        ["undo", "-1"],
        ["undo", "²"],
    ],
    "ledger_verify": [["--no-such-option"], ["extra"]],
    "seed": [
        ["--subscribers", HUGE, "--months", "1"],
        ["--subscribers", "1e20", "--months", "1"],
        ["--subscribers", "NaN", "--months", "1"],
        ["--subscribers", "0", "--months", "1"],
        ["--subscribers", "1", "--months", "121"],
        ["--subscribers", "1", "--months", "1", "--random-seed", "-1"],
    ],
    "bench": [
        ["--subscribers", HUGE],
        ["--subscribers", "99"],
        ["--months", "1"],
        ["--send-sample", "1e20"],
        ["--send-workers", "0"],
        ["--network-workers", "99999999999"],
    ],
    "backup": [["--no-such-option"]],
    "jobs": [["--run", "\x00"], ["--run", LONG], ["--run", "no.such.job"]],
    "restore": [
        ["\x00", "--database", "restored"],
        [LONG, "--database", "restored"],
        ["backup.dump", "--database", "\x00"],
        ["backup.dump", "--database", LONG],
        ["backup.dump"],
    ],
    "network_diff": [["--router", "\x00"], ["--router", LONG]],
    "network_reconcile": [["--router", "\x00"], ["--router", LONG]],
    "router_test": [["\x00"], [LONG], []],
    "portal_redirect": [
        ["--router", "\x00"],
        ["--router", LONG],
        ["--router", "nowhere"],
        ["--router", "nowhere", "--check"],
        ["--check", "extra"],
        ["--no-such-option"],
    ],
    "router_add": [
        [],
        ["\x00", "--operator", "nowhere", "--address", "127.0.0.1"],
        [LONG, "--operator", "nowhere", "--address", "127.0.0.1"],
        ["r", "--operator", "\x00", "--address", "127.0.0.1"],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1"],
        ["r", "--operator", "nowhere", "--address", "\x00"],
        ["r", "--operator", "nowhere", "--address", HUGE],
        ["r", "--operator", "nowhere", "--address", LONG],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1", "--port", HUGE],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1", "--port", "0"],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1", "--port", "1e20"],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1", "--user", LONG],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1", "--zone", "\x00"],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1", "--driver", "\x00"],
        ["r", "--operator", "nowhere", "--address", "127.0.0.1", "--coa-port", "-1"],
    ],
    "outbox": [
        ["--limit", HUGE],
        ["--limit", "0"],
        ["--limit", "-1"],
        ["--limit", "1e20"],
        ["--retry", HUGE],
        ["--retry", "1e20"],
        ["--status", "\x00"],
    ],
    "routeros_emulator": [
        ["--port", HUGE],
        ["--port", "70000"],
        ["--port", "1e20"],
        ["--tls-port", "-1"],
        ["--user", "\x00"],
        ["--password", LONG],
        ["--state", "\x00"],
        ["--identity", LONG],
    ],
    "sms_segments": [["\x00"], [LONG], ["\ud800"], []],
    "demo": [
        ["--port", "99999999999"],
        ["--port", "0"],
        ["--port", "NaN"],
        ["--host", "\x00"],
        ["--host", HUGE],
        ["--host", LONG],
    ],
    "setup": [
        ["--no-input"],
        ["--no-input", "--name", "ISP", "--code", "isp", "--owner-username", "o"],
        [*SETUP, "--name", "\x00"],
        [*SETUP, "--code", LONG],
        [*SETUP, "--currency", "\x00"],
        [*SETUP, "--time-zone", "Mars/Olympus"],
        [*SETUP, "--customer-id-digits", "1e20"],
        [*SETUP, "--billing-mode", "sometimes"],
        [*SETUP, "--billing-day", "NaN"],
        [*SETUP, "--due-days", "-1"],
        [*SETUP, "--vat-rate", "Infinity"],
        [*SETUP, "--vat-rate", HUGE],
        [*SETUP, "--address", LONG],
        [*SETUP, "--owner-email", "\x00"],
    ],
    "staff_create": [
        [],
        ["--operator", "\x00", "--username", "x", "--role", "support"],
        ["--operator", LONG, "--username", "x", "--role", "support"],
        ["--operator", "nowhere", "--username", "x", "--role", "support"],
        ["--operator", "nowhere", "--username", LONG, "--role", "support"],
        ["--operator", "nowhere", "--username", "x\x00", "--role", "support"],
        ["--operator", "nowhere", "--username", "x", "--role", LONG],
        ["--operator", "nowhere", "--username", "x", "--role", "support", "--password", LONG],
        ["--operator", "nowhere", "--username", "x", "--role", "support", "--phone", LONG],
    ],
    "worker": [
        ["--concurrency", "99999999999"],
        ["--concurrency", "0"],
        ["--concurrency", "1e20"],
        ["--queues", "\x00"],
        ["--queues", LONG],
    ],
}


def sonjog_commands() -> list[str]:
    return sorted(name for name, app in get_commands().items() if str(app).startswith("sonjog."))


@pytest.fixture
def customer(db: None) -> Subscriber:
    operator = make_operator(vat_rate=Decimal("0"), customer_id_prefix="HOS")
    return make_subscriber(operator, make_package(operator, "1000.00"), activation_date=None)


def _written() -> dict[str, Any]:
    return {
        **money_snapshot(),
        "operators": Operator.objects.count(),
        "subscribers": Subscriber.objects.count(),
        "outbox": OutboxCommand.objects.count(),
    }


def _refused(command: str, args: list[str]) -> str:
    """Run the command in-process; it must refuse with exit code 2 and one line, printing nothing."""
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=out, stderr=io.StringIO())
    message = str(caught.value)
    assert caught.value.returncode == 2, (command, args, message)
    assert message and "\n" not in message and "Traceback" not in message, message
    assert out.getvalue() == ""
    return message


def test_every_sonjog_command_has_hostile_cases():
    assert sonjog_commands() == sorted(REFUSED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "args"),
    [(command, args) for command, cases in REFUSED.items() for args in cases],
    ids=lambda value: (
        value if isinstance(value, str) else " ".join(arg[:12].encode("unicode_escape").decode() for arg in value)
    ),
)
def test_hostile_arguments_are_refused_with_one_line_and_nothing_written(customer, command, args):
    before = _written()
    _refused(command, [arg.replace(CID, customer.customer_id) for arg in args])
    assert _written() == before


@pytest.mark.django_db
def test_the_reported_record_payment_inputs_name_the_problem(customer):
    base = ["--subscriber", customer.customer_id, "--method", "cash"]
    assert "not an amount of money" in _refused("record_payment", [*base, "--amount", "1e20"])
    assert "too large" in _refused("record_payment", [*base, "--amount", "100000000000000"])
    assert "at most 100 characters" in _refused("record_payment", [*base, "--amount", "10", "--reference", LONG])
    # Given as call_command keywords (which skip argparse), the same bounds apply.
    with pytest.raises(CommandError) as caught:
        call_command(
            "record_payment", subscriber=customer.customer_id, amount="1e20", method="cash", stdout=io.StringIO()
        )
    assert caught.value.returncode == 2
    with pytest.raises(CommandError) as caught:
        call_command(
            "record_payment",
            subscriber=customer.customer_id,
            amount="10",
            method="cash",
            reference=LONG,
            stdout=io.StringIO(),
        )
    assert caught.value.returncode == 2 and Payment.objects.count() == 0


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=hostile_text, reference=st.one_of(st.just(""), hostile_text))
def test_record_payment_takes_a_valid_payment_or_refuses_cleanly(customer, amount, reference):
    before = _written()
    args = ["--subscriber", customer.customer_id, "--amount", amount, "--method", "cash", "--reference", reference]
    try:
        call_command("record_payment", *args, "--confirm-duplicate", stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as error:
        assert error.returncode == 2 and "\n" not in str(error), (amount, reference, str(error))
        assert _written() == before
    else:
        payment = Payment.objects.order_by("-pk").first()
        assert payment is not None and payment.amount > 0 and len(payment.reference) <= 100


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    command=st.sampled_from(["statement", "generate_bills", "router_test", "network_diff", "jobs"]), text=hostile_text
)
def test_text_arguments_are_answered_or_refused_cleanly(customer, command, text):
    args = {
        "statement": [text],
        "generate_bills": ["--period", text, "--operator", customer.operator.code],
        "router_test": [text],
        "network_diff": ["--router", text],
        "jobs": ["--run", text],
    }[command]
    before = _written()
    try:
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as error:
        assert error.returncode == 2 and "\n" not in str(error), (command, text, str(error))
        assert _written() == before


@pytest.mark.django_db(transaction=True)
def test_real_processes_exit_2_with_one_line_and_no_traceback():
    operator = make_operator(vat_rate=Decimal("0"))
    subscriber = make_subscriber(operator, make_package(operator, "700.00"), activation_date=None)
    sonjog = [sys.executable, "-m", "sonjog.cli"]
    pay = [*sonjog, "record_payment", "--subscriber", subscriber.customer_id, "--method", "cash"]
    before = _written()
    for argv in (
        [*pay, "--amount", "1e20"],
        [*pay, "--amount", "100000000000000"],
        [*pay, "--amount", "10", "--reference", LONG],
        [*pay, "--amount", "10", "--no-such-option"],
        [*sonjog, "worker", "--concurrency", "99999999999"],
    ):
        done = subprocess.run(argv, env=process_env(), capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (argv[3:], done.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("CommandError: "), done.stderr[-2000:]
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert _written() == before
