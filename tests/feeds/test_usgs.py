"""USGS earthquakes: recorded summaries, event details and ShakeMap contours; fetch against a
real local HTTP server."""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from feeds import FeedFormatError, FeedUnavailable, usgs
from feeds.base import FetchContext, MemoryCache
from feeds.http import HttpClient
from layers.shapes import geodesic_within
from settings import Settings
from tests.feeds.local_server import LocalServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "usgs"
SIGNIFICANT = FIXTURES / "naseemao_significant_month.geojson"
ALL_DAY_2014 = FIXTURES / "abruzzi_all_day_2014.geojson"
DETAIL_NV = FIXTURES / "eventpages_nn00536452_detail.geojson"
DETAIL_TAIWAN = FIXTURES / "eventpages_us1000chhc_detail.geojson"
CONTOURS = FIXTURES / "isival_iscgem882673_cont_mmi.json"
CONTOUR_EPICENTRE = (-110.891, 44.63)  # the contour file's own metadata
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def _features(path: Path) -> list[dict]:
    return json.loads(path.read_bytes())["features"]


# --------------------------------------------------------------------------- recorded samples


def test_significant_month_parses_every_feature() -> None:
    result = usgs.parse_summary(SIGNIFICANT.read_bytes(), now=NOW)
    assert (len(result.hazards), result.skipped, result.unplaced) == (18, 0, 0)
    by_id = {h.hazard_id: h for h in result.hazards}
    assert len(by_id) == 18
    afghan = by_id["usgs:us6000len8"]
    assert afghan.severity == "extreme"
    assert afghan.source_severity == "PAGER red, M 6.3 mww"
    assert afghan.properties["pager_alert"] == "red"
    assert afghan.category == "earthquake"
    assert afghan.sent == datetime.fromtimestamp(1697054252.893, tz=timezone.utc)
    assert afghan.onset == afghan.effective == datetime.fromtimestamp(1696984916.160,
                                                                      tz=timezone.utc)
    assert afghan.expires == afghan.onset + timedelta(days=7)  # significant: sig 2029
    assert (afghan.center_lon, afghan.center_lat) == (62.0449, 34.5565)
    assert afghan.radius_km == pytest.approx(usgs.shaking_radius_km(6.3))
    assert afghan.geometry_method == "radius"
    # PAGER colours map to CAP severities; one event has no PAGER alert (magnitude rule)
    severities = collections.Counter(h.properties["pager_alert"] for h in result.hazards)
    assert severities == {"green": 10, "yellow": 4, "orange": 2, "red": 1, None: 1}
    for hazard in result.hazards:
        alert = hazard.properties["pager_alert"]
        if alert is not None:
            assert hazard.severity == usgs._PAGER_SEVERITY[alert]
    tsunami_flagged = {h.hazard_id for h in result.hazards if h.properties["tsunami_flag"]}
    assert tsunami_flagged == {"usgs:uw61965081", "usgs:us6000ldqd", "usgs:nc73943821",
                               "usgs:nc73938736"}
    assert "tsunami flag" in by_id["usgs:us6000ldqd"].source_severity


def test_all_day_2014_parses_every_feature() -> None:
    result = usgs.parse_summary(ALL_DAY_2014.read_bytes(), now=NOW)
    assert (len(result.hazards), result.skipped, result.unplaced) == (146, 0, 0)
    categories = collections.Counter(h.category for h in result.hazards)
    assert categories == {"earthquake": 145, "other": 1}  # one quarry blast
    windows = collections.Counter(h.expires - h.onset for h in result.hazards)
    assert windows == {timedelta(hours=24): 145, timedelta(days=7): 1}  # M7.4, sig 842
    assert all(h.severity == "minor" for h in result.hazards)  # five PAGER green, small rest
    assert min(h.radius_km for h in result.hazards) == usgs.MIN_RADIUS_KM


