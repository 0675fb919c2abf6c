"""A new ISP from an empty database to its first collected payment, in a real browser (Debian's
Chromium through Playwright), clicking what a person clicks: the first-run setup, a reseller with its
owner, a collector, a router (the RouterOS emulator over TCP), a package whose PPP profile appears on
the router, 1,000 subscribers imported from a CSV whose 10 bad rows the dry run names, the period's
bills generated, a payment taken on a phone, and the router backed up to a local FTP server."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

from sonjog.billing.models import Bill, Payment
from sonjog.billing.terms import operator_today
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.network.models import RouterBackup
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.operators.models import Operator, Staff
from sonjog.transfer.models import ImportBatch

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PASSWORD = "Meghna-bridge-2026"
ROUTER_USER, ROUTER_PASSWORD = "sonjog", "r0uter-pass"
FTP_USER, FTP_PASSWORD = "backups", "ftp-pass-2026"
HEADER = "Customer ID,Name,Mobile,Username,Password,Package,Zone,Connection Date,Status,Due"
PACKAGE = "Home 10 Mbps"


@pytest.fixture
def emulator() -> Iterator[RouterOSEmulator]:
    emu = RouterOSEmulator(username=ROUTER_USER, password=ROUTER_PASSWORD).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def ftp_root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    root = tmp_path / "ftp"
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "auth_failed_timeout": 0})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        yield root, server.address[1]
    finally:
        server.close_all()
        thread.join(timeout=5)


def _rows(broken: bool) -> list[str]:
    rows = []
    for number in range(1, 1001):
        rows.append(
            f"OLD{number:04d},Subscriber {number},0172{number:07d},old{number},pw{number},{PACKAGE},"
            f"Zone {number % 7},{1 + number % 28:02d}/0{1 + number % 9}/2025,active,{number % 5 * 100}"
        )
    if broken:
        # Ten bad rows: three unknown packages, two dates that do not exist, two phones that are not
        # phones, one unknown status, and one phone on two rows (both named).
        for number in (11, 12, 13):
            rows[number - 1] = rows[number - 1].replace(PACKAGE, "Gold 100 Mbps")
        for number in (21, 22):
            rows[number - 1] = re.sub(r"\d\d/0\d/2025", "31/02/2025", rows[number - 1])
        for number in (31, 32):
            rows[number - 1] = rows[number - 1].replace(f"0172{number:07d}", "12345")
        rows[40] = rows[40].replace(",active,", ",on holiday,")
        rows[50] = rows[50].replace("01720000051", "01720000052")
    return rows


def _csv(path: Path, broken: bool) -> Path:
    path.write_text(HEADER + "\n" + "\n".join(_rows(broken)) + "\n", encoding="utf-8")
    return path


def _sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button:has-text('Sign in')")


def test_a_new_isp_is_set_up_brought_in_billed_collected_and_backed_up(
    live_server, browser, emulator, ftp_root, tmp_path
):
    assert not Operator.objects.exists()
    base = live_server.url
    office = browser.new_context(viewport=LAPTOP)
    page = office.new_page()
    page.set_default_timeout(20_000)

    # First run: the root ISP and its owner.
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    page.fill("#id_code", "meghnanet")
    page.fill("#id_name", "MeghnaNet")
    page.fill("#id_customer_id_prefix", "MN")
    page.fill("#id_vat_rate", "0")
    page.fill("#id_owner_username", "owner")
    page.fill("#id_owner_password", PASSWORD)
    page.click("button:has-text('Set up and sign in')")
    expect(page.locator("main h1")).to_have_text("Dashboard")
    root = Operator.objects.get()

    # A reseller and its owner.
    page.click("nav >> text=Operators")
    page.click("text=New reseller")
    page.fill("#id_code", "meghnanet-bhola")
    page.fill("#id_name", "Bhola Link")
    page.fill("#id_customer_id_prefix", "BL")
    page.fill("#id_owner_username", "bhola-owner")
    page.fill("#id_owner_password", PASSWORD)
    page.click("button:has-text('Save')")
    expect(page.locator("tr[data-operator='meghnanet-bhola']")).to_contain_text("Bhola Link")

    # A collector of the ISP, its password read off the screen once.
    page.click("nav >> text=Staff")
    page.click("text=New staff login")
    page.select_option("#id_operator", str(root.pk))
    page.fill("#id_username", "rafiq")
    page.fill("#id_name", "Rafiq Collector")
    page.select_option("#id_role", "collector")
    page.click("main button:has-text('Save')")
    collector_password = page.locator("#shown-password").inner_text().strip()
    page.click("text=Done")

    # The router, tested.
    page.click("nav >> text=Routers")
    page.click("text=New router")
    page.fill("#id_name", "core-1")
    page.fill("#id_address", "127.0.0.1")
    page.fill("#id_api_port", str(emulator.port))
    page.fill("#id_username", ROUTER_USER)
    page.fill("#id_password", ROUTER_PASSWORD)
    page.click("main button:has-text('Save')")
    page.click("button[data-test-router='core-1']")
    expect(page.locator(".alert-success")).to_contain_text("answered in")

    # A package: its PPP profile reaches the router through the worker.
    page.click("nav >> text=Packages")
    page.click("text=New package")
    page.fill("#id_name", PACKAGE)
    page.fill("#id_price", "800")
    _fill_speed(page, "download", 10)
    _fill_speed(page, "upload", 10)
    page.fill("#id_router_profile", "10m")
    page.click("main button:has-text('Save')")
    expect(page.locator("main")).to_contain_text(PACKAGE)
    _work("network")
    assert {row["name"]: row for row in emulator.profiles()}["10m"]["rate-limit"] == "10240k/10240k"

    # 1,000 subscribers from the old system: the dry run names the ten bad rows and writes nothing.
    page.click("nav >> text=Import")
    page.set_input_files("#id_file", str(_csv(tmp_path / "customers.csv", broken=True)))
    page.click("button:has-text('Upload and match columns')")
    expect(page.locator("#import-preview")).to_contain_text("Subscriber 1")
    page.select_option("#id_billing_from", "current")
    page.click("button:has-text('Check every row')")
    expect(page.locator("#dry-run")).to_contain_text("10 of 1,000 rows have problems")
    rows = {int(text) for text in page.locator("#import-problems tbody td:first-child").all_inner_texts()}
    assert rows == {12, 13, 14, 22, 23, 32, 33, 42, 52, 53}  # the header is row 1
    expect(page.locator("button[name=apply]")).to_have_count(0)
    assert not Subscriber.objects.exists()
    page.screenshot(path=str(tmp_path / "dry-run.png"))

    # The file fixed: checked clean, imported by the worker with progress, no SMS, no router change.
    page.click("text=All imports")
    page.set_input_files("#id_file", str(_csv(tmp_path / "customers-fixed.csv", broken=False)))
    page.click("button:has-text('Upload and match columns')")
    page.select_option("#id_billing_from", "current")
    page.click("button:has-text('Check every row')")
    expect(page.locator("#dry-run")).to_contain_text("1,000 subscribers will be imported")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[name=apply]")
    expect(page.locator("#import-progress")).to_be_visible()
    _work("console")
    expect(page.locator("#import-progress")).to_contain_text("1,000 subscribers imported", timeout=20_000)
    assert ImportBatch.objects.get(status="applied").created == 1000
    assert Subscriber.objects.filter(operator=root).count() == 1000

    # This period's bills.
    page.click("nav >> text=Generate invoices")
    page.fill("#id_period", f"{operator_today(root):%Y-%m}")
    page.click("button:has-text('Check')")
    expect(page.locator("#would-create")).to_contain_text(re.compile(r"1,?000 invoices will be created"))
    page.click("button:has-text('Generate now')")
    expect(page.locator("#outcome-created .value")).to_have_text(re.compile(r"1,?000"))
    assert Bill.objects.filter(kind="period").count() == 1000

    # The router backed up to the ISP's FTP server.
    ftp_dir, ftp_port = ftp_root
    page.click("nav >> text=Routers")
    page.click("text=Backup destination")
    page.check("#id_enabled")
    page.fill("#id_host", "127.0.0.1")
    page.fill("#id_port", str(ftp_port))
    page.fill("#id_username", FTP_USER)
    page.fill("#id_password", FTP_PASSWORD)
    page.click("main button:has-text('Save')")
    page.click("button[data-test-destination]")
    expect(page.locator(".alert-success")).to_be_visible()
    page.click("nav >> text=Routers")
    page.click("button[data-backup-router='core-1']")
    expect(page.locator("main")).to_contain_text("core-1")
    backup = RouterBackup.objects.get()
    assert backup.upload_ok is True, backup.upload_error
    assert len(list(ftp_dir.rglob("core-1-*.rsc"))) == 1
    office.close()

    # The collector takes a payment on a phone.
    phone = browser.new_context(viewport=PHONE)
    page = phone.new_page()
    page.set_default_timeout(20_000)
    _sign_in(page, base, "rafiq", collector_password)
    expect(page.locator("main h1")).to_have_text("Take a payment")
    page.fill("#collect-q", "OLD0002")
    first = page.locator("#collect-table tr").first
    expect(first).to_contain_text("Subscriber 2")
    first.locator("text=Take payment").click()
    page.select_option("#id_method", "cash")
    page.click("#payment-form button:has-text('Record payment')")
    expect(page.locator("main")).to_contain_text("Subscriber 2")
    payment = Payment.objects.get()
    assert payment.subscriber.customer_id == "OLD0002" and payment.collector is not None
    assert payment.collector.username == "rafiq"
    assert Staff.objects.filter(operator=root).count() == 2
    phone.close()


def _work(queue: str) -> None:
    """One pass of the worker over a queue, on its own thread: Playwright's sync API keeps an event
    loop running on this one, and the worker runs its own."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            run_worker_cycle(queues=[queue])
        except BaseException as error:  # re-raised on the test's thread
            failures.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive() and not failures, failures


def _fill_speed(page, direction: str, mbps: int) -> None:
    """The package form takes speeds in Mbps (or, in older forms, kbps)."""
    mbps_field = page.locator(f"#id_{direction}_mbps")
    if mbps_field.count():
        mbps_field.fill(str(mbps))
    else:
        page.fill(f"#id_{direction}_kbps", str(mbps * 1024))
