"""NWS active alerts: parsing the recorded payloads, placement, reconciliation, and fetch.

The recorded samples are in ``tests/fixtures/nws`` (see ``tests/fixtures/PROVENANCE.md``); the
three weather.gov ones carry templated times, resolved here against a fixed ``NOW``. ``fetch``
runs against a real local HTTP server with the project's HTTP client.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from feeds import FeedError, FeedFormatError, nws
from feeds.base import FetchContext, MemoryCache
from feeds.http import HttpClient
from feeds.model import Hazard, ParseResult
from layers.geography import load_geography
from settings import Settings
from tests.feeds.local_server import LocalServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nws"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
NORTHWEST = "weathergov_northwest-alerts_alerts-active.json"
GUAM = "weathergov_guam-7day_alerts-active.json"
AIR = "weathergov_air-quality-alerts_alerts-active.json"
PYNWS = "pynws_alerts_active_zone.json"
PYNWS_SECOND = "pynws_alerts_active_zone_second.json"
NWS_ALERTS = "nws_alerts_api.json"
ORZ004 = "zone_forecast_ORZ004.json"
ORC041 = "zone_county_ORC041.json"
API = "https://api.weather.gov"

# Measured with county placement only (no zone server). "land": at least one non-marine
# UGC or SAME code. The air-quality file repeats three features verbatim (kept once).
EXPECTED = {
    NORTHWEST: {"features": 529, "hazards": 529, "polygon": 19, "zone": 0, "county": 137,
                "unplaced": 373, "land": 157, "land_placed": 156},
    GUAM: {"features": 246, "hazards": 246, "polygon": 14, "zone": 0, "county": 92,
           "unplaced": 140, "land": 106, "land_placed": 106},
    AIR: {"features": 396, "hazards": 393, "polygon": 71, "zone": 0, "county": 239,
          "unplaced": 83, "land": 308, "land_placed": 308},
}


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def big() -> dict[str, tuple[dict[str, Any], ParseResult, ParseResult]]:
    """Each large sample once: payload (times resolved), parsed, placed by county."""
    out = {}
    for name in EXPECTED:
        payload = nws.resolve_template_times(_load(name), now=NOW)
        parsed = nws.parse_alerts(payload)
        out[name] = (payload, parsed, nws.place_alerts(parsed))
    return out


def _pynws_feature() -> dict[str, Any]:
    return copy.deepcopy(_load(PYNWS)["features"][0])


def _collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


# --------------------------------------------------------------------------------------------
# Recorded payloads


@pytest.mark.parametrize("name", list(EXPECTED))
def test_large_samples_parse_with_expected_counts(big, name: str) -> None:
    payload, parsed, placed = big[name]
    expected = EXPECTED[name]
    assert len(payload["features"]) == expected["features"]
    assert parsed.skipped == 0, parsed.problems[:3]
    assert len(parsed.hazards) == expected["hazards"]
    polygons = sum(f["geometry"] is not None for f in payload["features"])
    assert sum(h.geometry_method == "polygon" for h in parsed.hazards) == expected["polygon"]
    assert polygons == expected["polygon"]  # as in the provenance table
    assert parsed.unplaced == expected["hazards"] - expected["polygon"]
    assert placed.unplaced == expected["unplaced"]
    assert len({h.hazard_id for h in placed.hazards}) == len(placed.hazards)
    for hazard in placed.hazards:
        # NWS messages have urn:oid ids; relayed IPAWS ones (a Civil Emergency Message) do not
        assert hazard.hazard_id.startswith(("nws:urn:oid:", "nws:IINFO_"))
        assert hazard.sent is not None and hazard.sent.utcoffset() == timedelta(0)
        if hazard.geometry is not None:
            assert hazard.geometry.geom_type in ("Polygon", "MultiPolygon")
            assert hazard.geometry.is_valid and not hazard.geometry.is_empty


@pytest.mark.parametrize("name", list(EXPECTED))
def test_placement_shares_with_counties_only(big, name: str) -> None:
    counts = nws.placement_counts(big[name][2].hazards)
    keys = ("polygon", "zone", "county", "unplaced", "land", "land_placed")
    assert {key: counts[key] for key in keys} == {key: EXPECTED[name][key] for key in keys}
    assert counts["total"] == EXPECTED[name]["hazards"]
    assert counts["land_placed"] / counts["land"] >= 0.99


def test_unplaced_alerts_are_marine_except_one_micronesian(big) -> None:
    land_unplaced = []
    for _payload, _parsed, placed in big.values():
        for hazard in placed.hazards:
            if not hazard.is_placed:
                if nws.is_land(hazard):
                    land_unplaced.append(hazard)
                else:
                    assert all(nws.is_marine_code(c) for c in hazard.properties["ugc"])
                    assert all(nws.is_marine_code(c) for c in hazard.properties["same"])
    # FMZ001 / SAME 064005 is in the Federated States of Micronesia: no bundled county.
    assert [(h.event, h.properties["ugc"]) for h in land_unplaced] == [
        ("High Surf Advisory", ("FMZ001",))
    ]


@pytest.mark.parametrize("name, count", [(PYNWS, 1), (PYNWS_SECOND, 2), (NWS_ALERTS, 2)])
def test_small_samples_parse_and_place_by_county(name: str, count: int) -> None:
    payload = _load(name)
    assert len(payload["features"]) == count
    result = nws.place_alerts(nws.parse_alerts(payload))
    assert (len(result.hazards), result.skipped, result.unplaced) == (count, 0, 0)
    assert all(h.geometry_method == "county" for h in result.hazards)


def test_fields_are_normalised() -> None:
    (hazard,) = nws.parse_alerts(_load(PYNWS)).hazards
    assert hazard.hazard_id == "nws:NWS-IDP-PROD-3965873-3369046"
    assert (hazard.source, hazard.event, hazard.category) == ("nws", "Flood Watch", "flood")
    assert (hazard.severity, hazard.source_severity) == ("severe", "Severe")
    assert (hazard.urgency, hazard.certainty) == ("future", "possible")
    assert (hazard.status, hazard.message_type) == ("actual", "update")
    assert hazard.sent == datetime(2019, 12, 20, 21, 34, tzinfo=timezone.utc)
    assert hazard.ends == datetime(2019, 12, 22, 18, 0, tzinfo=timezone.utc)
    assert hazard.supersedes[0] == "nws:NWS-IDP-PROD-3964821-3368352"
    assert len(hazard.supersedes) == 4
    assert hazard.url == "https://api.weather.gov/alerts/NWS-IDP-PROD-3965873-3369046"
    assert hazard.area_desc.startswith("North Oregon Coast;")
    assert "ORZ004" in hazard.properties["ugc"] and "041041" in hazard.properties["same"]
    assert hazard.geometry is None and hazard.geometry_method is None

    heat, air = nws.parse_alerts(_load(NWS_ALERTS)).hazards
    assert heat.category == "weather" and heat.severity == "severe"
    assert air.category == "other" and air.severity == "unknown"
    assert air.ends is None and air.expires == datetime(2024, 7, 20, 4, tzinfo=timezone.utc)


def _territory_alerts(big, name: str, state_fips: str) -> list[Hazard]:
    hazards = big[name][2].hazards
    return [h for h in hazards if any(c[1:3] == state_fips for c in h.properties["same"])]


@pytest.mark.parametrize("name, state_fips, box", [
    (NORTHWEST, "66", (144.6, 13.2, 145.0, 13.7)),     # Guam
    (NORTHWEST, "69", (145.1, 14.0, 146.1, 20.6)),     # Northern Mariana Islands
    (NORTHWEST, "60", (-171.2, -14.6, -168.1, -11.0)),  # American Samoa
    (GUAM, "72", (-67.99, 17.8, -65.2, 18.6)),          # Puerto Rico
    (GUAM, "78", (-65.1, 17.6, -64.5, 18.5)),           # US Virgin Islands
])
def test_territory_alerts_are_placed_by_county(big, name: str, state_fips: str,
                                               box: tuple[float, ...]) -> None:
    alerts = _territory_alerts(big, name, state_fips)
    assert alerts
    geography = load_geography()
    for hazard in alerts:
        assert hazard.geometry_method == "county"
        codes = [c[1:] for c in hazard.properties["same"] if c[1:3] == state_fips]
        for code in codes:
            county = geography.county_geometry(code)
            assert hazard.geometry.covers(county.representative_point())
        part = hazard.geometry.intersection(shapely.box(*box))
        assert part.area > 0


def test_sample_with_guam_and_cnmi_rip_currents(big) -> None:
    hazards = big[NORTHWEST][2].hazards
    rip = [h for h in hazards if "GUZ001" in h.properties["ugc"]]
    assert len(rip) == 1
    assert set(rip[0].properties["same"]) == {"066010", "069100", "069110", "069120"}
    assert rip[0].geometry_method == "county"


def test_unresolved_templates_are_refused_not_crashed() -> None:
    raw = _load(NORTHWEST)
    result = nws.parse_alerts(raw)
    assert (len(result.hazards), result.skipped) == (0, 529)
    assert "unresolved api-proxy template" in result.problems[0]
    assert result.problems[0].startswith("feature 0: sent is not an ISO-8601 time")


# --------------------------------------------------------------------------------------------
# Templated times


@pytest.mark.parametrize("template, expected", [
    ("date:now -2 minutes", "2026-01-15T12:32:56+00:00"),
    ("date:now +425 minutes", "2026-01-15T19:39:56+00:00"),
    ("date:now -1004 seconds", "2026-01-15T12:18:12+00:00"),
    ("date:now", "2026-01-15T12:34:56+00:00"),
    ("date:now +1 day", "2026-01-16T12:34:56+00:00"),
    ("date:now -3 h", "2026-01-15T09:34:56+00:00"),
    ("date:now:hour +90 minutes", "2026-01-15T14:00:00+00:00"),
    ("date:now:minutes -1 hour", "2026-01-15T11:34:00+00:00"),
    ("date:today 16:00:-5 -24 hours", "2026-01-14T21:00:00+00:00"),
    ("date:today 06:30:+10", "2026-01-14T20:30:00+00:00"),
    ("date:now +2 hours / PT6H", "2026-01-15T14:34:56+00:00/PT6H"),
    # not the grammar: left alone, for the parser to refuse
    ("date:now +3 fortnights", "date:now +3 fortnights"),
    ("date:yesterday", "date:yesterday"),
    ("date:now -2minutes", "date:now -2minutes"),
    ("date:now -9999999999 days", "date:now -9999999999 days"),  # beyond datetime's years
    ("date:now +3000000 days", "date:now +3000000 days"),
    ("2026-01-01T00:00:00-05:00", "2026-01-01T00:00:00-05:00"),
])
def test_resolve_template_times_grammar(template: str, expected: str) -> None:
    now = datetime(2026, 1, 15, 12, 34, 56, tzinfo=timezone.utc)
    assert nws.resolve_template_times({"t": template}, now=now) == {"t": expected}


def test_resolve_template_times_walks_copies_and_converts_now() -> None:
    payload = {"a": ["date:now", {"b": "date:now +1 hours"}], "date:now": 1, "n": 5, "z": None}
    before = copy.deepcopy(payload)
    tokyo = timezone(timedelta(hours=9))
    out = nws.resolve_template_times(payload, now=datetime(2026, 1, 1, 9, tzinfo=tokyo))
    assert payload == before
    assert out == {"a": ["2026-01-01T00:00:00+00:00", {"b": "2026-01-01T01:00:00+00:00"}],
                   "date:now": 1, "n": 5, "z": None}
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        nws.resolve_template_times(payload, now=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="payload must be a JSON object"):
        nws.resolve_template_times([payload], now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_resolved_samples_have_no_templates_left(big, name: str) -> None:
    payload = big[name][0]
    assert '"date:' not in json.dumps(payload)
    sent = [datetime.fromisoformat(f["properties"]["sent"]) for f in payload["features"]]
    assert max(sent) <= NOW


# --------------------------------------------------------------------------------------------
# Malformed input


def test_malformed_features_are_skipped_and_counted() -> None:
    good = _pynws_feature()
    features: list[Any] = [good]

    def variant(new_id: str, **changes: Any) -> dict[str, Any]:
        feature = _pynws_feature()
        feature["properties"]["id"] = new_id
        for key, value in changes.items():
            if key == "geometry":
                feature["geometry"] = value
            elif value is None:
                feature["properties"].pop(key)
            else:
                feature["properties"][key] = value
        return feature

    features.append(variant("bad-geom", geometry={"type": "Polygon",
                                                  "coordinates": [[[0, 0], [1, 1]]]}))
    features.append(variant("bad-time", sent="yesterday at noon"))
    features.append(variant("x", id=None))
    features.append(variant("templated", expires="date:now +425 minutes"))
    features.append("not a feature")
    features.append(variant("point", geometry={"type": "Point", "coordinates": [0, 0]}))
    features.append(variant("bad-status", status="Bogus"))
    features.append(variant("bad-same", geocode={"SAME": "041041", "UGC": []}))
    features.append(variant("naive", onset="2019-12-20T13:34:00"))
    features.append(variant("far", geometry={"type": "Polygon", "coordinates": [
        [[0, 0], [1, 95], [2, 0], [0, 0]]]}))
    # A bow-tie is invalid but has area: it is repaired, not skipped.
    features.append(variant("bow-tie", geometry={"type": "Polygon", "coordinates": [
        [[-123.0, 45.0], [-122.0, 46.0], [-122.0, 45.0], [-123.0, 46.0], [-123.0, 45.0]]]}))
    result = nws.parse_alerts(_collection(*features))
    assert [h.hazard_id for h in result.hazards] == [
        "nws:NWS-IDP-PROD-3965873-3369046", "nws:bow-tie"]
    assert result.skipped == 10 == len(result.problems)
    reasons = dict(p.split(": ", 1) for p in result.problems)
    assert reasons["feature 1"].startswith("bad geometry")
    assert reasons["feature 2"].startswith("sent is not an ISO-8601 time")
    assert reasons["feature 3"] == "id missing"
    assert "unresolved api-proxy template" in reasons["feature 4"]
    assert reasons["feature 5"] == "not a GeoJSON feature"
    assert "not polygonal" in reasons["feature 6"]
    assert reasons["feature 7"].startswith("status 'Bogus' is not one of")
    assert reasons["feature 8"] == "geocode.SAME is not a list of strings"
    assert reasons["feature 9"].startswith("onset has no UTC offset")
    assert reasons["feature 10"] == "geometry has coordinates out of range"
    bow_tie = result.hazards[1]
    assert bow_tie.geometry_method == "polygon" and bow_tie.geometry.is_valid
    assert bow_tie.geometry.geom_type == "MultiPolygon"
    assert bow_tie.geometry.area == pytest.approx(0.5)
    assert result.unplaced == 1


def test_nested_geometry_of_unknown_type_is_skipped_not_crashed() -> None:
    # shapely raises GeometryTypeError (not a ValueError) for the empty "geometrycollection"
    nested = {"type": "GeometryCollection",
              "geometries": [{"type": "GeometryCollection", "coordinates": []}]}
    feature = _pynws_feature()
    feature["geometry"] = nested
    result = nws.parse_alerts(_collection(feature))
    assert (result.hazards, result.skipped) == ((), 1)
    assert result.problems[0].startswith("feature 0: bad geometry")
    with pytest.raises(FeedFormatError, match="bad geometry"):
        nws.parse_zone({"type": "Feature", "geometry": nested, "properties": {}})


def test_time_outside_the_years_of_datetime_skips_the_feature() -> None:
    feature = _pynws_feature()
    feature["properties"]["onset"] = "0001-01-01T00:00:00+14:00"  # OverflowError before
    result = nws.parse_alerts(_collection(feature))
    assert (result.hazards, result.skipped) == ((), 1)
    assert result.problems[0] == ("feature 0: onset is out of range in UTC: "
                                  "'0001-01-01T00:00:00+14:00'")


def test_repeated_ids() -> None:
    first = _pynws_feature()
    changed = _pynws_feature()
    changed["properties"]["headline"] = "something else"
    result = nws.parse_alerts(_collection(first, copy.deepcopy(first), changed))
    assert len(result.hazards) == 1
    assert result.skipped == 1
    assert result.problems[0].startswith("feature 2: id repeated with other content")


@pytest.mark.parametrize("payload", [
    [], "FeatureCollection", {"type": "Feature", "properties": {}},
    {"type": "FeatureCollection", "features": {}}, {"features": []},
])
def test_not_a_feature_collection_is_a_format_error(payload: Any) -> None:
    with pytest.raises(FeedFormatError, match="NWS alerts"):
        nws.parse_alerts(payload)
    assert issubclass(FeedFormatError, ValueError)


# --------------------------------------------------------------------------------------------
# Vocabularies


@pytest.mark.parametrize("event, cap, category", [
    ("Flood Warning", "Met", "flood"),
    ("Flash Flood Warning", "Met", "flood"),
    ("Coastal Flood Advisory", "Met", "flood"),
    ("Lakeshore Flood Watch", "Met", "flood"),
    ("Hydrologic Outlook", "Met", "flood"),
    ("Red Flag Warning", "Met", "fire"),
    ("Fire Weather Watch", "Met", "fire"),
    ("Fire Warning", "Fire", "fire"),
    ("Extreme Fire Danger", "Fire", "fire"),
    ("Hurricane Warning", "Met", "tropical_cyclone"),
    ("Hurricane Local Statement", "Met", "tropical_cyclone"),
    ("Tropical Storm Watch", "Met", "tropical_cyclone"),
    ("Typhoon Warning", "Met", "tropical_cyclone"),
    ("Storm Surge Warning", "Met", "tropical_cyclone"),
    ("Hurricane Force Wind Warning", "Met", "weather"),
    ("Storm Warning", "Met", "weather"),
    ("Tsunami Warning", "Geo", "tsunami"),
    ("Earthquake Warning", "Geo", "earthquake"),
    ("Tornado Warning", "Met", "weather"),
    ("Winter Storm Warning", "Met", "weather"),
    ("Small Craft Advisory", "Met", "weather"),
    ("Extreme Heat Warning", "Met", "weather"),
    ("Dense Smoke Advisory", "Met", "weather"),
    ("Air Quality Alert", "Met", "other"),
    ("Air Stagnation Advisory", "Met", "other"),
    ("Child Abduction Emergency", "Rescue", "other"),
    ("Civil Danger Warning", "Safety", "other"),
    ("Civil Emergency Message", "Safety", "other"),
    ("911 Telephone Outage Emergency", "Safety", "other"),
    ("Volcano Warning", "Geo", "other"),
    ("Something New", "Met", "weather"),
    ("Something New", "Fire", "fire"),
    ("Something New", "Security", "other"),
])
def test_category_table(event: str, cap: str, category: str) -> None:
    assert nws.category_of(event, cap) == category


@pytest.mark.parametrize("name", list(EXPECTED))
def test_sample_categories_are_known(big, name: str) -> None:
    categories = collections.Counter(h.category for h in big[name][1].hazards)
    assert set(categories) <= {"weather", "flood", "fire", "other"}
    assert categories["weather"] > 0


def test_codes_marine_or_land() -> None:
    assert nws.is_marine_code("PZZ356") and nws.is_marine_code("057356")
    assert nws.is_marine_code("LSZ162") and nws.is_marine_code("091162")
    assert not nws.is_marine_code("ORZ004") and not nws.is_marine_code("041041")
    assert not nws.is_marine_code("GUZ001") and not nws.is_marine_code("066010")
    with pytest.raises(ValueError, match="code must be"):
        nws.is_marine_code("ORZ4")


# --------------------------------------------------------------------------------------------
# Reconciliation


@pytest.fixture
def flood_watch() -> Hazard:
    (hazard,) = nws.parse_alerts(_load(PYNWS)).hazards
    return hazard


def test_update_supersedes_its_reference(flood_watch: Hazard) -> None:
    original = dataclasses.replace(flood_watch, hazard_id="nws:NWS-IDP-PROD-3964821-3368352",
                                   message_type="alert", supersedes=())
    unrelated = dataclasses.replace(original, hazard_id="nws:unrelated")
    now = datetime(2019, 12, 21, tzinfo=timezone.utc)
    assert nws.reconcile([original, flood_watch, unrelated], now=now) == (flood_watch, unrelated)


def test_cancel_removes_both(flood_watch: Hazard) -> None:
    cancel = dataclasses.replace(flood_watch, hazard_id="nws:cancel", message_type="cancel",
                                 supersedes=(flood_watch.hazard_id,))
    now = datetime(2019, 12, 21, tzinfo=timezone.utc)
    assert nws.reconcile([flood_watch, cancel], now=now) == ()
    assert nws.reconcile([cancel, flood_watch], now=now) == ()


def test_expired_and_ended_drop(flood_watch: Hazard) -> None:
    # expires 2019-12-21 13:30Z, ends 2019-12-22 18:00Z: in force until it ends
    assert nws.reconcile([flood_watch], now=datetime(2019, 12, 22, tzinfo=timezone.utc))
    assert nws.reconcile([flood_watch], now=datetime(2019, 12, 22, 18, tzinfo=timezone.utc)) == ()
    no_end = dataclasses.replace(flood_watch, ends=None)
    assert nws.reconcile([no_end], now=datetime(2019, 12, 22, tzinfo=timezone.utc)) == ()
    with pytest.raises(ValueError, match="now"):
        nws.reconcile([flood_watch], now=datetime(2019, 12, 22))  # noqa: DTZ001


def test_test_and_exercise_alerts_keep_their_status(flood_watch: Hazard) -> None:
    feature = _pynws_feature()
    feature["properties"]["status"] = "Exercise"
    test_feature = _pynws_feature()
    test_feature["properties"].update(id="test-1", status="Test", references=[])
    parsed = nws.parse_alerts(_collection(feature, test_feature)).hazards
    assert [h.status for h in parsed] == ["exercise", "test"]
    kept = nws.reconcile(parsed, now=datetime(2019, 12, 21, tzinfo=timezone.utc))
    assert [h.status for h in kept] == ["exercise", "test"]


def test_reconcile_recorded_sample(big) -> None:
    hazards = big[NORTHWEST][2].hazards
    # /alerts/active is already reconciled by the NWS: at capture time all are in force
    assert nws.reconcile(hazards, now=NOW) == hazards
    later = NOW + timedelta(hours=12)
    kept = nws.reconcile(hazards, now=later)
    assert 0 < len(kept) < len(hazards)
    assert kept == tuple(h for h in hazards if h.active(later))


# --------------------------------------------------------------------------------------------
# Zones and fetch against a real local HTTP server


def test_zone_urls() -> None:
    assert nws.zone_key(f"{API}/zones/forecast/ORZ004") == "forecast/ORZ004"
    assert nws.zone_key(f"{API}/zones/county/ORC041") == "county/ORC041"
    assert nws.zone_key(f"{API}/zones/fire/ORZ604") == "fire/ORZ604"
    assert nws.zone_key("https://example.org/zones/forecast/ORZ004") is None
    assert nws.zone_key(f"{API}/zones/forecast/../ORZ004") is None
    assert nws.zone_url("fire/ORZ604", "http://127.0.0.1:9/") == (
        "http://127.0.0.1:9/zones/fire/ORZ604")


def test_parse_zone_fixtures() -> None:
    forecast = nws.parse_zone(_load(ORZ004))
    assert forecast.geom_type == "Polygon" and forecast.is_valid
    county = nws.parse_zone(_load(ORC041))  # a GeometryCollection, as the API sometimes sends
    assert county.geom_type in ("Polygon", "MultiPolygon") and county.is_valid
    lincoln = load_geography().county_geometry("41041")
    assert county.symmetric_difference(lincoln).area < 0.02 * lincoln.area
    assert nws.parse_zone({"type": "Feature", "geometry": None, "properties": {}}) is None
    with pytest.raises(FeedFormatError, match="NWS zone"):
        nws.parse_zone({"type": "FeatureCollection", "features": []})
    with pytest.raises(FeedFormatError, match="not polygonal"):
        nws.parse_zone({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}})


GEOJSON = "application/geo+json"


@pytest.fixture
def server(local_server: LocalServer) -> LocalServer:
    """The local server, answering unknown paths with a JSON 404 as api.weather.gov does."""
    local_server.not_found = (404, GEOJSON, b'{"status": 404}')
    return local_server


def _serve_json(server: LocalServer, path: str, payload: Any, status: int = 200) -> None:
    server.routes[path] = (status, GEOJSON, json.dumps(payload).encode())


def _serve_fixture(server: LocalServer, path: str, name: str) -> None:
    server.routes[path] = (200, GEOJSON, (FIXTURES / name).read_bytes())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_ctx() -> Iterator[Any]:
    clients: list[HttpClient] = []

    def make(base: str, *, api_base: str | None = None,
             cache: MemoryCache | None = None) -> FetchContext:
        settings = Settings.from_env({}, nws_alerts_url=f"{base}/alerts/active",
                                     nws_api_base=api_base or base, http_retries=0)
        client = HttpClient(settings, sleep=lambda _s: None)
        clients.append(client)
        return FetchContext(client=client, cache=cache or MemoryCache(), settings=settings,
                            now=NOW)

    yield make
    for client in clients:
        client.close()


def _alert(zones: list[str], **props: Any) -> dict[str, Any]:
    feature = _pynws_feature()
    feature["properties"]["affectedZones"] = [f"{API}/zones/{z}" for z in zones]
    feature["properties"].update(props)
    return feature


def _county_union(hazard: Hazard) -> Any:
    union, _ = load_geography().counties_geometry(c[1:] for c in hazard.properties["same"])
    return union


def test_fetch_places_by_zone_and_caches_it(server, make_ctx) -> None:
    base = server.base
    _serve_json(server, "/alerts/active", _collection(_alert(["forecast/ORZ004"])))
    _serve_fixture(server, "/zones/forecast/ORZ004", ORZ004)
    ctx = make_ctx(base)
    result = nws.fetch(ctx)
    (hazard,) = result.hazards
    assert hazard.geometry_method == "zone"
    assert hazard.geometry.equals(shape(_load(ORZ004)["geometry"]))
    assert result.unplaced == 0
    assert ctx.cache.get("nws-zone:forecast/ORZ004", max_age_s=60, now=NOW) is not None
    again = nws.fetch(ctx)
    assert again.hazards[0].geometry_method == "zone"
    assert server.hits == {"/alerts/active": 2, "/zones/forecast/ORZ004": 1}
    # a week later the cached shape is too old and is fetched again
    later = dataclasses.replace(ctx, now=NOW + timedelta(days=8))
    assert nws.fetch(later).hazards[0].geometry_method == "zone"
    assert server.hits["/zones/forecast/ORZ004"] == 2


def test_fetch_unions_zones_of_several_kinds(server, make_ctx) -> None:
    base = server.base
    _serve_json(server, "/alerts/active",
                _collection(_alert(["forecast/ORZ004", "county/ORC041"])))
    _serve_fixture(server, "/zones/forecast/ORZ004", ORZ004)
    _serve_fixture(server, "/zones/county/ORC041", ORC041)
    (hazard,) = nws.fetch(make_ctx(base)).hazards
    assert hazard.geometry_method == "zone"
    expected = shape(_load(ORZ004)["geometry"]).union(nws.parse_zone(_load(ORC041)))
    assert hazard.geometry.symmetric_difference(expected).area < 1e-9
    assert hazard.geometry.is_valid


@pytest.mark.parametrize("status", [500, 503, 429])
def test_failing_zone_falls_back_to_counties(server, make_ctx, status: int) -> None:
    base = server.base
    _serve_json(server, "/alerts/active", _collection(_alert(["forecast/ORZ004"])))
    _serve_json(server, "/zones/forecast/ORZ004", {"status": status}, status=status)
    ctx = make_ctx(base)
    result = nws.fetch(ctx)
    (hazard,) = result.hazards
    assert hazard.geometry_method == "county"
    assert hazard.geometry.equals(_county_union(hazard))
    nws.fetch(ctx)  # failures are not cached: asked again next poll
    assert server.hits["/zones/forecast/ORZ004"] == 2


def test_unreachable_zone_server_falls_back_to_counties(server, make_ctx) -> None:
    base = server.base
    _serve_json(server, "/alerts/active", _collection(_alert(["forecast/ORZ004"])))
    ctx = make_ctx(base, api_base=f"http://127.0.0.1:{_closed_port()}")
    (hazard,) = nws.fetch(ctx).hazards
    assert hazard.geometry_method == "county"


def test_partly_known_zones_fall_back_to_counties(server, make_ctx) -> None:
    """The recorded alert names 11 zones; with only ORZ004 served, counties are used."""
    base = server.base
    _serve_json(server, "/alerts/active", _load(PYNWS))
    _serve_fixture(server, "/zones/forecast/ORZ004", ORZ004)
    ctx = make_ctx(base)
    (hazard,) = nws.fetch(ctx).hazards
    assert hazard.geometry_method == "county"
    assert server.hits["/zones/forecast/ORZ004"] == 1
    assert ctx.cache.get("nws-zone:forecast/ORZ004", max_age_s=60, now=NOW) is not None
    assert sum(server.hits.values()) == 1 + 11


def test_zone_outage_stops_zone_requests_for_the_poll(server, make_ctx) -> None:
    base = server.base
    zones = [f"forecast/ORZ00{i}" for i in range(1, 7)]
    _serve_json(server, "/alerts/active", _collection(_alert(zones)))
    for zone in zones:
        _serve_json(server, f"/zones/{zone}", {}, status=502)
    (hazard,) = nws.fetch(make_ctx(base)).hazards
    assert hazard.geometry_method == "county"
    assert sum(server.hits.values()) == 1 + nws.ZONE_OUTAGE_LIMIT


def test_zone_fetch_budget_and_prefilled_cache(server, make_ctx) -> None:
    base = server.base
    for i in range(1, 5):
        _serve_fixture(server, f"/zones/forecast/ORZ00{i}", ORZ004)
    cache = MemoryCache()
    cache.put("nws-zone:forecast/ORZ001", shapely.to_wkb(shapely.box(0, 0, 1, 1)), now=NOW)
    cache.put("nws-zone:forecast/ORZ002", b"not wkb", now=NOW)
    ctx = make_ctx(base, cache=cache)
    keys = [f"forecast/ORZ00{i}" for i in range(1, 5)]
    found = nws.load_zone_geometries(keys, client=ctx.client, cache=cache, api_base=base,
                                     now=NOW, max_fetches=2)
    assert found["forecast/ORZ001"].equals(shapely.box(0, 0, 1, 1))
    assert set(found) == {"forecast/ORZ001", "forecast/ORZ002", "forecast/ORZ003"}
    assert server.hits == {"/zones/forecast/ORZ002": 1, "/zones/forecast/ORZ003": 1}


def test_zone_without_shape_is_cached_as_empty(server, make_ctx) -> None:
    base = server.base
    _serve_json(server, "/alerts/active", _collection(_alert(["forecast/ORZ004"])))
    zone = _load(ORZ004)
    zone["geometry"] = None
    _serve_json(server, "/zones/forecast/ORZ004", zone)
    ctx = make_ctx(base)
    assert nws.fetch(ctx).hazards[0].geometry_method == "county"
    assert nws.fetch(ctx).hazards[0].geometry_method == "county"
    assert server.hits["/zones/forecast/ORZ004"] == 1


def test_fetch_recorded_sample_with_zone_server_down(server, make_ctx, big) -> None:
    base = server.base
    _serve_json(server, "/alerts/active", big[NORTHWEST][0])
    ctx = make_ctx(base, api_base=f"http://127.0.0.1:{_closed_port()}")
    result = nws.fetch(ctx)
    assert nws.placement_counts(result.hazards) == nws.placement_counts(big[NORTHWEST][2].hazards)
    assert server.hits == {"/alerts/active": 1}


@pytest.mark.parametrize("answer", [
    (200, GEOJSON, b'{"type": "Feature", "properties": {}}'),
    (500, GEOJSON, b"{}"),
    (404, GEOJSON, b"{}"),
])
def test_fetch_fails_as_a_whole_when_the_alerts_do(server, make_ctx, answer) -> None:
    base = server.base
    server.routes["/alerts/active"] = answer
    with pytest.raises(FeedError):
        nws.fetch(make_ctx(base))