def test_event_details_parse_and_name_their_contours() -> None:
    nevada = usgs.parse_detail(DETAIL_NV.read_bytes(), now=NOW)
    assert [h.hazard_id for h in nevada.hazards] == ["usgs:nn00536452"]
    assert nevada.hazards[0].radius_km == usgs.MIN_RADIUS_KM  # M3.3
    assert usgs.contours_url(DETAIL_NV.read_bytes()) == (
        "http://earthquake.usgs.gov/realtime/product/shakemap/nn00536452/nn/1458578086584/"
        "download/cont_mi.json")
    taiwan = usgs.parse_detail(DETAIL_TAIWAN.read_bytes(), now=NOW)
    hazard = taiwan.hazards[0]
    assert hazard.hazard_id == "usgs:us1000chhc"
    assert (hazard.severity, hazard.source_severity) == ("moderate", "PAGER yellow, M 6.4 mww")
    assert usgs.contours_url(json.loads(DETAIL_TAIWAN.read_bytes())) == (
        "https://earthquake.usgs.gov/realtime/product/shakemap/us1000chhc/us/1518531492473/"
        "download/cont_mi.json")


def test_contours_sample_has_eleven_levels() -> None:
    raw = json.loads(CONTOURS.read_bytes())
    assert len(raw["features"]) == 11
    levels = usgs.parse_contours(CONTOURS.read_bytes())
    assert sorted(levels) == [3.0 + 0.5 * i for i in range(11)]
    assert all(all(line.geom_type == "LineString" for line in lines) for lines in levels.values())


# --------------------------------------------------------------------------- ShakeMap areas


def test_shakemap_area_holds_the_epicentre_and_is_valid() -> None:
    area = usgs.shakemap_area(CONTOURS.read_bytes(), epicentre=CONTOUR_EPICENTRE)
    assert area is not None
    assert area.mmi == usgs.MMI_THRESHOLD == 5.0
    assert area.geometry.geom_type in ("Polygon", "MultiPolygon")
    assert area.geometry.is_valid
    assert area.geometry.contains(shapely.Point(CONTOUR_EPICENTRE))
    # smaller than the map, and the same without the epicentre hint (contours decide)
    levels = usgs.parse_contours(CONTOURS.read_bytes())
    box = shapely.box(*shapely.total_bounds([ln for lines in levels.values() for ln in lines]))
    assert 0 < area.geometry.area < 0.1 * box.area
    assert usgs.shakemap_area(CONTOURS.read_bytes()).geometry.equals(area.geometry)


def test_higher_intensity_areas_nest_inside_lower_ones() -> None:
    levels = usgs.parse_contours(CONTOURS.read_bytes())
    areas = [usgs.mmi_area(levels, level, epicentre=CONTOUR_EPICENTRE)
             for level in sorted(levels)]
    assert all(a is not None and a.is_valid for a in areas)
    for lower, higher in itertools.pairwise(areas):
        assert higher.difference(lower).area < 1e-9
        assert higher.area < lower.area
        assert higher.contains(shapely.Point(CONTOUR_EPICENTRE))


def test_threshold_falls_back_to_the_levels_the_map_has() -> None:
    payload = CONTOURS.read_bytes()
    assert usgs.shakemap_area(payload, threshold=5.2).mmi == 5.5
    assert usgs.shakemap_area(payload, threshold=9.0).mmi == 8.0  # never reaches IX: highest


