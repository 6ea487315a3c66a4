"""Fuzzing the roster importer: reading CSV, XLSX and GeoJSON files, validating, and storing.

The pure layer (:func:`layers.locations.read_table` and :func:`~layers.locations.check_roster`)
runs :data:`FUZZ_EXAMPLES` mutated file pairs; a smaller number go end to end through
:func:`store.importer.import_files` into a SQLite store, where a refused import must leave the
previous roster exactly as it was.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import h3
import openpyxl
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from layers.gazetteer import load_gazetteer
from layers.geography import load_geography
from layers.locations import RosterCheck, RosterError, check_roster, read_table
from layers.schema import (
    GEOCODE_PRECISIONS,
    IMMUNITY_LEVELS,
    JURISDICTIONS,
    MISSION_COLUMNS,
    MISSION_TYPES,
    OFM_OFFICES,
    PERSON_COLUMNS,
    ROLES,
)
from settings import Settings
from store.db import open_store
from store.importer import import_files
from store.roster import current_import, load_roster
from tests.fuzz.mutations import (
    FUZZ_MARKS,
    FUZZ_SETTINGS,
    HOSTILE_STRINGS,
    NOW,
    Calls,
    csv_bytes,
    mutated_bytes,
    mutated_tree,
)

pytestmark = FUZZ_MARKS

#: End-to-end imports through the store (each one a transaction on SQLite).
E2E_EXAMPLES = 150

MISSIONS = [
    list(MISSION_COLUMNS),
    ["M-00001", "Embassy of Albania", "ALB", "Albania", "embassy", "2324 Kristi Junction NW",
     "Washington", "DC", "20036", "38.9139", "-77.047", "provided", "+1 202-555-0144",
     "duty.m00001@example.org", "sq", "WAS"],
    ["M-00002", "Consulate of Chile", "chl", "", "consulate", "1 Marine Corps Dr", "Hagatna",
     "GU", "96910", "13.4762", "144.7516", "", "+1 671-555-0100", "", "es", ""],
    ["M-00003", "UN office", "XXX", "", "io_office", "1 Calle Sol", "San Juan", "pr", "901",
     "18.4654", "-66.1044", "provided", "", "io@example.org", "en", "MIA"],
]
PEOPLE = [
    list(PERSON_COLUMNS),
    ["P-000001", "M-00001", "H-000001", "diplomatic_agent", "full", "Ana Booth",
     "2 Jackson Pass NW", "Washington", "DC", "20016", "38.9452985", "-77.1029233", "provided",
     "+1 202-555-0160", "ana.booth.1@example.org", "sq"],
    ["P-000002", "M-00001", "H-000001", "dependent", "full", "Lance Booth", "2 Jackson Pass NW",
     "Washington", "DC", "20016", "38.9452985", "-77.1029233", "provided", "", "", "sq"],
    ["P-000003", "M-00002", "", "consular_officer", "official_acts", "Rosa Díaz", "5 Marine Dr",
     "Hagatna", "GU", "96910", "13.48", "144.75", "", "", "", "es"],
    ["P-000004", "M-00003", "H-4", "io_staff", "none", "Ivo Ng", "3 Calle Luna", "San Juan",
     "PR", "00901", "18.46", "-66.10", "", "+1 (787) 555-0199 x12", "", "en-US"],
]

#: Cell values worth trying, besides the generic hostile strings.
CELLS = (
    "", " ", "38.9", "-77.0", "91", "-181", "0", "1e999", "-1e999", "nan", "inf", "NaN",
    " 38.9 ", "38.9.1", "38,9", "١٢", "0x10", "1_0", "+38.9", "-0", "1e-400", "13.4762",
    "144.7516", "-166.5", "179.9999", "-179.9999", "M-00001", "M-00002", "P-000001", "H-000001",
    "a b", "x" * 65, "dc", "XX", "GU", "AS", "MH", "pr", "2134", "00000", "96910", "20036-1234",
    "Dependent", "dependent", "full", "NONE", "embassy", "zip", "city", "rooftop", "WAS", "was",
    "=1+1", "=HYPERLINK(\"http://x\")", "+1 202", "-1", "@SUM(A1)", "\t=cmd", "\r=cmd", '"',
    '""', 'a"b', "a\nb", "a\r\nb", "x" * 5000, "\x00", "\x1b[31m", "\u00a0", "Rosa\u0301",
    "es", "EN", "e", "ana@example", "a@b.co", "+1 202-555-0100 ext. 5",
)
HEADERS = ("MISSION_ID", " lat ", "Lat", "latitude", "_geometry_error", "", "unnamed: 0",
           "lon", "lat", "mission_id", "person_id", "jurisdiction")
ENCODINGS = ("utf-8",) * 6 + ("utf-8-sig", "utf-8-sig", "utf-16", "latin-1", "cp1252")
LINE_ENDS = ("\n", "\r\n", "\r")
QUOTING = (csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC)

cell_values = st.sampled_from(CELLS + HOSTILE_STRINGS) | st.text(max_size=12)
SEED_FILES = ((".csv", csv_bytes(MISSIONS)), (".csv", csv_bytes(PEOPLE)))


@st.composite
def mutated_rows(draw: st.DrawFn, seed: list[list[str]]) -> list[list[str]]:
    """The seed table with cells, columns and rows changed (header included)."""
    rows = [list(row) for row in seed]
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 20))  # mostly cells: structure changes stop the read
        width = max(len(row) for row in rows) if rows else 0
        if not rows or width == 0:
            break
        r = draw(st.integers(0, len(rows) - 1))
        c = draw(st.integers(0, width - 1))
        if op <= 11 and c < len(rows[r]):                     # a cell
            rows[r][c] = draw(cell_values)
        elif op == 12:                                         # shuffle the columns
            order = draw(st.permutations(range(width)))
            rows = [[row[i] for i in order if i < len(row)] for row in rows]
        elif op == 13:                                         # drop a column
            rows = [row[:c] + row[c + 1:] for row in rows]
        elif op == 14:                                         # duplicate a column
            rows = [row[:c + 1] + row[c:] for row in rows]
        elif op == 15 and c < len(rows[0]):                    # rename a header
            rows[0][c] = draw(st.sampled_from(HEADERS))
        elif op in (16, 17):                                   # a ragged row
            if draw(st.booleans()):
                rows[r] = rows[r] + [draw(cell_values)]
            else:
                rows[r] = rows[r][:c]
        elif op == 18:                                         # a duplicate row
            rows.insert(r, list(rows[r]))
        elif len(rows) > 1:                                    # a row less
            del rows[draw(st.integers(1, len(rows) - 1))]
    return rows


def _geojson(rows: list[list[str]]) -> dict[str, Any]:
    """The table as a GeoJSON roster: a Point per row, the other columns as properties."""
    header, features = rows[0], []
    for row in rows[1:]:
        props = dict(zip(header, row, strict=False))
        lon, lat = props.pop("lon", ""), props.pop("lat", "")
        try:
            geometry: Any = {"type": "Point", "coordinates": [float(lon), float(lat)]}
        except ValueError:
            geometry = None
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _xlsx(rows: list[list[str]], numbers: bool) -> bytes:
    book = openpyxl.Workbook()
    book.properties.created = book.properties.modified = NOW.replace(tzinfo=None)  # same bytes
    sheet = book.active
    for row in rows:
        values: list[Any] = []
        for value in row:
            try:
                values.append(float(value) if numbers and value else value)
            except ValueError:
                values.append(value)
        sheet.append(["".join(ch for ch in v if ch >= " " or ch in "\t\n\r")
                      if isinstance(v, str) else v for v in values])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@st.composite
def roster_files(draw: st.DrawFn, seed: list[list[str]]) -> tuple[str, bytes]:
    """(suffix, bytes) of one mutated roster file: CSV mostly, GeoJSON, sometimes XLSX."""
    rows = draw(mutated_rows(seed))
    kind = draw(st.integers(0, 19))
    if kind == 0 and rows:
        suffix, data = ".xlsx", _xlsx(rows, draw(st.booleans()))
    elif kind <= 4 and rows:
        tree = _geojson(rows)
        text = json.dumps(tree)
        tree = draw(mutated_tree([text], max_ops=2))
        suffix = ".geojson"
        data = json.dumps(tree, ensure_ascii=False).encode("utf-8", "surrogatepass")
    else:
        suffix = draw(st.sampled_from((".csv", ".csv", ".txt")))
        data = csv_bytes(rows, quoting=draw(st.sampled_from(QUOTING)),
                         line_end=draw(st.sampled_from(LINE_ENDS)),
                         encoding=draw(st.sampled_from(ENCODINGS)))
    if draw(st.integers(0, 7)) == 0:
        data = draw(mutated_bytes(data))
    return suffix, data


def _write(folder: Path, name: str, file: tuple[str, bytes]) -> Path:
    suffix, data = file
    path = folder / f"{name}{suffix}"
    for old in folder.glob(f"{name}.*"):
        old.unlink()
    path.write_bytes(data)
    return path


def _check_result(check: RosterCheck, missions_rows: set[int], people_rows: set[int]) -> None:
    """Every refused row is reported with its row number and reason; the clean rows are clean."""
    for problem in check.problems:
        assert problem.file in ("missions", "people"), problem
        assert problem.row in (missions_rows if problem.file == "missions" else people_rows)
        assert problem.column and problem.reason, problem
    bad = {(p.file, p.row) for p in check.problems}
    assert len(check.missions) + sum(f == "missions" for f, _ in bad) == check.missions_read
    assert len(check.people) + sum(f == "people" for f, _ in bad) == check.people_read
    assert check.ok == (not check.problems)
    for frame, columns in ((check.missions, MISSION_COLUMNS), (check.people, PERSON_COLUMNS)):
        assert list(frame.columns) == [*columns, "h3_cell"]
        assert frame["lat"].between(-90, 90).all() and frame["lon"].between(-180, 180).all()
        assert not ((frame["lat"] == 0) & (frame["lon"] == 0)).any()
        assert frame["jurisdiction"].isin(JURISDICTIONS).all()
        assert frame["geocode_precision"].isin(GEOCODE_PRECISIONS).all()
        assert all(h3.is_valid_cell(cell) for cell in frame["h3_cell"])
        ids = frame[columns[0]]
        assert ids.is_unique and (ids != "").all()
    assert check.missions["mission_type"].isin(MISSION_TYPES).all()
    assert check.missions["ofm_office"].isin(OFM_OFFICES).all()
    assert check.people["role"].isin(ROLES).all()
    assert check.people["immunity"].isin(IMMUNITY_LEVELS).all()
    assert check.people["mission_id"].isin(check.missions["mission_id"]).all()
    assert all(math.isfinite(v) for v in check.people["lat"])


def _read(path: Path, kind: str) -> Any:
    try:
        return read_table(path, kind)
    except RosterError as exc:
        assert str(exc)
        return None


def test_roster_files_survive_mutation() -> None:
    calls = Calls()
    geography, gazetteer = load_geography(), load_gazetteer()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-roster-"))

    @FUZZ_SETTINGS
    @given(missions=roster_files(MISSIONS), people=roster_files(PEOPLE),
           which=st.sampled_from(("missions", "people", "both")))
    def fuzz(missions: tuple[str, bytes], people: tuple[str, bytes], which: str) -> None:
        calls()
        # mostly one file mutated and the other as recorded, so that most inputs get past
        # reading into validation
        if which == "missions":
            people = SEED_FILES[1]
        elif which == "people":
            missions = SEED_FILES[0]
        m_table = _read(_write(folder, "missions", missions), "missions")
        p_table = _read(_write(folder, "people", people), "people")
        if m_table is None or p_table is None:
            return
        check = check_roster(m_table, p_table, geography=geography, gazetteer=gazetteer,
                             h3_resolution=9, tolerance_km=10.0)
        _check_result(check, set(m_table.rows.tolist()), set(p_table.rows.tolist()))

    fuzz()
    calls.check()


def test_refused_imports_leave_the_stored_roster_untouched() -> None:
    calls = Calls()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-import-"))
    engine = open_store(f"sqlite:///{folder / 'store.sqlite3'}")
    config = Settings.from_env({})
    import_files(engine, config, _write(folder, "missions", SEED_FILES[0]),
                 _write(folder, "people", SEED_FILES[1]), actor="fuzz", now=NOW)

    @settings(FUZZ_SETTINGS, max_examples=E2E_EXAMPLES)
    @given(missions=roster_files(MISSIONS), people=roster_files(PEOPLE),
           skip_invalid=st.booleans())
    def fuzz(missions: tuple[str, bytes], people: tuple[str, bytes], skip_invalid: bool) -> None:
        calls()
        before = current_import(engine)
        stored = load_roster(engine)
        try:
            report = import_files(engine, config, _write(folder, "missions", missions),
                                  _write(folder, "people", people), actor="fuzz", now=NOW,
                                  skip_invalid=skip_invalid)
        except RosterError as exc:
            assert str(exc)
            assert current_import(engine) == before
            after = load_roster(engine)
            for old, new in zip(stored, after, strict=True):
                pd.testing.assert_frame_equal(old, new)
            return
        assert report.import_id is not None and report.import_id > before["import_id"]
        assert skip_invalid or report.check.ok
        missions_now, people_now = load_roster(engine)
        assert sorted(missions_now["mission_id"]) == sorted(report.check.missions["mission_id"])
        assert sorted(people_now["person_id"]) == sorted(report.check.people["person_id"])

    fuzz()
    calls.check(E2E_EXAMPLES)
    engine.dispose()
