"""Run the real Debian FreeRADIUS 3 server against Sonjog's PostgreSQL, configured in a private directory.

The configuration is generated from scratch (nothing under /etc/freeradius is read): one virtual
server listening on 127.0.0.1 only, `pap` for Cleartext-Password, and `rlm_sql` with the PostgreSQL
driver reading radcheck/radreply/radusergroup/radgroupcheck/radgroupreply and writing radacct. The
column names are those of FreeRADIUS 3's PostgreSQL schema (see schema.sql beside this file), so the
same queries work against the plain tables and against the views Sonjog provides.

Accounting rows are keyed by `acctuniqueid`, which this configuration computes as
md5("<NAS address>|<NAS-Port-Id or NAS-Port>|<Acct-Session-Id>|<User-Name>") in `preacct`; radacct must
have a UNIQUE constraint on it because the Start query upserts on that column.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from sonjog.network.radius.freeradius_conf import (
    GROUP_CHECK_QUERY,
    QUERIES_CONF,
    QUERY_FRAGMENTS,
    RADIUSD_CONF,
    SAFE_CHARACTERS,
    UNIQUE_ID_XLAT,
    conf_quote,
    conf_render,
)

INSTALL_PACKAGES = ("freeradius", "freeradius-postgresql", "freeradius-utils")
INSTALL_SCRIPT = "scripts/install-system-deps.sh " + " ".join(INSTALL_PACKAGES)
DEFAULT_CLIENTS: tuple[tuple[str, str], ...] = (("127.0.0.1", "testing123"),)
START_TIMEOUT = 15.0
READY_MARKER = "Ready to process requests"

_LIBPQ_VARIABLES = {
    "host": "PGHOST",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "sslmode": "PGSSLMODE",
}
_BINARY_CANDIDATES = ("/usr/sbin/freeradius", "/usr/sbin/radiusd", "/usr/local/sbin/radiusd")
_LIBDIR_CANDIDATES = ("/usr/lib/freeradius", "/usr/lib64/freeradius", "/usr/local/lib/freeradius")
_DICTDIR_CANDIDATES = ("/usr/share/freeradius", "/usr/local/share/freeradius")


class FreeRadiusError(RuntimeError):
    """FreeRADIUS is missing, misconfigured or did not come up."""


class FreeRadiusNotInstalled(FreeRadiusError):
    pass


def install_hint() -> str:
    return "sudo apt-get install -y " + " ".join(INSTALL_PACKAGES)


def _missing(what: str) -> FreeRadiusNotInstalled:
    return FreeRadiusNotInstalled(
        f"{what} not found: run `bash {INSTALL_SCRIPT}` (or `{install_hint()}`) to install FreeRADIUS 3"
    )


def freeradius_binary() -> str:
    """Path of the FreeRADIUS daemon (Debian names it `freeradius`, upstream `radiusd`)."""
    for name in ("freeradius", "radiusd"):
        found = shutil.which(name)
        if found:
            return found
    # /usr/sbin is often not on a non-root PATH.
    for candidate in _BINARY_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise _missing("the freeradius binary")


def freeradius_libdir() -> str:
    """Directory holding the rlm_* modules; the PostgreSQL driver comes from a separate Debian package."""
    for candidate in _LIBDIR_CANDIDATES:
        if Path(candidate, "rlm_sql.so").exists():
            if not Path(candidate, "rlm_sql_postgresql.so").exists():
                raise _missing(f"rlm_sql_postgresql.so in {candidate}")
            return candidate
    raise _missing("the FreeRADIUS module directory (rlm_sql.so)")


def freeradius_dictdir() -> str:
    for candidate in _DICTDIR_CANDIDATES:
        if Path(candidate, "dictionary").exists():
            return candidate
    raise _missing("the FreeRADIUS dictionaries (dictionary)")


def radclient_binary() -> str:
    found = shutil.which("radclient") or ("/usr/bin/radclient" if os.access("/usr/bin/radclient", os.X_OK) else None)
    if not found:
        raise _missing("radclient (freeradius-utils)")
    return found


def free_udp_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct UDP ports that are free right now (held together so they cannot coincide)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def db_params_from_django(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The `db` argument of FreeRadiusServer for a Django DATABASES entry (HOST, PORT, NAME, USER, PASSWORD)."""
    # Empty HOST/USER keep Django's meaning: libpq's default socket directory and the OS user name.
    return {
        "host": settings.get("HOST") or "",
        "port": int(settings.get("PORT") or 5432),
        "dbname": settings["NAME"],
        "user": settings.get("USER") or "",
        "password": settings.get("PASSWORD") or "",
    }