def test_open_contours_are_closed_at_the_map_edge() -> None:
    # Two open MMI 4 lines cut the right end off a 10 x 4 box; MMI 5 inside it.
    contours = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"value": 3.0, "units": "mmi"},
         "geometry": {"type": "LineString", "coordinates": [[0, 0], [0, 4]]}},
        {"type": "Feature", "properties": {"value": 3.0, "units": "mmi"},
         "geometry": {"type": "LineString", "coordinates": [[10, 0], [10, 4]]}},
        {"type": "Feature", "properties": {"value": 4.0, "units": "mmi"},
         "geometry": {"type": "LineString", "coordinates": [[6, 0], [5, 2], [6, 4]]}},
        {"type": "Feature", "properties": {"value": 5.0, "units": "mmi"},
         "geometry": {"type": "LineString",
                      "coordinates": [[8, 1], [9, 1], [9, 3], [8, 3], [8, 1]]}},
    ]}
    area4 = usgs.shakemap_area(contours, threshold=4.0).geometry
    assert area4.equals(shapely.Polygon([(6, 0), (5, 2), (6, 4), (10, 4), (10, 0)]))
    area5 = usgs.shakemap_area(contours).geometry
    assert area5.equals(shapely.box(8, 1, 9, 3))


def test_contours_that_are_not_mmi_lines_are_refused() -> None:
    with pytest.raises(FeedFormatError, match="not a GeoJSON FeatureCollection"):
        usgs.parse_contours(b"[1, 2, 3]")
    pga = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"value": 4.0, "units": "%g"},
         "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}]}
    with pytest.raises(FeedFormatError, match="no MMI contour lines"):
        usgs.parse_contours(pga)


def test_contour_features_and_details_that_are_not_objects_are_refused() -> None:
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    contours = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": "null", "geometry": line},
        {"type": "Feature", "properties": {"value": 5.0}, "geometry": [line]}]}
    with pytest.raises(FeedFormatError, match="no MMI contour lines"):
        usgs.parse_contours(contours)
    assert usgs.contours_url({"type": "Feature", "properties": "null"}) is None


def test_contour_lines_with_coordinates_out_of_range_are_ignored() -> None:
    def level(value: float, coords: list) -> dict:
        return {"type": "Feature", "properties": {"value": value, "units": "mmi"},
                "geometry": {"type": "LineString", "coordinates": coords}}

    square = [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]
    contours = {"type": "FeatureCollection", "features": [
        level(5.0, square), level(6.0, [[0.5, 0.5], [1, 95]]),
        level(6.0, [[0.5, 0.5], [1e308, 1]]), level(6.0, [[0.5, 0.5], [1, 1]])]}
    levels = usgs.parse_contours(contours)
    assert [len(levels[5.0]), len(levels[6.0])] == [1, 1]
    area = usgs.shakemap_area(contours, epicentre=(1, 1))
    assert area is not None and area.geometry.equals(shapely.box(0, 0, 2, 2))


def test_origin_too_late_to_expire_is_skipped() -> None:
    # origin 9999-12-31T23:59:59Z: adding the display window raised OverflowError
    late = _quake(-118.0, 35.0, time=253402300799000)
    result = usgs.parse_summary({"type": "FeatureCollection", "features": [late]}, now=NOW)
    assert (result.hazards, result.skipped) == ((), 1)
    assert "time too late to expire" in result.problems[0]


def test_summary_with_a_shakemap_area_uses_contours() -> None:
    area = usgs.shakemap_area(CONTOURS.read_bytes(), epicentre=CONTOUR_EPICENTRE)
    result = usgs.parse_summary(SIGNIFICANT.read_bytes(), now=NOW,
                                areas={"us6000len8": area})
    hazard = next(h for h in result.hazards if h.hazard_id == "usgs:us6000len8")
    assert hazard.geometry_method == "contours"
    assert hazard.geometry.equals(area.geometry)
    assert hazard.radius_km is None and hazard.center_lon is None
    assert hazard.properties["mmi_threshold"] == 5.0


# --------------------------------------------------------------------------- the radius rule


@given(st.floats(-3, 10.5), st.floats(-3, 10.5))
def test_radius_rule_is_monotone_in_magnitude(m1: float, m2: float) -> None:
    low, high = sorted((m1, m2))
    assert usgs.shaking_radius_km(low) <= usgs.shaking_radius_km(high)
    if usgs.shaking_radius_km(low) > usgs.MIN_RADIUS_KM and high > low + 1e-6:
        assert usgs.shaking_radius_km(low) < usgs.shaking_radius_km(high)


