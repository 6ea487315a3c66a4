"""Soak the wall display in headless chromium: many refreshes, the data changing as it goes.

    python -m benchmarks.wall_soak [--refreshes 500] [--interval 0.3] [--change-every 20]

Starts ``python app.py serve --no-poll`` over a throw-away data directory (the full demo
roster and the bundled recorded feeds) with the wall's refresh accelerated to ``--interval``
seconds, opens ``/wall`` through a display token in headless Debian chromium, and lets it run
until the page has taken ``--refreshes`` updates from the server. Every ``--change-every``
updates an earthquake is stored at a new place through the store (as the poller would), so
the maps, close-ups and the new-incident announcement are redrawn too, not only the numbers.

Prints the JS heap (after a forced garbage collection), DOM nodes and event listeners at the
start and the end, and every 100 updates the smallest, median and largest of five samples (a
single sample moves by a megabyte or two with what is in flight when it is taken): memory must
not grow with the number of updates.
Needs the test extra (selenium) and chromium with chromium-driver.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feeds.model import Hazard  # noqa: E402
from store.db import open_store  # noqa: E402
from store.feeds import replace_hazards  # noqa: E402
from tests.browser import LiveServer, chrome, wait_for  # noqa: E402

SAMPLE_EVERY = 20      # updates between memory samples (each after a forced collection)
WINDOW = 100           # updates per printed line (median of its samples: one sample is noisy)

# Places the soak's earthquake moves through (lon, lat): cities with missions.
PLACES = ((-118.25, 34.05), (-122.42, 37.77), (-77.04, 38.9), (-73.97, 40.75),
          (-80.19, 25.77), (-95.37, 29.76), (-87.63, 41.88), (-157.86, 21.31))


def _cli(data_dir: Path, *args: str) -> str:
    env = {**os.environ, "MISSIONWATCH_DATA_DIR": str(data_dir),
           "MISSIONWATCH_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, env=env,
                          text=True, check=True, capture_output=True)
    return done.stdout


def _quake(step: int, now: datetime) -> Hazard:
    lon, lat = PLACES[step % len(PLACES)]
    return Hazard(f"usgs:soak{step}", "usgs", f"M 6.{step % 10} - soak quake {step}",
                  "earthquake", severity="severe", center_lon=lon, center_lat=lat,
                  radius_km=30.0 + step % 5, sent=now, area_desc=f"soak step {step}")


COUNTED = ("Object", "Array", "Function", "HTMLElement")   # live objects by prototype


def _objects(driver, name: str) -> int:
    """How many live objects have ``name``.prototype in their chain (CDP queryObjects; the
    query's own handles are released, or they would keep everything alive)."""
    try:
        proto = driver.execute_cdp_cmd("Runtime.evaluate", {
            "expression": f"{name}.prototype", "objectGroup": "soak"})["result"]["objectId"]
        found = driver.execute_cdp_cmd("Runtime.queryObjects", {
            "prototypeObjectId": proto, "objectGroup": "soak"})["objects"]["objectId"]
        return int(driver.execute_cdp_cmd("Runtime.callFunctionOn", {
            "functionDeclaration": "function () { return this.length; }",
            "objectId": found, "returnByValue": True})["result"]["value"])
    finally:
        driver.execute_cdp_cmd("Runtime.releaseObjectGroup", {"objectGroup": "soak"})


def _metrics(driver, objects: bool = False) -> dict[str, float]:
    """JS heap, DOM nodes and listeners after a full garbage collection (and, if asked, live
    objects by kind)."""
    counts = {name: _objects(driver, name) for name in COUNTED} if objects else {}
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    values = {m["name"]: m["value"] for m in
              driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    history = driver.execute_script(
        "return Math.max(0, ...(window.dash_stores || []).map("
        "s => s.getState().history.past.length))")
    return {"heap_mb": values["JSHeapUsedSize"] / 1e6, "nodes": values["Nodes"],
            "listeners": values["JSEventListeners"], "documents": values["Documents"],
            "history": history, **counts}


def _beats(driver) -> int:
    return int(driver.execute_script("return window.missionWatchWall.beats"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.3)
    parser.add_argument("--change-every", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="give up after this many seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="missionwatch-soak-") as tmp:
        data_dir = Path(tmp)
        _cli(data_dir, "roster", "generate")
        token = re.search(r"mwd_[A-Za-z0-9_-]+", _cli(data_dir, "users", "token", "--display",
                                                       "soak wall")).group(0)
        url = f"sqlite:///{data_dir / 'missionwatch.sqlite3'}"
        env = {"MISSIONWATCH_WALL_REFRESH_S": str(args.interval),
               "MISSIONWATCH_WALL_ROTATE_S": str(args.interval * 2)}
        server = LiveServer(url, data_dir, extra_env=env)
        engine = open_store(url)
        driver = None
        try:
            server.wait_ready()
            driver = chrome(data_dir, (1920, 1080))
            driver.execute_cdp_cmd("Performance.enable", {})
            driver.get(f"{server.url}/wall?token={token}")
            wait_for(driver, "#wall-kpi-people", timeout=120)
            while _beats(driver) < 3:
                time.sleep(0.2)
            driver.execute_script("window.__soakDocument = true;")
            start = _metrics(driver, objects=True)
            started = time.monotonic()
            first_beats = _beats(driver)
            print(f"start: {first_beats} updates, heap {start['heap_mb']:.2f} MB, "
                  f"nodes {start['nodes']:.0f}, listeners {start['listeners']:.0f}")
            changes, next_change = 0, first_beats + args.change_every
            next_sample, window, windows = first_beats + SAMPLE_EVERY, [], []
            beats = first_beats
            while beats < first_beats + args.refreshes:
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"timed out after {args.timeout:.0f} s at {beats} updates")
                time.sleep(args.interval / 2)
                beats = _beats(driver)
                if beats >= next_change:
                    now = datetime.now(timezone.utc)
                    replace_hazards(engine, "usgs", [_quake(changes, now - timedelta(
                        seconds=1))], now=now)
                    changes += 1
                    next_change = beats + args.change_every
                if beats >= next_sample:
                    window.append(_metrics(driver))
                    next_sample += SAMPLE_EVERY
                    if len(window) * SAMPLE_EVERY >= WINDOW:
                        windows.append(window)
                        heaps = [m["heap_mb"] for m in window]
                        print(f"  {beats - first_beats:5d} updates: heap min "
                              f"{min(heaps):.2f} / median {statistics.median(heaps):.2f} / max "
                              f"{max(heaps):.2f} MB, nodes {window[-1]['nodes']:.0f}, "
                              f"listeners {window[-1]['listeners']:.0f}, undo history "
                              f"{window[-1]['history']}")
                        window = []
            elapsed = time.monotonic() - started
            end = _metrics(driver, objects=True)
            same = driver.execute_script("return window.__soakDocument === true")
            maps = driver.execute_script(
                "return document.querySelector('.wall-national').getAttribute('src')")
            print(f"end: {beats - first_beats} updates in {elapsed:.0f} s "
                  f"({(beats - first_beats) / elapsed:.1f}/s), {changes} data changes, "
                  f"page never reloaded: {same}")
            print(f"JS heap: start {start['heap_mb']:.2f} MB, end {end['heap_mb']:.2f} MB "
                  f"(end/start {end['heap_mb'] / start['heap_mb']:.2f})")
            if len(windows) >= 2:
                first_median = statistics.median(m["heap_mb"] for m in windows[0])
                last_median = statistics.median(m["heap_mb"] for m in windows[-1])
                peak = max(m["heap_mb"] for w in windows for m in w)
                print(f"JS heap, median of the first {WINDOW} updates {first_median:.2f} MB, "
                      f"of the last {WINDOW} {last_median:.2f} MB (last/first "
                      f"{last_median / first_median:.2f}); highest sample {peak:.2f} MB")
            print(f"Dash undo history entries: start {start['history']}, end {end['history']}")
            print("live objects (start -> end): " + ", ".join(
                f"{name} {start[name]:,} -> {end[name]:,}" for name in COUNTED))
            print(f"DOM nodes: start {start['nodes']:.0f}, end {end['nodes']:.0f}; listeners: "
                  f"start {start['listeners']:.0f}, end {end['listeners']:.0f}; documents: "
                  f"start {start['documents']:.0f}, end {end['documents']:.0f}")
            print(f"last map: {maps}")
        finally:
            if driver is not None:
                driver.quit()
            server.stop()
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
