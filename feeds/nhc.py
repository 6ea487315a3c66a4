"""NHC tropical cyclones: each active storm's forecast cone and coastal watches/warnings.

Where the data comes from. ``CurrentStorms.json`` lists the active storms (Atlantic, East and
Central Pacific) with position, classification, intensity and links to GIS products. The areas
come from the storm's 5-day GIS zip (``trackCone.zipFile``; ``forecastTrack.zipFile`` as a
fallback): shapefile layers ``*_5day_pgn`` (cone), ``*_5day_lin`` (track), ``*_5day_pts``
(forecast points) and ``*_ww_wwlin`` (coast under a watch or warning, ``TCWW`` = HWR, HWA, TWR,
TWA). When ``windWatchesWarnings`` links a zip of its own, it is read too. Zips are read in
memory with pyogrio (GDAL ``/vsimem/``); the shapefiles are lon/lat on GDAL's authalic sphere,
used as WGS 84 degrees (the datum shift is far below the cone's precision).

Hazards, ids stable per storm (the advisory number is a property, not part of the id):

- ``nhc:<storm id>:cone`` (e.g. ``nhc:al182012:cone``): the union of the cone polygons (3- and
  5-day), ``geometry_method="polygon"``. Without a usable GIS zip the storm is kept *unplaced*
  (no geometry, position in ``properties``) and counted in :attr:`ParseResult.unplaced`.
- ``nhc:<storm id>:ww:<TCWW>``: one per watch/warning type. The segments are coastline lines,
  so each is buffered geodesically by :data:`WW_BUFFER_KM` (in a local azimuthal equidistant
  plane on WGS 84, then back to lon/lat) and the buffers are merged; ``geometry_method=
  "polygon"``. The segments mark coast whose NWS coastal zones are under the watch/warning;
  those zones reach typically 20-60 km inland, so 50 km covers most of them. Inland zones get
  their own NWS alerts (the NWS feed). A one-point segment (NHC uses these for single points
  such as a cape) is buffered as a point.

Severity (CAP), the more severe of class and intensity (a 40 kt potential tropical cyclone is
``moderate``, not ``minor``):

- class: major hurricane (``HU``/``TY`` at >= 96 kt) ``extreme``; ``HU``/``TY`` ``severe``;
  ``TS``/``STS`` ``moderate``; ``TD``/``STD``/``PTC``/post-tropical and lows ``minor``;
- intensity: >= 96 kt ``extreme``, >= 64 kt ``severe``, >= 34 kt ``moderate``, else ``minor``;
- watches/warnings: HWR ``extreme``, HWA ``severe``, TWR ``severe``, TWA ``moderate``
  (warnings ``expected``/``likely``, watches and cones ``future``/``possible``).

Shapes crossing the antimeridian (Central Pacific) are brought into [-180, 180] and split there
(:func:`layers.shapes.normalize_longitudes`); invalid shapes are repaired. A GIS zip whose
storm id differs from the storm's is not used (the storm stays unplaced).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyogrio
import pyogrio.errors
import shapely
from pyogrio.raw import read as read_layer
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from feeds import FeedError, FeedFormatError
from feeds.base import FetchContext
from feeds.model import Hazard, ParseResult, check_now, parse_iso_utc
from layers.shapes import (
    aeqd_forward,
    aeqd_inverse,
    repair,
    split_at_antimeridian,
    unwrap_longitudes,
)

logger = logging.getLogger(__name__)

SOURCE = "nhc"

#: Inland (and seaward) reach of a watch/warning along its coastline segments, km.
WW_BUFFER_KM: Mapping[str, float] = {"HWR": 50.0, "HWA": 50.0, "TWR": 50.0, "TWA": 50.0}

#: TCWW code -> (event, CAP severity, urgency, certainty).
WW_TYPES: Mapping[str, tuple[str, str, str, str]] = {
    "HWR": ("Hurricane Warning", "extreme", "expected", "likely"),
    "HWA": ("Hurricane Watch", "severe", "future", "possible"),
    "TWR": ("Tropical Storm Warning", "severe", "expected", "likely"),
    "TWA": ("Tropical Storm Watch", "moderate", "future", "possible"),
}

MAJOR_HURRICANE_KT = 96
HURRICANE_KT = 64
TROPICAL_STORM_KT = 34

#: Classification codes of CurrentStorms.json and the GIS ``STORMTYPE`` field.
CLASS_NAMES: Mapping[str, str] = {
    "HU": "Hurricane", "TY": "Typhoon", "MH": "Major Hurricane", "TS": "Tropical Storm",
    "STS": "Subtropical Storm", "SS": "Subtropical Storm", "TD": "Tropical Depression",
    "STD": "Subtropical Depression", "SD": "Subtropical Depression",
    "PTC": "Potential Tropical Cyclone", "PC": "Post-Tropical Cyclone",
    "EX": "Extratropical Cyclone", "LO": "Low", "DB": "Disturbance", "WV": "Tropical Wave",
}
_CLASS_SEVERITY: Mapping[str, str] = {
    "MH": "extreme", "HU": "severe", "TY": "severe", "TS": "moderate", "STS": "moderate",
    "SS": "moderate", "TD": "minor", "STD": "minor", "SD": "minor", "PTC": "minor",
    "PC": "minor", "EX": "minor", "LO": "minor", "DB": "minor", "WV": "minor",
}
_RANK = ("extreme", "severe", "moderate", "minor", "unknown")

#: How long a fetched GIS zip is reused for the same storm update (URLs carry the advisory).
GIS_CACHE_MAX_AGE_S = 6 * 3600.0
#: Features a GIS layer may hold (a 5-day product has a few dozen); a damaged .dbf header
#: can claim billions, for which pyogrio would allocate arrays before reading one.
MAX_GIS_FEATURES = 10_000

_STORM_ID = re.compile(r"^(al|ep|cp)\d{6}$")
_LAYER_STORM_ID = re.compile(r"^((?:al|ep|cp)\d{6})", re.IGNORECASE)
_LATLON = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)\s*([NSEW])\s*$", re.IGNORECASE)
_LINE_DENSIFY_DEG = 0.1     # lon/lat edges are densified before projecting
_PLANE_DENSIFY_M = 2_000.0  # buffer edges are densified before projecting back


# ------------------------------------------------------------------------------------ records


@dataclasses.dataclass(frozen=True)
class Storm:
    """One entry of ``CurrentStorms.json``, validated."""

    storm_id: str                  # "ep072026"
    name: str
    classification: str            # "TS", "HU", ...
    intensity_kt: int | None
    pressure_mb: int | None
    lat: float
    lon: float
    last_update: datetime | None   # None only for a storm known from its GIS files alone
    advisory: str = ""
    bin_number: str = ""
    movement_dir_deg: int | None = None
    movement_speed: int | None = None
    cone_zip_url: str = ""
    ww_zip_url: str = ""
    advisory_url: str = ""


@dataclasses.dataclass(frozen=True)
class StormGis:
    """What one GIS zip (or its GeoJSON conversions) holds for one storm and advisory."""

    storm_id: str                               # from layer names or attributes; "" unknown
    storm_name: str = ""
    storm_type: str = ""
    advisory: str = ""
    issued: datetime | None = None
    cone: BaseGeometry | None = None            # union of the cone polygons, lon/lat
    forecast_hours: int | None = None           # longest FCSTPRD of the cone
    track: tuple[BaseGeometry, ...] = ()        # forecast track lines
    points: tuple[tuple[float, float, float | None, float | None], ...] = ()  # lon, lat, tau, kt
    warnings: Mapping[str, tuple[BaseGeometry, ...]] = dataclasses.field(default_factory=dict)
    skipped: int = 0
    problems: tuple[str, ...] = ()

    @property
    def intensity_kt(self) -> int | None:
        """Maximum wind at the earliest forecast point (the current intensity), if known."""
        known = [p for p in self.points if p[2] is not None and p[3] is not None]
        if not known:
            return None
        return round(min(known, key=lambda p: p[2])[3])  # type: ignore[arg-type,return-value]

    def merged(self, other: StormGis) -> StormGis:
        """This product completed by another zip of the same storm (a separate ww zip)."""
        warnings = {k: tuple(v) for k, v in self.warnings.items()}
        for code, segments in other.warnings.items():
            warnings[code] = warnings.get(code, ()) + tuple(segments)
        return dataclasses.replace(
            self,
            cone=self.cone if self.cone is not None else other.cone,
            forecast_hours=self.forecast_hours or other.forecast_hours,
            track=self.track or other.track, points=self.points or other.points,
            warnings=warnings, skipped=self.skipped + other.skipped,
            problems=self.problems + other.problems,
            advisory=self.advisory or other.advisory,
        )


# ------------------------------------------------------------------------------ small parsers


def _parse_time(value: Any, name: str) -> datetime:
    """An ISO 8601 time with an offset (``Z`` allowed), as UTC."""
    return parse_iso_utc(value, name)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return round(number)


def _coordinate(numeric: Any, text: Any, name: str, limit: float) -> float:
    """Degrees from ``latitudeNumeric`` (preferred) or a string like ``"15.2N"``."""
    value: float | None = None
    if isinstance(numeric, int | float) and not isinstance(numeric, bool):
        value = float(numeric)
    elif isinstance(text, str):
        match = _LATLON.match(text)
        if match:
            value = float(match.group(1))
            if match.group(2).upper() in "SW":
                value = -value
    if value is None or not math.isfinite(value) or abs(value) > limit:
        raise ValueError(f"{name} must be degrees within ±{limit:g}, got {numeric!r}/{text!r}")
    return value


def _link(storm: Mapping[str, Any], product: str, key: str) -> str:
    entry = storm.get(product)
    if isinstance(entry, Mapping):
        value = entry.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return ""


def _storm(item: Any) -> Storm:
    """One ``activeStorms`` entry as a :class:`Storm` (``ValueError`` says what is wrong)."""
    if not isinstance(item, Mapping):
        raise ValueError(f"a storm must be an object, got {type(item).__name__}")
    storm_id = item.get("id")
    if not isinstance(storm_id, str) or not _STORM_ID.match(storm_id.lower()):
        raise ValueError(f"id must look like 'al182012', got {storm_id!r}")
    classification = item.get("classification")
    if not isinstance(classification, str) or not classification.strip():
        raise ValueError(f"classification missing, got {classification!r}")
    name = item.get("name")
    advisory = ""
    for product in ("trackCone", "forecastAdvisory", "publicAdvisory"):
        entry = item.get(product)
        if isinstance(entry, Mapping) and isinstance(entry.get("advNum"), str):
            advisory = entry["advNum"]
            break
    speed = item.get("movementSpeed")
    direction = item.get("movementDir")
    return Storm(
        storm_id=storm_id.lower(),
        name=name.strip() if isinstance(name, str) else "",
        classification=classification.strip().upper(),
        intensity_kt=_optional_int(item.get("intensity"), "intensity"),
        pressure_mb=_optional_int(item.get("pressure"), "pressure"),
        lat=_coordinate(item.get("latitudeNumeric"), item.get("latitude"), "latitude", 90.0),
        lon=_coordinate(item.get("longitudeNumeric"), item.get("longitude"), "longitude", 180.0),
        last_update=_parse_time(item.get("lastUpdate"), "lastUpdate"),
        advisory=advisory,
        bin_number=item["binNumber"] if isinstance(item.get("binNumber"), str) else "",
        movement_dir_deg=_optional_int(direction, "movementDir"),
        movement_speed=_optional_int(speed, "movementSpeed"),
        cone_zip_url=(_link(item, "trackCone", "zipFile")
                      or _link(item, "forecastTrack", "zipFile")),
        ww_zip_url=_link(item, "windWatchesWarnings", "zipFile"),
        advisory_url=_link(item, "publicAdvisory", "url"),
    )


def read_current_storms(payload: Any) -> tuple[tuple[Storm, ...], int, tuple[str, ...]]:
    """The storms of a ``CurrentStorms.json`` payload, and the skipped count and reasons.

    Raises :class:`FeedFormatError` when the payload is not an object with an
    ``activeStorms`` list (an empty list is fine: a quiet season).
    """
    if not isinstance(payload, Mapping):
        raise FeedFormatError(f"CurrentStorms must be a JSON object, got {type(payload).__name__}")
    items = payload.get("activeStorms")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise FeedFormatError(
            f"CurrentStorms.activeStorms must be a list, got {type(items).__name__}")
    storms: list[Storm] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            storm = _storm(item)
            if storm.storm_id in seen:
                raise ValueError(f"duplicate storm id {storm.storm_id}")
        except ValueError as exc:
            problems.append(f"activeStorms[{index}]: {exc}")
            continue
        seen.add(storm.storm_id)
        storms.append(storm)
    return tuple(storms), len(problems), tuple(problems)


# ----------------------------------------------------------------------------- GIS products


def _wkb_single_point_line(wkb: bytes) -> BaseGeometry | None:
    """A 2-D WKB LineString of exactly one point as a Point (GEOS refuses such lines)."""
    if len(wkb) != 25:
        return None
    order = "<" if wkb[0] == 1 else ">"
    kind, count = struct.unpack(order + "II", wkb[1:9])
    if kind != 2 or count != 1:
        return None
    x, y = struct.unpack(order + "dd", wkb[9:25])
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return shapely.Point(x, y)


def _geometry_from_wkb(wkb: Any) -> BaseGeometry | None:
    if wkb is None:
        return None
    try:
        return shapely.from_wkb(wkb)
    except shapely.errors.GEOSException:
        point = _wkb_single_point_line(bytes(wkb))
        if point is None:
            raise
        return point


def _geometry_from_geojson(value: Any) -> BaseGeometry | None:
    """A GeoJSON geometry; a one-position LineString becomes a Point."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"geometry must be an object, got {type(value).__name__}")
    coords = value.get("coordinates")
    if value.get("type") == "LineString" and isinstance(coords, list) and len(coords) == 1:
        value = {"type": "Point", "coordinates": coords[0]}
    try:
        with np.errstate(invalid="ignore"):  # NaN vertices: refused by _collect_gis
            geom = shapely.geometry.shape(value)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError,
            shapely.errors.ShapelyError) as exc:
        raise ValueError(f"geometry does not parse: {exc}") from None
    return geom


