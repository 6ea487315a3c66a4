"""Drill scenarios: the bundled library (loads, plays where it claims, reaches demo missions),
the scenario clock (firing, expiry, supersedes, cancel), the round trip, every validation error
and shapes across the antimeridian."""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point, shape

from feeds.model import Hazard
from layers.geography import load_geography
from layers.scenarios import (
    LIBRARY_DIR,
    Inject,
    Scenario,
    ScenarioError,
    fired,
    hazards_at,
    load_library,
    parse_scenario,
    scenario_to_geojson,
)
from layers.shapes import geodesic_circle, join_antimeridian

FILES = sorted(LIBRARY_DIR.glob("*.geojson"))
NAMES = [path.stem for path in FILES]
GEOD = Geod(ellps="WGS84")
STARTED = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
NEAR_KM = 200.0

# The situations the library must cover, by file name.
REQUIRED = {"miami-hurricane", "houston-hurricane", "hayward-m7", "san-andreas-m78",
            "potomac-flood-heat", "new-york-surge", "guam-super-typhoon", "pacific-tsunami",
            "anchorage-m7", "puerto-rico-hurricane", "chicago-ice-storm",
            "los-angeles-wildfire", "marshall-islands-typhoon"}


@pytest.fixture(scope="module")
def library() -> dict[str, Scenario]:
    return load_library()


@pytest.fixture(scope="module")
def geography():
    return load_geography()


def starts(text: str) -> str:
    """A ``match=`` pattern: the message starts with ``text``."""
    return "^" + re.escape(text)


def area_of(item: Inject):
    """The inject's area as a shape, circles drawn with the geodesic circle helper."""
    if item.geometry is not None:
        return item.geometry
    return geodesic_circle(item.center_lon, item.center_lat, item.radius_km)


# --------------------------------------------------------------------------------------------
# The bundled library


def test_the_library_loads_with_at_least_13_distinct_scenarios(library) -> None:
    assert len(FILES) >= 13
    assert sorted(library) == NAMES
    assert len(set(NAMES)) == len(NAMES)
    assert set(library) >= REQUIRED
    assert len({s.title for s in library.values()}) == len(library)
    for name, scenario in library.items():
        assert scenario.name == name
        assert 2 <= len(scenario.injects) <= 6, name
        assert scenario.injects == tuple(sorted(scenario.injects,
                                                key=lambda i: (i.at_minutes, i.inject_id)))
        assert "approximation" in scenario.sources.lower(), name
        assert scenario.injects[-1].at_minutes >= 60, f"{name}: injects should span hours"


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_files_are_small_and_drawn_valid(path: Path) -> None:
    assert path.stat().st_size < 150_000
    data = json.loads(path.read_text(encoding="utf-8"))
    for feature in data["features"]:
        geom = shape(feature["geometry"])
        if geom.geom_type == "Point":
            continue
        # drawn valid: nothing in the library relies on the repair of a broken shape
        assert geom.is_valid, (path.name, feature["properties"]["inject_id"])
        assert shapely.get_num_coordinates(geom) <= 600, feature["properties"]["inject_id"]


@pytest.mark.parametrize("name", NAMES)
def test_injects_touch_every_claimed_jurisdiction(name: str, library, geography) -> None:
    scenario = library[name]
    areas = [area_of(item) for item in scenario.injects]
    for code in scenario.jurisdictions:
        state = geography.state_geometry(code)
        assert any(area.intersects(state) for area in areas), f"{name}: nothing in {code}"


@pytest.mark.parametrize("name", NAMES)
def test_every_inject_lies_in_or_near_a_claimed_jurisdiction(name: str, library,
                                                             geography) -> None:
    scenario = library[name]
    states = [geography.state_geometry(code) for code in scenario.jurisdictions]
    for item in scenario.injects:
        area = area_of(item)
        if any(area.intersects(state) for state in states):
            continue
        # Offshore (a cone, an epicentre at sea): the nearest vertex of the densified outline
        # is an upper bound of the distance to the jurisdiction.
        xy = shapely.get_coordinates(shapely.segmentize(area.boundary, 0.05))
        nearest = min(float(np.min(geography.distance_km(xy[:, 0], xy[:, 1], code)))
                      for code in scenario.jurisdictions)
        assert nearest <= NEAR_KM, f"{name}: {item.inject_id} is {nearest:.0f} km away"


