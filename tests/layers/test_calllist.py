"""Call lists: calling order row by row, formula neutralisation, CSV and XLSX files."""

from __future__ import annotations

import csv
import datetime as dt
import zipfile
from xml.etree.ElementTree import canonicalize

import numpy as np
import openpyxl
import pandas as pd
import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from layers.calllist import (
    CALL_LIST_COLUMNS,
    call_list,
    export_header,
    neutralise_formula,
    sheet_name,
    write_csv,
    write_xlsx,
)
from layers.schema import MISSION_COLUMNS, PERSON_COLUMNS

PAYLOADS = ('=HYPERLINK("http://x","y")', "@SUM(1)", "-2+3", "+1+1", "\t=1", "\r=1")
PHONE = "+1 202-555-0142"
WHEN = dt.datetime(2026, 7, 4, 16, 30, tzinfo=dt.timezone.utc)


def _missions(*rows: dict) -> pd.DataFrame:
    base = dict.fromkeys(MISSION_COLUMNS, "")
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(MISSION_COLUMNS))


def _people(*rows: tuple) -> pd.DataFrame:
    base = dict.fromkeys(PERSON_COLUMNS, "")
    keys = ("person_id", "mission_id", "household_id", "role", "immunity")
    out = []
    for row in rows:
        rec = {**base, **dict(zip(keys, row, strict=True))}
        rec["name"] = f"Name {row[0]}"
        rec["phone"] = f"+1 202-555-01{row[0][-2:]}"
        out.append(rec)
    return pd.DataFrame(out, columns=list(PERSON_COLUMNS))


def _mission(mid: str, office: str, **extra: str) -> dict:
    return {"mission_id": mid, "name": f"Embassy {mid}", "country_name": f"Country {mid}",
            "mission_type": "embassy", "jurisdiction": "DC",
            "duty_phone": f"+1 202-555-0{mid[-3:]}",
            "email": f"{mid.lower()}@example.org", "language": "es", "ofm_office": office, **extra}


