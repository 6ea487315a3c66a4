"""Time zones of places and areas: known places, the bundled tables, a brute-force oracle."""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon, box

from layers.geography import Geography, load_geography
from layers.schema import JURISDICTIONS
from layers.timezones import (
    EASTERN,
    TimezoneDataMissing,
    TimezoneMap,
    TimezoneTableError,
    ZoneTable,
    format_local,
    load_timezone_map,
    load_zone_table,
    zone_for_point,
    zones_for_area,
    zones_for_points,
)

ROOT = Path(__file__).resolve().parents[2]
TZ_DIR = ROOT / "data" / "timezones"
UTC = timezone.utc

KNOWN_PLACES = [
    ("Miami", -80.19, 25.76, "America/New_York"),
    ("Washington DC, White House", -77.0365, 38.8977, "America/New_York"),
    ("New York", -73.9855, 40.7580, "America/New_York"),
    ("Detroit", -83.05, 42.33, "America/Detroit"),
    ("Chicago", -87.63, 41.88, "America/Chicago"),
    ("Denver", -104.99, 39.74, "America/Denver"),
    ("Los Angeles", -118.24, 34.05, "America/Los_Angeles"),
    ("El Paso", -106.44, 31.76, "America/Denver"),
    ("Van Horn, Culberson County TX", -104.83, 31.04, "America/Chicago"),
    ("Pensacola", -87.22, 30.42, "America/Chicago"),
    ("Panama City FL", -85.66, 30.16, "America/Chicago"),
    ("Tallahassee", -84.28, 30.44, "America/New_York"),
    ("Port St. Joe, Gulf County FL", -85.30, 29.81, "America/New_York"),
    ("Indianapolis", -86.16, 39.77, "America/Indiana/Indianapolis"),
    ("Gary IN", -87.35, 41.59, "America/Chicago"),
    ("Evansville IN", -87.57, 37.97, "America/Chicago"),
    ("Tell City IN", -86.77, 37.95, "America/Indiana/Tell_City"),
    ("Knox IN (Starke County)", -86.62, 41.30, "America/Indiana/Knox"),
    ("Vincennes IN", -87.53, 38.68, "America/Indiana/Vincennes"),
    ("Winamac IN", -86.60, 41.05, "America/Indiana/Winamac"),
    ("Jeffersonville IN", -85.74, 38.30, "America/Kentucky/Louisville"),
    ("Lawrenceburg IN (Dearborn County)", -84.85, 39.09, "America/New_York"),
    ("Louisville", -85.76, 38.25, "America/Kentucky/Louisville"),
    ("Lexington KY", -84.50, 38.04, "America/New_York"),
    ("Bowling Green KY", -86.44, 36.99, "America/Chicago"),
    ("Monticello KY", -84.85, 36.83, "America/Kentucky/Monticello"),
    ("Knoxville", -83.92, 35.96, "America/New_York"),
    ("Chattanooga", -85.31, 35.05, "America/New_York"),
    ("Nashville", -86.78, 36.16, "America/Chicago"),
    ("Memphis", -90.05, 35.15, "America/Chicago"),
    ("Boise", -116.20, 43.62, "America/Boise"),
    ("Coeur d'Alene", -116.78, 47.68, "America/Los_Angeles"),
    ("Lewiston ID", -117.02, 46.42, "America/Los_Angeles"),
    ("Grangeville ID (Idaho County)", -116.12, 45.93, "America/Los_Angeles"),
    ("Ontario OR", -116.96, 44.03, "America/Boise"),
    ("Portland OR", -122.68, 45.52, "America/Los_Angeles"),
    ("West Wendover NV", -114.06, 40.73, "America/Denver"),
    ("Elko NV", -115.76, 40.83, "America/Los_Angeles"),
    ("Iron Mountain MI", -88.07, 45.82, "America/Menominee"),
    ("Marquette MI", -87.40, 46.55, "America/Detroit"),
    ("Bismarck ND", -100.78, 46.81, "America/Chicago"),
    ("Mandan ND", -100.89, 46.83, "America/Chicago"),
    ("Dickinson ND", -102.79, 46.88, "America/Denver"),
    ("Beulah ND", -101.78, 47.26, "America/North_Dakota/Beulah"),
    ("Center ND", -101.30, 47.12, "America/North_Dakota/Center"),
    ("Watford City ND", -103.28, 47.80, "America/Chicago"),
    ("Rapid City SD", -103.23, 44.08, "America/Denver"),
    ("Pierre SD", -100.35, 44.37, "America/Chicago"),
    ("Fort Pierre SD", -100.37, 44.35, "America/Chicago"),
    ("North Platte NE", -100.77, 41.12, "America/Chicago"),
    ("Scottsbluff NE", -103.67, 41.87, "America/Denver"),
    ("Valentine NE (Cherry County)", -100.55, 42.87, "America/Chicago"),
    ("Goodland KS", -101.71, 39.35, "America/Denver"),
    ("Wichita KS", -97.34, 37.69, "America/Chicago"),
    ("Phoenix", -112.07, 33.45, "America/Phoenix"),
    ("Anchorage", -149.90, 61.22, "America/Anchorage"),
    ("Juneau", -134.42, 58.30, "America/Juneau"),
    ("Unalaska, east of 169.5 W", -166.54, 53.87, "America/Anchorage"),
    ("St. Paul, Pribilofs, west of 169.5 W", -170.28, 57.13, "America/Anchorage"),
    ("Gambell, St. Lawrence Island", -171.70, 63.78, "America/Nome"),
    ("Atka", -174.20, 52.20, "America/Adak"),
    ("Adak, east of 180", -176.63, 51.88, "America/Adak"),
    ("Attu, west of 180", 173.2, 52.9, "America/Adak"),
    ("Honolulu", -157.8583, 21.3069, "Pacific/Honolulu"),
    ("Hilo", -155.09, 19.72, "Pacific/Honolulu"),
    ("San Juan", -66.1057, 18.4655, "America/Puerto_Rico"),
    ("Charlotte Amalie", -64.93, 18.34, "America/St_Thomas"),
    ("Hagåtña", 144.7522, 13.4757, "Pacific/Guam"),
    ("Saipan", 145.75, 15.18, "Pacific/Saipan"),
    ("Pago Pago", -170.7025, -14.2794, "Pacific/Pago_Pago"),
    ("Ta'u, Manu'a", -169.46, -14.24, "Pacific/Pago_Pago"),
    ("Majuro mission", 171.38, 7.09, "Pacific/Majuro"),
    ("Kwajalein atoll", 167.73, 8.72, "Pacific/Kwajalein"),
]

