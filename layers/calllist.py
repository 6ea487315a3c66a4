"""Call lists: who to call, in which order, when hazards affect missions and their people.

Pure functions over the roster frames (:mod:`layers.schema` columns) and the impact pairs of
:meth:`layers.impact.ImpactIndex.affected`; pandas and openpyxl only, no store, no dash.

* :func:`call_list` — one row per affected contact, in calling order (see its docstring).
* :func:`export_header` — the ``(key, value)`` lines that head every export: hazards, when
  (UTC and US Eastern), rows, and ``EXERCISE`` for drills.
* :func:`write_csv` / :func:`write_xlsx` — the files, with spreadsheet formulas neutralised.

Formula neutralisation (CSV injection). A CSV cell whose text starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading apostrophe (:func:`neutralise_formula`),
*phone numbers included*. Leaving phone-shaped values alone was rejected: Excel evaluates an
unprotected ``+1 202-555-0142`` as a formula too (the space is its intersection operator:
``#NULL!``), so the number would be lost either way; with the apostrophe Excel and LibreOffice
store the cell as text and Excel hides the apostrophe, so the number is shown and copied intact.
In XLSX no apostrophe is added to the value: every string is written as a text cell (never a
formula) with Excel's own "quote prefix" cell flag, which is what typing an apostrophe does, so
phones and payloads read back exactly as they were and stay text when a user edits the cell.

Errors: bad arguments raise ``ValueError`` naming the argument and what is allowed.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from layers.impact import CAP_SEVERITIES
from layers.schema import OFM_OFFICES, ofm_office_for

logger = logging.getLogger(__name__)

CALL_LIST_COLUMNS: tuple[str, ...] = (
    "order", "office", "country_name", "mission_id", "mission_name", "mission_type",
    "contact_kind", "person_id", "name", "role", "immunity", "phone", "email", "language",
    "household_id", "hazard_ids", "worst_severity",
)
CONTACT_KINDS: tuple[str, ...] = ("duty", "head_of_household", "household_member")
# Who heads a household: the first non-dependent in this order (ties by person id).
HEAD_ROLE_ORDER: tuple[str, ...] = (
    "diplomatic_agent", "consular_officer", "io_staff", "admin_technical_staff", "service_staff",
    "dependent",
)
IMMUNITY_ORDER: tuple[str, ...] = ("full", "official_acts", "none")
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
EASTERN = ZoneInfo("America/New_York")
SHEET_NAME_MAX = 31
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_RESERVED_SHEET_NAMES = frozenset({"history"})  # Excel reserves "History"
_MAX_COLUMN_WIDTH = 60

_PAIR_COLUMNS = ("hazard_id", "location_id")
_HAZARD_COLUMNS = ("hazard_id", "event", "severity")
_MISSION_NEEDS = (
    "mission_id", "name", "country_name", "mission_type", "jurisdiction", "lat", "duty_phone",
    "email", "language", "ofm_office",
)
_PERSON_NEEDS = (
    "person_id", "mission_id", "household_id", "role", "immunity", "name", "phone", "email",
    "language",
)


# --------------------------------------------------------------------------------------------
# Validation helpers


def _require(frame: Any, argument: str, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{argument} must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{argument} is missing column(s) {', '.join(missing)}")
    return frame


def _text(series: pd.Series) -> pd.Series:
    """Plain strings, missing values as ""; Categoricals become their labels."""
    return series.astype(object).where(series.notna(), "").astype(str)


def _few(values: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def _codes(values: pd.Series, vocabulary: Sequence[str], argument: str) -> pd.Series:
    """Rank of each value in ``vocabulary``; unknown values are a ValueError."""
    rank = values.map({v: i for i, v in enumerate(vocabulary)})
    if rank.isna().any():
        bad = sorted(set(values[rank.isna()]))
        raise ValueError(f"{argument} must be one of {', '.join(vocabulary)}; got {_few(bad)}")
    return rank.astype("int64")


# --------------------------------------------------------------------------------------------
# The call list


def _severity_ranks(hazards: pd.DataFrame) -> pd.Series:
    """CAP severity rank per hazard id (0 = extreme); missing severities are "unknown"."""
    ids = _text(hazards["hazard_id"])
    if ids.duplicated().any():
        dupes = sorted(set(ids[ids.duplicated()]))
        raise ValueError(f"hazards has duplicate hazard_id {_few(dupes)}")
    severity = _text(hazards["severity"]).str.strip().str.lower().replace("", "unknown")
    ranks = _codes(severity, CAP_SEVERITIES, "hazards severity")
    return pd.Series(ranks.to_numpy(), index=ids.to_numpy())


def _hazard_summary(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per ``key``: sorted ";"-joined hazard ids and the worst (lowest) severity rank."""
    pairs = frame.loc[:, [key, "hazard_id"]].drop_duplicates().sort_values(
        [key, "hazard_id"], kind="stable")
    keys = pairs[key].to_numpy(dtype=object)
    ids = pairs["hazard_id"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else \
        np.empty(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(keys)].astype(np.int64) if len(keys) else starts
    # most people are in one hazard: join only where a key has several
    joined = [ids[a] if b - a == 1 else ";".join(ids[a:b])
              for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return pd.DataFrame({
        "hazard_ids": pd.Series(joined, index=pd.Index(keys[starts], name=key), dtype=object),
        "rank": frame.groupby(key, sort=False)["rank"].min(),
    })


def _offices(missions: pd.DataFrame) -> pd.Series:
    """Each mission's OFM office: the roster's, or derived from its jurisdiction and latitude."""
    office = _text(missions["ofm_office"])
    lat = pd.to_numeric(missions["lat"], errors="coerce")
    derived = [
        o or ofm_office_for(j, None if pd.isna(y) else float(y))
        for o, j, y in zip(office, _text(missions["jurisdiction"]), lat, strict=True)
    ]
    return pd.Series(derived, index=missions.index)


def call_list(
    pairs: pd.DataFrame, missions: pd.DataFrame, people: pd.DataFrame, hazards: pd.DataFrame
) -> pd.DataFrame:
    """One row per affected contact, in calling order; columns :data:`CALL_LIST_COLUMNS`.

    A mission is affected when its own location or any of its people's residences is. Missions
    are called by their worst hazard (CAP order), then affected people with full immunity, then
    with official-acts immunity, then affected people (more first), then mission id. Within a
    mission: the duty contact, then each household's head (the best-ranked non-dependent of
    :data:`HEAD_ROLE_ORDER`, ties by person id), then the other members household by household;
    households go by their worst hazard, then best immunity, then household id. Only affected
    people are listed (a household whose affected members are all dependents has no head row);
    a person without a household id is a household alone. Each person appears once, with all
    their hazard ids and the worst severity.
    """
    _require(pairs, "pairs", _PAIR_COLUMNS)
    _require(missions, "missions", _MISSION_NEEDS)
    _require(people, "people", _PERSON_NEEDS)
    _require(hazards, "hazards", _HAZARD_COLUMNS)
    rank_of = _severity_ranks(hazards)

    hits = pd.DataFrame({"hazard_id": _text(pairs["hazard_id"]),
                         "location_id": _text(pairs["location_id"])}).drop_duplicates()
    unknown = sorted(set(hits["hazard_id"]) - set(rank_of.index))
    if unknown:
        raise ValueError(f"pairs names hazard_id(s) not in hazards: {_few(unknown)}")
    kind = hits["location_id"].str[:2]
    bad = sorted(set(hits.loc[~kind.isin(["M:", "P:"]), "location_id"]))
    if bad:
        raise ValueError(f"pairs location_id must start with 'M:' or 'P:'; got {_few(bad)}")
    hits["rank"] = rank_of.reindex(hits["hazard_id"]).to_numpy()
    hits["id"] = hits["location_id"].str[2:]

    m = missions.assign(mission_id=_text(missions["mission_id"]))
    if m["mission_id"].duplicated().any():
        raise ValueError("missions has duplicate mission_id values")
    p = people.assign(person_id=_text(people["person_id"]), mission_id=_text(people["mission_id"]))
    if p["person_id"].duplicated().any():
        raise ValueError("people has duplicate person_id values")

    person_hits = hits[kind == "P:"]
    mission_hits = hits[kind == "M:"]
    for argument, ids, known in (("person", person_hits["id"], p["person_id"]),
                                 ("mission", mission_hits["id"], m["mission_id"])):
        missing = sorted(set(ids) - set(known))
        if missing:
            raise ValueError(f"pairs names {argument} id(s) not in the roster: {_few(missing)}")

    # affected people, with their hazards
    per_person = _hazard_summary(person_hits, "id")
    hit_people = p[p["person_id"].isin(per_person.index)].copy()
    orphans = sorted(set(hit_people["mission_id"]) - set(m["mission_id"]))
    if orphans:
        raise ValueError(f"people names mission_id(s) not in missions: {_few(orphans)}")
    hit_people["hazard_ids"] = per_person["hazard_ids"].reindex(hit_people["person_id"]).to_numpy()
    hit_people["rank"] = per_person["rank"].reindex(hit_people["person_id"]).to_numpy()
    hit_people["role"] = _text(hit_people["role"])
    hit_people["immunity"] = _text(hit_people["immunity"])
    hit_people["role_rank"] = _codes(hit_people["role"], HEAD_ROLE_ORDER, "people role")
    hit_people["imm_rank"] = _codes(hit_people["immunity"], IMMUNITY_ORDER, "people immunity")
    household = _text(hit_people["household_id"])
    hit_people["household_id"] = household
    hit_people["hh_key"] = household.where(household != "", "P:" + hit_people["person_id"])

    # affected missions: own location or any member's residence
    via_people = person_hits.merge(
        hit_people[["person_id", "mission_id"]], left_on="id", right_on="person_id"
    )
    mission_all = pd.concat([
        mission_hits[["hazard_id", "rank"]].assign(mission_id=mission_hits["id"]),
        via_people[["hazard_id", "rank", "mission_id"]],
    ], ignore_index=True)
    per_mission = _hazard_summary(mission_all, "mission_id")
    counts = hit_people.groupby("mission_id").agg(
        full=("immunity", lambda s: int((s == "full").sum())),
        official=("immunity", lambda s: int((s == "official_acts").sum())),
        affected=("person_id", "size"),
    )
    per_mission = per_mission.join(counts).fillna({"full": 0, "official": 0, "affected": 0})
    mission_rows = m[m["mission_id"].isin(per_mission.index)].set_index("mission_id")
    per_mission = per_mission.join(mission_rows).join(
        _offices(mission_rows.reset_index()).set_axis(mission_rows.index).rename("office")
    )
    per_mission = per_mission.reset_index(names="mission_id").sort_values(
        ["rank", "full", "official", "affected", "mission_id"],
        ascending=[True, False, False, False, True], kind="stable",
    )
    per_mission["mission_pos"] = range(len(per_mission))

    # households: worst hazard, then best immunity, then id; the head is the first non-dependent
    hh = hit_people.groupby("hh_key").agg(hh_rank=("rank", "min"), hh_imm=("imm_rank", "min"))
    hit_people = hit_people.join(hh, on="hh_key").sort_values(
        ["hh_key", "role_rank", "person_id"], kind="stable"
    )
    first = ~hit_people["hh_key"].duplicated()
    is_head = first & (hit_people["role"] != "dependent")
    hit_people["contact_kind"] = is_head.map({True: "head_of_household",
                                              False: "household_member"})
    hit_people["tier"] = (~is_head).astype("int64") + 1

    mission_cols = per_mission.set_index("mission_id")
    person_rows = pd.DataFrame({
        "mission_id": hit_people["mission_id"].to_numpy(),
        "contact_kind": hit_people["contact_kind"].to_numpy(),
        "person_id": hit_people["person_id"].to_numpy(),
        "name": _text(hit_people["name"]).to_numpy(),
        "role": hit_people["role"].to_numpy(),
        "immunity": hit_people["immunity"].to_numpy(),
        "phone": _text(hit_people["phone"]).to_numpy(),
        "email": _text(hit_people["email"]).to_numpy(),
        "language": _text(hit_people["language"]).to_numpy(),
        "household_id": hit_people["household_id"].to_numpy(),
        "hazard_ids": hit_people["hazard_ids"].to_numpy(),
        "rank": hit_people["rank"].to_numpy(),
        "tier": hit_people["tier"].to_numpy(),
        "hh_rank": hit_people["hh_rank"].to_numpy(),
        "hh_imm": hit_people["hh_imm"].to_numpy(),
        "hh_key": hit_people["hh_key"].to_numpy(),
        "role_rank": hit_people["role_rank"].to_numpy(),
    })
    duty_rows = pd.DataFrame({
        "mission_id": per_mission["mission_id"].to_numpy(),
        "contact_kind": "duty",
        "person_id": "", "name": "", "role": "", "immunity": "",
        "phone": _text(per_mission["duty_phone"]).to_numpy(),
        "email": _text(per_mission["email"]).to_numpy(),
        "language": _text(per_mission["language"]).to_numpy(),
        "household_id": "",
        "hazard_ids": per_mission["hazard_ids"].to_numpy(),
        "rank": per_mission["rank"].to_numpy(),
        "tier": 0, "hh_rank": -1, "hh_imm": -1, "hh_key": "", "role_rank": -1,
    })
    rows = pd.concat([duty_rows, person_rows], ignore_index=True)
    rows["mission_pos"] = mission_cols["mission_pos"].reindex(rows["mission_id"]).to_numpy()
    rows = rows.sort_values(
        ["mission_pos", "tier", "hh_rank", "hh_imm", "hh_key", "role_rank", "person_id"],
        kind="stable",
    ).reset_index(drop=True)
    looked_up = mission_cols.reindex(rows["mission_id"])
    out = pd.DataFrame({
        "order": pd.Series(range(1, len(rows) + 1), dtype="int64"),
        "office": _text(looked_up["office"]).to_numpy(),
        "country_name": _text(looked_up["country_name"]).to_numpy(),
        "mission_id": rows["mission_id"],
        "mission_name": _text(looked_up["name"]).to_numpy(),
        "mission_type": _text(looked_up["mission_type"]).to_numpy(),
        "contact_kind": rows["contact_kind"],
        "person_id": rows["person_id"],
        "name": rows["name"],
        "role": rows["role"],
        "immunity": rows["immunity"],
        "phone": rows["phone"],
        "email": rows["email"],
        "language": rows["language"],
        "household_id": rows["household_id"],
        "hazard_ids": rows["hazard_ids"],
        "worst_severity": [CAP_SEVERITIES[int(r)] for r in rows["rank"]],
    }, columns=list(CALL_LIST_COLUMNS))
    logger.info("call list: %d missions, %d people, %d rows",
                len(per_mission), len(person_rows), len(out))
    return out


# --------------------------------------------------------------------------------------------
# Export header


def export_header(
    hazards: pd.DataFrame, rows: int, *, generated_at: dt.datetime, exercise: bool = False
) -> list[tuple[str, str]]:
    """The ``(key, value)`` lines heading an export: exercise flag, hazards, times, rows.

    ``generated_at`` must be timezone-aware; it is shown in UTC and in US Eastern time.
    """
    _require(hazards, "hazards", _HAZARD_COLUMNS)
    if not isinstance(generated_at, dt.datetime) or generated_at.utcoffset() is None:
        raise ValueError("generated_at must be a timezone-aware datetime")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be a non-negative int; got {rows!r}")
    listed = "; ".join(
        f"{h} ({e}, {s or 'unknown'})"
        for h, e, s in zip(_text(hazards["hazard_id"]), _text(hazards["event"]),
                           _text(hazards["severity"]).str.lower(), strict=True)
    )
    utc = generated_at.astimezone(dt.timezone.utc)
    lines = [("exercise", "EXERCISE - drill data, not a real event")] if exercise else []
    lines += [
        ("title", "Mission Watch call list"),
        ("hazards", listed or "none"),
        ("generated_utc", utc.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("generated_eastern", utc.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("rows", str(rows)),
    ]
    return lines


def _check_header(lines: Any, argument: str) -> list[tuple[str, str]]:
    try:
        pairs = [(str(k), str(v)) for k, v in lines]
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a sequence of (key, value) pairs") from None
    for key, value in pairs:
        if not key or any(ch in key + value for ch in "\r\n") or ":" in key:
            raise ValueError(
                f"{argument} keys must be non-empty without ':'; keys and values without line "
                f"breaks; got {key!r}"
            )
    return pairs


# --------------------------------------------------------------------------------------------
# Files


def neutralise_formula(value: object) -> str:
    """The cell text, with a leading apostrophe if a spreadsheet would run it as a formula.

    Triggers are :data:`FORMULA_TRIGGERS` (OWASP's list). Phone numbers starting with ``+``
    are prefixed too: unprotected, Excel would evaluate them; see the module docstring.
    Missing values (None, NaN) become "".
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _check_frame(frame: Any) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    return frame


def write_csv(
    frame: pd.DataFrame, path: str | Path, *, header_lines: Sequence[tuple[str, str]]
) -> Path:
    """Write ``frame`` as CSV for Excel: UTF-8 with BOM, CRLF, every cell neutralised.

    The file starts with one line per ``header_lines`` pair, ``# key: value`` (a single CSV
    field, quoted when it holds a comma), then the column header row and the data rows. Readers
    skip the leading rows whose first cell starts with ``#``.
    """
    frame = _check_frame(frame)
    lines = _check_header(header_lines, "header_lines")
    target = Path(path)
    with target.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        for key, value in lines:
            writer.writerow([f"# {key}: {value}"])
        writer.writerow([neutralise_formula(c) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            writer.writerow([neutralise_formula(v) for v in row])
    logger.info("wrote call list CSV: %d rows", len(frame))
    return target


def sheet_name(name: str, taken: set[str]) -> str:
    """A valid, unique Excel sheet name for ``name``; adds it (lower-cased) to ``taken``.

    Forbidden characters ``[]:*?/\\`` become ``_``; leading/trailing apostrophes and blanks are
    dropped; at most 31 characters; clashes (case-insensitive) get `` (2)``, `` (3)``, ...
    """
    clean = _SHEET_FORBIDDEN.sub("_", ILLEGAL_CHARACTERS_RE.sub("", str(name)))
    clean = clean.strip().strip("'").strip() or "Sheet"
    clean = clean[:SHEET_NAME_MAX].rstrip().rstrip("'") or "Sheet"
    candidate, n = clean, 1
    while candidate.lower() in taken or candidate.lower() in _RESERVED_SHEET_NAMES:
        n += 1
        suffix = f" ({n})"
        candidate = clean[: SHEET_NAME_MAX - len(suffix)].rstrip() + suffix
    taken.add(candidate.lower())
    return candidate


def _cell_value(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _cell_value(value.item())
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def _fill(
    ws: Any, header: Sequence[str], rows: Sequence[Sequence[object]], bold_rows: Sequence[int] = ()
) -> None:
    """Header row (bold, frozen) and data rows; strings are text cells with a quote prefix."""
    bold = Font(bold=True)
    ncols = max([len(header), *(len(r) for r in rows)])
    widths = [len(str(h)) for h in header] + [0] * (ncols - len(header))
    for c, title in enumerate(header, start=1):
        cell = ws.cell(row=1, column=c)
        cell.value = str(title)
        cell.data_type = "s"
        cell.font = bold
    for r, row in enumerate(rows, start=2):
        for c, raw in enumerate(row, start=1):
            value = _cell_value(raw)
            cell = ws.cell(row=r, column=c)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
                if value.startswith(FORMULA_TRIGGERS):
                    cell.quotePrefix = True
                widths[c - 1] = max(widths[c - 1], len(value))
            elif value is not None:
                widths[c - 1] = max(widths[c - 1], len(str(value)))
    ws.freeze_panes = "A2"
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(width + 2, _MAX_COLUMN_WIDTH)
    for r in bold_rows:
        for cell in ws[r]:
            cell.font = bold


def write_xlsx(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    summary: Sequence[tuple[str, str]],
    split_by: Literal["office", "mission"] = "office",
) -> Path:
    """Write ``frame`` as an XLSX workbook: a Summary sheet, then one sheet per office or mission.

    The Summary sheet lists the ``summary`` pairs (see :func:`export_header`) and rows, missions
    and people per OFM office. Group sheets follow the calling order of their first row; names
    come from :func:`sheet_name` (office code and name, or mission id and name).
    """
    frame = _check_frame(frame)
    lines = _check_header(summary, "summary")
    if split_by not in ("office", "mission"):
        raise ValueError(f"split_by must be 'office' or 'mission'; got {split_by!r}")
    key = "office" if split_by == "office" else "mission_id"
    needed = [c for c in ("office", "mission_id", "person_id") if c not in frame.columns]
    if needed:
        raise ValueError(f"frame is missing column(s) {', '.join(needed)}")

    wb = Workbook()
    ws = wb.active
    taken: set[str] = set()
    ws.title = sheet_name("Summary", taken)
    counts = frame.groupby("office", sort=True).agg(
        rows=("mission_id", "size"),
        missions=("mission_id", "nunique"),
        people=("person_id", lambda s: int((s.astype(str) != "").sum())),
    )
    summary_rows: list[list[object]] = [[k, v] for k, v in lines]
    summary_rows.append([])
    summary_rows.append(["office", "office_name", "rows", "missions", "people"])
    summary_rows += [
        [office, OFM_OFFICES.get(str(office), ""), int(r.rows), int(r.missions), int(r.people)]
        for office, r in counts.iterrows()
    ]
    _fill(ws, ["item", "value"], summary_rows, bold_rows=[len(lines) + 3])

    header = [str(c) for c in frame.columns]
    for group, part in frame.groupby(key, sort=False):
        if split_by == "office":
            title = f"{group} {OFM_OFFICES.get(str(group), '')}"
        else:
            names = part["mission_name"] if "mission_name" in part.columns else [""]
            title = f"{group} {next(iter(names), '')}"
        sheet = wb.create_sheet(sheet_name(title, taken))
        _fill(sheet, header, list(part.itertuples(index=False, name=None)))
    wb.save(Path(path))
    logger.info("wrote call list XLSX: %d rows, %d sheets", len(frame), len(wb.sheetnames))
    return Path(path)
