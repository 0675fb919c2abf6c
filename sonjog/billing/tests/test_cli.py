"""Every billing CLI command, in-process (call_command) and as a real `sonjog` process."""

import datetime as dt
import io
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from sonjog.billing.models import LedgerEntry, Payment
from sonjog.conftest import make_operator, make_package, make_subscriber, process_env

D = dt.date


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def run_refused(*args):
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2
    return str(caught.value)


@pytest.fixture
def customer(db, frozen_clock):
    operator = make_operator(vat_rate=Decimal("0"), customer_id_prefix="CLI")
    return make_subscriber(operator, make_package(operator, "1000.00"), activation_date=D(2027, 5, 1))


@pytest.mark.django_db
def test_generate_bills_json_reports_the_five_outcomes(customer, frozen_clock):
    data = json.loads(run("generate_bills", "--period", "2027-07", "--operator", customer.operator.code, "--json"))
    assert data["period"] == "2027-07"
    assert (data["created"], data["backfilled"], data["skipped_existing"], data["skipped_future_joiners"]) == (
        1,
        0,
        0,
        0,
    )
    assert data["errors"] == [] and data["seconds"] >= 0
    again = json.loads(run("generate_bills", "--period", "2027-07", "--operator", customer.operator.code, "--json"))
    assert (again["created"], again["skipped_existing"]) == (0, 1)
    assert "created 0" in run("generate_bills", "--period", "2027-07", "--operator", customer.operator.code)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2027-13"], "YYYY-MM"),
        (["--period", "July"], "YYYY-MM"),
        (["--period", "2027-07", "--operator", "nobody"], "no operator"),
    ],
)
def test_generate_bills_bad_input(customer, args, message):
    before = LedgerEntry.objects.count()
    assert message in run_refused("generate_bills", *args)
    assert LedgerEntry.objects.count() == before


@pytest.mark.django_db
def test_record_payment_and_its_duplicate_guard(customer, frozen_clock):
    data = json.loads(
        run(
            "record_payment",
            "--subscriber",
            customer.customer_id,
            "--amount",
            "1500",
            "--method",
            "cash",
            "--reference",
            "R-1",
            "--json",
        )
    )
    assert (data["amount"], data["balance"], data["reference"]) == ("1500.00", "500.00", "R-1")
    frozen_clock.advance(seconds=2)
    message = run_refused(
        "record_payment", "--subscriber", customer.customer_id, "--amount", "1500", "--method", "cash"
    )
    assert "--confirm-duplicate" in message
    run(
        "record_payment",
        "--subscriber",
        customer.customer_id,
        "--amount",
        "1500",
        "--method",
        "cash",
        "--confirm-duplicate",
    )
    assert Payment.objects.filter(subscriber=customer).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subscriber", "NOPE", "--amount", "10", "--method", "cash"], "no subscriber"),
        (["--subscriber", "{cid}", "--amount", "-10", "--method", "cash"], "more than zero"),
        (["--subscriber", "{cid}", "--amount", "0", "--method", "cash"], "more than zero"),
        (["--subscriber", "{cid}", "--amount", "ten", "--method", "cash"], "not an amount"),
        (["--subscriber", "{cid}", "--amount", "10", "--method", "gold"], "unknown method"),
    ],
)
def test_record_payment_bad_input_writes_nothing(customer, args, message):
    before = LedgerEntry.objects.count()
    args = [a.replace("{cid}", customer.customer_id) for a in args]
    assert message in run_refused("record_payment", *args)
    assert LedgerEntry.objects.count() == before


@pytest.mark.django_db
def test_statement_json_and_table(customer):
    data = json.loads(run("statement", customer.customer_id, "--json"))
    assert [row["period"] for row in data["periods"]] == ["2027-05", "2027-06"]
    assert data["periods"][1] == {
        "period": "2027-06",
        "opening_due": "1000.00",
        "billed": "1000.00",
        "paid": "0.00",
        "adjusted": "0.00",
        "closing_due": "2000.00",
    }
    assert "2027-06" in run("statement", customer.customer_id)
    assert "no subscriber" in run_refused("statement", "NOPE")


@pytest.mark.django_db
def test_ledger_verify_passes_and_fails(customer):
    data = json.loads(run("ledger_verify", "--json"))
    assert data["ok"] is True and data["counts"]["bills"] == 2
    # Break the projection behind the services' back: the verifier must notice.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_statement SET billed = billed + 1, closing_due = closing_due + 1 "
            "WHERE subscriber_id = %s AND period_month = '2027-06-01'",
            [customer.pk],
        )
    with pytest.raises(CommandError) as caught:
        run("ledger_verify")
    assert caught.value.returncode == 1 and "statements_match_ledger" in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_real_process_exit_codes_and_json():
    operator = make_operator(vat_rate=Decimal("0"))
    subscriber = make_subscriber(operator, make_package(operator, "700.00"), activation_date=None)
    sonjog = [sys.executable, "-m", "sonjog.cli"]
    env = process_env()
    bad = subprocess.run([*sonjog, "generate_bills", "--period", "2027-13"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].endswith("is not in the form YYYY-MM (for example 2026-03)")
    bad = subprocess.run(
        [*sonjog, "record_payment", "--subscriber", subscriber.customer_id, "--amount", "-1", "--method", "cash"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    ok = subprocess.run(
        [
            *sonjog,
            "record_payment",
            "--subscriber",
            subscriber.customer_id,
            "--amount",
            "700",
            "--method",
            "nagad",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["balance"] == "-700.00"
    verify = subprocess.run([*sonjog, "ledger_verify", "--json"], env=env, capture_output=True, text=True)
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True
