"""The impact engine against a brute-force oracle: catalogue, random shapes, cache, summaries."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon, box

from layers import impact
from layers.impact import HazardGeometryWarning, ImpactIndex, edge_distance_km, summarize
from tests.layers.geometry_catalogue import (
    CATALOGUE,
    GEOD,
    Case,
    brute_force_pairs,
    circle,
    hazards_frame,
    pair_set,
    points_frame,
    shape,
)

FAST = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run(points: gpd.GeoDataFrame, hazards: gpd.GeoDataFrame, invalid: tuple[str, ...] = (),
        **kwargs: object) -> pd.DataFrame:
    index = ImpactIndex(points, **kwargs)  # type: ignore[arg-type]
    if invalid:
        with pytest.warns(HazardGeometryWarning) as caught:
            out = index.affected(hazards)
        named = {hid for hid in invalid if any(repr(hid) in str(w.message) for w in caught)}
        assert named == set(invalid)
        return out
    return index.affected(hazards)


# --------------------------------------------------------------------------------------------
# The catalogue


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
def test_catalogue_case_matches_oracle(case: Case) -> None:
    points = points_frame(case.points)
    hazards = hazards_frame(case.hazards)
    got = run(points, hazards, case.invalid)
    assert list(got.columns) == ["hazard_id", "location_id"]
    truth = brute_force_pairs(points, hazards)
    assert pair_set(got) == truth
    if case.expected is not None:
        assert truth == set(case.expected)


@pytest.mark.parametrize("h3_resolution", [0, 5, 9, 15])
def test_whole_catalogue_at_once_matches_oracle(h3_resolution: int) -> None:
    points, hazards, invalid = [], [], []
    for k, case in enumerate(CATALOGUE):
        points += [(f"{k}:{pid}", x, y) for pid, x, y in case.points]
        hazards += [{**h, "hazard_id": f"{k}:{h['hazard_id']}"} for h in case.hazards]
        invalid += [f"{k}:{hid}" for hid in case.invalid]
    pts, hz = points_frame(points), hazards_frame(hazards)
    got = run(pts, hz, tuple(invalid), h3_resolution=h3_resolution)
    assert pair_set(got) == brute_force_pairs(pts, hz)


def test_table_is_sorted_by_hazard_then_location_and_typed() -> None:
    pts = points_frame([("p3", 0.5, 0.5), ("p1", 0.25, 0.25), ("p2", 5, 5)])
    hz = hazards_frame([shape("b", box(0, 0, 1, 1)), shape("a", box(0, 0, 6, 6))])
    got = ImpactIndex(pts).affected(hz)
    assert got.astype(str).values.tolist() == [
        ["a", "p1"], ["a", "p2"], ["a", "p3"], ["b", "p1"], ["b", "p3"],
    ]
    assert got.index.equals(pd.RangeIndex(5))
    empty = ImpactIndex(pts).affected(hazards_frame([shape("far", box(50, 50, 51, 51))]))
    assert list(empty.columns) == ["hazard_id", "location_id"] and len(empty) == 0


def test_empty_roster_and_empty_hazard_list() -> None:
    nobody = ImpactIndex(points_frame([]))
    hz = hazards_frame([shape("a", box(0, 0, 1, 1)), circle("c", 0, 0, 100)])
    assert len(nobody.affected(hz)) == 0
    index = ImpactIndex(points_frame([("p", 0.5, 0.5)]))
    none = index.affected(hazards_frame([]))
    assert list(none.columns) == ["hazard_id", "location_id"] and len(none) == 0
    assert pair_set(index.affected(hz)) == {("a", "p"), ("c", "p")}


def test_repair_warning_points_at_the_caller() -> None:
    index = ImpactIndex(points_frame([("p", 1, 1)]))
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
    with pytest.warns(HazardGeometryWarning, match="hazard 'bt'") as caught:
        index.affected(hazards_frame([shape("bt", bowtie)]))
    assert caught[0].filename == __file__
    with pytest.warns(HazardGeometryWarning, match="hazard 'far'") as caught:
        index.affected(hazards_frame([shape("far", shapely.transform(
            bowtie, lambda xy: xy + np.array([179.5, 0.0])))]))
    assert caught[0].filename == __file__


def test_integer_ids_and_custom_id_columns() -> None:
    pts = gpd.GeoDataFrame({"pid": [30, 10, 20]}, geometry=[Point(0.5, 0.5), Point(2, 2),
                                                          Point(0.5, 0.25)], crs=4326)
    hz = gpd.GeoDataFrame({"hid": [2, 1]}, geometry=[box(0, 0, 1, 1), box(0, 0, 3, 3)], crs=4326)
    got = ImpactIndex(pts, id_col="pid").affected(hz, id_col="hid")
    assert list(got.columns) == ["hazard_id", "location_id"]
    assert got.astype(int).values.tolist() == [[1, 10], [1, 20], [1, 30], [2, 20], [2, 30]]


# --------------------------------------------------------------------------------------------
# Random shapes (Hypothesis): points on a coarse binary grid land on edges and vertices


GRID = 1 / 8


def grid_values(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(int(lo / GRID), int(hi / GRID)).map(lambda i: i * GRID)


@st.composite
def random_scene(draw: st.DrawFn) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A few random (possibly invalid, holed or antimeridian-crossing) polygons and points."""
    centre = draw(st.sampled_from([0.0, 45.0, 176.0, 180.0, -178.0]))
    lat0 = draw(st.sampled_from([0.0, 40.0, -14.0]))
    xs = grid_values(centre - 6, centre + 6)
    ys = grid_values(lat0 - 4, lat0 + 4)
    hazards = []
    for i in range(draw(st.integers(1, 4))):
        n = draw(st.integers(3, 9))
        ring = [(draw(xs), draw(ys)) for _ in range(n)]
        if draw(st.booleans()):  # star-shaped, usually valid
            cx, cy = sum(x for x, _ in ring) / n, sum(y for _, y in ring) / n
            ring.sort(key=lambda p, cx=cx, cy=cy: math.atan2(p[1] - cy, p[0] - cx))
        holes = []
        if draw(st.booleans()):
            x0, y0 = draw(xs), draw(ys)
            holes.append([(x0, y0), (x0 + 1, y0), (x0 + 1, y0 + 1), (x0, y0 + 1)])
        geom = Polygon(ring, holes)
        if draw(st.booleans()):  # the same shape written with wrapped longitudes
            geom = shapely.transform(geom, lambda xy: np.column_stack(
                [((xy[:, 0] + 180.0) % 360.0) - 180.0, xy[:, 1]]))
        hazards.append(shape(f"h{i}", geom))
    points = []
    for j in range(draw(st.integers(20, 120))):
        x = draw(xs)
        points.append((f"p{j:03d}", ((x + 180.0) % 360.0) - 180.0 if x != 180.0 else x,
                       draw(ys)))
    # every vertex of every hazard is a location too
    for i, h in enumerate(hazards):
        for k, (x, y) in enumerate(shapely.get_coordinates(h["geometry"]).tolist()):
            points.append((f"v{i}_{k}", ((x + 180.0) % 360.0) - 180.0 if x != 180.0 else x, y))
    return points_frame(points), hazards_frame(hazards)


