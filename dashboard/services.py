"""What the dashboard needs from the core, computed once per roster and hazard snapshot.

Three caches, each keyed by a cheap version read from the store on every call:

* the roster (personal data stays in this process's memory, never in a page unless the page is
  for coordinators), its aggregates and its impact index — keyed by the roster version;
* the hazard state — every stored hazard, its display shape, the jurisdictions it touches and
  its impact pairs — keyed by the roster version and :func:`store.feeds.hazards_stamp`;
* the incident rules — read on every call (one small query) and applied per request.

Everything a request computes on top (which hazards are active now, filters, counts) is numpy
work over those caches: milliseconds, not a rebuild.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

import geopandas
import h3
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from sqlalchemy.engine import Engine

from feeds.model import SEVERITIES, Hazard
from layers.affected import (
    Filters,
    LocationCodes,
    PairCodes,
    hazard_counts,
    union_counts,
)
from layers.calllist import call_list
from layers.geography import load_geography
from layers.impact import ImpactIndex
from layers.incidents import RulesInvalid, classify, marine_only
from layers.locations import roster_locations, roster_stats
from layers.outreach import (
    REACHED,
    TARGET_COLUMNS,
    TARGET_KINDS,
    board_rows,
    describe_targets,
    liaisons,
    progress,
    targets_from_calls,
)
from layers.schema import CALIFORNIA_SPLIT_LAT, OFFICE_BY_JURISDICTION
from layers.shapes import geodesic_circle, normalize_longitudes
from settings import Settings
from store.feeds import feed_health, first_seen_times, hazards_stamp, load_hazards
from store.outreach import (
    Board,
    add_targets,
    board_version,
    first_seen,
    get_board,
    history,
    latest_status_codes,
    latest_statuses,
)
from store.roster import current_import, load_roster
from store.rules import RuleSet, load_rules

logger = logging.getLogger(__name__)

# Public facts about a mission that may appear on any screen (no phones, e-mails or people).
PUBLIC_MISSION_COLUMNS = ("mission_id", "name", "country_name", "mission_type", "city",
                          "jurisdiction", "ofm_office", "lat", "lon")
# Display shapes: simplified (degrees) and rounded (decimals, about 100 m) — for maps only;
# who is affected is always decided on the exact stored geometry.
DISPLAY_TOLERANCE_DEG = 0.005
DISPLAY_DECIMALS = 3
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,120}$")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def incident_key(hazard_id: str) -> str:
    """A URL-safe key for a hazard: the id itself when it is plain, else a stable digest."""
    if _SAFE_KEY.match(hazard_id):
        return hazard_id
    source = hazard_id.split(":", 1)[0]
    return f"{source}-{hashlib.sha256(hazard_id.encode()).hexdigest()[:16]}"


def rounded_geojson(geometry: Any, decimals: int = DISPLAY_DECIMALS) -> dict[str, Any]:
    """``geometry`` as a GeoJSON mapping with coordinates rounded (smaller map payloads)."""
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, decimals))
    return shapely.geometry.mapping(rounded)


@dataclasses.dataclass(frozen=True)
class RosterData:
    """One roster version: the stored frames (personal data), locations and their codes."""

    version: int | None
    source: str
    synthetic: bool
    missions: pd.DataFrame
    people: pd.DataFrame
    locations: pd.DataFrame
    codes: LocationCodes


@dataclasses.dataclass(frozen=True)
class RosterView:
    """Aggregates of one roster version, free of personal data."""

    version: int | None
    source: str
    synthetic: bool
    stats: dict[str, Any]
    missions: pd.DataFrame        # PUBLIC_MISSION_COLUMNS only
    cell_counts: pd.DataFrame     # h3_cell, people, with_immunity (display resolution)


# Columns of the hazard table that a poll may change without changing the hazard itself
VOLATILE_COLUMNS = ("recorded_at", "clock", "expiry_lag")
HAZARD_COLUMNS = (
    "hazard_id", "key", "source", "event", "category", "severity", "status", "message_type",
    "headline", "area_desc", "url", "sent", "onset", "expires", "recorded_at", "clock",
    "expiry_lag", "geometry_method", "placed", "marine_only", "first_seen", "jurisdictions",
    "offices",
)


@dataclasses.dataclass(frozen=True)
class HazardState:
    """Every stored hazard (active or not) with what it covers, for one roster version."""

    key: tuple[Any, ...]
    table: pd.DataFrame                 # HAZARD_COLUMNS, one row per stored hazard
    hazards: dict[str, Hazard]
    display: dict[str, dict[str, Any]]  # hazard id -> GeoJSON geometry for maps
    pairs: PairCodes                    # rows of ``table`` x rows of the roster locations
    by_key: dict[str, int]              # incident key -> row of ``table``
    roster: RosterData                  # the roster version the pairs refer to
    _digests: dict[int, str] = dataclasses.field(default_factory=dict, compare=False,
                                                 repr=False)

    def content_key(self, rows: Iterable[int]) -> tuple[Any, ...]:
        """What the impact of these hazards depends on: the roster version and each hazard's
        stored record and shape. Equal keys, equal impact, whatever else changed in the feeds:
        views of an incident (its call list, its outreach board) are cached by it, so a poll
        that changes other hazards does not rebuild them. The columns that move with every
        poll (``VOLATILE_COLUMNS``) are left out; views take them from the current state."""
        digests = []
        for row in rows:
            digest = self._digests.get(row)
            if digest is None:
                hazard = self.hazards[self.table["hazard_id"].iat[row]]
                record = self.table.iloc[row].drop(list(VOLATILE_COLUMNS))
                shape = b"" if hazard.geometry is None else shapely.to_wkb(hazard.geometry)
                digest = hashlib.sha256(repr((
                    tuple(record.items()), hazard.center_lon, hazard.center_lat,
                    hazard.radius_km, hazard.geometry_method)).encode() + shape).hexdigest()
                self._digests[row] = digest
            digests.append(digest)
        return (self.roster.version, tuple(digests))

    def current(self, hazards: pd.DataFrame, now: datetime) -> pd.DataFrame:
        """``hazards`` (rows of a cached view) with the columns that move with every poll, and
        ``active`` at ``now``, taken from this state."""
        if hazards.empty or "hazard_id" not in hazards:
            return hazards
        rows = [self.by_key[incident_key(h)] for h in hazards["hazard_id"]]
        out = hazards.copy()
        for column in VOLATILE_COLUMNS:
            out[column] = self.table[column].iloc[rows].to_numpy()
        out["active"] = self.active_mask(now)[rows]
        return out

    def active_mask(self, now: datetime) -> np.ndarray:
        """Hazards in force at ``now``: not cancelled and not ended (a recording by its date, a
        feed whose clock is behind ours on its own clock: see feeds/clock.py)."""
        table = self.table
        if table.empty:
            return np.zeros(0, dtype=bool)
        clock = (table["clock"].fillna(pd.Timestamp(now)) - table["expiry_lag"]).to_numpy()
        ends = table["expires"]
        open_ended = ends.isna().to_numpy()
        later = np.zeros(len(table), dtype=bool)
        later[~open_ended] = ends[~open_ended].to_numpy() > clock[~open_ended]
        return (table["message_type"] != "cancel").to_numpy() & (open_ended | later)


def _offices(jurisdictions: tuple[str, ...], area: Any) -> tuple[str, ...]:
    """The OFM offices responsible for the touched jurisdictions (California by latitude)."""
    offices = {OFFICE_BY_JURISDICTION[j] for j in jurisdictions if j in OFFICE_BY_JURISDICTION}
    if "CA" in jurisdictions and area is not None:
        _, south, _, north = area.bounds
        if south < CALIFORNIA_SPLIT_LAT:
            offices.add("LAX")
        if north >= CALIFORNIA_SPLIT_LAT:
            offices.add("SFO")
    return tuple(sorted(offices))


def hazard_area(hazard: Hazard) -> Any:
    if hazard.geometry is not None:
        return hazard.geometry
    if hazard.radius_km is not None:
        return geodesic_circle(hazard.center_lon, hazard.center_lat, hazard.radius_km)
    return None


@dataclasses.dataclass
class Services:
    """The engine and settings, plus caches keyed by roster version and hazard snapshot."""

    engine: Engine
    settings: Settings
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _roster: RosterData | None = dataclasses.field(default=None, repr=False)
    _view: RosterView | None = dataclasses.field(default=None, repr=False)
    _index: tuple[int | None, ImpactIndex] | None = dataclasses.field(default=None, repr=False)
    _hazards: HazardState | None = dataclasses.field(default=None, repr=False)
    _cells: tuple[int | None, dict[str, Any]] | None = dataclasses.field(default=None,
                                                                         repr=False)
    _incidents: OrderedDict[tuple[Any, ...], IncidentView] = dataclasses.field(
        default_factory=OrderedDict, repr=False)
    _boards: OrderedDict[tuple[Any, ...], Any] = dataclasses.field(
        default_factory=OrderedDict, repr=False)
    _board_targets_known: dict[int, set[tuple[str, str]]] = dataclasses.field(
        default_factory=dict, repr=False)
    wall_maps: OrderedDict[tuple[str, str], bytes] = dataclasses.field(
        default_factory=OrderedDict, repr=False)   # the wall display's SVG maps (dashboard.wall)
    wall_recent: tuple[float, Any] | None = dataclasses.field(default=None, repr=False)
    drill_states: dict[int, Any] = dataclasses.field(default_factory=dict, repr=False)
    drill_scenarios: dict[int, Any] = dataclasses.field(default_factory=dict, repr=False)
    _computing: dict[Any, list[Any]] = dataclasses.field(default_factory=dict, repr=False)
    _board_keys: dict[int, tuple[Any, dict[str, frozenset[str]]]] = dataclasses.field(
        default_factory=dict, repr=False)   # board -> (hazard state, its current targets)
    _board_latest: dict[int, Any] = dataclasses.field(
        default_factory=dict, repr=False)   # board -> its latest view (updated, not rebuilt)

    @contextlib.contextmanager
    def computing(self, key: Any) -> Iterator[None]:
        """Hold while computing what is cached under ``key``: the threads of this process that
        want the same thing at once wait for the first and then find it cached, instead of
        all computing it (50 wall displays connecting at once want the same maps)."""
        with self._lock:
            entry = self._computing.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    self._computing.pop(key, None)

    @classmethod
    def from_engine(cls, engine: Engine, settings: Settings) -> Services:
        return cls(engine=engine, settings=settings)

    # ---------------------------------------------------------------- roster

    def _roster_locked(self) -> RosterData:
        latest = current_import(self.engine)
        version = None if latest is None else int(latest["import_id"])
        if self._roster is None or self._roster.version != version:
            missions, people = load_roster(self.engine)
            locations = roster_locations(missions, people)
            self._roster = RosterData(
                version=version,
                source="" if latest is None else str(latest["source"]),
                synthetic=bool(latest and latest["synthetic"]),
                missions=missions, people=people, locations=locations,
                codes=LocationCodes.of(locations),
            )
        return self._roster

    def roster(self) -> RosterData:
        """The current roster; reloaded only when its version changes."""
        with self._lock:
            return self._roster_locked()

    def roster_view(self) -> RosterView:
        """The current roster's aggregates; recomputed only when the roster version changes."""
        with self._lock:
            data = self._roster_locked()
            if self._view is not None and self._view.version == data.version:
                return self._view
            missions, people = data.missions, data.people
            stats = roster_stats(missions, people)
            cells = people.assign(
                cell=[h3.cell_to_parent(c, self.settings.display_h3_resolution)
                      for c in people["h3_cell"]],
                immune=people["immunity"].isin(("full", "official_acts")),
            ).groupby("cell").agg(people=("person_id", "size"), with_immunity=("immune", "sum"))
            cells = cells.reset_index().rename(columns={"cell": "h3_cell"})
            self._view = RosterView(
                version=data.version, source=data.source, synthetic=data.synthetic,
                stats=stats, missions=missions.loc[:, list(PUBLIC_MISSION_COLUMNS)].copy(),
                cell_counts=cells,
            )
            return self._view

    def _index_locked(self, data: RosterData) -> ImpactIndex:
        if self._index is None or self._index[0] != data.version:
            locations = data.locations
            points = geopandas.GeoDataFrame(
                locations[["location_id"]], crs="EPSG:4326",
                geometry=geopandas.points_from_xy(locations["lon"], locations["lat"]))
            self._index = (data.version, ImpactIndex(points, id_col="location_id",
                                                     h3_resolution=self.settings.h3_resolution))
        return self._index[1]

    def roster_locations(self) -> pd.DataFrame:
        return self.roster().locations

    def impact_index(self) -> ImpactIndex:
        with self._lock:
            return self._index_locked(self._roster_locked())

    # ---------------------------------------------------------------- hazards

    def hazard_state(self) -> HazardState:
        """Every stored hazard with its impact; rebuilt only when the roster or a feed's
        snapshot changes."""
        stamp = hazards_stamp(self.engine)
        with self._lock:
            data = self._roster_locked()
            key = (data.version, stamp)
            if self._hazards is not None and self._hazards.key == key:
                return self._hazards
            state = self._build_hazard_state(key, data)
            self._hazards = state
            return state

    def _build_hazard_state(self, key: tuple[Any, ...], data: RosterData) -> HazardState:
        now = datetime.now(timezone.utc)
        hazards = load_hazards(self.engine, now=now, include_expired=True)
        health = feed_health(self.engine, now=now, settings=self.settings)
        recorded = {h.source: h.recorded_at for h in health if h.recorded}
        lags = {h.source: h.expiry_lag for h in health if not h.recorded}
        return self.build_state(key, data, hazards, recorded=recorded,
                                seen=first_seen_times(self.engine), lags=lags)

    def build_state(self, key: tuple[Any, ...], data: RosterData, hazards: list[Hazard], *,
                    recorded: dict[str, Any] | None = None,
                    seen: dict[str, Any] | None = None,
                    lags: dict[str, timedelta] | None = None) -> HazardState:
        """The state of ``hazards`` against roster ``data``: shapes, touched jurisdictions and
        impact pairs (the live feeds' hazards, or a drill's, which never mix). ``lags``: per
        source, how far behind our clock its expiries are judged (feeds/clock.py)."""
        recorded, seen, lags = recorded or {}, seen or {}, lags or {}
        states = self.states
        rows, display, areas = [], {}, []
        for hazard in hazards:
            area = hazard_area(hazard)
            if area is not None:
                shown = normalize_longitudes(area)
                display[hazard.hazard_id] = rounded_geojson(
                    shapely.simplify(shown, DISPLAY_TOLERANCE_DEG, preserve_topology=True))
                areas.append(shown)
            else:
                areas.append(None)
            rows.append({
                "hazard_id": hazard.hazard_id, "key": incident_key(hazard.hazard_id),
                "source": hazard.source, "event": hazard.event, "category": hazard.category,
                "severity": hazard.severity, "status": hazard.status,
                "message_type": hazard.message_type,
                "headline": hazard.headline or hazard.event, "area_desc": hazard.area_desc,
                "url": hazard.url, "sent": hazard.sent, "onset": hazard.onset or hazard.effective,
                "expires": hazard.ends or hazard.expires,
                "recorded_at": recorded.get(hazard.source),
                "clock": recorded.get(hazard.source),
                "expiry_lag": lags.get(hazard.source, timedelta(0)),
                "geometry_method": hazard.geometry_method or "",
                "placed": hazard.is_placed, "marine_only": marine_only(hazard),
                "first_seen": seen.get(hazard.hazard_id),
            })
        table = pd.DataFrame(rows, columns=[c for c in HAZARD_COLUMNS
                                            if c not in ("jurisdictions", "offices")])
        for column in ("sent", "onset", "expires", "recorded_at", "clock", "first_seen"):
            table[column] = pd.to_datetime(table[column], utc=True)
        table["expiry_lag"] = pd.to_timedelta(table["expiry_lag"])
        # Which jurisdictions (and so OFM offices) each area touches, for the area filters.
        touched: list[list[str]] = [[] for _ in rows]
        present = [i for i, a in enumerate(areas) if a is not None]
        if present:
            tree = shapely.STRtree(states.geometry.to_numpy())
            area_idx, state_idx = tree.query(np.asarray([areas[i] for i in present]),
                                             predicate="intersects")
            codes = states["code"].to_numpy()
            for a, s in zip(area_idx.tolist(), state_idx.tolist(), strict=True):
                touched[present[a]].append(str(codes[s]))
        table["jurisdictions"] = [tuple(sorted(set(t))) for t in touched]
        table["offices"] = [_offices(t, a) for t, a in zip(table["jurisdictions"], areas,
                                                            strict=True)]
        pairs = PairCodes.empty()
        placed = [h for h in hazards if h.is_placed]
        if placed and len(data.locations):
            frame = geopandas.GeoDataFrame([{
                "hazard_id": h.hazard_id,
                "geometry": h.geometry if h.geometry is not None
                else shapely.Point(h.center_lon, h.center_lat),
                "center_lon": h.center_lon if h.radius_km else float("nan"),
                "center_lat": h.center_lat if h.radius_km else float("nan"),
                "radius_km": h.radius_km or float("nan"),
            } for h in placed], geometry="geometry", crs="EPSG:4326")
            found = self._index_locked(data).affected(frame, id_col="hazard_id")
            pairs = PairCodes.of(found, table["hazard_id"], data.locations["location_id"])
        return HazardState(
            key=key, table=table, hazards={h.hazard_id: h for h in hazards}, display=display,
            pairs=pairs, by_key={k: i for i, k in enumerate(table["key"])}, roster=data,
        )

    @property
    def basemap(self) -> tuple[str, str] | None:
        """(tile URL, attribution) of the configured street basemap, or None (offline)."""
        if not self.settings.basemap_url:
            return None
        return self.settings.basemap_url, self.settings.basemap_attribution

    def warm(self, *, freeze: bool = False) -> None:
        """Build the caches now (roster, index, hazard state, base map), so the first screen
        to connect after a start does not wait for them. Errors are logged, never raised.

        ``freeze`` (for the serving process, once, after start-up): move every object alive
        now out of the cyclic garbage collector's sight (``gc.freeze``). The libraries, the
        roster and the caches are a few hundred thousand long-lived objects; without this
        every full collection walks them all (~0.1 s, measured), and a request that draws
        the map triggers one more often than not.
        """
        try:
            self.roster_view()
            self.hazard_state()
            self.cells_geojson()
            _ = self.states_geojson
        except Exception:  # a failed warm-up only means a slower first page
            logger.exception("warming the dashboard's caches failed")
        if freeze:
            gc.collect()
            gc.freeze()

    # ---------------------------------------------------------------- base map

    def cells_geojson(self) -> dict[str, Any]:
        """The display H3 cells of the current roster as GeoJSON (cached per roster version)."""
        view = self.roster_view()
        with self._lock:
            if self._cells is None or self._cells[0] != view.version:
                from dashboard.figures import cells_geojson  # figures import plotly: lazily

                self._cells = (view.version, cells_geojson(view.cell_counts["h3_cell"]))
            return self._cells[1]

    @cached_property
    def states(self) -> geopandas.GeoDataFrame:
        """The bundled state and territory boundaries (read once)."""
        return load_geography().states

    @cached_property
    def states_geojson(self) -> dict[str, Any]:
        """Simplified state and territory outlines for the offline base map."""
        states = self.states
        features = []
        for code, name, geometry in zip(states["code"], states["name"], states.geometry,
                                        strict=True):
            shown = shapely.simplify(geometry, 0.01, preserve_topology=True)
            features.append({"type": "Feature", "properties": {"code": code, "name": name},
                             "geometry": rounded_geojson(shown)})
        return {"type": "FeatureCollection", "features": features}

    @cached_property
    def states_geojson_bytes(self) -> int:
        return len(json.dumps(self.states_geojson, separators=(",", ":")))


