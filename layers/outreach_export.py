"""Exports of an outreach board: CSV and XLSX for Excel, a printable call sheet, duty vCards.

Pure functions over the board's rows (:data:`layers.outreach.BOARD_COLUMNS`); pandas,
openpyxl and the standard library only, no store, no dash.

* :func:`board_header` — the ``(key, value)`` lines heading the CSV and the XLSX Summary:
  the call list's lines (exercise flag, hazards, when in UTC and Eastern, rows) plus the
  board's name and progress.
* :func:`board_frame` — one row per target in :data:`EXPORT_COLUMNS` (labels, times in UTC and
  US Eastern); :func:`board_csv` and :func:`board_xlsx` write it. Cells are neutralised as in
  :mod:`layers.calllist` (CSV: a leading apostrophe; XLSX: text cells with the quote prefix).
* :func:`call_sheet_html` — a standalone HTML document to print and hand out: one section per
  group with a page break between groups, the header repeated on every page, the status known
  when printed, and a blank outcome column with tick boxes. Every value is escaped; there is
  no script and no external resource, and the document carries its own Content Security
  Policy (:data:`CALL_SHEET_CSP`: nothing but its one inline style, by hash).
* :func:`duty_vcards` — a vCard 3.0 file (RFC 2426) with one card per mission on the board:
  what phones and Outlook import.

Targets no longer affected (their hazard shrank or moved) stay on the board with their
status; they come last, in a group of their own.

Errors: bad arguments raise ``ValueError`` naming the argument and what is allowed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from layers.calllist import (
    EASTERN,
    FORMULA_TRIGGERS,
    export_header,
    sheet_name,
    write_csv,
)
from layers.outreach import (
    BOARD_COLUMNS,
    GROUPINGS,
    STATUS_LABELS,
    group_labels,
)
from layers.outreach import progress as board_progress
from layers.schema import IMMUNITY_LEVELS, OFM_OFFICES, ROLES

logger = logging.getLogger(__name__)

EXPORT_COLUMNS: tuple[str, ...] = (
    "order", "target_kind", "target_id", "mission_id", "mission", "country", "office",
    "contact", "role", "immunity", "phone", "email", "language", "people", "worst_severity",
    "status", "note", "updated_by", "updated_at_utc", "updated_at_eastern", "new",
)
SPLITS: tuple[str, ...] = ("office", "country", "mission")
EXERCISE_TEXT = "EXERCISE - drill data, not a real event"
GONE_GROUP = "No longer affected (kept on record)"
_MAX_COLUMN_WIDTH = 60
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------------------------
# Checks and small helpers


def _check_rows(rows: Any) -> pd.DataFrame:
    if not isinstance(rows, pd.DataFrame):
        raise ValueError(f"rows must be a pandas DataFrame; got {type(rows).__name__}")
    missing = [c for c in BOARD_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows is missing column(s) {', '.join(missing)}")
    return rows


def _check_when(value: Any, argument: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValueError(f"{argument} must be a timezone-aware datetime")
    return value


def _check_choice(value: str, allowed: Sequence[str], argument: str) -> str:
    if value not in allowed:
        raise ValueError(f"{argument} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _plain(value: object) -> str:
    """Text of a cell: missing values as "", no control characters."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return _CONTROL.sub("", str(value))


def _one_line(value: object) -> str:
    return " ".join(_plain(value).split())


def _times(value: object) -> tuple[str, str]:
    """(UTC, US Eastern) text of a timestamp; ("", "") when there is none."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "", ""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    moment = stamp.to_pydatetime()
    return (moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
            moment.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S %Z"))


def _eastern_short(value: object) -> str:
    """A timestamp as US Eastern wall time to the minute ("" when there is none)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return f"{stamp.to_pydatetime().astimezone(EASTERN):%Y-%m-%d %H:%M %Z}"


def _gone(rows: pd.DataFrame) -> np.ndarray:
    """Rows of targets no longer affected (board_rows puts them at an infinite order)."""
    order = pd.to_numeric(rows["order"], errors="coerce").to_numpy(dtype="float64")
    return ~np.isfinite(order)


