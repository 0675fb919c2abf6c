"""The network management commands, in-process (call_command) and as real `sonjog` processes, against the
RouterOS API emulator over TCP (driven by librouteros inside the commands) and the real PostgreSQL test database."""

from __future__ import annotations

import io
import json
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import librouteros
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from librouteros.exceptions import TrapError

from sonjog.conftest import make_operator, make_subscriber, process_env
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.flows.subscribers import subscriber_set_intent
from sonjog.network import router_io
from sonjog.network.models import OutboxCommand, OutboxStatus, Router
from sonjog.network.services import outbox_drain, router_create
from sonjog.network.tests.conftest import Isp

SONJOG = [sys.executable, "-m", "sonjog.cli"]
UNKNOWN_SECRET = "walk-in"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def run_failing(*args, code):
    """Run a command that must fail with `code`; return (its stdout, the error's one-line message)."""
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=out, stderr=io.StringIO())
    assert caught.value.returncode == code, str(caught.value)
    message = str(caught.value)
    assert message and "\n" not in message
    return out.getvalue(), message


def closed_port():
    """A 127.0.0.1 port nobody listens on (connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_subscriber(isp):
    return make_subscriber(isp.operator, isp.package, isp.today, zone=isp.zone)


def secret_id(emulator, name):
    return emulator.secret(name)[".id"]


def secret_state(emulator, name):
    secret = emulator.secret(name)
    if secret is None:
        return "absent"
    return "disabled" if secret.get("disabled") == "true" else "enabled"


def drifted(isp, emulator, converge):
    """Four subscribers the router first agrees on (after `converge`), then drift made by hand on the router,
    plus a secret Sonjog does not know. Returns {kind: subscriber}."""
    active, suspended, online, missing = (new_subscriber(isp) for _ in range(4))
    for each in (suspended, online):
        subscriber_set_intent(subscriber=each, intent="suspended", reason="overdue")
    converge()
    assert [secret_state(emulator, s.pppoe_username) for s in (active, suspended, online, missing)] == [
        "enabled",
        "disabled",
        "disabled",
        "enabled",
    ]
    emulator.execute("/ppp/secret/set", **{".id": secret_id(emulator, active.pppoe_username), "disabled": "yes"})
    emulator.execute("/ppp/secret/set", **{".id": secret_id(emulator, suspended.pppoe_username), "disabled": "no"})
    emulator.add_active_session(online.pppoe_username, "10.20.0.7", caller_id="AA:BB:CC:00:11:22")
    emulator.execute("/ppp/secret/remove", numbers=secret_id(emulator, missing.pppoe_username))
    emulator.add_secret(UNKNOWN_SECRET, password="x", profile="10m", comment="added by hand")
    return {
        "billed active but disabled on router": active,
        "suspended but enabled on router": suspended,
        "suspended but still online": online,
        "missing on router": missing,
    }


def expected_kinds(cases):
    kinds = {subscriber.pppoe_username: kind for kind, subscriber in cases.items()}
    kinds[UNKNOWN_SECRET] = "on router but unknown to Sonjog"
    return kinds


def read_line(stream, timeout):
    """One line from a subprocess pipe, or '' when nothing came within `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def start_emulator_process(*args):
    process = subprocess.Popen(
        [*SONJOG, "routeros_emulator", "--port", "0", *args],
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    line = ""
    while "listening on" not in line and time.monotonic() < deadline and process.poll() is None:
        line = read_line(process.stdout, deadline - time.monotonic())
    if "listening on 127.0.0.1:" not in line:
        process.kill()
        _out, err = process.communicate()
        pytest.fail(f"the emulator did not say where it listens: {line!r} {err!r}")
    return process, line, int(line.split("127.0.0.1:")[1].split()[0])


def stop_process(process):
    if process.poll() is None:
        process.kill()
    process.communicate()


# --------------------------------------------------------------------------------------------
# sonjog router_test
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_router_test_ok_text_and_json_and_recorded_on_the_router(emulator):
    emulator.identity = "core-mirpur"
    isp = Isp(emulator)
    out = run("router_test", isp.router.name)
    assert out.startswith(f"{isp.router.name}: OK in ")
    assert "identity core-mirpur" in out and "version 7." in out

    data = json.loads(run("router_test", isp.router.name, "--json"))
    assert data["router"] == isp.router.name and data["ok"] is True and data["kind"] is None
    assert data["details"]["identity"] == "core-mirpur" and data["details"]["version"].startswith("7.")
    assert data["message"].startswith("Connected to core-mirpur (RouterOS 7.")
    assert data["latency_ms"] >= 0

    router = Router.objects.get(pk=isp.router.pk)
    assert router.last_test_ok is True and router.last_test_at is not None
    assert router.last_test_message.startswith("Connected to core-mirpur")
    assert emulator.command_count("/system/identity/print") == 2


@pytest.mark.django_db
def test_router_test_wrong_password_exits_1_naming_the_login(emulator):
    isp = Isp(emulator)
    isp.router.password = "not-the-password"
    isp.router.save()
    _out, message = run_failing("router_test", isp.router.name, code=1)
    assert message.startswith(f"{isp.router.name}: login_failed: ")
    assert "rejected the login for user 'sonjog'" in message and "Check the user name and password" in message
    assert "not-the-password" not in message

    out, _message = run_failing("router_test", isp.router.name, "--json", code=1)
    data = json.loads(out)
    assert (data["ok"], data["kind"], data["details"]) == (False, "login_failed", {})

    router = Router.objects.get(pk=isp.router.pk)
    assert router.last_test_ok is False and router.last_test_at is not None
    assert "rejected the login" in router.last_test_message


@pytest.mark.django_db
def test_router_test_refused_says_what_to_check(emulator):
    isp = Isp(emulator)
    run("router_test", isp.router.name)
    assert Router.objects.get(pk=isp.router.pk).last_test_ok is True
    emulator.refuse_connections(True)
    _out, message = run_failing("router_test", isp.router.name, code=1)
    assert message.startswith(f"{isp.router.name}: refused: ")
    assert f"127.0.0.1:{emulator.port} refused the connection" in message
    assert "/ip service enable api" in message and f"port {emulator.port}" in message
    router = Router.objects.get(pk=isp.router.pk)
    assert router.last_test_ok is False and "refused the connection" in router.last_test_message


@pytest.mark.django_db
def test_router_test_timeout_when_the_router_does_not_answer(emulator):
    isp = Isp(emulator)
    timeout = router_io.mikrotik_config(isp.router).timeout  # what router_io.test uses
    emulator.set_reply_delay(timeout + 2)
    started = time.monotonic()
    _out, message = run_failing("router_test", isp.router.name, code=1)
    assert time.monotonic() - started < timeout + 2  # gave up at the driver's timeout, did not hang
    assert message.startswith(f"{isp.router.name}: timeout: ")
    assert f"did not answer the login within {timeout:g}s" in message
    assert "/system resource" in message
    router = Router.objects.get(pk=isp.router.pk)
    assert router.last_test_ok is False and "did not answer" in router.last_test_message


@pytest.mark.django_db
def test_router_test_unknown_or_ambiguous_name_exits_2(emulator):
    isp = Isp(emulator)
    _out, message = run_failing("router_test", "nope", code=2)
    assert message == "no router named 'nope'"
    other = make_operator()
    router_create(operator=other, name=isp.router.name, address="127.0.0.1", api_port=emulator.port)
    _out, message = run_failing("router_test", isp.router.name, code=2)
    assert "2 routers are named" in message and isp.operator.code in message and other.code in message
    assert emulator.command_log == []  # nothing was contacted


@pytest.mark.django_db(transaction=True)
def test_router_test_as_a_real_process(emulator):
    isp = Isp(emulator)
    wrong = router_create(
        operator=isp.operator, name="wrong-pass", address="127.0.0.1", api_port=emulator.port, username="sonjog"
    )
    wrong.password = "nope"
    wrong.save()
    env = process_env()
    runs = {
        key: subprocess.Popen([*SONJOG, "router_test", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for key, args in {
            "ok": [isp.router.name, "--json"],
            "login": ["wrong-pass"],
            "unknown": ["no-such-router"],
        }.items()
    }
    done: dict[str, tuple[int, str, str]] = {}
    for key, process in runs.items():
        raw_out, raw_err = process.communicate(timeout=60)
        done[key] = (process.returncode, raw_out.decode(), raw_err.decode())
    code, out, err = done["ok"]
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    code, out, err = done["login"]
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith("CommandError: wrong-pass: login_failed: Router 127.0.0.1:")
    code, out, err = done["unknown"]
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["CommandError: no router named 'no-such-router'"]
    assert Router.objects.get(name="wrong-pass").last_test_ok is False
    assert Router.objects.get(pk=isp.router.pk).last_test_ok is True


# --------------------------------------------------------------------------------------------
# sonjog network_diff
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_network_diff_lists_every_kind_of_drift_and_changes_nothing(emulator):
    isp = Isp(emulator)
    down = router_create(operator=isp.operator, name="zz-down", address="127.0.0.1", api_port=closed_port())
    cases = drifted(isp, emulator, outbox_drain)
    commands_before = list(OutboxCommand.objects.values_list("pk", "status"))
    states_before = list(Subscriber.objects.order_by("pk").values_list("pk", "router_state", "sync_state"))
    secrets_before = emulator.secrets()
    emulator.clear_command_log()

    data = json.loads(run("network_diff", "--json"))
    assert [r["router"] for r in data["routers"]] == [isp.router.name, down.name]
    report, unreachable = data["routers"]
    assert set(report) == {
        "router",
        "reachable",
        "error",
        "checked",
        "online",
        "disagreements",
        "repairs_queued",
        "items",
    }
    assert (report["reachable"], report["error"], report["checked"], report["online"]) == (True, "", 4, 1)
    assert report["disagreements"] == len(report["items"]) == 5 and report["repairs_queued"] == 0
    for item in report["items"]:
        assert set(item) == {"customer_id", "username", "kind", "intent", "router_view", "detail"}
    assert {item["username"]: item["kind"] for item in report["items"]} == expected_kinds(cases)
    items = {item["kind"]: item for item in report["items"]}
    active = cases["billed active but disabled on router"]
    assert items["billed active but disabled on router"] == {
        "customer_id": active.customer_id,
        "username": active.pppoe_username,
        "kind": "billed active but disabled on router",
        "intent": "active",
        "router_view": "disabled",
        "detail": "",
    }
    assert items["suspended but enabled on router"]["intent"] == "suspended"
    assert items["suspended but still online"]["router_view"] == "disabled online"
    assert items["missing on router"]["router_view"] == "absent"
    assert items["on router but unknown to Sonjog"]["customer_id"] is None
    assert items["on router but unknown to Sonjog"]["detail"] == "added by hand"
    assert unreachable["reachable"] is False and "refused the connection" in unreachable["error"]
    assert unreachable["items"] == []

    text = run("network_diff", "--router", isp.router.name)
    lines = text.splitlines()
    assert lines[0] == f"{isp.router.name}: reachable; 4 subscribers checked, 1 online, 5 disagreements"
    assert len(lines) == 6 and "zz-down" not in text
    line = next(line for line in lines if active.pppoe_username in line)
    assert (
        active.customer_id in line and "billed active but disabled on router (intent active, router disabled)" in line
    )
    assert any(UNKNOWN_SECRET in line and "on router but unknown to Sonjog" in line for line in lines)
    down_text = run("network_diff", "--router", down.name)
    assert down_text.startswith(f"{down.name}: UNREACHABLE: Router 127.0.0.1:{down.api_port} refused the connection")

    # A dry run: only reads reached the router, nothing was queued, nothing recorded.
    paths = [entry.path for entry in emulator.command_log]
    assert "/ppp/secret/print" in paths
    assert all(path == "/login" or path.endswith("/print") for path in paths), paths
    assert emulator.secrets() == secrets_before
    assert list(OutboxCommand.objects.values_list("pk", "status")) == commands_before
    assert list(Subscriber.objects.order_by("pk").values_list("pk", "router_state", "sync_state")) == states_before


@pytest.mark.django_db
def test_network_diff_is_clean_when_router_agrees_and_rejects_unknown_router(emulator):
    isp = Isp(emulator)
    new_subscriber(isp)
    outbox_drain()
    data = json.loads(run("network_diff", "--router", isp.router.name, "--json"))
    assert [(r["router"], r["checked"], r["disagreements"]) for r in data["routers"]] == [(isp.router.name, 1, 0)]
    _out, message = run_failing("network_diff", "--router", "nope", code=2)
    assert message == "no router named 'nope'"


# --------------------------------------------------------------------------------------------
# sonjog network_reconcile
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_network_reconcile_queues_repairs_records_reality_and_the_worker_converges(emulator):
    isp = Isp(emulator)
    down = router_create(operator=isp.operator, name="zz-down", address="127.0.0.1", api_port=closed_port())
    cases = drifted(isp, emulator, run_worker_cycle)
    assert not OutboxCommand.objects.filter(status=OutboxStatus.PENDING).exists()
    emulator.clear_command_log()

    text = run("network_reconcile")
    assert f"{isp.router.name}: 5 disagreements, 4 repairs queued (the worker applies them)" in text
    assert f"{down.name}: UNREACHABLE: Router 127.0.0.1:{down.api_port} refused the connection" in text
    assert all(entry.path == "/login" or entry.path.endswith("/print") for entry in emulator.command_log)

    pending = OutboxCommand.objects.filter(status=OutboxStatus.PENDING)
    assert sorted(pending.values_list("subscriber_id", flat=True)) == sorted(s.pk for s in cases.values())
    assert set(pending.values_list("requested_by", flat=True)) == {"reconciler: drift repair"}
    assert set(pending.values_list("router_id", flat=True)) == {isp.router.pk}

    def recorded(kind):
        return Subscriber.objects.get(pk=cases[kind].pk)

    assert recorded("billed active but disabled on router").router_state == "disabled"
    assert recorded("suspended but enabled on router").router_state == "enabled"
    assert recorded("missing on router").router_state == "absent"
    online = recorded("suspended but still online")
    assert (online.router_state, online.session_state, online.session_ip) == ("disabled", "online", "10.20.0.7")
    assert online.session_mac == "AA:BB:CC:00:11:22"
    assert all(recorded(kind).sync_state == "pending" for kind in cases)
    assert recorded("missing on router").session_state == "offline"

    run_worker_cycle()
    assert not OutboxCommand.objects.filter(status=OutboxStatus.PENDING).exists()
    data = json.loads(run("network_diff", "--router", isp.router.name, "--json"))
    assert [(item["username"], item["kind"]) for item in data["routers"][0]["items"]] == [
        (UNKNOWN_SECRET, "on router but unknown to Sonjog")
    ]
    assert emulator.secret(UNKNOWN_SECRET) is not None  # reported, never deleted
    assert emulator.active_sessions() == []  # the suspended subscriber was kicked
    assert secret_state(emulator, cases["missing on router"].pppoe_username) == "enabled"
    assert all(recorded(kind).sync_state == "in_sync" for kind in cases)

    # Nothing left to repair: a second pass queues nothing.
    data = json.loads(run("network_reconcile", "--router", isp.router.name, "--json"))
    assert [(r["router"], r["disagreements"], r["repairs_queued"]) for r in data["routers"]] == [
        (isp.router.name, 1, 0)
    ]
    assert not OutboxCommand.objects.filter(status=OutboxStatus.PENDING).exists()


@pytest.mark.django_db(transaction=True)
def test_network_reconcile_twice_before_the_worker_runs(emulator):
    """The periodic reconciler and staff running the command both find the same drift before any worker ran."""
    isp = Isp(emulator)
    subscriber = new_subscriber(isp)
    run_worker_cycle()
    emulator.execute("/ppp/secret/set", **{".id": secret_id(emulator, subscriber.pppoe_username), "disabled": "yes"})
    first = json.loads(run("network_reconcile", "--json"))["routers"][0]
    second = json.loads(run("network_reconcile", "--json"))["routers"][0]
    assert (first["repairs_queued"], second["repairs_queued"]) == (1, 1)
    assert OutboxCommand.objects.filter(subscriber=subscriber, status=OutboxStatus.PENDING).count() == 1
    run_worker_cycle()
    assert secret_state(emulator, subscriber.pppoe_username) == "enabled"


@pytest.mark.django_db
def test_network_reconcile_unreachable_router_json(emulator):
    isp = Isp(emulator)
    new_subscriber(isp)
    emulator.refuse_connections(True)
    data = json.loads(run("network_reconcile", "--router", isp.router.name, "--json"))
    (report,) = data["routers"]
    assert report["reachable"] is False and report["repairs_queued"] == 0
    assert "refused the connection" in report["error"]
    assert not OutboxCommand.objects.filter(requested_by="reconciler: drift repair").exists()
    _out, message = run_failing("network_reconcile", "--router", "nope", code=2)
    assert message == "no router named 'nope'"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("command", "last_answered"),
    [
        ("network_diff", "/ip/firewall/address-list/print"),  # secrets, sessions and list read; profiles not
        ("network_reconcile", "/ppp/profile/print"),  # the diff done; the reconciler's own read not
    ],
)
def test_router_going_down_between_reads_is_reported_not_a_crash(emulator, monkeypatch, command, last_answered):
    """A flapping link: the router answers the first reads of a run, then refuses connections."""
    isp = Isp(emulator)
    new_subscriber(isp)
    outbox_drain()
    execute = emulator.router.execute

    def execute_then_go_down(api_command):
        result = execute(api_command)
        if api_command.path == last_answered:
            emulator.refuse_connections(True)
        return result

    monkeypatch.setattr(emulator.router, "execute", execute_then_go_down)
    first_line = run(command).splitlines()[0]  # a report, never a traceback
    assert first_line.startswith(f"{isp.router.name}: ")
    if "UNREACHABLE" in first_line:
        assert f"Router 127.0.0.1:{emulator.port} refused the connection" in first_line


# --------------------------------------------------------------------------------------------
# sonjog outbox
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_outbox_list_filter_retry_and_drain(emulator, settings):
    settings.SONJOG_OUTBOX_MAX_ATTEMPTS = 1
    isp = Isp(emulator)
    emulator.refuse_connections(True)
    first = new_subscriber(isp)
    assert run("outbox", "--drain").splitlines()[0] == "drained: 1 failed"
    failed = OutboxCommand.objects.get(subscriber=first)
    assert failed.status == OutboxStatus.FAILED and "refused" in failed.last_error
    emulator.refuse_connections(False)
    second = new_subscriber(isp)
    pending = OutboxCommand.objects.get(subscriber=second)

    listed = json.loads(run("outbox", "--json"))["commands"]
    assert [(c["id"], c["status"]) for c in listed] == [(pending.pk, "pending"), (failed.pk, "failed")]
    assert set(listed[1]) == {
        "id",
        "subscriber",
        "router",
        "status",
        "requested_by",
        "requested_at",
        "attempts",
        "next_attempt_at",
        "last_error",
        "latency_ms",
    }
    assert (listed[1]["subscriber"], listed[1]["router"], listed[1]["attempts"]) == (
        first.customer_id,
        isp.router.name,
        1,
    )
    assert "refused the connection" in listed[1]["last_error"]
    only_failed = json.loads(run("outbox", "--status", "failed", "--json"))["commands"]
    assert [c["id"] for c in only_failed] == [failed.pk]
    text = run("outbox", "--status", "failed")
    assert text.startswith(f"#{failed.pk}") and "failed" in text and first.customer_id in text
    assert isp.router.name in text and "tries 1" in text and second.customer_id not in text

    # Only failed commands can be retried; anything else is one line and exit code 2, changing nothing.
    _out, message = run_failing("outbox", "--retry", str(pending.pk), code=2)
    assert message == f"command #{pending.pk} is pending; only failed commands can be retried"
    _out, message = run_failing("outbox", "--retry", "999999", code=2)
    assert message == "no outbox command #999999"
    assert OutboxCommand.objects.get(pk=pending.pk).status == OutboxStatus.PENDING
    assert emulator.command_log == []

    retried = json.loads(run("outbox", "--retry", str(failed.pk), "--json"))["commands"]
    assert next(c for c in retried if c["id"] == failed.pk)["status"] == "pending"
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (OutboxStatus.PENDING, 0)

    drained_line = run("outbox", "--drain").splitlines()[0]
    assert {secret_state(emulator, s.pppoe_username) for s in (first, second)} == {"enabled"}
    assert set(OutboxCommand.objects.values_list("status", flat=True)) == {OutboxStatus.DONE}
    assert json.loads(run("outbox", "--status", "failed", "--json")) == {"commands": []}
    drained = run("outbox", "--drain", "--json")
    assert "drained" not in drained and len(json.loads(drained)["commands"]) == 2  # --json output stays JSON
    _out, message = run_failing("outbox", "--retry", str(failed.pk), code=2)
    assert message == f"command #{failed.pk} is done; only failed commands can be retried"
    # Said in plain words, the same way whether the commands failed or succeeded.
    assert drained_line == "drained: 2 done"


@pytest.mark.django_db
def test_outbox_retry_refused_while_a_newer_command_waits(emulator, settings):
    settings.SONJOG_OUTBOX_MAX_ATTEMPTS = 1
    isp = Isp(emulator)
    emulator.refuse_connections(True)
    subscriber = new_subscriber(isp)
    outbox_drain()
    failed = OutboxCommand.objects.get(subscriber=subscriber, status=OutboxStatus.FAILED)
    subscriber_set_intent(subscriber=subscriber, intent="disabled", reason="staff")
    _out, message = run_failing("outbox", "--retry", str(failed.pk), code=2)
    assert message == "a newer command for this subscriber is already waiting"
    assert OutboxCommand.objects.get(pk=failed.pk).status == OutboxStatus.FAILED


@pytest.mark.django_db
@pytest.mark.parametrize("ident", ["0", "-1"])
def test_outbox_retry_of_an_impossible_id_is_refused(ident):
    _out, message = run_failing("outbox", "--retry", ident, code=2)
    assert message == f"no outbox command #{ident}"


# --------------------------------------------------------------------------------------------
# sonjog routeros_emulator
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_routeros_emulator_process_serves_persists_and_stops_on_sigterm(tmp_path: Path):
    state = tmp_path / "router.json"
    bad = subprocess.Popen(
        [*SONJOG, "routeros_emulator", "--port", "70000"],
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    args = ["--user", "sonjog", "--password", "pw-1", "--state", str(state), "--identity", "edge-1"]
    process, line, port = start_emulator_process(*args)
    try:
        assert 0 < port < 65536
        assert f"listening on 127.0.0.1:{port} (api); user 'sonjog', state {state}" in line
        with pytest.raises(TrapError):
            librouteros.connect("127.0.0.1", "sonjog", "wrong", port=port, timeout=5)
        api = librouteros.connect("127.0.0.1", "sonjog", "pw-1", port=port, timeout=5)
        try:
            api.path("ppp", "secret").add(name="from-cli", password="p", profile="default")
            assert [row["name"] for row in api.path("ppp", "secret")] == ["from-cli"]
        finally:
            api.close()

        # The production path, in-process, against the emulator process.
        router = router_create(
            operator=make_operator(), name="edge", address="127.0.0.1", api_port=port, username="sonjog"
        )
        router.password = "pw-1"
        router.save()
        assert "identity edge-1" in run("router_test", "edge")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        stop_process(process)
    assert json.loads(state.read_text())["tables"]["ppp/secret"]["rows"][0]["name"] == "from-cli"

    process, _line, port = start_emulator_process(*args)
    try:
        api = librouteros.connect("127.0.0.1", "sonjog", "pw-1", port=port, timeout=5)
        try:
            assert [row["name"] for row in api.path("ppp", "secret")] == ["from-cli"]
            assert next(iter(api.path("system", "identity")))["name"] == "edge-1"
        finally:
            api.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        stop_process(process)

    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 2 and out == ""
    assert err.strip().splitlines() == ["CommandError: --port must be a port number (0-65535)"]
