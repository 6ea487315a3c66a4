"""Outreach boards, their targets and the append-only history of status updates.

A board is opened for one incident or several (their hazard ids). Every status update is a new
row of ``outreach_events``; nothing is ever updated or deleted (the database refuses it). A
target's status is its latest event.

**No update is lost or silently overwritten.** Each event records the event it follows
(``previous_event_id``, 0 for the first), and the database allows one successor per event. A
writer that names the event it saw (``expected_event_id``) is told, with
:class:`OutreachConflict`, when someone else updated the target in between; a writer that
names none (an API client logging a call attempt) is appended after whatever is latest. A
``request_id`` makes a retried request idempotent: the second time, the event stored the first
time is returned and nothing new is written.

Errors: :class:`OutreachConflict` (a ``ValueError``), :class:`BoardNotFound` (a ``KeyError``),
``ValueError`` for bad arguments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from layers.outreach import MAX_NOTE_CHARS, check_status, check_target
from store import StoreError
from store.db import record_audit
from store.tables import outreach_boards, outreach_events, outreach_targets

logger = logging.getLogger(__name__)

MAX_HAZARDS_PER_BOARD = 25
BOARD_LOCK_SPACE = 0x4D57  # PostgreSQL advisory lock space of board openings ("MW")
MAX_REQUEST_ID_CHARS = 64
_APPEND_RETRIES = 50


class OutreachConflict(StoreError, ValueError):
    """Someone updated the target after the writer last saw it; nothing was written."""

    def __init__(self, current: Event) -> None:
        self.current = current
        super().__init__(
            f"{current.target_kind} {current.target_id} was updated by {current.actor} at "
            f"{current.at:%H:%M:%S} UTC ({current.status}); nothing was saved. Look at "
            f"their update, then record yours again if it still applies.")


class BoardNotFound(StoreError, KeyError):
    """No such outreach board."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclasses.dataclass(frozen=True)
class Board:
    board_id: int
    name: str
    hazard_ids: tuple[str, ...]
    created_at: datetime
    created_by: str
    exercise: bool
    closed_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["hazard_ids"] = list(self.hazard_ids)
        for name in ("created_at", "closed_at"):
            out[name] = None if out[name] is None else out[name].isoformat()
        return out


@dataclasses.dataclass(frozen=True)
class Event:
    event_id: int
    board_id: int
    target_kind: str
    target_id: str
    previous_event_id: int
    status: str
    note: str
    actor: str
    at: datetime
    request_id: str | None

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["at"] = self.at.isoformat()
        return out


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else \
        value.astimezone(timezone.utc)


def _aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def selection_key(hazard_ids: Iterable[str]) -> str:
    """The same set of hazards, in any order, gives the same key (one board per selection)."""
    ids = sorted(set(hazard_ids))
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def _board(row: Any) -> Board:
    return Board(board_id=int(row.board_id), name=row.name,
                 hazard_ids=tuple(json.loads(row.hazard_ids)),
                 created_at=_utc(row.created_at), created_by=row.created_by,
                 exercise=bool(row.exercise), closed_at=_utc(row.closed_at))


def _event(row: Any) -> Event:
    return Event(event_id=int(row.event_id), board_id=int(row.board_id),
                 target_kind=row.target_kind, target_id=row.target_id,
                 previous_event_id=int(row.previous_event_id), status=row.status,
                 note=row.note, actor=row.actor, at=_utc(row.at), request_id=row.request_id)


