"""Geometry hygiene and geodesic helpers: antimeridian handling, repair, boxes, circles."""

from __future__ import annotations

import logging
import warnings

import antimeridian
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from layers import shapes
from tests.layers.geometry_catalogue import GEOD

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BEYOND = Polygon([(170, 5), (190, 5), (190, 10), (170, 10)])
JUMP = Polygon([(170, 5), (-170, 5), (-170, 10), (170, 10)])
SPLIT = MultiPolygon([box(170, 5, 180, 10), box(-180, 5, -170, 10)])


# --------------------------------------------------------------------------------------------
# Antimeridian


def test_shapes_within_range_are_returned_unchanged() -> None:
    square = box(0, 0, 1, 1)
    assert shapes.normalize_longitudes(square) is square
    assert shapes.normalize_longitudes(SPLIT) is SPLIT
    assert shapes.normalize_longitudes(None) is None
    assert shapes.split_at_antimeridian(Polygon()).is_empty


@pytest.mark.parametrize("geom", [BEYOND, JUMP, shapes.shift_longitude(BEYOND, -360.0)])
def test_crossing_shapes_become_pieces_on_both_sides(geom: Polygon) -> None:
    out = shapes.normalize_longitudes(geom)
    assert out.geom_type == "MultiPolygon" and out.is_valid
    minx, _, maxx, _ = out.bounds
    assert minx == -180.0 and maxx == 180.0
    assert out.normalize().equals_exact(SPLIT.normalize(), 0.0)


def test_split_keeps_every_original_vertex_exactly() -> None:
    rng = np.random.default_rng(3)
    xs = 175 + rng.random(40) * 10  # 175..185, full-precision floats
    ys = rng.random(40) * 10
    ring = shapely.convex_hull(shapely.MultiPoint(np.column_stack([xs, ys])))
    out = shapes.split_at_antimeridian(ring)
    got = {tuple(c) for c in shapely.get_coordinates(out).tolist()}
    for x, y in shapely.get_coordinates(ring).tolist():
        expected = (x - 360.0, y) if x > 180.0 else (x, y)
        assert expected in got  # translated by exactly one turn, no rounding
    assert out.area == pytest.approx(ring.area, rel=1e-12)


def test_wide_and_multi_turn_shapes() -> None:
    wide = box(100, 0, 500, 1)  # more than a whole turn: pieces overlap and are merged
    out = shapes.split_at_antimeridian(wide)
    assert out.is_valid and out.bounds == (-180.0, 0.0, 180.0, 1.0)
    assert out.area == pytest.approx(360.0)
    west = box(-200, 0, -190, 1)
    assert shapes.split_at_antimeridian(west).equals(box(160, 0, 170, 1))


def test_unwrap_aligns_holes_and_leaves_polar_rings() -> None:
    holed = Polygon([(170, -10), (-170, -10), (-170, 10), (170, 10)],
                    [[(-179, -1), (-178, -1), (-178, 1), (-179, 1)]])
    out = shapes.unwrap_longitudes(holed)
    assert out.is_valid and out.interiors[0].bounds[0] == 181.0
    assert shapes.unwrap_longitudes(SPLIT) is SPLIT


def test_unwrap_leaves_rings_around_a_pole_as_drawn(caplog: pytest.LogCaptureFixture) -> None:
    polar = Polygon([(-180, 80), (-60, 80), (60, 80), (179, 80), (179, 90), (-180, 90)])
    polar_jump = Polygon([(0, 80), (120, 80), (-120, 80), (0, 80)])
    with caplog.at_level(logging.WARNING, logger="layers.shapes"):
        assert shapes.unwrap_longitudes(polar_jump) is polar_jump
    assert "encircles a pole" in caplog.text
    assert shapes.unwrap_longitudes(polar) is polar


def test_join_antimeridian_undoes_the_split() -> None:
    joined = shapes.join_antimeridian(SPLIT)
    assert joined.geom_type == "Polygon"
    assert joined.normalize().equals(BEYOND.normalize())
    square = box(0, 0, 1, 1)
    assert shapes.join_antimeridian(square) is square


def test_agrees_with_the_antimeridian_package_for_planar_edges() -> None:
    """The library does the same split (with great_circle=False); ours keeps vertices exact."""
    cases = [BEYOND, JUMP, Polygon([(160, -20), (200, -10), (195, 15), (165, 5)])]
    for geom in cases:
        ours = shapes.normalize_longitudes(geom)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the library warns about winding it fixes
            theirs = antimeridian.fix_polygon(geom, great_circle=False, fix_winding=True)
        assert ours.symmetric_difference(theirs).area < 1e-9


def test_needs_longitude_fix_sees_holes_outside_the_shell() -> None:
    odd = Polygon([(0, 0), (0, 0), (0, 0), (0, 0)], [[(170, 0), (185, 0), (185, 1), (170, 1)]])
    flags = shapes.needs_longitude_fix(shapes.coordinate_bounds(
        np.array([box(0, 0, 1, 1), BEYOND, JUMP, odd, None], dtype=object)))
    assert flags.tolist() == [False, True, True, True, False]
    assert shapes.coordinate_bounds(np.array([odd], dtype=object))[0].tolist() == [0, 0, 185, 1]


# --------------------------------------------------------------------------------------------
# Repair and linework


def test_repair_splits_a_bowtie_and_leaves_valid_shapes() -> None:
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
    fixed, was_invalid = shapes.repair(bowtie)
    assert was_invalid and fixed.is_valid and fixed.area == pytest.approx(2.0)
    square = box(0, 0, 1, 1)
    assert shapes.repair(square) == (square, False)


