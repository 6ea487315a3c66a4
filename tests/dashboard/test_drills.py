"""Drills on the dashboard: every bundled scenario runs end to end on an accelerated clock,
its numbers match a plain geometric oracle, and nothing from a drill reaches a live list,
export or API answer."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import plotly.utils
import pytest
import shapely
from pyproj import Geod

from dashboard import drills as drill_data
from dashboard.app import create_app
from dashboard.services import Services, board_view, overview
from layers.scenarios import hazards_at, load_library, scenario_to_geojson
from settings import Settings
from store.drills import drill_events, pause_drill, resume_drill, start_drill, stop_drill
from store.outreach import list_boards, open_board, record_status
from store.roster import replace_roster
from store.users import create_user
from tests.dashboard.test_access import PASSWORD, sign_in

START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
LIBRARY = load_library()
GEOD = Geod(ellps="WGS84")


@pytest.fixture
def services(store_engine, checked_small_roster, tmp_path):
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=START, synthetic=True)
    return Services.from_engine(store_engine, Settings.from_env({}, data_dir=str(tmp_path)))


def _start(services: Services, name: str, speed: float = 60.0, at: datetime = START):
    scenario = LIBRARY[name]
    return start_drill(services.engine, scenario_name=name,
                       scenario_json=json.dumps(scenario_to_geojson(scenario)),
                       name=f"test drill {name}", speed=speed, actor="test", now=at)


def _inside(hazard, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The oracle: a plain shapely cover test, or a geodesic distance for circles."""
    if hazard.geometry is not None:
        return shapely.covers(hazard.geometry, shapely.points(lon, lat))
    _, _, metres = GEOD.inv(np.full(len(lon), hazard.center_lon),
                            np.full(len(lat), hazard.center_lat), lon, lat)
    return metres <= hazard.radius_km * 1000


def _oracle(hazards, missions: pd.DataFrame, people: pd.DataFrame) -> dict[str, int]:
    premises = np.zeros(len(missions), dtype=bool)
    residents = np.zeros(len(people), dtype=bool)
    for hazard in hazards:
        premises |= _inside(hazard, missions["lon"].to_numpy(float),
                            missions["lat"].to_numpy(float))
        residents |= _inside(hazard, people["lon"].to_numpy(float),
                             people["lat"].to_numpy(float))
    hit = people[residents]
    touched = set(missions.loc[premises, "mission_id"]) | set(hit["mission_id"])
    return {"missions": len(touched), "people": len(hit),
            "with_immunity": int(hit["immunity"].isin(["full", "official_acts"]).sum()),
            "households": hit["household_id"].nunique()}


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_scenario_runs_end_to_end_on_an_accelerated_clock(services, checked_small_roster,
                                                                name) -> None:
    missions, people = checked_small_roster
    scenario = LIBRARY[name]
    drill = _start(services, name, speed=600.0)
    seen = []
    # walk the drill clock through every inject (and past the end) at 600x
    for minute in sorted({i.at_minutes for i in scenario.injects} | {scenario.duration_minutes}):
        now = START + timedelta(minutes=minute / 600.0, seconds=0.5)
        view = drill_data.drill_view(services, drill.drill_id, now)
        assert view.elapsed == pytest.approx(minute + 5.0, abs=0.01)
        expected = hazards_at(scenario, view.elapsed, drill_id=drill.drill_id,
                              started_at=drill.started_at)
        assert list(view.incidents["hazard_id"].sort_values()) == sorted(
            h.hazard_id for h in expected)
        oracle = _oracle(expected, missions, people)
        assert {k: view.totals[k] for k in oracle} == oracle, (name, minute)
        assert (view.incidents["hazard_id"].str.startswith(f"drill:{drill.drill_id}:")).all()
        svg = drill_data.drill_map_svg(services, view)
        assert ET.fromstring(svg).tag.endswith("svg")
        seen.append(view)
    assert [i.inject_id for i in seen[-1].fired] == [i.inject_id for i in scenario.injects]
    assert seen[-1].pending == ()
    # the timeline kept every inject once
    recorded = [e.inject_id for e in drill_events(services.engine, drill.drill_id)
                if e.action == "inject"]
    assert sorted(recorded) == sorted(i.inject_id for i in scenario.injects)
    stop_drill(services.engine, drill.drill_id, actor="test", now=START + timedelta(hours=2))


def test_the_drill_clock_pauses_and_the_view_follows(services) -> None:
    drill = _start(services, "miami-hurricane", speed=60.0)
    at = START + timedelta(minutes=1)           # 60 scenario minutes
    pause_drill(services.engine, drill.drill_id, actor="test", now=at)
    frozen = drill_data.drill_view(services, drill.drill_id, at + timedelta(hours=5))
    assert frozen.elapsed == pytest.approx(60.0)
    assert frozen.next_inject is not None and frozen.next_inject[1] is None   # paused
    resume_drill(services.engine, drill.drill_id, actor="test", now=at + timedelta(hours=5))
    later = drill_data.drill_view(services, drill.drill_id,
                                  at + timedelta(hours=5, minutes=1))
    assert later.elapsed == pytest.approx(120.0)
    assert len(later.fired) > len(frozen.fired)


