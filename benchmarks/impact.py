"""Impact engine against ``geopandas.sjoin``: cold, 10x points, 10x hazards, warm and 5% changed.

Run from the repository root: ``python -m benchmarks.impact`` (``--quick`` for a small run).
Points are the demo roster (missions and people) when ``layers.demo`` is available, otherwise a
clustered synthetic set of the same size. Hazards: storm-warning polygons, county MultiPolygons
(``data/geo/counties.geojson`` when present), a hurricane cone with wind radii, earthquake
circles and a typhoon cone drawn across the antimeridian with longitudes beyond 180.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import math
import resource
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import shapes
from layers.impact import ImpactIndex

ROOT = Path(__file__).resolve().parent.parent
COUNTIES = ROOT / "data" / "geo" / "counties.geojson"
N_POINTS = 126_600

# Fallback roster: (lon, lat, weight) of places with foreign missions, incl. the territories.
_PLACES = (
    (-77.037, 38.907, 40.0), (-74.006, 40.713, 22.0), (-118.244, 34.052, 5.0),
    (-122.419, 37.775, 4.0), (-87.630, 41.878, 4.0), (-95.370, 29.760, 4.0),
    (-80.192, 25.762, 4.0), (-84.388, 33.749, 3.0), (-71.059, 42.360, 3.0),
    (-122.332, 47.606, 2.0), (-104.990, 39.739, 1.0), (-96.797, 32.777, 1.0),
    (-83.046, 42.331, 1.0), (-75.165, 39.953, 1.0), (-90.072, 29.951, 1.0),
    (-112.074, 33.448, 1.0), (-93.265, 44.978, 0.5), (-157.858, 21.307, 1.0),
    (-149.900, 61.218, 0.4), (-66.106, 18.466, 1.0), (144.794, 13.444, 0.4),
    (-170.702, -14.276, 0.2), (171.380, 7.090, 0.2),
)
_KM_PER_DEG = 111.32


# --------------------------------------------------------------------------------------------
# Data


def load_points(seed: int, n: int = N_POINTS) -> tuple[gpd.GeoDataFrame, str]:
    """The demo roster's missions and people as one point frame, or a synthetic stand-in."""
    try:
        from layers.demo import generate_demo_roster
    except ImportError:
        generate_demo_roster = None
    if generate_demo_roster is not None:
        missions, people = generate_demo_roster(seed)
        frame = pd.concat(
            [
                pd.DataFrame({"location_id": missions["mission_id"], "kind": "mission",
                              "lon": missions["lon"], "lat": missions["lat"]}),
                pd.DataFrame({"location_id": people["person_id"], "kind": "person",
                              "lon": people["lon"], "lat": people["lat"]}),
            ],
            ignore_index=True,
        )
        source = f"demo roster (seed {seed}): {len(missions)} missions, {len(people)} people"
    else:
        rng = np.random.default_rng(seed)
        lon0, lat0, weight = (np.array(v) for v in zip(*_PLACES, strict=True))
        pick = rng.choice(lon0.size, n, p=weight / weight.sum())
        dist_km = np.minimum(12.0 * np.exp(0.6 * rng.standard_normal(n)), 50.0)
        angle = rng.uniform(0.0, 2.0 * np.pi, n)
        lat = lat0[pick] + dist_km * np.sin(angle) / _KM_PER_DEG
        lon = lon0[pick] + dist_km * np.cos(angle) / (_KM_PER_DEG * np.cos(np.radians(lat)))
        frame = pd.DataFrame({"location_id": [f"L-{i:06d}" for i in range(n)], "kind": "person",
                              "lon": (lon + 180.0) % 360.0 - 180.0, "lat": lat})
        source = f"synthetic clustered points around {len(_PLACES)} places: {n}"
    points = gpd.GeoDataFrame(
        frame[["location_id", "kind"]],
        geometry=gpd.points_from_xy(frame["lon"], frame["lat"]),
        crs="EPSG:4326",
    )
    return points, source