NOWHERE = [
    ("mid-Atlantic", -40.0, 30.0),
    ("Gulf of Mexico", -90.0, 25.0),
    ("Toronto", -79.38, 43.65),
    ("Tijuana", -117.02, 32.45),
    ("antimeridian, open sea", 180.0, 0.0),
]


@pytest.fixture(scope="module")
def geo() -> Geography:
    return load_geography()


@pytest.fixture(scope="module")
def table() -> ZoneTable:
    return load_zone_table()


# --------------------------------------------------------------------------------------------
# Points


@pytest.mark.parametrize(("name", "lon", "lat", "zone"), KNOWN_PLACES,
                         ids=[p[0] for p in KNOWN_PLACES])
def test_known_places(name: str, lon: float, lat: float, zone: str) -> None:
    assert zone_for_point(lon, lat) == zone


def test_known_places_vectorised() -> None:
    lon = [p[1] for p in KNOWN_PLACES]
    lat = [p[2] for p in KNOWN_PLACES]
    zones = zones_for_points(lon, lat)
    assert zones.dtype == object
    assert list(zones) == [p[3] for p in KNOWN_PLACES]


@pytest.mark.parametrize(("name", "lon", "lat"), NOWHERE, ids=[p[0] for p in NOWHERE])
def test_places_outside_every_jurisdiction_have_no_zone(name: str, lon: float,
                                                        lat: float) -> None:
    assert zone_for_point(lon, lat) is None


