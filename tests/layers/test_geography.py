"""Bundled boundaries and point-in-area queries, checked against known places and brute force."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS, Transformer

from layers.geography import (
    Geography,
    GeographyDataMissing,
    UnknownAreaError,
    load_geography,
    search_boxes,
)
from layers.schema import JURISDICTIONS

ROOT = Path(__file__).resolve().parents[2]
GEO_DIR = ROOT / "data" / "geo"
SOURCE_DIR = ROOT.parent / "shared" / "geo"  # the reference collection, when present

# Parts per area in the source (Census 1:5M; MH Natural Earth 10m); generalising keeps them all.
SOURCE_PARTS = {
    "AL": 4, "AK": 142, "CA": 11, "DE": 3, "FL": 10, "HI": 8, "KY": 2, "LA": 9, "ME": 11,
    "MD": 4, "MA": 5, "MI": 18, "MS": 5, "NY": 7, "NC": 3, "OH": 3, "RI": 5, "VA": 4, "WA": 14,
    "WI": 11, "AS": 5, "GU": 2, "MH": 22, "MP": 14, "PR": 7, "VI": 7,
}
CT_PLANNING_REGIONS = [f"091{i}0" for i in range(1, 10)]

KNOWN_PLACES = [
    ("White House", -77.0365, 38.8977, "DC"),
    ("Times Square", -73.9855, 40.7580, "NY"),
    ("Hagatna", 144.7522, 13.4757, "GU"),
    ("Pago Pago", -170.7025, -14.2794, "AS"),
    ("Majuro mission", 171.38, 7.09, "MH"),
    ("San Juan", -66.1057, 18.4655, "PR"),
    ("Honolulu", -157.8583, 21.3069, "HI"),
    ("Anchorage", -149.9003, 61.2181, "AK"),
    ("Attu, west of 180", 173.2, 52.9, "AK"),
    ("Adak, east of 180", -176.63, 51.88, "AK"),
    ("Vieques", -65.44, 18.12, "PR"),
    ("Culebra", -65.30, 18.31, "PR"),
    ("Ta'u, Manu'a", -169.46, -14.24, "AS"),
    ("Hilo", -155.09, 19.72, "HI"),
    ("Kwajalein atoll", 167.73, 8.72, "MH"),
    ("mid-Atlantic", -40.0, 30.0, ""),
    ("Gulf of Mexico", -90.0, 25.0, ""),
    ("Toronto", -79.38, 43.65, ""),
]


@pytest.fixture(scope="module")
def geo() -> Geography:
    return load_geography()


def brute_force_jurisdiction(geo: Geography, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Oracle: the first area, in FIPS order, whose (unprepared) geometry covers each point."""
    points = shapely.points(lon, lat)
    result = np.full(len(points), "", dtype=object)
    for code, geom in zip(geo.states["code"], geo.states.geometry, strict=True):
        fresh = shapely.from_wkb(shapely.to_wkb(geom))  # an unprepared copy
        hit = (result == "") & shapely.covers(fresh, points)
        result[hit] = code
    return result


def brute_force_distance_km(geom: shapely.Geometry, lon: float, lat: float) -> float:
    """Oracle: planar distance in an azimuthal equidistant projection centred on the point.

    That projection keeps every distance from its centre exact; the boundary is densified
    to 0.005 degrees first so that its edges stay straight enough once projected.
    """
    if geom.covers(shapely.Point(lon, lat)):
        return 0.0
    aeqd = CRS.from_dict({"proj": "aeqd", "lat_0": lat, "lon_0": lon, "datum": "WGS84"})
    to_aeqd = Transformer.from_crs(4326, aeqd, always_xy=True)
    boundary = shapely.segmentize(geom.boundary, 0.005)
    projected = shapely.transform(boundary,
                                  lambda xy: np.column_stack(to_aeqd.transform(*xy.T)))
    return float(shapely.distance(shapely.Point(0.0, 0.0), projected) / 1000.0)


# ------------------------------------------------------------------ bundled files


def test_states_file_has_the_57_areas_valid_and_with_every_part() -> None:
    states = gpd.read_file(GEO_DIR / "states.geojson")
    assert list(states.columns) == ["code", "name", "statefp", "geometry"]
    assert len(states) == 57
    assert set(JURISDICTIONS) | {"MP", "VI"} == set(states["code"])
    assert states.geometry.is_valid.all()
    assert not states.geometry.is_empty.any()
    parts = dict(zip(states["code"], shapely.get_num_geometries(states.geometry), strict=True))
    expected = {code: SOURCE_PARTS.get(code, 1) for code in states["code"]}
    assert parts == expected
    assert (GEO_DIR / "states.geojson").stat().st_size < 1_500_000


