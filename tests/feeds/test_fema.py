"""OpenFEMA declarations: declared areas from bundled boundaries, windows, paging for real."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import shapely

from feeds import FeedFormatError, FeedUnavailable, fema
from feeds.base import FetchContext, MemoryCache
from feeds.http import HttpClient
from layers.geography import load_geography
from settings import Settings
from store.feeds import hazard_to_row
from tests.feeds.local_server import Answer, Query

SAMPLE = (Path(__file__).resolve().parent.parent / "fixtures" / "fema"
          / "openFemaNgClient_DisasterDeclarationsSummariesV2.json")
RUNDATE = datetime(2022, 10, 28, 18, 46, 1, tzinfo=timezone.utc)  # metadata.rundate


@pytest.fixture(scope="module")
def payload() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def geography():
    return load_geography()


@pytest.fixture(scope="module")
def parsed(payload, geography):
    return fema.parse_declarations(payload, now=RUNDATE, geography=geography)


def _by_id(result) -> dict[str, Any]:
    return {h.hazard_id: h for h in result.hazards}


# ----------------------------------------------------------------------------- the sample


def test_sample_counts(payload, parsed) -> None:
    rows = payload[fema.ENTITY]
    assert len(rows) == 1000
    assert Counter(r["declarationType"] for r in rows) == {"FM": 559, "DR": 441}
    assert parsed.skipped == 0
    assert len(parsed.hazards) == 480
    assert Counter(h.source_severity for h in parsed.hazards) == {"FM": 436, "DR": 44}
    assert Counter(h.severity for h in parsed.hazards) == {"moderate": 436, "severe": 44}
    assert parsed.unplaced == 2
    assert sorted(h.hazard_id for h in parsed.hazards if not h.is_placed) == [
        "fema:DR-4631-WA", "fema:FM-5397-WA"]  # Colville Indian Reservation only
    placed = [h for h in parsed.hazards if h.is_placed]
    assert len(placed) == 478
    assert all(h.geometry_method == "declaration" and h.geometry.is_valid for h in placed)
    assert all(h.category == "declaration" for h in parsed.hazards)
    # Every row is accounted for: 965 county rows, 1 statewide, 34 tribal areas unplaced.
    areas = Counter()
    for h in parsed.hazards:
        areas["county"] += len(h.properties["counties"])
        areas["statewide"] += len(h.properties["statewide"])
        areas["unplaced"] += len(h.properties["unplaced_areas"])
    assert areas == {"county": 965, "statewide": 1, "unplaced": 34}
    assert sum(1 for h in placed if h.properties["unplaced_areas"]) == 18


def test_puerto_rico_rows_are_one_placed_declaration(payload, parsed, geography) -> None:
    pr_rows = [r for r in payload[fema.ENTITY] if r["state"] == "PR"]
    assert len(pr_rows) == 5
    assert {r["femaDeclarationString"] for r in pr_rows} == {"DR-4649-PR"}
    hazard = _by_id(parsed)["fema:DR-4649-PR"]
    assert hazard.properties["counties"] == ("72145", "72033", "72051", "72143", "72137")
    expected, missing = geography.counties_geometry(hazard.properties["counties"])
    assert missing == [] and hazard.geometry.equals(expected)
    assert (hazard.event, hazard.severity) == ("Major Disaster Declaration", "severe")
    assert hazard.onset == datetime(2022, 2, 4, tzinfo=timezone.utc)
    assert hazard.ends == datetime(2022, 2, 6, tzinfo=timezone.utc)
    assert hazard.sent == datetime(2022, 3, 29, tzinfo=timezone.utc)
    assert hazard.headline == "DR-4649-PR: SEVERE STORM, FLOODING, AND LANDSLIDES (Flood)"
    assert hazard.url == "https://www.fema.gov/disaster/4649"


def test_independent_cities_and_retired_codes_are_placed(parsed) -> None:
    virginia = _by_id(parsed)["fema:DR-4644-VA"]
    assert "51630" in virginia.properties["counties"]  # Fredericksburg, own place code
    assert "51019" in virginia.properties["counties"]  # Bedford city 51515 -> Bedford County
    assert virginia.properties["unplaced_areas"] == ()
    assert _by_id(parsed)["fema:FM-5010-SD"].properties["counties"] == ("46102",)


def test_tribal_areas_are_not_widened_to_their_county(parsed) -> None:
    mashpee = _by_id(parsed)["fema:DR-4651-MA"]
    assert "Mashpee Wampanoag Tribe" in mashpee.properties["unplaced_areas"]
    assert "25001" not in mashpee.properties["counties"]  # Barnstable is not declared


def test_statewide_uses_the_state_boundary(parsed, geography) -> None:
    colorado = _by_id(parsed)["fema:FM-5133-CO"]
    assert colorado.properties["statewide"] == ("CO",)
    assert colorado.geometry.equals(geography.state_geometry("CO"))


def test_activity_windows(parsed) -> None:
    open_ended = _by_id(parsed)["fema:FM-5444-TX"]  # declared 2022-07-19, no end date
    assert open_ended.ends is None
    assert open_ended.expires == datetime(2022, 7, 19, tzinfo=timezone.utc) + timedelta(
        days=fema.OPEN_WINDOW_DAYS)
    assert open_ended.active(datetime(2022, 8, 1, tzinfo=timezone.utc))
    assert not open_ended.active(datetime(2022, 9, 1, tzinfo=timezone.utc))
    closed = _by_id(parsed)["fema:DR-4649-PR"]
    assert closed.active(datetime(2022, 2, 5, tzinfo=timezone.utc))
    assert not closed.active(datetime(2022, 2, 7, tzinfo=timezone.utc))
    assert sum(h.active(RUNDATE) for h in parsed.hazards) == 0  # all over by the run date


# ----------------------------------------------------------------------- rules and errors


def test_malformed_rows_are_skipped_with_index_and_reason(payload, geography) -> None:
    rows = copy.deepcopy(payload[fema.ENTITY][:6])
    rows[1]["femaDeclarationString"] = None
    rows[2]["declarationDate"] = "19 July 2022"
    rows[3]["fipsCountyCode"] = "12"
    rows[4]["declarationType"] = "DR"  # but the string says FM
    rows.append(17)
    result = fema.parse_declarations({fema.ENTITY: rows}, now=RUNDATE, geography=geography)
    assert result.skipped == 5
    reasons = dict(line.split(": ", 1) for line in result.problems)
    assert set(reasons) == {f"{fema.ENTITY}[{i}]" for i in (1, 2, 3, 4, 6)}
    assert "femaDeclarationString" in reasons[f"{fema.ENTITY}[1]"]
    assert "declarationDate" in reasons[f"{fema.ENTITY}[2]"]
    assert "fipsCountyCode" in reasons[f"{fema.ENTITY}[3]"]
    assert "declarationType" in reasons[f"{fema.ENTITY}[4]"]
    assert len(result.hazards) == len({r["femaDeclarationString"] for r in
                                       (rows[0], rows[5])})


def test_declaration_too_late_to_stay_open_is_skipped(payload, geography) -> None:
    # adding the 30-day window to 9999-12-31 raised OverflowError out of the parser
    row = {**payload[fema.ENTITY][0], "declarationDate": "9999-12-31T00:00:00.000Z",
           "incidentEndDate": None}
    result = fema.parse_declarations({fema.ENTITY: [row]}, now=RUNDATE, geography=geography)
    assert (result.hazards, result.skipped) == ((), 1)
    assert "declarationDate is too late" in result.problems[0]


def test_unknown_county_code_is_unplaced(payload, geography) -> None:
    row = copy.deepcopy(payload[fema.ENTITY][0])
    row.update(fipsCountyCode="999", placeCode="99999", designatedArea="Nowhere (County)")
    result = fema.parse_declarations({fema.ENTITY: [row]}, now=RUNDATE, geography=geography)
    assert result.unplaced == 1
    assert result.hazards[0].properties["unplaced_areas"] == ("county 48999",)


@pytest.mark.parametrize("bad", [[], {"metadata": {}}, {fema.ENTITY: {}}, "text"])
def test_wrong_shape_raises_format_error(bad: Any, geography) -> None:
    with pytest.raises(FeedFormatError):
        fema.parse_declarations(bad, now=RUNDATE, geography=geography)


def test_county_code_rules() -> None:
    names = {"51630": "Fredericksburg", "25001": "Barnstable", "72033": "Cataño"}
    assert fema.county_code("630", "51", "29744", "Fredericksburg", names) == "51630"
    assert fema.county_code("001", "25", "39161", "Mashpee Wampanoag Tribe", names) is None
    assert fema.county_code("033", "72", "99033", "Catano (Municipio)", names) == "72033"
    assert fema.county_code("033", "72", "12345", "Catano (Municipio)", names) == "72033"
    assert fema.county_code("000", "08", "0", "Statewide", names) is None


def test_query_params() -> None:
    params = fema.query_params(RUNDATE, 2000)
    assert params["$filter"] == ("declarationDate ge '2022-07-30T18:46:01.000Z' "
                                 "or incidentEndDate ge '2022-10-28T18:46:01.000Z'")
    assert (params["$top"], params["$skip"], params["$inlinecount"]) == (
        "1000", "2000", "allpages")
    with pytest.raises(ValueError, match="now"):
        fema.query_params(datetime(2022, 10, 28), 0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="skip"):
        fema.query_params(RUNDATE, -1)


# ------------------------------------------------------------------------ fetch, for real

def _paged(payload: dict[str, Any], *, count: int = 0,
           fail_at_skip: int | None = None) -> Callable[[Query], Answer]:
    """Serve the sample's rows by ``$skip``/``$top``, as OpenFEMA does."""
    rows = payload[fema.ENTITY]

    def route(query: Query) -> Answer:
        skip, top = int(query["$skip"][0]), int(query["$top"][0])
        if skip == fail_at_skip:
            return 500, "text/plain", b"Internal Server Error"
        body = {"metadata": {**payload["metadata"], "skip": skip, "top": top, "count": count},
                fema.ENTITY: rows[skip:skip + top]}
        return 200, "application/json", json.dumps(body).encode()

    return route


