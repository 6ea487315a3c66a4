"""The incident-rules page: its layout and its save / reset / reload callback, called directly
(data first), then once through the server as an admin and as a coordinator."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone

import dash
import plotly.utils
import pytest
import shapely

from dashboard import ids
from dashboard.app import create_app
from dashboard.services import Services
from feeds.model import Hazard
from layers.incidents import DEFAULT_RULES, IncidentRule, rules_from_json, rules_to_json
from settings import Settings
from store.audit import query_audit
from store.feeds import replace_hazards
from store.rules import load_rules, save_rules
from store.users import create_user
from tests.dashboard.test_access import PASSWORD, _callback_payload, sign_in

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
CALLBACK = ("..rules-current.children...rules-result.children...rules-version.data..."
            "rules-editor.value..")
MINE = IncidentRule("include", sources=("nws",), events=("Gale Warning",),
                    note="Gales close the harbour office.")


def _hazards(now: datetime) -> list[Hazard]:
    later = now + timedelta(days=3)
    box = shapely.box(-77.2, 38.8, -76.9, 39.05)
    return [
        Hazard("nws:flood", "nws", "Flash Flood Warning", "flood", severity="severe",
               expires=later, geometry=box, geometry_method="polygon"),
        Hazard("nws:gale", "nws", "Gale Warning", "weather", severity="moderate",
               expires=later, properties={"ugc": ("ANZ535",), "same": ("073535",)}),
        Hazard("nws:advisory", "nws", "Wind Advisory", "weather", severity="minor",
               expires=later, geometry=box, geometry_method="polygon",
               properties={"ugc": ("DCZ001",)}),
    ]


@pytest.fixture
def page(store_engine, tmp_path):
    """The app over a store with three active hazards; the rules page module."""
    replace_hazards(store_engine, "nws", _hazards(datetime.now(timezone.utc)),
                    now=datetime.now(timezone.utc))
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    app = create_app(settings, Services.from_engine(store_engine, settings))
    # the module Dash imported when it built the app (importing it again under another name
    # would register the page twice)
    registered = next(p for p in dash.page_registry.values() if p["path"] == "/rules")
    return app, sys.modules[registered["module"]]


def _text(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder)


def test_the_page_is_for_admins_and_lists_the_rules_with_what_they_decide(page) -> None:
    _, rules = page
    registered = next(p for p in dash.page_registry.values() if p["path"] == "/rules")
    assert registered["min_role"] == "admin" and registered["name"] == "Incident rules"
    layout = _text(rules.layout())
    assert "Built-in defaults (version 0)" in layout
    for rule in DEFAULT_RULES:
        assert json.dumps(rule.note)[1:-1] in layout
    assert "source nws, marine only" in layout
    # of the three hazards: the flood is an incident, the gale marine only, the advisory minor
    assert "Active hazards now: 3; incidents: 1; filtered out: 2" in layout
    rows = json.loads(layout)
    editor = _find(rows, ids.RULES_EDITOR)
    assert rules_from_json(json.loads(editor["props"]["value"])) == DEFAULT_RULES
    assert editor["props"]["value"].count("\n") == len(DEFAULT_RULES) + 1  # a rule a line
    assert _find(rows, ids.RULES_VERSION)["props"]["data"] == 0


def _find(tree, component_id: str):
    if isinstance(tree, dict):
        if tree.get("props", {}).get("id") == component_id:
            return tree
        for value in tree.get("props", {}).values():
            found = _find(value, component_id)
            if found is not None:
                return found
    if isinstance(tree, list):
        for item in tree:
            found = _find(item, component_id)
            if found is not None:
                return found
    return None


def _act(rules, engine, action: str, text: str | None, version) -> tuple:
    return rules.rules_action(action, text, version, engine=engine, actor="user:admin",
                              now=NOW)


def test_save_stores_valid_rules_and_shows_the_new_version(page, store_engine) -> None:
    _, rules = page
    text = json.dumps(rules_to_json((MINE, *DEFAULT_RULES)))
    current, message, version, editor = _act(rules, store_engine, "save", text, 0)
    assert message == "Saved 5 rule(s) as version 1." and version == 1
    assert rules_from_json(json.loads(editor)) == (MINE, *DEFAULT_RULES)
    assert "Version 1, saved" in _text(current) and "by user:admin" in _text(current)
    assert "Active hazards now: 3; incidents: 2;" in _text(current)  # the gale, rescued
    assert load_rules(store_engine).rules == (MINE, *DEFAULT_RULES)
    assert query_audit(store_engine, action="rules.update")[0].actor == "user:admin"


def test_bad_text_or_rules_save_nothing_and_name_the_rule(page, store_engine) -> None:
    _, rules = page
    keep = dash.no_update
    current, message, version, editor = _act(rules, store_engine, "save", "[{", 0)
    assert (current, version, editor) == (keep, keep, keep)
    assert message.startswith("Not saved: the text is not JSON (line 1, column 3")
    bad = json.dumps([MINE.to_json(), {"action": "exclude", "sources": ["nws", "radio"],
                                       "note": "n"}, {"action": "exclude"}])
    current, message, version, editor = _act(rules, store_engine, "save", bad, 0)
    assert (current, version, editor) == (keep, keep, keep)
    shown = _text(message)
    assert "rule 2: sources must be chosen from nws, usgs" in shown and "'radio'" in shown
    assert "rule 3: note is required" in shown and "rule 1" not in shown
    _, message, _, _ = _act(rules, store_engine, "save", "[]", None)
    assert "Reload the page" in message
    assert load_rules(store_engine).is_default
    assert query_audit(store_engine, action="rules") == []


def test_a_concurrent_change_is_reported_not_overwritten(page, store_engine) -> None:
    _, rules = page
    save_rules(store_engine, (MINE,), "user:other", NOW)  # someone else, meanwhile
    mine = json.dumps(rules_to_json(DEFAULT_RULES[:1]))
    current, message, version, editor = _act(rules, store_engine, "save", mine, 0)
    assert "changed by user:other" in message and "nothing was saved" in message
    assert version is dash.no_update and editor is dash.no_update  # the text is kept
    assert "Version 1" in _text(current)  # the table shows what is stored now
    assert load_rules(store_engine).rules == (MINE,)
    # saving again from the same version still conflicts; loading the stored rules moves on
    assert "nothing was saved" in _act(rules, store_engine, "save", mine, 0)[1]
    _, message, version, editor = _act(rules, store_engine, "reload", mine, 0)
    assert message == "Loaded version 1." and version == 1
    assert rules_from_json(json.loads(editor)) == (MINE,)
    assert _act(rules, store_engine, "save", mine, version)[2] == 2


def test_reset_goes_back_to_the_defaults(page, store_engine) -> None:
    _, rules = page
    save_rules(store_engine, (MINE,), "user:admin", NOW)
    assert "nothing was saved" in _act(rules, store_engine, "reset", None, 0)[1]
    _, message, version, editor = _act(rules, store_engine, "reset", None, 1)
    assert message == "Reset to the built-in defaults (version 2)." and version == 2
    assert rules_from_json(json.loads(editor)) == DEFAULT_RULES
    assert load_rules(store_engine).rules == DEFAULT_RULES
    assert query_audit(store_engine, action="rules")[0].action == "rules.reset"


def test_through_the_server_admins_save_and_coordinators_are_refused(
        page, store_engine, fast_hashing) -> None:
    app, _ = page
    for role in ("coordinator", "admin"):
        create_user(store_engine, role, role, PASSWORD, actor="test", now=NOW)
    app.server.test_client().get("/login")  # Dash sets up its callbacks on a first request
    text = json.dumps(rules_to_json((MINE,)))
    payload = _callback_payload(app, CALLBACK, {"rules-save.n_clicks": 1,
                                                "rules-editor.value": text,
                                                "rules-version.data": 0})
    coordinator, _ = sign_in(app, "coordinator")
    assert coordinator.get("/rules").status_code == 403
    assert coordinator.post("/_dash-update-component", json=payload).status_code == 403
    assert load_rules(store_engine).is_default
    admin, _ = sign_in(app, "admin")
    assert admin.get("/rules").status_code == 200
    response = admin.post("/_dash-update-component", json=payload)
    assert response.status_code == 200
    assert "Saved 1 rule(s) as version 1." in response.get_data(as_text=True)
    stored = load_rules(store_engine)
    assert stored.rules == (MINE,) and stored.updated_by == "user:admin"
