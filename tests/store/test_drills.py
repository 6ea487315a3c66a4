"""Drills in the store: clock events, state changes, audit, append-only history, injects."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from store.audit import query_audit
from store.drills import (
    DrillNotFound,
    DrillStateError,
    drill_events,
    drill_scenario_json,
    drills_version,
    get_drill,
    list_drills,
    pause_drill,
    record_injects,
    resume_drill,
    running_drills,
    set_speed,
    start_drill,
    stop_drill,
)
from store.tables import drill_events as drill_events_table
from store.tables import drills as drills_table

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=timezone.utc)
SCENARIO = json.dumps({
    "type": "FeatureCollection",
    "properties": {"name": "miami-hurricane", "title": "Hurricane landfall, Miami",
                   "duration_minutes": 720},
    "features": [{"type": "Feature", "id": "surge",
                  "properties": {"inject_id": "surge", "at_minutes": 60},
                  "geometry": {"type": "Point", "coordinates": [-80.19, 25.76]}}],
})


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def start(engine, **overrides):
    arguments = {"scenario_name": "miami-hurricane", "scenario_json": SCENARIO,
                 "name": "Miami hurricane — Tuesday drill", "speed": 1, "actor": "user:ana",
                 "now": T0}
    return start_drill(engine, **{**arguments, **overrides})


def test_start_keeps_the_scenario_snapshot_and_is_audited(store_engine) -> None:
    drill = start(store_engine, speed=60)
    assert drill.state == "running" and drill.running and drill.active and not drill.paused
    assert drill.kind == "scenario" and drill.speed == 60 and drill.initial_speed == 60
    assert drill.started_at == T0 and drill.started_by == "user:ana"
    assert drill.stopped_at is None and drill.stopped_by is None
    assert drill.scenario_json == SCENARIO and drill.scenario()["features"][0]["id"] == "surge"
    assert drill_scenario_json(store_engine, drill.drill_id) == SCENARIO
    assert drill.elapsed_minutes(T0 + minutes(2)) == 120
    assert get_drill(store_engine, drill.drill_id) == drill
    [audit] = query_audit(store_engine, action="drill")
    assert audit.action == "drill.start" and audit.actor == "user:ana"
    assert audit.detail == {"drill_id": drill.drill_id, "name": drill.name, "kind": "scenario",
                            "scenario": "miami-hurricane", "speed": 60.0}
    [event] = drill_events(store_engine, drill.drill_id)
    assert event.action == "start" and event.at == T0 and event.detail["speed"] == 60
    replay = start(store_engine, kind="replay", name="Replay of Ian")
    assert replay.kind == "replay" and replay.drill_id != drill.drill_id  # several at once


@pytest.mark.parametrize(("overrides", "message"), [
    ({"name": "   "}, "name must not be empty"),
    ({"name": "x" * 201}, "name must be at most 200"),
    ({"scenario_name": ""}, "scenario_name must not be empty"),
    ({"speed": 0.5}, "speed must be from 1"),
    ({"speed": 3601}, "speed must be from 1"),
    ({"kind": "live"}, "kind must be one of scenario, replay"),
    ({"scenario_json": "{not json"}, "scenario_json is not JSON"),
    ({"scenario_json": "[1, 2]"}, "must be a JSON object"),
    ({"now": datetime(2026, 11, 28, 14, 0)}, "now must be a timezone-aware"),  # noqa: DTZ001
])
def test_bad_starts_are_refused_and_store_nothing(store_engine, overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        start(store_engine, **overrides)
    assert list_drills(store_engine) == []
    assert query_audit(store_engine, action="drill") == []


def test_pause_resume_speed_stop_keep_the_clock_continuous(store_engine) -> None:
    drill = start(store_engine)
    drill_id = drill.drill_id
    paused = pause_drill(store_engine, drill_id, actor="user:bo", now=T0 + minutes(10))
    assert paused.paused and paused.active and paused.elapsed_minutes(T0 + minutes(50)) == 10
    resumed = resume_drill(store_engine, drill_id, actor="user:bo", now=T0 + minutes(30))
    assert resumed.running and resumed.elapsed_minutes(T0 + minutes(40)) == 20
    fast = set_speed(store_engine, drill_id, 60, actor="user:bo", now=T0 + minutes(40))
    assert fast.speed == 60 and fast.initial_speed == 1
    assert fast.elapsed_minutes(T0 + minutes(40)) == 20  # no jump at the change
    assert fast.elapsed_minutes(T0 + minutes(41)) == 80
    assert fast.wall_time_of(140, T0 + minutes(41)) == T0 + minutes(42)
    assert fast.wall_time_of(15, T0 + minutes(41)) == T0 + minutes(35)
    assert set_speed(store_engine, drill_id, 60, actor="user:bo",
                     now=T0 + minutes(41)) == fast  # the same speed: nothing written
    stopped = stop_drill(store_engine, drill_id, actor="user:cy", now=T0 + minutes(42))
    assert stopped.stopped and not stopped.active
    assert stopped.stopped_at == T0 + minutes(42) and stopped.stopped_by == "user:cy"
    frozen = stopped.elapsed_minutes(T0 + minutes(42))
    assert frozen == 140
    assert get_drill(store_engine, drill_id).elapsed_minutes(T0 + timedelta(days=3)) == frozen
    assert stopped.wall_time_of(141, T0 + minutes(43)) is None
    events = drill_events(store_engine, drill_id)
    assert [e.action for e in events] == ["start", "pause", "resume", "speed", "stop"]
    assert [e.detail["elapsed_minutes"] for e in events] == [0, 10, 10, 20, 140]
    assert events[3].detail["speed"] == 60 and events[3].detail["previous_speed"] == 1
    assert [e.actor for e in events] == ["user:ana", "user:bo", "user:bo", "user:bo", "user:cy"]
    audit = query_audit(store_engine, action="drill")
    assert [a.action for a in reversed(audit)] == [
        "drill.start", "drill.pause", "drill.resume", "drill.speed", "drill.stop"]
    assert audit[0].detail == {"drill_id": drill_id, "elapsed_minutes": 140.0}


def test_a_speed_change_while_paused_counts_from_the_resume(store_engine) -> None:
    drill_id = start(store_engine).drill_id
    pause_drill(store_engine, drill_id, actor="u", now=T0 + minutes(5))
    set_speed(store_engine, drill_id, 10, actor="u", now=T0 + minutes(6))
    drill = resume_drill(store_engine, drill_id, actor="u", now=T0 + minutes(8))
    assert drill.elapsed_minutes(T0 + minutes(9)) == 15


def test_state_errors_name_the_drill_and_its_state(store_engine) -> None:
    drill_id = start(store_engine).drill_id
    with pytest.raises(DrillStateError, match=r"drill \d+ \(Miami .*\) is running, not paused"):
        resume_drill(store_engine, drill_id, actor="u", now=T0 + minutes(1))
    pause_drill(store_engine, drill_id, actor="u", now=T0 + minutes(1))
    with pytest.raises(DrillStateError, match="is already paused") as caught:
        pause_drill(store_engine, drill_id, actor="u", now=T0 + minutes(2))
    assert caught.value.state == "paused" and caught.value.drill_id == drill_id
    stop_drill(store_engine, drill_id, actor="u:stopper", now=T0 + minutes(3))
    for change, pattern in (
        (lambda: pause_drill(store_engine, drill_id, actor="u", now=T0 + minutes(4)),
         "was stopped at 2026-11-28 14:03 UTC by u:stopper; a stopped drill cannot be paused"),
        (lambda: resume_drill(store_engine, drill_id, actor="u", now=T0 + minutes(4)),
         "cannot be resumed \\(start a new drill instead\\)"),
        (lambda: set_speed(store_engine, drill_id, 5, actor="u", now=T0 + minutes(4)),
         "cannot be given a new speed"),
        (lambda: stop_drill(store_engine, drill_id, actor="u", now=T0 + minutes(4)),
         "cannot be stopped again"),
    ):
        with pytest.raises(DrillStateError, match=pattern):
            change()
    assert len(drill_events(store_engine, drill_id)) == 3
    assert len(query_audit(store_engine, action="drill")) == 3
    for missing in (lambda: get_drill(store_engine, 999),
                    lambda: pause_drill(store_engine, 999, actor="u", now=T0),
                    lambda: drill_events(store_engine, 999),
                    lambda: drill_scenario_json(store_engine, 999),
                    lambda: record_injects(store_engine, 999, [("a", 1)], T0)):
        with pytest.raises(DrillNotFound, match="no drill 999"):
            missing()
    with pytest.raises(ValueError, match=r"before drill .* last change"):
        start_id = start(store_engine).drill_id
        pause_drill(store_engine, start_id, actor="u", now=T0 - minutes(1))
    with pytest.raises(ValueError, match="speed must be from 1"):
        set_speed(store_engine, drill_id, 0, actor="u", now=T0)


def test_running_drills_is_what_the_exercise_banner_shows(store_engine) -> None:
    assert running_drills(store_engine) == []
    first = start(store_engine, name="First").drill_id
    second = start(store_engine, name="Second").drill_id
    third = start(store_engine, name="Third").drill_id
    pause_drill(store_engine, second, actor="u", now=T0 + minutes(1))
    stop_drill(store_engine, third, actor="u", now=T0 + minutes(1))
    active = running_drills(store_engine)
    assert [(d.drill_id, d.state) for d in active] == [(first, "running"), (second, "paused")]
    assert all(d.scenario_json is None for d in active)
    assert active[1].elapsed_minutes(T0 + minutes(30)) == 1
    with pytest.raises(ValueError, match="without its scenario"):
        active[0].scenario()
    assert [d.scenario_json for d in running_drills(store_engine, with_scenario=True)] == [
        SCENARIO, SCENARIO]
    assert [d.drill_id for d in list_drills(store_engine)] == [third, second, first]
    assert [d.drill_id for d in list_drills(store_engine, include_stopped=False)] == [
        second, first]
    assert list_drills(store_engine)[0].as_json(T0 + minutes(5)) == {
        "drill_id": third, "name": "Third", "scenario_name": "miami-hurricane",
        "kind": "scenario", "state": "stopped", "speed": 1.0,
        "started_at": T0.isoformat(), "started_by": "user:ana",
        "stopped_at": (T0 + minutes(1)).isoformat(), "stopped_by": "u", "elapsed_minutes": 1.0}


def test_running_drills_is_one_query(store_engine) -> None:
    for name in ("A", "B"):
        drill_id = start(store_engine, name=name).drill_id
        pause_drill(store_engine, drill_id, actor="u", now=T0 + minutes(1))
        resume_drill(store_engine, drill_id, actor="u", now=T0 + minutes(2))
    record_injects(store_engine, drill_id, [("a", 1), ("b", 2)], T0 + minutes(3))
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    sa.event.listen(store_engine, "before_cursor_execute", count)
    try:
        active = running_drills(store_engine)
    finally:
        sa.event.remove(store_engine, "before_cursor_execute", count)
    assert len(active) == 2 and all(len(d.pauses) == 1 for d in active)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_injects_are_recorded_once_per_drill(store_engine) -> None:
    drill_id = start(store_engine).drill_id
    other = start(store_engine, name="Other").drill_id
    version = drills_version(store_engine)
    now = T0 + minutes(61)
    assert record_injects(store_engine, drill_id, [("surge", 60), ("wind", 61), ("surge", 60)],
                          now) == ["surge", "wind"]
    assert drills_version(store_engine) != version
    version = drills_version(store_engine)
    assert record_injects(store_engine, drill_id, [("surge", 60), ("rain", 62.5)],
                          now + minutes(1)) == ["rain"]
    assert record_injects(store_engine, drill_id, [("surge", 60)], now) == []
    assert drills_version(store_engine)[0] == version[0] + 1
    assert record_injects(store_engine, other, [("surge", 60)], now) == ["surge"]
    injects = [e for e in drill_events(store_engine, drill_id) if e.action == "inject"]
    assert [(e.inject_id, e.detail["elapsed_minutes"], e.at) for e in injects] == [
        ("surge", 60, now), ("wind", 61, now), ("rain", 62.5, now + minutes(1))]
    assert {e.actor for e in injects} == {"system:drill-clock"}
    assert record_injects(store_engine, drill_id, [], now) == []
    # the database itself refuses a second event for the same inject of a drill
    with pytest.raises(sa.exc.IntegrityError), store_engine.begin() as connection:
        connection.execute(drill_events_table.insert().values(
            drill_id=drill_id, at=now, action="inject", detail="{}", actor="x",
            inject_id="surge"))
    for bad, message in (([("", 1)], "inject_id must not be empty"),
                         ([("a", -1)], "must be a finite number >= 0"),
                         ([("a", float("nan"))], "must be a finite number >= 0"),
                         (["a"], "pairs")):
        with pytest.raises(ValueError, match=message):
            record_injects(store_engine, drill_id, bad, now)


def test_concurrent_inject_recording_records_each_once(store_engine) -> None:
    drill_id = start(store_engine).drill_id
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(record_injects(store_engine, drill_id,
                                          [(f"i{n}", n) for n in range(10)], T0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(i for r in results for i in r) == [f"i{n}" for n in range(10)]
    events = drill_events(store_engine, drill_id)
    assert sorted(e.inject_id for e in events if e.inject_id) == [f"i{n}" for n in range(10)]


def test_concurrent_pauses_one_wins(store_engine) -> None:
    drill_id = start(store_engine).drill_id
    outcomes: list[str] = []

    def worker() -> None:
        try:
            pause_drill(store_engine, drill_id, actor="u", now=T0 + minutes(1))
            outcomes.append("paused")
        except DrillStateError:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["paused", "refused", "refused", "refused"]
    assert [e.action for e in drill_events(store_engine, drill_id)] == ["start", "pause"]


def test_history_is_append_only_in_the_database(store_engine) -> None:
    drill_id = start(store_engine).drill_id
    record_injects(store_engine, drill_id, [("surge", 60)], T0 + minutes(60))
    for statement in (drill_events_table.update().values(actor="someone else"),
                      drill_events_table.delete()):
        with pytest.raises(sa.exc.DatabaseError), store_engine.begin() as connection:
            connection.execute(statement)
    assert [e.actor for e in drill_events(store_engine, drill_id)] == [
        "user:ana", "system:drill-clock"]
    # and the drills table keeps only known states and speeds
    with pytest.raises(sa.exc.IntegrityError), store_engine.begin() as connection:
        connection.execute(drills_table.update().values(state="exploded"))
    with pytest.raises(sa.exc.IntegrityError), store_engine.begin() as connection:
        connection.execute(drills_table.update().values(speed=0))
