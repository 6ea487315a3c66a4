"""The JSON API under ``/api/v1``: incidents, feed health and outreach boards, for programs.

Every route is declared with its least role through :func:`dashboard.auth.declare_route`, so the
one gate decides who may call it, exactly as for pages: ``display`` gets counts only (no
personal data from any endpoint), ``coordinator`` gets affected missions and people and works
outreach boards. Callers authenticate with ``Authorization: Bearer <token>`` (an API token acts
as its user; a display token as the wall) or with the dashboard's session cookie.

* **CSRF.** The gate refuses POSTs from another origin. A POST authenticated by the session
  cookie must also carry an ``Origin`` header (same origin, checked by the gate) or an
  ``X-Requested-With`` header, which a cross-site form cannot send; bearer requests need
  neither (a browser never adds a bearer header by itself).
* **Errors** are ``{"error": {"code": ..., "message": ...}}`` with the HTTP status: 400
  malformed request (bad query parameter, body not a JSON object), 401 no valid credentials,
  403 role too low or a cookie POST without the CSRF header, 404 unknown incident, board,
  target kind or target, 405 method, 409 conflict (with the ``current`` event), 422 a
  well-formed body with invalid values, 503 too many concurrent writers (retry), 507 the
  store's disk is full (nothing was written; code ``store_full``: retrying will not help until
  an administrator frees space).
* **Pagination**: ``page`` (from 1) and ``per_page`` (default 100, at most 1000); every list
  answers ``{"items", "page", "per_page", "total", "pages"}`` in a stable order (calling order
  for people and targets, rank for incidents).
* **Writes.** A status update is an outreach event (the append-only history is its own record);
  ``request_id`` (or the ``Idempotency-Key`` header) makes a retry safe: 201 the first time,
  200 with the same event afterwards. ``expected_event_id`` turns a lost race into 409 with the
  event that won. Opening a board is audited by the store (``outreach.board``).
* **Audited reads.** Reading personal data (``/missions``, ``/people``, ``/targets``) writes
  ``api.read`` (actor, path, query, page, rows, total) — at most once a minute per actor, path
  and query (pages aside), so a client paging through a list or polling it leaves one record a
  minute, not one per request. The throttle is per process, like the sign-in limits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import dash
import flask
import numpy as np
import pandas as pd
from werkzeug.exceptions import HTTPException

from dashboard import auth
from dashboard.services import (
    BoardView,
    Services,
    UnknownIncident,
    board_view,
    incident_view,
    overview,
    parse_keys,
)
from feeds.model import CATEGORIES, SEVERITIES, SOURCES
from layers.affected import Filters
from layers.outreach import (
    GROUPINGS,
    MAX_NOTE_CHARS,
    STATUSES,
    TARGET_KINDS,
    VIEWS,
    group_labels,
    views,
)
from layers.schema import JURISDICTIONS, OFM_OFFICES
from store import StoreError, StoreFull
from store.db import record_audit
from store.feeds import feed_health
from store.outreach import (
    MAX_REQUEST_ID_CHARS,
    BoardNotFound,
    OutreachConflict,
    close_board,
    first_seen,
    get_board,
    history,
    list_boards,
    open_board,
    record_status,
)

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
AUDIT_READ_EVERY_S = 60.0
EXTENSION = "missionwatch_api"
CSRF_HEADER = "X-Requested-With"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_COUNTRY = re.compile(r"^[A-Z]{2,3}$")
_PAGING = ("page", "per_page")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable code, a message, extra fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> flask.Response:
        return error_response(self.status, self.code, self.message, **self.extra)


def error_response(status: int, code: str, message: str, **extra: Any) -> flask.Response:
    response = flask.jsonify({"error": {"code": code, "message": message, **extra}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="Mission Watch"'
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


# --------------------------------------------------------------------------- JSON values


def jsonable(value: Any) -> Any:
    """A value from a frame or record as plain JSON: ISO times, None for NaN/NaT/infinity."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def records(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Rows of ``frame`` (only ``columns``, in that order) as JSON objects."""
    if columns is not None:
        frame = frame.loc[:, list(columns)]
    return [{k: jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]


# --------------------------------------------------------------------------- request parsing


def _check_params(allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    unknown = sorted(set(flask.request.args) - set(allowed))
    if unknown:
        raise ApiError(400, "bad_request",
                       f"unknown query parameter(s) {', '.join(unknown)}; allowed: "
                       f"{', '.join(allowed) or 'none'}")


def _int_param(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    text = flask.request.args.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        limit = f"{minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise ApiError(400, "bad_request", f"{name} must be {limit}, got {value}")
    return value


def paging() -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1 to :data:`MAX_PER_PAGE`) from the query."""
    return (_int_param("page", 1, 1),
            _int_param("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE))


def page_of(total: int, page: int, per_page: int) -> tuple[slice, dict[str, int]]:
    """The slice of a list of ``total`` items that ``page`` covers, and the envelope numbers.

    ``pages`` is the number of pages (0 for an empty list); a page past the end is empty."""
    if page < 1 or per_page < 1:
        raise ValueError(f"page and per_page must be >= 1, got {page} and {per_page}")
    start = (page - 1) * per_page
    return (slice(start, start + per_page),
            {"page": page, "per_page": per_page, "total": total,
             "pages": math.ceil(total / per_page)})


def _paginated(items: list[Any] | pd.DataFrame, to_items: Callable[[Any], list[Any]],
               **extra: Any) -> dict[str, Any]:
    page, per_page = paging()
    window, numbers = page_of(len(items), page, per_page)
    chunk = items.iloc[window] if isinstance(items, pd.DataFrame) else items[window]
    return {"items": to_items(chunk), **numbers, **extra}


def _choices(name: str, allowed: Iterable[str]) -> tuple[str, ...]:
    """Comma-separated (or repeated) values of ``name``, each one of ``allowed``."""
    allowed = tuple(allowed)
    values = tuple(dict.fromkeys(v.strip() for raw in flask.request.args.getlist(name)
                                 for v in raw.split(",") if v.strip()))
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ApiError(400, "bad_request",
                       f"{name} must be one or more of {', '.join(allowed)}, got "
                       f"{', '.join(bad)}")
    return values


def _countries() -> tuple[str, ...]:
    values = tuple(dict.fromkeys(v.strip().upper() for raw in flask.request.args.getlist(
        "country") for v in raw.split(",") if v.strip()))
    bad = [v for v in values if not _COUNTRY.match(v)]
    if bad:
        raise ApiError(400, "bad_request", f"country must be ISO country codes (two or three "
                       f"letters), got {', '.join(bad)}")
    return values


def _flag(name: str) -> bool:
    text = flask.request.args.get(name, "").strip().lower()
    if text in ("", "false", "0", "no"):
        return False
    if text in ("true", "1", "yes"):
        return True
    raise ApiError(400, "bad_request", f"{name} must be true or false, got {text!r}")


def _body() -> dict[str, Any]:
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request",
                       "the body must be a JSON object (Content-Type: application/json)")
    return body


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", message, field=field)


def _keys(text: str) -> tuple[str, ...]:
    try:
        return parse_keys(text)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


# --------------------------------------------------------------------------- the API


@dataclasses.dataclass
class Api:
    """The API's state on one server: services, clock, read-audit throttle, known targets."""

    services: Services
    clock: Clock = _utcnow
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _sqlite_writes: threading.Lock = dataclasses.field(default_factory=threading.Lock,
                                                       repr=False)
    _loading: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _audited: dict[tuple[str, str, str], float] = dataclasses.field(default_factory=dict,
                                                                     repr=False)
    _targets: dict[int, set[tuple[str, str]]] = dataclasses.field(default_factory=dict,
                                                                  repr=False)

    @property
    def engine(self) -> Any:
        return self.services.engine

    # ------------------------------------------------------------------ audit of reads

    def audit_read(self, rows: int, total: int, page: int) -> None:
        """``api.read`` for this request, unless the same actor read the same path and query
        (pages aside) less than :data:`AUDIT_READ_EVERY_S` ago."""
        request = flask.request
        actor = auth.current_actor()
        query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True))
                         if k not in _PAGING)
        key = (actor, request.path, query)
        now = time.monotonic()
        with self._lock:
            last = self._audited.get(key)
            if last is not None and now - last < AUDIT_READ_EVERY_S:
                return
            self._audited[key] = now
            if len(self._audited) > 10_000:  # forget windows that have closed
                self._audited = {k: t for k, t in self._audited.items()
                                 if now - t < AUDIT_READ_EVERY_S}
        with self.engine.begin() as connection:
            record_audit(connection, actor, "api.read", {
                "path": request.path, "query": query, "page": page, "rows": rows,
                "total": total}, self.clock())

    # ------------------------------------------------------------------ targets of a board

    def require_target(self, board_id: int, kind: str, target_id: str) -> None:
        """404 unless the board has (or ever had) this target. Known targets are cached; a
        miss re-reads them, then refreshes the board (recording targets that appeared)."""
        if kind not in TARGET_KINDS:
            raise ApiError(404, "not_found", f"target kind must be one of "
                           f"{', '.join(TARGET_KINDS)}, got {kind!r}")
        wanted = (kind, target_id)
        with self._lock:
            if wanted in self._targets.get(board_id, ()):
                return
        with self._loading:  # one reload at a time: the others then find it cached
            with self._lock:
                if wanted in self._targets.get(board_id, ()):
                    return
            for refresh in (False, True):
                if refresh:
                    board_view(self.services, board_id, self.clock())
                seen = first_seen(self.engine, board_id)
                known = set(zip(seen["target_kind"], seen["target_id"], strict=True))
                with self._lock:
                    self._targets[board_id] = known
                if wanted in known:
                    return
        raise ApiError(404, "not_found",
                       f"board {board_id} has no {kind} {target_id!r} to contact")

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """On SQLite, this process's status writes queue here, one at a time: SQLite lets one
        writer in at a time anyway, and its busy handler polls with growing sleeps, so with
        many writers an unlucky one can wait its whole busy timeout (10 s, measured with 20
        coordinators). PostgreSQL takes them concurrently."""
        if self.engine.dialect.name != "sqlite":
            yield
            return
        with self._sqlite_writes:
            yield

    def board(self, board_id: int) -> Any:
        try:
            return get_board(self.engine, board_id)
        except BoardNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    def board_view(self, board_id: int) -> BoardView:
        self.board(board_id)
        return board_view(self.services, board_id, self.clock())

    # ------------------------------------------------------------------ views

    def openapi(self) -> flask.Response:
        return flask.jsonify(OPENAPI)

    def incidents(self) -> flask.Response:
        _check_params(("category", "severity", "source", "jurisdiction", "office", "country",
                       "include_hidden", *_PAGING))
        filters = Filters.of(
            categories=_choices("category", CATEGORIES),
            severities=_choices("severity", SEVERITIES),
            sources=_choices("source", SOURCES),
            jurisdictions=_choices("jurisdiction", JURISDICTIONS),
            offices=_choices("office", OFM_OFFICES), countries=_countries())
        include_hidden = _flag("include_hidden")
        data = overview(self.services, self.clock(), filters)
        table = data.hazards if include_hidden else data.incidents
        stale = [h.source for h in data.health if h.stale or h.last_outcome == "failed"]
        return flask.jsonify(_paginated(
            table, lambda chunk: records(chunk, INCIDENT_FIELDS),
            as_of=data.now.isoformat(), totals=jsonable(data.totals),
            hidden_by_rules=data.hidden_by_rules, stale_feeds=stale))

    def _incident(self, keys: str) -> Any:
        try:
            return incident_view(self.services, _keys(keys), self.clock())
        except UnknownIncident as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    def incident(self, keys: str) -> flask.Response:
        _check_params(())
        view = self._incident(keys)
        return flask.jsonify({
            "keys": list(_keys(keys)), "as_of": self.clock().isoformat(),
            "hazards": records(view.hazards, HAZARD_FIELDS),
            "totals": jsonable(view.totals)})

    def incident_missions(self, keys: str) -> flask.Response:
        _check_params(_PAGING)
        view = self._incident(keys)
        body = _paginated(view.missions, records)
        self.audit_read(len(body["items"]), body["total"], body["page"])
        return flask.jsonify(body)

    def incident_people(self, keys: str) -> flask.Response:
        _check_params(_PAGING)
        view = self._incident(keys)
        body = _paginated(view.calls, lambda chunk: records(chunk, PERSON_FIELDS))
        self.audit_read(len(body["items"]), body["total"], body["page"])
        return flask.jsonify(body)

    def feeds(self) -> flask.Response:
        _check_params(_PAGING)
        now = self.clock()
        health = feed_health(self.engine, now=now, settings=self.services.settings)
        return flask.jsonify(_paginated(
            health, lambda chunk: [jsonable(h.as_json()) for h in chunk], as_of=now.isoformat()))

    def boards(self) -> flask.Response:
        if flask.request.method == "POST":
            return self.open_board()
        _check_params(("exercise", "include_closed", *_PAGING))
        boards = list_boards(self.engine, exercise=_flag("exercise"),
                             include_closed=_flag("include_closed"))
        return flask.jsonify(_paginated(boards, lambda chunk: [b.as_json() for b in chunk]))

    def open_board(self) -> flask.Response:
        _check_params(())
        body = _body()
        unknown = sorted(set(body) - {"incidents", "hazard_ids", "name", "exercise"})
        if unknown:
            raise _invalid(unknown[0], f"unknown field(s) {', '.join(unknown)}; allowed: "
                           "incidents, hazard_ids, name, exercise")
        incidents, hazard_ids = body.get("incidents"), body.get("hazard_ids")
        if (incidents is None) == (hazard_ids is None):
            raise _invalid("incidents", "give either incidents (incident keys) or hazard_ids")
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 200:
            raise _invalid("name", "name must be a string of at most 200 characters")
        exercise = body.get("exercise", False)
        if not isinstance(exercise, bool):
            raise _invalid("exercise", "exercise must be true or false")
        state = self.services.hazard_state()
        if incidents is not None:
            if isinstance(incidents, list) and all(isinstance(k, str) for k in incidents):
                incidents = ",".join(incidents)
            if not isinstance(incidents, str):
                raise _invalid("incidents", "incidents must be a string 'k1,k2' or a list of "
                               "incident keys")
            try:
                keys = parse_keys(incidents)
            except ValueError as exc:
                raise _invalid("incidents", str(exc)) from None
            missing = [k for k in keys if k not in state.by_key]
            if missing:
                raise _invalid("incidents", f"no such incident: {', '.join(missing)}")
            ids = [str(state.table["hazard_id"].iat[state.by_key[k]]) for k in keys]
        else:
            if not (isinstance(hazard_ids, list) and hazard_ids
                    and all(isinstance(h, str) for h in hazard_ids)):
                raise _invalid("hazard_ids", "hazard_ids must be a non-empty list of strings")
            missing = [h for h in hazard_ids if h not in state.hazards]
            if missing:
                raise _invalid("hazard_ids", f"no such hazard: {', '.join(missing[:5])}")
            ids = list(hazard_ids)
        try:
            board, created = open_board(self.engine, ids, name=name, actor=auth.current_actor(),
                                        now=self.clock(), exercise=exercise)
        except ValueError as exc:
            raise _invalid("incidents" if incidents is not None else "hazard_ids",
                           str(exc)) from None
        response = flask.jsonify(self._board_body(board_view(
            self.services, board.board_id, self.clock())))
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"{PREFIX}/boards/{board.board_id}"
        return response

    def _board_body(self, view: BoardView) -> dict[str, Any]:
        hazards = view.hazards
        shown = [c for c in BOARD_HAZARD_FIELDS if c in hazards.columns]
        return {
            "board": view.board.as_json(), "began_at": view.began_at.isoformat(),
            "progress": jsonable(view.progress), "targets": len(view.rows),
            "hazards": records(hazards, shown) if len(hazards) else [],
            "missing_hazards": list(view.missing_hazards),
            "liaisons": dict(view.liaisons),
        }

    def board_detail(self, board_id: int) -> flask.Response:
        _check_params(())
        return flask.jsonify(self._board_body(self.board_view(board_id)))

    def board_close(self, board_id: int) -> flask.Response:
        """Close the board (audited): read only from now on; its history stays."""
        _check_params(())
        board = self.board(board_id)
        if board.closed_at is not None:
            raise ApiError(409, "board_closed", f"outreach board {board_id} is already closed")
        close_board(self.engine, board_id, actor=auth.current_actor(), now=self.clock())
        return flask.jsonify(self._board_body(self.board_view(board_id)))

    def board_targets(self, board_id: int) -> flask.Response:
        _check_params(("status", "view", "group", *_PAGING))
        statuses = _choices("status", STATUSES)
        view_name = flask.request.args.get("view") or "all"
        if view_name not in VIEWS:
            raise ApiError(400, "bad_request",
                           f"view must be one of {', '.join(VIEWS)}, got {view_name!r}")
        group = flask.request.args.get("group") or None
        if group is not None and group not in GROUPINGS:
            raise ApiError(400, "bad_request",
                           f"group must be one of {', '.join(GROUPINGS)}, got {group!r}")
        board = self.board_view(board_id)
        rows = views(board.rows, view_name)
        if statuses:
            rows = rows[rows["status"].isin(statuses)]
        columns = list(TARGET_FIELDS)
        if group is not None:
            labels = group_labels(rows, group, board.liaisons)
            # groups in the order their first target is called; calling order within each
            rank = pd.factorize(labels)[0]
            rows = rows.assign(group=labels.to_numpy(), _rank=rank).sort_values(
                "_rank", kind="stable")
            columns.append("group")
        body = _paginated(rows, lambda chunk: records(chunk, columns))
        self.audit_read(len(body["items"]), body["total"], body["page"])
        return flask.jsonify(body)

    def target_status(self, board_id: int, kind: str, target_id: str) -> flask.Response:
        _check_params(())
        board = self.board(board_id)
        self.require_target(board_id, kind, target_id)
        body = _body()
        unknown = sorted(set(body) - {"status", "note", "expected_event_id", "request_id"})
        if unknown:
            raise _invalid(unknown[0], f"unknown field(s) {', '.join(unknown)}; allowed: "
                           "status, note, expected_event_id, request_id")
        status = body.get("status")
        if status not in STATUSES:
            raise _invalid("status", f"status must be one of {', '.join(STATUSES)}, got "
                           f"{status!r}")
        note = body.get("note", "")
        if note is None:
            note = ""
        if not isinstance(note, str) or len(note.strip()) > MAX_NOTE_CHARS:
            raise _invalid("note", f"note must be a string of at most {MAX_NOTE_CHARS} "
                           "characters")
        expected = body.get("expected_event_id")
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)
                                     or expected < 0):
            raise _invalid("expected_event_id", "expected_event_id must be an integer >= 0 "
                           "(0: no update seen yet) or null")
        request_id = body.get("request_id")
        header = flask.request.headers.get(IDEMPOTENCY_HEADER)
        if header is not None:
            if request_id is not None and request_id != header:
                raise _invalid("request_id", f"request_id and the {IDEMPOTENCY_HEADER} header "
                               "differ")
            request_id = header
        if request_id is not None and not (
                isinstance(request_id, str) and 0 < len(request_id) <= MAX_REQUEST_ID_CHARS):
            raise _invalid("request_id", f"request_id must be a string of 1 to "
                           f"{MAX_REQUEST_ID_CHARS} characters")
        if board.closed_at is not None:
            raise ApiError(409, "board_closed", f"outreach board {board_id} is closed")
        try:
            with self._writer():
                event, written = record_status(
                    self.engine, board_id, kind, target_id, status, note=note,
                    actor=auth.current_actor(), now=self.clock(), expected_event_id=expected,
                    request_id=request_id)
        except OutreachConflict as exc:
            raise ApiError(409, "conflict", str(exc), current=exc.current.as_json()) from None
        except BoardNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        except ValueError as exc:  # an expectation of an event the target never had, or the
            # board was closed in the meantime
            raise ApiError(409, "conflict", str(exc), current=None) from None
        except StoreFull:
            raise
        except StoreError as exc:
            logger.warning("status update on board %s gave up: %s", board_id, exc)
            raise ApiError(503, "busy", str(exc)) from None
        if not written and (event.target_kind, event.target_id, event.status, event.note) != (
                kind, target_id, status, note.strip()):
            raise _invalid("request_id", f"request_id {request_id!r} was already used for "
                           f"another update (event {event.event_id}); use a new one")
        response = flask.jsonify(event.as_json())
        response.status_code = 201 if written else 200
        response.headers["Location"] = (f"{PREFIX}/boards/{board_id}/targets/{kind}/"
                                        f"{target_id}/history")
        if not written:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    def target_history(self, board_id: int, kind: str, target_id: str) -> flask.Response:
        _check_params(_PAGING)
        self.board(board_id)
        self.require_target(board_id, kind, target_id)
        events = history(self.engine, board_id, (kind, target_id))
        return flask.jsonify(_paginated(events, records))

    def not_found(self, rest: str) -> flask.Response:
        return error_response(404, "not_found", f"no API endpoint {PREFIX}/{rest}; see "
                              f"{PREFIX}/openapi.json")