def _office_label(code: str) -> str:
    return f"{code} {OFM_OFFICES[code]}" if code in OFM_OFFICES else code


def _groups(rows: pd.DataFrame, by: str, liaisons: Mapping[str, str] | None = None,
            ) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per group in calling order of each group's first row; targets no
    longer affected last, as one group."""
    _check_choice(by, GROUPINGS, "group_by")
    gone = _gone(rows)
    if by == "office":
        labels = rows["office"].astype(str).map(_office_label)
    elif by == "mission":
        labels = (rows["mission_id"].astype(str) + " " + rows["mission_name"].astype(str))
    else:
        labels = group_labels(rows, "country", dict(liaisons or {}))
    labels = labels.where(~gone, GONE_GROUP)
    groups = [(str(label), part) for label, part in rows[~gone].groupby(
        labels[~gone], sort=False)]
    if gone.any():
        groups.append((GONE_GROUP, rows[gone]))
    return groups


# --------------------------------------------------------------------------------------------
# Header lines and the table


def board_header(
    board_name: str, hazards: pd.DataFrame, rows: pd.DataFrame, *,
    generated_at: dt.datetime, exercise: bool = False,
) -> list[tuple[str, str]]:
    """The ``(key, value)`` lines heading a board's CSV and XLSX Summary.

    The call list's lines (:func:`layers.calllist.export_header`) titled as a board export,
    with the board's name after the title and its progress before the row count: missions
    and households reached (x of y), needing assistance, not reached yet, new.
    """
    rows = _check_rows(rows)
    lines = export_header(hazards, len(rows), generated_at=generated_at, exercise=exercise)
    counts = board_progress(rows)
    missions, households = counts["mission"], counts["household"]
    reached = missions["reached"] + households["reached"]
    out: list[tuple[str, str]] = []
    for key, value in lines:
        if key == "title":
            out += [("title", "Mission Watch outreach board"),
                    ("board", _one_line(board_name) or "(unnamed)")]
        elif key == "rows":
            out += [
                ("missions_reached", f"{missions['reached']} of {missions['total']}"),
                ("households_reached", f"{households['reached']} of {households['total']}"),
                ("needs_assistance",
                 str(missions["needs_assistance"] + households["needs_assistance"])),
                ("not_reached", str(missions["total"] + households["total"] - reached)),
                ("new_targets", str(missions["new"] + households["new"])),
                (key, value),
            ]
        else:
            out.append((key, value))
    return out


def board_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per target, in board order, as exported (:data:`EXPORT_COLUMNS`).

    Statuses are their labels; the last update is shown in UTC and US Eastern; ``new`` is
    "yes" for a target that appeared after the board began and has no update yet. Targets no
    longer affected keep their ids and status, with no order.
    """
    rows = _check_rows(rows)
    gone = _gone(rows)
    order: list[object] = ["" if g else int(o) for o, g in zip(rows["order"], gone,
                                                              strict=True)]
    kind = rows["target_kind"].astype(str)
    mission_id = rows["mission_id"].astype(str).where(
        (rows["mission_id"].astype(str) != "") | (kind != "mission"), rows["target_id"])
    people: list[object] = ["" if k == "mission" else int(p)
                            for k, p in zip(kind, rows["people"], strict=True)]
    times = [_times(v) for v in rows["updated_at"]]
    frame = pd.DataFrame({
        "order": order,
        "target_kind": kind.to_numpy(),
        "target_id": rows["target_id"].astype(str).to_numpy(),
        "mission_id": mission_id.to_numpy(),
        "mission": rows["mission_name"].map(_plain).to_numpy(),
        "country": rows["country_name"].map(_plain).to_numpy(),
        "office": rows["office"].map(_plain).to_numpy(),
        "contact": rows["contact"].map(_plain).to_numpy(),
        "role": rows["role"].map(_plain).to_numpy(),
        "immunity": rows["immunity"].map(_plain).to_numpy(),
        "phone": rows["phone"].map(_plain).to_numpy(),
        "email": rows["email"].map(_plain).to_numpy(),
        "language": rows["language"].map(_plain).to_numpy(),
        "people": people,
        "worst_severity": rows["worst_severity"].map(_plain).to_numpy(),
        "status": rows["status"].map(lambda s: STATUS_LABELS.get(str(s), str(s))).to_numpy(),
        "note": rows["note"].map(_plain).to_numpy(),
        "updated_by": rows["updated_by"].map(_plain).to_numpy(),
        "updated_at_utc": [t[0] for t in times],
        "updated_at_eastern": [t[1] for t in times],
        "new": np.where(rows["new"].fillna(False).astype(bool).to_numpy(), "yes", ""),
    }, columns=list(EXPORT_COLUMNS))
    return frame.reset_index(drop=True)