def test_coastal_water_takes_the_nearest_county_of_its_state(geo: Geography) -> None:
    lon, lat = -87.15, 30.30  # the Gulf, 3 km off Pensacola Beach (Escambia, Central)
    assert not geo.state_geometry("FL").covers(Point(lon, lat))
    assert 0 < geo.distance_km(lon, lat, "FL")[0] < 10
    assert zone_for_point(lon, lat) == "America/Chicago"
    assert zone_for_point(lon, lat, tolerance_km=0) is None


def test_missing_coordinates_and_empty_input() -> None:
    zones = zones_for_points([np.nan, -80.19], [25.76, np.nan])
    assert list(zones) == [None, None]
    assert zones_for_points([], []).shape == (0,)
    assert zone_for_point(float("nan"), 25.0) is None


def test_antimeridian_is_one_meridian() -> None:
    # Points on the meridian itself inside the Aleutian boxes, written both ways.
    assert list(zones_for_points([180.0, -180.0], [51.8, 51.8], tolerance_km=50)) == [
        "America/Adak", "America/Adak"]


@pytest.mark.parametrize(("call", "match"), [
    (lambda: zone_for_point(181.0, 0.0), "lon"),
    (lambda: zone_for_point(0.0, -91.0), "lat"),
    (lambda: zone_for_point("x", 0.0), "lon"),
    (lambda: zone_for_point([1.0, 2.0], 0.0), "lon"),
    (lambda: zone_for_point(0.0, np.array([1.0])), "lat"),
    (lambda: zones_for_points([1.0, 2.0], [1.0]), "same length"),
    (lambda: zones_for_points([[1.0]], [[1.0]]), "one-dimensional"),
    (lambda: zones_for_points([1.0], [1.0], tolerance_km=-1), "tolerance_km"),
])
def test_point_arguments_are_checked(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def _oracle_zone(geo: Geography, table: ZoneTable, lon: float, lat: float) -> str | None:
    """One point, the slow way: a plain loop over boxes and over the state's counties."""
    code = str(geo.jurisdiction_of(lon, lat, tolerance_km=0.0)[0])
    if not code:
        return None
    for b in table.boxes:
        if b.jurisdiction == code and b.west <= lon <= b.east and b.south <= lat <= b.north:
            return b.zone
    point = Point(lon, lat)
    counties = geo.counties[geo.counties["state_code"] == code]
    for fips, geom in zip(counties["fips"], counties.geometry, strict=True):
        if geom.covers(point):
            return table.counties.get(fips, table.jurisdictions[code])
    return table.jurisdictions[code]


def test_random_points_match_a_brute_force_oracle(geo: Geography, table: ZoneTable) -> None:
    rng = np.random.default_rng(20261128)
    boxes = [  # the split states, the Aleutians across 180, NV, the Marshall Islands
        (-125.0, 24.0, -80.0, 49.5), (-90.0, 29.0, -81.0, 42.0), (-105.0, 40.0, -95.0, 49.0),
        (-118.0, 41.5, -114.0, 49.0), (-180.0, 50.5, -165.0, 58.0), (172.0, 50.5, 180.0, 53.5),
        (-120.0, 39.0, -114.0, 42.0), (166.5, 8.5, 168.2, 9.6),
    ]
    lon = np.concatenate([rng.uniform(w, e, 150) for w, _, e, _ in boxes])
    lat = np.concatenate([rng.uniform(s, n, 150) for _, s, _, n in boxes])
    got = zones_for_points(lon, lat, tolerance_km=0.0)
    expected = [_oracle_zone(geo, table, x, y) for x, y in zip(lon, lat, strict=True)]
    mismatch = [(x, y, g, e) for x, y, g, e in zip(lon, lat, got, expected, strict=True)
                if g != e]
    assert mismatch == []
    assert sum(z is not None for z in expected) > 600  # most samples fall on land


def test_every_county_point_gets_its_county_zone(geo: Geography, table: ZoneTable) -> None:
    counties = geo.counties
    points = shapely.point_on_surface(counties.geometry.to_numpy())
    x, y = shapely.get_x(points), shapely.get_y(points)
    got = zones_for_points(x, y, tolerance_km=0.0)
    mismatch = []
    for fips, state, px, py, zone in zip(counties["fips"], counties["state_code"], x, y, got,
                                         strict=True):
        expected = table.counties.get(fips, table.jurisdictions[state])
        for b in table.boxes:
            if b.jurisdiction == state and b.west <= px <= b.east and b.south <= py <= b.north:
                expected = b.zone
        if zone != expected:
            mismatch.append((fips, zone, expected))
    assert mismatch == []


# --------------------------------------------------------------------------------------------
# The bundled tables


def test_every_jurisdiction_has_a_zone(geo: Geography, table: ZoneTable) -> None:
    assert set(JURISDICTIONS) <= set(table.jurisdictions)
    assert set(table.jurisdictions) == set(geo.state_codes)
    for code in JURISDICTIONS:
        assert zone_for_point(*geo.state_geometry(code).representative_point().coords[0]) in (
            {table.jurisdictions[code]} | set(table.counties.values())
            | {b.zone for b in table.boxes})


def test_every_county_fips_is_a_bundled_county_of_the_same_name(geo: Geography,
                                                                table: ZoneTable) -> None:
    bundled = {f: (n, s) for f, n, s in zip(geo.counties["fips"], geo.counties["name"],
                                            geo.counties["state_code"], strict=True)}
    with (TZ_DIR / "timezones.csv").open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["level"] == "county"]
    assert len(rows) == len(table.counties) == 185
    for row in rows:
        assert row["code"] in bundled, f"{row['code']} ({row['name']}) is not a bundled county"
        name, state = bundled[row["code"]]
        assert row["name"] == f"{name}, {state}", row
        assert state in table.jurisdictions


