"""The JSON API /api/v1: every endpoint, its roles, errors, paging, conflicts and retries.

The store holds a real roster and one hazard over Washington; every answer a display user or
token receives is searched for the people's names, phones, e-mails and addresses.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import shapely

from dashboard import api, auth
from dashboard.app import create_app
from dashboard.services import Services
from feeds.model import Hazard
from settings import Settings
from store.audit import query_audit
from store.feeds import replace_hazards
from store.outreach import close_board
from store.roster import replace_roster
from store.users import (
    create_user,
    issue_api_token,
    issue_token,
    revoke_token,
    set_disabled,
    set_role,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery staple"
DC = "nws:test-dc"
V1 = "/api/v1"
JSON_CT = {"Content-Type": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _hazard(hazard_id: str, severity: str, box: tuple[float, float, float, float],
            event: str = "Flash Flood Warning") -> Hazard:
    return Hazard(hazard_id, "nws", event, "flood", severity=severity,
                  expires=NOW + timedelta(days=3), geometry=shapely.box(*box),
                  geometry_method="polygon", area_desc="District of Columbia")


@pytest.fixture
def env(store_engine, checked_small_roster, tmp_path, fast_hashing):
    """An app over a roster, one hazard over DC (an incident) and a minor one (filtered out by
    the default rules); users per role, an API token for coordinator ana, a display token."""
    missions, people = checked_small_roster
    replace_roster(store_engine, missions, people, source="test roster", actor="test", now=NOW,
                   synthetic=True)
    for role in ("display", "coordinator", "admin"):
        create_user(store_engine, role, role, PASSWORD, actor="test", now=NOW)
    create_user(store_engine, "ana", "coordinator", PASSWORD, actor="test", now=NOW)
    wall, wall_secret = issue_token(store_engine, "ops wall", actor="test", now=NOW)
    token, secret = issue_api_token(store_engine, "ana", "script", actor="test", now=NOW)
    replace_hazards(store_engine, "nws", [
        _hazard(DC, "severe", (-77.2, 38.8, -76.9, 39.05)),
        _hazard("nws:test-minor", "minor", (-77.1, 38.85, -77.0, 38.95), "Flood Advisory"),
    ], now=NOW)
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    app = create_app(settings, Services.from_engine(store_engine, settings))
    clock = Clock()
    app.server.extensions[auth.EXTENSION].clock = clock
    app.server.extensions[api.EXTENSION].clock = clock

    class Env:
        pass

    e = Env()
    e.app, e.engine, e.clock, e.people = app, store_engine, clock, people
    e.api_secret, e.api_token_id = secret, token.token_id
    e.wall_secret, e.wall_token_id = wall_secret, wall.token_id
    return e


def bearer(env, secret: str | None = None):
    client = env.app.server.test_client()
    headers = {"Authorization": f"Bearer {secret or env.api_secret}"}
    return client, headers


def session(env, username: str):
    client = env.app.server.test_client()
    html = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf": csrf, "next": "/"})
    assert response.status_code == 302
    return client


def personal_values(people: pd.DataFrame) -> list[str]:
    values: set[str] = set()
    for column in ("name", "phone", "email", "address"):
        values.update(str(v) for v in people[column] if v)
    return sorted(values)


def assert_no_personal_data(body: str, values: list[str], where: str) -> None:
    leaked = [v for v in values if v in body]
    assert not leaked, f"{where}: personal data in the response ({len(leaked)} values)"


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


def open_dc_board(env) -> int:
    client, headers = bearer(env)
    response = client.post(f"{V1}/boards", json={"incidents": DC, "name": "DC flood"},
                           headers=headers)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["board"]["board_id"]


# --------------------------------------------------------------------------- the document


def test_openapi_describes_every_route_with_its_role(env) -> None:
    client, headers = bearer(env, env.wall_secret)
    response = client.get(f"{V1}/openapi.json", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = json.loads(response.get_data(as_text=True))
    assert document["openapi"] == "3.1.0"
    state = env.app.server.extensions[auth.EXTENSION]
    registered = {}
    for rule in env.app.server.url_map.iter_rules():
        if not rule.rule.startswith(V1 + "/") or rule.rule == api.NOT_FOUND_RULE:
            continue
        for method in rule.methods & {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            registered[(api.openapi_path(rule.rule), method.lower())] = \
                state.route_policy(rule.rule)
    documented = {(path, method): operation["x-min-role"]
                  for path, item in document["paths"].items()
                  for method, operation in item.items()}
    assert documented == registered
    assert len(registered) == 13
    # every reference resolves, every path parameter is declared, every answer is described
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = document
        for part in ref.split("/"):
            node = node[part]
    for path, item in document["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path
            assert all(r.get("description") or r.get("$ref")
                       for r in operation["responses"].values())
            assert "401" in operation["responses"]
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_page_math() -> None:
    assert api.page_of(0, 1, 100) == (slice(0, 100), {"page": 1, "per_page": 100, "total": 0,
                                                      "pages": 0})
    window, numbers = api.page_of(250, 3, 100)
    assert list(range(250))[window] == list(range(200, 250)) and numbers["pages"] == 3
    window, numbers = api.page_of(250, 4, 100)
    assert list(range(250))[window] == [] and numbers["pages"] == 3
    assert api.page_of(1000, 1, 1000)[1]["pages"] == 1
    assert api.page_of(1001, 2, 1000)[1]["pages"] == 2
    with pytest.raises(ValueError, match="page"):
        api.page_of(10, 0, 10)


# --------------------------------------------------------------------------- incidents, feeds


def test_incidents_for_the_wall_have_counts_filters_and_pages(env) -> None:
    values = personal_values(env.people)
    client, headers = bearer(env, env.wall_secret)
    response = client.get(f"{V1}/incidents", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert_no_personal_data(response.get_data(as_text=True), values, "incidents")
    assert [i["key"] for i in body["items"]] == [DC]
    assert body["items"][0]["people"] > 0 and body["items"][0]["incident"] is True
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (1, 100, 1, 1)
    assert body["totals"]["people"] == body["items"][0]["people"]
    assert body["hidden_by_rules"] == 1 and isinstance(body["stale_feeds"], list)
    everything = client.get(f"{V1}/incidents?include_hidden=true&per_page=1",
                            headers=headers).get_json()
    assert (everything["total"], everything["pages"], len(everything["items"])) == (2, 2, 1)
    second = client.get(f"{V1}/incidents?include_hidden=true&per_page=1&page=2",
                        headers=headers).get_json()
    assert {everything["items"][0]["key"], second["items"][0]["key"]} == {DC, "nws:test-minor"}
    assert second["items"][0]["incident"] is False and second["items"][0]["reason"]
    past = client.get(f"{V1}/incidents?include_hidden=true&per_page=1&page=3",
                      headers=headers).get_json()
    assert past["items"] == [] and past["total"] == 2
    # filters, as on the overview
    for query, keys in (("severity=minor", []), ("severity=severe,extreme", [DC]),
                        ("category=flood&source=nws", [DC]), ("jurisdiction=DC", [DC]),
                        ("jurisdiction=AK", []), ("office=WAS", [DC]),
                        ("severity=minor&severity=severe", [DC])):
        found = client.get(f"{V1}/incidents?{query}", headers=headers).get_json()
        assert [i["key"] for i in found["items"]] == keys, query
    for query, word in (("category=volcano", "category"), ("per_page=0", "per_page"),
                        ("per_page=1001", "per_page"), ("page=abc", "page"),
                        ("page=0", "page"), ("country=x1", "country"),
                        ("include_hidden=maybe", "include_hidden"), ("pgae=2", "pgae")):
        response = client.get(f"{V1}/incidents?{query}", headers=headers)
        assert response.status_code == 400, query
        error = error_of(response)
        assert error["code"] == "bad_request" and word in error["message"], query


def test_incident_detail_for_display_and_lists_for_coordinators(env) -> None:
    values = personal_values(env.people)
    wall, wall_headers = bearer(env, env.wall_secret)
    response = wall.get(f"{V1}/incidents/{DC}", headers=wall_headers)
    assert response.status_code == 200
    assert_no_personal_data(response.get_data(as_text=True), values, "incident detail")
    detail = response.get_json()
    assert detail["keys"] == [DC] and detail["hazards"][0]["active"] is True
    assert detail["hazards"][0]["jurisdictions"] == ["DC", "MD", "VA"]
    people = detail["totals"]["people"]
    for tail in ("missions", "people"):
        response = wall.get(f"{V1}/incidents/{DC}/{tail}", headers=wall_headers)
        assert response.status_code == 403 and error_of(response)["code"] == "forbidden"
        assert_no_personal_data(response.get_data(as_text=True), values, tail)
    client, headers = bearer(env)
    missions = client.get(f"{V1}/incidents/{DC}/missions", headers=headers).get_json()
    assert missions["total"] == detail["totals"]["missions"] and "duty_phone" in \
        missions["items"][0]
    calls = client.get(f"{V1}/incidents/{DC}/people?per_page=7", headers=headers).get_json()
    assert calls["total"] >= people and calls["pages"] == -(-calls["total"] // 7)
    orders = [row["order"] for row in calls["items"]]
    assert orders == sorted(orders) and len(orders) == 7
    page2 = client.get(f"{V1}/incidents/{DC}/people?per_page=7&page=2",
                       headers=headers).get_json()
    assert page2["items"][0]["order"] > orders[-1]
    assert any(row["name"] in values for row in calls["items"] if row["name"])
    both = client.get(f"{V1}/incidents/{DC},nws:test-minor", headers=headers).get_json()
    assert [h["key"] for h in both["hazards"]] == [DC, "nws:test-minor"]
    response = client.get(f"{V1}/incidents/nws:gone", headers=headers)
    assert response.status_code == 404 and "nws:gone" in error_of(response)["message"]
    many = ",".join(f"k{i}" for i in range(26))
    assert client.get(f"{V1}/incidents/{many}", headers=headers).status_code == 400


def test_reads_of_personal_data_are_audited_at_most_once_a_minute(env) -> None:
    client, headers = bearer(env)
    for page in (1, 2, 1):  # paging through: one record
        assert client.get(f"{V1}/incidents/{DC}/people?per_page=5&page={page}",
                          headers=headers).status_code == 200
    reads = query_audit(env.engine, action="api.read")
    assert len(reads) == 1
    assert reads[0].actor == f"user:ana (token {env.api_token_id})"
    assert reads[0].detail == {"path": f"{V1}/incidents/{DC}/people", "query": "",
                               "page": 1, "rows": 5, "total": reads[0].detail["total"]}
    client.get(f"{V1}/incidents/{DC}/missions", headers=headers)  # another path
    session(env, "coordinator").get(f"{V1}/incidents/{DC}/people")  # another actor
    # counts are not personal data: not audited
    client.get(f"{V1}/incidents/{DC}", headers=headers)
    reads = query_audit(env.engine, action="api.read")
    assert sorted((r.actor, r.detail["path"].rsplit("/", 1)[1]) for r in reads) == sorted([
        (f"user:ana (token {env.api_token_id})", "people"),
        (f"user:ana (token {env.api_token_id})", "missions"),
        ("user:coordinator", "people")])


def test_feeds_show_health_with_data_age(env) -> None:
    client, headers = bearer(env, env.wall_secret)
    body = client.get(f"{V1}/feeds", headers=headers).get_json()
    by_source = {f["source"]: f for f in body["items"]}
    assert "nws" in by_source and body["total"] == len(body["items"])
    assert by_source["nws"]["item_count"] == 2 and "data_age_s" in by_source["nws"]
    assert by_source["usgs"]["stale"] is True and by_source["usgs"]["last_outcome"] is None


# --------------------------------------------------------------------------- boards


def test_boards_open_once_per_selection_and_show_progress(env) -> None:
    client, headers = bearer(env)
    response = client.post(f"{V1}/boards", json={"incidents": [DC], "name": "DC flood"},
                           headers=headers)
    assert response.status_code == 201
    body = response.get_json()
    board_id = body["board"]["board_id"]
    assert response.headers["Location"] == f"{V1}/boards/{board_id}"
    assert body["board"]["created_by"] == f"user:ana (token {env.api_token_id})"
    assert body["targets"] == body["progress"]["mission"]["total"] + \
        body["progress"]["household"]["total"] > 0
    assert body["missing_hazards"] == [] and body["hazards"][0]["key"] == DC
    assert body["began_at"] and body["liaisons"]
    again = client.post(f"{V1}/boards", json={"hazard_ids": [DC]}, headers=headers)
    assert again.status_code == 200 and again.get_json()["board"]["board_id"] == board_id
    listed = client.get(f"{V1}/boards", headers=headers).get_json()
    assert [b["board_id"] for b in listed["items"]] == [board_id] and listed["total"] == 1
    assert client.get(f"{V1}/boards?exercise=true", headers=headers).get_json()["total"] == 0
    detail = client.get(f"{V1}/boards/{board_id}", headers=headers).get_json()
    assert detail["progress"] == body["progress"]
    assert len(query_audit(env.engine, action="outreach.board")) == 1
    for payload, field in (({"incidents": DC, "hazard_ids": [DC]}, "incidents"), ({}, "incidents"),
                           ({"incidents": "nws:gone"}, "incidents"),
                           ({"hazard_ids": ["nws:gone"]}, "hazard_ids"),
                           ({"hazard_ids": []}, "hazard_ids"),
                           ({"incidents": 7}, "incidents"),
                           ({"incidents": DC, "exercise": "yes"}, "exercise"),
                           ({"incidents": DC, "colour": "red"}, "colour")):
        response = client.post(f"{V1}/boards", json=payload, headers=headers)
        assert response.status_code == 422, payload
        assert error_of(response)["field"] == field, payload
    response = client.post(f"{V1}/boards", data="incidents=x", headers=headers)
    assert response.status_code == 400 and error_of(response)["code"] == "bad_request"
    response = client.get(f"{V1}/boards/999", headers=headers)
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    wall, wall_headers = bearer(env, env.wall_secret)
    assert wall.post(f"{V1}/boards", json={"incidents": DC},
                     headers=wall_headers).status_code == 403
    assert wall.get(f"{V1}/boards/{board_id}", headers=wall_headers).status_code == 403


def test_targets_views_statuses_groups_and_pages(env) -> None:
    board_id = open_dc_board(env)
    client, headers = bearer(env)
    url = f"{V1}/boards/{board_id}/targets"
    everyone = client.get(f"{url}?per_page=1000", headers=headers).get_json()
    total = everyone["total"]
    assert total == len(everyone["items"]) > 2
    orders = [t["order"] for t in everyone["items"]]
    assert orders == sorted(orders)
    first = everyone["items"][0]
    assert first["status"] == "not_contacted" and first["event_id"] == 0
    assert set(first) == set(api.TARGET_FIELDS)
    target = f"{url}/{first['target_kind']}/{first['target_id']}/status"
    assert client.post(target, json={"status": "reached_needs_assistance", "note": "water"},
                       headers=headers).status_code == 201
    needs = client.get(f"{url}?view=needs_assistance", headers=headers).get_json()
    assert [t["target_id"] for t in needs["items"]] == [first["target_id"]]
    assert needs["items"][0]["note"] == "water" and needs["items"][0]["updates"] == 1
    not_reached = client.get(f"{url}?view=not_reached", headers=headers).get_json()
    assert not_reached["total"] == total - 1
    by_status = client.get(f"{url}?status=not_contacted,attempted", headers=headers).get_json()
    assert by_status["total"] == total - 1
    grouped = client.get(f"{url}?group=country&per_page=1000", headers=headers).get_json()
    labels = [t["group"] for t in grouped["items"]]
    # each group is contiguous, groups in the order of their first target
    assert labels == sorted(labels, key=labels.index)
    assert grouped["total"] == total
    paged = [client.get(f"{url}?per_page=3&page={p}", headers=headers).get_json()
             for p in range(1, -(-total // 3) + 1)]
    assert [t["target_id"] for page in paged for t in page["items"]] == \
        [t["target_id"] for t in everyone["items"]]
    assert paged[0]["pages"] == -(-total // 3)
    for query in ("view=urgent", "status=fine", "group=planet", "page=-1"):
        response = client.get(f"{url}?{query}", headers=headers)
        assert response.status_code == 400, query
    assert client.get(f"{V1}/boards/999/targets", headers=headers).status_code == 404


def test_status_updates_conflicts_retries_and_history(env) -> None:
    board_id = open_dc_board(env)
    client, headers = bearer(env)
    rows = client.get(f"{V1}/boards/{board_id}/targets?per_page=2",
                      headers=headers).get_json()["items"]
    kind, target_id = rows[0]["target_kind"], rows[0]["target_id"]
    base = f"{V1}/boards/{board_id}/targets/{kind}/{target_id}"
    first = client.post(f"{base}/status", json={
        "status": "attempted", "note": "no answer", "expected_event_id": 0,
        "request_id": "r-1"}, headers=headers)
    assert first.status_code == 201
    event = first.get_json()
    assert event["actor"] == f"user:ana (token {env.api_token_id})"
    assert event["previous_event_id"] == 0 and event["request_id"] == "r-1"
    assert first.headers["Location"] == f"{base}/history"
    # a retry of the same request: the stored event, nothing new
    retry = client.post(f"{base}/status", json={
        "status": "attempted", "note": "no answer", "expected_event_id": 0,
        "request_id": "r-1"}, headers=headers)
    assert retry.status_code == 200 and retry.get_json() == event
    assert retry.headers["Idempotent-Replayed"] == "true"
    # the same, with the Idempotency-Key header
    keyed = {**headers, "Idempotency-Key": "k-2"}
    second = client.post(f"{base}/status", json={"status": "reached_safe",
                                                 "expected_event_id": event["event_id"]},
                         headers=keyed)
    assert second.status_code == 201
    assert client.post(f"{base}/status", json={"status": "reached_safe",
                                               "expected_event_id": event["event_id"]},
                       headers=keyed).status_code == 200
    # someone who still saw the first event is told about the second, nothing is written
    stale = client.post(f"{base}/status", json={"status": "unreachable",
                                                "expected_event_id": event["event_id"]},
                        headers=headers)
    assert stale.status_code == 409
    error = error_of(stale)
    assert error["code"] == "conflict" and error["current"] == second.get_json()
    # a blind append goes after whatever is latest
    blind = client.post(f"{base}/status", json={"status": "attempted"}, headers=headers)
    assert blind.status_code == 201
    assert blind.get_json()["previous_event_id"] == second.get_json()["event_id"]
    # a request id used again for another update is refused
    reused = client.post(f"{base}/status", json={"status": "unreachable", "request_id": "r-1"},
                         headers=headers)
    assert reused.status_code == 422 and error_of(reused)["field"] == "request_id"
    for payload, field in (({"status": "fine"}, "status"), ({}, "status"),
                           ({"status": "attempted", "note": "x" * 2001}, "note"),
                           ({"status": "attempted", "note": 5}, "note"),
                           ({"status": "attempted", "expected_event_id": -1},
                            "expected_event_id"),
                           ({"status": "attempted", "expected_event_id": True},
                            "expected_event_id"),
                           ({"status": "attempted", "request_id": "x" * 65}, "request_id"),
                           ({"status": "attempted", "request_id": 5}, "request_id"),
                           ({"status": "attempted", "when": "now"}, "when")):
        response = client.post(f"{base}/status", json=payload, headers=headers)
        assert response.status_code == 422, payload
        assert error_of(response)["field"] == field, payload
    mismatch = client.post(f"{base}/status", json={"status": "attempted", "request_id": "a"},
                           headers={**headers, "Idempotency-Key": "b"})
    assert mismatch.status_code == 422
    assert client.post(f"{base}/status", data="status=attempted",
                       headers=headers).status_code == 400
    for url in (f"{V1}/boards/{board_id}/targets/person/{target_id}/status",
                f"{V1}/boards/{board_id}/targets/{kind}/no-such-target/status",
                f"{V1}/boards/999/targets/{kind}/{target_id}/status"):
        response = client.post(url, json={"status": "attempted"}, headers=headers)
        assert response.status_code == 404 and error_of(response)["code"] == "not_found", url
    events = client.get(f"{base}/history", headers=headers).get_json()
    assert [e["status"] for e in events["items"]] == ["attempted", "reached_safe", "attempted"]
    assert [e["previous_event_id"] for e in events["items"]] == [
        0, *[e["event_id"] for e in events["items"][:-1]]]
    assert client.get(f"{base}/history?per_page=1&page=3",
                      headers=headers).get_json()["items"][0] == events["items"][2]
    assert client.get(f"{V1}/boards/{board_id}/targets/person/x/history",
                      headers=headers).status_code == 404
    close_board(env.engine, board_id, actor="test", now=NOW)
    closed = client.post(f"{base}/status", json={"status": "attempted"}, headers=headers)
    assert closed.status_code == 409 and error_of(closed)["code"] == "board_closed"


# --------------------------------------------------------------------------- who may ask


def test_cookie_posts_need_origin_or_a_custom_header(env) -> None:
    board_id = open_dc_board(env)
    client = session(env, "coordinator")
    rows = client.get(f"{V1}/boards/{board_id}/targets?per_page=1").get_json()["items"]
    url = (f"{V1}/boards/{board_id}/targets/{rows[0]['target_kind']}/"
           f"{rows[0]['target_id']}/status")
    bare = client.post(url, json={"status": "attempted"})
    assert bare.status_code == 403 and error_of(bare)["code"] == "csrf"
    assert client.post(f"{V1}/boards", json={"incidents": DC}).status_code == 403
    crossed = client.post(url, json={"status": "attempted"},
                          headers={"Origin": "https://evil.example"})
    assert crossed.status_code == 403 and error_of(crossed)["code"] == "cross_site"
    same = client.post(url, json={"status": "attempted"},
                       headers={"Origin": "http://localhost"})
    assert same.status_code == 201 and same.get_json()["actor"] == "user:coordinator"
    custom = client.post(url, json={"status": "attempted"},
                         headers={"X-Requested-With": "fetch"})
    assert custom.status_code == 201
    # bearer requests need neither
    token_client, headers = bearer(env)
    assert token_client.post(url, json={"status": "attempted"}, headers=headers).status_code \
        == 201


def test_token_revocation_role_change_and_disable_take_effect_at_once(env) -> None:
    client, headers = bearer(env)
    people = f"{V1}/incidents/{DC}/people"
    assert client.get(people, headers=headers).status_code == 200
    set_role(env.engine, "ana", "display", actor="test", now=NOW)
    assert client.get(people, headers=headers).status_code == 403
    assert client.get(f"{V1}/incidents", headers=headers).status_code == 200
    set_role(env.engine, "ana", "coordinator", actor="test", now=NOW)
    assert client.get(people, headers=headers).status_code == 200
    set_disabled(env.engine, "ana", True, actor="test", now=NOW)
    response = client.get(f"{V1}/incidents", headers=headers)
    assert response.status_code == 401 and error_of(response)["code"] == "unauthenticated"
    assert "Bearer" in response.headers["WWW-Authenticate"]
    failed = query_audit(env.engine, action="token.failed")[0]
    assert failed.detail["reason"] == "user_disabled"
    assert failed.detail["token_id"] == env.api_token_id
    set_disabled(env.engine, "ana", False, actor="test", now=NOW)
    assert client.get(people, headers=headers).status_code == 200
    revoke_token(env.engine, env.api_token_id, actor="test", now=NOW)
    assert client.get(f"{V1}/incidents", headers=headers).status_code == 401
    # a revoked display token, too
    wall, wall_headers = bearer(env, env.wall_secret)
    assert wall.get(f"{V1}/feeds", headers=wall_headers).status_code == 200
    revoke_token(env.engine, env.wall_token_id, actor="test", now=NOW)
    assert wall.get(f"{V1}/feeds", headers=wall_headers).status_code == 401


def test_api_tokens_never_become_sessions(env) -> None:
    client = env.app.server.test_client()
    assert client.get(f"/?token={env.api_secret}").status_code == 401
    assert client.get(f"{V1}/incidents").status_code == 401
    # and work under /api/ only, as their user: not the dashboard, downloads or admin routes
    _, headers = bearer(env)
    assert client.get(f"{V1}/feeds", headers=headers).status_code == 200
    assert client.get("/_dash-layout", headers=headers).status_code == 401
    assert client.get("/exports/calllist.csv?incidents=nws:test-dc",
                      headers=headers).status_code == 401
    assert client.get("/admin/audit.csv", headers=headers).status_code == 401
    refused = query_audit(env.engine, action="token.failed")[0]
    assert refused.detail["reason"] == "api_token_outside_api"
    assert refused.detail["token_id"] == env.api_token_id


def test_errors_are_json_everywhere_under_the_prefix(env) -> None:
    anonymous = env.app.server.test_client()
    for url in (f"{V1}/incidents", f"{V1}/openapi.json", f"{V1}/no-such-thing"):
        response = anonymous.get(url)
        assert response.status_code == 401 and error_of(response)["code"] == "unauthenticated"
    client, headers = bearer(env)
    response = client.get(f"{V1}/no-such-thing/at/all", headers=headers)
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = client.delete(f"{V1}/boards", headers=headers)
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    response = client.get(f"{V1}/incidents", headers={"Authorization": "Bearer mwa_nope"})
    assert response.status_code == 401 and response.mimetype == "application/json"
    # outside the prefix nothing changes
    assert anonymous.get("/admin/audit.csv").get_json() == {"error": "sign in required"}


def test_display_never_gets_personal_data_from_any_endpoint(env) -> None:
    """Every API route as a display user, a display token and the wall's session."""
    board_id = open_dc_board(env)
    values = personal_values(env.people)
    target = f"{V1}/boards/{board_id}/targets/household/x"
    urls = {
        f"{V1}/openapi.json": 200, f"{V1}/incidents": 200,
        f"{V1}/incidents?include_hidden=true": 200, f"{V1}/incidents/{DC}": 200,
        f"{V1}/incidents/{DC},nws:test-minor": 200, f"{V1}/incidents/{DC}/missions": 403,
        f"{V1}/incidents/{DC}/people": 403, f"{V1}/feeds": 200, f"{V1}/boards": 403,
        f"{V1}/boards/{board_id}": 403, f"{V1}/boards/{board_id}/targets": 403,
        f"{target}/history": 403, f"{V1}/nothing": 404,
    }
    rules = {r.rule for r in env.app.server.url_map.iter_rules() if r.rule.startswith(V1)}
    covered = {api.PREFIX + rule for rule, *_ in api.ROUTES} | {api.NOT_FOUND_RULE}
    assert rules == covered
    wall = env.app.server.test_client()
    assert wall.get(f"/?token={env.wall_secret}").status_code == 302
    visitors = [(session(env, "display"), {}), bearer(env, env.wall_secret), (wall, {})]
    for client, headers in visitors:
        for url, status in urls.items():
            response = client.get(url, headers=headers)
            assert response.status_code == status, (url, response.status_code)
            assert_no_personal_data(response.get_data(as_text=True), values, url)
        for url, body in ((f"{V1}/boards", {"incidents": DC}),
                          (f"{target}/status", {"status": "attempted"})):
            response = client.post(url, json=body, headers={**headers, **JSON_CT,
                                                            "X-Requested-With": "t"})
            assert response.status_code == 403
            assert_no_personal_data(response.get_data(as_text=True), values, url)


