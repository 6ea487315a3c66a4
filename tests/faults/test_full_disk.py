"""A full disk, for real: a tiny tmpfs filled to the last byte under the dashboard's exports, under
the command line's output files and under the SQLite store itself.

Each scenario asks for the same four things: a clear message (507 "disk is full" on the web, a
one-line "no space left" on the command line, "the store's disk is full" for the store), nothing
half-written left behind, nothing corrupted or claimed in the audit log for a write that
failed, and the same request working once the space is freed.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import requests
import shapely
import sqlalchemy as sa

from dashboard.services import incident_key
from feeds.model import Hazard
from layers.locations import write_roster_csv
from layers.scenarios import load_library, scenario_to_geojson
from store.backup import restore_backup
from store.db import open_store
from store.drills import start_drill
from store.feeds import replace_hazards
from store.outreach import open_board
from store.roster import current_import, replace_roster
from store.tables import metadata
from store.users import create_user, issue_api_token
from tests.browser import ROOT, LiveServer
from tests.faults.disk import needs_tmpfs, tiny_disk

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
PASSWORD = "correct horse battery staple 7"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
DC_AREA = shapely.box(-77.6, 38.6, -76.6, 39.3)
SCENARIO = "potomac-flood-heat"
NO_SPACE = "no space left on device"


# ----------------------------------------------------------------------------- the store


def _seed(url: str, roster) -> dict[str, object]:
    """A store with the small roster, a live flood over Washington, a coordinator and an
    administrator, an outreach board over the flood and a drill; what the tests need of it."""
    missions, people = roster
    engine = open_store(url)
    try:
        replace_roster(engine, missions, people, source="fault test roster", actor="test",
                       now=NOW - timedelta(hours=1), synthetic=True)
        replace_hazards(engine, "nws", [Hazard(
            "nws:flood-dc", "nws", "Flash Flood Warning", "flood", severity="severe",
            expires=NOW + timedelta(days=2), geometry=DC_AREA, geometry_method="polygon",
            area_desc="District of Columbia and around", sent=NOW - timedelta(hours=1))],
            now=NOW)
        create_user(engine, "coord", "coordinator", PASSWORD, actor="test", now=NOW)
        create_user(engine, "boss", "admin", PASSWORD, actor="test", now=NOW)
        board, _ = open_board(engine, ["nws:flood-dc"], name="Flood", actor="user:coord",
                              now=NOW)
        drill = start_drill(engine, scenario_name=SCENARIO,
                            scenario_json=json.dumps(scenario_to_geojson(
                                load_library()[SCENARIO])),
                            name="fault drill", speed=600.0, actor="test",
                            now=NOW - timedelta(minutes=5))
        _, token = issue_api_token(engine, "coord", "fault test", actor="test", now=NOW)
        return {"board_id": board.board_id, "drill_id": drill.drill_id, "token": token,
                "key": incident_key("nws:flood-dc")}
    finally:
        engine.dispose()


def _snapshot(url: str) -> dict[str, object]:
    """Row counts of every table, the audit log's rows and the current roster import."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            counts = {t.name: connection.execute(
                sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}
            audit = [tuple(r) for r in connection.execute(sa.text(
                "SELECT event_id, actor, action, detail FROM audit_log ORDER BY event_id"))]
        latest = current_import(engine)
        return {"counts": counts, "audit": audit,
                "roster": None if latest is None else latest["import_id"]}
    finally:
        engine.dispose()


def _audit_since(url: str, before: dict[str, object], action: str) -> list[dict]:
    """The details of the ``action`` events written after ``before`` was taken."""
    seen = {row[0] for row in before["audit"]}  # type: ignore[union-attr]
    return [json.loads(row[3]) for row in _snapshot(url)["audit"]  # type: ignore[union-attr]
            if row[0] not in seen and row[2] == action]


def _changes(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
    """What differs between two snapshots: tables whose counts changed, new audit actions."""
    counts = {name: (count, after["counts"][name])  # type: ignore[index]
              for name, count in before["counts"].items()  # type: ignore[attr-defined]
              if after["counts"][name] != count}  # type: ignore[index]
    seen = set(before["audit"])  # type: ignore[arg-type]
    audit = [row[2] for row in after["audit"] if row not in seen]  # type: ignore[attr-defined]
    roster = (before["roster"], after["roster"]) if before["roster"] != after["roster"] else ()
    return {k: v for k, v in (("counts", counts), ("audit", audit), ("roster", roster)) if v}


def _integrity(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]


# ----------------------------------------------------------------------------- processes


def _cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MISSIONWATCH_") and k != "DATABASE_URL"}
    env.update(MISSIONWATCH_DATA_DIR=str(data_dir), MISSIONWATCH_LOG_LEVEL="WARNING")
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=300, check=False)


