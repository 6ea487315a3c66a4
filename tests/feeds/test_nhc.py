"""NHC source: CurrentStorms.json, the 5-day GIS zip and its GeoJSON conversions, fetch."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Geod

from feeds import FeedFormatError, FeedUnavailable, nhc
from feeds.base import FetchContext, MemoryCache
from feeds.http import HttpClient
from settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nhc"
CURRENT = FIXTURES / "aguayluz_nhc_current_storms.json"
SANDY_ZIP = FIXTURES / "mapbox-sandy_al182012_5day_latest.zip"
SANDY_JSON = {kind: FIXTURES / f"mapbox-sandy_al182012.017A_{layer}.json" for kind, layer in (
    ("cone", "5day_pgn"), ("track", "5day_lin"), ("points", "5day_ptn"),
    ("warnings", "ww_wwlin"))}
NOW = datetime(2026, 8, 2, 4, 0, tzinfo=timezone.utc)
GEOD = Geod(ellps="WGS84")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _sandy_geojson() -> dict[str, Any]:
    return {kind: _json(path) for kind, path in SANDY_JSON.items()}


def _within_world(geom: shapely.Geometry) -> bool:
    minx, miny, maxx, maxy = geom.bounds
    return -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


# ------------------------------------------------------------------------------ the samples


def test_current_storms_sample_is_one_unplaced_tropical_storm() -> None:
    result = nhc.parse_current_storms(_json(CURRENT), now=NOW)
    assert (len(result.hazards), result.skipped, result.unplaced) == (1, 0, 1)
    cone = result.hazards[0]
    assert cone.hazard_id == "nhc:ep072026:cone"
    assert cone.event == "Tropical Storm Genevieve"
    assert cone.category == "tropical_cyclone"
    assert cone.severity == "moderate"
    assert cone.source_severity == "TS 40 kt"
    assert cone.geometry is None and not cone.is_placed
    assert cone.sent == datetime(2026, 8, 2, 3, 0, tzinfo=timezone.utc)
    assert cone.url == "https://www.nhc.noaa.gov/text/MIATCPEP2.shtml"
    props = cone.properties
    assert (props["lat"], props["lon"], props["advisory"]) == (23.5, -136.0, "036")
    assert (props["intensity_kt"], props["pressure_mb"], props["gis"]) == (40, 1004, "unavailable")


def test_current_storms_links_are_read() -> None:
    storms, skipped, _ = nhc.read_current_storms(_json(CURRENT))
    assert skipped == 0
    (storm,) = storms
    assert storm.cone_zip_url == ("https://www.nhc.noaa.gov/gis/forecast/archive/"
                                  "ep072026_5day_036.zip")
    assert storm.ww_zip_url == ""  # windWatchesWarnings is null for this storm
    assert (storm.bin_number, storm.movement_dir_deg, storm.movement_speed) == ("EP2", 290, 14)


def test_sandy_zip_gives_a_valid_cone_and_two_warning_areas() -> None:
    gis = nhc.read_gis_zip(SANDY_ZIP.read_bytes())
    assert (gis.storm_id, gis.storm_name, gis.storm_type, gis.advisory) == (
        "al182012", "Sandy", "HU", "17A")
    assert gis.issued == datetime(2012, 10, 26, 18, 0, tzinfo=timezone.utc)
    assert gis.forecast_hours == 120
    assert (len(gis.track), len(gis.points), gis.skipped) == (2, 14, 0)
    assert {code: len(segments) for code, segments in gis.warnings.items()} == {
        "TWR": 6, "TWA": 5}
    # The one-point TWA segment GEOS refuses as a line is kept as a point.
    assert Counter(g.geom_type for g in gis.warnings["TWA"]) == {"LineString": 4, "Point": 1}
    assert gis.intensity_kt == 65

    result = nhc.parse_gis_zip(SANDY_ZIP.read_bytes(), now=NOW)
    assert (result.skipped, result.unplaced) == (0, 0)
    ids = [h.hazard_id for h in result.hazards]
    assert ids == ["nhc:al182012:cone", "nhc:al182012:ww:TWR", "nhc:al182012:ww:TWA"]
    cone, warning, watch = result.hazards
    assert cone.geometry.geom_type == "Polygon" and cone.geometry.is_valid
    assert cone.geometry_method == "polygon"
    assert (cone.severity, cone.source_severity) == ("severe", "HU 65 kt (Cat 1)")
    assert cone.properties["forecast_hours"] == 120
    assert cone.properties["advisory"] == "17A"
    # The 5-day cone holds the 3-day cone and every forecast point.
    assert all(cone.geometry.covers(shapely.Point(p[0], p[1])) for p in gis.points)
    assert (warning.event, warning.severity, warning.urgency) == (
        "Tropical Storm Warning", "severe", "expected")
    assert (watch.event, watch.severity, watch.urgency) == (
        "Tropical Storm Watch", "moderate", "future")
    for hazard, code in ((warning, "TWR"), (watch, "TWA")):
        assert hazard.geometry.is_valid and hazard.geometry_method == "polygon"
        assert hazard.properties["buffer_km"] == nhc.WW_BUFFER_KM[code]
        for segment in gis.warnings[code]:
            assert hazard.geometry.covers(segment)


def test_geojson_conversions_parse_to_the_same_hazards_as_the_zip() -> None:
    gis = nhc.read_gis_geojson(**_sandy_geojson())
    assert (gis.storm_id, gis.advisory, gis.forecast_hours) == ("al182012", "17A", 120)
    assert (len(gis.track), len(gis.points), gis.skipped) == (2, 14, 0)
    assert {code: len(v) for code, v in gis.warnings.items()} == {"TWR": 6, "TWA": 5}

    from_json = nhc.parse_gis_geojson(now=NOW, **_sandy_geojson())
    from_zip = nhc.parse_gis_zip(SANDY_ZIP.read_bytes(), now=NOW)
    assert [h.hazard_id for h in from_json.hazards] == [h.hazard_id for h in from_zip.hazards]
    for a, b in zip(from_json.hazards, from_zip.hazards, strict=True):
        assert a.geometry.symmetric_difference(b.geometry).area < 1e-9
        assert a.severity == b.severity


def test_each_geojson_layer_parses_on_its_own() -> None:
    layers = _sandy_geojson()
    assert len(nhc.read_gis_geojson(track=layers["track"]).track) == 2
    assert len(nhc.read_gis_geojson(points=layers["points"]).points) == 14
    assert nhc.read_gis_geojson(cone=layers["cone"]).cone.is_valid
    assert sum(len(v) for v in nhc.read_gis_geojson(warnings=layers["warnings"])
               .warnings.values()) == 11


def test_warning_area_reaches_the_buffer_distance_and_no_further() -> None:
    """Points 45 km from a coastline segment are inside, 55 km outside (geodesic)."""
    segment = shapely.LineString([(-80.07, 26.32), (-80.07, 26.95)])  # a north-south coast
    area = nhc.buffer_geodesic(segment, 50.0)
    lon, lat = -80.07, 26.6
    for azimuth in (90.0, 270.0):
        for km, inside in ((45.0, True), (55.0, False)):
            x, y, _ = GEOD.fwd(lon, lat, azimuth, km * 1000.0)
            assert area.covers(shapely.Point(x, y)) is inside, (azimuth, km)
    # A lone point becomes a geodesic disc.
    disc = nhc.buffer_geodesic(shapely.Point(-75.53, 35.22), 50.0)
    ring = shapely.get_coordinates(disc.exterior)
    _, _, dist = GEOD.inv(np.full(len(ring), -75.53), np.full(len(ring), 35.22),
                          ring[:, 0], ring[:, 1])
    assert np.allclose(dist, 50_000.0, rtol=2e-3)


def test_buffer_geodesic_checks_its_distance() -> None:
    with pytest.raises(ValueError, match="distance_km"):
        nhc.buffer_geodesic(shapely.Point(0, 0), 0.0)


# --------------------------------------------------------------------------- antimeridian


def _shift_collection(collection: dict[str, Any], degrees: float, *, wrap: bool
                      ) -> dict[str, Any]:
    """A copy with every longitude moved east; ``wrap`` folds them back into [-180, 180]."""

    def move(coords: Any) -> Any:
        if isinstance(coords[0], list):
            return [move(c) for c in coords]
        x = coords[0] + degrees
        if wrap:
            x = (x + 180.0) % 360.0 - 180.0
        return [x, *coords[1:]]

    shifted = copy.deepcopy(collection)
    for feature in shifted["features"]:
        feature["geometry"]["coordinates"] = move(feature["geometry"]["coordinates"])
    return shifted


@pytest.mark.parametrize("wrap", [False, True], ids=["beyond-180", "jumping-edges"])
def test_central_pacific_cone_across_the_antimeridian(wrap: bool) -> None:
    """Sandy's cone moved to straddle 180 degrees comes out split, valid, within range."""
    layers = _sandy_geojson()
    original = nhc.read_gis_geojson(cone=layers["cone"]).cone
    moved = _shift_collection(layers["cone"], 255.0, wrap=wrap)  # centre near 180
    result = nhc.parse_gis_geojson(now=NOW, cone=moved)
    cone = result.hazards[0].geometry
    assert cone.geom_type == "MultiPolygon" and cone.is_valid
    assert _within_world(cone)
    assert cone.bounds[0] == -180.0 and cone.bounds[2] == 180.0
    assert cone.area == pytest.approx(original.area, rel=1e-9)


