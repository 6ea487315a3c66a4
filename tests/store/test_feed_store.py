"""Hazard snapshots, feed health and the feed cache, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon, box

from feeds.base import MemoryCache
from feeds.model import Hazard
from feeds.sources import SOURCE_NAMES
from settings import Settings
from store import feeds as feed_store
from store.db import open_store
from store.feeds import (
    StoreCache,
    Validators,
    feed_health,
    first_seen_times,
    hazard_from_row,
    hazard_to_row,
    load_hazards,
    load_validators,
    record_poll,
    replace_hazards,
    store_recorded,
)
from store.tables import feed_health as health_table

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
SETTINGS = Settings.from_env({})


def full_hazard(hazard_id: str = "nws:urn:oid:2.49.0.1.840.0.1", **changes) -> Hazard:
    """A hazard with every field set, the geometry a MultiPolygon with a hole."""
    shell = Polygon([(-77.2, 38.7), (-76.8, 38.7), (-76.8, 39.1), (-77.2, 39.1)],
                    holes=[[(-77.0, 38.9), (-76.95, 38.9), (-76.95, 38.95)]])
    base = Hazard(
        hazard_id=hazard_id, source="nws", event="Flash Flood Warning", category="flood",
        severity="severe", urgency="immediate", certainty="likely",
        source_severity="Severe", status="actual", message_type="update",
        supersedes=("nws:urn:old",), sent=NOW - timedelta(minutes=5),
        effective=NOW - timedelta(minutes=5), onset=NOW + timedelta(seconds=1, microseconds=7),
        expires=NOW + timedelta(hours=3), ends=NOW + timedelta(hours=6),
        headline="Flash Flood Warning issued", description="Heavy rain.\nMove to higher ground.",
        instruction="Turn around, don't drown.", area_desc="District of Columbia; Arlington",
        url="https://api.weather.gov/alerts/urn:oid:2.49.0.1.840.0.1",
        geometry=MultiPolygon([shell, box(-76.5, 38.5, -76.4, 38.6)]),
        geometry_method="polygon",
        properties={"vtec": ["/O.NEW.KLWX.FF.W.0042/"], "zones": {"count": 2, "ids": ["DCZ001"]},
                    "ratio": 0.1 + 0.2, "flag": True, "none": None, "text": "ümlaut ☔",
                    "ugc": ("DCZ001", "VAZ054"), "nested": [("a", 1), {"t": ()}]},
    )
    return dataclasses.replace(base, **changes)


def quake(native: str, **changes) -> Hazard:
    base = Hazard(hazard_id=f"usgs:{native}", source="usgs", event=f"M 5 - {native}",
                  category="earthquake", center_lon=-118.0 + 0.123456789012345,
                  center_lat=35.5, radius_km=42.5, sent=NOW - timedelta(hours=1))
    return dataclasses.replace(base, **changes)


def test_a_stored_hazard_reads_back_equal(store_engine) -> None:
    hazards = [full_hazard(), full_hazard("nws:second", geometry=None, geometry_method=None,
                                          sent=None, properties={})]
    replace_hazards(store_engine, "nws", hazards, now=NOW)
    replace_hazards(store_engine, "usgs", [quake("ci1")], now=NOW)
    got = load_hazards(store_engine, now=NOW)
    assert got == [hazards[1], hazards[0], quake("ci1")]  # by source, then id
    assert got[1].geometry.equals_exact(hazards[0].geometry, 0)
    assert all(t is None or t.utcoffset() == timedelta(0) for t in (got[1].sent, got[1].ends))


def test_query_columns_hold_the_record(store_engine) -> None:
    hazard = full_hazard()
    replace_hazards(store_engine, "nws", [hazard], now=NOW)
    with store_engine.connect() as connection:
        row = connection.execute(sa.select(feed_store.hazards)).mappings().one()
    assert row["source"] == "nws" and row["severity"] == "severe"
    assert row["geometry_method"] == "polygon" and row["geometry_wkb"]
    assert feed_store._utc(row["expires"]) == hazard.expires
    assert feed_store._utc(row["stored_at"]) == NOW
    assert hazard_from_row(row["record"], row["geometry_wkb"]) == hazard
    assert json.loads(row["properties"])["ugc"] == ["DCZ001", "VAZ054"]  # plain JSON to query


def test_properties_that_are_not_json_are_refused() -> None:
    hazard = full_hazard(properties={"when": NOW})
    with pytest.raises(ValueError, match="properties must be JSON values"):
        hazard_to_row(hazard, stored_at=NOW)


def test_replace_is_per_source_and_whole(store_engine) -> None:
    replace_hazards(store_engine, "usgs", [quake("a"), quake("b")], now=NOW)
    replace_hazards(store_engine, "nws", [full_hazard()], now=NOW)
    replace_hazards(store_engine, "usgs", [quake("c")], now=NOW + timedelta(minutes=1))
    ids = [h.hazard_id for h in load_hazards(store_engine, now=NOW)]
    assert ids == ["nws:urn:oid:2.49.0.1.840.0.1", "usgs:c"]
    replace_hazards(store_engine, "usgs", [], now=NOW + timedelta(minutes=2))
    assert [h.source for h in load_hazards(store_engine, now=NOW)] == ["nws"]
    health = {h.source: h for h in feed_health(store_engine, now=NOW, settings=SETTINGS)}
    assert health["usgs"].item_count == 0 and health["usgs"].last_outcome == "fresh"


def test_a_write_that_fails_midway_keeps_the_old_snapshot(store_engine, monkeypatch) -> None:
    replace_hazards(store_engine, "usgs", [quake("old")], now=NOW)

    def broken_upsert(*args, **kwargs):
        raise sa.exc.OperationalError("UPDATE feed_health", {}, RuntimeError("disk full"))

    monkeypatch.setattr(feed_store, "_upsert", broken_upsert)
    with pytest.raises(sa.exc.OperationalError):
        replace_hazards(store_engine, "usgs", [quake("new1"), quake("new2")],
                        now=NOW + timedelta(minutes=1))
    monkeypatch.undo()
    assert [h.hazard_id for h in load_hazards(store_engine, now=NOW)] == ["usgs:old"]
    (usgs,) = [h for h in feed_health(store_engine, now=NOW, settings=SETTINGS)
               if h.source == "usgs"]
    assert usgs.last_success == NOW and usgs.item_count == 1


def test_first_seen_marks_what_a_watched_feed_newly_lists(store_engine) -> None:
    """The first live poll's findings were there before anyone watched (None); later, a new id
    is dated by the poll that first lists it, keeps that date, and an update inherits the date
    of the alert it supersedes. Recorded snapshots are never new."""
    later, latest = NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    replace_hazards(store_engine, "usgs", [quake("a")], now=NOW)
    assert first_seen_times(store_engine) == {"usgs:a": None}
    replace_hazards(store_engine, "usgs", [quake("a"), quake("b")], now=later)
    assert first_seen_times(store_engine) == {"usgs:a": None, "usgs:b": later}
    replace_hazards(store_engine, "usgs",
                    [quake("b"), quake("c"), quake("b2", supersedes=("usgs:b",)),
                     quake("a2", supersedes=("usgs:a", "usgs:b"))], now=latest)
    assert first_seen_times(store_engine) == {
        "usgs:b": later, "usgs:c": latest, "usgs:b2": later, "usgs:a2": None}
    # A source that polled empty first is watched: its first hazard afterwards is new.
    replace_hazards(store_engine, "nws", [], now=NOW)
    replace_hazards(store_engine, "nws", [full_hazard()], now=later)
    assert first_seen_times(store_engine)[full_hazard().hazard_id] == later
    store_recorded(store_engine, "nhc", [dataclasses.replace(quake("r"), hazard_id="nhc:r",
                                                             source="nhc")],
                   now=latest, recorded_at=NOW - timedelta(days=400))
    assert first_seen_times(store_engine)["nhc:r"] is None


@pytest.mark.parametrize(("items", "message"), [
    ([quake("a"), quake("a")], "duplicate hazard_id usgs:a"),
    ([quake("a" * 300)], "hazard_id longer than 255 characters"),
    ([full_hazard()], "belongs to source 'nws', not 'usgs'"),
    (["usgs:a"], r"hazards\[0\] must be a Hazard"),
])
def test_a_bad_snapshot_is_refused_before_writing(store_engine, items, message) -> None:
    replace_hazards(store_engine, "usgs", [quake("kept")], now=NOW)
    with pytest.raises(ValueError, match=message):
        replace_hazards(store_engine, "usgs", items, now=NOW)
    assert [h.hazard_id for h in load_hazards(store_engine, now=NOW)] == ["usgs:kept"]


def test_arguments_are_validated_at_the_door(store_engine) -> None:
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        replace_hazards(store_engine, "usgs", [], now=naive)
    with pytest.raises(ValueError, match="recorded_at must be a timezone-aware"):
        store_recorded(store_engine, "usgs", [], now=NOW, recorded_at=naive)
    with pytest.raises(ValueError, match="source must be one of nws, usgs"):
        replace_hazards(store_engine, "twitter", [], now=NOW)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        load_hazards(store_engine, now=naive)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        feed_health(store_engine, now=naive, settings=SETTINGS)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        record_poll(store_engine, "usgs", now=naive, outcome="failed")
    with pytest.raises(ValueError, match="outcome must be not_modified or failed"):
        record_poll(store_engine, "usgs", now=NOW, outcome="fresh")  # type: ignore[arg-type]


def test_expired_and_cancelled_hazards_are_left_out_unless_asked(store_engine) -> None:
    hazards = [
        quake("open"),
        quake("expired", expires=NOW - timedelta(seconds=1)),
        quake("ended", ends=NOW, expires=NOW + timedelta(days=1)),
        quake("later", expires=NOW + timedelta(seconds=1)),
        quake("cancel", message_type="cancel"),
    ]
    replace_hazards(store_engine, "usgs", hazards, now=NOW - timedelta(hours=1))
    active = [h.hazard_id for h in load_hazards(store_engine, now=NOW)]
    assert active == ["usgs:later", "usgs:open"]
    assert len(load_hazards(store_engine, now=NOW, include_expired=True)) == 5
    assert load_hazards(store_engine, now=NOW, sources=["nws"]) == []


def test_health_of_a_never_polled_store_lists_every_source_as_stale(store_engine) -> None:
    health = feed_health(store_engine, now=NOW, settings=SETTINGS)
    assert [h.source for h in health] == list(SOURCE_NAMES)
    for item in health:
        assert item.stale and item.last_outcome is None and item.data_age is None
        assert item.interval_s == getattr(SETTINGS, f"{item.source}_interval_s")
        assert not item.recorded and item.item_count == 0


def _health(engine, now: datetime, source: str = "usgs", settings: Settings = SETTINGS):
    return next(h for h in feed_health(engine, now=now, settings=settings) if h.source == source)


def test_fresh_failed_and_not_modified_polls_move_health(store_engine) -> None:
    settings = Settings.from_env({}, usgs_interval_s=60, feed_stale_factor=3.0)
    replace_hazards(store_engine, "usgs", [quake("a")], now=NOW, skipped=2, unplaced=1)
    fresh = _health(store_engine, NOW + timedelta(seconds=30), settings=settings)
    assert (fresh.last_outcome, fresh.last_error, fresh.stale) == ("fresh", None, False)
    assert (fresh.item_count, fresh.skipped, fresh.unplaced) == (1, 2, 1)
    assert fresh.data_age == timedelta(seconds=30) and fresh.last_success == NOW

    for minutes in (1, 2):
        record_poll(store_engine, "usgs", now=NOW + timedelta(minutes=minutes), outcome="failed",
                    reason="FeedUnavailable: cannot connect")
    failed = _health(store_engine, NOW + timedelta(minutes=3), settings=settings)
    assert failed.last_outcome == "failed"
    assert failed.last_error == "FeedUnavailable: cannot connect"
    assert failed.consecutive_failures == 2
    assert failed.last_attempt == NOW + timedelta(minutes=2)
    assert failed.last_success == NOW and failed.data_as_of == NOW  # the data keeps its date
    assert failed.data_age == timedelta(minutes=3)
    assert not failed.stale  # exactly 3 intervals old: not yet stale
    assert _health(store_engine, NOW + timedelta(minutes=3, seconds=1), settings=settings).stale
    assert [h.hazard_id for h in load_hazards(store_engine, now=NOW)] == ["usgs:a"]

    record_poll(store_engine, "usgs", now=NOW + timedelta(minutes=10), outcome="not_modified")
    same = _health(store_engine, NOW + timedelta(minutes=10), settings=settings)
    assert (same.last_outcome, same.last_error, same.consecutive_failures) == (
        "not_modified", None, 0)
    assert same.last_success == same.data_as_of == NOW + timedelta(minutes=10)
    assert same.item_count == 1 and not same.stale


def test_a_first_poll_that_fails_creates_the_health_row(store_engine) -> None:
    record_poll(store_engine, "gdacs", now=NOW, outcome="failed", reason="x" * 1000)
    health = _health(store_engine, NOW, source="gdacs")
    assert health.stale and health.last_success is None and health.data_as_of is None
    assert health.consecutive_failures == 1 and len(health.last_error) == 300


def test_recorded_snapshots_are_labelled_and_judged_on_their_own_clock(store_engine) -> None:
    recorded_at = datetime(2023, 10, 11, 20, 16, 31, tzinfo=timezone.utc)
    old = quake("us7000kufc", sent=recorded_at - timedelta(days=2),
                expires=recorded_at + timedelta(days=7))
    record_poll(store_engine, "usgs", now=NOW, outcome="failed", reason="offline")
    assert store_recorded(store_engine, "usgs", [old], now=NOW, recorded_at=recorded_at)
    health = _health(store_engine, NOW)
    assert health.recorded and health.recorded_at == recorded_at
    assert health.data_as_of == recorded_at and health.data_age == NOW - recorded_at
    assert health.stale and health.last_success is None
    assert (health.last_outcome, health.last_error) == ("failed", "offline")  # live history
    assert load_hazards(store_engine, now=NOW) == [old]  # active when it was recorded

    replace_hazards(store_engine, "usgs", [quake("live")], now=NOW + timedelta(minutes=1))
    live = _health(store_engine, NOW + timedelta(minutes=1))
    assert not live.recorded and live.recorded_at is None and live.last_error is None
    assert [h.hazard_id for h in load_hazards(store_engine, now=NOW)] == ["usgs:live"]
    # a recording never replaces live data, not even old live data
    assert not store_recorded(store_engine, "usgs", [old], now=NOW + timedelta(days=30),
                              recorded_at=recorded_at)
    assert [h.hazard_id for h in load_hazards(store_engine, now=NOW)] == ["usgs:live"]
    assert not _health(store_engine, NOW).recorded


def test_validators_are_kept_with_the_live_snapshot_only(store_engine) -> None:
    assert load_validators(store_engine, "nws") is None
    validators = Validators("https://api.weather.gov/alerts/active", '"abc"',
                            "Sat, 28 Nov 2026 00:00:00 GMT")
    replace_hazards(store_engine, "nws", [], now=NOW, validators=validators)
    assert load_validators(store_engine, "nws") == validators
    record_poll(store_engine, "nws", now=NOW, outcome="failed", reason="x")
    assert load_validators(store_engine, "nws") == validators
    assert not store_recorded(store_engine, "nws", [], now=NOW,
                              recorded_at=NOW - timedelta(days=9))
    assert load_validators(store_engine, "nws") == validators  # live data: no replay
    assert store_recorded(store_engine, "gdacs", [], now=NOW, recorded_at=NOW)
    assert load_validators(store_engine, "gdacs") is None


def test_health_as_json(store_engine) -> None:
    replace_hazards(store_engine, "usgs", [quake("a")], now=NOW)
    data = _health(store_engine, NOW + timedelta(seconds=90)).as_json()
    assert data["data_age_s"] == 90.0
    assert data["last_success"] == "2026-11-27T12:00:00+00:00"
    assert data["source"] == "usgs" and data["stale"] is False and "data_age" not in data


def test_snapshot_and_health_survive_a_new_engine(database_url: str) -> None:
    engine = open_store(database_url)
    replace_hazards(engine, "nws", [full_hazard()], now=NOW)
    StoreCache(engine).put("nws-zone:forecast/DCZ001", b"\x00\x01", now=NOW)
    engine.dispose()
    again = open_store(database_url)
    try:
        assert load_hazards(again, now=NOW) == [full_hazard()]
        assert _health(again, NOW + timedelta(hours=1), source="nws").data_age == timedelta(
            hours=1)
        assert StoreCache(again).get("nws-zone:forecast/DCZ001", max_age_s=60, now=NOW) == (
            b"\x00\x01")
    finally:
        again.dispose()


@pytest.mark.parametrize("kind", ["store", "memory"])
def test_cache_protocol(store_engine, kind: str) -> None:
    cache = StoreCache(store_engine) if kind == "store" else MemoryCache()
    assert cache.get("k", max_age_s=10, now=NOW) is None
    cache.put("k", b"one", now=NOW)
    assert cache.get("k", max_age_s=10, now=NOW + timedelta(seconds=10)) == b"one"
    assert cache.get("k", max_age_s=10, now=NOW + timedelta(seconds=11)) is None
    cache.put("k", b"two" * 1000, now=NOW + timedelta(seconds=20))
    assert cache.get("k", max_age_s=10, now=NOW + timedelta(seconds=21)) == b"two" * 1000
    cache.put("other", b"", now=NOW)
    assert cache.get("other", max_age_s=1e9, now=NOW) == b""


def test_store_cache_takes_long_keys_and_prunes_old_entries(store_engine) -> None:
    cache = StoreCache(store_engine)
    long_key = "nhc:gis:https://www.nhc.noaa.gov/gis/" + "x" * 2000
    cache.put(long_key, b"zip", now=NOW)
    cache.put(long_key + "y", b"other", now=NOW)
    assert cache.get(long_key, max_age_s=60, now=NOW) == b"zip"
    cache.put("fresh", b"1", now=NOW + timedelta(days=40))
    assert cache.prune(now=NOW + timedelta(days=40), max_age_s=30 * 86400) == 2
    assert cache.get(long_key, max_age_s=1e9, now=NOW + timedelta(days=40)) is None
    assert cache.get("fresh", max_age_s=1e9, now=NOW + timedelta(days=40)) == b"1"


def test_store_cache_validates(store_engine) -> None:
    cache = StoreCache(store_engine)
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        cache.put("k", b"v", now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="value must be bytes"):
        cache.put("k", "text", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key must be a non-empty string"):
        cache.put("", b"v", now=NOW)


def test_health_rows_never_hold_more_than_one_row_per_source(store_engine) -> None:
    for minute in range(3):
        record_poll(store_engine, "nhc", now=NOW + timedelta(minutes=minute), outcome="failed",
                    reason="r")
        replace_hazards(store_engine, "nhc", [], now=NOW + timedelta(minutes=minute))
    with store_engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(health_table))
        assert count.scalar_one() == 1


def test_health_is_a_frozen_record(store_engine) -> None:
    health = _health(store_engine, NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        health.stale = False  # type: ignore[misc]
