"""The backup job's own run record is in the dump it writes, already finished: a database restored from
the backup equals the live one table for table (the run row included), and its ledger checks out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from sonjog.automation.backup import connect, database_restore
from sonjog.automation.models import JobRun
from sonjog.automation.services import job_run_now
from sonjog.billing.verification import CHECKS, COUNTS_SQL, ledger_verify
from sonjog.demo.seed import seed_isp

_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
# Every row of the table as text, in a fixed order: equal digests, equal tables.
_DIGEST = """SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM "{table}" t"""


def _drop(name: str) -> None:
    with connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def restore_name() -> Iterator[str]:
    name = f"sonjog_restore_run_{os.getpid()}"
    _drop(name)
    yield name
    _drop(name)


@pytest.mark.django_db(transaction=True)  # pg_dump is another session: it sees committed rows only
def test_a_restored_backup_equals_the_database_and_holds_its_own_run_finished(tmp_path, settings, restore_name):
    settings.SONJOG_BACKUP_DIR = str(tmp_path)
    seed_isp(subscribers=30, months=2)
    assert ledger_verify().ok

    run = job_run_now("automation.database_backup")  # what `sonjog backup` and the nightly job do
    assert run.status == JobRun.Status.OK, run.error
    path = Path(run.outcome["path"])
    assert path.is_file() and run.outcome["bytes"] == path.stat().st_size  # the caller gets it all
    stored = JobRun.objects.get(pk=run.pk)
    assert stored.status == JobRun.Status.OK and stored.finished_at is not None
    assert stored.outcome["path"] == str(path) and "bytes" not in stored.outcome  # as the dump has it

    database_restore(path=path, database=restore_name)
    with connection.cursor() as cursor:
        cursor.execute(_TABLES)
        tables = [row[0] for row in cursor.fetchall()]
        live = {}
        for table in tables:
            cursor.execute(_DIGEST.format(table=table))
            live[table] = cursor.fetchone()
    with connect(restore_name) as copy:
        assert [row[0] for row in copy.execute(_TABLES).fetchall()] == tables
        restored = {table: copy.execute(_DIGEST.format(table=table)).fetchone() for table in tables}  # type: ignore[arg-type]
        for check, sql in CHECKS.items():
            assert copy.execute(sql).fetchall() == [], check  # ledger_verify's checks, on the copy
        counts = {name: copy.execute(sql).fetchall()[0][0] for name, sql in COUNTS_SQL.items()}  # type: ignore[arg-type]
        copied_run = copy.execute(
            "SELECT status, finished_at FROM automation_jobrun WHERE id = %s", [run.pk]
        ).fetchone()
    assert len(tables) > 20
    assert {t: v for t, v in restored.items() if v != live[t]} == {}  # every table equal
    assert counts == ledger_verify().counts
    assert copied_run is not None and copied_run[0] == JobRun.Status.OK and copied_run[1] == stored.finished_at


@pytest.mark.django_db
def test_a_backup_whose_dump_fails_after_recording_itself_finished_is_an_error(tmp_path, settings):
    # A pg_dump that knows its version and then fails, as one would on a full disk.
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "pg_dump"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 99"; exit 0; fi\n'
        'echo "pg_dump: error: could not write to output file: No space left on device" >&2; exit 1\n'
    )
    fake.chmod(0o755)
    settings.SONJOG_PG_BIN_DIR = str(tools)
    settings.SONJOG_BACKUP_DIR = str(tmp_path / "backups")
    run = job_run_now("automation.database_backup")
    stored = JobRun.objects.get(pk=run.pk)
    assert stored.status == JobRun.Status.ERROR and "No space left on device" in stored.error
    assert stored.outcome == {}  # the early "finished" record does not survive the failure
    assert not list((tmp_path / "backups").iterdir())
