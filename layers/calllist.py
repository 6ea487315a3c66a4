"""Call lists: who to call, in which order, when hazards affect missions and their people.

Pure functions over the roster frames (:mod:`layers.schema` columns) and the impact pairs of
:meth:`layers.impact.ImpactIndex.affected`; pandas, numpy and openpyxl's helpers only, no store,
no dash. Built for a hurricane: the whole demo roster under one cone (114,000 rows) is a call
list in about 0.3 s, a CSV in 0.5 s and a workbook in about 1.2 s (see "XLSX parts").

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
import itertools
import logging
import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal
from xml.sax.saxutils import escape as xml_escape
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles.colors import COLOR_INDEX
from openpyxl.utils import get_column_letter
from openpyxl.writer.theme import theme_xml

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
    codes, distinct = pd.factorize(values)
    lookup = {v: i for i, v in enumerate(vocabulary)}
    ranks = [lookup.get(v, -1) for v in distinct]
    if -1 in ranks:
        bad = sorted(str(v) for v, r in zip(distinct, ranks, strict=True) if r < 0)
        raise ValueError(f"{argument} must be one of {', '.join(vocabulary)}; got {_few(bad)}")
    return pd.Series(np.asarray(ranks, dtype=np.int64)[codes], index=values.index)


def _not_in(values: pd.Series, known: Any) -> list[str]:
    """The distinct ``values`` missing from ``known``, sorted."""
    missing = ~values.isin(known)
    return sorted(set(values[missing])) if missing.any() else []


def _sorted_codes(values: np.ndarray) -> np.ndarray:
    """Dense rank of each value in sorted order (equal values share a rank)."""
    order = np.argsort(values, kind="stable")  # cheap on a roster already in id order
    ordered = values[order]
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1 if len(values) else 0
    return ranks


def _group_min(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """The smallest of ``values`` per group code."""
    out = np.full(groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, codes, values)
    return out


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


def _hazard_summary(frame: pd.DataFrame, key: str, rank_of: pd.Series) -> pd.DataFrame:
    """Per ``key``: sorted ";"-joined hazard ids and the worst (lowest) severity rank."""
    keys, distinct_keys = pd.factorize(frame[key])
    hazards, hazard_ids = pd.factorize(frame["hazard_id"], sort=True)
    if not len(hazard_ids):
        return pd.DataFrame({"hazard_ids": pd.Series(dtype=object), "rank": pd.Series(
            dtype=np.int64)}, index=pd.Index(distinct_keys, name=key))
    # each (key, hazard) once, ordered by key, then hazard id
    owner, hazard = np.divmod(np.unique(keys * len(hazard_ids) + hazards), len(hazard_ids))
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    ends = np.r_[starts[1:], len(owner)]
    ids = np.asarray(hazard_ids, dtype=object)[hazard]
    # most people are in one hazard: join only where a key has several
    joined = [ids[a] if b - a == 1 else ";".join(ids[a:b])
              for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    ranks = rank_of.reindex(hazard_ids).to_numpy()[hazard]
    return pd.DataFrame({
        "hazard_ids": pd.Series(joined, dtype=object),
        "rank": np.minimum.reduceat(ranks, starts),
    }).set_axis(pd.Index(np.asarray(distinct_keys, dtype=object)[owner[starts]], name=key))


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
                         "location_id": _text(pairs["location_id"])})
    unknown = _not_in(hits["hazard_id"], rank_of.index)
    if unknown:
        raise ValueError(f"pairs names hazard_id(s) not in hazards: {_few(unknown)}")
    locations = hits["location_id"].to_numpy(dtype=object)
    kind = pd.Series([x[:2] for x in locations], index=hits.index, dtype=object)
    bad = sorted(set(hits.loc[~kind.isin(["M:", "P:"]), "location_id"]))
    if bad:
        raise ValueError(f"pairs location_id must start with 'M:' or 'P:'; got {_few(bad)}")
    hits["id"] = pd.Series([x[2:] for x in locations], index=hits.index, dtype=object)

    m = missions.assign(mission_id=_text(missions["mission_id"]))
    if m["mission_id"].duplicated().any():
        raise ValueError("missions has duplicate mission_id values")
    p = people.loc[:, list(_PERSON_NEEDS)]
    p = p.assign(person_id=_text(p["person_id"]), mission_id=_text(p["mission_id"]))
    if p["person_id"].duplicated().any():
        raise ValueError("people has duplicate person_id values")

    person_hits = hits[kind == "P:"]
    mission_hits = hits[kind == "M:"]
    for argument, ids, known in (("person", person_hits["id"], p["person_id"]),
                                 ("mission", mission_hits["id"], m["mission_id"])):
        missing = _not_in(ids, known)
        if missing:
            raise ValueError(f"pairs names {argument} id(s) not in the roster: {_few(missing)}")

    # affected people, with their hazards
    per_person = _hazard_summary(person_hits, "id", rank_of)
    hit_people = p[p["person_id"].isin(per_person.index)]
    orphans = _not_in(hit_people["mission_id"], m["mission_id"])
    if orphans:
        raise ValueError(f"people names mission_id(s) not in missions: {_few(orphans)}")
    person_summary = per_person.reindex(hit_people["person_id"])
    person_id = hit_people["person_id"].to_numpy(dtype=object)
    person_mission = hit_people["mission_id"].to_numpy(dtype=object)
    rank = person_summary["rank"].to_numpy(dtype=np.int64)
    role = _text(hit_people["role"])
    immunity = _text(hit_people["immunity"])
    role_rank = _codes(role, HEAD_ROLE_ORDER, "people role").to_numpy()
    imm_rank = _codes(immunity, IMMUNITY_ORDER, "people immunity").to_numpy()
    household = _text(hit_people["household_id"])
    hh_key = household.where(household != "", "P:" + hit_people["person_id"])

    # affected missions: own location or any member's residence
    via_people = person_hits.merge(
        hit_people[["person_id", "mission_id"]], left_on="id", right_on="person_id"
    )
    mission_all = pd.concat([
        mission_hits[["hazard_id"]].assign(mission_id=mission_hits["id"]),
        via_people[["hazard_id", "mission_id"]],
    ], ignore_index=True)
    per_mission = _hazard_summary(mission_all, "mission_id", rank_of)
    counts = pd.DataFrame({
        "full": (immunity == "full").to_numpy(),
        "official": (immunity == "official_acts").to_numpy(),
        "affected": np.ones(len(hit_people), dtype=np.int64),
    }).groupby(person_mission).sum()
    per_mission = per_mission.join(counts).fillna({"full": 0, "official": 0, "affected": 0})
    mission_rows = m[m["mission_id"].isin(per_mission.index)].set_index("mission_id")
    per_mission = per_mission.join(mission_rows).join(
        _offices(mission_rows.reset_index()).set_axis(mission_rows.index).rename("office")
    )
    per_mission = per_mission.reset_index(names="mission_id").sort_values(
        ["rank", "full", "official", "affected", "mission_id"],
        ascending=[True, False, False, False, True], kind="stable",
    )

    # households: worst hazard, then best immunity, then id; the head is the first non-dependent
    # by role, then person id; ``seq`` numbers people in (household id, role, person id) order
    hh = _sorted_codes(hh_key.to_numpy(dtype=object))
    households = int(hh.max()) + 1 if len(hh) else 0
    hh_rank = _group_min(hh, rank, households)[hh]
    hh_imm = _group_min(hh, imm_rank, households)[hh]
    order = np.argsort(person_id, kind="stable")
    order = order[np.lexsort((role_rank[order], hh[order]))]
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = np.arange(len(order))
    first = np.zeros(len(order), dtype=bool)
    first[order] = np.r_[True, hh[order][1:] != hh[order][:-1]] if len(order) else []
    is_head = first & (role != "dependent").to_numpy()

    # rows: each mission's duty contact, then its people; sorted into calling order
    missions_n, people_n = len(per_mission), len(hit_people)
    mission_pos = pd.Index(per_mission["mission_id"]).get_indexer(person_mission)
    row_order = np.lexsort((
        np.r_[np.full(missions_n, -1), seq],
        np.r_[np.full(missions_n, -1), hh_imm],
        np.r_[np.full(missions_n, -1), hh_rank],
        np.r_[np.zeros(missions_n, dtype=np.int64), np.where(is_head, 1, 2)],
        np.r_[np.arange(missions_n), mission_pos],
    ))
    of_mission = np.r_[np.arange(missions_n), mission_pos][row_order]

    def by_mission(column: str) -> np.ndarray:
        return _text(per_mission[column]).to_numpy(dtype=object)[of_mission]

    def rows(duty: Any, person: Any) -> np.ndarray:
        duty = np.full(missions_n, duty, dtype=object) if isinstance(duty, str) else duty
        return np.concatenate([np.asarray(duty, dtype=object),
                               np.asarray(person, dtype=object)])[row_order]

    out = pd.DataFrame({
        "order": np.arange(1, missions_n + people_n + 1, dtype=np.int64),
        "office": by_mission("office"),
        "country_name": by_mission("country_name"),
        "mission_id": per_mission["mission_id"].to_numpy(dtype=object)[of_mission],
        "mission_name": by_mission("name"),
        "mission_type": by_mission("mission_type"),
        "contact_kind": rows("duty", np.where(is_head, "head_of_household", "household_member")),
        "person_id": rows("", person_id),
        "name": rows("", _text(hit_people["name"])),
        "role": rows("", role),
        "immunity": rows("", immunity),
        "phone": rows(_text(per_mission["duty_phone"]), _text(hit_people["phone"])),
        "email": rows(_text(per_mission["email"]), _text(hit_people["email"])),
        "language": rows(_text(per_mission["language"]), _text(hit_people["language"])),
        "household_id": rows("", household),
        "hazard_ids": rows(per_mission["hazard_ids"], person_summary["hazard_ids"]),
        "worst_severity": np.asarray(CAP_SEVERITIES, dtype=object)[
            np.r_[per_mission["rank"].to_numpy(dtype=np.int64), rank][row_order]].tolist(),
    }, columns=list(CALL_LIST_COLUMNS))
    logger.info("call list: %d missions, %d people, %d rows", missions_n, people_n, len(out))
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


def _labels(column: pd.Series) -> tuple[np.ndarray, list[str]] | None:
    """``(codes, distinct strings)`` of a column of text, missing values coded -1; else None.

    The writers work on the distinct values: a call list repeats offices, missions, roles and
    hazards on every row, and even its unique columns cost one pass in C this way.
    """
    if not isinstance(column.dtype, pd.StringDtype) and not (
        column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "string"
    ):
        return None
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = np.asarray(uniques, dtype=object).tolist()
    return codes, [t if type(t) is str else str(t) for t in texts]


def _plain_ints(column: pd.Series) -> bool:
    """A NumPy integer column: no missing values, every cell a Python int once listed."""
    return isinstance(column.dtype, np.dtype) and column.dtype.kind == "i"


def _columns(frame: pd.DataFrame) -> list[pd.Series]:
    return [frame.iloc[:, k] for k in range(frame.shape[1])]


def _csv_column(column: pd.Series) -> list[str]:
    """The column's cells as :func:`neutralise_formula` writes them."""
    labels = _labels(column)
    if labels is not None:
        codes, texts = labels
        cells = np.array([neutralise_formula(t) for t in texts] + [""], dtype=object)
        return cells[codes].tolist()  # code -1 (missing) takes the trailing ""
    if _plain_ints(column):
        return ["'" + s if s[0] == "-" else s for s in map(str, column.tolist())]
    return [neutralise_formula(v) for v in column]


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
    columns = [_csv_column(c) for c in _columns(frame)]
    target = Path(path)
    with target.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        for key, value in lines:
            writer.writerow([f"# {key}: {value}"])
        writer.writerow([neutralise_formula(c) for c in frame.columns])
        writer.writerows(zip(*columns, strict=True) if columns else [[]] * len(frame))
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


