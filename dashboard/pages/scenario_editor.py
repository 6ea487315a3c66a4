"""Writing drill scenarios (``/drills/new``, coordinators); ``/drills/edit/<name>`` starts from a
scenario of the library (a bundled one is saved under a new name, an authored one in place).

The scenario's header (name, title, description, jurisdictions, length, author, sources) and its
injects (an editable table, a row per inject) give the scenario as GeoJSON, the file format of
``data/scenarios/README.md``, kept in a ``dcc.Store``: what is checked is what is saved. Each
inject's area is set for the selected row in one of three ways: drawn as a closed path on a
plain longitude/latitude chart of the state outlines (Plotly draws shapes on cartesian axes
only), a circle (centre and radius), or a polygon uploaded as GeoJSON. Every change is checked
with ``layers.scenarios.parse_scenario`` (and the jurisdictions rule); Save is refused while
anything is wrong. Saving writes ``DATA_DIR/scenarios/<name>.geojson`` and audits it
(:mod:`dashboard.scenario_library`); the scenario is then on ``/drills``, ready to start.

No personal data: the page shows state outlines and the scenario, never the roster.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Collection, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import dash
import numpy as np
import shapely
import shapely.geometry
from dash import Input, Output, State, ctx, dash_table, dcc, html
from shapely.geometry.base import BaseGeometry

from dashboard import auth, components, ids, scenario_library
from dashboard.drills import clock_text
from dashboard.services import current
from feeds.model import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES
from layers.geography import load_geography
from layers.scenarios import (
    INJECT_MESSAGE_TYPES,
    MAX_RADIUS_KM,
    Scenario,
    ScenarioError,
    parse_scenario,
    scenario_to_geojson,
)
from layers.schema import JURISDICTIONS
from layers.shapes import geodesic_circle, shift_longitude

dash.register_page(__name__, path="/drills/new", path_template="/drills/edit/<name>",
                   name="Write a scenario", title="Mission Watch - scenario editor",
                   min_role="coordinator", nav=False)

DEFAULT_DURATION = 240
DEFAULT_AUTHOR = "Exercise design team"
DEFAULT_SOURCES = ("Training approximation drawn on the Mission Watch scenario editor over the "
                   "bundled state outlines (US Census Bureau cartographic boundaries); not a "
                   "forecast, a warning area or an evacuation zone.")
DECIMALS = 5                 # about 1 m: enough for hand-drawn shapes
MAX_UPLOAD_BYTES = 5_000_000
MAX_UPLOAD_VERTICES = 500    # larger uploads are simplified (from about 50 m) to stay under it
CONTIGUOUS_VIEW = (-125.0, 24.0, -66.5, 49.5)

# The injects table: (column id, header). "shape" is read-only, set by the shape tools.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("inject_id", "Inject id"), ("shape", "Shape"), ("at_minutes", "At (min)"),
    ("expires_minutes", "Expires after (min)"), ("message_type", "Type"), ("event", "Event"),
    ("category", "Category"), ("severity", "Severity"), ("urgency", "Urgency"),
    ("certainty", "Certainty"), ("area_desc", "Area description"),
    ("supersedes", "Supersedes (ids, comma-separated)"), ("headline", "Headline"),
)
NUMERIC_COLUMNS = ("at_minutes", "expires_minutes")
DROPDOWNS: dict[str, tuple[str, ...]] = {
    "message_type": INJECT_MESSAGE_TYPES, "category": CATEGORIES, "severity": SEVERITIES,
    "urgency": URGENCIES, "certainty": CERTAINTIES,
}
# Kept with each row but not shown: its key, its area, and texts the table does not edit.
HIDDEN_KEYS = ("id", "geometry", "radius_km", "description", "instruction", "source_style")
_TEXT_KEYS = ("event", "area_desc", "headline", "description", "instruction", "source_style")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SHAPE_PATH = re.compile(r"^shapes\[(\d+)\]\.path$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class ShapeError(ValueError):
    """A shape tool's input that gives no area: says what is wrong and what is accepted."""


# --------------------------------------------------------------------------------------------
# The form and the scenario GeoJSON


def blank_scenario() -> dict[str, Any]:
    """A new scenario: defaults for the header and one inject with no area yet."""
    return {
        "type": "FeatureCollection",
        "scenario": {"name": "", "title": "", "description": "", "jurisdictions": [],
                     "duration_minutes": DEFAULT_DURATION, "author": DEFAULT_AUTHOR,
                     "sources": DEFAULT_SOURCES},
        "features": [{"type": "Feature", "geometry": None, "properties": {
            "inject_id": "inject-1", "at_minutes": 0, "event": "", "category": "weather",
            "severity": "moderate"}}],
    }


def header_of(data: dict[str, Any]) -> dict[str, Any]:
    """The header fields of a scenario GeoJSON, as the form shows them."""
    block = data.get("scenario") if isinstance(data, dict) else None
    block = block if isinstance(block, dict) else {}
    return {"name": block.get("name", ""), "title": block.get("title", ""),
            "description": block.get("description", ""),
            "jurisdictions": list(block.get("jurisdictions") or []),
            "duration_minutes": block.get("duration_minutes"),
            "author": block.get("author", ""), "sources": block.get("sources", "")}


def shape_summary(geometry_text: str, radius_km: Any) -> str:
    """What the Shape column says about a row's area."""
    if not geometry_text:
        return "none yet"
    try:
        geometry = json.loads(geometry_text)
        kind = geometry["type"]
        if kind == "Point":
            lon, lat = geometry["coordinates"][:2]
            return f"circle {float(radius_km):g} km around {lon:g}, {lat:g}"
        count = int(shapely.get_num_coordinates(shapely.geometry.shape(geometry)))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError,
            shapely.errors.ShapelyError):
        return "unreadable shape"
    return f"{kind.lower()}, {count} vertices"