_current: Services | None = None


def set_current(services: Services) -> None:
    global _current  # noqa: PLW0603 - one app per process; pages read it at render time
    _current = services


def current() -> Services:
    if _current is None:
        raise RuntimeError("the dashboard's services are not set; build it with create_app()")
    return _current


# -------------------------------------------------------------------- the overview's numbers

OVERVIEW_COLUMNS = (
    "hazard_id", "key", "source", "event", "category", "severity", "status", "headline",
    "area_desc", "expires", "recorded_at", "first_seen", "geometry_method", "placed",
    "incident", "reason",
    *("missions", "premises", "people", "with_immunity", "households"),
)


@dataclasses.dataclass(frozen=True)
class Overview:
    """What the overview shows at one moment: active hazards with counts, and feed health."""

    now: datetime
    hazards: pd.DataFrame        # OVERVIEW_COLUMNS: active hazards passing the filters, ranked
    totals: dict[str, int]       # the incidents' union: each mission and person once
    hidden_by_rules: int         # active hazards (passing the filters) that are not incidents
    active: int                  # all active hazards, before any filter
    health: list[Any]            # store.feeds.FeedHealth, one per source
    state_key: tuple[Any, ...]   # changes when hazards or roster change (map refresh)
    rules_version: int
    rules_problem: str = ""      # set when the stored rules cannot be used

    @property
    def incidents(self) -> pd.DataFrame:
        return self.hazards[self.hazards["incident"].to_numpy(dtype=bool)]