def missions_inside(item: Inject, lon: np.ndarray, lat: np.ndarray) -> set[int]:
    """Oracle: a plain loop over the missions near the inject, shapely or pyproj per point."""
    out: set[int] = set()
    if item.geometry is None:
        for i in range(lon.size):
            if abs(lat[i] - item.center_lat) > item.radius_km / 100.0:  # 1 deg lat > 110 km
                continue
            _, _, metres = GEOD.inv(item.center_lon, item.center_lat, lon[i], lat[i])
            if metres <= item.radius_km * 1000.0:
                out.add(i)
        return out
    for part in shapely.get_parts(item.geometry):
        minx, miny, maxx, maxy = part.bounds
        for i in range(lon.size):
            if minx <= lon[i] <= maxx and miny <= lat[i] <= maxy and part.covers(
                    Point(lon[i], lat[i])):
                out.add(i)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_every_scenario_reaches_missions_of_the_demo_roster(name: str, library,
                                                            demo_roster) -> None:
    missions, _ = demo_roster
    lon = missions["lon"].to_numpy(dtype=float)
    lat = missions["lat"].to_numpy(dtype=float)
    scenario = library[name]
    hit: set[int] = set()
    for item in scenario.injects:
        hit |= missions_inside(item, lon, lat)
    assert hit, f"{name} affects no mission of the demo roster"
    codes = set(missions["jurisdiction"].to_numpy()[sorted(hit)])
    assert codes & set(scenario.jurisdictions), (name, codes)


@pytest.mark.parametrize("name", NAMES)
def test_every_inject_plays_and_is_in_force_when_it_fires(name: str, library) -> None:
    scenario = library[name]
    for item in scenario.injects:
        hazards = hazards_at(scenario, item.at_minutes, drill_id=3, started_at=STARTED)
        ids = [h.hazard_id for h in hazards]
        assert len(ids) == len(set(ids))
        assert all(h.status == "exercise" and h.source == "drill" for h in hazards)
        if item.message_type != "cancel":
            assert f"drill:3:{item.inject_id}" in ids
        for target in item.supersedes:
            assert f"drill:3:{target}" not in ids
    assert hazards_at(scenario, -1, drill_id=3, started_at=STARTED) == []


@pytest.mark.parametrize("name", NAMES)
def test_bundled_scenarios_round_trip(name: str, library) -> None:
    scenario = library[name]
    again = parse_scenario(json.dumps(scenario_to_geojson(scenario)), origin="copy")
    assert again == scenario
    assert parse_scenario(scenario_to_geojson(scenario)) == scenario


# --------------------------------------------------------------------------------------------
# The scenario clock on a small synthetic scenario

SQUARE = {"type": "Polygon",
          "coordinates": [[[-77.1, 38.8], [-77.0, 38.8], [-77.0, 38.9], [-77.1, 38.9],
                           [-77.1, 38.8]]]}
BIGGER = {"type": "Polygon",
          "coordinates": [[[-77.2, 38.7], [-76.9, 38.7], [-76.9, 39.0], [-77.2, 39.0],
                           [-77.2, 38.7]]]}


def feature(props: dict[str, Any], geometry: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geometry or SQUARE}


def synthetic() -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "scenario": {"name": "river-test", "title": "River test",
                     "description": "A small scenario for tests.", "jurisdictions": ["DC"],
                     "duration_minutes": 120, "author": "Tests",
                     "sources": "Drawn by hand: an approximation for training."},
        "features": [
            feature({"inject_id": "watch", "at_minutes": 0, "event": "Flood Watch",
                     "category": "flood", "severity": "moderate", "urgency": "future",
                     "certainty": "possible", "source_style": "nws"}),
            feature({"inject_id": "breach", "at_minutes": 10, "expires_minutes": 30,
                     "event": "Flash Flood Warning", "category": "flood",
                     "severity": "extreme", "radius_km": 5},
                    {"type": "Point", "coordinates": [-77.03, 38.88]}),
            feature({"inject_id": "warning", "at_minutes": 20, "message_type": "update",
                     "supersedes": ["watch"], "event": "Flood Warning", "category": "flood",
                     "severity": "severe", "headline": "EXERCISE - river at major stage",
                     "description": "d", "instruction": "i", "area_desc": "a"}, BIGGER),
            feature({"inject_id": "all-clear", "at_minutes": 50, "message_type": "cancel",
                     "supersedes": ["warning"], "event": "Flood Warning",
                     "category": "flood", "severity": "minor"}, BIGGER),
            feature({"inject_id": "aftermath", "at_minutes": 50, "expires_minutes": 5,
                     "event": "Hydrologic Outlook", "category": "flood",
                     "severity": "minor"}),
        ],
    }


