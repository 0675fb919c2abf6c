"""Router backups against the RouterOS emulator over TCP, copied to a real FTP server (pyftpdlib on
127.0.0.1): the upload lands under `<operator code>/<router>-<YYYYmmdd-HHMM>.rsc` in the operator's time,
the newest N are kept, a failing destination records its error and keeps the backup, the destination
test says what is wrong, the daily job goes on past a failing router, and the console's download is
walled to the caller's subtree."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse
from procrastinate.contrib.django import app
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

from sonjog.automation.models import JobRun
from sonjog.console.tests import conftest as console_conftest
from sonjog.console.tests.conftest import Tree, add_staff
from sonjog.core.jobs import run_worker_cycle
from sonjog.core.models import AuditEvent
from sonjog.network.backups import (
    backup_destination_set,
    backup_destination_test,
    router_backup_take,
    routers_backup_all,
)
from sonjog.network.exceptions import BackupDestinationInvalid, BackupFailed
from sonjog.network.models import BackupDestination, RouterBackup
from sonjog.network.services import router_create
from sonjog.network.tests.conftest import ROUTER_PASSWORD, Isp

FTP_USER, FTP_PASSWORD = "backup", "ftp-s3cret"
# 23:55 in Dhaka on 31 December is 17:55 UTC: the file is named by the operator's day and hour.
LATE_NEW_YEARS_EVE = dt.datetime(2026, 12, 31, 17, 55, 30, tzinfo=dt.UTC)


@dataclass
class FtpServer:
    root: Path
    port: int


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    root = tmp_path / "ftp"
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elradfmwMT")
    # No pause after a refused sign-in (pyftpdlib's default is 3 s): the wrong-password tests need none.
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "auth_failed_timeout": 0})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        yield FtpServer(root=root, port=server.address[1])
    finally:
        server.close_all()
        thread.join(timeout=5)


def set_destination(isp: Isp, ftp: FtpServer, **changes: object) -> BackupDestination:
    values: dict[str, object] = {
        "operator": isp.operator,
        "enabled": True,
        "protocol": "ftp",
        "host": "127.0.0.1",
        "port": ftp.port,
        "username": FTP_USER,
        "password": FTP_PASSWORD,
        "directory": "routers",
        "keep_count": 10,
    }
    values.update(changes)
    return backup_destination_set(**values)  # type: ignore[arg-type]


pytestmark = pytest.mark.django_db(transaction=True)

# The console's ISP tree (a root ISP with resellers north and south) and its fast logins.
tree = console_conftest.tree
_fast_password_hashing = console_conftest._fast_password_hashing


def test_a_backup_is_kept_and_uploaded_named_in_the_operators_time(emulator, ftp_server):
    isp = Isp(emulator)
    destination = set_destination(isp, ftp_server)
    assert destination.password == FTP_PASSWORD and FTP_PASSWORD not in destination.password_encrypted
    assert FTP_PASSWORD not in str(AuditEvent.objects.get(action="network.backup_destination.set").detail)

    with time_machine.travel(LATE_NEW_YEARS_EVE, tick=False):
        backup = router_backup_take(router=isp.router, requested_by="test")
    name = f"{isp.router.name}-20261231-2355.rsc"
    assert backup.upload_ok is True and backup.upload_error == ""
    assert backup.upload_path == f"routers/{isp.operator.code}/{name}"
    uploaded = ftp_server.root / "routers" / isp.operator.code / name
    assert uploaded.read_text(encoding="utf-8") == backup.content
    assert "/ppp" in backup.content
    stored = RouterBackup.objects.get()
    assert (stored.upload_ok, stored.upload_path) == (True, backup.upload_path)


def test_only_the_newest_n_backups_of_a_router_are_kept(emulator, ftp_server):
    isp = Isp(emulator)
    other = router_create(
        operator=isp.operator,
        name="edge",
        address="127.0.0.1",
        api_port=emulator.port,
        username="sonjog",
        password=ROUTER_PASSWORD,
    )
    set_destination(isp, ftp_server, enabled=False, keep_count=3)
    router_backup_take(router=other, requested_by="test")
    taken = []
    for minute in range(5):
        with time_machine.travel(LATE_NEW_YEARS_EVE + dt.timedelta(minutes=minute), tick=False):
            taken.append(router_backup_take(router=isp.router, requested_by="test"))
    kept = list(RouterBackup.objects.filter(router=isp.router).order_by("taken_at").values_list("pk", flat=True))
    assert kept == [backup.pk for backup in taken[-3:]]
    assert RouterBackup.objects.filter(router=other).count() == 1  # another router's are its own
    assert all(backup.upload_ok is None for backup in taken)  # no enabled destination: nothing sent

    # Lowering the count prunes at once.
    set_destination(isp, ftp_server, enabled=False, keep_count=1)
    assert list(RouterBackup.objects.filter(router=isp.router).values_list("pk", flat=True)) == [taken[-1].pk]


def test_a_failing_destination_records_the_error_and_keeps_the_backup(emulator, ftp_server):
    isp = Isp(emulator)
    set_destination(isp, ftp_server, password="wrong-password")
    backup = router_backup_take(router=isp.router, requested_by="test")
    stored = RouterBackup.objects.get(pk=backup.pk)
    assert stored.upload_ok is False and "refused the sign-in" in stored.upload_error
    assert stored.content and "/ppp" in stored.content
    assert not any(ftp_server.root.rglob("*.rsc"))

    tested = backup_destination_test(operator=isp.operator)
    assert not tested.ok and "wrong user name or password" in tested.message
    destination = BackupDestination.objects.get(operator=isp.operator)
    assert destination.last_test_ok is False and "refused the sign-in" in destination.last_test_message

    # Given the right password (an empty one keeps the stored one), the test writes and cleans up.
    set_destination(isp, ftp_server, password=FTP_PASSWORD)
    tested = backup_destination_test(operator=isp.operator)
    assert tested.ok, tested.message
    assert (ftp_server.root / "routers" / isp.operator.code).is_dir()
    assert not any((ftp_server.root / "routers" / isp.operator.code).iterdir())
    set_destination(isp, ftp_server, password="", directory="/elsewhere")
    assert BackupDestination.objects.get(operator=isp.operator).password == FTP_PASSWORD
    assert backup_destination_test(operator=isp.operator).ok


def test_a_destination_nobody_listens_on_says_so(emulator, ftp_server):
    isp = Isp(emulator)
    set_destination(isp, ftp_server, port=1)
    tested = backup_destination_test(operator=isp.operator)
    assert not tested.ok and "refused the connection" in tested.message


def test_bad_destination_input_is_refused_and_changes_nothing(emulator, ftp_server, settings):
    isp = Isp(emulator)
    cases: list[tuple[dict[str, object], str]] = [
        ({"host": "not a host!"}, "not a host name"),
        ({"port": 70000}, "1 to 65535"),
        ({"keep_count": 0}, "Keep from 1"),
        ({"directory": "a/../b"}, "'..'"),
        ({"host": ""}, "Name the server"),
        ({"username": ""}, "user name"),
        ({"protocol": "sftp"}, "Unknown protocol"),
    ]
    for changes, words in cases:
        with pytest.raises(BackupDestinationInvalid, match=words):
            set_destination(isp, ftp_server, **changes)
    # An installation that sends only to public addresses refuses loopback.
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    with pytest.raises(BackupDestinationInvalid, match="loopback"):
        set_destination(isp, ftp_server)
    assert not BackupDestination.objects.exists()
    assert not AuditEvent.objects.filter(action="network.backup_destination.set").exists()


def test_the_daily_job_backs_up_each_router_on_its_own(emulator, ftp_server):
    isp = Isp(emulator)
    set_destination(isp, ftp_server)
    silent = router_create(operator=isp.operator, name="silent", address="127.0.0.1", api_port=1, password="x")
    router_create(operator=isp.operator, name="recorded", address="127.0.0.1", record_only=True, password="x")
    router_create(operator=isp.operator, name="radius", address="127.0.0.1", driver="radius")

    outcome = routers_backup_all()
    assert (outcome["routers"], outcome["backed_up"], outcome["uploaded"], outcome["failed"]) == (2, 1, 1, 1)
    assert f"{isp.operator.code}/silent" in outcome["errors"]
    assert RouterBackup.objects.filter(router=isp.router).count() == 1
    assert not RouterBackup.objects.filter(router=silent).exists()
    with pytest.raises(BackupFailed, match="no configuration"):
        router_backup_take(router=isp.router.__class__.objects.get(name="radius"), requested_by="test")

    # Run by a worker as the scheduled job, it is recorded like the other periodic jobs.
    app.tasks["network.backup_routers"].defer(timestamp=0)
    run_worker_cycle(queues=["network"])
    run = JobRun.objects.get(job_name="network.backup_routers")
    assert run.status == JobRun.Status.OK, run.error
    assert (run.outcome["backed_up"], run.outcome["failed"]) == (1, 1)
    assert RouterBackup.objects.filter(router=isp.router).count() == 2


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_console_backs_up_lists_downloads_and_walls_other_operators(tree: Tree, emulator, ftp_server):
    router = router_create(
        operator=tree.south.operator,
        name="south-core",
        address="127.0.0.1",
        api_port=emulator.port,
        username="sonjog",
        password=ROUTER_PASSWORD,
    )
    south_owner = add_staff(tree.south, "owner")
    client = tree.login(south_owner)
    assert b"Back up now" in client.get(reverse("console:routers")).content

    # The destination form page, then its Test button in words.
    page = client.get(reverse("console:backup_destination"))
    assert page.status_code == 200 and b"Backup destination" in page.content
    bad = client.post(reverse("console:backup_destination"), {"keep_count": "5", "enabled": "on", "port": "21"})
    assert bad.status_code == 400 and "host" in bad.context["form"].errors
    saved = client.post(
        reverse("console:backup_destination"),
        {
            "keep_count": "5",
            "enabled": "on",
            "protocol": "ftp",
            "host": "127.0.0.1",
            "port": str(ftp_server.port),
            "username": FTP_USER,
            "password": "wrong",
            "directory": "nightly",
        },
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    failed = client.post(reverse("console:backup_destination_test"), follow=True)
    assert "does not work" in said(failed)[-1] and "wrong user name or password" in said(failed)[-1]
    assert FTP_PASSWORD not in client.get(reverse("console:backup_destination")).content.decode()
    client.post(
        reverse("console:backup_destination"),
        {
            "keep_count": "5",
            "enabled": "on",
            "protocol": "ftp",
            "host": "127.0.0.1",
            "port": str(ftp_server.port),
            "username": FTP_USER,
            "password": FTP_PASSWORD,
            "directory": "nightly",
        },
    )
    assert "wrote a test file" in said(client.post(reverse("console:backup_destination_test")))[-1]

    taken = client.post(reverse("console:router_backup", args=[router.pk]))
    assert taken.status_code == 302 and "copied to nightly/" in said(taken)[-1]
    backup = RouterBackup.objects.get(router=router)
    listed = client.get(reverse("console:router_backups", args=[router.pk]))
    download_url = reverse("console:router_backup_download", args=[router.pk, backup.pk])
    assert listed.status_code == 200 and download_url.encode() in listed.content
    downloaded = client.get(download_url)
    assert downloaded.status_code == 200 and downloaded["Content-Type"].startswith("text/plain")
    assert downloaded["Content-Disposition"].startswith('attachment; filename="south-core-')
    assert downloaded.content.decode() == backup.content
    assert AuditEvent.objects.filter(action="router.backup", operator=tree.south.operator).count() == 1

    # Staff of another operator: every backup path is a 404, and nothing is taken.
    north = tree.login(add_staff(tree.north, "owner"))
    for method, url in [
        ("get", download_url),
        ("get", reverse("console:router_backups", args=[router.pk])),
        ("post", reverse("console:router_backup", args=[router.pk])),
    ]:
        response = north.get(url) if method == "get" else north.post(url)
        assert response.status_code == 404, url
    # Its own router's id with the south backup's id is a 404 too.
    north_router = router_create(operator=tree.north.operator, name="north-core", address="127.0.0.1", api_port=9)
    crossed = reverse("console:router_backup_download", args=[north_router.pk, backup.pk])
    assert north.get(crossed).status_code == 404
    assert RouterBackup.objects.count() == 1
    # Its destination page shows its own (none), not south's.
    assert str(ftp_server.port).encode() not in north.get(reverse("console:backup_destination")).content
    # A clerk may not download configurations.
    clerk = tree.login(tree.south.staff["billing_clerk"])
    assert clerk.get(download_url).status_code == 403
