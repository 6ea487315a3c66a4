"""The wall display: its numbers, the announcement of new incidents, outreach totals, the
server-rendered maps (route, caching, privacy) and the page's callbacks."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dash
import pandas as pd
import plotly.utils
import pytest
import shapely

from dashboard import wall as wall_data
from dashboard.app import create_app
from dashboard.services import Services, overview
from feeds.model import Hazard
from feeds.sources import SOURCE_NAMES
from settings import Settings
from store.feeds import record_poll, replace_hazards
from store.outreach import open_board, record_status
from store.roster import replace_roster
from store.users import create_user, issue_token
from tests.dashboard.test_access import (
    PASSWORD,
    assert_no_personal_data,
    personal_values,
    sign_in,
)
from tests.dashboard.test_incidents import DC_BOX, _expected, _inside_box, _inside_circle

# The map route and the page work at the real time, so the hazards are dated from it.
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
LATER = NOW + timedelta(hours=6)
MIDTOWN = shapely.box(-74.0, 40.74, -73.95, 40.765)    # the UN missions of East Midtown
NEVADA = shapely.box(-116.9, 37.0, -116.6, 37.2)        # nobody lives here


def _hazards() -> list[Hazard]:
    return [
        Hazard("nws:flood-dc", "nws", "Flash Flood Warning", "flood", severity="severe",
               expires=LATER, geometry=DC_BOX, geometry_method="polygon",
               area_desc="District of Columbia", sent=NOW - timedelta(hours=1)),
        Hazard("nws:surge-miami", "nws", "Storm Surge Warning", "weather", severity="extreme",
               expires=LATER, center_lon=-80.19, center_lat=25.77, radius_km=40.0,
               area_desc="Miami-Dade"),
        Hazard("nws:small-craft", "nws", "Small Craft Advisory", "weather", severity="minor",
               expires=LATER, geometry=shapely.box(-77.1, 38.85, -77.0, 38.95),
               geometry_method="zone", area_desc="Tidal Potomac",
               properties={"ugc": ["ANZ535"], "same": ["073535"]}),
    ]


TORNADO = Hazard("nws:tornado-nyc", "nws", "Tornado Warning", "weather", severity="extreme",
                 expires=LATER, geometry=MIDTOWN, geometry_method="polygon",
                 area_desc="New York County")
DESERT = Hazard("nws:heat-desert", "nws", "Extreme Heat Warning", "weather", severity="extreme",
                expires=LATER, geometry=NEVADA, geometry_method="polygon", area_desc="Nye")


@pytest.fixture
def services(store_engine, checked_small_roster, tmp_path):
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=NOW, synthetic=True)
    replace_hazards(store_engine, "nws", _hazards(), now=NOW)
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    return Services.from_engine(store_engine, settings)


def _page_module(path: str):
    page = next(p for p in dash.page_registry.values() if p["path"] == path)
    return sys.modules[page["module"]]


def test_wall_numbers_are_the_incidents_union(services, checked_small_roster) -> None:
    missions, people = checked_small_roster
    wall = wall_data.snapshot(services, NOW)
    assert wall.overview.totals == overview(services, NOW).totals
    # an independent oracle: DC box or Miami circle (the marine advisory is not an incident)
    expected = _expected(missions, people,
                         lambda f: _inside_box(f) | _inside_circle(f))
    for name in ("missions", "people", "with_immunity"):
        assert wall.overview.totals[name] == expected[name], name
    assert expected["people"] > 0
    assert list(wall.incidents["key"]) == ["nws:flood-dc", "nws:surge-miami"] or \
        list(wall.incidents["key"]) == ["nws:surge-miami", "nws:flood-dc"]
    assert wall.overview.active == 3
    assert not wall.incidents["new"].any()   # the first poll's findings are never "new"
    assert wall.exercise == ()
    assert wall.outreach.boards == 0


def test_a_new_incident_affecting_missions_is_announced_first_for_a_while(services) -> None:
    first = wall_data.snapshot(services, NOW)
    arrived = NOW + timedelta(minutes=10)
    update = Hazard("nws:flood-dc-2", "nws", "Flash Flood Warning", "flood", severity="severe",
                    expires=LATER, geometry=DC_BOX, geometry_method="polygon",
                    area_desc="District of Columbia", supersedes=("nws:flood-dc",))
    replace_hazards(services.engine, "nws",
                    [update, *_hazards()[1:], TORNADO, DESERT], now=arrived)
    wall = wall_data.snapshot(services, arrived + timedelta(minutes=1))
    assert wall.maps_key != first.maps_key
    assert wall.incidents["key"].iloc[0] == "nws:tornado-nyc"
    new = set(wall.incidents.loc[wall.incidents["new"], "key"])
    # an update of a known alert is not new; a new one affecting nobody is not announced
    assert new == {"nws:tornado-nyc"}
    assert wall.closeups[0] == "nws:tornado-nyc"
    assert "nws:heat-desert" not in wall.closeups     # affects no mission: no close-up
    assert "nws:heat-desert" in set(wall.incidents["key"])
    # after the announcement window it takes its place by impact again
    settled = wall_data.snapshot(services, arrived + timedelta(
        minutes=services.settings.wall_announce_minutes, seconds=1))
    assert not settled.incidents["new"].any()
    ranked = settled.incidents.sort_values(["people", "missions"], ascending=False,
                                           kind="stable")
    assert list(settled.incidents["people"]) == list(ranked["people"])


def test_order_incidents_puts_newest_announcements_first() -> None:
    frame = pd.DataFrame({
        "key": ["big", "old-new", "newest", "recorded", "nobody"],
        "missions": [50, 3, 1, 9, 0],
        "first_seen": pd.to_datetime([None, NOW - timedelta(minutes=20),
                                      NOW - timedelta(minutes=2), NOW, NOW], utc=True),
        "recorded_at": pd.to_datetime([None, None, None, NOW - timedelta(days=9), None],
                                      utc=True),
    })
    ordered = wall_data.order_incidents(frame, NOW, timedelta(minutes=30))
    assert list(ordered["key"]) == ["newest", "old-new", "big", "recorded", "nobody"]
    assert list(ordered["new"]) == [True, True, False, False, False]
    none = wall_data.order_incidents(frame, NOW, timedelta(0))
    assert list(none["key"]) == list(frame["key"]) and not none["new"].any()


def test_outreach_totals_count_open_live_boards_and_drills_show_exercise(services) -> None:
    from dashboard.services import board_view

    live, _ = open_board(services.engine, ["nws:flood-dc"], name="DC flood", actor="t", now=NOW)
    view = board_view(services, live.board_id, NOW)
    target = view.rows[view.rows["target_kind"] == "mission"].iloc[0]
    record_status(services.engine, live.board_id, "mission", target["target_id"],
                  "reached_needs_assistance", actor="t", now=NOW)
    drill, _ = open_board(services.engine, ["nws:surge-miami"], name="Hurricane drill",
                          actor="t", now=NOW, exercise=True)
    board_view(services, drill.board_id, NOW)
    wall = wall_data.snapshot(services, NOW)
    progress = board_view(services, live.board_id, NOW).progress
    assert wall.outreach == wall_data.Outreach(
        boards=1, missions_reached=1, missions_total=progress["mission"]["total"],
        households_reached=0, households_total=progress["household"]["total"],
        needs_assistance=1)
    assert wall.exercise == ("drill outreach board: Hurricane drill",)


def test_the_wall_counts_a_board_without_building_it_and_agrees_with_the_board(
        services, monkeypatch) -> None:
    from dashboard import services as services_module
    from dashboard.services import board_progress, board_view

    board, _ = open_board(services.engine, ["nws:flood-dc", "nws:surge-miami"], name="Two",
                          actor="t", now=NOW)
    wanted = ("total", "reached", "needs_assistance")

    def from_the_board() -> dict:
        shown = board_view(services, board.board_id, NOW).progress
        return {kind: {name: shown[kind][name] for name in wanted} for kind in shown}

    assert board_progress(services, board, NOW) == from_the_board()  # built the first time
    rows = board_view(services, board.board_id, NOW).rows
    statuses = ["reached_safe", "reached_needs_assistance", "attempted", "unreachable",
                "reached_needs_assistance", "reached_safe"]
    for (kind, target_id), status in zip(rows[["target_kind", "target_id"]].itertuples(
            index=False), statuses * 3, strict=False):
        record_status(services.engine, board.board_id, kind, target_id, status, actor="t",
                      now=NOW)
    built = []
    real = services_module._board_view
    monkeypatch.setattr(services_module, "_board_view",
                        lambda *a, **k: built.append(1) or real(*a, **k))
    counted = board_progress(services, board, NOW)   # statuses changed, hazards did not
    assert built == []
    assert counted == from_the_board() and built == [1]
    assert counted["mission"]["reached"] + counted["household"]["reached"] == 12
    assert counted["mission"]["needs_assistance"] + \
        counted["household"]["needs_assistance"] == 6


def test_a_board_after_status_updates_is_updated_not_rebuilt_and_equals_a_rebuild(
        services, monkeypatch) -> None:
    from pandas.testing import assert_frame_equal

    from dashboard import services as services_module
    from dashboard.services import Services, board_view

    board, _ = open_board(services.engine, ["nws:flood-dc", "nws:surge-miami"], name="Two",
                          actor="t", now=NOW)
    rows = board_view(services, board.board_id, NOW).rows
    targets = list(rows[["target_kind", "target_id"]].itertuples(index=False))
    record_status(services.engine, board.board_id, *targets[0], "attempted", actor="a",
                  now=NOW)
    board_view(services, board.board_id, NOW)  # a board's first events: built afresh
    built = []
    real = services_module._board_view
    monkeypatch.setattr(services_module, "_board_view",
                        lambda *a, **k: built.append(1) or real(*a, **k))
    later = NOW + timedelta(minutes=5)
    for (kind, target_id), status in zip(targets[:6] + targets[:2], [
            "reached_safe", "unreachable", "reached_needs_assistance", "attempted",
            "reached_safe", "attempted", "reached_needs_assistance", "reached_safe"],
            strict=True):
        record_status(services.engine, board.board_id, kind, target_id, status,
                      actor="coordinator b", note=f"{status} at {later:%H:%M}", now=later)
    updated = board_view(services, board.board_id, later)
    assert built == []  # updated in place from the 8 new events
    fresh = board_view(Services.from_engine(services.engine, services.settings),
                       board.board_id, later)
    assert built == [1]
    assert_frame_equal(updated.rows, fresh.rows)
    assert updated.progress == fresh.progress and updated.version == fresh.version
    first = updated.rows.iloc[0]
    assert (first["status"], first["updates"], first["updated_by"]) == (
        "reached_needs_assistance", 3, "coordinator b")


def test_a_feed_change_elsewhere_rebuilds_neither_the_incident_nor_its_board(
        services, monkeypatch) -> None:
    """Views of an incident are keyed by what its impact depends on (its own record and shape,
    the roster): a poll that changes other hazards reuses them; a change of its own shape
    rebuilds them, with the new people."""
    from dashboard import services as services_module
    from dashboard.services import board_view, incident_view

    board, _ = open_board(services.engine, ["nws:flood-dc"], name="DC", actor="t", now=NOW)
    before = board_view(services, board.board_id, NOW)
    incident = incident_view(services, ("nws:flood-dc",), NOW)
    built = []
    for name in ("_incident_view", "_board_view"):
        real = getattr(services_module, name)
        monkeypatch.setattr(services_module, name,
                            lambda *a, _real=real, _name=name, **k:
                            built.append(_name) or _real(*a, **k))
    replace_hazards(services.engine, "nws", [*_hazards(), TORNADO], now=NOW)  # a new poll
    again = board_view(services, board.board_id, NOW)
    same = incident_view(services, ("nws:flood-dc",), NOW)
    assert built == []  # nothing rebuilt for a tornado in New York
    assert again.rows.equals(before.rows) and same.totals == incident.totals
    assert list(same.hazards["hazard_id"]) == ["nws:flood-dc"] and same.hazards["active"].all()

    wider = shapely.box(-77.2, 38.75, -76.85, 39.05)  # the same alert, its area redrawn
    redrawn = [Hazard("nws:flood-dc", "nws", "Flash Flood Warning", "flood", severity="severe",
                      expires=LATER, geometry=wider, geometry_method="polygon",
                      area_desc="District of Columbia", sent=NOW - timedelta(hours=1)),
               *_hazards()[1:]]
    replace_hazards(services.engine, "nws", redrawn, now=NOW)
    grown = board_view(services, board.board_id, NOW)
    assert "_incident_view" in built and "_board_view" in built
    assert len(grown.rows) > len(before.rows)
    fresh = incident_view(Services.from_engine(services.engine, services.settings),
                          ("nws:flood-dc",), NOW)
    assert fresh.totals == incident_view(services, ("nws:flood-dc",), NOW).totals
    assert fresh.totals != incident.totals


def test_a_cap_exercise_message_shows_the_exercise_banner(services) -> None:
    drill = Hazard("nws:exercise-1", "nws", "Tsunami Warning", "tsunami", severity="extreme",
                   status="exercise", expires=LATER, geometry=DC_BOX,
                   geometry_method="polygon", area_desc="exercise area")
    replace_hazards(services.engine, "nws", [*_hazards(), drill], now=NOW)
    wall = wall_data.snapshot(services, NOW)
    assert wall.exercise == ("exercise message: Tsunami Warning",)


@pytest.fixture
def app(services):
    now = datetime.now(timezone.utc)
    create_user(services.engine, "watch", "display", PASSWORD, actor="test", now=now)
    return create_app(services.settings, services)


def _display_client(app):
    client, response = sign_in(app, "watch")
    assert response.status_code == 302
    return client


def test_map_route_serves_each_panel_as_svg_with_caching_by_version(app, services) -> None:
    client = _display_client(app)
    wall = wall_data.snapshot(services)
    for panel in wall_data.PANEL_NAMES:
        response = client.get(wall_data.map_url(wall, panel))
        assert response.status_code == 200, panel
        assert response.mimetype == "image/svg+xml"
        assert response.headers["Cache-Control"] == "private, max-age=86400"
        root = ET.fromstring(response.get_data())
        assert root.tag.endswith("svg")
    conus = client.get(wall_data.map_url(wall, "conus")).get_data(as_text=True)
    assert 'data-id="nws:flood-dc"' in conus and 'data-id="nws:surge-miami"' in conus
    assert "nws:small-craft" not in conus          # not an incident: not on the wall
    hawaii = client.get(wall_data.map_url(wall, "hawaii")).get_data(as_text=True)
    assert "nws:flood-dc" not in hawaii
    closeup = client.get(wall_data.map_url(wall, "closeup-nws:flood-dc"))
    assert closeup.status_code == 200 and b"highlight" in closeup.get_data()
    # a page older than the data gets the current map, not cached
    stale = client.get("/wall/map/conus.svg?v=old")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "private, no-store"
    for bad in ("/wall/map/europe.svg", "/wall/map/closeup-nws:small-craft.svg",
                "/wall/map/closeup-nope.svg"):
        assert client.get(bad).status_code == 404, bad
    anonymous = app.server.test_client().get("/wall/map/conus.svg")
    assert anonymous.status_code == 401


def test_maps_are_rendered_once_per_data_version(services) -> None:
    wall = wall_data.snapshot(services, NOW)
    first = wall_data.map_svg(services, wall, "conus")
    assert wall_data.map_svg(services, wall, "conus") is first    # from the cache
    replace_hazards(services.engine, "nws", [*_hazards(), TORNADO], now=NOW)
    changed = wall_data.snapshot(services, NOW)
    assert changed.maps_key != wall.maps_key
    assert b"nws:tornado-nyc" in wall_data.map_svg(services, changed, "conus")


def test_wall_page_and_callbacks_carry_no_personal_data(app, services, small_roster) -> None:
    _, people = small_roster
    values = personal_values(people)
    module = _page_module("/wall")
    page = json.dumps(module.layout(), cls=plotly.utils.PlotlyJSONEncoder)
    assert "Flash Flood Warning" in page and "MISSION WATCH" in page
    assert_no_personal_data(page, values, "wall layout")
    client = _display_client(app)
    assert client.get("/wall").status_code == 200
    wall = wall_data.snapshot(services)
    for panel in (*wall_data.PANEL_NAMES, *(wall_data.CLOSEUP_PREFIX + k for k in wall.closeups)):
        body = client.get(wall_data.map_url(wall, panel)).get_data(as_text=True)
        assert_no_personal_data(body, values, panel)
        for column in ("person_id", "household_id"):
            assert not [v for v in people[column].head(200) if f'"{v}"' in body], panel


def test_refresh_resends_maps_only_when_the_data_changes(services, app) -> None:
    module = _page_module("/wall")
    first = module.compute(None, now=NOW)
    assert first["maps"] is not dash.no_update and first["closeups"]
    again = module.compute(first["maps_key"], now=NOW)
    assert again["maps"] is dash.no_update and again["closeups"] is dash.no_update
    assert again["beat"]["refresh_ms"] == int(services.settings.wall_refresh_s * 1000)
    replace_hazards(services.engine, "nws", [*_hazards(), TORNADO], now=NOW)
    changed = module.compute(first["maps_key"], now=NOW)
    assert changed["maps"] is not dash.no_update
    assert changed["closeups"][0]["key"] in {c["key"] for c in changed["closeups"]}
    text = json.dumps(changed["kpis"], cls=plotly.utils.PlotlyJSONEncoder)
    assert "members and dependents affected" in text


def test_a_stale_feed_puts_an_unmistakable_warning_on_the_wall(services, app) -> None:
    module = _page_module("/wall")
    for source in SOURCE_NAMES:
        if source != "nws":
            replace_hazards(services.engine, source, [], now=NOW)

    def banners() -> str:
        return json.dumps(module.compute(None, now=NOW)["banners"],
                          cls=plotly.utils.PlotlyJSONEncoder)

    assert "FEED DOWN" not in banners()
    replace_hazards(services.engine, "usgs", [], now=NOW - timedelta(hours=2))
    record_poll(services.engine, "usgs", now=NOW, outcome="failed", reason="timeout")
    text = banners()
    assert "FEED DOWN: USGS" in text and "No alerts is NOT all clear" in text


def test_display_token_opens_the_wall(services) -> None:
    now = datetime.now(timezone.utc)
    _, secret = issue_token(services.engine, "ops wall", actor="test", now=now)
    app = create_app(services.settings, services)
    client = app.server.test_client()
    response = client.get(f"/wall?token={secret}")
    assert response.status_code == 302 and response.headers["Location"] == "/wall"
    assert client.get("/wall").status_code == 200
    assert client.get("/wall/map/conus.svg").status_code == 200


def test_clocks_are_the_ten_zones_of_the_missions(app) -> None:
    zones = [zone for _, zone in _page_module("/wall").CLOCKS]
    assert len(set(zones)) == 10
    offsets = {datetime(2026, 1, 15, 12, tzinfo=ZoneInfo(z)).utcoffset().total_seconds() / 3600
               for z in zones}
    # Eastern .. Hawaii, Atlantic (PR), Chamorro (+10), Samoa (-11), Marshall Islands (+12)
    assert offsets == {-5, -6, -7, -8, -9, -10, -4, 10, -11, 12}
