"""Production load test: wall displays and coordinators at once against gunicorn + PostgreSQL.

Run from the repository root: ``python -m benchmarks.load`` (PostgreSQL from ``--database-url``
or ``TEST_DATABASE_URL``; ``--walls``, ``--coordinators``, ``--workers``, ``--seconds``,
``--json``; ``--help``). Loopback only, bounded in time (``--seconds``, at most 600) and in
count (``--max-requests``); everything it starts is stopped and its database dropped at the
end, on Ctrl+C and on errors too.

Setup, untimed: a scratch database on the PostgreSQL server holding the demo roster (``roster
generate --if-empty``; ``--roster small``: whole households of it up to 5,000 people),
coordinators (password and API token each) and a display token per wall; a feed server on
loopback serving recorded NWS and USGS payloads from ``tests/fixtures/`` that alternate every
``--feed-change`` seconds (every other source answers 404, so its bundled recording stays on
screen, as with no internet); the poller (``python app.py feeds poll``) polling it; gunicorn
(``deploy/gunicorn.conf.py``, ``--workers`` x ``--threads``, app preloaded) on a free port;
a board opened through the API on the incident with the most missions.

The run: each wall display does what its browser does (``/wall?token=``, the Dash layout and
dependencies, the page, its maps), then posts the wall's refresh callback every
``--wall-refresh`` seconds and fetches the map SVGs whose version changed, and the close-up it
rotates to. Each coordinator signs in through the ``/login`` form and works: the overview's
refresh callback, incident pages (page callback, people table), call-list exports (CSV, XLSX),
board reads and status updates through the API (as ``benchmarks.outreach_load``: every
acknowledged update is checked in the store afterwards). Clients sit behind one simulated
reverse proxy (``X-Forwarded-For``, ``MISSIONWATCH_TRUSTED_PROXIES=1``), so each has its own
address for the per-address sign-in limit, as in production.

Measured: requests and errors by kind (status codes, exceptions), latency percentiles per kind,
throughput; CPU and memory (RSS, USS, PSS) of every gunicorn worker, the master and the poller,
and CPU of the PostgreSQL backends; and ``/metrics``' request counts (every worker's, summed
through ``DATA_DIR/metrics``) against the client's own count.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil
import requests

from benchmarks.outreach_load import (
    PASSWORD,
    STATUSES,
    V1,
    Budget,
    Outcome,
    board_targets,
    free_port,
    make_coordinators,
    open_top_board,
    percentile,
    scratch_store,
    verify,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
# Real recorded payloads (tests/fixtures/PROVENANCE.md), served in turn to the poller.
NWS_PAYLOADS = ("nws/weathergov_northwest-alerts_alerts-active.json",
                "nws/weathergov_guam-7day_alerts-active.json")
USGS_PAYLOADS = ("usgs/naseemao_significant_month.geojson",
                 "usgs/abruzzi_all_day_2014.geojson")
SMALL_PEOPLE = 5_000
PRODUCT_WALL_REFRESH_S = 30.0    # settings.py's default for MISSIONWATCH_WALL_REFRESH_S
WALL_ROTATE_S = 20.0             # settings.py's default for MISSIONWATCH_WALL_ROTATE_S
FEED_INTERVAL_S = 10             # the shortest poll interval the settings allow
QUIET_INTERVAL_S = 3600          # sources the feed server does not serve: polled once
UPDATE = "/_dash-update-component"
ROUTER = "_pages_content.children"
WALL_REFRESH = "wall-maps-key.data"
OVERVIEW_REFRESH = "overview-map-key.data"
PEOPLE = "incident-people.data"
METRIC_COUNT = re.compile(
    r'^missionwatch_http_request_duration_seconds_count\{method="([^"]*)",route="([^"]*)",'
    r'status="([^"]*)"\} (\d+)$', re.M)
METRIC_SUM = re.compile(
    r'^missionwatch_http_request_duration_seconds_sum\{method="([^"]*)",route="([^"]*)",'
    r'status="([^"]*)"\} ([0-9.]+)$', re.M)

KINDS = {  # kind: label, in the order of the report
    "wall_load": "wall: page load (/wall, layout, dependencies, page)",
    "wall_refresh": "wall: refresh callback",
    "map_svg": "wall: map SVG",
    "sign_in": "coordinator: sign-in (/login form)",
    "page_load": "coordinator: page load (layout, dependencies, overview)",
    "overview": "coordinator: overview refresh callback",
    "incident_page": "coordinator: incident page callback",
    "incident_people": "coordinator: incident people-table callback",
    "export_csv": "coordinator: call list CSV",
    "export_xlsx": "coordinator: call list XLSX",
    "board_read": "coordinator: board targets (API)",
    "status_write": "coordinator: status update (API)",
    "metrics": "/metrics (after the run)",
    "setup": "setup (readiness, incidents, board)",
}
RUN_KINDS = tuple(k for k in KINDS if k not in ("metrics", "setup"))
# A coordinator's tasks and how often each is picked after the first round (which does each
# once, so that every kind is made even in a short run).
TASKS = {"overview": 25, "incident": 20, "export": 5, "board_read": 15, "status_write": 35}


def say(*parts: Any) -> None:
    """Progress on stderr (stdout is for the report, or the JSON document)."""
    print(*parts, file=sys.stderr, flush=True)


def require_loopback(url: str, what: str) -> None:
    """SystemExit unless ``url`` points at this machine (nothing leaves it)."""
    host = (urlsplit(url).hostname or "").lower()
    if not (host in ("localhost", "::1") or host.startswith("127.")):
        raise SystemExit(f"{what} must be on loopback (127.0.0.1, localhost, ::1), got "
                         f"{host or url!r}")


# --------------------------------------------------------------------------------------------
# The feed server


class FeedServer:
    """Recorded NWS and USGS payloads on 127.0.0.1, changing every ``change_s`` seconds.

    NWS: the two weather.gov api-proxy recordings in turn; their times are templates relative
    to serving time ("date:now -2 minutes"), rendered when a payload comes on, as the proxy
    does. USGS: the two summary recordings in turn, their event links pointing back here (an
    event detail then answers 404, so the radius rule is used). Conditional requests get 304
    while the payload is the same. Anything else answers 404 (sources not served keep their
    bundled recordings; NWS zones fall back to counties)."""

    def __init__(self, change_s: float) -> None:
        self.change_s = change_s
        self.hits: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self._nws = [(FIXTURES / p).read_bytes() for p in NWS_PAYLOADS]
        self._usgs = [(FIXTURES / p).read_bytes() for p in USGS_PAYLOADS]
        self._phase = -1
        self._bodies: dict[str, tuple[bytes, str, str]] = {}
        self.changes = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with server.lock:
                    server.hits[path if path in ("/nws/alerts/active", "/usgs/summary.geojson")
                                else "other (404)"] += 1
                answer = server.answer(path)
                if answer is None:
                    body, status, headers = b"not served by the load test\n", 404, {
                        "Content-Type": "text/plain"}
                else:
                    body, content_type, etag = answer
                    status, headers = 200, {"Content-Type": content_type, "ETag": etag}
                    if self.headers.get("If-None-Match") == etag:
                        status, body = 304, b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: requests are counted instead."""

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="feed-server",
                                        daemon=True)

    def answer(self, path: str) -> tuple[bytes, str, str] | None:
        phase = int((time.monotonic() - self._started) // self.change_s) % 2
        with self.lock:
            if phase != self._phase:
                self._render(phase)
            return self._bodies.get(path)

    def _render(self, phase: int) -> None:
        from feeds.nws import resolve_template_times

        now = datetime.now(timezone.utc)
        nws = json.dumps(resolve_template_times(json.loads(self._nws[phase]), now=now)).encode()
        usgs = self._usgs[phase].replace(b"https://earthquake.usgs.gov",
                                         f"{self.base}/usgs".encode())
        self._bodies = {
            "/nws/alerts/active": (nws, "application/geo+json", _etag(nws)),
            "/usgs/summary.geojson": (usgs, "application/json", _etag(usgs)),
        }
        self.changes += self._phase >= 0
        self._phase = phase

    def settings_env(self) -> dict[str, str]:
        """MISSIONWATCH_* settings pointing every source here."""
        env = {
            "MISSIONWATCH_NWS_ALERTS_URL": f"{self.base}/nws/alerts/active",
            "MISSIONWATCH_NWS_API_BASE": f"{self.base}/nws",
            "MISSIONWATCH_USGS_URL": f"{self.base}/usgs/summary.geojson",
            "MISSIONWATCH_NHC_URL": f"{self.base}/nhc/CurrentStorms.json",
            "MISSIONWATCH_WILDFIRE_URL": f"{self.base}/wildfire/query",
            "MISSIONWATCH_FEMA_URL": f"{self.base}/fema/DisasterDeclarationsSummaries",
            "MISSIONWATCH_GDACS_URL": f"{self.base}/gdacs/rss.xml",
            "MISSIONWATCH_TSUNAMI_URLS": f"{self.base}/tsunami/PAAQAtom.xml",
            "MISSIONWATCH_CENSUS_GEOCODER_URL": f"{self.base}/census",
            "MISSIONWATCH_NWS_INTERVAL_S": str(FEED_INTERVAL_S),
            "MISSIONWATCH_USGS_INTERVAL_S": str(FEED_INTERVAL_S),
        }
        for name in ("NHC", "WILDFIRE", "FEMA", "GDACS", "TSUNAMI"):
            env[f"MISSIONWATCH_{name}_INTERVAL_S"] = str(QUIET_INTERVAL_S)
        return env

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A poller that hangs up (a 404 it gave up on, its own shutdown) is no news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


# --------------------------------------------------------------------------------------------
# Processes


class Process:
    """A child process in a session of its own (so a Ctrl+C reaches only us, and we stop it)."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._handle = log.open("w")
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._handle,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n"
                               f"{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (gunicorn: graceful), then SIGKILL to its whole process group."""
        if self.alive():
            self.popen.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # workers left behind, if any
        if self.popen.poll() is None:
            self.popen.wait()
        self._handle.close()


def _store_small_roster(url: str, people: int, now: datetime) -> str:
    from benchmarks.overview import store_roster
    from settings import Settings
    from store.db import open_store

    engine = open_store(url)
    try:
        return store_roster(engine, Settings.from_env({}), people, now)
    finally:
        engine.dispose()


def store_demo_roster(url: str, env: dict[str, str], small: bool) -> str:
    """The demo roster in the store, as an operator does it (``roster generate --if-empty``);
    small: whole households up to SMALL_PEOPLE people, in a child process likewise."""
    if small:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_store_small_roster, (url, SMALL_PEOPLE,
                                                    datetime.now(timezone.utc)))
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "roster", "generate",
                           "--if-empty"], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"roster generate failed:\n{done.stderr[-3000:]}")
    return (done.stdout.strip().splitlines() or ["demo roster stored"])[-1]


