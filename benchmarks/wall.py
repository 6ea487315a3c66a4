"""Wall display through the app: the refresh callback and the SVG maps, time and bytes.

Run from the repository root: ``python -m benchmarks.wall`` (``--quick`` for a small run).
Setup as ``benchmarks.overview`` (demo roster, the bundled recorded feeds, a signed-in user,
requests through Flask's test client: the sign-in gate, Dash's serialisation and gzip count).

Measured, medians of ``--repeat``:
(a) the wall's refresh when nothing changed (maps not re-sent);
(b) the first refresh after a feed change, then every map a screen fetches for it: the national
    map, six insets and the close-ups (rendered once; the next screen gets them from the cache);
(c) the same maps again for a second screen.
The usual way, in the same run: (a) with a fresh ``Services`` per refresh (everything
recomputed per request), and for the bytes, the overview's Plotly map of the same incidents
(one figure, re-sent on each change) against the wall's SVGs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from benchmarks.overview import (
    QUICK_PEOPLE,
    Row,
    Sample,
    combine,
    fmt_bytes,
    print_rows,
    refresh_outputs,
    refresh_values,
    set_up,
)

REFRESH = "wall-maps-key.data"     # dashboard.pages.wall.refresh


def _quake(step: int, now: datetime) -> Any:
    from feeds.model import Hazard

    return Hazard(f"usgs:bench{step}", "usgs", f"M 6.{step % 10} - bench", "earthquake",
                  severity="severe", center_lon=-118.25 + step * 0.01, center_lat=34.05,
                  radius_km=40.0, sent=now)


def _values(maps_key: str | None, tick: int) -> dict[str, Any]:
    return {"wall-refresh.n_intervals": tick, "wall-maps-key.data": maps_key}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"about {QUICK_PEOPLE:,} people instead of the whole demo roster")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    bench = set_up(QUICK_PEOPLE if args.quick else None)
    try:
        run(bench, args.repeat)
    finally:
        bench.engine.dispose()
        bench.directory.cleanup()


def run(bench: Any, repeat: int) -> None:
    from dashboard import wall as wall_data
    from dashboard.services import current
    from store.feeds import replace_hazards

    browser = bench.browser

    def refresh(maps_key: str | None, tick: int = 1) -> Sample:
        return browser.callback(REFRESH, _values(maps_key, tick), "wall-refresh.n_intervals")

    def sent_maps(sample: Sample) -> bool:
        return "wall-maps" in sample.json()["response"]

    def key_of(sample: Sample) -> str:
        return sample.json()["response"]["wall-maps-key"]["data"]

    def maps_of(sample: Sample) -> list[str]:
        response = sample.json()["response"]
        urls = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                src = node.get("props", {}).get("src")
                if isinstance(src, str) and src.startswith("/wall/map/"):
                    urls.append(src)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(response["wall-maps"]["children"])
        urls += [c["src"] for c in response["wall-closeups"]["data"]]
        return urls

    first = refresh(None)
    key = key_of(first)
    print(f"wall: {len(maps_of(first))} maps, top incidents "
          f"{[c['key'] for c in first.json()['response']['wall-closeups']['data']][:3]}")
    for url in maps_of(first):  # warm, as a running wall would be
        browser.get(url)
    # (a) nothing changed
    quiet = [refresh(key, tick) for tick in range(2, repeat + 2)]
    if any(sent_maps(s) for s in quiet):
        raise RuntimeError("a quiet refresh re-sent the maps")
    # (b) a feed change: the refresh, then every map of the new version, rendered once
    changed, first_screen, second_screen, svg_sizes = [], [], [], []
    for step in range(repeat):
        now = datetime.now(timezone.utc)
        replace_hazards(bench.engine, "usgs", [_quake(step, now - timedelta(seconds=1))],
                        now=now)
        sample = refresh(key, 100 + step)
        if not sent_maps(sample):
            raise RuntimeError("a refresh after a feed change did not re-send the maps")
        key = key_of(sample)
        changed.append(sample)
        fetched = [browser.get(url) for url in maps_of(sample)]
        first_screen.append(combine(*[[f] for f in fetched])[0])
        again = [browser.get(url) for url in maps_of(sample)]
        second_screen.append(combine(*[[f] for f in again])[0])
        svg_sizes.append({url.split("?")[0]: (f.raw, f.sent) for url, f in
                          zip(maps_of(sample), fetched, strict=True)})
    # the usual way: everything recomputed per request (a fresh Services per refresh)
    usual = []
    for tick in range(repeat):
        bench.fresh_services()
        usual.append(refresh(key, 500 + tick))
    if any(sent_maps(s) for s in usual):
        raise RuntimeError("the usual way re-sent the maps: the comparison would be unfair")
    rows = [
        Row("(a) refresh, nothing changed", quiet),
        Row("(b) first refresh after a feed change", changed, "maps re-sent"),
        Row("(b) its maps, rendered (first screen)", first_screen,
            f"{len(svg_sizes[-1])} SVGs"),
        Row("(c) the same maps, second screen (cached)", second_screen),
        Row("usual way: (a) with a fresh Services", usual),
    ]
    print_rows("wall display", rows)
    ratio = statistics.median(s.seconds for s in usual) / statistics.median(
        s.seconds for s in quiet)
    print(f"\nthe refresh against the usual way: {ratio:.0f}x faster")
    print("\n== sizes of one version's SVGs (raw / gzip)")
    for name, (raw, sent) in sorted(svg_sizes[-1].items()):
        print(f"  {name:48} {fmt_bytes(raw):>9} {fmt_bytes(sent):>9}")
    # bytes per data change: the wall's maps against the overview's Plotly map of the incidents
    overview = browser.callback("overview-map-key.data", refresh_values(None, 1),
                                "overview-refresh.n_intervals")
    if not refresh_outputs(overview)[1]:
        raise RuntimeError("the overview did not send its map")
    maps_sent = statistics.median(s.sent for s in first_screen)
    print(f"\nper data change, one screen: wall maps {fmt_bytes(maps_sent)} gzip "
          f"(+ refresh {fmt_bytes(statistics.median(s.sent for s in changed))}); the overview's "
          f"Plotly map and page update {fmt_bytes(overview.sent)} gzip "
          f"({overview.sent / maps_sent:.1f}x the wall's maps)")
    services = current()
    started = time.perf_counter()
    wall = wall_data.snapshot(services)
    print(f"snapshot (warm caches): {(time.perf_counter() - started) * 1e3:.1f} ms, "
          f"{len(wall.incidents)} incidents, {len(wall.closeups)} close-ups")


if __name__ == "__main__":
    main()