# --------------------------------------------------------------------------- fields

INCIDENT_FIELDS = (
    "key", "hazard_id", "source", "event", "category", "severity", "status", "headline",
    "area_desc", "expires", "recorded_at", "geometry_method", "placed", "incident", "reason",
    "missions", "premises", "people", "with_immunity", "households",
)
HAZARD_FIELDS = (
    "key", "hazard_id", "source", "event", "category", "severity", "status", "message_type",
    "headline", "area_desc", "url", "sent", "onset", "expires", "recorded_at", "active",
    "geometry_method", "placed", "jurisdictions", "offices",
    "missions", "premises", "people", "with_immunity", "households",
)
BOARD_HAZARD_FIELDS = ("key", "hazard_id", "event", "severity", "active", "expires")
PERSON_FIELDS = (
    "order", "office", "country_name", "mission_id", "mission_name", "mission_type",
    "contact_kind", "person_id", "name", "role", "immunity", "phone", "email", "language",
    "household_id", "hazard_ids", "worst_severity",
)
TARGET_FIELDS = (
    "order", "target_kind", "target_id", "mission_id", "mission_name", "mission_type",
    "country_name", "office", "contact", "role", "immunity", "phone", "email", "language",
    "people", "worst_severity", "hazard_ids", "status", "note", "updated_by", "updated_at",
    "event_id", "updates", "first_seen_at", "new",
)