def rank_hazards(table: pd.DataFrame) -> pd.DataFrame:
    """Most people affected first, then missions, then the worse severity, then newest id."""
    rank = table["severity"].map(_SEVERITY_RANK).fillna(len(SEVERITIES))
    return table.assign(_rank=rank).sort_values(
        ["people", "missions", "_rank", "hazard_id"], ascending=[False, False, True, True],
        kind="stable").drop(columns="_rank").reset_index(drop=True)


def overview(services: Services, now: datetime, filters: Filters | None = None) -> Overview:
    """Active hazards at ``now`` passing ``filters``, each with what it affects, incidents
    marked by the stored rules, ranked by impact; counts only (no personal data)."""
    filters = filters or Filters()
    state = services.hazard_state()
    roster = state.roster
    try:
        rules = load_rules(services.engine)
        rules_problem = ""
    except RulesInvalid as exc:  # fail open: with broken rules, every hazard is an incident
        logger.error("stored incident rules are invalid: %s", exc)
        rules = RuleSet(rules=(), version=-1, updated_at=None, updated_by="")
        rules_problem = f"The stored incident rules are invalid ({exc}); every hazard is " \
                        "shown as an incident until an administrator fixes them."
    health = feed_health(services.engine, now=now, settings=services.settings)
    table = state.table
    active = state.active_mask(now)
    location_mask = filters.location_mask(roster.locations)
    counts = hazard_counts(state.pairs, roster.codes, len(table), location_mask)
    keep = active & filters.hazard_mask(table)
    if filters.by_location:
        area_hit = np.zeros(len(table), dtype=bool)
        if filters.jurisdictions or filters.offices:
            juris = set(filters.jurisdictions)
            offices = set(filters.offices)
            area_hit = np.array([
                (not juris or bool(juris & set(j))) and (not offices or bool(offices & set(o)))
                for j, o in zip(table["jurisdictions"], table["offices"], strict=True)
            ], dtype=bool) if len(table) else area_hit
            if filters.countries:
                area_hit[:] = False
        keep &= area_hit | (counts["missions"].to_numpy() > 0)
    verdict = classify(table, rules.rules) if len(table) else pd.DataFrame(
        {"incident": pd.Series(dtype=bool), "rule": pd.Series(dtype=int),
         "reason": pd.Series(dtype=str)})
    shown = table.loc[keep].assign(
        incident=verdict["incident"].to_numpy()[keep] if len(table) else [],
        reason=verdict["reason"].to_numpy()[keep] if len(table) else [],
    )
    shown = pd.concat([shown.reset_index(drop=True),
                       counts.loc[keep].reset_index(drop=True)], axis=1)
    shown = rank_hazards(shown.loc[:, list(OVERVIEW_COLUMNS)].astype({"incident": bool}))
    incident_mask = np.zeros(len(table), dtype=bool)
    if len(table):
        incident_mask = keep & verdict["incident"].to_numpy()
    totals = union_counts(state.pairs, roster.codes, incident_mask, location_mask)
    totals["incidents"] = int(incident_mask.sum())
    totals["affecting"] = int((shown["incident"] & (shown["missions"] > 0)).sum())
    return Overview(now=now, hazards=shown, totals=totals,
                    hidden_by_rules=int((~shown["incident"]).sum()),
                    active=int(active.sum()), health=health,
                    state_key=state.key, rules_version=rules.version,
                    rules_problem=rules_problem)


