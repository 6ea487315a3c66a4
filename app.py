"""Mission Watch: the entry point and command line.

Run ``python app.py --help`` for the commands. With no command, ``serve`` starts the dashboard
on http://127.0.0.1:8050 with the synthetic demo roster, generating it on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from settings import SETTINGS, Settings

logger = logging.getLogger("missionwatch")

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _ProgressPrinter:
    """Prints import progress to stderr about every 10%, so long imports show they are alive."""

    def __init__(self) -> None:
        self.last: tuple[str, int] = ("", -1)
        self.started = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        step = percent // 10
        if (stage, step) == self.last:
            return
        self.last = (stage, step)
        elapsed = time.monotonic() - self.started
        print(f"  {stage}: {done:,}/{total:,} ({percent}%) after {elapsed:.1f} s",
              file=sys.stderr, flush=True)


def _open(settings: Settings):
    from store.db import open_store

    return open_store(settings.resolved_database_url)


@contextlib.contextmanager
def _store(settings: Settings):
    """The store for one short command; its connections are closed afterwards."""
    engine = _open(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def _open_with_roster(settings: Settings):
    """Open the store; on first use (no roster ever stored) generate the demo roster."""
    from store.importer import store_demo_roster
    from store.roster import current_import

    engine = _open(settings)
    if current_import(engine) is None:
        print("No roster yet: generating the synthetic demo roster (first use only)...",
              file=sys.stderr)
        store_demo_roster(engine, settings, actor="system:first-use", now=_now(),
                          progress=_ProgressPrinter())
    return engine


def _write_failed(what: str, path: Path, exc: OSError) -> int:
    """One line for a file a command could not write (a full disk, no permission), naming the
    file; the writers leave nothing behind, so nothing half-written is there."""
    reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    print(f"{what} failed: cannot write {path}: {reason}. Nothing was written there; free "
          "some space (or fix the folder) and try again.", file=sys.stderr)
    return EXIT_INVALID


def _print_problems(problems, limit: int | None = None) -> None:
    shown = problems if limit is None else problems[:limit]
    for problem in shown:
        print(f"  {problem}", file=sys.stderr)
    if limit is not None and len(problems) > limit:
        print(f"  ... and {len(problems) - limit} more", file=sys.stderr)


# --------------------------------------------------------------------------- commands


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from dashboard.app import create_app
    from dashboard.services import Services

    engine = _open_with_roster(settings)
    _first_admin(engine, settings)
    services = Services.from_engine(engine, settings)
    app = create_app(settings, services)
    scheduler = _start_feeds(engine, settings, args)
    # build the caches in the background, so the first screen to connect need not wait
    threading.Thread(target=services.warm, kwargs={"freeze": True}, name="warm-caches",
                     daemon=True).start()
    print(f"Mission Watch on http://{settings.host}:{settings.port}/  (Ctrl+C to stop; "
          f"sign in at /login)", file=sys.stderr)
    if not settings.secure_cookies and not settings.on_loopback:
        print("WARNING: serving beyond loopback with MISSIONWATCH_COOKIE_SECURE=false: "
              "session cookies travel in clear text unless a TLS proxy is in front.",
              file=sys.stderr)
    try:
        app.run(host=settings.host, port=settings.port, debug=args.debug)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
    return EXIT_OK


FIRST_ADMIN = "admin"


def _first_admin(engine, settings: Settings) -> None:
    """First run: create the administrator with a random password and print it, once.

    The password goes to the terminal only (never to a log); the store keeps its hash.
    """
    from store.users import count_users, create_user, generate_password

    if count_users(engine) > 0:
        return
    password = generate_password()
    create_user(engine, FIRST_ADMIN, "admin", password, actor="system:first-run", now=_now())
    print("\n" + "=" * 72 + "\n"
          f"First run: created the administrator '{FIRST_ADMIN}' with the password\n\n"
          f"    {password}\n\n"
          "It is shown only this once (the store keeps only its hash). Sign in at\n"
          f"http://{settings.host}:{settings.port}/login, then add people with\n"
          "'python app.py users add NAME --role coordinator'. Lost it? Run\n"
          f"'python app.py users reset-password {FIRST_ADMIN}'.\n" + "=" * 72 + "\n",
          file=sys.stderr, flush=True)


def _start_feeds(engine, settings: Settings, args: argparse.Namespace):
    """Recorded snapshots for sources never polled, then the poller (unless --no-poll)."""
    from werkzeug.serving import is_running_from_reloader

    if args.debug and not is_running_from_reloader():
        return None  # the reloader's parent process: the child serves and polls
    from feeds.poller import load_recorded_snapshots

    load_recorded_snapshots(engine, settings, now=_now())
    if args.no_poll:
        return None
    return _PollerThread(engine, settings)


class _PollerThread:
    """The poller in a background thread of this process (``serve``); ``shutdown`` stops it."""

    def __init__(self, engine, settings: Settings, sources: Sequence[str] | None = None) -> None:
        from feeds.poller import run_poller

        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_poller, args=(engine, settings, self._stop),
            kwargs={"sources": sources}, name="feed-poller", daemon=True)
        self._thread.start()

    def shutdown(self, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            self._thread.join()


def cmd_roster_generate(settings: Settings, args: argparse.Namespace) -> int:
    from store.importer import store_demo_roster

    if args.seed is not None:
        settings = settings.with_overrides(demo_seed=args.seed)
    engine = _open(settings)
    if args.if_empty:
        from store.roster import current_import

        if current_import(engine) is not None:
            print("A roster is stored already: left as it is.", file=sys.stderr)
            return EXIT_OK
    report = store_demo_roster(engine, settings, actor=_actor(), now=_now(),
                               progress=_ProgressPrinter())
    print(f"Stored the synthetic demo roster (seed {settings.demo_seed}): "
          f"{len(report.check.missions):,} missions, {len(report.check.people):,} people "
          f"(import {report.import_id}).")
    return EXIT_OK


def cmd_roster_import(settings: Settings, args: argparse.Namespace) -> int:
    from layers.locations import RosterError, RosterValidationError
    from store import StoreError
    from store.importer import import_files

    engine = _open(settings)
    try:
        report = import_files(
            engine, settings, args.missions, args.people, actor=_actor(), now=_now(),
            skip_invalid=args.skip_invalid, progress=_ProgressPrinter(),
        )
    except RosterValidationError as exc:
        rows = len({(p.file, p.row) for p in exc.problems})
        print(f"Import refused: {rows} bad row(s); the stored roster is unchanged. "
              f"Fix them, or use --skip-invalid to store only the good rows.", file=sys.stderr)
        _print_problems(exc.problems)
        return EXIT_INVALID
    except (RosterError, StoreError) as exc:
        print(f"Import failed; the stored roster is unchanged: {exc}", file=sys.stderr)
        return EXIT_INVALID
    check = report.check
    print(f"Imported {len(check.missions):,} missions and {len(check.people):,} people "
          f"(import {report.import_id}).")
    if check.problems:
        print(f"Skipped {check.bad_rows} bad row(s):", file=sys.stderr)
        _print_problems(check.problems)
    return EXIT_OK


def cmd_roster_validate(settings: Settings, args: argparse.Namespace) -> int:
    from layers.locations import RosterError
    from store.importer import check_files

    try:
        check = check_files(settings, args.missions, args.people)
    except RosterError as exc:
        print(f"Invalid: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{check.missions_read:,} mission rows, {check.people_read:,} people rows read; "
          f"{check.bad_rows} bad row(s).")
    if check.problems:
        _print_problems(check.problems)
        return EXIT_INVALID
    return EXIT_OK


def cmd_roster_stats(settings: Settings, args: argparse.Namespace) -> int:
    from layers.geography import load_geography
    from layers.locations import roster_stats
    from store.roster import current_import, load_roster

    engine = _open_with_roster(settings)
    missions, people = load_roster(engine)
    stats = roster_stats(missions, people, geography=load_geography(),
                         tolerance_km=settings.jurisdiction_tolerance_km)
    latest = current_import(engine)
    assert latest is not None  # _open_with_roster stored one
    stats["roster"] = {
        "import_id": latest["import_id"], "source": latest["source"],
        "imported_at": latest["imported_at"].isoformat(), "synthetic": latest["synthetic"],
    }
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return EXIT_OK
    stored = latest["imported_at"].strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"Roster {latest['import_id']}: {latest['source']}"
          f"{' (synthetic)' if latest['synthetic'] else ''}, stored {stored} by {latest['actor']}")
    print(f"  missions        {stats['missions']:>9,}")
    print(f"  people          {stats['people']:>9,}")
    print(f"  with immunity   {stats['with_immunity']:>9,}")
    print(f"  households      {stats['households']:>9,}")
    print(f"  jurisdictions   {stats['jurisdictions']:>9,}")
    print(f"  outside their jurisdiction (> {settings.jurisdiction_tolerance_km:g} km): "
          f"{stats['locations_outside_jurisdiction']}")
    print("\n  jurisdiction  missions    people  with immunity")
    for code, row in stats["by_jurisdiction"].items():  # type: ignore[union-attr]
        print(f"  {code:<12} {row['missions']:>9,} {row['people']:>9,} {row['with_immunity']:>14,}")
    return EXIT_OK


def cmd_roster_export(settings: Settings, args: argparse.Namespace) -> int:
    from layers.locations import write_roster_csv
    from store.db import record_audit
    from store.roster import load_roster

    engine = _open_with_roster(settings)
    missions, people = load_roster(engine)
    try:
        paths = write_roster_csv(missions, people, args.out)
    except OSError as exc:
        return _write_failed("Roster export", Path(args.out), exc)
    with engine.begin() as connection:
        record_audit(connection, _actor(), "roster.export",
                     {"out": str(Path(args.out).resolve()), "missions": len(missions),
                      "people": len(people)}, _now())
    print(f"Wrote {len(missions):,} missions to {paths[0]} and {len(people):,} people to "
          f"{paths[1]}.")
    return EXIT_OK


def _impact_counts(table, hazard_id=None) -> dict[str, object]:
    """Totals and breakdowns of one hazard (or the union) from an ImpactSummary table."""
    rows = table if hazard_id is None else table[table["hazard_id"] == hazard_id]
    total = rows[rows["dimension"] == "all"].iloc[0]
    immunity = rows[rows["dimension"] == "immunity"].set_index("value")["people"]
    out: dict[str, object] = {
        "missions": int(total["missions"]), "people": int(total["people"]),
        "with_immunity": int(immunity.get("full", 0) + immunity.get("official_acts", 0)),
        "households": int(total["households"]),
    }
    for dimension in ("jurisdiction", "ofm_office", "immunity", "role", "mission_type",
                      "country_code"):
        part = rows[(rows["dimension"] == dimension) & (rows["value"] != "")]
        out[f"by_{dimension}"] = {
            str(r.value): {"missions": int(r.missions), "people": int(r.people)}
            for r in part.itertuples(index=False)
        }
    return out


def cmd_impact(settings: Settings, args: argparse.Namespace) -> int:
    import geopandas as gpd

    from layers.hazard_file import HazardFileError, read_hazard_file
    from layers.impact import ImpactIndex, edge_distance_km, summarize
    from layers.locations import roster_locations
    from store.db import record_audit
    from store.roster import current_import, load_roster

    try:
        hazards = read_hazard_file(args.hazards)
    except HazardFileError as exc:
        print(f"Invalid hazard file: {exc}", file=sys.stderr)
        return EXIT_INVALID
    engine = _open_with_roster(settings)
    missions, people = load_roster(engine)
    latest = current_import(engine)
    locations = roster_locations(missions, people)
    points = gpd.GeoDataFrame(
        locations[["location_id"]],
        geometry=gpd.points_from_xy(locations["lon"], locations["lat"]), crs="EPSG:4326",
    )
    index = ImpactIndex(points, id_col="location_id", h3_resolution=settings.h3_resolution)
    pairs = index.affected(hazards, id_col="hazard_id")
    summary = summarize(pairs, locations, hazards, severity_col="severity")
    report = {
        "roster": {"import_id": latest["import_id"], "source": latest["source"],
                   "synthetic": latest["synthetic"]},
        "hazards": [
            {"hazard_id": h.hazard_id, "event": h.event, "severity": h.severity,
             **_impact_counts(summary.per_hazard, h.hazard_id)}
            for h in hazards.itertuples(index=False)
        ],
        "total": _impact_counts(summary.total),
    }
    if args.out:
        detail = edge_distance_km(pairs, points, hazards)
        by_location = locations.set_index("location_id")
        out = detail.assign(
            kind=by_location.loc[detail["location_id"], "kind"].to_numpy(),
            id=by_location.loc[detail["location_id"], "id"].to_numpy(),
            mission_id=by_location.loc[detail["location_id"], "mission_id"].to_numpy(),
        )[["hazard_id", "kind", "id", "mission_id", "edge_distance_km"]]
        target = Path(args.out)
        temp = target.with_name(f".{target.name}.tmp")   # whole, then renamed
        try:
            out.to_csv(temp, index=False, float_format="%.3f", lineterminator="\n")
            temp.replace(target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            return _write_failed("Impact export", target, exc)
        with engine.begin() as connection:
            record_audit(connection, _actor(), "impact.export",
                         {"out": str(Path(args.out).resolve()), "rows": len(out),
                          "hazards": [str(h) for h in hazards["hazard_id"]]}, _now())
        print(f"Wrote {len(out):,} (hazard, location) pairs to {args.out}.", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"Impact of {len(hazards)} hazard(s) on roster {latest['import_id']} "
          f"({latest['source']}{', synthetic' if latest['synthetic'] else ''}):\n")
    header = (f"{'hazard':<22} {'event':<28} {'severity':<9} {'missions':>9} {'people':>9} "
              f"{'immunity':>9} {'households':>10}")
    print(header)
    print("-" * len(header))
    for row in report["hazards"]:
        print(f"{str(row['hazard_id'])[:22]:<22} {str(row['event'])[:28]:<28} "
              f"{row['severity']:<9} {row['missions']:>9,} {row['people']:>9,} "
              f"{row['with_immunity']:>9,} {row['households']:>10,}")
    total = report["total"]
    print("-" * len(header))
    print(f"{'all hazards, each location once':<61} {total['missions']:>9,} "
          f"{total['people']:>9,} {total['with_immunity']:>9,} {total['households']:>10,}")
    if total["by_jurisdiction"]:
        print("\nby jurisdiction: " + ", ".join(
            f"{code} {v['missions']:,} mission(s) / {v['people']:,} people"
            for code, v in total["by_jurisdiction"].items()))
    return EXIT_OK


def _age(delta) -> str:
    """A data age for people: 45 s, 12 min, 3.5 h, 9 d, 2.1 y."""
    if delta is None:
        return "-"
    seconds = delta.total_seconds()
    for limit, unit, size in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600),
                              (365 * 86400, "d", 86400)):
        if seconds < limit:
            value = seconds / size
            return f"{value:.0f} {unit}" if unit in ("s", "min", "d") else f"{value:.1f} {unit}"
    return f"{seconds / (365.25 * 86400):.1f} y"


def _when(value) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _outcome_line(outcome) -> str:
    if outcome.outcome == "failed":
        return f"{outcome.source:<9} failed        {outcome.reason}"
    if outcome.outcome == "not_modified":
        return f"{outcome.source:<9} not modified  (kept the stored data)"
    return (f"{outcome.source:<9} fresh         {outcome.items} hazard(s), {outcome.skipped} "
            f"skipped, {outcome.unplaced} without area ({outcome.duration_s:.1f} s)")


def cmd_feeds_poll(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from feeds.poller import default_client, poll_source, run_poller
    from feeds.sources import SOURCE_NAMES

    engine = _open(settings)
    names = [args.source] if args.source else list(SOURCE_NAMES)
    if args.once:
        client = default_client(settings)
        outcomes = [poll_source(name, engine=engine, settings=settings, client=client,
                                now=_now()) for name in names]
        for outcome in outcomes:
            print(_outcome_line(outcome))
        return EXIT_OK if all(outcome.ok for outcome in outcomes) else EXIT_INVALID
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"Polling {', '.join(names)} (Ctrl+C to stop; a second poller on the same store "
          "stands by until this one stops)...", file=sys.stderr)
    run_poller(engine, settings, stop, sources=names, check_s=args.lease_check)
    print("Poller stopped.", file=sys.stderr)
    return EXIT_OK


def cmd_feeds_status(settings: Settings, args: argparse.Namespace) -> int:
    from store.feeds import feed_health

    engine = _open(settings)
    now = _now()
    health = feed_health(engine, now=now, settings=settings)
    if args.json:
        print(json.dumps({"as_of": now.isoformat(), "feeds": [h.as_json() for h in health]},
                         indent=2))
        return EXIT_OK
    print(f"{'source':<9} {'last poll':<13} {'last success':<21} {'data age':>9} "
          f"{'items':>6}  state")
    for h in health:
        state = "STALE" if h.stale else "ok"
        if h.recorded:
            state += f", recorded {_when(h.recorded_at)} (not live)"
        if h.clock and not h.recorded:
            state += f", {h.clock}"
        if h.last_outcome == "failed" and h.last_error:
            state += f", {h.consecutive_failures} failure(s): {h.last_error}"
        print(f"{h.source:<9} {h.last_outcome or 'never':<13} {_when(h.last_success):<21} "
              f"{_age(h.data_age):>9} {h.item_count:>6}  {state}")
    return EXIT_OK


def cmd_hazards(settings: Settings, args: argparse.Namespace) -> int:
    from store.feeds import feed_health, load_hazards

    engine = _open(settings)
    now = _now()
    hazards = load_hazards(engine, now=now, include_expired=args.all)
    recorded = {h.source: h.recorded_at for h in feed_health(engine, now=now, settings=settings)
                if h.recorded}
    rows = [{
        "hazard_id": h.hazard_id, "source": h.source, "event": h.event,
        "category": h.category, "severity": h.severity,
        "expires": None if (h.ends or h.expires) is None else (h.ends or h.expires).isoformat(),
        "geometry_method": h.geometry_method, "recorded": h.source in recorded,
        "recorded_at": recorded[h.source].isoformat() if h.source in recorded else None,
    } for h in hazards]
    if args.json:
        print(json.dumps({"as_of": now.isoformat(), "hazards": rows}, indent=2))
        return EXIT_OK
    print(f"{'source':<9} {'category':<17} {'severity':<9} {'expires':<21} {'area':<11} "
          f"hazard id")
    for h, row in zip(hazards, rows, strict=True):
        expires = _when(h.ends or h.expires)
        label = f"  (recorded {_when(recorded[h.source])})" if row["recorded"] else ""
        print(f"{h.source:<9} {h.category:<17} {h.severity:<9} {expires:<21} "
              f"{h.geometry_method or 'none':<11} {h.hazard_id}{label}")
    scope = "stored" if args.all else "active"
    print(f"{len(rows)} {scope} hazard(s); recorded ones are bundled samples, not live data.",
          file=sys.stderr)
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from stdin (--password-stdin), else a generated one; and whether generated."""
    from store.users import generate_password

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n"), False
    return generate_password(), True


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    from store import AccountError
    from store.users import create_user

    password, generated = _read_password(args)
    try:
        with _store(settings) as engine:
            user = create_user(engine, args.username, args.role, password, actor=_actor(),
                               now=_now())
    except AccountError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"Added user {user.username} (id {user.user_id}) with role {user.role}.")
    if generated:
        print(f"Password (shown only now; the store keeps its hash): {password}")
    return EXIT_OK