def test_watch_segments_across_the_antimeridian_are_buffered_and_split() -> None:
    layers = _sandy_geojson()
    moved = _shift_collection(layers["warnings"], 258.0, wrap=True)
    gis = nhc.read_gis_geojson(warnings=moved)
    crossing = [g for g in gis.warnings["TWA"]
                if g.geom_type == "LineString" and g.bounds[2] - g.bounds[0] > 180]
    assert crossing, "the shift should make at least one segment jump across 180"
    area = nhc.buffer_geodesic(shapely.GeometryCollection(list(gis.warnings["TWA"])), 50.0)
    assert area.is_valid and _within_world(area)
    assert area.geom_type == "MultiPolygon"
    assert area.bounds[0] == -180.0 and area.bounds[2] == 180.0


# ---------------------------------------------------------------------- rules and errors


def test_gis_features_with_coordinates_out_of_range_are_skipped() -> None:
    # Buffering a watch segment 1.7e15 degrees long crashed the interpreter (GEOS, out of
    # memory); NaN and infinite vertices raised IndexError.
    layers = _sandy_geojson()
    features = layers["warnings"]["features"]
    good = len(features)
    for coords in ([[-76.0, 35.0], [1.7e15, 35.0]], [[-76.0, 35.0], [float("nan"), 35.0]],
                   [[-76.0, 35.0], [-76.0, 95.0]], [[float("inf"), 35.0]]):
        features.append({"type": "Feature", "properties": {"TCWW": "TWR"},
                         "geometry": {"type": "LineString", "coordinates": coords}})
    gis = nhc.read_gis_geojson(warnings=layers["warnings"])
    assert sum(len(v) for v in gis.warnings.values()) == good
    assert gis.problems[-4:] == tuple(f"warnings[{good + i}]: coordinates out of range"
                                      for i in range(4))
    result = nhc.parse_gis_geojson(now=NOW, cone=layers["cone"], points=layers["points"],
                                   warnings=layers["warnings"])
    assert all(_within_world(h.geometry) for h in result.hazards)


