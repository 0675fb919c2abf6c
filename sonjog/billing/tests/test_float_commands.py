"""`sonjog float_topup` and `sonjog float_statement`: a top-up printed with its entry and the balance
after; the statement as a table or JSON; bad input refused with exit code 2, one line, nothing written."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sonjog.billing.models import FloatAccount, FloatEntry
from sonjog.billing.services.floats import float_account_open
from sonjog.conftest import make_operator
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create

pytestmark = pytest.mark.django_db
M = Decimal


@pytest.fixture
def reseller(db: None) -> Operator:
    root = make_operator(vat_rate=M("0"))
    reseller = operator_create(code=f"fl-{root.pk}", name="Float reseller", parent=root)
    float_account_open(operator=reseller, credit_limit=M("100.00"))
    return reseller


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=out, stderr=io.StringIO())
    assert caught.value.returncode == 2
    message = str(caught.value)
    assert message and "\n" not in message
    assert out.getvalue() == ""
    return message


def test_a_top_up_prints_its_entry_and_the_balance_after(reseller):
    printed = run("float_topup", "--operator", reseller.code, "--amount", "1500.00", "--note", "June")
    entry = FloatEntry.objects.get(account__operator=reseller)
    assert (entry.kind, entry.amount, entry.method, entry.memo) == ("topup", M("1500.00"), "cash", "June")
    assert f"Float entry {entry.pk}" in printed and "balance 1500.00" in printed
    printed = run(
        "float_topup", "--operator", reseller.code, "--amount", "250.50", "--method", "bkash", "--reference", "TRX-7"
    )
    assert "balance 1750.50" in printed
    assert FloatAccount.objects.get(operator=reseller).balance == M("1750.50")


def test_a_top_up_the_service_refuses_exits_2_and_writes_nothing(reseller):
    assert "reference" in refused("float_topup", "--operator", reseller.code, "--amount", "10", "--method", "bank")
    root = reseller.parent
    assert root is not None
    assert "does not run on a float" in refused("float_topup", "--operator", root.code, "--amount", "10")
    assert "no operator" in refused("float_topup", "--operator", "nowhere", "--amount", "10")
    assert "more than zero" in refused("float_topup", "--operator", reseller.code, "--amount", "0")
    assert not FloatEntry.objects.exists()


def test_the_statement_as_a_table_and_as_json(reseller):
    run("float_topup", "--operator", reseller.code, "--amount", "500.00", "--reference", "R-1")
    run("float_topup", "--operator", reseller.code, "--amount", "200.00", "--method", "nagad", "--reference", "N-2")
    table = run("float_statement", reseller.code).splitlines()
    assert table[0].startswith(reseller.code)
    assert "topup" in table[2] and "500.00" in table[2] and "R-1" in table[2]
    assert "700.00" in table[3] and "N-2" in table[3]
    assert table[-1] == "balance 700.00"
    data = json.loads(run("float_statement", reseller.code, "--json"))
    assert data["operator"] == reseller.code and data["balance"] == "700.00" and data["credit_limit"] == "100.00"
    assert [(each["kind"], each["amount"], each["balance_after"]) for each in data["entries"]] == [
        ("topup", "500.00", "500.00"),
        ("topup", "200.00", "700.00"),
    ]


def test_the_statement_of_an_operator_without_a_float_is_refused(reseller):
    root = reseller.parent
    assert root is not None
    assert "does not run on a float" in refused("float_statement", root.code)
    assert "no operator" in refused("float_statement", "nowhere")