@pytest.mark.parametrize(("elapsed", "expected"), [
    (-5, []),
    (0, ["watch"]),
    (9.99, ["watch"]),
    (10, ["watch", "breach"]),
    (20, ["breach", "warning"]),          # the warning supersedes the watch
    (39.9, ["breach", "warning"]),
    (40, ["warning"]),                    # the breach expired at 10 + 30
    (49, ["warning"]),
    (50, ["aftermath"]),                  # cancelled; the cancel itself is not in force
    (55, []),                             # the aftermath expired at 50 + 5
    (10_000, []),
])
def test_hazards_in_force_at_each_minute(elapsed: float, expected: list[str]) -> None:
    scenario = parse_scenario(synthetic(), origin="river-test.geojson")
    hazards = hazards_at(scenario, elapsed, drill_id=7, started_at=STARTED)
    assert [h.hazard_id for h in hazards] == [f"drill:7:{i}" for i in expected]
    for hazard in hazards:
        # every hazard in force is active by the model's own rule at that wall time
        assert hazard.active(STARTED + timedelta(minutes=max(elapsed, 0)))


def test_hazard_fields_follow_the_inject() -> None:
    scenario = parse_scenario(synthetic(), origin="river-test.geojson")
    by_id = {h.hazard_id: h for h in hazards_at(scenario, 20, drill_id=7, started_at=STARTED)}
    breach, warning = by_id["drill:7:breach"], by_id["drill:7:warning"]
    assert isinstance(breach, Hazard)
    assert (breach.source, breach.status, breach.category, breach.severity) == (
        "drill", "exercise", "flood", "extreme")
    at10 = STARTED + timedelta(minutes=10)
    assert breach.sent == breach.effective == breach.onset == at10
    assert breach.expires == STARTED + timedelta(minutes=40)
    assert breach.headline == "EXERCISE - Flash Flood Warning"
    assert (breach.urgency, breach.certainty) == ("unknown", "unknown")
    assert breach.geometry is None and breach.geometry_method == "radius"
    assert (breach.center_lon, breach.center_lat, breach.radius_km) == (-77.03, 38.88, 5.0)
    assert dict(breach.properties) == {"inject_id": "breach", "scenario": "river-test"}
    assert warning.sent == STARTED + timedelta(minutes=20)
    assert warning.expires is None
    assert warning.message_type == "update"
    assert warning.supersedes == ("drill:7:watch",)
    assert warning.headline == "EXERCISE - river at major stage"
    assert (warning.description, warning.instruction, warning.area_desc) == ("d", "i", "a")
    assert warning.geometry_method == "polygon"
    assert warning.geometry.equals(shape(BIGGER))
    watch = hazards_at(scenario, 0, drill_id=7, started_at=STARTED)[0]
    assert (watch.urgency, watch.certainty, watch.message_type) == ("future", "possible",
                                                                    "alert")


def test_fired_lists_injects_in_order() -> None:
    scenario = parse_scenario(synthetic())
    assert [i.inject_id for i in scenario.injects] == [
        "watch", "breach", "warning", "aftermath", "all-clear"]
    assert fired(scenario, -1) == ()
    assert [i.inject_id for i in fired(scenario, 20)] == ["watch", "breach", "warning"]
    assert [i.inject_id for i in fired(scenario, 50)] == [
        "watch", "breach", "warning", "aftermath", "all-clear"]
    inject = scenario.inject("all-clear")
    assert (inject.message_type, inject.supersedes) == ("cancel", ("warning",))
    with pytest.raises(KeyError, match="nope"):
        scenario.inject("nope")


