"""Bundled boundaries of the US states and territories and of counties, and point-in-area tests.

:func:`load_geography` reads ``data/geo/states.geojson`` (50 states, DC, PR, GU, AS, MP, VI and
the Marshall Islands) and ``data/geo/counties.geojson`` (2018 counties plus the 2022 codes that
2018 lacks: Connecticut's planning regions and Alaska's Chugach / Copper River), both built by
``scripts/build_geography.py`` and described in ``data/PROVENANCE.md``.

Tolerance. The boundaries are generalised (about 0.5 km) and the Marshall Islands are Natural
Earth 1:10m atoll slivers: the Majuro mission points lie about 1 km *outside* them, as do
piers, breakwaters and coastal ZIP centroids. A point covered by no area is therefore matched to
the nearest area within ``tolerance_km`` (default 10 km, :data:`DEFAULT_TOLERANCE_KM`, the
default of the setting ``jurisdiction_tolerance_km``). Distances are geodesic on WGS 84
(``pyproj.Geod``). The closest boundary point is found in a local tangent plane, which is exact
to well under a metre at tolerance range and an upper bound within a fraction of a percent at
hundreds of kilometres.

Rules for points:
- covered (inside or on the boundary) beats near; among several covering areas (a point on a
  shared border) the first in :attr:`Geography.states` order wins, i.e. ascending state FIPS
  code (DC 11 before MD 24);
- among areas within tolerance the nearest wins, ties again by FIPS order;
- longitudes must lie in [-180, 180]; -180 and 180 are the same meridian, and boundaries across
  the antimeridian (the Aleutians) are searched on both sides;
- NaN coordinates mean "no location": no code, ``False``, NaN distance.

Exceptions::

    GeographyError
    ├── UnknownAreaError (also KeyError and ValueError)  unknown USPS code or county FIPS
    └── GeographyDataMissing (also FileNotFoundError)     bundled files absent
    bad arguments (lengths, ranges, types)  -> plain ValueError naming the argument
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod

import settings

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE_KM = 10.0
STATE_COLUMNS = ("code", "name", "statefp")
COUNTY_COLUMNS = ("fips", "name", "statefp", "state_code", "vintage")

_GEOD = Geod(ellps="WGS84")
_WGS84_A_KM = 6378.137
_WGS84_E2 = 0.00669437999014
# Smallest meridional radius of curvature (at the equator): a conservative km -> latitude bound.
_MIN_MERIDIAN_RADIUS_KM = _WGS84_A_KM * (1.0 - _WGS84_E2)
_HALF_CIRCUMFERENCE_KM = 20_040.0  # no two points on WGS 84 are farther apart than this
_POINT_CHUNK = 2048  # points per nearest-boundary batch
_MAX_PAIRS = 500_000  # candidate (point, segment) pairs per batch; larger batches are halved
_MEAN_RADIUS_KM = 6371.0088
#: Great-circle distance on the mean sphere is within 0.56 % of the WGS 84 geodesic, so any
#: candidate within this factor of the spherical minimum may be the geodesic minimum.
SPHERE_SLACK = 1.012


class GeographyError(Exception):
    """Base class of the errors raised by this module."""


class UnknownAreaError(GeographyError, KeyError, ValueError):
    """A USPS code or county FIPS code that the bundled geography does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class GeographyDataMissing(GeographyError, FileNotFoundError):
    """The bundled boundary files are absent (run ``scripts/build_geography.py``)."""


# --------------------------------------------------------------------------------------------
# Argument checks and geodesic helpers shared with the gazetteer