def test_county_rows_differ_from_their_state_or_explain_a_split(geo: Geography,
                                                                table: ZoneTable) -> None:
    state_of = dict(zip(geo.counties["fips"], geo.counties["state_code"], strict=True))
    same = sorted(f for f, z in table.counties.items()
                  if z == table.jurisdictions[state_of[f]])
    assert same == sorted(f for f in same if f in table.notes)
    assert len(table.counties) - len(same) == 176


def test_every_zone_is_in_the_time_zone_database(table: ZoneTable) -> None:
    zones = {*table.jurisdictions.values(), *table.counties.values(),
             *(b.zone for b in table.boxes)}
    for zone in zones:
        ZoneInfo(zone)
    assert {"America/Adak", "America/Menominee", "America/Boise", "Pacific/Kwajalein",
            "America/Indiana/Knox", "America/Kentucky/Monticello"} <= zones


def _county_names(geo: Geography, table: ZoneTable, state: str, zones: set[str]) -> set[str]:
    counties = geo.counties[geo.counties["state_code"] == state]
    return {n for f, n in zip(counties["fips"], counties["name"], strict=True)
            if table.counties.get(f, table.jurisdictions[state]) in zones}


def test_county_splits_match_the_legal_lists(geo: Geography, table: ZoneTable) -> None:
    central = {"America/Chicago", "America/Indiana/Knox", "America/Indiana/Tell_City",
               "America/Menominee"}
    mountain = {"America/Denver", "America/Boise"}
    assert _county_names(geo, table, "IN", central) == {
        "Gibson", "Jasper", "Lake", "LaPorte", "Newton", "Porter", "Posey", "Spencer",
        "Vanderburgh", "Warrick", "Starke", "Perry"}
    assert _county_names(geo, table, "MI", central) == {"Dickinson", "Gogebic", "Iron",
                                                        "Menominee"}
    assert _county_names(geo, table, "FL", central) == {
        "Bay", "Calhoun", "Escambia", "Holmes", "Jackson", "Okaloosa", "Santa Rosa", "Walton",
        "Washington"}
    assert _county_names(geo, table, "KS", mountain) == {"Greeley", "Hamilton", "Sherman",
                                                         "Wallace"}
    assert _county_names(geo, table, "TX", mountain) == {"El Paso", "Hudspeth"}
    assert _county_names(geo, table, "OR", mountain) == {"Malheur"}
    assert _county_names(geo, table, "ID", {"America/Los_Angeles"}) == {
        "Benewah", "Bonner", "Boundary", "Clearwater", "Idaho", "Kootenai", "Latah", "Lewis",
        "Nez Perce", "Shoshone"}
    assert _county_names(geo, table, "ND", mountain) == {
        "Adams", "Billings", "Bowman", "Dunn", "Golden Valley", "Grant", "Hettinger", "Slope",
        "Stark"}
    assert len(_county_names(geo, table, "KY", central)) == 41
    assert len(_county_names(geo, table, "TN", {"America/New_York"})) == 30
    assert len(_county_names(geo, table, "NE", mountain)) == 18
    assert len(_county_names(geo, table, "SD", mountain)) == 15


