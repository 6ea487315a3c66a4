"""The poller against a real local HTTP server: whatever fails, the last good data stays.

The NWS source module and the project's HTTP client run unchanged; only the feed URL points at
a ThreadingHTTPServer on 127.0.0.1. Payloads are real NWS alerts (the bundled weather.gov
recording, its templated times rendered on the test's clock).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from feeds import FeedUnavailable
from feeds import nws as nws_module
from feeds import sources as source_registry
from feeds.base import Fetched
from feeds.http import HttpClient
from feeds.model import Hazard, ParseResult
from feeds.poller import (
    PollOutcome,
    UnavailableClient,
    load_recorded_snapshots,
    poll_all,
    poll_source,
    request_key,
    start_scheduler,
)
from feeds.sources import RECORDED_DIR, SOURCE_NAMES
from settings import Settings
from store.db import open_store
from store.feeds import feed_health, load_hazards, load_validators, replace_hazards

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
NWS_RECORDING = RECORDED_DIR / "nws" / "weathergov_northwest-alerts_alerts-active.json"


# --------------------------------------------------------------------------- a real server


@dataclasses.dataclass
class Reply:
    """What the server answers to one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/geo+json"
    etag: str | None = None            # sent, and a matching If-None-Match gets a 304
    hold: threading.Event | None = None  # answer only once this is set (a server that hangs)
    declared_length: int | None = None   # a Content-Length larger than the body: cut off


class FeedServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 answering from a script of replies."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply(status=404)]
        self.requests: list[dict[str, str]] = []
        self.holds: list[threading.Event] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append({"path": self.path,
                                        **{k.lower(): v for k, v in self.headers.items()}})
                reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
                try:
                    if reply.hold is not None:
                        reply.hold.wait(timeout=30)
                    if reply.etag is not None and self.headers.get("If-None-Match") == reply.etag:
                        self.send_response(304)
                        self.send_header("ETag", reply.etag)
                        self.end_headers()
                        return
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    length = reply.declared_length or len(reply.body)
                    self.send_header("Content-Length", str(length))
                    if reply.etag is not None:
                        self.send_header("ETag", reply.etag)
                    self.end_headers()
                    self.wfile.write(reply.body)
                    if reply.declared_length:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        """Answer with these replies in turn; the last one repeats."""
        self.replies = list(replies)
        self.holds.extend(r.hold for r in replies if r.hold is not None)

    def close(self) -> None:
        for hold in self.holds:
            hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    feed_server = FeedServer()
    yield feed_server
    feed_server.close()


def closed_port() -> int:
    """A local port nothing listens on (connection refused).

    The socket stays bound without listening until the test process ends, so no other server
    (another test worker) can take the port meanwhile and answer.
    """
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    atexit.register(held.close)
    return held.getsockname()[1]


def feed_settings(base_url: str, **env: str) -> Settings:
    """Settings as a deployment would give them: environment variables, here pointing at us."""
    return Settings.from_env({
        "MISSIONWATCH_NWS_ALERTS_URL": f"{base_url}/alerts/active",
        "MISSIONWATCH_NWS_API_BASE": base_url,
        "MISSIONWATCH_HTTP_RETRIES": "0",
        "MISSIONWATCH_HTTP_READ_TIMEOUT_S": "0.5",
        "MISSIONWATCH_HTTP_CONNECT_TIMEOUT_S": "2",
        **env,
    })


@pytest.fixture
def make_client() -> Iterator:
    """HttpClient factory that never sleeps between retries; sessions closed afterwards."""
    made: list[HttpClient] = []

    def make(settings: Settings) -> HttpClient:
        client = HttpClient(settings, sleep=lambda _s: None, clock=lambda: T0)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# --------------------------------------------------------------------------- payloads


@pytest.fixture(scope="module")
def nws_recording() -> dict:
    return json.loads(NWS_RECORDING.read_bytes())


def nws_payload(recording: dict, now: datetime, count: int = 6) -> dict:
    """The recording's alerts that carry a polygon (no zone lookups), times rendered at now."""
    payload = nws_module.resolve_template_times(recording, now=now)
    payload["features"] = [f for f in payload["features"] if f.get("geometry")][:count]
    return payload


