"""Drills: scenario runs played on the map as EXERCISE, their clock and their history.

A drill keeps the scenario as JSON text as it was when the drill started (editing the library
never changes a running or past drill; the store never parses it). Its clock is kept as
events of the append-only ``drill_events`` (the database refuses UPDATE and DELETE): start
(with the first speed), pause, resume, speed and stop. The scenario minute reached is computed
from them by :mod:`layers.drillclock`, so a speed change never makes the clock jump, and a
stopped drill's clock is frozen. Injects are recorded as the dashboard sees them fire, once
per drill, for the after-action timeline.

States: ``running`` → ``paused`` → ``running`` ... → ``stopped`` (from either; final).
Several drills may run at once. Every change of a drill is audited (``drill.start``,
``drill.pause``, ``drill.resume``, ``drill.speed``, ``drill.stop``).

Errors::

    StoreError
     ├── DrillNotFound(StoreError, KeyError)        no drill with that id
     └── DrillStateError(StoreError, ValueError)    the drill's state does not allow it
                                                    (pausing a stopped drill...)
    bad arguments (empty name, speed outside 1..3600, naive datetimes) -> plain ValueError
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from layers import drillclock
from store import StoreError
from store.db import record_audit
from store.tables import drill_events as drill_events_table
from store.tables import drills

logger = logging.getLogger(__name__)

KINDS = ("scenario", "replay")
STATES = ("running", "paused", "stopped")
ACTIVE_STATES = ("running", "paused")
CLOCK_ACTIONS = ("start", "pause", "resume", "speed", "stop")
ACTIONS = (*CLOCK_ACTIONS, "inject")
MAX_NAME_CHARS = 200
MAX_SCENARIO_NAME_CHARS = 64
MAX_INJECT_ID_CHARS = 128
INJECT_ACTOR = "system:drill-clock"

__all__ = [
    "ACTIONS",
    "KINDS",
    "STATES",
    "Drill",
    "DrillEvent",
    "DrillNotFound",
    "DrillStateError",
    "drill_events",
    "drill_scenario_json",
    "drills_version",
    "get_drill",
    "list_drills",
    "pause_drill",
    "record_injects",
    "resume_drill",
    "running_drills",
    "set_speed",
    "start_drill",
    "stop_drill",
]


class DrillNotFound(StoreError, KeyError):
    """No drill with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DrillStateError(StoreError, ValueError):
    """The drill's state does not allow the change (e.g. pausing a stopped drill)."""

    def __init__(self, message: str, *, drill_id: int, state: str) -> None:
        super().__init__(message)
        self.drill_id = drill_id
        self.state = state


@dataclasses.dataclass(frozen=True)
class Drill:
    """A drill and its clock. ``speed`` is the speed now; ``initial_speed``, ``pauses`` and
    ``speed_changes`` are the clock's history. ``scenario_json`` is None when the query did
    not load it (:func:`running_drills`, :func:`list_drills`): it never changes, so read it
    once with :func:`drill_scenario_json` and keep it."""

    drill_id: int
    name: str
    scenario_name: str
    kind: str
    state: str
    speed: float
    started_at: datetime
    started_by: str
    stopped_at: datetime | None
    stopped_by: str | None
    initial_speed: float
    pauses: tuple[tuple[datetime, datetime | None], ...]
    speed_changes: tuple[tuple[datetime, float], ...]
    scenario_json: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def paused(self) -> bool:
        return self.state == "paused"

    @property
    def stopped(self) -> bool:
        return self.state == "stopped"

    @property
    def active(self) -> bool:
        """Running or paused: the dashboard shows EXERCISE while any drill is active."""
        return self.state in ACTIVE_STATES

    def elapsed_minutes(self, now: datetime) -> float:
        """Scenario minutes reached at ``now`` (frozen while paused and once stopped)."""
        return drillclock.elapsed_minutes(
            self.started_at, self.initial_speed, self.pauses, now, self.stopped_at,
            speed_changes=self.speed_changes)

    def wall_time_of(self, elapsed_minutes: float, now: datetime) -> datetime | None:
        """When scenario minute ``elapsed_minutes`` was reached, or will be at the current
        speed; None if not reached yet while paused or stopped."""
        return drillclock.wall_time_of(
            elapsed_minutes, self.started_at, self.initial_speed, self.pauses, now,
            stopped_at=self.stopped_at, speed_changes=self.speed_changes)

    def scenario(self) -> dict[str, Any]:
        """The scenario snapshot as JSON data (ValueError if it was not loaded)."""
        if self.scenario_json is None:
            raise ValueError(f"drill {self.drill_id} was read without its scenario; use "
                             "get_drill or drill_scenario_json")
        data: dict[str, Any] = json.loads(self.scenario_json)
        return data

    def as_json(self, now: datetime | None = None) -> dict[str, Any]:
        """The drill without its scenario text; with ``now``, also the scenario minutes."""
        out: dict[str, Any] = {
            "drill_id": self.drill_id, "name": self.name, "scenario_name": self.scenario_name,
            "kind": self.kind, "state": self.state, "speed": self.speed,
            "started_at": self.started_at.isoformat(), "started_by": self.started_by,
            "stopped_at": None if self.stopped_at is None else self.stopped_at.isoformat(),
            "stopped_by": self.stopped_by,
        }
        if now is not None:
            out["elapsed_minutes"] = round(self.elapsed_minutes(now), 3)
        return out