def cmd_users_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.users import list_tokens, list_users

    with _store(settings) as engine:
        users, tokens = list_users(engine), list_tokens(engine)
    if args.json:
        print(json.dumps({"users": [u.as_json() for u in users],
                          "tokens": [t.as_json() for t in tokens]}, indent=2))
        return EXIT_OK
    print(f"{'user':<24} {'role':<12} {'state':<9} {'last sign-in':<21} locked until")
    for u in users:
        print(f"{u.username:<24} {u.role:<12} {'disabled' if u.disabled else 'active':<9} "
              f"{_when(u.last_sign_in):<21} {_when(u.locked_until) if u.locked_until else ''}")
    if tokens:
        print(f"\n{'token':>5}  {'kind':<7} {'name':<24} {'user':<16} {'role':<12} "
              f"{'issued':<21} {'last used':<21} revoked")
        for t in tokens:
            print(f"{t.token_id:>5}  {t.kind:<7} {t.name:<24} {t.username or '-':<16} "
                  f"{t.role:<12} {_when(t.created_at):<21} {_when(t.last_used_at):<21} "
                  f"{_when(t.revoked_at) if t.revoked_at else ''}")
    return EXIT_OK


def cmd_users_disable(settings: Settings, args: argparse.Namespace) -> int:
    from store import AccountError
    from store.users import set_disabled

    try:
        with _store(settings) as engine:
            user = set_disabled(engine, args.username, not args.enable, actor=_actor(),
                                now=_now())
    except AccountError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    state = "disabled; their sessions have ended" if user.disabled else "enabled"
    print(f"User {user.username} is {state}.")
    return EXIT_OK