# -------------------------------------------------------------------- one incident, or several

MAX_SELECTION = 25  # incidents worked on together (a hurricane's alerts, say)


class UnknownIncident(KeyError):
    """Incident keys that name no stored hazard (it expired and its feed dropped it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


MISSION_GRID_COLUMNS = (
    "mission_id", "name", "mission_type", "country_name", "city", "jurisdiction", "ofm_office",
    "premises", "people", "full", "official_acts", "none", "households", "duty_phone",
    "worst_severity", "hazards",
)


@dataclasses.dataclass(frozen=True)
class IncidentView:
    """A selection of hazards and everyone it affects (personal data: coordinators only)."""

    hazards: pd.DataFrame      # the selected rows of HazardState.table, plus active and counts
    pairs: pd.DataFrame        # hazard_id, location_id: who each selected hazard covers
    missions: pd.DataFrame     # MISSION_GRID_COLUMNS, one row per affected mission
    calls: pd.DataFrame        # layers.calllist.call_list: people in calling order
    totals: dict[str, int]     # the selection's union: each mission and person once
    state_key: tuple[Any, ...]
    cell_counts: pd.DataFrame  # affected people per display H3 cell (h3_cell, people,
                               # with_immunity): where they live, never single homes
    search_text: pd.Series     # per call-list row, lower-cased text the people search reads


def parse_keys(text: str) -> tuple[str, ...]:
    """Incident keys from a URL segment ("k1,k2"): trimmed, de-duplicated, order kept."""
    keys = tuple(dict.fromkeys(k.strip() for k in str(text).split(",") if k.strip()))
    if not keys:
        raise ValueError("no incident given")
    if len(keys) > MAX_SELECTION:
        raise ValueError(f"at most {MAX_SELECTION} incidents can be worked on together, "
                         f"got {len(keys)}")
    return keys


INCIDENT_CACHE_SIZE = 8


def incident_view(services: Services, keys: tuple[str, ...], now: datetime,
                  state: HazardState | None = None) -> IncidentView:
    """The hazards named by ``keys`` (see :func:`incident_key`) and who they affect.

    Unknown keys raise :class:`UnknownIncident` naming them. Expired hazards still in the store
    are shown (marked inactive): a coordinator finishing outreach must not lose the list.
    Views are cached per hazard snapshot and selection (a page's paging and sorting, and its
    exports, reuse one view); ``active`` is worked out afresh at ``now`` every time. ``state``
    is the live feeds' unless a drill's is given (drill outreach boards).
    """
    state = state or services.hazard_state()
    unknown = [k for k in keys if k not in state.by_key]
    if unknown:
        raise UnknownIncident(f"no such incident: {', '.join(unknown)} (it may have ended "
                              f"and left its feed)")
    cache_key = (state.content_key(state.by_key[k] for k in keys), tuple(keys))
    with services._lock:
        view = services._incidents.get(cache_key)
        if view is not None:
            services._incidents.move_to_end(cache_key)
    if view is None:
        with services.computing(("incident", cache_key)):
            with services._lock:
                view = services._incidents.get(cache_key)
            if view is None:
                view = _incident_view(services, state, tuple(keys), now)
                with services._lock:
                    services._incidents[cache_key] = view
                    while len(services._incidents) > INCIDENT_CACHE_SIZE:
                        services._incidents.popitem(last=False)
    return dataclasses.replace(view, hazards=state.current(view.hazards, now))


def _incident_view(services: Services, state: HazardState, keys: tuple[str, ...],
                   now: datetime) -> IncidentView:
    roster = state.roster  # every key is known: incident_view checked
    rows = np.array([state.by_key[k] for k in keys], dtype=np.int64)
    selected = np.zeros(len(state.table), dtype=bool)
    selected[rows] = True
    counts = hazard_counts(state.pairs, roster.codes, len(state.table))
    hazards = pd.concat([state.table.iloc[rows].reset_index(drop=True),
                         counts.iloc[rows].reset_index(drop=True)], axis=1)
    hazards["active"] = state.active_mask(now)[rows]
    chosen = state.pairs.select(selected)
    pairs = pd.DataFrame({
        "hazard_id": state.table["hazard_id"].to_numpy()[chosen.hazard],
        "location_id": roster.locations["location_id"].to_numpy()[chosen.location],
    })
    calls = call_list(pairs, roster.missions, roster.people,
                      hazards.loc[:, ["hazard_id", "event", "severity"]])
    people = roster.people.iloc[
        roster.locations.iloc[np.unique(chosen.location)].query("kind == 'person'").index
        - len(roster.missions)]
    resolution = services.settings.display_h3_resolution
    cells = people.assign(
        h3_cell=[h3.cell_to_parent(c, resolution) for c in people["h3_cell"]],
        immune=people["immunity"].isin(("full", "official_acts")),
    ).groupby("h3_cell").agg(people=("person_id", "size"), with_immunity=("immune", "sum"))
    return IncidentView(
        hazards=hazards, pairs=pairs, missions=_mission_grid(roster, pairs, hazards),
        calls=calls, totals=union_counts(state.pairs, roster.codes, selected),
        state_key=state.key, cell_counts=cells.reset_index(),
        search_text=_search_text(calls),
    )


SEARCHED_COLUMNS = ("name", "phone", "email", "mission_name", "household_id", "country_name")


def _search_text(calls: pd.DataFrame) -> pd.Series:
    """What the people search looks in, lower-cased once per view (not per keystroke)."""
    text = calls[SEARCHED_COLUMNS[0]].astype(str)
    for column in SEARCHED_COLUMNS[1:]:
        text = text + " " + calls[column].astype(str)
    return text.str.lower()


def _mission_grid(roster: RosterData, pairs: pd.DataFrame,
                  hazards: pd.DataFrame) -> pd.DataFrame:
    """One row per affected mission: premises inside or not, people by immunity level."""
    if pairs.empty:
        return pd.DataFrame(columns=list(MISSION_GRID_COLUMNS))
    locations = roster.locations.set_index("location_id")
    hits = pairs.join(locations[["kind", "mission_id", "immunity", "household_id"]],
                      on="location_id")
    hits["rank"] = hits["hazard_id"].map(
        dict(zip(hazards["hazard_id"], hazards["severity"].map(_SEVERITY_RANK), strict=True)))
    events = dict(zip(hazards["hazard_id"], hazards["event"], strict=True))
    people = hits[hits["kind"] == "person"].drop_duplicates("location_id")
    by_level = pd.crosstab(people["mission_id"], people["immunity"]).reindex(
        columns=["full", "official_acts", "none"], fill_value=0)
    grid = pd.DataFrame(index=pd.Index(hits["mission_id"].unique(), name="mission_id"))
    grid["premises"] = grid.index.isin(hits.loc[hits["kind"] == "mission", "mission_id"])
    grid = grid.join(by_level).fillna(0)
    grid["people"] = grid[["full", "official_acts", "none"]].sum(axis=1)
    grid["households"] = people.groupby("mission_id")["household_id"].nunique()
    grid["worst_severity"] = hits.groupby("mission_id")["rank"].min().map(
        dict(enumerate(SEVERITIES)))
    grid["hazards"] = hits.groupby("mission_id")["hazard_id"].agg(
        lambda ids: "; ".join(sorted({events[i] for i in ids})))
    grid = grid.fillna({"households": 0})
    for column in ("full", "official_acts", "none", "people", "households"):
        grid[column] = grid[column].astype(int)
    missions = roster.missions.set_index("mission_id")
    grid = grid.join(missions[["name", "mission_type", "country_name", "city", "jurisdiction",
                               "ofm_office", "duty_phone"]]).reset_index()
    grid["_rank"] = grid["worst_severity"].map(_SEVERITY_RANK)
    grid = grid.sort_values(["_rank", "full", "official_acts", "people", "mission_id"],
                            ascending=[True, False, False, False, True], kind="stable")
    return grid.loc[:, list(MISSION_GRID_COLUMNS)].reset_index(drop=True)


# -------------------------------------------------------------------- outreach boards

@dataclasses.dataclass(frozen=True)
class BoardView:
    """An outreach board now: every target with its latest status, progress, liaisons."""

    board: Board
    rows: pd.DataFrame                 # layers.outreach.BOARD_COLUMNS
    progress: dict[str, dict[str, int]]
    liaisons: dict[str, str]           # sending country -> who liaises (its embassy)
    hazards: pd.DataFrame              # the board's hazards still in the store (+ active)
    missing_hazards: tuple[str, ...]   # hazard ids the feeds no longer list
    version: tuple[Any, ...]           # changes when anything on the board changes
    began_at: datetime                 # the earliest of the hazards' sent/onset, or the board


BOARD_CACHE_SIZE = 8


def board_view(services: Services, board_id: int, now: datetime) -> BoardView:
    """The board's targets (the union its hazards affect now, plus anyone it ever had), each
    with its latest status; new targets are recorded as they appear. Cached per board
    version and hazard snapshot, so screens polling every few seconds cost two small queries.
    """
    board = get_board(services.engine, board_id)
    state = _board_state(services, board, now)
    present, missing = _board_hazards(state, board)
    contents = _board_contents(state, board)
    targets = pd.DataFrame(columns=list(TARGET_COLUMNS))
    view = None
    if present:
        view = incident_view(services, tuple(incident_key(h) for h in present), now, state)
        targets = _board_targets(services, contents, tuple(present), view)
        known = services._board_targets_known.setdefault(board.board_id, set())
        fresh = [(k, t) for k, t in zip(targets["target_kind"], targets["target_id"],
                                        strict=True) if (k, t) not in known]
        if fresh:
            # The board's first population counts as there from the start (not "new"); later
            # arrivals are dated when they first show up.
            first = board_version(services.engine, board.board_id)[2] == 0
            add_targets(services.engine, board.board_id, fresh,
                        now=board.created_at if first else now)
            known.update(fresh)
    with services._lock:
        remembered = services._board_keys.get(board.board_id)
    if remembered is None or remembered[0] != contents:  # for board_progress
        keys = {kind: frozenset(targets.loc[targets["target_kind"] == kind, "target_id"])
                for kind in TARGET_KINDS}
        with services._lock:
            services._board_keys[board.board_id] = (contents, keys)
    version = (board.closed_at, contents, board_version(services.engine, board.board_id))
    cache_key = (board.board_id, version)
    with services._lock:
        cached = services._boards.get(cache_key)
    if cached is None:
        cached = _board_view_cached(services, board, state, cache_key, targets=targets,
                                    view=view, missing=missing)
    return dataclasses.replace(cached, hazards=state.current(cached.hazards, now))


def _board_hazards(state: HazardState, board: Board) -> tuple[list[str], tuple[str, ...]]:
    """The board's hazards still in the state, and those no longer there."""
    present = [h for h in board.hazard_ids if incident_key(h) in state.by_key]
    missing = tuple(h for h in board.hazard_ids if incident_key(h) not in state.by_key)
    return present, missing