def _pairs(*pairs: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(pairs, columns=["hazard_id", "location_id"])
    return frame.astype("category")  # as ImpactIndex.affected returns them


HAZARDS = pd.DataFrame({
    "hazard_id": ["H-A", "H-B", "H-C"],
    "event": ["Flood Warning", "Tornado Warning", "Heat Advisory"],
    "severity": ["Severe", "EXTREME", ""],
})


@pytest.fixture
def roster() -> tuple[pd.DataFrame, pd.DataFrame]:
    missions = _missions(
        _mission("M-001", "WAS"),
        _mission("M-002", "NYC", jurisdiction="NY"),
        _mission("M-009", ""),  # not affected
    )
    people = _people(
        ("P-01", "M-001", "H-1", "diplomatic_agent", "full"),
        ("P-02", "M-001", "H-1", "dependent", "full"),
        ("P-03", "M-001", "H-1", "admin_technical_staff", "official_acts"),
        ("P-04", "M-001", "H-2", "service_staff", "none"),
        ("P-05", "M-001", "H-2", "dependent", "none"),
        ("P-06", "M-002", "H-3", "consular_officer", "full"),
        ("P-07", "M-002", "H-3", "dependent", "full"),
        ("P-08", "M-002", "H-4", "consular_officer", "full"),  # not affected
    )
    return missions, people


def _main_pairs() -> pd.DataFrame:
    return _pairs(
        ("H-A", "M:M-001"), ("H-A", "P:P-01"), ("H-A", "P:P-02"), ("H-A", "P:P-03"),
        ("H-B", "P:P-02"), ("H-B", "P:P-04"), ("H-B", "P:P-05"),
        ("H-A", "P:P-06"), ("H-A", "P:P-07"),
    )


def test_calling_order_row_by_row(roster) -> None:
    missions, people = roster
    out = call_list(_main_pairs(), missions, people, HAZARDS)
    assert tuple(out.columns) == CALL_LIST_COLUMNS
    got = list(out[["order", "mission_id", "contact_kind", "person_id", "household_id",
                    "hazard_ids", "worst_severity"]].itertuples(index=False, name=None))
    assert got == [
        (1, "M-001", "duty", "", "", "H-A;H-B", "extreme"),
        (2, "M-001", "head_of_household", "P-01", "H-1", "H-A", "severe"),  # full immunity
        (3, "M-001", "head_of_household", "P-04", "H-2", "H-B", "extreme"),
        (4, "M-001", "household_member", "P-03", "H-1", "H-A", "severe"),
        (5, "M-001", "household_member", "P-02", "H-1", "H-A;H-B", "extreme"),
        (6, "M-001", "household_member", "P-05", "H-2", "H-B", "extreme"),
        (7, "M-002", "duty", "", "", "H-A", "severe"),
        (8, "M-002", "head_of_household", "P-06", "H-3", "H-A", "severe"),
        (9, "M-002", "household_member", "P-07", "H-3", "H-A", "severe"),
    ]
    duty = out.iloc[0]
    assert (duty["office"], duty["phone"], duty["email"]) == (
        "WAS", "+1 202-555-0001", "m-001@example.org")
    assert out.loc[1, ["name", "role", "immunity", "phone"]].tolist() == [
        "Name P-01", "diplomatic_agent", "full", "+1 202-555-0101"]
    assert out.loc[6, "office"] == "NYC"


def test_person_in_two_hazards_appears_once_with_both(roster) -> None:
    missions, people = roster
    out = call_list(_main_pairs(), missions, people, HAZARDS)
    assert out["person_id"].value_counts()["P-02"] == 1
    row = out[out["person_id"] == "P-02"].iloc[0]
    assert (row["hazard_ids"], row["worst_severity"]) == ("H-A;H-B", "extreme")
    assert "P-08" not in set(out["person_id"]) and "M-009" not in set(out["mission_id"])


def test_mission_affected_only_through_a_residence() -> None:
    missions = _missions(_mission("M-003", "", jurisdiction="FL"))
    people = _people(("P-31", "M-003", "H-31", "diplomatic_agent", "full"))
    out = call_list(_pairs(("H-C", "P:P-31")), missions, people, HAZARDS)
    assert out["contact_kind"].tolist() == ["duty", "head_of_household"]
    assert out.loc[0, "phone"] == "+1 202-555-0003"
    assert out.loc[0, "office"] == "MIA"  # derived from the jurisdiction
    assert out["worst_severity"].tolist() == ["unknown", "unknown"]


def test_mission_order_severity_then_immunity_then_people_then_id() -> None:
    missions = _missions(*(_mission(m, "WAS") for m in ("M-00a", "M-00b", "M-00c", "M-00d",
                                                        "M-00e")))
    people = _people(
        ("P-a1", "M-00a", "H-a1", "service_staff", "none"),
        ("P-a2", "M-00a", "H-a2", "service_staff", "none"),
        ("P-a3", "M-00a", "H-a3", "service_staff", "none"),
        ("P-b1", "M-00b", "H-b1", "service_staff", "none"),
        ("P-c1", "M-00c", "H-c1", "admin_technical_staff", "official_acts"),
        ("P-d1", "M-00d", "H-d1", "diplomatic_agent", "full"),
    )
    pairs = _pairs(*(("H-A", f"P:{p}") for p in people["person_id"]), ("H-B", "M:M-00e"))
    out = call_list(pairs, missions, people, HAZARDS)
    duty_order = out.loc[out["contact_kind"] == "duty", "mission_id"].tolist()
    assert duty_order == ["M-00e", "M-00d", "M-00c", "M-00a", "M-00b"]


def test_dependents_only_and_no_household_id() -> None:
    missions = _missions(_mission("M-004", "WAS"))
    people = _people(
        ("P-41", "M-004", "H-41", "dependent", "full"),
        ("P-42", "M-004", "", "service_staff", "none"),
        ("P-43", "M-004", "", "service_staff", "none"),
    )
    pairs = _pairs(*(("H-A", f"P:{p}") for p in people["person_id"]))
    out = call_list(pairs, missions, people, HAZARDS)
    assert list(zip(out["contact_kind"], out["person_id"], strict=True)) == [
        ("duty", ""), ("head_of_household", "P-42"), ("head_of_household", "P-43"),
        ("household_member", "P-41"),
    ]


def test_empty_pairs_give_empty_list(roster) -> None:
    missions, people = roster
    out = call_list(_pairs(), missions, people, HAZARDS)
    assert out.empty and tuple(out.columns) == CALL_LIST_COLUMNS


@pytest.mark.parametrize(
    ("pairs", "hazards", "message"),
    [
        (_pairs(("H-X", "P:P-01")), HAZARDS, "pairs names hazard_id"),
        (_pairs(("H-A", "Q:P-01")), HAZARDS, "pairs location_id"),
        (_pairs(("H-A", "P:P-99")), HAZARDS, "pairs names person"),
        (_pairs(("H-A", "M:M-99")), HAZARDS, "pairs names mission"),
        (_pairs(("H-A", "P:P-01")), HAZARDS.assign(severity="bad"), "hazards severity"),
        (_pairs(("H-A", "P:P-01")), HAZARDS.drop(columns="event"), "hazards is missing"),
        (pd.DataFrame({"hazard_id": []}), HAZARDS, "pairs is missing"),
    ],
)
def test_bad_arguments_are_named(roster, pairs, hazards, message) -> None:
    missions, people = roster
    with pytest.raises(ValueError, match=message):
        call_list(pairs, missions, people, hazards)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_payloads_are_neutralised(payload: str) -> None:
    assert neutralise_formula(payload) == "'" + payload


def test_phone_keeps_its_digits_behind_the_apostrophe() -> None:
    assert neutralise_formula(PHONE) == "'" + PHONE
    assert neutralise_formula("202-555-0142") == "202-555-0142"
    assert neutralise_formula("Embassy of Chile") == "Embassy of Chile"
    assert neutralise_formula(None) == "" and neutralise_formula(float("nan")) == ""
    assert neutralise_formula(7) == "7"


def _export_frame(roster) -> pd.DataFrame:
    missions, people = roster
    out = call_list(_main_pairs(), missions, people, HAZARDS)
    out.loc[1, "name"] = PAYLOADS[0]
    out.loc[2, "email"] = PAYLOADS[1]
    out.loc[3, "language"] = PAYLOADS[2]
    return out


def test_export_header_lines() -> None:
    lines = dict(export_header(HAZARDS, 9, generated_at=WHEN, exercise=True))
    assert lines["exercise"].startswith("EXERCISE")
    assert lines["hazards"] == ("H-A (Flood Warning, severe); H-B (Tornado Warning, extreme); "
                                "H-C (Heat Advisory, unknown)")
    assert lines["generated_utc"] == "2026-07-04 16:30:00 UTC"
    assert lines["generated_eastern"] == "2026-07-04 12:30:00 EDT"
    assert lines["rows"] == "9"
    assert "exercise" not in dict(export_header(HAZARDS, 0, generated_at=WHEN))
    with pytest.raises(ValueError, match="generated_at"):
        export_header(HAZARDS, 1, generated_at=dt.datetime(2026, 7, 4))  # noqa: DTZ001


def test_csv_file(tmp_path, roster) -> None:
    frame = _export_frame(roster)
    header = export_header(HAZARDS, len(frame), generated_at=WHEN, exercise=True)
    path = write_csv(frame, tmp_path / "calls.csv", header_lines=header)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == len(header) + 1 + len(frame)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    comments = rows[: len(header)]
    assert [r[0] for r in comments] == [f"# {k}: {v}" for k, v in header]
    assert comments[0][0].startswith("# exercise: EXERCISE")
    assert rows[len(header)] == list(CALL_LIST_COLUMNS)
    data = rows[len(header) + 1:]
    assert len(data) == len(frame) == 9
    assert data[1][CALL_LIST_COLUMNS.index("name")] == "'" + PAYLOADS[0]
    assert data[2][CALL_LIST_COLUMNS.index("email")] == "'" + PAYLOADS[1]
    assert data[3][CALL_LIST_COLUMNS.index("language")] == "'" + PAYLOADS[2]
    assert data[0][CALL_LIST_COLUMNS.index("phone")] == "'+1 202-555-0001"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_csv_refuses_header_line_breaks(tmp_path, roster) -> None:
    with pytest.raises(ValueError, match="header_lines"):
        write_csv(_export_frame(roster), tmp_path / "x.csv", header_lines=[("a", "b\nc")])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("WAS Washington DC", "WAS Washington DC"),
        ("a[b]c:d*e?f/g\\h", "a_b_c_d_e_f_g_h"),
        ("'quoted'", "quoted"),
        ("", "Sheet"),
        ("History", "History (2)"),
        ("M-001 Permanent Mission of the Republic of Somewhere", "M-001 Permanent Mission of the"),
    ],
)
def test_sheet_name_sanitising(name: str, expected: str) -> None:
    assert sheet_name(name, set()) == expected


