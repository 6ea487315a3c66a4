"""What the dashboard needs from the core, computed once per roster version."""

from __future__ import annotations

import dataclasses
import json
import threading
from functools import cached_property
from typing import Any

import geopandas
import h3
import pandas as pd
import shapely
from sqlalchemy.engine import Engine

from layers.geography import load_geography
from layers.locations import roster_stats
from settings import Settings
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