def test_every_box_lies_on_its_jurisdiction(geo: Geography, table: ZoneTable) -> None:
    for b in table.boxes:
        rect = box(b.west, b.south, b.east, b.north)
        assert rect.intersects(geo.state_geometry(b.jurisdiction)), b


# --------------------------------------------------------------------------------------------
# Broken tables are refused


def _copy_tables(tmp_path: Path) -> Path:
    for name in ("timezones.csv", "zone_boxes.csv"):
        shutil.copy(TZ_DIR / name, tmp_path / name)
    return tmp_path


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def test_missing_table_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TimezoneDataMissing) as info:
        load_zone_table(tmp_path)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize(("file", "line", "match"), [
    ("timezones.csv", "county,12033,Escambia again,America/Chicago,", "line 244: .*twice"),
    ("timezones.csv", "county,12033x,Typo,America/Chicago,", "line 244: level"),
    ("timezones.csv", "state,FL,Florida,America/New_York,", "line 244: level"),
    ("timezones.csv", "county,99999,Nowhere,America/Chicgo,", "line 244: unknown IANA zone"),
    ("timezones.csv", "county,12034", "line 244: unknown IANA zone ''"),
    ("timezones.csv", "county,12034,X,America/Chicago,,extra", "line 244: more than 5 fields"),
    ("zone_boxes.csv", "America/Adak,XX,-180,50,-170,55,", "jurisdiction 'XX'"),
    ("zone_boxes.csv", "America/Adak,AK,170,50,190,55,", "split a box at 180"),
    ("zone_boxes.csv", "America/Adak,AK,west,50,-170,55,", "numbers"),
])
def test_malformed_rows_are_refused(tmp_path: Path, file: str, line: str, match: str) -> None:
    directory = _copy_tables(tmp_path)
    _append(directory / file, line)
    with pytest.raises(TimezoneTableError, match=match) as info:
        load_zone_table(directory)
    assert isinstance(info.value, ValueError)


def test_a_county_that_is_not_bundled_is_refused(tmp_path: Path, geo: Geography) -> None:
    directory = _copy_tables(tmp_path)
    _append(directory / "timezones.csv", "county,12999,Typo,America/Chicago,")
    with pytest.raises(TimezoneTableError, match="12999"):
        TimezoneMap(geo, load_zone_table(directory))