@pytest.mark.parametrize(("classification", "kt", "expected"), [
    ("HU", 120, "extreme"), ("HU", 96, "extreme"), ("HU", 95, "severe"),
    ("HU", None, "severe"), ("TS", 40, "moderate"), ("STS", 45, "moderate"),
    ("TD", 30, "minor"), ("PTC", 30, "minor"), ("PTC", 40, "moderate"),
    ("PC", 70, "severe"), ("XX", None, "unknown"), ("XX", 50, "moderate"),
])
def test_storm_severity(classification: str, kt: int | None, expected: str) -> None:
    assert nhc.storm_severity(classification, kt) == expected


def test_saffir_simpson_categories() -> None:
    assert [nhc.saffir_simpson(kt) for kt in (63, 64, 83, 96, 113, 137, None)] == [
        None, 1, 2, 3, 4, 5, None]


def test_malformed_storms_are_skipped_with_index_and_reason() -> None:
    payload = _json(CURRENT)
    good = payload["activeStorms"][0]
    no_id = {**good, "id": None}
    bad_lat = {**good, "id": "al012026", "latitudeNumeric": 123.0, "latitude": "123N"}
    text_lat = {**good, "id": "al022026", "latitudeNumeric": None, "latitude": "15.2S"}
    payload["activeStorms"] = [good, no_id, "storm", bad_lat, text_lat, good]
    result = nhc.parse_current_storms(payload, now=NOW)
    assert result.skipped == 4
    assert [p.split(":")[0] for p in result.problems] == [
        "activeStorms[1]", "activeStorms[2]", "activeStorms[3]", "activeStorms[5]"]
    assert "duplicate" in result.problems[-1]
    assert [h.hazard_id for h in result.hazards] == ["nhc:ep072026:cone", "nhc:al022026:cone"]
    assert result.hazards[1].properties["lat"] == -15.2


