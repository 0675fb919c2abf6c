"""Exports (issue 12: everything an ISP needs to leave): `sonjog export DIR` writes every dataset with
the right rows and headers, CSV reads back with the csv module and XLSX with openpyxl, a reseller's
export holds its own subtree and nothing of its parent's or a sibling's (on the command line and in the
console, whatever operator code is sent), and bad input exits 2 and writes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import AsyncClient, Client
from django.urls import reverse
from openpyxl import load_workbook

from sonjog.billing.models import Invoice, LedgerEntry, Payment
from sonjog.billing.selectors import subscriber_dues
from sonjog.billing.services import invoice_void
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_operator, make_package, make_subscriber, process_env
from sonjog.customers.models import Subscriber, Zone
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_addon_activate
from sonjog.operators.dates import operator_today
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create, staff_create
from sonjog.transfer.exports import DATASETS, subtree_ids

pytestmark = pytest.mark.django_db

HOSTILE_NAME = '=HYPERLINK("http://evil.example","click")'
BANGLA_NAME = "রহিম উদ্দিন"


@dataclass
class Branch:
    operator: Operator
    subscribers: list[Subscriber] = field(default_factory=list)


@dataclass
class Isp:
    root: Branch
    north: Branch
    north_sub: Branch
    south: Branch

    def customer_ids(self, *branches: Branch) -> set[str]:
        return {subscriber.customer_id for branch in branches for subscriber in branch.subscribers}


def _branch(operator: Operator, label: str, names: list[str]) -> Branch:
    package = make_package(operator, "800.00", vat=False, name=f"{label} 10 Mbps")
    zone = Zone.objects.create(operator=operator, name=f"{label} zone")
    today = operator_today(operator)
    branch = Branch(operator)
    for name in names:
        subscriber = make_subscriber(operator, package, today - dt.timedelta(days=40), zone=zone)
        Subscriber.objects.filter(pk=subscriber.pk).update(name=name)
        subscriber.refresh_from_db()
        branch.subscribers.append(subscriber)
    return branch


@pytest.fixture
def isp() -> Isp:
    root = make_operator(vat_rate=Decimal("0"))
    north = operator_create(code=f"{root.code}-north", name="North", parent=root, customer_id_prefix="NR")
    north_sub = operator_create(code=f"{root.code}-north-sub", name="North sub", parent=north, customer_id_prefix="NS")
    south = operator_create(code=f"{root.code}-south", name="South", parent=root, customer_id_prefix="SR")
    tree = Isp(
        _branch(root, "Root", [BANGLA_NAME, HOSTILE_NAME]),
        _branch(north, "North", ["Karim", "Salma"]),
        _branch(north_sub, "North sub", ["Jamal"]),
        _branch(south, "South", ["Rina"]),
    )
    clerk = staff_create(operator=root, username="export-collector", password="x-long-pass-1", role="collector").user
    for branch in (tree.root, tree.north, tree.north_sub, tree.south):
        payment_receive(
            subscriber=branch.subscribers[0],
            amount=Decimal("500.00"),
            method="bkash",
            reference="TX-1",
            collector=clerk,
        )
    addon = addon_create(operator=root, name="Gaming boost", price=Decimal("300.00"), vat_applicable=False)
    subscriber_addon_activate(subscriber=tree.root.subscribers[1], addon=addon)
    invoice = Invoice.objects.filter(bill__subscriber=tree.south.subscribers[0]).earliest("pk")
    invoice_void(invoice=invoice, reason="billed by mistake", move_payments=True)
    return tree


def _export(directory: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("export", str(directory), *args, stdout=out)
    return out.getvalue()


def _csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "a byte-order mark, so Excel reads Bangla as UTF-8"
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def _headers(name: str, operator: Operator) -> list[str]:
    return next(DATASETS[name].rows(operator, descendants=True))


def test_the_cli_writes_every_dataset_with_its_rows_and_header(isp: Isp, tmp_path: Path) -> None:
    target = tmp_path / "out" / "dhakanet"  # created, parents too
    printed = _export(target, "--operator", isp.root.operator.code)
    ids = subtree_ids(isp.root.operator, descendants=True)
    expected = {name: dataset.count(ids) for name, dataset in DATASETS.items()}
    assert expected["subscribers"] == 6 and expected["payments"] == 4 and expected["subscriber_addons"] == 1
    assert expected["ledger"] == LedgerEntry.objects.filter(operator_id__in=ids).count() > 10
    lines = printed.splitlines()
    assert lines == [f"{target / f'{name}.csv'}: {count} rows" for name, count in expected.items()]
    assert sorted(path.name for path in target.iterdir()) == sorted(f"{name}.csv" for name in DATASETS)
    for name, count in expected.items():
        table = _csv(target / f"{name}.csv")
        assert table[0] == _headers(name, isp.root.operator)
        assert len(table) == count + 1

    subscribers = {row[0]: dict(zip(_headers("subscribers", isp.root.operator), row, strict=True)) for row in
                   _csv(target / "subscribers.csv")[1:]}  # fmt: skip
    assert set(subscribers) == isp.customer_ids(isp.root, isp.north, isp.north_sub, isp.south)
    first = isp.root.subscribers[0]
    row = subscribers[first.customer_id]
    assert first.activation_date is not None
    assert row["Name"] == BANGLA_NAME
    assert row["PPPoE username"] == first.pppoe_username
    assert row["Activation date"] == first.activation_date.isoformat()
    assert row["Service intent"] == "Active"
    assert row["Zone"] == "Root zone" and row["Package"] == "Root 10 Mbps"
    dues = subscriber_dues(first.operator_id, [first.pk], operator_today(first.operator))[first.pk]
    assert dues.due > 0 and row["Owes now"] == f"{dues.due:.2f}"  # billing's own figure, two decimals
    # A name a spreadsheet would run as a formula is written as text.
    assert subscribers[isp.root.subscribers[1].customer_id]["Name"] == "'" + HOSTILE_NAME

    payments = _csv(target / "payments.csv")
    header = payments[0]
    paid = dict(zip(header, payments[1], strict=True))
    assert paid["Amount"] == "500.00" and paid["Method"] == "bKash" and paid["Reference"] == "TX-1"
    assert paid["Collector"] == "export-collector" and paid["Reversed"] == "no"
    assert dt.datetime.fromisoformat(paid["Received"])  # ISO, the operator's wall-clock time

    invoices = [dict(zip(_headers("invoices", isp.root.operator), row, strict=True)) for row in
                _csv(target / "invoices.csv")[1:]]  # fmt: skip
    voided = [row for row in invoices if row["Voided"]]
    assert len(voided) == 1 and voided[0]["Customer ID"] == isp.south.subscribers[0].customer_id
    assert voided[0]["Credit note"].startswith("CN-") and voided[0]["Invoice"].startswith("INV-")
    assert all(row["Voided"] == "" and row["Credit note"] == "" for row in invoices if row is not voided[0])
    assert {row["Total"] for row in invoices} >= {"800.00"}

    ledger = [dict(zip(_headers("ledger", isp.root.operator), row, strict=True)) for row in
              _csv(target / "ledger.csv")[1:]]  # fmt: skip
    by_subscriber = sum(Decimal(row["Amount"]) for row in ledger if row["Customer ID"] == first.customer_id)
    assert by_subscriber == dues.due  # the entries add up to what the subscriber owes


def test_xlsx_reads_back_with_openpyxl(isp: Isp, tmp_path: Path) -> None:
    printed = _export(tmp_path, "--format", "xlsx", "--only", "subscribers,payments", "--operator",
                      isp.root.operator.code)  # fmt: skip
    assert printed.splitlines() == [f"{tmp_path / 'subscribers.xlsx'}: 6 rows", f"{tmp_path / 'payments.xlsx'}: 4 rows"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["payments.xlsx", "subscribers.xlsx"]
    workbook = load_workbook(tmp_path / "subscribers.xlsx", read_only=True)
    sheet = workbook.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert header == _headers("subscribers", isp.root.operator)
    assert len(rows) == 7
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    first = isp.root.subscribers[0]
    row = by_id[first.customer_id]
    assert row["Name"] == BANGLA_NAME
    assert row["Activation date"].date() == first.activation_date  # a real date cell
    dues = subscriber_dues(first.operator_id, [first.pk], operator_today(first.operator))[first.pk]
    assert row["Owes now"] == float(dues.due)  # a number, not text
    assert by_id[isp.root.subscribers[1].customer_id]["Name"] == "'" + HOSTILE_NAME
    workbook.close()
    # Cells are formatted the way the files promise: money with two decimals, dates ISO.
    workbook = load_workbook(tmp_path / "subscribers.xlsx")
    sheet = workbook.worksheets[0]
    formats = {header[index]: cell.number_format for index, cell in enumerate(sheet[2])}
    assert formats["Owes now"] == "0.00" and formats["Activation date"] == "yyyy-mm-dd"
    payments = list(load_workbook(tmp_path / "payments.xlsx", read_only=True).worksheets[0].iter_rows(values_only=True))
    assert len(payments) == 5 and payments[1][payments[0].index("Amount")] == 500


def test_a_resellers_export_holds_its_subtree_only(isp: Isp, tmp_path: Path) -> None:
    _export(tmp_path / "north", "--operator", isp.north.operator.code)
    foreign = isp.customer_ids(isp.root, isp.south)
    own = isp.customer_ids(isp.north, isp.north_sub)
    subscribers = {row[0] for row in _csv(tmp_path / "north" / "subscribers.csv")[1:]}
    assert subscribers == own
    for path in (tmp_path / "north").iterdir():
        text = path.read_text(encoding="utf-8-sig")
        assert not any(customer_id in text for customer_id in foreign), path.name
        assert "Root 10 Mbps" not in text and "South 10 Mbps" not in text and "Gaming boost" not in text
    payments = _csv(tmp_path / "north" / "payments.csv")
    assert len(payments) == 3  # header, North's and North sub's

    _export(tmp_path / "north-own", "--operator", isp.north.operator.code, "--own-only", "--only", "subscribers")
    assert {row[0] for row in _csv(tmp_path / "north-own" / "subscribers.csv")[1:]} == isp.customer_ids(isp.north)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--operator", "no-such-isp"], "no operator with code 'no-such-isp'"),
        (["--only", "subscribers,passwords"], "no dataset 'passwords'"),
        (["--format", "pdf"], "invalid choice"),
        (["--operator", "x" * 41], "argument --operator"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(isp: Isp, tmp_path: Path, arguments: list[str], message: str) -> None:
    target = tmp_path / "never"
    with pytest.raises(CommandError) as raised:
        _export(target, *arguments)
    assert raised.value.returncode == 2
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert not target.exists()


def test_a_directory_that_is_a_file_or_cannot_be_made_exits_2(isp: Isp, tmp_path: Path) -> None:
    a_file = tmp_path / "exports"
    a_file.write_text("not a directory")
    for target, message in [
        (a_file, "is a file, not a directory"),
        (a_file / "below", "is a file"),
        (Path("/proc/sonjog-export-test"), "cannot write to"),
    ]:
        with pytest.raises(CommandError) as raised:
            _export(target, "--operator", isp.root.operator.code)
        assert raised.value.returncode == 2 and message in str(raised.value), target
    assert a_file.read_text() == "not a directory"
    assert [path.name for path in tmp_path.iterdir()] == ["exports"]


def test_without_an_operator_the_only_root_is_exported_and_two_roots_need_one(isp: Isp, tmp_path: Path) -> None:
    assert Operator.objects.filter(parent__isnull=True).count() == 1
    _export(tmp_path / "one", "--only", "packages")
    assert len(_csv(tmp_path / "one" / "packages.csv")) == 5
    make_operator()
    with pytest.raises(CommandError, match="more than one root operator"):
        _export(tmp_path / "two", "--only", "packages")
    assert not (tmp_path / "two").exists()


def test_the_real_command_exits_2_with_one_line(isp: Isp, tmp_path: Path) -> None:
    target = tmp_path / "never"
    finished = subprocess.run(
        [str(Path(sys.executable).with_name("sonjog")), "export", str(target), "--only", "ledger,secrets"],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2
    assert finished.stderr.strip().count("\n") == 0 and "no dataset 'secrets'" in finished.stderr
    assert finished.stdout == "" and not target.exists()


# -- the console page -----------------------------------------------------------------------------


def _login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _staff(branch: Branch, role: str) -> User:
    return staff_create(
        operator=branch.operator, username=f"{role}-{branch.operator.code}", password="x-long-pass-1", role=role
    ).user


def _download(client: Client, dataset: str, fmt: str = "csv", operator: str | None = None) -> list[list[str]]:
    url = reverse("console:export_download", args=[dataset, fmt])
    response = client.get(url, {"operator": operator} if operator else {})
    assert response.status_code == 200, response.status_code
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_export_page_lists_what_the_role_may_download(isp: Isp) -> None:
    owner = _login(_staff(isp.root, "owner"))
    page = owner.get(reverse("console:export")).content.decode()
    for name in DATASETS:
        assert f'data-dataset="{name}"' in page
        assert reverse("console:export_download", args=[name, "xlsx"]) in page
    assert reverse("console:export") in page  # the sidebar link
    reseller = _login(_staff(isp.north, "reseller_staff"))
    page = reseller.get(reverse("console:export")).content.decode()
    assert 'data-dataset="payments"' in page and 'data-dataset="ledger"' not in page
    assert reseller.get(reverse("console:export_download", args=["ledger", "csv"])).status_code == 404
    collector = _login(_staff(isp.north, "collector"))
    assert collector.get(reverse("console:export")).status_code == 403
    assert collector.get(reverse("console:export_download", args=["payments", "csv"])).status_code == 403


def test_a_resellers_staff_download_holds_its_subtree_and_no_other_code_opens(isp: Isp) -> None:
    user = _staff(isp.north, "billing_clerk")
    clerk = _login(user)
    rows = _download(clerk, "subscribers")
    assert {row[0] for row in rows[1:]} == isp.customer_ids(isp.north, isp.north_sub)
    allowed = [name for name, dataset in DATASETS.items() if user.has_perm(dataset.permission)]
    assert {"subscribers", "ledger", "invoices", "payments"} <= set(allowed)
    for dataset in allowed:
        text = "\n".join(",".join(row) for row in _download(clerk, dataset))
        assert not any(customer_id in text for customer_id in isp.customer_ids(isp.root, isp.south)), dataset
    # Its own sub-reseller alone: allowed. The parent, a sibling, nonsense: as if they did not exist.
    assert {row[0] for row in _download(clerk, "subscribers", operator=isp.north_sub.operator.code)[1:]} == (
        isp.customer_ids(isp.north_sub)
    )
    url = reverse("console:export_download", args=["subscribers", "csv"])
    for hostile in [isp.root.operator.code, isp.south.operator.code, "../" + isp.root.operator.code, "' OR 1=1 --"]:
        assert clerk.get(url, {"operator": hostile}).status_code == 404, hostile
        assert clerk.get(reverse("console:export"), {"operator": hostile}).status_code == 404, hostile
    for bad in [("subscribers", "pdf"), ("passwords", "csv")]:
        assert clerk.get(reverse("console:export_download", args=bad)).status_code == 404


def test_a_login_that_sees_only_its_own_operator_exports_only_that(isp: Isp) -> None:
    user = staff_create(
        operator=isp.north.operator, username="north-own", password="x-long-pass-1", role="billing_clerk",
        sees_subtree=False,
    ).user  # fmt: skip
    rows = _download(_login(user), "subscribers")
    assert {row[0] for row in rows[1:]} == isp.customer_ids(isp.north)


def test_the_xlsx_download_and_the_asgi_stream(isp: Isp) -> None:
    user = _staff(isp.root, "owner")
    client = _login(user)
    response = client.get(reverse("console:export_download", args=["payments", "xlsx"]))
    assert response.status_code == 200 and response["Content-Disposition"].endswith('.xlsx"')
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    rows = list(load_workbook(io.BytesIO(body), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 1 + Payment.objects.count()

    # Served by the ASGI handler (uvicorn in production) the rows are read in batches, not collected first.
    asgi = AsyncClient()
    asgi.force_login(user)
    streamed = async_to_sync(asgi.get)(reverse("console:export_download", args=["subscribers", "csv"]))
    assert streamed.status_code == 200 and streamed.is_async  # type: ignore[attr-defined]

    async def read() -> bytes:
        return b"".join([part async for part in streamed.streaming_content])  # type: ignore[attr-defined]

    text = async_to_sync(read)().decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(text)))) == 1 + Subscriber.objects.count()


def test_a_table_longer_than_a_sheet_goes_on_in_further_sheets(tmp_path: Path) -> None:
    from sonjog.transfer.writers import write_xlsx

    target = tmp_path / "long.xlsx"
    rows: list[list[Any]] = [["Number", "Amount"], *([index, Decimal("1.50")] for index in range(5))]
    assert write_xlsx(str(target), iter(rows), "Ledger", sheet_rows=3) == 5
    workbook = load_workbook(target, read_only=True)
    sheets = [list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets]
    assert workbook.sheetnames == ["Ledger", "Ledger 2", "Ledger 3"]
    assert [len(sheet) for sheet in sheets] == [3, 3, 2]  # each with the header
    assert all(sheet[0] == ("Number", "Amount") for sheet in sheets)
    assert [row[0] for sheet in sheets for row in sheet[1:]] == [0, 1, 2, 3, 4]
