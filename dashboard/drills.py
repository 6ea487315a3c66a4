"""Drills on the dashboard: a drill's hazards (its injects in force on the drill clock) and
who they affect, kept apart from the live feeds (no Dash here).

A drill's hazards never enter the ``hazards`` table: they are worked out from the scenario
kept with the drill and its clock, into a :class:`~dashboard.services.HazardState` of their
own, against the same roster and impact index as the live view. Live lists, exports and API
answers read the live state only, so nothing from a drill can reach them; drill outreach
boards (exercise boards over ``drill:`` hazard ids) read the drill's state.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import shapely

from dashboard.services import HazardState, Services, hazard_area, incident_key
from layers.affected import hazard_counts, union_counts
from layers.scenarios import Inject, Scenario, fired, hazards_at, parse_scenario
from layers.shapes import normalize_longitudes
from store.drills import (
    Drill,
    DrillNotFound,
    drill_scenario_json,
    get_drill,
    record_injects,
    running_drills,
)

logger = logging.getLogger(__name__)

DRILL_PREFIX = "drill:"
SPEEDS = (1, 10, 60, 600)   # 1x real time; 60x: an hour of scenario a minute
MAP_SIZE = (1200, 700)
INCIDENT_COLUMNS = ("hazard_id", "key", "inject_id", "event", "severity", "area_desc",
                    "headline", "sent", "missions", "premises", "people", "with_immunity",
                    "households")


def clock_text(minutes: float) -> str:
    """Scenario time as T+hh:mm."""
    whole = int(minutes)
    return f"T+{whole // 60:02d}:{whole % 60:02d}"


def drill_of(hazard_id: str) -> int | None:
    """The drill a hazard id belongs to (``drill:<id>:<inject>``), or None for a live one."""
    if not hazard_id.startswith(DRILL_PREFIX):
        return None
    head = hazard_id[len(DRILL_PREFIX):].split(":", 1)[0]
    return int(head) if head.isdigit() else None


@dataclasses.dataclass(frozen=True)
class DrillView:
    """A drill at one moment: its clock, its injects, and who its hazards in force affect."""

    drill: Drill
    scenario: Scenario
    now: datetime
    elapsed: float                  # scenario minutes reached
    scenario_now: datetime          # the drill's own timeline: started_at + elapsed minutes
    state: HazardState              # the drill's hazards in force, and their impact
    incidents: pd.DataFrame         # INCIDENT_COLUMNS, most people first
    totals: dict[str, int]          # their union: each mission and person once
    fired: tuple[Inject, ...]
    pending: tuple[Inject, ...]

    @property
    def next_inject(self) -> tuple[Inject, datetime | None] | None:
        """The next inject and when it fires on the wall clock (None while paused)."""
        if not self.pending:
            return None
        item = self.pending[0]
        return item, self.drill.wall_time_of(item.at_minutes, self.now)


def _scenario(services: Services, drill: Drill) -> Scenario:
    cache: dict[int, Scenario] = services.drill_scenarios
    with services._lock:
        scenario = cache.get(drill.drill_id)
    if scenario is None:
        text = drill.scenario_json or drill_scenario_json(services.engine, drill.drill_id)
        scenario = parse_scenario(text, origin=f"drill {drill.drill_id}")
        with services._lock:
            cache[drill.drill_id] = scenario
    return scenario


def drill_state(services: Services, drill: Drill, scenario: Scenario, elapsed: float
                ) -> HazardState:
    """The state of the drill's hazards in force at ``elapsed``; rebuilt only when that set
    (or the roster) changes."""
    hazards = hazards_at(scenario, elapsed, drill_id=drill.drill_id,
                         started_at=drill.started_at)
    cache: dict[int, HazardState] = services.drill_states
    with services._lock:
        data = services._roster_locked()
        key = ("drill", drill.drill_id, data.version, tuple(h.hazard_id for h in hazards))
        state = cache.get(drill.drill_id)
        if state is None or state.key != key:
            state = services.build_state(key, data, hazards)
            cache[drill.drill_id] = state
    return state


def drill_view(services: Services, drill_id: int, now: datetime) -> DrillView:
    """Drill ``drill_id`` at ``now``: fired injects are recorded (once) for its timeline."""
    drill = get_drill(services.engine, drill_id)
    scenario = _scenario(services, drill)
    elapsed = drill.elapsed_minutes(now)
    state = drill_state(services, drill, scenario, elapsed)
    done = fired(scenario, elapsed)
    if done:
        record_injects(services.engine, drill.drill_id,
                       [(item.inject_id, item.at_minutes) for item in done], now)
    roster = state.roster
    table = state.table
    counts = hazard_counts(state.pairs, roster.codes, len(table))
    incidents = pd.concat([table.reset_index(drop=True), counts.reset_index(drop=True)],
                          axis=1)
    incidents["inject_id"] = [h.split(":", 2)[2] for h in incidents["hazard_id"]]
    incidents = incidents.sort_values(["people", "missions", "hazard_id"],
                                      ascending=[False, False, True], kind="stable")
    totals = union_counts(state.pairs, roster.codes, np.ones(len(table), dtype=bool))
    return DrillView(
        drill=drill, scenario=scenario, now=now, elapsed=elapsed,
        scenario_now=drill.started_at + timedelta(minutes=elapsed), state=state,
        incidents=incidents.loc[:, list(INCIDENT_COLUMNS)].reset_index(drop=True),
        totals=totals, fired=done,
        pending=tuple(i for i in scenario.injects if i not in done))


def state_for(services: Services, hazard_ids: tuple[str, ...], now: datetime
              ) -> HazardState | None:
    """The drill state that holds ``hazard_ids`` (all of one drill), or None for live ids."""
    drills = {drill_of(h) for h in hazard_ids}
    if drills == {None} or not drills:
        return None
    if None in drills or len(drills) != 1:
        raise ValueError("a selection mixes live and drill hazards, or two drills")
    drill_id = drills.pop()
    assert drill_id is not None
    drill = get_drill(services.engine, drill_id)
    return drill_state(services, drill, _scenario(services, drill), drill.elapsed_minutes(now))


REPLAY_PREFIX = "replay-"


def replayable_sources() -> tuple[str, ...]:
    """Sources with a bundled recording that touches US jurisdictions."""
    from feeds.sources import SOURCE_NAMES, get_source

    return tuple(n for n in SOURCE_NAMES if get_source(n).recording is not None
                 and n in ("nws", "usgs", "nhc", "tsunami"))


def recorded_replay(source: str, states: Any) -> Scenario:
    """The scenario that replays ``source``'s bundled recording against today's roster
    (ValueError: no recording, or nothing in it to replay)."""
    from feeds.poller import recorded_hazards
    from feeds.sources import get_source
    from layers.replay import replay_scenario, touched_jurisdictions

    hazards, _ = recorded_hazards(source)
    recording = get_source(source).recording
    assert recording is not None
    return replay_scenario(source, hazards, recording.recorded_at,
                           touched_jurisdictions(hazards, states))


def exercise_names(services: Services) -> tuple[str, ...]:
    """The drills running or paused now (what every page's EXERCISE banner names)."""
    return tuple(f"{d.name} ({d.scenario_name}{', paused' if d.paused else ''})"
                 for d in running_drills(services.engine))


def incident_keys(view: DrillView) -> tuple[str, ...]:
    return tuple(incident_key(h) for h in view.incidents["hazard_id"])


def as_json(view: DrillView) -> dict[str, Any]:
    """The drill's status for the CLI and tests: clock, injects, counts."""
    upcoming = view.next_inject
    return {
        "drill": view.drill.as_json(view.now), "scenario": view.scenario.name,
        "elapsed_minutes": round(view.elapsed, 3),
        "fired": [i.inject_id for i in view.fired],
        "pending": [i.inject_id for i in view.pending],
        "next": None if upcoming is None else {
            "inject_id": upcoming[0].inject_id,
            "at": None if upcoming[1] is None else upcoming[1].isoformat()},
        "totals": view.totals,
    }


# ------------------------------------------------------------------------------- its map


def drill_map_url(view: DrillView) -> str:
    """The drill map's URL, named by the set of hazards in force (a new set, a new image)."""
    return f"/drill/{view.drill.drill_id}/map.svg?v={abs(hash(view.state.key)) % 10**12}"


def drill_map_svg(services: Services, view: DrillView) -> bytes:
    """The drill's hazards in force and who they affect (counts per cell), as SVG."""
    from dashboard import svgmap
    from dashboard.wall import affected_aggregates

    state = view.state
    shapes = [(h, state.table["severity"].iat[i],
               normalize_longitudes(hazard_area(state.hazards[h])))
              for i, h in enumerate(state.table["hazard_id"])]
    if shapes:
        union = shapely.union_all([g for _, _, g in shapes])
        panel = svgmap.closeup_panel(svgmap.bounds_of(union), width=MAP_SIZE[0],
                                     height=MAP_SIZE[1], name=view.scenario.title)
    else:
        areas = [normalize_longitudes(i.area) for i in view.scenario.injects]
        panel = svgmap.closeup_panel(svgmap.bounds_of(shapely.union_all(areas)),
                                     width=MAP_SIZE[0], height=MAP_SIZE[1],
                                     name=view.scenario.title)
    cells, missions = affected_aggregates(state, np.ones(len(state.table), dtype=bool),
                                          services.settings.display_h3_resolution)
    return svgmap.render(panel, base=services.states, hazards=shapes, cells=cells,
                         missions=missions).encode()


def init_app(app: Any, services: Services) -> None:
    """``GET /drill/<id>/map.svg`` for coordinators (aggregates of a drill, EXERCISE)."""
    import flask

    from dashboard import auth

    server = app.server
    auth.declare_route(server, "/drill/<int:drill_id>/map.svg", "coordinator")

    def drill_map(drill_id: int) -> flask.Response:
        from datetime import timezone

        try:
            view = drill_view(services, drill_id, datetime.now(timezone.utc))
        except DrillNotFound:
            return flask.Response("no such drill\n", status=404, mimetype="text/plain")
        return flask.Response(drill_map_svg(services, view), mimetype="image/svg+xml")

    server.add_url_rule("/drill/<int:drill_id>/map.svg", "mw_drill_map", drill_map,
                        methods=["GET"])
