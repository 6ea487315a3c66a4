"""Outreach under load: coordinators updating statuses through the API at the same time.

Run from the repository root: ``python -m benchmarks.outreach_load`` (``--seconds``,
``--coordinators``, ``--database-url`` for PostgreSQL; ``--help``).

Setup, untimed: a store (SQLite in a temporary directory, or a scratch database created on the
PostgreSQL server of ``--database-url`` and dropped afterwards) holding the demo roster
(``python app.py roster generate``), coordinators with API tokens, and the real server
(``python app.py serve --no-poll``) on a free loopback port, in its own process, with the
bundled recorded feeds. A board is opened through the API for the incident with the most
missions, and its targets are read through the API, as a client would.

Then each coordinator (a thread with its own HTTP connection and its own view of the board)
updates statuses for ``--seconds`` or until ``--max-requests`` in all: each update has a unique
request id; some name the event they saw (``expected_event_id``: a lost race is a 409, counted)
and the others are blind appends. A share of the picks go to the first targets in calling order,
where coordinators crowd in a real incident. Afterwards the store itself is checked: every
acknowledged update (2xx) is there exactly once, as acknowledged; no refused one (409) and
nothing unacknowledged is half there; every target's events form one chain. It prints counts,
latency percentiles, errors by status and throughput. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
STATUSES = ("attempted", "reached_safe", "reached_needs_assistance", "unreachable")
PASSWORD = "load test password, not a secret"
V1 = "/api/v1"


# --------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python app.py serve --no-poll`` in a process of its own on a free loopback port."""

    def __init__(self, database_url: str, data_dir: Path, log_name: str = "server") -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONWATCH_")}
        env.update(DATABASE_URL=database_url, MISSIONWATCH_DATA_DIR=str(data_dir),
                   MISSIONWATCH_LOG_LEVEL="WARNING", MISSIONWATCH_HOST="127.0.0.1")
        self.log = data_dir / f"{log_name}-{self.port}.log"
        self._log_handle = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "serve", "--port", str(self.port),
             "--no-poll"], cwd=ROOT, env=env, stdout=self._log_handle,
            stderr=subprocess.STDOUT)

    def wait_ready(self, secret: str, timeout: float = 300.0) -> None:
        """Until the API answers (it needs no cache, so this is the moment it serves)."""
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {secret}"}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}{V1}/openapi.json", headers=headers,
                                timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready after {timeout:.0f} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind (``kill -9``)."""
        self.process.kill()
        self.process.wait()
        self._log_handle.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_handle.close()


# --------------------------------------------------------------------------------------------
# Coordinators


def make_coordinators(engine: Any, count: int, prefix: str = "load") -> list[str]:
    """``count`` coordinator users, each with an API token; returns the tokens' secrets."""
    from store.users import create_user, issue_api_token

    now = datetime.now(timezone.utc)
    secrets = []
    for i in range(count):
        name = f"{prefix}{i + 1:02d}"
        create_user(engine, name, "coordinator", PASSWORD, actor="benchmark", now=now)
        secrets.append(issue_api_token(engine, name, "load", actor="benchmark", now=now)[1])
    return secrets


