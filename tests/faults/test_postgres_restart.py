"""PostgreSQL restarted in the middle of a busy run: clients recover, nothing acknowledged is lost.

Production shape on this machine: PostgreSQL (a cluster of this test's own, so restarting it
touches nothing else), gunicorn with three workers, and the feed poller as its own process
polling a local USGS feed. Coordinators record outreach statuses through the API (each write
with its request id, retried with the same id after a failure, as the API documents), wall
displays read the incidents, and a load balancer polls /healthz — while the database is
stopped for three seconds and started again.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from tests.faults.cluster import (
    PrivatePostgres,
    Process,
    app_environment,
    free_port,
    seed_store,
    wait_for,
    wait_healthy,
)
from tests.feeds.local_server import LocalServer

logger = logging.getLogger(__name__)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
COORDINATORS = 4
WALLS = 4
STATUSES = ("attempted", "reached_safe", "reached_needs_assistance", "unreachable")


class Run:
    """What the clients saw: answers by status, acknowledged writes, health over time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: collections.Counter = collections.Counter()
        self.acknowledged: dict[str, tuple[str, str, str, int]] = {}  # request id -> write
        self.retried = 0
        self.health: list[tuple[float, int]] = []
        self.reads: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def saw(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.answers[(kind, status)] += 1


def coordinator(run: Run, base: str, secret: str, *, board_id: int, targets: list,
                seed: int) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    while not run.stop.is_set():
        kind, target_id = rng.choice(targets)
        status = rng.choice(STATUSES)
        request_id = uuid.uuid4().hex
        body = {"status": status, "note": f"restart test {request_id[:8]}",
                "request_id": request_id}
        url = f"{base}/api/v1/boards/{board_id}/targets/{kind}/{target_id}/status"
        for attempt in range(200):  # the same request id until the store has it
            try:
                answer = session.post(url, json=body, timeout=30)
                code: int | str = answer.status_code
            except requests.RequestException as exc:
                code = type(exc).__name__
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {secret}"
            run.saw("write", code)
            if code in (200, 201):
                with run.lock:
                    run.acknowledged[request_id] = (kind, target_id, status,
                                                    answer.json()["event_id"])
                    run.retried += attempt > 0
                break
            time.sleep(0.25)
        else:
            raise AssertionError(f"a write was never accepted: {run.answers}")


def wall(run: Run, base: str, display: str) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {display}"
    while not run.stop.is_set():
        try:
            code: int | str = session.get(f"{base}/api/v1/incidents", timeout=30).status_code
        except requests.RequestException as exc:
            code = type(exc).__name__
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {display}"
        run.saw("read", code)
        with run.lock:
            run.reads.append((time.monotonic(), code))
        time.sleep(0.1)


def balancer(run: Run, base: str) -> None:
    while not run.stop.is_set():
        try:
            code = requests.get(f"{base}/healthz", timeout=10).status_code
        except requests.RequestException:
            code = 0
        run.health.append((time.monotonic(), code))
        time.sleep(0.2)


@pytest.fixture
def production(tmp_path, checked_small_roster):
    postgres = PrivatePostgres()
    processes: list[Process] = []
    feed = LocalServer()
    try:
        postgres.start()
        url = postgres.create_database("missionwatch")
        seeded = seed_store(url, checked_small_roster, coordinators=COORDINATORS)
        feed.__enter__()
        # event pages from the local server too (it answers 404: the radius rule is used)
        quakes = (FIXTURES / "usgs" / "naseemao_significant_month.geojson").read_bytes()
        quakes = quakes.replace(b"https://earthquake.usgs.gov/earthquakes/feed/v1.0/detail/",
                                feed.base.encode() + b"/detail/")
        feed.routes["/usgs.geojson"] = (200, "application/geo+json", quakes)
        port = free_port()
        env = app_environment(url, tmp_path, MISSIONWATCH_PORT=str(port),
                              MISSIONWATCH_WORKERS="3", MISSIONWATCH_THREADS="4",
                              MISSIONWATCH_SECRET_KEY="k" * 48,
                              MISSIONWATCH_USGS_URL=feed.base + "/usgs.geojson",
                              MISSIONWATCH_USGS_INTERVAL_S="10")
        web = Process.gunicorn(env, tmp_path / "gunicorn.log").start()
        processes.append(web)
        poller = Process([*Process.poller(env, tmp_path / "poller.log", "usgs").argv,
                          "--lease-check", "1"], env, tmp_path / "poller.log").start()
        processes.append(poller)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, web)
        yield {"postgres": postgres, "url": url, "base": base, "web": web, "poller": poller,
               "feed": feed, **seeded}
    finally:
        for process in processes:
            process.stop()
        feed.__exit__(None, None, None)
        postgres.remove()


