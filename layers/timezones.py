"""The local time zone (IANA name) of a place and of a hazard's area, and local time for display.

The incident page shows a hazard's times in US Eastern time and in the zone of the area. Zones
come from two bundled tables, compiled from 49 CFR Part 71 and the IANA tzdata zone comments
(see ``data/timezones/PROVENANCE.md``):

- ``data/timezones/timezones.csv``: the zone of every jurisdiction of the bundled geography
  (``level`` = ``jurisdiction``, USPS code) and of every county of a state split between zones
  whose zone differs from its state's (``level`` = ``county``, 5-digit FIPS). Counties cut by a
  zone line carry the zone of most of their people and a ``note`` saying so;
- ``data/timezones/zone_boxes.csv``: longitude/latitude boxes inside one jurisdiction where the
  zone line is not a county line: the Aleutians west of 169°30'W (America/Adak, on both sides
  of 180°), Kwajalein Atoll (Pacific/Kwajalein), and West Wendover, Jackpot, Owyhee and
  Mountain City in Elko County, Nevada (America/Denver).

Rules for a point (:func:`zones_for_points`):

- its jurisdiction is :meth:`layers.geography.Geography.jurisdiction_of`'s (covered, else the
  nearest within ``tolerance_km``); a point near no jurisdiction (open ocean) has no zone, None;
- a box of that jurisdiction holding the point (edges included) decides;
- else the county of that jurisdiction covering the point, or the nearest one within
  ``tolerance_km`` (a point in coastal water off Pensacola is Central, not Florida's Eastern),
  if the table lists that county;
- else the jurisdiction's zone.

An area (:func:`zones_for_area`) is cut by the zone map (the counties of split states dissolved
by zone, the other jurisdictions whole, boxes cut out); its zones are ordered by the geodesic
area (lines: length; points: count) of the area in each. An area that touches no land (a
marine warning off the coast) gets the zones of its vertices, as points.

Exceptions::

    TimezoneDataError                               the bundled tables are unusable
    ├── TimezoneDataMissing (also FileNotFoundError)  a table file is absent
    └── TimezoneTableError (also ValueError)          a row is malformed (file, line, reason)
    bad arguments (types, ranges, naive datetimes)  -> plain ValueError naming the argument
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import logging
import re
import types
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

import settings
from layers.geography import (
    DEFAULT_TOLERANCE_KM,
    Geography,
    as_lonlat_arrays,
    geodesic_km,
    load_geography,
    search_boxes,
)
from layers.shapes import coordinate_bounds, normalize_longitudes, repair

logger = logging.getLogger(__name__)

#: The zone the incident page shows next to the local one.
EASTERN = "America/New_York"

TABLE_FILE = "timezones.csv"
BOXES_FILE = "zone_boxes.csv"
TABLE_COLUMNS = ("level", "code", "name", "zone", "note")
BOX_COLUMNS = ("zone", "jurisdiction", "west", "south", "east", "north", "note")

_GEOD = Geod(ellps="WGS84")
_USPS = re.compile(r"^[A-Z]{2}$")
_FIPS = re.compile(r"^\d{5}$")


class TimezoneDataError(Exception):
    """Base class of the errors about the bundled zone tables."""


class TimezoneDataMissing(TimezoneDataError, FileNotFoundError):
    """A bundled zone table is absent."""


class TimezoneTableError(TimezoneDataError, ValueError):
    """A row of a bundled zone table is malformed or contradicts the bundled geography."""


# --------------------------------------------------------------------------------------------
# The tables


@dataclasses.dataclass(frozen=True)
class ZoneBox:
    """Points of ``jurisdiction`` within these bounds (edges included) are in ``zone``."""

    zone: str
    jurisdiction: str
    west: float
    south: float
    east: float
    north: float


@dataclasses.dataclass(frozen=True)
class ZoneTable:
    """The bundled zone tables: jurisdiction zones, county zones (by FIPS) and boxes."""

    jurisdictions: Mapping[str, str]
    counties: Mapping[str, str]
    boxes: tuple[ZoneBox, ...]
    #: county FIPS -> the note of a county cut by a zone line
    notes: Mapping[str, str]


def check_zone(zone: Any, argument: str = "zone") -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA zone name; ValueError naming ``argument`` if there is none."""
    if not isinstance(zone, str) or not zone:
        raise ValueError(
            f"{argument} must be an IANA time zone name like 'America/New_York', got {zone!r}"
        )
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{argument} must be an IANA time zone name like 'America/New_York'; "
            f"{zone!r} is not in the time zone database"
        ) from None


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise TimezoneDataMissing(f"bundled zone table {path} is missing")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != columns:
            raise TimezoneTableError(
                f"{path.name}: columns must be {list(columns)}, got {reader.fieldnames}"
            )
        rows = []
        for row in reader:
            if None in row:
                raise _table_error(path, reader.line_num, f"more than {len(columns)} fields")
            rows.append((reader.line_num, {k: v or "" for k, v in row.items()}))
        return rows