def api(session: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
    """A JSON answer, or RuntimeError naming the status and the error message."""
    response = session.request(method, url, timeout=120, **kwargs)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
    return response.json()


def open_top_board(base_url: str, secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Through the API: the incident with the most missions, and its board (opened)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    incidents = api(session, "GET", f"{base_url}{V1}/incidents?per_page=1000")["items"]
    if not incidents:
        raise RuntimeError("no incident in the store")
    top = max(incidents, key=lambda i: (i["missions"], i["people"]))
    board = api(session, "POST", f"{base_url}{V1}/boards",
                json={"incidents": top["key"], "name": f"load test: {top['event']}"})
    return top, board


def board_targets(base_url: str, secret: str, board_id: int) -> list[tuple[str, str, int]]:
    """Every target of the board in calling order: (kind, id, latest event id)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    out: list[tuple[str, str, int]] = []
    for page in itertools.count(1):
        body = api(session, "GET",
                   f"{base_url}{V1}/boards/{board_id}/targets?per_page=1000&page={page}")
        out += [(t["target_kind"], t["target_id"], t["event_id"]) for t in body["items"]]
        if page >= body["pages"]:
            return out


@dataclasses.dataclass
class Outcome:
    """One update request and what came of it."""

    coordinator: int
    request_id: str
    kind: str
    target_id: str
    status: str
    note: str
    expected: int | None
    http_status: int | None      # None: no answer (refused, reset, timed out)
    event_id: int | None         # the event acknowledged (2xx) or reported as current (409)
    seconds: float
    sent_at: float = 0.0         # time.monotonic() when it was sent

    @property
    def acknowledged(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


class Budget:
    """At most ``limit`` requests in all, shared by the coordinators."""

    def __init__(self, limit: int) -> None:
        self._count = itertools.count()
        self.limit = limit

    def take(self) -> bool:
        return next(self._count) < self.limit


def coordinator(base_url: str, secret: str, board_id: int,
                targets: Sequence[tuple[str, str, int]], *, index: int, until: float,
                stop: threading.Event, budget: Budget, seed: int, expect_share: float = 0.5,
                hot_share: float = 0.3, hot: int = 50, timeout: float = 30.0) -> list[Outcome]:
    """Update statuses until ``until`` (monotonic), ``stop`` or the budget runs out.

    Each update has a unique request id; a share name the event this coordinator last saw
    for the target (its own view, refreshed by its answers and by 409s); the others are blind
    appends. A share of the picks go to the first ``hot`` targets in calling order."""
    rng = random.Random(seed * 1000 + index)
    seen = {(k, t): e for k, t, e in targets}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    base = f"{base_url}{V1}/boards/{board_id}/targets"
    outcomes: list[Outcome] = []
    for n in itertools.count():
        if stop.is_set() or time.monotonic() >= until or not budget.take():
            break
        pool = targets[:hot] if rng.random() < hot_share else targets
        kind, target_id, _ = pool[rng.randrange(len(pool))]
        expected = seen[(kind, target_id)] if rng.random() < expect_share else None
        status = rng.choice(STATUSES)
        note = f"load c{index} n{n}"
        request_id = uuid.uuid4().hex
        body: dict[str, Any] = {"status": status, "note": note, "request_id": request_id}
        if expected is not None:
            body["expected_event_id"] = expected
        sent_at = time.monotonic()
        started = time.perf_counter()
        http_status, event_id = None, None
        try:
            response = session.post(f"{base}/{kind}/{target_id}/status", json=body,
                                     timeout=timeout)
            http_status = response.status_code
            answer = response.json()
            if response.ok:
                event_id = answer["event_id"]
                seen[(kind, target_id)] = event_id
            elif http_status == 409 and answer["error"].get("current"):
                event_id = answer["error"]["current"]["event_id"]
                seen[(kind, target_id)] = event_id
        except (requests.RequestException, ValueError):
            session = requests.Session()  # a fresh connection after a failure
            session.headers["Authorization"] = f"Bearer {secret}"
        outcomes.append(Outcome(index, request_id, kind, target_id, status, note, expected,
                                http_status, event_id, time.perf_counter() - started, sent_at))
    return outcomes


def run_coordinators(base_url: str, secrets: Sequence[str], board_id: int,
                     targets: Sequence[tuple[str, str, int]], *, seconds: float,
                     max_requests: int, seed: int, stop: threading.Event | None = None,
                     **options: Any) -> tuple[list[Outcome], float]:
    """Every coordinator in a thread of its own; (all outcomes, wall-clock seconds)."""
    stop = stop or threading.Event()
    budget = Budget(max_requests)
    results: list[list[Outcome]] = [[] for _ in secrets]
    until = time.monotonic() + seconds

    def work(i: int) -> None:
        results[i] = coordinator(base_url, secrets[i], board_id, targets, index=i,
                                 until=until, stop=stop, budget=budget, seed=seed, **options)

    threads = [threading.Thread(target=work, args=(i,), name=f"coordinator-{i}")
               for i in range(len(secrets))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [o for part in results for o in part], time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# The check


@dataclasses.dataclass
class Verdict:
    """What the store holds against what the coordinators were told."""

    requests: int
    acknowledged: int          # 2xx answers
    replayed: int              # of them, 200: the request id was already stored
    lost: int                  # acknowledged, but not stored exactly once as acknowledged
    conflicts: int             # 409 answers
    conflicts_stored: int      # 409, yet stored (must be 0)
    other_errors: int          # other answers (4xx/5xx)
    errors_stored: int         # such answers, yet stored (must be 0)
    unanswered: int            # no answer at all (refused, reset, timed out)
    unanswered_stored: int     # of them, stored whole (the server wrote, then died/timed out)
    half_stored: int           # stored, but not as sent (must be 0)
    foreign: int               # stored events no request sent (must be 0)
    events: int                # events of the board in the store
    targets_updated: int
    broken_chains: int         # targets whose events are not one chain (must be 0)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.conflicts_stored or self.errors_stored or
                    self.half_stored or self.foreign or self.broken_chains)


def broken_chains(events: Any) -> int:
    """Targets whose events, in order, do not each follow the one before (the first: 0)."""
    broken = 0
    for _, part in events.sort_values("event_id").groupby(["target_kind", "target_id"]):
        ids = part["event_id"].tolist()
        if part["previous_event_id"].tolist() != [0, *ids[:-1]]:
            broken += 1
    return broken


def verify(engine: Any, board_id: int, outcomes: Sequence[Outcome]) -> Verdict:
    """Check the store against every outcome (see :class:`Verdict`)."""
    from store.outreach import history

    events = history(engine, board_id)
    stored = collections.defaultdict(list)
    for row in events.itertuples(index=False):
        stored[row.request_id].append(row)
    sent = {o.request_id for o in outcomes}

    def same(row: Any, o: Outcome) -> bool:
        return (row.target_kind, row.target_id, row.status, row.note) == (
            o.kind, o.target_id, o.status, o.note)

    lost = half = conflicts_stored = errors_stored = unanswered_stored = 0
    for o in outcomes:
        rows = stored.get(o.request_id, [])
        if any(not same(r, o) for r in rows):
            half += 1
        if o.acknowledged:
            if len(rows) != 1 or rows[0].event_id != o.event_id or not same(rows[0], o):
                lost += 1
        elif o.http_status == 409:
            conflicts_stored += bool(rows)
        elif o.http_status is not None:
            errors_stored += bool(rows)
        else:
            unanswered_stored += int(len(rows) == 1 and same(rows[0], o))
    codes = collections.Counter(o.http_status for o in outcomes)
    return Verdict(
        requests=len(outcomes), acknowledged=sum(o.acknowledged for o in outcomes),
        replayed=codes[200], lost=lost, conflicts=codes[409],
        conflicts_stored=conflicts_stored,
        other_errors=sum(n for c, n in codes.items()
                         if c is not None and not 200 <= c < 300 and c != 409),
        errors_stored=errors_stored, unanswered=codes[None],
        unanswered_stored=unanswered_stored, half_stored=half,
        foreign=sum(len(rows) for rid, rows in stored.items() if rid not in sent),
        events=len(events),
        targets_updated=int(events.groupby(["target_kind", "target_id"]).ngroups)
        if len(events) else 0,
        broken_chains=broken_chains(events) if len(events) else 0)


# --------------------------------------------------------------------------------------------
# The benchmark


@contextmanager
def scratch_store(server_url: str | None, folder: Path) -> Iterator[str]:
    """A URL of an empty store: SQLite in ``folder``, or a scratch database created on the
    PostgreSQL server of ``server_url`` and dropped afterwards."""
    if not server_url:
        yield f"sqlite:///{folder / 'store.sqlite3'}"
        return
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"mw_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name})
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` (linear interpolation); NaN if empty."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def report(verdict: Verdict, outcomes: Sequence[Outcome], seconds: float) -> str:
    answered = [o.seconds * 1000 for o in outcomes if o.http_status is not None]
    acked = [o.seconds * 1000 for o in outcomes if o.acknowledged]
    codes = collections.Counter("no answer" if o.http_status is None else str(o.http_status)
                                for o in outcomes)
    first = min((o.sent_at for o in outcomes), default=0.0)
    slow = sorted(round(o.sent_at - first) for o in outcomes if o.seconds > 1.0)
    lines = [
        f"requests {verdict.requests:,} in {seconds:.1f} s: {verdict.requests / seconds:,.0f} "
        f"requests/s, {verdict.acknowledged / seconds:,.0f} acknowledged updates/s",
        f"acknowledged (2xx) {verdict.acknowledged:,} (of them replays, 200: "
        f"{verdict.replayed:,}); LOST {verdict.lost:,}",
        f"conflicts (409) {verdict.conflicts:,} ({verdict.conflicts / max(1, verdict.requests):.1%}"
        f" of requests), stored anyway {verdict.conflicts_stored:,}",
        f"other errors {verdict.other_errors:,} (stored anyway {verdict.errors_stored:,}); "
        f"no answer {verdict.unanswered:,} (stored whole {verdict.unanswered_stored:,})",
        f"answers by status: {dict(sorted(codes.items()))}",
        f"store: {verdict.events:,} events on {verdict.targets_updated:,} targets; half-stored "
        f"{verdict.half_stored:,}, foreign {verdict.foreign:,}, broken chains "
        f"{verdict.broken_chains:,}",
        f"latency, all answers (ms): p50 {percentile(answered, 50):.1f}  p95 "
        f"{percentile(answered, 95):.1f}  p99 {percentile(answered, 99):.1f}  max "
        f"{max(answered, default=float('nan')):.1f}",
        f"latency, acknowledged (ms): p50 {percentile(acked, 50):.1f}  p95 "
        f"{percentile(acked, 95):.1f}  p99 {percentile(acked, 99):.1f}",
        f"answers slower than 1 s: {len(slow):,}"
        + (f", sent at +{', +'.join(map(str, sorted(set(slow))[:15]))} s" if slow else ""),
        "VERDICT: every acknowledged update is stored exactly once" if verdict.ok else
        "VERDICT: FAILED (see the counts above)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long the coordinators update (default 60)")
    parser.add_argument("--coordinators", type=int, default=20, help="default 20")
    parser.add_argument("--max-requests", type=int, default=200_000,
                        help="stop after this many update requests in all (default 200,000)")
    parser.add_argument("--expect-share", type=float, default=0.5,
                        help="share of updates that name the event they saw (default 0.5)")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server URL (like TEST_DATABASE_URL): a scratch "
                             "database is created on it and dropped afterwards; default SQLite")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600 or not 1 <= args.coordinators <= 100:
        parser.error("--seconds must be in (0, 600] and --coordinators in [1, 100]")

    from importlib.metadata import version

    from store.db import open_store

    folder = Path(tempfile.mkdtemp(prefix="mw-outreach-load-"))
    server = None
    try:
        with scratch_store(args.database_url, folder) as url:
            backend = url.split(":", 1)[0]
            print(f"store: {backend}; python {platform.python_version()}, flask "
                  f"{version('flask')}, sqlalchemy {version('sqlalchemy')}, "
                  f"{os.cpu_count()} cores", flush=True)
            env = {**os.environ, "DATABASE_URL": url, "MISSIONWATCH_DATA_DIR": str(folder),
                   "MISSIONWATCH_LOG_LEVEL": "WARNING"}
            started = time.perf_counter()
            generated = subprocess.run(
                [sys.executable, str(ROOT / "app.py"), "roster", "generate"], cwd=ROOT,
                env=env, capture_output=True, text=True, check=False)
            if generated.returncode != 0:
                raise RuntimeError(f"roster generate failed:\n{generated.stderr[-3000:]}")
            engine = open_store(url)
            secrets = make_coordinators(engine, args.coordinators)
            print(f"setup: demo roster and {args.coordinators} coordinators with API tokens in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            server = Server(url, folder)
            started = time.perf_counter()
            server.wait_ready(secrets[0])
            top, board = open_top_board(server.url, secrets[0])
            board_id = board["board"]["board_id"]
            targets = board_targets(server.url, secrets[0], board_id)
            print(f"server ready and board {board_id} opened in "
                  f"{time.perf_counter() - started:.0f} s: {top['event']} ({top['key']}), "
                  f"{top['missions']:,} missions, {top['people']:,} people; "
                  f"{len(targets):,} targets ({board['progress']['mission']['total']:,} "
                  f"missions, {board['progress']['household']['total']:,} households)",
                  flush=True)
            print(f"running {args.coordinators} coordinators for {args.seconds:.0f} s "
                  f"(at most {args.max_requests:,} requests) ...", flush=True)
            outcomes, seconds = run_coordinators(
                server.url, secrets, board_id, targets, seconds=args.seconds,
                max_requests=args.max_requests, seed=args.seed,
                expect_share=args.expect_share)
            server.stop()
            server = None
            verdict = verify(engine, board_id, outcomes)
            engine.dispose()
            print(report(verdict, outcomes, seconds), flush=True)
            return 0 if verdict.ok else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