@pytest.mark.parametrize("payload", [[], "storms", {"activeStorms": {"id": "al012026"}}])
def test_wrong_shape_raises_format_error(payload: Any) -> None:
    with pytest.raises(FeedFormatError):
        nhc.parse_current_storms(payload, now=NOW)


def test_quiet_season_is_empty() -> None:
    result = nhc.parse_current_storms({"activeStorms": []}, now=NOW)
    assert result.hazards == () and result.skipped == 0


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="now"):
        nhc.parse_current_storms(_json(CURRENT), now=datetime(2026, 8, 2))  # noqa: DTZ001


@pytest.mark.parametrize("data", [b"not a zip", b"PK\x03\x04broken", b""])
def test_unreadable_zip_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FeedFormatError):
        nhc.read_gis_zip(data)


def _sandy_layer(layer: str, *, without: str) -> bytes:
    """One layer of the Sandy zip with one of its members left out."""
    out = io.BytesIO()
    with zipfile.ZipFile(SANDY_ZIP) as source, zipfile.ZipFile(out, "w") as target:
        for ext in ("shp", "shx", "dbf", "prj"):
            name = f"al182012.017A_{layer}.{ext}"
            if ext != without:
                target.writestr(name, source.read(name))
    return out.getvalue()


def test_gis_layer_without_its_shapes_is_a_format_error() -> None:
    # a zip holding the .dbf but not the .shp raised TypeError (no geometries to iterate)
    with pytest.raises(FeedFormatError, match=r"GIS layer .* has no geometry"):
        nhc.read_gis_zip(_sandy_layer("5day_pts", without="shp"))


def test_gis_layer_claiming_too_many_features_is_refused_before_it_is_read() -> None:
    # a .dbf header claiming 2**31 - 1 records made pyogrio allocate arrays for all of them:
    # the worker grew to 24 GB and was killed
    out = io.BytesIO()
    with zipfile.ZipFile(SANDY_ZIP) as source, zipfile.ZipFile(out, "w") as target:
        for ext in ("shp", "shx", "prj"):  # a readable layer beside it
            name = f"al182012.017A_5day_pgn.{ext}"
            target.writestr(name, source.read(name))
        dbf = bytearray(source.read("al182012.017A_5day_pts.dbf"))
        dbf[4:8] = (2**31 - 1).to_bytes(4, "little")
        target.writestr("al182012.017A_5day_pts.dbf", bytes(dbf))
    with pytest.raises(FeedFormatError, match=r"claims 2147483647 features, more than 10000"):
        nhc.read_gis_zip(out.getvalue())


def test_gis_of_another_storm_is_not_used() -> None:
    sandy = nhc.read_gis_zip(SANDY_ZIP.read_bytes())
    result = nhc.parse_current_storms(_json(CURRENT), now=NOW, gis={"ep072026": sandy})
    assert result.unplaced == 1
    assert [h.hazard_id for h in result.hazards] == ["nhc:ep072026:cone"]
    assert result.hazards[0].properties["gis"] == "mismatch"