def _board_contents(state: HazardState, board: Board) -> tuple[Any, ...]:
    """What a board's targets depend on: its hazards in the state (their content key) and
    those no longer there."""
    present, missing = _board_hazards(state, board)
    return (state.content_key(state.by_key[incident_key(h)] for h in present), missing)


def _board_view_cached(services: Services, board: Board, state: HazardState,
                       cache_key: tuple[Any, ...], *, targets: pd.DataFrame,
                       view: IncidentView | None, missing: tuple[str, ...]) -> BoardView:
    """The board view for ``cache_key``: computed by one thread at a time, updated from the
    board's previous view when only events were added, else built."""
    version = cache_key[1]
    with services.computing(("board", cache_key)):
        with services._lock:
            cached = services._boards.get(cache_key)
            before = services._board_latest.get(board.board_id)
        if cached is not None:
            return cached
        result = _board_view_updated(services, before, version) if before is not None \
            else None
        if result is None:
            result = _board_view(services, board, state, targets=targets, view=view,
                                 missing=missing, version=version)
        with services._lock:
            services._boards[cache_key] = result
            while len(services._boards) > BOARD_CACHE_SIZE:
                services._boards.popitem(last=False)
            services._board_latest[board.board_id] = result
        return result


def _board_view_updated(services: Services, before: BoardView,
                        version: tuple[Any, ...]) -> BoardView | None:
    """``before`` brought up to ``version`` from the events recorded since, when only events
    were added (same hazards, same targets, board still open) and each names a target already
    on the board; None otherwise (the board is then built afresh). A status update costs the
    board's screens a copy of its rows instead of a rebuild: at 65,000 targets, a few
    hundredths of a second instead of most of one."""
    closed_at, contents, (events, last_event, targets) = version
    old_closed, old_contents, (old_events, old_last, old_targets) = before.version
    if (closed_at, contents, targets) != (old_closed, old_contents, old_targets) or \
            closed_at is not None or events < old_events or old_events == 0:
        return None  # the first events of a board: built afresh (its columns take shape)
    added = history(services.engine, before.board.board_id, after_event_id=old_last)
    if len(added) != events - old_events or (len(added) and
                                             int(added["event_id"].iat[-1]) != last_event):
        return None  # something else changed under us: build afresh
    rows = before.rows.copy()
    where = {key: i for i, key in enumerate(zip(rows["target_kind"], rows["target_id"],
                                                strict=True))}
    columns = {name: rows.columns.get_loc(name) for name in (
        "status", "note", "updated_by", "updated_at", "event_id", "updates", "new")}
    for event in added.itertuples(index=False):
        i = where.get((event.target_kind, event.target_id))
        if i is None:
            return None  # a target not on the board yet: build afresh
        rows.iat[i, columns["status"]] = event.status
        rows.iat[i, columns["note"]] = event.note
        rows.iat[i, columns["updated_by"]] = event.actor
        rows.iat[i, columns["updated_at"]] = event.at
        rows.iat[i, columns["event_id"]] = int(event.event_id)
        rows.iat[i, columns["updates"]] = int(rows.iat[i, columns["updates"]]) + 1
        rows.iat[i, columns["new"]] = False
    return dataclasses.replace(before, rows=rows, progress=progress(rows), version=version)