def cmd_users_set_role(settings: Settings, args: argparse.Namespace) -> int:
    from store import AccountError
    from store.users import set_role

    try:
        with _store(settings) as engine:
            user = set_role(engine, args.username, args.role, actor=_actor(), now=_now())
    except AccountError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"User {user.username} now has role {user.role}; their sessions have ended.")
    return EXIT_OK


def cmd_users_reset_password(settings: Settings, args: argparse.Namespace) -> int:
    from store import AccountError
    from store.users import reset_password

    password, generated = _read_password(args)
    try:
        with _store(settings) as engine:
            user = reset_password(engine, args.username, password, actor=_actor(), now=_now())
    except AccountError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"New password set for {user.username}; lockout cleared, sessions ended.")
    if generated:
        print(f"Password (shown only now; the store keeps its hash): {password}")
    return EXIT_OK


def cmd_users_token(settings: Settings, args: argparse.Namespace) -> int:
    from store import AccountError
    from store.users import issue_api_token, issue_token, revoke_token

    if args.name is not None and args.api is None:
        print("Refused: --name goes with --api (a display token is named by --display)",
              file=sys.stderr)
        return EXIT_INVALID
    try:
        with _store(settings) as engine:
            if args.revoke is not None:
                token = revoke_token(engine, args.revoke, actor=_actor(), now=_now())
                print(f"Token {token.token_id} ({token.name}) is revoked; it stops working at "
                      "once.")
                return EXIT_OK
            if args.api is not None:
                token, secret = issue_api_token(engine, args.api, args.name, actor=_actor(),
                                                now=_now())
            else:
                token, secret = issue_token(engine, args.display, actor=_actor(), now=_now())
    except AccountError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if token.kind == "api":
        print(f"API token {token.token_id} ({token.name!r}) for user {token.username}: it acts "
              f"as {token.username}, with their role (now {token.role}). Shown only now; the "
              "store keeps its hash:")
        print(f"  {secret}")
        print("Send it as the header 'Authorization: Bearer <token>' to "
              f"http://{settings.host}:{settings.port}/api/v1/ (see /api/v1/openapi.json). "
              f"Revoke with 'python app.py users token --revoke {token.token_id}'.")
        return EXIT_OK
    print(f"Display token {token.token_id} for {token.name!r} (role display). Shown only now; "
          "the store keeps its hash:")
    print(f"  {secret}")
    print(f"Open the wall at http://{settings.host}:{settings.port}/wall?token={secret}")
    print("or send the header 'Authorization: Bearer <token>'. Revoke with "
          f"'python app.py users token --revoke {token.token_id}'.")
    return EXIT_OK


