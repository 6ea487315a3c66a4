"""Geometry hygiene and geodesic helpers for hazard shapes: repair, antimeridian handling, circles.

Conventions used throughout Mission Watch's spatial core:

- Coordinates are WGS 84 longitude/latitude in degrees; edges are straight lines in lon/lat
  (GeoJSON, RFC 7946), so "inside" is the planar test Shapely does.
- -180 and 180 are the same meridian. Stored shapes lie within [-180, 180]; a shape crossing the
  antimeridian is a MultiPolygon split there (RFC 7946 §3.1.9). Shapes that arrive with
  longitudes beyond ±180 (a typhoon cone drawn from 170 to 190) or with edges jumping more than
  180 degrees (170 -> -170, read as the short way round, as the ``antimeridian`` package does)
  are brought into that form by :func:`normalize_longitudes` (for maps and exports).
- For deciding who is inside, a shape beyond ±180 is *moved* by whole turns
  (:func:`whole_turn_copies`) rather than cut: cutting rounds the new vertices on the cut, and a
  location exactly on an edge crossing the antimeridian could fall out.
- Distances are geodesic on the WGS 84 ellipsoid (``pyproj.Geod``, Karney's algorithm), never
  degree buffers.

Errors: bad arguments raise a plain ``ValueError`` naming the argument.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

logger = logging.getLogger(__name__)

WGS84 = Geod(ellps="WGS84")
_A_M = WGS84.a
_E2 = WGS84.es

# Widening of conservative search boxes: far above floating-point error (~1e-13 degrees), far
# below anything a location's precision could notice (1e-9 degrees is 0.1 mm).
BOX_MARGIN_DEG = 1e-9


# --------------------------------------------------------------------------------------------
# Repair


def repair(geom: BaseGeometry) -> tuple[BaseGeometry, bool]:
    """Return ``(geometry, was_invalid)``: invalid shapes pass through ``shapely.make_valid``.

    The repaired shape keeps all the input's linework (bow-ties become two triangles), so no
    area the sender drew is lost. If GEOS cannot repair a degenerate shape at all, every ring is
    repaired as a polygon of its own and their union is used: more area, never less.
    """
    if geom is None or geom.is_empty or shapely.is_valid(geom):
        return geom, False
    try:
        return shapely.make_valid(geom), True
    except shapely.errors.GEOSException:
        logger.warning("make_valid failed; repairing ring by ring")
    pieces = []
    for part in _flat_parts(geom):
        rings = shapely.get_rings(part) if part.geom_type == "Polygon" else [part]
        for ring in rings:
            coords = shapely.get_coordinates(ring)
            if len(coords) >= 4 and ring.geom_type in ("LinearRing", "LineString"):
                pieces.append(shapely.make_valid(shapely.Polygon(coords)))
            else:
                pieces.append(ring)
    return shapely.union_all(pieces), True


def coordinate_bounds(geoms: np.ndarray) -> np.ndarray:
    """(minx, miny, maxx, maxy) of all coordinates of each geometry, NaN for empty ones.

    Unlike ``shapely.bounds`` (the envelope of a polygon's shell) this covers the holes too,
    which matters for invalid polygons whose holes lie outside their shell.
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.full((geoms.size, 4), np.nan)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    if owner.size:
        start = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
        rows = owner[start]
        out[rows, 0] = np.minimum.reduceat(coords[:, 0], start)
        out[rows, 1] = np.minimum.reduceat(coords[:, 1], start)
        out[rows, 2] = np.maximum.reduceat(coords[:, 0], start)
        out[rows, 3] = np.maximum.reduceat(coords[:, 1], start)
    return out


# --------------------------------------------------------------------------------------------
# Antimeridian


def needs_longitude_fix(bounds: np.ndarray) -> np.ndarray:
    """Which shapes, given their :func:`coordinate_bounds`, need antimeridian handling.

    A shape needs it when it reaches beyond ±180 or spans more than 180 degrees of longitude
    (the only way an edge can jump across the antimeridian).
    """
    with np.errstate(invalid="ignore"):
        return (bounds[:, 0] < -180.0) | (bounds[:, 2] > 180.0) | (
            bounds[:, 2] - bounds[:, 0] > 180.0
        )


def _unwrap_ring(coords: np.ndarray) -> np.ndarray | None:
    """Make a ring's longitudes continuous (no edge longer than 180 degrees); None if it can't.

    A ring whose unwrapped longitudes do not close encircles a pole and cannot be unwrapped.
    """
    x = coords[:, 0]
    step = np.diff(x)
    turns = np.where(
        (np.abs(step) > 180.0) & (np.abs(step) != 360.0), -np.sign(step), 0.0
    )
    if not turns.any():
        return coords
    offset = np.concatenate(([0.0], np.cumsum(turns))) * 360.0
    if offset[-1] != 0.0:
        return None
    out = coords.copy()
    out[:, 0] = x + offset
    return out


def _shift_x(coords: np.ndarray, towards: float) -> np.ndarray:
    """Shift a ring by whole turns so that its mean longitude is nearest ``towards``."""
    turns = round((towards - float(coords[:, 0].mean())) / 360.0)
    if turns == 0:
        return coords
    out = coords.copy()
    out[:, 0] += 360.0 * turns
    return out


def _unwrap_polygon(poly: shapely.Polygon) -> shapely.Polygon | None:
    shell = _unwrap_ring(np.asarray(poly.exterior.coords))
    if shell is None:
        return None
    centre = float(shell[:, 0].mean())
    holes = []
    for ring in poly.interiors:
        hole = _unwrap_ring(np.asarray(ring.coords))
        if hole is None:
            return None
        holes.append(_shift_x(hole, centre))
    return shapely.Polygon(shell, holes)


def unwrap_longitudes(geom: BaseGeometry) -> BaseGeometry:
    """Rewrite polygons whose edges jump across the antimeridian with continuous longitudes.

    ``[(170, 10), (-170, 10), ...]`` becomes ``[(170, 10), (190, 10), ...]``: an edge longer than
    180 degrees of longitude is read as the short way round, as RFC 7946 readers do. Rings that
    would encircle a pole are left as drawn (logged).
    """
    if geom is None or geom.is_empty:
        return geom
    parts = shapely.get_parts(geom) if geom.geom_type != "Polygon" else [geom]
    fixed = []
    changed = False
    for part in parts:
        if part.geom_type != "Polygon":
            fixed.append(part)
            continue
        unwrapped = _unwrap_polygon(part)
        if unwrapped is None:
            logger.warning("a ring encircles a pole; its longitudes are used as drawn")
            fixed.append(part)
            continue
        changed = changed or not unwrapped.equals_exact(part, 0.0)
        fixed.append(unwrapped)
    if not changed:
        return geom
    if geom.geom_type == "Polygon":
        return fixed[0]
    if geom.geom_type == "MultiPolygon":
        return shapely.MultiPolygon(fixed)
    return shapely.GeometryCollection(fixed)


def split_at_antimeridian(geom: BaseGeometry) -> BaseGeometry:
    """Cut a shape reaching beyond ±180 into pieces within [-180, 180] (planar clipping).

    Each 360-degree window of the shape is clipped and translated by whole turns; translating
    coordinates of magnitude 180..540 by 360 is exact in floating point, so only the new vertices
    on the cut itself are rounded. Pieces keep their dimension (polygons stay polygons).
    """
    if geom is None or geom.is_empty:
        return geom
    minx, miny, maxx, maxy = coordinate_bounds(np.array([geom], dtype=object))[0]
    if minx >= -180.0 and maxx <= 180.0:
        return geom
    first = math.floor((minx + 180.0) / 360.0)
    last = math.ceil((maxx - 180.0) / 360.0)
    parts = _flat_parts(geom)
    out: list[BaseGeometry] = []
    for turn in range(first, last + 1):
        window = shapely.box(-180.0 + 360.0 * turn, miny, 180.0 + 360.0 * turn, maxy)
        for part in parts:
            dim = shapely.get_dimensions(part)
            piece = shapely.intersection(part, window)
            for sub in _flat_parts(piece):
                if shapely.get_dimensions(sub) != dim or sub.is_empty:
                    continue  # slivers on the cut: the other window (or ±180 identity) has them
                out.append(shift_longitude(sub, -360.0 * turn))
    return _collect(out)


def shift_longitude(geom: BaseGeometry, degrees: float) -> BaseGeometry:
    """The shape moved east by ``degrees`` (by whole turns: exact while |lon| stays >= 128)."""
    offset = np.array([degrees, 0.0])
    return shapely.transform(geom, lambda xy: xy + offset)


def _flat_parts(geom: BaseGeometry) -> list[BaseGeometry]:
    """All single parts of a geometry, collections flattened recursively."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type in ("Point", "LineString", "LinearRing", "Polygon"):
        return [geom]
    out: list[BaseGeometry] = []
    for part in shapely.get_parts(geom):
        out.extend(_flat_parts(part))
    return out


def _collect(parts: list[BaseGeometry]) -> BaseGeometry:
    """Parts as one geometry: overlapping polygons are merged, single parts returned as is."""
    polygons = [p for p in parts if p.geom_type == "Polygon"]
    others = [p for p in parts if p.geom_type != "Polygon"]
    if not parts:
        return shapely.Polygon()
    area: BaseGeometry | None = None
    if polygons:
        area = shapely.MultiPolygon(polygons) if len(polygons) > 1 else polygons[0]
        if not area.is_valid:  # pieces of a shape wider than 360 degrees overlap
            area = shapely.union_all(polygons)
    if not others:
        return area  # type: ignore[return-value]
    return shapely.GeometryCollection(([area] if area is not None else []) + others)


def whole_turn_copies(geom: BaseGeometry) -> BaseGeometry:
    """The shape plus its copies moved by whole turns, one for each 360-degree window it reaches.

    For testing locations in [-180, 180]: a location is covered when some copy covers it. No
    new vertices are made (cutting at ±180 would round the cut points and could drop a location
    lying exactly on an edge that crosses the antimeridian); moving coordinates of magnitude
    128 to 540 by 360 degrees is exact. Shapes within [-180, 180] are returned unchanged.
    """
    if geom is None or geom.is_empty:
        return geom
    minx, _, maxx, _ = coordinate_bounds(np.array([geom], dtype=object))[0]
    if minx >= -180.0 and maxx <= 180.0:
        return geom
    first = math.floor((minx + 180.0) / 360.0)
    last = math.floor((maxx + 180.0) / 360.0)
    copies = [shift_longitude(geom, -360.0 * turn) if turn else geom
              for turn in range(first, last + 1)]
    return shapely.GeometryCollection(copies)


def normalize_longitudes(geom: BaseGeometry) -> BaseGeometry:
    """Bring a shape into [-180, 180]: unwrap edges jumping across ±180, then split there.

    Shapes already within range and without jumps are returned unchanged (the same object).
    """
    if geom is None or geom.is_empty:
        return geom
    minx, _, maxx, _ = coordinate_bounds(np.array([geom], dtype=object))[0]
    if maxx - minx > 180.0:
        geom = unwrap_longitudes(geom)
    return split_at_antimeridian(geom)


def join_antimeridian(geom: BaseGeometry) -> BaseGeometry:
    """Undo an RFC 7946 split: shift pieces west of the antimeridian by +360 and merge.

    Used for measuring (the cut along ±180 is not a real edge); a shape that does not touch
    both +180 and -180 is returned unchanged.
    """
    if geom is None or geom.is_empty:
        return geom
    minx, _, maxx, _ = geom.bounds
    if minx > -180.0 or maxx < 180.0:
        return geom
    shifted = [
        shift_longitude(part, 360.0) if part.bounds[2] <= 0.0 else part
        for part in _flat_parts(geom)
    ]
    polygons = [p for p in shifted if p.geom_type == "Polygon"]
    others = [p for p in shifted if p.geom_type != "Polygon"]
    merged = shapely.union_all(polygons) if polygons else None
    if not others:
        return merged  # type: ignore[return-value]
    return shapely.GeometryCollection(([merged] if merged is not None else []) + others)


# --------------------------------------------------------------------------------------------
# Linework


class Segments(NamedTuple):
    """Straight pieces of the linework of many geometries: ``owner[i]`` drew segment ``i``."""

    owner: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray


def linework_segments(geoms: np.ndarray) -> Segments:
    """Every segment of every ring, line and point of ``geoms`` (points as zero-length segments).

    The boundary of a polygonal shape, plus any lower-dimensional parts, is exactly where the
    inside/outside status of a location can change, so these segments are what an exact index
    must look at.
    """
    geoms = np.asarray(geoms, dtype=object)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    while True:
        keep = ~shapely.is_empty(parts)
        parts, owner = parts[keep], owner[keep]
        kinds = shapely.get_type_id(parts)
        multi = kinds >= 4  # Multi* and GeometryCollection
        if not multi.any():
            break
        sub, sub_owner = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        owner = np.concatenate([owner[~multi], owner[multi][sub_owner]])
    kinds = shapely.get_type_id(parts)
    polygon = kinds == 3
    rings, ring_owner = shapely.get_rings(parts[polygon], return_index=True)
    lines = np.concatenate([parts[(kinds == 1) | (kinds == 2)], rings])
    line_owner = np.concatenate(
        [owner[(kinds == 1) | (kinds == 2)], owner[polygon][ring_owner]]
    ).astype(np.int64)
    coords, which = shapely.get_coordinates(lines, return_index=True)
    same = which[1:] == which[:-1]
    point_xy = shapely.get_coordinates(parts[kinds == 0])
    point_owner = owner[kinds == 0].astype(np.int64)
    return Segments(
        owner=np.concatenate([line_owner[which[:-1][same]], point_owner]),
        x0=np.concatenate([coords[:-1, 0][same], point_xy[:, 0]]),
        y0=np.concatenate([coords[:-1, 1][same], point_xy[:, 1]]),
        x1=np.concatenate([coords[1:, 0][same], point_xy[:, 0]]),
        y1=np.concatenate([coords[1:, 1][same], point_xy[:, 1]]),
    )


# --------------------------------------------------------------------------------------------
# Geodesy


def _parallel_radius_m(lat_deg: float) -> float:
    """Radius of the parallel at ``lat_deg`` on WGS 84 (distance to the axis), in metres."""
    phi = math.radians(lat_deg)
    return _A_M * math.cos(phi) / math.sqrt(1.0 - _E2 * math.sin(phi) ** 2)


def geodesic_bounds(
    lon: float, lat: float, radius_m: float
) -> list[tuple[float, float, float, float]]:
    """Lon/lat boxes within [-180, 180] that hold every point within ``radius_m`` of the centre.

    Provably conservative on the ellipsoid: a path of length r changes latitude by at most the
    meridian arc r (meridians are geodesics) and longitude by at most r divided by the smallest
    parallel radius it can reach. Circles reaching a pole get the full longitude range; circles
    crossing the antimeridian get two boxes.
    """
    for name, value in (("lon", lon), ("lat", lat), ("radius_m", radius_m)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"lat must lie between -90 and 90 degrees, got {lat!r}")
    if radius_m < 0.0:
        raise ValueError(f"radius_m must be >= 0, got {radius_m!r}")
    reach = radius_m * (1.0 + 1e-9) + 1e-3
    to_north = WGS84.inv(lon, lat, lon, 90.0)[2] if lat < 90.0 else 0.0
    to_south = WGS84.inv(lon, lat, lon, -90.0)[2] if lat > -90.0 else 0.0
    if reach >= to_north:
        north = 90.0
    else:
        north = min(90.0, WGS84.fwd(lon, lat, 0.0, reach)[1] + BOX_MARGIN_DEG)
    if reach >= to_south:
        south = -90.0
    else:
        south = max(-90.0, WGS84.fwd(lon, lat, 180.0, reach)[1] - BOX_MARGIN_DEG)
    if north >= 90.0 or south <= -90.0:
        return [(-180.0, south, 180.0, north)]
    smallest = _parallel_radius_m(max(abs(north), abs(south)))
    half = math.degrees(reach / smallest) + BOX_MARGIN_DEG
    if half >= 180.0:
        return [(-180.0, south, 180.0, north)]
    centre = ((lon + 180.0) % 360.0) - 180.0
    west, east = centre - half, centre + half
    boxes = [(max(west, -180.0), south, min(east, 180.0), north)]
    if west < -180.0:
        boxes.append((west + 360.0, south, 180.0, north))
    if east > 180.0:
        boxes.append((-180.0, south, east - 360.0, north))
    return boxes


# Bounds of the WGS 84 metric relative to a unit sphere in geodetic coordinates: the meridional
# radius of curvature at the equator and the radius of curvature at the poles. Every path (so
# every geodesic) is between these multiples of the central angle on the unit sphere.
_SMALLEST_RADIUS_M = _A_M * (1.0 - _E2)
_LARGEST_RADIUS_M = _A_M / math.sqrt(1.0 - _E2)
_SAFETY = 1e-9  # relative; floating-point error of the central angle is far smaller


ArrayLike = float | np.ndarray


def central_angle(lon0: ArrayLike, lat0: ArrayLike, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Angle (radians) between points on the unit sphere, element-wise, accurate at all distances.

    Uses the atan2 form (no loss near 0 or 180 degrees); arguments broadcast like numpy.
    """
    p0 = np.radians(lat0)
    p = np.radians(lat)
    dl = np.radians(np.asarray(lon, dtype=float) - lon0)
    cos_p, sin_p, cos_p0, sin_p0, cos_dl = np.cos(p), np.sin(p), np.cos(p0), np.sin(p0), np.cos(dl)
    num = np.hypot(cos_p * np.sin(dl), cos_p0 * sin_p - sin_p0 * cos_p * cos_dl)
    return np.arctan2(num, sin_p0 * sin_p + cos_p0 * cos_p * cos_dl)


def surely_within(lon0: ArrayLike, lat0: ArrayLike, lon: ArrayLike, lat: ArrayLike,
                  radius_m: ArrayLike) -> np.ndarray:
    """Points that the spherical bound alone proves to be within ``radius_m`` of the centre."""
    angle = central_angle(lon0, lat0, lon, lat)
    return angle * _LARGEST_RADIUS_M * (1.0 + _SAFETY) + 1e-3 <= radius_m


def geodesic_within(lon0: ArrayLike, lat0: ArrayLike, lon: ArrayLike, lat: ArrayLike,
                    radius_m: ArrayLike) -> np.ndarray:
    """Whether each point is within ``radius_m`` geodesic metres of its centre (WGS 84), exactly.

    The answer is ``geodesic_distance_m(...) <= radius_m``; a spherical bound settles all points
    but those within about 1 % of the radius first, because every WGS 84 geodesic is between
    6,335,439 and 6,399,594 m times the central angle on the unit sphere. Arguments broadcast.
    """
    lon0, lat0, lon, lat, radius_m = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (lon0, lat0, lon, lat, radius_m))
    )
    angle = central_angle(lon0, lat0, lon, lat)
    inside = angle * _LARGEST_RADIUS_M * (1.0 + _SAFETY) + 1e-3 <= radius_m
    surely_out = angle * _SMALLEST_RADIUS_M * (1.0 - _SAFETY) - 1e-3 > radius_m
    unsure = np.flatnonzero(~(inside | surely_out))
    if unsure.size:
        dist = geodesic_distance_m(lon0[unsure], lat0[unsure], lon[unsure], lat[unsure])
        inside[unsure] = dist <= radius_m[unsure]
    return inside