def _board_view(services: Services, board: Board, state: HazardState, *, targets: pd.DataFrame,
                view: IncidentView | None, missing: tuple[str, ...],
                version: tuple[Any, ...]) -> BoardView:
    rows = board_rows(targets, latest_statuses(services.engine, board.board_id),
                      first_seen(services.engine, board.board_id), board.created_at)
    gone = ~np.isfinite(rows["order"].to_numpy(dtype=float))
    if gone.any():  # no longer affected: name them from the roster, they stay on record
        described = describe_targets(rows.loc[gone, ["target_kind", "target_id"]],
                                     state.roster.missions, state.roster.people)
        for column in described.columns:
            filled = described[column].notna().to_numpy()
            index = described.index[filled]
            values = described.loc[index, column]
            if rows[column].dtype.kind in "iuf":
                values = values.astype(rows[column].dtype)
            rows.loc[index, column] = values.to_numpy()
    hazards = view.hazards if view is not None else pd.DataFrame()
    times = [t for column in ("sent", "onset") if column in hazards
             for t in hazards[column].dropna()]
    began = min([pd.Timestamp(t).to_pydatetime() for t in times] + [board.created_at])
    return BoardView(
        board=board, rows=rows, progress=progress(rows),
        liaisons=liaisons(state.roster.missions, rows["country_name"].unique()),
        hazards=hazards, missing_hazards=missing, version=version, began_at=began)


