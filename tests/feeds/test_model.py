"""feeds.model: a Hazard is valid when built or not built at all; activity is judged at `now`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, box

from feeds.model import (
    CATEGORIES,
    CERTAINTIES,
    GEOMETRY_METHODS,
    MESSAGE_TYPES,
    SEVERITIES,
    SOURCES,
    STATUSES,
    URGENCIES,
    Hazard,
    ParseResult,
    parse_iso_utc,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
SQUARE = box(-77.1, 38.8, -76.9, 39.0)


def _hazard(**changes) -> Hazard:
    values = {"hazard_id": "nws:abc", "source": "nws", "event": "Flood Warning",
              "category": "flood"}
    values.update(changes)
    return Hazard(**values)


def test_defaults_are_the_cap_unknowns() -> None:
    hazard = _hazard()
    assert (hazard.severity, hazard.urgency, hazard.certainty) == ("unknown",) * 3
    assert (hazard.status, hazard.message_type) == ("actual", "alert")
    assert hazard.geometry is None and not hazard.is_placed
    assert hazard.supersedes == ()
    assert dict(hazard.properties) == {}


@pytest.mark.parametrize("hazard_id", ["", "abc", "usgs:abc", "nws-abc", "NWS:abc"])
def test_hazard_id_must_start_with_its_source(hazard_id: str) -> None:
    with pytest.raises(ValueError, match="hazard_id must start with 'nws:'"):
        _hazard(hazard_id=hazard_id)


@pytest.mark.parametrize(("field", "allowed"), [
    ("category", CATEGORIES), ("severity", SEVERITIES), ("urgency", URGENCIES),
    ("certainty", CERTAINTIES), ("status", STATUSES), ("message_type", MESSAGE_TYPES),
])
def test_vocabularies_are_checked_and_named(field: str, allowed: tuple[str, ...]) -> None:
    for value in allowed:
        assert getattr(_hazard(**{field: value}), field) == value
    with pytest.raises(ValueError, match=rf"^{field} must be one of .*got 'Severe'"):
        _hazard(**{field: "Severe"})


def test_unknown_source_is_refused() -> None:
    assert "nws" in SOURCES
    with pytest.raises(ValueError, match="source must be one of"):
        Hazard(hazard_id="twitter:1", source="twitter", event="x", category="other")


@pytest.mark.parametrize("field", ["sent", "effective", "onset", "expires", "ends"])
def test_times_must_be_utc_aware(field: str) -> None:
    assert getattr(_hazard(**{field: NOW}), field) == NOW
    with pytest.raises(ValueError, match=f"{field} must be a UTC-aware datetime"):
        _hazard(**{field: NOW.replace(tzinfo=None)})
    eastern = timezone(timedelta(hours=-5))
    with pytest.raises(ValueError, match=f"{field} must be a UTC-aware datetime"):
        _hazard(**{field: NOW.astimezone(eastern)})
    with pytest.raises(ValueError, match=f"{field} must be a datetime or None, got str"):
        _hazard(**{field: "2026-11-27T12:00:00Z"})


def test_geometry_must_be_polygonal_and_say_how_it_was_obtained() -> None:
    for geometry in (SQUARE, MultiPolygon([SQUARE, box(0, 0, 1, 1)])):
        assert _hazard(geometry=geometry, geometry_method="polygon").is_placed
    for geometry in (Point(0, 0), LineString([(0, 0), (1, 1)])):
        with pytest.raises(ValueError, match="geometry must be a Polygon or MultiPolygon"):
            _hazard(geometry=geometry, geometry_method="polygon")
    with pytest.raises(ValueError, match="geometry_method must say how"):
        _hazard(geometry=SQUARE)
    with pytest.raises(ValueError, match="geometry_method must be one of"):
        _hazard(geometry=SQUARE, geometry_method="guess")
    assert set(GEOMETRY_METHODS) >= {"polygon", "zone", "county", "radius"}


def test_radius_needs_all_three_values_in_range() -> None:
    circle = _hazard(center_lon=-122.3, center_lat=47.6, radius_km=25.0)
    assert circle.is_placed and circle.geometry is None
    with pytest.raises(ValueError, match="go together"):
        _hazard(center_lon=-122.3, center_lat=47.6)
    with pytest.raises(ValueError, match="valid WGS 84"):
        _hazard(center_lon=200.0, center_lat=47.6, radius_km=1.0)
    with pytest.raises(ValueError, match="valid WGS 84"):
        _hazard(center_lon=10.0, center_lat=-91.0, radius_km=1.0)
    for radius in (0.0, -5.0):
        with pytest.raises(ValueError, match="radius_km must be > 0"):
            _hazard(center_lon=0.0, center_lat=0.0, radius_km=radius)


def test_properties_are_a_read_only_copy() -> None:
    source = {"vtec": "/O.NEW.KSEW.FL.W.0001/", "zones": ["WAZ001"]}
    hazard = _hazard(properties=source)
    source["vtec"] = "changed"
    assert hazard.properties["vtec"] == "/O.NEW.KSEW.FL.W.0001/"
    with pytest.raises(TypeError):
        hazard.properties["vtec"] = "x"  # type: ignore[index]
    assert _hazard(properties={"a": 1}) == _hazard(properties={"a": 1})


def test_supersedes_becomes_a_tuple_and_the_record_is_frozen() -> None:
    hazard = _hazard(supersedes=["nws:old1", "nws:old2"])
    assert hazard.supersedes == ("nws:old1", "nws:old2")
    with pytest.raises(AttributeError):
        hazard.event = "other"  # type: ignore[misc]


def test_active_until_ends_or_expires_and_never_when_cancelled() -> None:
    assert _hazard().active(NOW)  # no end given: active
    expires = _hazard(expires=NOW + timedelta(hours=1))
    assert expires.active(NOW)
    assert not expires.active(NOW + timedelta(hours=1))  # the end itself is outside
    # `ends` (when the event ends) wins over `expires` (when the message does)
    ends_later = _hazard(expires=NOW - timedelta(hours=1), ends=NOW + timedelta(hours=3))
    assert ends_later.active(NOW)
    assert not _hazard(ends=NOW - timedelta(seconds=1), expires=NOW + timedelta(hours=1)
                       ).active(NOW)
    assert not _hazard(message_type="cancel").active(NOW)


def test_active_refuses_naive_or_non_utc_now() -> None:
    with pytest.raises(ValueError, match="now must be a UTC-aware datetime"):
        _hazard().active(NOW.replace(tzinfo=None))


def test_geometry_digest_follows_the_area_only() -> None:
    a = _hazard(geometry=SQUARE, geometry_method="polygon")
    same_area = _hazard(hazard_id="nws:other", event="x", geometry=shapely.from_wkb(
        shapely.to_wkb(SQUARE)), geometry_method="zone")
    moved = _hazard(geometry=box(0, 0, 1, 1), geometry_method="polygon")
    assert a.geometry_digest() == same_area.geometry_digest()
    assert a.geometry_digest() != moved.geometry_digest()
    circle = _hazard(center_lon=1.0, center_lat=2.0, radius_km=3.0)
    bigger = _hazard(center_lon=1.0, center_lat=2.0, radius_km=4.0)
    assert circle.geometry_digest() != bigger.geometry_digest()
    assert len(a.geometry_digest()) == 16


def test_parse_result_counts_default_to_zero() -> None:
    result = ParseResult(hazards=(_hazard(),))
    assert (result.skipped, result.unplaced, result.problems) == (0, 0, ())


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_iso_times_outside_the_years_of_datetime_are_value_errors(text: str) -> None:
    # astimezone raised OverflowError, which the FEMA and NHC parsers did not expect
    with pytest.raises(ValueError, match="lastUpdate is out of range in UTC"):
        parse_iso_utc(text, "lastUpdate")
