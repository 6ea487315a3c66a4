"""Several gunicorn workers over one PostgreSQL store: every worker sees every change at once.

A real ``gunicorn --config deploy/gunicorn.conf.py`` with three workers serves a store on a
PostgreSQL cluster of this module's own. Changes are made in the store (as the poller and a
roster import make them) or through one request, and then many concurrent requests — answered
by whichever workers the kernel hands them to — must all show the change, with no reload.
"""

from __future__ import annotations

import concurrent.futures
import re
from datetime import datetime, timezone

import pytest
import requests
import shapely

from tests.faults.cluster import (
    DC_AREA,
    PrivatePostgres,
    Process,
    app_environment,
    free_port,
    incident,
    seed_store,
    wait_for,
    wait_healthy,
)

WORKERS = 3
BURST = 36


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, checked_small_roster):
    postgres = PrivatePostgres()
    web = None
    try:
        postgres.start()
        url = postgres.create_database("missionwatch")
        seeded = seed_store(url, checked_small_roster)
        data = tmp_path_factory.mktemp("workers")
        port = free_port()
        env = app_environment(url, data, MISSIONWATCH_PORT=str(port),
                              MISSIONWATCH_WORKERS=str(WORKERS), MISSIONWATCH_THREADS="2",
                              MISSIONWATCH_SECRET_KEY="k" * 48)
        web = Process.gunicorn(env, data / "gunicorn.log").start()
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, web)
        yield {"base": base, "url": url, "web": web, "data": data, **seeded}
    finally:
        if web is not None:
            web.stop()
        postgres.remove()


def burst(base: str, path: str, secret: str, count: int = BURST) -> list[requests.Response]:
    """``count`` GETs at once, each on a connection of its own (so any worker may answer)."""
    def get(_: int) -> requests.Response:
        return requests.get(base + path, headers={"Authorization": f"Bearer {secret}",
                                                  "Connection": "close"}, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(get, range(count)))
    assert all(a.status_code == 200 for a in answers), [a.status_code for a in answers]
    return answers


def answering_workers(deployment) -> set[int]:
    """Pids of the workers that have answered requests (each writes its metrics file)."""
    files = (deployment["data"] / "metrics").glob("latency-*.json")
    return {int(re.search(r"latency-(\d+)", f.name).group(1)) for f in files}


def test_the_workers_are_separate_processes_sharing_one_store(deployment) -> None:
    workers = wait_for(lambda: (found := deployment["web"].children()) and
                       len(found) == WORKERS and found, 30, what=f"{WORKERS} workers")
    burst(deployment["base"], "/api/v1/incidents", deployment["display"])
    answered = wait_for(lambda: answering_workers(deployment) or None, 10,
                        what="the workers' metrics files")
    assert answered <= workers
    assert len(answered) >= 2, "one worker answered every request: the test proves nothing"


def test_a_stored_hazard_shows_on_every_worker_at_once(deployment) -> None:
    from store.db import open_store
    from store.feeds import replace_hazards

    base, display = deployment["base"], deployment["display"]
    before = burst(base, "/api/v1/incidents", display)
    assert all({i["key"] for i in a.json()["items"]} == {"nws:fault-dc"} for a in before)
    engine = open_store(deployment["url"])
    try:  # what the poller does with a new snapshot
        now = datetime.now(timezone.utc)
        replace_hazards(engine, "nws", [
            incident(deployment["now"]),
            incident(now, "nws:fault-dc-2", "Tornado Warning",
                     shapely.box(-77.1, 38.8, -76.9, 39.0)),
        ], now=now)
    finally:
        engine.dispose()
    after = burst(base, "/api/v1/incidents", display)  # no wait: the very next requests
    keys = [{i["key"] for i in a.json()["items"]} for a in after]
    assert all(k == {"nws:fault-dc", "nws:fault-dc-2"} for k in keys)


def test_a_roster_import_shows_on_every_worker_at_once(deployment, checked_small_roster) -> None:
    from store.db import open_store
    from store.roster import replace_roster

    base, secret = deployment["base"], deployment["coordinators"][0]
    path = "/api/v1/incidents/nws:fault-dc"
    counts = {a.json()["totals"]["people"] for a in burst(base, path, secret)}
    assert len(counts) == 1
    before = counts.pop()
    missions, people = checked_small_roster
    inside = shapely.contains_xy(DC_AREA, people["lon"].to_numpy(), people["lat"].to_numpy())
    assert inside.sum() == before  # the API's count is the plain point-in-polygon count
    moved_out = people[inside].index[:5]  # five people's records leave the roster
    engine = open_store(deployment["url"])
    try:
        replace_roster(engine, missions, people.drop(index=moved_out), source="second import",
                       actor="test", now=datetime.now(timezone.utc), synthetic=True)
    finally:
        engine.dispose()
    after = {a.json()["totals"]["people"] for a in burst(base, path, secret)}
    assert after == {before - 5}


def test_an_outreach_update_through_one_worker_shows_on_every_worker(deployment) -> None:
    base, secret = deployment["base"], deployment["coordinators"][1]
    headers = {"Authorization": f"Bearer {secret}"}
    board = requests.post(f"{base}/api/v1/boards", headers=headers, timeout=60,
                          json={"incidents": "nws:fault-dc", "name": "workers test"})
    assert board.status_code in (200, 201), board.text
    board_id = board.json()["board"]["board_id"]
    targets = requests.get(f"{base}/api/v1/boards/{board_id}/targets?per_page=5",
                           headers=headers, timeout=60).json()["items"]
    target = targets[0]
    update = requests.post(
        f"{base}/api/v1/boards/{board_id}/targets/{target['target_kind']}/"
        f"{target['target_id']}/status", headers=headers, timeout=60,
        json={"status": "reached_safe", "note": "seen by every worker?", "request_id": "w-1"})
    assert update.status_code in (200, 201), update.text
    event_id = update.json()["event_id"]
    answers = burst(base, f"/api/v1/boards/{board_id}/targets?per_page=5", secret)
    for answer in answers:
        first = next(t for t in answer.json()["items"]
                     if (t["target_kind"], t["target_id"]) ==
                     (target["target_kind"], target["target_id"]))
        assert (first["status"], first["event_id"]) == ("reached_safe", event_id)


def test_metrics_count_the_requests_of_every_worker(deployment) -> None:
    base, display = deployment["base"], deployment["display"]

    def count(text: str) -> int:
        pattern = (r'missionwatch_http_request_duration_seconds_count\{method="GET",'
                   r'route="/api/v1/feeds",status="2xx"\} (\d+)')
        match = re.search(pattern, text)
        return int(match.group(1)) if match else 0

    def scrape() -> str:
        answer = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {display}"},
                              timeout=60)
        assert answer.status_code == 200
        return answer.text

    before = count(scrape())
    burst(base, "/api/v1/feeds", display, count=30)
    # each worker writes its counts within two seconds of its last request
    wait_for(lambda: count(scrape()) == before + 30, 15,
             what="/metrics to count all 30 requests, whichever worker answers")
