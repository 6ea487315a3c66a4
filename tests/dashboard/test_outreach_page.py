"""The outreach board: targets against the roster, updates, conflicts, growth, live refresh."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import dash
import pandas as pd
import pytest
import shapely

from dashboard.app import create_app
from dashboard.services import Services, board_view
from feeds.model import Hazard
from layers.outreach import progress, targets_from_calls
from settings import Settings
from store.feeds import replace_hazards
from store.outreach import OutreachConflict, open_board, record_status
from store.roster import replace_roster

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SMALL = shapely.box(-77.2, 38.8, -76.9, 39.05)     # most of Washington DC
LARGE = shapely.box(-77.5, 38.6, -76.6, 39.3)      # the storm grows


def _flood(area) -> Hazard:
    return Hazard("nws:flood-dc", "nws", "Flash Flood Warning", "flood", severity="severe",
                  expires=NOW + timedelta(hours=6), geometry=area, geometry_method="polygon",
                  area_desc="District of Columbia", sent=NOW - timedelta(minutes=30))


@pytest.fixture
def app_and_services(store_engine, checked_small_roster, tmp_path):
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=NOW, synthetic=True)
    replace_hazards(store_engine, "nws", [_flood(SMALL)], now=NOW)
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    services = Services.from_engine(store_engine, settings)
    return create_app(settings, services), services


def _page():
    page = next(p for p in dash.page_registry.values()
                if p.get("path_template") == "/outreach/<board_id>")
    return sys.modules[page["module"]]


def _inside(frame: pd.DataFrame, area) -> pd.Series:
    return pd.Series([area.intersects(shapely.Point(x, y))
                      for x, y in zip(frame["lon"], frame["lat"], strict=True)],
                     index=frame.index)


def test_board_lists_every_affected_mission_and_household(app_and_services,
                                                          checked_small_roster) -> None:
    _, services = app_and_services
    missions, people = checked_small_roster
    board, _ = open_board(services.engine, ["nws:flood-dc"], name="Flood", actor="test",
                          now=NOW)
    data = board_view(services, board.board_id, NOW)
    residents = people[_inside(people, SMALL)]
    expected_missions = set(missions.loc[_inside(missions, SMALL), "mission_id"]) | set(
        residents["mission_id"])
    rows = data.rows
    assert set(rows.loc[rows["target_kind"] == "mission", "target_id"]) == expected_missions
    assert set(rows.loc[rows["target_kind"] == "household", "target_id"]) == set(
        residents["household_id"])
    households = rows[rows["target_kind"] == "household"].set_index("target_id")
    sizes = residents.groupby("household_id").size()
    assert (households["people"] == sizes.reindex(households.index)).all()
    assert data.progress["mission"]["total"] == len(expected_missions)
    assert (rows["status"] == "not_contacted").all() and not rows["new"].any()
    # grouped by country, each row names who liaises for it: the country's embassy
    page = _page()
    grouped = page.table_rows(data, view="all", group="country")
    assert (grouped["group"] == grouped["country_name"]).all()
    embassies = missions[missions["mission_type"] == "embassy"].sort_values(
        "mission_id").drop_duplicates("country_name").set_index("country_name")
    for country, liaison in zip(grouped["country_name"], grouped["liaison"], strict=True):
        if country in embassies.index:
            assert liaison.startswith(embassies.loc[country, "name"])


def test_save_refresh_and_conflict_between_two_coordinators(app_and_services) -> None:
    app, services = app_and_services
    page = _page()
    board, _ = open_board(services.engine, ["nws:flood-dc"], name="Flood", actor="test",
                          now=NOW)
    data = board_view(services, board.board_id, NOW)
    first = page.table_rows(data, view="all", group="office").iloc[0]
    row_id = f"{first['target_kind']}:{first['target_id']}"
    shown = page._records(page.table_rows(data, view="all", group="office").head(5))
    # both screens show the row with no update yet (event 0); Ana saves first
    with app.server.test_request_context():
        message = page.save(1, [row_id], shown, "reached_safe", "all fine", board.board_id)
        assert message.startswith("Saved")
        # Bo's screen still shows event 0: his save is refused and tells him of Ana's update
        message = page.save(1, [row_id], shown, "unreachable", "", board.board_id)
        assert message.startswith("Not saved") and "reached_safe" in message
        assert page.save(1, [], shown, "unreachable", "", board.board_id).startswith("Tick")
        assert page.save(1, [row_id], shown, None, "", board.board_id).startswith("Choose")
    after = board_view(services, board.board_id, NOW)
    assert after.progress[first["target_kind"]]["reached"] == 1
    target = after.rows.set_index(["target_kind", "target_id"]).loc[
        (first["target_kind"], first["target_id"])]
    assert target["status"] == "reached_safe" and target["note"] == "all fine"
    # someone else's update changes the board's version: every screen's next tick redraws
    version = repr(after.version)
    record_status(services.engine, board.board_id, first["target_kind"], first["target_id"],
                  "reached_needs_assistance", note="needs water", actor="api",
                  now=NOW + timedelta(minutes=1))
    assert repr(board_view(services, board.board_id, NOW).version) != version
    view = page.table_rows(board_view(services, board.board_id, NOW), view="needs_assistance",
                           group="office")
    assert list(view["target_id"]) == [first["target_id"]]


def test_people_newly_affected_appear_flagged_new(app_and_services,
                                                  checked_small_roster) -> None:
    _, services = app_and_services
    _, people = checked_small_roster
    board, _ = open_board(services.engine, ["nws:flood-dc"], name="Flood", actor="test",
                          now=NOW - timedelta(minutes=5))
    before = board_view(services, board.board_id, NOW)
    # whoever was affected when the board was first looked at is not "new"
    assert not before.rows["new"].any()
    # someone was reached before the storm grew: they stay reached and not "new"
    reached = before.rows.iloc[0]
    record_status(services.engine, board.board_id, reached["target_kind"],
                  reached["target_id"], "reached_safe", actor="test", now=NOW)
    replace_hazards(services.engine, "nws", [_flood(LARGE)], now=NOW + timedelta(minutes=10))
    after = board_view(services, board.board_id, NOW + timedelta(minutes=10))
    grown = set(people.loc[_inside(people, LARGE), "household_id"]) - set(
        people.loc[_inside(people, SMALL), "household_id"])
    assert grown, "the test storm must grow over more households"
    new = after.rows[after.rows["new"]]
    assert set(new.loc[new["target_kind"] == "household", "target_id"]) >= grown
    assert not after.rows.set_index("target_id").loc[reached["target_id"], "new"]
    assert progress(after.rows)["household"]["new"] >= len(grown)


def test_targets_from_an_empty_call_list() -> None:
    assert targets_from_calls(pd.DataFrame(columns=[
        "order", "contact_kind", "mission_id", "household_id", "person_id", "immunity"])).empty
    with pytest.raises(ValueError, match="missing"):
        targets_from_calls(pd.DataFrame({"order": [1]}))


def test_store_conflict_is_raised_for_stale_writers(app_and_services) -> None:
    _, services = app_and_services
    board, _ = open_board(services.engine, ["nws:flood-dc"], name="Flood", actor="test",
                          now=NOW)
    record_status(services.engine, board.board_id, "mission", "M-1", "attempted", actor="a",
                  now=NOW, expected_event_id=0)
    with pytest.raises(OutreachConflict):
        record_status(services.engine, board.board_id, "mission", "M-1", "attempted",
                      actor="b", now=NOW, expected_event_id=0)


def test_people_no_longer_affected_stay_on_the_board_by_name(app_and_services,
                                                              checked_small_roster) -> None:
    _, services = app_and_services
    _, people = checked_small_roster
    replace_hazards(services.engine, "nws", [_flood(LARGE)], now=NOW)
    board, _ = open_board(services.engine, ["nws:flood-dc"], name="Flood", actor="test",
                          now=NOW)
    rows = board_view(services, board.board_id, NOW).rows
    outside = set(people.loc[~_inside(people, SMALL), "household_id"])
    leaving = rows[(rows["target_kind"] == "household") & rows["target_id"].isin(outside)]
    assert len(leaving), "the test storm must shrink away from some households"
    target = leaving.iloc[0]
    record_status(services.engine, board.board_id, "household", target["target_id"],
                  "reached_needs_assistance", note="evacuated", actor="test", now=NOW)
    replace_hazards(services.engine, "nws", [_flood(SMALL)], now=NOW + timedelta(minutes=5))
    after = board_view(services, board.board_id, NOW + timedelta(minutes=5)).rows
    kept = after.set_index("target_id").loc[target["target_id"]]
    assert kept["status"] == "reached_needs_assistance" and kept["order"] == float("inf")
    assert kept["contact"] == target["contact"] and kept["mission_name"] == \
        target["mission_name"]
    assert kept["phone"] == target["phone"]


def test_closing_a_board_keeps_its_history_and_stops_updates(app_and_services) -> None:
    app, services = app_and_services
    page = _page()
    board, _ = open_board(services.engine, ["nws:flood-dc"], name="Flood", actor="test",
                          now=NOW)
    record_status(services.engine, board.board_id, "mission", "M-1", "attempted", actor="a",
                  now=NOW)
    with app.server.test_request_context():
        assert page.close(1, board.board_id).startswith("Closed")
        data = board_view(services, board.board_id, NOW)
        assert data.board.closed_at is not None
        shown = page._records(page.table_rows(data, view="all", group="office").head(1))
        message = page.save(1, [shown[0]["id"]], shown, "attempted", "", board.board_id)
        assert message.startswith("Not saved") and "closed" in message
    assert len(data.rows[data.rows["updates"] > 0]) == 1  # the history is still there
    reopened, created = open_board(services.engine, ["nws:flood-dc"], name="Flood 2",
                                   actor="test", now=NOW)
    assert created and reopened.board_id != board.board_id
