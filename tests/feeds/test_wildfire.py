"""Wildfire perimeters: parsing the WFIGS layer and paging it through a real local server."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from feeds import FeedError, FeedFormatError, FeedRejected, FeedUnavailable, wildfire
from feeds.base import FetchContext, Fetched, MemoryCache
from feeds.http import HttpClient
from settings import Settings
from tests.feeds.local_server import Answer, Query

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wildfire"
PAGE1 = FIXTURES / "written_wfigs_perimeters_current_page1.geojson"
PAGE2 = FIXTURES / "written_wfigs_perimeters_current_page2.geojson"
NOW = datetime(2026, 8, 15, 18, 0, tzinfo=timezone.utc)

CANYON = "wildfire:6f2b1c3e-8a41-4d7b-9c55-2e0f4a7d1b93"
RX_UNIT = "wildfire:a0d94e17-3b6c-4f28-8e1a-7c2b5d9f0e46"
RIVER = "wildfire:c7e3a9b2-5d14-4a6f-b8e0-19f2d7c4a3e5"
BUTTE = "wildfire:19b8f2d4-6e03-4c7a-a5d1-8f4e2b7c9a60"
COMPLEX = "wildfire:e5a1c7f3-9b28-4d6e-8c04-3f7b2a9d1e58"


def _page(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _both_pages() -> dict[str, Any]:
    return {"type": "FeatureCollection",
            "features": _page(PAGE1)["features"] + _page(PAGE2)["features"]}


# -------------------------------------------------------------------------------- parsing


def test_both_pages_parse_to_five_fires() -> None:
    result = wildfire.parse_perimeters(_both_pages(), now=NOW)
    assert (result.skipped, result.unplaced) == (0, 0)
    got = {h.hazard_id: (h.event, h.severity, h.urgency) for h in result.hazards}
    assert got == {
        CANYON: ("Wildfire", "severe", "immediate"),          # 12,480 ac, 35 %
        RX_UNIT: ("Prescribed fire", "minor", "expected"),     # kept, always minor
        RIVER: ("Wildfire", "extreme", "immediate"),           # 152,311 ac, 5 %
        BUTTE: ("Wildfire", "minor", "past"),                  # 100 % contained
        COMPLEX: ("Wildfire complex", "moderate", "immediate"),  # 6,020 ac at 92 %: one down
    }
    canyon = result.hazards[0]
    assert canyon.category == "fire" and canyon.geometry_method == "polygon"
    assert canyon.certainty == "observed"
    assert canyon.geometry.geom_type == "Polygon" and len(canyon.geometry.interiors) == 1
    assert canyon.onset == datetime(2026, 8, 11, 21, 5, tzinfo=timezone.utc)
    assert canyon.sent == datetime(2026, 8, 15, 5, 2, tzinfo=timezone.utc)
    assert canyon.effective == datetime(2026, 8, 15, 4, 12, tzinfo=timezone.utc)
    assert canyon.ends is None and canyon.active(NOW)
    assert canyon.headline == "Wildfire: EXAMPLE CANYON (12,480 acres, 35% contained)"
    assert canyon.area_desc == "EXAMPLE CANYON perimeter, CA"
    assert canyon.properties["acres"] == 12480.3
    assert canyon.properties["unique_fire_id"] == "2026-CALPF-001873"
    river = next(h for h in result.hazards if h.hazard_id == RIVER)
    assert river.geometry.geom_type == "MultiPolygon" and river.geometry.is_valid


def test_each_page_parses_on_its_own() -> None:
    assert len(wildfire.parse_perimeters(_page(PAGE1), now=NOW).hazards) == 3
    assert len(wildfire.parse_perimeters(_page(PAGE2), now=NOW).hazards) == 2


def test_transfer_limit_flag_in_both_response_forms() -> None:
    assert wildfire.exceeded_transfer_limit(_page(PAGE1)) is True
    assert wildfire.exceeded_transfer_limit(_page(PAGE2)) is False
    assert wildfire.exceeded_transfer_limit({"exceededTransferLimit": True}) is True  # f=json
    assert wildfire.exceeded_transfer_limit({"properties": {"exceededTransferLimit": False}}) \
        is False
    assert wildfire.exceeded_transfer_limit([]) is False


def test_page_params() -> None:
    params = wildfire.page_params(500)
    assert params["where"] == "1=1" and params["outFields"] == "*"
    assert (params["f"], params["outSR"]) == ("geojson", "4326")
    assert (params["resultOffset"], params["resultRecordCount"]) == ("500", "500")
    assert params["orderByFields"].startswith("OBJECTID")
    with pytest.raises(ValueError, match="offset"):
        wildfire.page_params(-1)


@pytest.mark.parametrize(("kind", "acres", "contained", "expected"), [
    ("WF", 100_000, 0, "extreme"), ("WF", 99_999, None, "severe"), ("WF", 5_000, 10, "severe"),
    ("WF", 4_999, 10, "moderate"), ("WF", 100, 0, "moderate"), ("WF", 99, 0, "minor"),
    ("WF", 200_000, 90, "severe"), ("WF", 150, 95, "minor"), ("WF", 10, 95, "minor"),
    ("WF", 200_000, 100, "minor"), ("WF", None, 20, "unknown"), ("RX", 50_000, 0, "minor"),
    ("CX", 6_000, None, "severe"),
])
def test_fire_severity(kind: str, acres: float | None, contained: float | None,
                       expected: str) -> None:
    assert wildfire.fire_severity(kind, acres, contained) == expected


def test_malformed_features_are_skipped_with_index_and_reason() -> None:
    payload = _both_pages()
    features = payload["features"]
    features[1]["properties"]["attr_FireDiscoveryDateTime"] = "2026-08-14"
    features[2]["properties"]["attr_IncidentTypeCategory"] = "XX"
    features[3]["geometry"] = {"type": "Point", "coordinates": [-121.2, 44.3]}
    features[4]["properties"]["attr_PercentContained"] = 150
    features.append("not a feature")
    result = wildfire.parse_perimeters(payload, now=NOW)
    assert [h.hazard_id for h in result.hazards] == [CANYON]
    assert result.skipped == 5
    reasons = dict(line.split(": ", 1) for line in result.problems)
    assert "attr_FireDiscoveryDateTime" in reasons["features[1]"]
    assert "attr_IncidentTypeCategory" in reasons["features[2]"]
    assert "Point" in reasons["features[3]"]
    assert "attr_PercentContained" in reasons["features[4]"]
    assert reasons["features[5]"] == "not a GeoJSON Feature"


@pytest.mark.parametrize("corner", [[1.7e15, 44.0], [float("nan"), 44.0], [-121.0, 95.0],
                                    [-500.0, 44.0]])
def test_perimeters_with_coordinates_out_of_range_are_skipped(corner: list[float]) -> None:
    # a vertex at longitude 1.7e15 made the antimeridian normalisation run (practically)
    # forever: one copy of the shape per whole turn of longitude
    payload = _page(PAGE2)
    ring = [[-121.0, 44.0], corner, [-120.0, 45.0], [-121.0, 45.0], [-121.0, 44.0]]
    payload["features"][0]["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    result = wildfire.parse_perimeters(payload, now=NOW)
    assert result.skipped == 1 and len(result.hazards) == 1
    assert result.problems[0] == "features[0]: geometry has coordinates out of range"


def test_ring_jumping_across_the_antimeridian_is_repaired_before_it_is_split() -> None:
    # one vertex at +119.59 instead of -119.59 (the perimeter with a hole): splitting the
    # invalid ring raised GEOSException (TopologyException: side location conflict)
    payload = _both_pages()
    feature = next(f for f in payload["features"]
                   if f["geometry"]["type"] == "Polygon" and len(f["geometry"]["coordinates"]) > 1)
    feature["geometry"]["coordinates"][0][11][0] = 119.590219
    payload["features"] = [feature]
    result = wildfire.parse_perimeters(payload, now=NOW)
    assert result.skipped == 0
    geometry = result.hazards[0].geometry
    assert geometry.is_valid and -180 <= geometry.bounds[0] <= geometry.bounds[2] <= 180


def test_ids_fall_back_to_the_unique_fire_identifier_and_missing_ids_are_skipped() -> None:
    payload = _page(PAGE2)
    first, second = payload["features"]
    for name in ("attr_IrwinID", "poly_IRWINID"):
        first["properties"][name] = None
        second["properties"][name] = None
    second["properties"]["attr_UniqueFireIdentifier"] = None
    result = wildfire.parse_perimeters(payload, now=NOW)
    assert [h.hazard_id for h in result.hazards] == ["wildfire:2026-ORPRD-000925"]
    assert result.problems == ("features[1]: no attr_IrwinID or attr_UniqueFireIdentifier",)


def test_a_feature_without_geometry_is_kept_unplaced() -> None:
    payload = _page(PAGE2)
    payload["features"][0]["geometry"] = None
    result = wildfire.parse_perimeters(payload, now=NOW)
    assert (len(result.hazards), result.unplaced, result.skipped) == (2, 1, 0)
    assert not result.hazards[0].is_placed


def test_the_newer_of_two_perimeters_of_one_incident_is_kept() -> None:
    payload = _page(PAGE2)
    older = copy.deepcopy(payload["features"][1])
    older["properties"]["poly_DateCurrent"] -= 86_400_000
    older["properties"]["poly_GISAcres"] = 3000.0
    payload["features"].insert(1, older)
    result = wildfire.parse_perimeters(payload, now=NOW)
    assert [h.hazard_id for h in result.hazards] == [BUTTE, COMPLEX]
    assert result.hazards[1].properties["acres"] == 6020.4
    assert result.problems == (f"features[1]: older perimeter of {COMPLEX}",)


def test_a_fire_declared_out_is_no_longer_active() -> None:
    payload = _page(PAGE2)
    out = datetime(2026, 8, 15, 12, 0, tzinfo=timezone.utc)
    payload["features"][0]["properties"]["attr_FireOutDateTime"] = int(out.timestamp() * 1000)
    hazard = wildfire.parse_perimeters(payload, now=NOW).hazards[0]
    assert hazard.ends == out and not hazard.active(NOW)


@pytest.mark.parametrize("payload", [
    [], {"type": "Feature"}, {"type": "FeatureCollection"},
    {"error": {"code": 400, "message": "Invalid query"}},
])
def test_wrong_shape_raises_format_error(payload: Any) -> None:
    with pytest.raises(FeedFormatError):
        wildfire.parse_perimeters(payload, now=NOW)


@pytest.mark.parametrize(("code", "error"), [
    (500, FeedUnavailable), (429, FeedUnavailable), (400, FeedRejected),
    (498, FeedRejected), ("x", FeedFormatError),
])
def test_arcgis_error_bodies_map_to_feed_errors(code: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="ArcGIS error"):
        wildfire.raise_for_arcgis_error({"error": {"code": code, "message": "m"}})
    wildfire.raise_for_arcgis_error(_page(PAGE1))  # no error: returns quietly


# ------------------------------------------------------------------------ fetch, for real

def _pages(second: Callable[[], Answer]) -> Callable[[Query], Answer]:
    """Page 1 from the fixture at offset 0, ``second()`` at any other offset."""
    first = PAGE1.read_bytes()

    def route(query: Query) -> Answer:
        if query.get("resultOffset") == ["0"]:
            return 200, "application/geo+json", first
        return second()

    return route


def _fetch(base: str) -> Any:
    settings = Settings.from_env({}, wildfire_url=f"{base}/query")
    client = HttpClient(settings, sleep=lambda _s: None, backoff_s=0.0)
    try:
        return wildfire.fetch(FetchContext(client=client, cache=MemoryCache(),
                                           settings=settings, now=NOW))
    finally:
        client.close()


def test_fetch_pages_until_the_transfer_limit_is_no_longer_exceeded(local_server) -> None:
    second = PAGE2.read_bytes()
    local_server.routes["/query"] = _pages(lambda: (200, "application/geo+json", second))
    result = _fetch(local_server.base)
    assert [h.hazard_id for h in result.hazards] == [CANYON, RX_UNIT, RIVER, BUTTE, COMPLEX]
    queries = local_server.queries
    assert [q["resultOffset"] for q in queries] == [["0"], ["3"]]  # advanced by what came
    for query in queries:
        assert query["where"] == ["1=1"] and query["outFields"] == ["*"]
        assert query["f"] == ["geojson"] and query["outSR"] == ["4326"]
        assert query["resultRecordCount"] == [str(wildfire.PAGE_SIZE)]


def test_fetch_fails_as_a_whole_when_page_two_fails(local_server) -> None:
    """All or nothing: no partial set of fires; the poller keeps the last good snapshot."""
    local_server.routes["/query"] = _pages(lambda: (500, "text/plain", b"Internal Server Error"))
    with pytest.raises(FeedUnavailable):
        _fetch(local_server.base)
    # page 2 was retried
    assert len(local_server.queries) == 1 + Settings.from_env({}).http_retries + 1


def test_fetch_fails_on_an_arcgis_error_body_with_status_200(local_server) -> None:
    error = json.dumps({"error": {"code": 503, "message": "busy", "details": []}}).encode()
    local_server.routes["/query"] = _pages(lambda: (200, "application/json", error))
    with pytest.raises(FeedUnavailable, match="ArcGIS error 503"):
        _fetch(local_server.base)


def test_fetch_fails_on_an_html_page_two(local_server) -> None:
    local_server.routes["/query"] = _pages(
        lambda: (200, "text/html", b"<html><body>down</body></html>"))
    with pytest.raises(FeedFormatError):
        _fetch(local_server.base)


def test_fetch_stops_after_max_pages(local_server, monkeypatch: pytest.MonkeyPatch) -> None:
    endless = PAGE1.read_bytes()
    local_server.routes["/query"] = lambda _query: (200, "application/geo+json", endless)
    monkeypatch.setattr(wildfire, "MAX_PAGES", 3)
    with pytest.raises(FeedFormatError, match="more than 3 pages"):
        _fetch(local_server.base)
    assert len(local_server.queries) == 3


def test_fetch_refuses_an_empty_page_that_claims_more(local_server) -> None:
    empty = json.dumps({"type": "FeatureCollection", "features": [],
                        "properties": {"exceededTransferLimit": True}}).encode()
    local_server.routes["/query"] = _pages(lambda: (200, "application/geo+json", empty))
    with pytest.raises(FeedFormatError, match="empty"):
        _fetch(local_server.base)


def test_counts_of_the_written_fixture() -> None:
    """Guards the written fixture itself: the incident types it is meant to cover."""
    kinds = Counter(f["properties"]["attr_IncidentTypeCategory"]
                    for f in _both_pages()["features"])
    assert kinds == {"WF": 3, "RX": 1, "CX": 1}


def test_fetch_on_a_not_modified_first_page_parses_nothing() -> None:
    """The poller may offer validators on page 1; a 304 leaves its snapshot in place."""

    class NotModified:
        def get(self, url: str, **_kwargs: Any) -> Fetched:
            return Fetched("not_modified", b"", url, etag='"v1"')

    settings = Settings.from_env({})
    ctx = FetchContext(client=NotModified(), cache=MemoryCache(), settings=settings, now=NOW)
    with pytest.raises(FeedError, match="not modified"):
        wildfire.fetch(ctx)