def geodesic_distance_m(lon0: ArrayLike, lat0: ArrayLike, lon: ArrayLike,
                        lat: ArrayLike) -> np.ndarray:
    """Geodesic distance in metres between points on WGS 84 (``Geod.inv``), element-wise."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lon0, lat0, lon, lat)))
    if arrays[0].size == 0:
        return np.empty(arrays[0].shape)
    _, _, dist = WGS84.inv(*(np.ascontiguousarray(a) for a in arrays))
    return np.asarray(dist, dtype=float)




def aeqd_forward(lon0: float, lat0: float, lon: ArrayLike, lat: ArrayLike
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal equidistant coordinates (metres) around a centre, on the WGS 84 ellipsoid.

    A point's coordinates are its geodesic distance and azimuth from the centre (Geod.inv), so
    distances from the centre are exact and local shapes barely distorted.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    az, _, dist = WGS84.inv(np.full(lon.shape, float(lon0)), np.full(lat.shape, float(lat0)),
                            lon, lat)
    az = np.radians(np.asarray(az, dtype=float))
    dist = np.asarray(dist, dtype=float)
    return dist * np.sin(az), dist * np.cos(az)


def aeqd_inverse(lon0: float, lat0: float, x: ArrayLike, y: ArrayLike
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of azimuthal equidistant coordinates (inverse of aeqd_forward)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    lon, lat, _ = WGS84.fwd(np.full(x.shape, float(lon0)), np.full(y.shape, float(lat0)),
                            np.degrees(np.arctan2(x, y)), np.hypot(x, y))
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def geodesic_circle(
    lon: float, lat: float, radius_km: float, n_vertices: int = 128
) -> BaseGeometry:
    """A polygon approximating a geodesic circle, split at the antimeridian (for maps and sjoin).

    The vertices lie exactly on the circle; the edges cut inside it, so the polygon is a slight
    under-estimate. The impact engine never uses it: radius hazards are tested by distance.
    """
    if n_vertices < 8:
        raise ValueError(f"n_vertices must be at least 8, got {n_vertices!r}")
    if not (math.isfinite(radius_km) and radius_km > 0):
        raise ValueError(f"radius_km must be a finite number > 0, got {radius_km!r}")
    azimuths = np.linspace(0.0, 360.0, n_vertices, endpoint=False)
    x, y, _ = WGS84.fwd(
        np.full(n_vertices, float(lon)), np.full(n_vertices, float(lat)), azimuths,
        np.full(n_vertices, radius_km * 1000.0),
    )
    ring = np.column_stack([x, y])
    ring = _unwrap_ring(np.vstack([ring, ring[:1]]))
    if ring is None:
        raise ValueError(f"radius_km={radius_km!r} around ({lon}, {lat}) holds a pole")
    return split_at_antimeridian(shapely.Polygon(ring))