def board_csv(rows: pd.DataFrame, path: str | Path,
              header_lines: Sequence[tuple[str, str]]) -> Path:
    """The board as CSV for Excel (:func:`layers.calllist.write_csv`: UTF-8 with BOM, CRLF,
    ``# key: value`` lines first, every cell neutralised)."""
    frame = board_frame(rows)
    target = write_csv(frame, path, header_lines=header_lines)
    logger.info("wrote outreach board CSV: %d rows", len(frame))
    return target


# --------------------------------------------------------------------------------------------
# XLSX


def _xlsx_value(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def _sheet(ws: Any, header: Sequence[str], rows: Sequence[Sequence[object]],
           bold_rows: Sequence[int] = ()) -> None:
    """A bold, frozen header row, then the rows: strings as text cells (never formulas; the
    quote prefix when they start like one), numbers as numbers; widths to fit."""
    bold = Font(bold=True)
    widths = [len(str(h)) for h in header]
    for r, row in enumerate([list(header), *rows], start=1):
        widths += [0] * (len(row) - len(widths))
        for c, raw in enumerate(row, start=1):
            value = _xlsx_value(raw)
            if value is None:
                continue
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
                if value.startswith(FORMULA_TRIGGERS):
                    cell.quotePrefix = True
            if r == 1 or r in bold_rows:
                cell.font = bold
            widths[c - 1] = max(widths[c - 1], len(str(value)))
    ws.freeze_panes = "A2"
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(width + 2, _MAX_COLUMN_WIDTH)


def _progress_row(label: str, part: pd.DataFrame) -> list[object]:
    counts = board_progress(part)
    m, h = counts["mission"], counts["household"]
    return [label, m["total"], m["reached"], h["total"], h["reached"],
            m["needs_assistance"] + h["needs_assistance"],
            m["total"] + h["total"] - m["reached"] - h["reached"], m["new"] + h["new"]]


PROGRESS_HEADER: tuple[str, ...] = (
    "group", "missions", "missions_reached", "households", "households_reached",
    "needs_assistance", "not_reached", "new",
)


def board_xlsx(rows: pd.DataFrame, path: str | Path, summary: Sequence[tuple[str, str]],
               split_by: str = "office") -> Path:
    """The board as an XLSX workbook: a Summary sheet, then one sheet per OFM office, sending
    country or mission, in calling order (targets no longer affected on a last sheet).

    The Summary lists the ``summary`` pairs (see :func:`board_header`), then progress per
    group and in all: missions and households reached of how many, needing assistance, not
    reached, new.
    """
    rows = _check_rows(rows)
    _check_choice(split_by, SPLITS, "split_by")
    lines = [(str(k), str(v)) for k, v in summary]
    frame = board_frame(rows)
    groups = _groups(rows, split_by)
    wb = Workbook()
    ws = wb.active
    taken: set[str] = set()
    ws.title = sheet_name("Summary", taken)
    summary_rows: list[list[object]] = [[k, v] for k, v in lines]
    summary_rows += [[], list(PROGRESS_HEADER)]
    summary_rows += [_progress_row(label, part) for label, part in groups]
    summary_rows.append(_progress_row("all", rows))
    _sheet(ws, ["item", "value"], summary_rows,
           bold_rows=[len(lines) + 3, len(summary_rows) + 1])
    header = list(EXPORT_COLUMNS)
    for label, part in groups:
        title = label
        if split_by == "country" and label != GONE_GROUP:
            title = str(part["country_name"].iloc[0]) or label
        sheet = wb.create_sheet(sheet_name(title, taken))
        chosen = frame.loc[part.index]
        _sheet(sheet, header, list(chosen.itertuples(index=False, name=None)))
    target = Path(path)
    wb.save(target)
    logger.info("wrote outreach board XLSX: %d rows, %d sheets", len(frame), len(wb.sheetnames))
    return target


# --------------------------------------------------------------------------------------------
# The printable call sheet

OUTCOMES: tuple[str, ...] = (
    "Not reached", "Attempted", "Reached: safe", "Reached: needs assistance", "Unreachable",
)

# One inline style sheet; the CSP allows it by hash and nothing else. Widths in per cent fit
# both A4 and US Letter (the printer's paper, in landscape); the header row of every table is
# repeated on every printed page; each group starts on a new page.
CALL_SHEET_STYLE = """
@page { size: landscape; margin: 10mm; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { font-family: "Segoe UI", Arial, "Liberation Sans", "DejaVu Sans", sans-serif;
  font-size: 12pt; line-height: 1.3; color: #000; background: #fff; margin: 0; }
@media screen { body { max-width: 1200px; margin: 1em auto; padding: 0 1em; } }
h1 { font-size: 18pt; margin: 0 0 4pt; }
h2 { font-size: 15pt; margin: 0; }
p { margin: 2pt 0; }
.cover { border-bottom: 2pt solid #000; padding-bottom: 6pt; margin-bottom: 8pt; }
.progress { font-size: 13pt; font-weight: bold; }
.howto { font-size: 10.5pt; }
.exercise-banner { font-size: 16pt; font-weight: bold; border: 3pt solid #000;
  padding: 4pt 8pt; text-align: center; letter-spacing: 2pt; }
.watermark { position: fixed; top: 38%; left: 0; right: 0; text-align: center;
  font-size: 110pt; font-weight: bold; color: rgba(160, 0, 0, 0.13); letter-spacing: 12pt;
  transform: rotate(-24deg); pointer-events: none; z-index: 10; }
section.group + section.group { break-before: page; page-break-before: always; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; }
thead { display: table-header-group; }
tfoot { display: table-footer-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border: 1pt solid #000; padding: 4pt 5pt; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; }
thead th { background: #fff; }
th.sheet-title { border: none; border-bottom: 2pt solid #000; padding: 0 0 4pt;
  font-weight: normal; }
.sheet-title .where { font-size: 15pt; font-weight: bold; }
.sheet-title .meta { font-size: 10pt; }
col.c-order { width: 4%; }
col.c-who { width: 22%; }
col.c-phone { width: 19%; }
col.c-about { width: 12%; }
col.c-status { width: 18%; }
col.c-outcome { width: 25%; }
.order { font-size: 13pt; font-weight: bold; text-align: right; }
.who { font-size: 13pt; font-weight: bold; }
.phone { font-size: 13pt; font-weight: bold; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.small { font-size: 10pt; }
.new { font-weight: bold; border: 1pt solid #000; padding: 0 3pt; }
.status { font-weight: bold; }
.note { white-space: pre-wrap; font-size: 10.5pt; }
ul.ticks { list-style: none; margin: 0; padding: 0; font-size: 11pt; }
ul.ticks li { margin: 0 0 3pt; white-space: nowrap; }
.box { display: inline-block; width: 11pt; height: 11pt; border: 1.2pt solid #000;
  margin-right: 5pt; vertical-align: -1pt; }
.notes-line { border-bottom: 1pt solid #000; height: 18pt; margin-top: 2pt; font-size: 9pt; }
.empty { font-size: 13pt; margin-top: 12pt; }
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(CALL_SHEET_STYLE.encode("utf-8")).digest()
                               ).decode("ascii")
# The document's own policy: its one style block and nothing else (no scripts, no images,
# no fonts, no connections, no forms). Served with the same policy as a header.
CALL_SHEET_CSP = (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
                  "form-action 'none'")


def _e(value: object) -> str:
    return html.escape(_plain(value), quote=True)


def _stamp(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.timezone.utc)
    return (f"{utc:%Y-%m-%d %H:%M} UTC ({utc.astimezone(EASTERN):%Y-%m-%d %H:%M %Z} "
            "US Eastern)")


def _hazard_text(hazards: pd.DataFrame) -> str:
    if not isinstance(hazards, pd.DataFrame) or hazards.empty:
        return "none listed"
    parts = []
    for _, hazard in hazards.iterrows():
        event = _one_line(hazard.get("event", "")) or _one_line(hazard.get("hazard_id", ""))
        severity = _one_line(hazard.get("severity", "")).lower() or "unknown"
        where = _one_line(hazard.get("area_desc", ""))
        parts.append(f"{event} ({severity})" + (f" — {where}" if where else ""))
    return "; ".join(parts)


def _who(row: Any) -> str:
    kind = str(row.target_kind)
    mission = _e(row.mission_name) or _e(row.mission_id) or _e(row.target_id)
    if kind == "mission":
        lines = [f'<div class="who">{mission}</div>', '<div class="small">Duty contact'
                 + (f" · {_e(row.country_name)}" if _plain(row.country_name) else "")
                 + "</div>"]
    else:
        name = _e(row.contact) or f"Household {_e(row.target_id)}"
        role = ROLES.get(str(row.role), _plain(row.role))
        people = int(row.people) if not pd.isna(row.people) else 0
        lines = [f'<div class="who">{name}</div>',
                 f'<div class="small">{html.escape(role) or "Household"}'
                 + (f" · household of {people}" if people > 1 else "")
                 + (f" · {mission}" if _plain(row.mission_name) else "") + "</div>"]
    return "".join(lines)


def _status_cell(row: Any) -> str:
    label = STATUS_LABELS.get(str(row.status), _plain(row.status))
    parts = [f'<div class="status">{html.escape(label)}</div>']
    when = _eastern_short(row.updated_at)
    by = f"by {_e(row.updated_by)}" if _plain(row.updated_by) else ""
    if when or by:
        parts.append(f'<div class="small">{" ".join(t for t in (html.escape(when), by) if t)}'
                     "</div>")
    if _plain(row.note):
        parts.append(f'<div class="note">{_e(row.note)}</div>')
    return "".join(parts)


def _about(row: Any) -> str:
    bits = []
    if bool(row.new):
        bits.append('<span class="new">NEW</span>')
    if _plain(row.worst_severity):
        bits.append(f"Severity: {_e(row.worst_severity)}")
    if _plain(row.immunity):
        bits.append(html.escape(IMMUNITY_LEVELS.get(str(row.immunity), _plain(row.immunity))))
    if _plain(row.language):
        bits.append(f"Language: {_e(row.language)}")
    return "".join(f'<div class="small">{b}</div>' for b in bits)


_OUTCOME_CELL = ('<ul class="ticks">'
                 + "".join(f'<li><span class="box"></span>{html.escape(o)}</li>'
                           for o in OUTCOMES)
                 + '</ul><div class="notes-line">Notes / time:</div>')


def _row_html(row: Any, gone: bool) -> str:
    order = "" if gone else str(int(row.order))
    phone = f'<div class="phone">{_e(row.phone)}</div>' if _plain(row.phone) else \
        '<div class="small">no phone on file</div>'
    email = f'<div class="small">{_e(row.email)}</div>' if _plain(row.email) else ""
    return (f'<tr><td class="order">{order}</td><td>{_who(row)}</td><td>{phone}{email}</td>'
            f"<td>{_about(row)}</td><td>{_status_cell(row)}</td>"
            f'<td class="outcome">{_OUTCOME_CELL}</td></tr>')


def call_sheet_html(
    board_name: str, hazards: pd.DataFrame, rows: pd.DataFrame,
    progress: Mapping[str, Mapping[str, int]], liaisons: Mapping[str, str], *,
    generated_at: dt.datetime, exercise: bool = False, group_by: str = "office",
) -> str:
    """A complete HTML document of the board's call sheet, to print and hand out.

    One table per group (OFM office, sending country with who liaises, or mission), each on
    its own pages, its header row repeated on every page with the board, the group and when
    it was generated (UTC and US Eastern). Every target shows the status known at
    ``generated_at`` and a blank outcome column: tick boxes and a notes line. With
    ``exercise`` every page carries an EXERCISE watermark.
    """
    rows = _check_rows(rows)
    _check_when(generated_at, "generated_at")
    _check_choice(group_by, GROUPINGS, "group_by")
    name = _one_line(board_name) or "(unnamed board)"
    when = _stamp(generated_at)
    missions = progress.get("mission", {})
    households = progress.get("household", {})
    needs = missions.get("needs_assistance", 0) + households.get("needs_assistance", 0)
    reached = missions.get("reached", 0) + households.get("reached", 0)
    not_reached = missions.get("total", 0) + households.get("total", 0) - reached
    flag = "EXERCISE · " if exercise else ""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CALL_SHEET_CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{flag}Call sheet: {html.escape(name)} — {html.escape(when)}</title>",
        f"<style>{CALL_SHEET_STYLE}</style>",
        "</head>",
        "<body>",
    ]
    body = []
    if exercise:
        body.append('<div class="watermark" aria-hidden="true">EXERCISE</div>')
        body.append(f'<p class="exercise-banner">{html.escape(EXERCISE_TEXT)}</p>')
    body += [
        '<header class="cover">',
        f"<h1>Call sheet: {html.escape(name)}</h1>",
        f"<p>Hazards: {html.escape(_hazard_text(hazards))}</p>",
        f"<p>Generated {html.escape(when)}. Statuses are as known then: check the board "
        "before calling.</p>",
        '<p class="progress">'
        f"Missions reached {missions.get('reached', 0)} of {missions.get('total', 0)} · "
        f"Households reached {households.get('reached', 0)} of {households.get('total', 0)}"
        f" · Needs assistance {needs} · Not reached {not_reached}</p>",
        '<p class="howto">Call in the order shown. Tick one outcome per row, note the time and '
        "what you learned, and hand the sheet back so the board can be updated.</p>",
        "</header>",
    ]
    groups = _groups(rows, group_by, liaisons)
    if not groups:
        body.append('<p class="empty">No one on this board yet.</p>')
    gone = _gone(rows)
    gone_by_index = dict(zip(rows.index, gone, strict=True))
    for label, part in groups:
        body += [
            '<section class="group">',
            "<table>",
            '<colgroup><col class="c-order"><col class="c-who"><col class="c-phone">'
            '<col class="c-about"><col class="c-status"><col class="c-outcome"></colgroup>',
            "<thead>",
            f'<tr><th class="sheet-title" colspan="6"><div class="where">{flag}'
            f"{html.escape(label)}</div>"
            f'<div class="meta">{html.escape(name)} · {len(part)} to call · generated '
            f"{html.escape(when)}</div></th></tr>",
            "<tr><th>#</th><th>Who</th><th>Phone</th><th>About</th>"
            "<th>Status when printed</th><th>Outcome</th></tr>",
            "</thead>",
            "<tbody>",
            *(_row_html(row, gone_by_index[index])
              for index, row in zip(part.index, part.itertuples(index=False), strict=True)),
            "</tbody>",
            "</table>",
            "</section>",
        ]
    document = "\n".join([*head, *body, "</body>", "</html>", ""])
    logger.info("call sheet: %d rows, %d groups", len(rows), len(groups))
    return document


# --------------------------------------------------------------------------------------------
# vCards

VCARD_FOLD_OCTETS = 75


def vcard_escape(value: object) -> str:
    """A vCard 3.0 text value (RFC 2426 section 4): ``\\``, ``,`` and ``;`` escaped with a
    backslash, line breaks as ``\\n``, other control characters dropped."""
    text = _plain(value).replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    return (text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
            .replace("\n", "\\n"))


def fold_line(line: str, limit: int = VCARD_FOLD_OCTETS) -> str:
    """``line`` folded into lines of at most ``limit`` octets of UTF-8 (RFC 2425 section 5.8.1:
    CRLF and one space start each continuation); never inside a character."""
    if limit < 5:
        raise ValueError(f"limit must be at least 5 octets, got {limit}")
    chunks: list[str] = []
    current: list[str] = []
    size, room = 0, limit
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > room:
            chunks.append("".join(current))
            current, size, room = [], 0, limit - 1  # the leading space takes one octet
        current.append(char)
        size += octets
    chunks.append("".join(current))
    return "\r\n ".join(chunks)


def unfold(text: str) -> str:
    """Undo :func:`fold_line` for a whole file (CRLF followed by a space or tab)."""
    return re.sub(r"\r\n[ \t]", "", text)


def _card(lines: list[str]) -> str:
    return "".join(fold_line(line) + "\r\n" for line in ["BEGIN:VCARD", "VERSION:3.0", *lines,
                                                         "END:VCARD"])


def duty_vcards(rows: pd.DataFrame, missions: pd.DataFrame, exercise: bool = False) -> str:
    """A vCard 3.0 file with one card per mission on the board (its duty contact), in calling
    order: name and organisation, work phone, e-mail, the mission's address when the roster
    has one, a note with the sending country and OFM office (and EXERCISE for drills), the
    category "Mission Watch" and a stable UID so re-importing updates the card.

    ``missions`` is the roster's missions frame (mission_id, name, country_name, address, city,
    jurisdiction, postal_code, duty_phone, email, ofm_office); the board's row wins for the
    phone, e-mail and office when it has them.
    """
    rows = _check_rows(rows)
    if not isinstance(missions, pd.DataFrame) or "mission_id" not in missions.columns:
        raise ValueError("missions must be a pandas DataFrame with a mission_id column")
    roster = missions.drop_duplicates("mission_id")
    roster.index = pd.Index(roster["mission_id"].astype(str))
    targets = rows[rows["target_kind"] == "mission"].drop_duplicates("target_id")
    cards, skipped = [], 0
    for row in targets.itertuples(index=False):
        mission_id = str(row.target_id)
        known = roster.loc[mission_id] if mission_id in roster.index else pd.Series(dtype=object)

        def pick(board_value: object, column: str, known: pd.Series = known) -> str:
            return _one_line(board_value) or _one_line(known.get(column, ""))

        name = pick(row.mission_name, "name")
        phone = pick(row.phone, "duty_phone")
        if not name:
            skipped += 1
            continue
        email = pick(row.email, "email")
        country = pick(row.country_name, "country_name")
        office = pick(row.office, "ofm_office")
        lines = [f"FN:{vcard_escape(name)}", f"N:{vcard_escape(name)};;;;",
                 f"ORG:{vcard_escape(name)}", "X-ABSHOWAS:COMPANY"]
        if phone:
            lines.append(f"TEL;TYPE=WORK,VOICE:{vcard_escape(phone)}")
        if email:
            lines.append(f"EMAIL;TYPE=INTERNET:{vcard_escape(email)}")
        street, city, region, postal = (_one_line(known.get(c, "")) for c in
                                        ("address", "city", "jurisdiction", "postal_code"))
        if street or city:
            lines.append("ADR;TYPE=WORK:;;" + ";".join(vcard_escape(v) for v in
                                                       (street, city, region, postal, "")))
        note = ([EXERCISE_TEXT] if exercise else []) + [
            f"Duty contact of {name}",
            f"Sending country: {country}" if country else "",
            f"OFM office: {_office_label(office)}" if office else "",
            "From Mission Watch",
        ]
        lines.append("NOTE:" + "\\n".join(vcard_escape(n) for n in note if n))
        lines.append("CATEGORIES:Mission Watch" + (",EXERCISE" if exercise else ""))
        lines.append(f"UID:{vcard_escape('missionwatch-mission-' + mission_id)}")
        cards.append(_card(lines))
    if skipped:
        logger.warning("duty vCards: %d mission(s) without a name skipped", skipped)
    logger.info("duty vCards: %d cards", len(cards))
    return "".join(cards)