def multiply_points(points: gpd.GeoDataFrame, factor: int, seed: int) -> gpd.GeoDataFrame:
    """``factor`` jittered copies (a few km) of every point, with new ids."""
    rng = np.random.default_rng(seed)
    x = np.tile(shapely.get_x(points.geometry.array), factor)
    y = np.tile(shapely.get_y(points.geometry.array), factor)
    dist = rng.exponential(2.0, x.size) / _KM_PER_DEG
    angle = rng.uniform(0.0, 2.0 * np.pi, x.size)
    y = np.clip(y + dist * np.sin(angle), -90.0, 90.0)
    x = x + dist * np.cos(angle) / np.maximum(np.cos(np.radians(y)), 0.05)
    x = np.clip(x, -180.0, 180.0)
    ids = [f"{i}#{k}" for k in range(factor) for i in points["location_id"].tolist()]
    return gpd.GeoDataFrame({"location_id": ids}, geometry=gpd.points_from_xy(x, y), crs=4326)


def _blob(rng: np.random.Generator, lon: float, lat: float, across_km: float) -> shapely.Polygon:
    """An irregular star-shaped polygon about ``across_km`` wide (a storm-warning polygon)."""
    n = int(rng.integers(5, 16))
    angle = np.sort(rng.uniform(0.0, 2.0 * np.pi, n))
    radius = across_km / 2.0 * rng.uniform(0.55, 1.0, n)
    x = lon + radius * np.cos(angle) / (_KM_PER_DEG * math.cos(math.radians(lat)))
    y = lat + radius * np.sin(angle) / _KM_PER_DEG
    return shapely.Polygon(np.column_stack([np.round(x, 4), np.round(y, 4)]))


def _cone(track: list[tuple[float, float]], radii_km: list[float]) -> shapely.Polygon:
    """A forecast cone: hull of geodesic circles along a track, longitudes kept continuous."""
    circles = []
    for (lon, lat), r in zip(track, radii_km, strict=True):
        az = np.linspace(0.0, 360.0, 72, endpoint=False)
        x, y, _ = shapes.WGS84.fwd(np.full(72, lon), np.full(72, lat), az, np.full(72, r * 1e3))
        x = np.where(x - lon > 180.0, x - 360.0, np.where(lon - x > 180.0, x + 360.0, x))
        circles.append(shapely.MultiPoint(np.column_stack([x, y])))
    hulls = [shapely.union(a, b).convex_hull for a, b in itertools.pairwise(circles)]
    return shapely.union_all(hulls)


