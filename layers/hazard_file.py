"""Hazards from a GeoJSON file, for ``python app.py impact`` and drills.

Each Feature is one hazard: a Polygon or MultiPolygon (longitudes beyond ±180 and shapes split at
the antimeridian are both accepted), or a Point with a ``radius_km`` property for a radius hazard
(an earthquake, a drill circle). The id is ``properties.hazard_id``, else ``properties.id``, else
the Feature's ``id``, else ``H<number>``; ``event`` and ``severity`` (CAP: extreme, severe,
moderate, minor, unknown) are optional properties.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import shapely.geometry
from shapely.errors import GeometryTypeError

from layers.impact import CAP_SEVERITIES


class HazardFileError(ValueError):
    """A hazard file that cannot be used, with the feature number and the reason."""


def read_hazard_file(path: str | Path) -> gpd.GeoDataFrame:
    """Hazards of a GeoJSON FeatureCollection as the frame :class:`ImpactIndex` reads."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HazardFileError(f"{path}: cannot read GeoJSON: {exc}") from exc
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = {"type": "FeatureCollection", "features": [data]}
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise HazardFileError(f"{path}: expected a GeoJSON FeatureCollection")
    rows = []
    for number, feature in enumerate(data.get("features") or [], start=1):
        props = (feature or {}).get("properties") or {}
        hazard_id = str(props.get("hazard_id") or props.get("id") or (feature or {}).get("id")
                        or f"H{number}")
        severity = str(props.get("severity") or "unknown").strip().lower()
        if severity not in CAP_SEVERITIES:
            raise HazardFileError(
                f"{path}: feature {number}: severity {severity!r} is not one of "
                f"{', '.join(CAP_SEVERITIES)}")
        try:
            geometry = shapely.geometry.shape(feature["geometry"])
        except (KeyError, TypeError, ValueError, GeometryTypeError) as exc:
            raise HazardFileError(f"{path}: feature {number}: bad geometry: {exc}") from exc
        row = {"hazard_id": hazard_id, "event": str(props.get("event") or ""),
               "severity": severity, "geometry": geometry,
               "center_lon": math.nan, "center_lat": math.nan, "radius_km": math.nan}
        if geometry.geom_type == "Point":
            try:
                radius = float(props["radius_km"])
            except (KeyError, TypeError, ValueError) as exc:
                raise HazardFileError(
                    f"{path}: feature {number}: a Point hazard needs a numeric radius_km"
                ) from exc
            if not radius > 0:
                raise HazardFileError(f"{path}: feature {number}: radius_km must be > 0")
            row.update(center_lon=geometry.x, center_lat=geometry.y, radius_km=radius)
        elif geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise HazardFileError(
                f"{path}: feature {number}: geometry must be a Polygon, MultiPolygon or a Point "
                f"with radius_km; got {geometry.geom_type}")
        rows.append(row)
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326") if rows else \
        gpd.GeoDataFrame({"hazard_id": [], "event": [], "severity": []},
                         geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    if frame["hazard_id"].duplicated().any():
        dupes = sorted(set(frame.loc[frame["hazard_id"].duplicated(), "hazard_id"]))
        raise HazardFileError(f"{path}: duplicate hazard ids {', '.join(dupes[:5])}")
    return frame
