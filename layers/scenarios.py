"""Drill scenarios: scripted hazards (injects) that fire on a scenario clock.

A scenario is one GeoJSON FeatureCollection, ``data/scenarios/<name>.geojson``, with a
``"scenario"`` member at the top level (name, title, description, jurisdictions, duration, author,
sources) and one Feature per *inject*: a message that fires ``at_minutes`` after the start of the
drill, with an area (a Polygon or MultiPolygon, or a Point with ``radius_km``) and the CAP
fields of a real alert. The format is documented, with an example, in
``data/scenarios/README.md``.

* :func:`parse_scenario` — validate a scenario and make it a frozen :class:`Scenario`.
* :func:`scenario_to_geojson` — the inverse (``parse_scenario(scenario_to_geojson(s)) == s``).
* :func:`load_library` — every scenario of a directory (by default the bundled library).
* :func:`fired` / :func:`hazards_at` — what has fired, and the :class:`~feeds.model.Hazard`
  records in force, at a given minute of scenario time.

Scenario minutes map onto wall time 1:1 from the drill's start; an inject stops being in force
when it expires (``expires_minutes`` after it fired), when a later fired inject names it in
``supersedes`` (an advancing cone, an upgraded warning), or when a fired ``cancel`` names it.
Injects without ``expires_minutes`` stay in force until the drill is ended.

Geometry is normalised as the feed parsers do it: edges jumping across the antimeridian are
read the short way round, invalid shapes are repaired (:func:`layers.shapes.repair`) keeping
their polygonal parts, and shapes reaching beyond ±180 are split there (RFC 7946), so every
inject's area lies within [-180, 180].

Errors::

    ScenarioError (also ValueError)   a scenario that cannot be used; the message names the
                                      file, the feature number / inject id and the reason
    bad arguments of hazards_at/fired -> plain ValueError naming the argument

Pure: shapely (through :mod:`layers.shapes`) and json; no store, no Dash, no I/O but
:func:`load_library` reading the files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import shapely
import shapely.geometry
from shapely.errors import GeometryTypeError
from shapely.geometry.base import BaseGeometry

import settings
from feeds.model import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES, Hazard
from layers import shapes
from layers.schema import JURISDICTIONS

logger = logging.getLogger(__name__)

#: Where the bundled library lives.
LIBRARY_DIR = settings.BUNDLED_DATA_DIR / "scenarios"
FILE_SUFFIX = ".geojson"

#: Message types an inject may have (CAP's ``ack`` and ``error`` make no sense in a drill).
INJECT_MESSAGE_TYPES: tuple[str, ...] = ("alert", "update", "cancel")
#: Which real feed an inject imitates (for display); empty when unsaid.
SOURCE_STYLES: tuple[str, ...] = ("nws", "usgs", "nhc", "wildfire", "fema", "tsunami", "gdacs")
MAX_RADIUS_KM = 2000.0
MAX_NAME_LENGTH = 64
MAX_INJECTS = 200
#: Longitudes a drawn shape may use: one turn either side, for shapes drawn across ±180.
MAX_ABS_LONGITUDE = 360.0

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

SCENARIO_FIELDS: tuple[str, ...] = ("name", "title", "description", "jurisdictions",
                                    "duration_minutes", "author", "sources")
REQUIRED_PROPERTIES: tuple[str, ...] = ("inject_id", "at_minutes", "event", "category",
                                        "severity")
OPTIONAL_PROPERTIES: tuple[str, ...] = ("urgency", "certainty", "headline", "description",
                                        "instruction", "area_desc", "expires_minutes",
                                        "supersedes", "message_type", "source_style",
                                        "radius_km")
_TEXT_PROPERTIES: tuple[str, ...] = ("headline", "description", "instruction", "area_desc")


class ScenarioError(ValueError):
    """A scenario that cannot be used: names the file, the feature / inject and the reason."""


@dataclasses.dataclass(frozen=True)
class Inject:
    """One scripted message of a scenario, with its area and its time on the scenario clock."""

    inject_id: str                  # unique in its scenario, [a-z0-9-]
    at_minutes: float               # when it fires, minutes after the start (>= 0)
    expires_minutes: float | None   # minutes after firing; None: until the drill ends
    event: str                      # "Hurricane Warning"
    category: str                   # one of feeds.model.CATEGORIES
    severity: str                   # CAP, one of feeds.model.SEVERITIES
    urgency: str                    # CAP ("unknown" when unsaid)
    certainty: str                  # CAP ("unknown" when unsaid)
    headline: str
    description: str
    instruction: str
    area_desc: str
    message_type: str               # one of INJECT_MESSAGE_TYPES
    supersedes: tuple[str, ...]     # inject ids this one replaces or cancels (earlier ones)
    source_style: str               # one of SOURCE_STYLES, or ""
    geometry: BaseGeometry | None   # Polygon/MultiPolygon within [-180, 180]; None for a circle
    center_lon: float | None        # circles: geodesic circle on WGS 84
    center_lat: float | None
    radius_km: float | None

    @property
    def area(self) -> BaseGeometry:
        """The inject's area as a shape: its polygon, or its geodesic circle drawn (for maps)."""
        if self.geometry is not None:
            return self.geometry
        return shapes.geodesic_circle(self.center_lon, self.center_lat,  # type: ignore[arg-type]
                                      self.radius_km)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A drill scenario: what it is, where it plays, and its injects in firing order."""

    name: str                           # the file's stem, [a-z0-9-]
    title: str
    description: str
    jurisdictions: tuple[str, ...]      # USPS codes of layers.schema.JURISDICTIONS
    duration_minutes: float             # planned length of the drill
    author: str
    sources: str                        # what the geometry is based on
    injects: tuple[Inject, ...]         # sorted by at_minutes, then inject_id

    def inject(self, inject_id: str) -> Inject:
        """The inject with ``inject_id`` (KeyError naming it when there is none)."""
        for item in self.injects:
            if item.inject_id == inject_id:
                return item
        raise KeyError(f"scenario {self.name!r} has no inject {inject_id!r}")


# --------------------------------------------------------------------------------------------
# Parsing


class _Where:
    """Error messages that name the origin and, inside a feature, the feature and inject."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.feature: int | None = None
        self.inject_id: str | None = None

    def error(self, reason: str) -> ScenarioError:
        if self.feature is None:
            return ScenarioError(f"{self.origin}: {reason}")
        if self.inject_id is None:
            return ScenarioError(f"{self.origin}: feature {self.feature}: {reason}")
        return ScenarioError(
            f'{self.origin}: inject "{self.inject_id}" (feature {self.feature}): {reason}')


