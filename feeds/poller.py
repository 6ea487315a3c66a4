"""The poller: every poll ends as fresh, not modified or failed(reason), never as an exception.

:func:`poll_source` fetches one source through its module, reconciles the result (drops what is
no longer active) and stores it as the source's snapshot in one transaction. Whatever goes
wrong — the network, the payload, a bug in a parser, a module that does not import — the last
good snapshot stays as it was and the source's health records why. :func:`start_scheduler`
polls every source at its own interval in background threads.

Conditional requests: the poller remembers the ETag / Last-Modified of each source's main
request (the first request of a poll) and offers them on the next poll. When the source then
answers 304, the poll is "not_modified": the stored snapshot is kept and its date refreshed,
whatever the module does with the empty body.

Clocks (:mod:`feeds.clock`): each answered poll measures how far the source's clock is off
ours (the main answer's ``Date``, else future-dated messages) and records it in the source's
health. A source behind our clock has its expiries judged on its own clock (``now`` minus the
lag), so an alert it still lists as in force never vanishes because of its clock; one ahead
is judged on ours. Data age is always measured from our ``now``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlencode

from sqlalchemy.engine import Engine

from feeds import FeedError, FeedUnavailable
from feeds.base import Client, FetchContext, Fetched
from feeds.clock import describe_skew, expiry_lag, measure_skew, newest_sent
from feeds.model import Hazard, ParseResult
from feeds.sources import (
    RECORDED_DIR,
    REGISTRY,
    SOURCE_NAMES,
    get_source,
    interval_s,
    load_module,
)
from settings import Settings
from store.feeds import (
    StoreCache,
    Validators,
    feed_health,
    load_validators,
    record_poll,
    replace_hazards,
    short_reason,
    store_recorded,
)
from store.lease import PollerLease

logger = logging.getLogger(__name__)

Outcome = Literal["fresh", "not_modified", "failed"]
Clock = Callable[[], datetime]


@dataclasses.dataclass(frozen=True)
class PollOutcome:
    """How one poll of one source ended."""

    source: str
    outcome: Outcome
    reason: str | None = None        # why it failed (short, no personal data)
    items: int = 0                   # hazards stored (fresh polls)
    skipped: int = 0                 # items the parser could not use
    unplaced: int = 0                # stored hazards without an area
    dropped: int = 0                 # hazards no longer active, left out by reconciliation
    duration_s: float = 0.0
    clock_skew_s: float | None = None  # the source's clock minus ours (None: not measured)
    expiry_lag_s: float = 0.0        # its expiries judged this far behind our clock

    @property
    def ok(self) -> bool:
        """Fresh or not modified: the source answered and the data is current."""
        return self.outcome != "failed"


def request_key(url: str, params: dict[str, Any] | None = None) -> str:
    """The identity of a request for conditional validators: URL plus sorted parameters."""
    if not params:
        return url
    return f"{url}?{urlencode(sorted((str(k), str(v)) for k, v in params.items()))}"


class _ConditionalClient:
    """Wraps the real client for one poll: offers stored validators on the main request and
    remembers how that request was answered."""

    def __init__(self, inner: Client, validators: Validators | None, conditional: bool) -> None:
        self._inner = inner
        self._conditional = conditional
        self._validators = validators if conditional else None
        self._calls = 0
        self.primary: Fetched | None = None
        self.primary_key: str | None = None
        self.offered = False

    def get(self, url: str, *, params: dict[str, Any] | None = None,
            expect: Literal["json", "xml", "binary", "any"] = "json",
            etag: str | None = None, last_modified: str | None = None) -> Fetched:
        first = self._calls == 0
        self._calls += 1
        key = request_key(url, params)
        offered = False
        if (first and etag is None and last_modified is None and self._validators is not None
                and self._validators.key == key):
            etag, last_modified = self._validators.etag, self._validators.last_modified
            offered = True
        fetched = self._inner.get(url, params=params, expect=expect, etag=etag,
                                  last_modified=last_modified)
        if first:
            self.primary, self.primary_key, self.offered = fetched, key, offered
        return fetched

    @property
    def not_modified(self) -> bool:
        """The main request was answered 304 to validators the poller offered."""
        return self.offered and self.primary is not None and self.primary.status == "not_modified"

    def new_validators(self) -> Validators | None:
        """The main request's validators, to offer next time (conditional sources only)."""
        primary = self.primary
        if not self._conditional or primary is None or self.primary_key is None:
            return None
        if primary.status != "fresh":
            return None
        if primary.etag is None and primary.last_modified is None:
            return None
        return Validators(self.primary_key, primary.etag, primary.last_modified)