def open_board(engine: Engine, hazard_ids: Sequence[str], *, name: str, actor: str,
               now: datetime, exercise: bool = False) -> tuple[Board, bool]:
    """The open board for exactly these hazards, or a new one: (board, created).

    Opening is audited (``outreach.board``). Live and exercise boards never share.
    """
    _aware("now", now)
    ids = list(dict.fromkeys(str(h) for h in hazard_ids))
    if not ids or len(ids) > MAX_HAZARDS_PER_BOARD:
        raise ValueError(f"a board covers 1 to {MAX_HAZARDS_PER_BOARD} hazards, got {len(ids)}")
    name = (name or "").strip()[:200] or ", ".join(ids)[:200]
    key = selection_key(ids)
    with engine.begin() as connection:
        _serialize_opening(connection, key)
        existing = connection.execute(
            sa.select(outreach_boards).where(
                outreach_boards.c.selection == key, outreach_boards.c.exercise == exercise,
                outreach_boards.c.closed_at.is_(None)).order_by(outreach_boards.c.board_id)
        ).first()
        if existing is not None:
            return _board(existing), False
        board_id = connection.execute(outreach_boards.insert().values(
            name=name, hazard_ids=json.dumps(ids), selection=key, created_at=now,
            created_by=actor, exercise=exercise, closed_at=None)).inserted_primary_key[0]
        record_audit(connection, actor, "outreach.board", {
            "board_id": int(board_id), "hazards": ids, "exercise": exercise}, now)
        row = connection.execute(sa.select(outreach_boards).where(
            outreach_boards.c.board_id == board_id)).one()
    logger.info("outreach board %s opened for %d hazard(s)", board_id, len(ids))
    return _board(row), True


def _serialize_opening(connection: sa.Connection, key: str) -> None:
    """Make "find the open board, else open one" one step per selection: coordinators on
    several workers starting outreach for the same incidents at once get one board. PostgreSQL:
    a transaction lock on the selection; SQLite: the database's write lock, taken up front."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                           {"space": BOARD_LOCK_SPACE, "key": key})
    else:  # a write (of nothing) makes SQLite take its write lock before the read
        connection.execute(outreach_boards.update().where(sa.false()).values(name=""))


def get_board(engine: Engine, board_id: int) -> Board:
    with engine.connect() as connection:
        row = connection.execute(sa.select(outreach_boards).where(
            outreach_boards.c.board_id == int(board_id))).first()
    if row is None:
        raise BoardNotFound(f"no outreach board {board_id}")
    return _board(row)


def list_boards(engine: Engine, *, exercise: bool | None = False,
                include_closed: bool = False) -> list[Board]:
    """Boards, newest first; live ones only by default (``exercise=None``: both)."""
    query = sa.select(outreach_boards).order_by(outreach_boards.c.board_id.desc())
    if exercise is not None:
        query = query.where(outreach_boards.c.exercise == exercise)
    if not include_closed:
        query = query.where(outreach_boards.c.closed_at.is_(None))
    with engine.connect() as connection:
        return [_board(r) for r in connection.execute(query).all()]


def add_targets(engine: Engine, board_id: int, targets: Iterable[tuple[str, str]], *,
                now: datetime) -> int:
    """Record targets not seen before on this board (first seen ``now``); returns how many
    were new. Safe to call concurrently: a target is recorded once."""
    _aware("now", now)
    rows = [{"board_id": int(board_id), "target_kind": k, "target_id": t, "first_seen_at": now}
            for k, t in dict.fromkeys(check_target(k, t) for k, t in targets)]
    if not rows:
        return 0
    with engine.begin() as connection:
        known = {(r.target_kind, r.target_id) for r in connection.execute(
            sa.select(outreach_targets.c.target_kind, outreach_targets.c.target_id).where(
                outreach_targets.c.board_id == int(board_id))).all()}
        fresh = [r for r in rows if (r["target_kind"], r["target_id"]) not in known]
        if fresh:
            insert = (postgresql.insert if connection.dialect.name == "postgresql"
                      else sqlite.insert)(outreach_targets)
            connection.execute(insert.on_conflict_do_nothing(), fresh)
    return len(fresh)


def first_seen(engine: Engine, board_id: int) -> pd.DataFrame:
    """target_kind, target_id, first_seen_at of every target the board has had."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(
            outreach_targets.c.target_kind, outreach_targets.c.target_id,
            outreach_targets.c.first_seen_at).where(
                outreach_targets.c.board_id == int(board_id))).all()
    # plain tuples: pandas probes every SQLAlchemy Row for fields (12x slower at 65,000 rows)
    frame = pd.DataFrame([tuple(r) for r in rows],
                         columns=["target_kind", "target_id", "first_seen_at"])
    frame["first_seen_at"] = pd.to_datetime(frame["first_seen_at"], utc=True)
    return frame


