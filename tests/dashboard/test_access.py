"""Access control: every route and every Dash callback, as every kind of visitor.

The store holds a real roster; every response a display session receives is searched for the
people's names, phones, e-mails and residence addresses.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone

import dash
import pandas as pd
import pytest
import shapely
from dash import Input, Output

from dashboard import auth
from dashboard.app import create_app
from dashboard.services import Services, board_view, current
from feeds.model import Hazard
from layers.scenarios import load_library, scenario_to_geojson
from settings import Settings
from store.audit import query_audit
from store.drills import start_drill
from store.feeds import replace_hazards
from store.outreach import open_board
from store.roster import replace_roster
from store.tables import rate_limits
from store.users import create_user, issue_token, revoke_token, set_disabled, set_role

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery staple"
PUBLIC = auth.PUBLIC

# Who may request each route. A new route must be added here (the test fails otherwise), so
# adding one is a decision, not an accident. PAGE and CALLBACK routes are checked per page
# and per callback below.
ROUTES = {
    "/login": PUBLIC,
    "/assets/<path:filename>": PUBLIC,
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": PUBLIC,
    "/_favicon.ico": PUBLIC,
    "/logout": "display",
    "/_dash-layout": "display",
    "/_dash-dependencies": "display",
    "/_reload-hash": "display",
    "/": auth.PAGE,
    "/<path:path>": auth.PAGE,
    "/_dash-update-component": auth.CALLBACK,
    "/admin/audit.csv": "admin",
    "/exports/calllist.csv": "coordinator",
    "/exports/calllist.xlsx": "coordinator",
    "/api/v1/openapi.json": "display",
    "/api/v1/incidents": "display",
    "/api/v1/incidents/<keys>": "display",
    "/api/v1/incidents/<keys>/missions": "coordinator",
    "/api/v1/incidents/<keys>/people": "coordinator",
    "/api/v1/feeds": "display",
    "/api/v1/boards": "coordinator",
    "/api/v1/boards/<int:board_id>": "coordinator",
    "/api/v1/boards/<int:board_id>/close": "coordinator",
    "/api/v1/boards/<int:board_id>/targets": "coordinator",
    "/api/v1/boards/<int:board_id>/targets/<kind>/<target_id>/status": "coordinator",
    "/api/v1/boards/<int:board_id>/targets/<kind>/<target_id>/history": "coordinator",
    "/api/v1/<path:rest>": "display",  # a JSON 404 for any other path under /api/v1
    "/exports/board/<int:board_id>.csv": "coordinator",
    "/exports/board/<int:board_id>.xlsx": "coordinator",
    "/exports/board/<int:board_id>/callsheet.html": "coordinator",
    "/exports/board/<int:board_id>/duty.vcf": "coordinator",
    "/wall/map/<panel>.svg": "display",
    "/drill/<int:drill_id>/map.svg": "coordinator",
    "/healthz": PUBLIC,
    "/metrics": "display",
    "/exports/drill/<int:drill_id>/report.html": "coordinator",
    "/exports/drill/<int:drill_id>/report.csv": "coordinator",
}
# The API's routes as concrete URLs ({target}: a household board 1 has to contact).
API_URLS = {
    "/api/v1/incidents/<keys>": "/api/v1/incidents/nws:test-dc",
    "/api/v1/incidents/<keys>/missions": "/api/v1/incidents/nws:test-dc/missions",
    "/api/v1/incidents/<keys>/people": "/api/v1/incidents/nws:test-dc/people",
    "/api/v1/boards/<int:board_id>": "/api/v1/boards/1",
    "/api/v1/boards/<int:board_id>/close": "/api/v1/boards/1/close",
    "/api/v1/boards/<int:board_id>/targets": "/api/v1/boards/1/targets",
    "/api/v1/boards/<int:board_id>/targets/<kind>/<target_id>/status":
        "/api/v1/boards/1/targets/household/{target}/status",
    "/api/v1/boards/<int:board_id>/targets/<kind>/<target_id>/history":
        "/api/v1/boards/1/targets/household/{target}/history",
    "/api/v1/<path:rest>": "/api/v1/no-such-endpoint",
}
PAGES = {"/": "display", "/admin": "admin", "/no-such-page": "display",
         "/incident/none": "coordinator", "/incident/nws:test-dc": "coordinator",
         "/rules": "admin", "/outreach": "coordinator", "/outreach/none": "coordinator",
         "/outreach/1": "coordinator", "/wall": "display", "/drills": "coordinator",
         "/drill/1": "coordinator", "/drill/none": "coordinator"}
PAGES.update({"/drills/new": "coordinator", "/drills/edit/miami-hurricane": "coordinator"})
OVERVIEW_REFRESH = ("..overview-status.children...overview-kpis.children...overview-panel."
                    "children...overview-select.options...overview-map.figure..."
                    "overview-map-key.data..")
CALLBACKS = {
    "auth-location.href": "display",
    "..admin-user-result.children...admin-users.children..": "admin",
    "..admin-token-result.children...admin-tokens.children..": "admin",
    "..admin-audit-table-wrap.children...admin-audit-export.href..": "admin",
    OVERVIEW_REFRESH: "display",
    "..incident-people.data...incident-people.page_count...incident-people-count.children..":
        "coordinator",
    "incident-location.href": "coordinator",
    "..rules-current.children...rules-result.children...rules-version.data...rules-editor.value..":
        "admin",
    "..outreach-table.data...outreach-table.page_count...outreach-count.children..."
    "outreach-progress.children...outreach-notices.children...outreach-version.data..":
        "coordinator",
    "..outreach-selected.children...outreach-history.children..": "coordinator",
    "outreach-result.children": "coordinator",
    "outreach-closed.children": "coordinator",
    "incident-board-location.href": "coordinator",
    ".._pages_content.children..._pages_store.data..": auth.PAGE,
    "..wall-banners.children...wall-kpis.children...wall-incidents.children...wall-feeds."
    "children...wall-beat.data...wall-maps.children...wall-closeups.data...wall-maps-key.data..":
        "display",
    "..drills-location.href...drills-result.children..": "coordinator",
    "..drill-status.children...drill-timeline.children...drill-incidents.children...drill-boards."
    "children...drill-map.src..": "coordinator",
    "drill-stop-confirm.displayed": "coordinator",
    "..drill-result.children...drill-location.href..": "coordinator",
    "..scenario-editor-injects.data...scenario-editor-injects.selected_rows..."
    "scenario-editor-store.data...scenario-editor-shape-result.children..."
    "scenario-editor-upload-pick.options...scenario-editor-upload-pick.value..."
    "scenario-editor-upload-choice.hidden..": "coordinator",
    "..scenario-editor-check.children...scenario-editor-save.disabled...scenario-editor-map."
    "figure...scenario-editor-figure-key.data..": "coordinator",
    "..scenario-editor-result.children...scenario-editor-origin.data..": "coordinator",
}
RANK = {None: 0, "display": 1, "coordinator": 2, "admin": 3}
# visitors: (name, role); display comes three ways: a password user, a token link, a bearer
VISITORS = [("anonymous", None), ("display", "display"), ("wall", "display"),
            ("bearer", "display"), ("coordinator", "coordinator"), ("admin", "admin")]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def secured(store_engine, checked_small_roster, tmp_path, fast_hashing):
    """An app over a store with a roster, one user per role and a display token."""
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test", now=NOW,
                   synthetic=True)
    for role in ("display", "coordinator", "admin"):
        create_user(store_engine, role, role, PASSWORD, actor="test", now=NOW)
    _, secret = issue_token(store_engine, "ops wall", actor="test", now=NOW)
    # one hazard over Washington, so the incident page and exports hold personal data
    replace_hazards(store_engine, "nws", [Hazard(
        "nws:test-dc", "nws", "Flash Flood Warning", "flood", severity="severe",
        expires=NOW + timedelta(days=3), geometry=shapely.box(-77.2, 38.8, -76.9, 39.05),
        geometry_method="polygon", area_desc="District of Columbia")], now=NOW)
    # an outreach board over it (board 1), so the board exports hold personal data
    board, _ = open_board(store_engine, ["nws:test-dc"], name="DC flood", actor="test",
                          now=NOW)
    assert board.board_id == 1, "the board export URLs below name board 1"
    # a drill (drill 1), so the drill page and its map have something to show
    scenario = load_library()["potomac-flood-heat"]
    drill = start_drill(store_engine, scenario_name=scenario.name,
                        scenario_json=json.dumps(scenario_to_geojson(scenario)),
                        name="access drill", speed=60.0, actor="test",
                        now=datetime.now(timezone.utc) - timedelta(minutes=1))
    assert drill.drill_id == 1, "the drill URLs below name drill 1"
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    app = create_app(settings, Services.from_engine(store_engine, settings))
    clock = Clock()
    app.server.extensions[auth.EXTENSION].clock = clock
    return app, secret, clock


def _csrf(client) -> str:
    html = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(app, username: str, password: str = PASSWORD, next_path: str = "/"):
    client = app.server.test_client()
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf": _csrf(client), "next": next_path})
    return client, response


def visitor(app, name: str, secret: str):
    """A test client signed in as ``name`` (see VISITORS), plus headers to send."""
    if name == "anonymous":
        return app.server.test_client(), {}
    if name == "wall":
        client = app.server.test_client()
        response = client.get(f"/?token={secret}")
        assert response.status_code == 302 and response.headers["Location"] == "/"
        return client, {}
    if name == "bearer":
        return app.server.test_client(), {"Authorization": f"Bearer {secret}"}
    client, response = sign_in(app, name)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client, {}


def personal_values(people: pd.DataFrame) -> list[str]:
    values = []
    for column in ("name", "phone", "email", "address"):
        values += [str(v) for v in people[column] if v]
    return sorted(set(values))


def assert_no_personal_data(body: str, values: list[str], where: str) -> None:
    leaked = [v for v in values if v in body]
    assert not leaked, f"{where}: personal data in the response ({len(leaked)} values)"


def _concrete_urls(app, rule) -> list[str]:
    if rule.rule == "/assets/<path:filename>":
        return ["/assets/style.css"]
    if rule.rule.startswith("/_dash-component-suites/"):
        package, paths = sorted(app.registered_paths.items())[0]
        return [f"/_dash-component-suites/{package}/{sorted(paths)[0]}"]
    if rule.rule == "/<path:path>":
        return [p for p in PAGES if p != "/"]
    if rule.rule.startswith("/exports/calllist."):
        return [f"{rule.rule}?incidents=nws:test-dc"]
    if rule.rule == "/drill/<int:drill_id>/map.svg":
        return ["/drill/1/map.svg"]
    if rule.rule.startswith("/exports/drill/<int:drill_id>/"):
        return [rule.rule.replace("<int:drill_id>", "1")]
    if rule.rule == "/wall/map/<panel>.svg":
        return ["/wall/map/conus.svg", "/wall/map/closeup-nws:test-dc.svg"]
    if rule.rule.startswith("/exports/board/<int:board_id>"):
        return [rule.rule.replace("<int:board_id>", "1")]
    if rule.rule in API_URLS:
        rows = board_view(current(), 1, NOW).rows
        household = rows.loc[rows["target_kind"] == "household", "target_id"].iloc[0]
        return [API_URLS[rule.rule].format(target=household)]
    return [rule.rule]


def _expected(role_needed: str | None, visitor_role: str | None, page: bool = False) -> set[int]:
    if role_needed == PUBLIC:
        return {200, 302, 304}
    if visitor_role is None:
        return {302} if page else {401}
    if RANK[visitor_role] < RANK[role_needed]:
        return {403}
    return {200, 204}


def _callback_payload(app, key: str, values: dict[str, object]) -> dict[str, object]:
    entry = app.callback_map[key]
    outputs = entry["output"]
    if isinstance(outputs, (list, tuple)):
        out: object = [{"id": o.component_id, "property": o.component_property} for o in outputs]
    else:
        component, prop = str(outputs).rsplit(".", 1)
        out = {"id": component, "property": prop}

    def fill(items):
        return [{"id": i["id"], "property": i["property"],
                 "value": values.get(f"{i['id']}.{i['property']}")} for i in items]

    inputs = fill(entry["inputs"])
    return {"output": key, "outputs": out, "inputs": inputs, "state": fill(entry["state"]),
            "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}


# values posted to each callback: enough for it to do its work and answer with data
CALLBACK_VALUES = {
    "admin-user-add.n_clicks": 1, "admin-user-name.value": "new-user",
    "admin-user-role.value": "coordinator", "admin-token-issue.n_clicks": 1,
    "admin-token-name.value": "new wall", "overview-refresh.n_intervals": 1,
    "auth-sign-out.n_clicks": 1, "_pages_location.search": "",
    "incident-keys.data": ["nws:test-dc"], "incident-people.page_current": 0,
    "incident-people.page_size": 50, "incident-selection.value": ["nws:test-dc", "x"],
    "incident-open-board.n_clicks": 1, "outreach-board.data": 1, "outreach-view.value": "all",
    "outreach-group.value": "country", "outreach-table.page_current": 0,
    "outreach-save.n_clicks": 1, "outreach-status.value": "attempted",
    "wall-refresh.n_intervals": 1, "drills-start.n_clicks": 1,
    "drills-scenario.value": "miami-hurricane", "drills-speed.value": 60,
    "drills-name.value": "access check drill", "drill-id.data": 1,
    "drill-refresh.n_intervals": 1, "drill-pause.n_clicks": 1, "drill-stop.n_clicks": 1,
    "scenario-editor-name.value": "access-check", "scenario-editor-title.value": "Access check",
    "scenario-editor-jurisdictions.value": ["DC"], "scenario-editor-duration.value": 60,
    "scenario-editor-author.value": "Exercise design team",
    "scenario-editor-description.value": "A flood warning over the District.",
    "scenario-editor-sources.value": "Training approximation: a box drawn by hand.",
    "scenario-editor-injects.data": [{
        "id": "row-1", "inject_id": "flood", "at_minutes": 0, "event": "Flood Warning",
        "category": "flood", "severity": "moderate",
        "geometry": json.dumps(shapely.geometry.mapping(shapely.box(-77.1, 38.85, -76.95,
                                                                    38.95)))}],
    "scenario-editor-injects.selected_rows": [0], "scenario-editor-save.n_clicks": 1,
    "scenario-editor-store.data": {
        "type": "FeatureCollection",
        "scenario": {"name": "access-check", "title": "Access check", "description": "d",
                     "jurisdictions": ["DC"], "duration_minutes": 60,
                     "author": "Exercise design team", "sources": "Training approximation."},
        "features": [{"type": "Feature", "properties": {
            "inject_id": "flood", "at_minutes": 0, "event": "Flood Warning",
            "category": "flood", "severity": "moderate"},
            "geometry": shapely.geometry.mapping(shapely.box(-77.1, 38.85, -76.95, 38.95))}]},
    "scenario-editor-origin.data": "access-check",
}


def _callback_cases(app) -> list[tuple[str, str, dict[str, object]]]:
    """(key, role needed, values) for every server callback; the router once per page."""
    cases = []
    for key, entry in app.callback_map.items():
        if "callback" not in entry:
            continue  # clientside: runs in the browser only (the gate refuses it, see below)
        if CALLBACKS[key] == auth.PAGE:
            for path, role in PAGES.items():
                cases.append((key, role, {**CALLBACK_VALUES, "_pages_location.pathname": path}))
        else:
            cases.append((key, CALLBACKS[key], CALLBACK_VALUES))
    # signing out ends the session: keep it for last
    return sorted(cases, key=lambda case: case[0] == "auth-location.href")


def test_every_route_and_callback_as_every_visitor(secured, small_roster) -> None:
    app, secret, _ = secured
    _, people = small_roster
    values = personal_values(people)
    app.server.test_client().get("/login")  # Dash registers its page router on a first request
    rules = {rule.rule: rule for rule in app.server.url_map.iter_rules()}
    assert set(rules) == set(ROUTES), "a route was added or removed: declare it in ROUTES"
    state = app.server.extensions[auth.EXTENSION]
    for rule, role in ROUTES.items():
        assert state.route_policy(rule) == role, rule
    server_callbacks = {k for k, v in app.callback_map.items() if "callback" in v}
    assert server_callbacks == set(CALLBACKS), "a callback was added: declare it in CALLBACKS"
    for key, declared in CALLBACKS.items():
        if declared != auth.PAGE:
            assert auth.callback_role(app.callback_map[key]["callback"]) == declared
    for page in dash.page_registry.values():
        assert page.get("min_role") == PAGES[page["path"]], page["path"]

    matrix: dict[str, dict[str, int]] = {}
    for name, role in VISITORS:
        client, headers = visitor(app, name, secret)
        for rule_text, rule in sorted(rules.items()):
            needed = ROUTES[rule_text]
            for method in sorted(rule.methods & {"GET", "POST"}):
                if needed == auth.CALLBACK:
                    continue  # every callback is walked below
                for url in _concrete_urls(app, rule):
                    response = client.open(url, method=method, headers=headers,
                                           buffered=True)
                    if needed == auth.PAGE:
                        expected = _expected(PAGES[url], role, page=True)
                    elif rule_text.startswith("/api/") and role is not None and (
                            method == "POST" or rule_text.endswith("<path:rest>")):
                        # a POST: display is below the role, and a cookie POST without
                        # Origin or X-Requested-With is refused (CSRF); any other path: 404
                        expected = {403} if method == "POST" else {404}
                    elif method == "POST" and (needed == PUBLIC or role is not None):
                        expected = {400}  # a form post without its form token: refused
                    else:
                        expected = _expected(needed, role)
                    assert response.status_code in expected, (name, method, url,
                                                              response.status_code)
                    matrix.setdefault(f"{method} {url}", {})[name] = response.status_code
                    if role == "display":
                        assert_no_personal_data(response.get_data().decode("utf-8", "replace"),
                                                values, f"{name} {method} {url}")
        for key, needed, posted in _callback_cases(app):
            payload = _callback_payload(app, key, posted)
            response = client.post("/_dash-update-component", json=payload, headers=headers)
            expected = _expected(needed, role)
            label = key if needed != auth.PAGE and "_pages" not in key else \
                f"router {posted['_pages_location.pathname']}"
            assert response.status_code in expected, (name, label, response.status_code,
                                                      response.get_data(as_text=True)[:300])
            if response.status_code == 200:
                assert response.get_json()["response"], (name, label)
            matrix.setdefault(f"callback {label}", {})[name] = response.status_code
            if role == "display":
                assert_no_personal_data(response.get_data(as_text=True), values,
                                        f"{name} callback {label}")
    # the overview really rendered data for the display visitors (counts of this roster)
    assert matrix["callback router /"] == {"anonymous": 401, "display": 200, "wall": 200,
                                           "bearer": 200, "coordinator": 200, "admin": 200}
    assert matrix["callback router /admin"]["coordinator"] == 403
    assert matrix["GET /admin/audit.csv"]["display"] == 403
    exports = matrix["GET /exports/calllist.csv?incidents=nws:test-dc"]
    assert exports["coordinator"] == 200 and exports["wall"] == exports["bearer"] == 403
    assert matrix["callback router /incident/nws:test-dc"]["coordinator"] == 200
    assert matrix["callback router /incident/nws:test-dc"]["display"] == 403
    people = matrix["GET /api/v1/incidents/nws:test-dc/people"]
    assert people["coordinator"] == people["admin"] == 200
    assert people["display"] == people["wall"] == people["bearer"] == 403
    assert matrix["GET /api/v1/incidents"]["bearer"] == 200
    assert matrix["GET /api/v1/boards/1/targets"]["coordinator"] == 200
    logging.getLogger(__name__).info("access matrix: %s", json.dumps(matrix, sort_keys=True))


def test_overview_for_a_display_session_has_counts_and_no_people(secured, small_roster) -> None:
    app, secret, _ = secured
    _, people = small_roster
    client, _ = visitor(app, "wall", secret)  # its first request sets up Dash's page router
    payload = _callback_payload(app, ".._pages_content.children..._pages_store.data..",
                                {"_pages_location.pathname": "/", "_pages_location.search": ""})
    body = client.post("/_dash-update-component", json=payload).get_data(as_text=True)
    assert f"{len(people):,}" in body and "SYNTHETIC DEMO DATA" in body
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "Administration" not in layout and "(display)" in layout
    assert_no_personal_data(body + layout, personal_values(people), "wall overview")


def test_malformed_or_clientside_callbacks_are_refused(secured) -> None:
    app, _, _ = secured
    client, _ = sign_in(app, "admin")
    client.get("/")
    payload = _callback_payload(app, "incident-location.href", CALLBACK_VALUES)
    swapped = {**payload, "inputs": [{"id": "admin-user-name", "property": "value",
                                      "value": "x"}]}
    for body in ({"output": "no-such.children"}, {**payload, "output": "_pages_dummy.children"},
                 swapped, {"output": None}):
        assert client.post("/_dash-update-component", json=body).status_code == 400
    assert client.post("/_dash-update-component", data="x",
                       content_type="text/plain").status_code == 400
    # the router judges the path Dash will render, whatever else is posted
    router = _callback_payload(app, ".._pages_content.children..._pages_store.data..",
                               {"_pages_location.pathname": "/admin"})
    coordinator, _ = sign_in(app, "coordinator")
    assert coordinator.post("/_dash-update-component", json=router).status_code == 403
    # a cross-site POST is refused even with a session
    assert client.post("/_dash-update-component", json=payload,
                       headers={"Origin": "https://evil.example"}).status_code == 403


def test_undeclared_routes_callbacks_and_pages_need_admin(secured) -> None:
    app, _, _ = secured
    app.server.add_url_rule("/undeclared", "undeclared", lambda: "secret")
    app.callback(Output("undeclared-out", "children"), Input("undeclared-in", "n_clicks"))(
        lambda n: "secret")
    page = {"module": "pages.undeclared", "path": "/undeclared-page", "path_template": None,
            "name": "x", "title": "x", "layout": lambda: "secret"}
    dash.page_registry["pages.undeclared"] = page
    try:
        payload = _callback_payload(app, "undeclared-out.children",
                                    {"undeclared-in.n_clicks": 1})
        for name, expected in (("coordinator", 403), ("admin", 200)):
            client, _ = sign_in(app, name)
            assert client.get("/undeclared").status_code == expected
            assert client.post("/_dash-update-component", json=payload).status_code == expected
            assert client.get("/undeclared-page").status_code == expected
        assert app.server.test_client().get("/undeclared").status_code == 401
        assert auth.page_role(app, "/undeclared-page") == "admin"
    finally:
        del dash.page_registry["pages.undeclared"]


def test_revoked_token_and_disabled_user_stop_at_once(secured, store_engine) -> None:
    app, secret, _ = secured
    wall, _ = visitor(app, "wall", secret)
    bearer = app.server.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert wall.get("/_dash-layout").status_code == 200
    assert bearer.get("/_dash-layout", headers=headers).status_code == 200
    revoke_token(store_engine, 1, actor="test", now=NOW)
    assert wall.get("/_dash-layout").status_code == 401
    assert bearer.get("/_dash-layout", headers=headers).status_code == 401
    assert wall.get(f"/?token={secret}").status_code == 401
    assert {"token.signin", "token.failed", "token.revoke"} <= {
        e.action for e in query_audit(store_engine, action="token")}

    coordinator, _ = sign_in(app, "coordinator")
    assert coordinator.get("/_dash-layout").status_code == 200
    set_disabled(store_engine, "coordinator", True, actor="test", now=NOW)
    assert coordinator.get("/_dash-layout").status_code == 401
    admin, _ = sign_in(app, "admin")
    set_role(store_engine, "admin", "display", actor="test", now=NOW)
    assert admin.get("/admin/audit.csv").status_code == 401  # the old session has ended
    admin, _ = sign_in(app, "admin")
    assert admin.get("/admin/audit.csv").status_code == 403  # and the new one is display


def test_repeated_bad_sign_ins_lock_the_account_and_are_audited(secured, store_engine) -> None:
    app, _, _ = secured
    for _ in range(5):  # MISSIONWATCH_SIGNIN_LOCKOUT_FAILURES
        _, response = sign_in(app, "admin", "not the password")
        assert response.status_code == 401
    _, response = sign_in(app, "admin")  # the right password, but locked
    assert response.status_code == 401
    failed = query_audit(store_engine, action="signin.failed")
    assert [e.detail["reason"] for e in reversed(failed)] == ["bad_password"] * 5 + ["locked"]
    assert query_audit(store_engine, action="user.locked")
    clock = app.server.extensions[auth.EXTENSION].clock
    clock.now = NOW + timedelta(minutes=16)
    _, response = sign_in(app, "admin")
    assert response.status_code == 302


def test_sign_in_attempts_are_rate_limited_per_address(store_engine, tmp_path,
                                                       fast_hashing) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path), signin_rate_limit="3 per minute")
    app = create_app(settings, Services.from_engine(store_engine, settings))
    statuses = [sign_in(app, f"user{i}", "whatever password")[1].status_code for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert len(query_audit(store_engine, action="signin.throttled")) == 1  # once a minute
    assert len(query_audit(store_engine, action="signin.failed")) == 3


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(store_engine, tmp_path,
                                                                fast_hashing) -> None:
    def statuses(trusted: int) -> list[int]:
        settings = Settings.from_env({}, data_dir=str(tmp_path), trusted_proxies=trusted,
                                     signin_rate_limit="2 per minute")
        app = create_app(settings, Services.from_engine(store_engine, settings))
        client = app.server.test_client()
        out = []
        for i in range(4):  # four people behind one proxy, each from an address of their own
            out.append(client.post("/login", data={
                "username": f"user{i}", "password": "whatever", "csrf": _csrf(client)},
                headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code)
        return out

    assert statuses(trusted=1) == [401, 401, 401, 401]
    store_engine.dispose()
    with store_engine.begin() as connection:
        connection.execute(rate_limits.delete())
    assert statuses(trusted=0) == [401, 401, 429, 429]  # the header is not believed


def test_sessions_end_when_idle_or_old_and_refreshes_are_not_activity(secured) -> None:
    app, _, clock = secured
    client, _ = sign_in(app, "coordinator")
    client.get("/")
    refresh = _callback_payload(app, OVERVIEW_REFRESH, CALLBACK_VALUES)
    clock.now = NOW + timedelta(minutes=20)
    assert client.post("/_dash-update-component", json=refresh).status_code == 200
    clock.now = NOW + timedelta(minutes=31)  # 31 min since the last *user* activity
    assert client.post("/_dash-update-component", json=refresh).status_code == 401
    assert client.get("/").status_code == 302

    clock.now = NOW
    client, _ = sign_in(app, "coordinator")
    for minutes in range(20, 12 * 60, 20):  # active every 20 minutes...
        clock.now = NOW + timedelta(minutes=minutes)
        assert client.get("/_dash-layout").status_code == 200
    clock.now = NOW + timedelta(hours=12, minutes=1)  # ...but no longer than 12 hours
    assert client.get("/_dash-layout").status_code == 401


def test_sign_out_ends_the_session_and_next_is_local_only(secured) -> None:
    app, _, _ = secured
    client, response = sign_in(app, "coordinator", next_path="//evil.example/x")
    assert response.headers["Location"] == "/"
    _, response = sign_in(app, "coordinator", next_path="/admin")
    assert response.headers["Location"] == "/admin"
    csrf = re.search(r'name="csrf" value="([^"]+)"',
                     client.get("/login?next=/").get_data(as_text=True))
    assert csrf is None  # signed in: /login sends you on
    copied = client.get_cookie("missionwatch_session").value
    response = client.post("/_dash-update-component", json=_callback_payload(
        app, "auth-location.href", CALLBACK_VALUES))
    assert response.get_json()["response"]["auth-location"]["href"] == "/login"
    assert client.get("/_dash-layout").status_code == 401
    # a copy of the old cookie is dead too: sign-out ends the user's sessions in the store
    other = app.server.test_client()
    other.set_cookie("missionwatch_session", copied)
    assert other.get("/_dash-layout").status_code == 401


def test_security_headers_and_cookie_flags(secured, store_engine, tmp_path) -> None:
    app, _, _ = secured
    client = app.server.test_client()
    response = client.get("/login")
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    for part in ("default-src 'self'", "worker-src 'self' blob:", "img-src 'self' data: blob:",
                 "frame-ancestors 'none'", "object-src 'none'", "'sha256-"):
        assert part in csp
    assert "'unsafe-eval'" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers  # loopback over http
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # on any other address the cookie is Secure (HTTPS only) unless configured otherwise
    settings = Settings.from_env({}, data_dir=str(tmp_path), host="0.0.0.0")
    remote = create_app(settings, Services.from_engine(store_engine, settings))
    response = remote.server.test_client().get("/login")
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers
    assert remote.server.test_client().get("/").status_code == 302  # never without sign-in


def test_audit_log_export_is_admin_only_and_audited(secured, store_engine) -> None:
    app, _, _ = secured
    coordinator, _ = sign_in(app, "coordinator")
    assert coordinator.get("/admin/audit.csv").status_code == 403
    admin, _ = sign_in(app, "admin")
    response = admin.get("/admin/audit.csv?action=signin")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "event_id,at,actor,action,detail" and len(lines) == 3  # 2 sign-ins
    export = query_audit(store_engine, action="audit.export")[0]
    assert export.actor == "user:admin" and export.detail["rows"] == 2
    assert export.detail["filters"]["action"] == "signin"
    assert admin.get("/admin/audit.csv?since=yesterday").status_code == 400
    denied = query_audit(store_engine, action="access.denied")
    assert denied and denied[0].actor == "user:coordinator"


def test_admin_page_manages_users_and_tokens(secured, store_engine) -> None:
    app, _, _ = secured
    admin, _ = sign_in(app, "admin")
    admin.get("/")
    add = _callback_payload(app, "..admin-user-result.children...admin-users.children..",
                            CALLBACK_VALUES)
    result = admin.post("/_dash-update-component", json=add).get_json()["response"]
    message, code = result["admin-user-result"]["children"]
    assert message.startswith("Added new-user (coordinator)")
    _, response = sign_in(app, "new-user", code["props"]["children"])  # the password shown once
    assert response.status_code == 302
    issue = _callback_payload(app, "..admin-token-result.children...admin-tokens.children..",
                              CALLBACK_VALUES)
    text = json.dumps(admin.post("/_dash-update-component", json=issue).get_json())
    secret = re.search(r"mwd_[A-Za-z0-9_-]+", text).group(0)
    wall = app.server.test_client()
    assert wall.get(f"/?token={secret}").status_code == 302
    actions = {e.action for e in query_audit(store_engine)}
    assert {"user.add", "token.issue", "token.signin"} <= actions


def test_no_passwords_tokens_or_names_in_logs(secured, small_roster, caplog) -> None:
    app, secret, _ = secured
    caplog.set_level(logging.DEBUG)
    sign_in(app, "coordinator")
    sign_in(app, "coordinator", "a wrong password")
    visitor(app, "wall", secret)
    app.server.test_client().get("/", headers={"Authorization": "Bearer mwd_bogus"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # sign-ins are logged, by id
    for secret_text in (PASSWORD, "a wrong password", secret, "mwd_bogus", "coordinator\n"):
        assert secret_text not in logged
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1,
                               '"GET /?token=%s HTTP/1.1" 302', (secret,), None)
    auth.RedactTokens().filter(record)
    assert secret not in record.getMessage() and "token=[redacted]" in record.getMessage()


def test_session_key_file_is_private_and_kept(tmp_path) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"))
    key = auth.load_secret_key(settings)
    path = tmp_path / "data" / "secret_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert auth.load_secret_key(settings) == key and len(key) >= 32
    configured = Settings.from_env({"MISSIONWATCH_SECRET_KEY": "k" * 40},
                                   data_dir=str(tmp_path / "other"))
    assert auth.load_secret_key(configured) == "k" * 40
    assert "k" * 40 not in repr(configured)
