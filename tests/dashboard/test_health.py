"""/healthz and /metrics: what they say, who may read them, and that they carry nothing
personal."""

from __future__ import annotations

import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashboard.app import create_app
from dashboard.health import health
from dashboard.services import Services, overview
from feeds.sources import SOURCE_NAMES
from settings import Settings
from store.db import open_store
from store.feeds import record_poll, replace_hazards
from store.roster import replace_roster
from store.users import issue_token
from tests.dashboard.test_access import assert_no_personal_data, personal_values
from tests.dashboard.test_wall import _hazards

SAMPLE = re.compile(r'^(missionwatch_[a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf)$')


@pytest.fixture
def services(store_engine, checked_small_roster, tmp_path):
    missions, people = checked_small_roster
    now = datetime.now(timezone.utc)
    replace_roster(store_engine, missions, people, source="test roster", actor="test",
                   now=now, synthetic=True)
    for source in SOURCE_NAMES:
        replace_hazards(store_engine, source, _hazards() if source == "nws" else [], now=now)
    return Services.from_engine(store_engine, Settings.from_env({}, data_dir=str(tmp_path)))


def _parse(text: str) -> dict[str, float]:
    """name{labels} -> value; every line is a comment or a well-formed sample."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP missionwatch_", "# TYPE missionwatch_")), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def test_healthz_says_ok_degraded_or_down(services, tmp_path) -> None:
    status, body = health(services)
    assert (status, body["status"]) == (200, "ok")
    assert body["store"]["ok"] and body["index"]["loaded"]
    assert {f["source"] for f in body["feeds"]} == set(SOURCE_NAMES)
    # a feed goes stale: still serving (200), but degraded, and it says which
    later = datetime.now(timezone.utc) + timedelta(hours=3)
    record_poll(services.engine, "usgs", now=later, outcome="failed", reason="timeout")
    status, body = health(services, now=later)
    assert status == 200 and body["status"] == "degraded" and "usgs" in body["feeds_down"]
    # no roster yet: not ready for users
    empty = open_store(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    status, body = health(Services.from_engine(empty, services.settings))
    assert (status, body["status"], body["index"]["loaded"]) == (503, "no roster", False)
    # the store does not answer
    gone = open_store(f"sqlite:///{tmp_path / 'gone.sqlite3'}")
    (tmp_path / "gone.sqlite3").unlink()
    (tmp_path / "gone.sqlite3").mkdir()      # a directory where the database file was
    gone.dispose()
    status, body = health(Services.from_engine(gone, services.settings))
    assert (status, body["status"], body["store"]["ok"]) == (503, "down", False)


def test_metrics_match_the_overview_and_time_requests(services, small_roster) -> None:
    _, people = small_roster
    app = create_app(services.settings, services)
    now = datetime.now(timezone.utc)
    _, secret = issue_token(services.engine, "prometheus", actor="test", now=now)
    client = app.server.test_client()
    assert client.get("/metrics").status_code == 401          # not without a token
    assert client.get("/healthz").status_code == 200           # public, for load balancers
    client.get("/login")
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    text = answer.get_data(as_text=True)
    samples = _parse(text)
    totals = overview(services, now).totals
    assert samples["missionwatch_people_affected"] == totals["people"] > 0
    assert samples["missionwatch_missions_affected"] == totals["missions"]
    assert samples["missionwatch_incidents"] == totals["incidents"]
    assert samples["missionwatch_active_hazards"] == 3
    assert samples["missionwatch_index_loaded"] == 1
    assert samples['missionwatch_feed_items{source="nws"}'] == 3
    assert 0 <= samples['missionwatch_feed_data_age_seconds{source="nws"}'] < 600
    assert samples["missionwatch_drills_running"] == 0
    # the requests above were timed, the refused one included
    login = 'method="GET",route="/login",status="2xx"'
    assert samples[f'missionwatch_http_request_duration_seconds_count{{{login}}}'] == 1
    refused = 'method="GET",route="/metrics",status="4xx"'
    assert samples[f'missionwatch_http_request_duration_seconds_count{{{refused}}}'] == 1
    assert samples[f'missionwatch_http_request_duration_seconds_bucket{{{login},le="+Inf"}}'] \
        == 1
    values = personal_values(people)
    assert_no_personal_data(text, values, "/metrics")
    assert_no_personal_data(client.get("/healthz").get_data(as_text=True), values, "/healthz")


def _observe_in_a_worker(directory: str, count: int) -> None:
    from dashboard.health import Latency

    latency = Latency(Path(directory))
    for _ in range(count):
        latency.observe("POST", "/_dash-update-component", 200, 0.03)
    latency.observe("GET", "/healthz", 503, 0.001)
    latency.flush()


def test_worker_processes_share_request_latency_through_the_metrics_directory(tmp_path) -> None:
    import multiprocessing

    from dashboard.health import Latency

    directory = tmp_path / "metrics"
    workers = [multiprocessing.get_context("fork").Process(
        target=_observe_in_a_worker, args=(str(directory), n)) for n in (3, 4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    scraped = Latency(directory)
    scraped.observe("POST", "/_dash-update-component", 200, 2.0)
    text = "\n".join(scraped.lines())
    name = "missionwatch_http_request_duration_seconds"
    route = 'method="POST",route="/_dash-update-component",status="2xx"'
    assert f"{name}_count{{{route}}} 8" in text  # 3 + 4 in the workers, 1 here
    assert f'{name}_bucket{{{route},le="0.05"}} 7' in text
    assert f'{name}_bucket{{{route},le="2.5"}} 8' in text
    assert f'{name}_count{{method="GET",route="/healthz",status="5xx"}} 2' in text
    assert len(list(directory.glob("latency-*.json"))) == 3
    assert "\n".join(Latency().lines()).count("_count") == 0  # no directory: this process only


def test_a_store_that_does_not_answer_gives_503_try_again_not_500(tmp_path) -> None:
    from store.db import create_engine

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/missionwatch"
                           "?connect_timeout=2")
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    client = create_app(settings, Services.from_engine(engine, settings)).server.test_client()
    bearer = {"Authorization": "Bearer mw_not_checked_before_the_store_answers"}
    answer = client.get("/api/v1/incidents", headers=bearer)
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "store_unavailable"
    assert answer.headers["Retry-After"] == "5"
    page = client.get("/metrics", headers=bearer)
    assert page.status_code == 503 and b"not answering" in page.data
    assert client.get("/healthz").status_code == 503
    engine.dispose()