def test_sheet_names_unique_and_short() -> None:
    taken: set[str] = set()
    long = "M-001 Permanent Mission of the Republic of Somewhere"
    names = [sheet_name(n, taken) for n in (long, long, long.upper(), "Summary", "summary")]
    assert names[0] == "M-001 Permanent Mission of the"
    assert names[1] == "M-001 Permanent Mission of (2)"
    assert names[2] == "M-001 PERMANENT MISSION OF (3)"
    assert names[3:] == ["Summary", "summary (2)"]
    assert all(len(n) <= 31 for n in names)


def test_xlsx_by_office(tmp_path, roster) -> None:
    frame = _export_frame(roster)
    summary = export_header(HAZARDS, len(frame), generated_at=WHEN, exercise=True)
    path = write_xlsx(frame, tmp_path / "calls.xlsx", summary=summary)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "WAS Washington DC", "NYC New York"]
    first = wb["Summary"]
    values = [[c.value for c in row] for row in first.iter_rows()]
    assert values[1][:2] == ["exercise", "EXERCISE - drill data, not a real event"]
    assert ["WAS", "Washington DC", 6, 1, 5] in values
    assert ["NYC", "New York", 3, 1, 2] in values
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2"
        assert all(c.font.bold for c in ws[1] if c.value is not None)
        assert ws.column_dimensions["A"].width > 0
    was = wb["WAS Washington DC"]
    assert [c.value for c in was[1]] == list(CALL_LIST_COLUMNS)
    assert was.max_row == 1 + 6
    assert all(c.data_type != "f" for ws in wb.worksheets for row in ws.iter_rows() for c in row)
    name = was.cell(row=3, column=CALL_LIST_COLUMNS.index("name") + 1)
    assert (name.value, name.data_type, name.quotePrefix) == (PAYLOADS[0], "s", True)
    phone = was.cell(row=2, column=CALL_LIST_COLUMNS.index("phone") + 1)
    assert (phone.value, phone.data_type) == ("+1 202-555-0001", "s")
    assert was.cell(row=2, column=1).value == 1  # order stays a number


