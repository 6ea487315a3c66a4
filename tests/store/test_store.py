"""The store: migrations match the tables, roster writes are all-or-nothing, audit is kept."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store import RosterImportFailed
from store.db import create_engine, migrate, open_store
from store.roster import current_import, load_roster, replace_roster, roster_is_empty
from store.tables import audit_log, metadata

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def _roster(n_missions: int, n_people: int, prefix: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    missions = pd.DataFrame({
        "mission_id": [f"{prefix}M-{i:05d}" for i in range(n_missions)],
        "name": [f"Embassy {i}" for i in range(n_missions)],
        "country_code": "CHL", "country_name": "Chile", "mission_type": "embassy",
        "address": "1 Example St", "city": "Washington", "jurisdiction": "DC",
        "postal_code": "20008", "lat": 38.9, "lon": -77.05, "geocode_precision": "provided",
        "duty_phone": "+1 202-555-0100", "email": "duty@example.org", "language": "es",
        "ofm_office": "WAS", "h3_cell": "892a1008003ffff",
    })
    people = pd.DataFrame({
        "person_id": [f"{prefix}P-{i:06d}" for i in range(n_people)],
        "mission_id": [f"{prefix}M-{i % n_missions:05d}" for i in range(n_people)],
        "household_id": [f"{prefix}H-{i // 2:06d}" for i in range(n_people)],
        "role": "diplomatic_agent", "immunity": "full", "name": "Demo Person",
        "address": "2 Example St", "city": "Washington", "jurisdiction": "DC",
        "postal_code": "", "lat": 38.91, "lon": -77.04, "geocode_precision": "provided",
        "phone": "+1 202-555-0101", "email": "p@example.org", "language": "es",
        "h3_cell": "892a1008003ffff",
    })
    return missions, people


def test_migrations_create_exactly_the_tables(store_engine) -> None:
    engine = store_engine
    migrate(engine)  # a second run is a no-op
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []
    assert roster_is_empty(engine)
    assert current_import(engine) is None


def test_sqlite_uses_wal(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'deep' / 'dir' / 's.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar_one() == 1
    engine.dispose()


def test_create_engine_rejects_other_backends() -> None:
    with pytest.raises(ValueError, match="sqlite:///PATH or postgresql"):
        create_engine("mysql://localhost/x")


def test_replace_roster_round_trips_and_audits(store_engine) -> None:
    engine = store_engine
    missions, people = _roster(3, 10)
    import_id = replace_roster(engine, missions, people, source="test", actor="tester", now=NOW)
    got_missions, got_people = load_roster(engine)
    pd.testing.assert_frame_equal(got_missions, missions, check_dtype=False)
    pd.testing.assert_frame_equal(got_people, people, check_dtype=False)
    latest = current_import(engine)
    assert latest is not None
    assert latest["import_id"] == import_id
    assert (latest["missions"], latest["people"]) == (3, 10)
    with engine.connect() as connection:
        events = connection.execute(sa.select(audit_log)).mappings().all()
    assert [e["action"] for e in events] == ["roster.import"]
    assert json.loads(events[0]["detail"])["people"] == 10
    assert events[0]["actor"] == "tester"


def test_failed_write_keeps_the_previous_roster(store_engine) -> None:
    engine = store_engine
    old_missions, old_people = _roster(5, 40, prefix="OLD")
    replace_roster(engine, old_missions, old_people, source="old", actor="t", now=NOW)
    new_missions, new_people = _roster(5, 12_000, prefix="NEW")

    def crash_midway(stage: str, done: int, total: int) -> None:
        if done > 7_000:
            raise RuntimeError("simulated crash while writing people")

    with pytest.raises(RuntimeError, match="simulated crash"):
        replace_roster(engine, new_missions, new_people, source="new", actor="t", now=NOW,
                       progress=crash_midway)
    missions, people = load_roster(engine)
    assert list(missions["mission_id"]) == list(old_missions["mission_id"])
    assert list(people["person_id"]) == list(old_people["person_id"])
    assert current_import(engine)["source"] == "old"


def test_constraint_violation_is_rolled_back(store_engine) -> None:
    engine = store_engine
    old_missions, old_people = _roster(2, 4, prefix="OLD")
    replace_roster(engine, old_missions, old_people, source="old", actor="t", now=NOW)
    missions, people = _roster(2, 4)
    people.loc[3, "mission_id"] = "M-NOT-THERE"  # foreign key violation on the last row
    with pytest.raises(RosterImportFailed, match="the roster was not changed"):
        replace_roster(engine, missions, people, source="new", actor="t", now=NOW)
    assert list(load_roster(engine)[1]["person_id"]) == list(old_people["person_id"])


def test_naive_datetimes_are_refused(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}")
    missions, people = _roster(1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        replace_roster(engine, missions, people, source="x", actor="t",
                       now=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    engine.dispose()
