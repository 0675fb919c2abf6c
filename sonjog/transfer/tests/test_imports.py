"""Importing subscribers: the dry run names every bad row and writes nothing, the import writes the
subscribers with their opening balances and no bills before the next period, and an undo removes a
batch while nothing has touched it (and refuses once something has)."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import Workbook

from sonjog.billing.models import Bill, BillingRun, EntryKind, LedgerEntry
from sonjog.billing.selectors import subscriber_dues
from sonjog.billing.terms import operator_today
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.flows.generation import bills_generate
from sonjog.flows.payments import payment_receive
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create
from sonjog.transfer.exceptions import TransferError
from sonjog.transfer.imports import (
    batch_configure,
    batch_from_file,
    batch_from_router,
    import_apply,
    import_check,
    import_undo,
)
from sonjog.transfer.models import ImportBatch
from sonjog.transfer.tables import parse_date, parse_money

pytestmark = pytest.mark.django_db

ISPBILLS_HEADER = "Customer ID,Name,Mobile,Username,Password,Package,Zone,Connection Date,Status,Due\n"


def _csv(rows: list[str], header: str = ISPBILLS_HEADER) -> bytes:
    return (header + "\n".join(rows) + "\n").encode("utf-8-sig")


QUOTED_OWED = '"1,200"'


def _owes(subscriber: Subscriber, today: dt.date | None = None) -> Decimal:
    day = today or operator_today(subscriber.operator)
    return subscriber_dues(subscriber.operator_id, [subscriber.pk], day)[subscriber.pk].due


def _isp():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, price="800.00", vat=False, name="Home 10 Mbps")
    return operator, package


def test_the_dry_run_names_every_bad_row_and_writes_nothing():
    operator, package = _isp()
    existing = make_subscriber(operator, package, operator_today(operator))
    rows = [
        f"OLD-1,Rahim Uddin,01711000001,rahim,pw1,{package.name},Mirpur,15/03/2024,active,500",
        "OLD-2,Karim,01711000002,karim,pw2,Gold 50 Mbps,Mirpur,2024-03-15,active,0",  # unknown package
        f"OLD-3,Salma,01711000001,salma,pw3,{package.name},,2024-03-15,active,0",  # phone twice in the file
        f"OLD-4,Jamal,01711000004,{existing.pppoe_username},pw4,{package.name},,2024-03-15,active,0",  # user taken
        f"OLD-5,Nasima,01711000005,nasima,pw5,{package.name},,31/02/2024,active,0",  # no such day
        f"OLD-6,Babul,12345,babul,pw6,{package.name},,2024-03-15,active,0",  # not a phone
        f"OLD-7,Rina,01711000007,rina,pw7,{package.name},,2024-03-15,gone fishing,0",  # status
        f"OLD-8,Tania,01711000008,tania,pw8,{package.name},,2024-03-15,active,lots",  # amount
        f"OLD-9,,01711000009,nameless,pw9,{package.name},,2024-03-15,active,0",  # no name
        f"OLD-9,Sumon,01711000010,sumon,pw10,{package.name},,2099-01-01,active,0",  # id twice, future date
    ]
    batch = batch_from_file(operator=operator, file_name="ispbills.csv", data=_csv(rows))
    assert batch.mapping["phone"] == "Mobile" and batch.mapping["opening_balance"] == "Due"
    result = import_check(batch)
    by_row: dict[int, list[str]] = {}
    for problem in result.problems:
        by_row.setdefault(problem.row, []).append(problem.field)
    # Rows 2 and 4 share a phone: both are named, with everything else wrong on the others.
    assert sorted(by_row) == list(range(2, 12))
    assert by_row[2] == ["phone"] and by_row[4] == ["phone"] and by_row[5] == ["pppoe_username"]
    assert by_row[3] == ["package"] and by_row[6] == ["activation_date"] and by_row[7] == ["phone"]
    assert by_row[8] == ["status"] and by_row[9] == ["opening_balance"] and set(by_row[10]) == {"name", "customer_id"}
    assert set(by_row[11]) == {"customer_id", "activation_date"}
    message = next(p.message for p in result.problems if p.row == 3)
    assert "Gold 50 Mbps" in message and package.name in message
    with pytest.raises(TransferError):
        import_apply(batch=batch)
    assert Subscriber.objects.filter(operator=operator).count() == 1
    assert not Zone.objects.filter(operator=operator).exists()


def test_an_import_writes_subscribers_balances_and_bills_only_from_the_next_period():
    operator, package = _isp()
    rows = [
        f"OLD-{n},Subscriber {n},0171100{n:04d},user{n},pw{n},{package.name},{'Mirpur' if n % 2 else 'Uttara'},"
        f"15/03/2024,{'suspended' if n == 3 else 'active'},{QUOTED_OWED if n == 1 else '-300' if n == 2 else '0'}"
        for n in range(1, 21)
    ]
    batch = batch_from_file(operator=operator, file_name="old.csv", data=_csv(rows))
    seen = []
    applied = import_apply(batch=batch, progress=lambda done, total: seen.append((done, total)))
    assert applied.status == ImportBatch.Status.APPLIED and applied.created == 20 and applied.opening_balances == 2
    assert seen[-1] == (20, 20)
    imported = Subscriber.objects.filter(operator=operator).order_by("customer_id")
    assert imported.count() == 20
    first = imported.get(customer_id="OLD-1")
    assert first.pppoe_username == "user1" and first.pppoe_password == "pw1" and first.phone == "+8801711000001"
    assert first.activation_date == dt.date(2024, 3, 15) and first.zone is not None and first.zone.name == "Mirpur"
    assert imported.get(customer_id="OLD-3").service_intent == ServiceIntent.SUSPENDED
    assert set(Zone.objects.filter(operator=operator).values_list("name", flat=True)) == {"Mirpur", "Uttara"}
    # Owed 1,200 is an open item due now; 300 of credit waits for the first bill.
    assert _owes(first) == Decimal("1200.00")
    assert LedgerEntry.objects.filter(kind=EntryKind.OPENING_BALANCE).count() == 2
    # The old system billed this period: generating it bills nobody; the next one bills everyone.
    today = operator_today(operator)
    this_month = today.replace(day=1)
    created = bills_generate(operator=operator, period_month=this_month, trigger=BillingRun.Trigger.STAFF)
    assert created.created == 0 and created.backfilled == 0
    next_month = (this_month + dt.timedelta(days=32)).replace(day=1)
    later = bills_generate(
        operator=operator, period_month=next_month, trigger=BillingRun.Trigger.STAFF, today=next_month
    )
    assert later.created == 20 and later.backfilled == 0
    assert ledger_verify().violations == {}
    credit = imported.get(customer_id="OLD-2")
    assert _owes(credit, next_month) == Decimal("500.00")


def test_undo_removes_an_untouched_batch_and_refuses_a_touched_one():
    operator, package = _isp()
    rows = [f"Subscriber {n},0171200{n:04d},{package.name},{n * 100}" for n in range(1, 6)]
    header = "Name,Phone,Plan,Balance\n"
    batch = import_apply(batch=batch_from_file(operator=operator, file_name="a.csv", data=_csv(rows, header)))
    ids = list(Subscriber.objects.filter(operator=operator).values_list("pk", flat=True))
    assert len(ids) == 5
    assert import_undo(batch=batch) == 5
    assert not Subscriber.objects.filter(pk__in=ids).exists()
    assert not LedgerEntry.objects.filter(subscriber_id__in=ids).exists()
    assert not Bill.objects.filter(subscriber_id__in=ids).exists()
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.UNDONE
    assert ledger_verify().violations == {}
    # The same file imports again after an undo (its phones and user names are free).
    again = import_apply(batch=batch_from_file(operator=operator, file_name="a.csv", data=_csv(rows, header)))
    one = Subscriber.objects.filter(operator=operator).order_by("pk")[0]
    payment_receive(subscriber=one, amount=Decimal("100.00"), method="cash")
    with pytest.raises(TransferError, match="cannot be undone: 1 of its subscribers have a payment"):
        import_undo(batch=again)
    assert Subscriber.objects.filter(operator=operator).count() == 5
    # Outside an undo the ledger stays append-only, opening balances included.
    with pytest.raises(Exception, match="append-only"):
        LedgerEntry.objects.filter(subscriber=one, kind=EntryKind.OPENING_BALANCE).delete()


def test_an_xlsx_with_a_remapped_column_and_balances_as_credit():
    operator, package = _isp()
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Login", "Full name", "Phone number", "Tariff", "Date add", "Account balance", "Contact"])
    sheet.append(["spl-1", "Anwar", "01713000001", package.name, dt.datetime(2023, 1, 31), 250, "01999999999"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    batch = batch_from_file(operator=operator, file_name="splynx.xlsx", data=buffer.getvalue())
    assert batch.mapping["pppoe_username"] == "Login" and batch.mapping["activation_date"] == "Date add"
    batch_configure(batch=batch, mapping={**batch.mapping, "phone": "Contact"}, options={"balance_sign": "credit"})
    import_apply(batch=batch)
    anwar = Subscriber.objects.get(pppoe_username="spl-1")
    assert anwar.phone == "+8801999999999" and anwar.activation_date == dt.date(2023, 1, 31)
    assert LedgerEntry.objects.get(subscriber=anwar).amount == Decimal("-250.00")


def test_a_mapping_without_a_required_field_is_refused():
    operator, package = _isp()
    batch = batch_from_file(
        operator=operator, file_name="a.csv", data=_csv([f"A,01711000001,{package.name}"], "Name,Phone,Plan\n")
    )
    with pytest.raises(TransferError, match="no column is mapped to package"):
        batch_configure(batch=batch, mapping={"name": "Name", "phone": "Phone"}, options={})
    with pytest.raises(TransferError, match="billing_from"):
        batch_configure(batch=batch, mapping=batch.mapping, options={"billing_from": "someday"})


def test_import_from_a_mikrotik_routers_secrets():
    operator, package = _isp()
    emulator = RouterOSEmulator(username="sonjog", password="pw").start()
    try:
        emulator.add_profile(package.router_profile, rate_limit="10240k/10240k")
        emulator.add_secret("mt-rahim", password="s1", profile=package.router_profile, comment="Rahim 01714000001")
        emulator.add_secret("mt-karim", password="s2", profile=package.router_profile, disabled="yes")
        emulator.add_profile("nobody-has-this")
        emulator.add_secret("mt-odd", password="s3", profile="nobody-has-this")
        router = router_create(
            operator=operator,
            name="core",
            address="127.0.0.1",
            api_port=emulator.port,
            username="sonjog",
            password="pw",
        )
        batch = batch_from_router(router=router, operator=operator)
        result = import_check(batch)
        assert [(p.row, p.field) for p in result.problems] == [(4, "package")]
        assert [w.row for w in result.warnings] == [3, 4]
        batch_configure(batch=batch, mapping=batch.mapping, options={})
        # Leave the odd one out of the import by giving it a package: the router is the truth here.
        emulator.execute("/ppp/secret/remove", **{".id": (emulator.secret("mt-odd") or {})[".id"]})
        batch = batch_from_router(router=router, operator=operator)
        import_apply(batch=batch)
    finally:
        emulator.stop()
    rahim = Subscriber.objects.get(pppoe_username="mt-rahim")
    assert rahim.name == "Rahim" and rahim.phone == "+8801714000001" and rahim.pppoe_password == "s1"
    assert rahim.router_id == router.pk
    assert Subscriber.objects.get(pppoe_username="mt-karim").service_intent == ServiceIntent.DISABLED


def test_values_as_people_write_them():
    assert parse_date("15/03/2024") == parse_date("15-03-2024") == parse_date("2024-03-15") == dt.date(2024, 3, 15)
    assert parse_date("১৫/০৩/২০২৪") == dt.date(2024, 3, 15)
    assert parse_date("15 Mar 2024") == parse_date("Mar 15, 2024") == dt.date(2024, 3, 15)
    assert parse_date("29/02/2024") == dt.date(2024, 2, 29)
    with pytest.raises(ValueError, match="not a date in the calendar"):
        parse_date("29/02/2023")
    assert parse_money("৳ 1,200.50") == Decimal("1200.50")
    assert parse_money("(300)") == Decimal("-300.00")
    assert parse_money("৫০০ Tk") == Decimal("500.00")
    with pytest.raises(ValueError, match="two decimal places"):
        parse_money("1.005")


def test_cli_dry_run_json_and_bad_input_exit_2(tmp_path: Path):
    operator, package = _isp()
    good = tmp_path / "good.csv"
    good.write_bytes(_csv([f"A,01711000001,{package.name},100"], "Name,Phone,Plan,Due\n"))
    out = io.StringIO()
    call_command("import", "subscribers", str(good), "--operator", operator.code, "--dry-run", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["would_create"] == 1 and report["problems"] == [] and report["opening_owed"] == "100.00"
    assert not ImportBatch.objects.exists() and not Subscriber.objects.filter(operator=operator).exists()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv(["B,01711000002,Nope,0", f"C,01711000003,{package.name},0"], "Name,Phone,Plan,Due\n"))
    for arguments, message in [
        (["subscribers", str(bad), "--operator", operator.code], "1 of 2 rows have problems"),
        (["subscribers", str(tmp_path / "missing.csv"), "--operator", operator.code], "no file"),
        (["subscribers", str(good), "--operator", "nobody"], "no operator"),
        (["subscribers", str(good), "--operator", operator.code, "--map", "phone"], "FIELD=COLUMN"),
        (["subscribers", str(good), "--operator", operator.code, "--map", "phone=Nope"], "no column 'Nope'"),
        (["mikrotik", "no-such-router", "--operator", operator.code], "no router"),
        (["undo", "999999"], "no import batch"),
    ]:
        with pytest.raises(CommandError, match=message) as raised:
            call_command("import", *arguments, stdout=io.StringIO())
        assert raised.value.returncode == 2
    assert not Subscriber.objects.filter(operator=operator).exists() and not ImportBatch.objects.exists()
    out = io.StringIO()
    call_command("import", "subscribers", str(good), "--operator", operator.code, stdout=out)
    assert "1 subscribers" in out.getvalue()
    batch = ImportBatch.objects.get()
    out = io.StringIO()
    call_command("import", "undo", str(batch.pk), stdout=out)
    assert "1 subscribers removed" in out.getvalue()