def _assert_one_clear_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1 and one line on stderr holding every needle (case aside), no traceback."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


class _Server(LiveServer):
    """``app.py serve`` whose log is kept off the data directory (which may be the full disk)."""

    def __init__(self, database_url: str, data_dir: Path, log_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONWATCH_")}
        env.update(DATABASE_URL=database_url, MISSIONWATCH_DATA_DIR=str(data_dir),
                   MISSIONWATCH_LOG_LEVEL="WARNING")
        from tests.browser import free_port

        self.port = free_port()
        self.log = log_dir / f"server-{self.port}.log"
        self._log_handle = self.log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "serve", "--port", str(self.port),
             "--no-poll"], cwd=ROOT, env=env, stdout=self._log_handle,
            stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"


def _signed_in(base_url: str, username: str) -> requests.Session:
    """A session signed in through the real sign-in form."""
    session = requests.Session()
    page = session.get(f"{base_url}/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None, page.text[:500]
    answer = session.post(f"{base_url}/login", data={
        "username": username, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"},
        allow_redirects=False, timeout=60)
    assert answer.status_code == 302, answer.text[:500]
    return session


def _csv_rows(body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(the ``# key: value`` header lines, the rows) of an exported CSV."""
    header, table = {}, []
    for row in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")):
        if row and row[0].startswith("# ") and not table:
            key, _, value = row[0][2:].partition(": ")
            header[key] = value
        else:
            table.append(row)
    assert table, "no column header row"
    return header, [dict(zip(table[0], r, strict=True)) for r in table[1:]]


def _xlsx_rows(body: bytes) -> int:
    """Data rows over every sheet but the summary of an exported workbook (it must open)."""
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    try:
        assert book.sheetnames, "a workbook without sheets"
        return sum(max(0, sheet.max_row - 1) for sheet in book.worksheets[1:])
    finally:
        book.close()


# ----------------------------------------------------------------------------- 1. web exports


@needs_tmpfs
def test_web_exports_onto_a_full_export_disk_answer_507_and_leave_nothing(
        tmp_path, checked_small_roster) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'missionwatch.sqlite3'}"
    data.mkdir()
    seeded = _seed(url, checked_small_roster)
    key, board_id, drill_id = seeded["key"], seeded["board_id"], seeded["drill_id"]
    exports = {
        "call list CSV": (f"/exports/calllist.csv?incidents={key}", "calllist.export", "csv"),
        "call list XLSX": (f"/exports/calllist.xlsx?incidents={key}&split=mission",
                           "calllist.export", "xlsx"),
        "board CSV": (f"/exports/board/{board_id}.csv", "outreach.export", "csv"),
        "board XLSX": (f"/exports/board/{board_id}.xlsx", "outreach.export", "xlsx"),
        "call sheet": (f"/exports/board/{board_id}/callsheet.html", "outreach.export", "html"),
        "duty vCards": (f"/exports/board/{board_id}/duty.vcf", "outreach.export", "vcf"),
        "drill report HTML": (f"/exports/drill/{drill_id}/report.html", "drill.report", "html"),
        "drill report CSV": (f"/exports/drill/{drill_id}/report.csv", "drill.report", "csv"),
    }
    # the dashboard writes every export under DATA_DIR/exports first: that is the full disk
    with tiny_disk(data / "exports", 2 * MIB) as disk:
        server = _Server(url, data, tmp_path)
        try:
            server.wait_ready()
            coordinator = _signed_in(server.url, "coord")
            admin = _signed_in(server.url, "boss")
            # a board records its targets when it is first looked at: done here, so that
            # whatever an export changes in the store shows below
            targets = coordinator.get(f"{server.url}/api/v1/boards/{board_id}/targets",
                                      timeout=120)
            assert targets.status_code == 200 and targets.json()["total"] > 0
            assert disk.fill() > MIB
            before = _snapshot(url)
            for what, (path, _, _) in exports.items():
                answer = coordinator.get(server.url + path, timeout=120)
                assert answer.status_code == 507, (what, answer.status_code, answer.text[:300])
                assert answer.headers["Content-Type"].startswith("text/plain"), what
                assert "the server's disk is full" in answer.text, (what, answer.text)
                assert "Nothing was exported" in answer.text, (what, answer.text)
                assert "Traceback" not in answer.text
                assert "Content-Disposition" not in answer.headers, what
                assert disk.files() == [], (what, disk.files())   # no .export-* left
            # a failed export is not in the audit log, not even as an attempt with a digest
            assert _changes(before, _snapshot(url)) == {}
            # the audit log's CSV is made in memory, not on the disk: it still works, and its
            # own export is recorded
            audit = admin.get(server.url + "/admin/audit.csv", timeout=60)
            assert audit.status_code == 200, audit.text[:300]
            rows = list(csv.DictReader(io.StringIO(audit.content.decode("utf-8-sig"))))
            assert len(rows) == len(before["audit"])  # type: ignore[arg-type]
            assert not any(r["action"] in ("calllist.export", "outreach.export", "drill.report")
                           for r in rows)
            assert len(_audit_since(url, before, "audit.export")) == 1

            disk.free()
            for what, (path, action, fmt) in exports.items():
                done = _snapshot(url)
                answer = coordinator.get(server.url + path, timeout=120)
                assert answer.status_code == 200, (what, answer.status_code, answer.text[:300])
                body = answer.content
                if fmt == "csv":
                    header, table = _csv_rows(body)
                    rows_in_file = len(table)
                    assert header, what
                elif fmt == "xlsx":
                    rows_in_file = _xlsx_rows(body)
                elif fmt == "html":
                    text = body.decode("utf-8")
                    assert text.rstrip().endswith("</html>"), what
                    rows_in_file = None
                else:
                    text = body.decode("utf-8")
                    rows_in_file = text.count("BEGIN:VCARD")
                    assert rows_in_file == text.count("END:VCARD"), what
                [event] = _audit_since(url, done, action)
                assert event["format"] == fmt, what
                assert event["sha256"] == hashlib.sha256(body).hexdigest(), what
                if rows_in_file is not None:
                    assert rows_in_file == event["rows"], (what, rows_in_file, event)
                assert disk.files() == [], (what, disk.files())
            assert rows_in_file is not None and rows_in_file > 0
        finally:
            server.stop()
    assert _integrity(data / "missionwatch.sqlite3") == "ok"


# ----------------------------------------------------------------------------- 2. the CLI


def _hazard_file(path: Path) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": shapely.geometry.mapping(DC_AREA),
        "properties": {"hazard_id": "flood-dc", "event": "Flood", "severity": "severe"}}]}))
    return path