def test_repair_falls_back_ring_by_ring(caplog: pytest.LogCaptureFixture) -> None:
    odd = Polygon([(0, 0), (0, 0), (0, 0), (0, 0)], [[(0, 1), (1, 1), (1, 2), (0, 2)]])
    with caplog.at_level(logging.WARNING, logger="layers.shapes"):
        fixed, was_invalid = shapes.repair(odd)
    assert was_invalid and fixed.covers(Point(0.5, 1.5)) and fixed.covers(Point(1, 2))


def test_linework_segments_cover_rings_lines_and_points() -> None:
    geoms = np.array([
        Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 2)]]),
        None,
        Polygon(),
        shapely.GeometryCollection([Point(9, 9), LineString([(5, 5), (6, 6), (7, 5)]),
                                    MultiPolygon([box(0, 0, 1, 1)])]),
    ], dtype=object)
    segs = shapes.linework_segments(geoms)
    assert np.bincount(segs.owner, minlength=4).tolist() == [8, 0, 0, 1 + 2 + 4]
    point = (segs.owner == 3) & (segs.x0 == 9)
    assert segs.x1[point].tolist() == [9.0] and segs.y1[point].tolist() == [9.0]


# --------------------------------------------------------------------------------------------
# Geodesy


@st.composite
def centre_and_radius(draw: st.DrawFn) -> tuple[float, float, float]:
    lon = draw(st.one_of(st.floats(-180, 180), st.sampled_from([-180.0, 179.9, -179.9, 0.0])))
    lat = draw(st.one_of(st.floats(-90, 90), st.sampled_from([89.99, -89.99, 0.0, 90.0])))
    radius = draw(st.one_of(st.floats(0, 100_000), st.floats(100_000, 5_000_000)))
    return lon, lat, radius


@FAST
@given(centre_and_radius(), st.lists(st.tuples(st.floats(-180, 180), st.floats(0, 1)),
                                     min_size=1, max_size=30))
def test_geodesic_bounds_hold_every_point_of_the_circle(
    c: tuple[float, float, float], rays: list[tuple[float, float]]
) -> None:
    lon, lat, radius = c
    boxes = shapes.geodesic_bounds(lon, lat, radius)
    assert 1 <= len(boxes) <= 2
    for xmin, ymin, xmax, ymax in boxes:
        assert -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90
    for az, frac in rays:
        x, y, _ = GEOD.fwd(lon, lat, az, radius * frac)
        x = ((x + 180.0) % 360.0) - 180.0
        assert any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes) or abs(x) == 180.0


def test_geodesic_bounds_validate() -> None:
    with pytest.raises(ValueError, match="radius_m must be >= 0"):
        shapes.geodesic_bounds(0, 0, -1)
    with pytest.raises(ValueError, match="lat must lie between -90 and 90"):
        shapes.geodesic_bounds(0, 91, 1)
    with pytest.raises(ValueError, match="lon must be a finite number"):
        shapes.geodesic_bounds(float("nan"), 0, 1)
    assert shapes.geodesic_bounds(0, 89.9, 50_000) == [(-180.0, pytest.approx(89.45, abs=0.01),
                                                        180.0, 90.0)]
    two = shapes.geodesic_bounds(179.5, 0, 200_000)
    assert len(two) == 2 and two[1][0] == -180.0


@FAST
@given(centre_and_radius(), st.lists(st.tuples(st.floats(-180, 180),
                                               st.floats(0.99, 1.01)), min_size=1, max_size=30))
def test_geodesic_within_equals_distance_test(
    c: tuple[float, float, float], rays: list[tuple[float, float]]
) -> None:
    lon, lat, radius = c
    pts = [GEOD.fwd(lon, lat, az, radius * f)[:2] for az, f in rays]
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    got = shapes.geodesic_within(lon, lat, x, y, radius)
    want = [GEOD.inv(lon, lat, a, b)[2] <= radius for a, b in zip(x, y, strict=True)]
    assert got.tolist() == want


def test_geodesic_circle_vertices_lie_on_the_circle() -> None:
    c = shapes.geodesic_circle(-66.3, 18.5, 250.0, n_vertices=64)
    coords = shapely.get_coordinates(c.exterior)
    d = shapes.geodesic_distance_m(-66.3, 18.5, coords[:, 0], coords[:, 1])
    assert np.allclose(d, 250_000.0, atol=1e-6)
    crossing = shapes.geodesic_circle(179.5, 0.0, 200.0)
    assert crossing.geom_type == "MultiPolygon" and crossing.bounds[0] == -180.0
    with pytest.raises(ValueError, match="holds a pole"):
        shapes.geodesic_circle(0.0, 89.9, 100.0)
    with pytest.raises(ValueError, match="radius_km must be a finite number > 0"):
        shapes.geodesic_circle(0.0, 0.0, 0.0)


def test_aeqd_round_trip_and_exact_distance_from_centre() -> None:
    lon = np.array([-77.0, -76.5, -77.2])
    lat = np.array([38.9, 39.1, 38.7])
    x, y = shapes.aeqd_forward(-77.03, 38.9, lon, lat)
    back_lon, back_lat = shapes.aeqd_inverse(-77.03, 38.9, x, y)
    assert np.allclose(back_lon, lon, atol=1e-9) and np.allclose(back_lat, lat, atol=1e-9)
    assert np.allclose(np.hypot(x, y), shapes.geodesic_distance_m(-77.03, 38.9, lon, lat))
