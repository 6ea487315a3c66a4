"""What the dashboard needs from the core, computed once per roster version."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import datetime
from functools import cached_property
from typing import Any

import geopandas
import h3
import pandas as pd
import shapely
import shapely.geometry
from sqlalchemy.engine import Engine

from feeds.model import SEVERITIES
from layers.geography import load_geography
from layers.impact import ImpactIndex
from layers.locations import roster_locations, roster_stats
from layers.shapes import geodesic_circle, normalize_longitudes
from settings import Settings
from store.feeds import feed_health, load_hazards
from store.roster import current_import, load_roster

# Public facts about a mission that may appear on any screen (no phones, e-mails or people).
PUBLIC_MISSION_COLUMNS = ("mission_id", "name", "country_name", "mission_type", "city",
                          "jurisdiction", "ofm_office", "lat", "lon")


@dataclasses.dataclass(frozen=True)
class RosterView:
    """Aggregates of one roster version, free of personal data."""

    version: int | None
    source: str
    synthetic: bool
    stats: dict[str, Any]
    missions: pd.DataFrame        # PUBLIC_MISSION_COLUMNS only
    cell_counts: pd.DataFrame     # h3_cell, people, with_immunity (display resolution)


@dataclasses.dataclass
class Services:
    """The engine and settings, plus a cache of the roster view keyed by roster version."""

    engine: Engine
    settings: Settings
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _view: RosterView | None = dataclasses.field(default=None, repr=False)
    _impact: tuple[int | None, pd.DataFrame, ImpactIndex] | None = dataclasses.field(
        default=None, repr=False)

    @classmethod
    def from_engine(cls, engine: Engine, settings: Settings) -> Services:
        return cls(engine=engine, settings=settings)

    def roster_view(self) -> RosterView:
        """The current roster's aggregates; recomputed only when the roster version changes."""
        latest = current_import(self.engine)
        version = None if latest is None else int(latest["import_id"])
        with self._lock:
            if self._view is not None and self._view.version == version:
                return self._view
            missions, people = load_roster(self.engine)
            stats = roster_stats(missions, people)
            cells = people.assign(
                cell=[h3.cell_to_parent(c, self.settings.display_h3_resolution)
                      for c in people["h3_cell"]],
                immune=people["immunity"].isin(("full", "official_acts")),
            ).groupby("cell").agg(people=("person_id", "size"), with_immunity=("immune", "sum"))
            cells = cells.reset_index().rename(columns={"cell": "h3_cell"})
            self._view = RosterView(
                version=version,
                source="" if latest is None else str(latest["source"]),
                synthetic=bool(latest and latest["synthetic"]),
                stats=stats,
                missions=missions.loc[:, list(PUBLIC_MISSION_COLUMNS)].copy(),
                cell_counts=cells,
            )
            return self._view

    def _impact_state(self) -> tuple[pd.DataFrame, ImpactIndex]:
        """Roster locations and their impact index, rebuilt only when the roster changes."""
        latest = current_import(self.engine)
        version = None if latest is None else int(latest["import_id"])
        with self._lock:
            if self._impact is None or self._impact[0] != version:
                missions, people = load_roster(self.engine)
                locations = roster_locations(missions, people)
                points = geopandas.GeoDataFrame(
                    locations[["location_id"]], crs="EPSG:4326",
                    geometry=geopandas.points_from_xy(locations["lon"], locations["lat"]))
                index = ImpactIndex(points, id_col="location_id",
                                    h3_resolution=self.settings.h3_resolution)
                self._impact = (version, locations, index)
            return self._impact[1], self._impact[2]

    def roster_locations(self) -> pd.DataFrame:
        return self._impact_state()[0]

    def impact_index(self) -> ImpactIndex:
        return self._impact_state()[1]

    @cached_property
    def states_geojson(self) -> dict[str, Any]:
        """Simplified state and territory outlines for the offline base map."""
        states = load_geography().states
        simplified = shapely.simplify(states.geometry.to_numpy(), 0.01, preserve_topology=True)
        frame = geopandas.GeoDataFrame(states.loc[:, ["code", "name"]], geometry=simplified,
                                       crs=states.crs)
        return json.loads(frame.to_json(drop_id=True))