def test_xlsx_by_mission_with_odd_names(tmp_path, roster) -> None:
    frame = _export_frame(roster)
    frame["mission_name"] = frame["mission_name"].map({
        "Embassy M-001": "Embassy of [Odd]: Name/With*Chars? and a very long tail",
        "Embassy M-002": '=HYPERLINK("http://x","y")',
    })
    path = write_xlsx(frame, tmp_path / "m.xlsx", summary=[("rows", "9")], split_by="mission")
    names = openpyxl.load_workbook(path).sheetnames
    assert names == [
        "Summary", "M-001 Embassy of _Odd__ Name_Wi", 'M-002 =HYPERLINK("http___x","y"'
    ]
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    with pytest.raises(ValueError, match="split_by"):
        write_xlsx(frame, tmp_path / "z.xlsx", summary=[], split_by="country")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The files against the usual way: a plain csv.writer loop, openpyxl cell by cell


def _odd_frame(roster) -> pd.DataFrame:
    """The export frame with every kind of value a writer must handle, in text and object
    columns: formula payloads, phones, error codes, blanks, XML specials, illegal control
    characters, missing values, numbers (negative, float, infinite), booleans, long text."""
    frame = _export_frame(roster)
    odd = [*PAYLOADS, PHONE, "#N/A", "#DIV/0!", "", " ", "  lead", "trail  ", "a\x00b\x07c",
           "\x1f=1", "&<>\"'", "=", "'quoted", "x" * 70, "naïve 東京", "line\nbreak",
           'quote"and,comma', "TRUE", "0012", "y" * 32770, None]
    extra = pd.concat([frame] * 4, ignore_index=True)
    extra["order"] = range(1, len(extra) + 1)
    extra.loc[len(extra) - 1, "order"] = -7
    for i, value in enumerate(odd):
        extra.loc[i % len(extra), CALL_LIST_COLUMNS[8 + i % 7]] = value
    mixed = [None, float("nan"), pd.NA, -3, 2.5, float("inf"), True, False, 10**17,
             dt.date(2026, 1, 2), "=1+1"]
    extra["hazard_ids"] = extra["hazard_ids"].astype(object)
    for i, value in enumerate(mixed):
        extra.at[i, "hazard_ids"] = value
    extra["people"] = pd.array([-1, None, *range(len(extra) - 2)], dtype="Int64")
    extra["tag"] = pd.Categorical(["=x", None, *["a"] * (len(extra) - 2)])
    return extra


def test_csv_is_what_a_plain_writer_writes(tmp_path, roster) -> None:
    frame = _odd_frame(roster)
    header = export_header(HAZARDS, len(frame), generated_at=WHEN)
    path = write_csv(frame, tmp_path / "calls.csv", header_lines=header)
    reference = tmp_path / "reference.csv"
    with reference.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        for key, value in header:
            writer.writerow([f"# {key}: {value}"])
        writer.writerow(list(frame.columns))
        for row in frame.itertuples(index=False, name=None):
            writer.writerow([neutralise_formula(v) for v in row])
    assert path.read_bytes() == reference.read_bytes()