def rows_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The injects of a scenario GeoJSON as table rows (areas kept as GeoJSON text)."""
    rows: list[dict[str, Any]] = []
    features = data.get("features") if isinstance(data, dict) else None
    for number, item in enumerate(features or [], start=1):
        feature = item if isinstance(item, dict) else {}
        props = feature.get("properties")
        props = props if isinstance(props, dict) else {}
        geometry = feature.get("geometry")
        row: dict[str, Any] = {"id": f"row-{number}"}
        for key, _ in COLUMNS:
            value = props.get(key)
            if key == "supersedes":
                value = ", ".join(value) if isinstance(value, list) else (value or "")
            elif key == "message_type":
                value = value or "alert"
            elif key in ("urgency", "certainty"):
                value = value or "unknown"
            row[key] = "" if value is None else value
        for key in ("description", "instruction", "source_style"):
            row[key] = props.get(key) or ""
        row["geometry"] = json.dumps(geometry) if isinstance(geometry, dict) else ""
        row["radius_km"] = props.get("radius_km", "")
        row["shape"] = shape_summary(row["geometry"], row["radius_km"])
        rows.append(row)
    return rows


def _number_or_text(value: Any) -> Any:
    """A number typed in a form: int or float, or the text itself (parse_scenario names it)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else value
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _clean_text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def feature_of(row: dict[str, Any]) -> dict[str, Any]:
    """One table row as an inject Feature; empty optional fields are left out."""
    props: dict[str, Any] = {"inject_id": _clean_text(row.get("inject_id"))}
    for key in NUMERIC_COLUMNS:
        value = _number_or_text(row.get(key))
        if value is not None:
            props[key] = value
    message_type = _clean_text(row.get("message_type"))
    if message_type and message_type != "alert":
        props["message_type"] = message_type
    supersedes = [s.strip() for s in _clean_text(row.get("supersedes")).split(",") if s.strip()]
    if supersedes:
        props["supersedes"] = supersedes
    for key in ("category", "severity"):
        if _clean_text(row.get(key)):
            props[key] = _clean_text(row.get(key))
    for key in ("urgency", "certainty"):
        value = _clean_text(row.get(key))
        if value and value != "unknown":
            props[key] = value
    for key in _TEXT_KEYS:
        value = _clean_text(row.get(key))
        if value or key == "event":
            props[key] = value
    geometry = None
    text = row.get("geometry") or ""
    if isinstance(text, str) and text:
        try:
            geometry = json.loads(text)
        except json.JSONDecodeError:
            geometry = None
    if isinstance(geometry, dict) and geometry.get("type") == "Point":
        props["radius_km"] = _number_or_text(row.get("radius_km"))
    return {"type": "Feature", "properties": props, "geometry": geometry}