def as_lonlat_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate coordinates and return them as equal-length float arrays (NaN = missing)."""
    arrays = []
    for name, values, limit in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if isinstance(values, str | bytes):
            raise ValueError(f"{name} must be a number or an array of numbers, got a string")
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric (degrees): {exc}") from None
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
        bad = np.isinf(arr) | (np.abs(arr) > limit)
        if bad.any():
            raise ValueError(
                f"{name} must lie between {-limit:g} and {limit:g} degrees (or be NaN); "
                f"{int(bad.sum())} value(s) do not, e.g. {arr[bad][0]!r}"
            )
        arrays.append(arr)
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"lon and lat must have the same length, got {arrays[0].size} and {arrays[1].size}"
        )
    return arrays[0], arrays[1]


def _check_tolerance(tolerance_km: float) -> float:
    try:
        value = float(tolerance_km)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance_km must be a number, got {tolerance_km!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance_km must be a finite number >= 0, got {tolerance_km!r}")
    return value


def geodesic_km(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> np.ndarray:
    """Geodesic distance on WGS 84 in km, element-wise (``pyproj.Geod.inv``)."""
    _, _, metres = _GEOD.inv(
        np.asarray(lon1, dtype=float),
        np.asarray(lat1, dtype=float),
        np.asarray(lon2, dtype=float),
        np.asarray(lat2, dtype=float),
    )
    return np.asarray(metres, dtype=float) / 1000.0


def search_boxes(lon: np.ndarray, lat: np.ndarray, radius_km: Any) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat boxes holding every point within ``radius_km`` (geodesic) of each point.

    Returns ``(boxes, point_index)``: a box that crosses the antimeridian is split into two, so
    a point may own two boxes. The bounds are conservative (smallest meridian radius, smallest
    parallel at the box's poleward edge); near a pole the box spans all longitudes.
    """
    radius = np.broadcast_to(np.asarray(radius_km, dtype=float), lon.shape)
    dlat = np.degrees(radius / _MIN_MERIDIAN_RADIUS_KM) + 1e-9
    south = np.maximum(lat - dlat, -90.0)
    north = np.minimum(lat + dlat, 90.0)
    poleward = np.minimum(np.abs(lat) + dlat, 90.0)
    cos_edge = np.cos(np.radians(poleward))
    with np.errstate(divide="ignore"):
        dlon = np.where(
            cos_edge > 1e-12, np.degrees(radius / (_WGS84_A_KM * cos_edge)) + 1e-9, np.inf
        )
    full = dlon >= 180.0
    west = np.where(full, -180.0, lon - dlon)
    east = np.where(full, 180.0, lon + dlon)
    idx = np.arange(lon.size)
    pieces = [(np.maximum(west, -180.0), south, np.minimum(east, 180.0), north, idx)]
    wrap_w = ~full & (west < -180.0)
    if wrap_w.any():
        pieces.append((west[wrap_w] + 360.0, south[wrap_w], np.full(wrap_w.sum(), 180.0),
                       north[wrap_w], idx[wrap_w]))
    wrap_e = ~full & (east > 180.0)
    if wrap_e.any():
        pieces.append((np.full(wrap_e.sum(), -180.0), south[wrap_e], east[wrap_e] - 360.0,
                       north[wrap_e], idx[wrap_e]))
    xmin, ymin, xmax, ymax, owner = (np.concatenate(cols) for cols in zip(*pieces, strict=True))
    return shapely.box(xmin, ymin, xmax, ymax), owner


