"""`python app.py drill list|start|status|pause|resume|speed|stop` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import app as cli
from store.audit import query_audit
from store.db import open_store
from store.drills import drill_events, get_drill, list_drills, start_drill

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=timezone.utc)
# A scenario as the store keeps it; the change commands never parse it.
SCENARIO = json.dumps({"type": "FeatureCollection", "scenario": {"name": "made-up"},
                       "features": []})


@pytest.fixture
def run(database_url, tmp_path, monkeypatch, capsys):
    """Run ``app.main`` in-process against a scratch store, on a clock the test moves
    (``run.at(datetime)``); returns (status, stdout, stderr)."""
    monkeypatch.delenv("MISSIONWATCH_LOG_LEVEL", raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MISSIONWATCH_DATA_DIR", str(tmp_path))
    clock = {"now": T0}
    monkeypatch.setattr(cli, "_now", lambda: clock["now"])

    def invoke(*args: str) -> tuple[int, str, str]:
        status = cli.main(["--log-level", "WARNING", *args])
        out, err = capsys.readouterr()
        return status, out, err

    def at(moment: datetime) -> None:
        clock["now"] = moment

    engine = open_store(database_url)
    invoke.engine = engine  # type: ignore[attr-defined]
    invoke.at = at  # type: ignore[attr-defined]
    yield invoke
    engine.dispose()


def test_pause_resume_speed_stop_and_their_refusals(run) -> None:
    drill = start_drill(run.engine, scenario_name="made-up", scenario_json=SCENARIO,
                        name="Tuesday drill", speed=1, actor="user:ana", now=T0)
    run.at(T0 + timedelta(minutes=10))
    status, out, _ = run("drill", "pause", str(drill.drill_id))
    assert status == 0 and out.startswith(f"Drill {drill.drill_id} paused at T+0:10")
    status, out, err = run("drill", "pause", str(drill.drill_id))
    assert (status, out) == (1, "") and err.count("\n") == 1
    assert err.startswith(f"Refused: drill {drill.drill_id} (Tuesday drill) is already paused")
    run.at(T0 + timedelta(minutes=20))
    status, out, _ = run("drill", "speed", str(drill.drill_id), "60")
    assert status == 0 and "runs at speed 60x from T+0:10" in out
    status, out, _ = run("drill", "resume", str(drill.drill_id))
    assert status == 0 and "resumed at T+0:10, at speed 60x" in out
    run.at(T0 + timedelta(minutes=21))
    status, _, err = run("drill", "speed", str(drill.drill_id), "3601")
    assert status == 1 and "speed must be from 1 (real time) to 3600" in err
    status, out, _ = run("drill", "stop", str(drill.drill_id))
    assert status == 0 and "stopped at T+1:10; its clock is frozen" in out
    assert "No drill is running: EXERCISE is off." in out
    status, _, err = run("drill", "resume", str(drill.drill_id))
    assert status == 1 and "a stopped drill cannot be resumed" in err
    status, _, err = run("drill", "stop", "999")
    assert status == 1 and err == "Refused: no drill 999\n"
    assert get_drill(run.engine, drill.drill_id).elapsed_minutes(T0 + timedelta(days=1)) == 70
    assert [e.action for e in drill_events(run.engine, drill.drill_id)] == [
        "start", "pause", "speed", "resume", "stop"]
    audit = query_audit(run.engine, action="drill")
    assert [a.action for a in audit] == ["drill.stop", "drill.resume", "drill.speed",
                                         "drill.pause", "drill.start"]
    assert all(a.actor.startswith("cli:") for a in audit[:-1])


@pytest.mark.parametrize("args", [("drill",), ("drill", "pause"), ("drill", "pause", "x"),
                                  ("drill", "speed", "1", "fast"), ("drill", "explode", "1")])
def test_usage_errors_exit_2(args, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(list(args))  # refused by the parser, before the store is opened
    assert caught.value.code == 2
    assert "usage: python app.py drill" in capsys.readouterr().err


def test_list_and_start_from_the_library(run) -> None:
    scenarios = pytest.importorskip("layers.scenarios")
    library = scenarios.load_library()
    name, scenario = next(iter(library.items()))
    status, out, _ = run("drill", "list")
    assert status == 0 and f"Scenario library ({len(library)}):" in out
    assert scenario.title in out and "Drills (0):" in out
    status, out, _ = run("drill", "start", name, "--speed", "60", "--name",
                         "Miami hurricane — Tuesday drill")
    assert status == 0 and out.startswith("EXERCISE: drill 1 started: Miami hurricane")
    assert f"{len(scenario.injects)} inject(s)" in out and "speed 60x" in out
    assert "planned end" in out and "UTC (" in out
    drill = get_drill(run.engine, 1)
    assert drill.scenario_name == name and drill.speed == 60 and drill.started_at == T0
    assert scenarios.parse_scenario(drill.scenario_json) == scenario  # the snapshot
    assert query_audit(run.engine, action="drill.start")[0].actor.startswith("cli:")
    status, out, _ = run("drill", "start", name)
    assert status == 0 and f"{scenario.title} - drill of 2026-11-28 14:00 UTC" in out
    status, out, _ = run("drill", "list", "--json")
    data = json.loads(out)
    assert status == 0 and len(data["scenarios"]) == len(library)
    listed = {s["name"]: s for s in data["scenarios"]}[name]
    assert listed == {"name": name, "title": scenario.title, "injects": len(scenario.injects),
                      "duration_minutes": scenario.duration_minutes,
                      "jurisdictions": list(scenario.jurisdictions)}
    assert [(d["drill_id"], d["state"]) for d in data["drills"]] == [(2, "running"),
                                                                     (1, "running")]
    for args, reason in ((("nope",), "no scenario 'nope' in the library; known: "),
                         ((name, "--speed", "0.5"), "speed must be from 1"),
                         ((name, "--name", "  "), "name must not be empty")):
        status, out, err = run("drill", "start", *args)
        assert status == 1 and out == "" and reason in err
    assert len(list_drills(run.engine)) == 2


def test_status_shows_scenario_time_injects_and_the_next_one(run) -> None:
    scenarios = pytest.importorskip("layers.scenarios")
    library = scenarios.load_library()
    # a scenario with an inject that fires after the start
    name, scenario = next((n, s) for n, s in library.items()
                          if any(i.at_minutes > 0 for i in s.injects))
    status, out, _ = run("drill", "status")
    assert status == 0 and "No drill is running or paused" in out
    assert run("drill", "start", name, "--speed", "60")[0] == 0
    later = next(i for i in scenario.injects if i.at_minutes > 0)
    run.at(T0 + timedelta(seconds=later.at_minutes / 2))  # half way to it, in scenario time
    status, out, _ = run("drill", "status", "--json")
    [progress] = json.loads(out)["drills"]
    done = scenarios.fired(scenario, later.at_minutes / 2)
    assert progress["elapsed_minutes"] == pytest.approx(later.at_minutes / 2, abs=1e-3)
    assert progress["injects_fired"] == len(done)
    assert progress["injects_total"] == len(scenario.injects)
    assert progress["fired"] == [i.inject_id for i in done]
    upcoming = scenario.injects[len(done)]
    assert progress["next_inject"]["inject_id"] == upcoming.inject_id
    fires = T0 + timedelta(seconds=upcoming.at_minutes)  # a scenario minute a wall second
    assert progress["next_inject"]["at"] == fires.isoformat()
    status, out, _ = run("drill", "status")
    assert status == 0 and "EXERCISE  drill 1:" in out and "[running]" in out
    assert f"{len(done)} of {len(scenario.injects)} fired" in out
    assert f"next      {upcoming.inject_id}" in out
    assert f"{fires:%Y-%m-%d %H:%M:%S} UTC (" in out and " EST)" in out
    assert run("drill", "pause", "1")[0] == 0
    status, out, _ = run("drill", "status", "1")
    assert "[paused]" in out and "when the drill is resumed" in out
    assert run("drill", "stop", "1")[0] == 0
    status, out, _ = run("drill", "status")
    assert "No drill is running or paused" in out
    status, out, _ = run("drill", "status", "1")
    assert status == 0 and "[stopped 2026-11-28 14:" in out and "(the drill is stopped)" in out
    status, _, err = run("drill", "status", "42")
    assert status == 1 and err == "Refused: no drill 42\n"
    # a snapshot the library no longer reads is reported, not fatal
    odd = start_drill(run.engine, scenario_name="retired", scenario_json=SCENARIO,
                      name="Old drill", speed=1, actor="u", now=T0)
    status, out, _ = run("drill", "status", str(odd.drill_id))
    assert status == 0 and "injects   unknown:" in out