def _print_rules(ruleset) -> None:
    if ruleset.is_default:
        print("Incident rules: the built-in defaults (version 0, never changed).")
    else:
        print(f"Incident rules, version {ruleset.version}: saved {_when(ruleset.updated_at)} "
              f"by {ruleset.updated_by}.")
    print("First match wins; a hazard no rule matches is an incident.\n")
    print(f"{'#':>3}  {'action':<8} matches")
    for position, rule in enumerate(ruleset.rules, start=1):
        print(f"{position:>3}  {rule.action:<8} {rule.describe()}")
        print(f"{'':>14}why: {rule.note}")
    if not ruleset.rules:
        print("  (no rules: every active hazard is an incident)")


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from store.backup import write_backup

    now = _now()
    path = Path(args.out) if args.out else \
        settings.data_path / "backups" / f"missionwatch-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"
    with _store(settings) as engine:
        try:
            header = write_backup(engine, path, actor=_actor(), now=now)
        except OSError as exc:
            return _write_failed("Backup", path, exc)
    rows = sum(header["tables"].values())
    print(f"Backup written: {path} ({header['bytes']:,} bytes, {rows:,} rows in "
          f"{len(header['tables'])} tables, schema {header['revision']}), SHA-256 "
          f"{header['sha256']}. It holds personal data and password hashes: keep it as safe "
          "as the database.")
    return EXIT_OK


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from store.backup import BackupError, restore_backup

    with _store(settings) as engine:
        try:
            restored = restore_backup(engine, Path(args.file), actor=_actor(), now=_now())
        except BackupError as exc:
            print(f"Refused: {exc}", file=sys.stderr)
            return EXIT_INVALID
    print(f"Restored {sum(restored.values()):,} rows in {len(restored)} tables from "
          f"{args.file}.")
    return EXIT_OK


def cmd_rules_list(settings: Settings, args: argparse.Namespace) -> int:
    from layers.incidents import RulesInvalid
    from store.rules import load_rules

    try:
        with _store(settings) as engine:
            ruleset = load_rules(engine)
    except RulesInvalid as exc:
        print(f"The stored incident rules no longer validate: {exc}. Fix them with "
              "'rules set FILE' or 'rules reset'.", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(ruleset.as_json(), indent=2))
        return EXIT_OK
    _print_rules(ruleset)
    return EXIT_OK


