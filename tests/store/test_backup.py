"""Backup and restore of the whole store: a round trip (SQLite and PostgreSQL, and across
them) gives back every row, the histories stay append-only, and a restore never overwrites."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from layers.scenarios import load_library, scenario_to_geojson
from store.backup import BackupError, read_header, restore_backup, write_backup
from store.db import open_store
from store.drills import record_injects, start_drill, stop_drill
from store.feeds import replace_hazards
from store.outreach import add_targets, open_board, record_status
from store.roster import replace_roster
from store.rules import reset_rules
from store.tables import feed_cache, metadata
from store.users import create_user, issue_token
from tests.dashboard.test_wall import _hazards

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


def _fill(engine, roster) -> None:
    """Something in every table a backup holds."""
    missions, people = roster
    replace_roster(engine, missions, people, source="backup test", actor="test", now=NOW,
                   synthetic=True)
    create_user(engine, "ana", "coordinator", "a long enough password", actor="test", now=NOW)
    issue_token(engine, "ops wall", actor="test", now=NOW)
    reset_rules(engine, "test", NOW)
    replace_hazards(engine, "nws", _hazards(), now=NOW)
    board, _ = open_board(engine, ["nws:flood-dc"], name="DC flood", actor="test", now=NOW)
    add_targets(engine, board.board_id, [("mission", missions["mission_id"].iloc[0])], now=NOW)
    first, _ = record_status(engine, board.board_id, "mission", missions["mission_id"].iloc[0],
                             "attempted", note="no answer ☎", actor="ana", now=NOW)
    record_status(engine, board.board_id, "mission", missions["mission_id"].iloc[0],
                  "reached_safe", actor="ana", now=NOW + timedelta(minutes=5),
                  expected_event_id=first.event_id)
    scenario = load_library()["miami-hurricane"]
    drill = start_drill(engine, scenario_name=scenario.name,
                        scenario_json=json.dumps(scenario_to_geojson(scenario)), name="drill",
                        speed=60.0, actor="test", now=NOW)
    record_injects(engine, drill.drill_id, [(scenario.injects[0].inject_id, 0.0)], NOW)
    stop_drill(engine, drill.drill_id, actor="test", now=NOW + timedelta(minutes=9))


def _dump(engine) -> dict[str, list[tuple]]:
    """Every row of every backed-up table, normalised for comparison across databases."""
    out = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name == feed_cache.name:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = connection.execute(sa.select(table).order_by(*order)).all()
            out[table.name] = [tuple(
                v.astimezone(timezone.utc).replace(tzinfo=None) if isinstance(v, datetime)
                and v.tzinfo else bytes(v) if isinstance(v, memoryview) else v
                for v in row) for row in rows]
    return out


def test_a_backup_restores_every_row(store_engine, checked_small_roster, tmp_path) -> None:
    _fill(store_engine, checked_small_roster)
    before = _dump(store_engine)
    path = tmp_path / "backup.jsonl.gz"
    header = write_backup(store_engine, path, actor="test", now=NOW)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert header["tables"]["people"] == len(checked_small_roster[1])
    assert all(before[name] for name in ("missions", "people", "users", "tokens", "hazards",
                                         "outreach_events", "drills", "drill_events",
                                         "audit_log"))
    target = open_store(f"sqlite:///{tmp_path / 'restored.sqlite3'}")
    restored = restore_backup(target, path, actor="test", now=NOW + timedelta(hours=1))
    assert restored == header["tables"]
    after = _dump(target)
    # the restore adds its own audit event, and the backup's came after the file was written
    audit_before = before.pop("audit_log")
    audit_after = after.pop("audit_log")
    assert after == before
    assert audit_after[:len(audit_before)] == audit_before
    assert [row[3] for row in audit_after[len(audit_before):]] == ["store.restore"]
    # restored histories are still append-only, and new rows get fresh ids
    with pytest.raises(sa.exc.DatabaseError), target.begin() as connection:
        connection.execute(sa.text("DELETE FROM outreach_events"))
    create_user(target, "bo", "coordinator", "another long password", actor="test",
                now=NOW + timedelta(hours=2))
    # a second restore into the now-busy store is refused, and changes nothing
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(target, path, actor="test", now=NOW)
    target.dispose()


def test_a_sqlite_backup_restores_into_postgresql_too(database_url, checked_small_roster,
                                                      tmp_path) -> None:
    source = open_store(f"sqlite:///{tmp_path / 'source.sqlite3'}")
    _fill(source, checked_small_roster)
    path = tmp_path / "backup.jsonl.gz"
    write_backup(source, path, actor="test", now=NOW)
    before = _dump(source)
    target = open_store(database_url)
    restore_backup(target, path, actor="test", now=NOW)
    after = _dump(target)
    before.pop("audit_log"), after.pop("audit_log")
    assert after == before
    # the sequences moved past the restored ids: a new board gets the next id
    board, _ = open_board(target, ["nws:surge-miami"], name="next", actor="t", now=NOW)
    assert board.board_id == max(row[0] for row in before["outreach_boards"]) + 1
    source.dispose()
    target.dispose()


def test_bad_backups_are_refused_with_the_reason(store_engine, tmp_path) -> None:
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(BackupError, match="cannot read"):
        read_header(junk)
    other = tmp_path / "other.gz"
    with gzip.open(other, "wt") as stream:
        stream.write(json.dumps({"format": "something-else"}) + "\n")
    with pytest.raises(BackupError, match="not a Mission Watch backup"):
        restore_backup(store_engine, other, actor="t", now=NOW)
    # a truncated backup: nothing is restored
    good = tmp_path / "good.gz"
    write_backup(store_engine, good, actor="t", now=NOW)
    lines = gzip.decompress(good.read_bytes()).decode().splitlines()
    header = json.loads(lines[0])
    header["tables"]["audit_log"] += 5
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(("\n".join([json.dumps(header), *lines[1:]]) + "\n")
                                  .encode()))
    target = open_store(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    with pytest.raises(BackupError, match="incomplete"):
        restore_backup(target, cut, actor="t", now=NOW)
    with target.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM audit_log")).scalar() == 0
    target.dispose()


def test_cli_backup_and_restore(tmp_path, checked_small_roster) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONWATCH_")
           and k != "DATABASE_URL"}
    source_dir, target_dir = tmp_path / "a", tmp_path / "b"
    engine = open_store(f"sqlite:///{source_dir / 'missionwatch.sqlite3'}")
    _fill(engine, checked_small_roster)
    engine.dispose()
    out = tmp_path / "b.jsonl.gz"

    def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, check=False,
                              env={**env, "MISSIONWATCH_DATA_DIR": str(data_dir),
                                   "MISSIONWATCH_LOG_LEVEL": "WARNING"},
                              capture_output=True, text=True, timeout=300)

    done = run(source_dir, "backup", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "Backup written" in done.stdout and out.exists()
    done = run(target_dir, "restore", str(out))
    assert done.returncode == 0, done.stderr
    again = run(target_dir, "restore", str(out))
    assert again.returncode == 1 and "not empty" in again.stderr
    stats = run(target_dir, "roster", "stats", "--json")
    assert json.loads(stats.stdout)["people"] == len(checked_small_roster[1])