@dataclasses.dataclass(frozen=True)
class DrillEvent:
    event_id: int
    drill_id: int
    at: datetime
    action: str
    detail: dict[str, Any]
    actor: str
    inject_id: str | None

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["at"] = self.at.isoformat()
        return out


# --------------------------------------------------------------------------- helpers


def _stored(value: datetime) -> datetime:
    """A stored time as UTC-aware (SQLite gives it back naive)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
        value.astimezone(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else _stored(value)


def _aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)


def _text(name: str, value: Any, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValueError(f"{name} must not be empty")
    if len(text) > limit:
        raise ValueError(f"{name} must be at most {limit} characters, got {len(text)}")
    return text


def _event_columns() -> list[Any]:
    return [drill_events_table.c.event_id.label("clock_event_id"),
            drill_events_table.c.at.label("clock_at"),
            drill_events_table.c.action.label("clock_action"),
            drill_events_table.c.detail.label("clock_detail")]


def _drill_query(*, with_scenario: bool) -> sa.Select:
    """Drills with their clock events (one row per event, in order): one query."""
    columns = [c for c in drills.c if with_scenario or c.name != "scenario_json"]
    joined = drills.outerjoin(drill_events_table, sa.and_(
        drill_events_table.c.drill_id == drills.c.drill_id,
        drill_events_table.c.action.in_(CLOCK_ACTIONS)))
    return sa.select(*columns, *_event_columns()).select_from(joined)


def _drills_from_rows(rows: Iterable[Any]) -> list[Drill]:
    """Fold the joined rows (grouped by drill, events in order) into drills."""
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        grouped.setdefault(int(row.drill_id), []).append(row)
    return [_drill(group) for group in grouped.values()]


def _drill(rows: list[Any]) -> Drill:
    first = rows[0]
    initial_speed = float(first.speed)
    pauses: list[tuple[datetime, datetime | None]] = []
    changes: list[tuple[datetime, float]] = []
    for row in sorted((r for r in rows if r.clock_event_id is not None),
                      key=lambda r: r.clock_event_id):
        at = _stored(row.clock_at)
        detail = json.loads(row.clock_detail)
        if row.clock_action == "start":
            initial_speed = float(detail.get("speed", initial_speed))
        elif row.clock_action == "pause":
            pauses.append((at, None))
        elif row.clock_action == "resume" and pauses and pauses[-1][1] is None:
            pauses[-1] = (pauses[-1][0], at)
        elif row.clock_action == "speed":
            changes.append((at, float(detail["speed"])))
    started_at = _stored(first.started_at)
    return Drill(
        drill_id=int(first.drill_id), name=first.name, scenario_name=first.scenario_name,
        kind=first.kind, state=first.state, speed=float(first.speed), started_at=started_at,
        started_by=first.started_by, stopped_at=_utc(first.stopped_at),
        stopped_by=first.stopped_by, initial_speed=initial_speed, pauses=tuple(pauses),
        speed_changes=tuple(changes),
        scenario_json=first._mapping.get("scenario_json"))


def _load(connection: sa.Connection, drill_id: int, *, with_scenario: bool) -> Drill:
    rows = connection.execute(_drill_query(with_scenario=with_scenario).where(
        drills.c.drill_id == drill_id)).all()
    if not rows:
        raise DrillNotFound(f"no drill {drill_id}")
    return _drill(rows)


def _drill_id(drill_id: Any) -> int:
    if isinstance(drill_id, bool) or not isinstance(drill_id, int):
        raise ValueError(f"drill_id must be an integer, got {drill_id!r}")
    return drill_id


# --------------------------------------------------------------------------- reading


def get_drill(engine: Engine, drill_id: int) -> Drill:
    """One drill with its clock and scenario snapshot; :class:`DrillNotFound` if none."""
    with engine.connect() as connection:
        return _load(connection, _drill_id(drill_id), with_scenario=True)


def drill_scenario_json(engine: Engine, drill_id: int) -> str:
    """The drill's scenario snapshot (JSON text). It never changes: safe to cache by id."""
    with engine.connect() as connection:
        text = connection.execute(sa.select(drills.c.scenario_json).where(
            drills.c.drill_id == _drill_id(drill_id))).scalar()
    if text is None:
        raise DrillNotFound(f"no drill {drill_id}")
    return str(text)