# --------------------------------------------------------------------------- routes

TARGET = "/boards/<int:board_id>/targets/<kind>/<target_id>"
# (rule under PREFIX, endpoint, methods, least role, Api method name)
ROUTES: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("/openapi.json", "openapi", ("GET",), "display", "openapi"),
    ("/incidents", "incidents", ("GET",), "display", "incidents"),
    ("/incidents/<keys>", "incident", ("GET",), "display", "incident"),
    ("/incidents/<keys>/missions", "incident_missions", ("GET",), "coordinator",
     "incident_missions"),
    ("/incidents/<keys>/people", "incident_people", ("GET",), "coordinator", "incident_people"),
    ("/feeds", "feeds", ("GET",), "display", "feeds"),
    ("/boards", "boards", ("GET", "POST"), "coordinator", "boards"),
    ("/boards/<int:board_id>", "board", ("GET",), "coordinator", "board_detail"),
    ("/boards/<int:board_id>/close", "board_close", ("POST",), "coordinator", "board_close"),
    ("/boards/<int:board_id>/targets", "board_targets", ("GET",), "coordinator",
     "board_targets"),
    (f"{TARGET}/status", "target_status", ("POST",), "coordinator", "target_status"),
    (f"{TARGET}/history", "target_history", ("GET",), "coordinator", "target_history"),
)
# Anything else under the prefix answers a JSON 404 (not the dashboard's HTML page shell).
NOT_FOUND_RULE = f"{PREFIX}/<path:rest>"