def build_hazards(points: gpd.GeoDataFrame, seed: int, scale: float = 1.0) -> gpd.GeoDataFrame:
    """The standard hazard mix (``scale`` times as many of each kind)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    px = shapely.get_x(points.geometry.array)
    py = shapely.get_y(points.geometry.array)
    for _ in range(round(600 * scale)):
        u = rng.random()
        if u < 0.10:  # over somebody's neighbourhood
            i = rng.integers(px.size)
            lon = px[i] + rng.normal(0, 0.15)
            lat = py[i] + rng.normal(0, 0.1)
        elif u < 0.95:
            lon, lat = rng.uniform(-124.0, -67.0), rng.uniform(25.0, 49.0)
        else:
            lon, lat, _ = _PLACES[rng.choice([17, 18, 19, 20])]
            lon += rng.normal(0, 1.0)
            lat += rng.normal(0, 0.5)
        rows.append({"kind": "warning",
                     "geometry": _blob(rng, lon, lat, rng.uniform(5.0, 40.0))})
    n_counties = round(200 * scale)
    if COUNTIES.exists():
        counties = gpd.read_file(COUNTIES)
        rep = counties.geometry.representative_point()
        # a nor'easter: the counties nearest the Richmond - Boston corridor, plus random ones
        a = np.array([-77.4, 37.5])
        b = np.array([-71.0, 42.4])
        p = np.column_stack([rep.x, rep.y])
        t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
        dist = np.hypot(*(p - (a + t[:, None] * (b - a))).T)
        corridor = np.argsort(dist)[: round(0.6 * n_counties)]
        rest = np.setdiff1d(np.arange(len(counties)), corridor)
        chosen = np.concatenate(
            [corridor, rng.choice(rest, n_counties - corridor.size, replace=False)]
        )
        for geom in counties.geometry.iloc[chosen]:
            rows.append({"kind": "county", "geometry": shapely.MultiPolygon(
                shapely.get_parts(geom).tolist())})
    else:
        for _ in range(n_counties):
            lon, lat = rng.uniform(-124.0, -67.0), rng.uniform(25.0, 49.0)
            parts = [_blob(rng, lon, lat, rng.uniform(30.0, 70.0)),
                     _blob(rng, lon + 0.6, lat + 0.2, 5.0)]
            rows.append({"kind": "county", "geometry": shapely.MultiPolygon(parts)})
    for k in range(max(1, round(scale))):
        d = 0.3 * k
        track = [(-63.5 - d, 17.0), (-66.3 - d, 18.5), (-71.5, 21.0), (-76.5, 24.0),
                 (-80.3, 26.4), (-82.6, 29.2)]
        rows.append({"kind": "hurricane_cone",
                     "geometry": _cone(track, [30.0, 60.0, 110.0, 160.0, 220.0, 280.0])})
        for r in (250.0, 120.0, 60.0):
            rows.append({"kind": "wind_radius", "center_lon": -66.3 - d, "center_lat": 18.5,
                         "radius_km": r})
        # a typhoon cone from east of Majuro past Guam, drawn with longitudes beyond 180
        typhoon = [(190.0 - d, 5.5), (180.0, 6.5), (171.4, 7.2), (160.0, 9.5), (144.8, 13.6)]
        rows.append({"kind": "typhoon_cone",
                     "geometry": _cone(typhoon, [40.0, 70.0, 100.0, 160.0, 220.0])})
    quakes = [(-118.25, 34.05, 60.0), (-122.3, 37.8, 80.0), (-122.3, 47.6, 100.0),
              (-149.9, 61.2, 150.0), (-157.8, 21.3, 40.0), (-66.5, 18.0, 70.0),
              (144.8, 13.4, 120.0), (-170.7, -14.3, 1100.0), (-90.0, 35.1, 200.0),
              (-111.9, 40.8, 50.0), (-74.0, 40.7, 15.0), (-77.0, 38.9, 25.0)]
    for k in range(max(1, round(scale))):
        for lon, lat, r in quakes:
            jitter = 0.0 if k == 0 else 1.0
            rows.append({"kind": "earthquake", "center_lon": lon + rng.normal(0, jitter),
                         "center_lat": lat + rng.normal(0, jitter),
                         "radius_km": r * (1.0 if k == 0 else rng.uniform(0.5, 1.5))})
    frame = pd.DataFrame(rows)
    for c in ("center_lon", "center_lat", "radius_km"):
        if c not in frame:
            frame[c] = np.nan
    radius = frame["radius_km"].notna().to_numpy()
    geometry = np.where(
        radius, shapely.points(frame["center_lon"], frame["center_lat"]), frame["geometry"]
    )
    frame["hazard_id"] = [f"HZ-{i:05d}" for i in range(len(frame))]
    return gpd.GeoDataFrame(
        frame[["hazard_id", "kind", "center_lon", "center_lat", "radius_km"]],
        geometry=list(geometry), crs="EPSG:4326",
    )


def reparse(hazards: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The same hazards as new objects, as a feed refresh would parse them."""
    out = hazards.copy()
    out.geometry = shapely.from_wkb(shapely.to_wkb(hazards.geometry.array))
    return out


def change_some(hazards: gpd.GeoDataFrame, share: float, seed: int) -> gpd.GeoDataFrame:
    """A refresh in which ``share`` of the hazards moved a little (new shape or radius)."""
    rng = np.random.default_rng(seed)
    out = reparse(hazards)
    n = max(1, round(share * len(out)))
    pick = rng.choice(len(out), n, replace=False)
    geoms = out.geometry.array.copy()
    radius = out["radius_km"].to_numpy(copy=True)
    for i in pick.tolist():
        if np.isfinite(radius[i]):
            radius[i] += 1.0
        else:
            dx, dy = rng.normal(0, 0.02, 2)
            geoms[i] = shapely.transform(geoms[i], lambda xy, d=(dx, dy): xy + d)
    out.geometry = geoms
    out["radius_km"] = radius
    return out


# --------------------------------------------------------------------------------------------
# The usual way