_current: Services | None = None


def set_current(services: Services) -> None:
    global _current  # noqa: PLW0603 - one app per process; pages read it at render time
    _current = services


def current() -> Services:
    if _current is None:
        raise RuntimeError("the dashboard's services are not set; build it with create_app()")
    return _current


@dataclasses.dataclass(frozen=True)
class HazardView:
    """Active hazards with their impact on the roster, and the health of every feed."""

    hazards: pd.DataFrame        # one row per active hazard, counts only (no personal data)
    shapes: dict[str, Any]       # GeoJSON of the hazards' areas, keyed by hazard id, for maps
    health: list[Any]            # store.feeds.FeedHealth, one per source


def hazard_view(services: Services, now: datetime) -> HazardView:
    """Active hazards, what each one affects (missions, people, immunity), and feed health."""
    hazards = load_hazards(services.engine, now=now)
    health = feed_health(services.engine, now=now, settings=services.settings)
    recorded = {h.source: h.recorded_at for h in health if h.recorded}
    rows = []
    features = []
    frame_rows = []
    for hazard in hazards:
        area = hazard.geometry
        if area is None and hazard.radius_km is not None:
            area = geodesic_circle(hazard.center_lon, hazard.center_lat, hazard.radius_km)
        if area is not None:
            display = shapely.simplify(normalize_longitudes(area), 0.005, preserve_topology=True)
            features.append({"type": "Feature", "id": hazard.hazard_id, "properties": {},
                             "geometry": shapely.geometry.mapping(display)})
        rows.append({
            "hazard_id": hazard.hazard_id, "source": hazard.source, "event": hazard.event,
            "category": hazard.category, "severity": hazard.severity,
            "status": hazard.status, "headline": hazard.headline or hazard.event,
            "area_desc": hazard.area_desc, "expires": hazard.ends or hazard.expires,
            "geometry_method": hazard.geometry_method or "",
            "recorded_at": recorded.get(hazard.source),
        })
        if hazard.is_placed:
            frame_rows.append({
                "hazard_id": hazard.hazard_id, "severity": hazard.severity,
                "geometry": hazard.geometry if hazard.geometry is not None
                else shapely.Point(hazard.center_lon, hazard.center_lat),
                "center_lon": hazard.center_lon if hazard.radius_km else float("nan"),
                "center_lat": hazard.center_lat if hazard.radius_km else float("nan"),
                "radius_km": hazard.radius_km or float("nan"),
            })
    table = pd.DataFrame(rows, columns=["hazard_id", "source", "event", "category", "severity",
                                        "status", "headline", "area_desc", "expires",
                                        "geometry_method", "recorded_at"])
    counts = pd.DataFrame({"hazard_id": table["hazard_id"]}).assign(
        missions=0, people=0, with_immunity=0)
    if frame_rows:
        impact = services.impact_index()
        placed = geopandas.GeoDataFrame(frame_rows, geometry="geometry", crs="EPSG:4326")
        pairs = impact.affected(placed, id_col="hazard_id")
        if len(pairs):
            locations = services.roster_locations()
            by_id = locations.set_index("location_id")
            kind = by_id["kind"].reindex(pairs["location_id"].astype(str)).to_numpy()
            immune = by_id["immunity"].reindex(pairs["location_id"].astype(str)).isin(
                ("full", "official_acts")).to_numpy()
            tally = pd.DataFrame({"hazard_id": pairs["hazard_id"].astype(str).to_numpy(),
                                  "missions": kind == "mission", "people": kind == "person",
                                  "with_immunity": immune}).groupby("hazard_id").sum()
            counts = counts.set_index("hazard_id")
            counts.update(tally)
            counts = counts.reset_index()
    table = table.merge(counts, on="hazard_id", how="left")
    for column in ("missions", "people", "with_immunity"):
        table[column] = table[column].fillna(0).astype(int)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    table = table.assign(_rank=table["severity"].map(rank)).sort_values(
        ["people", "missions", "_rank"], ascending=[False, False, True]).drop(columns="_rank")
    return HazardView(table.reset_index(drop=True),
                      {"type": "FeatureCollection", "features": features}, health)