class FreeRadiusServer:
    """One FreeRADIUS process with its own configuration directory.

    `db` has host, port (default 5432), dbname, user, and optionally password and sslmode. host may be
    an IP address/hostname or the directory of a PostgreSQL Unix socket (libpq tells them apart by the
    leading slash, as psycopg does); `db_params_from_django()` converts a Django DATABASES entry.

    `clients` are (address or CIDR network, shared secret) pairs; with `read_nas_clients` the server
    also loads the `nas` table at start-up. `group_check=False` leaves out the radgroupcheck query for
    databases that do not provide that table. Ports of 0 are replaced by free ports on 127.0.0.1 at
    start(), after which `auth_port`/`acct_port` hold the real ones.
    """

    def __init__(
        self,
        db: Mapping[str, Any],
        auth_port: int = 0,
        acct_port: int = 0,
        clients: Iterable[tuple[str, str]] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        read_nas_clients: bool = False,
        *,
        group_check: bool = True,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if not db.get("dbname"):
            raise ValueError("db needs at least dbname (and usually host, port, user, password)")
        self.db = dict(db)
        self.clients = list(clients) if clients is not None else list(DEFAULT_CLIENTS)
        self.read_nas_clients = read_nas_clients
        self.group_check = group_check
        self.start_timeout = start_timeout
        self._requested_ports = (auth_port, acct_port)
        self.auth_port = auth_port
        self.acct_port = acct_port
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if not self.clients and not read_nas_clients:
            raise ValueError("FreeRADIUS needs at least one client (clients=[...] or read_nas_clients=True)")

    # -- paths ------------------------------------------------------------------------------------

    @property
    def logfile(self) -> Path:
        if self.workdir is None:
            raise FreeRadiusError("the server has no work directory yet; call start() first")
        return self.workdir / "radius.log"

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except (FileNotFoundError, FreeRadiusError):
            return ""

    def _log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- configuration ----------------------------------------------------------------------------

    def _prepare_workdir(self) -> Path:
        if self._workdir_arg is not None:
            workdir = self._workdir_arg
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._tempdir = tempfile.TemporaryDirectory(prefix="sonjog-freeradius-")
            workdir = Path(self._tempdir.name)
        # radiusd refuses a configuration directory others can write to ("insecure configuration"),
        # which a caller-supplied directory under /tmp may well be.
        workdir.chmod(0o700)
        (workdir / "run").mkdir(mode=0o700, exist_ok=True)
        return workdir

    def _clients_conf(self) -> str:
        blocks = []
        for index, (address, secret) in enumerate(self.clients):
            # Validated because it is written unquoted into the config.
            ipaddress.ip_network(address, strict=False)
            blocks.append(
                f"client sonjog_client_{index} {{\n"
                f"    ipaddr = {address}\n"
                f"    secret = {conf_quote(secret)}\n"
                f"    shortname = {conf_quote(f'client-{index}')}\n"
                f"    nas_type = other\n"
                f"}}"
            )
        return "\n\n".join(blocks)

    def _db_settings(self) -> str:
        # rlm_sql_postgresql pastes server/login/password into a libpq conninfo string without escaping
        # (a quote in a password breaks it) and logs that string. Instead the connection parameters go
        # to libpq as PG* environment variables (see _db_environment), and radius_db holds only a
        # conninfo fragment: containing "=", it is taken verbatim instead of being used as dbname.
        lines = [
            "server = ''",
            "login = ''",
            "password = ''",
            "radius_db = 'connect_timeout=3'",
        ]
        return "\n".join("        " + line for line in lines)

    def _db_environment(self) -> dict[str, str]:
        # Inherited PG* variables are dropped so that a developer's PGSERVICE or PGPASSWORD cannot make
        # the server connect somewhere other than `db` says.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["PGPORT"] = str(int(self.db.get("port") or 5432))
        env["PGAPPNAME"] = "sonjog-freeradius"
        for key, variable in _LIBPQ_VARIABLES.items():
            # An unset or empty value leaves libpq its default (local socket, OS user name, no password).
            if self.db.get(key):
                env[variable] = str(self.db[key])
        return env

    def write_config(self) -> Path:
        """Write radiusd.conf and queries.conf into the work directory and return it."""
        if self.workdir is None:
            self.workdir = self._prepare_workdir()
        workdir = self.workdir
        radiusd = conf_render(
            RADIUSD_CONF,
            {
                "CONFDIR": conf_quote(workdir),
                "RUNDIR": conf_quote(workdir / "run"),
                "PIDFILE": conf_quote(workdir / "run" / "radiusd.pid"),
                "QUERIES": workdir / "queries.conf",
                "LIBDIR": conf_quote(freeradius_libdir()),
                "CLIENTS": self._clients_conf(),
                "DB_SETTINGS": self._db_settings(),
                "READ_CLIENTS": "yes" if self.read_nas_clients else "no",
                "AUTH_PORT": self.auth_port,
                "ACCT_PORT": self.acct_port,
                "UNIQUE_ID": UNIQUE_ID_XLAT,
            },
        )
        queries = conf_render(QUERIES_CONF, {"GROUP_CHECK": GROUP_CHECK_QUERY if self.group_check else ""})
        queries = conf_render(queries, QUERY_FRAGMENTS)
        # Last, because the character set itself contains the placeholder marker.
        queries = conf_render(queries, {"SAFE_CHARACTERS": conf_quote(SAFE_CHARACTERS)})
        # The server also reads a site dictionary from its config directory; an empty one keeps it
        # from looking anywhere else.
        files = {
            "radiusd.conf": radiusd,
            "queries.conf": queries,
            "dictionary": "# site-local attributes: none\n",
        }
        for name, text in files.items():
            path = workdir / name
            path.write_text(text)
            path.chmod(0o600)
        return workdir

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> FreeRadiusServer:
        if self.running:
            return self
        binary = freeradius_binary()
        dictdir = freeradius_dictdir()
        auth_port, acct_port = self._requested_ports
        spare = iter(port for port in free_udp_ports(3) if port not in (auth_port, acct_port))
        self.auth_port = auth_port or next(spare)
        self.acct_port = acct_port or next(spare)
        try:
            workdir = self.write_config()
            self.logfile.write_text("")
            # `-l stdout` plus a redirect puts everything in one file, including config parse errors
            # that radiusd prints before it would open a log file of its own.
            command = [binary, "-f", "-xx", "-l", "stdout", "-d", str(workdir), "-D", dictdir]
            with self.logfile.open("ab") as sink:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env=self._db_environment(),
                    preexec_fn=_parent_death_signal(),
                )
            # A test run that dies without reaching stop() must not leave a server behind.
            self._finalizer = weakref.finalize(self, _terminate, self._process)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        probe_secret = self._loopback_secret()
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise FreeRadiusError(
                    f"freeradius exited with status {code} during start-up; log tail:\n{self._log_tail()}"
                )
            if READY_MARKER in self.log_text():
                return
            if probe_secret is not None and _status_server(self.auth_port, probe_secret, timeout=0.2):
                return
            time.sleep(0.05)
        raise FreeRadiusError(
            f"freeradius did not become ready within {self.start_timeout:g} s; log tail:\n{self._log_tail()}"
        )

    def _loopback_secret(self) -> str | None:
        for address, secret in self.clients:
            if address.split("/")[0] == "127.0.0.1":
                return secret
        return None

    def ping(self, timeout: float = 0.5) -> bool:
        """Whether the server answers a Status-Server on its auth port (needs a 127.0.0.1 client)."""
        secret = self._loopback_secret()
        if secret is None or not self.running:
            return False
        return _status_server(self.auth_port, secret, timeout)

    def stop(self) -> None:
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _terminate(process)
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
            self.workdir = None

    def __enter__(self) -> FreeRadiusServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec hook making Linux send the server SIGTERM when this process dies, even by SIGKILL.

    The kernel ties this to the thread that forks, so it is only armed from the main thread: a server
    started by a short-lived worker thread would otherwise die with that thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return arm


def _status_server(port: int, secret: str, timeout: float) -> bool:
    """True if something on 127.0.0.1:port answers an RFC 5997 Status-Server with this secret."""
    from pyrad import packet as rad_packet
    from pyrad.client import Client, Timeout

    from sonjog.network.radius.coa import load_dictionary

    client = Client("127.0.0.1", authport=port, secret=secret.encode(), dict=load_dictionary())
    client.retries = 1
    client.timeout = timeout
    try:
        request = client.CreateAuthPacket(code=rad_packet.StatusServer)
        with contextlib.suppress(KeyError):
            request.AddAttribute("NAS-Identifier", "sonjog-harness")
        client.SendPacket(request)
        return True
    except (Timeout, OSError):
        return False
    finally:
        client._CloseSocket()