def test_a_jurisdiction_without_a_zone_is_refused(tmp_path: Path, geo: Geography) -> None:
    directory = _copy_tables(tmp_path)
    path = directory / "timezones.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(x for x in lines if not x.startswith("jurisdiction,GU,")) + "\n",
                    encoding="utf-8")
    with pytest.raises(TimezoneTableError, match="GU"):
        TimezoneMap(geo, load_zone_table(directory))


# --------------------------------------------------------------------------------------------
# Areas

ALEUTIANS_BEYOND_180 = Polygon([(178, 51), (182, 51), (182, 52.5), (178, 52.5)])
ALEUTIANS_SPLIT = MultiPolygon([box(178, 51, 180, 52.5), box(-180, 51, -178, 52.5)])
ALEUTIANS_JUMP = Polygon([(178, 51), (-178, 51), (-178, 52.5), (178, 52.5)])


def test_an_area_across_the_central_mountain_line_has_both_zones() -> None:
    # Kansas at 39.4 N: Sherman County (Mountain) is -102.05 to -101.39.
    mostly_central = box(-102.0, 39.3, -99.0, 39.5)
    mostly_mountain = box(-103.5, 39.3, -101.3, 39.5)
    assert zones_for_area(mostly_central) == ["America/Chicago", "America/Denver"]
    assert zones_for_area(mostly_mountain) == ["America/Denver", "America/Chicago"]
    assert zones_for_area(LineString([(-103.0, 39.4), (-99.0, 39.4)])) == [
        "America/Chicago", "America/Denver"]


@pytest.mark.parametrize("area", [ALEUTIANS_BEYOND_180, ALEUTIANS_SPLIT, ALEUTIANS_JUMP],
                         ids=["beyond-180", "split-at-180", "jumping-edges"])
def test_an_area_across_the_antimeridian_in_the_aleutians(area) -> None:
    assert zones_for_area(area) == ["America/Adak"]


def test_aleutian_areas_on_both_sides_of_169_30_w() -> None:
    assert set(zones_for_area(box(-177.0, 51.5, -166.0, 54.5))) == {"America/Anchorage",
                                                                    "America/Adak"}


def test_pacific_areas_near_the_antimeridian() -> None:
    assert zones_for_area(box(-171.0, -14.5, -170.5, -14.1)) == ["Pacific/Pago_Pago"]
    assert zones_for_area(box(171.0, 6.9, 171.6, 7.3)) == ["Pacific/Majuro"]
    assert zones_for_area(box(144.5, 13.2, 145.0, 13.7)) == ["Pacific/Guam"]
    # A cone drawn from 160 E to 190 E over the Marshall Islands: most atolls are Majuro's.
    cone = Polygon([(160, 0), (190, 0), (190, 15), (160, 15)])
    assert zones_for_area(cone) == ["Pacific/Majuro", "Pacific/Kwajalein"]
    # American Samoa, drawn from 185 E, beyond the antimeridian.
    assert zones_for_area(box(189.0, -14.5, 189.5, -14.1)) == ["Pacific/Pago_Pago"]


def test_areas_off_the_coast_take_the_zone_of_their_vertices() -> None:
    assert zones_for_area(box(-87.25, 30.25, -87.10, 30.31)) == ["America/Chicago"]
    assert zones_for_area(box(-41.0, 29.0, -39.0, 31.0)) == []


def test_points_and_odd_shapes() -> None:
    assert zones_for_area(Point(-80.19, 25.76)) == ["America/New_York"]
    assert zones_for_area(Point(189.2975, -14.2794)) == ["Pacific/Pago_Pago"]  # 360 - 170.70
    multi = MultiPoint([(-80.19, 25.76), (-87.22, 30.42), (-87.30, 30.50)])
    assert zones_for_area(multi) == ["America/Chicago", "America/New_York"]
    assert zones_for_area(Polygon()) == []
    bowtie = Polygon([(-102.5, 39.2), (-100.5, 39.6), (-100.5, 39.2), (-102.5, 39.6)])
    assert set(zones_for_area(bowtie)) == {"America/Chicago", "America/Denver"}
    collection = shapely.GeometryCollection([box(-87.3, 30.4, -87.2, 30.5), Point(-80.19, 25.76)])
    assert zones_for_area(collection) == ["America/Chicago"]


