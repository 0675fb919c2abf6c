"""Tests of the RouterOS API emulator, driven by the real librouteros client and raw sockets.

No Django and no database: everything here talks to an emulator bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import librouteros
import pytest
from librouteros.exceptions import FatalError, LibRouterosError, MultiTrapError, TrapError
from librouteros.protocol import encode_length as librouteros_encode_length
from librouteros.query import And, Key, Or

from sonjog.network.routeros import emulator as emulator_module
from sonjog.network.routeros import protocol, tls
from sonjog.network.routeros.emulator import ApiTrap, RouterOSEmulator, evaluate_query

PASSWORD = "s3cret"
BANGLA = "গ্রাহক ঢাকা — বকেয়া বিল"


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[RouterOSEmulator]:
    emulator = RouterOSEmulator(password=PASSWORD).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def connect(emulator: RouterOSEmulator, **kwargs: object) -> librouteros.api.Api:
    options: dict[str, object] = {"port": emulator.port, "encoding": "utf-8", "timeout": 5}
    options.update(kwargs)
    return librouteros.connect("127.0.0.1", "admin", PASSWORD, **options)  # type: ignore[arg-type]


@pytest.fixture
def api(emu: RouterOSEmulator) -> Iterator[librouteros.api.Api]:
    client = connect(emu)
    try:
        yield client
    finally:
        client.close()


def raw_stream(emulator: RouterOSEmulator, *, login: bool = True) -> protocol.SentenceStream:
    sock = socket.create_connection(("127.0.0.1", emulator.port), timeout=5)
    stream = protocol.SentenceStream(sock)
    if login:
        assert stream.command("/login", "=name=admin", f"=password={PASSWORD}") == [["!done"]]
    return stream


def names(rows: object) -> list[str]:
    return [str(row["name"]) for row in rows]  # type: ignore[attr-defined]


def tcp_connect_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# --------------------------------------------------------------------------------------------
# wire protocol
# --------------------------------------------------------------------------------------------

BOUNDARIES = [
    (0, b"\x00"),
    (0x7F, b"\x7f"),
    (0x80, b"\x80\x80"),
    (0x3FFF, b"\xbf\xff"),
    (0x4000, b"\xc0\x40\x00"),
    (0x1FFFFF, b"\xdf\xff\xff"),
    (0x200000, b"\xe0\x20\x00\x00"),
    (0xFFFFFFF, b"\xef\xff\xff\xff"),
    (0x10000000, b"\xf0\x10\x00\x00\x00"),
    (0xFFFFFFFF, b"\xf0\xff\xff\xff\xff"),
]


@pytest.mark.parametrize(("length", "encoded"), BOUNDARIES)
def test_length_prefix_round_trip_at_boundaries(length: int, encoded: bytes) -> None:
    assert protocol.encode_length(length) == encoded
    assert protocol.prefix_size(encoded[0]) == len(encoded)
    assert protocol.decode_length(encoded) == length
    if length < 0x10000000:  # librouteros cannot encode the 5-byte form
        assert librouteros_encode_length(length) == encoded


def test_length_prefix_rejects_reserved_bytes_and_overflow() -> None:
    for control in (0xF8, 0xFF):
        with pytest.raises(protocol.ProtocolError):
            protocol.prefix_size(control)
    with pytest.raises(ValueError):
        protocol.encode_length(0x100000000)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_length(b"\x80")  # 2-byte prefix cut short


def test_sentence_reader_reassembles_byte_by_byte_input() -> None:
    words = ["/ppp/secret/add", "=name=" + "x" * 0x90, "=comment=" + BANGLA, ".tag=7"]
    data = protocol.encode_sentence(words) + protocol.encode_sentence(["/quit"])
    chunks = iter([data[i : i + 1] for i in range(len(data))])
    reader = protocol.SentenceReader(lambda _size: next(chunks, b""))
    assert reader.read_sentence() == words
    assert reader.read_sentence() == ["/quit"]
    with pytest.raises(protocol.ConnectionClosed):
        reader.read_sentence()
    assert protocol.split_sentences(data) == [words, ["/quit"]]


def test_raw_socket_words_of_every_prefix_size_round_trip(emu: RouterOSEmulator) -> None:
    stream = raw_stream(emu, login=False)
    # Hand-built login sentence, independent of our encoder.
    stream.write_raw(b"\x06/login" + b"\x0b=name=admin" + bytes([16]) + f"=password={PASSWORD}".encode() + b"\x00")
    assert stream.read_sentence() == ["!done"]
    prefix = "=comment="
    # One comment per prefix size; each word is exactly at a boundary length.
    for index, word_length in enumerate((0x7F, 0x80, 0x3FFF, 0x4000, 0x1FFFFF, 0x200000)):
        comment = chr(ord("a") + index) * (word_length - len(prefix))
        reply = stream.command(
            "/ip/firewall/address-list/add", "=list=big", f"=address=10.9.0.{index}", prefix + comment
        )
        assert reply[0][0] == "!done"
        printed = stream.command("/ip/firewall/address-list/print", f"?address=10.9.0.{index}", "=.proplist=comment")
        assert printed[0] == ["!re", prefix + comment]
    # A word sent with a hand-made 2-byte prefix decodes on the router side.
    word = b"=name=" + b"z" * (0x80 - 6)
    stream.write_raw(b"\x0f/ppp/secret/add" + b"\x80\x80" + word + b"\x00")
    assert stream.read_sentence() == ["!done", "=ret=*1"]
    assert emu.secret("z" * (0x80 - 6)) is not None
    stream.close()


def test_quit_gets_fatal_and_connection_closes(emu: RouterOSEmulator) -> None:
    stream = raw_stream(emu)
    stream.write_sentence(["/quit"])
    assert stream.read_sentence() == ["!fatal", "session terminated on request"]
    assert stream.sock.recv(10) == b""
    stream.close()


def test_librouteros_raises_fatal_on_quit(api: librouteros.api.Api) -> None:
    with pytest.raises(FatalError, match="session terminated on request"):
        list(api("/quit"))


def test_empty_sentences_are_ignored(emu: RouterOSEmulator) -> None:
    stream = raw_stream(emu)
    stream.write_raw(b"\x00\x00")
    assert stream.command("/system/identity/print") == [["!re", "=name=emulated"], ["!done"]]
    stream.close()


def test_commands_before_login_are_refused_then_fatal(emu: RouterOSEmulator) -> None:
    stream = raw_stream(emu, login=False)
    assert stream.command("/ppp/secret/print") == [["!trap", "=message=not logged in"], ["!done"]]
    assert stream.command("/ppp/secret/print") == [["!trap", "=message=not logged in"], ["!done"]]
    assert stream.command("/ppp/secret/print") == [["!fatal", "not logged in"]]
    assert stream.sock.recv(10) == b""
    stream.close()


# --------------------------------------------------------------------------------------------
# login
# --------------------------------------------------------------------------------------------


def test_login_ok_and_wrong_password(emu: RouterOSEmulator) -> None:
    client = connect(emu)
    assert list(client.path("system", "identity")) == [{"name": "emulated"}]
    client.close()
    with pytest.raises(TrapError) as excinfo:
        librouteros.connect("127.0.0.1", "admin", "wrong", port=emu.port, timeout=5)
    assert excinfo.value.message == "invalid user name or password (6)"
    with pytest.raises(TrapError):
        librouteros.connect("127.0.0.1", "nobody", PASSWORD, port=emu.port, timeout=5)


def test_failed_login_leaves_connection_usable_for_retry(emu: RouterOSEmulator) -> None:
    stream = raw_stream(emu, login=False)
    assert stream.command("/login", "=name=admin", "=password=nope") == [
        ["!trap", "=message=invalid user name or password (6)"],
        ["!done"],
    ]
    assert stream.command("/login", "=name=admin", f"=password={PASSWORD}") == [["!done"]]
    assert stream.command("/system/identity/print")[0] == ["!re", "=name=emulated"]
    stream.close()


def test_login_password_is_masked_in_command_log(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    login = [entry for entry in emu.command_log if entry.path == "/login"]
    assert login == [("/login", {"name": "admin", "password": "***"})]


# --------------------------------------------------------------------------------------------
# /ppp/secret
# --------------------------------------------------------------------------------------------


def test_secret_add_print_set_disable_enable_remove(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    secrets = api.path("ppp", "secret")
    first = secrets.add(name="alice", password="pw1", service="pppoe", comment=BANGLA)
    second = secrets.add(name="bob", password="pw2", profile="default-encryption", **{"remote-address": "10.0.0.2"})
    assert (first, second) == ("*1", "*2")

    rows = {row["name"]: row for row in secrets}
    assert rows["alice"]["comment"] == BANGLA
    assert rows["alice"]["disabled"] is False
    assert rows["alice"]["profile"] == "default"
    assert rows["bob"]["remote-address"] == "10.0.0.2"
    assert rows["bob"]["service"] == "any"

    secrets.update(**{".id": first, "password": "changed", "local-address": "10.0.0.1"})
    assert emu.secret("alice")["password"] == "changed"  # type: ignore[index]
    assert emu.secret("alice")["local-address"] == "10.0.0.1"  # type: ignore[index]

    tuple(secrets("disable", **{".id": first}))
    assert emu.secret("alice")["disabled"] == "true"  # type: ignore[index]
    tuple(secrets("enable", numbers="alice"))  # by name, like the console
    assert emu.secret("alice")["disabled"] == "false"  # type: ignore[index]
    secrets.update(**{".id": second, "disabled": True})
    assert emu.secret("bob")["disabled"] == "true"  # type: ignore[index]

    secrets.remove(first, second)
    assert list(secrets) == []
    assert secrets.add(name="carol") == "*3"  # ids are never reused


def test_secret_errors(api: librouteros.api.Api) -> None:
    secrets = api.path("ppp", "secret")
    secrets.add(name="alice")
    with pytest.raises(TrapError, match="secret with the same name already exists"):
        secrets.add(name="alice")
    secrets.add(name="bob")
    with pytest.raises(TrapError, match="secret with the same name already exists"):
        secrets.update(**{".id": "bob", "name": "alice"})
    with pytest.raises(TrapError) as excinfo:
        secrets.update(**{".id": "*99", "password": "x"})
    assert (excinfo.value.message, excinfo.value.category) == ("no such item", 0)
    with pytest.raises(TrapError, match="no such item"):
        secrets.remove("*1", "*77")
    assert names(secrets) == ["alice", "bob"]  # nothing removed by the failed batch
    with pytest.raises(TrapError) as excinfo:
        secrets.add(name="carol", profile="missing-profile")
    assert (excinfo.value.message, excinfo.value.category) == ("input does not match any value of profile", 1)
    with pytest.raises(TrapError, match="service"):
        secrets.add(name="carol", service="telnet")
    with pytest.raises(TrapError, match="unknown parameter"):
        secrets.add(name="carol", colour="blue")
    with pytest.raises(TrapError, match="missing value"):
        secrets.add(password="x")


def test_disabling_secret_keeps_active_session_until_kicked(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    secret_id = api.path("ppp", "secret").add(name="alice", password="pw", service="pppoe")
    emu.add_active_session("alice", "10.10.0.5", "AA:BB:CC:00:11:22", uptime=3725)
    emu.add_active_session("bob", "10.10.0.6", "AA:BB:CC:00:11:23")
    active = api.path("ppp", "active")

    tuple(api.path("ppp", "secret")("disable", **{".id": secret_id}))
    sessions = {row["name"]: row for row in active}
    assert set(sessions) == {"alice", "bob"}
    alice = sessions["alice"]
    assert alice["address"] == "10.10.0.5"
    assert alice["caller-id"] == "AA:BB:CC:00:11:22"
    assert alice["service"] == "pppoe"
    assert alice["radius"] is False
    assert str(alice["uptime"]).startswith("1h2m")
    assert str(alice["session-id"]).startswith("0x")

    emu.clear_command_log()
    active.remove(str(alice[".id"]))
    assert emu.command_log == [("/ppp/active/remove", {".id": alice[".id"]})]
    assert names(active) == ["bob"]
    assert emu.command_count("/ppp/active/remove") == 1
    with pytest.raises(TrapError, match="no such item"):
        active.remove(str(alice[".id"]))
    with pytest.raises(MultiTrapError):
        active.add(name="mallory")  # sessions cannot be created through the API


# --------------------------------------------------------------------------------------------
# /ppp/profile
# --------------------------------------------------------------------------------------------


def test_profiles_builtin_add_set_remove(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    profiles = api.path("ppp", "profile")
    builtin = {row["name"]: row for row in profiles}
    assert builtin["default"][".id"] == "*0"
    assert builtin["default-encryption"][".id"] == "*FFFFFFFE"
    assert builtin["default"]["default"] is True
    assert builtin["default-encryption"]["use-encryption"] is True  # "yes" parsed by librouteros

    pid = profiles.add(
        name="home-10m",
        **{"rate-limit": "10M/10M", "local-address": "10.0.0.1", "remote-address": "pool-home"},
        **{"address-list": "active-subscribers"},
    )
    row = next(r for r in profiles if r["name"] == "home-10m")
    assert row["rate-limit"] == "10M/10M"
    assert row["address-list"] == "active-subscribers"
    assert row["default"] is False

    profiles.update(**{".id": pid, "rate-limit": "20M/20M 25M/25M 15M/15M 8/8 8 5M/5M"})
    assert next(r for r in emu.profiles() if r["name"] == "home-10m")["rate-limit"].startswith("20M/20M")
    with pytest.raises(TrapError, match="rate-limit"):
        profiles.update(**{".id": pid, "rate-limit": "ten megs"})
    with pytest.raises(TrapError, match="profile with the same name already exists"):
        profiles.add(name="default")
    with pytest.raises(TrapError, match="can not remove default profile"):
        profiles.remove("*0")

    api.path("ppp", "secret").add(name="alice", profile="home-10m")
    with pytest.raises(TrapError, match="profile is used by secret alice"):
        profiles.remove(pid)
    profiles.update(**{".id": pid, "name": "home-20m"})
    assert emu.secret("alice")["profile"] == "home-20m"  # type: ignore[index]
    api.path("ppp", "secret").remove("alice")
    profiles.remove(pid)
    assert names(profiles) == ["default", "default-encryption"]


# --------------------------------------------------------------------------------------------
# /ip/firewall/address-list
# --------------------------------------------------------------------------------------------


def test_address_list_add_duplicate_set_remove(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    entries = api.path("ip", "firewall", "address-list")
    entry_id = entries.add(list="suspended", address="10.0.0.7", comment="unpaid")
    with pytest.raises(TrapError) as excinfo:
        entries.add(list="suspended", address="10.0.0.7")
    assert excinfo.value.message == "failure: already have such entry"
    with pytest.raises(TrapError, match="already have such entry"):
        entries.add(list="suspended", address="10.0.0.7/32")  # same address, normalised
    entries.add(list="other", address="10.0.0.7")  # same address in another list is fine
    with pytest.raises(TrapError, match="invalid value for argument address"):
        entries.add(list="suspended", address="not an address!")

    row = next(r for r in entries if r[".id"] == entry_id)
    assert (row["list"], row["address"], row["comment"], row["disabled"], row["dynamic"]) == (
        "suspended",
        "10.0.0.7",
        "unpaid",
        False,
        False,
    )
    assert "timeout" not in row
    entries.update(**{".id": entry_id, "disabled": True, "comment": BANGLA})
    assert emu.address_list("suspended")[0]["comment"] == BANGLA
    entries.remove(entry_id)
    assert emu.address_list("suspended") == []


def test_address_list_timeout_makes_dynamic_entry_that_expires(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    entries = api.path("ip", "firewall", "address-list")
    entries.add(list="grace", address="10.1.0.1", timeout="1d")
    entries.add(list="grace", address="10.1.0.2", timeout="300ms")
    rows = {row["address"]: row for row in entries}
    assert rows["10.1.0.1"]["dynamic"] is True
    assert str(rows["10.1.0.1"]["timeout"]).startswith("23h59m")
    time.sleep(0.4)
    assert [row["address"] for row in entries] == ["10.1.0.1"]
    assert "10.1.0.1" not in emu.export_text()  # dynamic entries are not exported


def test_ids_are_uppercase_hex(emu: RouterOSEmulator) -> None:
    ids = [emu.add_address_list_entry("bulk", f"10.2.0.{n}") for n in range(1, 32)]
    assert ids[:3] == ["*1", "*2", "*3"]
    assert ids[9] == "*A"
    assert ids[30] == "*1F"


# --------------------------------------------------------------------------------------------
# system menus, unknown commands, getall
# --------------------------------------------------------------------------------------------


def test_system_resource_identity_and_getall(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    (resource,) = api.path("system", "resource")
    assert resource["board-name"] == "CHR"
    assert str(resource["version"]).startswith("7.16.2")
    assert resource["architecture-name"] == "x86_64"
    assert int(resource["total-memory"]) > int(resource["free-memory"]) > 0
    assert "cpu-load" in resource and "uptime" in resource
    emu.set_resource(cpu_load=93)
    assert next(iter(api("/system/resource/getall")))["cpu-load"] == 93

    tuple(api("/system/identity/set", name="bras-dhaka-1"))
    assert list(api("/system/identity/getall")) == [{"name": "bras-dhaka-1"}]
    assert emu.identity == "bras-dhaka-1"


def test_unknown_commands_trap_like_routeros(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    with pytest.raises(MultiTrapError) as excinfo:
        list(api("/ip/adress/print"))
    assert [(t.message, t.category) for t in excinfo.value.traps] == [
        ("no such command or directory (adress)", 0),
        ("no such command prefix", None),
    ]
    stream = raw_stream(emu)
    assert stream.command("/ppp/secret/frobnicate", ".tag=9") == [
        ["!trap", "=category=0", "=message=no such command or directory (frobnicate)", ".tag=9"],
        ["!trap", "=message=no such command prefix", ".tag=9"],
        ["!done", ".tag=9"],
    ]
    stream.close()
    # The connection is still in sync after the traps.
    assert list(api.path("system", "identity")) == [{"name": "emulated"}]


# --------------------------------------------------------------------------------------------
# queries, tags, proplist, !empty
# --------------------------------------------------------------------------------------------


@pytest.fixture
def populated(emu: RouterOSEmulator) -> RouterOSEmulator:
    emu.add_profile("p10", **{"rate-limit": "10M/10M"})
    emu.add_profile("p20", **{"rate-limit": "20M/20M"})
    emu.add_secret("alice", "a", profile="p10", service="pppoe", limit_bytes_in="100")
    emu.add_secret("bob", "b", profile="p20", service="pppoe", comment="vip", limit_bytes_in="5000")
    emu.add_secret("carol", "c", profile="p10", service="l2tp", disabled="yes", limit_bytes_in="900")
    return emu


def test_librouteros_queries(populated: RouterOSEmulator, api: librouteros.api.Api) -> None:
    secrets = api.path("ppp", "secret")
    name, profile, disabled = Key("name"), Key("profile"), Key("disabled")
    limit = Key("limit-bytes-in")
    assert names(secrets.select(name).where(name == "bob")) == ["bob"]
    assert names(secrets.select(name).where(disabled == True)) == ["carol"]  # noqa: E712
    assert names(secrets.select(name).where(disabled == False)) == ["alice", "bob"]  # noqa: E712
    assert names(secrets.select(name).where(name != "bob")) == ["alice", "carol"]
    assert names(secrets.select(name).where(profile.In("p20", "default"))) == ["bob"]
    assert names(secrets.select(name).where(Or(name == "alice", name == "carol"))) == ["alice", "carol"]
    assert names(secrets.select(name).where(And(profile == "p10", Key("service") == "pppoe"))) == ["alice"]
    assert names(secrets.select(name).where(limit > 500)) == ["bob", "carol"]
    assert names(secrets.select(name).where(limit < 1000)) == ["alice", "carol"]
    # several where() arguments are and-ed by the final stack check
    assert names(secrets.select(name).where(profile == "p10", limit > 500)) == ["carol"]


def test_raw_queries_and_stack_operations(populated: RouterOSEmulator) -> None:
    stream = raw_stream(populated)

    def query(*words: str) -> list[str]:
        replies = stream.command("/ppp/secret/print", "=.proplist=name", *words)
        assert replies[-1][0] == "!done", replies
        return [protocol.words_to_dict(r)["name"] for r in replies if r[0] == "!re"]

    assert query("?comment") == ["bob"]
    assert query("?-comment") == ["alice", "carol"]
    assert query("?name=alice") == ["alice"]
    assert query("?=name=alice") == ["alice"]
    assert query("?>limit-bytes-in=100") == ["bob", "carol"]
    assert query("?<limit-bytes-in=901") == ["alice", "carol"]
    assert query("?profile=p10", "?#!") == ["bob"]
    assert query("?name=alice", "?name=bob", "?#|") == ["alice", "bob"]
    assert query("?name=alice", "?name=bob", "?#|!") == ["carol"]
    assert query("?profile=p10", "?service=pppoe", "?#&") == ["alice"]
    # "." duplicates the top value; "0" copies it by index; an index ending the word keeps only it.
    assert query("?name=bob", "?#.|") == ["bob"]
    assert query("?name=bob", "?comment", "?#1&") == ["bob"]
    assert query("?name=zed", "?name=alice", "?#1") == []
    assert query("?name=alice", "?name=zed", "?#1") == ["alice"]
    assert query("?disabled=yes") == ["carol"]
    assert query("?.id=*2") == ["bob"]

    bad = stream.command("/ppp/secret/print", "?#&")
    assert bad[0][0] == "!trap" and bad[-1] == ["!done"]
    stream.close()


def test_evaluate_query_documented_example() -> None:
    items = [{"type": "ether"}, {"type": "vlan"}, {"type": "bridge"}, {"name": "x"}]
    words = ["?type=ether", "?type=vlan", "?#|!"]
    assert [evaluate_query(words, item) for item in items] == [False, False, True, True]
    with pytest.raises(ApiTrap):
        evaluate_query(["?#5"], {})


def test_tags_are_echoed_on_every_sentence_even_when_pipelined(populated: RouterOSEmulator) -> None:
    stream = raw_stream(populated)
    # Three commands sent before reading anything; replies must carry their own tags.
    stream.write_sentence(["/ppp/secret/print", "=.proplist=name", ".tag=list"])
    stream.write_sentence(["/system/identity/print", ".tag=id"])
    stream.write_sentence(["/ppp/secret/add", "=name=alice", ".tag=dup"])
    replies = [stream.read_sentence() for _ in range(8)]
    by_tag: dict[str, list[list[str]]] = {}
    for sentence in replies:
        tags = [word for word in sentence if word.startswith(".tag=")]
        assert len(tags) == 1, sentence
        by_tag.setdefault(tags[0][5:], []).append([w for w in sentence if not w.startswith(".tag=")])
    assert by_tag["list"] == [["!re", "=name=alice"], ["!re", "=name=bob"], ["!re", "=name=carol"], ["!done"]]
    assert by_tag["id"] == [["!re", "=name=emulated"], ["!done"]]
    assert by_tag["dup"] == [["!trap", "=message=failure: secret with the same name already exists"], ["!done"]]
    stream.close()


def test_proplist_and_count_only(populated: RouterOSEmulator, api: librouteros.api.Api) -> None:
    rows = list(api.path("ppp", "secret").select(Key("name"), Key("profile")))
    assert rows == [
        {"name": "alice", "profile": "p10"},
        {"name": "bob", "profile": "p20"},
        {"name": "carol", "profile": "p10"},
    ]
    assert list(api.rawCmd("/ppp/secret/print", "=.proplist=.id,comment", "?comment")) == [
        {".id": "*2", "comment": "vip"}
    ]
    assert list(api.rawCmd("/ppp/secret/print", "=count-only=", "?profile=p10")) == [{"ret": 2}]


def test_empty_print_default_has_no_empty_reply(emu: RouterOSEmulator) -> None:
    stream = raw_stream(emu)
    assert stream.command("/ppp/secret/print", ".tag=3") == [["!done", ".tag=3"]]
    stream.close()


def test_empty_reply_option_and_librouteros_copes() -> None:
    with RouterOSEmulator(password=PASSWORD, empty_reply=True) as emulator:
        stream = raw_stream(emulator)
        assert stream.command("/ppp/secret/print", ".tag=3") == [["!empty", ".tag=3"], ["!done", ".tag=3"]]
        stream.close()
        client = connect(emulator)
        # librouteros ignores !empty and stops at the following !done, so it stays in sync.
        assert list(client.path("ppp", "secret")) == []
        assert client.path("ppp", "secret").add(name="x") == "*1"
        assert names(client.path("ppp", "secret")) == ["x"]
        client.close()


# --------------------------------------------------------------------------------------------
# /export
# --------------------------------------------------------------------------------------------


def test_export_through_file_like_a_real_router(populated: RouterOSEmulator, api: librouteros.api.Api) -> None:
    populated.add_address_list_entry("suspended", "10.0.0.9", comment=BANGLA)
    assert tuple(api("/export")) == ()  # a plain /export sends nothing back over the API
    text = api.config().export()  # librouteros: /export file=..., /file/print, /file/remove
    lines = text.splitlines()
    assert lines[0].startswith("# ") and lines[0].endswith("by RouterOS 7.16.2")
    profile_at, secret_at = lines.index("/ppp profile"), lines.index("/ppp secret")
    assert profile_at < secret_at
    assert "add name=p10 rate-limit=10M/10M" in lines
    assert "add limit-bytes-in=100 name=alice profile=p10 service=pppoe" in lines
    assert "add disabled=yes limit-bytes-in=900 name=carol profile=p10 service=l2tp" in lines
    assert "password" not in text  # sensitive values are hidden by default
    assert 'add address=10.0.0.9 comment="\\E0\\A6\\97' in text
    assert "set name=emulated" in lines
    assert populated.files() == []  # librouteros removed its temporary file

    sensitive = api.config().export(show_sensitive=True, terse=True)
    assert "/ppp secret add limit-bytes-in=100 name=alice password=a profile=p10 service=pppoe" in sensitive
    scoped = api.config().export(path="ppp/secret")
    assert "/ppp secret" in scoped and "/ppp profile" not in scoped


def test_export_to_file_and_inline_option() -> None:
    with RouterOSEmulator(password=PASSWORD, inline_export=True) as emulator:
        emulator.add_secret("alice", "pw")
        client = connect(emulator)
        (reply,) = client("/export", **{"show-sensitive": True})
        assert "add name=alice password=pw" in str(reply["ret"])
        tuple(client("/export", file="backup"))
        (file_row,) = client.path("file").select(Key("name"), Key("type"), Key("contents"))
        assert (file_row["name"], file_row["type"]) == ("backup.rsc", "script")
        assert "/ppp secret" in str(file_row["contents"])
        client.close()


# --------------------------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------------------------


def test_state_file_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "router" / "state.json"
    with RouterOSEmulator(password=PASSWORD, state_file=state, identity="bras-1") as first:
        client = connect(first)
        client.path("ppp", "profile").add(name="p5", **{"rate-limit": "5M/5M"})
        client.path("ppp", "secret").add(name="alice", password="pw", profile="p5", comment=BANGLA)
        doomed = client.path("ppp", "secret").add(name="bob")
        client.path("ppp", "secret").remove(doomed)
        client.path("ip", "firewall", "address-list").add(list="suspended", address="10.0.0.1")
        client.path("ip", "firewall", "address-list").add(list="grace", address="10.0.0.2", timeout="1h")
        first.add_active_session("alice", "10.0.0.1", "AA:AA:AA:AA:AA:AA")
        client.close()
        on_disk = json.loads(state.read_text(encoding="utf-8"))
        assert on_disk["tables"]["ppp/secret"]["rows"][0]["comment"] == BANGLA
        assert "ppp/active" not in on_disk["tables"]
    assert sorted(p.name for p in state.parent.iterdir()) == ["state.json"]  # no temp files left

    with RouterOSEmulator(password=PASSWORD, state_file=state) as second:
        client = connect(second)
        assert list(client.path("system", "identity")) == [{"name": "bras-1"}]
        (alice,) = client.path("ppp", "secret")
        assert (alice["name"], alice["profile"], alice["comment"]) == ("alice", "p5", BANGLA)
        assert client.path("ppp", "secret").add(name="carol") == "*3"  # id counter persisted
        assert [r["rate-limit"] for r in client.path("ppp", "profile") if r["name"] == "p5"] == ["5M/5M"]
        # Dynamic entries and sessions live in RAM only, as on a rebooted router.
        assert [r["list"] for r in client.path("ip", "firewall", "address-list")] == ["suspended"]
        assert list(client.path("ppp", "active")) == []
        client.close()


def test_state_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state.json"
    emulator = RouterOSEmulator(password=PASSWORD, state_file=state)
    emulator.add_secret("alice")
    before = state.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(emulator_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        emulator.add_secret("bob")
    assert state.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_corrupt_state_file_is_an_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read"):
        RouterOSEmulator(state_file=state)


# --------------------------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------------------------


def test_librouteros_over_tls() -> None:
    with RouterOSEmulator(password=PASSWORD, tls_port=0) as emulator:
        assert emulator.tls_port and emulator.tls_port != emulator.port
        context = tls.insecure_client_context()
        client = connect(emulator, port=emulator.tls_port, ssl_wrapper=context.wrap_socket)
        assert isinstance(client.protocol.transport.sock, ssl.SSLSocket)
        assert client.protocol.transport.sock.version() in ("TLSv1.2", "TLSv1.3")
        client.path("ppp", "secret").add(name="tls-user", comment=BANGLA)
        assert [r["comment"] for r in client.path("ppp", "secret")] == [BANGLA]
        with pytest.raises(TrapError, match="invalid user name or password"):
            librouteros.connect(
                "127.0.0.1", "admin", "wrong", port=emulator.tls_port, ssl_wrapper=context.wrap_socket, timeout=5
            )
        client.close()
        # A plain-TCP client on the TLS port gets no API service.
        with pytest.raises((LibRouterosError, OSError)):
            connect(emulator, port=emulator.tls_port, timeout=1)


def test_self_signed_certificate_is_usable(tmp_path: Path) -> None:
    from cryptography import x509

    cert_path, key_path = tls.write_self_signed(tmp_path)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert certificate.issuer == certificate.subject
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)


# --------------------------------------------------------------------------------------------
# fault injection
# --------------------------------------------------------------------------------------------


def test_refuse_connections_and_recover_on_same_port(emu: RouterOSEmulator) -> None:
    port = emu.port
    survivor = connect(emu)
    emu.refuse_connections(True)
    assert emu.refusing
    with pytest.raises(ConnectionRefusedError):
        connect(emu)
    assert tcp_connect_refused(port)
    # Already-established sessions survive unless asked otherwise.
    assert list(survivor.path("system", "identity")) == [{"name": "emulated"}]

    emu.refuse_connections(False)
    assert emu.port == port
    client = connect(emu)
    assert list(client.path("system", "identity")) == [{"name": "emulated"}]
    client.close()

    emu.refuse_connections(True, drop_existing=True)
    with pytest.raises((LibRouterosError, OSError)):
        list(survivor.path("system", "identity"))
    emu.refuse_connections(False)
    assert list(connect(emu).path("system", "identity")) == [{"name": "emulated"}]


def test_refuse_connections_covers_tls_port() -> None:
    with RouterOSEmulator(password=PASSWORD, tls_port=0) as emulator:
        tls_port = emulator.tls_port
        assert tls_port is not None
        emulator.refuse_connections(True)
        assert tcp_connect_refused(emulator.port) and tcp_connect_refused(tls_port)
        emulator.refuse_connections(False)
        context = tls.insecure_client_context()
        client = connect(emulator, port=tls_port, ssl_wrapper=context.wrap_socket)
        assert list(client.path("system", "identity")) == [{"name": "emulated"}]
        client.close()


def test_reply_delay(emu: RouterOSEmulator, api: librouteros.api.Api) -> None:
    emu.set_reply_delay(0.3)
    started = time.monotonic()
    assert list(api.path("system", "identity")) == [{"name": "emulated"}]
    assert time.monotonic() - started >= 0.3

    impatient = connect(emu, timeout=1)
    impatient.protocol.transport.sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        list(impatient.path("system", "identity"))
    emu.set_reply_delay(0)
    started = time.monotonic()
    list(api.path("system", "identity"))
    assert time.monotonic() - started < 0.25


def test_drop_mid_reply_applies_command_but_cuts_the_answer(emu: RouterOSEmulator) -> None:
    emu.add_secret("alice")
    emu.add_secret("bob")
    client = connect(emu)
    emu.drop_mid_reply(2)
    with pytest.raises((LibRouterosError, OSError)):
        list(client.path("ppp", "secret"))  # gets the first !re, then half a sentence, then RST
    assert emu.pending_drops == 1

    emu.clear_command_log()
    retry = connect(emu)  # login is never dropped
    with pytest.raises((LibRouterosError, OSError)):
        retry.path("ppp", "secret").add(name="carol")
    # The router did apply the add; the client just never learned the new id.
    assert emu.secret("carol") is not None
    assert emu.command_count("/ppp/secret/add") == 1

    client = connect(emu)
    with pytest.raises(TrapError, match="already exists"):
        client.path("ppp", "secret").add(name="carol")
    assert names(client.path("ppp", "secret")) == ["alice", "bob", "carol"]
    client.close()


def test_drop_mid_reply_on_single_sentence_reply(emu: RouterOSEmulator) -> None:
    stream = raw_stream(emu)
    emu.drop_mid_reply(1)
    stream.write_sentence(["/system/identity/set", "=name=cut"])
    received = b""
    with pytest.raises((ConnectionResetError, protocol.ConnectionClosed)):
        while True:
            chunk = stream.sock.recv(100)
            if not chunk:
                raise protocol.ConnectionClosed("closed")
            received += chunk
    full_reply = protocol.encode_sentence(["!done"])
    assert len(received) < len(full_reply)
    assert emu.identity == "cut"
    stream.close()


def test_disconnect_all(emu: RouterOSEmulator) -> None:
    clients = [connect(emu) for _ in range(3)]
    deadline = time.monotonic() + 2
    while emu.connection_count < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.disconnect_all() == 3
    assert emu.connection_count == 0
    for client in clients:
        with pytest.raises((LibRouterosError, OSError)):
            list(client.path("system", "identity"))


# --------------------------------------------------------------------------------------------
# concurrency, binding rules, lifecycle, CLI
# --------------------------------------------------------------------------------------------


def test_concurrent_clients(emu: RouterOSEmulator) -> None:
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            client = connect(emu)
            for item in range(10):
                client.path("ppp", "secret").add(name=f"user-{number}-{item}")
                list(client.path("ppp", "secret").select(Key("name")).where(Key("name") == f"user-{number}-0"))
            client.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    secrets = emu.secrets()
    assert len(secrets) == 80
    assert len({row[".id"] for row in secrets}) == 80
    assert emu.command_count("/ppp/secret/add") == 80
    assert emu.total_connections >= 8


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "::1", "192.168.88.1", ""])
def test_only_loopback_ipv4_may_be_bound(host: str) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        RouterOSEmulator(host=host)


def test_stop_and_start_again_on_same_port(emu: RouterOSEmulator) -> None:
    emu.add_secret("alice")
    port = emu.port
    client = connect(emu)
    emu.stop()
    assert not emu.running
    assert tcp_connect_refused(port)
    with pytest.raises((LibRouterosError, OSError)):
        list(client.path("ppp", "secret"))
    emu.start()
    assert emu.port == port
    assert names(connect(emu).path("ppp", "secret")) == ["alice"]


def test_cli_prints_address_and_stops_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "cli-state.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sonjog.network.routeros.emulator",
            "--port",
            "0",
            "--password",
            PASSWORD,
            "--state",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "127.0.0.1:" in line, (line, process.stderr.read() if process.stderr else "")
        port = int(line.split("127.0.0.1:")[1].split()[0])
        client = librouteros.connect("127.0.0.1", "admin", PASSWORD, port=port, timeout=5)
        client.path("ppp", "secret").add(name="from-cli")
        client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert json.loads(state.read_text())["tables"]["ppp/secret"]["rows"][0]["name"] == "from-cli"