def test_radius_rule_values_follow_bakun_and_wentworth() -> None:
    # D = (1.68 M - 3.29 - 5) / 0.0206 km
    assert usgs.shaking_radius_km(6.0) == pytest.approx(86.89, abs=0.01)
    assert usgs.shaking_radius_km(7.0) == pytest.approx(168.45, abs=0.01)
    assert usgs.shaking_radius_km(3.0) == usgs.MIN_RADIUS_KM
    for bad in (float("nan"), float("inf"), 11.0, True, "6"):
        with pytest.raises(ValueError, match="magnitude"):
            usgs.shaking_radius_km(bad)  # type: ignore[arg-type]


def _quake(lon: float, lat: float, mag: float | None = 6.5, **props: object) -> dict:
    properties = {"mag": mag, "time": 1_700_000_000_000, "updated": 1_700_000_100_000,
                  "title": "M test", "place": "test", "alert": None, "sig": 650,
                  "type": "earthquake", "status": "reviewed", "types": ",origin,"}
    properties.update(props)
    return {"type": "Feature", "id": f"test{lon}_{lat}", "properties": properties,
            "geometry": {"type": "Point", "coordinates": [lon, lat, 10.0]}}


def test_radius_hazards_are_geodesic_circles() -> None:
    """The same magnitude gives the same radius in km anywhere, and the impact engine's
    geodesic test puts the circle's edge exactly at that distance, at the equator, at 70 N
    and across the antimeridian."""
    places = [(0.0, 0.0), (25.0, 70.0), (179.9, -17.0)]
    payload = {"type": "FeatureCollection", "features": [_quake(*p) for p in places]}
    hazards = usgs.parse_summary(payload, now=NOW).hazards
    radius = usgs.shaking_radius_km(6.5)
    geod = Geod(ellps="WGS84")
    for hazard, (lon, lat) in zip(hazards, places, strict=True):
        assert hazard.radius_km == pytest.approx(radius)
        azimuths = np.arange(0.0, 360.0, 45.0)
        for factor, expected in ((0.999, True), (1.001, False)):
            x, y, _ = geod.fwd(np.full(8, lon), np.full(8, lat), azimuths,
                               np.full(8, factor * radius * 1000.0))
            inside = geodesic_within(lon, lat, x, y, hazard.radius_km * 1000.0)
            assert inside.tolist() == [expected] * 8


# --------------------------------------------------------------------------- bad input


def test_malformed_features_are_skipped_and_counted() -> None:
    good = _features(SIGNIFICANT)[:2]
    broken_geometry = dict(good[0], id="nogeom", geometry=None)
    bad_time = _quake(10, 10, id="x")
    bad_time["properties"]["time"] = "yesterday"
    bad_time["id"] = "badtime"
    off_planet = _quake(10, 95)
    no_id = dict(good[1])
    del no_id["id"]
    nan_mag = _quake(5, 5)
    nan_mag["properties"]["mag"] = float("nan")
    features = [good[0], broken_geometry, bad_time, "not a feature", off_planet, no_id,
                good[1], nan_mag]
    payload = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    result = usgs.parse_summary(payload, now=NOW)
    assert len(result.hazards) == 2
    assert result.skipped == 6 == len(result.problems)
    assert result.problems[0].startswith("feature 1 (nogeom): geometry is not a Point")
    assert result.problems[1].startswith("feature 2 (badtime): time is not epoch milliseconds")
    assert result.problems[2].startswith("feature 3 (no id): not a GeoJSON Feature")
    assert "epicentre out of range" in result.problems[3]
    assert result.problems[4].startswith("feature 5 (no id): no feature id")
    assert "mag is not a finite number" in result.problems[5]


