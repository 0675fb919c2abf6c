"""The MikroTik driver against the RouterOS emulator, over plain TCP and over TLS.

No Django and no database: each test starts its own emulator on 127.0.0.1 (random ports) and
checks the emulator's real state afterwards, not just what the driver says it did.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from sonjog.network.drivers import mikrotik
from sonjog.network.drivers.mikrotik import (
    ApplyResult,
    DesiredSecret,
    MikrotikDriver,
    RouterCommandError,
    RouterConfig,
    RouterConnectionLost,
    RouterError,
    RouterLoginFailed,
    RouterRefused,
    RouterTimeout,
    RouterTLSError,
    RouterUnreachable,
)
from sonjog.network.routeros.emulator import FileMenu, LoggedCommand, RouterOSEmulator

PASSWORD = "s3cret"
BANGLA = "গ্রাহক রহিম, মিরপুর ১০ — বকেয়া বিল"


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[RouterOSEmulator]:
    emulator = RouterOSEmulator(password=PASSWORD, tls_port=0).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def plain_config(emulator: RouterOSEmulator, **overrides: object) -> RouterConfig:
    options: dict[str, object] = {"port": emulator.port, "password": PASSWORD, "timeout": 5.0}
    options.update(overrides)
    return RouterConfig("127.0.0.1", **options)  # type: ignore[arg-type]


def tls_config(emulator: RouterOSEmulator, **overrides: object) -> RouterConfig:
    return plain_config(emulator, port=emulator.tls_port, use_tls=True, **overrides)


@pytest.fixture(params=["tcp", "tls"])
def config(request: pytest.FixtureRequest, emu: RouterOSEmulator) -> RouterConfig:
    return tls_config(emu) if request.param == "tls" else plain_config(emu)


@pytest.fixture
def driver(config: RouterConfig) -> Iterator[MikrotikDriver]:
    with MikrotikDriver(config) as connected:
        yield connected


def writes(emulator: RouterOSEmulator, path: str) -> list[LoggedCommand]:
    return [entry for entry in emulator.command_log if entry.path == path]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def drop_reply_to(emulator: RouterOSEmulator, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Cut the reply to the next ``path`` command (after the router applied it)."""
    original: Callable[..., None] = emulator._log_command
    armed = [True]

    def log_and_arm(command: object) -> None:
        original(command)
        if armed[0] and getattr(command, "path", None) == path:
            armed[0] = False
            emulator.drop_mid_reply(1)

    monkeypatch.setattr(emulator, "_log_command", log_and_arm)


def desired(name: str = "rahim", **fields: object) -> DesiredSecret:
    values: dict[str, object] = {"password": "pw-1", "profile": "10m", "comment": BANGLA}
    values.update(fields)
    return DesiredSecret(name, **values)  # type: ignore[arg-type]


@pytest.fixture
def isp(emu: RouterOSEmulator) -> RouterOSEmulator:
    """Package and suspension profiles as an ISP router would have them."""
    emu.add_profile("10m", rate_limit="10M/10M")
    emu.add_profile("20m", rate_limit="20M/20M")
    emu.add_profile("suspended", rate_limit="256k/256k", address_list="payment-due")
    return emu


# --------------------------------------------------------------------------------------------
# connecting and health
# --------------------------------------------------------------------------------------------


def test_driver_test_connection_reads_identity_and_resources(
    emu: RouterOSEmulator, config: RouterConfig, driver: MikrotikDriver
) -> None:
    emu.identity = "core-mirpur"
    emu.set_resource(cpu_load=42, board_name="CCR2004-16G-2S+")
    details = driver.test_connection()
    assert details["identity"] == "core-mirpur"
    assert details["version"] == "7.16.2 (stable)"
    assert details["board"] == "CCR2004-16G-2S+"
    assert details["cpu-load"] == "42"
    assert details["uptime"].endswith("s")
    transport = driver._api.protocol.transport.sock  # type: ignore[union-attr]
    assert isinstance(transport, ssl.SSLSocket) is config.use_tls


def test_module_test_connection_reports_success(emu: RouterOSEmulator, config: RouterConfig) -> None:
    result = mikrotik.test_connection(config)
    assert result.ok and result.kind is None
    assert result.details["identity"] == "emulated"
    assert "emulated" in result.message and "7.16.2" in result.message
    assert 0 < result.latency_ms < 5000
    assert emu.total_connections == 1