def _table_error(path: Path, line: int, reason: str) -> TimezoneTableError:
    return TimezoneTableError(f"{path.name} line {line}: {reason}")


def _zone_of_row(path: Path, line: int, zone: str) -> str:
    try:
        check_zone(zone)
    except ValueError:
        raise _table_error(path, line, f"unknown IANA zone {zone!r}") from None
    return zone


@functools.lru_cache(maxsize=4)
def load_zone_table(data_dir: Path | None = None) -> ZoneTable:
    """The bundled zone tables (read once per directory; default ``data/timezones``)."""
    directory = (Path(data_dir) if data_dir is not None
                 else settings.BUNDLED_DATA_DIR / "timezones")
    table_path, boxes_path = directory / TABLE_FILE, directory / BOXES_FILE
    jurisdictions: dict[str, str] = {}
    counties: dict[str, str] = {}
    notes: dict[str, str] = {}
    for line, row in _rows(table_path, TABLE_COLUMNS):
        level, code = row["level"], row["code"]
        zone = _zone_of_row(table_path, line, row["zone"])
        if level == "jurisdiction" and _USPS.match(code):
            target = jurisdictions
        elif level == "county" and _FIPS.match(code):
            target = counties
            if row["note"]:
                notes[code] = row["note"]
        else:
            raise _table_error(table_path, line,
                               f"level must be 'jurisdiction' with a USPS code or 'county' "
                               f"with a 5-digit FIPS code, got {level!r} {code!r}")
        if code in target:
            raise _table_error(table_path, line, f"{code} is listed twice")
        target[code] = zone
    boxes: list[ZoneBox] = []
    for line, row in _rows(boxes_path, BOX_COLUMNS):
        zone = _zone_of_row(boxes_path, line, row["zone"])
        if row["jurisdiction"] not in jurisdictions:
            raise _table_error(boxes_path, line,
                               f"jurisdiction {row['jurisdiction']!r} has no row in {TABLE_FILE}")
        try:
            west, south, east, north = (float(row[k]) for k in ("west", "south", "east", "north"))
        except ValueError:
            raise _table_error(boxes_path, line, "bounds must be numbers") from None
        if not (-180.0 <= west < east <= 180.0 and -90.0 <= south < north <= 90.0):
            raise _table_error(boxes_path, line,
                               "bounds must satisfy -180 <= west < east <= 180 and "
                               "-90 <= south < north <= 90 (split a box at 180°)")
        boxes.append(ZoneBox(zone, row["jurisdiction"], west, south, east, north))
    return ZoneTable(types.MappingProxyType(jurisdictions), types.MappingProxyType(counties),
                     tuple(boxes), types.MappingProxyType(notes))


# --------------------------------------------------------------------------------------------
# The zone map


def _lowest_per_point(point: np.ndarray, key: np.ndarray, size: int) -> np.ndarray:
    """Per point (0..size-1): the row index with the smallest ``key``, -1 where none."""
    best = np.full(size, -1, dtype=np.int64)
    if point.size:
        order = np.lexsort((key, point))
        first = np.ones(order.size, dtype=bool)
        first[1:] = point[order][1:] != point[order][:-1]
        best[point[order[first]]] = order[first]
    return best