def _text(where: _Where, block: Mapping[str, Any], key: str, *, required: bool,
          field: str | None = None) -> str:
    label = field or key
    value = block.get(key)
    if value is None:
        if required:
            raise where.error(f"{label} is required")
        return ""
    if not isinstance(value, str):
        raise where.error(f"{label} must be a string, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise where.error(f"{label} must not be empty")
    return value


def _number(where: _Where, value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(f"{label} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise where.error(f"{label} must be a finite number, got {value!r}")
    return number


def _vocabulary(where: _Where, value: Any, label: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise where.error(f"{label} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _check_name(where: _Where, value: str, label: str) -> None:
    if len(value) > MAX_NAME_LENGTH or not _NAME_RE.match(value):
        raise where.error(
            f"{label} {value!r} must be 1 to {MAX_NAME_LENGTH} lowercase letters, digits and "
            "hyphens, starting with a letter or digit")


def _load_json(where: _Where, data: dict | str | bytes) -> dict:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise where.error(f"not UTF-8 text: {exc}") from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise where.error(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise where.error(f"expected a GeoJSON FeatureCollection object, got "
                          f"{type(data).__name__}")
    if data.get("type") != "FeatureCollection":
        raise where.error(f"expected a GeoJSON FeatureCollection, got type {data.get('type')!r}")
    return data


def _header(where: _Where, block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise where.error('the top-level "scenario" member is missing (an object with '
                          f"{', '.join(SCENARIO_FIELDS)})")
    unknown = sorted(set(block) - set(SCENARIO_FIELDS))
    if unknown:
        raise where.error(f"scenario has unknown fields {', '.join(unknown)}; allowed: "
                          f"{', '.join(SCENARIO_FIELDS)}")
    name = _text(where, block, "name", required=True, field="scenario name")
    _check_name(where, name, "scenario name")
    codes = block.get("jurisdictions")
    if not isinstance(codes, list) or not codes:
        raise where.error("scenario jurisdictions must be a non-empty list of USPS codes")
    for code in codes:
        if code not in JURISDICTIONS:
            raise where.error(f"scenario jurisdiction {code!r} is not one of "
                              f"{', '.join(JURISDICTIONS)}")
    if len(set(codes)) != len(codes):
        raise where.error(f"scenario jurisdictions repeat a code: {codes}")
    if "duration_minutes" not in block:
        raise where.error("scenario duration_minutes is required")
    duration = _number(where, block["duration_minutes"], "scenario duration_minutes")
    if duration <= 0:
        raise where.error(f"scenario duration_minutes must be > 0, got {duration:g}")
    return {
        "name": name,
        "title": _text(where, block, "title", required=True, field="scenario title"),
        "description": _text(where, block, "description", required=True,
                             field="scenario description"),
        "jurisdictions": tuple(codes),
        "duration_minutes": duration,
        "author": _text(where, block, "author", required=True, field="scenario author"),
        "sources": _text(where, block, "sources", required=True, field="scenario sources"),
    }


def _check_coordinates(where: _Where, value: Any, depth: int) -> None:
    """Positions nested ``depth`` levels deep: numbers, finite, lat within ±90."""
    if depth == 0:
        if (not isinstance(value, list | tuple) or len(value) < 2
                or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value)):
            raise where.error(f"bad geometry: a position must be [lon, lat], got {value!r}")
        lon, lat = float(value[0]), float(value[1])
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise where.error(f"bad geometry: position {value!r} is not finite")
        if not -90.0 <= lat <= 90.0:
            raise where.error(f"bad geometry: latitude {lat:g} is outside -90..90")
        if abs(lon) > MAX_ABS_LONGITUDE:
            raise where.error(f"bad geometry: longitude {lon:g} is outside "
                              f"-{MAX_ABS_LONGITUDE:g}..{MAX_ABS_LONGITUDE:g}")
        return
    if not isinstance(value, list | tuple) or not value:
        raise where.error("bad geometry: empty or malformed coordinates")
    for item in value:
        _check_coordinates(where, item, depth - 1)


def _polygonal(geom: BaseGeometry) -> tuple[BaseGeometry | None, bool]:
    """The shape as a valid Polygon/MultiPolygon within [-180, 180], and whether it was repaired.

    Same steps as the feed parsers: unwrap edges jumping across ±180, repair, split, repair.
    """
    geom = shapely.force_2d(geom)
    minx, _, maxx, _ = shapes.coordinate_bounds([geom])[0]
    if maxx - minx > 180.0:
        geom = shapes.unwrap_longitudes(geom)
    geom, repaired = shapes.repair(geom)
    geom = shapes.split_at_antimeridian(geom)
    geom, again = shapes.repair(geom)
    polygons: list[BaseGeometry] = []
    for part in shapely.get_parts(geom):
        for sub in (shapely.get_parts(part) if part.geom_type != "Polygon" else [part]):
            if sub.geom_type == "Polygon" and not sub.is_empty and sub.area > 0:
                polygons.append(sub)
    if not polygons:
        return None, repaired or again
    if len(polygons) == 1:
        return polygons[0], repaired or again
    multi = shapely.MultiPolygon(polygons)
    return (multi if multi.is_valid else shapely.union_all(polygons)), repaired or again


def _geometry(where: _Where, feature: dict, props: dict) -> dict[str, Any]:
    raw = feature.get("geometry")
    if not isinstance(raw, dict):
        raise where.error("geometry is missing (a Polygon, a MultiPolygon or a Point with "
                          "radius_km)")
    kind = raw.get("type")
    depth = {"Point": 0, "Polygon": 2, "MultiPolygon": 3}.get(kind)  # type: ignore[arg-type]
    if depth is None:
        raise where.error(f"geometry must be a Polygon, a MultiPolygon or a Point with "
                          f"radius_km; got {kind!r}")
    _check_coordinates(where, raw.get("coordinates"), depth)
    try:
        geom = shapely.geometry.shape(raw)
    except (KeyError, TypeError, ValueError, AttributeError, GeometryTypeError,
            shapely.errors.GEOSException) as exc:
        raise where.error(f"bad geometry: {exc}") from None
    if kind == "Point":
        if "radius_km" not in props:
            raise where.error("a Point inject needs radius_km (the circle's radius in km)")
        radius = _number(where, props["radius_km"], "radius_km")
        if not 0.0 < radius <= MAX_RADIUS_KM:
            raise where.error(f"radius_km must be > 0 and <= {MAX_RADIUS_KM:g}, got {radius:g}")
        lon = ((geom.x + 180.0) % 360.0) - 180.0 if abs(geom.x) > 180.0 else geom.x
        to_pole = min(shapes.WGS84.inv(lon, geom.y, lon, 90.0)[2],
                      shapes.WGS84.inv(lon, geom.y, lon, -90.0)[2]) / 1000.0
        if radius >= to_pole:
            raise where.error(f"a circle of radius_km {radius:g} around ({lon:g}, {geom.y:g}) "
                              "holds a pole")
        return {"geometry": None, "center_lon": float(lon), "center_lat": float(geom.y),
                "radius_km": radius}
    if "radius_km" in props:
        raise where.error(f"radius_km is only for Point injects; this one is a {kind}")
    if geom.is_empty:
        raise where.error(f"bad geometry: the {kind} is empty")
    shape, repaired = _polygonal(geom)
    if shape is None:
        raise where.error(f"bad geometry: the {kind} has no area")
    if repaired:
        logger.warning("%s: inject %s: invalid geometry repaired", where.origin,
                       where.inject_id)
    return {"geometry": shape, "center_lon": None, "center_lat": None, "radius_km": None}


def _inject(where: _Where, feature: Any, duration: float) -> Inject:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise where.error("expected a GeoJSON Feature")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise where.error("properties are missing")
    inject_id = props.get("inject_id")
    if not isinstance(inject_id, str):
        raise where.error("inject_id is required (a string of [a-z0-9-])")
    _check_name(where, inject_id, "inject_id")
    where.inject_id = inject_id
    unknown = sorted(set(props) - set(REQUIRED_PROPERTIES) - set(OPTIONAL_PROPERTIES))
    if unknown:
        raise where.error(f"unknown properties {', '.join(unknown)}; allowed: "
                          f"{', '.join(REQUIRED_PROPERTIES + OPTIONAL_PROPERTIES)}")
    for key in REQUIRED_PROPERTIES:
        if key not in props:
            raise where.error(f"{key} is required")
    at = _number(where, props["at_minutes"], "at_minutes")
    if at < 0:
        raise where.error(f"at_minutes must be >= 0, got {at:g}")
    if at > duration:
        raise where.error(f"at_minutes {at:g} is beyond the scenario's duration_minutes "
                          f"{duration:g}")
    expires = None
    if props.get("expires_minutes") is not None:
        expires = _number(where, props["expires_minutes"], "expires_minutes")
        if expires <= 0:
            raise where.error(f"expires_minutes must be > 0 (minutes after at_minutes), got "
                              f"{expires:g}")
    message_type = _vocabulary(where, props.get("message_type", "alert"), "message_type",
                               INJECT_MESSAGE_TYPES)
    supersedes = props.get("supersedes", [])
    if not isinstance(supersedes, list) or not all(isinstance(s, str) for s in supersedes):
        raise where.error("supersedes must be a list of inject ids")
    if len(set(supersedes)) != len(supersedes):
        raise where.error(f"supersedes repeats an inject id: {supersedes}")
    if message_type in ("update", "cancel") and not supersedes:
        article = "an" if message_type == "update" else "a"
        raise where.error(f"{article} {message_type} must name the injects it replaces in "
                          "supersedes")
    style = props.get("source_style", "")
    if style != "":
        _vocabulary(where, style, "source_style", SOURCE_STYLES)
    event = _text(where, props, "event", required=True)
    return Inject(
        inject_id=inject_id, at_minutes=at, expires_minutes=expires, event=event,
        category=_vocabulary(where, props["category"], "category", CATEGORIES),
        severity=_vocabulary(where, props["severity"], "severity", SEVERITIES),
        urgency=_vocabulary(where, props.get("urgency", "unknown"), "urgency", URGENCIES),
        certainty=_vocabulary(where, props.get("certainty", "unknown"), "certainty",
                              CERTAINTIES),
        **{key: _text(where, props, key, required=False) for key in _TEXT_PROPERTIES},
        message_type=message_type, supersedes=tuple(supersedes), source_style=style,
        **_geometry(where, feature, props),
    )


def _check_supersedes(where: _Where, injects: list[Inject], numbers: dict[str, int]) -> None:
    by_id = {item.inject_id: item for item in injects}
    for item in injects:
        where.feature, where.inject_id = numbers[item.inject_id], item.inject_id
        for target in item.supersedes:
            if target == item.inject_id:
                raise where.error("supersedes names the inject itself")
            if target not in by_id:
                raise where.error(f"supersedes names {target!r}, which is not an inject of "
                                  "this scenario")
            earlier = by_id[target]
            if earlier.at_minutes >= item.at_minutes:
                raise where.error(
                    f"supersedes {target!r}, which fires at minute {earlier.at_minutes:g}: "
                    f"only injects firing before this one (minute {item.at_minutes:g}) can be "
                    "superseded")
            if earlier.message_type == "cancel":
                raise where.error(f"supersedes {target!r}, which is a cancel")


def parse_scenario(data: dict | str | bytes, *, origin: str = "scenario") -> Scenario:
    """Validate a scenario (a parsed dict, or JSON text) and return it as a :class:`Scenario`.

    Every rule of ``data/scenarios/README.md`` is checked; the first violation raises
    :class:`ScenarioError` naming ``origin`` (the file), the feature number and inject id, and
    the reason.
    """
    where = _Where(origin)
    collection = _load_json(where, data)
    header = _header(where, collection.get("scenario"))
    features = collection.get("features")
    if not isinstance(features, list) or not features:
        raise where.error("features must be a non-empty list of injects")
    if len(features) > MAX_INJECTS:
        raise where.error(f"at most {MAX_INJECTS} injects, got {len(features)}")
    injects: list[Inject] = []
    numbers: dict[str, int] = {}
    for number, feature in enumerate(features, start=1):
        where.feature, where.inject_id = number, None
        item = _inject(where, feature, header["duration_minutes"])
        if item.inject_id in numbers:
            raise where.error(f"duplicate inject_id (also feature {numbers[item.inject_id]})")
        numbers[item.inject_id] = number
        injects.append(item)
    _check_supersedes(where, injects, numbers)
    injects.sort(key=lambda item: (item.at_minutes, item.inject_id))
    return Scenario(**header, injects=tuple(injects))


# --------------------------------------------------------------------------------------------
# Writing and loading


def _as_lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_as_lists(v) for v in value]
    return value


def _minutes(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def inject_to_feature(item: Inject) -> dict[str, Any]:
    """One inject as the GeoJSON Feature of the file format (defaults left out)."""
    props: dict[str, Any] = {"inject_id": item.inject_id, "at_minutes": _minutes(item.at_minutes)}
    if item.expires_minutes is not None:
        props["expires_minutes"] = _minutes(item.expires_minutes)
    if item.message_type != "alert":
        props["message_type"] = item.message_type
    if item.supersedes:
        props["supersedes"] = list(item.supersedes)
    props.update(event=item.event, category=item.category, severity=item.severity)
    for key in ("urgency", "certainty"):
        if getattr(item, key) != "unknown":
            props[key] = getattr(item, key)
    for key in (*_TEXT_PROPERTIES, "source_style"):
        if getattr(item, key):
            props[key] = getattr(item, key)
    if item.geometry is None:
        props["radius_km"] = item.radius_km
        geometry = {"type": "Point", "coordinates": [item.center_lon, item.center_lat]}
    else:
        geometry = _as_lists(shapely.geometry.mapping(item.geometry))
    return {"type": "Feature", "properties": props, "geometry": geometry}


def scenario_to_geojson(scenario: Scenario) -> dict:
    """The scenario as a file-format dict: ``parse_scenario`` of it gives an equal scenario."""
    return {
        "type": "FeatureCollection",
        "scenario": {
            "name": scenario.name, "title": scenario.title,
            "description": scenario.description,
            "jurisdictions": list(scenario.jurisdictions),
            "duration_minutes": _minutes(scenario.duration_minutes),
            "author": scenario.author, "sources": scenario.sources,
        },
        "features": [inject_to_feature(item) for item in scenario.injects],
    }


def load_library(directory: Path | None = None) -> dict[str, Scenario]:
    """Every ``*.geojson`` scenario of ``directory`` (default: the bundled library), by name.

    A file that cannot be read or parsed raises :class:`ScenarioError` naming it; a scenario
    whose name is not its file's stem is refused too (the name is how drills refer to it).
    """
    folder = Path(directory) if directory is not None else LIBRARY_DIR
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: scenario directory not found")
    library: dict[str, Scenario] = {}
    for path in sorted(folder.glob(f"*{FILE_SUFFIX}")):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ScenarioError(f"{path.name}: cannot read: {exc}") from None
        scenario = parse_scenario(raw, origin=path.name)
        if scenario.name != path.name[: -len(FILE_SUFFIX)]:
            raise ScenarioError(f"{path.name}: scenario name {scenario.name!r} must be the "
                                f"file name without {FILE_SUFFIX}")
        library[scenario.name] = scenario
    logger.debug("scenario library %s: %d scenarios", folder, len(library))
    return library


# --------------------------------------------------------------------------------------------
# Playing


def _check_elapsed(elapsed_minutes: Any) -> float:
    if isinstance(elapsed_minutes, bool) or not isinstance(elapsed_minutes, int | float):
        raise ValueError(f"elapsed_minutes must be a number of minutes, got {elapsed_minutes!r}")
    value = float(elapsed_minutes)
    if not math.isfinite(value):
        raise ValueError(f"elapsed_minutes must be finite, got {elapsed_minutes!r}")
    return value


def fired(scenario: Scenario, elapsed_minutes: float) -> tuple[Inject, ...]:
    """The injects that have fired by ``elapsed_minutes`` (``at_minutes <= elapsed``), in order."""
    elapsed = _check_elapsed(elapsed_minutes)
    return tuple(item for item in scenario.injects if item.at_minutes <= elapsed)


def hazards_at(scenario: Scenario, elapsed_minutes: float, *, drill_id: int,
               started_at: datetime) -> list[Hazard]:
    """The drill's hazards in force at ``elapsed_minutes`` of scenario time, in firing order.

    In force: fired (``at_minutes <= elapsed``), not expired (``at + expires > elapsed``), not a
    cancel, and not named in ``supersedes`` by any fired inject. Each is a Hazard with source
    ``drill``, id ``drill:<drill_id>:<inject_id>``, status ``exercise``; its times are
    ``started_at`` plus scenario minutes (1:1), ``expires`` None for open-ended injects.
    """
    elapsed = _check_elapsed(elapsed_minutes)
    if isinstance(drill_id, bool) or not isinstance(drill_id, int) or drill_id < 0:
        raise ValueError(f"drill_id must be a non-negative integer, got {drill_id!r}")
    if (not isinstance(started_at, datetime) or started_at.tzinfo is None
            or started_at.utcoffset() != timedelta(0)):
        raise ValueError(f"started_at must be a UTC-aware datetime, got {started_at!r}")
    done = fired(scenario, elapsed)
    ended = {target for item in done for target in item.supersedes}
    prefix = f"drill:{drill_id}:"
    out: list[Hazard] = []
    for item in done:
        if item.message_type == "cancel" or item.inject_id in ended:
            continue
        if item.expires_minutes is not None and item.at_minutes + item.expires_minutes <= elapsed:
            continue
        start = started_at + timedelta(minutes=item.at_minutes)
        expires = (None if item.expires_minutes is None
                   else started_at + timedelta(minutes=item.at_minutes + item.expires_minutes))
        out.append(Hazard(
            hazard_id=prefix + item.inject_id, source="drill", event=item.event,
            category=item.category, severity=item.severity, urgency=item.urgency,
            certainty=item.certainty, status="exercise", message_type=item.message_type,
            supersedes=tuple(prefix + target for target in item.supersedes),
            sent=start, effective=start, onset=start, expires=expires,
            headline=item.headline or f"EXERCISE - {item.event}",
            description=item.description, instruction=item.instruction,
            area_desc=item.area_desc, geometry=item.geometry,
            geometry_method="polygon" if item.geometry is not None else "radius",
            center_lon=item.center_lon, center_lat=item.center_lat, radius_km=item.radius_km,
            properties={"inject_id": item.inject_id, "scenario": scenario.name},
        ))
    return out