def test_counties_file_has_both_vintages_valid() -> None:
    counties = gpd.read_file(GEO_DIR / "counties.geojson")
    assert list(counties.columns) == ["fips", "name", "statefp", "state_code", "vintage",
                                      "geometry"]
    assert counties["fips"].is_unique
    assert counties["fips"].str.fullmatch(r"\d{5}").all()
    assert (counties["fips"].str[:2] == counties["statefp"]).all()
    assert counties["vintage"].value_counts().to_dict() == {"2018": 3233, "2022": 11}
    new = set(counties.loc[counties["vintage"] == "2022", "fips"])
    assert new == {*CT_PLANNING_REGIONS, "02063", "02066"}
    assert counties.geometry.is_valid.all()
    assert not counties.geometry.is_empty.any()
    assert counties["state_code"].notna().all()
    assert (GEO_DIR / "counties.geojson").stat().st_size < 4_200_000


@pytest.mark.skipif(not SOURCE_DIR.is_dir(), reason="reference geography collection absent")
def test_every_source_geoid_is_bundled() -> None:
    bundled = set(gpd.read_file(GEO_DIR / "counties.geojson", ignore_geometry=True)["fips"])
    for name in ("us_counties_cb2018_5m.geojson", "us_counties_cb2022_20m.geojson"):
        source = gpd.read_file(SOURCE_DIR / name, ignore_geometry=True, columns=["GEOID"])
        assert set(source["GEOID"]) <= bundled, name


def test_no_project_file_points_at_the_source_collection() -> None:
    needles = ("../" + "shared", "/shared" + "/geo")
    skip = {".git", ".venv", "tests", "var", "__pycache__", ".pytest_cache",
            ".ruff_cache", ".hypothesis"}
    offenders = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if not path.is_file() or skip & set(relative.parts) or path.stat().st_size > 5_000_000:
            continue
        if relative.parts[0].endswith(".egg-info"):
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        if any(needle in text for needle in needles):
            offenders.append(str(relative))
    assert offenders == []


def test_missing_files_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GeographyDataMissing, match="build_geography"):
        load_geography(tmp_path)
    assert issubclass(GeographyDataMissing, FileNotFoundError)


def test_load_geography_is_cached(geo: Geography) -> None:
    assert load_geography() is geo
    assert geo.states.crs.to_epsg() == 4326
    assert list(geo.states["statefp"]) == sorted(geo.states["statefp"])


# ------------------------------------------------------------------ known places


@pytest.mark.parametrize(("place", "lon", "lat", "code"), KNOWN_PLACES,
                         ids=[p[0] for p in KNOWN_PLACES])
def test_known_places(geo: Geography, place: str, lon: float, lat: float, code: str) -> None:
    assert geo.jurisdiction_of(lon, lat).tolist() == [code]


def test_known_places_vectorised(geo: Geography) -> None:
    lon = [p[1] for p in KNOWN_PLACES]
    lat = [p[2] for p in KNOWN_PLACES]
    result = geo.jurisdiction_of(lon, lat)
    assert result.dtype == object
    assert result.tolist() == [p[3] for p in KNOWN_PLACES]


def test_majuro_is_matched_only_through_the_tolerance(geo: Geography) -> None:
    assert not geo.state_geometry("MH").covers(shapely.Point(171.38, 7.09))
    assert geo.jurisdiction_of(171.38, 7.09, tolerance_km=0).tolist() == [""]
    distance = geo.distance_km(171.38, 7.09, "MH")[0]
    assert 0 < distance < 10
    assert geo.within_jurisdiction(171.38, 7.09, "MH").tolist() == [True]
    assert geo.within_jurisdiction(171.38, 7.09, "MH", tolerance_km=distance / 2).tolist() == [
        False
    ]


def test_point_on_dc_maryland_border_gets_one_deterministic_code(geo: Geography) -> None:
    dc_vertices = shapely.get_coordinates(geo.state_geometry("DC"))
    on_border = shapely.covers(geo.state_geometry("MD"), shapely.points(dc_vertices))
    assert on_border.sum() >= 4  # the corners of the straight DC-MD lines, at least
    lon, lat = dc_vertices[on_border, 0], dc_vertices[on_border, 1]
    first = geo.jurisdiction_of(lon, lat, tolerance_km=0)
    assert set(first) == {"DC"}  # DC (FIPS 11) comes before MD (24)
    assert geo.jurisdiction_of(lon, lat, tolerance_km=0).tolist() == first.tolist()
    assert geo.within_jurisdiction(lon, lat, "MD", tolerance_km=0).all()
    assert (geo.distance_km(lon, lat, "MD") == 0).all()