@pytest.mark.parametrize(("geometry", "match"), [
    (None, "geometry"),
    ((-80.0, 25.0), "geometry"),
    (box(-80.0, 85.0, -79.0, 95.0), "latitudes"),
])
def test_area_arguments_are_checked(geometry, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        zones_for_area(geometry)


def test_the_map_is_built_once() -> None:
    assert load_timezone_map() is load_timezone_map()


# --------------------------------------------------------------------------------------------
# Formatting


@pytest.mark.parametrize(("when", "zone", "text"), [
    (datetime(2026, 11, 28, 8, 12, tzinfo=UTC), EASTERN, "2026-11-28 03:12 EST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), EASTERN, "2026-07-04 12:00 EDT"),
    # 2026: daylight time from Sunday 8 March 07:00 UTC to Sunday 1 November 06:00 UTC.
    (datetime(2026, 3, 8, 6, 59, tzinfo=UTC), EASTERN, "2026-03-08 01:59 EST"),
    (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), EASTERN, "2026-03-08 03:00 EDT"),
    (datetime(2026, 11, 1, 5, 59, tzinfo=UTC), EASTERN, "2026-11-01 01:59 EDT"),
    (datetime(2026, 11, 1, 6, 0, tzinfo=UTC), EASTERN, "2026-11-01 01:00 EST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "America/Chicago", "2026-07-04 11:00 CDT"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "America/Denver", "2026-07-04 10:00 MDT"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "America/Phoenix", "2026-07-04 09:00 MST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "America/Indiana/Knox", "2026-07-04 11:00 CDT"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "America/Adak", "2026-07-04 07:00 HDT"),
    (datetime(2026, 1, 4, 16, 0, tzinfo=UTC), "America/Adak", "2026-01-04 06:00 HST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "Pacific/Honolulu", "2026-07-04 06:00 HST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "America/Puerto_Rico", "2026-07-04 12:00 AST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "Pacific/Guam", "2026-07-05 02:00 ChST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "Pacific/Pago_Pago", "2026-07-04 05:00 SST"),
    (datetime(2026, 7, 4, 16, 0, tzinfo=UTC), "Pacific/Majuro", "2026-07-05 04:00 +12"),
    # any aware datetime: 12:00 at UTC+10 is 02:00 UTC
    (datetime(2026, 1, 5, 12, 0, tzinfo=timezone(timedelta(hours=10))), EASTERN,
     "2026-01-04 21:00 EST"),
])
def test_format_local(when: datetime, zone: str, text: str) -> None:
    assert format_local(when, zone) == text


@pytest.mark.parametrize(("when", "zone", "match"), [
    (datetime(2026, 11, 28, 8, 12), EASTERN, "when must be timezone-aware"),  # noqa: DTZ001
    (date(2026, 11, 28), EASTERN, "when must be a datetime"),
    ("2026-11-28T08:12Z", EASTERN, "when must be a datetime"),
    (datetime(2026, 11, 28, 8, 12, tzinfo=UTC), "Mars/Olympus_Mons", "zone"),
    (datetime(2026, 11, 28, 8, 12, tzinfo=UTC), "", "zone"),
    (datetime(2026, 11, 28, 8, 12, tzinfo=UTC), None, "zone"),
    (datetime(2026, 11, 28, 8, 12, tzinfo=UTC), "../../etc/passwd", "zone"),
])
def test_format_local_arguments_are_checked(when, zone, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        format_local(when, zone)