def cmd_rules_set(settings: Settings, args: argparse.Namespace) -> int:
    from layers.incidents import RulesInvalid, rules_from_json
    from store.rules import RulesConflict, save_rules

    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"Refused: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except json.JSONDecodeError as exc:
        print(f"Refused: {args.file} is not JSON: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if isinstance(data, dict) and "rules" in data:  # the output of 'rules list --json'
        data = data["rules"]
    try:
        rules = rules_from_json(data)
    except RulesInvalid as exc:
        what = "bad rule(s)" if all(p for p, _ in exc.problems) else "problem(s)"
        print(f"Refused: {len(exc.problems)} {what}; the stored rules are unchanged.",
              file=sys.stderr)
        for position, reason in exc.problems:
            print(f"  rule {position}: {reason}" if position else f"  {reason}",
                  file=sys.stderr)
        return EXIT_INVALID
    try:
        with _store(settings) as engine:
            ruleset = save_rules(engine, rules, _actor(), _now(),
                                 expected_version=args.expected_version)
    except RulesConflict as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"Saved {len(ruleset.rules)} incident rule(s) as version {ruleset.version}.")
    return EXIT_OK


def cmd_rules_reset(settings: Settings, args: argparse.Namespace) -> int:
    from store.rules import reset_rules

    with _store(settings) as engine:
        ruleset = reset_rules(engine, _actor(), _now())
    print(f"Incident rules reset to the {len(ruleset.rules)} built-in defaults "
          f"(version {ruleset.version}).")
    return EXIT_OK


# --------------------------------------------------------------------------- drills


def _scenario_time(minutes: float) -> str:
    """Scenario time as T+H:MM (hours may exceed 24)."""
    whole = int(minutes)
    return f"T+{whole // 60}:{whole % 60:02d}"


def _scenario_length(minutes: float) -> str:
    """A scenario length as H:MM h."""
    return f"{_scenario_time(minutes)[2:]} h"


def _wall_time(value) -> str:
    from zoneinfo import ZoneInfo

    eastern = value.astimezone(ZoneInfo("America/New_York"))
    return f"{value:%Y-%m-%d %H:%M:%S} UTC ({eastern:%H:%M:%S %Z})"


def _drill_library():
    """The scenario library, or None after printing why it cannot be read."""
    from layers.scenarios import ScenarioError, load_library

    try:
        return load_library()
    except ScenarioError as exc:
        print(f"Refused: the scenario library cannot be read: {exc}", file=sys.stderr)
        return None


def _drill_refused(exc: Exception) -> int:
    print(f"Refused: {exc}", file=sys.stderr)
    return EXIT_INVALID


def _drill_progress(drill, now) -> dict[str, object]:
    """Where a drill is in its scenario: fired injects, the next one and when it fires."""
    from layers.scenarios import ScenarioError, fired, parse_scenario

    out = drill.as_json(now)
    elapsed = drill.elapsed_minutes(now)
    try:
        scenario = parse_scenario(drill.scenario_json, origin=f"drill {drill.drill_id}")
    except ScenarioError as exc:
        out.update(scenario_error=str(exc), injects_fired=None, injects_total=None,
                   next_inject=None)
        return out
    done = fired(scenario, elapsed)
    upcoming = scenario.injects[len(done)] if len(done) < len(scenario.injects) else None
    when = None if upcoming is None else drill.wall_time_of(upcoming.at_minutes, now)
    out.update(
        scenario_title=scenario.title, duration_minutes=scenario.duration_minutes,
        injects_fired=len(done), injects_total=len(scenario.injects),
        fired=[item.inject_id for item in done],
        last_inject=None if not done else {
            "inject_id": done[-1].inject_id, "at_minutes": done[-1].at_minutes,
            "event": done[-1].event},
        next_inject=None if upcoming is None else {
            "inject_id": upcoming.inject_id, "at_minutes": upcoming.at_minutes,
            "event": upcoming.event, "at": None if when is None else when.isoformat(),
            "at_text": None if when is None else _wall_time(when)})
    return out


def _print_drill_status(progress: dict) -> None:
    state = progress["state"]
    if state == "stopped":
        state = f"stopped {progress['stopped_at'][:16].replace('T', ' ')} UTC by " \
                f"{progress['stopped_by']}"
    print(f"EXERCISE  drill {progress['drill_id']}: {progress['name']}  [{state}]")
    title = progress.get("scenario_title")
    print(f"  scenario  {progress['scenario_name']}" + (f" ({title})" if title else ""))
    planned = progress.get("duration_minutes")
    of = f" of {_scenario_length(planned)}" if planned else ""
    print(f"  clock     {_scenario_time(progress['elapsed_minutes'])}{of} at speed "
          f"{progress['speed']:g}x (started {progress['started_at'][:16].replace('T', ' ')} "
          f"UTC by {progress['started_by']})")
    if progress.get("scenario_error"):
        print(f"  injects   unknown: {progress['scenario_error']}")
        return
    last = progress["last_inject"]
    print(f"  injects   {progress['injects_fired']} of {progress['injects_total']} fired" + (
        f"; last {last['inject_id']} at {_scenario_time(last['at_minutes'])} ({last['event']})"
        if last else ""))
    upcoming = progress["next_inject"]
    if upcoming is None:
        print("  next      none: every inject has fired")
        return
    if upcoming["at_text"] is not None:
        when = upcoming["at_text"]
    elif progress["state"] == "paused":
        when = "when the drill is resumed"
    else:
        when = "never (the drill is stopped)"
    print(f"  next      {upcoming['inject_id']} at {_scenario_time(upcoming['at_minutes'])} "
          f"({upcoming['event']}): {when}")


def cmd_drill_list(settings: Settings, args: argparse.Namespace) -> int:
    from store.drills import list_drills

    library = _drill_library()
    if library is None:
        return EXIT_INVALID
    with _store(settings) as engine:
        drills = list_drills(engine)
    now = _now()
    scenarios = [{"name": s.name, "title": s.title, "injects": len(s.injects),
                  "duration_minutes": s.duration_minutes,
                  "jurisdictions": list(s.jurisdictions)} for s in library.values()]
    if args.json:
        print(json.dumps({"as_of": now.isoformat(), "scenarios": scenarios,
                          "drills": [d.as_json(now) for d in drills]}, indent=2))
        return EXIT_OK
    print(f"Scenario library ({len(scenarios)}):")
    print(f"  {'name':<26} {'injects':>7} {'length':>7}  {'where':<10} title")
    for s in scenarios:
        print(f"  {s['name']:<26} {s['injects']:>7} {_scenario_length(s['duration_minutes']):>7}"
              f"  {','.join(s['jurisdictions']):<10} {s['title']}")
    print(f"\nDrills ({len(drills)}):")
    if not drills:
        print("  none yet; start one with 'python app.py drill start NAME'")
        return EXIT_OK
    print(f"  {'id':>4}  {'state':<8} {'time':>8} {'speed':>7}  {'scenario':<26} name")
    for d in drills:
        print(f"  {d.drill_id:>4}  {d.state:<8} {_scenario_time(d.elapsed_minutes(now)):>8} "
              f"{d.speed:>6g}x  {d.scenario_name:<26} {d.name}")
    return EXIT_OK


