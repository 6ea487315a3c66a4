"""``/healthz`` for load balancers and ``/metrics`` for Prometheus.

* ``GET /healthz`` (no sign-in; nothing personal, no counts of people): whether the store
  answers, each feed's state and data age, and whether the roster's impact index is loaded.
  503 when the store does not answer or no roster is loaded (do not send users here yet); 200
  otherwise, with ``"status": "degraded"`` while a feed is down or stale (the app works; its
  data may be missing hazards), else ``"ok"``.
* ``GET /metrics`` (display role, e.g. a display token as ``Authorization: Bearer``): the
  Prometheus text format: feed ages, staleness and failures, request latency per route
  (a histogram), active hazards, incidents, and what they affect (aggregates only).

Request latency is measured per process; under several worker processes (gunicorn, see
``app.wsgi``) the workers share their counts through files in ``DATA_DIR/metrics``, so any
worker's answer covers them all.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dashboard.services import Services, overview
from store.drills import running_drills
from store.feeds import feed_health

logger = logging.getLogger(__name__)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Latency:
    """Request durations per (method, route rule, status class), as histogram buckets.

    With ``directory`` (several worker processes, see ``app.wsgi``), each process also writes
    its counts to ``directory/latency-<pid>.json`` from a thread of its own, at most every
    ``flush_s`` seconds and only after new requests (and whenever it is scraped), so the file
    is never more than ``flush_s`` behind; :meth:`lines` adds up every file there: whichever
    worker answers the scrape reports the whole server. Files of workers that have gone stay, so the
    counts never go down while the server runs; the server's start empties the directory.
    """

    def __init__(self, directory: Path | None = None, flush_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], list[int]] = defaultdict(
            lambda: [0] * (len(BUCKETS) + 1))
        self._sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self._directory = directory
        self._flush_s = flush_s
        self._flusher_pid = 0   # the process whose flushing thread runs (threads do not fork)
        self._dirty = threading.Event()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, f"{status // 100}xx")
        index = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
        with self._lock:
            self._counts[key][index] += 1
            self._sums[key] += seconds
        self._dirty.set()
        if self._directory is not None and self._flusher_pid != os.getpid():
            self._start_flusher()

    def _snapshot(self) -> dict[tuple[str, str, str], tuple[list[int], float]]:
        with self._lock:
            return {k: (list(v), self._sums[k]) for k, v in self._counts.items()}

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher_pid == os.getpid():
                return
            self._flusher_pid = os.getpid()
        threading.Thread(target=self._flush_now_and_then, name="latency-flush",
                         daemon=True).start()

    def _flush_now_and_then(self) -> None:
        """Every ``flush_s`` seconds, write the counts if requests came since the last write."""
        while True:
            self._dirty.wait()
            self._dirty.clear()
            self.flush()
            time.sleep(self._flush_s)

    def flush(self) -> None:
        """Write this process's counts to its file in the directory (atomically)."""
        if self._directory is None:
            return
        rows = [[*key, counts, total] for key, (counts, total) in self._snapshot().items()]
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            target = self._directory / f"latency-{os.getpid()}.json"
            temp = target.with_suffix(f".tmp{threading.get_ident()}")
            temp.write_text(json.dumps(rows))
            temp.replace(target)
        except OSError as exc:  # metrics must never fail a request
            logger.warning("request latency not shared with the other workers: %s", exc)

    def _merged(self) -> dict[tuple[str, str, str], tuple[list[int], float]]:
        if self._directory is None:
            return self._snapshot()
        self.flush()
        merged: dict[tuple[str, str, str], tuple[list[int], float]] = {}
        for path in sorted(self._directory.glob("latency-*.json")):
            try:
                rows = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a worker's file being replaced right now: counted next scrape
            for method, route, status, counts, total in rows:
                key = (method, route, status)
                if key in merged:
                    before, before_total = merged[key]
                    merged[key] = ([a + b for a, b in zip(before, counts, strict=True)],
                                   before_total + total)
                else:
                    merged[key] = (list(counts), float(total))
        return merged

    def lines(self) -> list[str]:
        name = "missionwatch_http_request_duration_seconds"
        out = [f"# HELP {name} Time to answer a request, by method, route and status class.",
               f"# TYPE {name} histogram"]
        items = sorted((k, counts, total) for k, (counts, total) in self._merged().items())
        for (method, route, status), counts, total in items:
            labels = f'method="{method}",route="{_escape(route)}",status="{status}"'
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                edge = "+Inf" if bound == float("inf") else f"{bound:g}"
                out.append(f'{name}_bucket{{{labels},le="{edge}"}} {running}')
            out.append(f"{name}_sum{{{labels}}} {total:.6f}")
            out.append(f"{name}_count{{{labels}}} {running}")
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _store_ok(services: Services) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        with services.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception:  # any failure to reach the store is "down", whatever the driver says
        return False, (time.perf_counter() - started) * 1000
    return True, (time.perf_counter() - started) * 1000