def _in_box(box: ZoneBox, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each point lies in ``box``, edges included; -180 and 180 are one meridian."""
    lon_ok = (x >= box.west) & (x <= box.east)
    flip = np.abs(x) == 180.0
    lon_ok |= flip & (-x >= box.west) & (-x <= box.east)
    return lon_ok & (y >= box.south) & (y <= box.north)


def _parts_of_dimension(geom: BaseGeometry, dimension: int) -> list[BaseGeometry]:
    """The single parts of ``geom`` (collections flattened) of one dimension."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type in ("GeometryCollection", "MultiPolygon", "MultiLineString",
                          "MultiPoint"):
        return [p for part in shapely.get_parts(geom) for p in _parts_of_dimension(part,
                                                                                  dimension)]
    return [geom] if shapely.get_dimensions(geom) == dimension else []


def _measure(geom: BaseGeometry, dimension: int) -> float:
    """Geodesic area (m²) of the polygons or length (m) of the lines of ``geom``."""
    total = 0.0
    for part in _parts_of_dimension(geom, dimension):
        if dimension == 2:
            area, _ = _GEOD.geometry_area_perimeter(part)
            total += abs(area)
        else:
            total += _GEOD.geometry_length(part)
    return total


class TimezoneMap:
    """Zones of points and areas over a :class:`Geography` and a :class:`ZoneTable`."""

    def __init__(self, geography: Geography, table: ZoneTable) -> None:
        """Check ``table`` against ``geography`` and index the counties of split states."""
        self._geo = geography
        self._table = table
        state_codes = set(geography.state_codes)
        missing = sorted(state_codes - set(table.jurisdictions))
        unknown = sorted(set(table.jurisdictions) - state_codes)
        if missing or unknown:
            raise TimezoneTableError(
                f"{TABLE_FILE}: jurisdictions without a zone {missing}, "
                f"zones of unknown jurisdictions {unknown}"
            )
        counties = geography.counties
        fips = counties["fips"].to_numpy(dtype=str)
        state_of = dict(zip(fips, counties["state_code"].to_numpy(dtype=str), strict=True))
        not_bundled = sorted(set(table.counties) - set(state_of))
        if not_bundled:
            raise TimezoneTableError(
                f"{TABLE_FILE}: county FIPS {not_bundled} are not bundled counties"
            )
        self._state_zone = dict(table.jurisdictions)
        # Counties whose zone differs from their state's; the others only document a split.
        self._county_zone = {f: z for f, z in table.counties.items()
                             if z != self._state_zone[state_of[f]]}
        self._split_states = sorted({state_of[f] for f in self._county_zone})
        in_split = np.isin(counties["state_code"].to_numpy(dtype=str), self._split_states)
        self._county_fips = fips[in_split]
        self._county_state = counties["state_code"].to_numpy(dtype=str)[in_split]
        self._county_geoms = counties.geometry.to_numpy()[in_split]
        self._county_tree = shapely.STRtree(self._county_geoms)
        self._has_override = np.array([f in self._county_zone for f in self._county_fips],
                                      dtype=bool)
        self._override_zone = np.array([self._county_zone.get(f) for f in self._county_fips],
                                       dtype=object)

    @property
    def table(self) -> ZoneTable:
        """The zone table this map was built from."""
        return self._table

    # ---------------------------------------------------------------- points

    def zones_for_points(self, lon: Any, lat: Any,
                         tolerance_km: float = DEFAULT_TOLERANCE_KM) -> np.ndarray:
        """IANA zone of each point (object array; None where no jurisdiction is near)."""
        x, y = as_lonlat_arrays(lon, lat)
        codes = np.asarray(self._geo.jurisdiction_of(x, y, tolerance_km), dtype=object)
        tolerance = float(tolerance_km)  # checked by jurisdiction_of
        zones = np.full(x.size, None, dtype=object)
        known = np.flatnonzero(codes != "")
        if known.size:
            unique, inverse = np.unique(codes[known].astype(str), return_inverse=True)
            zones[known] = np.array([self._state_zone[c] for c in unique], dtype=object)[inverse]
        split = np.flatnonzero(np.isin(codes.astype(str), self._split_states))
        if split.size:
            county = self._county_of(x[split], y[split], codes[split].astype(str), tolerance)
            found = np.flatnonzero(county >= 0)
            listed = found[self._has_override[county[found]]]
            zones[split[listed]] = self._override_zone[county[listed]]
        for box in self._table.boxes:
            zones[(codes == box.jurisdiction) & _in_box(box, x, y)] = box.zone
        return zones

    def _county_of(self, x: np.ndarray, y: np.ndarray, codes: np.ndarray,
                   tolerance: float) -> np.ndarray:
        """Index (into the split-state counties) of each point's county of its own state.

        Covering counties first (lowest FIPS on a shared border); points covered by none take
        the nearest within ``tolerance`` km (geodesic to the planar-closest boundary point).
        """
        points = shapely.points(x, y)
        point, county = self._county_tree.query(points, predicate="intersects")
        on_meridian = np.flatnonzero(np.abs(x) == 180.0)
        if on_meridian.size:  # -180 and 180 are the same meridian
            more_point, more_county = self._county_tree.query(
                shapely.points(-x[on_meridian], y[on_meridian]), predicate="intersects")
            point = np.concatenate([point, on_meridian[more_point]])
            county = np.concatenate([county, more_county])
        same = self._county_state[county] == codes[point]
        point, county = point[same], county[same]
        best = _lowest_per_point(point, county, x.size)
        result = np.full(x.size, -1, dtype=np.int64)
        hit = best >= 0
        result[hit] = county[best[hit]]
        todo = np.flatnonzero(result < 0)
        if todo.size and tolerance > 0:
            boxes, owner = search_boxes(x[todo], y[todo], tolerance)
            box_i, cand = self._county_tree.query(boxes)
            near = todo[owner[box_i]]
            keep = self._county_state[cand] == codes[near]
            near, cand = near[keep], cand[keep]
            if near.size:
                lines = shapely.shortest_line(points[near], self._county_geoms[cand])
                ends = shapely.get_coordinates(lines)[1::2]
                dist = geodesic_km(x[near], y[near], ends[:, 0], ends[:, 1])
                ok = dist <= tolerance
                near, cand, dist = near[ok], cand[ok], dist[ok]
                order = np.lexsort((cand, dist, near))
                first = np.ones(order.size, dtype=bool)
                first[1:] = near[order][1:] != near[order][:-1]
                result[near[order[first]]] = cand[order[first]]
        return result

    # ---------------------------------------------------------------- areas

    @functools.cached_property
    def _pieces(self) -> tuple[np.ndarray, np.ndarray, shapely.STRtree]:
        """The zone map: (geometries, zones, tree); split states' counties dissolved by zone."""
        geoms: list[BaseGeometry] = []
        zones: list[str] = []
        codes: list[str] = []
        split = set(self._split_states)
        for code in self._geo.state_codes:
            if code not in split:
                geoms.append(self._geo.state_geometry(code))
                zones.append(self._state_zone[code])
                codes.append(code)
                continue
            mine = self._county_state == code
            county_zone = np.array([self._county_zone.get(f, self._state_zone[code])
                                    for f in self._county_fips[mine]], dtype=object)
            for zone in sorted(set(county_zone)):
                geoms.append(shapely.union_all(self._county_geoms[mine][county_zone == zone]))
                zones.append(zone)
                codes.append(code)
        for box in self._table.boxes:
            rect = shapely.box(box.west, box.south, box.east, box.north)
            for i in [i for i, c in enumerate(codes) if c == box.jurisdiction]:
                inside = shapely.intersection(geoms[i], rect)
                if inside.is_empty:
                    continue
                geoms[i] = shapely.difference(geoms[i], rect)
                geoms.append(inside)
                zones.append(box.zone)
                codes.append(box.jurisdiction)
        geom_array = np.array(geoms, dtype=object)
        shapely.prepare(geom_array)
        logger.debug("zone map: %d pieces in %d zones", len(geoms), len(set(zones)))
        return geom_array, np.array(zones, dtype=object), shapely.STRtree(geom_array)

    def zones_for_area(self, geometry: Any) -> list[str]:
        """The zones ``geometry`` touches, most of it first (see the module docstring)."""
        if not isinstance(geometry, BaseGeometry):
            raise ValueError(
                f"geometry must be a shapely geometry, got {type(geometry).__name__}"
            )
        if geometry.is_empty:
            return []
        bounds = coordinate_bounds(np.array([geometry], dtype=object))[0]
        if not np.isfinite(bounds).all() or bounds[1] < -90.0 or bounds[3] > 90.0:
            raise ValueError(
                f"geometry must have finite coordinates with latitudes within ±90 degrees, "
                f"got bounds {tuple(float(b) for b in bounds)}"
            )
        dimension = int(shapely.get_dimensions(geometry))
        if dimension == 0:
            return self._zones_of_vertices(geometry)
        shape = normalize_longitudes(repair(geometry)[0])
        pieces, zones, tree = self._pieces
        weight: dict[str, float] = {}
        for i in tree.query(shape, predicate="intersects"):
            amount = _measure(shapely.intersection(shape, pieces[i]), dimension)
            if amount > 0:
                weight[zones[i]] = weight.get(zones[i], 0.0) + amount
        if not weight:
            return self._zones_of_vertices(shape)
        return sorted(weight, key=lambda z: (-weight[z], z))

    def _zones_of_vertices(self, geom: BaseGeometry) -> list[str]:
        coords = shapely.get_coordinates(geom)
        x = coords[:, 0]
        x = np.where(np.abs(x) <= 180.0, x, (x + 180.0) % 360.0 - 180.0)  # whole turns
        counts = Counter(z for z in self.zones_for_points(x, coords[:, 1]) if z is not None)
        return sorted(counts, key=lambda z: (-counts[z], z))