def sjoin_inputs(hazards: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """What sjoin gets: shapes brought into [-180, 180] and radius hazards as 128-gon circles."""
    geoms = []
    for row in hazards.itertuples():
        if np.isfinite(row.radius_km):
            geoms.append(shapes.geodesic_circle(row.center_lon, row.center_lat, row.radius_km))
        else:
            geoms.append(shapes.normalize_longitudes(row.geometry))
    return gpd.GeoDataFrame({"hazard_id": hazards["hazard_id"].to_numpy()}, geometry=geoms,
                            crs="EPSG:4326")


def sjoin_within(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame) -> pd.DataFrame:
    joined = gpd.sjoin(points, polys, predicate="within")
    return joined[["hazard_id", "location_id"]]


def sjoin_intersects(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame) -> pd.DataFrame:
    joined = gpd.sjoin(polys, points, predicate="intersects")
    return joined[["hazard_id", "location_id"]]


def pair_set(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["hazard_id"].tolist(), frame["location_id"].tolist(), strict=True))


# --------------------------------------------------------------------------------------------
# Timing


def median_time(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None
                ) -> tuple[float, Any]:
    """Median wall time of ``fn(setup())`` over ``repeat`` runs (setup untimed) and one result."""
    times = []
    result = None
    for _ in range(repeat):
        arg = setup() if setup is not None else None
        gc.collect()
        start = time.perf_counter()
        result = fn(arg) if setup is not None else fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f} ms"


def compare_case(name: str, points: gpd.GeoDataFrame, hazards: gpd.GeoDataFrame, repeat: int,
                 verify_radius: bool = True) -> dict[str, float]:
    """Time the engine cold against the faster sjoin predicate; check the pairs agree."""
    print(f"\n== {name}: {len(points):,} locations, {len(hazards):,} hazards "
          f"({int(hazards['radius_km'].notna().sum())} radius)")
    points.sindex  # noqa: B018 - build the points' tree in setup, for both sjoin predicates
    polys = sjoin_inputs(hazards)
    ours_t, ours = median_time(lambda index: index.affected(hazards), repeat,
                               setup=lambda: ImpactIndex(points))
    within_t, within = median_time(lambda: sjoin_within(points, polys), repeat)
    inter_t, inter = median_time(lambda: sjoin_intersects(points, polys), repeat)
    shapes_only = polys.geometry.to_numpy()
    tree_t, _ = median_time(
        lambda: points.sindex.query(shapes_only, predicate="intersects"), repeat
    )
    radius_ids = set(hazards.loc[hazards["radius_km"].notna(), "hazard_id"].tolist())
    ours_s = pair_set(ours)
    ours_poly = {p for p in ours_s if p[0] not in radius_ids}
    inter_s = pair_set(inter)
    within_s = pair_set(within)
    inter_poly = {p for p in inter_s if p[0] not in radius_ids}
    within_poly = {p for p in within_s if p[0] not in radius_ids}
    assert ours_poly == inter_poly, (
        f"polygon pairs differ from sjoin(intersects): {len(ours_poly - inter_poly)} only ours, "
        f"{len(inter_poly - ours_poly)} only sjoin"
    )
    print(f"pairs: {len(ours_s):,} ({len(ours_poly):,} from polygons); polygon pairs identical "
          "to sjoin(intersects)")
    print(f"sjoin(within) misses {len(inter_poly - within_poly)} polygon pairs on edges/vertices")
    ours_r = ours_s - ours_poly
    inter_r = inter_s - inter_poly
    print(f"radius hazards: ours {len(ours_r):,} pairs by geodesic distance; sjoin on 128-gon "
          f"circles {len(inter_r):,} ({len(ours_r - inter_r)} only ours, "
          f"{len(inter_r - ours_r)} only sjoin: the polygon approximation)")
    if verify_radius:
        check_radius(points, hazards, ours_r)
    best = min(within_t, inter_t)
    print(f"ours (cold)         {fmt_ms(ours_t)}")
    print(f"sjoin within        {fmt_ms(within_t)}")
    print(f"sjoin intersects    {fmt_ms(inter_t)}")
    print(f"(points STRtree.query(predicate='intersects') alone, no table: {fmt_ms(tree_t)})")
    print(f"speed-up vs faster sjoin: {best / ours_t:6.1f}x")
    return {"ours": ours_t, "sjoin": best}