def board_progress(services: Services, board: Board, now: datetime) -> dict[str, dict[str, int]]:
    """Per target kind: total, reached and needs_assistance — the board's :func:`progress`
    figures the wall display shows, without building the board.

    The board's rows are its current targets and every target with a status, so with the
    current targets known (remembered by :func:`board_view` for this hazard snapshot) the
    counts need only each target's latest status: one query, whatever the board's size. When
    the hazards changed since, the board is built once (which also records new targets).
    """
    state = _board_state(services, board, now)
    with services._lock:
        known = services._board_keys.get(board.board_id)
    if known is None or known[0] != _board_contents(state, board) or \
            board.closed_at is not None:
        shown = board_view(services, board.board_id, now).progress
        return {kind: {name: shown[kind][name] for name in ("total", "reached",
                                                            "needs_assistance")}
                for kind in TARGET_KINDS}
    current = known[1]
    out = {kind: {"total": len(current[kind]), "reached": 0, "needs_assistance": 0}
           for kind in TARGET_KINDS}
    for kind, target_id, status in latest_status_codes(services.engine, board.board_id):
        if kind not in out:
            continue
        counts = out[kind]
        counts["total"] += target_id not in current[kind]
        counts["reached"] += status in REACHED
        counts["needs_assistance"] += status == "reached_needs_assistance"
    return out


def _board_state(services: Services, board: Board, now: datetime) -> HazardState:
    """The live state, or for an exercise board over a drill's hazards, the drill's."""
    if board.exercise:
        from dashboard.drills import state_for  # drills build on this module: import lazily

        drill = state_for(services, board.hazard_ids, now)
        if drill is not None:
            return drill
    return services.hazard_state()


def _board_targets(services: Services, contents: tuple[Any, ...],
                   hazard_ids: tuple[str, ...], view: IncidentView) -> pd.DataFrame:
    key = ("targets", contents, hazard_ids)
    with services._lock:
        cached = services._boards.get(key)
    if cached is None:
        cached = targets_from_calls(view.calls)
        with services._lock:
            services._boards[key] = cached
    return cached