def test_event_without_magnitude_is_kept_unplaced() -> None:
    payload = {"type": "FeatureCollection", "features": [_quake(1, 1, mag=None)]}
    result = usgs.parse_summary(payload, now=NOW)
    assert (len(result.hazards), result.unplaced) == (1, 1)
    assert result.hazards[0].severity == "unknown"
    assert not result.hazards[0].is_placed


def test_deleted_event_is_a_cancel() -> None:
    payload = {"type": "FeatureCollection", "features": [_quake(1, 1, status="deleted")]}
    (hazard,) = usgs.parse_summary(payload, now=NOW).hazards
    assert hazard.message_type == "cancel"
    assert not hazard.active(NOW)


@pytest.mark.parametrize("payload", [
    SIGNIFICANT.read_bytes()[:5000],               # truncated
    b"<html><body>Service unavailable</body></html>",
    b"\xff\xfe garbage",
    b'{"type": "Feature", "properties": {}}',      # a Feature, not a collection
    b'{"type": "FeatureCollection", "features": {}}',
    "",
])
def test_payload_that_is_not_a_summary_raises(payload: bytes | str) -> None:
    with pytest.raises(FeedFormatError):
        usgs.parse_summary(payload, now=NOW)


def test_arguments_are_checked_at_the_door() -> None:
    with pytest.raises(ValueError, match="now must be a UTC-aware datetime"):
        usgs.parse_summary(SIGNIFICANT.read_bytes(), now=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(TypeError, match="payload must be bytes, str or dict"):
        usgs.parse_summary([1, 2], now=NOW)  # type: ignore[arg-type]
    with pytest.raises(FeedFormatError, match="not a GeoJSON Feature"):
        usgs.contours_url(SIGNIFICANT.read_bytes())


# --------------------------------------------------------------------------- fetch


SUMMARY_PATH = "/earthquakes/feed/v1.0/summary/significant_month.geojson"
DETAIL_PATH = "/earthquakes/feed/v1.0/detail/us6000len8.geojson"
CONTOUR_PATH = "/realtime/product/shakemap/us1000chhc/us/1518531492473/download/cont_mi.json"
JSON = "application/json"


def _play_usgs(server: LocalServer) -> None:
    """The recorded files with earthquake.usgs.gov rewritten to the local server (in memory;
    the fixtures stay as recorded). Only us6000len8 has a detail here: the Taiwan detail file
    stands in for it, and its contour link serves the recorded contours; every other detail
    URL is a 404."""
    def local(path: Path) -> bytes:
        return path.read_bytes().replace(b"https://earthquake.usgs.gov", server.base.encode())

    server.routes[SUMMARY_PATH] = (200, JSON, local(SIGNIFICANT))
    server.routes[DETAIL_PATH] = (200, JSON, local(DETAIL_TAIWAN))
    server.routes[CONTOUR_PATH] = (200, JSON, CONTOURS.read_bytes())


@contextlib.contextmanager
def _context(server: LocalServer, cache: MemoryCache | None = None) -> Iterator[FetchContext]:
    settings = Settings.from_env({}, usgs_url=server.base + SUMMARY_PATH)
    client = HttpClient(settings, sleep=lambda _s: None)
    try:
        yield FetchContext(client=client, cache=cache or MemoryCache(), settings=settings,
                           now=NOW)
    finally:
        client.close()


def _by_id(result: object) -> dict:
    return {h.hazard_id: h for h in result.hazards}  # type: ignore[attr-defined]


def test_fetch_uses_detail_and_contours_and_caches_them() -> None:
    expected = usgs.shakemap_area(CONTOURS.read_bytes(), epicentre=(62.0449, 34.5565))
    cache = MemoryCache()
    with LocalServer() as server:
        _play_usgs(server)
        with _context(server, cache) as ctx:
            result = usgs.fetch(ctx)
        hazards = _by_id(result)
        assert (len(hazards), result.skipped, result.unplaced) == (18, 0, 0)
        afghan = hazards["usgs:us6000len8"]
        assert afghan.geometry_method == "contours"
        assert afghan.geometry.equals(expected.geometry)
        # every other event with a ShakeMap got a 404 for its detail: radius rule
        others = [h for h in hazards.values() if h.hazard_id != "usgs:us6000len8"]
        assert all(h.geometry_method == "radius" for h in others)
        assert server.hits[DETAIL_PATH] == server.hits[CONTOUR_PATH] == 1
        missing_details = [p for p in server.hits if p.startswith("/earthquakes/feed/v1.0/detail")
                           and p != DETAIL_PATH]
        assert len(missing_details) == 16  # 17 events with a ShakeMap in the month

        with _context(server, cache) as ctx:  # next poll, same cache, event unchanged
            again = usgs.fetch(ctx)
        assert _by_id(again)["usgs:us6000len8"].geometry.equals(expected.geometry)
        assert server.hits[SUMMARY_PATH] == 2
        assert server.hits[DETAIL_PATH] == server.hits[CONTOUR_PATH] == 1  # from the cache
        assert all(server.hits[p] == 2 for p in missing_details)  # failures are not cached


def test_changed_event_is_fetched_again() -> None:
    cache = MemoryCache()
    with LocalServer() as server:
        _play_usgs(server)
        with _context(server, cache) as ctx:
            usgs.fetch(ctx)
        summary = json.loads(server.routes[SUMMARY_PATH][2])
        summary["features"][0]["properties"]["updated"] += 60_000
        server.routes[SUMMARY_PATH] = (200, JSON, json.dumps(summary).encode())
        with _context(server, cache) as ctx:
            usgs.fetch(ctx)
        assert server.hits[DETAIL_PATH] == server.hits[CONTOUR_PATH] == 2


@pytest.mark.parametrize(("route", "answer"), [
    (DETAIL_PATH, (500, "text/plain", b"oops")),
    (DETAIL_PATH, (200, "text/html", b"<!DOCTYPE html><html>maintenance</html>")),
    (DETAIL_PATH, (200, JSON, b'{"type": "Feature", "properties": {"prod')),
    (CONTOUR_PATH, (404, "text/plain", b"gone")),
    (CONTOUR_PATH, (200, JSON, b'{"type": "FeatureCollection", "features": []}')),
])
def test_failing_detail_or_contours_fall_back_to_the_radius_rule(
        route: str, answer: tuple[int, str, bytes]) -> None:
    with LocalServer() as server:
        _play_usgs(server)
        server.routes[route] = answer
        with _context(server) as ctx:
            result = usgs.fetch(ctx)
    assert (len(result.hazards), result.skipped) == (18, 0)
    afghan = _by_id(result)["usgs:us6000len8"]
    assert afghan.geometry_method == "radius"
    assert afghan.radius_km == pytest.approx(usgs.shaking_radius_km(6.3))


def test_detail_links_to_other_hosts_are_not_followed() -> None:
    with LocalServer() as server:
        _play_usgs(server)
        summary = server.routes[SUMMARY_PATH][2].replace(
            server.base.encode() + b"/earthquakes/feed/v1.0/detail/us6000len8",
            b"http://internal.example/earthquakes/feed/v1.0/detail/us6000len8")
        server.routes[SUMMARY_PATH] = (200, JSON, summary)
        with _context(server) as ctx:
            result = usgs.fetch(ctx)
        assert _by_id(result)["usgs:us6000len8"].geometry_method == "radius"
        assert server.hits[DETAIL_PATH] == 0


@pytest.mark.parametrize(("answer", "error"), [
    ((503, "text/plain", b"busy"), FeedUnavailable),
    ((200, JSON, SIGNIFICANT.read_bytes()[:3000]), FeedFormatError),
])
def test_failing_summary_fails_the_poll(answer: tuple[int, str, bytes],
                                        error: type[Exception]) -> None:
    with LocalServer() as server:
        server.routes[SUMMARY_PATH] = answer
        with _context(server) as ctx, pytest.raises(error):
            usgs.fetch(ctx)