def _csrf_check() -> None:
    """A cookie-authenticated POST needs an Origin header (the gate has checked it is ours)
    or the X-Requested-With header; bearer requests need neither."""
    principal = auth.current_principal()
    if principal is None or principal.bearer:
        return
    request = flask.request
    if not request.headers.get("Origin") and not request.headers.get(CSRF_HEADER):
        raise ApiError(403, "csrf", f"a POST signed in by the session cookie needs a "
                       f"same-origin Origin header or an {CSRF_HEADER} header (or use a "
                       "bearer token)")


def _wrap(method: Callable[..., flask.Response]) -> Callable[..., flask.Response]:
    @functools.wraps(method)
    def view(**kwargs: Any) -> flask.Response:
        try:
            if flask.request.method == "POST":
                _csrf_check()
            return method(**kwargs)
        except ApiError as exc:
            return exc.response()
        except StoreFull as exc:   # any write: opening or closing a board, a status update
            logger.error("API %s %s refused: %s", flask.request.method, flask.request.path, exc)
            return error_response(507, "store_full", str(exc))
    return view


def _http_error(exc: HTTPException) -> Any:
    """Flask's own errors (405, 413, 500, ...) as JSON under the prefix; elsewhere unchanged."""
    if not flask.request.path.startswith(PREFIX + "/"):
        return exc
    status = exc.code or 500
    if status >= 500:
        original = getattr(exc, "original_exception", None)
        if original is not None:
            logger.error("API request %s %s failed: %s", flask.request.method,
                         flask.request.path, type(original).__name__)
        return error_response(status, "internal", "the server failed to answer; the error "
                              "is in its log")
    response = error_response(status, re.sub(r"\W+", "_", (exc.name or "error").lower()),
                              exc.description or exc.name or "error")
    for name, value in exc.get_headers():
        if name.lower() == "allow":  # 405: the methods the path takes
            response.headers["Allow"] = value
    return response


