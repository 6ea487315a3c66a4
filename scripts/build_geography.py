"""Build the bundled boundaries ``data/geo/states.geojson`` and ``data/geo/counties.geojson``.

Usage: ``python scripts/build_geography.py SOURCE_DIR [--out-dir DIR]``. SOURCE_DIR is the
reference-geography collection described in ``data/PROVENANCE.md``: it holds
``us_states_territories_mh.geojson`` and ``sources/cb_2018_us_county_5m.zip`` /
``sources/cb_2022_us_county_20m.zip`` (the original Census cartographic boundary files).

Each layer is generalised as a *coverage* (``shapely.coverage_simplify``, Visvalingam-Whyatt on
shared edges): neighbouring areas keep one common border, so generalising opens no gaps and
creates no overlaps between them, and no ring is ever removed, so every island is kept. Small
isolated areas (Pacific territories, Virgin Islands) keep their full detail. Coordinates are
rounded to 5 decimals (about 1 m); any geometry made invalid by rounding is repaired with
``make_valid``. The script refuses to write a result in which an area lost a part or a county.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = PROJECT_ROOT / "data" / "geo"

STATES_SOURCE = "us_states_territories_mh.geojson"
COUNTIES_2018_SOURCE = "sources/cb_2018_us_county_5m.zip"
COUNTIES_2022_SOURCE = "sources/cb_2022_us_county_20m.zip"

#: Tolerance of the coverage simplification, roughly the square root of the area (in square
#: degrees) of the triangles removed. 0.005 moves a boundary by about 0.004 degrees (median)
#: at most 0.008 degrees (~0.9 km); see the build summary.
DEFAULT_TOLERANCE = 0.005
DECIMALS = 5
#: Areas with no neighbour in the coverage and fewer vertices than this keep full detail
#: (the Marshall Islands atolls are slivers that simplification would distort).
KEEP_DETAIL_MAX_VERTICES = 500
EXPECTED_STATE_CODES = frozenset((
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
    "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VT", "VA", "WA", "WV", "WI", "WY", "PR", "GU", "AS", "MP", "VI", "MH",
))


class BuildError(RuntimeError):
    """The sources are missing or the generalised result failed a check."""


def read_layer(path: Path) -> gpd.GeoDataFrame:
    """Read one source file (GeoJSON or zipped shapefile) in EPSG:4326."""
    if not path.is_file():
        raise BuildError(f"source file not found: {path}")
    frame = gpd.read_file(path)
    if frame.crs is None:
        raise BuildError(f"{path.name} has no CRS")
    return frame.to_crs(4326)


def _round(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, DECIMALS))


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep only the polygons of ``geom`` (``make_valid`` can add slivers of lines or points)."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    polys = [
        part
        for part in shapely.get_parts(geom)
        if isinstance(part, shapely.Polygon | shapely.MultiPolygon)
    ]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def generalise(geoms: np.ndarray, tolerance: float, *, keep_small_isolated: bool) -> np.ndarray:
    """Coverage-simplify ``geoms``, round to :data:`DECIMALS` decimals and repair validity."""
    if not shapely.coverage_is_valid(geoms):
        raise BuildError("the source is not a valid polygonal coverage; cannot generalise it")
    out = shapely.coverage_simplify(geoms, tolerance)
    if keep_small_isolated:
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        neighbours = np.bincount(left[left != right], minlength=len(geoms))
        small = shapely.get_num_coordinates(geoms) < KEEP_DETAIL_MAX_VERTICES
        keep = (neighbours == 0) & small
        out = np.where(keep, geoms, out)
    out = _round(out)
    invalid = ~shapely.is_valid(out)
    if invalid.any():
        out[invalid] = [_polygonal(g) for g in shapely.make_valid(out[invalid])]
    return out


def check_generalised(ids: Iterable[str], before: np.ndarray, after: np.ndarray) -> None:
    """Refuse results with an empty or invalid geometry or with a lost part."""
    problems = []
    parts_before = shapely.get_num_geometries(before)
    parts_after = shapely.get_num_geometries(after)
    for key, geom, n0, n1 in zip(ids, after, parts_before, parts_after, strict=True):
        if geom is None or shapely.is_empty(geom):
            problems.append(f"{key}: empty")
        elif not shapely.is_valid(geom):
            problems.append(f"{key}: invalid ({shapely.is_valid_reason(geom)})")
        elif n1 < n0:
            problems.append(f"{key}: {n0} parts became {n1}")
    if problems:
        raise BuildError("generalisation failed: " + "; ".join(problems))


def _coords(coords: Any) -> Any:
    """Nested coordinate lists with every number rounded to :data:`DECIMALS` decimals."""
    if isinstance(coords[0], float | int):
        return [round(float(v), DECIMALS) for v in coords[:2]]
    return [_coords(c) for c in coords]


def write_geojson(path: Path, frame: gpd.GeoDataFrame, columns: list[str]) -> int:
    """Write a compact, deterministic RFC 7946 FeatureCollection; return its size in bytes."""
    features = []
    for row in frame.itertuples(index=False):
        geometry = shapely.geometry.mapping(row.geometry)
        geometry = {"type": geometry["type"], "coordinates": _coords(geometry["coordinates"])}
        properties = {col: str(getattr(row, col)) for col in columns}
        features.append({"type": "Feature", "properties": properties, "geometry": geometry})
    text = json.dumps(
        {"type": "FeatureCollection", "features": features},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path.stat().st_size


def _hausdorff_summary(before: np.ndarray, after: np.ndarray) -> str:
    dist = shapely.hausdorff_distance(before, after, densify=0.25)
    return f"Hausdorff distance (degrees): median {np.median(dist):.4f}, max {dist.max():.4f}"


def build_states(source_dir: Path, tolerance: float) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The 57 areas with ``code``, ``name``, ``statefp``, generalised; plus report lines."""
    src = read_layer(source_dir / STATES_SOURCE)
    codes = set(src["STUSPS"])
    if codes != EXPECTED_STATE_CODES or len(src) != len(EXPECTED_STATE_CODES):
        raise BuildError(
            f"{STATES_SOURCE}: expected the 57 areas {sorted(EXPECTED_STATE_CODES)}, "
            f"got {len(src)} rows with codes {sorted(codes)}"
        )
    src = src.sort_values("STATEFP").reset_index(drop=True)
    before = src.geometry.to_numpy()
    after = generalise(before, tolerance, keep_small_isolated=True)
    check_generalised(src["STUSPS"], before, after)
    states = gpd.GeoDataFrame(
        {"code": src["STUSPS"], "name": src["NAME"], "statefp": src["STATEFP"]},
        geometry=after,
        crs=4326,
    )
    report = [
        f"states: {len(states)} areas, vertices {shapely.get_num_coordinates(before).sum()} -> "
        f"{shapely.get_num_coordinates(after).sum()}; {_hausdorff_summary(before, after)}",
        "parts before -> after: "
        + ", ".join(
            f"{code} {n0}->{n1}"
            for code, n0, n1 in zip(
                states["code"],
                shapely.get_num_geometries(before),
                shapely.get_num_geometries(after),
                strict=True,
            )
            if n0 > 1 or n1 > 1
        ),
    ]
    return states, report