def cmd_drill_start(settings: Settings, args: argparse.Namespace) -> int:
    from layers.scenarios import scenario_to_geojson
    from store.drills import start_drill

    library = _drill_library()
    if library is None:
        return EXIT_INVALID
    scenario = library.get(args.scenario)
    kind = "scenario"
    if scenario is None and args.scenario.startswith("replay-"):
        from dashboard.drills import recorded_replay
        from layers.geography import load_geography

        try:
            scenario = recorded_replay(args.scenario[len("replay-"):], load_geography().states)
        except (ValueError, KeyError) as exc:
            print(f"Refused: {exc}", file=sys.stderr)
            return EXIT_INVALID
        kind = "replay"
    if scenario is None:
        print(f"Refused: no scenario {args.scenario!r} in the library; known: "
              f"{', '.join(library) or 'none'}", file=sys.stderr)
        return EXIT_INVALID
    now = _now()
    name = args.name if args.name is not None else \
        f"{scenario.title} - drill of {now:%Y-%m-%d %H:%M} UTC"
    try:
        with _store(settings) as engine:
            drill = start_drill(engine, scenario_name=scenario.name,
                                scenario_json=json.dumps(scenario_to_geojson(scenario)),
                                name=name, speed=args.speed, actor=_actor(), now=now,
                                kind=kind)
    except ValueError as exc:
        return _drill_refused(exc)
    ends = drill.wall_time_of(scenario.duration_minutes, now)
    print(f"EXERCISE: drill {drill.drill_id} started: {drill.name}")
    print(f"  scenario {scenario.name}: {len(scenario.injects)} inject(s) over "
          f"{_scenario_length(scenario.duration_minutes)} of scenario time, at speed "
          f"{drill.speed:g}x")
    if ends is not None:
        print(f"  planned end {_wall_time(ends)}")
    print(f"Follow it with 'python app.py drill status {drill.drill_id}'; pause, resume, speed "
          f"or stop it with 'python app.py drill pause|resume|speed|stop {drill.drill_id}'.")
    return EXIT_OK


def cmd_drill_status(settings: Settings, args: argparse.Namespace) -> int:
    from store.drills import DrillNotFound, get_drill, running_drills

    try:
        with _store(settings) as engine:
            drills = ([get_drill(engine, args.drill_id)] if args.drill_id is not None
                      else running_drills(engine, with_scenario=True))
    except DrillNotFound as exc:
        return _drill_refused(exc)
    now = _now()
    progress = [_drill_progress(d, now) for d in drills]
    if args.json:
        print(json.dumps({"as_of": now.isoformat(), "drills": progress}, indent=2))
        return EXIT_OK
    if not progress:
        print("No drill is running or paused: no EXERCISE. 'python app.py drill list' shows "
              "the scenarios and past drills.")
        return EXIT_OK
    print(f"As of {_wall_time(now)}:")
    for item in progress:
        print()
        _print_drill_status(item)
    return EXIT_OK