def init_app(app: dash.Dash, services: Services) -> Api:
    """Register ``/api/v1`` on ``app``'s server, every route declared with its role."""
    server = app.server
    api = Api(services=services)
    server.extensions[EXTENSION] = api
    for rule, endpoint, methods, role, name in ROUTES:
        server.add_url_rule(PREFIX + rule, f"api_v1_{endpoint}", _wrap(getattr(api, name)),
                            methods=list(methods))
        auth.declare_route(server, PREFIX + rule, role)
    server.add_url_rule(NOT_FOUND_RULE, "api_v1_not_found", _wrap(api.not_found),
                        methods=["GET"])
    auth.declare_route(server, NOT_FOUND_RULE, "display")
    server.register_error_handler(HTTPException, _http_error)
    return api


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: ``/boards/<int:board_id>`` -> ``/boards/{board_id}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


# --------------------------------------------------------------------------- OpenAPI 3.1
# The document is data, written by hand next to the routes; a test checks that every route is
# in it (with its role) and that it names nothing else.


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_TIME = _nullable("string", format="date-time")
_COUNTS = {name: {"type": "integer", "minimum": 0, "description": text} for name, text in (
    ("missions", "missions affected (premises or people inside)"),
    ("premises", "mission premises inside"),
    ("people", "members and dependents whose residence is inside"),
    ("with_immunity", "of them, with full or official-acts immunity"),
    ("households", "households with someone inside"),
)}


