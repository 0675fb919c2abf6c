"""`sonjog router_add`: good runs (the password from stdin, zones, TLS port, JSON) that the RouterOS emulator
then answers, and bad runs that exit 2 with one line and write nothing; in-process and as a real process."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sonjog.conftest import make_operator, process_env
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Zone
from sonjog.network.models import ProfileCommand, Router
from sonjog.network.services import router_connection_test
from sonjog.network.tests.conftest import ROUTER_PASSWORD

SONJOG = [sys.executable, "-m", "sonjog.cli"]


def add(*args, stdin="", code=0):
    out = io.StringIO()
    if code == 0:
        call_command("router_add", *args, stdin=io.StringIO(stdin), stdout=out, stderr=io.StringIO())
        return out.getvalue()
    with pytest.raises(CommandError) as caught:
        call_command("router_add", *args, stdin=io.StringIO(stdin), stdout=out, stderr=io.StringIO())
    assert caught.value.returncode == code, str(caught.value)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


@pytest.mark.django_db(transaction=True)
def test_a_router_added_from_the_cli_answers_and_gets_the_package_profiles(emulator):
    from sonjog.conftest import make_package

    operator = make_operator()
    make_package(operator, name="Home 20")  # profile 10m, which the emulator holds already
    mirpur = Zone.objects.create(operator=operator, name="Mirpur")
    road = Zone.objects.create(operator=operator, name="Road 1", parent=mirpur)
    data = json.loads(
        add(
            "core-1",
            "--operator",
            operator.code,
            "--address",
            "127.0.0.1",
            "--port",
            str(emulator.port),
            "--user",
            "sonjog",
            "--password-stdin",
            "--zone",
            "Mirpur",
            "--zone",
            "Mirpur / Road 1",
            "--json",
            stdin=f"{ROUTER_PASSWORD}\n",
        )
    )
    router = Router.objects.get(pk=data["router_id"])
    assert data == {
        "router_id": router.pk,
        "name": "core-1",
        "operator": operator.code,
        "address": f"127.0.0.1:{emulator.port}",
        "tls": False,
        "driver": "mikrotik",
        "zones": ["Mirpur", "Mirpur / Road 1"],
        "record_only": False,
        "profiles_queued": 1,
    }
    assert router.password == ROUTER_PASSWORD and ROUTER_PASSWORD not in router.password_encrypted
    assert set(router.zones.all()) == {mirpur, road}
    assert router_connection_test(router=router).ok
    run_worker_cycle()
    assert ProfileCommand.objects.get(router=router).status == "done"

    text = add(
        "edge-1",
        "--operator",
        operator.code,
        "--address",
        "nas.example.net",
        "--tls",
        "--record-only",
        "--password-stdin",
        stdin="s3cret\n",
    )
    edge = Router.objects.get(name="edge-1")
    assert (edge.api_port, edge.use_tls, edge.record_only, edge.username) == (8729, True, True, "admin")
    assert text.startswith("router edge-1 added for ") and "TLS, mikrotik, record only" in text
    assert not ProfileCommand.objects.filter(router=edge).exists()  # record only: nothing is ever sent


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "stdin", "expected"),
    [
        (["--operator", "nope"], "pw\n", "no operator with code 'nope'"),
        (["--zone", "Atlantis"], "pw\n", "no zone 'Atlantis' for"),
        (["--address", "not a host!"], "pw\n", "is not a host name or an IP address"),
        (["--port", "70000"], "pw\n", "argument --port"),
        (["--driver", "cisco"], "pw\n", "argument --driver: invalid choice"),
        ([], "", "give the API password on standard input with --password-stdin"),
        (["--password-stdin"], "\n", "the API password is empty"),
        (["--password-stdin"], "bad\x07bell\n", "printable characters"),
        (["--password-stdin", "--suspend-mode", "profile", "--user", ""], "pw\n", "needs the API user name"),
        (["--password-stdin", "--name-taken"], "pw\n", "already exists"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(arguments, stdin, expected):
    operator = make_operator()
    Zone.objects.create(operator=operator, name="Mirpur")
    Router.objects.create(operator=operator, name="taken", address="127.0.0.1")
    given = {"--operator": operator.code, "--address": "127.0.0.1", "name": "core-2"}
    rest: list[str] = []
    iterator = iter(arguments)
    for argument in iterator:
        if argument == "--name-taken":
            given["name"] = "taken"
        elif argument in given:
            given[argument] = next(iterator)
        else:
            rest.append(argument)
    routers_before = Router.objects.count()
    command = [given.pop("name"), *[part for pair in given.items() for part in pair], *rest]
    message = add(*command, stdin=stdin, code=2)
    assert expected in message
    assert Router.objects.count() == routers_before
    assert not ProfileCommand.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_router_add_as_a_real_process_reads_the_password_from_stdin():
    operator = make_operator()
    good = subprocess.run(
        [*SONJOG, "router_add", "core-3", "--operator", operator.code, "--address", "10.0.0.1", "--password-stdin"],
        input="r0uter-pass\n",
        capture_output=True,
        text=True,
        env=process_env(),
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert Router.objects.get(name="core-3").password == "r0uter-pass"
    assert "r0uter-pass" not in good.stdout + good.stderr

    bad = subprocess.run(
        [*SONJOG, "router_add", "core-4", "--operator", operator.code, "--address", "10.0.0.1"],
        input="",
        capture_output=True,
        text=True,
        env=process_env(),
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--password-stdin" in bad.stderr
    assert not Router.objects.filter(name="core-4").exists()