# --------------------------------------------------------------------------------------------
# XLSX parts
#
# The workbook is written part by part, as the very SpreadsheetML openpyxl writes for these
# sheets (inline-string text cells, a bold and a quote-prefix cell format, a frozen first row,
# column widths), each column's cells built once per distinct value. openpyxl serialises every
# cell through pure-Python XML (lxml is not installed): 19 s for a 114,000-row call list in
# normal mode, 12 s in write-only mode, about 1.2 s this way. The tests compare a sheet's XML
# with the one openpyxl writes cell by cell, and read the files back with openpyxl.

_MAX_CELL_TEXT = 32767  # Excel's limit; openpyxl truncates longer text the same way
_BOLD = ' s="1"'  # cell formats (cellXfs) of _STYLES, by index
_QUOTED = ' s="2"'
_PRESERVE = ' xml:space="preserve"'  # keeps leading/trailing blanks, as openpyxl marks them
_CHUNK_ROWS = 10_000
_DEFLATE_LEVEL = 3  # twice as fast as zlib's default 6 on sheet XML, files about 10% larger
_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_NS_OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_CONTENT_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/theme/theme1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.theme+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
    'package.core-properties+xml"/><Override PartName="/docProps/app.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.extended-properties+xml"/>{sheets}'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/></Types>'
)
_ROOT_RELS = (
    f'<Relationships xmlns="{_NS_RELATIONSHIPS}">'
    f'<Relationship Type="{_NS_OFFICE_REL}/officeDocument" Target="xl/workbook.xml" Id="rId1"/>'
    f'<Relationship Type="{_NS_RELATIONSHIPS}/metadata/core-properties" '
    'Target="docProps/core.xml" Id="rId2"/>'
    f'<Relationship Type="{_NS_OFFICE_REL}/extended-properties" Target="docProps/app.xml" '
    'Id="rId3"/></Relationships>'
)
_APP = (
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    'extended-properties"><Application>Mission Watch</Application></Properties>'
)
_CORE = (
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms='
    '"http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<dc:creator>Mission Watch</dc:creator>'
    '<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
    '<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified></cp:coreProperties>'
)
_WORKBOOK = (
    f'<workbook xmlns:r="{_NS_OFFICE_REL}" xmlns="{_NS_MAIN}"><workbookPr/><workbookProtection/>'
    '<bookViews><workbookView visibility="visible" minimized="0" showHorizontalScroll="1" '
    'showVerticalScroll="1" showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" '
    'autoFilterDateGrouping="1"/></bookViews><sheets>{sheets}</sheets><definedNames/>'
    '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'
)
_STYLES = (
    f'<styleSheet xmlns="{_NS_MAIN}"><numFmts count="0"/><fonts count="2"><font>'
    '<name val="Calibri"/><family val="2"/><color theme="1"/><sz val="11"/>'
    '<scheme val="minor"/></font><font><b val="1"/></font></fonts><fills count="2"><fill>'
    '<patternFill/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    '</cellStyleXfs><cellXfs count="3">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" pivotButton="0" quotePrefix="0" '
    'xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" pivotButton="0" quotePrefix="0" '
    'xfId="0"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" pivotButton="0" quotePrefix="1" '
    'xfId="0"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0" '
    'hidden="0"/></cellStyles><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
    'defaultPivotStyle="PivotStyleLight16"/><colors><indexedColors>'
    + "".join(f'<rgbColor rgb="{rgb}"/>' for rgb in COLOR_INDEX[:64])
    + "</indexedColors></colors></styleSheet>"
)
_SHEET_HEAD = (
    f'<worksheet xmlns="{_NS_MAIN}"><sheetPr><outlinePr summaryBelow="1" summaryRight="1"/>'
    '<pageSetUpPr/></sheetPr><dimension ref="{ref}"/><sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A1" sqref="A1"/></sheetView></sheetViews>'
    '<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/>{cols}<sheetData>'
)
_SHEET_TAIL = (
    '</sheetData><pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" '
    'footer="0.5"/></worksheet>'
)