def _object(properties: dict[str, Any], description: str = "",
            required: Iterable[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties,
                           "required": list(properties if required is None else required)}
    if description:
        out["description"] = description
    return out


def _page_schema(item: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"allOf": [_ref("Page"), _object(
        {"items": {"type": "array", "items": _ref(item)}, **extra}, description)]}


def _param(name: str, where: str, description: str, schema: dict[str, Any],
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description,
            "required": required or where == "path", "schema": schema}


def _list_param(name: str, description: str, values: Iterable[str] | None = None
                ) -> dict[str, Any]:
    item = {"type": "string", **({"enum": list(values)} if values is not None else {})}
    return {**_param(name, "query", description + " Comma-separated or repeated; any of them.",
                     {"type": "array", "items": item}), "style": "form", "explode": True}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    names = {400: "BadRequest", 401: "Unauthenticated", 403: "Forbidden", 404: "NotFound",
             409: "Conflict", 422: "Invalid", 503: "Busy", 507: "StoreFull"}
    return {str(s): {"$ref": f"#/components/responses/{names[s]}"} for s in statuses}


def _operation(  # noqa: PLR0917 - positional, so each operation below reads as a table row
        operation_id: str, tag: str, role: str, summary: str, description: str,
        parameters: list[dict[str, Any]], responses: dict[str, Any],
        request: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"operationId": operation_id, "tags": [tag], "summary": summary,
           "description": description, "x-min-role": role, "parameters": parameters,
           "responses": responses}
    if request is not None:
        out["requestBody"] = request
    return out


_PAGE_PARAMS = [
    _param("page", "query", "Page number, from 1; a page past the end is empty.",
           {"type": "integer", "minimum": 1, "default": 1}),
    _param("per_page", "query", "Items per page.",
           {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE,
            "default": DEFAULT_PER_PAGE}),
]
_KEYS = _param("keys", "path", "One incident key or several, comma-separated (at most 25): "
               "the `key` of `GET /api/v1/incidents` items.", _STR)
_BOARD = _param("board_id", "path", "The board's id.", {"type": "integer", "minimum": 1})
_KIND = _param("kind", "path", "mission or household; anything else is 404.",
               {"type": "string", "enum": list(TARGET_KINDS)})
_TARGET_ID = _param("target_id", "path", "The mission id or household id.",
                    {"type": "string", "maxLength": 64})

_SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": _object({
        "code": {"type": "string", "description": "stable code: bad_request, unauthenticated, "
                 "forbidden, csrf, cross_site, not_found, method_not_allowed, conflict, "
                 "board_closed, invalid, busy, internal"},
        "message": {"type": "string", "description": "what went wrong, for a person"},
        "field": {"type": "string", "description": "422: the body field at fault"},
        "current": {"oneOf": [_ref("Event"), {"type": "null"}],
                    "description": "409: the target's latest event, which yours would have "
                                   "overwritten"},
    }, required=("code", "message"))}, "Every error answer."),
    "Page": _object({
        "items": {"type": "array"},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "total": {"type": "integer", "minimum": 0, "description": "items in all pages"},
        "pages": {"type": "integer", "minimum": 0, "description": "ceil(total / per_page)"},
    }, "A page of a list, in a stable order."),
    "Totals": _object(dict(_COUNTS), "Each mission, person and household counted once.",
                      required=tuple(_COUNTS)),
    "Incident": _object({
        "key": {"type": "string", "description": "URL-safe key for /incidents/{keys}"},
        "hazard_id": _STR, "source": {"type": "string", "enum": list(SOURCES)},
        "event": _STR, "category": {"type": "string", "enum": list(CATEGORIES)},
        "severity": {"type": "string", "enum": list(SEVERITIES)}, "status": _STR,
        "headline": _STR, "area_desc": _STR, "expires": _TIME,
        "recorded_at": {**_TIME, "description": "set when the data is a bundled recording"},
        "geometry_method": _STR, "placed": _BOOL,
        "incident": {"type": "boolean", "description": "false: the incident rules filter it "
                     "out (listed only with include_hidden=true)"},
        "reason": {"type": "string", "description": "the rule that decided, or 'no rule "
                   "matched'"},
        **_COUNTS,
    }, "An active hazard with what it affects: counts only."),
    "Hazard": _object({
        "key": _STR, "hazard_id": _STR, "source": _STR, "event": _STR, "category": _STR,
        "severity": _STR, "status": _STR, "message_type": _STR, "headline": _STR,
        "area_desc": _STR, "url": {"type": "string", "description": "the source bulletin"},
        "sent": _TIME, "onset": _TIME, "expires": _TIME, "recorded_at": _TIME,
        "active": {"type": "boolean", "description": "false once it has ended; the incident "
                   "still opens so outreach can finish"},
        "geometry_method": _STR, "placed": _BOOL,
        "jurisdictions": {"type": "array", "items": _STR},
        "offices": {"type": "array", "items": _STR}, **_COUNTS,
    }, "A hazard of the selection, with its own counts."),
    "IncidentDetail": _object({
        "keys": {"type": "array", "items": _STR}, "as_of": {"type": "string",
                                                           "format": "date-time"},
        "hazards": {"type": "array", "items": _ref("Hazard")},
        "totals": _ref("Totals"),
    }, "One incident or several worked on together; totals are their union."),
    "Mission": _object({
        "mission_id": _STR, "name": _STR, "mission_type": _STR, "country_name": _STR,
        "city": _STR, "jurisdiction": _STR, "ofm_office": _STR,
        "premises": {"type": "boolean", "description": "its premises are inside"},
        "people": _INT, "full": _INT, "official_acts": _INT, "none": _INT,
        "households": _INT, "duty_phone": _STR, "worst_severity": _STR,
        "hazards": {"type": "string", "description": "events, '; '-separated"},
    }, "An affected mission (personal data: duty phone)."),
    "Person": _object({
        "order": {"type": "integer", "description": "position in calling order, from 1"},
        "office": _STR, "country_name": _STR, "mission_id": _STR, "mission_name": _STR,
        "mission_type": _STR,
        "contact_kind": {"type": "string",
                         "enum": ["duty", "head_of_household", "household_member"]},
        "person_id": _STR, "name": _STR, "role": _STR, "immunity": _STR, "phone": _STR,
        "email": _STR, "language": _STR, "household_id": _STR, "hazard_ids": _STR,
        "worst_severity": _STR,
    }, "One row of the call list, in calling order (personal data)."),
    "FeedHealth": _object({
        "source": _STR, "interval_s": _nullable("integer"), "last_attempt": _TIME,
        "last_success": _TIME,
        "last_outcome": _nullable("string", enum=["fresh", "not_modified", "failed", None]),
        "last_error": _nullable("string"), "consecutive_failures": _INT, "item_count": _INT,
        "skipped": _INT, "unplaced": _INT, "data_as_of": _TIME,
        "data_age_s": {**_nullable("number"), "description": "seconds since the data was "
                       "last known current"},
        "stale": _BOOL, "recorded": _BOOL, "recorded_at": _TIME,
        "clock_skew_s": {**_nullable("number"), "description": "the feed's clock minus ours "
                         "at its last answer, in seconds (negative: behind; null: not "
                         "measured)"},
        "expiry_lag_s": {"type": "number", "description": "seconds behind our clock at which "
                         "the feed's expiries are judged (0 unless its clock is behind)"},
        "clock": {**_nullable("string"), "description": "the skew in words when beyond the "
                  "tolerance, e.g. \"clock 3 h behind\""},
    }, "How one hazard feed is doing."),
    "Board": _object({
        "board_id": _INT, "name": _STR, "hazard_ids": {"type": "array", "items": _STR},
        "created_at": {"type": "string", "format": "date-time"}, "created_by": _STR,
        "exercise": {"type": "boolean", "description": "a drill's board"},
        "closed_at": _TIME,
    }, "An outreach board: the contacting of everyone one selection of hazards affects."),
    "Progress": _object({kind: _object(dict.fromkeys((
        "total", "reached", "needs_assistance", "attempted", "unreachable", "not_contacted",
        "new"), _INT)) for kind in TARGET_KINDS}, "Per target kind."),
    "BoardDetail": _object({
        "board": _ref("Board"),
        "began_at": {"type": "string", "format": "date-time",
                     "description": "the earliest sent/onset of its hazards, or the board"},
        "progress": _ref("Progress"),
        "targets": {"type": "integer", "description": "missions and households on the board"},
        "hazards": {"type": "array", "items": _object({
            "key": _STR, "hazard_id": _STR, "event": _STR, "severity": _STR, "active": _BOOL,
            "expires": _TIME})},
        "missing_hazards": {"type": "array", "items": _STR,
                            "description": "hazard ids the feeds no longer list"},
        "liaisons": {"type": "object", "additionalProperties": _STR,
                     "description": "sending country -> its embassy and duty phone"},
    }, "A board now."),
    "Target": _object({
        "order": {**_nullable("integer"), "description": "calling order; null once no "
                  "longer affected (kept, after the others, because it has a status)"},
        "target_kind": {"type": "string", "enum": list(TARGET_KINDS)}, "target_id": _STR,
        "mission_id": _STR, "mission_name": _STR, "mission_type": _STR, "country_name": _STR,
        "office": _STR, "contact": _STR, "role": _STR, "immunity": _STR, "phone": _STR,
        "email": _STR, "language": _STR, "people": _INT, "worst_severity": _STR,
        "hazard_ids": _STR, "status": {"type": "string", "enum": list(STATUSES)},
        "note": _STR, "updated_by": _STR, "updated_at": _TIME,
        "event_id": {"type": "integer", "description": "the latest event (0: none): send it "
                     "as expected_event_id"},
        "updates": _INT, "first_seen_at": _TIME,
        "new": {"type": "boolean", "description": "appeared after the board began and has "
                "no status yet"},
        "group": {"type": "string", "description": "with group=...: the group label"},
    }, "A mission or household to contact, with its latest status (personal data).",
        required=TARGET_FIELDS),
    "Event": _object({
        "event_id": _INT, "board_id": _INT,
        "target_kind": {"type": "string", "enum": list(TARGET_KINDS)}, "target_id": _STR,
        "previous_event_id": {"type": "integer", "description": "the event this one follows "
                              "(0: the first); a target's events form one chain"},
        "status": {"type": "string", "enum": list(STATUSES)}, "note": _STR,
        "actor": {"type": "string", "description": "who: user:NAME, user:NAME (token ID)"},
        "at": {"type": "string", "format": "date-time"}, "request_id": _nullable("string"),
    }, "One status update: the append-only history."),
    "BoardOpen": {**_object({
        "incidents": {"oneOf": [{"type": "string", "description": "'k1,k2'"},
                                {"type": "array", "items": _STR}],
                      "description": "incident keys (or give hazard_ids)"},
        "hazard_ids": {"type": "array", "items": _STR, "minItems": 1, "maxItems": 25},
        "name": {"type": "string", "maxLength": 200},
        "exercise": {"type": "boolean", "default": False},
    }, "Exactly one of incidents and hazard_ids.", required=()),
        "additionalProperties": False},
    "StatusUpdate": {**_object({
        "status": {"type": "string", "enum": list(STATUSES)},
        "note": {"type": "string", "maxLength": MAX_NOTE_CHARS},
        "expected_event_id": {**_nullable("integer"), "minimum": 0,
                              "description": "the target's latest event_id you saw (0: no "
                              "update yet): 409 if someone updated it since. Leave out to "
                              "append after whatever is latest."},
        "request_id": {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID_CHARS,
                       "description": "makes a retry safe (or send Idempotency-Key)"},
    }, required=("status",)), "additionalProperties": False},
}