def health(services: Services, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``/healthz``."""
    now = now or datetime.now(timezone.utc)
    reachable, latency = _store_ok(services)
    body: dict[str, Any] = {"time": now.isoformat(),
                            "store": {"ok": reachable, "latency_ms": round(latency, 1)}}
    if not reachable:
        body["status"] = "down"
        return 503, body
    feeds = feed_health(services.engine, now=now, settings=services.settings)
    body["feeds"] = [{
        "source": f.source, "stale": f.stale, "recorded": f.recorded,
        "last_outcome": f.last_outcome, "consecutive_failures": f.consecutive_failures,
        "data_age_s": None if f.data_age is None else round(f.data_age.total_seconds()),
        "clock_skew_s": None if f.clock_skew is None else round(f.clock_skew.total_seconds()),
        "clock": f.clock,
    } for f in feeds]
    view = services.roster_view()
    loaded = view.version is not None
    body["index"] = {"loaded": loaded, "roster_version": view.version}
    if not loaded:
        body["status"] = "no roster"
        return 503, body
    down = [f.source for f in feeds if not f.recorded and f.stale]
    body["status"] = "degraded" if down else "ok"
    if down:
        body["feeds_down"] = down
    return 200, body


def metrics_text(services: Services, latency: Latency, now: datetime | None = None) -> str:
    """The Prometheus exposition of the app's state now."""
    now = now or datetime.now(timezone.utc)
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP missionwatch_{name} {help_text}")
        lines.append(f"# TYPE missionwatch_{name} gauge")
        for labels, value in samples:
            lines.append(f"missionwatch_{name}{labels} {value:g}")

    feeds = feed_health(services.engine, now=now, settings=services.settings)
    gauge("feed_data_age_seconds", "Age of each feed's data (-1: no data).",
          [(f'{{source="{f.source}"}}', -1 if f.data_age is None else
            round(f.data_age.total_seconds(), 1)) for f in feeds])
    gauge("feed_stale", "1 when a feed's data cannot be trusted as current.",
          [(f'{{source="{f.source}"}}', float(f.stale and not f.recorded)) for f in feeds])
    gauge("feed_recorded", "1 when a feed shows a bundled recording, not live data.",
          [(f'{{source="{f.source}"}}', float(f.recorded)) for f in feeds])
    gauge("feed_consecutive_failures", "Failed polls in a row, per feed.",
          [(f'{{source="{f.source}"}}', f.consecutive_failures) for f in feeds])
    gauge("feed_items", "Hazards in each feed's stored snapshot.",
          [(f'{{source="{f.source}"}}', f.item_count) for f in feeds])
    gauge("feed_clock_skew_seconds", "A feed's clock minus ours at its last answer "
          "(negative: behind); feeds never measured are left out.",
          [(f'{{source="{f.source}"}}', round(f.clock_skew.total_seconds(), 1))
           for f in feeds if f.clock_skew is not None])
    gauge("feed_expiry_lag_seconds", "How far behind our clock a feed's expiries are judged "
          "(0 unless its clock is behind ours).",
          [(f'{{source="{f.source}"}}', round(f.expiry_lag.total_seconds(), 1))
           for f in feeds])
    view = services.roster_view()
    gauge("index_loaded", "1 when a roster and its impact index are loaded.",
          [("", float(view.version is not None))])
    if view.version is not None:
        data = overview(services, now)
        totals = data.totals
        gauge("roster_missions", "Missions in the roster.", [("", view.stats["missions"])])
        gauge("roster_people", "Members and dependents in the roster.",
              [("", view.stats["people"])])
        gauge("active_hazards", "Hazards in force, all feeds.", [("", data.active)])
        gauge("incidents", "Active hazards that are incidents under the rules.",
              [("", totals["incidents"])])
        gauge("missions_affected", "Missions the incidents affect (each once).",
              [("", totals["missions"])])
        gauge("people_affected", "Members and dependents the incidents affect (each once).",
              [("", totals["people"])])
        gauge("people_affected_with_immunity", "Of them, with full or official-acts "
              "immunity.", [("", totals["with_immunity"])])
    gauge("drills_running", "Drills running or paused.",
          [("", len(running_drills(services.engine)))])
    lines += latency.lines()
    return "\n".join(lines) + "\n"


def init_app(app: Any, services: Services, metrics_dir: Path | None = None) -> Latency:
    """Register ``/healthz`` (public) and ``/metrics`` (display role), and time requests;
    ``metrics_dir`` shares the request latency of several worker processes."""
    import flask

    from dashboard import auth

    server = app.server
    latency = Latency(metrics_dir)
    auth.declare_route(server, "/healthz", auth.PUBLIC)
    auth.declare_route(server, "/metrics", "display")

    def _start_clock() -> None:
        flask.g.mw_started = time.perf_counter()

    # first of all, so requests the sign-in gate answers (401, 403) are timed too
    server.before_request_funcs.setdefault(None, []).insert(0, _start_clock)

    @server.after_request
    def _stop_clock(response: flask.Response) -> flask.Response:
        started = getattr(flask.g, "mw_started", None)
        rule = flask.request.url_rule
        if started is not None:
            latency.observe(flask.request.method, rule.rule if rule is not None else "other",
                            response.status_code, time.perf_counter() - started)
        return response

    def healthz() -> flask.Response:
        status, body = health(services)
        return flask.Response(flask.json.dumps(body) + "\n", status=status,
                              mimetype="application/json")

    def metrics() -> flask.Response:
        return flask.Response(metrics_text(services, latency),
                              mimetype="text/plain; version=0.0.4")

    server.add_url_rule("/healthz", "mw_healthz", healthz, methods=["GET"])
    server.add_url_rule("/metrics", "mw_metrics", metrics, methods=["GET"])
    return latency
