"""Awkward hazard shapes and locations, and a brute-force oracle every spatial function must match.

Each :class:`Case` holds hazards (shapes or radius hazards), locations and, where the answer is
obvious by hand, the expected (hazard, location) pairs. Coordinates are mostly small binary
fractions, so points lie *exactly* on edges and vertices. The oracle is deliberately naive and
independent of ``layers``: one shapely ``intersects`` call per (hazard, location, turn of the
globe), one ``Geod.inv`` per radius test. Its rules, restated here on purpose: covers in planar
lon/lat; a shape is also tried moved a whole turn east and west; an edge longer than 180 degrees
of longitude goes the short way; invalid shapes go through ``make_valid``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.affinity
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, box

GEOD = Geod(ellps="WGS84")

Pair = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Case:
    """Hazards and locations to run together; ``expected`` pairs when known by hand."""

    name: str
    hazards: tuple[dict[str, Any], ...]
    points: tuple[tuple[str, float, float], ...]
    expected: frozenset[Pair] | None = None
    invalid: tuple[str, ...] = ()  # hazard ids whose shape must be repaired (a warning)


def shape(hid: str, geom: Any) -> dict[str, Any]:
    return {"hazard_id": hid, "geometry": geom}


def circle(hid: str, lon: float, lat: float, radius_km: float) -> dict[str, Any]:
    return {"hazard_id": hid, "geometry": Point(lon, lat), "center_lon": lon,
            "center_lat": lat, "radius_km": radius_km}


def pairs(hid: str, *pids: str) -> set[Pair]:
    return {(hid, p) for p in pids}


def on_circle(lon: float, lat: float, azimuth: float, metres: float) -> tuple[float, float]:
    x, y, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return float(x), float(y)


# --------------------------------------------------------------------------------------------
# The catalogue

_SQUARE_WITH_HOLE = Polygon(
    [(0, 0), (10, 0), (10, 10), (0, 10)], [[(4, 4), (6, 4), (6, 6), (4, 6)]]
)
_TRIANGLE = Polygon([(0, 0), (8, 0), (0, 8)])
_BOWTIE = Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
_SPLIT = MultiPolygon([box(170, 5, 180, 10), box(-180, 5, -170, 10)])
_BEYOND = Polygon([(170, 5), (190, 5), (190, 10), (170, 10)])
_JUMP = Polygon([(170, 5), (-170, 5), (-170, 10), (170, 10)])
_PACIFIC_POINTS = (
    ("majuro", 171.375, 7.0859375),
    ("east", -175.0, 7.5),
    ("on180", 180.0, 7.5),
    ("onm180", -180.0, 7.5),
    ("corner180", -180.0, 10.0),
    ("below", 180.0, 4.5),
    ("west", 169.5, 7.5),
    ("far_east", -169.5, 7.5),
)
_PACIFIC_EXPECTED = {"majuro", "east", "on180", "onm180", "corner180"}

CATALOGUE: tuple[Case, ...] = (
    Case(
        "square with a hole",
        (shape("hole", _SQUARE_WITH_HOLE),),
        (
            ("in_hole", 5, 5), ("on_hole_edge", 4, 5), ("hole_vertex", 4, 4),
            ("on_hole_bottom", 5, 4), ("inside", 2, 2), ("outer_vertex", 0, 0),
            ("outer_edge", 10, 5), ("outside", 11, 5), ("just_outside", 10.0000001, 5),
            ("just_in_hole", 4.0000001, 5),
        ),
        frozenset(pairs("hole", "on_hole_edge", "hole_vertex", "on_hole_bottom", "inside",
                        "outer_vertex", "outer_edge")),
    ),
    Case(
        "horizontal, vertical and diagonal edges",
        (shape("tri", _TRIANGLE),),
        (
            ("hyp_mid", 4, 4), ("hyp_a", 2, 6), ("hyp_b", 0.5, 7.5), ("hyp_c", 7.75, 0.25),
            ("beyond_hyp", 4.000001, 4), ("inside", 3.5, 4.25), ("bottom", 3, 0),
            ("left", 0, 3), ("apex", 0, 8), ("below", 3, -0.125), ("right_vertex", 8, 0),
        ),
        frozenset(pairs("tri", "hyp_mid", "hyp_a", "hyp_b", "hyp_c", "inside", "bottom",
                        "left", "apex", "right_vertex")),
    ),
    Case(
        "multipolygon with a hole in one part",
        (shape("multi", MultiPolygon([_SQUARE_WITH_HOLE, box(20, 0, 22, 2)])),),
        (("first", 1, 1), ("second", 21, 1), ("second_vertex", 22, 2), ("between", 15, 1),
         ("hole", 5, 5), ("hole_ring", 6, 5)),
        frozenset(pairs("multi", "first", "second", "second_vertex", "hole_ring")),
    ),
    Case(
        "empty and missing shapes",
        (shape("empty", Polygon()), shape("none", None), shape("empty_multi", MultiPolygon())),
        (("a", 0, 0), ("b", 1, 1)),
        frozenset(),
    ),
    Case(
        "invalid bow-tie",
        (shape("bowtie", _BOWTIE),),
        (("crossing", 1, 1), ("left", 0.5, 1), ("right", 1.5, 1), ("bottom_gap", 1, 0.5),
         ("top_gap", 1, 1.5), ("vertex", 2, 2)),
        frozenset(pairs("bowtie", "crossing", "left", "right", "vertex")),
        invalid=("bowtie",),
    ),
    Case(
        "antimeridian split into a MultiPolygon (RFC 7946)",
        (shape("split", _SPLIT),),
        _PACIFIC_POINTS,
        frozenset(pairs("split", *_PACIFIC_EXPECTED)),
    ),
    Case(
        "antimeridian drawn with longitudes beyond 180",
        (shape("beyond", _BEYOND),),
        _PACIFIC_POINTS,
        frozenset(pairs("beyond", *_PACIFIC_EXPECTED)),
    ),
    Case(
        "antimeridian drawn with an edge jumping from 170 to -170",
        (shape("jump", _JUMP),),
        _PACIFIC_POINTS,
        frozenset(pairs("jump", *_PACIFIC_EXPECTED)),
    ),
    Case(
        "antimeridian beyond 180 with a diagonal edge through the cut",
        (shape("diag", Polygon([(170, 0), (190, 10), (170, 10)])),),
        (("cut", 180, 5), ("cut_west", -180, 5), ("on_edge_east", -175, 7.5),
         ("below_edge_east", -175, 7.4375), ("on_edge_west", 175, 2.5), ("inside", 179, 9),
         ("cut_below", 180, 4.875)),
        frozenset(pairs("diag", "cut", "cut_west", "on_edge_east", "on_edge_west", "inside")),
    ),
    Case(
        "a location exactly on an edge that crosses the antimeridian at an inexact latitude",
        # the edge meets -180 at latitude -1.825, which no float holds: a cut would round it
        (shape("cone", Polygon([(-177.875, -2.25), (-172, 0), (-182.875, -1.25)])),),
        (("on_edge", 178.375, -1.5), ("on_edge_east", -179.125, -2.0),
         ("below_edge_east", -178.875, -2.05078125),
         ("vertex", 177.125, -1.25), ("inside", -178, -1)),
        frozenset(pairs("cone", "on_edge", "on_edge_east", "vertex", "inside")),
    ),
    Case(
        "antimeridian beyond 180 with a hole across the cut",
        (shape("ring", Polygon([(170, -10), (190, -10), (190, 10), (170, 10)],
                               [[(178, -2), (182, -2), (182, 2), (178, 2)]])),),
        (("in_hole_e", -179, 0), ("hole_edge_e", -178, 0), ("in_hole_180", 180, 0),
         ("in_hole_w", 179, 0), ("hole_edge_w", 178, 1), ("solid", 175, 5),
         ("solid_e", -172, -5)),
        frozenset(pairs("ring", "hole_edge_e", "hole_edge_w", "solid", "solid_e")),
    ),
    Case(
        "locations on +180 and -180 match shapes touching either side",
        (shape("east_side", box(175, 0, 180, 5)), shape("west_side", box(-180, 10, -175, 15))),
        (("p180", 180, 2), ("m180", -180, 2), ("p180_w", 180, 12), ("m180_w", -180, 12),
         ("m180_corner", -180, 5), ("p180_outside", 180, 7)),
        frozenset(pairs("east_side", "p180", "m180", "m180_corner")
                  | pairs("west_side", "p180_w", "m180_w")),
    ),
    Case(
        "Pacific territories: Guam, American Samoa, Majuro",
        (
            shape("typhoon", Polygon([(140, 10), (175, 3), (192, 3), (192, 12), (140, 17)])),
            shape("samoa_split", MultiPolygon([box(175, -20, 180, -10),
                                               box(-180, -20, -165, -10)])),
            shape("guam_only", box(144.5, 13.25, 145, 13.75)),
        ),
        (("guam", 144.78, 13.45), ("samoa", -170.7, -14.28), ("majuro", 171.38, 7.09),
         ("honolulu", -157.86, 21.31)),
        frozenset(pairs("typhoon", "guam", "majuro") | pairs("samoa_split", "samoa")
                  | pairs("guam_only", "guam")),
    ),
    Case(
        "tiny and huge polygons",
        (
            shape("tiny", box(10, 10, 10 + 2**-20, 10 + 2**-20)),
            shape("huge", box(-170, -80, 5, 80)),
            shape("world", box(-180, -90, 180, 90)),
        ),
        (("tiny_in", 10 + 2**-21, 10 + 2**-21), ("tiny_vertex", 10, 10),
         ("tiny_out", 10 + 2**-19, 10), ("centre", 0, 0), ("honolulu", -157.86, 21.31),
         ("near_180", 179.5, 0), ("at_m180", -180, 0), ("pole", 0, 90), ("south", 20, -85)),
        frozenset(pairs("tiny", "tiny_in", "tiny_vertex")
                  | pairs("huge", "centre", "honolulu")
                  | pairs("world", "tiny_in", "tiny_vertex", "tiny_out", "centre", "honolulu",
                          "near_180", "at_m180", "pole", "south")),
    ),
    Case(
        "an edge longer than 180 degrees goes the short way, across the antimeridian",
        (shape("sliver", box(-179, -80, 179, 80)),),
        (("centre", 0, 0), ("near_180", 179.5, 0), ("at_m180", -180, 0), ("m1795", -179.5, 0),
         ("edge", 179, 10), ("edge_w", -179, -80)),
        frozenset(pairs("sliver", "near_180", "at_m180", "m1795", "edge", "edge_w")),
    ),
    Case(
        "shared borders of neighbouring counties",
        (shape("c1", box(0, 0, 1, 1)), shape("c2", box(1, 0, 2, 1)),
         shape("c3", Polygon([(0, 1), (2, 1), (1, 2)]))),
        (("border12", 1, 0.5), ("triple", 1, 1), ("c3_only", 1, 1.5), ("c1_only", 0.5, 0.5)),
        frozenset(pairs("c1", "border12", "triple", "c1_only") | pairs("c2", "border12",
                  "triple") | pairs("c3", "triple", "c3_only")),
    ),
    Case(
        "radius hazards near their edge",
        (circle("q100", -118.25, 34.05, 100.0), circle("zero", 10.0, 10.0, 0.0)),
        (
            ("inside_1mm", *on_circle(-118.25, 34.05, 37.0, 100_000.0 - 1e-3)),
            ("outside_1mm", *on_circle(-118.25, 34.05, 37.0, 100_000.0 + 1e-3)),
            ("at_edge_north", *on_circle(-118.25, 34.05, 0.0, 100_000.0)),
            ("at_edge_east", *on_circle(-118.25, 34.05, 90.0, 100_000.0)),
            ("centre", -118.25, 34.05),
            ("zero_centre", 10.0, 10.0),
            ("zero_near", 10.0, 10.000001),
            ("deg_buffer_trap", -118.25 + 100 / 111.32 / math.cos(math.radians(34.05)) * 1.004,
             34.05),
        ),
    ),
    Case(
        "radius hazards across the antimeridian, at a pole, and the Samoa tsunami circle",
        (circle("dateline", 179.5, 0.0, 200.0), circle("polar", 0.0, 89.5, 100.0),
         circle("tsunami", -170.7, -14.28, 1100.0), circle("east_centre", -179.9, 13.0, 50.0)),
        (("east", -179.5, 0.0), ("far_east", -178.0, 0.0), ("on180", 180.0, 0.0),
         ("m180", -180.0, 0.0), ("pole_cap", 120.0, 89.9), ("pole", 0.0, 90.0),
         ("samoa", -170.7, -14.28), ("fiji", 178.44, -18.14), ("tonga", -175.2, -21.13),
         ("majuro", 171.38, 7.09), ("m180_13", -180.0, 13.0), ("p180_13", 180.0, 13.0),
         ("guam", 144.78, 13.45)),
    ),
    Case(
        "same shape under two ids, and a geometry collection",
        (shape("a", box(0, 0, 1, 1)), shape("b", box(0, 0, 1, 1)),
         shape("gc", shapely.GeometryCollection([box(5, 5, 6, 6), box(7, 5, 8, 6)]))),
        (("p", 0.5, 0.5), ("edge", 1, 0.25), ("gc1", 5.5, 5.5), ("gc2", 8, 6), ("gap", 6.5, 5.5)),
        frozenset(pairs("a", "p", "edge") | pairs("b", "p", "edge") | pairs("gc", "gc1", "gc2")),
    ),
)


# --------------------------------------------------------------------------------------------
# Frames and the oracle


def hazards_frame(hazards: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> gpd.GeoDataFrame:
    rows = [dict(h) for h in hazards]
    for row in rows:
        for col in ("center_lon", "center_lat", "radius_km"):
            row.setdefault(col, np.nan)
    return gpd.GeoDataFrame(
        {k: [r[k] for r in rows] for k in ("hazard_id", "center_lon", "center_lat", "radius_km")},
        geometry=[r["geometry"] for r in rows],
        crs="EPSG:4326",
    )


def points_frame(points: tuple[tuple[str, float, float], ...] | list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"location_id": [p[0] for p in points]},
        geometry=[Point(p[1], p[2]) for p in points],
        crs="EPSG:4326",
    )


def _unwrap_ring(coords: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Independent re-statement of the rule: an edge longer than 180 degrees goes the short way."""
    out = [coords[0]]
    offset = 0.0
    for (x0, _), (x1, y1) in itertools.pairwise(coords):
        step = x1 - x0
        if abs(step) > 180.0 and abs(step) != 360.0:
            offset -= 360.0 * math.copysign(1.0, step)
        out.append((x1 + offset, y1))
    return out