class UnavailableClient:
    """A client that fails every request, used when the HTTP client cannot be built."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def get(self, url: str, **_: Any) -> Fetched:
        raise FeedUnavailable(f"no HTTP client: {self.reason}")


def default_client(settings: Settings) -> Client:
    """The project's HTTP client (:class:`feeds.http.HttpClient`), or one that fails every
    request, with the reason, when it cannot be imported or built."""
    try:
        from feeds.http import HttpClient

        return HttpClient(settings)
    except Exception as exc:
        logger.error("HTTP client unavailable, every poll will fail: %s", short_reason(exc))
        return UnavailableClient(short_reason(exc))


def _reconcile(module: Any, hazards: tuple[Hazard, ...], now: datetime) -> list[Hazard]:
    """The module's own ``reconcile(hazards, now=)`` if it has one, else drop inactive."""
    reconcile = getattr(module, "reconcile", None)
    if callable(reconcile):
        kept = list(reconcile(hazards, now=now))
    else:
        kept = [hazard for hazard in hazards if hazard.active(now)]
    by_id: dict[str, Hazard] = {}
    for hazard in kept:
        if not isinstance(hazard, Hazard):
            raise TypeError(f"reconcile returned a {type(hazard).__name__}, not a Hazard")
        by_id[hazard.hazard_id] = hazard
    if len(by_id) < len(kept):
        logger.warning("%s: %d duplicate hazard id(s), the last of each kept",
                       getattr(module, "SOURCE", "?"), len(kept) - len(by_id))
    return list(by_id.values())


def _check_result(result: object) -> ParseResult:
    if not isinstance(result, ParseResult):
        raise TypeError(f"fetch returned a {type(result).__name__}, not a ParseResult")
    return result


