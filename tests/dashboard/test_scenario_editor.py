"""The scenario editor (/drills/new, /drills/edit/<name>) and the merged scenario library: the
shape tools, checking, saving (atomic, audited, refusals), and an authored scenario played as a
drill. Callbacks are called directly (data first), then through the server."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dash
import plotly.utils
import pytest
import shapely
import shapely.geometry

from dashboard import drills as drill_data
from dashboard import ids, scenario_library
from dashboard.app import create_app
from dashboard.services import Services
from layers.scenarios import load_library, parse_scenario, scenario_to_geojson
from settings import Settings
from store.audit import query_audit
from store.db import open_store
from store.drills import start_drill
from store.roster import replace_roster
from store.users import create_user
from tests.dashboard.test_access import PASSWORD, _callback_payload, sign_in
from tests.dashboard.test_rules_page import _find

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
BUNDLED = load_library()
EDIT = ("..scenario-editor-injects.data...scenario-editor-injects.selected_rows..."
        "scenario-editor-store.data...scenario-editor-shape-result.children..."
        "scenario-editor-upload-pick.options...scenario-editor-upload-pick.value..."
        "scenario-editor-upload-choice.hidden..")
CHECK = ("..scenario-editor-check.children...scenario-editor-save.disabled...scenario-editor-map."
         "figure...scenario-editor-figure-key.data..")
SAVE = "..scenario-editor-result.children...scenario-editor-origin.data.."
DC_BOX = [[[-77.1, 38.85], [-76.95, 38.85], [-76.95, 38.95], [-77.1, 38.95], [-77.1, 38.85]]]


def _app(engine, tmp_path):
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    app = create_app(settings, Services.from_engine(engine, settings))
    # the module Dash imported when it built the app (importing it again would register twice)
    registered = next(p for p in dash.page_registry.values() if p["path"] == "/drills/new")
    return app, sys.modules[registered["module"]], settings


@pytest.fixture
def editor(tmp_path):
    """The app over a SQLite store, the editor page module and the settings."""
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    yield _app(engine, tmp_path)
    engine.dispose()


@pytest.fixture
def stored(store_engine, tmp_path):
    """The same over each store backend."""
    return _app(store_engine, tmp_path)


def _text(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder)


def _scenario(name: str = "embassy-row-flood", **features) -> dict:
    """A valid scenario over DC: a flood warning, then its update; ``features`` overrides
    properties of the second inject."""
    update = {"inject_id": "major-flood", "at_minutes": 60, "message_type": "update",
              "supersedes": ["flood-warning"], "event": "Flood Warning", "category": "flood",
              "severity": "severe", **features}
    return {
        "type": "FeatureCollection",
        "scenario": {"name": name, "title": "Flood on Embassy Row",
                     "description": "Rock Creek floods, then worse.", "jurisdictions": ["DC"],
                     "duration_minutes": 180, "author": "Exercise design team",
                     "sources": "Training approximation: boxes drawn by hand."},
        "features": [
            {"type": "Feature", "properties": {
                "inject_id": "flood-warning", "at_minutes": 0, "event": "Flood Warning",
                "category": "flood", "severity": "moderate"},
             "geometry": {"type": "Polygon", "coordinates": DC_BOX}},
            {"type": "Feature", "properties": update,
             "geometry": {"type": "Point", "coordinates": [-77.05, 38.92]}}
            if "radius_km" in features else
            {"type": "Feature", "properties": update,
             "geometry": {"type": "Polygon", "coordinates": DC_BOX}},
        ],
    }


def _form(page, data: dict) -> tuple[dict, list[dict]]:
    return page.header_of(data), page.rows_of(data)


def _upload(data) -> str:
    body = json.dumps(data).encode()
    return "data:application/geo+json;base64," + base64.b64encode(body).decode()


# ------------------------------------------------------------------------------ the page


def test_the_page_is_for_coordinators_and_starts_from_a_blank_or_library_scenario(
        editor) -> None:
    _, page, _ = editor
    registered = next(p for p in dash.page_registry.values() if p["path"] == "/drills/new")
    assert registered["min_role"] == "coordinator" and registered["nav"] is False
    assert registered["path_template"] == "/drills/edit/<name>"
    tree = json.loads(_text(page.layout()))
    store = _find(tree, ids.EDITOR_STORE)["props"]["data"]
    assert store["scenario"]["duration_minutes"] == page.DEFAULT_DURATION
    assert [f["properties"]["inject_id"] for f in store["features"]] == ["inject-1"]
    assert _find(tree, ids.EDITOR_SAVE)["props"]["disabled"] is True
    assert "scenario name must not be empty" in _text(_find(tree, ids.EDITOR_CHECK))
    table = _find(tree, ids.EDITOR_INJECTS)["props"]
    assert table["editable"] and table["row_deletable"] and table["row_selectable"] == "single"
    assert {c["id"] for c in table["columns"]} >= {
        "inject_id", "at_minutes", "expires_minutes", "event", "category", "severity",
        "area_desc", "supersedes", "shape"}
    assert table["dropdown"]["category"]["options"][0] == {"label": "weather",
                                                           "value": "weather"}
    figure = _find(tree, ids.EDITOR_MAP)["props"]["figure"]
    assert figure["layout"]["dragmode"] == "drawclosedpath" and figure["layout"]["newshape"]
    assert figure["layout"]["yaxis"]["scaleanchor"] == "x"
    assert figure["data"][0]["name"] == "state outlines" and len(figure["data"][0]["x"]) > 1000

    # from a bundled scenario: everything kept, under a new name
    tree = json.loads(_text(page.layout(name="miami-hurricane")))
    store = _find(tree, ids.EDITOR_STORE)["props"]["data"]
    assert parse_scenario(store) == dataclasses.replace(BUNDLED["miami-hurricane"],
                                                        name="miami-hurricane-copy")
    assert _find(tree, ids.EDITOR_ORIGIN)["props"]["data"] is None
    assert _find(tree, ids.EDITOR_SAVE)["props"]["disabled"] is False
    assert len(_find(tree, ids.EDITOR_INJECTS)["props"]["data"]) == 6
    x_range = _find(tree, ids.EDITOR_MAP)["props"]["figure"]["layout"]["xaxis"]["range"]
    assert -88.5 < x_range[0] < -87 and -80 < x_range[1] < -79  # zoomed to Florida
    assert "There is no scenario 'no-such'" in _text(page.layout(name="no-such"))


def test_every_bundled_scenario_survives_the_form_unchanged(editor) -> None:
    _, page, _ = editor
    for scenario in BUNDLED.values():
        header, rows = _form(page, scenario_to_geojson(scenario))
        assert parse_scenario(page.scenario_geojson(header, rows)) == scenario, scenario.name


def test_a_pacific_scenario_is_drawn_whole_across_the_date_line(editor) -> None:
    _, page, _ = editor
    data = scenario_to_geojson(BUNDLED["marshall-islands-typhoon"])
    figure = page.editor_figure(data, 0)
    x0, x1 = figure["layout"]["xaxis"]["range"]
    assert 160 < x0 < x1 < 185  # Marshall Islands: no jump to -180
    injects = figure["data"][1:]
    assert all(min(v for v in t["x"] if v is not None) > 150 for t in injects)
    # the typhoon comes from east of the date line: drawn past 180, joined up, not at -180
    assert max(v for t in injects for v in t["x"] if v is not None) > 180
    pacific = page.editor_figure(scenario_to_geojson(BUNDLED["anchorage-m7"]), None)
    assert "190° is 170° west" in pacific["layout"]["xaxis"]["title"]["text"]


# ------------------------------------------------------------------------------ shape tools


def test_a_drawn_path_becomes_the_selected_injects_polygon(editor) -> None:
    _, page, _ = editor
    header, rows = _form(page, _scenario())
    path = "M-77.12345678,38.9L-77.0,38.9L-77.0,39.01L-77.12345678,38.9Z"
    new_rows, chosen, data, message, *_ = page.editor_action(
        "draw", header, rows, [1], relayout={"shapes": [
            {"type": "path", "path": "M0,0L1,0L1,1Z", "editable": True},
            {"type": "path", "path": path}]})
    expected = [[[-77.12346, 38.9], [-77.0, 38.9], [-77.0, 39.01], [-77.12346, 38.9]]]
    assert json.loads(new_rows[1]["geometry"]) == {"type": "Polygon", "coordinates": expected}
    assert data["features"][1]["geometry"]["coordinates"] == expected
    assert data["features"][0] == _scenario()["features"][0]  # the other row is untouched
    assert new_rows[1]["shape"] == "polygon, 4 vertices"
    assert chosen is dash.no_update and "3 corners" in message
    area = parse_scenario(data).inject("major-flood").geometry
    assert area.equals(shapely.Polygon(expected[0]))
    # reshaping a drawn path reports the path alone; a zoom is no drawing
    _, _, data, _, *_ = page.editor_action("draw", header, rows, [0], relayout={
        "shapes[0].path": "M-77.05,38.88L-77.02,38.88L-77.02,38.91Z"})
    assert data["features"][0]["geometry"]["coordinates"][0][2] == [-77.02, 38.91]
    with pytest.raises(dash.exceptions.PreventUpdate):
        page.editor_action("draw", header, rows, [0], relayout={"xaxis.range[0]": -78})
    # no row selected, or a degenerate path: nothing changes, the reason is shown
    for selected, path in (([], "M-77,38L-76,38L-76,39Z"), ([0], "M-77,38L-76,38Z")):
        answer = page.editor_action("draw", header, rows, selected,
                                    relayout={"shapes": [{"type": "path", "path": path}]})
        assert answer[0] is dash.no_update and answer[2] is dash.no_update
        assert "No area set" in _text(answer[3])


def test_a_path_drawn_east_of_the_date_line_is_stored_in_range(editor) -> None:
    _, page, _ = editor
    polygon = page.path_to_polygon("M190,-14L195,-14L195,-10Z")
    assert polygon["coordinates"] == [[[-170.0, -14.0], [-165.0, -14.0], [-165.0, -10.0],
                                       [-170.0, -14.0]]]
    across = page.path_to_polygon("M178,5L183,5L183,8Z")  # kept: parsing splits it at 180
    assert across["coordinates"][0][1] == [183.0, 5.0]
    with pytest.raises(page.ShapeError, match="curves"):
        page.path_to_polygon("M0,0C1,1 2,2 3,3Z")


def test_a_circle_sets_the_centre_and_radius(editor) -> None:
    _, page, _ = editor
    header, rows = _form(page, _scenario())
    new_rows, _, data, message, *_ = page.editor_action(
        "circle", header, rows, [1], circle=(-77.036, 38.8977, "12.5"))
    feature = data["features"][1]
    assert feature["geometry"] == {"type": "Point", "coordinates": [-77.036, 38.8977]}
    assert feature["properties"]["radius_km"] == 12.5
    assert new_rows[1]["shape"] == "circle 12.5 km around -77.036, 38.8977"
    inject = parse_scenario(data).inject("major-flood")
    assert (inject.center_lon, inject.center_lat, inject.radius_km) == (-77.036, 38.8977, 12.5)
    assert "12.5 km" in message
    # a drawn polygon afterwards replaces the circle (and its radius)
    drawn = {"shapes": [{"type": "path", "path": "M-77,38.8L-76.9,38.8L-76.9,38.9Z"}]}
    _, _, data, *_ = page.editor_action("draw", page.header_of(data), new_rows, [1],
                                        relayout=drawn)
    assert "radius_km" not in data["features"][1]["properties"]
    for circle, reason in (((-77, 38.9, 0), "radius_km must be > 0"),
                           ((-77, 38.9, 2500), "radius_km must be > 0 and <= 2000"),
                           ((None, 38.9, 5), "centre longitude must be a number"),
                           ((-77, 95, 5), "centre latitude must be >= -90")):
        answer = page.editor_action("circle", header, rows, [1], circle=circle)
        assert answer[2] is dash.no_update and reason in _text(answer[3]), circle


def test_an_uploaded_file_gives_its_first_area_or_the_one_chosen(editor) -> None:
    _, page, _ = editor
    header, rows = _form(page, _scenario())
    first = shapely.box(-77.08, 38.88, -77.0, 38.93)
    second = shapely.MultiPolygon([shapely.box(-77.2, 38.8, -77.1, 38.9),
                                   shapely.box(-77.0, 38.9, -76.9, 39.0)])
    upload = _upload({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a pin"},
         "geometry": {"type": "Point", "coordinates": [-77, 38.9]}},
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(first)},
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(second)}]})
    rows2, _, data, message, options, value, hidden = page.editor_action(
        "upload", header, rows, [0], upload=upload)
    assert shapely.geometry.shape(data["features"][0]["geometry"]).equals(first)
    assert [o["value"] for o in options] == [0, 1] and value == 0 and hidden is False
    assert "2 areas" in message and "a pin" not in _text(options)  # properties never shown
    _, _, data, message, options, value, hidden = page.editor_action(
        "pick", page.header_of(data), rows2, [0], upload=upload, pick=1)
    assert shapely.geometry.shape(data["features"][0]["geometry"]).equals(second)
    assert options is dash.no_update and "area 2" in message
    assert parse_scenario(data).inject("flood-warning").geometry.equals(second)
    # a bare Polygon, a Feature
    for body in (shapely.geometry.mapping(first),
                 {"type": "Feature", "properties": None,
                  "geometry": shapely.geometry.mapping(first)}):
        _, _, data, _, _, _, hidden = page.editor_action("upload", header, rows, [1],
                                                         upload=_upload(body))
        assert shapely.geometry.shape(data["features"][1]["geometry"]).equals(first)
        assert hidden is True


def test_a_large_upload_is_simplified_and_bad_files_are_refused(editor) -> None:
    _, page, _ = editor
    header, rows = _form(page, _scenario())
    ring = shapely.Point(-77.0, 38.9).buffer(0.1, quad_segs=1000)  # 4,000 vertices
    _, _, data, *_ = page.editor_action("upload", header, rows, [0],
                                        upload=_upload(shapely.geometry.mapping(ring)))
    area = shapely.geometry.shape(data["features"][0]["geometry"])
    assert shapely.get_num_coordinates(area) <= page.MAX_UPLOAD_VERTICES
    assert area.symmetric_difference(ring).area < 0.01 * ring.area
    projected = {"type": "FeatureCollection",
                 "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                 "features": [{"type": "Feature", "properties": {},
                               "geometry": shapely.geometry.mapping(ring)}]}
    for upload, reason in (
            ("data:application/json;base64," + base64.b64encode(b"{nope").decode(),
             "not GeoJSON"),
            (_upload({"type": "Point", "coordinates": [0, 0]}), "expected a GeoJSON Polygon"),
            (_upload({"type": "FeatureCollection", "features": []}), "no Polygon"),
            (_upload(projected), "not in WGS 84"),
            (_upload(shapely.geometry.mapping(shapely.box(-8_600_000, 4_700_000,
                                                          -8_500_000, 4_800_000))),
             "not longitude/latitude")):
        answer = page.editor_action("upload", header, rows, [0], upload=upload)
        assert answer[2] is dash.no_update and reason in _text(answer[3]), reason


def test_rows_can_be_added_and_removed(editor) -> None:
    _, page, _ = editor
    header, rows = _form(page, _scenario())
    rows2, chosen, data, message, *_ = page.editor_action("add", header, rows, [0])
    assert len(rows2) == 3 and chosen == [2] and rows2[2]["inject_id"] == "inject-3"
    assert rows2[2]["at_minutes"] == 90 and rows2[2]["id"] not in {r["id"] for r in rows}
    assert data["features"][2]["geometry"] is None and "added" in message
    # a removed row (the table's x) is simply missing from the table's data; the table is not
    # sent back (that could undo a cell being typed meanwhile)
    echoed, _, data, *_ = page.editor_action(None, header, rows2[1:], [5])
    assert echoed is dash.no_update
    assert [f["properties"]["inject_id"] for f in data["features"]] == ["major-flood",
                                                                        "inject-3"]


# ------------------------------------------------------------------------------ checking


def test_errors_name_the_inject_and_the_reason_and_block_saving(editor) -> None:
    _, page, _ = editor
    bad = _scenario(supersedes=["no-such-inject"])
    panel, disabled, figure, key = page.check_view(bad, [0], None, bundled=set(BUNDLED),
                                                   authored=set(), origin=None)
    assert disabled is True
    shown = [item.children for item in panel.children[1].children]
    assert shown == ['inject "major-flood" (feature 2): supersedes names \'no-such-inject\', '
                     "which is not an inject of this scenario"]
    assert figure["data"][1]["name"] == "flood-warning: Flood Warning"
    assert figure["data"][1]["line"]["width"] == 3  # the selected row, highlighted
    # unchanged areas and selection: the chart is not sent again
    again = page.check_view(bad, [0], key, bundled=set(BUNDLED), authored=set(), origin=None)
    assert again[2] is dash.no_update and again[3] == key
    assert page.check_view(bad, [1], key, bundled=set(BUNDLED), authored=set(),
                           origin=None)[2] is not dash.no_update
    good = _scenario(radius_km=3)
    panel, disabled, _, _ = page.check_view(good, [], None, bundled=set(BUNDLED),
                                            authored=set(), origin=None)
    assert disabled is False and "Ready to save" in _text(panel)
    for data, reason in (
            (_scenario(at_minutes="ninety"), "at_minutes must be a number, got 'ninety'"),
            (_scenario(at_minutes=999), "at_minutes 999 is beyond the scenario's duration"),
            (_scenario(name="Embassy Row"), "scenario name 'Embassy Row' must be 1 to 64"),
            (_scenario(name="miami-hurricane"), "the name of a bundled scenario"),
            (_scenario(radius_km=5, severity="awful"), "severity 'awful' is not one of")):
        assert reason in " ".join(page.problems(data, bundled=set(BUNDLED))[1]), reason
    # shapes far from the jurisdictions, or a jurisdiction no inject touches
    elsewhere = _scenario()
    elsewhere["scenario"]["jurisdictions"] = ["DC", "TX"]
    _, found = page.problems(elsewhere)
    assert found == ["no inject touches TX: remove it from the jurisdictions or draw an "
                     "inject there"]
    elsewhere["scenario"]["jurisdictions"] = ["HI"]
    assert 'inject "flood-warning" lies' in " ".join(page.problems(elsewhere)[1])
    # a name taken by an authored scenario is fine only when editing that scenario
    assert "already exists" in page.problems(good, authored={"embassy-row-flood"})[1][0]
    assert page.problems(good, authored={"embassy-row-flood"},
                         origin="embassy-row-flood")[1] == []


def test_the_form_gives_the_file_format(editor) -> None:
    _, page, _ = editor
    header = {"name": "x-1", "title": " T ", "description": "d", "jurisdictions": ["DC"],
              "duration_minutes": "120", "author": "a", "sources": "s"}
    rows = [{"id": "row-1", "inject_id": "a", "at_minutes": "15", "expires_minutes": "",
             "message_type": "alert", "event": "E", "category": "flood",
             "severity": "minor", "urgency": "unknown", "certainty": "likely",
             "area_desc": "", "supersedes": " b , c ", "headline": "", "geometry": "",
             "radius_km": ""}]
    data = page.scenario_geojson(header, rows)
    assert data["scenario"]["duration_minutes"] == 120 and data["scenario"]["title"] == "T"
    assert data["features"][0]["properties"] == {
        "inject_id": "a", "at_minutes": 15, "supersedes": ["b", "c"], "category": "flood",
        "severity": "minor", "certainty": "likely", "event": "E"}
    assert data["features"][0]["geometry"] is None


# ------------------------------------------------------------------------------ saving


def test_saving_writes_the_checked_scenario_atomically_and_audits_it(stored,
                                                                       store_engine) -> None:
    _, page, settings = stored
    data = _scenario(radius_km=4)
    message, origin = page.save_action(data, None, settings=settings, engine=store_engine,
                                       actor="user:coordinator", now=NOW)
    assert origin == "embassy-row-flood"
    assert "Saved 'embassy-row-flood' (2 injects)" in _text(message)
    assert "/drills" in _text(message)
    folder = settings.data_path / "scenarios"
    path = folder / "embassy-row-flood.geojson"
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # no temp file left
    assert load_library(folder) == {"embassy-row-flood": parse_scenario(data)}
    event, = query_audit(store_engine, action="scenario.save")
    assert event.actor == "user:coordinator"
    assert event.detail == {"name": "embassy-row-flood", "injects": 2, "replaced": False,
                            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    # saving the same name again is refused unless it is the scenario being edited
    changed = _scenario(radius_km=6)
    message, keep = page.save_action(changed, None, settings=settings, engine=store_engine,
                                     actor="user:coordinator", now=NOW)
    assert "already exists" in message and keep is dash.no_update
    message, _ = page.save_action(changed, "embassy-row-flood", settings=settings,
                                  engine=store_engine, actor="user:coordinator", now=NOW)
    assert "Replaced 'embassy-row-flood'" in _text(message)
    assert load_library(folder)["embassy-row-flood"].inject("major-flood").radius_km == 6
    assert [e.detail["replaced"] for e in query_audit(store_engine,
                                                      action="scenario.save")] == [True, False]


def test_bundled_names_bad_names_and_invalid_scenarios_are_refused(stored,
                                                                   store_engine) -> None:
    _, page, settings = stored
    for data, reason in (
            (_scenario(name="miami-hurricane"),
             "'miami-hurricane' is the name of a bundled scenario"),
            (_scenario(name="../../etc/passwd"), "scenario name '../../etc/passwd' must be"),
            (_scenario(name="Embassy Row"), "scenario name 'Embassy Row' must be"),
            (_scenario(supersedes=["no-such-inject"]), "supersedes names 'no-such-inject'"),
            (_scenario(inject_id="flood-warning"), "duplicate inject_id")):
        message, origin = page.save_action(data, "miami-hurricane", settings=settings,
                                           engine=store_engine, actor="user:c", now=NOW)
        assert message.startswith("Not saved: ") and reason in message, (reason, message)
        assert origin is dash.no_update
    assert not (settings.data_path / "scenarios").exists()
    assert query_audit(store_engine, action="scenario") == []
    assert (BUNDLED["miami-hurricane"] == load_library()["miami-hurricane"])


def test_a_failed_write_leaves_no_file_and_no_audit(stored, store_engine, monkeypatch) -> None:
    _, _, settings = stored

    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "link", broken)  # a new name is linked into place
    with pytest.raises(OSError, match="disk full"):
        scenario_library.save_scenario(settings, store_engine, _scenario(), actor="user:c",
                                       now=NOW)
    folder = settings.data_path / "scenarios"
    assert list(folder.iterdir()) == []
    assert query_audit(store_engine, action="scenario.save") == []
    monkeypatch.undo()
    scenario_library.save_scenario(settings, store_engine, _scenario(), actor="user:c", now=NOW)
    before = (folder / "embassy-row-flood.geojson").read_bytes()
    monkeypatch.setattr(os, "replace", broken)  # an edited one replaces its file
    with pytest.raises(OSError, match="disk full"):
        scenario_library.save_scenario(settings, store_engine, _scenario(radius_km=9),
                                       actor="user:c", now=NOW, replace=True)
    assert [p.name for p in folder.iterdir()] == ["embassy-row-flood.geojson"]
    assert (folder / "embassy-row-flood.geojson").read_bytes() == before
    assert len(query_audit(store_engine, action="scenario.save")) == 1


def test_a_name_saved_meanwhile_is_not_overwritten(stored, store_engine, monkeypatch) -> None:
    _, _, settings = stored
    real_link = os.link

    def someone_else_first(source, target):
        Path(target).write_text("theirs", encoding="utf-8")
        return real_link(source, target)

    monkeypatch.setattr(os, "link", someone_else_first)
    with pytest.raises(scenario_library.SaveRefused, match="saved meanwhile"):
        scenario_library.save_scenario(settings, store_engine, _scenario(), actor="user:c",
                                       now=NOW)
    folder = settings.data_path / "scenarios"
    assert [p.name for p in folder.iterdir()] == ["embassy-row-flood.geojson"]
    assert (folder / "embassy-row-flood.geojson").read_text(encoding="utf-8") == "theirs"
    assert query_audit(store_engine, action="scenario.save") == []


def test_a_saved_scenario_is_in_the_library_and_plays_as_a_drill(stored, store_engine,
                                                                  checked_small_roster,
                                                                  fast_hashing) -> None:
    app, page, settings = stored
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=NOW, synthetic=True)
    create_user(store_engine, "coord", "coordinator", PASSWORD, actor="test", now=NOW)
    data = _scenario(radius_km=4)
    page.save_action(data, None, settings=settings, engine=store_engine, actor="user:coord",
                     now=NOW)
    merged = scenario_library.library(settings)
    assert set(merged) == set(BUNDLED) | {"embassy-row-flood"}
    assert scenario_library.is_authored(merged["embassy-row-flood"])
    assert not scenario_library.is_authored(merged["miami-hurricane"])
    # a broken file in the authored folder is skipped, not fatal
    (settings.data_path / "scenarios" / "broken.geojson").write_text("{", encoding="utf-8")
    assert set(scenario_library.library(settings)) == set(merged)

    client, _ = sign_in(app, "coord")
    client.get("/")
    drills_page = next(p for p in dash.page_registry.values() if p["path"] == "/drills")
    listed = _text(sys.modules[drills_page["module"]].layout())
    assert "embassy-row-flood (authored)" in listed and "Flood on Embassy Row" in listed
    assert 'href": "/drills/new' in listed
    # start it as the drills page does (the Start button, through the server)
    payload = _callback_payload(app, "..drills-location.href...drills-result.children..", {
        "drills-start.n_clicks": 1, "drills-scenario.value": "embassy-row-flood",
        "drills-speed.value": 60, "drills-name.value": "authored drill"})
    answer = client.post("/_dash-update-component", json=payload).get_json()["response"]
    href = answer["drills-location"]["href"]
    assert href.startswith("/drill/")
    drill_id = int(href.rsplit("/", 1)[1])
    services = Services.from_engine(store_engine, settings)
    later = datetime.now(timezone.utc) + timedelta(minutes=2)  # 120 scenario minutes
    view = drill_data.drill_view(services, drill_id, later)
    assert view.scenario == parse_scenario(data)
    assert [i.inject_id for i in view.fired] == ["flood-warning", "major-flood"]
    assert list(view.incidents["hazard_id"]) == [f"drill:{drill_id}:major-flood"]
    assert view.totals["missions"] > 0  # Embassy Row is in the circle
    # the same through store.drills.start_drill directly, from the merged library
    scenario = merged["embassy-row-flood"]
    drill = start_drill(store_engine, scenario_name=scenario.name,
                        scenario_json=json.dumps(scenario_to_geojson(scenario)),
                        name="direct", speed=60.0, actor="test", now=NOW)
    view = drill_data.drill_view(services, drill.drill_id, NOW + timedelta(seconds=30))
    assert [i.inject_id for i in view.fired] == ["flood-warning"]
    assert list(view.incidents["hazard_id"]) == [f"drill:{drill.drill_id}:flood-warning"]


# ------------------------------------------------------------------------------ the server


def test_through_the_server_coordinators_edit_and_save_and_display_is_refused(
        stored, store_engine, fast_hashing) -> None:
    app, _, settings = stored
    for role in ("display", "coordinator"):
        create_user(store_engine, role, role, PASSWORD, actor="test", now=NOW)
    app.server.test_client().get("/login")  # Dash sets up its callbacks on a first request
    data = _scenario(radius_km=4)
    header = {"scenario-editor-name.value": "embassy-row-flood",
              "scenario-editor-title.value": "Flood on Embassy Row",
              "scenario-editor-jurisdictions.value": ["DC"],
              "scenario-editor-duration.value": 180,
              "scenario-editor-author.value": "Exercise design team",
              "scenario-editor-description.value": "d", "scenario-editor-sources.value": "s"}
    draw = _callback_payload(app, EDIT, {
        **header, "scenario-editor-injects.data": [{"id": "row-1", "inject_id": "a",
                                                    "at_minutes": 0, "event": "Flood Warning",
                                                    "category": "flood",
                                                    "severity": "minor"}],
        "scenario-editor-injects.selected_rows": [0],
        "scenario-editor-map.relayoutData": {"shapes": [{
            "type": "path", "path": "M-77.1,38.85L-76.95,38.85L-76.95,38.95Z"}]}})
    draw["changedPropIds"] = ["scenario-editor-map.relayoutData"]
    check = _callback_payload(app, CHECK, {"scenario-editor-store.data": data,
                                           "scenario-editor-injects.selected_rows": [0]})
    save = _callback_payload(app, SAVE, {"scenario-editor-save.n_clicks": 1,
                                         "scenario-editor-store.data": data})
    display, _ = sign_in(app, "display")
    assert display.get("/drills/new").status_code == 403
    assert display.get("/drills/edit/miami-hurricane").status_code == 403
    router = _callback_payload(app, ".._pages_content.children..._pages_store.data..",
                               {"_pages_location.pathname": "/drills/new"})
    assert display.post("/_dash-update-component", json=router).status_code == 403
    for payload in (draw, check, save):
        assert display.post("/_dash-update-component", json=payload).status_code == 403
    assert not (settings.data_path / "scenarios").exists()

    coordinator, _ = sign_in(app, "coordinator")
    assert coordinator.get("/drills/new").status_code == 200
    assert coordinator.get("/drills/edit/miami-hurricane").status_code == 200
    page = coordinator.post("/_dash-update-component", json=router).get_data(as_text=True)
    assert ids.EDITOR_MAP in page and "drawclosedpath" in page
    answer = coordinator.post("/_dash-update-component", json=draw).get_json()["response"]
    store = answer[ids.EDITOR_STORE]["data"]
    assert store["features"][0]["geometry"]["coordinates"] == [
        [[-77.1, 38.85], [-76.95, 38.85], [-76.95, 38.95], [-77.1, 38.85]]]
    answer = coordinator.post("/_dash-update-component", json=check).get_json()["response"]
    assert answer[ids.EDITOR_SAVE]["disabled"] is False
    answer = coordinator.post("/_dash-update-component", json=save).get_json()["response"]
    assert answer[ids.EDITOR_ORIGIN]["data"] == "embassy-row-flood"
    assert load_library(settings.data_path / "scenarios")["embassy-row-flood"] == (
        parse_scenario(data))
    assert query_audit(store_engine, action="scenario.save")[0].actor == "user:coordinator"


# ------------------------------------------------------------------------------ the browser


@pytest.mark.browser
@pytest.mark.slow
def test_in_the_browser_a_drawn_outline_is_saved_and_offered_on_drills(tmp_path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser import LiveServer, chrome, console_errors, wait_for
    from tests.browser import sign_in as browser_sign_in

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(url)
    create_user(engine, "duty-coordinator", "coordinator", PASSWORD, actor="test", now=NOW)
    live = LiveServer(url, tmp_path)
    driver = None
    try:
        live.wait_ready()
        driver = chrome(tmp_path)
        browser_sign_in(driver, live.url, "duty-coordinator", PASSWORD,
                        "/drills/edit/potomac-flood-heat")
        wait_for(driver, "#scenario-editor-map .nsewdrag", 60)
        WebDriverWait(driver, 30).until(lambda d: "Ready to save" in d.find_element(
            By.ID, ids.EDITOR_CHECK).text)
        area = driver.find_element(By.CSS_SELECTOR, "#scenario-editor-map .nsewdrag")
        width, height = area.size["width"], area.size["height"]
        x_range, y_range = driver.execute_script(
            "const l = document.querySelector('#scenario-editor-map .js-plotly-plot')"
            "._fullLayout; return [l.xaxis.range, l.yaxis.range];")
        # drag a closed outline: a 60-pixel square whose top left is 30 px off the centre
        actions = ActionChains(driver).move_to_element_with_offset(area, -30, -30)
        actions.click_and_hold()
        for dx, dy in ((30, 0), (30, 0), (0, 30), (0, 30), (-30, 0), (-30, 0), (0, -30)):
            actions.move_by_offset(dx, dy)
        actions.move_by_offset(0, -29).release().perform()
        WebDriverWait(driver, 30).until(lambda d: "drawn area" in d.find_element(
            By.ID, ids.EDITOR_SHAPE_RESULT).text)
        WebDriverWait(driver, 30).until(lambda d: "Ready to save" in d.find_element(
            By.ID, ids.EDITOR_CHECK).text)
        driver.find_element(By.ID, ids.EDITOR_SAVE).click()
        WebDriverWait(driver, 30).until(lambda d: "Saved 'potomac-flood-heat-copy'" in
                                        d.find_element(By.ID, ids.EDITOR_RESULT).text)
        saved = load_library(tmp_path / "scenarios")["potomac-flood-heat-copy"]
        drawn = saved.inject("extreme-heat-warning").geometry
        # the square, in degrees: pixels from the plot area's top left through the axes
        per_x = (x_range[1] - x_range[0]) / width
        per_y = (y_range[1] - y_range[0]) / height
        left = x_range[0] + (width / 2 - 30) * per_x
        top = y_range[1] - (height / 2 - 30) * per_y
        expected = (left, top - 60 * per_y, left + 60 * per_x, top)
        for got, want in zip(drawn.bounds, expected, strict=True):
            assert abs(got - want) < 3 * max(per_x, per_y), (drawn.bounds, expected)
        others = BUNDLED["potomac-flood-heat"].injects[1:]
        assert saved.injects[1:] == others  # the other injects are kept as they were
        driver.get(f"{live.url}/drills")
        listed = wait_for(driver, f"#{ids.DRILLS_LIBRARY}").text
        assert "potomac-flood-heat-copy (authored)" in listed
        assert console_errors(driver) == []
    finally:
        if driver is not None:
            driver.quit()
        live.stop()
        engine.dispose()
