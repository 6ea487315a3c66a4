"""What the wall display shows, and its maps as server-rendered SVG (no Dash here).

A wall display is a screen nobody touches: it must be right from across the room and never
leak anything personal. Everything here is an aggregate: counts per incident, counts of
affected people per H3 cell, mission premises as dots, outreach progress as totals.

* :func:`snapshot` -- the numbers of one refresh: the incidents (new ones that affect missions
  announced first for a while), KPIs, outreach progress across the open live boards, feed
  health, and whether a drill is running.
* :func:`map_svg` -- one map panel (the national map, an inset, or an incident's close-up) as
  SVG, rendered once per data change and shared by every screen.
* :func:`init_app` -- ``GET /wall/map/<panel>.svg``, display role, cached by the browser per
  data version (``?v=``) so a rotating close-up costs no request after the first round.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from dashboard import svgmap
from dashboard.services import (
    HazardState,
    Overview,
    Services,
    board_progress,
    hazard_area,
    overview,
)
from layers.locations import latlng_to_cells
from layers.shapes import normalize_longitudes
from store.outreach import list_boards

logger = logging.getLogger(__name__)

INSETS = ("alaska", "hawaii", "puerto_rico", "guam", "american_samoa", "marshall_islands")
PANEL_NAMES = ("conus", *INSETS)
CLOSEUP_PREFIX = "closeup-"
MAP_CACHE_SIZE = 64           # rendered panels kept (all screens share them)
CLOSEUP_SIZE = (1200, 560)    # the close-up box on the wall is wide and low


class UnknownMap(KeyError):
    """No such panel, or an incident that is not among the wall's close-ups."""


@dataclasses.dataclass(frozen=True)
class Outreach:
    """Progress across the open live outreach boards (exercise boards are never counted)."""

    boards: int
    missions_reached: int
    missions_total: int
    households_reached: int
    households_total: int
    needs_assistance: int


@dataclasses.dataclass(frozen=True)
class Wall:
    """One refresh of the wall display."""

    now: datetime
    overview: Overview
    incidents: pd.DataFrame     # OVERVIEW_COLUMNS + "new": announced first, then by impact
    outreach: Outreach
    exercise: tuple[str, ...]   # what makes this an exercise (open drill boards, CAP exercises)
    maps_key: str               # changes whenever any map would change
    closeups: tuple[str, ...]   # incident keys whose close-ups rotate, in order

    @property
    def new(self) -> pd.DataFrame:
        return self.incidents[self.incidents["new"].to_numpy(dtype=bool)]


def _outreach(services: Services, now: datetime) -> Outreach:
    totals = dict.fromkeys(("boards", "mr", "mt", "hr", "ht", "na"), 0)
    for board in list_boards(services.engine, exercise=False):
        try:
            progress = board_progress(services, board, now)
        except Exception:  # one broken board must not blank the wall
            logger.exception("wall: outreach board %s could not be read", board.board_id)
            continue
        totals["boards"] += 1
        totals["mr"] += progress["mission"]["reached"]
        totals["mt"] += progress["mission"]["total"]
        totals["hr"] += progress["household"]["reached"]
        totals["ht"] += progress["household"]["total"]
        totals["na"] += sum(p["needs_assistance"] for p in progress.values())
    return Outreach(totals["boards"], totals["mr"], totals["mt"], totals["hr"], totals["ht"],
                    totals["na"])


def _exercise(services: Services, data: Overview) -> tuple[str, ...]:
    from dashboard.drills import exercise_names

    reasons = [f"drill running: {name}" for name in exercise_names(services)]
    reasons += [f"drill outreach board: {b.name}"
                for b in list_boards(services.engine, exercise=True)]
    exercises = data.incidents[data.incidents["status"] == "exercise"]
    reasons += [f"exercise message: {event}" for event in exercises["event"].head(5)]
    return tuple(reasons)


def order_incidents(incidents: pd.DataFrame, now: datetime, announce: timedelta) -> pd.DataFrame:
    """Incidents that affect missions and were first listed by a live feed within
    ``announce`` come first (newest first), marked ``new``; the rest keep their impact order."""
    first = pd.to_datetime(incidents["first_seen"], utc=True)
    new = ((first >= pd.Timestamp(now - announce)).fillna(False).to_numpy(dtype=bool)
           & (incidents["missions"].to_numpy() > 0)
           & incidents["recorded_at"].isna().to_numpy())
    marked = incidents.assign(new=new)
    fresh = marked[new].sort_values("first_seen", ascending=False, kind="stable")
    return pd.concat([fresh, marked[~new]]).reset_index(drop=True)


def snapshot(services: Services, now: datetime | None = None) -> Wall:
    """Everything one wall refresh shows at ``now`` (no filters: the whole picture); taken at
    the present moment (``now`` None), it is also kept for :func:`recent_snapshot`."""
    present = now is None
    now = now or datetime.now(timezone.utc)
    settings = services.settings
    data = overview(services, now)
    incidents = order_incidents(data.incidents, now,
                                timedelta(minutes=settings.wall_announce_minutes))
    closeups = tuple(incidents.loc[incidents["missions"] > 0, "key"]
                     .head(settings.wall_closeups))
    digest = hashlib.sha256(repr((data.state_key, tuple(sorted(incidents["hazard_id"])),
                                  closeups)).encode())
    wall = Wall(now=now, overview=data, incidents=incidents,
                outreach=_outreach(services, now), exercise=_exercise(services, data),
                maps_key=digest.hexdigest()[:20], closeups=closeups)
    if present:
        with services._lock:
            services.wall_recent = (time.monotonic(), wall)
    return wall