def poll_source(
    name: str, *, engine: Engine, settings: Settings, client: Client, now: datetime
) -> PollOutcome:
    """Poll one source and store what it gives; never raises (bad arguments aside).

    Fresh: the reconciled hazards replace the source's snapshot. Not modified: the snapshot
    stays and counts as current at ``now``. Failed: the snapshot stays as it was, with its
    date; the health row records the attempt and the reason.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    source = get_source(name)
    started = time.perf_counter()
    try:
        module = load_module(name)
        tracker = _ConditionalClient(client, load_validators(engine, name), source.conditional)
        context = FetchContext(client=tracker, cache=StoreCache(engine), settings=settings,
                               now=now)
        try:
            result = _check_result(module.fetch(context))
        except Exception:
            if tracker.not_modified:
                result = None
            else:
                raise
        server = tracker.primary.server_date if tracker.primary is not None else None
        if tracker.not_modified:
            skew = measure_skew(server, None, now=now)
            record_poll(engine, name, now=now, outcome="not_modified", clock_skew_s=skew)
            outcome = PollOutcome(name, "not_modified", clock_skew_s=skew,
                                  duration_s=time.perf_counter() - started)
            logger.info("%s: not modified", name)
            return outcome
        assert result is not None
        newest = newest_sent(hazard.sent for hazard in result.hazards)
        skew = measure_skew(server, newest, now=now)
        lag = expiry_lag(skew, newest, now=now)
        kept = _reconcile(module, result.hazards, now - timedelta(seconds=lag))
        unplaced = sum(1 for hazard in kept if not hazard.is_placed)
        stored = replace_hazards(engine, name, kept, now=now, skipped=result.skipped,
                                 unplaced=unplaced, validators=tracker.new_validators(),
                                 clock_skew_s=skew, expiry_lag_s=lag)
        if result.skipped:
            logger.warning("%s: %d item(s) skipped as malformed", name, result.skipped)
        if describe_skew(skew):
            logger.warning("%s: %s; expiries judged %.0f s behind our clock", name,
                           describe_skew(skew), lag)
        return PollOutcome(name, "fresh", items=stored, skipped=result.skipped,
                           unplaced=unplaced, dropped=len(result.hazards) - len(kept),
                           duration_s=time.perf_counter() - started, clock_skew_s=skew,
                           expiry_lag_s=lag)
    except Exception as exc:
        reason = short_reason(exc)
        if isinstance(exc, FeedError):
            logger.warning("%s: poll failed, last good data kept: %s", name, reason)
        else:
            logger.exception("%s: poll failed (unexpected %s), last good data kept: %s", name,
                             type(exc).__name__, reason)
        try:
            record_poll(engine, name, now=now, outcome="failed", reason=reason)
        except Exception as store_exc:
            logger.error("%s: could not record the failed poll: %s", name,
                         short_reason(store_exc))
        return PollOutcome(name, "failed", reason=reason,
                           duration_s=time.perf_counter() - started)


def poll_all(
    *, engine: Engine, settings: Settings, client: Client, now: datetime,
    sources: Sequence[str] | None = None,
) -> list[PollOutcome]:
    """Poll each source once, one after the other (all of them by default)."""
    names = SOURCE_NAMES if sources is None else tuple(sources)
    for name in names:
        get_source(name)  # validate every name before polling any
    return [poll_source(name, engine=engine, settings=settings, client=client, now=now)
            for name in names]


# --------------------------------------------------------------------------- recordings


def recorded_hazards(name: str) -> tuple[list[Hazard], int]:
    """The hazards of ``name``'s bundled recording, parsed and reconciled on its own clock
    (``recording.recorded_at``), and how many items the parser skipped. ValueError when the
    source has no recording."""
    recording = get_source(name).recording
    if recording is None:
        raise ValueError(f"{name}: no recorded snapshot is bundled")
    module = load_module(name)
    payloads = [(RECORDED_DIR / path).read_bytes() for path in recording.files]
    result = _check_result(recording.replay(module, payloads, recording.recorded_at))
    return _reconcile(module, result.hazards, recording.recorded_at), result.skipped


def load_recorded_snapshots(
    engine: Engine, settings: Settings, *, now: datetime,
    sources: Sequence[str] | None = None,
) -> dict[str, int]:
    """Store the bundled recording of every source that never had a live success.

    Each recording is parsed with its module's pure parse functions and reconciled on its own
    clock (``recorded_at``, see :class:`feeds.sources.Recording`), then stored labelled as
    recorded with that date; the first live success replaces it. A source already showing
    this recording is left alone; a source whose module is missing or fails is skipped and
    logged. Returns the hazard count stored per source.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    names = SOURCE_NAMES if sources is None else tuple(sources)
    health = {item.source: item for item in feed_health(engine, now=now, settings=settings)}
    loaded: dict[str, int] = {}
    skipped = 0
    for name in names:
        recording = get_source(name).recording
        state = health[name]
        if state.last_success is not None:
            continue  # it has (or had) live data: never shown as a recording again
        if recording is None:
            logger.info("%s: no recorded snapshot bundled", name)
            skipped += 1
            continue
        if state.recorded and state.recorded_at == recording.recorded_at:
            continue  # already showing this recording
        clock = recording.recorded_at
        try:
            kept, skipped_items = recorded_hazards(name)
            unplaced = sum(1 for hazard in kept if not hazard.is_placed)
            if store_recorded(engine, name, kept, now=now, recorded_at=clock,
                              skipped=skipped_items, unplaced=unplaced):
                loaded[name] = len(kept)
        except Exception as exc:
            skipped += 1
            logger.warning("%s: recorded snapshot not loaded: %s", name, short_reason(exc))
    logger.info("recorded snapshots: %d source(s) loaded, %d skipped", len(loaded), skipped)
    return loaded


# --------------------------------------------------------------------------- scheduler


def utc_now() -> datetime:
    """The wall clock in UTC (the scheduler's default clock)."""
    return datetime.now(timezone.utc)