# ------------------------------------------------------------------------ fetch, for real

def _storms_payload(base: str) -> dict[str, Any]:
    """The recorded CurrentStorms entry pointed at the local server, plus Sandy built from it."""
    payload = _json(CURRENT)
    genevieve = payload["activeStorms"][0]
    for product in ("trackCone", "forecastTrack"):
        genevieve[product]["zipFile"] = f"{base}/gis/ep072026_5day_036.zip"
    sandy = copy.deepcopy(genevieve)
    sandy.update({"id": "al182012", "binNumber": "AT3", "name": "Sandy", "classification": "HU",
                  "intensity": "65", "pressure": "970", "latitude": "27.1N",
                  "longitude": "77.1W", "latitudeNumeric": 27.1, "longitudeNumeric": -77.1,
                  "lastUpdate": "2012-10-26T18:00:00.000Z"})
    for product in ("trackCone", "forecastTrack"):
        sandy[product]["zipFile"] = f"{base}/gis/al182012_5day_latest.zip"
        sandy[product]["advNum"] = "017A"
    payload["activeStorms"] = [sandy, genevieve]
    return payload


def _context(base: str, cache: MemoryCache) -> tuple[FetchContext, HttpClient]:
    settings = Settings.from_env({}, nhc_url=f"{base}/CurrentStorms.json")
    client = HttpClient(settings, sleep=lambda _s: None, backoff_s=0.0)
    return FetchContext(client=client, cache=cache, settings=settings, now=NOW), client


def test_fetch_places_storms_with_gis_and_keeps_the_others_unplaced(local_server) -> None:
    base, routes, hits = local_server.base, local_server.routes, local_server.hits
    storms = json.dumps(_storms_payload(base)).encode()
    routes["/CurrentStorms.json"] = (200, "application/json", storms)
    routes["/gis/al182012_5day_latest.zip"] = (200, "application/zip", SANDY_ZIP.read_bytes())
    # Genevieve's zip is missing (404): the storm stays, unplaced, and the poll succeeds.
    cache = MemoryCache()
    ctx, client = _context(base, cache)
    try:
        result = nhc.fetch(ctx)
        assert [h.hazard_id for h in result.hazards] == [
            "nhc:al182012:cone", "nhc:al182012:ww:TWR", "nhc:al182012:ww:TWA",
            "nhc:ep072026:cone"]
        assert result.unplaced == 1
        assert result.hazards[0].is_placed and not result.hazards[3].is_placed
        assert result.hazards[3].properties["gis"] == "unavailable"
        assert result.hazards[0].properties["advisory"] == "17A"

        again = nhc.fetch(ctx)  # same storm update: the zip comes from the cache
        assert [h.hazard_id for h in again.hazards] == [h.hazard_id for h in result.hazards]
    finally:
        client.close()
    assert hits["/CurrentStorms.json"] == 2
    assert hits["/gis/al182012_5day_latest.zip"] == 1
    assert hits["/gis/ep072026_5day_036.zip"] == 2  # refused, never cached


def test_fetch_with_a_broken_zip_keeps_the_storm_unplaced(local_server) -> None:
    base, routes = local_server.base, local_server.routes
    storms = json.dumps(_storms_payload(base)).encode()
    routes["/CurrentStorms.json"] = (200, "application/json", storms)
    routes["/gis/al182012_5day_latest.zip"] = (
        200, "application/zip", SANDY_ZIP.read_bytes()[:3000])
    routes["/gis/ep072026_5day_036.zip"] = (503, "text/plain", b"busy")
    ctx, client = _context(base, MemoryCache())
    try:
        result = nhc.fetch(ctx)
    finally:
        client.close()
    assert [h.hazard_id for h in result.hazards] == ["nhc:al182012:cone", "nhc:ep072026:cone"]
    assert result.unplaced == 2


def test_fetch_fails_when_current_storms_fails(local_server) -> None:
    local_server.routes["/CurrentStorms.json"] = (500, "text/plain", b"oops")
    ctx, client = _context(local_server.base, MemoryCache())
    try:
        with pytest.raises(FeedUnavailable):
            nhc.fetch(ctx)
    finally:
        client.close()
