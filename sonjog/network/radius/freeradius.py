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


def _quote(value: object) -> str:
    """A FreeRADIUS config string holding exactly `value`.

    The 3.2 parser keeps backslashes literally except in front of the closing quote character, where
    they escape it; a `\\\\` pair is kept as two characters. So a value may not end in a backslash, and
    single quotes (which, unlike double quotes, do not expand `${...}`) cannot hold a backslash that
    precedes a quote. Values the parser cannot represent are refused rather than silently altered.
    """
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text or text.endswith("\\"):
        raise ValueError(f"{text!r} cannot be written into a FreeRADIUS config file (line break, NUL or final \\)")
    if "\\'" not in text:
        return "'" + text.replace("'", "\\'") + "'"
    if '\\"' not in text and "${" not in text:
        return '"' + text.replace('"', '\\"') + '"'
    raise ValueError(f"{text!r} cannot be written into a FreeRADIUS config file")


def _render(template: str, values: Mapping[str, object]) -> str:
    # FreeRADIUS syntax is full of braces, so placeholders are @NAME@ instead of str.format fields.
    for key, value in values.items():
        template = template.replace(f"@{key}@", str(value))
    return template


# Key of a radacct row. Acct-Session-Id is only unique within one NAS, so the key mixes in which NAS
# reported the session, on which port, for whom.
UNIQUE_ID_XLAT = (
    "%{md5:%{%{NAS-IPv6-Address}:-%{NAS-IP-Address}}|%{%{NAS-Port-Id}:-%{NAS-Port}}|%{Acct-Session-Id}|%{User-Name}}"
)

# The server and modules. Timeouts are short and reject_delay is 0 because the harness serves tests
# and a local development loop, where a delayed Access-Reject only slows everyone down.
_RADIUSD_CONF = """\
# Generated by sonjog.network.radius.freeradius; rewritten on every start.
prefix = /usr
confdir = @CONFDIR@
raddbdir = @CONFDIR@
run_dir = @RUNDIR@
logdir = @CONFDIR@
db_dir = @CONFDIR@
libdir = @LIBDIR@
pidfile = @PIDFILE@
name = freeradius

max_request_time = 10
cleanup_delay = 2
max_requests = 4096
hostname_lookups = no

# Where the log goes is set on the command line (-l stdout, redirected into radius.log).
log {
    colourise = no
    stripped_names = no
    auth = yes
    auth_badpass = no
    auth_goodpass = no
}

security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}

thread pool {
    start_servers = 2
    max_servers = 8
    min_spare_servers = 1
    max_spare_servers = 4
    max_requests_per_server = 0
    auto_limit_acct = no
}

@CLIENTS@

modules {
    # %{md5:...} used for Acct-Unique-Session-Id lives in rlm_expr.
    expr {
    }

    pap {
        normalise = no
    }

    sql {
        dialect = "postgresql"
        driver = "rlm_sql_postgresql"
@DB_SETTINGS@
        read_groups = yes
        read_profiles = no
        read_clients = @READ_CLIENTS@
        client_table = "nas"
        delete_stale_sessions = no
        sql_user_name = "%{User-Name}"
        group_attribute = "SQL-Group"

        pool {
            start = 1
            min = 1
            max = 8
            spare = 2
            uses = 0
            retry_delay = 1
            lifetime = 0
            idle_timeout = 60
            connect_timeout = 3
        }

        $INCLUDE @QUERIES@
    }
}

instantiate {
}

server sonjog {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = @AUTH_PORT@
    }

    listen {
        type = acct
        ipaddr = 127.0.0.1
        port = @ACCT_PORT@
    }

    authorize {
        sql
        pap
    }

    authenticate {
        Auth-Type PAP {
            pap
        }
    }

    preacct {
        # Accounting from a NAS that omits its own address would otherwise violate
        # radacct.nasipaddress NOT NULL; the packet source is the best substitute.
        if (!&NAS-IP-Address && !&NAS-IPv6-Address) {
            update request {
                &NAS-IP-Address := "%{Packet-Src-IP-Address}"
            }
        }
        update request {
            &Acct-Unique-Session-Id := "@UNIQUE_ID@"
        }
    }

    accounting {
        sql
    }

    post-auth {
        # rlm_sql has already copied the user's and groups' reply items into the reply; a NAS must not
        # receive a rate limit or address list together with the rejection.
        Post-Auth-Type REJECT {
            update {
                &reply: !* ANY
            }
        }
    }
}
"""