def scheduled_poll(name: str, engine: Engine, settings: Settings, client: Client,
                   clock: Clock) -> PollOutcome:
    """One scheduled poll: :func:`poll_source` at the clock's time."""
    return poll_source(name, engine=engine, settings=settings, client=client, now=clock())


def prune_cache(engine: Engine, clock: Clock) -> int:
    """Drop feed-cache entries older than a month (a scheduled job; never raises)."""
    try:
        return StoreCache(engine).prune(now=clock())
    except Exception as exc:
        logger.warning("feed cache not pruned: %s", short_reason(exc))
        return 0


def start_scheduler(
    engine: Engine, settings: Settings, *, client: Client | None = None,
    sources: Iterable[str] | None = None, clock: Clock = utc_now, run_now: bool = True,
    paused: bool = False,
) -> Any:
    """Start a background scheduler with one job per source at the source's own interval.

    Jobs coalesce missed runs, never overlap (one instance per source) and may start up to
    half an interval late. Each source gets its own :func:`default_client` unless ``client``
    is given. A daily job prunes the feed cache. With ``run_now`` every source is polled at
    once, then every interval; ``clock`` gives each poll its ``now``. Returns the started
    ``BackgroundScheduler``; call ``shutdown()`` to stop it.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    names = SOURCE_NAMES if sources is None else tuple(sources)
    for name in names:
        get_source(name)
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    for name in names:
        # one HTTP client (one requests.Session) per source: jobs run in parallel threads
        source_client = client if client is not None else default_client(settings)
        interval = interval_s(name, settings)
        assert interval is not None  # every registered source has one
        options: dict[str, Any] = {}
        if run_now:  # the scheduler's own time base is the wall clock
            options["next_run_time"] = utc_now()
        scheduler.add_job(
            scheduled_poll, trigger="interval", seconds=interval, id=f"poll-{name}",
            name=f"poll {REGISTRY[name].title}",
            kwargs={"name": name, "engine": engine, "settings": settings,
                    "client": source_client, "clock": clock},
            coalesce=True, max_instances=1, misfire_grace_time=max(1, interval // 2),
            replace_existing=True, **options,
        )
    scheduler.add_job(
        prune_cache, trigger="interval", hours=24, id="prune-feed-cache",
        name="prune the feed cache", kwargs={"engine": engine, "clock": clock},
        coalesce=True, max_instances=1, replace_existing=True,
    )
    scheduler.start(paused=paused)
    logger.info("poller started: %d source(s)", len(names))
    return scheduler


def run_poller(
    engine: Engine, settings: Settings, stop: threading.Event, *,
    sources: Iterable[str] | None = None, client: Client | None = None,
    check_s: float = 15.0, lease: PollerLease | None = None,
) -> None:
    """Poll until ``stop`` is set, but only while this process holds the poller lease.

    Without the lease (another poller runs) it stands by and tries again every ``check_s``
    seconds, so a second poller is a ready standby. With it, the scheduler polls every source;
    every ``check_s`` seconds the lease is checked, and when it is lost (a PostgreSQL restart
    ends the session that held it) the scheduler stops until the lease is taken again, so two
    pollers never poll at once. Recorded snapshots are loaded for sources never polled live,
    each time the lease is taken.
    """
    names = SOURCE_NAMES if sources is None else tuple(sources)
    lease = lease or PollerLease(engine)
    scheduler = None
    waiting_logged = False
    try:
        while not stop.is_set():
            if scheduler is None:
                if lease.acquire():
                    logger.info("poller lease taken: polling %s", ", ".join(names))
                    waiting_logged = False
                    try:
                        load_recorded_snapshots(engine, settings, now=utc_now(), sources=names)
                    except Exception as exc:  # the store may be down: live polls still try
                        logger.warning("recorded snapshots not loaded: %s", short_reason(exc))
                    scheduler = start_scheduler(engine, settings, client=client, sources=names)
                elif not waiting_logged:
                    logger.info("the poller lease is not free (another poller holds it, or "
                                "the store does not answer): standing by")
                    waiting_logged = True
            elif not lease.held():
                logger.warning("poller lease lost (the store restarted?): polling paused "
                               "until it is taken again")
                scheduler.shutdown(wait=True)
                scheduler = None
                continue
            stop.wait(check_s)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        lease.release()
