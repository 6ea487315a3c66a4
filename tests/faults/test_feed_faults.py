"""Feed faults: a feed that answers 50 MB, and feeds whose clocks are wrong by hours.

Everything real but the feed: a ThreadingHTTPServer on 127.0.0.1 streams the answers, the
project's HttpClient fetches them, ``poll_source`` runs the NWS module and stores into a real
store (SQLite and PostgreSQL). Time is the ``now=`` of each poll; nothing sleeps.

* 50 MB: the poll fails naming the limit, the last good snapshot stays with its age, the
  download is cut off (the server sees the client hang up before it has sent everything) and
  the poller's memory grows by at most about the limit, never by the 50 MB (peak RSS in a
  process of its own, below).
* Skewed clocks (rule in feeds/clock.py): a feed 3 h behind keeps every alert it lists in
  force, a feed 5 h ahead keeps its future-dated alerts, a wrong ``Date`` over a right payload
  changes nothing but the health note; the skew shows in feed health, /healthz and /metrics.
"""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dashboard.health import Latency, health, metrics_text
from dashboard.services import Services
from feeds import nws as nws_module
from feeds.clock import SKEW_TOLERANCE_S
from feeds.http import HttpClient
from feeds.poller import poll_source
from feeds.sources import RECORDED_DIR
from settings import Settings
from store.db import open_store
from store.feeds import feed_health, load_hazards

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)   # 3 a.m. Eastern
NWS_RECORDING = RECORDED_DIR / "nws" / "weathergov_northwest-alerts_alerts-active.json"
MB = 1024 * 1024
BIG = 50 * MB
PIECE = 64 * 1024
LIMIT = Settings.from_env({}).http_max_bytes     # the default limit, as deployed (25 MB)


# --------------------------------------------------------------------------- a real server


@dataclasses.dataclass
class Answer:
    """One answer: status, headers, and a body produced piece by piece as it is sent."""

    pieces: Callable[[], Iterable[bytes]]
    total: int                          # body bytes the server would send in all
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    chunked: bool = False               # Transfer-Encoding: chunked, no Content-Length
    date: datetime | None = None        # the Date header (None: the server sends none)
    status: int = 200


@dataclasses.dataclass
class Served:
    """What the server did with one request."""

    path: str
    total: int
    sent: int = 0                       # body bytes the kernel accepted before it stopped
    hung_up: bool = False               # the client closed the connection mid-body
    done: threading.Event = dataclasses.field(default_factory=threading.Event)