def test_refused_connection_is_classified(emu: RouterOSEmulator) -> None:
    port = emu.port
    emu.refuse_connections(True)
    result = mikrotik.test_connection(plain_config(emu))
    assert not result.ok and result.kind == "refused"
    assert f"port {port}" in result.message and "/ip service enable api" in result.message
    tls_result = mikrotik.test_connection(tls_config(emu))
    assert tls_result.kind == "refused" and "/ip service enable api-ssl" in tls_result.message
    with pytest.raises(RouterRefused) as caught, MikrotikDriver(plain_config(emu)):
        pass
    assert caught.value.retryable and caught.value.port == port


def test_closed_port_is_refused() -> None:
    result = mikrotik.test_connection(RouterConfig("127.0.0.1", port=free_port(), timeout=2))
    assert (result.ok, result.kind) == (False, "refused")


@pytest.mark.parametrize("use_tls", [False, True], ids=["tcp", "tls"])
def test_silent_router_times_out_within_the_configured_timeout(emu: RouterOSEmulator, use_tls: bool) -> None:
    make_config = tls_config if use_tls else plain_config
    emu.set_reply_delay(1.5)
    started = time.monotonic()
    result = mikrotik.test_connection(make_config(emu, timeout=0.3))
    assert (result.ok, result.kind) == (False, "timeout")
    assert "0.3s" in result.message
    assert time.monotonic() - started < 1.2
    with pytest.raises(RouterTimeout), MikrotikDriver(make_config(emu, timeout=0.3)):
        pass


def test_timeout_mid_command_drops_the_connection_and_next_call_reconnects(emu: RouterOSEmulator) -> None:
    emu.add_secret("alice", "pw")
    with MikrotikDriver(plain_config(emu, timeout=0.3)) as driver:
        emu.set_reply_delay(1.0)
        with pytest.raises(RouterTimeout, match="may or may not have been applied") as caught:
            driver.list_secrets()
        assert caught.value.command == "/ppp/secret/print"
        assert not driver.connected
        emu.set_reply_delay(0)
        connections_before = emu.total_connections
        assert [row["name"] for row in driver.list_secrets()] == ["alice"]
        assert emu.total_connections == connections_before + 1


@pytest.mark.parametrize("use_tls", [False, True], ids=["tcp", "tls"])
def test_bad_password_is_login_failed(emu: RouterOSEmulator, use_tls: bool) -> None:
    bad = (tls_config if use_tls else plain_config)(emu, password="wrong")
    result = mikrotik.test_connection(bad)
    assert (result.ok, result.kind) == (False, "login_failed")
    assert "'admin'" in result.message and "password" in result.message
    with pytest.raises(RouterLoginFailed), MikrotikDriver(bad):
        pass
    unknown_user = (tls_config if use_tls else plain_config)(emu, username="nobody")
    assert mikrotik.test_connection(unknown_user).kind == "login_failed"


def test_tls_client_on_plain_port_is_a_tls_error(emu: RouterOSEmulator) -> None:
    result = mikrotik.test_connection(plain_config(emu, use_tls=True, timeout=0.5))
    assert (result.ok, result.kind) == (False, "tls")
    assert "plain API port" in result.message and "8729" in result.message
    # Nothing but the handshake attempt reached the router: no login was ever sent.
    assert emu.command_count("/login") == 0


def test_plain_client_on_tls_port_is_a_tls_error(emu: RouterOSEmulator) -> None:
    result = mikrotik.test_connection(plain_config(emu, port=emu.tls_port))
    assert (result.ok, result.kind) == (False, "tls")
    assert "API-SSL port" in result.message
    with pytest.raises(RouterTLSError), MikrotikDriver(plain_config(emu, port=emu.tls_port)):
        pass


def test_untrusted_certificate_is_a_tls_error_only_when_verifying(emu: RouterOSEmulator) -> None:
    result = mikrotik.test_connection(tls_config(emu, verify_tls=True))
    assert (result.ok, result.kind) == (False, "tls")
    assert "not trusted" in result.message
    assert mikrotik.test_connection(tls_config(emu, verify_tls=False)).ok