def _openpyxl_sheet(frame: pd.DataFrame) -> openpyxl.Workbook:
    """``frame`` as one sheet written cell by cell with openpyxl: the reference layout."""
    bold = openpyxl.styles.Font(bold=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    widths = [len(str(c)) for c in frame.columns]
    for c, title in enumerate(frame.columns, start=1):
        cell = ws.cell(row=1, column=c, value=str(title))
        cell.data_type, cell.font = "s", bold
    for r, row in enumerate(frame.itertuples(index=False, name=None), start=2):
        for c, raw in enumerate(row, start=1):
            value = raw.item() if isinstance(raw, np.generic) else raw  # numbers stay numbers
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                value = None
            elif isinstance(value, bool) or not isinstance(value, int | float):
                value = ILLEGAL_CHARACTERS_RE.sub("", str(value))
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
                cell.quotePrefix = value.startswith(("=", "+", "-", "@", "\t", "\r"))
            if value is not None:
                widths[c - 1] = max(widths[c - 1], len(str(value)))
    ws.freeze_panes = "A2"
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(width + 2, 60)
    return wb


def _sheet_facts(ws) -> dict:
    return {
        "freeze": ws.freeze_panes,
        "widths": {k: d.width for k, d in ws.column_dimensions.items()},
        "dimensions": ws.dimensions,
        "cells": [[(c.value, c.data_type, c.quotePrefix, bool(c.font.b)) for c in row]
                  for row in ws.iter_rows()],
    }


def test_xlsx_sheet_is_what_openpyxl_writes(tmp_path, roster) -> None:
    frame = _odd_frame(roster)
    frame["office"] = "WAS"
    path = write_xlsx(frame, tmp_path / "calls.xlsx", summary=[("rows", str(len(frame)))])
    reference = tmp_path / "reference.xlsx"
    _openpyxl_sheet(frame).save(reference)
    got = openpyxl.load_workbook(path)
    assert got.sheetnames == ["Summary", "WAS Washington DC"]
    facts = _sheet_facts(got["WAS Washington DC"])
    assert facts == _sheet_facts(openpyxl.load_workbook(reference).active)
    with zipfile.ZipFile(path) as ours, zipfile.ZipFile(reference) as theirs:
        assert canonicalize(ours.read("xl/worksheets/sheet2.xml").decode()) == canonicalize(
            theirs.read("xl/worksheets/sheet1.xml").decode())  # the very same XML
    values = [v for row in facts["cells"] for v, *_ in row]
    assert "=1+1" in values and PHONE in values and "#N/A" in values and "y" * 32767 in values


@pytest.mark.slow
def test_xlsx_big_sheet_keeps_header_frozen_and_formulas_text(tmp_path, roster) -> None:
    part = _export_frame(roster)
    frame = pd.concat([part] * 1200, ignore_index=True)  # more rows than one written chunk
    frame["order"] = range(1, len(frame) + 1)
    frame["office"] = "WAS"
    path = write_xlsx(frame, tmp_path / "big.xlsx", summary=[])
    ws = openpyxl.load_workbook(path)["WAS Washington DC"]
    assert (ws.freeze_panes, ws.max_row) == ("A2", len(frame) + 1)
    name_col = CALL_LIST_COLUMNS.index("name") + 1
    phone_col = CALL_LIST_COLUMNS.index("phone") + 1
    for r in (2, 3, 10_001, 10_002, len(frame), len(frame) + 1):
        expected = frame.iloc[r - 2]
        assert ws.cell(row=r, column=1).value == expected["order"]
        name, phone = ws.cell(row=r, column=name_col), ws.cell(row=r, column=phone_col)
        assert (name.value or "", phone.value) == (expected["name"], expected["phone"])
        assert (phone.data_type, phone.quotePrefix) == ("s", True)
        assert name.quotePrefix == expected["name"].startswith("=")
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


def test_call_list_does_not_depend_on_input_row_order(roster) -> None:
    missions, people = roster
    pairs = _main_pairs()
    out = call_list(pairs, missions, people, HAZARDS)
    shuffled = call_list(pairs.iloc[::-1], missions.iloc[::-1],
                         people.sample(frac=1, random_state=3), HAZARDS.iloc[::-1])
    pd.testing.assert_frame_equal(out, shuffled)