class StreamServer:
    """Serves ``routes`` (path -> Answer) and records, per request, how much was sent.

    Each connection's send buffer is kept small (256 KiB), so "sent" is close to what the
    client actually took before it hung up.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.served: list[Served] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                answer = outer.routes[self.path.split("?", 1)[0]]
                served = Served(self.path, answer.total)
                outer.served.append(served)
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
                    self.send_response_only(answer.status)
                    if answer.date is not None:
                        self.send_header("Date", email.utils.format_datetime(answer.date,
                                                                             usegmt=True))
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    if answer.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                    elif "Content-Length" not in answer.headers:
                        self.send_header("Content-Length", str(answer.total))
                    self.end_headers()
                    for piece in answer.pieces():
                        if not piece:
                            continue  # an empty chunk would end a chunked body
                        if answer.chunked:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        else:
                            self.wfile.write(piece)
                        served.sent += len(piece)
                    if answer.chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    served.hung_up = True
                    self.close_connection = True
                finally:
                    served.done.set()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                """A client that hangs up is the point of these tests, not an error."""
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def last(self, path: str) -> Served:
        """The last request of ``path``, once the server has finished with it."""
        served = [s for s in self.served if s.path.split("?", 1)[0] == path][-1]
        assert served.done.wait(30), "the server never finished the answer"
        return served

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[StreamServer]:
    stream_server = StreamServer()
    yield stream_server
    stream_server.close()


def fixed(body: bytes, **options: object) -> Answer:
    return Answer(pieces=lambda: [body], total=len(body), **options)  # type: ignore[arg-type]


def repeated(head: bytes, piece: bytes, total: int, **options: object) -> Answer:
    """``head``, then ``piece`` again and again: ``total`` bytes, made as they are sent."""
    count = (total - len(head)) // len(piece)

    def pieces() -> Iterator[bytes]:
        yield head
        yield from itertools.repeat(piece, count)

    return Answer(pieces=pieces, total=len(head) + count * len(piece), **options)  # type: ignore[arg-type]


JSON_START = b'{"type": "FeatureCollection", "features": ['
FEATURE = (b'{"type": "Feature", "id": "x", "geometry": null, "properties": {"event": '
           b'"Flood Warning", "severity": "Severe", "areaDesc": "Somewhere"}},')


def gzip_bomb(decoded: int) -> Answer:
    """A gzip body that decodes to ``decoded`` bytes (a JSON start, then spaces): gzip
    members of 8 MiB of spaces each, about 8 KiB on the wire (gzip allows many members)."""
    member = gzip.compress(b" " * (8 * MB), 9)
    head = gzip.compress(JSON_START, 9)
    count = -(-decoded // (8 * MB))  # at least ``decoded``
    return Answer(pieces=lambda: itertools.chain([head], itertools.repeat(member, count)),
                  total=len(head) + count * len(member),
                  headers={"Content-Type": "application/geo+json", "Content-Encoding": "gzip"})


# The 50 MB answers: (answer, words the reason must contain, the download must be cut off).
def big_answers() -> dict[str, tuple[Answer, tuple[str, ...], bool]]:
    json_type = {"Content-Type": "application/geo+json"}
    return {
        "declared_length": (
            repeated(JSON_START, FEATURE * 400, BIG,
                     headers={**json_type, "Content-Length": str(BIG)}),
            ("FeedFormatError", f"{BIG:,} bytes", f"limit of {LIMIT:,} bytes",
             "MISSIONWATCH_HTTP_MAX_BYTES", "not downloaded"), True),
        "chunked_no_length": (
            repeated(b"", b"x" * PIECE, BIG, headers=json_type, chunked=True),
            ("FeedFormatError", f"limit of {LIMIT:,} bytes", "MISSIONWATCH_HTTP_MAX_BYTES",
             "download stopped"), True),
        "valid_looking_json": (
            repeated(JSON_START, FEATURE * 400, BIG, headers=json_type, chunked=True),
            ("FeedFormatError", f"limit of {LIMIT:,} bytes", "download stopped"), True),
        # 20 MB on the wire, 20 GB decoded: the wire size makes the cut-off visible
        "gzip_bomb": (
            gzip_bomb(20 * 1024 * MB),
            ("FeedFormatError", f"limit of {LIMIT:,} bytes once decoded (gzip)",
             "MISSIONWATCH_HTTP_MAX_BYTES"), True),
        # 50 MB decoded from about 50 KB: everything is sent, none of it is kept
        "small_gzip_bomb": (
            gzip_bomb(BIG),
            ("FeedFormatError", f"limit of {LIMIT:,} bytes once decoded (gzip)"), False),
    }


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def recording() -> dict:
    return json.loads(NWS_RECORDING.read_bytes())


def nws_body(recording: dict, feed_now: datetime) -> bytes:
    """The recording's alerts with a polygon, every time rendered on the feed's clock."""
    payload = nws_module.resolve_template_times(recording, now=feed_now)
    payload["features"] = [f for f in payload["features"] if f.get("geometry")]
    return json.dumps(payload).encode()


def settings_for(base: str, path: str) -> Settings:
    return Settings.from_env({
        "MISSIONWATCH_NWS_ALERTS_URL": f"{base}{path}",
        "MISSIONWATCH_NWS_API_BASE": base,
        "MISSIONWATCH_HTTP_RETRIES": "0",
        "MISSIONWATCH_HTTP_READ_TIMEOUT_S": "10",
    })


def poll(engine, server: StreamServer, path: str, now: datetime):
    settings = settings_for(server.url, path)
    client = HttpClient(settings, sleep=lambda _s: None, clock=lambda: now)
    try:
        return poll_source("nws", engine=engine, settings=settings, client=client, now=now)
    finally:
        client.close()


def nws_health(engine, now: datetime):
    return next(h for h in feed_health(engine, now=now, settings=Settings.from_env({}))
                if h.source == "nws")


# --------------------------------------------------------------------------- 50 MB


@pytest.mark.parametrize("variant", list(big_answers()))
def test_a_50_mb_answer_fails_keeps_the_last_good_data_and_is_cut_off(
    database_url, server, recording, variant
) -> None:
    answer, words, cut_off = big_answers()[variant]
    server.routes["/good"] = fixed(nws_body(recording, T0),
                                   headers={"Content-Type": "application/geo+json"}, date=T0)
    server.routes["/big"] = answer
    engine = open_store(database_url)
    try:
        assert poll(engine, server, "/good", T0).outcome == "fresh"
        before = load_hazards(engine, now=T0)
        assert len(before) > 5

        later = T0 + timedelta(minutes=7)
        outcome = poll(engine, server, "/big", later)
        assert outcome.outcome == "failed"
        assert all(word in outcome.reason for word in words), outcome.reason
        served = server.last("/big")
        if cut_off:  # the client hung up: not all of it was sent
            assert served.hung_up and served.sent < served.total, served
        # the last good snapshot stays, with its age
        assert load_hazards(engine, now=later) == [h for h in before if h.active(later)]
        state = nws_health(engine, later)
        assert (state.last_outcome, state.last_error) == ("failed", outcome.reason)
        assert state.data_as_of == T0 and state.data_age == timedelta(minutes=7)
        assert state.item_count == len(before) and state.consecutive_failures == 1

        # the feed is back: the next good poll recovers
        back = T0 + timedelta(minutes=8)
        server.routes["/good"] = fixed(nws_body(recording, back),
                                       headers={"Content-Type": "application/geo+json"})
        assert poll(engine, server, "/good", back).outcome == "fresh"
        state = nws_health(engine, back)
        assert (state.last_error, state.consecutive_failures, state.data_age) == (
            None, 0, timedelta(0))
    finally:
        engine.dispose()


# Peak memory, measured in a poller process of its own: the test process's server, store
# and other tests would blur it. The kernel's peak RSS (VmHWM) is reset before each poll
# (writing 5 to /proc/self/clear_refs) and compared with the RSS just before: growth = the
# most memory the poll ever held above where it started, C allocations included. Memory the
# allocator kept from the poll before is handed back first (glibc's malloc_trim), or a poll
# could reuse it unseen and look smaller than it is.
CHILD = r"""
import ctypes, json, sys
from datetime import datetime, timedelta, timezone
from feeds.http import HttpClient
from feeds.poller import poll_source
from settings import Settings
from store.db import open_store