def test_error_kinds_are_distinct_and_share_one_base() -> None:
    classes = [
        RouterRefused,
        RouterTimeout,
        RouterLoginFailed,
        RouterTLSError,
        RouterConnectionLost,
        RouterCommandError,
        RouterUnreachable,
    ]
    assert all(issubclass(cls, RouterError) for cls in classes)
    assert len({cls.kind for cls in classes}) == len(classes)
    error = RouterLoginFailed("check /user", host="10.0.0.1", port=8728)
    assert (str(error), error.kind, error.retryable) == ("check /user", "login_failed", False)


def test_driver_opens_lazily_and_closes(emu: RouterOSEmulator) -> None:
    driver = MikrotikDriver(plain_config(emu))
    assert not driver.connected and emu.total_connections == 0
    assert driver.list_secrets() == []
    assert driver.connected and emu.total_connections == 1
    driver.close()
    assert not driver.connected
    deadline = time.monotonic() + 2
    while emu.connection_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.connection_count == 0


# --------------------------------------------------------------------------------------------
# secrets
# --------------------------------------------------------------------------------------------


def test_ensure_secret_twice_adds_once(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    assert driver.ensure_secret("rahim", "pw-1", "default", comment=BANGLA) == "created"
    assert driver.ensure_secret("rahim", "pw-1", "default", comment=BANGLA) == "unchanged"
    assert len(writes(emu, "/ppp/secret/add")) == 1
    assert writes(emu, "/ppp/secret/set") == []
    stored = emu.secret("rahim")
    assert stored is not None
    assert (stored["password"], stored["profile"], stored["disabled"], stored["comment"]) == (
        "pw-1",
        "default",
        "false",
        BANGLA,
    )


def test_ensure_secret_changes_only_what_differs(isp: RouterOSEmulator, driver: MikrotikDriver) -> None:
    driver.ensure_secret("karim", "old", "10m", remote_address="10.20.0.5", comment="c1")
    isp.clear_command_log()
    assert driver.ensure_secret("karim", "new", "10m", remote_address="10.20.0.5/32", comment="c2") == "updated"
    (update,) = writes(isp, "/ppp/secret/set")
    assert set(update.attributes) == {".id", "password", "comment"}

    isp.clear_command_log()
    assert driver.ensure_secret("karim", "new", "20m", comment="c2", disabled=True) == "updated"
    (update,) = writes(isp, "/ppp/secret/set")
    assert set(update.attributes) == {".id", "profile", "disabled"}
    (unset,) = writes(isp, "/ppp/secret/unset")
    assert unset.attributes["value-name"] == "remote-address"
    stored = isp.secret("karim")
    assert stored is not None
    assert "remote-address" not in stored
    assert (stored["profile"], stored["disabled"], stored["password"]) == ("20m", "true", "new")
    assert driver.ensure_secret("karim", "new", "20m", comment="c2", disabled=True) == "unchanged"


def test_values_come_back_as_the_exact_text_stored(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    # librouteros on its own would hand back 1001 (an int) and False for "no".
    assert driver.ensure_secret("1001", "0042", "default", comment="no") == "created"
    secret = driver.get_secret("1001")
    assert secret is not None
    assert (secret["name"], secret["password"], secret["comment"], secret["disabled"]) == (
        "1001",
        "0042",
        "no",
        "false",
    )
    assert driver.ensure_secret("1001", "0042", "default", comment="no") == "unchanged"
    assert driver.ensure_secret("ঢাকা-১", "pw", "default", comment=BANGLA) == "created"
    fetched = driver.get_secret("ঢাকা-১")
    assert fetched is not None and fetched["comment"] == BANGLA
    assert emu.secret("ঢাকা-১") is not None


def test_get_list_disable_and_remove_secrets(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    emu.add_secret("alice", "a")
    emu.add_secret("bob", "b", disabled="yes")
    assert driver.get_secret("nobody") is None
    assert [row["name"] for row in driver.list_secrets()] == ["alice", "bob"]
    assert driver.set_secret_disabled("alice", True) is True
    assert driver.set_secret_disabled("alice", True) is False
    assert driver.set_secret_disabled("bob", False) is True
    assert [(row["name"], row["disabled"]) for row in emu.secrets()] == [("alice", "true"), ("bob", "false")]
    assert len(writes(emu, "/ppp/secret/set")) == 2
    with pytest.raises(RouterCommandError, match="no PPP secret 'ghost'"):
        driver.set_secret_disabled("ghost", True)
    assert driver.remove_secret("alice") is True
    assert driver.remove_secret("alice") is False
    assert [row["name"] for row in emu.secrets()] == ["bob"]


def test_missing_profile_is_a_command_error_that_names_it(driver: MikrotikDriver, emu: RouterOSEmulator) -> None:
    with pytest.raises(RouterCommandError, match="no PPP profile 'gold'") as caught:
        driver.ensure_secret("x", "pw", "gold")
    assert caught.value.kind == "command" and "profile" in caught.value.router_message
    assert emu.secrets() == []


def test_trap_keeps_the_connection_usable(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    with pytest.raises(RouterCommandError) as caught:
        driver.ensure_profile("broken", "very fast")
    assert "rate-limit" in caught.value.router_message
    assert caught.value.command == "/ppp/profile/add"
    assert driver.connected
    assert "default" in driver.list_profiles()
    assert emu.total_connections == 1


# --------------------------------------------------------------------------------------------
# sessions, address lists, profiles, export
# --------------------------------------------------------------------------------------------


def test_kick_removes_every_session_of_that_user(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    emu.add_active_session("rahim", "10.0.0.2", caller_id="AA:BB:CC:00:00:01")
    emu.add_active_session("rahim", "10.0.0.3", caller_id="AA:BB:CC:00:00:02")
    emu.add_active_session("karim", "10.0.0.4")
    assert driver.kick("rahim") == 2
    assert [row["name"] for row in emu.active_sessions()] == ["karim"]
    assert driver.kick("rahim") == 0
    assert len(writes(emu, "/ppp/active/remove")) == 1


def test_list_active_and_active_by_name(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    session_id = emu.add_active_session("rahim", "10.0.0.2", caller_id="AA:BB:CC:00:00:01", uptime=3725)
    emu.add_active_session("karim", "10.0.0.4")
    (first, _) = driver.list_active()
    assert first[".id"] == session_id
    assert (first["name"], first["address"], first["caller-id"], first["service"]) == (
        "rahim",
        "10.0.0.2",
        "AA:BB:CC:00:00:01",
        "pppoe",
    )
    assert first["uptime"].startswith("1h2m")
    by_name = driver.active_by_name()
    assert set(by_name) == {"rahim", "karim"} and by_name["karim"]["address"] == "10.0.0.4"


def test_address_list_add_is_idempotent_and_remove_counts(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    assert driver.address_list_add("suspended", "10.0.0.9", comment=BANGLA) is True
    assert driver.address_list_add("suspended", "10.0.0.9", comment=BANGLA) is False
    assert driver.address_list_add("other", "10.0.0.9") is True
    entries = driver.address_list_entries("suspended")
    assert [(row["address"], row["comment"]) for row in entries] == [("10.0.0.9", BANGLA)]
    assert len(emu.address_list("suspended")) == 1
    assert driver.address_list_remove("suspended", "10.0.0.9/32") == 1
    assert driver.address_list_remove("suspended", "10.0.0.9") == 0
    assert emu.address_list("suspended") == []
    assert [row["list"] for row in emu.address_list()] == ["other"]


def test_profiles_list_and_ensure(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    assert {"default", "default-encryption"} <= set(driver.list_profiles())
    assert driver.ensure_profile("10m", "10M/10M", address_list="paid", local_address="10.255.0.1") == "created"
    assert driver.ensure_profile("10m", "10M/10M", address_list="paid", local_address="10.255.0.1") == "unchanged"
    assert driver.ensure_profile("10m", "12M/12M", address_list="paid") == "updated"
    profile = driver.list_profiles()["10m"]
    assert (profile["rate-limit"], profile["address-list"], profile["local-address"]) == (
        "12M/12M",
        "paid",
        "10.255.0.1",
    )
    assert driver.ensure_profile("10m", None, address_list="") == "updated"
    assert next(row for row in emu.profiles() if row["name"] == "10m")["address-list"] == ""
    assert len(writes(emu, "/ppp/profile/add")) == 1


def test_export_config_reads_the_file_and_removes_it(emu: RouterOSEmulator, driver: MikrotikDriver) -> None:
    emu.add_profile("10m", rate_limit="10M/10M")
    emu.add_secret("alice", "topsecret", profile="10m")
    text = driver.export_config()
    lines = text.splitlines()
    assert lines[0].startswith("# ") and lines[0].endswith("by RouterOS 7.16.2")
    assert "/ppp secret" in lines and "add name=alice profile=10m" in lines
    assert "topsecret" not in text and "\r" not in text
    assert emu.files() == []
    assert "password=topsecret" in driver.export_config(show_sensitive=True)
    assert emu.files() == []
    assert emu.command_count("/export") == 2
    (export,) = writes(emu, "/export")[:1]
    assert export.attributes["file"].startswith("sonjog-export-")


def test_export_falls_back_to_inline_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # A router whose /export file=... leaves no readable file but that answers a plain /export.
    monkeypatch.setattr(FileMenu, "write_file", lambda self, name, contents: None)
    with RouterOSEmulator(password=PASSWORD, inline_export=True) as emulator:
        emulator.add_secret("alice", "pw")
        with MikrotikDriver(plain_config(emulator)) as driver:
            text = driver.export_config(wait=0.2)
        assert "add name=alice" in text
        assert [entry.attributes.get("file") for entry in writes(emulator, "/export")][1] is None


def test_export_with_no_output_at_all_is_a_command_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FileMenu, "write_file", lambda self, name, contents: None)
    with (
        RouterOSEmulator(password=PASSWORD) as emulator,
        MikrotikDriver(plain_config(emulator)) as driver,
        pytest.raises(RouterCommandError, match="produced no export"),
    ):
        driver.export_config(wait=0.2)


# --------------------------------------------------------------------------------------------
# apply_subscriber
# --------------------------------------------------------------------------------------------


def test_apply_enabled_creates_then_does_nothing(isp: RouterOSEmulator, driver: MikrotikDriver) -> None:
    first = driver.apply_subscriber(desired(remote_address="10.20.0.9"))
    assert first == ApplyResult(
        changed=True, actions=["secret.created"], router_state="enabled", online=False, session=None
    )
    secret = isp.secret("rahim")
    assert secret is not None
    assert (secret["profile"], secret["disabled"], secret["remote-address"], secret["comment"]) == (
        "10m",
        "false",
        "10.20.0.9",
        BANGLA,
    )
    second = driver.apply_subscriber(desired(remote_address="10.20.0.9"))
    assert (second.changed, second.actions, second.router_state) == (False, [], "enabled")
    assert len(writes(isp, "/ppp/secret/add")) == 1


def test_apply_disable_mode_disables_and_kicks(isp: RouterOSEmulator, driver: MikrotikDriver) -> None:
    isp.add_secret("rahim", "pw-1", profile="10m", comment=BANGLA)
    isp.add_active_session("rahim", "10.0.0.7")
    result = driver.apply_subscriber(desired(state="disabled", suspend_mode="disable"))
    assert result.actions == ["secret.updated", "session.kicked"]
    assert (result.router_state, result.online, result.session) == ("disabled", False, None)
    secret = isp.secret("rahim")
    assert secret is not None and secret["disabled"] == "true" and secret["profile"] == "10m"
    assert isp.active_sessions() == []

    again = driver.apply_subscriber(desired(state="disabled", suspend_mode="disable"))
    assert (again.changed, again.router_state) == (False, "disabled")
    # A session that slipped in (e.g. authenticated by RADIUS) is still thrown out.
    isp.add_active_session("rahim", "10.0.0.8")
    third = driver.apply_subscriber(desired(state="disabled", suspend_mode="disable"))
    assert third.actions == ["session.kicked"] and isp.active_sessions() == []


def test_apply_profile_mode_moves_to_suspended_profile_and_back(isp: RouterOSEmulator, driver: MikrotikDriver) -> None:
    isp.add_secret("rahim", "pw-1", profile="10m", comment=BANGLA)
    isp.add_active_session("rahim", "10.0.0.7")
    suspended = driver.apply_subscriber(desired(state="disabled", suspend_mode="profile"))
    assert suspended.actions == ["secret.updated", "session.kicked"]
    assert suspended.router_state == "disabled"
    secret = isp.secret("rahim")
    assert secret is not None and (secret["profile"], secret["disabled"]) == ("suspended", "false")
    assert isp.active_sessions() == []

    # The subscriber redials into the payment-page profile; nothing more to do.
    isp.add_active_session("rahim", "10.0.0.50")
    steady = driver.apply_subscriber(desired(state="disabled", suspend_mode="profile"))
    assert (steady.changed, steady.online, steady.router_state) == (False, True, "disabled")

    # Paid: back to the package profile, and the session is kicked so it picks that up.
    restored = driver.apply_subscriber(desired(state="enabled", suspend_mode="profile"))
    assert restored.actions == ["secret.updated", "session.kicked"]
    assert (restored.router_state, restored.online) == ("enabled", False)
    secret = isp.secret("rahim")
    assert secret is not None and secret["profile"] == "10m"


def test_apply_address_list_mode_lists_the_live_address_without_kicking(
    isp: RouterOSEmulator, driver: MikrotikDriver
) -> None:
    isp.add_secret("rahim", "pw-1", profile="10m", comment=BANGLA)
    isp.add_active_session("rahim", "10.0.0.7", caller_id="AA:BB:CC:00:00:07")
    result = driver.apply_subscriber(desired(state="disabled", suspend_mode="address_list"))
    assert result.actions == ["address_list.added"]
    assert (result.router_state, result.online) == ("disabled", True)
    assert result.session is not None and result.session["address"] == "10.0.0.7"
    assert [(row["address"], row["comment"]) for row in isp.address_list("suspended")] == [("10.0.0.7", "sonjog:rahim")]
    secret = isp.secret("rahim")
    assert secret is not None and (secret["profile"], secret["disabled"]) == ("10m", "false")
    assert len(isp.active_sessions()) == 1 and writes(isp, "/ppp/active/remove") == []

    assert driver.apply_subscriber(desired(state="disabled", suspend_mode="address_list")).changed is False

    enabled = driver.apply_subscriber(desired(state="enabled", suspend_mode="address_list"))
    assert enabled.actions == ["address_list.removed"]
    assert (enabled.router_state, enabled.online) == ("enabled", True)
    assert isp.address_list("suspended") == []


def test_apply_address_list_mode_uses_fixed_address_when_offline(isp: RouterOSEmulator, driver: MikrotikDriver) -> None:
    with_ip = driver.apply_subscriber(
        desired(state="disabled", suspend_mode="address_list", remote_address="10.20.0.9", suspended_list="due")
    )
    assert with_ip.actions == ["secret.created", "address_list.added"]
    assert with_ip.router_state == "disabled"
    assert [row["address"] for row in isp.address_list("due")] == ["10.20.0.9"]

    no_ip = driver.apply_subscriber(desired("karim", state="disabled", suspend_mode="address_list"))
    assert no_ip.actions == ["secret.created"]
    assert no_ip.router_state == "enabled"  # nothing on the router blocks karim yet
    assert no_ip.warnings and "offline" in no_ip.warnings[0]


def test_apply_absent_removes_secret_session_and_listing(isp: RouterOSEmulator, driver: MikrotikDriver) -> None:
    isp.add_secret("rahim", "pw-1", profile="10m")
    isp.add_secret("karim", "pw-2", profile="10m")
    isp.add_active_session("rahim", "10.0.0.7")
    isp.add_address_list_entry("suspended", "10.0.0.7", comment="sonjog:rahim")
    isp.add_address_list_entry("suspended", "10.0.0.99", comment="sonjog:karim")
    result = driver.apply_subscriber(desired(state="absent"))
    assert result.actions == ["secret.removed", "session.kicked", "address_list.removed"]
    assert (result.router_state, result.online) == ("absent", False)
    assert [row["name"] for row in isp.secrets()] == ["karim"]
    assert isp.active_sessions() == []
    assert [row["address"] for row in isp.address_list("suspended")] == ["10.0.0.99"]
    again = driver.apply_subscriber(desired(state="absent"))
    assert (again.changed, again.router_state) == (False, "absent")


def test_desired_secret_rejects_unknown_state_and_mode() -> None:
    with pytest.raises(ValueError, match="state"):
        desired(state="paused")
    with pytest.raises(ValueError, match="suspend_mode"):
        desired(suspend_mode="throttle")


# --------------------------------------------------------------------------------------------
# lost replies and retries
# --------------------------------------------------------------------------------------------


def test_reply_cut_mid_print_is_connection_lost(emu: RouterOSEmulator, config: RouterConfig) -> None:
    for index in range(5):
        emu.add_secret(f"user{index}", "pw")
    with MikrotikDriver(config) as driver:
        emu.drop_mid_reply(1)
        with pytest.raises(RouterConnectionLost, match="may or may not have been applied") as caught:
            driver.list_secrets()
        assert caught.value.kind == "connection_lost" and caught.value.retryable
        assert not driver.connected
        assert len(driver.list_secrets()) == 5


def test_lost_reply_to_add_then_retry_converges_to_one_secret(
    emu: RouterOSEmulator, config: RouterConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_reply_to(emu, monkeypatch, "/ppp/secret/add")
    with pytest.raises(RouterConnectionLost), MikrotikDriver(config) as driver:
        driver.ensure_secret("rahim", "pw-1", "default", comment=BANGLA)
    assert emu.secret("rahim") is not None  # the router did apply it
    with MikrotikDriver(config) as retry:
        assert retry.ensure_secret("rahim", "pw-1", "default", comment=BANGLA) == "unchanged"
    assert [row["name"] for row in emu.secrets()] == ["rahim"]
    assert emu.command_count("/ppp/secret/add") == 1


def test_lost_reply_to_kick_then_retry_converges(
    isp: RouterOSEmulator, config: RouterConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    isp.add_secret("rahim", "pw-1", profile="10m", comment=BANGLA)
    isp.add_active_session("rahim", "10.0.0.7")
    drop_reply_to(isp, monkeypatch, "/ppp/active/remove")
    with pytest.raises(RouterConnectionLost), MikrotikDriver(config) as driver:
        driver.apply_subscriber(desired(state="disabled", suspend_mode="disable"))
    with MikrotikDriver(config) as retry:
        result = retry.apply_subscriber(desired(state="disabled", suspend_mode="disable"))
    assert (result.changed, result.router_state, result.online) == (False, "disabled", False)
    assert [row["name"] for row in isp.secrets()] == ["rahim"]
    assert isp.active_sessions() == []


# --------------------------------------------------------------------------------------------
# observe
# --------------------------------------------------------------------------------------------


def test_observe_reads_a_whole_router_in_three_commands(isp: RouterOSEmulator, config: RouterConfig) -> None:
    for index in range(500):
        isp.add_secret(
            f"sub{index:03d}",
            f"pw{index}",
            profile="10m" if index % 2 else "20m",
            comment=BANGLA if index == 7 else "",
            disabled="yes" if index % 50 == 0 else "no",
        )
    isp.add_active_session("sub007", "10.0.0.7", caller_id="AA:BB:CC:00:00:07", uptime=65)
    isp.add_active_session("radius-only", "10.0.0.200")
    isp.add_address_list_entry("suspended", "10.0.0.7")
    with MikrotikDriver(config) as driver:
        isp.clear_command_log()
        seen = driver.observe()
    assert len(isp.command_log) <= 3
    assert all(entry.path.endswith("/print") for entry in isp.command_log)
    assert len(seen) == 501
    sub7 = seen["sub007"]
    assert (sub7.exists, sub7.disabled, sub7.profile, sub7.comment, sub7.password) == (
        True,
        False,
        "10m",
        BANGLA,
        "pw7",
    )
    assert (sub7.online, sub7.address, sub7.caller_id, sub7.suspended_listed) == (
        True,
        "10.0.0.7",
        "AA:BB:CC:00:00:07",
        True,
    )
    assert sub7.uptime is not None and sub7.uptime.startswith("1m")
    assert seen["sub050"].disabled and not seen["sub050"].online and not seen["sub050"].suspended_listed
    assert not seen["radius-only"].exists and seen["radius-only"].online
    assert "pw7" not in repr(sub7)


def test_observe_selected_names_includes_missing_ones(isp: RouterOSEmulator, driver: MikrotikDriver) -> None:
    isp.add_secret("rahim", "pw", profile="10m")
    isp.add_secret("karim", "pw", profile="10m")
    seen = driver.observe(["rahim", "ghost"])
    assert set(seen) == {"rahim", "ghost"}
    assert seen["rahim"].exists and not seen["ghost"].exists and seen["ghost"].profile is None