def list_drills(engine: Engine, *, include_stopped: bool = True,
                with_scenario: bool = False) -> list[Drill]:
    """Drills, newest first (one query); without their scenario text unless asked."""
    query = _drill_query(with_scenario=with_scenario)
    if not include_stopped:
        query = query.where(drills.c.state.in_(ACTIVE_STATES))
    query = query.order_by(drills.c.drill_id.desc(), drill_events_table.c.event_id)
    with engine.connect() as connection:
        return _drills_from_rows(connection.execute(query).all())


def running_drills(engine: Engine, *, with_scenario: bool = False) -> list[Drill]:
    """Drills running or paused (what the EXERCISE banner shows), oldest first.

    One indexed query (drills by state, joined to their few clock events); with no drill
    running it returns no rows. The scenario text is left out unless asked."""
    query = _drill_query(with_scenario=with_scenario).where(
        drills.c.state.in_(ACTIVE_STATES)).order_by(drills.c.drill_id,
                                                   drill_events_table.c.event_id)
    with engine.connect() as connection:
        return _drills_from_rows(connection.execute(query).all())


def drill_events(engine: Engine, drill_id: int) -> list[DrillEvent]:
    """Every event of a drill, oldest first (the after-action timeline)."""
    drill_id = _drill_id(drill_id)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(drill_events_table).where(
            drill_events_table.c.drill_id == drill_id).order_by(
                drill_events_table.c.event_id)).all()
        if not rows and connection.execute(sa.select(drills.c.drill_id).where(
                drills.c.drill_id == drill_id)).first() is None:
            raise DrillNotFound(f"no drill {drill_id}")
    return [DrillEvent(event_id=int(r.event_id), drill_id=int(r.drill_id),
                       at=_stored(r.at), action=r.action, detail=json.loads(r.detail),
                       actor=r.actor, inject_id=r.inject_id) for r in rows]


def drills_version(engine: Engine) -> tuple[int, int]:
    """A cheap value that changes whenever any drill changes or records an inject (every
    write appends an event): (events, latest event id)."""
    with engine.connect() as connection:
        count, latest = connection.execute(sa.select(
            sa.func.count(), sa.func.max(drill_events_table.c.event_id))).one()
    return int(count), int(latest or 0)


# --------------------------------------------------------------------------- writing


def _append(connection: sa.Connection, drill_id: int, action: str, detail: dict[str, Any], *,
            actor: str, at: datetime) -> None:
    connection.execute(drill_events_table.insert().values(
        drill_id=drill_id, at=at, action=action, detail=json.dumps(detail, sort_keys=True),
        actor=actor, inject_id=None))