@FAST
@given(random_scene())
def test_random_polygons_match_oracle(scene: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]) -> None:
    points, hazards = scene
    index = ImpactIndex(points)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = index.affected(hazards)
    assert all(w.category is HazardGeometryWarning for w in caught)
    assert pair_set(got) == brute_force_pairs(points, hazards)


@st.composite
def random_circles(draw: st.DrawFn) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Radius hazards anywhere (poles, antimeridian) with locations hugging the circle."""
    hazards, points = [], []
    for i in range(draw(st.integers(1, 3))):
        lon = draw(st.floats(-180, 180))
        lat = draw(st.floats(-90, 90))
        radius_km = draw(st.one_of(st.floats(0.01, 50), st.floats(50, 3000)))
        hazards.append(circle(f"c{i}", lon, lat, radius_km))
        for j in range(draw(st.integers(5, 40))):
            az = draw(st.floats(-180, 180))
            factor = draw(st.one_of(st.floats(0.0, 1.5), st.floats(0.999999, 1.000001)))
            x, y, _ = GEOD.fwd(lon, lat, az, radius_km * 1000.0 * factor)
            points.append((f"c{i}p{j}", float(x), float(y)))
    points.append(("pole_n", 0.0, 90.0))
    points.append(("dateline", 180.0, 0.0))
    return points_frame(points), hazards_frame(hazards)


@FAST
@given(random_circles())
def test_random_radius_hazards_match_oracle(
    scene: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame],
) -> None:
    points, hazards = scene
    got = ImpactIndex(points).affected(hazards)
    assert pair_set(got) == brute_force_pairs(points, hazards)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_dense_random_points_match_oracle(seed: int) -> None:
    """Thousands of clustered points so the index refines cells over several levels."""
    rng = np.random.default_rng(seed)
    n = 3000
    centre = rng.uniform(-170, 170), rng.uniform(-60, 60)
    x = np.round((centre[0] + rng.normal(0, 0.05, n)) * 2**12) / 2**12
    y = np.round((centre[1] + rng.normal(0, 0.05, n)) * 2**12) / 2**12
    pts = gpd.GeoDataFrame({"location_id": [f"p{i}" for i in range(n)]},
                           geometry=gpd.points_from_xy(x, y), crs=4326)
    hazards = []
    for k in range(4):
        angle = np.sort(rng.uniform(0, 2 * np.pi, 12))
        r = rng.uniform(0.01, 0.1, 12)
        ring = np.column_stack([centre[0] + r * np.cos(angle), centre[1] + r * np.sin(angle)])
        ring = np.round(ring * 2**12) / 2**12
        hazards.append(shape(f"h{k}", Polygon(ring)))
    hz = hazards_frame(hazards)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        got = ImpactIndex(pts, h3_resolution=12).affected(hz)
    assert pair_set(got) == brute_force_pairs(pts, hz)


# --------------------------------------------------------------------------------------------
# The cache


def _scene() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = np.random.default_rng(7)
    pts = gpd.GeoDataFrame({"location_id": [f"p{i:03d}" for i in range(300)]},
                           geometry=gpd.points_from_xy(rng.uniform(0, 10, 300),
                                                       rng.uniform(0, 10, 300)), crs=4326)
    hz = hazards_frame([shape("a", box(0, 0, 5, 5)), shape("b", box(3, 3, 9, 9)),
                        circle("c", 5.0, 5.0, 200.0)])
    return pts, hz


def reparsed(hazards: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = hazards.copy()
    out.geometry = shapely.from_wkb(shapely.to_wkb(hazards.geometry.array))
    return out


def test_unchanged_hazards_are_not_recomputed() -> None:
    pts, hz = _scene()
    index = ImpactIndex(pts)
    first = index.affected(hz)
    assert index.computed_hazards == 3
    again = index.affected(reparsed(hz))
    assert index.computed_hazards == 3
    assert again.equals(first)
    shuffled = reparsed(hz).iloc[[2, 0, 1]].reset_index(drop=True)
    assert index.affected(shuffled).equals(first)
    assert index.computed_hazards == 3
    info = index.cache_info()
    assert info.entries == 3 and info.misses == 3 and info.hits >= 6


def test_the_same_frame_again_is_answered_from_the_last_table_but_still_validated() -> None:
    pts, hz = _scene()
    index = ImpactIndex(pts)
    first = index.affected(hz)
    assert index.affected(hz).equals(first)
    assert index.computed_hazards == 3
    with pytest.raises(ValueError, match=r"hazards must be in EPSG:4326"):
        index.affected(hz.to_crs(3857))
    renamed = hz.assign(hazard_id=["x", "y", "z"])
    assert sorted(index.affected(renamed)["hazard_id"].unique().tolist()) == ["x", "y", "z"]
    assert index.computed_hazards == 6
    moved_centre = hz.copy()
    moved_centre.loc[2, "geometry"] = Point(0, 0)  # radius rows are keyed by their parameters
    assert index.affected(moved_centre).equals(first)
    assert index.computed_hazards == 6


def test_changed_geometry_under_the_same_id_is_recomputed() -> None:
    pts, hz = _scene()
    index = ImpactIndex(pts)
    index.affected(hz)
    moved = reparsed(hz)
    moved.loc[moved.hazard_id == "a", "geometry"] = box(5, 5, 10, 10)
    got = index.affected(moved)
    assert index.computed_hazards == 4
    assert pair_set(got) == brute_force_pairs(pts, moved)
    wider = moved.copy()
    wider.loc[wider.hazard_id == "c", "radius_km"] = 300.0
    got = index.affected(wider)
    assert index.computed_hazards == 5
    assert pair_set(got) == brute_force_pairs(pts, wider)
    back = index.affected(hz)  # the original shapes are still cached
    assert index.computed_hazards == 5
    assert pair_set(back) == brute_force_pairs(pts, hz)


def test_new_hazard_is_the_only_one_computed_and_cache_is_bounded() -> None:
    pts, hz = _scene()
    index = ImpactIndex(pts, cache_entries=2)
    index.affected(hz)
    assert index.cache_info().entries == 2
    more = pd.concat([hz, hazards_frame([shape("d", box(1, 1, 2, 2))])], ignore_index=True)
    got = index.affected(gpd.GeoDataFrame(more, crs=4326))
    assert pair_set(got) == brute_force_pairs(pts, more)
    assert index.cache_info().entries == 2
    tiny = ImpactIndex(pts, cache_pairs=10)
    assert pair_set(tiny.affected(hz)) == brute_force_pairs(pts, hz)
    assert tiny.cache_info().pairs <= 10


def test_returned_table_can_be_modified_without_touching_the_cache() -> None:
    pts, hz = _scene()
    index = ImpactIndex(pts)
    first = index.affected(hz)
    expected = first.copy()
    first.loc[0, "location_id"] = first.loc[1, "location_id"]
    first["extra"] = 1
    assert index.affected(hz).equals(expected)


# --------------------------------------------------------------------------------------------
# Validation at the door


def test_points_are_validated() -> None:
    good = points_frame([("a", 0, 0), ("b", 1, 1)])
    with pytest.raises(ValueError, match=r"points must be in EPSG:4326"):
        ImpactIndex(good.to_crs(3857))
    assert len(ImpactIndex(good.set_crs(None, allow_override=True))) == 2
    lines = good.copy()
    lines.loc[1, "geometry"] = shapely.LineString([(0, 0), (1, 1)])
    with pytest.raises(ValueError, match=r"one non-empty Point per row.*'b'"):
        ImpactIndex(lines)
    empty = good.copy()
    empty.loc[0, "geometry"] = Point()
    with pytest.raises(ValueError, match=r"'a'"):
        ImpactIndex(empty)
    far = points_frame([("x", 181.0, 0.0)])
    with pytest.raises(ValueError, match=r"longitudes in \[-180, 180\].*'x'"):
        ImpactIndex(far)
    with pytest.raises(ValueError, match="must be unique"):
        ImpactIndex(points_frame([("a", 0, 0), ("a", 1, 1)]))
    with pytest.raises(ValueError, match="id_col"):
        ImpactIndex(good, id_col="nope")
    with pytest.raises(ValueError, match="h3_resolution must be an integer from 0 to 15"):
        ImpactIndex(good, h3_resolution=16)
    with pytest.raises(ValueError, match=r"geopandas\.GeoDataFrame"):
        ImpactIndex(pd.DataFrame({"location_id": ["a"]}))  # type: ignore[arg-type]
    assert len(ImpactIndex(points_frame([("e", 180, 0), ("w", -180, 0)]))) == 2


def test_hazards_are_validated() -> None:
    index = ImpactIndex(points_frame([("a", 0, 0)]))
    with pytest.raises(ValueError, match=r"hazards must be in EPSG:4326"):
        index.affected(hazards_frame([shape("h", box(0, 0, 1, 1))]).to_crs(3857))
    with pytest.raises(ValueError, match=r"Polygon/MultiPolygon.*'line'"):
        index.affected(hazards_frame([shape("line", shapely.LineString([(0, 0), (1, 1)]))]))
    with pytest.raises(ValueError, match=r"Polygon/MultiPolygon.*'pt'"):
        index.affected(hazards_frame([shape("pt", Point(0, 0))]))
    partial = hazards_frame([circle("c", 0, 0, 10)])
    partial.loc[0, "radius_km"] = np.nan
    with pytest.raises(ValueError, match=r"need all of center_lon, center_lat, radius_km.*'c'"):
        index.affected(partial)
    with pytest.raises(ValueError, match=r"radius_km.. must be numeric"):
        index.affected(hazards_frame([circle("c", 0, 0, 10)]).assign(radius_km="ten"))
    with pytest.raises(ValueError, match="radius_km >= 0"):
        index.affected(hazards_frame([circle("neg", 0, 0, -1)]))
    with pytest.raises(ValueError, match="must be unique"):
        index.affected(hazards_frame([shape("h", box(0, 0, 1, 1)), shape("h", box(0, 0, 1, 1))]))
    with pytest.raises(ValueError, match="must not be empty"):
        index.affected(hazards_frame([shape(None, box(0, 0, 1, 1))]))  # type: ignore[arg-type]


def test_radius_hazard_geometry_may_be_none() -> None:
    index = ImpactIndex(points_frame([("a", 0, 0), ("b", 3, 0)]))
    hz = hazards_frame([{**circle("c", 0.0, 0.0, 100.0), "geometry": None}])
    assert pair_set(index.affected(hz)) == {("c", "a")}


def test_layers_do_not_import_dash() -> None:
    code = ("import sys, layers.impact, layers.shapes; "
            "print(any(m.split('.')[0] in ('dash', 'plotly') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Summaries


def _roster() -> tuple[pd.DataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    locations = pd.DataFrame({
        "location_id": ["M1", "M2", "P1", "P2", "P3", "P4"],
        "kind": ["mission", "mission", "person", "person", "person", "person"],
        "mission_type": ["embassy", "consulate", "embassy", "embassy", "consulate", None],
        "role": [None, None, "diplomatic_agent", "dependent", "consular_officer",
                 "service_staff"],
        "immunity": [None, None, "full", "full", "official_acts", "none"],
        "household_id": [None, None, "H1", "H1", "H2", "H3"],
        "jurisdiction": ["DC", "NY", "MD", "MD", "NY", "VA"],
        "ofm_office": ["WAS", "NYC", "WAS", "WAS", "NYC", "WAS"],
        "country_code": ["CHL", "CHL", "CHL", "CHL", "FRA", "FRA"],
    })
    pairs = pd.DataFrame({
        "hazard_id": ["flood", "flood", "flood", "quake", "quake", "quake"],
        "location_id": ["M1", "P1", "P2", "P1", "P3", "M2"],
    })
    hazards = gpd.GeoDataFrame({"hazard_id": ["flood", "quake", "idle"],
                                "severity": ["Moderate", "Extreme", None]},
                               geometry=[None, None, None])
    return locations, pairs, hazards


def _row(table: pd.DataFrame, dimension: str, value: str, hazard: str | None = None) -> list:
    sel = (table["dimension"] == dimension) & (table["value"] == value)
    if hazard is not None:
        sel &= table["hazard_id"] == hazard
    rows = table.loc[sel, ["missions", "people", "households"]].values.tolist()
    return rows[0] if rows else [0, 0, 0]


def test_summary_counts_a_person_in_two_hazards_once_under_the_most_severe() -> None:
    locations, pairs, hazards = _roster()
    s = summarize(pairs, locations, hazards, severity_col="severity")
    assert _row(s.per_hazard, "all", "all", "flood") == [1, 2, 1]
    assert _row(s.per_hazard, "all", "all", "quake") == [1, 2, 2]
    assert _row(s.per_hazard, "all", "all", "idle") == [0, 0, 0]
    assert _row(s.total, "all", "all") == [2, 3, 2]
    # P1 is in both: counted under the extreme quake, not the moderate flood
    assert _row(s.attributed, "all", "all", "quake") == [1, 2, 2]
    assert _row(s.attributed, "all", "all", "flood") == [1, 1, 1]
    assert _row(s.attributed, "role", "diplomatic_agent", "quake") == [0, 1, 1]
    assert _row(s.attributed, "role", "diplomatic_agent", "flood") == [0, 0, 0]
    assert _row(s.total, "immunity", "full") == [0, 2, 1]
    assert _row(s.total, "mission_type", "embassy") == [1, 2, 1]
    assert _row(s.total, "jurisdiction", "MD") == [0, 2, 1]
    assert _row(s.total, "ofm_office", "NYC") == [1, 1, 1]
    assert _row(s.total, "country_code", "CHL") == [2, 2, 1]
    hazard_sums = s.attributed[s.attributed.dimension == "all"][["missions", "people"]].sum()
    assert hazard_sums.tolist() == [2, 3]


def test_summary_without_severity_breaks_ties_by_hazard_id_and_accepts_engine_output() -> None:
    locations, _, _ = _roster()
    pts = points_frame([(lid, 0.5, 0.5) for lid in locations.location_id])
    engine_pairs = ImpactIndex(pts).affected(hazards_frame([shape("b", box(0, 0, 1, 1)),
                                                            shape("a", box(0, 0, 2, 2))]))
    s = summarize(engine_pairs, locations)
    assert _row(s.attributed, "all", "all", "a") == [2, 4, 3]
    assert _row(s.attributed, "all", "all", "b") == [0, 0, 0]
    assert _row(s.total, "all", "all") == [2, 4, 3]
    none = summarize(engine_pairs.iloc[:0], locations)
    assert _row(none.total, "all", "all") == [0, 0, 0]


def test_summary_validates() -> None:
    locations, pairs, hazards = _roster()
    with pytest.raises(ValueError, match="CAP severities"):
        summarize(pairs, locations, hazards.assign(severity="Catastrophic"), "severity")
    with pytest.raises(ValueError, match="missing from locations"):
        summarize(pairs.assign(location_id="nobody"), locations)
    with pytest.raises(ValueError, match="'kind'"):
        summarize(pairs, locations.assign(kind="visitor"))
    with pytest.raises(ValueError, match="hazards must be given"):
        summarize(pairs, locations, severity_col="severity")
    with pytest.raises(ValueError, match="columns hazard_id, location_id"):
        summarize(pairs.rename(columns={"hazard_id": "h"}), locations)


# --------------------------------------------------------------------------------------------
# Distance to the edge


def test_edge_distance_of_radius_hazards_is_distance_to_centre() -> None:
    pts = points_frame([("a", 0.0, 0.0), ("b", 0.5, 0.25)])
    hz = hazards_frame([circle("c", 0.25, 0.0, 100.0)])
    pairs = ImpactIndex(pts).affected(hz)
    out = edge_distance_km(pairs, pts, hz)
    expected = [GEOD.inv(0.25, 0.0, x, y)[2] / 1000 for x, y in ((0.0, 0.0), (0.5, 0.25))]
    assert out["edge_distance_km"].tolist() == pytest.approx(expected, rel=1e-12)


def test_edge_distance_of_polygons() -> None:
    square = box(-0.5, -0.5, 0.5, 0.5)
    pts = points_frame([("centre", 0.0, 0.0), ("edge", 0.5, 0.0), ("near", 0.4, 0.0),
                        ("dateline", 180.0, 0.0)])
    split = shapely.MultiPolygon([box(179, -1, 180, 1), box(-180, -1, -179, 1)])
    hz = hazards_frame([shape("sq", square), shape("pacific", split)])
    out = edge_distance_km(ImpactIndex(pts).affected(hz), pts, hz)
    got = dict(zip(out.location_id.astype(str) + "@" + out.hazard_id.astype(str),
                   out.edge_distance_km, strict=True))
    assert got["edge@sq"] == pytest.approx(0.0, abs=1e-6)
    assert got["near@sq"] == pytest.approx(GEOD.inv(0.4, 0, 0.5, 0)[2] / 1000, abs=1e-3)
    nearest_side = min(GEOD.inv(0, 0, 0.5, 0)[2], GEOD.inv(0, 0, 0, 0.5)[2]) / 1000
    assert got["centre@sq"] == pytest.approx(nearest_side, abs=1e-3)
    # the cut at 180 is not an edge: the point is 1 degree of latitude from the real edges
    assert got["dateline@pacific"] == pytest.approx(GEOD.inv(180, 0, 180, 1)[2] / 1000,
                                                    rel=1e-3)


def test_severity_rank_orders_cap_values() -> None:
    ranks = impact.severity_rank(pd.Series(["Extreme", "severe", " MODERATE ", "Minor",
                                            None, "Unknown"]))
    assert ranks.tolist() == [0, 1, 2, 3, 4, 4]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.floats(-180, 180), st.integers(-2**20, 2**20).map(lambda i: i * 360 / 2**21)),
       st.integers(0, 25), st.integers(0, 5))
def test_quadtree_cells_nest_exactly(x: float, level: int, deeper: int) -> None:
    """A coarser cell index is exactly the finer one shifted: runs of locations nest."""
    fine = impact._cell_index(np.array([x]), 180.0, 360.0, level + deeper)
    coarse = impact._cell_index(np.array([x]), 180.0, 360.0, level)
    assert (fine >> deeper).tolist() == coarse.tolist()
    y = x / 2
    fine = impact._cell_index(np.array([y]), 90.0, 180.0, level + deeper)
    coarse = impact._cell_index(np.array([y]), 90.0, 180.0, level)
    assert (fine >> deeper).tolist() == coarse.tolist()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_summary_matches_plain_pandas_counting(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    locations = pd.DataFrame({
        "location_id": [f"L{i}" for i in range(n)],
        "kind": rng.choice(["mission", "person"], n),
        "role": rng.choice(["dependent", "diplomatic_agent", None], n),
        "jurisdiction": rng.choice(["DC", "NY", "GU"], n),
        "household_id": rng.choice(["H1", "H2", "H3", None], n),
    })
    hazards = pd.DataFrame({"hazard_id": ["a", "b", "c", "d"],
                            "severity": rng.choice(["Extreme", "Minor", None], 4)})
    k = int(rng.integers(0, 3 * n))
    pairs = pd.DataFrame({"hazard_id": rng.choice(["a", "b", "c"], k),
                          "location_id": rng.choice(locations.location_id, k)})
    pairs = pairs.drop_duplicates().reset_index(drop=True)
    s = summarize(pairs, locations, hazards, "severity")
    joined = pairs.merge(locations, on="location_id")

    def expect(frame: pd.DataFrame, dim: str, value: str) -> list[int]:
        sel = frame if dim == "all" else frame[frame[dim] == value]
        people = sel[sel.kind == "person"]
        return [int((sel.kind == "mission").sum()), len(people),
                people.household_id.dropna().nunique()]

    for hid in ["a", "b", "c", "d"]:
        one = joined[joined.hazard_id == hid]
        assert _row(s.per_hazard, "all", "all", hid) == expect(one, "all", "all")
        for dim in ("role", "jurisdiction"):
            for value in locations[dim].dropna().unique():
                assert _row(s.per_hazard, dim, value, hid) == expect(one, dim, value)
    union = joined.drop_duplicates("location_id")
    assert _row(s.total, "all", "all") == expect(union, "all", "all")
    for value in ("DC", "NY", "GU"):
        assert _row(s.total, "jurisdiction", value) == expect(union, "jurisdiction", value)
    rank = dict(zip(hazards.hazard_id, impact.severity_rank(hazards.severity), strict=True))
    chosen = impact.most_severe(pairs, hazards, "severity")
    for lid, group in pairs.groupby("location_id"):
        best = min(group.hazard_id, key=lambda h: (rank[h], h))
        assert chosen.loc[chosen.location_id == lid, "hazard_id"].tolist() == [best]
    sums = s.attributed[s.attributed.dimension == "all"][["missions", "people"]].sum().tolist()
    assert sums == _row(s.total, "all", "all")[:2]