# The SQL this server runs.
#
# Address values are cast to inet, and existing column values are cast to inet before being mixed
# with them, so the same text works when a deployment declares the IPv6 prefix columns as text
# instead of inet (Sonjog's own radacct does): PostgreSQL assigns inet to a text column implicitly but
# refuses COALESCE(inet, text).
#
# Times come from the database clock shifted back by Acct-Delay-Time rather than from
# Event-Timestamp: small NASes often boot without NTP and stamp 1970, while PostgreSQL's clock is the
# one billing trusts.
#
# Every accounting type falls back from UPDATE to INSERT (rlm_sql tries the next query when one
# changes no row), so a lost Start or a Stop for an unknown session still leaves a row to bill.
_QUERIES_CONF = r"""
# Generated by sonjog.network.radius.freeradius.
safe_characters = @SAFE_CHARACTERS@

client_query = "SELECT id, nasname, shortname, type, secret, server FROM nas"

authorize_check_query = "\
    SELECT id, username, attribute, value, op FROM radcheck \
    WHERE username = '%{SQL-User-Name}' ORDER BY id"

authorize_reply_query = "\
    SELECT id, username, attribute, value, op FROM radreply \
    WHERE username = '%{SQL-User-Name}' ORDER BY id"

group_membership_query = "\
    SELECT groupname FROM radusergroup \
    WHERE username = '%{SQL-User-Name}' ORDER BY priority"

@GROUP_CHECK@

authorize_group_reply_query = "\
    SELECT id, groupname, attribute, value, op FROM radgroupreply \
    WHERE groupname = '%{SQL-Group}' ORDER BY id"

accounting {
    reference = "type.%{Acct-Status-Type}.query"

    type {
        Start {
            query = "\
                INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, nasportid, \
                    nasporttype, acctstarttime, acctupdatetime, acctsessiontime, acctauthentic, connectinfo_start, \
                    acctinputoctets, acctoutputoctets, calledstationid, callingstationid, servicetype, \
                    framedprotocol, framedipaddress, framedipv6address, framedipv6prefix, framedinterfaceid, \
                    delegatedipv6prefix) \
                VALUES ('%{Acct-Session-Id}', '%{Acct-Unique-Session-Id}', '%{SQL-User-Name}', \
                    NULLIF('%{Realm}', ''), '%{%{NAS-IPv6-Address}:-%{NAS-IP-Address}}'::inet, \
                    NULLIF('%{%{NAS-Port-Id}:-%{NAS-Port}}', ''), NULLIF('%{NAS-Port-Type}', ''), \
                    @EVENT_TIME@, @EVENT_TIME@, 0, NULLIF('%{Acct-Authentic}', ''), \
                    NULLIF('%{Connect-Info}', ''), 0, 0, '%{Called-Station-Id}', '%{Calling-Station-Id}', \
                    NULLIF('%{Service-Type}', ''), NULLIF('%{Framed-Protocol}', ''), \
                    NULLIF('%{Framed-IP-Address}', '')::inet, NULLIF('%{Framed-IPv6-Address}', '')::inet, \
                    NULLIF('%{Framed-IPv6-Prefix}', '')::inet, NULLIF('%{Framed-Interface-Id}', ''), \
                    NULLIF('%{Delegated-IPv6-Prefix}', '')::inet) \
                ON CONFLICT (acctuniqueid) DO UPDATE SET \
                    acctstarttime = EXCLUDED.acctstarttime, \
                    acctupdatetime = EXCLUDED.acctupdatetime, \
                    connectinfo_start = EXCLUDED.connectinfo_start \
                WHERE radacct.acctstoptime IS NULL"
        }

        Interim-Update {
            query = "\
                UPDATE radacct SET \
                    acctinterval = EXTRACT(EPOCH FROM \
                        (@EVENT_TIME@ - COALESCE(acctupdatetime, acctstarttime)))::bigint, \
                    acctupdatetime = @EVENT_TIME@, \
                    acctsessiontime = COALESCE(NULLIF('%{Acct-Session-Time}', '')::bigint, acctsessiontime), \
                    acctinputoctets = @INPUT_OCTETS@, \
                    acctoutputoctets = @OUTPUT_OCTETS@, \
                    framedipaddress = COALESCE(NULLIF('%{Framed-IP-Address}', '')::inet, \
                        framedipaddress::inet), \
                    framedipv6address = COALESCE(NULLIF('%{Framed-IPv6-Address}', '')::inet, \
                        framedipv6address::inet), \
                    framedipv6prefix = COALESCE(NULLIF('%{Framed-IPv6-Prefix}', '')::inet, \
                        framedipv6prefix::inet), \
                    delegatedipv6prefix = COALESCE(NULLIF('%{Delegated-IPv6-Prefix}', '')::inet, \
                        delegatedipv6prefix::inet) \
                WHERE acctuniqueid = '%{Acct-Unique-Session-Id}' AND acctstoptime IS NULL"
            query = "\
                INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, nasportid, \
                    nasporttype, acctstarttime, acctupdatetime, acctsessiontime, acctauthentic, \
                    acctinputoctets, acctoutputoctets, calledstationid, callingstationid, servicetype, \
                    framedprotocol, framedipaddress, framedipv6address, framedipv6prefix, delegatedipv6prefix) \
                VALUES ('%{Acct-Session-Id}', '%{Acct-Unique-Session-Id}', '%{SQL-User-Name}', \
                    NULLIF('%{Realm}', ''), '%{%{NAS-IPv6-Address}:-%{NAS-IP-Address}}'::inet, \
                    NULLIF('%{%{NAS-Port-Id}:-%{NAS-Port}}', ''), NULLIF('%{NAS-Port-Type}', ''), \
                    @EVENT_TIME@ - make_interval(secs => COALESCE(NULLIF('%{Acct-Session-Time}', '')::bigint, 0)), \
                    @EVENT_TIME@, NULLIF('%{Acct-Session-Time}', '')::bigint, NULLIF('%{Acct-Authentic}', ''), \
                    @INPUT_OCTETS@, @OUTPUT_OCTETS@, '%{Called-Station-Id}', '%{Calling-Station-Id}', \
                    NULLIF('%{Service-Type}', ''), NULLIF('%{Framed-Protocol}', ''), \
                    NULLIF('%{Framed-IP-Address}', '')::inet, NULLIF('%{Framed-IPv6-Address}', '')::inet, \
                    NULLIF('%{Framed-IPv6-Prefix}', '')::inet, NULLIF('%{Delegated-IPv6-Prefix}', '')::inet) \
                ON CONFLICT (acctuniqueid) DO NOTHING"
        }

        Stop {
            query = "\
                UPDATE radacct SET \
                    acctstoptime = @EVENT_TIME@, \
                    acctupdatetime = @EVENT_TIME@, \
                    acctsessiontime = COALESCE(NULLIF('%{Acct-Session-Time}', '')::bigint, \
                        EXTRACT(EPOCH FROM (@EVENT_TIME@ - acctstarttime))::bigint), \
                    acctinputoctets = @INPUT_OCTETS@, \
                    acctoutputoctets = @OUTPUT_OCTETS@, \
                    acctterminatecause = NULLIF('%{Acct-Terminate-Cause}', ''), \
                    connectinfo_stop = NULLIF('%{Connect-Info}', '') \
                WHERE acctuniqueid = '%{Acct-Unique-Session-Id}' AND acctstoptime IS NULL"
            query = "\
                INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, nasportid, \
                    nasporttype, acctstarttime, acctupdatetime, acctstoptime, acctsessiontime, acctauthentic, \
                    connectinfo_stop, acctinputoctets, acctoutputoctets, calledstationid, callingstationid, \
                    acctterminatecause, servicetype, framedprotocol, framedipaddress) \
                VALUES ('%{Acct-Session-Id}', '%{Acct-Unique-Session-Id}', '%{SQL-User-Name}', \
                    NULLIF('%{Realm}', ''), '%{%{NAS-IPv6-Address}:-%{NAS-IP-Address}}'::inet, \
                    NULLIF('%{%{NAS-Port-Id}:-%{NAS-Port}}', ''), NULLIF('%{NAS-Port-Type}', ''), \
                    @EVENT_TIME@ - make_interval(secs => COALESCE(NULLIF('%{Acct-Session-Time}', '')::bigint, 0)), \
                    @EVENT_TIME@, @EVENT_TIME@, NULLIF('%{Acct-Session-Time}', '')::bigint, \
                    NULLIF('%{Acct-Authentic}', ''), NULLIF('%{Connect-Info}', ''), \
                    @INPUT_OCTETS@, @OUTPUT_OCTETS@, '%{Called-Station-Id}', '%{Calling-Station-Id}', \
                    NULLIF('%{Acct-Terminate-Cause}', ''), NULLIF('%{Service-Type}', ''), \
                    NULLIF('%{Framed-Protocol}', ''), NULLIF('%{Framed-IP-Address}', '')::inet) \
                ON CONFLICT (acctuniqueid) DO NOTHING"
        }

        # A NAS that reboots cannot send Stops for the sessions it lost; close them all at once.
        Accounting-On {
            query = "\
                UPDATE radacct SET \
                    acctstoptime = @EVENT_TIME@, \
                    acctupdatetime = @EVENT_TIME@, \
                    acctsessiontime = EXTRACT(EPOCH FROM (@EVENT_TIME@ - acctstarttime))::bigint, \
                    acctterminatecause = COALESCE(NULLIF('%{Acct-Terminate-Cause}', ''), 'NAS-Reboot') \
                WHERE acctstoptime IS NULL \
                AND nasipaddress = '%{%{NAS-IPv6-Address}:-%{NAS-IP-Address}}'::inet \
                AND acctstarttime <= @EVENT_TIME@"
        }

        Accounting-Off {
            query = "${..Accounting-On.query}"
        }
    }
}
"""

