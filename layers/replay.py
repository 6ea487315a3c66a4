"""A recorded real feed turned into a drill scenario, to replay against today's roster.

Each placed hazard of a recording (``feeds.poller.recorded_hazards``) becomes an inject at the
minute it was sent, relative to the first; a recording spanning more than ``max_minutes`` is
compressed linearly into it (said in the scenario's description). Its area, event, severity
and times are the real ones; it plays as EXERCISE like any drill. Pure: the caller reads the
recording, this module only reshapes hazards (no store, no feeds import).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import shapely
import shapely.geometry

from feeds.model import Hazard
from layers.scenarios import Scenario, parse_scenario
from layers.shapes import geodesic_circle, normalize_longitudes

MAX_MINUTES = 360.0      # a replay lasts at most six hours of scenario time
MAX_INJECTS = 200        # the largest hazards first when a recording has more


def _inject_id(hazard_id: str) -> str:
    return "h" + hashlib.sha256(hazard_id.encode()).hexdigest()[:12]


def replay_scenario(source: str, hazards: Sequence[Hazard], recorded_at: datetime,
                    jurisdictions: Sequence[str], *, max_minutes: float = MAX_MINUTES
                    ) -> Scenario:
    """The scenario ``replay-<source>`` of a recording's hazards (placed, actual, not cancels);
    ``jurisdictions``: the codes their areas touch (:func:`touched_jurisdictions`).
    ValueError when nothing in the recording can be replayed, or it touches no jurisdiction."""
    if not jurisdictions:
        raise ValueError(f"the {source} recording touches no US jurisdiction: nothing to "
                         "replay against the roster")
    usable = [h for h in hazards if h.is_placed and h.status == "actual"
              and h.message_type != "cancel"]
    if not usable:
        raise ValueError(f"the {source} recording has no placed hazard to replay")
    if len(usable) > MAX_INJECTS:
        usable = sorted(usable, key=lambda h: -_area(h).area)[:MAX_INJECTS]
    times = [h.sent or h.effective or recorded_at for h in usable]
    first = min(times)
    span = max((t - first).total_seconds() / 60 for t in times)
    scale = 1.0 if span <= max_minutes else max_minutes / span
    features = []
    for hazard, sent in sorted(zip(usable, times, strict=True), key=lambda p: (p[1],
                                                                              p[0].hazard_id)):
        at = round((sent - first).total_seconds() / 60 * scale, 3)
        end = hazard.ends or hazard.expires
        properties = {
            "inject_id": _inject_id(hazard.hazard_id), "at_minutes": at,
            "event": hazard.event[:200], "category": hazard.category,
            "severity": hazard.severity, "urgency": hazard.urgency,
            "certainty": hazard.certainty, "headline": (hazard.headline or hazard.event)[:300],
            "area_desc": hazard.area_desc[:500], "message_type": "alert",
            "source_style": source if source in ("nws", "usgs", "nhc", "wildfire", "fema",
                                                  "tsunami", "gdacs") else "",
        }
        if end is not None and end > sent:
            properties["expires_minutes"] = max(1.0, round(
                (end - sent).total_seconds() / 60 * scale, 3))
        if hazard.geometry is not None:
            geometry = shapely.geometry.mapping(normalize_longitudes(hazard.geometry))
        else:
            geometry = {"type": "Point", "coordinates": [hazard.center_lon, hazard.center_lat]}
            properties["radius_km"] = hazard.radius_km
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    duration = max(60.0, round(span * scale + 60.0, 3))
    compressed = (f" Its {span / 60:.1f} hours are compressed into {max_minutes / 60:.0f}."
                  if scale < 1 else "")
    data = {
        "type": "FeatureCollection",
        "scenario": {
            "name": f"replay-{source}",
            "title": f"Replay of the recorded {source.upper()} feed ({recorded_at:%Y-%m-%d})",
            "description": (f"The {len(features)} placed hazard(s) of the bundled {source} "
                            f"recording of {recorded_at:%Y-%m-%d %H:%M} UTC, in the order they "
                            f"were sent, against today's roster.{compressed}"),
            "jurisdictions": sorted(set(jurisdictions)),
            "duration_minutes": duration, "author": "Mission Watch replay",
            "sources": f"the real {source} feed payload bundled under data/feeds "
                       "(see data/PROVENANCE.md)",
        },
        "features": features,
    }
    return parse_scenario(data, origin=f"replay of {source}")


def touched_jurisdictions(hazards: Sequence[Hazard], states: Any) -> list[str]:
    """The jurisdiction codes (of ``states``: code, geometry) the hazards' areas touch."""
    from layers.schema import JURISDICTIONS

    areas = [normalize_longitudes(_area(h)) for h in hazards if h.is_placed]
    if not areas:
        return []
    tree = shapely.STRtree(states.geometry.to_numpy())
    _, hits = tree.query(areas, predicate="intersects")
    codes = {str(states["code"].iloc[i]) for i in hits}
    return sorted(code for code in codes if code in JURISDICTIONS)


def _area(hazard: Hazard) -> shapely.Geometry:
    if hazard.geometry is not None:
        return hazard.geometry
    return geodesic_circle(hazard.center_lon, hazard.center_lat, hazard.radius_km)