def test_the_parsed_record() -> None:
    scenario = parse_scenario(json.dumps(synthetic()).encode())
    assert (scenario.name, scenario.jurisdictions, scenario.duration_minutes) == (
        "river-test", ("DC",), 120.0)
    watch = scenario.inject("watch")
    assert watch.at_minutes == 0.0 and watch.expires_minutes is None
    assert watch.source_style == "nws" and watch.headline == ""
    assert watch.geometry.equals(shape(SQUARE))
    assert (watch.center_lon, watch.center_lat, watch.radius_km) == (None, None, None)
    breach = scenario.inject("breach")
    assert breach.geometry is None and breach.radius_km == 5.0
    assert breach.area.geom_type == "Polygon"  # drawn circle, for maps


def test_round_trip_of_the_synthetic_scenario() -> None:
    scenario = parse_scenario(synthetic())
    out = scenario_to_geojson(scenario)
    assert out["scenario"]["name"] == "river-test"
    assert parse_scenario(out) == scenario
    assert parse_scenario(json.loads(json.dumps(out))) == scenario


@pytest.mark.parametrize("bad", [
    {"elapsed_minutes": float("nan")},
    {"elapsed_minutes": "10"},
    {"drill_id": -1},
    {"drill_id": True},
    {"started_at": datetime(2026, 3, 2, 14, 0)},  # noqa: DTZ001 - naive on purpose
    {"started_at": datetime(2026, 3, 2, 14, 0, tzinfo=timezone(timedelta(hours=-5)))},
])
def test_hazards_at_validates_its_arguments(bad: dict[str, Any]) -> None:
    scenario = parse_scenario(synthetic())
    kwargs: dict[str, Any] = {"elapsed_minutes": 10, "drill_id": 1, "started_at": STARTED}
    kwargs.update(bad)
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        hazards_at(scenario, kwargs.pop("elapsed_minutes"), **kwargs)


# --------------------------------------------------------------------------------------------
# Validation: every error names the file, the feature / inject and the reason


def _props(data: dict, number: int) -> dict:
    return data["features"][number - 1]["properties"]


def _set(number: int, **values: Any):
    def change(data: dict) -> None:
        _props(data, number).update(values)
    return change


def _drop(number: int, key: str):
    def change(data: dict) -> None:
        _props(data, number).pop(key)
    return change


def _geometry(number: int, geometry: Any):
    def change(data: dict) -> None:
        data["features"][number - 1]["geometry"] = geometry
    return change


def _header(**values: Any):
    def change(data: dict) -> None:
        for key, value in values.items():
            if value is None:
                data["scenario"].pop(key)
            else:
                data["scenario"][key] = value
    return change