def test_no_drill_hazard_or_outreach_reaches_a_live_list_export_or_api(
        services) -> None:
    now = datetime.now(timezone.utc)
    drill = _start(services, "potomac-flood-heat", speed=60.0, at=now - timedelta(minutes=1))
    view = drill_data.drill_view(services, drill.drill_id, now)
    assert view.totals["people"] > 0 and len(view.incidents) > 0
    board, _ = open_board(services.engine, list(view.incidents["hazard_id"]),
                          name="EXERCISE board", actor="test", now=now, exercise=True)
    drill_board = board_view(services, board.board_id, now)
    assert len(drill_board.rows) > 0                  # the drill board works on drill data
    target = drill_board.rows.iloc[0]
    record_status(services.engine, board.board_id, target["target_kind"],
                  target["target_id"], "reached_safe", actor="test", now=now)
    drill_ids = set(view.incidents["hazard_id"])
    # live lists: the overview and the live boards
    assert not drill_ids & set(overview(services, now).hazards["hazard_id"])
    assert board.board_id not in {b.board_id for b in list_boards(services.engine)}
    # the API and the exports, through the real routes as a coordinator
    create_user(services.engine, "coord", "coordinator", PASSWORD, actor="test", now=now)
    app = create_app(services.settings, services)
    client, response = sign_in(app, "coord")
    assert response.status_code == 302
    key = next(iter(drill_ids))
    area = view.incidents.set_index("hazard_id").loc[key, "area_desc"]
    for url in ("/api/v1/incidents", "/api/v1/boards", "/api/v1/feeds"):
        answer = client.get(url)
        assert answer.status_code == 200, url
        body = answer.get_data(as_text=True)
        assert "drill:" not in body and "EXERCISE board" not in body and area not in body, url
    # asked for by id, a drill hazard is not a live incident: refused, nothing of it told
    for url in (f"/api/v1/incidents/{key}", f"/api/v1/incidents/{key}/people",
                f"/api/v1/incidents/{key}/missions", f"/exports/calllist.csv?incidents={key}",
                f"/exports/calllist.xlsx?incidents={key}"):
        answer = client.get(url)
        assert answer.status_code in (400, 404), (url, answer.status_code)
        assert area not in answer.get_data(as_text=True), url
    created = client.post("/api/v1/boards", json={"incidents": [key]},
                          headers={"X-Requested-With": "XMLHttpRequest"})
    assert created.status_code in (404, 422), created.get_data(as_text=True)
    # the incident page does not open a drill hazard as a live incident
    text = json.dumps(_page("/incident/<incident_id>").layout(incident_id=key),
                      cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
    assert "no such incident" in text.lower()


def _page(template: str):
    import sys

    import dash

    page = next(p for p in dash.page_registry.values() if p.get("path_template") == template)
    return sys.modules[page["module"]]


def test_drill_pages_and_banner(services) -> None:
    now = datetime.now(timezone.utc)
    create_user(services.engine, "coord", "coordinator", PASSWORD, actor="test", now=now)
    app = create_app(services.settings, services)
    client, _ = sign_in(app, "coord")
    from dashboard.app import _exercise_banner

    assert _exercise_banner(True).hidden
    drill = _start(services, "new-york-surge", speed=60.0, at=now - timedelta(minutes=2))
    assert drill_data.exercise_names(services) == ("test drill new-york-surge "
                                                   "(new-york-surge)",)
    banner = _exercise_banner(True)
    assert not getattr(banner, "hidden", False)
    assert "EXERCISE — drill running: test drill" in banner.children
    view = drill_data.drill_view(services, drill.drill_id, now)
    svg = client.get(drill_data.drill_map_url(view))
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert client.get("/drill/999/map.svg").status_code == 404
    assert app.server.test_client().get(f"/drill/{drill.drill_id}/map.svg").status_code == 401
    text = json.dumps(_page("/drill/<drill_id>").layout(drill_id=str(drill.drill_id)),
                      cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
    assert "EXERCISE — test drill new-york-surge" in text
    assert "T+02:0" in text                        # two minutes at 60x
    missing = _page("/drill/<drill_id>").layout(drill_id="999")
    assert "no such drill" in json.dumps(missing, cls=plotly.utils.PlotlyJSONEncoder).lower()
    stop_drill(services.engine, drill.drill_id, actor="test", now=now)
    assert drill_data.exercise_names(services) == ()
    assert _exercise_banner(True).hidden
