"""Incidents: the overview's numbers and filters, the incident page, and call-list exports.

Every count is checked against a plain shapely/pyproj loop over the roster; exports are
fetched through the real routes as a signed-in coordinator and read back.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import dash
import openpyxl
import pandas as pd
import plotly.utils
import pytest
import shapely
from pyproj import Geod

from dashboard import components
from dashboard.app import create_app
from dashboard.services import (
    Services,
    UnknownIncident,
    incident_key,
    incident_view,
    overview,
    parse_keys,
)
from feeds.model import Hazard
from layers.affected import Filters
from layers.calllist import CALL_LIST_COLUMNS
from settings import Settings
from store.audit import query_audit
from store.feeds import record_poll, replace_hazards
from store.roster import replace_roster
from store.users import create_user
from tests.dashboard.test_access import PASSWORD, sign_in

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
DC_BOX = shapely.box(-77.2, 38.8, -76.9, 39.05)
MIAMI = (-80.19, 25.77, 40.0)


def _page_module(path: str):
    """The module of a registered page (pages are imported when the app is created)."""
    import sys

    page = next(p for p in dash.page_registry.values()
                if p["path"] == path or p.get("path_template") == path)
    return sys.modules[page["module"]]


def _hazards() -> list[Hazard]:
    later = NOW + timedelta(hours=3)
    return [
        Hazard("nws:flood-dc", "nws", "Flash Flood Warning", "flood", severity="severe",
               expires=later, geometry=DC_BOX, geometry_method="polygon",
               area_desc="District of Columbia", headline="Flash flooding in Washington",
               url="https://api.weather.gov/alerts/flood-dc", sent=NOW - timedelta(hours=1)),
        Hazard("nws:surge-miami", "nws", "Storm Surge Warning", "weather", severity="extreme",
               expires=later, center_lon=MIAMI[0], center_lat=MIAMI[1], radius_km=MIAMI[2],
               area_desc="Miami-Dade"),
        # a marine-only advisory: a hazard, but not an incident under the default rules
        Hazard("nws:small-craft", "nws", "Small Craft Advisory", "weather", severity="minor",
               expires=later, geometry=shapely.box(-77.1, 38.85, -77.0, 38.95),
               geometry_method="zone", area_desc="Tidal Potomac",
               properties={"ugc": ["ANZ535"], "same": ["073535"]}),
        Hazard("nws:ended", "nws", "Wind Advisory", "weather", severity="moderate",
               expires=NOW - timedelta(minutes=5), geometry=DC_BOX, geometry_method="polygon",
               area_desc="gone"),
    ]


@pytest.fixture
def services(store_engine, checked_small_roster, tmp_path):
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=NOW, synthetic=True)
    replace_hazards(store_engine, "nws", _hazards(), now=NOW)
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    return Services.from_engine(store_engine, settings)


def _inside_box(frame: pd.DataFrame) -> pd.Series:
    return pd.Series([DC_BOX.intersects(shapely.Point(x, y))
                      for x, y in zip(frame["lon"], frame["lat"], strict=True)],
                     index=frame.index)


def _inside_circle(frame: pd.DataFrame) -> pd.Series:
    _, _, metres = Geod(ellps="WGS84").inv([MIAMI[0]] * len(frame), [MIAMI[1]] * len(frame),
                                           frame["lon"].to_list(), frame["lat"].to_list())
    return pd.Series([m <= MIAMI[2] * 1000 for m in metres], index=frame.index)


def _expected(missions: pd.DataFrame, people: pd.DataFrame, inside) -> dict[str, int]:
    premises = inside(missions)
    residents = people[inside(people)]
    touched = set(missions.loc[premises, "mission_id"]) | set(residents["mission_id"])
    return {"missions": len(touched), "premises": int(premises.sum()),
            "people": len(residents),
            "with_immunity": int(residents["immunity"].isin(["full", "official_acts"]).sum()),
            "households": residents["household_id"].nunique()}


def test_overview_counts_rules_and_ranking(services, checked_small_roster) -> None:
    missions, people = checked_small_roster
    data = overview(services, NOW)
    rows = data.hazards.set_index("hazard_id")
    columns = ["missions", "premises", "people", "with_immunity", "households"]
    assert rows.loc["nws:flood-dc", columns].to_dict() == _expected(missions, people,
                                                                    _inside_box)
    assert rows.loc["nws:surge-miami", columns].to_dict() == _expected(missions, people,
                                                                       _inside_circle)
    assert "nws:ended" not in rows.index and data.active == 3
    assert not rows.loc["nws:small-craft", "incident"]
    assert "marine" in rows.loc["nws:small-craft", "reason"].lower()
    assert rows.loc["nws:flood-dc", "incident"] and rows.loc["nws:surge-miami", "incident"]
    assert data.hidden_by_rules == 1
    people_col = list(data.hazards["people"])
    assert people_col == sorted(people_col, reverse=True)
    # the union: each person once across the two incidents
    union = _inside_box(people) | _inside_circle(people)
    assert data.totals["people"] == int(union.sum())
    assert data.totals["incidents"] == 2


def test_overview_filters_narrow_counts(services, checked_small_roster) -> None:
    missions, people = checked_small_roster
    data = overview(services, NOW, Filters.of(jurisdictions=["FL"]))
    assert set(data.hazards["hazard_id"]) == {"nws:surge-miami"}
    in_fl = people[people["jurisdiction"] == "FL"]
    assert data.hazards.iloc[0]["people"] == int(_inside_circle(in_fl).sum())
    country = missions.loc[_inside_box(missions), "country_code"].iloc[0]
    data = overview(services, NOW, Filters.of(countries=[country]))
    of_country = set(missions.loc[missions["country_code"] == country, "mission_id"])
    flood = data.hazards.set_index("hazard_id").loc["nws:flood-dc"]
    assert flood["people"] == int(_inside_box(people[people["mission_id"].isin(of_country)])
                                  .sum())
    assert overview(services, NOW, Filters.of(severities=["minor"])).incidents.empty
    assert set(overview(services, NOW, Filters.of(sources=["usgs"])).hazards["hazard_id"]) \
        == set()


def test_overview_page_resends_the_map_only_when_it_changes(services) -> None:
    create_app(services.settings, services)
    overview_page = _page_module("/")
    first = overview_page.compute({}, False, None, now=NOW)
    assert first["figure"] is not dash.no_update
    again = overview_page.compute({}, False, first["map_key"], now=NOW + timedelta(minutes=1))
    assert again["figure"] is dash.no_update and again["map_key"] == first["map_key"]
    shown = overview_page.compute({}, True, first["map_key"], now=NOW)
    assert shown["figure"] is not dash.no_update  # the filtered-out hazard is drawn too
    payload = json.dumps(first["figure"], cls=plotly.utils.PlotlyJSONEncoder)
    assert "nws:flood-dc" in payload and "nws:small-craft" not in payload


def test_empty_states_tell_quiet_from_blind(store_engine, checked_small_roster,
                                            tmp_path) -> None:
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="t", actor="test", now=NOW)
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    services = Services.from_engine(store_engine, settings)
    create_app(settings, services)
    overview_page = _page_module("/")
    text = json.dumps(overview_page.compute({}, False, None, now=NOW)["status"],
                      cls=plotly.utils.PlotlyJSONEncoder)
    assert "NOT an all-clear" in text  # no feed has ever been polled
    from feeds.sources import SOURCE_NAMES

    for source in SOURCE_NAMES:
        replace_hazards(store_engine, source, [], now=NOW)
    text = json.dumps(overview_page.compute({}, False, None, now=NOW)["status"],
                      cls=plotly.utils.PlotlyJSONEncoder)
    assert "No active hazards. Every feed is reporting." in text
    record_poll(store_engine, "nws", now=NOW + timedelta(hours=2), outcome="failed",
                reason="timeout")
    text = json.dumps(overview_page.compute({}, False, None, now=NOW + timedelta(hours=2))
                      ["status"], cls=plotly.utils.PlotlyJSONEncoder)
    assert "NWS" in text and "NOT an all-clear" in text


def test_incident_view_lists_everyone_inside(services, checked_small_roster) -> None:
    missions, people = checked_small_roster
    keys = (incident_key("nws:flood-dc"), incident_key("nws:surge-miami"))
    view = incident_view(services, keys, NOW)
    inside = _inside_box(people) | _inside_circle(people)
    listed = set(view.calls.loc[view.calls["person_id"] != "", "person_id"])
    assert listed == set(people.loc[inside, "person_id"])
    touched = (set(missions.loc[_inside_box(missions) | _inside_circle(missions),
                                "mission_id"]) | set(people.loc[inside, "mission_id"]))
    assert set(view.missions["mission_id"]) == touched
    assert set(view.calls["mission_id"]) == touched
    grid = view.missions.set_index("mission_id")
    assert int(grid["people"].sum()) == int(inside.sum())
    assert (grid["full"] + grid["official_acts"] + grid["none"] == grid["people"]).all()
    assert view.totals["people"] == int(inside.sum())
    assert list(view.hazards["active"]) == [True, True]
    # ended hazards still open (outreach goes on), marked inactive
    assert not incident_view(services, ("nws:ended",), NOW).hazards.iloc[0]["active"]
    with pytest.raises(UnknownIncident, match="no-such"):
        incident_view(services, ("no-such",), NOW)


def test_incident_keys() -> None:
    assert incident_key("usgs:us7000abcd") == "usgs:us7000abcd"
    odd = incident_key("wildfire:{ABC/DEF}")
    assert odd.startswith("wildfire-") and "/" not in odd
    assert odd == incident_key("wildfire:{ABC/DEF}")
    assert parse_keys(" a, b ,a,") == ("a", "b")
    with pytest.raises(ValueError, match="no incident"):
        parse_keys(" , ")
    with pytest.raises(ValueError, match="at most"):
        parse_keys(",".join(f"k{i}" for i in range(30)))


def test_people_page_search_sort_and_paging(services, checked_small_roster) -> None:
    create_app(services.settings, services)
    incident_page = _page_module("/incident/<incident_id>")
    view = incident_view(services, (incident_key("nws:surge-miami"),), NOW)
    rows, pages, total = incident_page.people_page(view, page=0, page_size=10)
    assert total == len(view.calls) and pages == -(-total // 10)
    assert [r["order"] for r in rows] == list(range(1, min(10, total) + 1))
    person = view.calls[view.calls["person_id"] != ""].iloc[0]
    rows, _, total = incident_page.people_page(view, search=person["name"].split()[-1].upper())
    assert person["name"] in {r["name"] for r in rows}
    rows, _, _ = incident_page.people_page(view, mission_id=person["mission_id"])
    assert {r["mission_name"] for r in rows} == {person["mission_name"]}
    rows, _, _ = incident_page.people_page(
        view, sort_by=[{"column_id": "name", "direction": "desc"}], page_size=500)
    names = [r["name"] for r in rows]
    assert names == sorted(names, reverse=True)
    assert all(r["hazards"] == "Storm Surge Warning" for r in rows)


def test_time_is_shown_in_eastern_and_local() -> None:
    assert components.when(datetime(2026, 7, 4, 16, 0, tzinfo=timezone.utc)) == \
        "2026-07-04 12:00 EDT"
    assert components.when(None) == "" and components.when(pd.NaT) == ""


@pytest.fixture
def coordinator_app(services, fast_hashing):
    create_user(services.engine, "coord", "coordinator", PASSWORD, actor="test", now=NOW)
    create_user(services.engine, "wall", "display", PASSWORD, actor="test", now=NOW)
    return create_app(services.settings, services)


def _csv_rows(body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    text = body.decode("utf-8-sig")
    lines = text.split("\r\n")
    header = {}
    for line in lines:
        if not line.startswith("# ") and not line.startswith('"# '):
            break
        key, _, value = line.strip('"').removeprefix("# ").partition(": ")
        header[key] = value
    body_lines = [line for line in lines if line and not line.lstrip('"').startswith("# ")]
    return header, list(csv.DictReader(io.StringIO("\n".join(body_lines))))


def test_call_list_exports_match_the_impact_engine(coordinator_app, services,
                                                   checked_small_roster) -> None:
    _, people = checked_small_roster
    client, response = sign_in(coordinator_app, "coord")
    assert response.status_code == 302
    keys = f"{incident_key('nws:flood-dc')},{incident_key('nws:surge-miami')}"
    answer = client.get(f"/exports/calllist.csv?incidents={keys}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the accents
    header, rows = _csv_rows(answer.data)
    inside = _inside_box(people) | _inside_circle(people)
    assert {r["person_id"] for r in rows if r["person_id"]} == set(
        people.loc[inside, "person_id"])
    assert header["rows"] == str(len(rows)) and "nws:flood-dc" in header["hazards"]
    assert header["exported_by"] == "user:coord"
    assert list(rows[0]) == list(CALL_LIST_COLUMNS)
    assert [int(r["order"]) for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["contact_kind"] == "duty"
    assert all(r["phone"].startswith("'+") for r in rows if r["phone"])  # neutralised

    answer = client.get(f"/exports/calllist.xlsx?incidents={keys}&split=mission")
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.data), read_only=True)
    assert book.sheetnames[0] == "Summary"
    seen = set()
    for sheet in book.sheetnames[1:]:
        values = list(book[sheet].iter_rows(values_only=True))
        column = values[0].index("person_id")
        seen |= {r[column] for r in values[1:] if r[column]}
    assert seen == set(people.loc[inside, "person_id"])
    assert len(book.sheetnames) - 1 == len(incident_view(
        services, parse_keys(keys), NOW).missions)

    events = query_audit(services.engine, action="calllist.export")
    assert len(events) == 2
    detail = json.loads(events[0].detail) if isinstance(events[0].detail, str) else \
        events[0].detail
    assert detail["rows"] > 0 and "nws:flood-dc" in detail["hazards"]
    assert len(detail["sha256"]) == 64
    assert {e.actor for e in events} == {"user:coord"}


def test_exports_refuse_display_users_and_bad_requests(coordinator_app) -> None:
    wall, _ = sign_in(coordinator_app, "wall")
    key = incident_key("nws:flood-dc")
    assert wall.get(f"/exports/calllist.csv?incidents={key}").status_code == 403
    client, _ = sign_in(coordinator_app, "coord")
    assert client.get("/exports/calllist.csv?incidents=nope").status_code == 404
    assert client.get("/exports/calllist.csv").status_code == 400
    assert client.get(f"/exports/calllist.xlsx?incidents={key}&split=x").status_code == 400


def test_rules_that_no_longer_validate_hide_nothing(services) -> None:
    """Broken stored rules must not take the overview down or hide a hazard: fail open."""
    from store.rules import save_rules
    from store.tables import incident_rules

    save_rules(services.engine, [], actor="test", now=NOW)
    with services.engine.begin() as connection:
        connection.execute(incident_rules.insert().values(
            position=1, rule='{"action": "exclude", "sources": ["no-such-feed"], "note": "x"}'))
    data = overview(services, NOW)
    assert data.hazards["incident"].all() and len(data.hazards) == 3
    assert "invalid" in data.rules_problem


def test_street_basemap_goes_under_the_bundled_boundaries(store_engine, tmp_path) -> None:
    from dashboard import auth, figures

    base = {"type": "FeatureCollection", "features": []}
    offline = figures.base_layers(base)
    assert [layer["type"] for layer in offline] == ["fill"]  # air-gapped: boundaries only
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    online = figures.base_layers(base, (url, "© example"))
    assert online[0]["sourcetype"] == "raster" and online[0]["source"] == [url]
    assert online[1]["type"] == "line"  # the states still show where tiles cannot load
    settings = Settings.from_env({}, data_dir=str(tmp_path), basemap_url=url)
    assert settings.basemap_origin == "https://tiles.example.org"
    app = create_app(settings, Services.from_engine(store_engine, settings))
    csp = app.server.test_client().get("/login").headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://tiles.example.org" in csp
    assert "connect-src 'self' https://tiles.example.org" in csp
    assert "tiles.example.org" not in auth.content_security_policy(app)
    for bad in ("ftp://tiles.example.org/{z}/{x}/{y}", "https://tiles.example.org/tile.png"):
        with pytest.raises(ValueError, match="basemap_url"):
            Settings.from_env({}, data_dir=str(tmp_path), basemap_url=bad)