INJECT_ERRORS = [
    (_set(3, severity="huge"), 3, "warning",
     "severity 'huge' is not one of extreme, severe, moderate, minor, unknown"),
    (_set(1, category="storm"), 1, "watch", "category 'storm' is not one of weather"),
    (_set(1, urgency="now"), 1, "watch", "urgency 'now' is not one of immediate"),
    (_set(1, certainty="sure"), 1, "watch", "certainty 'sure' is not one of observed"),
    (_set(1, message_type="ack"), 1, "watch", "message_type 'ack' is not one of alert"),
    (_set(1, source_style="twitter"), 1, "watch", "source_style 'twitter' is not one of nws"),
    (_set(5, inject_id="watch"), 5, "watch", "duplicate inject_id (also feature 1)"),
    (_set(3, supersedes=["ghost"]), 3, "warning", "'ghost', which is not an inject"),
    (_set(3, supersedes=["aftermath"]), 3, "warning", "only injects firing before"),
    (_set(3, supersedes=["breach", "breach"]), 3, "warning", "repeats an inject id"),
    (_set(3, supersedes="watch"), 3, "warning", "supersedes must be a list"),
    (_set(3, supersedes=["warning"], at_minutes=20), 3, "warning", "names the inject itself"),
    (_set(3, supersedes=[]), 3, "warning", "an update must name the injects it replaces"),
    (_set(4, supersedes=[]), 4, "all-clear", "a cancel must name the injects it replaces"),
    (_set(5, supersedes=["all-clear"], at_minutes=60), 5, "aftermath", "which is a cancel"),
    (_set(1, at_minutes=121), 1, "watch", "at_minutes 121 is beyond the scenario's "
                                          "duration_minutes 120"),
    (_set(1, at_minutes=-1), 1, "watch", "at_minutes must be >= 0"),
    (_set(1, at_minutes="10"), 1, "watch", "at_minutes must be a number"),
    (_set(1, at_minutes=True), 1, "watch", "at_minutes must be a number"),
    (_set(1, at_minutes=float("nan")), 1, "watch", "at_minutes must be a finite number"),
    (_drop(1, "at_minutes"), 1, "watch", "at_minutes is required"),
    (_drop(1, "event"), 1, "watch", "event is required"),
    (_set(1, event="  "), 1, "watch", "event must not be empty"),
    (_set(1, headline=3), 1, "watch", "headline must be a string"),
    (_set(2, expires_minutes=0), 2, "breach", "expires_minutes must be > 0"),
    (_set(2, expires_minutes=-10), 2, "breach", "expires_minutes must be > 0"),
    (_set(1, severty="severe"), 1, "watch", "unknown properties severty"),
    (_drop(2, "radius_km"), 2, "breach", "a Point inject needs radius_km"),
    (_set(2, radius_km=0), 2, "breach", "radius_km must be > 0 and <= 2000"),
    (_set(2, radius_km=2500), 2, "breach", "radius_km must be > 0 and <= 2000"),
    (_set(2, radius_km="5"), 2, "breach", "radius_km must be a number"),
    (_set(1, radius_km=5), 1, "watch", "radius_km is only for Point injects"),
    (_geometry(1, None), 1, "watch", "geometry is missing"),
    (_geometry(1, {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}), 1, "watch",
     "geometry must be a Polygon, a MultiPolygon or a Point"),
    (_geometry(1, {"type": "Polygon", "coordinates": []}), 1, "watch", "bad geometry"),
    (_geometry(1, {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}), 1,
     "watch", "bad geometry"),
    (_geometry(1, {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}), 1,
     "watch", "has no area"),
    (_geometry(1, {"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [1, 1], [0, 0]]]}),
     1, "watch", "a position must be [lon, lat]"),
    (_geometry(1, {"type": "Polygon",
                   "coordinates": [[[0, 80], [1, 95], [1, 80], [0, 80]]]}), 1, "watch",
     "latitude 95 is outside -90..90"),
    (_geometry(1, {"type": "Polygon",
                   "coordinates": [[[0, 0], [400, 0], [0, 1], [0, 0]]]}), 1, "watch",
     "longitude 400 is outside"),
    (_geometry(1, {"type": "Polygon",
                   "coordinates": [[[0, 0], [float("inf"), 0], [0, 1], [0, 0]]]}), 1,
     "watch", "is not finite"),
    (_geometry(2, {"type": "Point", "coordinates": [0, 89.99]}), 2, "breach", "holds a pole"),
]


@pytest.mark.parametrize(("change", "number", "inject_id", "reason"), INJECT_ERRORS)
def test_inject_errors_name_the_file_the_feature_and_the_inject(change, number: int,
                                                                 inject_id: str,
                                                                 reason: str) -> None:
    data = copy.deepcopy(synthetic())
    change(data)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, origin="river-test.geojson")
    message = str(caught.value)
    prefix = f'river-test.geojson: inject "{inject_id}" (feature {number}): '
    assert message.startswith(prefix), message
    assert reason in message, message
    assert isinstance(caught.value, ValueError)


def test_an_inject_without_a_usable_id_is_named_by_its_feature_number() -> None:
    for bad, reason in ((None, "inject_id is required"),
                        ("Landfall Cone", "inject_id 'Landfall Cone' must be")):
        data = synthetic()
        if bad is None:
            _props(data, 2).pop("inject_id")
        else:
            _props(data, 2)["inject_id"] = bad
        with pytest.raises(ScenarioError, match=re.escape(
                f"river-test.geojson: feature 2: {reason}")):
            parse_scenario(data, origin="river-test.geojson")
    data = synthetic()
    data["features"][1] = {"type": "Feature", "geometry": SQUARE}
    with pytest.raises(ScenarioError, match="feature 2: properties are missing"):
        parse_scenario(data, origin="river-test.geojson")
    data["features"][1] = ["not", "a", "feature"]
    with pytest.raises(ScenarioError, match="feature 2: expected a GeoJSON Feature"):
        parse_scenario(data, origin="river-test.geojson")


SCENARIO_ERRORS = [
    (_header(jurisdictions=["FL", "XX"]), "scenario jurisdiction 'XX' is not one of AL"),
    (_header(jurisdictions=[]), "scenario jurisdictions must be a non-empty list"),
    (_header(jurisdictions=["FL", "FL"]), "scenario jurisdictions repeat a code"),
    (_header(name="River_Test"), "scenario name 'River_Test' must be"),
    (_header(name="-river"), "scenario name '-river' must be"),
    (_header(title=None), "scenario title is required"),
    (_header(sources=""), "scenario sources must not be empty"),
    (_header(duration_minutes=0), "scenario duration_minutes must be > 0"),
    (_header(duration_minutes=None), "scenario duration_minutes is required"),
    (_header(authors="x"), "scenario has unknown fields authors"),
    (lambda data: data.pop("scenario"), 'the top-level "scenario" member is missing'),
    (lambda data: data.update(features=[]), "features must be a non-empty list"),
    (lambda data: data.update(type="Feature"), "expected a GeoJSON FeatureCollection"),
]


@pytest.mark.parametrize(("change", "reason"), SCENARIO_ERRORS)
def test_scenario_errors_name_the_file(change, reason: str) -> None:
    data = synthetic()
    change(data)
    with pytest.raises(ScenarioError, match=re.escape(f"river-test.geojson: {reason}")):
        parse_scenario(data, origin="river-test.geojson")


def test_unreadable_text_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match=starts("x.geojson: not valid JSON")):
        parse_scenario("{nope", origin="x.geojson")
    with pytest.raises(ScenarioError, match=starts("x.geojson: not UTF-8")):
        parse_scenario(b"\xff\xfe{}", origin="x.geojson")
    with pytest.raises(ScenarioError,
                       match=starts("x.geojson: expected a GeoJSON FeatureCollection")):
        parse_scenario("[1, 2]", origin="x.geojson")


