"""Figures built by pure functions from core tables, testable without a browser."""

from __future__ import annotations

from typing import Any

import h3
import numpy as np
import pandas as pd

from layers.schema import MISSION_TYPES

# Continental view; the other jurisdictions are one click away (later: insets).
DEFAULT_CENTER = {"lat": 38.0, "lon": -97.0}
DEFAULT_ZOOM = 3.0


def cells_geojson(cells: pd.Series, decimals: int = 4) -> dict[str, Any]:
    """H3 cells as GeoJSON polygons (lon/lat), keyed by cell id; antimeridian-safe.

    Coordinates are rounded to ``decimals`` (4: about 10 m, far below a display cell's size).
    """
    features = []
    for cell in cells:
        ring = [(round(lon, decimals), round(lat, decimals))
                for lat, lon in h3.cell_to_boundary(cell)]
        lons = [p[0] for p in ring]
        if max(lons) - min(lons) > 180:  # crosses the antimeridian: keep it contiguous
            ring = [(lon + 360 if lon < 0 else lon, lat) for lon, lat in ring]
        ring.append(ring[0])
        features.append({"type": "Feature", "id": cell,
                         "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {}})
    return {"type": "FeatureCollection", "features": features}


# One-click map views, so every jurisdiction is reachable from the national map:
# label -> (centre lat, centre lon, zoom).
MAP_VIEWS: dict[str, tuple[float, float, float]] = {
    "Contiguous US": (DEFAULT_CENTER["lat"], DEFAULT_CENTER["lon"], DEFAULT_ZOOM),
    "Alaska": (61.5, -152.0, 3.0),
    "Hawaii": (20.6, -157.4, 5.6),
    "Puerto Rico": (18.22, -66.45, 7.6),
    "Guam": (13.45, 144.79, 9.0),
    "American Samoa": (-14.3, -170.7, 8.6),
    "Marshall Islands": (7.1, 171.2, 6.5),
}

SEVERITY_COLOURS: dict[str, str] = {
    "extreme": "#b71c1c", "severe": "#ef6c00", "moderate": "#f9a825", "minor": "#1e88e5",
    "unknown": "#757575",
}


def hazard_trace(hazards: pd.DataFrame, shapes: dict[str, Any]) -> dict[str, Any] | None:
    """Hazard areas coloured by CAP severity; hover: event, headline and expiry."""
    placed = {f["id"] for f in shapes["features"]}
    rows = hazards[hazards["hazard_id"].isin(placed)]
    if rows.empty:
        return None
    order = list(SEVERITY_COLOURS)
    rank = rows["severity"].map({s: i for i, s in enumerate(order)}).fillna(len(order) - 1)
    steps = len(order)
    colorscale = []
    for i, severity in enumerate(order):
        colorscale += [[i / steps, SEVERITY_COLOURS[severity]],
                       [(i + 1) / steps, SEVERITY_COLOURS[severity]]]
    expires = rows["expires"].map(
        lambda t: "no expiry" if t is None or pd.isna(t) else t.strftime("%Y-%m-%d %H:%M UTC"))
    custom = pd.concat([rows["event"], rows["headline"].str.slice(0, 120), expires,
                        rows["severity"]], axis=1)
    return {
        "type": "choroplethmap", "name": "Hazards", "geojson": shapes,
        "locations": rows["hazard_id"].tolist(), "z": (rank + 0.5).tolist(),
        "zmin": 0, "zmax": steps, "colorscale": colorscale, "showscale": False,
        "marker": {"opacity": 0.35, "line": {"width": 1}},
        "customdata": custom.to_numpy(dtype=object).tolist(),
        "hovertemplate": "<b>%{customdata[0]}</b> (%{customdata[3]})<br>%{customdata[1]}"
                         "<br>expires %{customdata[2]}<extra></extra>",
    }


def base_layers(base_geojson: dict[str, Any] | None,
                basemap: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The map's base: the bundled boundaries, over a street basemap when one is configured.

    With no basemap, land is filled and borders are the fill's outline (one copy of the
    shapes). With one, its raster tiles go underneath and only the borders are drawn, so where
    the tiles cannot load (no internet in the operations centre) the states still show.
    """
    layers: list[dict[str, Any]] = []
    if basemap is not None:
        url, attribution = basemap
        layers.append({"sourcetype": "raster", "source": [url], "below": "traces",
                       "sourceattribution": attribution})
    if base_geojson is not None:
        if basemap is None:
            layers.append({"source": base_geojson, "type": "fill", "color": "#eef1f5",
                           "fill": {"outlinecolor": "#7a8699"}, "below": "traces"})
        else:
            layers.append({"source": base_geojson, "type": "line", "color": "#56627a",
                           "line": {"width": 0.8}, "below": "traces"})
    return layers


def roster_map(
    missions: pd.DataFrame, cell_counts: pd.DataFrame, base_geojson: dict[str, Any] | None,
    *, hazards: pd.DataFrame | None = None, hazard_shapes: dict[str, Any] | None = None,
    cells: dict[str, Any] | None = None, basemap: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Hazards, missions as markers, residences only as people counts per H3 cell, offline.

    A plain figure dict (what ``dcc.Graph`` takes): the GeoJSON given is referenced, never
    copied, so a map of a thousand hazard outlines costs its JSON encoding and nothing more.
    """
    data: list[dict[str, Any]] = []
    if hazards is not None and hazard_shapes is not None:
        trace = hazard_trace(hazards, hazard_shapes)
        if trace is not None:
            data.append(trace)
    if len(cell_counts):
        # Counts span 1 to tens of thousands: colour by log10 so small towns stay visible.
        top = max(1, int(np.ceil(np.log10(cell_counts["people"].max()))))
        ticks = list(range(top + 1))
        data.append({
            "type": "choroplethmap", "name": "Residences (count per H3 cell)",
            "geojson": cells if cells is not None else cells_geojson(cell_counts["h3_cell"]),
            "locations": cell_counts["h3_cell"].tolist(),
            "z": np.round(np.log10(cell_counts["people"].clip(lower=1)), 3).tolist(),
            "zmin": 0, "zmax": top,
            "customdata": cell_counts[["people", "with_immunity"]].to_numpy().tolist(),
            "colorscale": [[0, "#b3d3ea"], [0.5, "#4a90c8"], [1, "#08306b"]],
            "marker": {"opacity": 0.75, "line": {"width": 0}},
            "colorbar": {"title": {"text": "people<br>per cell"}, "thickness": 12,
                         "tickvals": ticks, "ticktext": [f"{10 ** t:,}" for t in ticks]},
            "hovertemplate": "%{customdata[0]:,} people<br>%{customdata[1]:,} with immunity"
                             "<extra></extra>",
        })
    if len(missions):
        labels = missions["mission_type"].map(MISSION_TYPES).fillna(missions["mission_type"])
        data.append({
            "type": "scattermap", "name": "Missions", "mode": "markers",
            "lat": np.round(missions["lat"].to_numpy(dtype=float), 5).tolist(),
            "lon": np.round(missions["lon"].to_numpy(dtype=float), 5).tolist(),
            "marker": {"size": 6, "color": "#1b2430"},
            "text": missions["name"].tolist(),
            "customdata": pd.concat([labels, missions["city"], missions["jurisdiction"]],
                                    axis=1).to_numpy(dtype=object).tolist(),
            "hovertemplate": "<b>%{text}</b><br>%{customdata[0]}<br>%{customdata[1]}, "
                             "%{customdata[2]}<extra></extra>",
        })
    layout = {
        "map": {"style": "white-bg", "center": dict(DEFAULT_CENTER), "zoom": DEFAULT_ZOOM,
                "layers": base_layers(base_geojson, basemap)},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "legend": {"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.8)"},
        "uirevision": "roster",
    }
    return {"data": data, "layout": layout}


def view_of_bounds(west: float, south: float, east: float, north: float,
                   ) -> tuple[dict[str, float], float]:
    """Map centre and zoom that show a lon/lat box (web-Mercator zoom, roughly fitted)."""
    span = max(east - west, (north - south) * 1.6, 0.05)
    zoom = float(np.clip(np.log2(360.0 / span) - 0.3, 1.0, 12.0))
    return {"lat": (south + north) / 2, "lon": (west + east) / 2}, zoom
