"""Board exports: CSV and XLSX read back, the printable call sheet, duty vCards."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import html.parser
import re

import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layers.calllist import call_list
from layers.outreach import board_rows, liaisons, progress, targets_from_calls
from layers.outreach_export import (
    CALL_SHEET_CSP,
    CALL_SHEET_STYLE,
    EXPORT_COLUMNS,
    GONE_GROUP,
    OUTCOMES,
    board_csv,
    board_frame,
    board_header,
    board_xlsx,
    call_sheet_html,
    duty_vcards,
    fold_line,
    unfold,
    vcard_escape,
)
from layers.schema import MISSION_COLUMNS, PERSON_COLUMNS

BEGAN = dt.datetime(2026, 7, 4, 12, 0, tzinfo=dt.timezone.utc)
WHEN = dt.datetime(2026, 7, 4, 16, 30, tzinfo=dt.timezone.utc)
PAYLOAD = '=HYPERLINK("http://evil.example/x","click")'
PHONE = "+1 202-555-0142"
SCRIPT = "<script>alert(1)</script>"
LONG_NAME = "Ambasciata della Repubblica — 大使館 " * 4 + "Ελλάδα; São Tomé, e Príncipe\\"
HAZARDS = pd.DataFrame({"hazard_id": ["nws:a", "nws:b"],
                        "event": ["Flood Warning", "Tornado Warning"],
                        "severity": ["Severe", "Extreme"],
                        "area_desc": ["District of Columbia", "Kings County"]})


def _roster() -> tuple[pd.DataFrame, pd.DataFrame]:
    base = dict.fromkeys(MISSION_COLUMNS, "")
    missions = pd.DataFrame([
        {**base, "mission_id": "M-001", "name": f"Embassy {SCRIPT}", "country_name": "Chile",
         "mission_type": "embassy", "jurisdiction": "DC", "lat": 38.9, "ofm_office": "WAS",
         "duty_phone": PHONE, "email": "duty@chile.example.org", "language": "es",
         "address": "2210 Massachusetts Ave NW, Suite 3; Rear", "city": "Washington",
         "postal_code": "20008"},
        {**base, "mission_id": "M-002", "name": LONG_NAME, "country_name": "Italy",
         "mission_type": "consulate_general", "jurisdiction": "NY", "lat": 40.7,
         "ofm_office": "NYC", "duty_phone": "+1 212-555-0100", "email": "", "language": "it"},
    ], columns=list(MISSION_COLUMNS))
    pbase = dict.fromkeys(PERSON_COLUMNS, "")
    people = pd.DataFrame([
        {**pbase, "person_id": "P-01", "mission_id": "M-001", "household_id": "H-1",
         "role": "diplomatic_agent", "immunity": "full", "name": f"Ana {SCRIPT}",
         "phone": PHONE},
        {**pbase, "person_id": "P-02", "mission_id": "M-001", "household_id": "H-1",
         "role": "dependent", "immunity": "full", "name": "Bo", "phone": ""},
        {**pbase, "person_id": "P-03", "mission_id": "M-002", "household_id": "H-3",
         "role": "consular_officer", "immunity": "official_acts", "name": "Cara",
         "phone": "+1 212-555-0133"},
    ], columns=list(PERSON_COLUMNS))
    return missions, people


def _rows() -> pd.DataFrame:
    missions, people = _roster()
    pairs = pd.DataFrame([("nws:a", "M:M-001"), ("nws:a", "P:P-01"), ("nws:a", "P:P-02"),
                          ("nws:b", "P:P-03")], columns=["hazard_id", "location_id"])
    targets = targets_from_calls(call_list(pairs, missions, people, HAZARDS))
    latest = pd.DataFrame([
        ("household", "H-1", "reached_needs_assistance", PAYLOAD + "\nneeds water", "user:c",
         WHEN, 7, 2, WHEN),
        ("household", "H-OLD", "attempted", "moved away", "user:d", WHEN, 3, 1, WHEN),
    ], columns=["target_kind", "target_id", "status", "note", "actor", "at", "event_id",
                "updates", "first_contact_at"])
    seen = pd.DataFrame({"target_kind": [*targets["target_kind"], "household"],
                         "target_id": [*targets["target_id"], "H-OLD"],
                         "first_seen_at": BEGAN})
    seen.loc[seen["target_id"] == "H-3", "first_seen_at"] = WHEN  # appeared later: new
    seen["first_seen_at"] = pd.to_datetime(seen["first_seen_at"], utc=True)
    return board_rows(targets, latest, seen, BEGAN)


@pytest.fixture
def rows() -> pd.DataFrame:
    return _rows()


def test_header_lines_carry_the_board_and_its_progress(rows) -> None:
    lines = board_header("Flood\nboard", HAZARDS, rows, generated_at=WHEN, exercise=True)
    keys = [k for k, _ in lines]
    assert keys[:3] == ["exercise", "title", "board"]
    found = dict(lines)
    assert found["exercise"].startswith("EXERCISE")
    assert found["board"] == "Flood board" and found["title"] == "Mission Watch outreach board"
    assert found["missions_reached"] == "0 of 2"
    assert found["households_reached"] == "1 of 3"  # H-1, H-3 and the no-longer-affected H-OLD
    assert found["needs_assistance"] == "1" and found["not_reached"] == "4"
    assert found["new_targets"] == "1" and found["rows"] == str(len(rows)) == "5"
    assert found["generated_eastern"] == "2026-07-04 12:30:00 EDT"
    assert "exercise" not in dict(board_header("b", HAZARDS, rows, generated_at=WHEN))


def test_csv_reads_back_neutralised(tmp_path, rows) -> None:
    header = board_header("Board", HAZARDS, rows, generated_at=WHEN, exercise=True)
    path = board_csv(rows, tmp_path / "board.csv", header)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    # CRLF ends every record; the one bare LF is the line break inside the quoted note
    assert raw.count(b"\r\n") == len(header) + 1 + len(rows)
    assert raw.replace(b"\r\n", b"").count(b"\n") == 1
    with path.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert [r[0] for r in table[:len(header)]] == [f"# {k}: {v}" for k, v in header]
    assert table[0][0].startswith("# exercise: EXERCISE")
    assert table[len(header)] == list(EXPORT_COLUMNS)
    data = [dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in table[len(header) + 1:]]
    # the extreme hazard's mission first
    assert [d["target_id"] for d in data] == ["M-002", "H-3", "M-001", "H-1", "H-OLD"]
    _, new, mission, household, gone = data
    assert mission["phone"] == "'" + PHONE and mission["contact"] == "Duty contact"
    assert household["note"] == "'" + PAYLOAD + "\nneeds water"  # kept whole, as text
    assert household["status"] == "Reached: needs assistance" and household["people"] == "2"
    assert household["updated_at_utc"] == "2026-07-04 16:30:00 UTC"
    assert household["updated_at_eastern"] == "2026-07-04 12:30:00 EDT"
    assert mission["status"] == "Not contacted" and mission["people"] == ""
    assert new["new"] == "yes" and household["new"] == ""
    assert gone["order"] == "" and gone["status"] == "Attempted"
    assert [d["order"] for d in data] == ["1", "2", "3", "4", ""]
    assert all(not c.startswith(("=", "+", "-", "@")) for r in table for c in r)


@pytest.mark.parametrize("split", ["office", "country", "mission"])
def test_xlsx_reads_back_as_text(tmp_path, rows, split) -> None:
    summary = board_header("Board", HAZARDS, rows, generated_at=WHEN)
    path = board_xlsx(rows, tmp_path / "b.xlsx", summary, split_by=split)
    book = openpyxl.load_workbook(path)
    expected = {"office": ["NYC New York", "WAS Washington DC"],
                "country": ["Italy", "Chile"],
                "mission": ["M-002 Ambasciata della Repubbli", "M-001 Embassy <script>alert(1)<"]}
    assert book.sheetnames[0] == "Summary"
    assert book.sheetnames[1:3] == expected[split]
    assert book.sheetnames[3].startswith("No longer affected")
    values = [[c.value for c in r] for r in book["Summary"].iter_rows()]
    assert ["missions_reached", "0 of 2"] in [v[:2] for v in values]
    assert ["all", 2, 0, 3, 1, 1, 4, 1] in values
    assert all(c.data_type != "f" for ws in book for r in ws.iter_rows() for c in r)
    sheets = book.worksheets[1:]
    seen = []
    for ws in sheets:
        header = [c.value for c in ws[1]]
        assert header == list(EXPORT_COLUMNS) and ws.freeze_panes == "A2"
        seen += [dict(zip(header, list(r), strict=True)) for r in ws.iter_rows(min_row=2)]
    by_id = {r["target_id"].value: r for r in seen}
    assert set(by_id) == {"M-001", "H-1", "M-002", "H-3", "H-OLD"}
    note = by_id["H-1"]["note"]
    assert (note.value, note.data_type, note.quotePrefix) == (PAYLOAD + "\nneeds water", "s",
                                                              True)
    phone = by_id["M-001"]["phone"]
    assert (phone.value, phone.data_type, phone.quotePrefix) == (PHONE, "s", True)
    assert by_id["H-1"]["order"].value == 4 and by_id["H-OLD"]["order"].value is None
    assert by_id["H-1"]["people"].value == 2


def test_bad_arguments_are_named(tmp_path, rows) -> None:
    with pytest.raises(ValueError, match="split_by"):
        board_xlsx(rows, tmp_path / "x.xlsx", [], split_by="person")
    with pytest.raises(ValueError, match="group_by"):
        call_sheet_html("b", HAZARDS, rows, {}, {}, generated_at=WHEN, group_by="x")
    with pytest.raises(ValueError, match="generated_at"):
        call_sheet_html("b", HAZARDS, rows, {}, {},
                        generated_at=dt.datetime(2026, 7, 4))  # noqa: DTZ001
    with pytest.raises(ValueError, match="rows is missing"):
        board_frame(rows.drop(columns="status"))


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag) -> None:
        self._in_style = False

    def handle_data(self, data) -> None:
        if self._in_style:
            self.styles.append(data)


def _sheet(rows, **options) -> str:
    missions, _ = _roster()
    return call_sheet_html(f"Board {SCRIPT}", HAZARDS, rows, progress(rows),
                           liaisons(missions, ["Chile", "Italy"]), generated_at=WHEN,
                           **options)


def test_call_sheet_is_escaped_self_contained_and_prints_in_groups(rows) -> None:
    page = _sheet(rows, group_by="country")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;http://evil.example/x&quot;" in page  # the note, as text
    parsed = _Tags()
    parsed.feed(page)
    for tag, attrs in parsed.tags:  # nothing is fetched, linked or run
        assert tag not in ("script", "link", "img", "iframe", "object", "embed", "a", "form")
        assert not {"src", "href", "style", "srcset", "action"} & set(attrs), tag
        assert not any(a.startswith("on") for a in attrs), tag
    assert not re.search(r"url\(|@import|//[a-z]", CALL_SHEET_STYLE, re.I)
    # the one style block is the one the policy allows, by hash
    assert parsed.styles == [CALL_SHEET_STYLE]
    digest = base64.b64encode(hashlib.sha256(CALL_SHEET_STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CALL_SHEET_CSP
    assert "default-src 'none'" in CALL_SHEET_CSP
    meta = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert meta == [{"http-equiv": "Content-Security-Policy", "content": CALL_SHEET_CSP}]
    # print layout: header repeated per page, a page break between groups
    assert "thead { display: table-header-group; }" in CALL_SHEET_STYLE
    assert "section.group + section.group { break-before: page; page-break-before: always; }" \
        in CALL_SHEET_STYLE
    assert "@page" in CALL_SHEET_STYLE
    sections = [t for t, a in parsed.tags if t == "section" and a.get("class") == "group"]
    assert len(sections) == 3  # Italy, Chile, no longer affected
    assert "Chile — liaison: Embassy &lt;script&gt;" in page
    assert GONE_GROUP in page
    # what was known when printed, the time in UTC and Eastern, an outcome per row
    assert "Reached: needs assistance" in page and "2026-07-04 12:30 EDT by user:c" in page
    assert "2026-07-04 16:30 UTC (2026-07-04 12:30 EDT US Eastern)" in page
    assert page.count('class="box"') == len(OUTCOMES) * len(rows)
    assert page.count("Notes / time:") == len(rows)
    assert "Missions reached 0 of 2 · Households reached 1 of 3" in page
    assert "EXERCISE" not in page


def test_call_sheet_of_an_exercise_is_watermarked(rows) -> None:
    page = _sheet(rows, exercise=True, group_by="office")
    assert '<div class="watermark" aria-hidden="true">EXERCISE</div>' in page
    assert page.count("EXERCISE · ") >= 3  # title and every group's repeated header
    assert ".watermark { position: fixed;" in CALL_SHEET_STYLE  # on every printed page
    empty = call_sheet_html("b", HAZARDS, rows.iloc[:0], progress(rows.iloc[:0]), {},
                            generated_at=WHEN)
    assert "No one on this board yet." in empty


def _cards(text: str) -> list[dict[str, list[str]]]:
    cards, current = [], {}
    for line in unfold(text).split("\r\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        if name == "BEGIN":
            current = {}
        elif name == "END":
            cards.append(current)
        else:
            current.setdefault(name, []).append(value)
    return cards


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def test_duty_vcards_escape_fold_and_parse_back(rows) -> None:
    missions, _ = _roster()
    text = duty_vcards(rows, missions, exercise=True)
    raw = text.encode("utf-8")
    assert b"\n" not in raw.replace(b"\r\n", b"") and raw.endswith(b"\r\n")
    physical = raw.split(b"\r\n")
    assert max(len(line) for line in physical) <= 75
    for line in physical:
        line.decode("utf-8")  # no line ends inside a character
    assert any(line.startswith(b" ") for line in physical)  # the long name was folded
    cards = _cards(text)
    assert len(cards) == 2
    italy, chile = cards  # calling order
    assert chile["VERSION"] == ["3.0"]
    assert chile["FN"] == [vcard_escape(f"Embassy {SCRIPT}")]
    assert _unescape(italy["FN"][0]) == LONG_NAME
    assert "\\;" in italy["FN"][0] and "\\," in italy["FN"][0] and "\\\\" in italy["FN"][0]
    assert italy["N"][0].endswith(";;;;") and italy["ORG"] == italy["FN"]
    assert chile["TEL;TYPE=WORK,VOICE"] == [PHONE]
    assert chile["EMAIL;TYPE=INTERNET"] == ["duty@chile.example.org"]
    assert "EMAIL;TYPE=INTERNET" not in italy
    assert chile["ADR;TYPE=WORK"] == [
        ";;2210 Massachusetts Ave NW\\, Suite 3\\; Rear;Washington;DC;20008;"]
    note = _unescape(chile["NOTE"][0])
    assert note.startswith("EXERCISE") and "Sending country: Chile" in note
    assert "OFM office: WAS Washington DC" in note
    assert chile["CATEGORIES"] == ["Mission Watch,EXERCISE"]
    assert chile["UID"] == ["missionwatch-mission-M-001"]
    live = _cards(duty_vcards(rows, missions))
    assert live[1]["CATEGORIES"] == ["Mission Watch"] and "EXERCISE" not in live[1]["NOTE"][0]


def test_vcard_escaping() -> None:
    assert vcard_escape("a,b;c\\d\r\ne\nf\rg") == "a\\,b\\;c\\\\d\\ne\\nf\\ng"
    assert vcard_escape(None) == "" and vcard_escape("x\x00y") == "xy"


@given(st.text(max_size=400))
def test_folding_keeps_every_line_short_and_unfolds_exactly(text: str) -> None:
    line = "NOTE:" + vcard_escape(text)
    folded = fold_line(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert unfold(folded) == line
