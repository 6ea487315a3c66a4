"""Replaying a recorded real feed as a drill against today's roster."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import shapely

from dashboard import drills as drill_data
from feeds.poller import recorded_hazards
from layers.geography import load_geography
from layers.replay import MAX_MINUTES, replay_scenario, touched_jurisdictions
from layers.scenarios import hazards_at, scenario_to_geojson
from store.drills import start_drill
from tests.dashboard.test_drills import START, _oracle, services  # noqa: F401 (fixture)

STATES = load_geography().states


@pytest.mark.parametrize("source", ["nws", "usgs", "nhc"])
def test_a_recording_replays_every_placed_hazard_in_the_order_it_was_sent(source) -> None:
    hazards, _ = recorded_hazards(source)
    scenario = drill_data.recorded_replay(source, STATES)
    placed = [h for h in hazards if h.is_placed and h.status == "actual"
              and h.message_type != "cancel"]
    assert len(scenario.injects) == min(len(placed), 200)
    assert scenario.name == f"replay-{source}"
    assert set(scenario.jurisdictions) == set(touched_jurisdictions(placed, STATES))
    times = [i.at_minutes for i in scenario.injects]
    assert times == sorted(times) and times[0] == 0 and times[-1] <= MAX_MINUTES
    # each inject keeps its hazard's area and event
    by_event = {}
    for hazard in placed:
        by_event.setdefault(hazard.event, []).append(hazard)
    for inject in scenario.injects:
        twins = by_event[inject.event]
        assert any(shapely.equals_exact(shapely.normalize(inject.area),
                                        shapely.normalize(drill_data.hazard_area(h)), 1e-6)
                   or inject.area.symmetric_difference(drill_data.hazard_area(h)).area < 1e-9
                   for h in twins), inject.inject_id
    # at the end of the scenario every inject that never expired is in force
    last = hazards_at(scenario, scenario.duration_minutes - 0.001, drill_id=1,
                      started_at=START)
    open_ended = [i for i in scenario.injects if i.expires_minutes is None or
                  i.at_minutes + i.expires_minutes > scenario.duration_minutes]
    assert {h.hazard_id for h in last} == {f"drill:1:{i.inject_id}" for i in open_ended}


def test_a_recording_that_touches_no_jurisdiction_is_refused() -> None:
    hazards, _ = recorded_hazards("gdacs")
    with pytest.raises(ValueError, match="touches no US jurisdiction"):
        replay_scenario("gdacs", hazards, datetime(2019, 12, 30, tzinfo=timezone.utc), [])


def test_a_replay_drill_counts_match_the_oracle(services, checked_small_roster) -> None:  # noqa: F811
    missions, people = checked_small_roster
    scenario = drill_data.recorded_replay("nhc", STATES)
    drill = start_drill(services.engine, scenario_name=scenario.name,
                        scenario_json=json.dumps(scenario_to_geojson(scenario)),
                        name="replay test", speed=600.0, actor="test", now=START, kind="replay")
    view = drill_data.drill_view(services, drill.drill_id, START + timedelta(seconds=30))
    expected = hazards_at(scenario, view.elapsed, drill_id=drill.drill_id,
                          started_at=drill.started_at)
    assert len(view.incidents) == len(expected) > 0
    oracle = _oracle(expected, missions, people)
    assert {k: view.totals[k] for k in oracle} == oracle
    assert view.totals["people"] > 0          # Sandy's cone covers the north-east
    assert view.drill.kind == "replay"


def test_the_drills_page_offers_and_starts_a_replay(services) -> None:  # noqa: F811
    from dashboard.app import create_app
    from store.drills import get_drill
    from store.users import create_user
    from tests.dashboard.test_access import PASSWORD, _callback_payload, sign_in

    now = datetime.now(timezone.utc)
    create_user(services.engine, "coord", "coordinator", PASSWORD, actor="test", now=now)
    app = create_app(services.settings, services)
    client, _ = sign_in(app, "coord")
    key = "..drills-location.href...drills-result.children.."
    payload = _callback_payload(app, key, {
        "drills-start.n_clicks": 1, "drills-scenario.value": "replay-usgs",
        "drills-speed.value": 600, "drills-name.value": ""})
    answer = client.post("/_dash-update-component", json=payload)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    href = answer.get_json()["response"]["drills-location"]["href"]
    drill = get_drill(services.engine, int(href.rsplit("/", 1)[1]))
    assert drill.kind == "replay" and drill.scenario_name == "replay-usgs"
    assert "Replay of the recorded USGS feed" in drill.name
    refused = _callback_payload(app, key, {"drills-start.n_clicks": 1,
                                           "drills-scenario.value": "replay-gdacs"})
    text = client.post("/_dash-update-component", json=refused).get_data(as_text=True)
    assert "Cannot replay it" in text and "touches no US jurisdiction" in text