def scenario_geojson(header: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The scenario GeoJSON of the form: the header fields and a Feature per row, in order."""
    codes = header.get("jurisdictions") or []
    block = {
        "name": _clean_text(header.get("name")), "title": _clean_text(header.get("title")),
        "description": _clean_text(header.get("description")),
        "jurisdictions": list(codes) if isinstance(codes, list | tuple) else [codes],
        "duration_minutes": _number_or_text(header.get("duration_minutes")),
        "author": _clean_text(header.get("author")),
        "sources": _clean_text(header.get("sources")),
    }
    if block["duration_minutes"] is None:
        del block["duration_minutes"]
    return {"type": "FeatureCollection", "scenario": block,
            "features": [feature_of(row) for row in rows]}


def with_row_ids(rows: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The rows, each with a unique ``id`` (rows typed or pasted may come without one)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in rows or []:
        row = dict(item) if isinstance(item, dict) else {}
        if not isinstance(row.get("id"), str) or row["id"] in seen:
            row["id"] = _next_id(list(rows or []) + out, seen)
        seen.add(row["id"])
        row["shape"] = shape_summary(row.get("geometry") or "", row.get("radius_km"))
        out.append(row)
    return out


def _next_id(rows: Sequence[Any], seen: Collection[str] = ()) -> str:
    numbers = [int(r["id"][4:]) for r in rows if isinstance(r, dict)
               and isinstance(r.get("id"), str) and re.fullmatch(r"row-\d+", r["id"])]
    number = max(numbers, default=0) + 1
    while f"row-{number}" in seen:
        number += 1
    return f"row-{number}"


def new_row(rows: Sequence[dict[str, Any]], duration: Any) -> dict[str, Any]:
    """A row to add: a fresh inject id, firing 30 minutes after the last one (within the
    scenario's length), with no area yet."""
    ids_taken = {r.get("inject_id") for r in rows}
    number = len(rows) + 1
    while f"inject-{number}" in ids_taken:
        number += 1
    times = [t for t in (_number_or_text(r.get("at_minutes")) for r in rows)
             if isinstance(t, int | float) and not isinstance(t, bool)]
    at = max(times, default=-30) + 30
    end = _number_or_text(duration)
    if isinstance(end, int | float) and not isinstance(end, bool):
        at = min(at, end)
    return {"id": _next_id(rows), "inject_id": f"inject-{number}", "at_minutes": at,
            "expires_minutes": "", "message_type": "alert", "event": "",
            "category": "weather", "severity": "moderate", "urgency": "unknown",
            "certainty": "unknown", "area_desc": "", "supersedes": "", "headline": "",
            "description": "", "instruction": "", "source_style": "", "geometry": "",
            "radius_km": "", "shape": shape_summary("", "")}


def set_shape(rows: Sequence[dict[str, Any]], index: int, geometry: dict[str, Any],
              radius_km: float | None = None) -> list[dict[str, Any]]:
    """The rows with row ``index``'s area replaced (a polygon, or a circle's centre)."""
    out = [dict(r) for r in rows]
    row = out[index]
    row["geometry"] = json.dumps(geometry)
    row["radius_km"] = radius_km if geometry.get("type") == "Point" else ""
    row["shape"] = shape_summary(row["geometry"], row["radius_km"])
    return out


# --------------------------------------------------------------------------------------------
# The shape tools: a drawn path, a circle, an uploaded GeoJSON file


def _rounded_ring(points: Sequence[tuple[float, float]]) -> list[list[float]]:
    ring = [[round(x, DECIMALS), round(y, DECIMALS)] for x, y in points]
    deduplicated = [p for i, p in enumerate(ring) if i == 0 or p != ring[i - 1]]
    if len(deduplicated) > 1 and deduplicated[0] == deduplicated[-1]:
        deduplicated.pop()
    if len({tuple(p) for p in deduplicated}) < 3:
        raise ShapeError("a drawn shape needs at least three distinct corners")
    xs = [p[0] for p in deduplicated]
    if min(xs) > 180.0 or max(xs) < -180.0:  # drawn wholly across the date line: bring it back
        turn = -360.0 if min(xs) > 180.0 else 360.0
        deduplicated = [[round(x + turn, DECIMALS), y] for x, y in deduplicated]
    return [*deduplicated, deduplicated[0]]


def path_to_polygon(path: str) -> dict[str, Any]:
    """A closed SVG path drawn on the chart (``M x,y L x,y ... Z`` in data coordinates:
    longitude, latitude) as a GeoJSON Polygon, rounded to 1 m."""
    if not isinstance(path, str) or not path.strip().upper().startswith("M"):
        raise ShapeError("the drawn shape is not a path of straight edges")
    if re.search(r"[^MLZmlz0-9eE.,+\-\s]", path):
        raise ShapeError("the drawn shape has curves; draw it with straight edges "
                         "(closed freeform)")
    numbers = [float(n) for n in _NUMBER.findall(path)]
    if len(numbers) % 2:
        raise ShapeError("the drawn path has an odd number of coordinates")
    points = list(zip(numbers[0::2], numbers[1::2], strict=True))
    if any(not (math.isfinite(x) and math.isfinite(y)) for x, y in points):
        raise ShapeError("the drawn path has coordinates that are not numbers")
    return {"type": "Polygon", "coordinates": [_rounded_ring(points)]}


def drawn_path(relayout: Any) -> str | None:
    """The path of the shape just drawn or reshaped, from the chart's ``relayoutData``."""
    if not isinstance(relayout, dict):
        return None
    shapes = relayout.get("shapes")
    if isinstance(shapes, list):
        paths = [s.get("path") for s in shapes
                 if isinstance(s, dict) and s.get("type") == "path" and s.get("path")]
        return paths[-1] if paths else None
    for key, value in relayout.items():
        if _SHAPE_PATH.match(str(key)) and isinstance(value, str):
            return value
    return None


def circle_shape(lon: Any, lat: Any, radius_km: Any) -> tuple[dict[str, Any], float]:
    """A circle's centre as a GeoJSON Point, and its radius (checked like the file format)."""
    values = []
    for label, value, low, high in (("centre longitude", lon, -180.0, 180.0),
                                    ("centre latitude", lat, -90.0, 90.0),
                                    ("radius_km", radius_km, 0.0, MAX_RADIUS_KM)):
        number = _number_or_text(value)
        if isinstance(number, bool) or not isinstance(number, int | float) or not (
                math.isfinite(number)):
            raise ShapeError(f"{label} must be a number, got {value!r}")
        if not low <= number <= high or (label == "radius_km" and number == 0):
            bound = "> 0 and <=" if label == "radius_km" else f">= {low:g} and <="
            raise ShapeError(f"{label} must be {bound} {high:g}, got {number:g}")
        values.append(float(number))
    point = {"type": "Point", "coordinates": [round(values[0], DECIMALS),
                                              round(values[1], DECIMALS)]}
    return point, values[2]


def _polygonal_parts(geometry: Any) -> BaseGeometry | None:
    """The Polygon/MultiPolygon of a GeoJSON geometry object, or None if it has no area."""
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon",
                                                                      "MultiPolygon"):
        return None
    try:
        shape = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError,
            shapely.errors.ShapelyError) as exc:
        raise ShapeError(f"a {geometry.get('type')} in the file is malformed: {exc}") from None
    return None if shape.is_empty else shape


def _within_limits(shape: BaseGeometry) -> BaseGeometry:
    """The shape simplified (from about 50 m, doubling) until it has at most
    MAX_UPLOAD_VERTICES vertices, then rounded to 1 m."""
    tolerance = 0.0005
    while shapely.get_num_coordinates(shape) > MAX_UPLOAD_VERTICES and tolerance < 1.0:
        simpler = shapely.simplify(shape, tolerance, preserve_topology=True)
        if not simpler.is_empty:
            shape = simpler
        tolerance *= 2
    return shapely.set_precision(shape, 10 ** -DECIMALS, mode="pointwise")