def test_admin_page_lists_api_tokens_with_their_user(env) -> None:
    import dash

    from dashboard import ids

    def find(component, component_id):
        if getattr(component, "id", None) == component_id:
            return component
        children = getattr(component, "children", None)
        for child in children if isinstance(children, list) else [children]:
            if child is not None and not isinstance(child, (str, int, float)):
                found = find(child, component_id)
                if found is not None:
                    return found
        return None

    page = next(p for p in dash.page_registry.values() if p["path"] == "/admin")
    with env.app.server.test_request_context("/admin"):
        table = find(page["layout"](), ids.ADMIN_TOKENS)
    header, body = table.children
    assert [th.children for th in header.children.children][:5] == [
        "Id", "Kind", "Name", "User", "Role"]
    rows = [[td.children for td in tr.children] for tr in body.children]
    assert [r[:5] for r in rows] == [
        [str(env.wall_token_id), "display", "ops wall", "", "display"],
        [str(env.api_token_id), "api", "script", "ana", "coordinator"]]


def test_closing_a_board_makes_it_read_only(env) -> None:
    board_id = open_dc_board(env)
    client, headers = bearer(env)
    target = client.get(f"{V1}/boards/{board_id}/targets", headers=headers).get_json()[
        "items"][0]
    wall, wall_headers = bearer(env, env.wall_secret)
    assert wall.post(f"{V1}/boards/{board_id}/close", headers=wall_headers).status_code == 403
    answer = client.post(f"{V1}/boards/{board_id}/close", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["board"]["closed_at"] is not None
    again = client.post(f"{V1}/boards/{board_id}/close", headers=headers)
    assert again.status_code == 409 and error_of(again)["code"] == "board_closed"
    update = client.post(
        f"{V1}/boards/{board_id}/targets/{target['target_kind']}/{target['target_id']}/status",
        headers=headers, json={"status": "attempted"})
    assert update.status_code == 409 and error_of(update)["code"] == "board_closed"
    assert client.post(f"{V1}/boards/999/close", headers=headers).status_code == 404
    closes = query_audit(env.engine, action="outreach.close")
    assert len(closes) == 1 and closes[0].actor == f"user:ana (token {env.api_token_id})"