def _fetch(base: str) -> Any:
    settings = Settings.from_env({}, fema_url=f"{base}/api/open/v2/DisasterDeclarationsSummaries")
    client = HttpClient(settings, sleep=lambda _s: None, backoff_s=0.0)
    try:
        return fema.fetch(FetchContext(client=client, cache=MemoryCache(), settings=settings,
                                       now=RUNDATE))
    finally:
        client.close()


PATH = "/api/open/v2/DisasterDeclarationsSummaries"


def test_fetch_pages_until_a_short_page(local_server, payload, parsed,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    local_server.routes[PATH] = _paged(payload)
    monkeypatch.setattr(fema, "PAGE_SIZE", 400)
    result = _fetch(local_server.base)
    queries = local_server.queries
    assert [q["$skip"] for q in queries] == [["0"], ["400"], ["800"]]
    assert all(q["$top"] == ["400"] for q in queries)
    assert all(q["$filter"][0].startswith("declarationDate ge '2022-07-30") for q in queries)
    assert len(result.hazards) == 480 and result.unplaced == parsed.unplaced
    assert {h.hazard_id for h in result.hazards} == {h.hazard_id for h in parsed.hazards}


def test_fetch_stops_at_the_inline_count(local_server, payload,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    local_server.routes[PATH] = _paged(payload, count=1000)
    monkeypatch.setattr(fema, "PAGE_SIZE", 500)
    assert len(_fetch(local_server.base).hazards) == 480
    assert [q["$skip"] for q in local_server.queries] == [["0"], ["500"]]  # no third, empty request


def test_fetch_fails_as_a_whole_when_a_page_fails(local_server, payload,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    local_server.routes[PATH] = _paged(payload, fail_at_skip=400)
    monkeypatch.setattr(fema, "PAGE_SIZE", 400)
    with pytest.raises(FeedUnavailable):
        _fetch(local_server.base)


def test_fetch_is_bounded(local_server, payload, monkeypatch: pytest.MonkeyPatch) -> None:
    local_server.routes[PATH] = _paged(payload)
    monkeypatch.setattr(fema, "PAGE_SIZE", 300)
    monkeypatch.setattr(fema, "MAX_PAGES", 2)
    with pytest.raises(FeedFormatError, match="more than 2 pages"):
        _fetch(local_server.base)
    assert len(local_server.queries) == 2


def test_geometry_is_polygonal_and_within_range(parsed) -> None:
    geoms = [h.geometry for h in parsed.hazards if h.geometry is not None]
    assert {g.geom_type for g in geoms} <= {"Polygon", "MultiPolygon"}
    bounds = shapely.bounds(geoms)
    assert (bounds[:, 0] >= -180).all() and (bounds[:, 2] <= 180).all()


def test_hazards_can_be_stored(parsed) -> None:
    # last_refresh was a datetime in properties, which the store refuses (not a JSON value):
    # every FEMA snapshot failed to be written
    for hazard in parsed.hazards:
        hazard_to_row(hazard, stored_at=RUNDATE)
    refreshed = [h.properties["last_refresh"] for h in parsed.hazards]
    assert all(isinstance(v, str) and v.endswith("+00:00") for v in refreshed)