def uploaded_polygons(contents: str) -> list[dict[str, Any]]:
    """The polygonal areas of an uploaded GeoJSON file (a Polygon, a MultiPolygon, a Feature
    or a FeatureCollection), in file order, as GeoJSON geometries ready for an inject.

    Only geometry is read (properties are never shown: a file may carry anything). Large shapes
    are simplified to at most MAX_UPLOAD_VERTICES vertices.
    """
    if not isinstance(contents, str) or "," not in contents:
        raise ShapeError("no file was received")
    _, _, encoded = contents.partition(",")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ShapeError("the file could not be read") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ShapeError(f"the file is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShapeError(f"the file is not GeoJSON (not JSON text: {exc})") from None
    if not isinstance(data, dict):
        raise ShapeError("the file is not GeoJSON (expected an object)")
    crs = data.get("crs")
    if isinstance(crs, dict) and not re.search(r"(CRS84|EPSG:*4326)$",
                                               str((crs.get("properties") or {}).get("name"))):
        raise ShapeError("the file is not in WGS 84 longitude/latitude (its crs is "
                         f"{(crs.get('properties') or {}).get('name')!r}); export it as "
                         "EPSG:4326")
    kind = data.get("type")
    if kind == "FeatureCollection":
        features = data.get("features")
        geometries = [f.get("geometry") for f in features or [] if isinstance(f, dict)]
    elif kind == "Feature":
        geometries = [data.get("geometry")]
    elif kind in ("Polygon", "MultiPolygon"):
        geometries = [data]
    else:
        raise ShapeError(f"expected a GeoJSON Polygon, MultiPolygon, Feature or "
                         f"FeatureCollection, got type {kind!r}")
    out = []
    for geometry in geometries:
        shape = _polygonal_parts(geometry)
        if shape is None:
            continue
        x0, y0, x1, y1 = shape.bounds
        if not (-90.0 <= y0 <= y1 <= 90.0 and -360.0 <= x0 <= x1 <= 360.0):
            raise ShapeError("the file's coordinates are not longitude/latitude degrees; "
                             "export it as WGS 84 (EPSG:4326)")
        out.append(json.loads(json.dumps(shapely.geometry.mapping(_within_limits(shape)))))
    if not out:
        raise ShapeError("the file has no Polygon or MultiPolygon")
    return out


def _picker_options(polygons: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"label": f"area {number} of the file ({g['type']}, "
                      f"{int(shapely.get_num_coordinates(shapely.geometry.shape(g)))} vertices)",
             "value": number - 1} for number, g in enumerate(polygons, start=1)]


# --------------------------------------------------------------------------------------------
# Checking


def problems(data: dict[str, Any], *, bundled: Collection[str] = (),
             authored: Collection[str] = (), origin: str | None = None
             ) -> tuple[Scenario | None, list[str]]:
    """The scenario if it is valid, and what is wrong with it (empty when it can be saved).

    parse_scenario names the first problem (with the inject and the reason); a valid scenario
    is also checked against its jurisdictions and against the names already in the library.
    """
    try:
        scenario = parse_scenario(data, origin="scenario")
    except ScenarioError as exc:
        return None, [str(exc).removeprefix("scenario: ")]
    found = scenario_library.jurisdiction_problems(scenario)
    if scenario.name in bundled:
        found.append(f"{scenario.name!r} is the name of a bundled scenario: choose another name")
    elif scenario.name in authored and scenario.name != origin:
        found.append(f"a scenario named {scenario.name!r} already exists: choose another name "
                     f"(or open /drills/edit/{scenario.name} to change it)")
    return scenario, found


def _injects(count: int) -> str:
    return f"{count} inject" + ("" if count == 1 else "s")


def _check_panel(scenario: Scenario | None, found: list[str]) -> html.Div:
    if found:
        return html.Div([html.Strong("Not ready to save:"),
                         html.Ul([html.Li(text) for text in found])],
                        className="notice-bar danger")
    assert scenario is not None
    return html.Div(f"Valid: {_injects(len(scenario.injects))} over "
                    f"{clock_text(scenario.duration_minutes)} in "
                    f"{', '.join(scenario.jurisdictions)}. Ready to save.",
                    className="notice-bar calm")


# --------------------------------------------------------------------------------------------
# The chart: state outlines on plain longitude/latitude axes, and the injects' areas


def _part_shift(x_mid: float, center: float) -> float:
    return 360.0 * round((center - x_mid) / 360.0)


def _shifted_parts(geom: BaseGeometry | None, center: float) -> list[BaseGeometry]:
    """The polygons of ``geom``, each moved by whole turns into the window around ``center``
    (a shape split at ±180 is drawn joined up again)."""
    if geom is None or geom.is_empty:
        return []
    out = []
    for part in shapely.get_parts(geom):
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        x0, _, x1, _ = part.bounds
        shift = _part_shift((x0 + x1) / 2.0, center)
        out.append(shift_longitude(part, shift) if shift else part)
    return out