@needs_tmpfs
def test_cli_writes_onto_a_full_disk_fail_in_one_line_and_leave_nothing(
        tmp_path, checked_small_roster) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'missionwatch.sqlite3'}"
    _seed(url, checked_small_roster)
    hazards = _hazard_file(tmp_path / "hazards.geojson")
    with tiny_disk(tmp_path / "full", 2 * MIB) as disk:
        # an earlier roster export is there already: a failed one must leave it as it was
        assert _cli(data, "roster", "export", "--out", str(disk.path / "roster")).returncode == 0
        earlier = {p.name: p.read_bytes() for p in (disk.path / "roster").iterdir()}
        assert sorted(earlier) == ["missions.csv", "people.csv"]
        assert disk.fill() > 0
        before = _snapshot(url)
        backup = disk.path / "backup.jsonl.gz"
        pairs = disk.path / "pairs.csv"
        for args, target in (
                (("backup", "--out", str(backup)), backup),
                (("roster", "export", "--out", str(disk.path / "roster")), disk.path / "roster"),
                (("impact", str(hazards), "--out", str(pairs)), pairs)):
            done = _cli(data, *args)
            _assert_one_clear_line(done, str(target), NO_SPACE)
            assert sorted(disk.files()) == ["roster/missions.csv", "roster/people.csv"], args
            assert {p.name: p.read_bytes() for p in (disk.path / "roster").iterdir()} == earlier
            # nothing audited, the store unchanged
            assert _changes(before, _snapshot(url)) == {}, args

        disk.free()
        assert _cli(data, "backup", "--out", str(backup)).returncode == 0
        assert _cli(data, "roster", "export", "--out", str(disk.path / "roster")).returncode == 0
        assert _cli(data, "impact", str(hazards), "--out", str(pairs)).returncode == 0
        assert sorted(disk.files()) == ["backup.jsonl.gz", "pairs.csv", "roster/missions.csv",
                                        "roster/people.csv"]
        # complete, valid files: the backup restores, the roster and the pairs parse
        assert backup.stat().st_mode & 0o777 == 0o600
        restored = restore_backup(open_store(f"sqlite:///{tmp_path / 'restored.sqlite3'}"),
                                  backup, actor="test", now=NOW)
        [event] = _audit_since(url, before, "store.backup")
        assert restored == event["tables"]
        assert restored["people"] == len(checked_small_roster[1])
        with gzip.open(backup, "rt") as lines:
            assert sum(1 for _ in lines) == 1 + sum(restored.values())
        assert len(pd.read_csv(disk.path / "roster" / "people.csv")) == \
            len(checked_small_roster[1])
        assert len(pd.read_csv(disk.path / "roster" / "missions.csv")) == \
            len(checked_small_roster[0])
        [event] = _audit_since(url, before, "impact.export")
        assert len(pd.read_csv(pairs)) == event["rows"] > 0
        assert len(_audit_since(url, before, "roster.export")) == 1
    assert _integrity(data / "missionwatch.sqlite3") == "ok"