def test_self_intersecting_shapes_are_repaired(caplog) -> None:
    data = synthetic()
    bow_tie = {"type": "Polygon",
               "coordinates": [[[-77.1, 38.8], [-77.0, 38.9], [-77.0, 38.8], [-77.1, 38.9],
                                [-77.1, 38.8]]]}
    data["features"][0]["geometry"] = bow_tie
    with caplog.at_level(logging.WARNING, logger="layers.scenarios"):
        scenario = parse_scenario(data, origin="river-test.geojson")
    geom = scenario.inject("watch").geometry
    assert geom.is_valid and geom.geom_type == "MultiPolygon"
    assert math.isclose(geom.area, 0.005, rel_tol=1e-9)  # both triangles kept
    assert any("watch" in r.getMessage() and "repaired" in r.getMessage()
               for r in caplog.records)
    # the repaired shape round-trips like any other
    assert parse_scenario(scenario_to_geojson(scenario)) == scenario


# --------------------------------------------------------------------------------------------
# The antimeridian


def _small_and_valid(geom) -> None:
    assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon")
    xy = shapely.get_coordinates(geom)
    assert (np.abs(xy[:, 0]) <= 180.0).all()
    minx, _, maxx, _ = join_antimeridian(geom).bounds
    assert maxx - minx < 30.0, "a world-spanning band, not the shape drawn"