def test_both_sides_of_the_antimeridian(geo: Geography) -> None:
    # Semisopochnoi Island (AK) lies at 179.5-179.8 E; these points are east of 180.
    lon, lat = np.array([-179.95, 180.0, -180.0]), np.array([51.95, 51.95, 51.95])
    assert geo.jurisdiction_of(lon, lat).tolist() == ["", "", ""]
    assert geo.jurisdiction_of(lon, lat, tolerance_km=30).tolist() == ["AK", "AK", "AK"]
    distance = geo.distance_km(lon, lat, "AK")
    expected = [brute_force_distance_km(geo.state_geometry("AK"), x, y)
                for x, y in zip(lon, lat, strict=True)]
    np.testing.assert_allclose(distance, expected, rtol=1e-4, atol=0.005)
    assert distance[1] == distance[2]


def test_search_boxes_split_at_the_antimeridian() -> None:
    boxes, owner = search_boxes(np.array([179.9, 0.0]), np.array([52.0, 0.0]), 20.0)
    assert owner.tolist() == [0, 1, 0]
    bounds = shapely.bounds(boxes)
    assert bounds[0][2] == 180.0
    assert bounds[2][0] == -180.0
    assert bounds[2][2] > -180.0


def test_every_jurisdiction_has_a_valid_state_geometry(geo: Geography) -> None:
    for code in JURISDICTIONS:
        geom = geo.state_geometry(code)
        assert isinstance(geom, shapely.Polygon | shapely.MultiPolygon), code
        assert geom.is_valid and not geom.is_empty, code


def test_unknown_state_code_names_the_allowed_codes(geo: Geography) -> None:
    with pytest.raises(ValueError, match="USPS codes AL, AK") as info:
        geo.state_geometry("XX")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, UnknownAreaError)


# ------------------------------------------------------------------ oracle comparisons