def body(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def ids(engine, now: datetime) -> list[str]:
    return [h.hazard_id for h in load_hazards(engine, now=now)]


def health_of(engine, source: str, now: datetime, settings: Settings):
    return next(h for h in feed_health(engine, now=now, settings=settings) if h.source == source)


# --------------------------------------------------------------------------- faults


def test_fresh_poll_stores_the_real_alerts(store_engine, server, make_client,
                                           nws_recording) -> None:
    payload = nws_payload(nws_recording, T0)
    server.script(Reply(body=body(payload)))
    settings = feed_settings(server.url)
    outcome = poll_source("nws", engine=store_engine, settings=settings,
                          client=make_client(settings), now=T0)
    assert (outcome.outcome, outcome.reason, outcome.items, outcome.skipped) == (
        "fresh", None, 6, 0)
    stored = load_hazards(store_engine, now=T0)
    assert len(stored) == 6 and all(h.geometry_method == "polygon" for h in stored)
    assert stored == sorted(nws_module.reconcile(nws_module.parse_alerts(payload).hazards,
                                                 now=T0), key=lambda h: h.hazard_id)
    health = health_of(store_engine, "nws", T0, settings)
    assert (health.last_outcome, health.item_count, health.stale) == ("fresh", 6, False)
    assert server.requests[0]["user-agent"] == settings.user_agent


FAULTS = {
    # name: (reply builder, words the reason must contain)
    "timeout": (lambda good: Reply(hold=threading.Event()), ("FeedUnavailable", "timed out")),
    "http_500": (lambda good: Reply(status=500, body=b"oops"), ("FeedUnavailable", "HTTP 500")),
    "http_404": (lambda good: Reply(status=404), ("FeedRejected", "HTTP 404")),
    "html_error_page_with_200": (
        lambda good: Reply(body=b"<!DOCTYPE html><html><body><h1>503 Service Unavailable"
                                b"</h1></body></html>", content_type="text/html"),
        ("FeedFormatError", "HTML page")),
    "truncated_json": (lambda good: Reply(body=good[: len(good) // 2]),
                       ("FeedFormatError", "does not parse")),
    "connection_cut_mid_body": (
        lambda good: Reply(body=good[:2000], declared_length=len(good)),
        ("FeedUnavailable", "connection broke")),
    "oversized_body": (lambda good: Reply(body=good + b" " * 5000),
                       ("FeedFormatError", "over the limit")),
    "json_but_not_geojson": (lambda good: Reply(body=b'{"type": "Feature", "features": 1}'),
                             ("FeedFormatError", "FeatureCollection")),
}


def test_a_bad_day_of_faults_keeps_the_last_good_snapshot(store_engine, server, make_client,
                                                          nws_recording) -> None:
    """One good poll, then every fault in turn: each fails with its reason, nothing is lost."""
    good = body(nws_payload(nws_recording, T0))
    settings = feed_settings(server.url, MISSIONWATCH_HTTP_MAX_BYTES=str(len(good) + 1000))
    client = make_client(settings)
    server.script(Reply(body=good))
    assert poll_source("nws", engine=store_engine, settings=settings, client=client,
                       now=T0).outcome == "fresh"
    before = load_hazards(store_engine, now=T0)
    assert len(before) == 6

    for number, (fault, (build, words)) in enumerate(FAULTS.items(), start=1):
        server.script(build(good))
        now = T0 + timedelta(minutes=number)
        outcome = poll_source("nws", engine=store_engine, settings=settings, client=client,
                              now=now)
        assert outcome.outcome == "failed" and not outcome.ok, fault
        assert all(word in outcome.reason for word in words), (fault, outcome.reason)
        assert load_hazards(store_engine, now=now) == before, fault
        health = health_of(store_engine, "nws", now, settings)
        assert health.last_outcome == "failed" and health.last_error == outcome.reason, fault
        assert health.last_success == T0 and health.data_age == timedelta(minutes=number)
        assert health.item_count == len(before) and health.consecutive_failures == number

    server.script(Reply(body=good))  # the feed is back
    back = T0 + timedelta(hours=1)
    assert poll_source("nws", engine=store_engine, settings=settings, client=client,
                       now=back).outcome == "fresh"
    health = health_of(store_engine, "nws", back, settings)
    assert (health.last_error, health.consecutive_failures, health.data_age) == (
        None, 0, timedelta(0))


def test_connection_refused(store_engine, make_client, nws_recording) -> None:
    settings = feed_settings(f"http://127.0.0.1:{closed_port()}")
    outcome = poll_source("nws", engine=store_engine, settings=settings,
                          client=make_client(settings), now=T0)
    assert outcome.outcome == "failed" and "cannot connect" in outcome.reason
    health = health_of(store_engine, "nws", T0, settings)
    assert health.stale and health.last_success is None and health.item_count == 0


def test_500_then_200_within_one_poll_is_retried(store_engine, server, make_client,
                                                 nws_recording) -> None:
    good = body(nws_payload(nws_recording, T0))
    server.script(Reply(status=500), Reply(body=good))
    settings = feed_settings(server.url, MISSIONWATCH_HTTP_RETRIES="1")
    outcome = poll_source("nws", engine=store_engine, settings=settings,
                          client=make_client(settings), now=T0)
    assert outcome.outcome == "fresh" and len(server.requests) == 2


def test_500_then_200_over_two_polls(store_engine, server, make_client, nws_recording) -> None:
    good = body(nws_payload(nws_recording, T0))
    server.script(Reply(status=503), Reply(body=good))
    settings = feed_settings(server.url)
    client = make_client(settings)
    first = poll_source("nws", engine=store_engine, settings=settings, client=client, now=T0)
    assert first.outcome == "failed" and "HTTP 503" in first.reason
    assert load_hazards(store_engine, now=T0) == []
    t1 = T0 + timedelta(minutes=1)
    second = poll_source("nws", engine=store_engine, settings=settings, client=client, now=t1)
    assert second.outcome == "fresh" and second.items == 6
    health = health_of(store_engine, "nws", t1, settings)
    assert health.last_error is None and health.consecutive_failures == 0


def test_304_with_etag_keeps_the_data_and_refreshes_its_date(store_engine, server, make_client,
                                                             nws_recording) -> None:
    settings = feed_settings(server.url)
    client = make_client(settings)
    good = body(nws_payload(nws_recording, T0))
    server.script(Reply(body=good, etag='"v1"'))
    assert poll_source("nws", engine=store_engine, settings=settings, client=client,
                       now=T0).outcome == "fresh"
    assert "if-none-match" not in server.requests[0]
    validators = load_validators(store_engine, "nws")
    assert validators is not None and validators.etag == '"v1"'
    assert validators.key == request_key(settings.nws_alerts_url)
    before = load_hazards(store_engine, now=T0)

    t1 = T0 + timedelta(minutes=5)
    outcome = poll_source("nws", engine=store_engine, settings=settings, client=client, now=t1)
    assert outcome.outcome == "not_modified" and outcome.reason is None
    assert server.requests[1]["if-none-match"] == '"v1"'
    assert load_hazards(store_engine, now=t1) == before
    health = health_of(store_engine, "nws", t1, settings)
    assert (health.last_outcome, health.last_success, health.data_age) == (
        "not_modified", t1, timedelta(0))
    assert health.item_count == len(before)

    # the feed changes: a new ETag, fewer alerts
    t2 = T0 + timedelta(minutes=6)
    server.script(Reply(body=body(nws_payload(nws_recording, T0, count=2)), etag='"v2"'))
    assert poll_source("nws", engine=store_engine, settings=settings, client=client,
                       now=t2).items == 2
    assert load_validators(store_engine, "nws").etag == '"v2"'


def test_a_feature_with_broken_geometry_is_skipped_and_counted(store_engine, server,
                                                               make_client,
                                                               nws_recording) -> None:
    payload = nws_payload(nws_recording, T0)
    payload["features"][1]["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [1]]]}
    payload["features"][2]["geometry"] = {"type": "Polygon",
                                          "coordinates": [[[500, 0], [501, 1], [500, 1]]]}
    server.script(Reply(body=body(payload)))
    settings = feed_settings(server.url)
    outcome = poll_source("nws", engine=store_engine, settings=settings,
                          client=make_client(settings), now=T0)
    assert (outcome.outcome, outcome.items, outcome.skipped) == ("fresh", 4, 2)
    assert health_of(store_engine, "nws", T0, settings).skipped == 2


def test_restart_with_the_network_unreachable_keeps_the_data_and_its_age(
    database_url, server, make_client, nws_recording
) -> None:
    settings = feed_settings(server.url)
    server.script(Reply(body=body(nws_payload(nws_recording, T0))))
    engine = open_store(database_url)
    assert poll_source("nws", engine=engine, settings=settings, client=make_client(settings),
                       now=T0).items == 6
    before = load_hazards(engine, now=T0)
    engine.dispose()
    server.close()  # the network is gone

    offline = feed_settings(f"http://127.0.0.1:{closed_port()}")
    restarted = open_store(database_url)
    try:
        t1 = T0 + timedelta(hours=2)
        outcome = poll_source("nws", engine=restarted, settings=offline,
                              client=make_client(offline), now=t1)
        assert outcome.outcome == "failed" and "cannot connect" in outcome.reason
        assert load_hazards(restarted, now=T0) == before
        still_active = [h for h in before if h.active(t1)]
        assert 0 < len(still_active) < len(before)  # some expired meanwhile: they go
        assert load_hazards(restarted, now=t1) == still_active
        health = health_of(restarted, "nws", t1, offline)
        assert health.data_age == timedelta(hours=2) and health.data_as_of == T0
        assert health.stale and not health.recorded
    finally:
        restarted.dispose()


# --------------------------------------------------------------------------- broken modules


def _quake(native: str, **changes) -> Hazard:
    return Hazard(hazard_id=f"usgs:{native}", source="usgs", event=f"M 5 {native}",
                  category="earthquake", center_lon=-118.0, center_lat=35.0, radius_km=30.0,
                  **changes)


def _gdacs(native: str, **changes) -> Hazard:
    return Hazard(hazard_id=f"gdacs:{native}", source="gdacs", event=f"EQ {native}",
                  category="earthquake", **changes)


def fake_module(monkeypatch, name: str, fetch, **attributes) -> None:
    """Register an in-memory module as the source ``name`` (the registry imports it lazily)."""
    module = types.ModuleType(f"mw_test_{name}")
    module.SOURCE = attributes.pop("SOURCE", name)
    if fetch is not None:
        module.fetch = fetch
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(source_registry.REGISTRY, name, dataclasses.replace(
        source_registry.REGISTRY[name], module=module.__name__))


def test_a_module_that_raises_fails_alone(store_engine, monkeypatch, server, make_client,
                                          nws_recording) -> None:
    replace_hazards(store_engine, "usgs", [_quake("old")], now=T0 - timedelta(hours=1))

    def broken_fetch(ctx):
        return {}["features"]  # a parser bug: KeyError

    fake_module(monkeypatch, "usgs", broken_fetch)
    fake_module(monkeypatch, "gdacs",
                lambda ctx: ParseResult(hazards=(_gdacs("1"), _gdacs("2")), skipped=1))
    monkeypatch.setitem(source_registry.REGISTRY, "fema", dataclasses.replace(
        source_registry.REGISTRY["fema"], module="feeds.no_such_module"))
    server.script(Reply(body=body(nws_payload(nws_recording, T0))))
    settings = feed_settings(server.url)
    outcomes = {o.source: o for o in poll_all(
        engine=store_engine, settings=settings, client=make_client(settings), now=T0,
        sources=["usgs", "fema", "gdacs", "nws"])}
    assert outcomes["usgs"].outcome == "failed"
    assert outcomes["usgs"].reason == "KeyError: 'features'"
    assert outcomes["fema"].outcome == "failed"
    assert outcomes["fema"].reason.startswith("ModuleNotFoundError")
    assert (outcomes["gdacs"].outcome, outcomes["gdacs"].items, outcomes["gdacs"].skipped) == (
        "fresh", 2, 1)
    assert outcomes["nws"].outcome == "fresh"
    stored = load_hazards(store_engine, now=T0)
    assert [h.hazard_id for h in stored if h.source == "usgs"] == ["usgs:old"]
    health = {h.source: h for h in feed_health(store_engine, now=T0, settings=settings)}
    assert health["usgs"].last_error == "KeyError: 'features'" and health["usgs"].item_count == 1
    assert "feeds.no_such_module" in health["fema"].last_error


MODULE_FAILURES = {
    # name: (fetch, extra module attributes, words of the reason)
    "wrong-type": (lambda ctx: [], {}, "TypeError: fetch returned a list, not a ParseResult"),
    "wrong-source": (lambda ctx: ParseResult(hazards=(_gdacs("x"),)), {},
                     "belongs to source 'gdacs', not 'usgs'"),
    "wrong-SOURCE": (lambda ctx: ParseResult(hazards=()), {"SOURCE": "gdacs"},
                     "ImportError: mw_test_usgs.SOURCE must be 'usgs'"),
    "no-fetch": (None, {}, "ImportError: mw_test_usgs has no fetch(ctx) function"),
    "reconcile-bug": (lambda ctx: ParseResult(hazards=(_quake("a"),)),
                      {"reconcile": lambda hazards, now: 1 / 0}, "ZeroDivisionError"),
    "client-bug": (lambda ctx: ctx.client.get("http://127.0.0.1:9/never"), {},
                   "RuntimeError: no network"),
    "feed-error": (lambda ctx: (_ for _ in ()).throw(FeedUnavailable("down")), {},
                   "FeedUnavailable: down"),
    "recursion": (lambda ctx: (_ for _ in ()).throw(RecursionError("deep")), {},
                  "RecursionError: deep"),
}


def test_every_kind_of_module_failure_ends_as_failed(store_engine, monkeypatch) -> None:
    replace_hazards(store_engine, "usgs", [_quake("kept")], now=T0)

    class NoNetwork:
        def get(self, url, **kwargs):
            raise RuntimeError("no network")

    for number, (name, (fetch, extra, reason)) in enumerate(MODULE_FAILURES.items(), start=1):
        fake_module(monkeypatch, "usgs", fetch, **extra)
        outcome = poll_source("usgs", engine=store_engine, settings=Settings.from_env({}),
                              client=NoNetwork(), now=T0 + timedelta(minutes=number))
        assert outcome.outcome == "failed" and reason in outcome.reason, (name, outcome)
        assert ids(store_engine, T0) == ["usgs:kept"], name
    health = health_of(store_engine, "usgs", T0, Settings.from_env({}))
    assert health.consecutive_failures == len(MODULE_FAILURES)


def test_reconciliation_drops_what_is_no_longer_active(store_engine, monkeypatch) -> None:
    hazards = (_quake("open"), _quake("gone", expires=T0 - timedelta(seconds=1)),
               _quake("cancel", message_type="cancel"), _quake("open"))
    fake_module(monkeypatch, "usgs", lambda ctx: ParseResult(hazards=hazards))
    outcome = poll_source("usgs", engine=store_engine, settings=Settings.from_env({}),
                          client=None, now=T0)  # type: ignore[arg-type]
    assert (outcome.items, outcome.dropped, outcome.unplaced) == (1, 3, 0)
    assert ids(store_engine, T0) == ["usgs:open"]

    seen = {}

    def own_reconcile(items, *, now):
        seen["now"] = now
        return [h for h in items if h.hazard_id != "usgs:open"]

    fake_module(monkeypatch, "usgs", lambda ctx: ParseResult(hazards=hazards),
                reconcile=own_reconcile)
    outcome = poll_source("usgs", engine=store_engine, settings=Settings.from_env({}),
                          client=None, now=T0)  # type: ignore[arg-type]
    assert seen["now"] == T0 and outcome.items == 2
    assert ids(store_engine, T0 - timedelta(days=1)) == ["usgs:gone"]  # cancel: never active


def test_a_conditional_poll_of_a_module_that_tolerates_304(store_engine, monkeypatch) -> None:
    """Validators are offered on the first request only, and a 304 wins over what fetch does."""
    calls: list[dict] = []

    class Scripted:
        def get(self, url, *, params=None, expect="json", etag=None, last_modified=None):
            calls.append({"url": url, "etag": etag, "last_modified": last_modified})
            if etag == '"e1"':
                return Fetched("not_modified", b"", url, etag)
            return Fetched("fresh", b"{}", url, '"e1"', "Fri, 27 Nov 2026 12:00:00 GMT")

    def fetch(ctx):
        ctx.client.get("https://example.test/feed", params={"b": 2, "a": 1})
        ctx.client.get("https://example.test/detail")
        return ParseResult(hazards=(_quake("a"),))

    fake_module(monkeypatch, "usgs", fetch)
    settings = Settings.from_env({})
    first = poll_source("usgs", engine=store_engine, settings=settings, client=Scripted(),
                        now=T0)
    assert first.outcome == "fresh"
    assert load_validators(store_engine, "usgs").key == "https://example.test/feed?a=1&b=2"
    second = poll_source("usgs", engine=store_engine, settings=settings, client=Scripted(),
                         now=T0 + timedelta(minutes=1))
    assert second.outcome == "not_modified"
    assert [c["etag"] for c in calls] == [None, None, '"e1"', None]
    assert calls[2]["last_modified"] == "Fri, 27 Nov 2026 12:00:00 GMT"

    # a source with two feeds (tsunami) never sends validators: one 304 says nothing of both
    assert not source_registry.REGISTRY["tsunami"].conditional


def test_poll_refuses_naive_time_and_unknown_sources(store_engine) -> None:
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        poll_source("nws", engine=store_engine, settings=Settings.from_env({}),
                    client=None, now=T0.replace(tzinfo=None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source must be one of nws, usgs"):
        poll_all(engine=store_engine, settings=Settings.from_env({}), client=None,
                 now=T0, sources=["nws", "twitter"])  # type: ignore[arg-type]


def test_poll_outcome_is_frozen() -> None:
    outcome = PollOutcome("nws", "failed", reason="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.outcome = "fresh"  # type: ignore[misc]


# --------------------------------------------------------------------------- recordings


def test_recorded_snapshots_fill_the_sources_that_never_succeeded(store_engine) -> None:
    settings = Settings.from_env({})
    replace_hazards(store_engine, "usgs", [_quake("live", expires=T0 - timedelta(days=2))],
                    now=T0 - timedelta(days=3))
    loaded = load_recorded_snapshots(store_engine, settings, now=T0)
    # usgs had a live success (even an old one): it is never shown as a recording again;
    # wildfire has no recording bundled
    assert set(loaded) == {"nws", "nhc", "fema", "gdacs", "tsunami"}
    assert loaded["nws"] == 529 and loaded["gdacs"] == 16 and loaded["tsunami"] == 1
    assert loaded["nhc"] == 3
    assert loaded["fema"] == 0  # the page's declarations had all closed by its rundate

    health = {h.source: h for h in feed_health(store_engine, now=T0, settings=settings)}
    for name in loaded:
        recording = source_registry.REGISTRY[name].recording
        item = health[name]
        assert item.recorded and item.recorded_at == recording.recorded_at, name
        assert item.stale and item.last_success is None and item.last_outcome is None, name
        assert item.data_as_of == recording.recorded_at, name
        assert item.data_age == T0 - recording.recorded_at, name
    assert not health["usgs"].recorded and not health["wildfire"].recorded
    assert health["nws"].unplaced > 0 and health["nws"].item_count == 529

    shown = load_hazards(store_engine, now=T0)
    by_source = {name: [h for h in shown if h.source == name] for name in SOURCE_NAMES}
    assert by_source["usgs"] == []  # its live data expired; no recording replaces it
    assert len(by_source["nws"]) == 529 and len(by_source["nhc"]) == 3
    # NWS times were templated; rendered on the recording's clock, every alert was sent in
    # the days before the recording and is in force at it
    recorded_at = health["nws"].recorded_at
    assert all(timedelta(days=-4) < h.sent - recorded_at <= timedelta(0)
               for h in by_source["nws"])
    assert all(h.active(recorded_at) for h in by_source["nws"])
    assert {h.hazard_id for h in by_source["nhc"]} == {
        "nhc:al182012:cone", "nhc:al182012:ww:TWR", "nhc:al182012:ww:TWA"}

    # the hazards of every source module read back equal to what its parser made
    for name in loaded:
        recording = source_registry.REGISTRY[name].recording
        module = source_registry.load_module(name)
        parsed = recording.replay(module, [(RECORDED_DIR / f).read_bytes()
                                           for f in recording.files], recording.recorded_at)
        expected = [h for h in parsed.hazards if h.active(recording.recorded_at)]
        if hasattr(module, "reconcile"):
            expected = list(module.reconcile(parsed.hazards, now=recording.recorded_at))
        stored = load_hazards(store_engine, now=T0, include_expired=True, sources=[name])
        assert stored == sorted(expected, key=lambda h: h.hazard_id), name

    # a second start changes nothing; a live success replaces the recording for good
    assert load_recorded_snapshots(store_engine, settings, now=T0 + timedelta(hours=1)) == {}
    replace_hazards(store_engine, "gdacs", [_gdacs("live")], now=T0 + timedelta(hours=2))
    assert load_recorded_snapshots(store_engine, settings, now=T0 + timedelta(hours=3)) == {}
    assert [h.hazard_id for h in load_hazards(store_engine, now=T0, sources=["gdacs"])] == [
        "gdacs:live"]


def test_a_missing_module_skips_its_recording_only(store_engine, monkeypatch, caplog) -> None:
    monkeypatch.setitem(source_registry.REGISTRY, "gdacs", dataclasses.replace(
        source_registry.REGISTRY["gdacs"], module="feeds.not_written_yet"))
    with caplog.at_level("INFO", logger="feeds.poller"):
        loaded = load_recorded_snapshots(store_engine, Settings.from_env({}), now=T0,
                                         sources=["gdacs", "tsunami"])
    assert loaded == {"tsunami": 1}
    assert "gdacs: recorded snapshot not loaded: ModuleNotFoundError" in caplog.text
    assert "1 source(s) loaded, 1 skipped" in caplog.text
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        load_recorded_snapshots(store_engine, Settings.from_env({}), now=T0.replace(tzinfo=None))


def test_serve_loads_recordings_before_it_polls(store_engine) -> None:
    import argparse

    import app

    scheduler = app._start_feeds(store_engine, Settings.from_env({}),
                                 argparse.Namespace(debug=False, no_poll=True))
    assert scheduler is None
    assert {h.source for h in feed_health(store_engine, now=T0, settings=Settings.from_env({}))
            if h.recorded} == {"nws", "nhc", "fema", "gdacs", "tsunami", "usgs"}


# --------------------------------------------------------------------------- scheduler


def test_scheduler_has_one_job_per_source_at_its_interval(store_engine) -> None:
    settings = Settings.from_env({"MISSIONWATCH_USGS_INTERVAL_S": "45"})
    scheduler = start_scheduler(store_engine, settings, client=UnavailableClient("test"),
                                paused=True, run_now=False)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert sorted(jobs) == sorted([*(f"poll-{name}" for name in SOURCE_NAMES),
                                       "prune-feed-cache"])
        usgs = jobs["poll-usgs"]
        assert usgs.trigger.interval == timedelta(seconds=45)
        assert jobs["poll-fema"].trigger.interval == timedelta(seconds=settings.fema_interval_s)
        assert (usgs.coalesce, usgs.max_instances, usgs.misfire_grace_time) == (True, 1, 22)
    finally:
        scheduler.shutdown(wait=False)


def test_scheduler_runs_a_poll(store_engine, monkeypatch) -> None:
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    fake_module(monkeypatch, "gdacs", lambda ctx: ParseResult(hazards=(_gdacs("7"),)))
    done = threading.Event()
    results = []
    scheduler = start_scheduler(store_engine, Settings.from_env({}),
                                client=UnavailableClient("test"),
                                sources=["gdacs"], clock=lambda: T0, paused=True)
    try:
        def listener(event) -> None:
            results.append(getattr(event, "retval", None) or event.exception)
            done.set()

        scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.resume()
        assert done.wait(timeout=20)
    finally:
        scheduler.shutdown(wait=True)
    assert results[0].outcome == "fresh"
    assert ids(store_engine, T0) == ["gdacs:7"]


# --------------------------------------------------------------------------- command line


def run_app(*args: str, database_url: str, data_dir: Path, **env: str):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("MISSIONWATCH_") and k != "DATABASE_URL"}
    environ.update(DATABASE_URL=database_url, MISSIONWATCH_DATA_DIR=str(data_dir),
                   MISSIONWATCH_LOG_LEVEL="WARNING", **env)
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                          text=True, env=environ, cwd=ROOT, timeout=120, check=False)


def test_cli_status_and_hazards_as_json(tmp_path, server, nws_recording) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(url)
    replace_hazards(engine, "usgs", [
        _quake("open"), _quake("old", expires=datetime(2020, 1, 1, tzinfo=timezone.utc))],
        now=T0)
    engine.dispose()
    server.script(Reply(body=body(nws_payload(nws_recording, datetime.now(timezone.utc),
                                              count=3))))
    polled = run_app("feeds", "poll", "--once", "--source", "nws", database_url=url,
                     data_dir=tmp_path, MISSIONWATCH_NWS_ALERTS_URL=f"{server.url}/a")
    assert polled.returncode == 0, polled.stderr
    assert "nws" in polled.stdout and "fresh" in polled.stdout
    refused = run_app("feeds", "poll", "--once", "--source", "nws", database_url=url,
                      data_dir=tmp_path,
                      MISSIONWATCH_NWS_ALERTS_URL=f"http://127.0.0.1:{closed_port()}/a",
                      MISSIONWATCH_HTTP_RETRIES="0")
    assert refused.returncode == 1 and "cannot connect" in refused.stdout

    status = run_app("feeds", "status", "--json", database_url=url, data_dir=tmp_path)
    assert status.returncode == 0, status.stderr
    feeds = {item["source"]: item for item in json.loads(status.stdout)["feeds"]}
    assert list(feeds) == list(SOURCE_NAMES)
    assert feeds["nws"]["last_outcome"] == "failed" and feeds["nws"]["item_count"] == 3
    assert "cannot connect" in feeds["nws"]["last_error"]
    assert feeds["usgs"]["last_success"] == T0.isoformat() and feeds["usgs"]["stale"] is True
    assert feeds["gdacs"]["last_outcome"] is None and feeds["gdacs"]["stale"] is True

    active = run_app("hazards", "--json", database_url=url, data_dir=tmp_path)
    assert active.returncode == 0, active.stderr
    listed = json.loads(active.stdout)["hazards"]
    assert [h["source"] for h in listed] == ["nws"] * 3 + ["usgs"]
    assert listed[-1]["hazard_id"] == "usgs:open" and listed[-1]["geometry_method"] is None
    assert all(h["geometry_method"] == "polygon" for h in listed[:3])
    assert {"hazard_id", "source", "event", "category", "severity", "expires",
            "geometry_method", "recorded"} <= set(listed[0])
    everything = run_app("hazards", "--json", "--all", database_url=url, data_dir=tmp_path)
    assert "usgs:old" in {h["hazard_id"] for h in json.loads(everything.stdout)["hazards"]}
    text = run_app("feeds", "status", database_url=url, data_dir=tmp_path)
    assert "nws" in text.stdout and "STALE" in text.stdout