@functools.lru_cache(maxsize=1)
def load_timezone_map() -> TimezoneMap:
    """The zone map over the bundled geography and zone tables (built once)."""
    return TimezoneMap(load_geography(), load_zone_table())


# --------------------------------------------------------------------------------------------
# Public functions


def zones_for_points(lons: Any, lats: Any, *,
                     tolerance_km: float = DEFAULT_TOLERANCE_KM) -> np.ndarray:
    """IANA zone of each point (object array of str, None outside every jurisdiction)."""
    return load_timezone_map().zones_for_points(lons, lats, tolerance_km)


def zone_for_point(lon: float, lat: float, *,
                   tolerance_km: float = DEFAULT_TOLERANCE_KM) -> str | None:
    """IANA zone of one point: county first, else jurisdiction; None outside every one."""
    for name, value in (("lon", lon), ("lat", lat)):
        if np.ndim(value) != 0:
            raise ValueError(
                f"{name} must be a single number; use zones_for_points for arrays"
            )
    zone = zones_for_points(lon, lat, tolerance_km=tolerance_km)[0]
    return None if zone is None else str(zone)


def zones_for_area(geometry: BaseGeometry) -> list[str]:
    """The zones an area touches, ordered by how much of the area lies in each."""
    return load_timezone_map().zones_for_area(geometry)


def format_local(when: datetime, zone: str) -> str:
    """``when`` in ``zone`` as ``"2026-11-28 03:12 EST"`` (abbreviation from zoneinfo)."""
    if not isinstance(when, datetime):
        raise ValueError(f"when must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"when must be timezone-aware (e.g. tzinfo=timezone.utc); got the naive "
            f"datetime {when.isoformat()}"
        )
    local = when.astimezone(check_zone(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


__all__ = [
    "EASTERN",
    "TimezoneDataError",
    "TimezoneDataMissing",
    "TimezoneMap",
    "TimezoneTableError",
    "ZoneBox",
    "ZoneTable",
    "check_zone",
    "format_local",
    "load_timezone_map",
    "load_zone_table",
    "zone_for_point",
    "zones_for_area",
    "zones_for_points",
]