def cmd_drill_change(settings: Settings, args: argparse.Namespace) -> int:
    from store.drills import (
        DrillNotFound,
        DrillStateError,
        pause_drill,
        resume_drill,
        running_drills,
        set_speed,
        stop_drill,
    )

    now = _now()
    try:
        with _store(settings) as engine:
            if args.drill_command == "pause":
                drill = pause_drill(engine, args.drill_id, actor=_actor(), now=now)
            elif args.drill_command == "resume":
                drill = resume_drill(engine, args.drill_id, actor=_actor(), now=now)
            elif args.drill_command == "speed":
                drill = set_speed(engine, args.drill_id, args.speed, actor=_actor(), now=now)
            else:
                drill = stop_drill(engine, args.drill_id, actor=_actor(), now=now)
            still = len(running_drills(engine))
    except (DrillNotFound, DrillStateError, ValueError) as exc:
        return _drill_refused(exc)
    at = _scenario_time(drill.elapsed_minutes(now))
    lines = {
        "pause": f"Drill {drill.drill_id} paused at {at}; its clock waits. EXERCISE stays on "
                 "until it is stopped.",
        "resume": f"Drill {drill.drill_id} resumed at {at}, at speed {drill.speed:g}x.",
        "speed": f"Drill {drill.drill_id} runs at speed {drill.speed:g}x from {at} on.",
        "stop": f"Drill {drill.drill_id} stopped at {at}; its clock is frozen. "
                + (f"{still} other drill(s) still running: EXERCISE stays on." if still else
                   "No drill is running: EXERCISE is off."),
    }
    print(lines[args.drill_command])
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _settings_epilog() -> str:
    lines = ["configuration (environment variables):"]
    for s in SETTINGS:
        lines.append(f"  {s.env:<40} {s.help}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="Mission Watch: hazards, foreign missions and their people, on one map. "
                    "With no command, 'serve' runs the dashboard.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default: setting)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the dashboard (default command)",
        description="Run the dashboard. Generates the demo roster on first use if the store "
                    "has no roster yet.")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8050)")
    serve.add_argument("--debug", action="store_true", help="Dash debug mode (development only)")
    serve.add_argument("--no-poll", action="store_true",
                       help="do not poll the hazard feeds in this process (run 'feeds poll' "
                            "separately)")
    serve.set_defaults(func=cmd_serve)

    roster = commands.add_parser("roster", help="generate, import, validate, inspect or export "
                                                "the roster")
    roster_commands = roster.add_subparsers(dest="roster_command", metavar="ACTION", required=True)

    generate = roster_commands.add_parser(
        "generate", help="replace the roster with the synthetic demo roster",
        description="Replace the stored roster with the deterministic synthetic demo roster "
                    "(about 2,600 missions and 124,000 people; fake names and contacts).")
    generate.add_argument("--seed", type=int, help="random seed (default: setting)")
    generate.add_argument("--if-empty", action="store_true",
                          help="only when no roster is stored yet (a deployment's first start)")
    generate.set_defaults(func=cmd_roster_generate)

    for name, func, help_text in (
        ("import", cmd_roster_import, "replace the roster with your files (all or nothing)"),
        ("validate", cmd_roster_validate, "check your files without storing anything"),
    ):
        sub = roster_commands.add_parser(
            name, help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}. Files are CSV, XLSX or "
                        "GeoJSON with the columns listed in README.md; every bad row is reported "
                        "with its row number, column and reason. Exit status 1 when any row is "
                        "bad.")
        sub.add_argument("--missions", required=True, type=Path, help="missions file")
        sub.add_argument("--people", required=True, type=Path, help="people file")
        if name == "import":
            sub.add_argument("--skip-invalid", action="store_true",
                             help="store the good rows and report the bad ones (by default any "
                                  "bad row stops the import and changes nothing)")
        sub.set_defaults(func=func)

    stats = roster_commands.add_parser("stats", help="counts of the stored roster")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=cmd_roster_stats)

    export = roster_commands.add_parser(
        "export", help="write missions.csv and people.csv (the format 'import' reads)")
    export.add_argument("--out", required=True, type=Path, help="output directory")
    export.set_defaults(func=cmd_roster_export)

    impact = commands.add_parser(
        "impact", help="which missions and people the hazards of a GeoJSON file affect",
        description="Which missions, members and dependents of the stored roster lie inside each "
                    "hazard of a GeoJSON FeatureCollection (Polygons, MultiPolygons, or Points "
                    "with a radius_km property; edges count as inside). Prints a summary table, "
                    "or JSON.")
    impact.add_argument("hazards", type=Path, help="GeoJSON file of hazards")
    impact.add_argument("--json", action="store_true", help="print JSON")
    impact.add_argument("--out", type=Path,
                        help="also write every (hazard, location) pair to this CSV, with the "
                             "distance to the hazard's edge or centre in km (audited)")
    impact.set_defaults(func=cmd_impact)

    from feeds.sources import SOURCE_NAMES

    feeds = commands.add_parser("feeds", help="poll the hazard feeds, or show their health")
    feeds_commands = feeds.add_subparsers(dest="feeds_command", metavar="ACTION", required=True)
    poll = feeds_commands.add_parser(
        "poll", help="poll the hazard feeds until stopped (Ctrl+C or SIGTERM)",
        description="Poll every hazard feed at its own interval until stopped, storing each "
                    "source's snapshot. A failed poll keeps the last good data. With --once, "
                    "poll each source once and exit: status 0 if every poll succeeded (fresh "
                    "or not modified), 1 otherwise.")
    poll.add_argument("--once", action="store_true", help="poll each source once and exit")
    poll.add_argument("--source", choices=SOURCE_NAMES, help="only this source")
    poll.add_argument("--lease-check", type=float, default=15.0, metavar="S",
                      help="seconds between checks of the poller lease: how soon a standby "
                           "takes over, or polling resumes after a database restart "
                           "(default 15)")
    poll.set_defaults(func=cmd_feeds_poll)
    status = feeds_commands.add_parser(
        "status", help="per source: last poll, last success, data age, items, stale",
        description="Health of every hazard feed. A feed is stale when it never succeeded or "
                    "its last success is older than MISSIONWATCH_FEED_STALE_FACTOR poll "
                    "intervals; recorded means the data is a bundled sample, not live.")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_feeds_status)

    hazards = commands.add_parser(
        "hazards", help="the stored hazards that are active now",
        description="The hazards of the stored feed snapshots that are active now: id, "
                    "source, category, severity, expiry and how the area was obtained.")
    hazards.add_argument("--json", action="store_true", help="print JSON")
    hazards.add_argument("--all", action="store_true",
                         help="include expired and cancelled hazards still stored")
    hazards.set_defaults(func=cmd_hazards)

    from store.users import ROLES

    users = commands.add_parser(
        "users", help="dashboard users, roles and wall-display tokens",
        description="Manage who may sign in to the dashboard. Roles: display (the wall: "
                    "aggregates only), coordinator (affected lists, outreach, exports), admin "
                    "(roster import, users, audit log). Every change is audited.")
    users_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = users_commands.add_parser(
        "add", help="add a user; prints a generated password once",
        description="Add a user with a role. A random password is generated and printed once "
                    "(the store keeps only its argon2 hash), unless --password-stdin.")
    add.add_argument("username", help="2-64 characters: a-z, 0-9 and ._@-")
    add.add_argument("--role", required=True, choices=ROLES, help="the user's role")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password (12+ characters) from the first line of stdin")
    add.set_defaults(func=cmd_users_add)
    listing = users_commands.add_parser("list", help="users and tokens (never secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_users_list)
    disable = users_commands.add_parser(
        "disable", help="disable a user (their sessions end at once); --enable to undo")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="enable the user again")
    disable.set_defaults(func=cmd_users_disable)
    set_role = users_commands.add_parser(
        "set-role", help="change a user's role (their sessions end at once)")
    set_role.add_argument("username")
    set_role.add_argument("role", choices=ROLES)
    set_role.set_defaults(func=cmd_users_set_role)
    reset = users_commands.add_parser(
        "reset-password", help="set a new password (generated unless --password-stdin)")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true",
                       help="read the password (12+ characters) from the first line of stdin")
    reset.set_defaults(func=cmd_users_reset_password)
    token = users_commands.add_parser(
        "token", help="issue a wall-display or API token (printed once) or revoke one",
        description="--display NAME issues a long-lived display token, printed once (the store "
                    "keeps its SHA-256). --api USERNAME issues an API token that acts as that "
                    "user, with their role at each request (disabling the user stops it). "
                    "--revoke ID revokes either kind; it stops working at once.")
    which = token.add_mutually_exclusive_group(required=True)
    which.add_argument("--display", metavar="NAME", help="issue a token for this wall display")
    which.add_argument("--api", metavar="USERNAME",
                       help="issue an API token acting as this user (for /api/v1)")
    which.add_argument("--revoke", metavar="ID", type=int, help="revoke the token with this id")
    token.add_argument("--name", metavar="NAME",
                       help="with --api: a label for the token (default 'api')")
    token.set_defaults(func=cmd_users_token)

    backup = commands.add_parser(
        "backup", help="write a backup of the whole store (one gzip file)",
        description="Write the store (roster, users and token hashes, rules, feed snapshots, "
                    "outreach, drills, audit log; not the feed cache) to one gzip file of "
                    "JSON lines, mode 0600, read in one transaction. Audited.")
    backup.add_argument("--out", metavar="FILE",
                        help="where (default DATA_DIR/backups/missionwatch-<UTC time>.jsonl.gz)")
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser(
        "restore", help="restore a backup into an empty store",
        description="Restore a backup into the store of DATABASE_URL / DATA_DIR, which must be "
                    "empty (a new SQLite file or a new PostgreSQL database; outreach and drill "
                    "histories are append-only, so nothing is overwritten) and at the same "
                    "schema revision. One transaction; exit status 1 when refused.")
    restore.add_argument("file", help="a file written by 'backup'")
    restore.set_defaults(func=cmd_restore)

    rules = commands.add_parser(
        "rules", help="incident rules: which active hazards become incidents",
        description="Incident rules decide which active hazards become incidents, matching "
                    "by source, category, event, severity, status and marine-only; the first "
                    "rule that matches decides, and a hazard no rule matches is an incident. "
                    "Every change is audited.")
    rules_commands = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    rules_list = rules_commands.add_parser("list", help="the rules in force, in order")
    rules_list.add_argument("--json", action="store_true", help="print JSON")
    rules_list.set_defaults(func=cmd_rules_list)
    rules_set = rules_commands.add_parser(
        "set", help="replace the rules with those of a JSON file (all or nothing)",
        description="Replace the rules with a JSON list of rule objects (or the output of "
                    "'rules list --json'). Every rule is checked first; a bad one is "
                    "reported by position and reason and nothing is saved.")
    rules_set.add_argument("file", type=Path, help="JSON file of rules")
    rules_set.add_argument("--expected-version", type=int, metavar="N",
                           help="refuse to save unless the stored rules are still version N "
                                "(as printed by 'rules list')")
    rules_set.set_defaults(func=cmd_rules_set)
    rules_reset = rules_commands.add_parser("reset", help="go back to the built-in defaults")
    rules_reset.set_defaults(func=cmd_rules_reset)

    drill = commands.add_parser(
        "drill", help="drills: play a library scenario on the map as EXERCISE",
        description="Drills play a scenario of the library (data/scenarios) on the dashboard "
                    "as EXERCISE: its injects fire on a scenario clock that runs at 1x (real "
                    "time) to 3600x (an hour a second) and can be paused, resumed, sped up "
                    "and stopped. Several drills may run at once. Every change is audited. "
                    "Exit status 1 when refused (unknown scenario or drill, wrong state).")
    drill_commands = drill.add_subparsers(dest="drill_command", metavar="ACTION", required=True)
    drill_list = drill_commands.add_parser(
        "list", help="the scenario library and the drills, with their scenario time")
    drill_list.add_argument("--json", action="store_true", help="print JSON")
    drill_list.set_defaults(func=cmd_drill_list)
    drill_start = drill_commands.add_parser(
        "start", help="start a drill of a library scenario",
        description="Start a drill of a library scenario; the scenario is kept as it is now, "
                    "so editing the library later never changes the drill.")
    drill_start.add_argument("scenario", help="scenario name (see 'drill list'), or "
                             "replay-nws, replay-usgs, replay-nhc: a bundled recorded feed "
                             "replayed against today's roster")
    drill_start.add_argument("--speed", type=float, default=1.0, metavar="X",
                             help="scenario seconds per wall second, 1 to 3600 (default 1)")
    drill_start.add_argument("--name", metavar="TEXT",
                             help="a name for this run (default: the scenario title and date)")
    drill_start.set_defaults(func=cmd_drill_start)
    drill_status = drill_commands.add_parser(
        "status", help="scenario time, injects fired, next inject and when",
        description="The running and paused drills (or the drill ID): scenario time, injects "
                    "fired so far, and the next inject with the wall time it fires (UTC and "
                    "US Eastern) at the current speed.")
    drill_status.add_argument("drill_id", nargs="?", type=int, metavar="ID",
                              help="one drill, in any state")
    drill_status.add_argument("--json", action="store_true", help="print JSON")
    drill_status.set_defaults(func=cmd_drill_status)
    for action, help_text in (("pause", "pause a running drill (its clock waits)"),
                              ("resume", "resume a paused drill where it was"),
                              ("stop", "stop a drill for good (its clock freezes)")):
        sub = drill_commands.add_parser(action, help=help_text)
        sub.add_argument("drill_id", type=int, metavar="ID")
        sub.set_defaults(func=cmd_drill_change)
    drill_speed = drill_commands.add_parser(
        "speed", help="change a drill's speed from now on (the time reached stays)")
    drill_speed.add_argument("drill_id", type=int, metavar="ID")
    drill_speed.add_argument("speed", type=float, metavar="X",
                             help="scenario seconds per wall second, 1 to 3600")
    drill_speed.set_defaults(func=cmd_drill_change)
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "werkzeug", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