def _layer_kind(name: str) -> str | None:
    lowered = name.lower()
    for suffix, kind in (("_5day_pgn", "cone"), ("_5day_lin", "track"), ("_5day_pts", "points"),
                         ("_5day_ptn", "points"), ("_ww_wwlin", "warnings")):
        if lowered.endswith(suffix):
            return kind
    return None


def _advdate(value: Any) -> datetime | None:
    """The GIS ``ADVDATE`` as UTC when it is the ``yymmdd/hhmm`` form (2012-era products)."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"(\d{2})(\d{2})(\d{2})/(\d{2})(\d{2})", value.strip())
    if not match:
        return None
    yy, mm, dd, hh, mi = (int(g) for g in match.groups())
    try:
        return datetime(2000 + yy, mm, dd, hh, mi, tzinfo=timezone.utc)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number != 9999.0 else None


def _storm_id_from_attributes(attrs: Mapping[str, Any]) -> str:
    basin = _text(attrs.get("BASIN")).lower()
    number = _number(attrs.get("STORMNUM"))
    issued = _advdate(attrs.get("ADVDATE"))
    if basin in ("al", "ep", "cp") and number is not None and issued is not None:
        return f"{basin}{int(number):02d}{issued.year}"
    return ""


def _collect_gis(features: Iterable[tuple[str, str, Mapping[str, Any], Any]],
                 storm_id: str) -> StormGis:
    """Build a :class:`StormGis` from ``(kind, label, attributes, geometry-or-error)`` rows."""
    cones: list[BaseGeometry] = []
    periods: list[int] = []
    tracks: list[BaseGeometry] = []
    points: list[tuple[float, float, float | None, float | None]] = []
    warnings: dict[str, list[BaseGeometry]] = {}
    problems: list[str] = []
    first: Mapping[str, Any] | None = None
    for kind, label, attrs, geom in features:
        if isinstance(geom, Exception):
            problems.append(f"{label}: {geom}")
            continue
        if first is None:
            first = attrs
        if geom is None or geom.is_empty:
            problems.append(f"{label}: no geometry")
            continue
        coords = shapely.get_coordinates(geom)
        if not np.isfinite(coords).all() or np.abs(coords[:, 0]).max() > 360.0 \
                or np.abs(coords[:, 1]).max() > 90.0:
            problems.append(f"{label}: coordinates out of range")
            continue
        if kind == "cone":
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                problems.append(f"{label}: cone is a {geom.geom_type}, not a polygon")
                continue
            cones.append(geom)
            period = _number(attrs.get("FCSTPRD"))
            if period is not None:
                periods.append(int(period))
        elif kind == "track":
            tracks.append(geom)
        elif kind == "points":
            if geom.geom_type != "Point":
                problems.append(f"{label}: forecast point is a {geom.geom_type}")
                continue
            points.append((geom.x, geom.y, _number(attrs.get("TAU")),
                           _number(attrs.get("MAXWIND"))))
        elif kind == "warnings":
            code = _text(attrs.get("TCWW")).upper()
            if code not in WW_TYPES:
                problems.append(f"{label}: unknown TCWW {code!r}")
                continue
            if geom.geom_type not in ("LineString", "MultiLineString", "Point", "MultiPoint"):
                problems.append(f"{label}: watch/warning is a {geom.geom_type}")
                continue
            warnings.setdefault(code, []).append(geom)
    attrs = first or {}
    for line in problems:
        logger.warning("nhc: GIS feature skipped: %s", line)
    cone = None
    pieces = [p for p in (_polygonal(c) for c in cones) if p is not None]
    if pieces:  # each piece normalised first: a union of jumping rings is not defined
        cone = _polygonal(shapely.union_all(pieces))
    return StormGis(
        storm_id=storm_id or _storm_id_from_attributes(attrs),
        storm_name=_text(attrs.get("STORMNAME")).title(),
        storm_type=_text(attrs.get("STORMTYPE")).upper(),
        advisory=_text(attrs.get("ADVISNUM")),
        issued=_advdate(attrs.get("ADVDATE")),
        cone=cone,
        forecast_hours=max(periods) if periods else None,
        track=tuple(tracks),
        points=tuple(points),
        warnings={code: tuple(segments) for code, segments in warnings.items()},
        skipped=len(problems),
        problems=tuple(problems),
    )


def read_gis_zip(data: bytes) -> StormGis:
    """The cone, track, points and watches/warnings of an NHC GIS zip, read in memory.

    Raises :class:`FeedFormatError` when the bytes are not a readable zip of shapefiles or
    hold none of the known layers.
    """
    if not isinstance(data, bytes | bytearray) or not data:
        raise FeedFormatError("GIS zip must be non-empty bytes")
    try:
        layers = pyogrio.list_layers(bytes(data))
    except Exception as exc:  # damaged files fail in GDAL and pyogrio in many ways
        raise FeedFormatError(f"GIS zip is not readable: {exc}") from exc
    rows: list[tuple[str, str, Mapping[str, Any], Any]] = []
    storm_id = ""
    for name, _geometry_type in layers:
        kind = _layer_kind(str(name))
        if kind is None:
            continue
        match = _LAYER_STORM_ID.match(str(name))
        if match and not storm_id:
            storm_id = match.group(1).lower()
        try:
            count = pyogrio.read_info(bytes(data), layer=str(name))["features"]
            if count > MAX_GIS_FEATURES:
                raise FeedFormatError(f"GIS layer {name} claims {count} features, more than "
                                      f"{MAX_GIS_FEATURES}")
            meta, _fids, geometries, fields = read_layer(bytes(data), layer=str(name))
            crs = meta.get("crs")
            geographic = not crs or CRS.from_user_input(crs).is_geographic
        except FeedFormatError:
            raise
        except Exception as exc:  # a damaged .shp, .dbf or .prj: DataSourceError, CRSError,
            # UnicodeDecodeError from pyogrio reading a text field, and others
            raise FeedFormatError(f"GIS layer {name} is not readable: "
                                  f"{type(exc).__name__}: {exc}") from exc
        if not geographic:
            raise FeedFormatError(f"GIS layer {name} is not in lon/lat: {crs}")
        if geometries is None:
            raise FeedFormatError(f"GIS layer {name} has no geometry (no .shp)")
        columns = [str(c) for c in meta["fields"]]
        for index, wkb in enumerate(geometries):
            attrs = {column: fields[j][index] for j, column in enumerate(columns)}
            label = f"{name}[{index}]"
            try:
                geom: Any = _geometry_from_wkb(wkb)
            except shapely.errors.GEOSException as exc:
                geom = ValueError(f"geometry does not parse: {exc}")
            rows.append((kind, label, attrs, geom))
    if not rows and not any(_layer_kind(str(n)) for n, _ in layers):
        raise FeedFormatError(
            f"GIS zip has none of the 5-day or watch/warning layers "
            f"(layers: {', '.join(str(n) for n, _ in layers) or 'none'})")
    return _collect_gis(rows, storm_id)


def read_gis_geojson(
    *, cone: Any = None, track: Any = None, points: Any = None, warnings: Any = None
) -> StormGis:
    """The same products from GeoJSON conversions of the layers (FeatureCollections)."""
    rows: list[tuple[str, str, Mapping[str, Any], Any]] = []
    given = {"cone": cone, "track": track, "points": points, "warnings": warnings}
    if all(v is None for v in given.values()):
        raise ValueError("give at least one of cone, track, points, warnings")
    for kind, collection in given.items():
        if collection is None:
            continue
        if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
            raise FeedFormatError(f"{kind} must be a GeoJSON FeatureCollection")
        features = collection.get("features")
        if not isinstance(features, list):
            raise FeedFormatError(f"{kind}.features must be a list")
        for index, feature in enumerate(features):
            label = f"{kind}[{index}]"
            if not isinstance(feature, Mapping):
                rows.append((kind, label, {}, ValueError("feature must be an object")))
                continue
            attrs = feature.get("properties") or {}
            if not isinstance(attrs, Mapping):
                rows.append((kind, label, {}, ValueError("properties must be an object")))
                continue
            try:
                geom: Any = _geometry_from_geojson(feature.get("geometry"))
            except ValueError as exc:
                geom = exc
            rows.append((kind, label, attrs, geom))
    return _collect_gis(rows, "")


# ------------------------------------------------------------------------------- geometry


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """Valid Polygon/MultiPolygon within [-180, 180], or None when nothing areal is left."""
    if geom is None or geom.is_empty:
        return None
    minx, _, maxx, _ = geom.bounds
    if maxx - minx > 180.0:  # edges jumping across ±180: read them the short way round
        geom = unwrap_longitudes(geom)
    geom, _ = repair(geom)
    geom = split_at_antimeridian(geom)
    geom, _ = repair(geom)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polygons: list[BaseGeometry] = []
    for part in parts:
        polygons.extend(shapely.get_parts(part) if part.geom_type == "MultiPolygon" else [part])
    polygons = [p for p in polygons if not p.is_empty and p.area > 0]
    if not polygons:
        return None
    if len(polygons) == 1:
        return polygons[0]
    multi = shapely.MultiPolygon(polygons)
    if not multi.is_valid:
        multi = shapely.union_all(polygons)
    return multi


def _wrap180(values: np.ndarray) -> np.ndarray:
    return (values + 180.0) % 360.0 - 180.0


def _unwrap_line(geom: BaseGeometry) -> BaseGeometry:
    """A line whose longitudes jump across ±180 made continuous (points pass through)."""
    if geom.geom_type != "LineString":
        return geom
    xy = shapely.get_coordinates(geom)
    steps = _wrap180(np.diff(xy[:, 0]))
    xy[:, 0] = xy[0, 0] + np.concatenate(([0.0], np.cumsum(steps)))
    return shapely.LineString(xy)


def _buffer_part(part: BaseGeometry, distance_m: float) -> BaseGeometry:
    """One line or point buffered in its own azimuthal equidistant plane, back in lon/lat."""
    line = _unwrap_line(part)
    if line.geom_type == "LineString":
        line = shapely.segmentize(line, _LINE_DENSIFY_DEG)
    lon0, lat0 = (float(v) for v in shapely.get_coordinates(line.centroid)[0])

    def forward(xy: np.ndarray) -> np.ndarray:
        x, y = aeqd_forward(lon0, lat0, xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    def inverse(xy: np.ndarray) -> np.ndarray:
        lon, lat = aeqd_inverse(lon0, lat0, xy[:, 0], xy[:, 1])
        return np.column_stack([lon0 + _wrap180(lon - lon0), lat])

    planar = shapely.buffer(shapely.transform(line, forward), distance_m, quad_segs=16)
    return shapely.transform(shapely.segmentize(planar, _PLANE_DENSIFY_M), inverse)


def buffer_geodesic(geom: BaseGeometry, distance_km: float) -> BaseGeometry | None:
    """Lines or points grown by ``distance_km`` on WGS 84, as a (Multi)Polygon in lon/lat.

    Each part is projected to an azimuthal equidistant plane centred on it (exact distances
    from the centre, little distortion over a few hundred km), buffered in metres and
    projected back; the pieces are merged and split at the antimeridian if they cross it.
    """
    if not (isinstance(distance_km, int | float) and math.isfinite(distance_km)
            and distance_km > 0):
        raise ValueError(f"distance_km must be a finite number > 0, got {distance_km!r}")
    pieces = [_buffer_part(part, distance_km * 1000.0)
              for part in shapely.get_parts(shapely.get_parts(geom)) if not part.is_empty]
    if not pieces:
        return None
    return _polygonal(shapely.union_all(pieces))


# ------------------------------------------------------------------------------- severity


def intensity_severity(intensity_kt: float | None) -> str:
    """CAP severity from maximum sustained wind (kt): 96+ extreme, 64+ severe, 34+ moderate."""
    if intensity_kt is None:
        return "unknown"
    if intensity_kt >= MAJOR_HURRICANE_KT:
        return "extreme"
    if intensity_kt >= HURRICANE_KT:
        return "severe"
    if intensity_kt >= TROPICAL_STORM_KT:
        return "moderate"
    return "minor"


def storm_severity(classification: str, intensity_kt: float | None) -> str:
    """The more severe of the classification's and the intensity's CAP severity."""
    by_class = _CLASS_SEVERITY.get(classification.upper(), "unknown")
    if classification.upper() in ("HU", "TY") and intensity_kt is not None \
            and intensity_kt >= MAJOR_HURRICANE_KT:
        by_class = "extreme"
    by_wind = intensity_severity(intensity_kt)
    return min(by_class, by_wind, key=_RANK.index)


def saffir_simpson(intensity_kt: float | None) -> int | None:
    """Saffir-Simpson category (1-5) of a hurricane-force intensity, else None."""
    if intensity_kt is None or intensity_kt < HURRICANE_KT:
        return None
    for category, floor in ((5, 137), (4, 113), (3, 96), (2, 83)):
        if intensity_kt >= floor:
            return category
    return 1


def _source_severity(classification: str, intensity_kt: int | None) -> str:
    text = classification
    if intensity_kt is not None:
        text += f" {intensity_kt} kt"
        category = saffir_simpson(intensity_kt)
        if category is not None and classification in ("HU", "TY", "MH"):
            text += f" (Cat {category})"
    return text


# -------------------------------------------------------------------------------- hazards


def _storm_label(classification: str, name: str) -> str:
    kind = CLASS_NAMES.get(classification, classification or "Tropical cyclone")
    return f"{kind} {name}".strip()


def _storm_hazards(storm: Storm, gis: StormGis | None, gis_status: str) -> list[Hazard]:
    """The cone hazard (placed or not) and the watch/warning hazards of one storm."""
    label = _storm_label(storm.classification, storm.name)
    advisory = (gis.advisory if gis is not None and gis.advisory else storm.advisory)
    common = {
        "storm_id": storm.storm_id, "storm_name": storm.name,
        "classification": storm.classification, "advisory": advisory,
    }
    cone = gis.cone if gis is not None else None
    properties = {
        **common,
        "intensity_kt": storm.intensity_kt, "pressure_mb": storm.pressure_mb,
        "lat": storm.lat, "lon": storm.lon, "bin_number": storm.bin_number,
        "movement_dir_deg": storm.movement_dir_deg, "movement_speed": storm.movement_speed,
        "forecast_hours": gis.forecast_hours if gis is not None else None,
        "gis": gis_status,
    }
    hazards = [Hazard(
        hazard_id=f"{SOURCE}:{storm.storm_id}:cone",
        source=SOURCE,
        event=label,
        category="tropical_cyclone",
        severity=storm_severity(storm.classification, storm.intensity_kt),
        urgency="future",
        certainty="possible",
        source_severity=_source_severity(storm.classification, storm.intensity_kt),
        sent=storm.last_update,
        effective=storm.last_update,
        headline=f"{label}: forecast cone" + (f", advisory {advisory}" if advisory else ""),
        area_desc="Forecast cone of the storm centre" if cone is not None
        else f"Storm centre at {storm.lat:.1f}, {storm.lon:.1f} (no cone available)",
        url=storm.advisory_url,
        geometry=cone,
        geometry_method="polygon" if cone is not None else None,
        properties=properties,
    )]
    if gis is None:
        return hazards
    for code in sorted(gis.warnings, key=list(WW_TYPES).index):
        event, severity, urgency, certainty = WW_TYPES[code]
        buffer_km = WW_BUFFER_KM[code]
        area = buffer_geodesic(shapely.GeometryCollection(list(gis.warnings[code])), buffer_km)
        hazards.append(Hazard(
            hazard_id=f"{SOURCE}:{storm.storm_id}:ww:{code}",
            source=SOURCE,
            event=event,
            category="tropical_cyclone",
            severity=severity,
            urgency=urgency,
            certainty=certainty,
            source_severity=code,
            sent=storm.last_update,
            effective=storm.last_update,
            headline=f"{event} for {label}" + (f", advisory {advisory}" if advisory else ""),
            area_desc=f"Coast under a {event.lower()}, {buffer_km:g} km either side",
            url=storm.advisory_url,
            geometry=area,
            geometry_method="polygon" if area is not None else None,
            properties={**common, "tcww": code, "segments": len(gis.warnings[code]),
                        "buffer_km": buffer_km},
        ))
    return hazards


def _gis_matches(storm: Storm, gis: StormGis) -> bool:
    return not gis.storm_id or gis.storm_id == storm.storm_id


def parse_current_storms(
    payload: Any, *, now: datetime, gis: Mapping[str, StormGis] | None = None
) -> ParseResult:
    """Hazards of ``CurrentStorms.json``: each storm's cone and watches/warnings.

    ``gis`` maps storm ids to their GIS products; a storm without one (or with one of another
    storm) is kept unplaced with its position in ``properties`` and counted as unplaced.
    """
    check_now(now)
    storms, skipped, problems = read_current_storms(payload)
    for line in problems:
        logger.warning("nhc: skipped %s", line)
    gis = gis or {}
    hazards: list[Hazard] = []
    gis_skipped = 0
    gis_problems: list[str] = []
    for storm in storms:
        product = gis.get(storm.storm_id)
        status = "ok"
        if product is None:
            status = "unavailable"
        elif not _gis_matches(storm, product):
            logger.warning("nhc: GIS product of %s given for %s; not used", product.storm_id,
                           storm.storm_id)
            product, status = None, "mismatch"
        elif product.cone is None:
            status = "no cone"
        if product is not None:
            gis_skipped += product.skipped
            gis_problems.extend(f"{storm.storm_id} {line}" for line in product.problems)
        hazards.extend(_storm_hazards(storm, product, status))
    unplaced = sum(1 for h in hazards if not h.is_placed)
    logger.info("nhc: %d storms, %d hazards, %d unplaced, %d skipped", len(storms),
                len(hazards), unplaced, skipped + gis_skipped)
    return ParseResult(hazards=tuple(hazards), skipped=skipped + gis_skipped,
                       unplaced=unplaced, problems=problems + tuple(gis_problems))


def _storm_from_gis(gis: StormGis) -> Storm:
    """A storm record made from the GIS attributes alone (no CurrentStorms entry)."""
    if not gis.storm_id:
        raise FeedFormatError("GIS product does not say which storm it is (no storm id)")
    first = min((p for p in gis.points if p[2] is not None), key=lambda p: p[2], default=None)
    if first is None and gis.cone is not None:
        centroid = gis.cone.representative_point()
        first = (centroid.x, centroid.y, None, None)
    if first is None:
        raise FeedFormatError(f"GIS product of {gis.storm_id} has neither points nor a cone")
    lon = (first[0] + 180.0) % 360.0 - 180.0
    return Storm(storm_id=gis.storm_id, name=gis.storm_name, classification=gis.storm_type,
                 intensity_kt=gis.intensity_kt, pressure_mb=None, lat=first[1], lon=lon,
                 last_update=gis.issued, advisory=gis.advisory)


def _parse_gis(gis: StormGis) -> ParseResult:
    storm = _storm_from_gis(gis)
    hazards = _storm_hazards(storm, gis, "ok" if gis.cone is not None else "no cone")
    return ParseResult(hazards=tuple(hazards), skipped=gis.skipped,
                       unplaced=sum(1 for h in hazards if not h.is_placed),
                       problems=gis.problems)


def parse_gis_zip(data: bytes, *, now: datetime) -> ParseResult:
    """Hazards of one GIS zip on its own (storm facts from its attributes)."""
    check_now(now)
    return _parse_gis(read_gis_zip(data))


def parse_gis_geojson(
    *, now: datetime, cone: Any = None, track: Any = None, points: Any = None,
    warnings: Any = None,
) -> ParseResult:
    """Hazards of GeoJSON conversions of one storm's GIS layers."""
    check_now(now)
    return _parse_gis(read_gis_geojson(cone=cone, track=track, points=points,
                                       warnings=warnings))


