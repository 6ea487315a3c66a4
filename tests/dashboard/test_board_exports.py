"""Outreach board exports through the app: CSV, XLSX, the call sheet and duty vCards, fetched
as a signed-in coordinator on each store backend, read back and compared with the roster."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import re

import openpyxl
import pandas as pd
import pytest

from dashboard import downloads
from dashboard.app import create_app
from dashboard.services import Services, board_view
from layers.outreach_export import EXPORT_COLUMNS, unfold
from settings import Settings
from store.audit import query_audit
from store.feeds import replace_hazards
from store.outreach import open_board, record_status
from store.roster import replace_roster
from store.users import create_user
from tests.dashboard.test_access import PASSWORD, sign_in
from tests.dashboard.test_incidents import NOW, _hazards, _inside_box, _inside_circle

PAYLOAD = '=HYPERLINK("http://evil.example/x","<script>alert(1)</script>")'


@pytest.fixture
def board_app(store_engine, checked_small_roster, tmp_path, fast_hashing):
    """An app over a roster and hazards, a coordinator and a display user, a live board over
    the flood and the surge (one household reached, with a hostile note) and an exercise
    board over the flood."""
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=NOW, synthetic=True)
    replace_hazards(store_engine, "nws", _hazards(), now=NOW)
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    services = Services.from_engine(store_engine, settings)
    create_user(store_engine, "coord", "coordinator", PASSWORD, actor="test", now=NOW)
    create_user(store_engine, "wall", "display", PASSWORD, actor="test", now=NOW)
    app = create_app(settings, services)
    live, _ = open_board(store_engine, ["nws:flood-dc", "nws:surge-miami"],
                         name="Flood & surge <b>", actor="user:coord", now=NOW)
    drill, _ = open_board(store_engine, ["nws:flood-dc"], name="Drill", actor="user:coord",
                          now=NOW, exercise=True)
    rows = board_view(services, live.board_id, NOW).rows
    household = rows[rows["target_kind"] == "household"].iloc[0]
    record_status(store_engine, live.board_id, "household", household["target_id"],
                  "reached_needs_assistance", note=PAYLOAD, actor="user:coord", now=NOW)
    board_view(services, drill.board_id, NOW)
    return app, services, live.board_id, drill.board_id, household["target_id"]


def _affected(missions: pd.DataFrame, people: pd.DataFrame) -> tuple[set[str], set[str]]:
    """(mission ids, household ids) the flood and the surge affect: a plain shapely loop."""
    inside = _inside_box(people) | _inside_circle(people)
    premises = _inside_box(missions) | _inside_circle(missions)
    hit = people[inside]
    return (set(missions.loc[premises, "mission_id"]) | set(hit["mission_id"]),
            set(hit["household_id"]))


def _csv(body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    header, table = {}, []
    for row in reader:
        if row and row[0].startswith("# ") and not table:
            key, _, value = row[0][2:].partition(": ")
            header[key] = value
        else:
            table.append(row)
    return header, [dict(zip(table[0], r, strict=True)) for r in table[1:]]


def _audited(services, body: bytes, fmt: str) -> dict:
    events = [e for e in query_audit(services.engine, action="outreach.export")
              if e.detail["format"] == fmt]
    assert events, fmt
    detail = events[0].detail
    assert detail["sha256"] == hashlib.sha256(body).hexdigest()  # the very bytes sent
    assert events[0].actor == "user:coord"
    return detail


def test_csv_and_xlsx_hold_the_board(board_app, checked_small_roster) -> None:
    app, services, live, _, reached = board_app
    missions, households = _affected(*checked_small_roster)
    client, response = sign_in(app, "coord")
    assert response.status_code == 302
    answer = client.get(downloads.board_export_url(live, "csv"))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/csv"
    assert re.fullmatch(rf'attachment; filename="missionwatch-board-{live}-\d{{8}}T\d{{6}}Z\.csv"',
                        answer.headers["Content-Disposition"])
    assert answer.data.startswith(b"\xef\xbb\xbf")
    header, rows = _csv(answer.data)
    assert header["board"] == "Flood & surge <b>" and header["exported_by"] == "user:coord"
    assert "nws:flood-dc (Flash Flood Warning, severe)" in header["hazards"]
    assert header["households_reached"] == f"1 of {len(households)}"
    assert header["missions_reached"] == f"0 of {len(missions)}"
    assert "exercise" not in header
    assert list(rows[0]) == list(EXPORT_COLUMNS) and header["rows"] == str(len(rows))
    assert {r["target_id"] for r in rows if r["target_kind"] == "mission"} == missions
    assert {r["target_id"] for r in rows if r["target_kind"] == "household"} == households
    row = next(r for r in rows if r["target_id"] == reached)
    assert row["note"] == "'" + PAYLOAD and row["status"] == "Reached: needs assistance"
    assert all(r["phone"].startswith("'+") for r in rows if r["phone"])
    detail = _audited(services, answer.data, "csv")
    assert detail["board_id"] == live and detail["rows"] == len(rows)
    assert detail["file"] in answer.headers["Content-Disposition"]

    answer = client.get(downloads.board_export_url(live, "xlsx", split="country"))
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.data))
    assert book.sheetnames[0] == "Summary"
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["board"] == "Flood & surge <b>"
    seen = set()
    for ws in book.worksheets[1:]:
        values = list(ws.iter_rows(values_only=True))
        column = values[0].index("target_id")
        seen |= {r[column] for r in values[1:]}
        assert all(c.data_type != "f" for r in ws.iter_rows() for c in r)
    assert seen == missions | households
    countries = {str(c) for c in checked_small_roster[0].set_index("mission_id").loc[
        sorted(missions), "country_name"]}
    assert len(book.sheetnames) - 1 == len(countries)
    assert _audited(services, answer.data, "xlsx")["split"] == "country"


def test_call_sheet_is_inline_strict_and_escaped(board_app) -> None:
    app, services, live, drill, _ = board_app
    client, _ = sign_in(app, "coord")
    answer = client.get(downloads.board_export_url(live, "html", group="country"))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Content-Disposition"].startswith('inline; filename="')
    policy = answer.headers["Content-Security-Policy"]
    assert policy == downloads.CALL_SHEET_POLICY
    assert policy.startswith("default-src 'none'; style-src 'sha256-")
    assert "unsafe-inline" not in policy and "script-src" not in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    page = answer.get_data(as_text=True)
    assert "<script" not in page.lower() and "Flood &amp; surge &lt;b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"\s(src|href)=", page)
    assert "— liaison: " in page and "EXERCISE" not in page
    assert _audited(services, answer.data, "html")["group"] == "country"

    drill_page = client.get(downloads.board_export_url(drill, "html")).get_data(as_text=True)
    assert '<div class="watermark" aria-hidden="true">EXERCISE</div>' in drill_page


def test_duty_vcards_one_per_mission(board_app, checked_small_roster) -> None:
    app, services, live, drill, _ = board_app
    missions, _ = _affected(*checked_small_roster)
    roster = checked_small_roster[0].set_index("mission_id")
    client, _ = sign_in(app, "coord")
    answer = client.get(downloads.board_export_url(live, "vcf"))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/vcard; charset=utf-8"
    assert answer.headers["Content-Disposition"].endswith('.vcf"')
    text = answer.get_data(as_text=True)
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    cards = unfold(text).split("BEGIN:VCARD\r\n")[1:]
    assert len(cards) == len(missions)
    uids = {re.search(r"^UID:missionwatch-mission-([^\r\n]+)", c, re.M).group(1) for c in cards}
    assert uids == missions
    some = sorted(missions)[0]
    card = next(c for c in cards if c.endswith(f"UID:missionwatch-mission-{some}\r\nEND:VCARD\r\n"))
    assert f"TEL;TYPE=WORK,VOICE:{roster.loc[some, 'duty_phone']}\r\n" in card
    assert "ADR;TYPE=WORK:;;" in card and "CATEGORIES:Mission Watch\r\n" in card
    assert _audited(services, answer.data, "vcf")["rows"] == len(missions)

    drill_cards = client.get(downloads.board_export_url(drill, "vcf")).get_data(as_text=True)
    assert "NOTE:EXERCISE - drill data\\, not a real event\\n" in unfold(drill_cards)


def test_exercise_boards_say_so_in_every_file(board_app) -> None:
    app, services, _, drill, _ = board_app
    client, _ = sign_in(app, "coord")
    answer = client.get(downloads.board_export_url(drill, "csv"))
    header, _ = _csv(answer.data)
    assert header["exercise"].startswith("EXERCISE")
    assert "missionwatch-EXERCISE-board-" in answer.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(
        client.get(downloads.board_export_url(drill, "xlsx")).data))
    assert next(book["Summary"].iter_rows(min_row=2, values_only=True))[0] == "exercise"
    assert all(e.detail["exercise"] for e in query_audit(services.engine,
                                                         action="outreach.export"))


def test_refusals_and_unknown_boards(board_app) -> None:
    app, services, live, _, _ = board_app
    wall, _ = sign_in(app, "wall")
    for fmt in downloads.BOARD_EXPORT_RULES:
        assert wall.get(downloads.board_export_url(live, fmt)).status_code == 403
    assert app.server.test_client().get(
        downloads.board_export_url(live, "csv")).status_code == 401
    client, _ = sign_in(app, "coord")
    missing = client.get(downloads.board_export_url(999, "csv"))
    assert missing.status_code == 404 and "no outreach board 999" in missing.get_data(True)
    assert client.get(downloads.board_export_url(999, "html")).status_code == 404
    assert client.get(f"/exports/board/{live}.xlsx?split=person").status_code == 400
    assert client.get(f"/exports/board/{live}/callsheet.html?group=x").status_code == 400
    assert query_audit(services.engine, action="outreach.export") == []


def test_a_full_disk_sends_nothing_and_audits_nothing(board_app, monkeypatch,
                                                      tmp_path) -> None:
    app, services, live, _, _ = board_app

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(downloads, "board_csv", full)
    client, _ = sign_in(app, "coord")
    answer = client.get(downloads.board_export_url(live, "csv"))
    assert answer.status_code == 507 and "disk is full" in answer.get_data(as_text=True)
    assert query_audit(services.engine, action="outreach.export") == []
    assert not list((tmp_path / "exports").glob(".export-*"))


def test_export_urls() -> None:
    assert downloads.board_export_url(7, "csv") == "/exports/board/7.csv"
    assert downloads.board_export_url(7, "xlsx", split="mission") == \
        "/exports/board/7.xlsx?split=mission"
    assert downloads.board_export_url(7, "html", group="office") == \
        "/exports/board/7/callsheet.html?group=office"
    assert downloads.board_export_url(7, "vcf") == "/exports/board/7/duty.vcf"
    for bad in ({"fmt": "pdf"}, {"fmt": "csv", "split": "office"},
                {"fmt": "xlsx", "split": "person"}, {"fmt": "html", "group": "x"}):
        with pytest.raises(ValueError):
            downloads.board_export_url(7, **bad)
    with pytest.raises(ValueError, match="board_id"):
        downloads.board_export_url(0, "csv")
