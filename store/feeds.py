"""Hazard snapshots, feed health and the feed cache.

Each source's hazards are one snapshot, replaced whole in one transaction together with the
source's health row, so a reader sees either the old snapshot or the new one, never a mix, and a
failed poll leaves both untouched except for the attempt it records. Hazards read back equal to
what was stored: the record is kept as JSON, the geometry as WKB.

Whether a stored hazard is active is judged on our clock, except for a recording (on its
original date) and a live source whose clock was measured behind ours (at ``now`` minus its
``expiry_lag_s``; the rule is in :mod:`feeds.clock`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import shapely
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from feeds.clock import describe_skew
from feeds.model import Hazard
from feeds.sources import SOURCE_NAMES, interval_s
from settings import Settings
from store.tables import feed_cache, hazards
from store.tables import feed_health as health_table

logger = logging.getLogger(__name__)

Outcome = Literal["fresh", "not_modified", "failed"]
OUTCOMES: tuple[str, ...] = ("fresh", "not_modified", "failed")
MAX_ERROR_CHARS = 300
MAX_HAZARD_ID_CHARS = 255   # hazards.hazard_id
MAX_CACHE_KEY_CHARS = 512   # feed_cache.key; longer keys are stored by their digest
CACHE_KEEP_S = 30 * 86400   # StoreCache.prune: entries older than this go

_TIME_FIELDS = ("sent", "effective", "onset", "expires", "ends")


@dataclasses.dataclass(frozen=True)
class Validators:
    """What a source answered last time, for a conditional request (If-None-Match/-Modified)."""

    key: str                          # the request these belong to (URL and parameters)
    etag: str | None = None
    last_modified: str | None = None


@dataclasses.dataclass(frozen=True)
class FeedHealth:
    """How one source is doing at ``now``: last poll, data age, and whether it is stale."""

    source: str
    interval_s: int | None
    last_attempt: datetime | None
    last_success: datetime | None      # last live poll that was fresh or not modified
    last_outcome: str | None           # fresh / not_modified / failed; None: never polled
    last_error: str | None             # short reason of the last failure (cleared on success)
    consecutive_failures: int
    item_count: int                    # hazards in the stored snapshot
    skipped: int                       # items the parser could not use (last stored snapshot)
    unplaced: int                      # hazards without an area (last stored snapshot)
    data_as_of: datetime | None        # when the stored data was last known current
    data_age: timedelta | None         # now - data_as_of
    stale: bool                        # never succeeded, or last success > factor x interval
    recorded: bool                     # the snapshot is a bundled recording, not live data
    recorded_at: datetime | None       # the recording's original date
    clock_skew: timedelta | None = None  # its clock minus ours at the last answer (measured)
    expiry_lag: timedelta = timedelta(0)  # its expiries are judged this far behind our clock

    @property
    def clock(self) -> str | None:
        """"clock 3 h behind" / "clock 5 h ahead" when the skew is beyond the tolerance."""
        return describe_skew(None if self.clock_skew is None
                             else self.clock_skew.total_seconds())

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO times; data age, clock skew and expiry lag in seconds)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            name = field.name
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, timedelta):
                value, name = value.total_seconds(), f"{name}_s"
            elif name in ("data_age", "clock_skew"):  # None: no data / not measured
                name = f"{name}_s"
            out[name] = value
        out["clock"] = self.clock
        return out


# --------------------------------------------------------------------------- helpers


def _require_aware(name: str, value: datetime | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _utc(value: datetime | None) -> datetime | None:
    """Stored times as UTC-aware (SQLite keeps no zone; we always write UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _upsert(connection: sa.Connection, table: sa.Table, values: dict[str, Any],
            update: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE, on SQLite and PostgreSQL alike."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        statement = sqlite.insert(table)
    elif dialect == "postgresql":
        statement = postgresql.insert(table)
    else:  # pragma: no cover - create_engine only makes these two
        raise ValueError(f"unsupported database dialect {dialect!r}")
    keys = [column.name for column in table.primary_key.columns]
    connection.execute(
        statement.values(**values).on_conflict_do_update(index_elements=keys, set_=update)
    )


_HEALTH_DEFAULTS: dict[str, Any] = {
    "consecutive_failures": 0, "item_count": 0, "skipped": 0, "unplaced": 0, "recorded": False,
}


def short_reason(exc: BaseException) -> str:
    """One line naming the exception type and message, cut to a few hundred characters."""
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= MAX_ERROR_CHARS else reason[: MAX_ERROR_CHARS - 3] + "..."


# --------------------------------------------------------------------------- hazard records

_TUPLE_TAG = "__tuple__"


def _tag_tuples(value: Any) -> Any:
    """JSON-ready copy of ``value`` in which tuples are tagged, so they read back as tuples."""
    if isinstance(value, tuple):
        return {_TUPLE_TAG: [_tag_tuples(item) for item in value]}
    if isinstance(value, list):
        return [_tag_tuples(item) for item in value]
    if isinstance(value, dict):
        return {key: _tag_tuples(item) for key, item in value.items()}
    return value


def _untag_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag_tuples(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and _TUPLE_TAG in value and isinstance(value[_TUPLE_TAG], list):
            return tuple(_untag_tuples(item) for item in value[_TUPLE_TAG])
        return {key: _untag_tuples(item) for key, item in value.items()}
    return value



def hazard_to_row(hazard: Hazard, *, stored_at: datetime) -> dict[str, Any]:
    """The ``hazards`` row of one hazard: query columns, the JSON record and the WKB geometry."""
    record: dict[str, Any] = {}
    for field in dataclasses.fields(Hazard):
        if field.name == "geometry":
            continue
        value = getattr(hazard, field.name)
        if field.name in _TIME_FIELDS and value is not None:
            value = value.isoformat()
        elif field.name == "supersedes":
            value = list(value)
        elif field.name == "properties":
            value = _tag_tuples(dict(value))
        record[field.name] = value
    try:
        properties = json.dumps(dict(hazard.properties), sort_keys=True)
        record_json = json.dumps(record, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"hazard {hazard.hazard_id}: properties must be JSON values ({exc})"
        ) from exc
    geometry = None if hazard.geometry is None else shapely.to_wkb(hazard.geometry)
    return {
        "hazard_id": hazard.hazard_id, "source": hazard.source, "event": hazard.event,
        "category": hazard.category, "severity": hazard.severity, "urgency": hazard.urgency,
        "certainty": hazard.certainty, "status": hazard.status,
        "message_type": hazard.message_type,
        **{name: getattr(hazard, name) for name in _TIME_FIELDS},
        "headline": hazard.headline, "area_desc": hazard.area_desc, "url": hazard.url,
        "geometry_wkb": geometry, "geometry_method": hazard.geometry_method,
        "center_lon": hazard.center_lon, "center_lat": hazard.center_lat,
        "radius_km": hazard.radius_km, "properties": properties, "record": record_json,
        "stored_at": stored_at, "first_seen": None,
    }


def hazard_from_row(record_json: str, geometry_wkb: bytes | None) -> Hazard:
    """The Hazard a ``hazards`` row holds (equal to the one stored)."""
    record = json.loads(record_json)
    for name in _TIME_FIELDS:
        if record.get(name) is not None:
            record[name] = datetime.fromisoformat(record[name]).astimezone(timezone.utc)
    record["supersedes"] = tuple(record.get("supersedes", ()))
    record["properties"] = _untag_tuples(record.get("properties", {}))
    known = {field.name for field in dataclasses.fields(Hazard)}
    values = {key: value for key, value in record.items() if key in known}
    values["geometry"] = None if geometry_wkb is None else shapely.from_wkb(bytes(geometry_wkb))
    return Hazard(**values)


def _check_snapshot(source: str, items: Sequence[Hazard]) -> None:
    seen: set[str] = set()
    for index, hazard in enumerate(items):
        if not isinstance(hazard, Hazard):
            raise ValueError(f"hazards[{index}] must be a Hazard, got {type(hazard).__name__}")
        if hazard.source != source:
            raise ValueError(f"hazards[{index}] ({hazard.hazard_id}) belongs to source "
                             f"{hazard.source!r}, not {source!r}")
        if len(hazard.hazard_id) > MAX_HAZARD_ID_CHARS:
            raise ValueError(f"hazards[{index}]: hazard_id longer than {MAX_HAZARD_ID_CHARS} "
                             f"characters: {hazard.hazard_id[:60]}...")
        if hazard.hazard_id in seen:
            raise ValueError(f"hazards[{index}]: duplicate hazard_id {hazard.hazard_id}")
        seen.add(hazard.hazard_id)


# --------------------------------------------------------------------------- writes


class _LiveDataExists(Exception):
    """Rolls a recorded replay back: the source has had a live success meanwhile."""


def _prepare(source: str, items: Iterable[Hazard], now: datetime) -> list[dict[str, Any]]:
    _require_aware("now", now)
    if source not in SOURCE_NAMES:
        raise ValueError(f"source must be one of {', '.join(SOURCE_NAMES)}; got {source!r}")
    snapshot = list(items)
    _check_snapshot(source, snapshot)
    return [hazard_to_row(hazard, stored_at=now) for hazard in snapshot]


def _swap_rows(connection: sa.Connection, source: str, rows: list[dict[str, Any]]) -> None:
    connection.execute(hazards.delete().where(hazards.c.source == source))
    if rows:
        connection.execute(hazards.insert(), rows)


def _first_seen(connection: sa.Connection, source: str, rows: list[dict[str, Any]],
                supersedes: list[tuple[str, ...]], now: datetime) -> None:
    """Set each live row's ``first_seen``: kept from the stored row with the same id, else
    inherited from the hazards it supersedes (an updated alert is not a new incident), else
    ``now`` -- unless the source never had a live poll, whose first findings were there
    before anyone watched (NULL: never announced as new)."""
    known = dict(connection.execute(
        sa.select(hazards.c.hazard_id, hazards.c.first_seen).where(hazards.c.source == source)
    ).all())
    watched = connection.execute(
        sa.select(health_table.c.last_success).where(health_table.c.source == source,
                                                     health_table.c.recorded.is_(False))
    ).scalar() is not None
    for row, previous in zip(rows, supersedes, strict=True):
        if row["hazard_id"] in known:
            row["first_seen"] = _utc(known[row["hazard_id"]])
            continue
        earlier = [known[h] for h in previous if h in known]
        if earlier:
            row["first_seen"] = None if None in earlier else min(_utc(t) for t in earlier)
        else:
            row["first_seen"] = now if watched else None


def replace_hazards(
    engine: Engine,
    source: str,
    items: Iterable[Hazard],
    *,
    now: datetime,
    skipped: int = 0,
    unplaced: int = 0,
    validators: Validators | None = None,
    clock_skew_s: float | None = None,
    expiry_lag_s: float = 0.0,
) -> int:
    """Store ``items`` as ``source``'s whole snapshot from a fresh live poll, in one transaction.

    The health row says "fresh": last success and data date ``now``, error cleared, the
    snapshot no longer recorded, ``validators`` kept for the next conditional request, the
    measured clock skew and the expiry lag its hazards are judged with (:mod:`feeds.clock`).
    Returns the number of hazards stored. Any failure rolls everything back.
    """
    if expiry_lag_s < 0:
        raise ValueError(f"expiry_lag_s must be >= 0 (behind our clock), got {expiry_lag_s}")
    snapshot = list(items)
    rows = _prepare(source, snapshot, now)
    health: dict[str, Any] = {
        "last_attempt": now, "last_success": now, "last_outcome": "fresh", "last_error": None,
        "consecutive_failures": 0, "item_count": len(rows), "skipped": int(skipped),
        "unplaced": int(unplaced), "data_as_of": now, "recorded": False, "recorded_at": None,
        "validator_key": None if validators is None else validators.key,
        "etag": None if validators is None else validators.etag,
        "last_modified": None if validators is None else validators.last_modified,
        "clock_skew_s": clock_skew_s, "expiry_lag_s": float(expiry_lag_s),
    }
    with engine.begin() as connection:
        _first_seen(connection, source, rows, [tuple(h.supersedes) for h in snapshot], now)
        _swap_rows(connection, source, rows)
        _upsert(connection, health_table, {"source": source, **health}, health)
    logger.info("%s: stored %d hazard(s)", source, len(rows))
    return len(rows)


def store_recorded(
    engine: Engine,
    source: str,
    items: Iterable[Hazard],
    *,
    now: datetime,
    recorded_at: datetime,
    skipped: int = 0,
    unplaced: int = 0,
) -> bool:
    """Store a bundled recording as ``source``'s snapshot, labelled recorded and dated
    ``recorded_at`` (its original date); the live poll history is left alone.

    Only a source that never had a live success gets one: if a live poll succeeded, even
    concurrently, nothing changes and False is returned.
    """
    _require_aware("recorded_at", recorded_at)
    rows = _prepare(source, items, now)
    health: dict[str, Any] = {
        "item_count": len(rows), "skipped": int(skipped), "unplaced": int(unplaced),
        "data_as_of": recorded_at, "recorded": True, "recorded_at": recorded_at,
        "validator_key": None, "etag": None, "last_modified": None,
        "clock_skew_s": None, "expiry_lag_s": None,
    }
    try:
        with engine.begin() as connection:
            _swap_rows(connection, source, rows)
            dialect = connection.dialect.name
            insert = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(health_table)
            result = connection.execute(
                insert.values(**{**_HEALTH_DEFAULTS, "source": source, **health})
                .on_conflict_do_update(index_elements=["source"], set_=health,
                                       where=health_table.c.last_success.is_(None))
                .returning(health_table.c.source)
            )
            if result.first() is None:  # the row exists with a live success: roll back
                raise _LiveDataExists
    except _LiveDataExists:
        logger.info("%s: has live data, recorded snapshot not stored", source)
        return False
    logger.info("%s: stored %d recorded hazard(s)", source, len(rows))
    return True


def record_poll(
    engine: Engine, source: str, *, now: datetime, outcome: Outcome, reason: str | None = None,
    clock_skew_s: float | None = None,
) -> None:
    """Record a poll that stored nothing: "not_modified" (data confirmed current; the clock
    skew measured on the answer kept) or "failed" (``reason`` kept; the snapshot, its date and
    its clock stay as they were)."""
    _require_aware("now", now)
    if outcome not in ("not_modified", "failed"):
        raise ValueError(f"outcome must be not_modified or failed, got {outcome!r} "
                         f"(a fresh poll stores its snapshot with replace_hazards)")
    if outcome == "failed":
        error = (reason or "failed")[:MAX_ERROR_CHARS]
        update: dict[str, Any] = {
            "last_attempt": now, "last_outcome": "failed", "last_error": error,
            "consecutive_failures": health_table.c.consecutive_failures + 1,
        }
        insert = {**_HEALTH_DEFAULTS, "source": source, "last_attempt": now,
                  "last_outcome": "failed", "last_error": error, "consecutive_failures": 1}
    else:
        update = {"last_attempt": now, "last_success": now, "last_outcome": "not_modified",
                  "last_error": None, "consecutive_failures": 0, "data_as_of": now,
                  "clock_skew_s": clock_skew_s}
        insert = {**_HEALTH_DEFAULTS, "source": source, **update}
    with engine.begin() as connection:
        _upsert(connection, health_table, insert, update)


# --------------------------------------------------------------------------- reads


def _health_rows(connection: sa.Connection) -> dict[str, dict[str, Any]]:
    rows = connection.execute(sa.select(health_table)).mappings().all()
    out = {}
    for row in rows:
        found = dict(row)
        for name in ("last_attempt", "last_success", "data_as_of", "recorded_at"):
            found[name] = _utc(found[name])
        out[found["source"]] = found
    return out


def load_validators(engine: Engine, source: str) -> Validators | None:
    """The validators of ``source``'s stored live snapshot, if it has any."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(health_table.c.validator_key, health_table.c.etag,
                      health_table.c.last_modified).where(health_table.c.source == source)
        ).first()
    if row is None or row.validator_key is None or (row.etag is None and
                                                    row.last_modified is None):
        return None
    return Validators(key=row.validator_key, etag=row.etag, last_modified=row.last_modified)


def hazards_stamp(engine: Engine) -> tuple[Any, ...]:
    """A cheap value that changes whenever any source's stored snapshot changes.

    Per source: row count and the oldest and newest ``stored_at`` (every swap writes one poll
    time to all its rows), plus the recorded label and the expiry lag. Caches of what is
    derived from the hazards (impact pairs, display shapes) are keyed by it, so a reader never
    rebuilds them per request.
    """
    query = sa.select(hazards.c.source, sa.func.count(), sa.func.min(hazards.c.stored_at),
                      sa.func.max(hazards.c.stored_at)).group_by(hazards.c.source)
    labels = sa.select(health_table.c.source, health_table.c.recorded,
                       health_table.c.recorded_at, health_table.c.expiry_lag_s)
    with engine.connect() as connection:
        rows = sorted(tuple(_utc(v) if isinstance(v, datetime) else v for v in row)
                      for row in connection.execute(query).all())
        recorded = sorted(tuple(_utc(v) if isinstance(v, datetime) else v for v in row)
                          for row in connection.execute(labels).all())
    return tuple(rows), tuple(recorded)


def first_seen_times(engine: Engine) -> dict[str, datetime | None]:
    """Hazard id -> when a live poll first listed it (None: recorded, or there from the
    source's first poll)."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(hazards.c.hazard_id, hazards.c.first_seen)).all()
    return {hazard_id: _utc(seen) for hazard_id, seen in rows}


def load_hazards(
    engine: Engine, *, now: datetime, include_expired: bool = False,
    sources: Sequence[str] | None = None,
) -> list[Hazard]:
    """The stored hazards, by source and id; by default only those active at ``now``.

    A recorded snapshot is judged on its own clock: its hazards count as active if they were
    active at the recording's original date (they are labelled recorded by feed_health). A
    live source measured behind our clock is judged at ``now`` minus its expiry lag.
    """
    _require_aware("now", now)
    query = sa.select(hazards.c.source, hazards.c.record, hazards.c.geometry_wkb).order_by(
        hazards.c.source, hazards.c.hazard_id)
    if sources is not None:
        query = query.where(hazards.c.source.in_(list(sources)))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        health = _health_rows(connection) if not include_expired else {}
    now_utc = now.astimezone(timezone.utc)
    out = []
    for row in rows:
        hazard = hazard_from_row(row.record, row.geometry_wkb)
        if not include_expired:
            info = health.get(row.source)
            clock = now_utc
            if info is not None and info["recorded"] and info["recorded_at"] is not None:
                clock = info["recorded_at"]
            elif info is not None and info.get("expiry_lag_s"):
                clock = now_utc - timedelta(seconds=info["expiry_lag_s"])
            if not hazard.active(clock):
                continue
        out.append(hazard)
    return out


def feed_health(engine: Engine, *, now: datetime, settings: Settings) -> list[FeedHealth]:
    """Every registered source (then any other stored one), with data age and staleness."""
    _require_aware("now", now)
    now_utc = now.astimezone(timezone.utc)
    with engine.connect() as connection:
        stored = _health_rows(connection)
    names = list(SOURCE_NAMES) + sorted(set(stored) - set(SOURCE_NAMES))
    out = []
    for name in names:
        row = stored.get(name, {"source": name, **_HEALTH_DEFAULTS})
        interval = interval_s(name, settings)
        last_success = row.get("last_success")
        if last_success is None:
            stale = True
        elif interval is None:
            stale = False
        else:
            limit = timedelta(seconds=settings.feed_stale_factor * interval)
            stale = now_utc - last_success > limit
        data_as_of = row.get("data_as_of")
        out.append(FeedHealth(
            source=name, interval_s=interval,
            last_attempt=row.get("last_attempt"), last_success=last_success,
            last_outcome=row.get("last_outcome"), last_error=row.get("last_error"),
            consecutive_failures=int(row["consecutive_failures"]),
            item_count=int(row["item_count"]), skipped=int(row["skipped"]),
            unplaced=int(row["unplaced"]), data_as_of=data_as_of,
            data_age=None if data_as_of is None else now_utc - data_as_of,
            stale=stale, recorded=bool(row["recorded"]), recorded_at=row.get("recorded_at"),
            clock_skew=None if row.get("clock_skew_s") is None
            else timedelta(seconds=row["clock_skew_s"]),
            expiry_lag=timedelta(seconds=row.get("expiry_lag_s") or 0.0),
        ))
    return out


# --------------------------------------------------------------------------- cache


def _cache_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty string, got {key!r}")
    if len(key) <= MAX_CACHE_KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


class StoreCache:
    """The :class:`feeds.base.Cache` protocol on the ``feed_cache`` table (survives restarts)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, key: str, *, max_age_s: float, now: datetime) -> bytes | None:
        """The value under ``key`` if it was stored no more than ``max_age_s`` before ``now``."""
        _require_aware("now", now)
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(feed_cache.c.value, feed_cache.c.stored_at)
                .where(feed_cache.c.key == _cache_key(key))
            ).first()
        if row is None:
            return None
        stored_at = _utc(row.stored_at)
        assert stored_at is not None  # the column is NOT NULL
        if (now - stored_at).total_seconds() > max_age_s:
            return None
        return bytes(row.value)

    def put(self, key: str, value: bytes, *, now: datetime) -> None:
        """Store ``value`` under ``key`` (replacing any older value), dated ``now``."""
        _require_aware("now", now)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ValueError(f"value must be bytes, got {type(value).__name__}")
        data = bytes(value)
        with self.engine.begin() as connection:
            _upsert(connection, feed_cache,
                    {"key": _cache_key(key), "value": data, "stored_at": now},
                    {"value": data, "stored_at": now})

    def prune(self, *, now: datetime, max_age_s: float = CACHE_KEEP_S) -> int:
        """Delete entries stored more than ``max_age_s`` before ``now``; returns how many."""
        _require_aware("now", now)
        cutoff = now - timedelta(seconds=max_age_s)
        with self.engine.begin() as connection:
            result = connection.execute(feed_cache.delete().where(feed_cache.c.stored_at < cutoff))
        removed = max(result.rowcount, 0)
        logger.info("feed cache: %d old entr(ies) removed", removed)
        return removed