# --------------------------------------------------------------------------------- fetch


def _decode_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedFormatError(f"{what} is not JSON: {exc}") from exc


def _gis_urls(storm: Storm) -> Sequence[str]:
    urls = [u for u in (storm.cone_zip_url, storm.ww_zip_url) if u]
    return list(dict.fromkeys(urls))


def _fetch_gis(ctx: FetchContext, storm: Storm) -> StormGis | None:
    """The storm's GIS products (cached per URL and storm update), or None when unavailable.

    Zips are cached only once they read, so a cached zip is always usable.
    """
    product: StormGis | None = None
    for url in _gis_urls(storm):
        update = storm.last_update.isoformat() if storm.last_update else ""
        key = f"nhc:gis:{url}|{update}"
        data = ctx.cache.get(key, max_age_s=GIS_CACHE_MAX_AGE_S, now=ctx.now)
        try:
            if data is not None:
                gis = read_gis_zip(data)
            else:
                data = ctx.client.get(url, expect="binary").body
                gis = read_gis_zip(data)
                ctx.cache.put(key, data, now=ctx.now)
        except FeedError as exc:
            logger.warning("nhc: GIS zip for %s unavailable: %s", storm.storm_id, exc)
            continue
        product = gis if product is None else product.merged(gis)
    return product


def fetch(ctx: FetchContext) -> ParseResult:
    """Poll CurrentStorms.json, then each storm's GIS zip (a failed zip leaves it unplaced)."""
    fetched = ctx.client.get(ctx.settings.nhc_url, expect="json")
    if fetched.status == "not_modified":  # validators offered by the poller, which keeps its data
        raise FeedError("CurrentStorms not modified: nothing to parse")
    payload = _decode_json(fetched.body, "CurrentStorms")
    storms, _, _ = read_current_storms(payload)
    products: dict[str, StormGis] = {}
    for storm in storms:
        product = _fetch_gis(ctx, storm)
        if product is not None:
            products[storm.storm_id] = product
    return parse_current_storms(payload, now=ctx.now, gis=products)