# --------------------------------------------------------------------------- WSGI (gunicorn)

_SERVED: dict = {}  # the Services of the WSGI app this process built (for after_fork)


def _metrics_dir(settings: Settings) -> Path:
    return settings.data_path / "metrics"


def reset_shared_metrics(settings: Settings) -> None:
    """Empty the directory where worker processes share their request counts (at the start
    of a gunicorn server, before any worker runs)."""
    directory = _metrics_dir(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in directory.glob("latency-*"):
        path.unlink(missing_ok=True)


def wsgi():
    """The dashboard as a WSGI application, for gunicorn (``deploy/gunicorn.conf.py``).

    Settings come from the environment as for ``python app.py``. The store is opened and
    migrated, the caches are built (so, loaded before the workers fork, they are shared
    copy-on-write) and the app returned. Unlike ``serve`` it never polls feeds (run
    ``python app.py feeds poll`` as its own process), never generates a demo roster and never
    prints a password: without a roster ``/healthz`` answers 503 until one is imported.
    """
    from dashboard.app import create_app
    from dashboard.services import Services
    from store.db import safe_url
    from store.roster import current_import
    from store.users import count_users

    settings = Settings.from_env()
    _configure_logging(settings.log_level)
    engine = _open(settings)
    if current_import(engine) is None:
        logger.error("no roster is stored: import one with 'python app.py roster import "
                     "MISSIONS.csv PEOPLE.csv' (or 'python app.py roster generate' for the "
                     "demo); /healthz answers 503 until then")
    if count_users(engine) == 0:
        logger.warning("nobody can sign in yet: add an administrator with "
                       "'python app.py users add NAME --role admin'")
    services = Services.from_engine(engine, settings)
    app = create_app(settings, services, metrics_dir=_metrics_dir(settings))
    services.warm(freeze=True)
    _SERVED["services"] = services
    logger.info("Mission Watch ready (store %s)", safe_url(engine))
    return app.server


def after_fork() -> None:
    """In a new worker process: drop the database connections inherited from the parent
    (they belong to it), so this worker opens its own."""
    services = _SERVED.get("services")
    if services is not None:
        services.engine.dispose(close=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        parser.error(f"configuration: {exc}")
    if getattr(args, "host", None) or getattr(args, "port", None):
        settings = settings.with_overrides(host=args.host, port=args.port)
    _configure_logging(args.log_level or settings.log_level)
    if args.command is None:
        args = parser.parse_args(["serve"])
    from store import StoreFull, StoreUnavailable

    try:
        return args.func(settings, args)
    except StoreUnavailable as exc:
        print(f"Store unavailable: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StoreFull as exc:   # any command that writes to the store
        print(f"Refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # e.g. `roster stats | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