def build_counties(
    source_dir: Path, tolerance: float, state_codes: dict[str, str]
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """2018 counties plus the 2022 codes absent from 2018, generalised; plus report lines."""
    frames = []
    report = []
    seen: set[str] = set()
    for vintage, name in (("2018", COUNTIES_2018_SOURCE), ("2022", COUNTIES_2022_SOURCE)):
        src = read_layer(source_dir / name).sort_values("GEOID").reset_index(drop=True)
        if src["GEOID"].duplicated().any():
            raise BuildError(f"{name}: duplicate GEOIDs")
        before = src.geometry.to_numpy()
        after = generalise(before, tolerance, keep_small_isolated=False)
        new = ~src["GEOID"].isin(seen).to_numpy()
        check_generalised(src["GEOID"][new], before[new], after[new])
        unknown_states = set(src["STATEFP"]) - set(state_codes)
        if unknown_states:
            raise BuildError(f"{name}: unknown STATEFP {sorted(unknown_states)}")
        frames.append(
            gpd.GeoDataFrame(
                {
                    "fips": src["GEOID"][new],
                    "name": src["NAME"][new],
                    "statefp": src["STATEFP"][new],
                    "state_code": src["STATEFP"][new].map(state_codes),
                    "vintage": vintage,
                },
                geometry=after[new],
                crs=4326,
            )
        )
        seen.update(src["GEOID"])
        report.append(
            f"counties {vintage}: {len(src)} in source, {int(new.sum())} kept "
            f"({', '.join(src['GEOID'][new]) if vintage != '2018' else 'all'}); vertices "
            f"{shapely.get_num_coordinates(before[new]).sum()} -> "
            f"{shapely.get_num_coordinates(after[new]).sum()}; "
            f"{_hausdorff_summary(before[new], after[new])}"
        )
    counties = pd.concat(frames, ignore_index=True).sort_values("fips", ignore_index=True)
    if counties["fips"].duplicated().any() or set(counties["fips"]) != seen:
        raise BuildError("counties: the union of both vintages lost or duplicated a GEOID")
    return counties, report


def main(argv: list[str] | None = None) -> int:
    """Build both files and print a summary for ``data/PROVENANCE.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_dir", type=Path, help="directory of the reference geography")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help="where states.geojson and counties.geojson are written")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="coverage simplification tolerance in degrees")
    args = parser.parse_args(argv)
    if not args.source_dir.is_dir():
        parser.error(f"SOURCE_DIR is not a directory: {args.source_dir}")
    try:
        states, state_report = build_states(args.source_dir, args.tolerance)
        codes = dict(zip(states["statefp"], states["code"], strict=True))
        counties, county_report = build_counties(args.source_dir, args.tolerance, codes)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    states_size = write_geojson(args.out_dir / "states.geojson", states,
                                ["code", "name", "statefp"])
    counties_size = write_geojson(args.out_dir / "counties.geojson", counties,
                                  ["fips", "name", "statefp", "state_code", "vintage"])
    for line in state_report + county_report:
        print(line)
    print(f"states.geojson: {len(states)} features, {states_size:,} bytes")
    print(
        f"counties.geojson: {len(counties)} features "
        f"({(counties['vintage'] == '2018').sum()} of 2018, "
        f"{(counties['vintage'] == '2022').sum()} of 2022), {counties_size:,} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
