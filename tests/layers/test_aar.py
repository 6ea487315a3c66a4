"""The after-action report of a drill on a hand-made drill: four injects, a pause, a speed
change, a stop before the last inject, three missions, four households and a board whose
statuses go up and down. Every number below is worked out by hand from that story."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import html
import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from layers import aar
from layers.affected import LocationCodes, PairCodes
from layers.outreach_export import CALL_SHEET_CSP, CALL_SHEET_STYLE
from layers.printable import document, style_policy
from layers.scenarios import parse_scenario
from store.drills import Drill, DrillEvent
from store.outreach import Board

T0 = dt.datetime(2026, 11, 28, 14, 0, tzinfo=dt.timezone.utc)
DRILL_ID = 7
PAYLOAD = '=HYPERLINK("http://evil.example/x","click")'
PHONE = "+1 202-555-0142"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _box(west: float, east: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, 38.85], [east, 38.85], [east, 38.95],
                                                [west, 38.95], [west, 38.85]]]}


def _feature(inject_id: str, minute: int, box: dict, **extra) -> dict:
    return {"type": "Feature", "geometry": box,
            "properties": {"inject_id": inject_id, "at_minutes": minute,
                           "event": f"Event {inject_id}", "category": "flood",
                           "severity": "severe", "area_desc": f"Area {inject_id}", **extra}}


# a: box A from minute 0; b: box B from 30 for 60 minutes; c replaces a at 90 over box B;
# d: box A at 120, after the stop.
SCENARIO = parse_scenario({
    "type": "FeatureCollection",
    "scenario": {"name": "hand-made", "title": "Hand-made drill", "description": "test",
                 "jurisdictions": ["DC"], "duration_minutes": 180, "author": "test",
                 "sources": "none"},
    "features": [
        _feature("a", 0, _box(-77.10, -77.00)),
        _feature("b", 30, _box(-77.00, -76.90), expires_minutes=60),
        _feature("c", 90, _box(-77.00, -76.90), message_type="update", supersedes=["a"]),
        _feature("d", 120, _box(-77.10, -77.00)),
    ],
})
HAZARD_IDS = [f"drill:{DRILL_ID}:{x}" for x in "abcd"]

# Speed 60: a scenario minute every wall second. Paused from minute 40 (T0+40 s) to T0+340 s,
# 120x from T0+395 s (minute 95), stopped at T0+400 s (minute 105): d (minute 120) never fires.
DRILL = Drill(
    drill_id=DRILL_ID, name="Hand-made drill", scenario_name="hand-made", kind="scenario",
    state="stopped", speed=120.0, started_at=T0, started_by="alice", stopped_at=at(400),
    stopped_by="bob", initial_speed=60.0, pauses=((at(40), at(340)),),
    speed_changes=((at(395), 120.0),))
CLOCK = [
    DrillEvent(1, DRILL_ID, T0, "start", {"speed": 60.0, "elapsed_minutes": 0.0}, "alice",
               None),
    DrillEvent(2, DRILL_ID, at(0), "inject", {"inject_id": "a"}, "system:drill-clock", "a"),
    DrillEvent(3, DRILL_ID, at(40), "pause", {"elapsed_minutes": 40.0}, "alice", None),
    DrillEvent(4, DRILL_ID, at(340), "resume", {"elapsed_minutes": 40.0}, "alice", None),
    DrillEvent(5, DRILL_ID, at(395), "speed", {"elapsed_minutes": 95.0, "speed": 120.0,
                                               "previous_speed": 60.0}, "alice", None),
    DrillEvent(6, DRILL_ID, at(400), "stop", {"elapsed_minutes": 105.0}, "bob", None),
]
NOW = at(900)

# Missions M1 (premises in A), M2 (in B), M3 (outside); people: household H1 of M1 (two, in
# A), H3 of M3 (in B), H4 of M2 (outside every hazard).
MISSIONS = pd.DataFrame({
    "mission_id": ["M1", "M2", "M3"], "name": ["Embassy One", PAYLOAD, "Embassy Three"],
    "mission_type": "embassy", "country_name": ["Chile", "Peru", "Ghana"],
    "ofm_office": "WAS", "duty_phone": [PHONE, "+1 202-555-0002", "+1 202-555-0003"],
    "email": "", "language": "en",
})
PEOPLE = pd.DataFrame({
    "person_id": ["P1", "P2", "P3", "P4"], "mission_id": ["M1", "M1", "M3", "M2"],
    "household_id": ["H1", "H1", "H3", "H4"],
    "role": ["diplomatic_agent", "dependent", "consular_officer", "service_staff"],
    "immunity": ["full", "none", "official_acts", "none"],
    "name": ["Ana One", "Bo One", "Cy Three", "Di Four"],
    "phone": ["+1 202-555-0101", "", "+1 202-555-0303", "+1 202-555-0404"],
    "email": "", "language": "en",
})
LOCATIONS = pd.DataFrame({
    "location_id": ["m:M1", "m:M2", "m:M3", "p:P1", "p:P2", "p:P3", "p:P4"],
    "kind": ["mission"] * 3 + ["person"] * 4,
    "mission_id": ["M1", "M2", "M3", "M1", "M1", "M3", "M2"],
    "country_code": "XX", "ofm_office": "WAS", "jurisdiction": "DC",
    "immunity": ["", "", "", "full", "none", "official_acts", "none"],
    "household_id": [None, None, None, "H1", "H1", "H3", "H4"],
})
CODES = LocationCodes.of(LOCATIONS)
# a and d cover M1's premises and household H1; b and c cover M2's premises and P3 (H3)
PAIRS = PairCodes(np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3]),
                  np.array([0, 3, 4, 1, 5, 1, 5, 0, 3, 4]))
BOARD = Board(board_id=5, name="EXERCISE: a and b", hazard_ids=tuple(HAZARD_IDS[:2]),
              created_at=at(45), created_by="carol", exercise=True, closed_at=None)


def _events(rows: list[tuple[int, float, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"board_id": BOARD.board_id, "event_id": n, "target_kind": k,
                          "target_id": t, "status": s, "at": at(sec)}
                         for n, sec, k, t, s in rows])


EVENTS = _events([
    (1, 50, "mission", "M1", "attempted"),
    (2, 60, "household", "H1", "reached_safe"),
    (3, 120, "mission", "M1", "reached_safe"),
    (4, 120, "mission", "M2", "reached_needs_assistance"),
    (5, 200, "mission", "M1", "attempted"),          # M1 is no longer reached
    (6, 250, "household", "H3", "not_contacted"),    # not a contact
    (7, 300, "household", "H4", "unreachable"),      # not under the board's hazards
    (8, 310, "household", "H1", "reached_safe"),     # no change
])


def _report(events: pd.DataFrame | None = EVENTS, boards=(BOARD,)) -> aar.AfterAction:
    return aar.after_action(DRILL, SCENARIO, now=NOW, clock_events=CLOCK,
                            hazard_ids=HAZARD_IDS, pairs=PAIRS, codes=CODES,
                            locations=LOCATIONS, missions=MISSIONS, people=PEOPLE,
                            boards=list(boards), events=events)


def test_injects_fire_on_the_drill_clock_across_the_pause_and_the_speed_change() -> None:
    fired = aar.fire_times(DRILL, SCENARIO, NOW)
    assert list(fired["fired_at"][:3]) == [pd.Timestamp(at(0)), pd.Timestamp(at(30)),
                                           pd.Timestamp(at(390))]   # 50 s after the resume
    assert pd.isna(fired["fired_at"].iloc[3])                      # the drill stopped first
    # while it was paused, b had fired and c had not
    during = aar.fire_times(DRILL, SCENARIO, at(100))
    assert list(during["fired_at"].notna()) == [True, True, False, False]
    assert aar.paused_minutes(DRILL, NOW) == pytest.approx(5.0)
    assert aar.speed_history(DRILL) == ("60x from the start; 120x from 2026-11-28 14:06:35 UTC "
                                        "(T+01:35)")


def test_the_timeline_interleaves_injects_and_the_clock() -> None:
    line = aar.timeline(SCENARIO, aar.fire_times(DRILL, SCENARIO, NOW), CLOCK)
    assert list(zip(line["kind"], line["inject_id"], strict=True)) == [
        ("start", ""), ("inject", "a"), ("inject", "b"), ("pause", ""), ("resume", ""),
        ("inject", "c"), ("speed", ""), ("stop", ""), ("inject", "d")]
    assert pd.isna(line["at"].iloc[-1])
    assert line.loc[line["kind"] == "speed", "detail"].item() == "60x → 120x"
    assert line.loc[line["inject_id"] == "c", "detail"].item() == "replaces a"
    assert line.loc[line["inject_id"] == "b", "detail"].item() == "in force 60 min"
    assert line.loc[line["kind"] == "stop", "actor"].item() == "bob"


def test_counts_after_each_inject_are_the_union_in_force_then() -> None:
    report = _report()
    counts = report.counts.set_index("inject_id")
    # a: M1 and H1 (two people, one immune); a + b: M2's premises and P3 of M3 join;
    # c replaces a and b has expired: only box B
    expected = {"a": (1, 1, 2, 1, 1, 1), "b": (2, 3, 3, 2, 2, 2), "c": (1, 2, 1, 1, 1, 0)}
    for inject, (hazards, missions, people, immune, households, new) in expected.items():
        row = counts.loc[inject]
        assert (row["hazards_in_force"], row["missions"], row["people"], row["with_immunity"],
                row["households"], row["new_missions"]) == (hazards, missions, people, immune,
                                                             households, new), inject
    assert counts.loc["d", ["missions", "people"]].isna().all()
    assert report.summary["missions_affected"] == 3
    assert report.summary["peak_people"] == 3


def test_coverage_steps_follow_the_latest_status_of_each_target() -> None:
    steps = aar.coverage(EVENTS, start=T0)
    assert list(steps["at"]) == [pd.Timestamp(at(s)) for s in (0, 60, 120, 200)]
    assert list(steps["missions_reached"]) == [0, 0, 2, 1]
    assert list(steps["households_reached"]) == [0, 1, 1, 1]
    assert list(steps["minutes"]) == pytest.approx([0, 1, 2, 200 / 60])
    # events in any order give the same steps; no events, one row
    shuffled = EVENTS.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(aar.coverage(shuffled, start=T0), steps)
    assert len(aar.coverage(EVENTS.iloc[:0], start=T0)) == 1


def test_time_to_first_contact_per_affected_mission() -> None:
    contact = _report().first_contact.set_index("mission_id")
    assert list(contact.index) == ["M1", "M2", "M3"]
    assert contact.loc["M1", "minutes"] == pytest.approx(50 / 60)   # affected at a, T0
    assert contact.loc["M1", "first_contact_status"] == "attempted"
    assert contact.loc["M2", "minutes"] == pytest.approx(90 / 60)   # affected at b, T0+30 s
    assert contact.loc["M2", "contacted_via"] == "duty contact"
    assert contact.loc["M2", "first_inject"] == "b"
    assert np.isnan(contact.loc["M3", "minutes"])         # only a not_contacted on its household
    assert contact.loc["M3", "first_contact_status"] == ""
    assert contact["on_board"].all()
    # a household's update is its mission's first contact when it comes first
    early = _events([(1, 35, "household", "H3", "attempted")])
    via = _report(early).first_contact.set_index("mission_id")
    assert via.loc["M3", "minutes"] == pytest.approx(5 / 60)
    assert via.loc["M3", "contacted_via"] == "household"


def test_never_reached_lists_everyone_on_the_boards_whose_latest_status_is_not_reached(
) -> None:
    report = _report()
    missing = report.never_reached
    assert list(zip(missing["target_kind"], missing["target_id"], strict=True)) == [
        ("mission", "M1"), ("mission", "M3"), ("household", "H3"), ("household", "H4")]
    by_id = missing.set_index("target_id")
    assert by_id.loc["M1", "status"] == "attempted"
    assert by_id.loc["M3", "status"] == "not_contacted"
    assert pd.isna(by_id.loc["M3", "last_update_at"])
    assert by_id.loc["H3", ["contact", "phone", "mission"]].tolist() == [
        "Cy Three", "+1 202-555-0303", "Embassy Three"]
    assert by_id.loc["H4", "status"] == "unreachable"      # on the board by its status
    assert report.summary["missions_on_boards"] == 3
    assert report.summary["households_on_boards"] == 3      # H1, H3 and H4
    assert (report.summary["missions_reached"], report.summary["households_reached"]) == (1, 1)


def test_a_drill_without_outreach_still_reports() -> None:
    report = _report(events=None, boards=())
    assert report.never_reached.empty and len(report.coverage) == 1
    assert report.first_contact["minutes"].isna().all()
    assert not report.first_contact["on_board"].any()
    assert "no exercise board was opened" in aar.report_html(report)


def _csv_rows(path) -> tuple[list[str], list[dict[str, str]]]:
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = [next(csv.reader([line]))[0] for line in lines if line.startswith(("#", '"#'))]
    body = "\n".join(line for line in lines if not line.startswith(("#", '"#')))
    return header, list(csv.DictReader(io.StringIO(body)))


def test_csv_has_every_section_its_header_lines_and_neutralised_cells(tmp_path) -> None:
    report = _report()
    path = aar.report_csv(report, tmp_path / "report.csv",
                          extra_header=[("exported_by", "coordinator")])
    header, rows = _csv_rows(path)
    assert header[0] == "# exercise: EXERCISE - drill data, not a real event"
    keys = dict(line[2:].split(": ", 1) for line in header)
    assert keys["title"] == aar.TITLE
    assert keys["drill"] == "Hand-made drill (drill 7)"
    assert keys["stopped_utc"] == "2026-11-28 14:06:40 UTC"
    assert keys["stopped_eastern"] == "2026-11-28 09:06:40 EST"
    assert keys["injects_fired"] == "3 of 4"
    assert keys["households_reached"] == "1 of 3"
    assert keys["rows"] == str(len(rows)) == str(report.rows)
    assert keys["exported_by"] == "coordinator"
    assert "drill:7:a (Event a, severe)" in keys["injects"]
    sections = [r["section"] for r in rows]
    assert sections == sorted(sections, key=aar.SECTIONS.index)
    assert {s: sections.count(s) for s in aar.SECTIONS} == {
        "timeline": 9, "counts": 4, "coverage": 4, "first_contact": 3, "never_reached": 4}
    d = next(r for r in rows if r["section"] == "counts" and r["inject_id"] == "d")
    assert d["wall_time_utc"] == "did not fire" and d["missions"] == ""
    c = next(r for r in rows if r["section"] == "counts" and r["inject_id"] == "c")
    assert (c["scenario_time"], c["wall_time_utc"], c["missions"]) == (
        "T+01:30", "2026-11-28 14:06:30 UTC", "2")
    step = [r for r in rows if r["section"] == "coverage"][2]
    assert (step["missions_reached"], step["households_reached"], step["minutes_since_start"]
            ) == ("2", "1", "2.0")
    m2 = next(r for r in rows if r["section"] == "first_contact" and r["mission_id"] == "M2")
    assert m2["minutes_to_first_contact"] == "1.5"
    assert m2["mission"] == "'" + PAYLOAD          # a formula is never a formula in Excel
    never = [r for r in rows if r["section"] == "never_reached"]
    assert never[0]["phone"] == "'" + PHONE
    assert {r["status"] for r in never} == {"Attempted", "Not contacted", "Unreachable"}


def test_html_is_standalone_escaped_and_exercise_on_every_page() -> None:
    report = _report()
    text = aar.report_html(report)
    assert "<script" not in text.lower()
    assert not re.search(r"https?:", text.replace("http://evil.example/x", ""))  # no fetch
    assert " src=" not in text and " href=" not in text
    assert PAYLOAD not in text and "=HYPERLINK(&quot;http://evil.example/x" in text
    # the policy allows the one style block, by its hash, and nothing else
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = html.unescape(re.search(
        r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1))
    assert policy == aar.REPORT_CSP == style_policy(aar.REPORT_STYLE)
    assert f"'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert ' style="' not in text                      # an inline style attribute is refused
    # EXERCISE: a banner, a fixed watermark (printed on every page), every table's head
    assert aar.EXERCISE_TEXT in text and 'class="watermark"' in text
    assert text.count("<thead>") == 4 == text.count('class="table-title"')
    assert text.count(">EXERCISE · Hand-made drill") == 4
    assert "did not fire" in text and "never contacted" in text
    assert "Cy Three" in text and "+1 202-555-0303" in text
    svg = re.search(r"<svg.*?</svg>", text, re.S).group(0)
    assert ET.fromstring(svg).tag == "svg"


def test_coverage_chart_draws_each_step_where_it_happened() -> None:
    steps = aar.coverage(EVENTS, start=T0)
    svg = aar.coverage_svg(steps, start=T0, end=at(400), missions_total=3,
                           households_total=3, marks=[(at(30), "T+00:30 b")])
    root = ET.fromstring(svg)
    lines = list(root.iter("polyline"))
    assert len(lines) == 2
    left, right = aar._MARGIN["left"], aar.CHART_SIZE[0] - aar._MARGIN["right"]
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    xs = sorted({x for x, _ in points})
    expected = [left + (right - left) * s / 400 for s in (0, 60, 120, 200, 400)]
    assert xs == pytest.approx(expected, abs=0.1)
    top, plot_h = aar._MARGIN["top"], aar.CHART_SIZE[1] - aar._MARGIN["top"] - \
        aar._MARGIN["bottom"]
    levels = sorted({y for _, y in points})             # 2, 1 and 0 of the 3 missions
    assert levels == pytest.approx([top + plot_h * (1 - share) for share in (2 / 3, 1 / 3, 0)],
                                   abs=0.1)
    assert "Missions reached: 1 of 3 on the boards" in svg
    assert root.find(".//line/title").text == "T+00:30 b"
    assert "style=" not in svg


def test_shared_printable_helpers_give_the_call_sheet_its_own_policy() -> None:
    assert style_policy(CALL_SHEET_STYLE) == CALL_SHEET_CSP
    page = document("a <b>", "p { color: #000; }", ["<p>x</p>"])
    assert "<title>a &lt;b&gt;</title>" in page and page.startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="style"):
        style_policy(" ")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="now"):
        aar.fire_times(DRILL, SCENARIO, dt.datetime(2026, 11, 28))  # noqa: DTZ001
    with pytest.raises(ValueError, match="events is missing"):
        aar.coverage(EVENTS.drop(columns="status"), start=T0)
    with pytest.raises(ValueError, match="hazard_ids lacks"):
        aar.after_action(DRILL, SCENARIO, now=NOW, clock_events=CLOCK,
                         hazard_ids=HAZARD_IDS[:1], pairs=PairCodes.empty(), codes=CODES,
                         locations=LOCATIONS, missions=MISSIONS, people=PEOPLE, boards=[],
                         events=None)


def test_a_drill_that_affects_no_one_still_reports() -> None:
    report = aar.after_action(DRILL, SCENARIO, now=NOW, clock_events=CLOCK,
                              hazard_ids=HAZARD_IDS, pairs=PairCodes.empty(), codes=CODES,
                              locations=LOCATIONS, missions=MISSIONS, people=PEOPLE,
                              boards=[BOARD], events=None)
    assert report.first_contact.empty and report.never_reached.empty
    assert list(report.counts["missions"].dropna()) == [0, 0, 0]
    assert "affected no mission" in aar.report_html(report)
    frame = aar.report_frame(report)
    assert list(frame.columns) == list(aar.CSV_COLUMNS)


def test_a_running_drill_reports_what_has_fired_so_far() -> None:
    running = Drill(**{**DRILL.__dict__, "state": "paused", "stopped_at": None,
                       "stopped_by": None, "pauses": ((at(40), None),), "speed_changes": ()})
    report = aar.after_action(running, SCENARIO, now=at(100), clock_events=CLOCK[:3],
                              hazard_ids=HAZARD_IDS, pairs=PAIRS, codes=CODES,
                              locations=LOCATIONS, missions=MISSIONS, people=PEOPLE,
                              boards=[BOARD], events=EVENTS[EVENTS["at"] <= at(100)])
    assert list(report.counts["fired_at"].notna()) == [True, True, False, False]
    assert report.summary["paused_minutes"] == pytest.approx(1.0)
    frame = aar.report_frame(report)
    pending = frame[(frame["section"] == "counts") & (frame["inject_id"] == "c")]
    assert pending["wall_time_utc"].item() == "not fired yet"
    assert "not stopped" in aar.report_html(report)
    assert list(report.coverage["missions_reached"]) == [0, 0]    # M1 reached only at 120 s
    assert list(report.coverage["households_reached"]) == [0, 1]