def _attribute(text: str) -> str:
    return xml_escape(text, {'"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"})


def _text_cell(text: str, style: str | None = None) -> str:
    """A text cell's XML after its reference: an inline string, never a formula.

    ``style`` None means the quote-prefix format when the text starts with a formula trigger.
    """
    if style is None:
        style = _QUOTED if text.startswith(FORMULA_TRIGGERS) else ""
    text = text[:_MAX_CELL_TEXT]
    if not text:
        return f'{style} t="inlineStr"/>'
    stripped = text.strip()
    space = _PRESERVE if stripped and stripped != text else ""
    return f'{style} t="inlineStr"><is><t{space}>{xml_escape(text)}</t></is></c>'


def _text_cells(texts: list[str]) -> list[str]:
    """:func:`_text_cell` of each text, in one pass when none needs truncating."""
    if any(len(t) > _MAX_CELL_TEXT for t in texts):
        return [_text_cell(t) for t in texts]
    joined = "".join(texts)
    escaped = [xml_escape(t) for t in texts] if any(c in joined for c in "&<>") else texts
    return [
        f'{_QUOTED if t.startswith(FORMULA_TRIGGERS) else ""} t="inlineStr"><is><t'
        f'{_PRESERVE if (t[0].isspace() or t[-1].isspace()) and not t.isspace() else ""}>'
        f"{x}</t></is></c>" if t else ' t="inlineStr"/>'
        for t, x in zip(texts, escaped, strict=True)
    ]


def _number_cell(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ' t="n"><v/></c>'  # openpyxl writes infinities as an empty value
    return f' t="n"><v>{value:.16g}</v></c>'


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


def _cell(raw: object) -> tuple[str, int]:
    """(XML after the reference, "" for no cell; width in characters) of any value."""
    value = _cell_value(raw)
    if value is None:
        return "", 0
    if isinstance(value, str):
        return _text_cell(value), len(value)
    return _number_cell(value), len(str(value))  # type: ignore[arg-type]


def _xlsx_column(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's XML after its reference ("" for no cell) and its width in characters."""
    labels = _labels(column)
    if labels is not None:
        codes, texts = labels
        if ILLEGAL_CHARACTERS_RE.search("".join(texts)):
            texts = [ILLEGAL_CHARACTERS_RE.sub("", t) for t in texts]
        cells = np.array([*_text_cells(texts), ""], dtype=object)
        widths = np.array([*map(len, texts), 0], dtype=np.int64)
        return cells[codes], widths[codes]  # code -1 (missing) takes the trailing no-cell
    if _plain_ints(column):
        values = column.tolist()
        return (np.array([_number_cell(v) for v in values], dtype=object),
                np.array([len(str(v)) for v in values], dtype=np.int64))
    pairs = [_cell(v) for v in column]
    return (np.array([p[0] for p in pairs], dtype=object),
            np.array([p[1] for p in pairs], dtype=np.int64))


def _letters(count: int) -> list[str]:
    return [get_column_letter(c) for c in range(1, count + 1)]


def _sparse_row(r: int, cells: Sequence[str], letters: Sequence[str]) -> str:
    """One ``<row>``, without the cells that have no XML; nothing at all for an empty row."""
    inner = "".join(f'<c r="{letters[c]}{r}"{x}' for c, x in enumerate(cells) if x)
    return f'<row r="{r}">{inner}</row>' if inner else ""


def _data_rows(cells: np.ndarray, first: int) -> Iterator[str]:
    """``<row>`` elements for a block of cells (rows x columns), numbered from ``first``."""
    letters = _letters(cells.shape[1])
    template = ('<row r="{0}">'
                + "".join(f'<c r="{x}{{0}}"{{{c}}}' for c, x in enumerate(letters, 1))
                + "</row>")
    for start in range(0, len(cells), _CHUNK_ROWS):
        block = cells[start:start + _CHUNK_ROWS]
        full = (block != "").all(axis=1).tolist() if block.size else [True] * len(block)
        yield "".join(
            template.format(r, *row) if whole else _sparse_row(r, row, letters)
            for r, row, whole in zip(range(first + start, first + start + len(block)),
                                     block.tolist(), full, strict=True)
        )


def _write_sheet(
    out: IO[bytes], widths: Sequence[int], last_row: int, rows: Iterable[str]
) -> None:
    """A worksheet part: bold frozen header row, column widths, then the ``<row>`` chunks."""
    ref = f"A1:{get_column_letter(max(len(widths), 1))}{max(last_row, 1)}"
    cols = "".join(
        f'<col width="{min(w + 2, _MAX_COLUMN_WIDTH)}" customWidth="1" min="{c}" max="{c}"/>'
        for c, w in enumerate(widths, start=1)
    )
    out.write(_SHEET_HEAD.format(ref=ref, cols=f"<cols>{cols}</cols>" if cols else "").encode())
    for chunk in rows:
        out.write(chunk.encode())
    out.write(_SHEET_TAIL.encode())


def _header(titles: Sequence[str]) -> tuple[list[str], list[int]]:
    return ([_text_cell(ILLEGAL_CHARACTERS_RE.sub("", t), _BOLD) for t in titles],
            [len(t) for t in titles])


def _summary_sheet(
    out: IO[bytes], lines: list[tuple[str, str]], counts: pd.DataFrame
) -> None:
    """The Summary sheet: the header lines, a blank row, then rows/missions/people per office."""
    table = ["office", "office_name", "rows", "missions", "people"]
    rows: list[list[tuple[str, int]]] = [[_cell(k), _cell(v)] for k, v in lines]
    rows.append([])
    rows.append([(_text_cell(t, _BOLD), len(t)) for t in table])
    rows += [
        [_cell(v) for v in (office, OFM_OFFICES.get(str(office), ""), int(r.rows),
                            int(r.missions), int(r.people))]
        for office, r in counts.iterrows()
    ]
    header, widths = _header(["item", "value"])
    widths += [0] * (max(len(r) for r in rows) - len(widths))
    for row in rows:
        for c, (_, width) in enumerate(row):
            widths[c] = max(widths[c], width)
    letters = _letters(len(widths))
    _write_sheet(out, widths, len(rows) + 1, [
        _sparse_row(1, header, letters),
        *(_sparse_row(r, [x for x, _ in row], letters) for r, row in enumerate(rows, start=2)),
    ])


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
    come from :func:`sheet_name` (office code and name, or mission id and name). Every sheet has
    a bold, frozen header row and column widths fitted to its values (at most 60); strings are
    text cells, with the quote-prefix flag when they start like a formula.
    """
    frame = _check_frame(frame)
    lines = _check_header(summary, "summary")
    if split_by not in ("office", "mission"):
        raise ValueError(f"split_by must be 'office' or 'mission'; got {split_by!r}")
    key = "office" if split_by == "office" else "mission_id"
    needed = [c for c in ("office", "mission_id", "person_id") if c not in frame.columns]
    if needed:
        raise ValueError(f"frame is missing column(s) {', '.join(needed)}")

    counts = frame.groupby("office", sort=True).agg(
        rows=("mission_id", "size"),
        missions=("mission_id", "nunique"),
        people=("person_id", lambda s: int((s.astype(str) != "").sum())),
    )
    encoded = [_xlsx_column(c) for c in _columns(frame)]
    cells = np.empty((len(frame), len(encoded)), dtype=object)
    widths = np.zeros((len(frame), len(encoded)), dtype=np.int64)
    for c, (column_cells, column_widths) in enumerate(encoded):
        cells[:, c] = column_cells
        widths[:, c] = column_widths
    del encoded
    header, header_widths = _header([str(c) for c in frame.columns])
    letters = _letters(len(header))

    # groups in the groupby's own order (first appearance); rows without a key have none
    group_of = frame.groupby(key, sort=False).ngroup().to_numpy(dtype=np.float64, na_value=-1)
    group_of = group_of.astype(np.int64)
    order = np.argsort(group_of, kind="stable")
    sizes = np.bincount(group_of[group_of >= 0], minlength=0)
    bounds = np.cumsum(np.r_[np.count_nonzero(group_of < 0), sizes])
    keys = frame[key]
    names = frame["mission_name"] if "mission_name" in frame.columns else None

    taken: set[str] = set()
    titles = [sheet_name("Summary", taken)]
    target = Path(path)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=_DEFLATE_LEVEL) as package:
        with package.open("xl/worksheets/sheet1.xml", "w") as out:
            _summary_sheet(out, lines, counts)
        for lo, hi in itertools.pairwise(bounds.tolist()):
            rows = order[lo:hi]
            group = keys.iloc[rows[0]]
            if split_by == "office":
                title = f"{group} {OFM_OFFICES.get(str(group), '')}"
            else:
                title = f"{group} {'' if names is None else names.iloc[rows[0]]}"
            titles.append(sheet_name(title, taken))
            fitted = np.maximum(header_widths, widths[rows].max(axis=0, initial=0)).tolist()
            with package.open(f"xl/worksheets/sheet{len(titles)}.xml", "w") as out:
                _write_sheet(out, fitted, len(rows) + 1, itertools.chain(
                    [_sparse_row(1, header, letters)], _data_rows(cells[rows], first=2)))
        _write_package_parts(package, titles)
    logger.info("wrote call list XLSX: %d rows, %d sheets", len(frame), len(titles))
    return target


def _write_package_parts(package: zipfile.ZipFile, titles: Sequence[str]) -> None:
    """Workbook, styles, theme, relationships, content types and properties."""
    count = len(titles)
    sheets = "".join(
        f'<sheet name="{_attribute(t)}" sheetId="{i}" state="visible" r:id="rId{i}"/>'
        for i, t in enumerate(titles, start=1)
    )
    relationships = "".join(
        f'<Relationship Type="{_NS_OFFICE_REL}/worksheet" Target="/xl/worksheets/sheet{i}.xml" '
        f'Id="rId{i}"/>' for i in range(1, count + 1)
    ) + (f'<Relationship Type="{_NS_OFFICE_REL}/styles" Target="styles.xml" '
         f'Id="rId{count + 1}"/><Relationship Type="{_NS_OFFICE_REL}/theme" '
         f'Target="theme/theme1.xml" Id="rId{count + 2}"/>')
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_CT_WORKSHEET}"/>'
        for i in range(1, count + 1)
    )
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = {
        "docProps/app.xml": _APP,
        "docProps/core.xml": _CORE.format(now=now),
        "xl/theme/theme1.xml": theme_xml,
        "xl/styles.xml": _STYLES,
        "_rels/.rels": _ROOT_RELS,
        "xl/workbook.xml": _WORKBOOK.format(sheets=sheets),
        "xl/_rels/workbook.xml.rels":
            f'<Relationships xmlns="{_NS_RELATIONSHIPS}">{relationships}</Relationships>',
        "[Content_Types].xml": _CONTENT_TYPES.format(sheets=overrides),
    }
    for name, text in parts.items():
        package.writestr(name, text)