def start_drill(engine: Engine, *, scenario_name: str, scenario_json: str, name: str,
                speed: float, actor: str, now: datetime, kind: str = "scenario") -> Drill:
    """Start a drill of a scenario (its JSON text kept as it is now); audited
    (``drill.start``). Several drills may run at once."""
    now = _aware("now", now)
    name = _text("name", name, MAX_NAME_CHARS)
    scenario_name = _text("scenario_name", scenario_name, MAX_SCENARIO_NAME_CHARS)
    actor = _text("actor", actor, 200)
    speed = drillclock.check_speed(speed)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(scenario_json, str):
        raise ValueError("scenario_json must be the scenario as JSON text")
    try:
        data = json.loads(scenario_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"scenario_json is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("scenario_json must be a JSON object (the scenario's GeoJSON)")
    with engine.begin() as connection:
        drill_id = int(connection.execute(drills.insert().values(
            name=name, scenario_name=scenario_name, scenario_json=scenario_json, kind=kind,
            speed=speed, started_at=now, started_by=actor, stopped_at=None, stopped_by=None,
            state="running")).inserted_primary_key[0])
        _append(connection, drill_id, "start", {
            "scenario_name": scenario_name, "kind": kind, "speed": speed,
            "elapsed_minutes": 0.0}, actor=actor, at=now)
        record_audit(connection, actor, "drill.start", {
            "drill_id": drill_id, "name": name, "scenario": scenario_name, "kind": kind,
            "speed": speed}, now)
        drill = _load(connection, drill_id, with_scenario=True)
    logger.info("drill %s started (scenario %s, speed %s)", drill_id, scenario_name, speed)
    return drill


def _refusal(drill: Drill, verb: str) -> DrillStateError:
    where = f"drill {drill.drill_id} ({drill.name})"
    if drill.stopped:
        when = "" if drill.stopped_at is None else \
            f" at {drill.stopped_at:%Y-%m-%d %H:%M} UTC by {drill.stopped_by}"
        message = f"{where} was stopped{when}; a stopped drill cannot be {verb}"
        if verb == "resumed":
            message += " (start a new drill instead)"
    elif verb == "paused":
        message = f"{where} is already paused"
    elif verb == "resumed":
        message = f"{where} is running, not paused"
    else:
        message = f"{where} is {drill.state}; it cannot be {verb}"
    return DrillStateError(message, drill_id=drill.drill_id, state=drill.state)


def _change(engine: Engine, drill_id: int, *, action: str, verb: str, allowed: tuple[str, ...],
            values: dict[str, Any], actor: str, now: datetime,
            extra: dict[str, Any] | None = None) -> Drill:
    """Move a drill to a new state in one transaction: a conditional UPDATE (so two people
    pausing at once cannot both succeed), the event, the audit row."""
    drill_id = _drill_id(drill_id)
    now = _aware("now", now)
    actor = _text("actor", actor, 200)
    with engine.begin() as connection:
        changed = connection.execute(drills.update().where(
            drills.c.drill_id == drill_id, drills.c.state.in_(allowed)).values(**values))
        before = _load(connection, drill_id, with_scenario=False)  # DrillNotFound if none
        if changed.rowcount == 0:
            raise _refusal(before, verb)
        latest = max([before.started_at, *(p for pause in before.pauses for p in pause if p),
                      *(at for at, _ in before.speed_changes)])
        if now < latest:
            raise ValueError(f"now ({now.isoformat()}) is before drill {drill_id}'s last "
                             f"change ({latest.isoformat()})")
        elapsed = round(before.elapsed_minutes(now), 3)
        detail = {"elapsed_minutes": elapsed, **(extra or {})}
        _append(connection, drill_id, action, detail, actor=actor, at=now)
        record_audit(connection, actor, f"drill.{action}", {"drill_id": drill_id, **detail},
                     now)
        drill = _load(connection, drill_id, with_scenario=True)
    logger.info("drill %s: %s at scenario minute %.1f", drill_id, action, elapsed)
    return drill


def pause_drill(engine: Engine, drill_id: int, *, actor: str, now: datetime) -> Drill:
    """Pause a running drill (its clock stops); audited (``drill.pause``)."""
    return _change(engine, drill_id, action="pause", verb="paused", allowed=("running",),
                   values={"state": "paused"}, actor=actor, now=now)


def resume_drill(engine: Engine, drill_id: int, *, actor: str, now: datetime) -> Drill:
    """Resume a paused drill from the scenario minute it was paused at; audited."""
    return _change(engine, drill_id, action="resume", verb="resumed", allowed=("paused",),
                   values={"state": "running"}, actor=actor, now=now)


def set_speed(engine: Engine, drill_id: int, speed: float, *, actor: str,
              now: datetime) -> Drill:
    """Change a running or paused drill's speed from ``now`` on (the minutes reached so far
    stay); audited (``drill.speed``). The same speed again changes nothing."""
    speed = drillclock.check_speed(speed)
    current = get_drill(engine, drill_id)
    if current.active and current.speed == speed:
        return current
    return _change(engine, drill_id, action="speed", verb="given a new speed",
                   allowed=ACTIVE_STATES, values={"speed": speed}, actor=actor, now=now,
                   extra={"speed": speed, "previous_speed": current.speed})


def stop_drill(engine: Engine, drill_id: int, *, actor: str, now: datetime) -> Drill:
    """Stop a running or paused drill for good (its clock freezes); audited."""
    now = _aware("now", now)
    return _change(engine, drill_id, action="stop", verb="stopped again",
                   allowed=ACTIVE_STATES,
                   values={"state": "stopped", "stopped_at": now, "stopped_by": actor},
                   actor=actor, now=now)


def record_injects(engine: Engine, drill_id: int,
                   inject_ids_with_elapsed: Iterable[tuple[str, float]],
                   now: datetime) -> list[str]:
    """Record injects as fired (id, scenario minute), once per drill; returns the ids recorded
    now. Safe to call on every refresh and from several processes at once: the database
    keeps one event per (drill, inject), and a call with nothing new writes nothing."""
    drill_id = _drill_id(drill_id)
    now = _aware("now", now)
    wanted: dict[str, float] = {}
    for item in inject_ids_with_elapsed:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError("inject_ids_with_elapsed must hold (inject_id, elapsed_minutes) "
                             f"pairs, got {item!r}")
        inject_id = _text("inject_id", item[0], MAX_INJECT_ID_CHARS)
        minute = item[1]
        if isinstance(minute, bool) or not isinstance(minute, (int, float)) or \
                not math.isfinite(minute) or minute < 0:
            raise ValueError(f"elapsed minutes of inject {inject_id!r} must be a finite "
                             f"number >= 0, got {minute!r}")
        wanted.setdefault(inject_id, float(minute))
    with engine.connect() as connection:
        if connection.execute(sa.select(drills.c.drill_id).where(
                drills.c.drill_id == drill_id)).first() is None:
            raise DrillNotFound(f"no drill {drill_id}")
        known = set(connection.execute(sa.select(drill_events_table.c.inject_id).where(
            drill_events_table.c.drill_id == drill_id,
            drill_events_table.c.inject_id.is_not(None))).scalars())
    fresh = [(i, m) for i, m in wanted.items() if i not in known]
    if not fresh:
        return []
    recorded = []
    with engine.begin() as connection:
        insert = (postgresql.insert if connection.dialect.name == "postgresql"
                  else sqlite.insert)(drill_events_table)
        for inject_id, minute in fresh:
            result = connection.execute(insert.values(
                drill_id=drill_id, at=now, action="inject", actor=INJECT_ACTOR,
                detail=json.dumps({"inject_id": inject_id, "elapsed_minutes": round(minute, 3)},
                                  sort_keys=True),
                inject_id=inject_id).on_conflict_do_nothing().returning(
                    drill_events_table.c.event_id))
            if result.first() is not None:  # nothing is returned when it was there already
                recorded.append(inject_id)
    if recorded:
        logger.info("drill %s: %d inject(s) recorded", drill_id, len(recorded))
    return recorded