_RESPONSES = {
    "BadRequest": _json(_ref("Error"), "Malformed: a bad query parameter, or a body that is "
                        "not a JSON object."),
    "Unauthenticated": _json(_ref("Error"), "No valid credentials (none, unknown, revoked, or "
                             "the token's user is disabled)."),
    "Forbidden": _json(_ref("Error"), "The role is too low (audited as access.denied), a "
                       "cross-site request, or a cookie POST without Origin or "
                       "X-Requested-With (code csrf)."),
    "NotFound": _json(_ref("Error"), "No such incident, board, target kind or target."),
    "Conflict": _json(_ref("Error"), "Someone updated the target since expected_event_id "
                      "(error.current is their event), or the board is closed."),
    "Invalid": _json(_ref("Error"), "A well-formed body with an invalid value (error.field)."),
    "Busy": _json(_ref("Error"), "Too many concurrent writers on one target; retry (with the "
                  "same request_id)."),
    "StoreFull": _json(_ref("Error"), "The store's disk is full (code store_full): nothing "
                       "was written; retry once an administrator has freed space."),
}

_INCIDENT_FILTERS = [
    _list_param("category", "Hazard category.", CATEGORIES),
    _list_param("severity", "CAP severity.", SEVERITIES),
    _list_param("source", "Feed the hazard came from.", SOURCES),
    _list_param("jurisdiction", "State or territory (two letters); the hazard touches it or "
                "affects someone there.", JURISDICTIONS),
    _list_param("office", "OFM office.", OFM_OFFICES),
    _list_param("country", "Sending country (ISO code) of the missions and people counted."),
    _param("include_hidden", "query", "Also the active hazards the incident rules filter out "
           "(incident: false, with the rule's reason).", {"type": "boolean", "default": False}),
]
_DISPLAY_NOTE = "Counts only: no personal data, so the display role may call it."
_AUDITED = ("Personal data: each read is audited (api.read), at most once a minute per actor, "
            "path and query.")