def _latest_event(connection: sa.Connection, board_id: int, kind: str,
                  target_id: str) -> Any:
    return connection.execute(
        sa.select(outreach_events).where(
            outreach_events.c.board_id == board_id, outreach_events.c.target_kind == kind,
            outreach_events.c.target_id == target_id,
        ).order_by(outreach_events.c.event_id.desc()).limit(1)).first()


def _by_request(connection: sa.Connection, board_id: int, request_id: str) -> Any:
    return connection.execute(sa.select(outreach_events).where(
        outreach_events.c.board_id == board_id,
        outreach_events.c.request_id == request_id)).first()


def record_status(
    engine: Engine, board_id: int, target_kind: str, target_id: str, status: str, *,
    note: str = "", actor: str, now: datetime, expected_event_id: int | None = None,
    request_id: str | None = None,
) -> tuple[Event, bool]:
    """Append a status update: (the event, whether it was written now).

    ``expected_event_id``: the target's latest event id the writer saw (0: none yet). If the
    target has moved on since, :class:`OutreachConflict` is raised and nothing is written.
    ``request_id``: if an event with it exists on this board, it is returned (written=False).
    """
    _aware("now", now)
    check_target(target_kind, target_id)
    check_status(status)
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(f"note must be at most {MAX_NOTE_CHARS} characters, got {len(note)}")
    if request_id is not None and not (0 < len(request_id) <= MAX_REQUEST_ID_CHARS):
        raise ValueError(f"request_id must be 1 to {MAX_REQUEST_ID_CHARS} characters")
    if expected_event_id is not None and expected_event_id < 0:
        raise ValueError("expected_event_id must be >= 0 (0: no update seen yet)")
    board_id = int(board_id)
    board = get_board(engine, board_id)
    if board.closed_at is not None:
        raise ValueError(f"outreach board {board_id} is closed")
    attempts = 0
    for _ in range(_APPEND_RETRIES):
        try:
            with _writer(engine), engine.begin() as connection:
                if request_id is not None:
                    done = _by_request(connection, board_id, request_id)
                    if done is not None:
                        return _event(done), False
                latest = _latest_event(connection, board_id, target_kind, target_id)
                previous = 0 if latest is None else int(latest.event_id)
                if expected_event_id is not None and expected_event_id != previous:
                    raise OutreachConflict(_event(latest)) if latest is not None else \
                        ValueError(f"expected_event_id {expected_event_id} does not exist for "
                                   f"{target_kind} {target_id}")
                event_id = connection.execute(outreach_events.insert().values(
                    board_id=board_id, target_kind=target_kind, target_id=target_id,
                    previous_event_id=previous, status=status, note=note, actor=actor, at=now,
                    request_id=request_id)).inserted_primary_key[0]
                row = connection.execute(sa.select(outreach_events).where(
                    outreach_events.c.event_id == event_id)).one()
                return _event(row), True
        except IntegrityError:
            # Another writer appended after the same event (or used the same request id) in
            # the meantime. Re-read: a request id now present is answered; an expectation is
            # now a conflict; a blind append goes after the new latest event.
            continue
        except OperationalError as exc:
            # SQLite: a read transaction that sees another writer commit cannot upgrade to a
            # write (SQLITE_BUSY, not covered by the busy timeout); start again, a bit later.
            if "locked" not in str(exc.orig).lower() and "busy" not in str(exc.orig).lower():
                raise
            attempts += 1
            time.sleep(min(0.2, 0.005 * 2 ** min(attempts, 6)))
            continue
    raise StoreError(f"could not append to {target_kind} {target_id} after "
                     f"{_APPEND_RETRIES} tries: too many concurrent updates")


