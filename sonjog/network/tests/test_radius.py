"""RADIUS: RFC 5176 Disconnect/CoA against a loopback NAS, and the real FreeRADIUS 3 on PostgreSQL.

No Django database: the FreeRADIUS tests create (and drop) a scratch PostgreSQL database of their own
with psycopg, on the machine's PostgreSQL at 127.0.0.1:5432 if it answers, else on the project's
embedded server. FreeRADIUS itself is required: without it those tests fail with the install command.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sonjog.network.radius.coa import (
    COA_REQUEST,
    DISCONNECT_REQUEST,
    CoaResult,
    error_cause_text,
    send_coa,
    send_disconnect,
)
from sonjog.network.radius.freeradius import (
    INSTALL_SCRIPT,
    FreeRadiusError,
    FreeRadiusNotInstalled,
    FreeRadiusServer,
    freeradius_binary,
    freeradius_dictdir,
    freeradius_libdir,
    install_hint,
    radclient_binary,
)
from sonjog.network.radius.nas_listener import LoopbackNas
from sonjog.network.tests.radius_client import RadReply, radclient, radtest

SECRET = "s3cret-coa"
RADIUS_SECRET = "testing123"
SCHEMA = Path(__file__).resolve().parents[1] / "radius" / "schema.sql"
# Short enough that the silent/timeout cases cost well under a second each.
FAST_TIMEOUT = 0.3


# --------------------------------------------------------------------------------------------
# RFC 5176 against LoopbackNas
# --------------------------------------------------------------------------------------------


@pytest.fixture
def nas() -> Iterator[LoopbackNas]:
    with LoopbackNas(SECRET) as listener:
        yield listener


def test_disconnect_ack_carries_the_session_identity(nas: LoopbackNas) -> None:
    result = send_disconnect(
        "127.0.0.1",
        nas.port,
        SECRET,
        username="alice",
        session_id="81a00001",
        framed_ip="100.64.0.7",
        timeout=FAST_TIMEOUT,
        retries=0,
    )

    assert result.outcome == "ack"
    assert result.ok
    assert result.error_cause is None
    assert 0 < result.latency_ms < 300
    [request] = nas.received
    assert request.code == DISCONNECT_REQUEST
    assert request.code_name == "Disconnect-Request"
    assert request.authenticator_valid
    assert request.answer == "ack"
    assert request.attributes["User-Name"] == ["alice"]
    assert request.attributes["Acct-Session-Id"] == ["81a00001"]
    assert request.attributes["Framed-IP-Address"] == ["100.64.0.7"]


def test_coa_ack_carries_the_mikrotik_rate_limit_vsa(nas: LoopbackNas) -> None:
    result = send_coa(
        "127.0.0.1",
        nas.port,
        SECRET,
        username="alice",
        session_id="81a00002",
        attributes={"Mikrotik-Rate-Limit": "5M/5M", "Mikrotik-Address-List": "paid"},
        timeout=FAST_TIMEOUT,
        retries=0,
    )

    assert result.outcome == "ack"
    [request] = nas.received
    assert request.code == COA_REQUEST
    assert request.authenticator_valid
    assert request.attributes["User-Name"] == ["alice"]
    assert request.attributes["Acct-Session-Id"] == ["81a00002"]
    assert request.attributes["Mikrotik-Rate-Limit"] == ["5M/5M"]
    assert request.attributes["Mikrotik-Address-List"] == ["paid"]


def test_nak_decodes_error_cause_503(nas: LoopbackNas) -> None:
    nas.mode = "nak"

    result = send_disconnect("127.0.0.1", nas.port, SECRET, username="ghost", timeout=FAST_TIMEOUT, retries=0)

    assert result.outcome == "nak"
    assert not result.ok
    assert result.error_cause == 503
    assert result.error_cause_text == "Session-Context-Not-Found"
    assert result.reason is not None and "503" in result.reason
    assert nas.received[0].answer == "nak"


def test_mode_and_error_cause_change_while_running(nas: LoopbackNas) -> None:
    assert send_coa(
        "127.0.0.1", nas.port, SECRET, username="a", attributes={"Filter-Id": "x"}, timeout=FAST_TIMEOUT, retries=0
    ).ok
    nas.mode, nas.error_cause = "nak", 406

    result = send_coa(
        "127.0.0.1", nas.port, SECRET, username="a", attributes={"Filter-Id": "x"}, timeout=FAST_TIMEOUT, retries=0
    )

    assert (result.outcome, result.error_cause, result.error_cause_text) == ("nak", 406, "Unsupported-Extension")
    assert error_cause_text(404) == "Invalid-Request"
    assert error_cause_text(999) is None


def test_silent_nas_gives_timeout(nas: LoopbackNas) -> None:
    nas.mode = "silent"
    started = time.monotonic()

    result = send_coa(
        "127.0.0.1",
        nas.port,
        SECRET,
        username="alice",
        attributes={"Mikrotik-Rate-Limit": "1M/1M"},
        timeout=FAST_TIMEOUT,
        retries=0,
    )

    assert result.outcome == "timeout"
    assert result.reason is not None and "no reply" in result.reason
    assert 250 <= result.latency_ms < 1000
    assert time.monotonic() - started < 1.0
    assert len(nas.received) == 1


def test_retransmissions_reuse_identifier_and_authenticator(nas: LoopbackNas) -> None:
    nas.mode = "silent"

    result = send_disconnect("127.0.0.1", nas.port, SECRET, session_id="s-1", timeout=0.15, retries=2)

    assert result.outcome == "timeout"
    received = nas.wait_for(3)
    assert len(received) == 3
    assert len({request.identifier for request in received}) == 1
    assert all(request.authenticator_valid for request in received)


def test_request_with_wrong_secret_is_dropped_and_reported_as_timeout(nas: LoopbackNas) -> None:
    result = send_disconnect("127.0.0.1", nas.port, "not-the-secret", username="alice", timeout=FAST_TIMEOUT, retries=0)

    assert result.outcome == "timeout"
    [request] = nas.received
    assert not request.authenticator_valid
    assert request.answer == "dropped"


def test_reply_signed_with_another_secret_is_reported_as_error() -> None:
    with LoopbackNas(SECRET, reply_secret="forged") as nas:
        result = send_disconnect("127.0.0.1", nas.port, SECRET, username="alice", timeout=FAST_TIMEOUT, retries=0)

        assert nas.received[0].authenticator_valid
    assert result.outcome == "error"
    assert result.reason is not None and "Response Authenticator" in result.reason


def test_message_authenticator_is_accepted_by_the_nas(nas: LoopbackNas) -> None:
    result = send_disconnect(
        "127.0.0.1", nas.port, SECRET, username="alice", message_authenticator=True, timeout=FAST_TIMEOUT, retries=0
    )

    assert result.outcome == "ack"
    assert "Message-Authenticator" in nas.received[0].attributes


def test_network_failures_are_results_not_exceptions() -> None:
    with LoopbackNas(SECRET) as nas:
        closed_port = nas.port  # nothing listens here once the listener stops

    refused = send_disconnect("127.0.0.1", closed_port, SECRET, username="alice", timeout=FAST_TIMEOUT, retries=0)
    unresolvable = send_disconnect("nas.invalid", 3799, SECRET, username="alice", timeout=FAST_TIMEOUT, retries=0)
    unknown = send_coa(
        "127.0.0.1",
        closed_port,
        SECRET,
        username="a",
        attributes={"No-Such-Attr": "1"},
        timeout=FAST_TIMEOUT,
        retries=0,
    )

    assert refused.outcome == "error" and refused.reason and "refused" in refused.reason
    assert unresolvable.outcome == "error" and unresolvable.reason and "resolve" in unresolvable.reason
    assert unknown.outcome == "error" and unknown.reason and "No-Such-Attr" in unknown.reason


def test_disconnect_needs_something_to_identify_the_session() -> None:
    with pytest.raises(ValueError, match="identify"):
        send_disconnect("127.0.0.1", 3799, SECRET)


def test_result_is_a_plain_value() -> None:
    result = CoaResult("ack", latency_ms=1.5)
    assert result.ok and result.reply_attributes == {} and result.reason is None


# --------------------------------------------------------------------------------------------
# the real FreeRADIUS against PostgreSQL
# --------------------------------------------------------------------------------------------


@dataclass
class ScratchDb:
    params: dict[str, Any]
    conn: psycopg.Connection[Any]
    users: list[str] = field(default_factory=list)

    def execute(self, sql: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(sql, args)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _require_freeradius() -> None:
    problem = None
    try:
        freeradius_binary()
        freeradius_libdir()
        freeradius_dictdir()
        radclient_binary()
    except FreeRadiusNotInstalled as exc:
        problem = str(exc)
    if problem:
        # A failure, not a skip: a machine without FreeRADIUS must not pass the RADIUS suite.
        pytest.fail(f"{problem}. The RADIUS tests run the real server.", pytrace=False)


def _admin_params() -> dict[str, Any]:
    local: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": ""}
    try:
        with psycopg.connect(dbname="postgres", connect_timeout=2, **local):
            return local
    except psycopg.OperationalError:
        pass
    from sonjog.core.embedded_db import embedded_server_settings
    from sonjog.settings import VAR_DIR

    embedded = embedded_server_settings(VAR_DIR / "pgdata")
    return {"host": embedded["HOST"], "port": 5432, "user": embedded["USER"], "password": embedded["PASSWORD"]}


@pytest.fixture(scope="module")
def scratch_db() -> Iterator[ScratchDb]:
    _require_freeradius()
    admin_params = _admin_params()
    name = f"sonjog_radius_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(dbname="postgres", autocommit=True, **admin_params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = {**admin_params, "dbname": name}
    try:
        with psycopg.connect(autocommit=True, **params) as conn:
            conn.execute(SCHEMA.read_text())
            yield ScratchDb(params, conn)
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **admin_params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def radius(scratch_db: ScratchDb) -> Iterator[FreeRadiusServer]:
    scratch_db.execute(
        "INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES "
        "('10mbps', 'Mikrotik-Rate-Limit', ':=', '10M/10M'), "
        "('suspended', 'Framed-Pool', ':=', 'suspended'), "
        "('suspended', 'Mikrotik-Address-List', ':=', 'suspended'), "
        "('suspended', 'Mikrotik-Rate-Limit', ':=', '256k/256k')"
    )
    with FreeRadiusServer(scratch_db.params, clients=[("127.0.0.1", RADIUS_SECRET)]) as server:
        yield server


def _add_user(db: ScratchDb, password: str, group: str = "10mbps") -> str:
    username = f"user{secrets.token_hex(4)}"
    db.execute(
        "INSERT INTO radcheck (username, attribute, op, value) VALUES (%s, 'Cleartext-Password', ':=', %s)",
        (username, password),
    )
    db.execute("INSERT INTO radusergroup (username, groupname, priority) VALUES (%s, %s, 1)", (username, group))
    return username


def _radclient(server: FreeRadiusServer, kind: str, attributes: str, secret: str = RADIUS_SECRET) -> RadReply:
    return radclient(server, kind, attributes, secret)


def _radtest(server: FreeRadiusServer, username: str, password: str) -> RadReply:
    return radtest(server, username, password, RADIUS_SECRET)


def test_freeradius_is_installed_with_postgresql_driver() -> None:
    _require_freeradius()
    assert "freeradius-postgresql" in install_hint()
    assert "install-system-deps.sh" in INSTALL_SCRIPT


def test_server_answers_status_server(radius: FreeRadiusServer) -> None:
    assert radius.running
    assert radius.ping()
    assert radius.auth_port != radius.acct_port
    assert "Ready to process requests" in radius.log_text()


def test_access_accept_carries_group_rate_limit(radius: FreeRadiusServer, scratch_db: ScratchDb) -> None:
    username = _add_user(scratch_db, "correct horse")

    reply = _radtest(radius, username, "correct horse")

    assert reply.code == "Access-Accept", reply.output
    assert 'Mikrotik-Rate-Limit = "10M/10M"' in reply.lines


def test_wrong_password_is_rejected_without_reply_items(radius: FreeRadiusServer, scratch_db: ScratchDb) -> None:
    username = _add_user(scratch_db, "right")

    reply = _radclient(radius, "auth", f'User-Name = "{username}", User-Password = "wrong"')
    unknown = _radclient(radius, "auth", 'User-Name = "nobody-here", User-Password = "x"')

    assert reply.code == "Access-Reject", reply.output
    assert reply.values("Mikrotik-Rate-Limit") == []
    assert unknown.code == "Access-Reject", unknown.output


def test_moving_user_to_suspended_group_changes_the_reply(radius: FreeRadiusServer, scratch_db: ScratchDb) -> None:
    username = _add_user(scratch_db, "pw")
    login = f'User-Name = "{username}", User-Password = "pw"'
    assert _radclient(radius, "auth", login).values("Mikrotik-Rate-Limit") == ["10M/10M"]

    scratch_db.execute("UPDATE radusergroup SET groupname = 'suspended' WHERE username = %s", (username,))
    reply = _radclient(radius, "auth", login)

    assert reply.code == "Access-Accept", reply.output
    assert reply.values("Framed-Pool") == ["suspended"]
    assert reply.values("Mikrotik-Address-List") == ["suspended"]
    assert reply.values("Mikrotik-Rate-Limit") == ["256k/256k"]


def test_accounting_start_interim_stop_land_in_radacct(radius: FreeRadiusServer, scratch_db: ScratchDb) -> None:
    username = _add_user(scratch_db, "pw")
    session = f"8{secrets.token_hex(4)}"
    common = (
        f'User-Name = "{username}", Acct-Session-Id = "{session}", NAS-IP-Address = 10.9.0.1, '
        'NAS-Port-Id = "<pppoe-test>", NAS-Port-Type = Ethernet, Service-Type = Framed-User, '
        'Framed-Protocol = PPP, Framed-IP-Address = 100.64.3.4, Calling-Station-Id = "AA:BB:CC:DD:EE:01"'
    )

    def row() -> dict[str, Any]:
        cursor = scratch_db.conn.execute("SELECT * FROM radacct WHERE acctsessionid = %s", (session,))
        columns = [column.name for column in cursor.description or []]
        rows = cursor.fetchall()
        assert len(rows) == 1
        return dict(zip(columns, rows[0], strict=True))

    start = _radclient(radius, "acct", common + ", Acct-Status-Type = Start")
    assert start.code == "Accounting-Response", start.output
    started = row()
    assert started["username"] == username
    assert str(started["nasipaddress"]) == "10.9.0.1"
    assert str(started["framedipaddress"]) == "100.64.3.4"
    assert started["nasportid"] == "<pppoe-test>"
    assert started["acctstarttime"] is not None
    assert started["acctstoptime"] is None
    assert (started["acctinputoctets"], started["acctoutputoctets"]) == (0, 0)
    assert len(started["acctuniqueid"]) == 32

    interim = _radclient(
        radius,
        "acct",
        common + ", Acct-Status-Type = Interim-Update, Acct-Session-Time = 300, "
        "Acct-Input-Octets = 1500, Acct-Output-Octets = 7000, Acct-Output-Gigawords = 2",
    )
    assert interim.code == "Accounting-Response", interim.output
    updated = row()
    assert updated["acctupdatetime"] > started["acctupdatetime"]
    assert updated["acctsessiontime"] == 300
    assert updated["acctinputoctets"] == 1500
    assert updated["acctoutputoctets"] == 2 * 2**32 + 7000
    assert updated["acctstoptime"] is None

    stop = _radclient(
        radius,
        "acct",
        common + ", Acct-Status-Type = Stop, Acct-Session-Time = 600, Acct-Input-Octets = 3000, "
        "Acct-Output-Octets = 9000, Acct-Terminate-Cause = User-Request",
    )
    assert stop.code == "Accounting-Response", stop.output
    stopped = row()
    assert stopped["acctstoptime"] is not None
    assert stopped["acctstoptime"] >= stopped["acctstarttime"]
    assert stopped["acctterminatecause"] == "User-Request"
    assert stopped["acctsessiontime"] == 600
    assert (stopped["acctinputoctets"], stopped["acctoutputoctets"]) == (3000, 9000)
    assert stopped["acctstarttime"] == started["acctstarttime"]


def test_wrong_shared_secret_is_never_accepted(radius: FreeRadiusServer, scratch_db: ScratchDb) -> None:
    username = _add_user(scratch_db, "pw")

    completed = subprocess.run(
        [radclient_binary(), "-r", "1", "-t", "1", f"127.0.0.1:{radius.auth_port}", "auth", "not-the-secret"],
        input=f'User-Name = "{username}", User-Password = "pw"\n',
        capture_output=True,
        text=True,
        timeout=15,
    )

    # The password decrypts to garbage under the wrong secret, so the server rejects it.
    assert "Access-Accept" not in completed.stdout


def test_clients_can_come_from_the_nas_table(scratch_db: ScratchDb) -> None:
    username = _add_user(scratch_db, "pw")
    scratch_db.execute("INSERT INTO nas (nasname, shortname, secret) VALUES ('127.0.0.1', 'lo', 'from-sql')")
    try:
        with FreeRadiusServer(scratch_db.params, clients=[], read_nas_clients=True) as server:
            reply = _radclient(server, "auth", f'User-Name = "{username}", User-Password = "pw"', secret="from-sql")
    finally:
        scratch_db.execute("DELETE FROM nas")

    assert reply.code == "Access-Accept", reply.output


def test_start_failure_reports_the_log_tail(scratch_db: ScratchDb) -> None:
    params = {**scratch_db.params, "dbname": "sonjog_radius_no_such_db"}
    started = time.monotonic()

    with pytest.raises(FreeRadiusError, match="sonjog_radius_no_such_db"):
        FreeRadiusServer(params).start()
    assert time.monotonic() - started < 15


def test_hostile_and_unicode_values_are_stored_safely(radius: FreeRadiusServer, scratch_db: ScratchDb) -> None:
    hostile = "x'); DROP TABLE radacct; --"
    bangla = "গ্রাহক-ঢাকা"

    for index, name in enumerate((hostile, bangla)):
        reply = _radclient(
            radius,
            "acct",
            f'User-Name = "{name}", Acct-Session-Id = "odd-{index}", NAS-IP-Address = 10.9.0.2, '
            "Acct-Status-Type = Start",
        )
        assert reply.code == "Accounting-Response", reply.output

    stored = dict(scratch_db.execute("SELECT acctsessionid, username FROM radacct WHERE acctsessionid LIKE 'odd-%'"))
    # rlm_sql escapes the quote as =27 instead of passing it to SQL; UTF-8 passes through untouched.
    assert stored == {"odd-0": "x=27); DROP TABLE radacct; --", "odd-1": bangla}


def test_awkward_client_secrets_reach_the_server_intact(scratch_db: ScratchDb) -> None:
    secret = 'it\'s ${not_a_variable} %{User-Name} \\ "quoted"'

    with FreeRadiusServer(scratch_db.params, clients=[("127.0.0.1", secret), ("10.20.0.0/16", "a\\'b")]) as server:
        assert server.ping()


def test_unrepresentable_secret_is_refused_before_start(scratch_db: ScratchDb) -> None:
    server = FreeRadiusServer(scratch_db.params, clients=[("127.0.0.1", "ends-in-backslash\\")])

    with pytest.raises(ValueError, match="cannot be written"):
        server.start()
    assert not server.running


def test_accounting_works_when_ipv6_prefix_columns_are_text(radius: FreeRadiusServer, scratch_db: ScratchDb) -> None:
    # Sonjog's own radacct declares these two columns as text; the queries must serve both variants.
    scratch_db.execute(
        "ALTER TABLE radacct ALTER COLUMN framedipv6prefix TYPE text, ALTER COLUMN delegatedipv6prefix TYPE text"
    )
    try:
        common = (
            'User-Name = "v6user", Acct-Session-Id = "v6-1", NAS-IP-Address = 10.9.0.3, '
            "Framed-IPv6-Prefix = 2001:db8:1::/64, Delegated-IPv6-Prefix = 2001:db8:100::/56"
        )
        for status in ("Start", "Interim-Update", "Stop"):
            reply = _radclient(radius, "acct", f"{common}, Acct-Status-Type = {status}")
            assert reply.code == "Accounting-Response", reply.output
        [(prefix, delegated, stop)] = scratch_db.execute(
            "SELECT framedipv6prefix, delegatedipv6prefix, acctstoptime FROM radacct WHERE acctsessionid = 'v6-1'"
        )
    finally:
        scratch_db.execute(
            "ALTER TABLE radacct ALTER COLUMN framedipv6prefix TYPE inet USING framedipv6prefix::inet, "
            "ALTER COLUMN delegatedipv6prefix TYPE inet USING delegatedipv6prefix::inet"
        )

    assert (prefix, delegated) == ("2001:db8:1::/64", "2001:db8:100::/56")
    assert stop is not None
