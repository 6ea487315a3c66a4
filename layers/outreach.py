"""Outreach: who a board must contact (missions and households) and how far it has got.

Pure functions over the call list (:func:`layers.calllist.call_list`) and the latest status
of each target; no store, no dash.

* A **target** is an affected mission (reached through its duty contact) or an affected
  household (reached through its head, or its first affected member). One row each, in the
  call list's calling order.
* A target's **status** is one of :data:`STATUSES`; with no event yet it is "not_contacted".
  "Reached" means reached_safe or reached_needs_assistance.
* :func:`board_rows` joins targets, latest statuses and when each target first appeared (a
  target that appeared after the board began is flagged ``new`` until someone records a
  status for it).
* :func:`progress` counts missions and households reached, attempted, needing assistance.

Errors: bad arguments raise ``ValueError`` naming the argument and what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

STATUSES: tuple[str, ...] = (
    "not_contacted", "attempted", "reached_safe", "reached_needs_assistance", "unreachable",
)
STATUS_LABELS: dict[str, str] = {
    "not_contacted": "Not contacted", "attempted": "Attempted",
    "reached_safe": "Reached: safe", "reached_needs_assistance": "Reached: needs assistance",
    "unreachable": "Unreachable",
}
REACHED: tuple[str, ...] = ("reached_safe", "reached_needs_assistance")
TARGET_KINDS: tuple[str, ...] = ("mission", "household")
MAX_NOTE_CHARS = 2000

TARGET_COLUMNS: tuple[str, ...] = (
    "order", "target_kind", "target_id", "mission_id", "mission_name", "mission_type",
    "country_name", "office", "contact", "role", "immunity", "phone", "email", "language",
    "people", "worst_severity", "hazard_ids",
)
BOARD_COLUMNS: tuple[str, ...] = (
    *TARGET_COLUMNS, "status", "note", "updated_by", "updated_at", "event_id", "updates",
    "first_seen_at", "new",
)
IMMUNITY_RANK = {"full": 0, "official_acts": 1, "none": 2, "": 3}


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    return status


def check_target(kind: str, target_id: str) -> tuple[str, str]:
    if kind not in TARGET_KINDS:
        raise ValueError(f"target_kind must be one of {', '.join(TARGET_KINDS)}, got {kind!r}")
    if not isinstance(target_id, str) or not target_id.strip() or len(target_id) > 64:
        raise ValueError(f"target_id must be a non-empty id of at most 64 characters, got "
                         f"{target_id!r}")
    return kind, target_id


def targets_from_calls(calls: pd.DataFrame) -> pd.DataFrame:
    """One row per affected mission and household, in calling order (:data:`TARGET_COLUMNS`).

    A mission's row is its duty contact's; a household's is its head's (or, when only
    dependents are affected, its first listed member's), with the household's best immunity
    and its number of affected people.
    """
    missing = [c for c in ("order", "contact_kind", "mission_id", "household_id", "person_id",
                           "immunity") if c not in calls.columns]
    if missing:
        raise ValueError(f"calls is missing column(s) {', '.join(missing)}")
    if calls.empty:
        return pd.DataFrame(columns=list(TARGET_COLUMNS))
    duty = calls[calls["contact_kind"] == "duty"]
    missions = pd.DataFrame({
        "order": duty["order"].to_numpy(), "target_kind": "mission",
        "target_id": duty["mission_id"].to_numpy(), "contact": "Duty contact",
        "role": "", "immunity": "", "people": 0,
    }, index=duty.index)
    members = calls[calls["contact_kind"] != "duty"]
    first = members.sort_values("order", kind="stable").drop_duplicates("household_id")
    sizes = members.groupby("household_id")["person_id"].size()
    best = members.assign(_rank=members["immunity"].map(IMMUNITY_RANK).fillna(3)).groupby(
        "household_id")["_rank"].min()
    best_label = {v: k for k, v in IMMUNITY_RANK.items()}
    households = pd.DataFrame({
        "order": first["order"].to_numpy(), "target_kind": "household",
        "target_id": first["household_id"].to_numpy(),
        "contact": first["name"].to_numpy(), "role": first["role"].to_numpy(),
        "immunity": best.reindex(first["household_id"]).map(best_label).to_numpy(),
        "people": sizes.reindex(first["household_id"]).to_numpy(),
    }, index=first.index)
    targets = pd.concat([missions, households]).sort_values("order", kind="stable")
    source = calls.loc[targets.index]
    for column in ("mission_id", "mission_name", "mission_type", "country_name", "office",
                   "phone", "email", "language", "worst_severity", "hazard_ids"):
        targets[column] = source[column].to_numpy()
    targets["people"] = targets["people"].astype(int)
    return targets.loc[:, list(TARGET_COLUMNS)].reset_index(drop=True)


def board_rows(targets: pd.DataFrame, latest: pd.DataFrame, first_seen: pd.DataFrame,
               board_created_at: datetime) -> pd.DataFrame:
    """Targets with their latest status (:data:`BOARD_COLUMNS`).

    ``latest``: one row per target with an event (target_kind, target_id, status, note,
    actor, at, event_id, updates). ``first_seen``: target_kind, target_id, first_seen_at.
    Targets that are no longer affected but have a status stay on the board (their hazard
    shrank or moved: whoever was contacted stays on record), after the current ones.
    """
    if board_created_at.utcoffset() is None:
        raise ValueError("board_created_at must be timezone-aware")
    key = ["target_kind", "target_id"]
    rows = targets.merge(latest.rename(columns={"actor": "updated_by", "at": "updated_at"}),
                         on=key, how="outer", indicator=True)
    gone = (rows["_merge"] == "right_only").to_numpy()
    rows["order"] = rows["order"].astype("float64")
    rows.loc[gone, "order"] = np.inf  # no longer affected: after everyone who is
    rows = rows.merge(first_seen, on=key, how="left")
    rows["status"] = rows["status"].fillna("not_contacted")
    rows["note"] = rows["note"].fillna("")
    rows["updated_by"] = rows["updated_by"].fillna("")
    rows["event_id"] = rows["event_id"].fillna(0).astype(int)
    rows["updates"] = rows["updates"].fillna(0).astype(int)
    rows["people"] = rows["people"].fillna(0).astype(int)
    seen = pd.to_datetime(rows["first_seen_at"], utc=True)
    rows["new"] = (seen > pd.Timestamp(board_created_at)).to_numpy() & (rows["updates"] == 0)
    for column in TARGET_COLUMNS:
        if column not in ("order", "people"):
            rows[column] = rows[column].fillna("")
    rows = rows.sort_values(["order", "target_kind", "target_id"], kind="stable")
    return rows.loc[:, list(BOARD_COLUMNS)].reset_index(drop=True)


def progress(rows: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per target kind: total, reached, needs_assistance, attempted, unreachable, not
    contacted, new."""
    out = {}
    for kind in TARGET_KINDS:
        part = rows[rows["target_kind"] == kind]
        status = part["status"]
        out[kind] = {
            "total": len(part),
            "reached": int(status.isin(REACHED).sum()),
            "needs_assistance": int((status == "reached_needs_assistance").sum()),
            "attempted": int((status == "attempted").sum()),
            "unreachable": int((status == "unreachable").sum()),
            "not_contacted": int((status == "not_contacted").sum()),
            "new": int(part["new"].sum()),
        }
    return out


def views(rows: pd.DataFrame, view: str) -> pd.DataFrame:
    """The rows of one board view: all, not_reached, needs_assistance, new."""
    if view == "all":
        return rows
    if view == "not_reached":
        return rows[~rows["status"].isin(REACHED)]
    if view == "needs_assistance":
        return rows[rows["status"] == "reached_needs_assistance"]
    if view == "new":
        return rows[rows["new"]]
    raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")


VIEWS: tuple[str, ...] = ("all", "not_reached", "needs_assistance", "new")


def group_labels(rows: pd.DataFrame, by: str, liaisons: dict[str, str] | None = None,
                 ) -> pd.Series:
    """A group label per row: by sending country (with who liaises, when ``liaisons`` is
    given), OFM office or mission."""
    if by == "country":
        liaisons = liaisons or {}
        return rows["country_name"].map(
            lambda c: f"{c} — liaison: {liaisons[c]}" if c in liaisons else str(c))
    if by == "office":
        return rows["office"].astype(str)
    if by == "mission":
        return rows["mission_name"].astype(str)
    raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, got {by!r}")


GROUPINGS: tuple[str, ...] = ("country", "office", "mission")


def liaisons(missions: pd.DataFrame, countries: Sequence[str]) -> dict[str, str]:
    """Who liaises for each sending country: its embassy (else its first mission by id)."""
    wanted = missions[missions["country_name"].isin(list(countries))]
    rank = (wanted["mission_type"] != "embassy").astype(int)
    lead = wanted.assign(_rank=rank).sort_values(["_rank", "mission_id"]).drop_duplicates(
        "country_name")
    return {c: f"{n} ({p})" for c, n, p in zip(lead["country_name"], lead["name"],
                                                lead["duty_phone"], strict=True)}


def describe_targets(targets: pd.DataFrame, missions: pd.DataFrame,
                     people: pd.DataFrame) -> pd.DataFrame:
    """Mission, contact and phone of targets from the roster alone (for targets no longer
    affected by any of the board's hazards, which the call list no longer names).

    ``targets``: target_kind, target_id. Returns those columns of :data:`TARGET_COLUMNS`
    that the roster can give, indexed like ``targets``; unknown ids are left blank.
    """
    by_mission = missions.set_index("mission_id")
    out = pd.DataFrame(index=targets.index, columns=[
        "mission_id", "mission_name", "mission_type", "country_name", "office", "contact",
        "role", "immunity", "phone", "email", "language", "people"], dtype=object)
    is_mission = (targets["target_kind"] == "mission").to_numpy()
    ids = targets["target_id"].astype(str)
    known = ids[is_mission][ids[is_mission].isin(by_mission.index)]
    if len(known):
        rows = by_mission.loc[known.to_numpy()]
        out.loc[known.index, "mission_id"] = known.to_numpy()
        out.loc[known.index, "contact"] = "Duty contact"
        for column, source in (("mission_name", "name"), ("mission_type", "mission_type"),
                               ("country_name", "country_name"), ("office", "ofm_office"),
                               ("phone", "duty_phone"), ("email", "email"),
                               ("language", "language")):
            out.loc[known.index, column] = rows[source].to_numpy()
    households = ids[~is_mission]
    members = people[people["household_id"].isin(households)]
    if len(members):
        rank = members["role"].map({r: i for i, r in enumerate((
            "diplomatic_agent", "consular_officer", "io_staff", "admin_technical_staff",
            "service_staff", "dependent"))}).fillna(9)
        heads = members.assign(_rank=rank).sort_values(["_rank", "person_id"]).drop_duplicates(
            "household_id").set_index("household_id")
        sizes = members.groupby("household_id").size()
        best = members.assign(_i=members["immunity"].map(IMMUNITY_RANK).fillna(3)).groupby(
            "household_id")["_i"].min().map({v: k for k, v in IMMUNITY_RANK.items()})
        found = households[households.isin(heads.index)]
        head = heads.loc[found.to_numpy()]
        mission = by_mission.reindex(head["mission_id"])
        out.loc[found.index, "mission_id"] = head["mission_id"].to_numpy()
        out.loc[found.index, "mission_name"] = mission["name"].to_numpy()
        out.loc[found.index, "mission_type"] = mission["mission_type"].to_numpy()
        out.loc[found.index, "country_name"] = mission["country_name"].to_numpy()
        out.loc[found.index, "office"] = mission["ofm_office"].to_numpy()
        for column in ("role", "phone", "email", "language"):
            out.loc[found.index, column] = head[column].to_numpy()
        out.loc[found.index, "contact"] = head["name"].to_numpy()
        out.loc[found.index, "immunity"] = best.reindex(found.to_numpy()).to_numpy()
        out.loc[found.index, "people"] = sizes.reindex(found.to_numpy()).to_numpy()
    return out