def _lines(parts: Sequence[BaseGeometry]) -> tuple[list[float | None], list[float | None]]:
    """Rings of polygons as one line: x and y with None between rings."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for part in parts:
        for ring in (part.exterior, *part.interiors):
            coords = np.asarray(ring.coords)
            xs += [*np.round(coords[:, 0], DECIMALS).tolist(), None]
            ys += [*np.round(coords[:, 1], DECIMALS).tolist(), None]
    return xs, ys


@lru_cache(maxsize=64)
def _view(codes: tuple[str, ...]) -> dict[str, Any]:
    """Where the chart looks for these jurisdictions: its centre longitude (so that shapes
    near ±180 are drawn whole), ranges, and the state outlines around them."""
    geography = load_geography()
    if codes:
        geoms = [geography.state_geometry(c) for c in codes]
        # each jurisdiction counts once: the circular mean of its parts' centres by area
        middles = []
        for geom in geoms:
            parts = shapely.get_parts(geom)
            angles = np.radians(shapely.get_x(shapely.centroid(parts)))
            weights = shapely.area(parts)
            middles.append(math.atan2(float((np.sin(angles) * weights).sum()),
                                      float((np.cos(angles) * weights).sum())))
        center = math.degrees(math.atan2(float(np.sin(middles).mean()),
                                         float(np.cos(middles).mean())))
        boxes = np.array([p.bounds for g in geoms for p in _shifted_parts(g, center)])
        x0, y0 = float(boxes[:, 0].min()), float(boxes[:, 1].min())
        x1, y1 = float(boxes[:, 2].max()), float(boxes[:, 3].max())
    else:
        x0, y0, x1, y1 = CONTIGUOUS_VIEW
        center = (x0 + x1) / 2.0
    pad = max(0.15, 0.08 * max(x1 - x0, y1 - y0))
    x0, x1, y0, y1 = x0 - pad, x1 + pad, max(-89.0, y0 - pad), min(89.0, y1 + pad)
    span = max(x1 - x0, y1 - y0)
    tolerance = min(0.05, max(0.0005, span / 1500.0))
    frame = shapely.box(x0 - span, y0 - span, x1 + span, y1 + span)
    parts = []
    for geom in geography.states.geometry:
        for part in _shifted_parts(geom, center):
            if not part.intersects(frame):
                continue
            piece = shapely.clip_by_rect(shapely.simplify(part, tolerance), *frame.bounds)
            parts += [p for p in shapely.get_parts(piece) if p.geom_type == "Polygon"]
    xs, ys = _lines(parts)
    mid_lat = math.radians((y0 + y1) / 2.0)
    return {"center": center, "x": [x0, x1], "y": [y0, y1], "outline_x": xs,
            "outline_y": ys, "ratio": 1.0 / max(0.2, math.cos(mid_lat))}


def _lon_title(x_range: Sequence[float]) -> str:
    """The longitude axis title; near the date line it says how to read values past ±180."""
    text = "longitude (east is positive, west negative)"
    if x_range[1] > 180.0 or x_range[0] < -180.0:
        text += "; past ±180 read on round the globe (190° is 170° west)"
    return text


def feature_area(feature: Any) -> BaseGeometry | None:
    """An inject's area as drawn on the chart, whether or not the scenario is valid yet."""
    if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
        return None
    geometry = feature["geometry"]
    props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
    try:
        if geometry.get("type") == "Point":
            lon, lat = (float(v) for v in geometry["coordinates"][:2])
            radius = float(props.get("radius_km"))
            if not (0 < radius <= MAX_RADIUS_KM and abs(lat) < 89.0):
                return None
            return geodesic_circle(lon, lat, radius)
        shape = _polygonal_parts(geometry)
    except (ValueError, TypeError, KeyError, IndexError, ShapeError):
        return None
    return shape


def editor_figure(data: dict[str, Any], selected: int | None) -> dict[str, Any]:
    """The drawing chart: state outlines zoomed to the scenario's jurisdictions and every
    inject's area (the selected one highlighted), ready for drawing closed paths."""
    header = header_of(data)
    codes = tuple(c for c in header["jurisdictions"] if c in JURISDICTIONS)
    view = _view(codes)
    traces: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines", "x": view["outline_x"], "y": view["outline_y"],
        "line": {"color": "#8a94a6", "width": 1}, "hoverinfo": "skip", "showlegend": False,
        "name": "state outlines"}]
    for index, feature in enumerate(data.get("features") or []):
        area = feature_area(feature)
        if area is None:
            continue
        xs, ys = _lines(_shifted_parts(area, view["center"]))
        props = feature.get("properties") or {}
        label = f"{props.get('inject_id', '')}: {props.get('event', '')}".strip(": ")
        mine = index == selected
        traces.append({
            "type": "scatter", "mode": "lines", "x": xs, "y": ys, "name": label or "inject",
            "fill": "toself", "hoveron": "fills+points", "hoverinfo": "name",
            "fillcolor": "rgba(211,47,47,0.18)" if mine else "rgba(21,101,192,0.06)",
            "line": {"color": "#d32f2f" if mine else "#1565c0", "width": 3 if mine else 1.5},
        })
    revision = hashlib.sha256(json.dumps([data.get("features"), selected],
                                         sort_keys=True).encode()).hexdigest()[:16]
    layout = {
        "dragmode": "drawclosedpath",
        "newshape": {"line": {"color": "#d32f2f", "width": 2},
                     "fillcolor": "rgba(211,47,47,0.15)", "opacity": 1},
        "shapes": [],
        "xaxis": {"range": view["x"], "title": {"text": _lon_title(view["x"])},
                  "ticksuffix": "°", "showgrid": True, "gridcolor": "#eef1f5",
                  "zeroline": False},
        "yaxis": {"range": view["y"], "title": {"text": "latitude (north is positive)"},
                  "ticksuffix": "°",
                  "scaleanchor": "x", "scaleratio": view["ratio"], "showgrid": True,
                  "gridcolor": "#eef1f5", "zeroline": False},
        "margin": {"l": 60, "r": 10, "t": 10, "b": 50}, "height": 560,
        "legend": {"orientation": "h", "y": -0.12}, "plot_bgcolor": "#fbfcfe",
        # the zoom stays while editing; drawn shapes are cleared once they became an area
        "uirevision": ",".join(codes) or "contiguous", "editrevision": revision,
    }
    return {"data": traces, "layout": layout}


