"""The after-action report of a drill: what fired when, whom it affected, how outreach went.

Pure functions over a drill's clock, its scenario, the impact pairs of its hazards and the
history of its exercise outreach boards; pandas and numpy (and the pure layers), no store,
no Dash. :mod:`dashboard.drill_report` gathers the inputs and serves the files.

* :func:`fire_times` — when each inject fired on the wall clock (the drill clock's inverse,
  across pauses and speed changes), or that it did not.
* :func:`timeline` — the injects and the drill's clock events (start, pause, resume, speed,
  stop) in the order they happened; injects that never fired come last.
* :func:`affected_by_inject` — after each inject fired, the union of the drill's hazards in
  force at that scenario minute: missions, people, people with immunity, households (each
  once, as :func:`layers.affected.union_counts` counts them), and which inject first reached
  each mission.
* :func:`outreach_targets` — whom a board had to reach: every mission and household its
  hazards cover (one target per mission, its duty contact; one per household, its head).
* :func:`coverage` — missions and households reached against wall time, from the latest
  status of each target at each moment (a reached target that is later marked otherwise no
  longer counts).
* :func:`first_contact` — per mission the drill affected: minutes from when it first became
  affected to the first outreach event (other than not_contacted) on it or its households.
* :func:`never_reached` — targets whose latest status is not a reached one.
* :func:`after_action` — all of it for one drill (an :class:`AfterAction`);
  :func:`report_csv` and :func:`report_html` write it, :func:`coverage_svg` draws its chart.

Personal data (household heads' names and phones) is in the report, which is for
coordinators; it is never logged. Errors: bad arguments raise ``ValueError`` naming the
argument and what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from layers.affected import LocationCodes, PairCodes, affected_locations, union_counts
from layers.calllist import EASTERN, export_header, write_csv
from layers.outreach import REACHED, STATUS_LABELS, describe_targets
from layers.printable import document, style_policy
from layers.scenarios import Inject, Scenario, hazards_at

logger = logging.getLogger(__name__)

EXERCISE_TEXT = "EXERCISE — not a real event"
TITLE = "Mission Watch drill after-action report"
NOT_FIRED = {True: "did not fire", False: "not fired yet"}   # by whether the drill stopped
NEVER_CONTACTED = "never contacted"
# Scenario minutes within this of the clock count as reached (float sums of wall seconds).
_MINUTE_TOLERANCE = 1e-6

TIMELINE_COLUMNS: tuple[str, ...] = ("kind", "at", "at_minutes", "inject_id", "event",
                                     "severity", "area", "detail", "actor")
COUNT_KEYS: tuple[str, ...] = ("missions", "people", "with_immunity", "households")
COUNTS_COLUMNS: tuple[str, ...] = ("inject_id", "at_minutes", "event", "severity", "fired_at",
                                   "hazards_in_force", *COUNT_KEYS, "new_missions")
COVERAGE_COLUMNS: tuple[str, ...] = ("at", "minutes", "missions_reached", "households_reached")
FIRST_CONTACT_COLUMNS: tuple[str, ...] = (
    "mission_id", "mission", "country", "first_inject", "affected_at", "first_contact_at",
    "first_contact_status", "contacted_via", "minutes", "on_board")
NEVER_REACHED_COLUMNS: tuple[str, ...] = (
    "target_kind", "target_id", "mission_id", "mission", "country", "contact", "phone",
    "status", "last_update_at", "boards")
EVENT_COLUMNS: tuple[str, ...] = ("board_id", "event_id", "target_kind", "target_id", "status",
                                  "at")
SECTIONS: tuple[str, ...] = ("timeline", "counts", "coverage", "first_contact",
                             "never_reached")
CSV_COLUMNS: tuple[str, ...] = (
    "section", "kind", "inject_id", "scenario_time", "at_minutes", "wall_time_utc",
    "wall_time_eastern", "event", "severity", "area", "detail", "actor", "hazards_in_force",
    *COUNT_KEYS, "new_missions", "minutes_since_start", "missions_reached",
    "households_reached", "target_kind", "target_id", "mission_id", "mission", "country",
    "contact", "phone", "status", "affected_at_utc", "affected_at_eastern",
    "first_contact_utc", "first_contact_eastern", "minutes_to_first_contact", "contacted_via",
    "on_board", "last_update_utc", "last_update_eastern", "boards")
CLOCK_LABELS: dict[str, str] = {
    "start": "Drill started", "pause": "Drill paused", "resume": "Drill resumed",
    "speed": "Speed changed", "stop": "Drill stopped",
}
_ORDER_AT_SAME_TIME = {"start": 0, "inject": 1}   # then pause, resume, speed, stop


class DrillRecord(Protocol):
    """What the report reads of a drill (:class:`store.drills.Drill` has it)."""

    @property
    def drill_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def scenario_name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def started_at(self) -> dt.datetime: ...
    @property
    def started_by(self) -> str: ...
    @property
    def stopped_at(self) -> dt.datetime | None: ...
    @property
    def stopped_by(self) -> str | None: ...
    @property
    def initial_speed(self) -> float: ...
    @property
    def pauses(self) -> tuple[tuple[dt.datetime, dt.datetime | None], ...]: ...
    @property
    def speed_changes(self) -> tuple[tuple[dt.datetime, float], ...]: ...
    def elapsed_minutes(self, now: dt.datetime) -> float: ...
    def wall_time_of(self, elapsed_minutes: float, now: dt.datetime) -> dt.datetime | None: ...


class ClockEvent(Protocol):
    """One event of a drill's history (:class:`store.drills.DrillEvent`)."""

    @property
    def at(self) -> dt.datetime: ...
    @property
    def action(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def detail(self) -> dict[str, Any]: ...


class BoardRecord(Protocol):
    """An outreach board (:class:`store.outreach.Board`)."""

    @property
    def board_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def hazard_ids(self) -> tuple[str, ...]: ...
    @property
    def closed_at(self) -> dt.datetime | None: ...


# --------------------------------------------------------------------------------------------
# Small helpers


def _aware(value: Any, argument: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValueError(f"{argument} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.timezone.utc)


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def scenario_clock(minutes: float) -> str:
    """Scenario time as T+hh:mm (minutes truncated, as the drill page shows it)."""
    whole = int(max(0.0, float(minutes)))
    return f"T+{whole // 60:02d}:{whole % 60:02d}"


def utc_text(value: object) -> str:
    """A time as ``2026-11-28 09:00:00 UTC`` ("" when there is none)."""
    if _missing(value):
        return ""
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def eastern_text(value: object) -> str:
    """A time in US Eastern with its abbreviation ("" when there is none)."""
    if _missing(value):
        return ""
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.tz_convert(EASTERN).strftime("%Y-%m-%d %H:%M:%S %Z")


def _one_line(value: object) -> str:
    return "" if _missing(value) else " ".join(str(value).split())


def _minutes_text(value: object) -> str:
    return "" if _missing(value) else f"{float(value):.1f}"  # type: ignore[arg-type]


def _events(events: pd.DataFrame | None) -> pd.DataFrame:
    """Outreach events with the columns the report reads, times as UTC, oldest first."""
    if events is None:
        events = pd.DataFrame(columns=list(EVENT_COLUMNS))
    if not isinstance(events, pd.DataFrame):
        raise ValueError(f"events must be a pandas DataFrame; got {type(events).__name__}")
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events is missing column(s) {', '.join(missing)}")
    frame = events.loc[:, list(EVENT_COLUMNS)].copy()
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["target_kind"] = frame["target_kind"].astype(str)
    frame["target_id"] = frame["target_id"].astype(str)
    frame["status"] = frame["status"].astype(str)
    frame["board_id"] = frame["board_id"].astype(np.int64)
    frame["event_id"] = frame["event_id"].astype(np.int64)
    return frame.sort_values(["at", "event_id"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# The clock: when injects fired, and the timeline


def fire_times(drill: DrillRecord, scenario: Scenario, now: dt.datetime) -> pd.DataFrame:
    """inject_id, at_minutes and fired_at (UTC; NaT for an inject that has not fired by
    ``now``: the drill stopped first, or has not reached it yet) of every inject, in order.

    An inject fires when the drill clock reaches its minute; the wall time is the drill
    clock's inverse (:meth:`DrillRecord.wall_time_of`), so pauses and speed changes count.
    """
    now = _aware(now, "now")
    elapsed = drill.elapsed_minutes(now)
    fired: list[dt.datetime | None] = []
    for item in scenario.injects:
        at = None
        if item.at_minutes <= elapsed + _MINUTE_TOLERANCE:
            at = drill.wall_time_of(min(item.at_minutes, elapsed), now)
        fired.append(at)
    return pd.DataFrame({
        "inject_id": [i.inject_id for i in scenario.injects],
        "at_minutes": [float(i.at_minutes) for i in scenario.injects],
        "fired_at": pd.to_datetime(pd.Series(fired, dtype=object), utc=True),
    })


def _inject_detail(item: Inject) -> str:
    bits = []
    if item.message_type == "update" and item.supersedes:
        bits.append("replaces " + ", ".join(item.supersedes))
    elif item.message_type == "cancel":
        bits.append("cancels " + ", ".join(item.supersedes))
    if item.expires_minutes is not None:
        bits.append(f"in force {item.expires_minutes:g} min")
    return "; ".join(bits)


def _clock_detail(action: str, detail: dict[str, Any]) -> str:
    if action == "start":
        speed = detail.get("speed")
        return f"at {float(speed):g}x" if speed is not None else ""
    if action == "speed":
        before, after = detail.get("previous_speed"), detail.get("speed")
        if after is None:
            return ""
        return (f"{float(before):g}x → " if before is not None else "") + f"{float(after):g}x"
    return ""


def timeline(scenario: Scenario, fired: pd.DataFrame,
             clock_events: Iterable[ClockEvent]) -> pd.DataFrame:
    """The drill's injects and clock events in the order they happened (:data:`TIMELINE_COLUMNS`).

    ``fired`` is :func:`fire_times`; ``clock_events`` the drill's history (events other than
    start, pause, resume, speed and stop are left out: injects are placed by the clock).
    At the same wall time: the start, then injects (in scenario order), then the clock
    change; injects that never fired come last, in scenario order, with no time.
    """
    if not isinstance(fired, pd.DataFrame) or "fired_at" not in fired.columns:
        raise ValueError("fired must be the frame of fire_times()")
    when = dict(zip(fired["inject_id"], fired["fired_at"], strict=True))
    rows: list[dict[str, Any]] = []
    for number, item in enumerate(scenario.injects):
        rows.append({
            "kind": "inject", "at": when.get(item.inject_id, pd.NaT),
            "at_minutes": float(item.at_minutes), "inject_id": item.inject_id,
            "event": item.event, "severity": item.severity, "area": item.area_desc,
            "detail": _inject_detail(item), "actor": "", "_rank": 1, "_seq": number,
        })
    for number, event in enumerate(clock_events):
        if event.action not in CLOCK_LABELS:
            continue
        detail = dict(event.detail or {})
        minutes = detail.get("elapsed_minutes")
        rows.append({
            "kind": event.action, "at": _aware(event.at, "clock event at"),
            "at_minutes": float(minutes) if minutes is not None else math.nan,
            "inject_id": "", "event": CLOCK_LABELS[event.action], "severity": "", "area": "",
            "detail": _clock_detail(event.action, detail), "actor": event.actor,
            "_rank": _ORDER_AT_SAME_TIME.get(event.action, 2), "_seq": number,
        })
    frame = pd.DataFrame(rows, columns=[*TIMELINE_COLUMNS, "_rank", "_seq"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    happened = frame[frame["at"].notna()].sort_values(
        ["at", "_rank", "at_minutes", "_seq"], kind="stable")
    pending = frame[frame["at"].isna()].sort_values(["at_minutes", "_seq"], kind="stable")
    out = pd.concat([happened, pending]) if len(pending) else happened
    return out.loc[:, list(TIMELINE_COLUMNS)].reset_index(drop=True)


def speed_history(drill: DrillRecord) -> str:
    """The drill's speeds: the first one, then each change with its wall and scenario time."""
    parts = [f"{drill.initial_speed:g}x from the start"]
    for at, speed in drill.speed_changes:
        parts.append(f"{speed:g}x from {utc_text(at)} "
                     f"({scenario_clock(drill.elapsed_minutes(at))})")
    return "; ".join(parts)


def paused_minutes(drill: DrillRecord, now: dt.datetime) -> float:
    """Wall minutes the drill spent paused up to ``now`` (or its stop)."""
    now = _aware(now, "now")
    end_of_drill = drill.stopped_at or now
    total = 0.0
    for paused_at, resumed_at in drill.pauses:
        end = min(resumed_at or end_of_drill, end_of_drill, now)
        total += max(0.0, (end - paused_at).total_seconds()) / 60.0
    return total


# --------------------------------------------------------------------------------------------
# Who the hazards affected


def _mission_ids(codes: LocationCodes, locations: pd.DataFrame) -> np.ndarray:
    """The mission id of each mission code of ``codes`` (as LocationCodes numbered them)."""
    ids = np.empty(codes.n_missions, dtype=object)
    ids[codes.mission] = locations["mission_id"].astype(str).to_numpy()
    return ids


def affected_by_inject(pairs: PairCodes, codes: LocationCodes,
                       masks: Sequence[np.ndarray]) -> tuple[pd.DataFrame, np.ndarray]:
    """After each inject (a mask of the hazard rows in force then, in firing order): the
    union's missions, people, with_immunity, households and the missions reached for the
    first time (``new_missions``); and, per mission code, the number of the first mask that
    covers it (-1: none)."""
    first = np.full(codes.n_missions, -1, dtype=np.int64)
    rows = []
    for number, given in enumerate(masks):
        mask = np.asarray(given, dtype=bool)
        if len(pairs) and len(mask) <= int(pairs.hazard.max()):
            raise ValueError(f"masks[{number}] has {len(mask)} hazards; the pairs name more")
        counts = union_counts(pairs, codes, mask)
        missions = np.unique(codes.mission[affected_locations(pairs, mask)])
        fresh = missions[first[missions] < 0]
        first[fresh] = number
        rows.append({**{k: int(counts[k]) for k in COUNT_KEYS}, "new_missions": len(fresh)})
    return pd.DataFrame(rows, columns=[*COUNT_KEYS, "new_missions"], dtype=np.int64), first


def outreach_targets(pairs: PairCodes, locations: pd.DataFrame,
                     hazard_mask: np.ndarray) -> pd.DataFrame:
    """target_kind, target_id of everyone the hazards in ``hazard_mask`` cover: each mission
    with premises or people inside (its duty contact), each household with a member inside
    (its head) — the targets :func:`layers.outreach.targets_from_calls` makes of them."""
    loc = affected_locations(pairs, np.asarray(hazard_mask, dtype=bool))
    chosen = locations.iloc[loc]
    missions = pd.unique(chosen["mission_id"].astype(str))
    people = chosen[chosen["kind"].astype(str) == "person"]
    households = pd.unique(people["household_id"].astype(str))
    return pd.DataFrame({
        "target_kind": ["mission"] * len(missions) + ["household"] * len(households),
        "target_id": [*missions, *households],
    }, columns=["target_kind", "target_id"])


# --------------------------------------------------------------------------------------------
# Outreach


def latest_by_target(events: pd.DataFrame) -> pd.DataFrame:
    """The latest event of each target across the boards: target_kind, target_id, status,
    at, board_id, event_id."""
    frame = _events(events)
    last = frame.drop_duplicates(["target_kind", "target_id"], keep="last")
    return last.loc[:, ["target_kind", "target_id", "status", "at", "board_id", "event_id"]
                    ].reset_index(drop=True)


def coverage(events: pd.DataFrame, *, start: dt.datetime) -> pd.DataFrame:
    """Missions and households reached against wall time (:data:`COVERAGE_COLUMNS`).

    At each moment a target counts as reached when its latest status so far (across the
    drill's boards) is reached_safe or reached_needs_assistance. One row at ``start`` (none
    reached), then one per moment either count changed, with the counts after every event of
    that moment; ``minutes`` are wall minutes since ``start``.
    """
    start = _aware(start, "start")
    frame = _events(events)
    reached = frame["status"].isin(REACHED).to_numpy().astype(np.int64)
    before = pd.Series(reached, index=frame.index).groupby(
        [frame["target_kind"], frame["target_id"]], sort=False).shift(1, fill_value=0)
    delta = reached - before.to_numpy(dtype=np.int64)
    is_mission = (frame["target_kind"] == "mission").to_numpy()
    steps = pd.DataFrame({
        "at": frame["at"],
        "missions_reached": np.cumsum(np.where(is_mission, delta, 0)),
        "households_reached": np.cumsum(np.where(is_mission, 0, delta)),
    })
    steps = steps.groupby("at", sort=True).last().reset_index()
    first = pd.DataFrame({"at": pd.to_datetime([start], utc=True), "missions_reached": [0],
                          "households_reached": [0]})
    out = pd.concat([first, steps], ignore_index=True) if len(steps) else first
    out = out.sort_values("at", kind="stable").reset_index(drop=True)
    counts = out[["missions_reached", "households_reached"]].to_numpy()
    changed = np.ones(len(out), dtype=bool)
    changed[1:] = (np.diff(counts, axis=0) != 0).any(axis=1)
    out = out[changed].reset_index(drop=True)
    out["minutes"] = (out["at"] - pd.Timestamp(start)).dt.total_seconds() / 60.0
    for column in ("missions_reached", "households_reached"):
        out[column] = out[column].astype(np.int64)
    return out.loc[:, list(COVERAGE_COLUMNS)]


def first_contact(affected: pd.DataFrame, targets: pd.DataFrame, events: pd.DataFrame,
                  missions: pd.DataFrame) -> pd.DataFrame:
    """Per mission the drill affected, or that is on its boards: how long until outreach first
    got to it (:data:`FIRST_CONTACT_COLUMNS`).

    ``affected``: mission_id, first_inject, affected_at (the wall time of the first inject
    whose union covers it). ``targets``: the boards' targets with the mission each belongs
    to (target_kind, target_id, mission_id). The first contact is the first outreach event
    of any status but not_contacted on the mission or one of its households; ``minutes`` is
    the wall time from affected to that event (NaN: never contacted). Ordered by when the
    missions were affected, then by minutes, then by id.
    """
    frame = _events(events)
    contacts = frame[frame["status"] != "not_contacted"]
    owners = targets.loc[:, ["target_kind", "target_id", "mission_id"]].copy()
    owners["mission_id"] = owners["mission_id"].where(
        owners["mission_id"].notna() & (owners["mission_id"].astype(str) != ""),
        owners["target_id"].where(owners["target_kind"] == "mission"))
    contacts = contacts.merge(owners.drop_duplicates(["target_kind", "target_id"]),
                              on=["target_kind", "target_id"], how="left")
    contacts["mission_id"] = contacts["mission_id"].where(
        contacts["mission_id"].notna(),
        contacts["target_id"].where(contacts["target_kind"] == "mission"))
    contacts = contacts[contacts["mission_id"].notna()]
    firsts = contacts.sort_values(["at", "event_id"], kind="stable").drop_duplicates(
        "mission_id").set_index("mission_id")
    on_board = set(owners["mission_id"].dropna().astype(str))
    ids = list(dict.fromkeys([*affected["mission_id"].astype(str), *sorted(on_board)]))
    rows = pd.DataFrame({"mission_id": pd.Series(ids, dtype=object).astype(str)})
    rows = rows.merge(affected.loc[:, ["mission_id", "first_inject", "affected_at"]].astype(
        {"mission_id": str}), on="mission_id", how="left")
    names = missions.drop_duplicates("mission_id")
    names = names.set_index(names["mission_id"].astype(str))
    rows["mission"] = rows["mission_id"].map(names["name"]).fillna("")
    rows["country"] = rows["mission_id"].map(names["country_name"]).fillna("")
    found = firsts.loc[:, ["at", "status", "target_kind"]].rename(columns={
        "at": "first_contact_at", "status": "first_contact_status",
        "target_kind": "contacted_via"})
    found.index = found.index.astype(str)
    rows = rows.merge(found, left_on="mission_id", right_index=True, how="left")
    rows["first_contact_at"] = pd.to_datetime(rows["first_contact_at"], utc=True)
    rows["contacted_via"] = rows["contacted_via"].map(
        {"mission": "duty contact", "household": "household"})
    rows["affected_at"] = pd.to_datetime(rows["affected_at"], utc=True)
    rows["minutes"] = (rows["first_contact_at"] - rows["affected_at"]).dt.total_seconds() / 60
    rows["on_board"] = rows["mission_id"].isin(on_board)
    rows["first_inject"] = rows["first_inject"].fillna("")
    for column in ("first_contact_status", "contacted_via"):
        rows[column] = rows[column].fillna("")
    rows = rows.sort_values(["affected_at", "minutes", "mission_id"], na_position="last",
                            kind="stable")
    return rows.loc[:, list(FIRST_CONTACT_COLUMNS)].reset_index(drop=True)


def never_reached(targets: pd.DataFrame, latest: pd.DataFrame) -> pd.DataFrame:
    """The boards' targets whose latest status is not a reached one (:data:`NEVER_REACHED_COLUMNS`):
    missions first, then households; by country, mission and id.

    ``targets``: target_kind, target_id, mission_id, mission_name, country_name, contact,
    phone, boards (as :func:`after_action` describes them); ``latest``:
    :func:`latest_by_target`. A target with no event is not_contacted.
    """
    rows = targets.merge(latest.loc[:, ["target_kind", "target_id", "status", "at"]],
                         on=["target_kind", "target_id"], how="left")
    rows["status"] = rows["status"].fillna("not_contacted")
    rows = rows[~rows["status"].isin(REACHED)].copy()
    rows["last_update_at"] = pd.to_datetime(rows["at"], utc=True)
    rows = rows.rename(columns={"mission_name": "mission", "country_name": "country"})
    for column in ("mission_id", "mission", "country", "contact", "phone", "boards"):
        rows[column] = rows[column].map(_one_line)
    rows["_kind"] = (rows["target_kind"] != "mission").astype(int)
    rows = rows.sort_values(["_kind", "country", "mission", "target_id"], kind="stable")
    return rows.loc[:, list(NEVER_REACHED_COLUMNS)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# The whole report


@dataclasses.dataclass(frozen=True)
class AfterAction:
    """One drill's after-action report, as of ``generated_at``."""

    drill: DrillRecord
    scenario: Scenario
    generated_at: dt.datetime
    ended_at: dt.datetime                 # the drill's stop, or generated_at while it runs
    timeline: pd.DataFrame                # TIMELINE_COLUMNS
    counts: pd.DataFrame                  # COUNTS_COLUMNS, one row per inject
    coverage: pd.DataFrame                # COVERAGE_COLUMNS
    first_contact: pd.DataFrame           # FIRST_CONTACT_COLUMNS
    never_reached: pd.DataFrame           # NEVER_REACHED_COLUMNS
    boards: tuple[tuple[int, str, bool], ...]   # (board id, name, closed)
    summary: dict[str, Any]

    @property
    def stopped(self) -> bool:
        return self.drill.stopped_at is not None

    @property
    def rows(self) -> int:
        """Rows of the report's tables (the CSV's data rows)."""
        return sum(len(getattr(self, s)) for s in SECTIONS)


def _describe(targets: pd.DataFrame, missions: pd.DataFrame,
              people: pd.DataFrame) -> pd.DataFrame:
    """The boards' targets with their mission, country, contact and phone from the roster."""
    described = describe_targets(targets.loc[:, ["target_kind", "target_id"]], missions,
                                 people)
    out = targets.loc[:, ["target_kind", "target_id", "boards"]].copy()
    for column in ("mission_id", "mission_name", "country_name", "contact", "phone"):
        out[column] = described[column].map(_one_line).to_numpy()
    return out.reset_index(drop=True)


def after_action(
    drill: DrillRecord, scenario: Scenario, *, now: dt.datetime,
    clock_events: Iterable[ClockEvent], hazard_ids: Sequence[str] | pd.Index,
    pairs: PairCodes, codes: LocationCodes, locations: pd.DataFrame, missions: pd.DataFrame,
    people: pd.DataFrame, boards: Sequence[BoardRecord], events: pd.DataFrame | None,
) -> AfterAction:
    """The after-action report of ``drill`` at ``now``.

    ``hazard_ids`` and ``pairs``: every hazard the scenario's injects make (as
    :func:`layers.scenarios.hazards_at` names them for this drill) and the roster locations
    each covers (rows of ``locations``, coded by ``codes``). The hazards in force after each
    inject are worked out here from the scenario, so the counts are exactly what the drill
    page showed at that scenario minute. ``boards``: the drill's exercise outreach boards;
    ``events``: their history (board_id, event_id, target_kind, target_id, status, at).
    ``missions`` and ``people``: the roster, to name missions and household heads.
    """
    now = _aware(now, "now")
    rows_of = pd.Index(list(hazard_ids))
    if not rows_of.is_unique:
        raise ValueError("hazard_ids must be unique")
    fired = fire_times(drill, scenario, now)
    events = _events(events)
    in_order = [(item, at) for item, at in zip(scenario.injects, fired["fired_at"], strict=True)
                if not pd.isna(at)]
    masks, in_force = [], []
    for item, _ in in_order:
        ids = [h.hazard_id for h in hazards_at(scenario, item.at_minutes,
                                               drill_id=drill.drill_id,
                                               started_at=drill.started_at)]
        positions = rows_of.get_indexer(ids)
        if (positions < 0).any():
            raise ValueError(f"hazard_ids lacks hazards of the drill: "
                             f"{', '.join(np.asarray(ids)[positions < 0][:3])}")
        mask = np.zeros(len(rows_of), dtype=bool)
        mask[positions] = True
        masks.append(mask)
        in_force.append(len(ids))
    counted, first = affected_by_inject(pairs, codes, masks)
    counts = pd.DataFrame({
        "inject_id": [i.inject_id for i in scenario.injects],
        "at_minutes": [float(i.at_minutes) for i in scenario.injects],
        "event": [i.event for i in scenario.injects],
        "severity": [i.severity for i in scenario.injects],
        "fired_at": fired["fired_at"].to_numpy(),
    })
    done = fired["fired_at"].notna().to_numpy()
    for column, values in (("hazards_in_force", in_force),
                           *((c, counted[c].tolist()) for c in (*COUNT_KEYS, "new_missions"))):
        full = pd.array([pd.NA] * len(counts), dtype="Int64")
        full[np.flatnonzero(done)] = values
        counts[column] = full
    counts["fired_at"] = pd.to_datetime(counts["fired_at"], utc=True)
    mission_ids = _mission_ids(codes, locations)
    reached_codes = np.flatnonzero(first >= 0)
    affected = pd.DataFrame({
        "mission_id": mission_ids[reached_codes].astype(str),
        "first_inject": [in_order[n][0].inject_id for n in first[reached_codes]],
        "affected_at": pd.to_datetime(pd.Series([in_order[n][1] for n in first[reached_codes]],
                                                dtype=object), utc=True),
    })
    # whom the boards had to reach: everyone their hazards cover, and anyone with a status
    parts = []
    for board in boards:
        positions = rows_of.get_indexer(list(board.hazard_ids))
        mask = np.zeros(len(rows_of), dtype=bool)
        mask[positions[positions >= 0]] = True
        parts.append(outreach_targets(pairs, locations, mask).assign(board_id=board.board_id))
    parts.append(events.loc[:, ["target_kind", "target_id", "board_id"]])
    listed = pd.concat(parts, ignore_index=True)
    grouped = listed.drop_duplicates().groupby(["target_kind", "target_id"], sort=False)[
        "board_id"].agg(lambda ids: ", ".join(str(b) for b in sorted(set(ids))))
    targets = grouped.rename("boards").reset_index()
    targets = _describe(targets, missions, people) if len(targets) else targets.assign(
        mission_id="", mission_name="", country_name="", contact="", phone="")
    latest = latest_by_target(events)
    contact = first_contact(affected, targets, events, missions)
    missing = never_reached(targets, latest)
    steps = coverage(events, start=drill.started_at)
    ended = drill.stopped_at or now
    kinds = targets["target_kind"]
    reached_now = latest[latest["status"].isin(REACHED)]
    minutes = contact["minutes"].dropna()
    summary: dict[str, Any] = {
        "injects": len(scenario.injects), "injects_fired": int(done.sum()),
        "missions_affected": len(affected),
        "peak_missions": int(counted["missions"].max()) if len(counted) else 0,
        "peak_people": int(counted["people"].max()) if len(counted) else 0,
        "boards": len(boards),
        "missions_on_boards": int((kinds == "mission").sum()),
        "households_on_boards": int((kinds == "household").sum()),
        "missions_reached": int((reached_now["target_kind"] == "mission").sum()),
        "households_reached": int((reached_now["target_kind"] == "household").sum()),
        "missions_contacted": len(minutes),
        "missions_never_contacted": int(contact["minutes"].isna().sum()),
        "median_minutes_to_first_contact": float(minutes.median()) if len(minutes) else None,
        "p90_minutes_to_first_contact": float(minutes.quantile(0.9)) if len(minutes) else None,
        "max_minutes_to_first_contact": float(minutes.max()) if len(minutes) else None,
        "never_reached_missions": int((missing["target_kind"] == "mission").sum()),
        "never_reached_households": int((missing["target_kind"] == "household").sum()),
        "pauses": len(drill.pauses), "paused_minutes": paused_minutes(drill, now),
        "outreach_events": len(events),
    }
    report = AfterAction(
        drill=drill, scenario=scenario, generated_at=now, ended_at=ended,
        timeline=timeline(scenario, fired, clock_events), counts=counts, coverage=steps,
        first_contact=contact, never_reached=missing,
        boards=tuple((b.board_id, _one_line(b.name), b.closed_at is not None) for b in boards),
        summary=summary)
    logger.info("after-action report of drill %s: %d of %d injects fired, %d boards, "
                "%d outreach events, %d missions affected", drill.drill_id,
                summary["injects_fired"], summary["injects"], len(boards), len(events),
                summary["missions_affected"])
    return report


# --------------------------------------------------------------------------------------------
# CSV


def report_header(report: AfterAction, rows: int) -> list[tuple[str, str]]:
    """The ``# key: value`` lines heading the CSV: the call list's lines
    (:func:`layers.calllist.export_header`, EXERCISE first) titled as this report, with the
    drill's facts after the title and its outreach figures before the row count."""
    drill, scenario = report.drill, report.scenario
    hazards = pd.DataFrame({
        "hazard_id": [f"drill:{drill.drill_id}:{i.inject_id}" for i in scenario.injects],
        "event": [i.event for i in scenario.injects],
        "severity": [i.severity for i in scenario.injects],
    })
    lines = export_header(hazards, rows, generated_at=report.generated_at, exercise=True)
    out: list[tuple[str, str]] = []
    for key, value in lines:
        if key == "title":
            out += [("title", TITLE), *((k, _one_line(v)) for k, v in _facts(report))]
        elif key == "hazards":
            out.append(("injects", value))
        elif key == "rows":
            out += [(k, _one_line(v)) for k, v in _figures(report)]
            out.append((key, value))
        else:
            out.append((key, value))
    return out


def _facts(report: AfterAction) -> list[tuple[str, str]]:
    drill, scenario = report.drill, report.scenario
    stopped = drill.stopped_at
    return [
        ("drill", f"{drill.name} (drill {drill.drill_id})"),
        ("scenario", f"{scenario.title} ({scenario.name})"),
        ("kind", drill.kind),
        ("started_by", drill.started_by),
        ("started_utc", utc_text(drill.started_at)),
        ("started_eastern", eastern_text(drill.started_at)),
        ("stopped_utc", utc_text(stopped) if stopped else "not stopped"),
        ("stopped_eastern", eastern_text(stopped) if stopped else "not stopped"),
        ("stopped_by", drill.stopped_by or ""),
        ("state", drill.state),
        ("speed_history", speed_history(drill)),
        ("pauses", f"{report.summary['pauses']} "
                   f"({report.summary['paused_minutes']:.1f} wall minutes paused)"),
        ("scenario_time_reached",
         scenario_clock(drill.elapsed_minutes(report.generated_at))),
    ]


def _figures(report: AfterAction) -> list[tuple[str, str]]:
    s = report.summary
    median = s["median_minutes_to_first_contact"]
    return [
        ("injects_fired", f"{s['injects_fired']} of {s['injects']}"),
        ("missions_affected", str(s["missions_affected"])),
        ("outreach_boards", ", ".join(f"{b} {n}{' (closed)' if c else ''}"
                                      for b, n, c in report.boards) or "none"),
        ("missions_reached", f"{s['missions_reached']} of {s['missions_on_boards']}"),
        ("households_reached", f"{s['households_reached']} of {s['households_on_boards']}"),
        ("missions_never_contacted", str(s["missions_never_contacted"])),
        ("median_minutes_to_first_contact", "" if median is None else f"{median:.1f}"),
    ]


def _status_label(status: object) -> str:
    return STATUS_LABELS.get(str(status), _one_line(status))


def report_frame(report: AfterAction) -> pd.DataFrame:
    """Every section of the report as text rows of one table (:data:`CSV_COLUMNS`), each
    row named by its ``section``; columns a section does not use are empty."""
    not_fired = NOT_FIRED[report.stopped]
    parts: list[pd.DataFrame] = []

    def add(section: str, columns: dict[str, Any]) -> None:
        parts.append(pd.DataFrame({"section": section, **columns}))

    line = report.timeline
    happened = line["at"].notna()
    add("timeline", {
        "kind": line["kind"], "inject_id": line["inject_id"],
        "scenario_time": [scenario_clock(m) if not pd.isna(m) else "" for m in line["at_minutes"]],
        "at_minutes": line["at_minutes"].map(lambda m: "" if pd.isna(m) else f"{m:g}"),
        "wall_time_utc": [utc_text(t) if h else not_fired for t, h in zip(
            line["at"], happened, strict=True)],
        "wall_time_eastern": [eastern_text(t) if h else not_fired for t, h in zip(
            line["at"], happened, strict=True)],
        "event": line["event"].map(_one_line), "severity": line["severity"],
        "area": line["area"].map(_one_line), "detail": line["detail"],
        "actor": line["actor"].map(_one_line),
    })
    counts = report.counts
    fired = counts["fired_at"].notna()

    def number(values: pd.Series) -> list[str]:
        return ["" if pd.isna(v) else str(int(v)) for v in values]

    add("counts", {
        "kind": "inject", "inject_id": counts["inject_id"],
        "scenario_time": counts["at_minutes"].map(scenario_clock),
        "at_minutes": counts["at_minutes"].map(lambda m: f"{m:g}"),
        "wall_time_utc": [utc_text(t) if f else not_fired for t, f in zip(
            counts["fired_at"], fired, strict=True)],
        "wall_time_eastern": [eastern_text(t) if f else not_fired for t, f in zip(
            counts["fired_at"], fired, strict=True)],
        "event": counts["event"].map(_one_line), "severity": counts["severity"],
        **{c: number(counts[c]) for c in ("hazards_in_force", *COUNT_KEYS, "new_missions")},
    })
    steps = report.coverage
    drill = report.drill
    add("coverage", {
        "kind": ["start" if n == 0 else "change" for n in range(len(steps))],
        "scenario_time": [scenario_clock(drill.elapsed_minutes(t.to_pydatetime()))
                          for t in steps["at"]],
        "wall_time_utc": steps["at"].map(utc_text),
        "wall_time_eastern": steps["at"].map(eastern_text),
        "minutes_since_start": steps["minutes"].map(_minutes_text),
        "missions_reached": number(steps["missions_reached"]),
        "households_reached": number(steps["households_reached"]),
    })
    contact = report.first_contact
    add("first_contact", {
        "kind": ["contacted" if not pd.isna(m) else NEVER_CONTACTED
                 for m in contact["minutes"]],
        "inject_id": contact["first_inject"],
        "mission_id": contact["mission_id"], "mission": contact["mission"].map(_one_line),
        "country": contact["country"].map(_one_line),
        "status": [_status_label(s) if s else NEVER_CONTACTED
                   for s in contact["first_contact_status"]],
        "affected_at_utc": contact["affected_at"].map(utc_text),
        "affected_at_eastern": contact["affected_at"].map(eastern_text),
        "first_contact_utc": contact["first_contact_at"].map(utc_text),
        "first_contact_eastern": contact["first_contact_at"].map(eastern_text),
        "minutes_to_first_contact": contact["minutes"].map(_minutes_text),
        "contacted_via": contact["contacted_via"],
        "on_board": contact["on_board"].map({True: "yes", False: "no"}),
    })
    missing = report.never_reached
    add("never_reached", {
        "kind": missing["target_kind"], "target_kind": missing["target_kind"],
        "target_id": missing["target_id"], "mission_id": missing["mission_id"],
        "mission": missing["mission"], "country": missing["country"],
        "contact": missing["contact"], "phone": missing["phone"],
        "status": missing["status"].map(_status_label),
        "last_update_utc": missing["last_update_at"].map(utc_text),
        "last_update_eastern": missing["last_update_at"].map(eastern_text),
        "boards": missing["boards"],
    })
    frame = pd.concat([p for p in parts if len(p)] or [pd.DataFrame(columns=["section"])],
                      ignore_index=True)
    frame = frame.reindex(columns=list(CSV_COLUMNS))
    return frame.astype(object).where(frame.notna(), "").astype(str)


def report_csv(report: AfterAction, path: str | Path,
               extra_header: Sequence[tuple[str, str]] = ()) -> Path:
    """The report as one CSV for Excel (:func:`layers.calllist.write_csv`: UTF-8 with BOM,
    CRLF, ``# key: value`` lines first, every cell neutralised against formulas), one
    ``section`` after another; ``extra_header`` lines go after the report's own."""
    frame = report_frame(report)
    header = report_header(report, len(frame)) + [(str(k), _one_line(v))
                                                    for k, v in extra_header]
    return write_csv(frame, path, header_lines=header)


# --------------------------------------------------------------------------------------------
# The coverage chart (inline SVG: no script, no external resource)

CHART_SIZE = (960, 340)
_MARGIN = {"left": 64, "right": 24, "top": 44, "bottom": 58}
_SERIES = (  # column, label, stroke, dash (dashed for black-and-white printers)
    ("missions_reached", "Missions reached", "#1f4e9c", ""),
    ("households_reached", "Households reached", "#b34700", "7 4"),
)
_TICK_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
                 21600, 43200, 86400, 172800, 604800)


def _svg_text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 12,
              weight: str = "normal", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="#000"{extra}>{html.escape(text)}</text>')


def coverage_svg(steps: pd.DataFrame, *, start: dt.datetime, end: dt.datetime,
                 missions_total: int, households_total: int,
                 marks: Sequence[tuple[dt.datetime, str]] = ()) -> str:
    """Missions and households reached against wall time as an inline ``<svg>``: a step line
    per kind, as a share of those on the boards (a board has tens of households per mission,
    so counts on one axis would flatten the missions), the counts in the legend; injects as
    ticks along the top; axes with labels, times in UTC. Presentation attributes only (no
    style attributes), so the document's strict policy needs nothing more."""
    start = _aware(start, "start")
    end = max(_aware(end, "end"), start + dt.timedelta(seconds=60))
    if len(steps):
        end = max(end, pd.Timestamp(steps["at"].max()).to_pydatetime())
    width, height = CHART_SIZE
    left, right, top, bottom = (_MARGIN[k] for k in ("left", "right", "top", "bottom"))
    plot_w, plot_h = width - left - right, height - top - bottom
    span = (end - start).total_seconds()
    totals = (missions_total, households_total)

    def x_of(moment: Any) -> float:
        seconds = (pd.Timestamp(moment) - pd.Timestamp(start)).total_seconds()
        return left + min(max(seconds / span, 0.0), 1.0) * plot_w

    def y_of(count: float, total: int) -> float:
        share = min(count / total, 1.0) if total > 0 else 0.0
        return top + plot_h - share * plot_h

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           'role="img" aria-labelledby="coverage-title" class="chart">',
           '<title id="coverage-title">Outreach coverage: missions and households reached '
           "against wall time</title>",
           f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" '
           'stroke="#000" stroke-width="1"/>']
    # y axis: share of those on the boards
    for percent in range(0, 101, 20):
        y = y_of(percent, 100)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                   'stroke="#ccc" stroke-width="0.6"/>')
        out.append(_svg_text(left - 6, y + 4, f"{percent}%", anchor="end", size=11))
    out.append(_svg_text(16, top + plot_h / 2, "Reached, of those on the boards", size=12,
                         extra=f' transform="rotate(-90 16 {top + plot_h / 2:.1f})"'))
    # x axis: wall time in UTC
    step = next((s for s in _TICK_SECONDS if span / s <= 8), _TICK_SECONDS[-1])
    tick = math.ceil(start.timestamp() / step) * step
    fmt = "%H:%M:%S" if step < 60 else ("%H:%M" if span <= 86400 else "%m-%d %H:%M")
    while tick <= end.timestamp() + 1e-6:
        moment = dt.datetime.fromtimestamp(tick, dt.timezone.utc)
        x = x_of(moment)
        out.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" '
                   f'y2="{top + plot_h + 5}" stroke="#000" stroke-width="1"/>')
        out.append(_svg_text(x, top + plot_h + 18, f"{moment:{fmt}}", size=11))
        tick += step
    out.append(_svg_text(left + plot_w / 2, height - 12,
                         f"Wall time (UTC) from the drill's start, {utc_text(start)}", size=12))
    # injects as ticks along the top of the plot
    for moment, label in marks:
        x = x_of(moment)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + 8}" '
                   f'stroke="#7a0000" stroke-width="1.5"><title>{html.escape(label)}</title>'
                   "</line>")
    # the step lines, and the legend with the counts
    for number, ((column, label, stroke, dash), total) in enumerate(zip(_SERIES, totals,
                                                                        strict=True)):
        points = [(x_of(start), y_of(0, total))]
        previous = 0
        for moment, count in zip(steps["at"], steps[column], strict=True):
            x = x_of(moment)
            points += [(x, y_of(previous, total)), (x, y_of(int(count), total))]
            previous = int(count)
        points.append((x_of(end), y_of(previous, total)))
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        out.append('<polyline fill="none" stroke-width="2.2" stroke-linejoin="round" '
                   f'stroke="{stroke}"{dashed} points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        x = left + 340 * number
        out.append(f'<line x1="{x}" y1="18" x2="{x + 28}" y2="18" stroke="{stroke}" '
                   f'stroke-width="2.2"{dashed}/>')
        out.append(_svg_text(x + 34, 22, f"{label}: {previous:,} of {total:,} on the boards",
                             anchor="start", size=12))
    out.append(_svg_text(width - right, 22, "ticks along the top: injects", anchor="end",
                         size=10))
    out.append("</svg>")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# HTML

# One inline style sheet, allowed by hash (layers.printable) and nothing else. Prints on A4
# and US Letter alike (the printer's paper, portrait); table headers repeat on every page,
# with EXERCISE in them; the watermark is fixed, so it is on every printed page too.
REPORT_STYLE = """
@page { size: auto; margin: 12mm; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { font-family: "Segoe UI", Arial, "Liberation Sans", "DejaVu Sans", sans-serif;
  font-size: 10pt; line-height: 1.3; color: #000; background: #fff; margin: 0; }
@media screen { body { max-width: 1100px; margin: 1em auto; padding: 0 1em; } }
h1 { font-size: 18pt; margin: 6pt 0 4pt; }
h2 { font-size: 13.5pt; margin: 14pt 0 4pt; break-after: avoid; page-break-after: avoid; }
p { margin: 2pt 0 4pt; }
.exercise-banner { font-size: 15pt; font-weight: bold; border: 3pt solid #000;
  padding: 4pt 8pt; text-align: center; letter-spacing: 2pt; margin: 0 0 6pt; }
.watermark { position: fixed; top: 40%; left: 0; right: 0; text-align: center;
  font-size: 100pt; font-weight: bold; color: rgba(160, 0, 0, 0.12); letter-spacing: 12pt;
  transform: rotate(-24deg); pointer-events: none; z-index: 10; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 1pt 12pt;
  margin: 4pt 0 6pt; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
ul.summary { margin: 2pt 0 6pt 14pt; padding: 0; }
ul.summary li { margin: 1pt 0; }
table { width: 100%; border-collapse: collapse; margin: 4pt 0 8pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border: 0.75pt solid #000; padding: 2pt 4pt; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
th { background: #fff; }
th.table-title { border: none; border-bottom: 1.5pt solid #000; padding: 0 0 2pt;
  font-weight: normal; font-size: 8.5pt; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n, td.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
@media print { body { font-size: 8.5pt; } h1 { font-size: 16pt; } }
tr.clock td { font-style: italic; }
tr.not-fired td { color: #555; }
.flag { font-weight: bold; }
.muted { color: #444; }
.none { font-style: italic; margin: 4pt 0 8pt; }
figure.chart { margin: 6pt 0 8pt; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 9pt; }
"""
REPORT_CSP = style_policy(REPORT_STYLE)


def _e(value: object) -> str:
    return html.escape(_one_line(value), quote=True)


def _table(title: str, header: Sequence[tuple[str, str]], rows: Iterable[str]) -> list[str]:
    """A table whose head (repeated on every printed page) names the report and EXERCISE."""
    cells = "".join(f'<th class="{css}">{html.escape(h)}</th>' if css else
                    f"<th>{html.escape(h)}</th>" for h, css in header)
    return ["<table>", "<thead>",
            f'<tr><th class="table-title" colspan="{len(header)}">EXERCISE · '
            f"{html.escape(title)}</th></tr>",
            f"<tr>{cells}</tr>", "</thead>", "<tbody>", *rows, "</tbody>", "</table>"]


def _td(value: object, css: str = "") -> str:
    return f'<td class="{css}">{_e(value)}</td>' if css else f"<td>{_e(value)}</td>"


def _count_cell(value: Any) -> str:
    return '<td class="n"></td>' if _missing(value) else f'<td class="n">{int(value):,}</td>'


def _when_cell(value: object, fallback: str = "") -> str:
    if _missing(value):
        return f'<td class="when">{html.escape(fallback)}</td>'
    return (f'<td class="when">{html.escape(utc_text(value))}<br>'
            f'<span class="muted">{html.escape(eastern_text(value))}</span></td>')


def _summary_items(report: AfterAction) -> list[str]:
    s = report.summary
    items = [
        f"Injects fired: {s['injects_fired']} of {s['injects']}.",
        f"Missions affected by the drill's hazards: {s['missions_affected']:,} "
        f"(at most {s['peak_missions']:,} missions and {s['peak_people']:,} people at once).",
    ]
    if report.boards:
        items.append(
            f"Outreach: {len(report.boards)} exercise board(s); missions reached "
            f"{s['missions_reached']:,} of {s['missions_on_boards']:,}, households reached "
            f"{s['households_reached']:,} of {s['households_on_boards']:,} "
            f"({s['outreach_events']:,} status updates).")
    else:
        items.append("Outreach: no exercise board was opened for this drill.")
    if s["median_minutes_to_first_contact"] is not None:
        items.append(
            f"Time to first contact: median {s['median_minutes_to_first_contact']:.1f} min, "
            f"90th percentile {s['p90_minutes_to_first_contact']:.1f} min, longest "
            f"{s['max_minutes_to_first_contact']:.1f} min "
            f"({s['missions_contacted']:,} missions contacted).")
    items.append(f"Missions never contacted: {s['missions_never_contacted']:,}. Never "
                 f"reached on the boards: {s['never_reached_missions']:,} missions, "
                 f"{s['never_reached_households']:,} households.")
    return [f"<li>{html.escape(i)}</li>" for i in items]


def report_html(report: AfterAction) -> str:
    """The report as a standalone HTML document to read on screen and print (A4 or Letter):
    EXERCISE in a banner, a watermark and every table head, so on every printed page; the
    coverage chart drawn inline; every value escaped; no script and no external resource,
    and its own Content-Security-Policy (:data:`REPORT_CSP`)."""
    drill, scenario, summary = report.drill, report.scenario, report.summary
    name = _one_line(drill.name) or f"drill {drill.drill_id}"
    not_fired = NOT_FIRED[report.stopped]
    body = ['<div class="watermark" aria-hidden="true">EXERCISE</div>',
            f'<p class="exercise-banner">{html.escape(EXERCISE_TEXT)}</p>',
            "<header>",
            f"<h1>After-action report: {html.escape(name)}</h1>",
            '<dl class="facts">']
    facts = dict(_facts(report))
    shown = [
        ("Drill", facts["drill"]),
        ("Scenario", facts["scenario"]),
        ("Kind", facts["kind"]),
        ("Started by", facts["started_by"]),
        ("Started", f"{facts['started_utc']} · {facts['started_eastern']}"),
        ("Stopped", (f"{facts['stopped_utc']} · {facts['stopped_eastern']} by "
                     f"{facts['stopped_by']}") if drill.stopped_at else
         "not stopped: the figures are as of the report's time"),
        ("State", facts["state"]),
        ("Speed", facts["speed_history"]),
        ("Pauses", facts["pauses"]),
        ("Scenario time reached", facts["scenario_time_reached"]),
        ("Report generated", f"{utc_text(report.generated_at)} · "
                             f"{eastern_text(report.generated_at)}"),
    ]
    body += [f"<dt>{html.escape(k)}</dt><dd>{_e(v)}</dd>" for k, v in shown]
    body += ["</dl>", "</header>",
             "<section>", "<h2>Summary</h2>", '<ul class="summary">', *_summary_items(report),
             "</ul>", "</section>"]
    label = f"{name} · drill {drill.drill_id}"
    # 1. timeline
    rows = []
    for r in report.timeline.itertuples(index=False):
        clock = r.kind != "inject"
        css = "clock" if clock else ("" if not pd.isna(r.at) else "not-fired")
        what = r.event if not clock else f"{r.event}{' by ' + r.actor if r.actor else ''}"
        minute = "" if pd.isna(r.at_minutes) else scenario_clock(r.at_minutes)
        rows.append(
            f'<tr class="{css}"><td class="when">{html.escape(minute)}</td>'
            f"{_when_cell(r.at, not_fired)}{_td(what)}{_td(r.severity)}{_td(r.area)}"
            f"{_td(r.detail)}</tr>")
    body += ["<section>", "<h2>1. Timeline</h2>",
             '<p class="muted">Every inject of the scenario, with the wall time it fired, and '
             "the drill's clock (start, pauses, speed changes, stop) in between.</p>",
             *_table(f"{label} · timeline", [("Scenario", ""), ("Wall time", ""),
                                             ("Event", ""), ("Severity", ""), ("Area", ""),
                                             ("Detail", "")], rows),
             "</section>"]
    # 2. counts
    rows = []
    for r in report.counts.itertuples(index=False):
        rows.append(
            f'<tr class="{"" if not pd.isna(r.fired_at) else "not-fired"}">'
            f'<td class="when">{html.escape(scenario_clock(r.at_minutes))}</td>'
            f"{_when_cell(r.fired_at, not_fired)}{_td(r.event)}"
            f"{_count_cell(r.hazards_in_force)}{_count_cell(r.missions)}"
            f"{_count_cell(r.new_missions)}{_count_cell(r.people)}"
            f"{_count_cell(r.with_immunity)}{_count_cell(r.households)}</tr>")
    body += ["<section>", "<h2>2. Who the drill's hazards affected, after each inject</h2>",
             '<p class="muted">The union of the drill\'s hazards in force once the inject had '
             "fired: each mission, person and household counted once.</p>",
             *_table(f"{label} · affected after each inject",
                     [("Scenario", ""), ("Fired", ""), ("Inject", ""),
                      ("Hazards in force", "n"), ("Missions", "n"), ("New missions", "n"),
                      ("People", "n"), ("With immunity", "n"), ("Households", "n")], rows),
             "</section>"]
    # 3. coverage
    marks = [(t.to_pydatetime(), f"{scenario_clock(m)} {e}") for t, m, e in zip(
        report.counts["fired_at"], report.counts["at_minutes"], report.counts["event"],
        strict=True) if not pd.isna(t)]
    boards = "; ".join(f"board {b}: {n}{' (closed)' if c else ''}" for b, n, c in report.boards)
    body += ["<section>", "<h2>3. Outreach coverage</h2>"]
    if report.boards:
        body += [
            f"<p>Exercise boards: {html.escape(boards)}. A target counts as reached while its "
            "latest status is Reached: safe or Reached: needs assistance.</p>",
            '<figure class="chart">',
            coverage_svg(report.coverage, start=report.drill.started_at,
                         end=report.ended_at, missions_total=summary["missions_on_boards"],
                         households_total=summary["households_on_boards"], marks=marks),
            f"<figcaption>EXERCISE · missions reached {summary['missions_reached']:,} of "
            f"{summary['missions_on_boards']:,}; households reached "
            f"{summary['households_reached']:,} of {summary['households_on_boards']:,}. "
            "Each change is a row of the CSV's coverage section.</figcaption>",
            "</figure>"]
    else:
        body.append('<p class="none">No exercise outreach board was opened for this '
                    "drill.</p>")
    body.append("</section>")
    # 4. time to first contact
    rows = []
    injects = {i.inject_id: f"{scenario_clock(i.at_minutes)} {i.event}"
               for i in scenario.injects}
    for r in report.first_contact.itertuples(index=False):
        contacted = not pd.isna(r.minutes)
        rows.append(
            f"<tr>{_td(r.mission)}{_td(r.country)}"
            f"{_td(injects.get(r.first_inject, r.first_inject))}"
            f"{_when_cell(r.affected_at)}{_when_cell(r.first_contact_at)}"
            + (f'<td class="n">{r.minutes:.1f}</td>' if contacted else
               f'<td class="flag">{NEVER_CONTACTED}</td>')
            + f"{_td(_status_label(r.first_contact_status) if contacted else '')}"
            f"{_td(r.contacted_via)}{_td('yes' if r.on_board else 'no')}</tr>")
    body += ["<section>", "<h2>4. Time to first contact</h2>",
             '<p class="muted">Per mission the drill affected: wall minutes from the first '
             "inject that reached it to the first outreach update (any status but Not "
             "contacted) on the mission or one of its households.</p>"]
    body += _table(f"{label} · time to first contact",
                   [("Mission", ""), ("Country", ""), ("First affected by", ""),
                    ("Affected at", ""), ("First contact", ""), ("Minutes", "n"),
                    ("Status then", ""), ("Via", ""), ("On a board", "")], rows) \
        if rows else ['<p class="none">The drill\'s hazards affected no mission.</p>']
    body.append("</section>")
    # 5. never reached
    rows = []
    for r in report.never_reached.itertuples(index=False):
        who = "Duty contact" if r.target_kind == "mission" else (r.contact or "Household")
        rows.append(
            f"<tr>{_td('Mission' if r.target_kind == 'mission' else 'Household')}"
            f"{_td(r.mission)}{_td(r.country)}{_td(who)}{_td(r.phone)}"
            f"{_td(_status_label(r.status))}{_when_cell(r.last_update_at)}{_td(r.boards)}</tr>")
    body += ["<section>", "<h2>5. Never reached</h2>",
             '<p class="muted">Missions and households on the drill\'s boards whose latest '
             "status is not a reached one. Personal data: for coordinators only.</p>"]
    body += _table(f"{label} · never reached",
                   [("Target", ""), ("Mission", ""), ("Country", ""), ("Contact", ""),
                    ("Phone", ""), ("Latest status", ""), ("Last update", ""),
                    ("Boards", "")], rows) \
        if rows else ['<p class="none">Everyone on the drill\'s boards was reached.</p>']
    body.append("</section>")
    title = f"EXERCISE · After-action report: {name} ({scenario.title})"
    text = document(title, REPORT_STYLE, body)
    logger.info("after-action report HTML of drill %s: %d characters", drill.drill_id, len(text))
    return text