def _random_points(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    regions = [  # (west, south, east, north, count): CONUS, DC area, HI, PR/VI, Aleutians, MH
        (-125.0, 24.0, -66.0, 50.0, 2000),
        (-77.2, 38.7, -76.8, 39.1, 600),
        (-160.5, 18.8, -154.7, 22.3, 400),
        (-67.5, 17.6, -64.5, 18.6, 300),
        (172.0, 51.0, 180.0, 53.5, 200),
        (-180.0, 51.0, -170.0, 53.5, 200),
        (166.0, 5.5, 172.5, 12.0, 200),
    ]
    lon, lat = [], []
    for west, south, east, north, count in regions:
        lon.append(rng.uniform(west, east, count))
        lat.append(rng.uniform(south, north, count))
    return np.concatenate(lon), np.concatenate(lat)


def _boundary_vertices(geo: Geography, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    xy = shapely.get_coordinates(geo.states.geometry.boundary.to_numpy())
    pick = np.random.default_rng(seed).choice(len(xy), count, replace=False)
    return xy[pick, 0], xy[pick, 1]


def test_jurisdiction_of_matches_brute_force_loop(geo: Geography) -> None:
    lon, lat = _random_points(20261127)
    vx, vy = _boundary_vertices(geo, 7, 500)
    lon, lat = np.concatenate([lon, vx]), np.concatenate([lat, vy])
    oracle = brute_force_jurisdiction(geo, lon, lat)
    assert (oracle != "").sum() > 1500
    assert geo.jurisdiction_of(lon, lat, tolerance_km=0).tolist() == oracle.tolist()
    with_tolerance = geo.jurisdiction_of(lon, lat)
    inside = oracle != ""
    assert with_tolerance[inside].tolist() == oracle[inside].tolist()
    # Outside every area, a code appears exactly when some area is within 10 km, and it is
    # the nearest of those.
    outside = np.flatnonzero(~inside)
    near = {code: geo.within_jurisdiction(lon[outside], lat[outside], code)
            for code in geo.state_codes}
    any_near = np.any(list(near.values()), axis=0)
    assert 50 < any_near.sum() < outside.size
    assert ((with_tolerance[outside] != "") == any_near).all()
    for i in np.flatnonzero(any_near):
        x, y = lon[outside[i]], lat[outside[i]]
        candidates = {c: geo.distance_km(x, y, c)[0] for c in near if near[c][i]}
        assert with_tolerance[outside[i]] == min(candidates, key=candidates.__getitem__)


def test_distance_km_matches_brute_force(geo: Geography) -> None:
    cases = [(-76.9, 38.75, "DC"), (-77.3, 38.95, "DC"), (-65.2, 18.0, "PR"),
             (-158.4, 21.9, "HI"), (144.5, 13.2, "GU"), (-170.9, -14.1, "AS"),
             (171.2, 7.2, "MH"), (-175.0, 52.5, "AK"), (178.0, 51.5, "AK"),
             (-80.0, 26.0, "TX"), (-77.0365, 38.8977, "HI")]
    lon = [c[0] for c in cases]
    lat = [c[1] for c in cases]
    codes = [c[2] for c in cases]
    fast = geo.distance_km(lon, lat, codes)
    oracle = [brute_force_distance_km(geo.state_geometry(c), x, y) for x, y, c in cases]
    np.testing.assert_allclose(fast, oracle, rtol=1e-4, atol=0.005)
    assert 7000 < fast[-1] < 8500  # Washington to Hawaii


@settings(max_examples=60, deadline=None)
@given(
    lon=st.floats(-180, 180, allow_nan=False),
    lat=st.floats(-20, 72, allow_nan=False),
    code=st.sampled_from(["AK", "HI", "DC", "MD", "MH", "AS", "GU", "PR", "ME"]),
)
def test_distance_zero_exactly_when_covered(lon: float, lat: float, code: str) -> None:
    geo = load_geography()
    covered = geo.state_geometry(code).covers(shapely.Point(lon, lat))
    distance = geo.distance_km([lon], [lat], code)[0]
    assert (distance == 0) == covered
    assert geo.within_jurisdiction([lon], [lat], code, tolerance_km=0)[0] == covered
    assert geo.within_jurisdiction([lon], [lat], code)[0] == (distance <= 10.0)


# ------------------------------------------------------------------ arguments and edge cases


def test_missing_coordinates_give_empty_results(geo: Geography) -> None:
    lon, lat = [np.nan, -77.0365], [38.9, np.nan]
    assert geo.jurisdiction_of(lon, lat).tolist() == ["", ""]
    assert geo.within_jurisdiction(lon, lat, "DC").tolist() == [False, False]
    assert np.isnan(geo.distance_km(lon, lat, ["DC", "DC"])).all()
    assert geo.jurisdiction_of([], []).tolist() == []


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        ([1.0, 2.0], [3.0], "same length"),
        ([0.0], [91.0], "lat must lie between -90 and 90"),
        ([-180.5], [0.0], "lon must lie between -180 and 180"),
        ([np.inf], [0.0], "lon must lie"),
        ("-77", [38.9], "lon must be a number"),
        ([["a"]], [1.0], "lon must be numeric"),
    ],
)
def test_bad_coordinates_are_rejected(geo: Geography, lon: object, lat: object,
                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        geo.jurisdiction_of(lon, lat)


def test_bad_codes_and_tolerance_are_rejected(geo: Geography) -> None:
    with pytest.raises(ValueError, match="tolerance_km"):
        geo.jurisdiction_of([0.0], [0.0], tolerance_km=-1)
    with pytest.raises(ValueError, match="one per point"):
        geo.within_jurisdiction([0.0, 1.0], [0.0, 1.0], ["DC"])
    with pytest.raises(UnknownAreaError, match="codes must be one of"):
        geo.distance_km([0.0], [0.0], ["ZZ"])


# ------------------------------------------------------------------ counties


@pytest.mark.parametrize(("fips", "vintage"), [("09001", "2018"), ("02261", "2018"),
                                               ("09110", "2022"), ("02063", "2022")])
def test_county_geometry_of_either_vintage(geo: Geography, fips: str, vintage: str) -> None:
    geom = geo.county_geometry(fips)
    assert geom.is_valid and not geom.is_empty
    row = geo.counties.loc[geo.counties["fips"] == fips].iloc[0]
    assert row["vintage"] == vintage
    state = geo.state_geometry(row["state_code"])
    # The 2022 file is 1:20M, the states 1:5M: island coasts differ, the bulk overlaps.
    assert shapely.area(shapely.intersection(geom, state)) > 0.7 * geom.area


def test_new_alaska_codes_cover_the_old_valdez_cordova(geo: Geography) -> None:
    old = geo.county_geometry("02261")
    new, missing = geo.counties_geometry(["02063", "02066"])
    assert missing == []
    assert shapely.area(shapely.intersection(old, new)) > 0.9 * old.area


def test_county_errors(geo: Geography) -> None:
    with pytest.raises(ValueError, match="5-digit"):
        geo.county_geometry("9001")
    with pytest.raises(KeyError, match="99999"):
        geo.county_geometry("99999")


def test_counties_geometry_unions_and_reports_missing(geo: Geography) -> None:
    geom, missing = geo.counties_geometry(["09001", "09003", "00000", "09001", "00000"])
    assert missing == ["00000"]
    assert geom.covers(geo.county_geometry("09001").representative_point())
    assert geom.covers(geo.county_geometry("09003").representative_point())
    empty, missing = geo.counties_geometry([])
    assert empty.is_empty and missing == []
    with pytest.raises(ValueError, match="iterable"):
        geo.counties_geometry("09001")