# ----------------------------------------------------------------------------- 3. the store


def _checkpoint(database: Path) -> None:
    """Move the WAL into the database and truncate it: the next write must grow the WAL, so
    on a full disk it cannot find room in a WAL already there."""
    with sqlite3.connect(database) as connection:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "a reader kept the WAL from being checkpointed"
    assert Path(f"{database}-wal").stat().st_size == 0


@needs_tmpfs
def test_the_sqlite_store_on_a_full_disk_refuses_writes_clearly_and_keeps_its_data(
        tmp_path, checked_small_roster) -> None:
    missions, people = checked_small_roster
    smaller = people.head(600)
    write_roster_csv(missions[missions["mission_id"].isin(smaller["mission_id"])], smaller,
                     tmp_path / "import")
    import_args = ("roster", "import", "--missions", str(tmp_path / "import" / "missions.csv"),
                   "--people", str(tmp_path / "import" / "people.csv"))
    add_args = ("users", "add", "newcomer", "--role", "coordinator", "--password-stdin")
    with tiny_disk(tmp_path / "data", 16 * MIB) as disk:
        data = disk.path
        database = data / "missionwatch.sqlite3"
        url = f"sqlite:///{database}"
        seeded = _seed(url, checked_small_roster)
        server = _Server(url, data, tmp_path)
        try:
            server.wait_ready()
            api = requests.Session()
            api.headers["Authorization"] = f"Bearer {seeded['token']}"
            board = f"{server.url}/api/v1/boards/{seeded['board_id']}"
            first = api.get(f"{board}/targets", timeout=120).json()["items"][0]
            status_url = f"{board}/targets/{first['target_kind']}/{first['target_id']}/status"
            _checkpoint(database)
            assert disk.fill() > 0
            before = _snapshot(url)

            update = api.post(status_url, json={"status": "reached_safe"}, timeout=60)
            assert update.status_code == 507, (update.status_code, update.text[:500])
            error = update.json()["error"]
            assert error["code"] == "store_full", error
            assert "the store's disk is full" in error["message"], error
            assert "INSERT" not in error["message"]   # not the driver's text and parameters

            refused = _cli(data, *import_args)
            assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
            assert "the stored roster is unchanged: the store's disk is full" in \
                refused.stderr.splitlines()[-1], refused.stderr
            _assert_one_clear_line(_cli(data, *add_args, stdin=PASSWORD + "\n"),
                                   "the store's disk is full")
            assert _integrity(database) == "ok"
            assert _changes(before, _snapshot(url)) == {}   # same rows, same roster, no audit

            disk.free()
            update = api.post(status_url, json={"status": "reached_safe"}, timeout=60)
            assert update.status_code == 201, update.text[:500]
            assert _cli(data, *import_args).returncode == 0
            added = _cli(data, *add_args, stdin=PASSWORD + "\n")
            assert added.returncode == 0, added.stderr
            after = _snapshot(url)
            changes = _changes(before, after)
            assert changes["counts"]["outreach_events"] == (0, 1)  # type: ignore[index]
            assert changes["counts"]["people"][1] == len(smaller)  # type: ignore[index]
            assert after["roster"] == before["roster"] + 1  # type: ignore[operator]
            assert sorted(changes["audit"]) == ["roster.import", "user.add"], changes
            signed_in = _signed_in(server.url, "newcomer")
            assert signed_in.get(f"{server.url}/api/v1/boards", timeout=60).status_code == 200
        finally:
            server.stop()
        assert _integrity(database) == "ok"
