"""A drill's after-action report from the store: a Potomac drill played on an accelerated
clock (paused, sped down, stopped before its last inject) with statuses recorded at chosen
times; its numbers against a plain geometric oracle and the times we chose; its routes; and
every bundled scenario's report end to end."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import plotly.utils
import pytest

from dashboard import drill_report
from dashboard import drills as drill_data
from dashboard.app import create_app
from dashboard.services import Services, board_view
from layers import aar
from layers.scenarios import hazards_at, load_library, scenario_to_geojson
from settings import Settings
from store.audit import query_audit
from store.drills import pause_drill, resume_drill, set_speed, start_drill, stop_drill
from store.outreach import open_board, record_status
from store.roster import replace_roster
from store.users import create_user
from tests.dashboard.test_access import PASSWORD, sign_in
from tests.dashboard.test_drills import _inside

START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
LIBRARY = load_library()
SPEED = 600.0   # ten scenario minutes a wall second


def s(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


@pytest.fixture
def services(store_engine, checked_small_roster, tmp_path):
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=START - timedelta(hours=1), synthetic=True)
    return Services.from_engine(store_engine, Settings.from_env({}, data_dir=str(tmp_path)))


def _start(services: Services, name: str, at: datetime = START):
    return start_drill(services.engine, scenario_name=name,
                       scenario_json=json.dumps(scenario_to_geojson(LIBRARY[name])),
                       name=f"report drill {name}", speed=SPEED, actor="alice", now=at)


# ----------------------------------------------------------------------------- the oracle
# (_inside: the plain shapely / geodesic point test of tests/dashboard/test_drills.py)


def _hits(hazards, missions: pd.DataFrame, people: pd.DataFrame):
    premises = np.zeros(len(missions), dtype=bool)
    residents = np.zeros(len(people), dtype=bool)
    for hazard in hazards:
        premises |= _inside(hazard, missions["lon"].to_numpy(float),
                            missions["lat"].to_numpy(float))
        residents |= _inside(hazard, people["lon"].to_numpy(float),
                             people["lat"].to_numpy(float))
    hit = people[residents]
    touched = set(missions.loc[premises, "mission_id"]) | set(hit["mission_id"])
    return touched, hit


def _oracle_counts(hazards, missions, people) -> dict[str, int]:
    touched, hit = _hits(hazards, missions, people)
    return {"missions": len(touched), "people": len(hit),
            "with_immunity": int(hit["immunity"].isin(["full", "official_acts"]).sum()),
            "households": hit["household_id"].nunique()}


def _oracle_targets(hazards, missions, people) -> set[tuple[str, str]]:
    touched, hit = _hits(hazards, missions, people)
    return {("mission", m) for m in touched} | {("household", h)
                                                 for h in hit["household_id"]}


# ----------------------------------------------------------------------------- one drill


@pytest.fixture
def played(services):
    """potomac-flood-heat at 600x: heat at T+0 (wall 0 s), flood warning at T+60 (6 s); paused
    at T+70 (7 s) until 67 s; major flood at T+150 (75 s); 60x from 80 s (T+200); stopped at
    100 s (T+220), before the flash flood at T+240. One board over what was in force at 6.5 s,
    statuses at 10, 20, 30, 40 and 90 s."""
    drill = _start(services, "potomac-flood-heat")
    engine = services.engine
    in_force = drill_data.drill_view(services, drill.drill_id, s(6.5)).incidents["hazard_id"]
    board, _ = open_board(engine, list(in_force), name="EXERCISE: heat and flood",
                          actor="carol", now=s(6.5), exercise=True)
    pause_drill(engine, drill.drill_id, actor="alice", now=s(7))
    rows = board_view(services, board.board_id, s(8)).rows
    missions = rows.loc[rows["target_kind"] == "mission", "target_id"].tolist()
    first, second = missions[0], missions[1]
    households = rows[(rows["target_kind"] == "household")
                      & ~rows["mission_id"].isin([first, second])]
    household, its_mission = households["target_id"].iloc[0], households["mission_id"].iloc[0]
    recorded = [(10, "mission", first, "attempted"), (20, "mission", first, "reached_safe"),
                (30, "household", household, "reached_needs_assistance"),
                (40, "mission", second, "reached_safe"),
                (90, "mission", second, "unreachable")]
    for seconds, kind, target, status in recorded:
        record_status(engine, board.board_id, kind, target, status, actor="bob",
                      now=s(seconds))
    resume_drill(engine, drill.drill_id, actor="alice", now=s(67))
    set_speed(engine, drill.drill_id, 60.0, actor="alice", now=s(80))
    stop_drill(engine, drill.drill_id, actor="alice", now=s(100))
    return {"drill": drill, "board": board, "in_force": tuple(in_force), "first": first,
            "second": second, "household": household, "household_mission": its_mission,
            "rows": rows}


def test_report_numbers_match_the_oracle_and_the_recorded_outreach(
        services, checked_small_roster, played) -> None:
    missions, people = checked_small_roster
    drill = played["drill"]
    scenario = LIBRARY["potomac-flood-heat"]
    report = drill_report.build_report(services, drill.drill_id, s(200))
    fired_at = {"extreme-heat-warning": s(0), "potomac-flood-warning": s(6),
                "potomac-major-flood": s(75)}
    counts = report.counts.set_index("inject_id")
    first_inject: dict[str, str] = {}
    for item in scenario.injects:
        row = counts.loc[item.inject_id]
        if item.inject_id not in fired_at:       # the drill stopped at T+220
            assert pd.isna(row["fired_at"]) and pd.isna(row["missions"])
            continue
        assert row["fired_at"] == pd.Timestamp(fired_at[item.inject_id]), item.inject_id
        hazards = hazards_at(scenario, item.at_minutes, drill_id=drill.drill_id,
                             started_at=drill.started_at)
        oracle = _oracle_counts(hazards, missions, people)
        assert {k: int(row[k]) for k in oracle} == oracle, item.inject_id
        assert row["hazards_in_force"] == len(hazards)
        for mission in _hits(hazards, missions, people)[0]:
            first_inject.setdefault(mission, item.inject_id)
    assert report.summary["injects_fired"] == 3
    # the timeline: injects and the clock in the order they happened
    line = report.timeline
    assert list(line["kind"]) == ["start", "inject", "inject", "pause", "resume", "inject",
                                  "speed", "stop", "inject"]
    assert line["at"].iloc[-1] is pd.NaT or pd.isna(line["at"].iloc[-1])
    assert report.summary["paused_minutes"] == pytest.approx(1.0)
    # coverage: exactly the steps we recorded (the second mission drops out at 90 s)
    steps = report.coverage
    assert list(steps["at"]) == [pd.Timestamp(s(x)) for x in (0, 20, 30, 40, 90)]
    assert list(steps["missions_reached"]) == [0, 1, 1, 2, 1]
    assert list(steps["households_reached"]) == [0, 0, 1, 1, 1]
    # time to first contact: from the first inject that reached each mission
    contact = report.first_contact.set_index("mission_id")
    assert set(contact.index) == set(first_inject)
    for mission, seconds, via in ((played["first"], 10, "duty contact"),
                                  (played["second"], 40, "duty contact"),
                                  (played["household_mission"], 30, "household")):
        affected = fired_at[first_inject[mission]]
        assert contact.loc[mission, "first_inject"] == first_inject[mission]
        assert contact.loc[mission, "minutes"] == pytest.approx(
            (s(seconds) - affected).total_seconds() / 60), mission
        assert contact.loc[mission, "contacted_via"] == via
    contacted = {played["first"], played["second"], played["household_mission"]}
    assert contact["minutes"].notna().sum() == len(contacted)
    assert report.summary["missions_never_contacted"] == len(first_inject) - len(contacted)
    # never reached: everyone the board's hazards cover, but the two reached at the end
    board_hazards = [h for h in hazards_at(scenario, 65.0, drill_id=drill.drill_id,
                                           started_at=drill.started_at)
                     if h.hazard_id in played["in_force"]]
    on_board = _oracle_targets(board_hazards, missions, people)
    assert on_board == set(zip(played["rows"]["target_kind"], played["rows"]["target_id"],
                               strict=True))                       # what the board listed
    reached = {("mission", played["first"]), ("household", played["household"])}
    missing = report.never_reached
    assert set(zip(missing["target_kind"], missing["target_id"], strict=True)) == \
        on_board - reached
    second = missing.set_index("target_id").loc[played["second"]]
    assert second["status"] == "unreachable"
    assert (report.summary["missions_reached"], report.summary["households_reached"]) == (1, 1)


def _csv(body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    text = body.decode("utf-8-sig")
    lines = text.splitlines()
    keys = {}
    for line in lines:
        if line.startswith(("#", '"#')):
            key, value = next(csv.reader([line]))[0][2:].split(": ", 1)
            keys[key] = value
    rest = "\n".join(line for line in lines if not line.startswith(("#", '"#')))
    return keys, list(csv.DictReader(io.StringIO(rest)))


def _page(template: str):
    import sys

    import dash

    page = next(p for p in dash.page_registry.values() if p.get("path_template") == template)
    return sys.modules[page["module"]]


def test_routes_answer_coordinators_refuse_others_and_are_audited(services, played) -> None:
    now = datetime.now(timezone.utc)
    drill_id = played["drill"].drill_id
    for name, role in (("coord", "coordinator"), ("wall", "display")):
        create_user(services.engine, name, role, PASSWORD, actor="test", now=now)
    app = create_app(services.settings, services)
    anonymous = app.server.test_client()
    display, _ = sign_in(app, "wall")
    client, response = sign_in(app, "coord")
    assert response.status_code == 302
    bodies = {}
    for fmt, mimetype in (("html", "text/html"), ("csv", "text/csv")):
        url = drill_report.report_url(drill_id, fmt)
        assert url == f"/exports/drill/{drill_id}/report.{fmt}"
        answer = client.get(url)
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        assert answer.mimetype == mimetype
        disposition = answer.headers["Content-Disposition"]
        assert re.search(rf'filename="missionwatch-EXERCISE-drill-{drill_id}-report-'
                         rf'\d{{8}}T\d{{6}}Z\.{fmt}"', disposition), disposition
        body = answer.get_data()
        assert b"EXERCISE" in body
        bodies[fmt] = body
        assert anonymous.get(url).status_code == 401
        assert display.get(url).status_code == 403
        assert client.get(f"/exports/drill/999/report.{fmt}").status_code == 404
    html_answer = client.get(drill_report.report_url(drill_id, "html"))
    policy = html_answer.headers["Content-Security-Policy"]
    assert policy == drill_report.REPORT_POLICY and "script-src" not in policy
    assert html_answer.headers["Content-Disposition"].startswith("inline;")
    text = bodies["html"].decode()
    assert aar.EXERCISE_TEXT in text and "<script" not in text
    assert ET.fromstring(re.search(r"<svg.*?</svg>", text, re.S).group(0)).tag == "svg"
    keys, rows = _csv(bodies["csv"])
    assert keys["exercise"].startswith("EXERCISE") and keys["exported_by"] == "user:coord"
    assert {r["section"] for r in rows} == set(aar.SECTIONS)
    coverage = [(r["missions_reached"], r["households_reached"]) for r in rows
                if r["section"] == "coverage"]
    assert coverage == [("0", "0"), ("1", "0"), ("1", "1"), ("2", "1"), ("1", "1")]
    # audited: who, which drill, the format, rows, the file and its SHA-256
    events = query_audit(services.engine, action="drill.report")
    assert len(events) == 3 and {e.actor for e in events} == {"user:coord"}
    detail = next(e.detail for e in events if e.detail["format"] == "csv")
    assert detail["drill_id"] == drill_id and detail["rows"] == len(rows)
    assert detail["sha256"] == hashlib.sha256(bodies["csv"]).hexdigest()
    assert detail["file"].startswith(f"missionwatch-EXERCISE-drill-{drill_id}-report-")
    # the drill page links its report
    layout = json.dumps(_page("/drill/<drill_id>").layout(drill_id=str(drill_id)),
                        cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
    assert f"/exports/drill/{drill_id}/report.html" in layout
    assert f"/exports/drill/{drill_id}/report.csv" in layout


# ----------------------------------------------------------------------------- every scenario


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_bundled_scenario_reports_end_to_end(services, checked_small_roster, name,
                                                   tmp_path) -> None:
    missions, people = checked_small_roster
    scenario = LIBRARY[name]
    drill = _start(services, name)
    engine = services.engine
    view = drill_data.drill_view(services, drill.drill_id, s(0.5))
    board_rows = pd.DataFrame()
    if len(view.incidents):
        board, _ = open_board(engine, list(view.incidents["hazard_id"]), name=f"EXERCISE {name}",
                              actor="carol", now=s(0.5), exercise=True)
        board_rows = board_view(services, board.board_id, s(0.5)).rows
        if len(board_rows):
            target = board_rows.iloc[0]
            record_status(engine, board.board_id, target["target_kind"], target["target_id"],
                          "reached_safe", actor="bob", now=s(1))
    end = s(scenario.duration_minutes * 60 / SPEED + 1)   # the whole clock, and a bit
    stop_drill(engine, drill.drill_id, actor="alice", now=end)
    report = drill_report.build_report(services, drill.drill_id, end + timedelta(minutes=5))
    assert report.counts["fired_at"].notna().all(), name
    for item, row in zip(scenario.injects, report.counts.itertuples(index=False), strict=True):
        hazards = hazards_at(scenario, item.at_minutes, drill_id=drill.drill_id,
                             started_at=drill.started_at)
        oracle = _oracle_counts(hazards, missions, people)
        assert {k: int(getattr(row, k)) for k in oracle} == oracle, (name, item.inject_id)
    assert report.summary["missions_on_boards"] == int(
        (board_rows.get("target_kind", pd.Series(dtype=str)) == "mission").sum())
    assert report.summary["households_on_boards"] == int(
        (board_rows.get("target_kind", pd.Series(dtype=str)) == "household").sum())
    assert report.summary["missions_reached"] + report.summary["households_reached"] == \
        (1 if len(board_rows) else 0)
    path = aar.report_csv(report, tmp_path / "report.csv")
    keys, rows = _csv(path.read_bytes())
    assert keys["injects_fired"] == f"{len(scenario.injects)} of {len(scenario.injects)}"
    assert int(keys["rows"]) == len(rows) == report.rows
    assert sum(r["section"] == "counts" for r in rows) == len(scenario.injects)
    text = aar.report_html(report)
    assert text.count('class="watermark"') == 1 and aar.EXERCISE_TEXT in text
    assert "did not fire" not in text
    if len(board_rows):
        ET.fromstring(re.search(r"<svg.*?</svg>", text, re.S).group(0))