# ------------------------------------------------------------------------------- maps


def _shapes(state: HazardState, rows: np.ndarray) -> list[tuple[str, str, Any]]:
    out = []
    for row in rows:
        hazard_id = state.table["hazard_id"].iat[row]
        area = hazard_area(state.hazards[hazard_id])
        if area is not None:
            out.append((hazard_id, state.table["severity"].iat[row], normalize_longitudes(area)))
    return out


def affected_aggregates(state: HazardState, mask: np.ndarray, resolution: int,
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(people per display H3 cell, missions with an ``affected`` flag) for the hazards in
    ``mask``: aggregates only."""
    roster = state.roster
    locations = roster.locations
    chosen = np.unique(state.pairs.select(mask).location)
    person = chosen[roster.codes.is_person[chosen]]
    parents = latlng_to_cells(locations["lat"].to_numpy(dtype=float)[person],
                              locations["lon"].to_numpy(dtype=float)[person], resolution)
    cells = (pd.Series(parents, dtype=object).value_counts().rename_axis("h3_cell")
             .reset_index(name="people"))
    hit = np.zeros(roster.codes.n_missions, dtype=bool)
    hit[roster.codes.mission[chosen]] = True
    premises = np.flatnonzero(roster.codes.is_mission)
    missions = pd.DataFrame({
        "lat": locations["lat"].to_numpy(dtype=float)[premises],
        "lon": locations["lon"].to_numpy(dtype=float)[premises],
        "affected": hit[roster.codes.mission[premises]],
    })
    return cells, missions


def _render(services: Services, wall: Wall, panel_name: str) -> str:
    state = services.hazard_state()
    table = state.table
    incident_rows = np.flatnonzero(table["hazard_id"].isin(wall.incidents["hazard_id"]))
    resolution = services.settings.display_h3_resolution
    if panel_name.startswith(CLOSEUP_PREFIX):
        key = panel_name[len(CLOSEUP_PREFIX):]
        row = state.by_key.get(key)
        if row is None or key not in wall.closeups:
            raise UnknownMap(panel_name)
        mask = np.zeros(len(table), dtype=bool)
        mask[row] = True
        focus = _shapes(state, np.array([row]))
        if not focus:
            raise UnknownMap(panel_name)
        panel = svgmap.closeup_panel(svgmap.bounds_of(focus[0][2]), width=CLOSEUP_SIZE[0],
                                     height=CLOSEUP_SIZE[1], name=table["event"].iat[row])
        highlight = focus[0][0]
    else:
        panel = svgmap.PANELS[panel_name]
        mask = np.zeros(len(table), dtype=bool)
        mask[incident_rows] = True
        highlight = None
    cells, missions = affected_aggregates(state, mask, resolution)
    return svgmap.render(panel, base=services.states, hazards=_shapes(state, incident_rows),
                         cells=cells, missions=missions, highlight=highlight)


def map_svg(services: Services, wall: Wall, panel_name: str) -> bytes:
    """One panel of ``wall`` as SVG bytes, rendered once per data version (KeyError: no such
    panel, or an incident that is not among the close-ups)."""
    if panel_name not in PANEL_NAMES and not panel_name.startswith(CLOSEUP_PREFIX):
        raise UnknownMap(panel_name)
    cache: OrderedDict[tuple[str, str], bytes] = services.wall_maps
    key = (wall.maps_key, panel_name)
    with services._lock:
        svg = cache.get(key)
        if svg is not None:
            cache.move_to_end(key)
            return svg
    with services.computing(("wall map", key)):  # screens asking at once: rendered once
        with services._lock:
            svg = cache.get(key)
        if svg is None:
            svg = _render(services, wall, panel_name).encode()
            with services._lock:
                cache[key] = svg
                while len(cache) > MAP_CACHE_SIZE:
                    cache.popitem(last=False)
    return svg


def recent_snapshot(services: Services, max_age_s: float = 2.0) -> Wall:
    """A snapshot at most ``max_age_s`` old: a screen fetching its dozen maps after an update
    (and every other screen doing the same) costs one snapshot, not one per image."""
    now = time.monotonic()
    with services._lock:
        cached = services.wall_recent
    if cached is not None and now - cached[0] <= max_age_s:
        return cached[1]
    with services.computing("wall snapshot"):  # one snapshot for the screens asking at once
        with services._lock:
            cached = services.wall_recent
        if cached is not None and time.monotonic() - cached[0] <= max_age_s:
            return cached[1]
        return snapshot(services)


def map_url(wall: Wall, panel_name: str) -> str:
    return f"/wall/map/{panel_name}.svg?v={wall.maps_key}"


def init_app(app: Any, services: Services) -> None:
    """``GET /wall/map/<panel>.svg`` for the display role (aggregates only)."""
    import flask

    from dashboard import auth

    server = app.server
    auth.declare_route(server, "/wall/map/<panel>.svg", "display")

    def wall_map(panel: str) -> flask.Response:
        wall = recent_snapshot(services)
        try:
            svg = map_svg(services, wall, panel)
        except UnknownMap:
            return flask.Response("no such map (the incident may have ended)\n", status=404,
                                  mimetype="text/plain")
        response = flask.Response(svg, mimetype="image/svg+xml")
        # The URL names the data version: a page showing it may keep it (rotating close-ups
        # then cost nothing); a stale version gets the current map, never cached.
        current = flask.request.args.get("v") == wall.maps_key
        response.headers["Cache-Control"] = ("private, max-age=86400" if current
                                             else "private, no-store")
        return response

    server.add_url_rule("/wall/map/<panel>.svg", "mw_wall_map", wall_map, methods=["GET"])