def great_circle_km(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
                     ) -> np.ndarray:
    """Haversine distance on the mean sphere: cheap ranking before the geodesic."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = (np.sin((p2 - p1) / 2.0) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2.0) ** 2)
    return 2.0 * _MEAN_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _wrap180(delta: np.ndarray) -> np.ndarray:
    return (delta + 180.0) % 360.0 - 180.0


def _first_per_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Positions of the best row of each ``group`` value, ordered by ``keys`` (first = primary)."""
    order = np.lexsort((*reversed(keys), group))
    sorted_group = group[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = sorted_group[1:] != sorted_group[:-1]
    return order[first]


@dataclasses.dataclass(frozen=True)
class _Segments:
    """Boundary segments of all areas, with a spatial index over their bounding boxes."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    area: np.ndarray
    boxes: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def from_parts(cls, parts: np.ndarray, part_area: np.ndarray) -> _Segments:
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        coords, ring = shapely.get_coordinates(rings, return_index=True)
        same = ring[1:] == ring[:-1]
        start = coords[:-1][same]
        end = coords[1:][same]
        area = part_area[ring_part[ring[:-1][same]]]
        boxes = shapely.box(
            np.minimum(start[:, 0], end[:, 0]), np.minimum(start[:, 1], end[:, 1]),
            np.maximum(start[:, 0], end[:, 0]), np.maximum(start[:, 1], end[:, 1]),
        )
        return cls(start[:, 0], start[:, 1], end[:, 0], end[:, 1], area, boxes,
                   shapely.STRtree(boxes))

    def closest_points(self, px: np.ndarray, py: np.ndarray, seg: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Lon/lat of the point of each segment ``seg`` closest to its point ``(px, py)``.

        Found in the tangent plane at the point (WGS 84 radii of curvature); segments never
        cross the antimeridian, so only the start needs wrapping relative to the point.
        """
        x0, y0 = self.x0[seg], self.y0[seg]
        ddx, ddy = self.x1[seg] - x0, self.y1[seg] - y0
        phi = np.radians(py)
        w = 1.0 - _WGS84_E2 * np.sin(phi) ** 2
        kx = np.radians(_WGS84_A_KM / np.sqrt(w)) * np.cos(phi)
        ky = np.radians(_WGS84_A_KM * (1.0 - _WGS84_E2) / w**1.5)
        ax, ay = _wrap180(x0 - px) * kx, (y0 - py) * ky
        vx, vy = ddx * kx, ddy * ky
        vv = vx * vx + vy * vy
        safe = np.where(vv > 0, vv, 1.0)
        t = np.where(vv > 0, np.clip(-(ax * vx + ay * vy) / safe, 0.0, 1.0), 0.0)
        return x0 + t * ddx, y0 + t * ddy


class Geography:
    """States/territories and counties with vectorised point-in-area and distance queries.

    ``states`` and ``counties`` are indexed once at construction: treat them as read-only.
    """

    states: gpd.GeoDataFrame
    counties: gpd.GeoDataFrame

    def __init__(self, states: gpd.GeoDataFrame, counties: gpd.GeoDataFrame) -> None:
        """Index ``states`` (sorted by FIPS, the tie-break order) and ``counties`` for queries."""
        for name, frame, columns in (("states", states, STATE_COLUMNS),
                                     ("counties", counties, COUNTY_COLUMNS)):
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"{name} lacks columns {missing}; expected {list(columns)}")
            if frame.crs is None or frame.crs.to_epsg() != 4326:
                raise ValueError(f"{name} must be in EPSG:4326, got {frame.crs}")
        self.states = states.sort_values("statefp", ignore_index=True)[
            [*STATE_COLUMNS, "geometry"]
        ]
        self.counties = counties.sort_values("fips", ignore_index=True)[
            [*COUNTY_COLUMNS, "geometry"]
        ]
        codes = [str(c) for c in self.states["code"]]
        if len(set(codes)) != len(codes):
            raise ValueError("states has duplicate codes")
        fips = [str(f) for f in self.counties["fips"]]
        if len(set(fips)) != len(fips):
            raise ValueError("counties has duplicate fips codes")
        self._code_index = {code: i for i, code in enumerate(codes)}
        self._code_lookup = np.array([*codes, ""], dtype=object)  # index -1 -> ""
        self._fips_index = {f: i for i, f in enumerate(fips)}
        self._state_geoms = self.states.geometry.to_numpy()
        self._county_geoms = self.counties.geometry.to_numpy()
        parts, part_area = shapely.get_parts(self._state_geoms, return_index=True)
        shapely.prepare(parts)
        self._parts = parts
        self._part_area = part_area
        self._part_tree = shapely.STRtree(parts)
        self._segments = _Segments.from_parts(parts, part_area)
        self._area_trees: dict[int, tuple[shapely.STRtree, np.ndarray]] = {}

    @property
    def state_codes(self) -> tuple[str, ...]:
        """USPS codes of the areas, in tie-break (FIPS) order."""
        return tuple(self._code_index)

    # ---------------------------------------------------------------- single geometries

    def state_geometry(self, code: str) -> shapely.Geometry:
        """The (generalised) boundary of the state or territory with USPS ``code``."""
        return self._state_geoms[self._area_of(code, "code")]

    def county_geometry(self, fips: str) -> shapely.Geometry:
        """The boundary of the county with 5-digit FIPS ``fips`` (2018 or 2022 vintage)."""
        if not isinstance(fips, str) or len(fips) != 5 or not fips.isdigit():
            raise ValueError(
                f"fips must be a 5-digit county FIPS string like '09001', got {fips!r}"
            )
        try:
            return self._county_geoms[self._fips_index[fips]]
        except KeyError:
            raise UnknownAreaError(
                f"fips {fips!r} is not a county of the 2018 or 2022 Census boundaries "
                f"({len(self._fips_index)} codes bundled)"
            ) from None

    def counties_geometry(
        self, fips_codes: Iterable[str]
    ) -> tuple[shapely.Geometry, list[str]]:
        """Union of the named counties, and the codes (in input order) that are not bundled."""
        if isinstance(fips_codes, str | bytes):
            raise ValueError("fips_codes must be an iterable of FIPS strings, not one string")
        found: list[int] = []
        missing: list[str] = []
        for code in fips_codes:
            if not isinstance(code, str):
                raise ValueError(f"fips_codes must hold strings, got {code!r}")
            index = self._fips_index.get(code)
            if index is not None:
                found.append(index)
            elif code not in missing:
                missing.append(code)
        if not found:
            return shapely.MultiPolygon(), missing
        return shapely.union_all(self._county_geoms[sorted(set(found))]), missing

    # ---------------------------------------------------------------- vectorised queries

    def jurisdiction_of(self, lon: Any, lat: Any, tolerance_km: float = DEFAULT_TOLERANCE_KM
                        ) -> np.ndarray:
        """USPS code of the area covering each point, else of the nearest within tolerance.

        Returns an object array; ``""`` where no area is within ``tolerance_km``.
        """
        x, y = as_lonlat_arrays(lon, lat)
        tolerance = _check_tolerance(tolerance_km)
        area = np.full(x.size, -1, dtype=np.int64)
        known = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
        point, covering = self._covering_pairs(x[known], y[known])
        if point.size:
            best = _first_per_group(point, covering)
            area[known[point[best]]] = covering[best]
        unmatched = known[area[known] < 0]
        if unmatched.size and tolerance > 0:
            dist, near = self._nearest_boundary(x[unmatched], y[unmatched],
                                                np.full(unmatched.size, tolerance))
            ok = dist <= tolerance
            area[unmatched[ok]] = near[ok]
        if unmatched.size:
            logger.debug("jurisdiction_of: %d of %d points outside every area, %d matched "
                         "within %.1f km", unmatched.size, x.size,
                         int((area[unmatched] >= 0).sum()), tolerance)
        return self._code_lookup[area]

    def within_jurisdiction(self, lon: Any, lat: Any, codes: Any,
                            tolerance_km: float = DEFAULT_TOLERANCE_KM) -> np.ndarray:
        """Whether each point is inside, or within ``tolerance_km`` of, the area of its code."""
        x, y = as_lonlat_arrays(lon, lat)
        wanted = self._areas_of(codes, x.size)
        tolerance = _check_tolerance(tolerance_km)
        result = self._inside_wanted(x, y, wanted)
        todo = np.flatnonzero(~result & ~(np.isnan(x) | np.isnan(y)))
        if todo.size and tolerance > 0:
            dist, _ = self._nearest_boundary(x[todo], y[todo], np.full(todo.size, tolerance),
                                             wanted[todo])
            result[todo] = dist <= tolerance
        return result

    def distance_km(self, lon: Any, lat: Any, codes: Any) -> np.ndarray:
        """Geodesic km from each point to the area of its code (0 inside, NaN if no point)."""
        x, y = as_lonlat_arrays(lon, lat)
        wanted = self._areas_of(codes, x.size)
        missing = np.isnan(x) | np.isnan(y)
        result = np.where(missing, np.nan, 0.0)
        pending = np.flatnonzero(~self._inside_wanted(x, y, wanted) & ~missing)
        radius = 16.0
        while pending.size:
            # Exact once the nearest candidate lies within the searched radius: every segment
            # closer than the radius has a box that meets the search box.
            dist, _ = self._nearest_boundary(x[pending], y[pending],
                                             np.full(pending.size, radius), wanted[pending])
            done = (dist <= radius) | (radius >= _HALF_CIRCUMFERENCE_KM)
            result[pending[done]] = dist[done]
            pending = pending[~done]
            radius = min(radius * 4.0, _HALF_CIRCUMFERENCE_KM)
        return result

    # ---------------------------------------------------------------- internals

    def _area_of(self, code: Any, argument: str) -> int:
        try:
            return self._code_index[code]
        except (KeyError, TypeError):
            raise UnknownAreaError(
                f"{argument} must be one of the USPS codes {', '.join(self._code_index)}; "
                f"got {code!r}"
            ) from None

    def _areas_of(self, codes: Any, n: int) -> np.ndarray:
        """Area index per point; a single string applies to every point."""
        if isinstance(codes, str):
            return np.full(n, self._area_of(codes, "codes"), dtype=np.int64)
        arr = np.asarray(codes, dtype=object)
        if arr.ndim != 1 or arr.size != n:
            raise ValueError(
                f"codes must be one USPS code or one per point ({n}), got shape {arr.shape}"
            )
        unique, inverse = np.unique(arr.astype(str), return_inverse=True)
        return np.array([self._area_of(c, "codes") for c in unique], dtype=np.int64)[inverse]

    def _covering_pairs(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(point, area)`` for every area that covers a point (boundary included)."""
        if x.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        point_tree = shapely.STRtree(shapely.points(x, y))
        # The parts are the query geometries, so GEOS tests each prepared part against the
        # points in its box: one pass over the points per part, in C.
        part, point = point_tree.query(self._parts, predicate="covers")
        on_meridian = np.flatnonzero(np.abs(x) == 180.0)
        if on_meridian.size:  # -180 and 180 are the same meridian
            other = shapely.points(-x[on_meridian], y[on_meridian])
            more_point, more_part = self._part_tree.query(other, predicate="covered_by")
            part = np.concatenate([part, more_part])
            point = np.concatenate([point, on_meridian[more_point]])
        return point, self._part_area[part]

    def _inside_wanted(self, x: np.ndarray, y: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        known = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
        inside = np.zeros(x.size, dtype=bool)
        point, area = self._covering_pairs(x[known], y[known])
        hit = area == wanted[known[point]]
        inside[known[point[hit]]] = True
        return inside

    def _area_tree(self, area: int) -> tuple[shapely.STRtree, np.ndarray]:
        if area not in self._area_trees:
            members = np.flatnonzero(self._segments.area == area)
            self._area_trees[area] = (shapely.STRtree(self._segments.boxes[members]), members)
        return self._area_trees[area]

    def _candidates(self, x: np.ndarray, y: np.ndarray, radius: np.ndarray,
                    wanted: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(point, segment)`` pairs whose segment box meets the point's search box."""
        boxes, owner = search_boxes(x, y, radius)
        if wanted is None:
            box_i, seg = self._segments.tree.query(boxes)
            return owner[box_i], seg
        points, segs = [], []
        box_area = wanted[owner]
        for a in np.unique(box_area):
            tree, members = self._area_tree(int(a))
            sel = np.flatnonzero(box_area == a)
            box_i, local = tree.query(boxes[sel])
            points.append(owner[sel[box_i]])
            segs.append(members[local])
        return np.concatenate(points), np.concatenate(segs)

    def _nearest_boundary(self, x: np.ndarray, y: np.ndarray, radius: np.ndarray,
                          wanted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per point: km to the nearest boundary found within ``radius`` and that area.

        Searches all areas, or only ``wanted[i]`` for point ``i``. ``(inf, -1)`` when no
        boundary segment lies in the search box. Candidates are ranked on the sphere and only
        the near-best are measured with ``pyproj.Geod``.
        """
        dist = np.full(x.size, np.inf)
        area = np.full(x.size, -1, dtype=np.int64)
        batches = [np.arange(s, min(s + _POINT_CHUNK, x.size))
                   for s in range(0, x.size, _POINT_CHUNK)][::-1]
        while batches:
            rows = batches.pop()
            local, seg = self._candidates(x[rows], y[rows], radius[rows],
                                          None if wanted is None else wanted[rows])
            if local.size > _MAX_PAIRS and rows.size > 1:
                half = rows.size // 2
                batches.extend([rows[half:], rows[:half]])
                continue
            if local.size == 0:
                continue
            point = rows[local]
            px, py = x[point], y[point]
            qx, qy = self._segments.closest_points(px, py, seg)
            rough = great_circle_km(px, py, qx, qy)
            floor = np.full(x.size, np.inf)
            np.minimum.at(floor, point, rough)
            keep = rough <= floor[point] * SPHERE_SLACK + 1e-6
            point, seg = point[keep], seg[keep]
            d = geodesic_km(px[keep], py[keep], qx[keep], qy[keep])
            seg_area = self._segments.area[seg]
            best = _first_per_group(point, d, seg_area)
            dist[point[best]] = d[best]
            area[point[best]] = seg_area[best]
        return dist, area

def _read(path: Path, columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise GeographyDataMissing(
            f"bundled boundary file {path} is missing; build it with "
            "`python scripts/build_geography.py SOURCE_DIR` (see data/PROVENANCE.md)"
        )
    frame = gpd.read_file(path)
    for column in columns:
        frame[column] = frame[column].astype(str)
    return frame


@functools.lru_cache(maxsize=4)
def load_geography(data_dir: Path | None = None) -> Geography:
    """The bundled geography (read once per directory; default ``data/geo`` of the project)."""
    directory = Path(data_dir) if data_dir is not None else settings.BUNDLED_DATA_DIR / "geo"
    geography = Geography(
        _read(directory / "states.geojson", STATE_COLUMNS),
        _read(directory / "counties.geojson", COUNTY_COLUMNS),
    )
    logger.info("geography loaded: %d areas, %d counties", len(geography.states),
                len(geography.counties))
    return geography