_SQLITE_WRITERS = threading.Lock()


def _writer(engine: Engine) -> Any:
    """SQLite allows one writer at a time: writers of this process take turns here rather than
    in SQLite's busy handler, where an unlucky one can wait out the whole busy timeout."""
    return _SQLITE_WRITERS if engine.dialect.name == "sqlite" else contextlib.nullcontext()


def latest_statuses(engine: Engine, board_id: int) -> pd.DataFrame:
    """One row per target with events: target_kind, target_id, status, note, actor, at,
    event_id, updates (how many events), first_contact_at (first attempt or reach)."""
    events = history(engine, board_id)
    columns = ["target_kind", "target_id", "status", "note", "actor", "at", "event_id",
               "updates", "first_contact_at"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    key = ["target_kind", "target_id"]
    last = events.sort_values("event_id").groupby(key, sort=False).tail(1).set_index(key)
    counts = events.groupby(key).size().rename("updates")
    contacted = events[events["status"] != "not_contacted"].groupby(key)["at"].min().rename(
        "first_contact_at")
    out = last.join(counts).join(contacted).reset_index()
    return out.loc[:, columns]


def latest_status_codes(engine: Engine, board_id: int) -> list[tuple[str, str, str]]:
    """(target_kind, target_id, status) of every target of the board with an event: its
    latest status, in one query (for counts; :func:`latest_statuses` has the details)."""
    events = outreach_events
    latest = (sa.select(sa.func.max(events.c.event_id).label("event_id"))
              .where(events.c.board_id == int(board_id))
              .group_by(events.c.target_kind, events.c.target_id).subquery())
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.target_kind, events.c.target_id, events.c.status)
            .join(latest, events.c.event_id == latest.c.event_id)).all()
    return [tuple(row) for row in rows]


def history(engine: Engine, board_id: int, target: tuple[str, str] | None = None,
            *, after_event_id: int = 0) -> pd.DataFrame:
    """Every event of a board (or one target), oldest first; only those after
    ``after_event_id`` when given."""
    query = sa.select(outreach_events).where(outreach_events.c.board_id == int(board_id))
    if after_event_id:
        query = query.where(outreach_events.c.event_id > int(after_event_id))
    if target is not None:
        kind, target_id = check_target(*target)
        query = query.where(outreach_events.c.target_kind == kind,
                            outreach_events.c.target_id == target_id)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(outreach_events.c.event_id)).all()
    frame = pd.DataFrame([dataclasses.asdict(_event(r)) for r in rows],
                         columns=[f.name for f in dataclasses.fields(Event)])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def board_version(engine: Engine, board_id: int) -> tuple[int, int, int]:
    """A cheap value that changes whenever the board's events or targets change."""
    with engine.connect() as connection:
        events = connection.execute(sa.select(
            sa.func.count(), sa.func.max(outreach_events.c.event_id)).where(
                outreach_events.c.board_id == int(board_id))).one()
        targets = connection.execute(sa.select(sa.func.count()).select_from(
            outreach_targets).where(outreach_targets.c.board_id == int(board_id))).scalar()
    return int(events[0]), int(events[1] or 0), int(targets or 0)


def close_board(engine: Engine, board_id: int, *, actor: str, now: datetime) -> Board:
    """Close a board (its history stays); audited. A new board can then be opened for the
    same hazards."""
    _aware("now", now)
    get_board(engine, board_id)
    with engine.begin() as connection:
        connection.execute(outreach_boards.update().where(
            outreach_boards.c.board_id == int(board_id),
            outreach_boards.c.closed_at.is_(None)).values(closed_at=now))
        record_audit(connection, actor, "outreach.close", {"board_id": int(board_id)}, now)
    return get_board(engine, board_id)
