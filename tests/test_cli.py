"""The command line, run as a user runs it: a real process, a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layers.locations import write_roster_csv

ROOT = Path(__file__).resolve().parent.parent


def run_app(*args: str, database_url: str, data_dir: Path, check: bool = False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONWATCH_")}
    env.update(DATABASE_URL=database_url, MISSIONWATCH_DATA_DIR=str(data_dir),
               MISSIONWATCH_LOG_LEVEL="WARNING", PYTHONWARNINGS="ignore::DeprecationWarning")
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True, env=env,
        cwd=ROOT, timeout=600, check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"app.py {' '.join(args)} failed:\n{result.stderr}")
    return result


def _rewrite(path: Path, edits: dict[int, dict[str, str]]) -> None:
    """Change cells of a CSV in place; keys of ``edits`` are spreadsheet row numbers."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        fields = list(rows[0].keys())
    for row_number, changes in edits.items():
        rows[row_number - 2].update(changes)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_help_lists_commands_and_settings() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    for word in ("serve", "roster", "DATABASE_URL", "MISSIONWATCH_DATA_DIR"):
        assert word in result.stdout
    roster_help = subprocess.run([sys.executable, str(ROOT / "app.py"), "roster", "--help"],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
    for action in ("generate", "import", "validate", "stats", "export"):
        assert action in roster_help.stdout


def test_import_with_bad_rows_changes_nothing_then_skip_invalid(
    database_url: str, tmp_path: Path, small_roster
) -> None:
    missions, people = small_roster
    assert len(people) == 1000
    clean = tmp_path / "clean"
    write_roster_csv(missions, people, clean)
    run_app("roster", "import", "--missions", str(clean / "missions.csv"), "--people",
            str(clean / "people.csv"), database_url=database_url, data_dir=tmp_path, check=True)
    before = tmp_path / "before"
    run_app("roster", "export", "--out", str(before), database_url=database_url,
            data_dir=tmp_path, check=True)

    bad = tmp_path / "bad"
    write_roster_csv(missions, people.iloc[::-1].reset_index(drop=True), bad)
    _rewrite(bad / "people.csv", {
        10: {"immunity": "diplomatic"},
        500: {"lat": "47.6", "lon": "-122.3", "jurisdiction": "FL"},   # Seattle is not Florida
        1001: {"mission_id": "M-99999"},
    })
    args = ("roster", "import", "--missions", str(bad / "missions.csv"), "--people",
            str(bad / "people.csv"))
    refused = run_app(*args, database_url=database_url, data_dir=tmp_path)
    assert refused.returncode == 1
    assert "3 bad row(s)" in refused.stderr
    assert "people row 10, column immunity: 'diplomatic' is not one of" in refused.stderr
    assert "people row 500, column lat/lon:" in refused.stderr
    assert "jurisdiction FL" in refused.stderr
    assert "people row 1001, column mission_id: 'M-99999': no such mission" in refused.stderr

    after = tmp_path / "after"
    run_app("roster", "export", "--out", str(after), database_url=database_url,
            data_dir=tmp_path, check=True)
    for name in ("missions.csv", "people.csv"):
        assert (after / name).read_bytes() == (before / name).read_bytes()

    skipped = run_app(*args, "--skip-invalid", database_url=database_url, data_dir=tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert "997 people" in skipped.stdout
    assert "Skipped 3 bad row(s)" in skipped.stderr
    stats = json.loads(run_app("roster", "stats", "--json", database_url=database_url,
                               data_dir=tmp_path, check=True).stdout)
    assert stats["people"] == 997
    assert stats["missions"] == len(missions)


def test_export_import_export_is_identical(
    database_url: str, tmp_path: Path, small_roster
) -> None:
    missions, people = small_roster
    first = tmp_path / "first"
    write_roster_csv(missions, people, first)
    run_app("roster", "import", "--missions", str(first / "missions.csv"), "--people",
            str(first / "people.csv"), database_url=database_url, data_dir=tmp_path, check=True)
    second = tmp_path / "second"
    run_app("roster", "export", "--out", str(second), database_url=database_url,
            data_dir=tmp_path, check=True)
    run_app("roster", "import", "--missions", str(second / "missions.csv"), "--people",
            str(second / "people.csv"), database_url=database_url, data_dir=tmp_path, check=True)
    third = tmp_path / "third"
    run_app("roster", "export", "--out", str(third), database_url=database_url,
            data_dir=tmp_path, check=True)
    for name in ("missions.csv", "people.csv"):
        assert (second / name).read_bytes() == (third / name).read_bytes()
        assert (second / name).read_bytes() == (first / name).read_bytes()


def test_validate_reports_and_stores_nothing(tmp_path: Path, small_roster) -> None:
    missions, people = small_roster
    files = tmp_path / "files"
    write_roster_csv(missions, people, files)
    _rewrite(files / "missions.csv", {2: {"mission_type": "palace"}})
    url = f"sqlite:///{tmp_path / 'v.sqlite3'}"
    result = run_app("roster", "validate", "--missions", str(files / "missions.csv"),
                     "--people", str(files / "people.csv"), database_url=url, data_dir=tmp_path)
    assert result.returncode == 1
    assert "missions row 2, column mission_type: 'palace' is not one of" in result.stderr
    # the people of the refused mission are reported too, by their own rows
    assert "was refused" in result.stderr
    from store.db import open_store
    from store.roster import current_import

    engine = open_store(url)
    assert current_import(engine) is None
    engine.dispose()


@pytest.mark.slow
def test_demo_roster_stats_on_a_fresh_store(tmp_path: Path) -> None:
    # a fresh store: `roster stats` generates the demo roster on first use, as `serve` does
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    stats = json.loads(run_app("roster", "stats", "--json", database_url=url,
                               data_dir=tmp_path, check=True).stdout)
    assert abs(stats["missions"] - 2600) <= 0.02 * 2600
    assert abs(stats["people"] - 124_000) <= 0.02 * 124_000
    assert abs(stats["with_immunity"] - 62_000) <= 0.02 * 62_000
    from layers.schema import JURISDICTIONS

    assert set(stats["by_jurisdiction"]) == set(JURISDICTIONS)
    assert stats["locations_outside_jurisdiction"] == 0
    assert stats["roster"]["synthetic"] is True


@pytest.mark.slow
def test_import_killed_while_writing_keeps_the_previous_roster(
    database_url: str, tmp_path: Path, small_roster, demo_roster
) -> None:
    import signal

    missions, people = small_roster
    small = tmp_path / "small"
    write_roster_csv(missions, people, small)
    run_app("roster", "import", "--missions", str(small / "missions.csv"), "--people",
            str(small / "people.csv"), database_url=database_url, data_dir=tmp_path, check=True)
    before = tmp_path / "before"
    run_app("roster", "export", "--out", str(before), database_url=database_url,
            data_dir=tmp_path, check=True)

    big = tmp_path / "big"
    write_roster_csv(*demo_roster, big)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONWATCH_")}
    env.update(DATABASE_URL=database_url, MISSIONWATCH_DATA_DIR=str(tmp_path),
               MISSIONWATCH_LOG_LEVEL="WARNING")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "roster", "import", "--missions",
         str(big / "missions.csv"), "--people", str(big / "people.csv")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    seen = []
    assert process.stderr is not None
    for line in process.stderr:
        seen.append(line)
        if "writing:" in line and "(100%)" not in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "".join(seen)

    after = tmp_path / "after"
    run_app("roster", "export", "--out", str(after), database_url=database_url,
            data_dir=tmp_path, check=True)
    for name in ("missions.csv", "people.csv"):
        assert (after / name).read_bytes() == (before / name).read_bytes()