_GROUP_CHECK_QUERY = """\
authorize_group_check_query = "\\
    SELECT id, groupname, attribute, value, op FROM radgroupcheck \\
    WHERE groupname = '%{SQL-Group}' ORDER BY id"
"""

# rlm_sql rewrites every character outside this set as =XX, and does so once per level of nested
# %{...:-...} expansion, so MikroTik's "<pppoe-alice>" port ids came out as "=3D3Cpppoe-alice=3D3E".
# Inside a standard-conforming PostgreSQL literal only the quote is special; the backslash is kept
# out as well so that a server with standard_conforming_strings=off stays safe. Multi-byte UTF-8 is
# always passed through by rlm_sql.
SAFE_CHARACTERS = "".join(chr(code) for code in range(32, 127) if chr(code) not in "'\\")

_QUERY_FRAGMENTS = {
    "EVENT_TIME": "(now() - make_interval(secs => COALESCE(NULLIF('%{Acct-Delay-Time}', '')::bigint, 0)))",
    # Counters wrap at 4 GiB; the Gigawords attributes (RFC 2869) carry the high 32 bits.
    "INPUT_OCTETS": "((COALESCE(NULLIF('%{Acct-Input-Gigawords}', ''), '0')::bigint << 32) "
    "+ COALESCE(NULLIF('%{Acct-Input-Octets}', ''), '0')::bigint)",
    "OUTPUT_OCTETS": "((COALESCE(NULLIF('%{Acct-Output-Gigawords}', ''), '0')::bigint << 32) "
    "+ COALESCE(NULLIF('%{Acct-Output-Octets}', ''), '0')::bigint)",
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
                f"    secret = {_quote(secret)}\n"
                f"    shortname = {_quote(f'client-{index}')}\n"
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
        radiusd = _render(
            _RADIUSD_CONF,
            {
                "CONFDIR": _quote(workdir),
                "RUNDIR": _quote(workdir / "run"),
                "PIDFILE": _quote(workdir / "run" / "radiusd.pid"),
                "QUERIES": workdir / "queries.conf",
                "LIBDIR": _quote(freeradius_libdir()),
                "CLIENTS": self._clients_conf(),
                "DB_SETTINGS": self._db_settings(),
                "READ_CLIENTS": "yes" if self.read_nas_clients else "no",
                "AUTH_PORT": self.auth_port,
                "ACCT_PORT": self.acct_port,
                "UNIQUE_ID": UNIQUE_ID_XLAT,
            },
        )
        queries = _render(_QUERIES_CONF, {"GROUP_CHECK": _GROUP_CHECK_QUERY if self.group_check else ""})
        queries = _render(queries, _QUERY_FRAGMENTS)
        # Last, because the character set itself contains the placeholder marker.
        queries = _render(queries, {"SAFE_CHARACTERS": _quote(SAFE_CHARACTERS)})
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