def check_radius(points: gpd.GeoDataFrame, hazards: gpd.GeoDataFrame,
                 ours: set[tuple[str, str]]) -> None:
    """Brute force: geodesic distance from every radius hazard to every location."""
    x = shapely.get_x(points.geometry.array)
    y = shapely.get_y(points.geometry.array)
    ids = points["location_id"].to_numpy()
    truth: set[tuple[str, str]] = set()
    for row in hazards[hazards["radius_km"].notna()].itertuples():
        d = shapes.geodesic_distance_m(row.center_lon, row.center_lat, x, y)
        truth.update((row.hazard_id, i) for i in ids[d <= row.radius_km * 1000.0].tolist())
    assert truth == ours, f"radius pairs differ from brute force: {len(truth ^ ours)}"
    print("radius pairs identical to a brute-force geodesic distance check")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, fewer repetitions")
    parser.add_argument("--seed", type=int, default=20261127, help="roster and hazard seed")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per timing")
    args = parser.parse_args(argv)
    # some generated warning polygons self-intersect after rounding, as real ones do; the
    # engine repairs them and warns once per hazard and index: count, don't print
    logging.basicConfig(level=logging.ERROR)
    repaired: list[warnings.WarningMessage] = []
    warnings.showwarning = lambda *a, **k: repaired.append(a[0])  # type: ignore[assignment]
    repeat = args.repeat or (3 if args.quick else 7)
    scale_repeat = max(1, repeat // 2)
    t0 = time.perf_counter()
    points, source = load_points(args.seed)
    if args.quick:
        points = points.sample(n=min(len(points), 20_000), random_state=1).reset_index(drop=True)
    hazards = build_hazards(points, args.seed + 1, scale=0.25 if args.quick else 1.0)
    print(f"points: {source}; using {len(points):,}")
    print(f"hazards: {hazards['kind'].value_counts().to_dict()}")
    print(f"setup {time.perf_counter() - t0:.1f} s")

    base = compare_case("standard", points, hazards, repeat)
    print("\n== refresh")
    index = ImpactIndex(points)
    first = index.affected(hazards)
    copies = [reparse(hazards) for _ in range(repeat)]
    warm_t, warm = median_time(index.affected, repeat, setup=copies.pop)
    assert warm.equals(first)
    variants = [change_some(hazards, 0.05, args.seed + 10 + k) for k in range(repeat)]
    before = index.computed_hazards
    changed_t, _ = median_time(index.affected, repeat, setup=variants.pop)
    per_run = (index.computed_hazards - before) / repeat
    print(f"warm refresh (same hazards, re-parsed) {fmt_ms(warm_t)}   "
          f"{base['sjoin'] / warm_t:7.0f}x faster than sjoin")
    print(f"refresh with 5% changed ({per_run:.0f} recomputed) {fmt_ms(changed_t)}   "
          f"{base['sjoin'] / changed_t:7.0f}x faster than sjoin")

    rss_standard = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    big_points = multiply_points(points, 10, args.seed + 2)
    more_p = compare_case("10x points", big_points, hazards, scale_repeat, verify_radius=False)
    del big_points
    more_hazards = build_hazards(points, args.seed + 3, scale=2.5 if args.quick else 10.0)
    more_h = compare_case("10x hazards", points, more_hazards, scale_repeat,
                          verify_radius=False)
    print("\n== growth (time ratio; 10 would be linear)")
    print(f"10x points:  ours {more_p['ours'] / base['ours']:5.1f}x   "
          f"sjoin {more_p['sjoin'] / base['sjoin']:5.1f}x")
    print(f"10x hazards: ours {more_h['ours'] / base['ours']:5.1f}x   "
          f"sjoin {more_h['sjoin'] / base['sjoin']:5.1f}x")

    print("\n== memory")
    tracemalloc.start()
    fresh = ImpactIndex(points)
    build_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    fresh.affected(hazards)
    query_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"standard set: index build peak {build_peak / 2**20:.1f} MiB, cold query peak "
          f"{query_peak / 2**20:.1f} MiB (tracemalloc: Python and numpy, not GEOS)")
    print(f"process max RSS: {rss_standard:.0f} MiB after the standard set and refreshes, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB at the end "
          "(sjoin's frames for 10x points dominate)")
    print(f"\n{len(repaired)} repair warnings (invalid generated polygons, repaired and counted)")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