def wait_for_polls(engine: Any, settings: Any, timeout: float = 180.0) -> list[Any]:
    """Until every source has been polled once by the poller (fresh, 304 or failed)."""
    from store.feeds import feed_health

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = feed_health(engine, now=datetime.now(timezone.utc), settings=settings)
        if all(h.last_outcome is not None for h in health):
            return health
        time.sleep(0.5)
    raise RuntimeError(f"the poller did not poll every source within {timeout:.0f} s")


# --------------------------------------------------------------------------------------------
# Clients


class Stopped(Exception):
    """The run is over (time, budget or an interrupt): the client stops here."""


@dataclasses.dataclass(slots=True)
class Record:
    kind: str
    started: float        # seconds since the run began
    seconds: float
    outcome: str          # the status code, or the exception's name
    error: bool
    wire_bytes: int       # body bytes as sent (gzip when the server compressed)
    hops: int             # requests the server saw (a redirect followed is two)


class Run:
    """What every client of one run shares: the server, the clock, the budget, stop."""

    def __init__(self, base: str, max_requests: int, timeout: float = 120.0) -> None:
        self.base = base
        self.budget = Budget(max_requests)
        self.stop = threading.Event()
        self.timeout = timeout
        self.t0 = time.monotonic()
        self.callbacks: Callbacks | None = None
        self.maps_keys: set[str] = set()
        self.lock = threading.Lock()

    def wait(self, seconds: float) -> None:
        if seconds > 0 and self.stop.wait(seconds):
            raise Stopped
        if self.stop.is_set():
            raise Stopped