def kib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)

base, url, variants = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
engine = open_store(url)
now = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
out = {}
for number, path in enumerate(["good", *variants]):
    settings = Settings.from_env({"MISSIONWATCH_NWS_ALERTS_URL": f"{base}/{path}",
                                  "MISSIONWATCH_NWS_API_BASE": base,
                                  "MISSIONWATCH_HTTP_RETRIES": "0"})
    client = HttpClient(settings, sleep=lambda s: None)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    start = kib("VmRSS")
    result = poll_source("nws", engine=engine, settings=settings, client=client,
                         now=now + timedelta(minutes=number))
    out[path] = {"outcome": result.outcome, "reason": result.reason, "start_kib": start,
                 "growth_kib": kib("VmHWM") - start}
    client.close()
print(json.dumps(out))
"""


def _can_reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _can_reset_peak_rss(),
                    reason="peak RSS is read from Linux's /proc/self/status (glibc)")
def test_a_redirect_with_a_50_mb_body_is_followed_without_reading_it(database_url, server,
                                                                    recording) -> None:
    server.routes["/moved"] = repeated(b"", b"x" * PIECE, BIG, status=302, chunked=True,
                                       headers={"Location": "/good", "Content-Type": "text/html"})
    server.routes["/good"] = fixed(nws_body(recording, T0),
                                   headers={"Content-Type": "application/geo+json"})
    engine = open_store(database_url)
    try:
        outcome = poll(engine, server, "/moved", T0)
        assert outcome.outcome == "fresh" and outcome.items > 5
        served = server.last("/moved")
        assert served.hung_up and served.sent < 8 * MB, served
    finally:
        engine.dispose()


def test_a_50_mb_answer_grows_the_pollers_memory_by_at_most_the_limit(
    server, recording, tmp_path
) -> None:
    answers = big_answers()
    for name, (answer, _words, _cut) in answers.items():
        server.routes[f"/{name}"] = answer
    server.routes["/redirect"] = repeated(b"", b"x" * PIECE, BIG, status=302, chunked=True,
                                          headers={"Location": "/good"})
    server.routes["/good"] = fixed(nws_body(recording, T0),
                                   headers={"Content-Type": "application/geo+json"})
    result = subprocess.run(
        [sys.executable, "-c", CHILD, server.url, f"sqlite:///{tmp_path / 'store.sqlite3'}",
         ",".join([*answers, "redirect"])],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    sys.stdout.write(json.dumps({"limit": LIMIT, **measured}, indent=1) + "\n")  # -s shows it
    assert measured["good"]["outcome"] == "fresh"
    slack = 8 * MB  # interpreter, allocator and socket buffers
    for name in answers:
        growth = measured[name]["growth_kib"] * 1024
        assert measured[name]["outcome"] == "failed", name
        assert growth < LIMIT + slack, (name, growth)  # at most about the limit, not 50 MB+
    # refused on its declared length, or a redirect: nothing of the body was held
    assert measured["declared_length"]["growth_kib"] * 1024 < slack
    assert measured["redirect"]["outcome"] == "fresh"
    assert measured["redirect"]["growth_kib"] * 1024 < slack


# --------------------------------------------------------------------------- skewed clocks


def _ends(hazard) -> datetime | None:
    return hazard.ends or hazard.expires


def listed_on_feed_clock(recording: dict, feed_now: datetime) -> list:
    """What the feed lists as in force on its own clock (the module's own reconcile)."""
    parsed = nws_module.parse_alerts(json.loads(nws_body(recording, feed_now))).hazards
    return sorted(nws_module.reconcile(parsed, now=feed_now), key=lambda h: h.hazard_id)


def test_a_feed_3_hours_behind_keeps_every_alert_it_lists(database_url, server,
                                                          recording) -> None:
    skew = timedelta(hours=-3)
    feed_now = T0 + skew
    server.routes["/alerts"] = fixed(nws_body(recording, feed_now), date=feed_now,
                                     headers={"Content-Type": "application/geo+json"})
    listed = listed_on_feed_clock(recording, feed_now)
    # on our clock some of them look expired already: the case this test is about
    assert 0 < sum(1 for h in listed if _ends(h) is not None and _ends(h) <= T0) < len(listed)
    engine = open_store(database_url)
    try:
        outcome = poll(engine, server, "/alerts", T0)
        assert (outcome.outcome, outcome.items, outcome.clock_skew_s) == (
            "fresh", len(listed), skew.total_seconds())
        assert outcome.expiry_lag_s == -skew.total_seconds()
        assert load_hazards(engine, now=T0) == listed   # none vanished

        later = T0 + timedelta(minutes=20)              # read again, feed not polled meanwhile
        state = nws_health(engine, later)
        assert state.data_as_of == T0 and state.data_age == timedelta(minutes=20)  # our clock
        assert state.clock_skew == skew and state.expiry_lag == -skew
        assert state.clock == "clock 3 h behind"
        assert load_hazards(engine, now=later) == [h for h in listed if h.active(later + skew)]

        # the expiries still count, on the feed's clock: 3 h after they pass there, all gone
        assert load_hazards(engine, now=max(_ends(h) for h in listed) - skew) == []

        # the feed's clock is fixed: our clock again, the lag goes
        fixed_at = T0 + timedelta(minutes=30)
        server.routes["/alerts"] = fixed(nws_body(recording, fixed_at), date=fixed_at,
                                         headers={"Content-Type": "application/geo+json"})
        outcome = poll(engine, server, "/alerts", fixed_at)
        assert (outcome.clock_skew_s, outcome.expiry_lag_s) == (0.0, 0.0)
        state = nws_health(engine, fixed_at)
        assert (state.clock, state.expiry_lag) == (None, timedelta(0))
    finally:
        engine.dispose()


def test_a_feed_5_hours_ahead_keeps_its_future_dated_alerts(database_url, server,
                                                            recording) -> None:
    skew = timedelta(hours=5)
    feed_now = T0 + skew
    server.routes["/alerts"] = fixed(nws_body(recording, feed_now), date=feed_now,
                                     headers={"Content-Type": "application/geo+json"})
    listed = listed_on_feed_clock(recording, feed_now)
    future = [h for h in listed if h.sent > T0]
    assert len(future) > 5                           # "sent" in our future
    engine = open_store(database_url)
    try:
        outcome = poll(engine, server, "/alerts", T0)
        assert (outcome.outcome, outcome.items) == ("fresh", len(listed))
        assert (outcome.clock_skew_s, outcome.expiry_lag_s) == (skew.total_seconds(), 0.0)
        stored = load_hazards(engine, now=T0)
        assert stored == listed                          # none dropped, times as the feed gave
        newest_first = sorted(stored, key=lambda h: h.sent, reverse=True)
        assert [h.sent for h in newest_first] == sorted((h.sent for h in listed), reverse=True)
        state = nws_health(engine, T0 + timedelta(minutes=2))
        assert state.data_age == timedelta(minutes=2)    # our clock, not the feed's
        assert (state.clock, state.expiry_lag) == ("clock 5 h ahead", timedelta(0))
        # judged on our clock: what our clock says is still in force stays in force
        assert load_hazards(engine, now=T0 + timedelta(hours=1)) == [
            h for h in listed if h.active(T0 + timedelta(hours=1))]
    finally:
        engine.dispose()


def test_a_feed_without_a_date_header_ahead_is_measured_from_its_messages(
    database_url, server, recording
) -> None:
    feed_now = T0 + timedelta(hours=5)
    server.routes["/alerts"] = fixed(nws_body(recording, feed_now), date=None,
                                     headers={"Content-Type": "application/geo+json"})
    listed = listed_on_feed_clock(recording, feed_now)
    engine = open_store(database_url)
    try:
        outcome = poll(engine, server, "/alerts", T0)
        newest = max(h.sent for h in listed)
        assert outcome.clock_skew_s == (newest - T0).total_seconds() > SKEW_TOLERANCE_S
        assert outcome.expiry_lag_s == 0.0 and load_hazards(engine, now=T0) == listed
        assert nws_health(engine, T0).clock.endswith("h ahead")
    finally:
        engine.dispose()


@pytest.mark.parametrize("date_skew_h", [-3, 3])
def test_a_wrong_date_header_over_a_right_payload(database_url, server, recording,
                                                  date_skew_h) -> None:
    """The payload is on our clock, only the HTTP Date is off: shown, and at most the age of
    the newest message is added to the expiries (nothing dropped, little kept)."""
    skew = timedelta(hours=date_skew_h)
    server.routes["/alerts"] = fixed(nws_body(recording, T0), date=T0 + skew,
                                     headers={"Content-Type": "application/geo+json"})
    listed = listed_on_feed_clock(recording, T0)
    newest = max(h.sent for h in listed)
    engine = open_store(database_url)
    try:
        outcome = poll(engine, server, "/alerts", T0)
        assert outcome.clock_skew_s == skew.total_seconds()
        assert outcome.expiry_lag_s == 0.0                 # newest message 2 min old
        assert (T0 - newest) <= timedelta(seconds=SKEW_TOLERANCE_S)
        assert load_hazards(engine, now=T0) == listed
        later = T0 + timedelta(hours=2)
        assert load_hazards(engine, now=later) == [h for h in listed if h.active(later)]
        word = "behind" if date_skew_h < 0 else "ahead"
        assert nws_health(engine, T0).clock == f"clock 3 h {word}"
    finally:
        engine.dispose()


def test_the_skew_shows_in_healthz_metrics_and_the_dashboard(database_url, server, recording,
                                                             tmp_path) -> None:
    from dashboard.components import feed_state

    feed_now = T0 - timedelta(hours=3)
    server.routes["/alerts"] = fixed(nws_body(recording, feed_now), date=feed_now,
                                     headers={"Content-Type": "application/geo+json"})
    engine = open_store(database_url)
    try:
        assert poll(engine, server, "/alerts", T0).outcome == "fresh"
        services = Services.from_engine(engine, Settings.from_env({}, data_dir=str(tmp_path)))
        now = T0 + timedelta(minutes=1)
        _status, body = health(services, now=now)
        nws = next(f for f in body["feeds"] if f["source"] == "nws")
        assert (nws["clock_skew_s"], nws["clock"], nws["data_age_s"]) == (
            -10800, "clock 3 h behind", 60)
        text = metrics_text(services, Latency(), now=now)
        assert 'missionwatch_feed_clock_skew_seconds{source="nws"} -10800' in text
        assert 'missionwatch_feed_expiry_lag_seconds{source="nws"} 10800' in text
        assert 'missionwatch_feed_clock_skew_seconds{source="usgs"}' not in text  # not measured
        words, css = feed_state(nws_health(engine, now))
        assert (words, css) == ("live, 60 s old, clock 3 h behind", "feed warn")
        # the dashboard's "in force now" agrees with the store: judged on the feed's clock
        state = services.hazard_state()
        listed = listed_on_feed_clock(recording, feed_now)
        assert sorted(state.table["hazard_id"][state.active_mask(now)]) == [
            h.hazard_id for h in listed]
        naive = [h for h in listed if h.active(now)]
        assert 0 < len(naive) < len(listed)  # on our clock alone some would have vanished
    finally:
        engine.dispose()