@pytest.mark.parametrize("ring", [
    [[170, 5], [190, 5], [190, 10], [170, 10], [170, 5]],       # beyond 180
    [[170, 5], [-170, 5], [-170, 10], [170, 10], [170, 5]],     # jumping across it
    [[-190, 5], [-170, 5], [-170, 10], [-190, 10], [-190, 5]],  # beyond -180
])
def test_shapes_across_the_antimeridian_become_small_split_shapes(ring) -> None:
    data = synthetic()
    data["features"][0]["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    scenario = parse_scenario(data)
    geom = scenario.inject("watch").geometry
    _small_and_valid(geom)
    assert geom.geom_type == "MultiPolygon"
    assert math.isclose(geom.area, 100.0, rel_tol=1e-9)
    assert geom.covers(Point(180, 7)) and geom.covers(Point(-180, 7))
    assert geom.covers(Point(175, 7)) and geom.covers(Point(-175, 7))
    assert not geom.covers(Point(0, 7))
    assert parse_scenario(scenario_to_geojson(scenario)) == scenario


def test_circles_past_180_are_wrapped() -> None:
    data = synthetic()
    data["features"][1]["geometry"] = {"type": "Point", "coordinates": [190.0, -14.3]}
    breach = parse_scenario(data).inject("breach")
    assert (breach.center_lon, breach.center_lat) == (-170.0, -14.3)


def test_the_marshall_islands_scenario_crosses_the_antimeridian(library) -> None:
    path = LIBRARY_DIR / "marshall-islands-typhoon.geojson"
    raw = json.loads(path.read_text(encoding="utf-8"))
    drawn = {f["properties"]["inject_id"]: f["geometry"] for f in raw["features"]}
    # one shape drawn beyond 180, one split at 180 (RFC 7946)
    beyond = shapely.get_coordinates(shape(drawn["forecast-cone"]))
    assert beyond[:, 0].max() > 180.0
    split = shape(drawn["gdacs-wind-buffer"])
    assert split.geom_type == "MultiPolygon"
    assert split.bounds[0] == -180.0 and split.bounds[2] == 180.0
    scenario = library["marshall-islands-typhoon"]
    for inject_id in ("forecast-cone", "gdacs-wind-buffer"):
        geom = scenario.inject(inject_id).geometry
        _small_and_valid(geom)
        assert geom.intersects(shapely.box(179.0, -90, 180.0, 90))
        assert geom.intersects(shapely.box(-180.0, -90, -179.0, 90))
    for item in scenario.injects:
        _small_and_valid(area_of(item))
    # the cone covers Majuro and what lies east of the Date Line on its track
    cone = scenario.inject("forecast-cone").geometry
    assert cone.covers(Point(171.38, 7.09)) and cone.covers(Point(-178.0, 7.1))


# --------------------------------------------------------------------------------------------
# The library loader and the documented example


def test_load_library_names_a_bad_file(tmp_path: Path) -> None:
    assert load_library(tmp_path) == {}
    good = synthetic()
    (tmp_path / "river-test.geojson").write_text(json.dumps(good), encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a scenario", encoding="utf-8")
    assert list(load_library(tmp_path)) == ["river-test"]
    bad = synthetic()
    _props(bad, 3)["severity"] = "huge"
    bad["scenario"]["name"] = "broken"
    (tmp_path / "broken.geojson").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ScenarioError, match=re.escape(
            'broken.geojson: inject "warning" (feature 3): severity \'huge\'')):
        load_library(tmp_path)
    (tmp_path / "broken.geojson").write_text("{", encoding="utf-8")
    with pytest.raises(ScenarioError, match=starts("broken.geojson: not valid JSON")):
        load_library(tmp_path)
    (tmp_path / "broken.geojson").unlink()
    (tmp_path / "other-name.geojson").write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(ScenarioError, match=starts(
            "other-name.geojson: scenario name 'river-test' must be the file name")):
        load_library(tmp_path)
    with pytest.raises(ScenarioError, match="scenario directory not found"):
        load_library(tmp_path / "missing")


def test_the_readme_example_parses_and_plays_as_documented() -> None:
    readme = (LIBRARY_DIR / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", readme, re.DOTALL).group(1)
    scenario = parse_scenario(example, origin="README.md")
    assert scenario.name == "example-flood"

    def at(minute: float) -> list[str]:
        return [h.properties["inject_id"]
                for h in hazards_at(scenario, minute, drill_id=1, started_at=STARTED)]

    assert at(30) == ["flood-warning"]
    assert at(100) == ["major-flood", "levee-breach"]
    assert at(160) == ["major-flood"]
    assert at(200) == []
    table = readme.split("## The library", 1)[1].split("## Format", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.MULTILINE)
    assert sorted(documented) == NAMES, "the README's table lists every scenario file"