class Http:
    """One simulated browser or API client: its own connections, address and records."""

    def __init__(self, run: Run, address: str, headers: dict[str, str] | None = None,
                 bounded: bool = True) -> None:
        self.run = run
        self.headers = {"X-Forwarded-For": address, **(headers or {})}
        self.bounded = bounded     # False: after the run (metrics), past stop and budget
        self.records: list[Record] = []
        self.session = self._session()

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.headers)
        return session

    def call(self, kind: str, method: str, path: str, *, ok: tuple[int, ...] = (200,),
             raw: bool = False, **kwargs: Any) -> requests.Response | None:
        """The request, recorded; the response if its status is in ``ok``, else None.
        ``raw``: the body is read as sent (not decompressed), as a download is saved."""
        if self.bounded:
            if self.run.stop.is_set():
                raise Stopped
            if not self.run.budget.take():
                self.run.stop.set()
                raise Stopped
        started = time.perf_counter()
        at = time.monotonic() - self.run.t0
        try:
            response = self.session.request(method, self.run.base + path, stream=raw,
                                            timeout=self.run.timeout, **kwargs)
            if raw:
                size = sum(len(c) for c in response.raw.stream(1 << 16, decode_content=False))
            else:
                size = int(response.headers.get("Content-Length") or len(response.content))
        except requests.RequestException as exc:
            self.records.append(Record(kind, at, time.perf_counter() - started,
                                       _exception_name(exc), True, 0, 0))
            cookies = self.session.cookies
            self.session.close()
            self.session = self._session()  # a fresh connection, as a browser would,
            self.session.cookies = cookies  # with the cookies it has
            return None
        good = response.status_code in ok
        self.records.append(Record(kind, at, time.perf_counter() - started,
                                   str(response.status_code), not good, size,
                                   1 + len(response.history)))
        return response if good else None

    def fail(self, reason: str) -> None:
        """Mark the last request an error: its answer was not what the page needs."""
        last = self.records[-1]
        last.outcome, last.error = f"{last.outcome} {reason}", True

    def json(self, kind: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(kind, method, path, **kwargs)
        if response is None:
            return None
        try:
            return response.json()
        except ValueError:
            self.fail("not JSON")
            return None


def _exception_name(exc: BaseException) -> str:
    """``ConnectionError`` and, when urllib3 names it, what lies beneath
    (``ConnectionError: RemoteDisconnected``)."""
    inner = re.search(r"\b([A-Z]\w*(?:Error|Disconnected|Timeout))\(", str(exc))
    name = type(exc).__name__
    return f"{name}: {inner.group(1)}" if inner and inner.group(1) != name else name


class Callbacks:
    """The app's server callbacks from ``/_dash-dependencies``, as dash-renderer reads them,
    and the request bodies it posts for them."""

    def __init__(self, dependencies: list[dict[str, Any]]) -> None:
        self.by_output: dict[str, dict[str, Any]] = {}
        for entry in dependencies:
            if entry.get("clientside_function"):
                continue
            for output in _split_outputs(entry["output"]):
                self.by_output[output] = entry

    def payload(self, output: str, values: dict[str, Any], changed: str) -> dict[str, Any]:
        entry = self.by_output[output]
        outputs = [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
                   for o in _split_outputs(entry["output"])]

        def fill(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{"id": i["id"], "property": i["property"],
                     "value": values.get(f"{i['id']}.{i['property']}")} for i in items]

        return {"output": entry["output"],
                "outputs": outputs if entry["output"].startswith("..") else outputs[0],
                "inputs": fill(entry["inputs"]), "state": fill(entry.get("state", [])),
                "changedPropIds": [changed]}


def _split_outputs(output: str) -> list[str]:
    if output.startswith("..") and output.endswith(".."):
        return output[2:-2].split("...")
    return [output]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every component (a dict with ``props``) in a Dash layout tree."""
    if isinstance(node, dict):
        if "props" in node:
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _prop(tree: Any, component_id: str, prop: str) -> Any:
    for node in _walk(tree):
        if node["props"].get("id") == component_id:
            return node["props"].get(prop)
    return None


def _map_sources(tree: Any) -> list[str]:
    return [n["props"]["src"] for n in _walk(tree)
            if str(n["props"].get("src", "")).startswith("/wall/map/")]


def load_page(http: Http, kind: str, pathname: str) -> Any:
    """The Dash page as the browser loads it once: layout, dependencies, the page router's
    answer for ``pathname`` (the page's content)."""
    run = http.run
    http.call(kind, "GET", "/_dash-layout")
    dependencies = http.json(kind, "GET", "/_dash-dependencies")
    if dependencies is None:
        return None
    with run.lock:
        if run.callbacks is None:
            run.callbacks = Callbacks(dependencies)
    body = http.json(kind, "POST", UPDATE, json=run.callbacks.payload(
        ROUTER, {"_pages_location.pathname": pathname, "_pages_location.search": ""},
        "_pages_location.pathname"))
    if body is None:
        return None
    try:
        return body["response"]["_pages_content"]["children"]
    except (KeyError, TypeError):
        http.fail("no page content")
        return None


def wall_display(http: Http, index: int, secret: str, refresh_s: float, seed: int) -> None:
    """One wall screen: loads the page, then refreshes every ``refresh_s`` and fetches the
    maps whose version changed and each close-up it rotates to (once per version: the
    browser keeps them, ``Cache-Control: max-age``)."""
    run = http.run
    rng = random.Random(seed * 7919 + index)
    try:
        run.wait(rng.uniform(0, refresh_s))    # screens are not in step
        if http.call("wall_load", "GET", f"/wall?token={secret}") is None:
            return
        page = load_page(http, "wall_load", "/wall")
        if page is None:
            return
        maps_key = _prop(page, "wall-maps-key", "data")
        closeups = _prop(page, "wall-closeups", "data") or []
        cached: set[str] = set()

        def fetch(sources: Sequence[str]) -> None:
            for src in sources:
                # 404: a close-up of an incident that ended between refresh and fetch
                if src not in cached and http.call("map_svg", "GET", src,
                                                   ok=(200, 404)) is not None:
                    cached.add(src)

        fetch(_map_sources(page))
        shown, rotated_at = 0, time.monotonic()
        if closeups:
            fetch([closeups[0]["src"]])
        next_at = time.monotonic() + refresh_s
        for tick in itertools.count(1):
            run.wait(next_at - time.monotonic())
            next_at = max(next_at + refresh_s, time.monotonic())
            body = http.json("wall_refresh", "POST", UPDATE, json=run.callbacks.payload(
                WALL_REFRESH, {"wall-refresh.n_intervals": tick, "wall-maps-key.data": maps_key},
                "wall-refresh.n_intervals"))
            response = body.get("response") if isinstance(body, dict) else None
            if body is not None and not isinstance(response, dict):
                http.fail("no response")
            if isinstance(response, dict):
                maps_key = response.get("wall-maps-key", {}).get("data", maps_key)
                with run.lock:
                    run.maps_keys.add(str(maps_key))
                if "wall-maps" in response:
                    fetch(_map_sources(response["wall-maps"]["children"]))
                if "wall-closeups" in response:
                    closeups, shown, rotated_at = response["wall-closeups"]["data"] or [], 0, \
                        time.monotonic()
            if closeups and time.monotonic() - rotated_at >= WALL_ROTATE_S:
                shown, rotated_at = (shown + 1) % len(closeups), time.monotonic()
            if closeups:
                fetch([closeups[shown % len(closeups)]["src"]])
    except Stopped:
        pass


@dataclasses.dataclass
class Work:
    """What the coordinators work on: incidents to open and export, the board."""

    incidents: list[str]                        # keys, most people first
    board_id: int
    targets: list[tuple[str, str, int]]         # the board's targets in calling order


def coordinator(web: Http, api: Http, outcomes: list[Outcome], *, index: int, username: str,
                work: Work, think_s: float, seed: int) -> None:
    """One coordinator: signs in through the form (``web``), loads the overview, then works,
    its API calls with its token (``api``): each task once first (no pause), then a weighted
    mix with ``think_s`` (0.5-1.5x) between tasks. Status updates go to ``outcomes``."""
    run = web.run
    rng = random.Random(seed * 104729 + index)
    seen = {(k, t): e for k, t, e in work.targets}
    state: dict[str, Any] = {"map_key": None, "tick": 0}
    try:
        run.wait(rng.uniform(0, min(2.0, think_s)))
        form = web.call("sign_in", "GET", "/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text) if form else None
        if token is None:
            if form is not None:
                web.fail("no form token")
            return
        signed = web.call("sign_in", "POST", "/login", data={
            "username": username, "password": PASSWORD, "csrf": token.group(1), "next": "/"})
        if signed is None or not signed.history:
            if signed is not None:
                web.fail("not signed in")
            return
        if load_page(web, "page_load", "/") is None:
            return

        def overview() -> None:
            state["tick"] += 1
            body = web.json("overview", "POST", UPDATE, json=run.callbacks.payload(
                OVERVIEW_REFRESH, {"overview-refresh.n_intervals": state["tick"],
                                   "overview-show-hidden.value": [],
                                   "overview-map-key.data": state["map_key"]},
                "overview-refresh.n_intervals"))
            if body is not None:
                try:
                    state["map_key"] = body["response"]["overview-map-key"]["data"]
                except (KeyError, TypeError):
                    web.fail("no map key")

        def incident() -> None:
            key = rng.choice(work.incidents)
            body = web.json("incident_page", "POST", UPDATE, json=run.callbacks.payload(
                ROUTER, {"_pages_location.pathname": f"/incident/{key}",
                         "_pages_location.search": ""}, "_pages_location.pathname"))
            if body is None:
                return
            search = rng.choice([None, None, "a", "an"])
            body = web.json("incident_people", "POST", UPDATE, json=run.callbacks.payload(
                PEOPLE, {"incident-people.page_current": rng.randrange(3),
                         "incident-people.sort_by": [], "incident-search.value": search,
                         "incident-missions.selected_row_ids": [],
                         "incident-people.page_size": 50, "incident-keys.data": [key]},
                "incident-people.page_current"))
            if body is not None and "response" not in body:
                web.fail("no response")

        def export(fmt: str | None = None) -> None:
            fmt = fmt or ("xlsx" if rng.random() < 0.2 else "csv")
            key = rng.choice(work.incidents)
            query = urlencode({"incidents": key}, safe=":,")
            web.call(f"export_{fmt}", "GET", f"/exports/calllist.{fmt}?{query}", raw=True,
                     headers={"Accept-Encoding": "gzip"})

        def board_read() -> None:
            pages = max(1, math.ceil(len(work.targets) / 100))
            api.json("board_read", "GET", f"{V1}/boards/{work.board_id}/targets?per_page=100"
                     f"&page={rng.randrange(1, pages + 1)}")

        def status_write() -> None:
            # as benchmarks.outreach_load: a unique request id; half name the event seen
            pool = work.targets[:50] if rng.random() < 0.3 else work.targets
            kind, target_id, _ = pool[rng.randrange(len(pool))]
            expected = seen[(kind, target_id)] if rng.random() < 0.5 else None
            status, note = rng.choice(STATUSES), f"load c{index} n{len(outcomes)}"
            body: dict[str, Any] = {"status": status, "note": note,
                                    "request_id": uuid.uuid4().hex}
            if expected is not None:
                body["expected_event_id"] = expected
            sent_at = time.monotonic()
            response = api.call("status_write", "POST", f"{V1}/boards/{work.board_id}/targets/"
                                f"{kind}/{target_id}/status", ok=(200, 201, 409), json=body)
            answer_code = api.records[-1].outcome.split()[0]
            http_status = int(answer_code) if answer_code.isdigit() else None
            event_id = None
            if response is not None:
                try:
                    answer = response.json()
                    if response.ok:
                        event_id = answer["event_id"]
                    elif answer["error"].get("current"):
                        event_id = answer["error"]["current"]["event_id"]
                except (ValueError, KeyError, TypeError):
                    api.fail("unreadable answer")
                if event_id is not None:
                    seen[(kind, target_id)] = event_id
            outcomes.append(Outcome(index, body["request_id"], kind, target_id, status, note,
                                    expected, http_status, event_id, api.records[-1].seconds,
                                    sent_at))

        tasks: dict[str, Callable[[], None]] = {
            "overview": overview, "incident": incident, "export": export,
            "board_read": board_read, "status_write": status_write}
        first = [overview, incident, lambda: export("csv"), lambda: export("xlsx"), board_read,
                 status_write]
        rng.shuffle(first)
        for task in first:
            task()
        names, weights = list(TASKS), list(TASKS.values())
        while True:
            run.wait(rng.uniform(0.5 * think_s, 1.5 * think_s))
            tasks[rng.choices(names, weights)[0]]()
    except Stopped:
        pass


# --------------------------------------------------------------------------------------------
# Resources


ROLE_ORDER = {"master": 0, "worker": 1, "poller": 2}


class Resources:
    """CPU seconds over the run and memory at its end of gunicorn's master and workers, the
    poller and this process; RSS sampled every second for its peak."""

    def __init__(self, master: psutil.Process, poller: psutil.Process) -> None:
        self.master, self.poller = master, poller
        self.started: dict[int, tuple[str, float]] = {}
        self.peak_rss: dict[int, int] = collections.defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def processes(self) -> dict[int, tuple[str, psutil.Process]]:
        found = {self.master.pid: ("master", self.master),
                 self.poller.pid: ("poller", self.poller)}
        try:
            for child in self.master.children():
                found[child.pid] = ("worker", child)
        except psutil.NoSuchProcess:
            pass
        me = psutil.Process()
        found[me.pid] = ("load client (this process)", me)
        return found

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def start(self) -> None:
        self.t0 = time.monotonic()
        for pid, (role, process) in self.processes().items():
            self.started[pid] = (role, self._cpu(process))
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            for pid, (_, process) in self.processes().items():
                try:
                    self.peak_rss[pid] = max(self.peak_rss[pid], process.memory_info().rss)
                except psutil.NoSuchProcess:
                    continue

    def finish(self) -> list[dict[str, Any]]:
        self._stop.set()
        seconds = time.monotonic() - self.t0
        rows = []
        now = self.processes()
        for pid, (role, process) in now.items():
            try:
                cpu = self._cpu(process)
                memory = process.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            before = self.started.get(pid)
            rows.append({
                "role": role, "pid": pid, "new_during_run": before is None,
                "cpu_s": round(cpu - (before[1] if before else 0.0), 2),
                "cpu_pct_of_core": round(100 * (cpu - (before[1] if before else 0.0))
                                         / seconds, 1),
                "rss_mib": round(memory.rss / 2**20, 1), "uss_mib": round(memory.uss / 2**20, 1),
                "pss_mib": round(memory.pss / 2**20, 1),
                "peak_rss_mib": round(max(self.peak_rss[pid], memory.rss) / 2**20, 1)})
        gone = [{"role": role, "pid": pid} for pid, (role, _) in self.started.items()
                if pid not in now]
        rows.sort(key=lambda r: (ROLE_ORDER.get(r["role"], 9), r["pid"]))
        return rows + [{"role": f"{g['role']} (GONE during the run)", "pid": g["pid"]}
                       for g in gone]


class Backends:
    """CPU of the PostgreSQL server processes serving the scratch database (best effort:
    they must be on this machine; a backend that ended during the run is not counted)."""

    def __init__(self, admin_url: str, database: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.database = database
        self.started: dict[int, float] = {}

    def _pids(self) -> list[int]:
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :n AND pid <> "
                "pg_backend_pid()"), {"n": self.database})]

    def _cpu(self) -> dict[int, float]:
        out = {}
        for pid in self._pids():
            try:
                times = psutil.Process(pid).cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            out[pid] = times.user + times.system
        return out

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.started = self._cpu()

    def finish(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.t0
        now = self._cpu()
        used = sum(cpu - self.started.get(pid, 0.0) for pid, cpu in now.items())
        self.engine.dispose()
        return {"backends": len(now), "new_during_run": len(set(now) - set(self.started)),
                "ended_during_run": len(set(self.started) - set(now)),
                "cpu_s": round(used, 2), "cpu_pct_of_core": round(100 * used / seconds, 1)}


# --------------------------------------------------------------------------------------------
# /metrics against the client's count


def metrics_check(run: Run, data_dir: Path, token: str, *, workers: Sequence[int],
                  client_requests: int, last_request: float) -> tuple[dict[str, Any], Http]:
    """Every worker's shared counts written after the last request of the run (a worker
    writes at most every 2 s, and whenever it is scraped), then one more scrape: its count,
    /metrics left out, must equal the client's count of requests answered."""
    http = Http(run, "10.3.0.1", {"Authorization": f"Bearer {token}", "Connection": "close"},
                bounded=False)
    time.sleep(2.2)
    files = {pid: data_dir / "metrics" / f"latency-{pid}.json" for pid in workers}

    def stale() -> list[int]:
        return [pid for pid, path in files.items()
                if path.exists() and path.stat().st_mtime < last_request]

    for _ in range(20 * max(1, len(workers))):
        if not stale():
            break
        http.call("metrics", "GET", "/metrics")   # a fresh connection: any worker may answer
    response = http.call("metrics", "GET", "/metrics")
    counted: collections.Counter[str] = collections.Counter()
    routes: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    if response is not None:
        for method, route, _status, count in METRIC_COUNT.findall(response.text):
            counted["metrics" if route == "/metrics" else "other"] += int(count)
            routes[f"{method} {route}"][0] += int(count)
        for method, route, _status, total in METRIC_SUM.findall(response.text):
            routes[f"{method} {route}"][1] += float(total)
    scrapes = len(http.records)
    return {
        "server_requests_excluding_metrics": counted["other"],
        "client_requests_excluding_metrics": client_requests,
        "server_metrics_requests": counted["metrics"], "metrics_requests_made": scrapes,
        "workers_not_flushed": stale(),
        # in-worker seconds per route (from arrival in Flask to the answer; queueing in
        # gunicorn before a thread takes the request is not in it)
        "server_seconds_by_route": {route: {"count": n, "seconds": round(total, 1),
                                            "mean_ms": round(1000 * total / n, 1)}
                                    for route, (n, total) in sorted(
                                        routes.items(), key=lambda item: -item[1][1])
                                    if n},
        "match": counted["other"] == client_requests and counted["metrics"] < scrapes,
    }, http


# --------------------------------------------------------------------------------------------
# Report


def summarise(records: Sequence[Record], seconds: float) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for kind, label in KINDS.items():
        mine = [r for r in records if r.kind == kind]
        if not mine:
            continue
        times = [r.seconds * 1000 for r in mine]
        kinds[kind] = {
            "label": label, "count": len(mine), "errors": sum(r.error for r in mine),
            "outcomes": dict(sorted(collections.Counter(r.outcome for r in mine).items())),
            "error_outcomes": dict(sorted(collections.Counter(
                r.outcome for r in mine if r.error).items())),
            "p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1),
            "p99_ms": round(percentile(times, 99), 1), "max_ms": round(max(times), 1),
            "mb_on_wire": round(sum(r.wire_bytes for r in mine) / 1e6, 2),
        }
    during = [r for r in records if r.kind in RUN_KINDS]
    return {"kinds": kinds, "requests": len(during), "errors": sum(r.error for r in during),
            "throughput_rps": round(len(during) / seconds, 1),
            "slowest": [{"kind": r.kind, "at_s": round(r.started, 1),
                         "ms": round(r.seconds * 1000)}
                        for r in sorted(during, key=lambda r: -r.seconds)[:5]]}


def render(result: dict[str, Any]) -> str:
    c = result["config"]
    out = [f"\n== load: {c['walls']} walls every {c['wall_refresh_s']:g} s (used; the product's "
           f"default is {PRODUCT_WALL_REFRESH_S:g} s), {c['coordinators']} coordinators "
           f"(think {c['think_s']:g} s), gunicorn {c['workers']} workers x {c['threads']} "
           f"threads, PostgreSQL; {result['duration_s']:.1f} s, {c['cores']} cores, load "
           f"average {c['load_average_before']} before, {c['load_average_after']} after",
           "", f"{'kind':<56} {'count':>7} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} "
           f"{'p99 ms':>8} {'max ms':>8} {'MB':>7}"]
    for name, kind in result["kinds"].items():
        if name == "setup":  # partly counted, not timed: its count is in the /metrics check
            continue
        out.append(f"{kind['label']:<56} {kind['count']:>7,} {kind['errors']:>6,} "
                   f"{kind['p50_ms']:>8,.1f} {kind['p95_ms']:>8,.1f} {kind['p99_ms']:>8,.1f} "
                   f"{kind['max_ms']:>8,.0f} {kind['mb_on_wire']:>7,.1f}")
    out.append(f"\nduring the run: {result['requests']:,} requests, {result['errors']:,} errors,"
               f" {result['throughput_rps']:,.1f} requests/s")
    for kind in result["kinds"].values():
        if kind["error_outcomes"]:
            out.append(f"  errors, {kind['label']}: {kind['error_outcomes']}")
    odd = {k["label"]: k["outcomes"] for k in result["kinds"].values()
           if set(k["outcomes"]) - {"200"}}
    for label, outcomes in odd.items():
        out.append(f"  answers, {label}: {outcomes}")
    out.append("  slowest: " + ", ".join(f"{s['kind']} {s['ms']:,} ms at +{s['at_s']:.0f} s"
                                         for s in result["slowest"]))
    out += ["", f"{'process':<36} {'pid':>7} {'CPU s':>7} {'% core':>7} {'RSS MiB':>8} "
            f"{'USS MiB':>8} {'PSS MiB':>8} {'peak RSS':>9} {'requests':>9}"]
    for p in result["processes"]:
        if "cpu_s" not in p:
            out.append(f"{p['role']:<36} {p['pid']:>7}")
            continue
        out.append(f"{p['role'] + (' (new)' if p['new_during_run'] else ''):<36} {p['pid']:>7} "
                   f"{p['cpu_s']:>7.1f} {p['cpu_pct_of_core']:>7.1f} {p['rss_mib']:>8.0f} "
                   f"{p['uss_mib']:>8.0f} {p['pss_mib']:>8.0f} {p['peak_rss_mib']:>9.0f} "
                   f"{p.get('requests') if p.get('requests') is not None else '':>9}")
    pg = result["postgres"]
    out.append(f"{'postgres backends (' + str(pg['backends']) + ')':<36} {'':>7} "
               f"{pg['cpu_s']:>7.1f} {pg['cpu_pct_of_core']:>7.1f}")
    workers = [p for p in result["processes"] if p["role"] == "worker"]
    if workers:
        out.append(f"workers: RSS {sum(p['rss_mib'] for p in workers):,.0f} MiB summed, PSS "
                   f"{sum(p['pss_mib'] for p in workers):,.0f} MiB summed (PSS counts pages "
                   "shared copy-on-write with the master once, split between sharers)")
    m = result["metrics"]
    out.append(f"\n/metrics: {m['server_requests_excluding_metrics']:,} requests counted by "
               f"the workers (all of them, /metrics left out) against "
               f"{m['client_requests_excluding_metrics']:,} answered to the client; /metrics "
               f"itself {m['server_metrics_requests']} of {m['metrics_requests_made']} scrapes "
               f"made: {'MATCH' if m['match'] else 'MISMATCH'}")
    busiest = list(m.get("server_seconds_by_route", {}).items())[:6]
    if busiest:
        out.append("  time in the workers by route (whole server life): " + "; ".join(
            f"{route} {r['count']:,} x {r['mean_ms']:,.0f} ms = {r['seconds']:,.0f} s"
            for route, r in busiest))
    v = result["outreach"]
    out.append(f"status updates: {v['requests']:,} sent, {v['acknowledged']:,} acknowledged, "
               f"{v['conflicts']:,} conflicts (409), lost {v['lost']}, half-stored "
               f"{v['half_stored']}, foreign {v['foreign']}, broken chains "
               f"{v['broken_chains']}: " + ("every acknowledged update is stored exactly once"
                                            if v["ok"] else "FAILED"))
    out.append(f"server: gunicorn {'running' if result['gunicorn_alive'] else 'EXITED'} at the "
               f"end; {result['server_errors_logged']} error or traceback line(s) in its log; "
               f"client failures: {result['client_crashes'] or 'none'}")
    f = result["feeds"]
    out.append(f"feeds: payloads changed {f['payload_changes']} times; requests served "
               f"{f['hits']}; distinct wall map versions seen {f['wall_map_versions']}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# The benchmark


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="default 120, at most 600")
    parser.add_argument("--walls", type=int, default=50, help="wall displays (default 50)")
    parser.add_argument("--coordinators", type=int, default=10, help="default 10")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers (default 2: one per core of this machine)")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per worker (default 4, the product's default)")
    parser.add_argument("--wall-refresh", type=float, default=5.0,
                        help="seconds between a wall's refreshes (default 5: a stressed rate; "
                             f"the product's default is {PRODUCT_WALL_REFRESH_S:g})")
    parser.add_argument("--think", type=float, default=2.0,
                        help="a coordinator's mean pause between tasks, seconds (default 2)")
    parser.add_argument("--feed-change", type=float, default=30.0,
                        help="seconds between changes of the served feed payloads (default 30)")
    parser.add_argument("--max-requests", type=int, default=200_000,
                        help="stop after this many requests in all (default 200,000)")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""),
                        help="a PostgreSQL server URL on loopback (default: TEST_DATABASE_URL); "
                             "a scratch database is created on it and dropped afterwards")
    parser.add_argument("--roster", choices=("demo", "small"), default="demo",
                        help=f"demo: the whole demo roster; small: up to {SMALL_PEOPLE:,} "
                             "people of it (for smoke tests)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be in (0, 600]")
    if not (0 <= args.walls <= 500 and 1 <= args.coordinators <= 100
            and 1 <= args.workers <= 16 and 1 <= args.threads <= 64):
        parser.error("--walls 0-500, --coordinators 1-100, --workers 1-16, --threads 1-64")
    if args.wall_refresh < 0.5 or args.think < 0 or args.feed_change < 1:
        parser.error("--wall-refresh >= 0.5, --think >= 0, --feed-change >= 1")
    if not args.database_url.startswith("postgresql"):
        parser.error("a PostgreSQL server is needed: --database-url or TEST_DATABASE_URL")
    require_loopback(args.database_url, "--database-url")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    try:
        result = run_benchmark(args)
    except KeyboardInterrupt:
        say("interrupted: everything started was stopped and the scratch database dropped")
        return 130
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(render(result))
    ok = (result["errors"] == 0 and result["outreach"]["ok"] and result["metrics"]["match"]
          and not result["client_crashes"])
    return 0 if ok else 1


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from settings import Settings
    from store.db import open_store
    from store.users import issue_token

    folder = Path(tempfile.mkdtemp(prefix="mw-load-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        load_before = "/".join(f"{x:.2f}" for x in os.getloadavg())
        say(f"machine: {os.cpu_count()} cores, load average {load_before}; python "
            f"{platform.python_version()}, gunicorn {version('gunicorn')}, flask "
            f"{version('flask')}, dash {version('dash')}, sqlalchemy {version('sqlalchemy')}, "
            f"psycopg {version('psycopg')}")
        started = time.perf_counter()
        url = cleanup.enter_context(scratch_store(args.database_url, folder))
        database = url.rsplit("/", 1)[-1].split("?")[0]
        feeds = cleanup.enter_context(_started(FeedServer(args.feed_change)))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MISSIONWATCH_") and k != "DATABASE_URL"}
        port = free_port()
        env.update(feeds.settings_env())
        env.update(DATABASE_URL=url, MISSIONWATCH_DATA_DIR=str(folder),
                   MISSIONWATCH_LOG_LEVEL="WARNING", MISSIONWATCH_HOST="127.0.0.1",
                   MISSIONWATCH_PORT=str(port), MISSIONWATCH_WORKERS=str(args.workers),
                   MISSIONWATCH_THREADS=str(args.threads), MISSIONWATCH_TRUSTED_PROXIES="1",
                   MISSIONWATCH_WALL_REFRESH_S=str(args.wall_refresh))
        for key, value in env.items():
            if key.startswith("MISSIONWATCH_") and value.startswith(("http://", "https://")):
                for part in value.split(","):
                    require_loopback(part, key)
        settings = Settings.from_env(env)
        roster = store_demo_roster(url, env, args.roster == "small")
        engine = open_store(url)
        cleanup.callback(engine.dispose)
        now = datetime.now(timezone.utc)
        secrets = make_coordinators(engine, args.coordinators, prefix="coord")
        walls = [issue_token(engine, f"wall {i + 1:03d}", actor="benchmark", now=now)[1]
                 for i in range(max(1, args.walls))]
        say(f"setup: scratch database {database}; {roster}; {args.coordinators} coordinators "
            f"(password, API token), {args.walls} display tokens in "
            f"{time.perf_counter() - started:.0f} s")

        started = time.perf_counter()
        poller = Process("poller", [sys.executable, str(ROOT / "app.py"), "feeds", "poll"], env,
                         folder / "poller.log")
        cleanup.callback(poller.stop)
        health = wait_for_polls(engine, settings)
        poller.check()
        say(f"poller: every source polled once in {time.perf_counter() - started:.0f} s (" +
            ", ".join(f"{h.source} {h.last_outcome}{' recorded' if h.recorded else ''} "
                      f"{h.item_count}" for h in health) + f"); feed server {feeds.base}: NWS "
            f"and USGS change every {args.feed_change:g} s, polled every {FEED_INTERVAL_S} s")

        started = time.perf_counter()
        gunicorn = Process("gunicorn", [sys.executable, "-m", "gunicorn", "--config",
                                        str(ROOT / "deploy" / "gunicorn.conf.py")],
                           env, folder / "gunicorn.log")
        cleanup.callback(gunicorn.stop)
        run = Run(f"http://127.0.0.1:{port}", args.max_requests)
        setup = Http(run, "10.3.0.2", bounded=False)
        deadline = time.monotonic() + 300
        while True:
            gunicorn.check()
            if _listening(port):
                ready = setup.call("setup", "GET", "/healthz", ok=(200, 503))
                if ready is not None and ready.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn was not ready in 300 s")
            time.sleep(0.3)
        master = psutil.Process(gunicorn.popen.pid)
        while len(master.children()) < args.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        say(f"gunicorn: {len(master.children())} workers x {args.threads} threads ready on "
            f"{run.base} in {time.perf_counter() - started:.0f} s")

        api = Http(run, "10.3.0.2", {"Authorization": f"Bearer {secrets[0]}"}, bounded=False)
        listed = api.json("setup", "GET", f"{V1}/incidents?per_page=1000")
        if listed is None:
            raise RuntimeError("the incidents could not be read through the API")
        steady = [i for i in listed["items"] if i["source"] not in ("nws", "usgs")
                  and i["people"] > 0]
        steady.sort(key=lambda i: -i["people"])
        if not steady:
            raise RuntimeError("no incident that affects people in the recorded snapshots")
        top, board = open_top_board(run.base, secrets[0])
        targets = board_targets(run.base, secrets[0], board["board"]["board_id"])
        # those two made their own requests: 2, and one per page of 1,000 targets
        setup.records += [Record("setup", 0, 0, "200", False, 0, 1)] * (
            2 + max(1, math.ceil(len(targets) / 1000)))
        work = Work([i["key"] for i in steady[:10]], board["board"]["board_id"], targets)
        say(f"board {work.board_id} opened on {top['event']} ({top['missions']:,} missions, "
            f"{top['people']:,} people, {len(targets):,} targets); coordinators open and export"
            f" the {len(work.incidents)} recorded incidents with the most people "
            f"({steady[0]['event']}: {steady[0]['people']:,} ... "
            f"{steady[len(work.incidents) - 1]['people']:,})")

        resources = Resources(master, psutil.Process(poller.popen.pid))
        backends = Backends(args.database_url, database)
        say(f"running {args.walls} walls (refresh every {args.wall_refresh:g} s; the product's "
            f"default is {PRODUCT_WALL_REFRESH_S:g} s) and {args.coordinators} coordinators "
            f"for {args.seconds:g} s (at most {args.max_requests:,} requests) ...")
        run.t0 = time.monotonic()
        resources.start()
        backends.start()
        screens = [Http(run, f"10.1.{i // 250}.{i % 250 + 1}") for i in range(args.walls)]
        desks = [(Http(run, f"10.2.{j // 250}.{j % 250 + 1}"),
                  Http(run, f"10.2.{j // 250}.{j % 250 + 1}",
                       {"Authorization": f"Bearer {secrets[j]}"}))
                 for j in range(args.coordinators)]
        outcomes: list[Outcome] = []
        crashes: list[str] = []

        def client(i: int) -> None:
            try:
                if i < args.walls:
                    wall_display(screens[i], i, walls[i], args.wall_refresh, args.seed)
                else:
                    j = i - args.walls
                    coordinator(*desks[j], outcomes, index=j, username=f"coord{j + 1:02d}",
                                work=work, think_s=args.think, seed=args.seed)
            except Exception as exc:  # a client's own bug: counted, never silent
                crashes.append(f"client {i}: {type(exc).__name__}: {exc}")
                say(f"client {i} failed: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=client, args=(i,), name=f"client-{i}", daemon=True)
                   for i in range(args.walls + args.coordinators)]
        try:
            for thread in threads:
                thread.start()
            until = run.t0 + args.seconds
            while time.monotonic() < until and not run.stop.is_set():
                time.sleep(min(0.5, max(0.0, until - time.monotonic())))
                if not gunicorn.alive():
                    say("gunicorn exited during the run")
                    break
        finally:
            run.stop.set()
            for thread in threads:
                thread.join(timeout=150)
        duration = time.monotonic() - run.t0
        last_request = time.time()
        processes = resources.finish()
        postgres = backends.finish()
        load_after = "/".join(f"{x:.2f}" for x in os.getloadavg())

        clients = [setup, api, *screens, *(h for desk in desks for h in desk)]
        records = [r for c in clients for r in c.records]
        answered = sum(r.hops for r in records)
        metrics, scraper = metrics_check(run, folder, walls[0], workers=master_workers(master),
                                         client_requests=answered, last_request=last_request)
        records += scraper.records
        for process in processes:
            if process["role"] == "worker":
                process["requests"] = _served(folder, process["pid"])
        verdict = verify(engine, work.board_id, outcomes)
        result = summarise(records, duration)
        result.update(
            config={"walls": args.walls, "coordinators": args.coordinators,
                    "workers": args.workers, "threads": args.threads, "seconds": args.seconds,
                    "wall_refresh_s": args.wall_refresh,
                    "product_wall_refresh_s": PRODUCT_WALL_REFRESH_S,
                    "wall_rotate_s": WALL_ROTATE_S, "think_s": args.think,
                    "feed_change_s": args.feed_change, "roster": roster, "database": database,
                    "cores": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": load_after, "max_requests": args.max_requests},
            duration_s=round(duration, 1), processes=processes, postgres=postgres,
            metrics=metrics, outreach={**dataclasses.asdict(verdict), "ok": verdict.ok},
            feeds={"payload_changes": feeds.changes, "hits": dict(feeds.hits),
                   "wall_map_versions": len(run.maps_keys)},
            gunicorn_alive=gunicorn.alive(), client_crashes=crashes,
            server_errors_logged=_errors_logged(gunicorn.log))
        return result
    raise AssertionError("unreachable")


def master_workers(master: psutil.Process) -> list[int]:
    try:
        return [child.pid for child in master.children()]
    except psutil.NoSuchProcess:
        return []


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _served(data_dir: Path, pid: int) -> int | None:
    """Requests a worker has answered, from the counts it shares in DATA_DIR/metrics."""
    try:
        rows = json.loads((data_dir / "metrics" / f"latency-{pid}.json").read_text())
    except (OSError, ValueError):
        return None
    return sum(sum(counts) for *_, counts, _total in rows)


def _errors_logged(log: Path) -> int:
    """Lines of the server's log that report an error or a traceback."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines()
               if " ERROR " in line or "Traceback" in line or "[CRITICAL]" in line)


@contextmanager
def _started(server: FeedServer) -> Iterator[FeedServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