def _oracle_shape(geom: Any) -> Any:
    """The raw shape with jumping edges unwrapped and, if invalid, repaired."""
    def fix(poly: Polygon) -> Polygon:
        shell = _unwrap_ring(list(poly.exterior.coords))
        centre = sum(x for x, _ in shell) / len(shell)
        holes = []
        for ring in poly.interiors:
            hole = _unwrap_ring(list(ring.coords))
            turns = round((centre - sum(x for x, _ in hole) / len(hole)) / 360.0)
            holes.append([(x + 360.0 * turns, y) for x, y in hole])
        return Polygon(shell, holes)

    xs = shapely.get_coordinates(geom)[:, 0]
    if xs.max() - xs.min() > 180.0:
        if geom.geom_type == "Polygon":
            geom = fix(geom)
        elif geom.geom_type == "MultiPolygon":
            geom = MultiPolygon([fix(p) for p in geom.geoms])
    if geom.is_valid:
        return geom
    try:
        return shapely.make_valid(geom)
    except shapely.errors.GEOSException:  # the documented fallback: every ring on its own
        rings = [r for p in getattr(geom, "geoms", [geom]) for r in shapely.get_rings(p)]
        return shapely.union_all([shapely.make_valid(Polygon(r.coords)) for r in rings])


def brute_force_pairs(points: gpd.GeoDataFrame, hazards: gpd.GeoDataFrame) -> set[Pair]:
    """(hazard_id, location_id) pairs by a plain loop: covers in planar lon/lat by the shape or
    the shape moved a whole turn east or west (so -180 and 180 are one meridian), or geodesic
    distance <= radius on WGS 84."""
    out: set[Pair] = set()
    locs = [(lid, g.x, g.y) for lid, g in zip(points["location_id"], points.geometry,
                                                strict=True)]
    for row in hazards.itertuples(index=False):
        radius = getattr(row, "radius_km", np.nan)
        if radius is not None and not math.isnan(radius):
            for lid, x, y in locs:
                if GEOD.inv(row.center_lon, row.center_lat, x, y)[2] <= radius * 1000.0:
                    out.add((row.hazard_id, lid))
            continue
        geom = row.geometry
        if geom is None or geom.is_empty:
            continue
        geom = _oracle_shape(geom)
        moved = [shapely.affinity.translate(geom, xoff=360.0 * k) for k in (-2, -1, 0, 1, 2)]
        for lid, x, y in locs:
            if any(m.intersects(Point(x, y)) for m in moved):
                out.add((row.hazard_id, lid))
    return out


def pair_set(frame: Any) -> set[Pair]:
    return set(zip(frame["hazard_id"].astype(str), frame["location_id"].astype(str),
                   strict=True))
