"""Backups with the real pg_dump and restores with the real pg_restore into a new database."""

import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sonjog.automation.backup import (
    BACKUP_NAME,
    _connection_fields,
    connect,
    database_backup,
    database_restore,
    pg_tool,
)
from sonjog.automation.exceptions import BackupError, RestoreRefused
from sonjog.billing.verification import CHECKS, COUNTS_SQL, ledger_verify
from sonjog.demo.seed import seed_isp


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def database_exists(name):
    with connect() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def drop_database(name):
    with connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def restore_name():
    name = f"sonjog_restore_test_{os.getpid()}"
    drop_database(name)
    yield name
    drop_database(name)


@pytest.mark.django_db(transaction=True)  # pg_dump is another session: it sees committed rows only
def test_backup_then_restore_into_a_new_database_keeps_every_ledger_invariant(tmp_path, restore_name):
    seed_isp(subscribers=50, months=3)
    source = ledger_verify()
    assert source.ok and source.counts["ledger_entries"] > 100

    backup = database_backup(directory=tmp_path)
    path = Path(backup.path)
    assert path.parent == tmp_path and BACKUP_NAME.match(path.name) and backup.bytes == path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind

    restored = database_restore(path=path, database=restore_name)
    assert restored.tables > 20
    with connect(restore_name) as copy:
        for check, sql in CHECKS.items():
            assert copy.execute(sql).fetchall() == [], check
        counts = {name: copy.execute(sql).fetchall()[0][0] for name, sql in COUNTS_SQL.items()}
    assert counts == source.counts

    # The copy now exists and holds data: a second restore into it is refused, by the service and
    # by the command (exit 2, one line).
    with pytest.raises(RestoreRefused, match="not empty"):
        database_restore(path=path, database=restore_name)
    with pytest.raises(CommandError) as caught:
        run("restore", str(path), "--database", restore_name)
    assert caught.value.returncode == 2 and "already exists and is not empty" in str(caught.value)


@pytest.mark.django_db
def test_backup_command_keeps_the_newest_backups_only(tmp_path, settings):
    settings.SONJOG_BACKUP_DIR = str(tmp_path)
    settings.SONJOG_BACKUP_KEEP = 2
    (tmp_path / "notes.txt").write_text("not a backup")
    made = [json.loads(run("backup", "--json")) for _ in range(3)]
    assert made[0]["deleted"] == [] and made[1]["deleted"] == []
    assert made[2]["deleted"] == [Path(made[0]["path"]).name]
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted([Path(made[1]["path"]).name, Path(made[2]["path"]).name, "notes.txt"])
    assert "Backed up to" in run("backup")


@pytest.mark.django_db
def test_two_backups_in_the_same_second_get_distinct_names(tmp_path, frozen_clock):
    first = database_backup(directory=tmp_path, keep=5)
    second = database_backup(directory=tmp_path, keep=5)
    assert Path(first.path).name == "sonjog-20270615-120000.dump"
    assert Path(second.path).name == "sonjog-20270615-120000-2.dump"
    third = database_backup(directory=tmp_path, keep=2)
    assert third.deleted == ["sonjog-20270615-120000.dump"]
    # The freed first name is not reused: a new backup always sorts after the ones it joins.
    fourth = database_backup(directory=tmp_path, keep=2)
    assert Path(fourth.path).name == "sonjog-20270615-120000-4.dump"
    assert fourth.deleted == ["sonjog-20270615-120000-2.dump"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sonjog-20270615-120000-3.dump", Path(fourth.path).name]


@pytest.mark.django_db
def test_restore_refuses_bad_input_with_exit_2(tmp_path, restore_name):
    for args, message in (
        ([str(tmp_path / "missing.dump"), "--database", restore_name], "no backup file"),
        ([__file__, "--database", "1bad-name"], "not a usable database name"),
        ([__file__, "--database", _connection_fields()["dbname"]], "not empty"),
    ):
        with pytest.raises(CommandError) as caught:
            run("restore", *args)
        assert caught.value.returncode == 2 and message in str(caught.value)
    assert not database_exists(restore_name)


@pytest.mark.django_db
def test_a_failed_restore_drops_the_database_it_created(tmp_path, restore_name):
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"this is not a pg_dump archive")
    with pytest.raises(BackupError, match="pg_restore failed"):
        database_restore(path=junk, database=restore_name)
    assert not database_exists(restore_name)
    with pytest.raises(CommandError) as caught:
        run("restore", str(junk), "--database", restore_name)
    assert caught.value.returncode == 1


def test_the_tools_match_the_servers_major_version(settings):
    assert pg_tool("pg_dump", 18).major == 18
    assert pg_tool("pg_restore", 18).major == 18
    debian_15 = Path("/usr/lib/postgresql/15/bin/pg_dump")
    # A PostgreSQL 15 server gets a 15 pg_dump when the machine has one, else the nearest newer.
    assert pg_tool("pg_dump", 15).major == (15 if debian_15.exists() else 16)
    with pytest.raises(BackupError, match="no pg_dump for PostgreSQL 99"):
        pg_tool("pg_dump", 99)
    settings.SONJOG_PG_BIN_DIR = str(pg_tool("pg_dump", 18).path.parent)
    assert pg_tool("pg_dump", 16).major == 18  # pinned: only that directory counts