def usgs_polls(url: str) -> tuple[datetime | None, str | None]:
    """The poller's last USGS success and outcome, read from the store."""
    import sqlalchemy as sa

    from store.db import create_engine
    from store.tables import feed_health

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(sa.select(feed_health.c.last_success,
                                               feed_health.c.last_outcome)
                                     .where(feed_health.c.source == "usgs")).first()
    finally:
        engine.dispose()
    if row is None:
        return None, None
    success = row.last_success
    if success is not None and success.tzinfo is None:
        success = success.replace(tzinfo=timezone.utc)
    return success, row.last_outcome


def test_clients_recover_and_nothing_acknowledged_is_lost(production) -> None:
    base, postgres = production["base"], production["postgres"]
    web, poller = production["web"], production["poller"]
    wait_for(lambda: usgs_polls(production["url"])[0], 60, what="the poller's first USGS poll")
    headers = {"Authorization": f"Bearer {production['coordinators'][0]}"}
    board = requests.post(f"{base}/api/v1/boards", headers=headers, timeout=60,
                          json={"incidents": "nws:fault-dc", "name": "restart test"}).json()
    board_id = board["board"]["board_id"]
    items = requests.get(f"{base}/api/v1/boards/{board_id}/targets?per_page=200",
                         headers=headers, timeout=60).json()["items"]
    targets = [(t["target_kind"], t["target_id"]) for t in items]
    assert len(targets) >= 10
    workers = wait_for(lambda: len(found := web.children()) == 3 and found, 30,
                       what="three workers")

    run = Run()
    threads = [threading.Thread(target=coordinator, args=(run, base, secret), kwargs={
        "board_id": board_id, "targets": targets, "seed": i}, daemon=True)
        for i, secret in enumerate(production["coordinators"])]
    threads += [threading.Thread(target=wall, args=(run, base, production["display"]),
                                 daemon=True) for _ in range(WALLS)]
    threads.append(threading.Thread(target=balancer, args=(run, base), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(4)
    acknowledged_before = len(run.acknowledged)
    down_at = time.monotonic()
    restarted_at = datetime.now(timezone.utc)
    postgres.stop()
    time.sleep(3)
    postgres.start()
    up_at = time.monotonic()
    # the clients go on; every write is retried with its id until the store has it
    wait_for(lambda: any(t > up_at and c == 200 for t, c in run.health), 30,
             what="/healthz to answer 200 again")
    recovered_at = min(t for t, c in run.health if t > up_at and c == 200)
    time.sleep(4)
    run.stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()

    # every answer was an answer: 2xx, or 503 "try again" while the store was down
    codes = {code for (_, code) in run.answers}
    assert codes <= {200, 201, 503}, run.answers
    assert any(code == 503 for (_, code) in run.answers), "the restart was never noticed"
    assert any(c == 503 for t, c in run.health if down_at <= t <= up_at)
    # the workers lived through it (none was restarted), and the reads recovered
    assert web.children() == workers
    assert all(code == 200 for t, code in run.reads if t > recovered_at + 2)
    assert len(run.acknowledged) > acknowledged_before  # writes went on after the restart

    # nothing acknowledged is lost: each acknowledged write is stored exactly once, as told
    from store.db import create_engine
    from store.outreach import history

    engine = create_engine(production["url"])
    try:
        events = history(engine, board_id)
    finally:
        engine.dispose()
    stored = collections.Counter(events["request_id"])
    assert all(count == 1 for count in stored.values())  # a retried id never doubles
    by_request = {row.request_id: row for row in events.itertuples(index=False)}
    for request_id, (kind, target_id, status, event_id) in run.acknowledged.items():
        row = by_request[request_id]
        assert (row.target_kind, row.target_id, row.status, row.event_id) == (
            kind, target_id, status, event_id)
    assert set(by_request) == set(run.acknowledged)  # nothing stored that was not answered
    logger.info("PostgreSQL down for %.1f s, /healthz 200 again %.1f s after it started; "
                "answers %s; %d writes acknowledged (%d after a retry), all stored once",
                up_at - down_at, recovered_at - up_at, dict(run.answers),
                len(run.acknowledged), run.retried)

    # the poller lost its lease with the database session, took it again and polls on
    wait_for(lambda: (usgs_polls(production["url"])[0] or restarted_at) > restarted_at, 60,
             what="a USGS poll after the restart")
    assert poller.alive()
    log = poller.output()
    assert "poller lease lost" in log and log.count("poller lease taken") >= 2
    assert "Traceback" not in web.output()