_PATHS: dict[str, Any] = {
    f"{PREFIX}/openapi.json": {"get": _operation(
        "openapi", "meta", "display", "This document", "The API described in OpenAPI 3.1.",
        [], {"200": _json({"type": "object"}, "The OpenAPI document."), **_errors(401)})},
    f"{PREFIX}/incidents": {"get": _operation(
        "listIncidents", "incidents", "display", "Active incidents with counts",
        "Ranked like the overview: people affected, then missions, then severity. "
        + _DISPLAY_NOTE, [*_INCIDENT_FILTERS, *_PAGE_PARAMS],
        {"200": _json(_page_schema(
            "Incident", "Incidents, most affected first.",
            as_of={"type": "string", "format": "date-time"},
            totals={"allOf": [_ref("Totals"), _object(
                {"incidents": _INT, "affecting": _INT},
                "the incidents' union; incidents: how many; affecting: how many affect "
                "somebody")]},
            hidden_by_rules={"type": "integer", "description": "active hazards passing the "
                             "filters that the rules filter out"},
            stale_feeds={"type": "array", "items": _STR, "description": "feeds that are stale "
                         "or failing: an empty list is then not an all-clear"}),
            "A page of incidents."), **_errors(400, 401, 403)})},
    f"{PREFIX}/incidents/{{keys}}": {"get": _operation(
        "getIncident", "incidents", "display", "One incident or several, with counts",
        "Details and counts of the hazards, and their union. " + _DISPLAY_NOTE, [_KEYS],
        {"200": _json(_ref("IncidentDetail"), "The selection."),
         **_errors(400, 401, 403, 404)})},
    f"{PREFIX}/incidents/{{keys}}/missions": {"get": _operation(
        "listIncidentMissions", "incidents", "coordinator", "Affected missions",
        "Worst severity first, then people with immunity. " + _AUDITED,
        [_KEYS, *_PAGE_PARAMS],
        {"200": _json(_page_schema("Mission", "Affected missions."), "A page of missions."),
         **_errors(400, 401, 403, 404)})},
    f"{PREFIX}/incidents/{{keys}}/people": {"get": _operation(
        "listIncidentPeople", "incidents", "coordinator", "The call list",
        "Everyone to call, in calling order: each mission's duty contact, then heads of "
        "household, then other members. " + _AUDITED, [_KEYS, *_PAGE_PARAMS],
        {"200": _json(_page_schema("Person", "Call-list rows."), "A page of the call list."),
         **_errors(400, 401, 403, 404)})},
    f"{PREFIX}/feeds": {"get": _operation(
        "listFeeds", "feeds", "display", "Feed health",
        "Each feed's last outcome, data age and whether it is stale.", _PAGE_PARAMS,
        {"200": _json(_page_schema("FeedHealth", "One per source.",
                                   as_of={"type": "string", "format": "date-time"}),
                      "Feed health."), **_errors(400, 401, 403)})},
    f"{PREFIX}/boards": {
        "get": _operation(
            "listBoards", "outreach", "coordinator", "Outreach boards",
            "Open live boards, newest first.", [
                _param("exercise", "query", "Drill boards instead of live ones.",
                       {"type": "boolean", "default": False}),
                _param("include_closed", "query", "Closed boards too.",
                       {"type": "boolean", "default": False}), *_PAGE_PARAMS],
            {"200": _json(_page_schema("Board", "Boards."), "A page of boards."),
             **_errors(400, 401, 403)}),
        "post": _operation(
            "openBoard", "outreach", "coordinator", "Open (or find) a board",
            "The open board for exactly these hazards (in any order), or a new one (audited "
            "as outreach.board). Its targets are recorded now.", [],
            {"201": _json(_ref("BoardDetail"), "A new board (Location: its URL)."),
             "200": _json(_ref("BoardDetail"), "The board already open for these hazards."),
             **_errors(400, 401, 403, 422)},
            {"required": True, "content": {"application/json": {
                "schema": _ref("BoardOpen")}}}),
    },
    f"{PREFIX}/boards/{{board_id}}": {"get": _operation(
        "getBoard", "outreach", "coordinator", "A board's progress",
        "Progress per target kind, when it began, hazards the feeds no longer list.",
        [_BOARD], {"200": _json(_ref("BoardDetail"), "The board."),
                   **_errors(401, 403, 404)})},
    f"{PREFIX}/boards/{{board_id}}/close": {"post": _operation(
        "closeBoard", "outreach", "coordinator", "Close a board",
        "Makes the board read only (audited `outreach.close`); its history stays and its "
        "exports still work. A new board can then be opened for the same incidents.",
        [_BOARD], {"200": _json(_ref("BoardDetail"), "The closed board."),
                   **_errors(401, 403, 404, 409)})},
    f"{PREFIX}/boards/{{board_id}}/targets": {"get": _operation(
        "listBoardTargets", "outreach", "coordinator", "Who to contact, with their status",
        "Missions and households in calling order (grouped: groups in the order of their "
        "first target, calling order within). " + _AUDITED, [
            _BOARD, _list_param("status", "Latest status.", STATUSES),
            _param("view", "query", "not_reached, needs_assistance, new (appeared after the "
                   "board began, no status yet) or all.",
                   {"type": "string", "enum": list(VIEWS), "default": "all"}),
            _param("group", "query", "Group by sending country (with its liaison), OFM office "
                   "or mission.", {"type": "string", "enum": list(GROUPINGS)}),
            *_PAGE_PARAMS],
        {"200": _json(_page_schema("Target", "Targets."), "A page of targets."),
         **_errors(400, 401, 403, 404)})},
    f"{PREFIX}/boards/{{board_id}}/targets/{{kind}}/{{target_id}}/status": {"post": _operation(
        "recordStatus", "outreach", "coordinator", "Record a status update",
        "Appends an event to the target's history (nothing is overwritten). With "
        "expected_event_id, refused with 409 if the target moved on; with a request_id (or "
        "Idempotency-Key), a retry returns the stored event with 200 and writes nothing.",
        [_BOARD, _KIND, _TARGET_ID,
         _param(IDEMPOTENCY_HEADER, "header", "Same as request_id in the body.",
                {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID_CHARS})],
        {"201": _json(_ref("Event"), "Written now (Location: the target's history)."),
         "200": _json(_ref("Event"), "Already stored under this request id (header "
                      "Idempotent-Replayed: true); nothing new was written."),
         **_errors(400, 401, 403, 404, 409, 422, 503, 507)},
        {"required": True, "content": {"application/json": {
            "schema": _ref("StatusUpdate")}}})},
    f"{PREFIX}/boards/{{board_id}}/targets/{{kind}}/{{target_id}}/history": {
        "get": _operation(
            "getTargetHistory", "outreach", "coordinator", "A target's history",
            "Every event, oldest first; each follows the one before (previous_event_id).",
            [_BOARD, _KIND, _TARGET_ID, *_PAGE_PARAMS],
            {"200": _json(_page_schema("Event", "Events."), "A page of events."),
             **_errors(400, 401, 403, 404)})},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Mission Watch API", "version": "1",
        "description": (
            "Incidents, feed health and outreach boards of Mission Watch. Authenticate with "
            "'Authorization: Bearer <token>' (an API token, `python app.py users token --api "
            "USERNAME`, acts as its user with the user's role; a display token as a wall "
            "display) or the dashboard's session cookie (POSTs then need a same-origin Origin "
            "header or X-Requested-With). Each operation's x-min-role is the least role "
            "allowed: display < coordinator < admin. Lists are paged: page, per_page "
            f"(default {DEFAULT_PER_PAGE}, at most {MAX_PER_PAGE}). Errors are "
            "{\"error\": {\"code\", \"message\"}}."),
    },
    "servers": [{"url": "/"}],
    "security": [{"bearerToken": []}, {"sessionCookie": []}],
    "tags": [{"name": n} for n in ("incidents", "feeds", "outreach", "meta")],
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "responses": _RESPONSES,
        "securitySchemes": {
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "an API token (mwa_...) or a display token "
                                           "(mwd_...)"},
            "sessionCookie": {"type": "apiKey", "in": "cookie",
                              "name": "missionwatch_session"},
        },
    },
}