def figure_key(data: dict[str, Any], selected: int | None) -> str:
    """What the chart depends on: the areas, names, jurisdictions and the selected row."""
    features = [((f.get("properties") or {}).get("inject_id"),
                 (f.get("properties") or {}).get("event"),
                 (f.get("properties") or {}).get("radius_km"), f.get("geometry"))
                for f in data.get("features") or [] if isinstance(f, dict)]
    text = json.dumps([header_of(data)["jurisdictions"], selected, features], sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _selected(selected_rows: Any, count: int) -> int | None:
    if isinstance(selected_rows, list) and selected_rows:
        index = selected_rows[0]
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
            return index
    return None


def check_view(data: dict[str, Any], selected_rows: Any, known_key: str | None, *,
               bundled: Collection[str], authored: Collection[str], origin: str | None
               ) -> tuple:
    """(check panel, save disabled, chart or no_update when unchanged, chart key)."""
    if not isinstance(data, dict):
        data = blank_scenario()
    scenario, found = problems(data, bundled=bundled, authored=authored, origin=origin)
    selected = _selected(selected_rows, len(data.get("features") or []))
    key = figure_key(data, selected)
    figure: Any = dash.no_update if key == known_key else editor_figure(data, selected)
    return _check_panel(scenario, found), bool(found), figure, key


# --------------------------------------------------------------------------------------------
# Actions


def editor_action(trigger: str | None, header: dict[str, Any], rows: Any, selected_rows: Any,
                  *, relayout: Any = None, circle: tuple[Any, Any, Any] = (None, None, None),
                  upload: str | None = None, pick: Any = None) -> tuple:
    """Apply one change of the form: returns (rows, selected rows, scenario GeoJSON, shape
    message, upload choices, chosen upload area, upload choice hidden).

    ``trigger`` says what changed: "add" (a row), "draw" (a path on the chart), "circle",
    "upload", "pick" (another area of the uploaded file); anything else (a header field, a
    cell) only rebuilds the scenario from the form.
    """
    keep = dash.no_update
    typed = rows if isinstance(rows, list) else []
    rows = with_row_ids(typed)
    selected = _selected(selected_rows, len(rows))
    chosen: Any = keep
    message: Any = keep
    options: Any = keep
    hidden: Any = keep
    pick_value: Any = keep
    try:
        if trigger == "add":
            rows.append(new_row(rows, header.get("duration_minutes")))
            chosen = [len(rows) - 1]
            message = (f"Inject {rows[-1]['inject_id']!r} added and selected: fill in its "
                       "fields and give it an area.")
        elif trigger in ("draw", "circle", "upload", "pick"):
            if trigger == "draw":
                path = drawn_path(relayout)
                if path is None:
                    raise dash.exceptions.PreventUpdate  # a zoom or pan, not a drawing
            if selected is None:
                raise ShapeError("select the inject (tick its row) that the area is for")
            name = rows[selected].get("inject_id") or f"row {selected + 1}"
            if trigger == "draw":
                polygon = path_to_polygon(path)
                rows = set_shape(rows, selected, polygon)
                message = (f"Inject {name!r}: drawn area of "
                           f"{len(polygon['coordinates'][0]) - 1} corners.")
            elif trigger == "circle":
                point, radius = circle_shape(*circle)
                rows = set_shape(rows, selected, point, radius)
                message = f"Inject {name!r}: circle of {radius:g} km."
            else:
                polygons = uploaded_polygons(upload or "")
                index = pick if trigger == "pick" else 0
                if not isinstance(index, int) or not 0 <= index < len(polygons):
                    raise ShapeError("choose one of the file's areas")
                rows = set_shape(rows, selected, polygons[index])
                message = f"Inject {name!r}: area {index + 1} of the uploaded file."
                if trigger == "upload":
                    options = _picker_options(polygons)
                    pick_value = 0
                    hidden = len(polygons) < 2
                    if len(polygons) > 1:
                        message += (f" The file has {len(polygons)} areas: choose another "
                                    "below if this is not the one.")
    except ShapeError as exc:
        return (keep, keep, keep, html.Span(f"No area set: {exc}.", className="danger"),
                keep, keep, keep)
    data = scenario_geojson(header, rows)
    # the table is sent back only when its rows changed here: echoing them could undo a cell
    # being typed meanwhile
    return (rows if rows != typed else keep), chosen, data, message, options, pick_value, hidden


def save_action(data: Any, origin: str | None, *, settings: Any, engine: Any, actor: str,
                now: datetime) -> tuple:
    """Save the checked scenario to the library: (message, origin of what is now edited)."""
    keep = dash.no_update
    if not isinstance(data, dict):
        return "Nothing to save: reload the page.", keep
    replace = bool(origin) and header_of(data)["name"] == origin
    try:
        saved = scenario_library.save_scenario(settings, engine, data, actor=actor, now=now,
                                               replace=replace)
    except ScenarioError as exc:
        return f"Not saved: {str(exc).removeprefix('scenario: ')}", keep
    except scenario_library.SaveRefused as exc:
        return f"Not saved: {exc}", keep
    scenario = saved.scenario
    verb = "Replaced" if saved.replaced else "Saved"
    return [f"{verb} {scenario.name!r} ({_injects(len(scenario.injects))}) in the library. ",
            dcc.Link("Start a drill of it on the Drills page", href="/drills")], scenario.name


# --------------------------------------------------------------------------------------------
# Layout and callbacks


def _copy_name(name: str, taken: Collection[str]) -> str:
    stem = name[:55]
    candidate, number = f"{stem}-copy", 2
    while candidate in taken:
        candidate, number = f"{stem}-copy-{number}", number + 1
    return candidate


def _field(label: str, control: Any, field_id: str) -> html.Div:
    return html.Div([html.Label(label, htmlFor=field_id), control], className="editor-field")


def _header_form(header: dict[str, Any]) -> html.Div:
    return html.Div([
        _field("Name (file name: a-z, 0-9, -)",
               dcc.Input(id=ids.EDITOR_NAME, value=header["name"], debounce=True,
                         maxLength=64, placeholder="e.g. tampa-bay-surge"), ids.EDITOR_NAME),
        _field("Title", dcc.Input(id=ids.EDITOR_TITLE, value=header["title"], debounce=True,
                                  maxLength=200, className="editor-wide"), ids.EDITOR_TITLE),
        _field("Jurisdictions", dcc.Dropdown(
            id=ids.EDITOR_JURISDICTIONS, value=header["jurisdictions"], multi=True,
            options=[{"label": code, "value": code} for code in JURISDICTIONS],
            placeholder="where it plays", className="editor-jurisdictions"),
            ids.EDITOR_JURISDICTIONS),
        _field("Planned length (minutes)",
               dcc.Input(id=ids.EDITOR_DURATION, value=header["duration_minutes"],
                         type="number", min=1, debounce=True), ids.EDITOR_DURATION),
        _field("Author (a team or office)",
               dcc.Input(id=ids.EDITOR_AUTHOR, value=header["author"], debounce=True,
                         maxLength=200), ids.EDITOR_AUTHOR),
        _field("Description (what happens, for the exercise director)",
               dcc.Textarea(id=ids.EDITOR_DESCRIPTION, value=header["description"],
                            className="editor-text"), ids.EDITOR_DESCRIPTION),
        _field("Sources (what the shapes are based on; say they are training approximations)",
               dcc.Textarea(id=ids.EDITOR_SOURCES, value=header["sources"],
                            className="editor-text"), ids.EDITOR_SOURCES),
    ], className="editor-header")


def _injects_table(rows: list[dict[str, Any]]) -> dash_table.DataTable:
    columns = []
    for key, title in COLUMNS:
        column: dict[str, Any] = {"id": key, "name": title, "editable": key != "shape"}
        if key in NUMERIC_COLUMNS:
            column["type"] = "numeric"
        if key in DROPDOWNS:
            column["presentation"] = "dropdown"
        columns.append(column)
    return dash_table.DataTable(
        id=ids.EDITOR_INJECTS, columns=columns, data=rows, editable=True,
        row_deletable=True, row_selectable="single", selected_rows=[0] if rows else [],
        dropdown={key: {"options": [{"label": v, "value": v} for v in values],
                        "clearable": False} for key, values in DROPDOWNS.items()},
        style_table=components.TABLE_STYLE,
        style_cell={**components.CELL_STYLE, "minWidth": "6rem"},
        style_header=components.HEADER_STYLE,
        style_cell_conditional=[{"if": {"column_id": "shape"}, "color": "#6b7585"},
                                {"if": {"column_id": "event"}, "minWidth": "12rem"}],
        css=[{"selector": ".Select-menu-outer", "rule": "display: block !important"}],
    )


def _shape_tools() -> html.Div:
    return html.Div([
        html.Div([
            html.H3("Draw"),
            html.P("Draw a closed outline on the chart below (click the corners, or drag, and "
                   "close it where you started); it becomes the selected inject's area. "
                   "Scroll to zoom; the pan tool is in the chart's toolbar.",
                   className="muted"),
        ], className="editor-tool"),
        html.Div([
            html.H3("Circle"),
            html.Div([
                dcc.Input(id=ids.EDITOR_CIRCLE_LON, type="number", placeholder="centre lon",
                          min=-180, max=180, step="any"),
                dcc.Input(id=ids.EDITOR_CIRCLE_LAT, type="number", placeholder="centre lat",
                          min=-90, max=90, step="any"),
                dcc.Input(id=ids.EDITOR_CIRCLE_RADIUS, type="number", placeholder="radius km",
                          min=0, max=MAX_RADIUS_KM, step="any"),
                html.Button("Set circle", id=ids.EDITOR_CIRCLE_APPLY, className="button"),
            ], className="editor-circle"),
        ], className="editor-tool"),
        html.Div([
            html.H3("Upload"),
            dcc.Upload(html.Div(["Drop a GeoJSON file here or ", html.A("choose one")]),
                       id=ids.EDITOR_UPLOAD, accept=".geojson,.json,application/geo+json",
                       max_size=MAX_UPLOAD_BYTES, multiple=False, className="editor-upload"),
            html.Div(dcc.Dropdown(id=ids.EDITOR_UPLOAD_PICK, options=[], clearable=False),
                     id=ids.EDITOR_UPLOAD_CHOICE, hidden=True),
        ], className="editor-tool"),
    ], className="editor-tools")


def _unknown(name: str) -> html.Div:
    shown = f"{name!r}" if _NAME.match(name) else "by that name"
    return html.Div([
        html.H1("Write a drill scenario"),
        html.P(f"There is no scenario {shown} in the library.", className="notice-bar danger"),
        dcc.Link("Write a new scenario", href="/drills/new", className="button"), " ",
        dcc.Link("Back to Drills", href="/drills"),
    ], className="editor-page")


def layout(name: str | None = None, **_query: str) -> html.Div:
    settings = current().settings
    try:
        library = scenario_library.library(settings)
        problem = ""
    except ScenarioError as exc:
        library, problem = {}, f"The scenario library cannot be read: {exc}"
    origin = None
    if name is None:
        data, heading = blank_scenario(), "Write a drill scenario"
    else:
        scenario = library.get(name)
        if scenario is None:
            return _unknown(name)
        data = scenario_to_geojson(scenario)
        if scenario_library.is_authored(scenario):
            origin, heading = name, f"Edit scenario: {scenario.title}"
        else:
            data["scenario"]["name"] = _copy_name(name, library)
            heading = f"New scenario from: {scenario.title}"
    rows = rows_of(data)
    data = scenario_geojson(header_of(data), rows)
    authored = {n for n, s in library.items() if scenario_library.is_authored(s)}
    panel, disabled, figure, key = check_view(
        data, [0], None, bundled=set(library) - authored, authored=authored, origin=origin)
    starts = [html.Li(dcc.Link(f"{s.title} ({n})", href=f"/drills/edit/{n}"))
              for n, s in library.items()]
    return html.Div([
        html.H1(heading),
        html.P("A scenario is a script of EXERCISE hazards (injects) that fire on the drill "
               "clock. Shapes are approximations drawn for training, never forecasts or "
               "official warning areas. Everything is checked as you go; the scenario can be "
               "saved once nothing is wrong, and is then on the Drills page.",
               className="muted"),
        html.Div(problem, className="notice-bar danger") if problem else None,
        html.Details([html.Summary("Start from a scenario of the library"),
                      html.Ul(starts, className="editor-starts")]),
        dcc.Store(id=ids.EDITOR_STORE, data=data),
        dcc.Store(id=ids.EDITOR_ORIGIN, data=origin),
        dcc.Store(id=ids.EDITOR_FIGURE_KEY, data=key),
        html.H2("Scenario"),
        _header_form(header_of(data)),
        html.H2("Injects"),
        html.P("One row per inject. Tick a row to give it an area with the tools below; "
               "times are minutes after the drill starts; an update or a cancel names in "
               "'Supersedes' the earlier injects it replaces.", className="muted"),
        _injects_table(rows),
        html.Button("Add an inject", id=ids.EDITOR_ADD, className="button"),
        html.H2("Area of the selected inject"),
        _shape_tools(),
        html.Div(id=ids.EDITOR_SHAPE_RESULT, className="admin-result", role="status"),
        dcc.Graph(id=ids.EDITOR_MAP, figure=figure, className="editor-map",
                  config={"displaylogo": False, "scrollZoom": True, "responsive": True,
                          "modeBarButtonsToAdd": ["drawclosedpath", "eraseshape"]}),
        html.H2("Check and save"),
        html.Div(panel, id=ids.EDITOR_CHECK, role="status"),
        html.Button("Save to the library", id=ids.EDITOR_SAVE, className="button",
                    disabled=disabled),
        html.Div(id=ids.EDITOR_RESULT, className="admin-result", role="status"),
    ], className="editor-page")


_TRIGGERS = {ids.EDITOR_ADD: "add", ids.EDITOR_MAP: "draw", ids.EDITOR_CIRCLE_APPLY: "circle",
             ids.EDITOR_UPLOAD: "upload", ids.EDITOR_UPLOAD_PICK: "pick"}


@auth.callback(
    "coordinator",
    Output(ids.EDITOR_INJECTS, "data"), Output(ids.EDITOR_INJECTS, "selected_rows"),
    Output(ids.EDITOR_STORE, "data"), Output(ids.EDITOR_SHAPE_RESULT, "children"),
    Output(ids.EDITOR_UPLOAD_PICK, "options"), Output(ids.EDITOR_UPLOAD_PICK, "value"),
    Output(ids.EDITOR_UPLOAD_CHOICE, "hidden"),
    Input(ids.EDITOR_NAME, "value"), Input(ids.EDITOR_TITLE, "value"),
    Input(ids.EDITOR_DESCRIPTION, "n_blur"), Input(ids.EDITOR_JURISDICTIONS, "value"),
    Input(ids.EDITOR_DURATION, "value"), Input(ids.EDITOR_AUTHOR, "value"),
    Input(ids.EDITOR_SOURCES, "n_blur"), Input(ids.EDITOR_INJECTS, "data"),
    Input(ids.EDITOR_ADD, "n_clicks"), Input(ids.EDITOR_MAP, "relayoutData"),
    Input(ids.EDITOR_CIRCLE_APPLY, "n_clicks"), Input(ids.EDITOR_UPLOAD, "contents"),
    Input(ids.EDITOR_UPLOAD_PICK, "value"),
    State(ids.EDITOR_DESCRIPTION, "value"), State(ids.EDITOR_SOURCES, "value"),
    State(ids.EDITOR_INJECTS, "selected_rows"), State(ids.EDITOR_CIRCLE_LON, "value"),
    State(ids.EDITOR_CIRCLE_LAT, "value"), State(ids.EDITOR_CIRCLE_RADIUS, "value"),
    prevent_initial_call=True,
)
def edit(name: str | None, title: str | None,  # noqa: PLR0917 - Dash passes values by position
         _description_blur: int | None,
         jurisdictions: list[str] | None, duration: Any, author: str | None,
         _sources_blur: int | None, rows: list[dict[str, Any]] | None, _add: int | None,
         relayout: Any, _circle: int | None, upload: str | None, pick: Any,
         description: str | None, sources: str | None, selected_rows: Any,
         lon: Any, lat: Any, radius: Any) -> tuple:
    """Rebuild the scenario GeoJSON from the form after any change; apply a shape tool."""
    header = {"name": name, "title": title, "description": description,
              "jurisdictions": jurisdictions or [], "duration_minutes": duration,
              "author": author, "sources": sources}
    return editor_action(_TRIGGERS.get(ctx.triggered_id), header, rows, selected_rows,
                         relayout=relayout, circle=(lon, lat, radius), upload=upload,
                         pick=pick)


def _names() -> tuple[set[str], set[str]]:
    settings = current().settings
    return set(scenario_library.bundled_names()), set(scenario_library.authored_names(settings))


@auth.callback(
    "coordinator",
    Output(ids.EDITOR_CHECK, "children"), Output(ids.EDITOR_SAVE, "disabled"),
    Output(ids.EDITOR_MAP, "figure"), Output(ids.EDITOR_FIGURE_KEY, "data"),
    Input(ids.EDITOR_STORE, "data"), Input(ids.EDITOR_INJECTS, "selected_rows"),
    State(ids.EDITOR_FIGURE_KEY, "data"), State(ids.EDITOR_ORIGIN, "data"),
)
def check(data: Any, selected_rows: Any, known_key: str | None, origin: str | None) -> tuple:
    """Check the scenario on every change; redraw the chart when its areas changed."""
    bundled, authored = _names()
    return check_view(data, selected_rows, known_key, bundled=bundled, authored=authored,
                      origin=origin)


@auth.callback(
    "coordinator",
    Output(ids.EDITOR_RESULT, "children"), Output(ids.EDITOR_ORIGIN, "data"),
    Input(ids.EDITOR_SAVE, "n_clicks"),
    State(ids.EDITOR_STORE, "data"), State(ids.EDITOR_ORIGIN, "data"),
    prevent_initial_call=True,
)
def save(n_clicks: int | None, data: Any, origin: str | None) -> tuple:
    """Save the scenario held in the store (checked again: a refused save writes nothing)."""
    if not n_clicks:
        raise dash.exceptions.PreventUpdate
    services = current()
    return save_action(data, origin, settings=services.settings, engine=services.engine,
                       actor=auth.current_actor(), now=datetime.now(timezone.utc))
