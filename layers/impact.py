"""Which locations each hazard covers: an exact, vectorised and cached impact engine.

Semantics. A location is affected by a polygonal hazard when the hazard *covers* it: inside,
on an edge or on a vertex (``shapely.intersects_xy``), in planar lon/lat as GeoJSON draws shapes.
Invalid shapes are repaired with ``shapely.make_valid`` (a :class:`HazardGeometryWarning` names
the hazard; validity is only checked for shapes whose coordinates' box reaches a location, since
elsewhere it cannot change an answer); empty shapes affect nobody. A radius hazard
(``center_lon``, ``center_lat``, ``radius_km`` set) affects the locations whose geodesic distance
from the centre on the WGS 84 ellipsoid (``pyproj.Geod``, Karney's algorithm) is at most the
radius. Shapes crossing the
antimeridian may be split there (RFC 7946), drawn with longitudes beyond ±180 (a location is
covered when the shape moved by whole turns covers it), or drawn with edges jumping across it
(read the short way round); see :mod:`layers.shapes`. -180 and 180 are the same meridian.

Speed. Locations are sorted along a Z-order (Morton) curve of a lon/lat quadtree, so every
quadtree cell, at every level, is a contiguous run of locations with a known bounding box. For a
hazard, a cell whose bounding box meets none of the hazard's edges lies wholly inside or wholly
outside it: one test of one location decides the whole run. Only locations in cells that an edge
passes through are tested one by one, and such cells are refined (levels 10, 12, 14, ... down to
a finest level set by ``h3_resolution``) while they hold many locations. Edges are rasterised
onto cells with numpy through the same monotone floor() that places locations, which makes "no
edge meets this cell" provably exact. Radius hazards accept whole cells whose corners are surely
inside (a spherical bound on the geodesic) and measure the rest. The result equals a brute-force
loop exactly; the tests compare with one. (H3 cells were measured as the grouping too: h3-py has
no vectorised point-to-cell call, and a spherical hexagon needs extra margin in planar tests.)

Caching. Each hazard's result is cached under (hazard id, WKB of its shape) or (hazard id,
centre, radius), compared exactly; a refresh recomputes only new or changed hazards, and a
refresh whose hazards are byte for byte those of the previous one returns the previous table.
The cache is an LRU bounded in hazards and in pairs.

Output. ``hazard_id`` and ``location_id`` are pandas Categoricals over the sorted known ids:
4 bytes a row instead of a string pointer, built without touching a string; they compare, merge
and group like the ids (``.astype(str)`` gives plain strings).

Errors: bad arguments raise ``ValueError`` naming the argument and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math
import warnings
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from layers import shapes

logger = logging.getLogger(__name__)

PAIR_COLUMNS = ("hazard_id", "location_id")
RADIUS_COLUMNS = ("center_lon", "center_lat", "radius_km")

_COARSEST_LEVEL = 10  # quadtree level of the top cells (0.35 x 0.18 degrees)
_LEVEL_STEP = 2  # each refinement splits a cell into 16
_SMALL_CELL = 32  # a cell an edge passes through with at most this many locations: test each
_MAX_LEVEL = 26
_POLYGONAL_TYPE_IDS = (3, 6, 7)  # Polygon, MultiPolygon, GeometryCollection


class HazardGeometryWarning(UserWarning):
    """A hazard's shape was invalid and has been repaired with ``shapely.make_valid``."""


# --------------------------------------------------------------------------------------------
# The quadtree of locations


def _cell_index(values: np.ndarray, offset: float, span: float, level: int) -> np.ndarray:
    """Quadtree column/row of coordinates at ``level``: a monotone function of the coordinate.

    The scale is 2**level / span computed as an exact power-of-two multiple of 1/span, so the
    index at a coarser level is exactly the finer index shifted right (nested cells).
    """
    n = 1 << level
    raw = np.floor((np.asarray(values, dtype=float) + offset) * ((1.0 / span) * float(n)))
    return np.clip(raw, 0, n - 1).astype(np.int64)


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Interleave zeros between the low 32 bits of ``v`` (for Morton codes)."""
    v = v.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    for shift, mask in (
        (16, 0x0000FFFF0000FFFF),
        (8, 0x00FF00FF00FF00FF),
        (4, 0x0F0F0F0F0F0F0F0F),
        (2, 0x3333333333333333),
        (1, 0x5555555555555555),
    ):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def _morton(col: np.ndarray, row: np.ndarray) -> np.ndarray:
    return _spread_bits(col) | (_spread_bits(row) << np.uint64(1))


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: numpy's hash-based ``np.unique`` is slower here)."""
    if values.size == 0:
        return values
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for a sorted ``sorted_set``, by binary search."""
    if sorted_set.size == 0:
        return np.zeros(values.shape, bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[pos] == values


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + c)`` for every (s, c), vectorised (int32 when it fits)."""
    counts = np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(counts)
    total = int(ends[-1]) if ends.size else 0
    starts = np.asarray(starts, dtype=np.int64)
    dtype = np.int32 if total < 2**31 and (starts.size == 0 or starts.max() < 2**31) else np.int64
    if total == 0:
        return np.empty(0, dtype=dtype)
    out = np.repeat((starts - (ends - counts)).astype(dtype), counts)
    out += np.arange(total, dtype=dtype)
    return out


@dataclasses.dataclass
class _Level:
    """Occupied cells of one quadtree level: key, run of entries and bounding box of each."""

    level: int
    key: np.ndarray
    start: np.ndarray
    end: np.ndarray
    xmin: np.ndarray
    ymin: np.ndarray
    xmax: np.ndarray
    ymax: np.ndarray
    child_start: np.ndarray | None = None
    child_end: np.ndarray | None = None


class _PointGrid:
    """Entries (locations, plus a twin at the other sign for those on ±180) in Morton order.

    ``owner`` names the location of each entry (the index passes location ranks).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, owner: np.ndarray, finest_level: int) -> None:
        levels = list(range(min(_COARSEST_LEVEL, finest_level), finest_level + 1, _LEVEL_STEP))
        if levels[-1] != finest_level:
            levels.append(finest_level)
        fine = _morton(
            _cell_index(x, 180.0, 360.0, finest_level), _cell_index(y, 90.0, 180.0, finest_level)
        )
        order = np.argsort(fine, kind="stable")
        fine = fine[order]
        self.x = np.ascontiguousarray(x[order])
        self.y = np.ascontiguousarray(y[order])
        self.owner = owner[order].astype(np.uint32 if x.size < 2**32 else np.uint64)
        self.levels: list[_Level] = []
        for level in levels:
            key = fine >> np.uint64(2 * (finest_level - level))
            start = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
            end = np.append(start[1:], key.size)
            self.levels.append(
                _Level(
                    level=level,
                    key=key[start],
                    start=start,
                    end=end,
                    xmin=np.minimum.reduceat(self.x, start),
                    ymin=np.minimum.reduceat(self.y, start),
                    xmax=np.maximum.reduceat(self.x, start),
                    ymax=np.maximum.reduceat(self.y, start),
                )
            )
        for upper, lower in zip(self.levels[:-1], self.levels[1:], strict=False):
            upper.child_start = np.searchsorted(lower.start, upper.start)
            upper.child_end = np.searchsorted(lower.start, upper.end)
        top = self.levels[0]
        self.tree = shapely.STRtree(shapely.box(top.xmin, top.ymin, top.xmax, top.ymax))

    # -- polygons ---------------------------------------------------------------------------

    def candidates(self, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hazard, top cell) pairs whose boxes overlap, given each hazard's coordinate bounds.

        A hazard's box must span all its coordinates, not just its envelope: an invalid
        polygon's holes may lie outside its shell, and ``make_valid`` can turn them into area
        (see :func:`layers.shapes.coordinate_bounds`).
        """
        rows = np.flatnonzero(np.isfinite(bounds[:, 0]))
        b = bounds[rows]
        box_h, cells = self.tree.query(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
        return rows[box_h], cells

    def covered(
        self, geoms: np.ndarray, cand_h: np.ndarray, cand_c: np.ndarray, base: np.ndarray
    ) -> np.ndarray:
        """Keys ``base[hazard] + owner`` of the entries each (valid, prepared) hazard covers.

        ``cand_h``/``cand_c`` are the (hazard, top cell) candidates; ``base`` is an unsigned
        array, one offset per hazard, so the caller gets sortable pair keys in one pass.
        """
        if cand_h.size == 0:
            return np.empty(0, base.dtype)
        bounds = shapely.bounds(geoms)
        reach = _unique(cand_h)
        segs = shapes.linework_segments(geoms[reach])
        segs = segs._replace(owner=reach[segs.owner])
        # pieces of segments still of interest: (segment, t0, t1)
        p_seg = np.arange(segs.owner.size, dtype=np.int64)
        p_t0 = np.zeros(p_seg.size)
        p_t1 = np.ones(p_seg.size)
        dx = segs.x1 - segs.x0
        dy = segs.y1 - segs.y0
        whole: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (hazard, start, end)
        tests: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for depth, lv in enumerate(self.levels):
            last = depth == len(self.levels) - 1
            n_cells = np.int64(lv.key.size)
            # rasterise the pieces onto this level's cells
            sx = (1.0 / 360.0) * float(1 << lv.level)
            sy = (1.0 / 180.0) * float(1 << lv.level)
            span = np.maximum(
                np.abs(dx[p_seg]) * (p_t1 - p_t0) * sx, np.abs(dy[p_seg]) * (p_t1 - p_t0) * sy
            )
            n_sub = np.maximum(np.ceil(span), 1).astype(np.int64)
            sub = _ranges(np.zeros(n_sub.size, np.int64), n_sub)
            rep = np.repeat(np.arange(n_sub.size), n_sub)
            width = (p_t1 - p_t0)[rep] / n_sub[rep]
            t0 = p_t0[rep] + width * sub
            t1 = np.where(sub == n_sub[rep] - 1, p_t1[rep], t0 + width)
            seg = p_seg[rep]
            ax = segs.x0[seg] + dx[seg] * t0
            bx = segs.x0[seg] + dx[seg] * t1
            ay = segs.y0[seg] + dy[seg] * t0
            by = segs.y0[seg] + dy[seg] * t1
            m = shapes.BOX_MARGIN_DEG
            c0 = _cell_index(np.minimum(ax, bx) - m, 180.0, 360.0, lv.level)
            c1 = _cell_index(np.maximum(ax, bx) + m, 180.0, 360.0, lv.level)
            r0 = _cell_index(np.minimum(ay, by) - m, 90.0, 180.0, lv.level)
            r1 = _cell_index(np.maximum(ay, by) + m, 90.0, 180.0, lv.level)
            ncol = c1 - c0 + 1
            nrow = r1 - r0 + 1
            cnt = ncol * nrow
            k = _ranges(np.zeros(cnt.size, np.int64), cnt)
            piece = np.repeat(np.arange(cnt.size), cnt)
            key = _morton(c0[piece] + k % ncol[piece], r0[piece] + k // ncol[piece])
            pos = np.searchsorted(lv.key, key)
            pos_ok = np.minimum(pos, lv.key.size - 1)
            found = lv.key[pos_ok] == key
            piece, cell = piece[found], pos_ok[found]
            touched = segs.owner[seg[piece]] * n_cells + cell
            flagged = _unique(touched)
            cand = cand_h * n_cells + cand_c
            hit = _member(cand, flagged)
            # cells no edge meets: one location decides the whole run
            uh, uc = cand_h[~hit], cand_c[~hit]
            rep_entry = lv.start[uc]
            inside = shapely.intersects_xy(geoms[uh], self.x[rep_entry], self.y[rep_entry])
            whole.append((uh[inside], lv.start[uc[inside]], lv.end[uc[inside]]))
            # cells an edge passes through: test each location, or refine
            fh, fc = cand_h[hit], cand_c[hit]
            small = np.ones(fh.size, bool) if last else (lv.end[fc] - lv.start[fc]) <= _SMALL_CELL
            tests.append((fh[small], lv.start[fc[small]], lv.end[fc[small]]))
            fh, fc = fh[~small], fc[~small]
            if fh.size == 0:
                break
            deeper = fh * n_cells + fc
            keep = _member(touched, np.sort(deeper))
            keep_piece = _unique(piece[keep])
            p_seg, p_t0, p_t1 = seg[keep_piece], t0[keep_piece], t1[keep_piece]
            nxt = self.levels[depth + 1]
            n_child = lv.child_end[fc] - lv.child_start[fc]  # type: ignore[index]
            cand_h = np.repeat(fh, n_child)
            cand_c = _ranges(lv.child_start[fc], n_child)  # type: ignore[index]
            b = bounds[cand_h]
            overlap = (
                (nxt.xmin[cand_c] <= b[:, 2])
                & (nxt.xmax[cand_c] >= b[:, 0])
                & (nxt.ymin[cand_c] <= b[:, 3])
                & (nxt.ymax[cand_c] >= b[:, 1])
            )
            cand_h, cand_c = cand_h[overlap], cand_c[overlap]
        th = np.concatenate([t[0] for t in tests])
        ts = np.concatenate([t[1] for t in tests])
        te = np.concatenate([t[2] for t in tests])
        n_test = te - ts
        test_h = np.repeat(th, n_test)
        test_e = _ranges(ts, n_test)
        ok = shapely.intersects_xy(geoms[test_h], self.x[test_e], self.y[test_e])
        wh = np.concatenate([w[0] for w in whole])
        ws = np.concatenate([w[1] for w in whole])
        we = np.concatenate([w[2] for w in whole])
        n_whole = we - ws
        tested = base[test_h[ok]] + self.owner[test_e[ok]]
        runs = np.repeat(base[wh], n_whole)
        runs += self.owner[_ranges(ws, n_whole)]
        return np.concatenate([tested, runs])

    # -- radius hazards ---------------------------------------------------------------------

    def within_radius(
        self, lon: np.ndarray, lat: np.ndarray, radius_m: np.ndarray, base: np.ndarray
    ) -> np.ndarray:
        """Keys ``base[hazard] + owner`` of the entries within ``radius_m[hazard]`` metres of
        each centre, exactly.

        Cells inside each circle's conservative lon/lat boxes are refined like polygons; a cell
        whose four corners are surely within the radius (spherical bound, see
        :func:`layers.shapes.geodesic_within`) is accepted whole, the rest point by point.
        """
        box_h, boxes = [], []
        for h, (x0, y0, r) in enumerate(zip(lon.tolist(), lat.tolist(), radius_m.tolist(),
                                            strict=True)):
            for box in shapes.geodesic_bounds(x0, y0, r):
                box_h.append(h)
                boxes.append(box)
        box_h_arr = np.asarray(box_h, dtype=np.int64)
        b = np.asarray(boxes, dtype=float).reshape(-1, 4)
        # up to three boxes per hazard, padded with boxes that overlap nothing
        per = np.full((lon.size, 3, 4), np.nan)
        slot = _ranges(np.zeros(lon.size, np.int64), np.bincount(box_h_arr, minlength=lon.size))
        per[box_h_arr, slot] = b
        centre = ((lon + 180.0) % 360.0) - 180.0
        hz, cells = self.tree.query(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
        top = self.levels[0]
        pair = _unique(box_h_arr[hz] * np.int64(top.key.size) + cells)
        hz, cells = pair // top.key.size, pair % top.key.size
        whole_h, whole_e, test_h, test_e = [], [], [], []
        for depth, lv in enumerate(self.levels):
            hb = per[hz]
            with np.errstate(invalid="ignore"):
                overlap = (
                    (lv.xmin[cells, None] <= hb[:, :, 2]) & (lv.xmax[cells, None] >= hb[:, :, 0])
                    & (lv.ymin[cells, None] <= hb[:, :, 3]) & (lv.ymax[cells, None] >= hb[:, :, 1])
                ).any(axis=1)
            hz, cells = hz[overlap], cells[overlap]
            inside = self._surely_inside(lv, cells, centre[hz], lat[hz], radius_m[hz])
            runs = lv.end[cells[inside]] - lv.start[cells[inside]]
            whole_h.append(np.repeat(base[hz[inside]], runs))
            whole_e.append(_ranges(lv.start[cells[inside]], runs))
            hz, cells = hz[~inside], cells[~inside]
            if depth == len(self.levels) - 1:
                small = np.ones(cells.size, bool)
            else:
                small = (lv.end[cells] - lv.start[cells]) <= _SMALL_CELL
            runs = lv.end[cells[small]] - lv.start[cells[small]]
            test_h.append(np.repeat(hz[small], runs))
            test_e.append(_ranges(lv.start[cells[small]], runs))
            hz, cells = hz[~small], cells[~small]
            if cells.size == 0:
                break
            n_child = lv.child_end[cells] - lv.child_start[cells]  # type: ignore[index]
            hz = np.repeat(hz, n_child)
            cells = _ranges(lv.child_start[cells], n_child)  # type: ignore[index]
        th, te = np.concatenate(test_h), np.concatenate(test_e)
        ok = shapes.geodesic_within(lon[th], lat[th], self.x[te], self.y[te], radius_m[th])
        runs = np.concatenate(whole_h)
        runs += self.owner[np.concatenate(whole_e)]
        return np.concatenate([base[th[ok]] + self.owner[te[ok]], runs])

    @staticmethod
    def _surely_inside(lv: _Level, cells: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                       radius_m: np.ndarray) -> np.ndarray:
        """Cells whose every point is within the radius because all four corners surely are.

        On the sphere the largest central angle from a centre to a lon/lat box is at a corner
        when both meridian edges of the box are within 90 degrees of longitude of the centre.
        """
        west = ((lv.xmin[cells] - lon + 180.0) % 360.0) - 180.0
        east = ((lv.xmax[cells] - lon + 180.0) % 360.0) - 180.0
        inside = (np.abs(west) <= 89.0) & (np.abs(east) <= 89.0) & (west <= east)
        for xs, ys in ((lv.xmin, lv.ymin), (lv.xmin, lv.ymax), (lv.xmax, lv.ymin),
                       (lv.xmax, lv.ymax)):
            inside &= shapes.surely_within(lon, lat, xs[cells], ys[cells], radius_m)
        return inside


def _finest_level(h3_resolution: int) -> int:
    """Finest quadtree level whose cells are no taller than an H3 cell edge at that resolution."""
    edge_km = h3.average_hexagon_edge_length(h3_resolution, unit="km")
    return min(_MAX_LEVEL, max(_COARSEST_LEVEL, math.ceil(math.log2(20_004.0 / edge_km))))


# --------------------------------------------------------------------------------------------
# Input checks


def _check_crs(frame: gpd.GeoDataFrame, argument: str) -> None:
    crs = frame.crs
    if crs is not None and not crs.equals("EPSG:4326", ignore_axis_order=True):
        raise ValueError(
            f"{argument} must be in EPSG:4326 (WGS 84 lon/lat) or have no CRS; "
            f"got {crs.to_string()}"
        )


def _check_ids(frame: pd.DataFrame, id_col: str, argument: str) -> None:
    if not isinstance(id_col, str) or id_col not in frame.columns:
        raise ValueError(
            f"id_col must name a column of {argument}; got {id_col!r}, columns are "
            f"{list(frame.columns)}"
        )
    ids = frame[id_col]
    if ids.isna().any():
        raise ValueError(f"{argument}[{id_col!r}] must not be empty; rows {_rows(ids.isna())}")
    if not ids.is_unique:
        dup = ids[ids.duplicated(keep=False)]
        raise ValueError(f"{argument}[{id_col!r}] must be unique; repeated: {_few(dup.unique())}")


def _sorting_order(ids: pd.Series, argument: str) -> np.ndarray:
    """Positions of ``ids`` in ascending order; ValueError if they cannot be compared."""
    try:
        return np.argsort(ids.to_numpy(), kind="stable")
    except TypeError:
        raise ValueError(
            f"{argument} must hold ids of one sortable type (all str or all int)"
        ) from None


def _rows(mask: pd.Series) -> str:
    return _few(mask.index[mask.to_numpy()].tolist())


def _few(values: Any, limit: int = 5) -> str:
    values = list(values)
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


# --------------------------------------------------------------------------------------------
# The public index


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    """Counters of the per-hazard cache: lookups answered, hazards computed, current size."""

    hits: int
    misses: int
    entries: int
    pairs: int


class ImpactIndex:
    """An index of locations answering "which locations does each hazard cover", exactly.

    Build once per roster; call :meth:`affected` on every feed refresh.
    """

    def __init__(
        self,
        points: gpd.GeoDataFrame,
        id_col: str = "location_id",
        h3_resolution: int = 9,
        *,
        cache_entries: int = 20_000,
        cache_pairs: int = 20_000_000,
    ) -> None:
        """Index Point locations (EPSG:4326 or no CRS) identified by ``points[id_col]``.

        ``h3_resolution`` (0-15) sets the finest cell the index refines to: a quadtree cell no
        taller than an H3 edge at that resolution. The cache holds at most ``cache_entries``
        hazards and ``cache_pairs`` (hazard, location) pairs, least recently used out first.
        """
        if not isinstance(points, gpd.GeoDataFrame):
            raise ValueError(
                f"points must be a geopandas.GeoDataFrame, got {type(points).__name__}"
            )
        _check_crs(points, "points")
        if (
            isinstance(h3_resolution, bool)
            or not isinstance(h3_resolution, int | np.integer)
            or not 0 <= h3_resolution <= 15
        ):
            raise ValueError(
                f"h3_resolution must be an integer from 0 to 15, got {h3_resolution!r}"
            )
        for name, value in (("cache_entries", cache_entries), ("cache_pairs", cache_pairs)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        _check_ids(points, id_col, "points")
        order = _sorting_order(points[id_col], f"points[{id_col!r}]")
        geom = points.geometry.array
        bad = shapely.is_missing(geom) | shapely.is_empty(geom) | (shapely.get_type_id(geom) != 0)
        if bad.any():
            ids = points[id_col].to_numpy()[bad]
            raise ValueError(
                f"points must hold one non-empty Point per row; not so for {id_col} {_few(ids)}"
            )
        x = shapely.get_x(geom)
        y = shapely.get_y(geom)
        bad = ~(np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 180.0) & (np.abs(y) <= 90.0))
        if bad.any():
            ids = points[id_col].to_numpy()[bad]
            raise ValueError(
                "points must have longitudes in [-180, 180] and latitudes in [-90, 90]; not so "
                f"for {id_col} {_few(ids)}"
            )
        n = x.size
        self.id_col = id_col
        self.h3_resolution = int(h3_resolution)
        # rank: position of each location in id order; the index answers with ranks and the
        # table is sorted by them
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        self._n = n
        self._location_dtype = pd.CategoricalDtype(pd.Index(points[id_col].array.take(order)))
        on_meridian = np.flatnonzero(np.abs(x) == 180.0)
        self._has_twins = bool(on_meridian.size)
        self._grid: _PointGrid | None = None if n == 0 else _PointGrid(
            np.concatenate([x, -x[on_meridian]]),
            np.concatenate([y, y[on_meridian]]),
            np.concatenate([rank, rank[on_meridian]]),
            _finest_level(self.h3_resolution),
        )
        self._cache: OrderedDict[tuple[Hashable, Hashable], np.ndarray] = OrderedDict()
        self._cache_entries = cache_entries
        self._cache_pairs = cache_pairs
        self._cached_pairs = 0
        self._hits = 0
        self._misses = 0
        self._last: tuple[_Snapshot, pd.DataFrame] | None = None
        logger.debug(
            "impact index built: %d locations, %d on the antimeridian", n, on_meridian.size
        )

    def __len__(self) -> int:
        return self._n

    @property
    def computed_hazards(self) -> int:
        """How many hazards have been computed (not answered from the cache) so far."""
        return self._misses

    def cache_info(self) -> CacheInfo:
        """Current cache counters (for tests and the status page)."""
        return CacheInfo(self._hits, self._misses, len(self._cache), self._cached_pairs)

    def clear_cache(self) -> None:
        """Forget every cached hazard result."""
        self._cache.clear()
        self._cached_pairs = 0
        self._last = None

    # -- the query ----------------------------------------------------------------------------

    def affected(self, hazards: gpd.GeoDataFrame, id_col: str = "hazard_id") -> pd.DataFrame:
        """One row per (hazard, covered location): columns ``hazard_id``, ``location_id``.

        Rows are sorted by hazard id, then location id; both columns are Categoricals over the
        known ids. See the module docstring for what "covered" means for polygons and for
        radius hazards (``center_lon``, ``center_lat``, ``radius_km``).
        """
        snapshot = _Snapshot.take(hazards, id_col)
        if self._last is not None and snapshot is not None and snapshot.same_as(self._last[0]):
            self._hits += len(snapshot.ids)  # byte for byte the hazards of the last refresh
            self._last = (snapshot, self._last[1])
            return self._last[1].copy(deep=False)
        plan = _HazardPlan.read(hazards, id_col, snapshot.wkb() if snapshot else None)
        ids = plan.ids
        results: list[np.ndarray | None] = [None] * len(ids)
        missing = []
        for i in plan.order.tolist():
            key = (ids[i], plan.keys[i])
            cached = self._cache.get(key)
            if cached is None:
                missing.append(i)
            else:
                self._cache.move_to_end(key)
                results[i] = cached
        self._hits += len(ids) - len(missing)
        self._misses += len(missing)
        if missing:
            which = np.asarray(missing, dtype=np.int64)
            ranks, bounds = self._compute(plan, which)
            # the new results are views of one array: no copies (it stays alive while any of
            # them is cached)
            edges = bounds.tolist()
            new = [ranks[lo:hi] for lo, hi in itertools.pairwise(edges)]
            for i, r in zip(missing, new, strict=True):
                results[i] = r
            self._store([(ids[i], plan.keys[i]) for i in missing], new)
            if len(missing) == len(ids):  # everything new: ``ranks`` is already in table order
                results = []
                table = self._frame(plan, np.diff(bounds), ranks)
        if results:
            arrays = [results[i] for i in plan.order.tolist()]
            counts = np.fromiter((a.size for a in arrays), np.int64, len(arrays))  # type: ignore[union-attr]
            table = self._frame(plan, counts, np.concatenate(arrays))  # type: ignore[arg-type]
        elif not ids:
            table = self._frame(plan, np.empty(0, np.int64), np.empty(0, np.int32))
        logger.debug("impact refresh: %d hazards, %d computed", len(ids), len(missing))
        self._last = (snapshot, table) if snapshot is not None else None
        return table.copy(deep=False)

    def _store(self, keys: list[tuple[Hashable, Hashable]], ranks: list[np.ndarray]) -> None:
        """Cache new results (keys not cached yet), then evict the least recently used."""
        self._cache.update(zip(keys, ranks, strict=True))
        self._cached_pairs += sum(r.size for r in ranks)
        while self._cache and (
            len(self._cache) > self._cache_entries or self._cached_pairs > self._cache_pairs
        ):
            _, evicted = self._cache.popitem(last=False)
            self._cached_pairs -= evicted.size

    def _compute(self, plan: _HazardPlan, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Location ranks covered by the hazards at ``which``: one sorted array and the bounds.

        Hazard ``which[j]`` covers ``ranks[bounds[j]:bounds[j + 1]]``.
        """
        if self._grid is None:  # no locations at all
            return np.empty(0, np.int32), np.zeros(which.size + 1, np.int64)
        n = self._n
        # one sort key per pair: hazard position, then location rank (uint32 when it fits)
        kind = np.uint32 if which.size * n < 2**32 else np.uint64
        base = np.arange(which.size, dtype=kind) * kind(n)
        parts: list[np.ndarray] = []
        is_radius = plan.is_radius[which]
        at = np.flatnonzero(~is_radius)
        if at.size:
            geoms, bounds = plan.normalized_geometries(which[at])
            usable = np.flatnonzero(np.isfinite(bounds[:, 0]))
            at, geoms = at[usable], geoms[usable]
            cand_h, cand_c = self._grid.candidates(bounds[usable])
            reach = _unique(cand_h)
            for j in reach[~shapely.is_valid(geoms[reach])].tolist():
                plan.warn_repaired(which[at[j]], stacklevel=3)  # affected()'s caller
                geoms[j] = shapes.repair(geoms[j])[0]
            ours = np.flatnonzero(~shapely.is_prepared(geoms))
            shapely.prepare(geoms[ours])
            try:
                parts.append(self._grid.covered(geoms, cand_h, cand_c, base[at]))
            finally:
                shapely.destroy_prepared(geoms[ours])  # leave the caller's shapes as they were
        at = np.flatnonzero(is_radius)
        if at.size:
            rows = which[at]
            parts.append(self._grid.within_radius(
                plan.center_lon[rows], plan.center_lat[rows], plan.radius_km[rows] * 1000.0,
                base[at],
            ))
        key = np.concatenate(parts) if parts else np.empty(0, kind)
        key.sort()
        if self._has_twins:
            key = _unique(key)
        bounds = np.searchsorted(key, np.arange(which.size + 1, dtype=kind) * kind(n))
        np.remainder(key, kind(n), out=key)
        return key.view(np.int32) if kind is np.uint32 else key.view(np.int64), bounds

    def _frame(self, plan: _HazardPlan, counts: np.ndarray, ranks: np.ndarray) -> pd.DataFrame:
        """The pair table: hazards in id order with ``counts[j]`` locations each, as categoricals.

        Ids are categoricals over the sorted known ids (4 bytes a row, no string copies); they
        compare, merge and group like the ids themselves.
        """
        hazard_dtype = pd.CategoricalDtype(pd.Index(plan.id_array.take(plan.order)))
        codes = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
        return pd.DataFrame(
            {
                "hazard_id": pd.Categorical.from_codes(codes, dtype=hazard_dtype, validate=False),
                "location_id": pd.Categorical.from_codes(
                    ranks, dtype=self._location_dtype, validate=False
                ),
            },
            copy=False,
        )


@dataclasses.dataclass
class _Snapshot:
    """What a hazards frame held, to tell exactly (not by hash) that a refresh changed nothing.

    The geometry objects are kept, so the same objects again need no serialising; new objects
    are compared by their WKB.
    """

    id_col: str
    ids: list[Hashable]
    crs: Any
    radius: bytes
    geoms: np.ndarray
    _wkb: np.ndarray | None = None
    _joined: bytes | None = None

    @classmethod
    def take(cls, hazards: Any, id_col: str) -> _Snapshot | None:
        """A snapshot, or None when the frame is not plainly readable (it is validated later)."""
        if not isinstance(hazards, gpd.GeoDataFrame) or id_col not in hazards.columns:
            return None
        if hazards.geometry.name not in hazards.columns:
            return None
        radius = []
        for c in RADIUS_COLUMNS:
            if c not in hazards.columns:
                radius.append(b"-")
                continue
            values = hazards[c].to_numpy()
            if values.dtype.kind != "f":
                return None
            radius.append(values.astype(np.float64, copy=False).tobytes())
        return cls(
            id_col=id_col,
            ids=hazards[id_col].tolist(),
            crs=hazards.crs,
            radius=b"|".join(radius),
            geoms=np.asarray(hazards.geometry.array, dtype=object),
        )

    def wkb(self) -> np.ndarray:
        """WKB of every geometry (None for missing ones), computed once."""
        if self._wkb is None:
            self._wkb = shapely.to_wkb(self.geoms)
        return self._wkb

    def joined(self) -> bytes:
        if self._joined is None:
            wkb = self.wkb()
            missing = shapely.is_missing(self.geoms)
            # WKB is self-delimiting, so the concatenation identifies the shapes exactly
            self._joined = b"".join([np.packbits(missing).tobytes(), *wkb[~missing].tolist()])
        return self._joined

    def same_as(self, other: _Snapshot) -> bool:
        if (self.id_col, self.ids, self.radius) != (other.id_col, other.ids, other.radius):
            return False
        if self.crs != other.crs or self.geoms.size != other.geoms.size:
            return False
        if all(a is b for a, b in zip(self.geoms.tolist(), other.geoms.tolist(), strict=True)):
            return True
        return self.joined() == other.joined()


@dataclasses.dataclass
class _HazardPlan:
    """A validated hazards frame: ids, radius parameters, raw shapes and their WKB."""

    ids: list[Hashable]
    id_array: Any
    id_col: str
    is_radius: np.ndarray
    center_lon: np.ndarray
    center_lat: np.ndarray
    radius_km: np.ndarray
    geoms: np.ndarray
    wkb: np.ndarray

    @classmethod
    def read(
        cls, hazards: gpd.GeoDataFrame, id_col: str, wkb: np.ndarray | None = None
    ) -> _HazardPlan:
        if not isinstance(hazards, gpd.GeoDataFrame):
            raise ValueError(
                f"hazards must be a geopandas.GeoDataFrame, got {type(hazards).__name__}"
            )
        _check_crs(hazards, "hazards")
        _check_ids(hazards, id_col, "hazards")
        n = len(hazards)
        id_series = hazards[id_col]
        ids = id_series.tolist()
        params = np.full((n, 3), np.nan)
        for k, c in enumerate(RADIUS_COLUMNS):
            if c in hazards.columns:
                try:
                    params[:, k] = pd.to_numeric(hazards[c], errors="raise").to_numpy(float)
                except (TypeError, ValueError):
                    raise ValueError(f"hazards[{c!r}] must be numeric (or empty)") from None
        set_count = np.isfinite(params).sum(axis=1)
        partial = (set_count > 0) & (set_count < 3)
        if partial.any():
            raise ValueError(
                f"radius hazards need all of {', '.join(RADIUS_COLUMNS)}; incomplete for "
                f"{id_col} {_few(np.asarray(ids, dtype=object)[partial])}"
            )
        is_radius = set_count == 3
        bad = is_radius & ((params[:, 2] < 0) | (np.abs(params[:, 1]) > 90))
        if bad.any():
            raise ValueError(
                "radius hazards need radius_km >= 0 and center_lat in [-90, 90]; not so for "
                f"{id_col} {_few(np.asarray(ids, dtype=object)[bad])}"
            )
        geoms = np.asarray(hazards.geometry.array, dtype=object)
        kinds = shapely.get_type_id(geoms)
        empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        bad = ~is_radius & ~empty & ~np.isin(kinds, _POLYGONAL_TYPE_IDS)
        bad |= is_radius & ~empty & (kinds != 0)
        if bad.any():
            raise ValueError(
                "hazards must be Polygon/MultiPolygon (or a Point/None with center_lon, "
                f"center_lat and radius_km set); not so for {id_col} "
                f"{_few(np.asarray(ids, dtype=object)[bad])}"
            )
        if wkb is None:
            wkb = shapely.to_wkb(geoms)
        wkb = np.where(is_radius | empty, None, wkb)
        return cls(
            ids=ids,
            id_array=id_series.array,
            id_col=id_col,
            is_radius=is_radius,
            center_lon=params[:, 0],
            center_lat=params[:, 1],
            radius_km=params[:, 2],
            geoms=geoms,
            wkb=wkb,
        )

    @functools.cached_property
    def order(self) -> np.ndarray:
        """Row positions in hazard id order (the table's order)."""
        return _sorting_order(pd.Series(self.ids, dtype=object), f"hazards[{self.id_col!r}]")

    @functools.cached_property
    def keys(self) -> list[Hashable]:
        """Per-hazard cache keys: the shape's WKB itself (compared exactly, no digest to
        collide), or the radius parameters."""
        keys: list[Hashable] = []
        for i, w in enumerate(self.wkb.tolist()):
            if self.is_radius[i]:
                keys.append(("radius", self.center_lon[i], self.center_lat[i], self.radius_km[i]))
            else:
                keys.append(("shape", w))
        return keys

    def warn_repaired(self, row: int, stacklevel: int) -> None:
        """Tell the caller that the hazard at ``row`` had an invalid shape that was repaired."""
        hid = self.ids[row]
        warnings.warn(
            f"hazard {hid!r}: invalid geometry repaired with shapely.make_valid",
            HazardGeometryWarning,
            stacklevel=stacklevel + 1,
        )
        logger.warning("hazard %r: invalid geometry repaired", hid)

    def normalized_geometries(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The shapes at ``which`` and their coordinate bounds (NaN when empty); shapes reaching
        beyond ±180 are replaced by whole-turn copies.

        Edges jumping across the antimeridian are unwrapped first, then the shape is repaired
        (if invalid) before it is copied; see :func:`layers.shapes.whole_turn_copies`.
        """
        geoms = self.geoms[which].copy()
        bounds = shapes.coordinate_bounds(geoms)
        for j in np.flatnonzero(shapes.needs_longitude_fix(bounds)).tolist():
            geom, repaired = shapes.repair(shapes.unwrap_longitudes(geoms[j]))
            if repaired:
                self.warn_repaired(which[j], stacklevel=4)
            geoms[j] = shapes.whole_turn_copies(geom)
            bounds[j] = shapes.coordinate_bounds(geoms[j : j + 1])[0]
        return geoms, bounds


# --------------------------------------------------------------------------------------------
# Summaries for the roster


CAP_SEVERITIES: tuple[str, ...] = ("extreme", "severe", "moderate", "minor", "unknown")
"""CAP alert severities, most severe first; missing severities count as "unknown"."""

SUMMARY_DIMENSIONS: tuple[str, ...] = (
    "mission_type", "role", "immunity", "jurisdiction", "ofm_office", "country_code",
)
"""Location columns that :func:`summarize` breaks counts down by, when present."""

SUMMARY_COLUMNS = ("dimension", "value", "missions", "people", "households")
_KINDS = ("mission", "person")


@dataclasses.dataclass(frozen=True)
class ImpactSummary:
    """Counts of affected missions, people and households, three ways.

    Each table has the columns ``dimension``, ``value``, ``missions``, ``people`` and
    ``households`` (distinct ``household_id`` of the people counted); the row
    ``dimension == value == "all"`` holds the totals, the other rows break them down by the
    values of :data:`SUMMARY_DIMENSIONS` (locations without a value are only in the totals).
    ``per_hazard`` and ``attributed`` also have ``hazard_id`` first; rows are sorted by hazard
    id, dimension (in :data:`SUMMARY_DIMENSIONS` order) and value.

    - ``per_hazard``: everyone each hazard covers (a person in two hazards is in both).
    - ``attributed``: everyone once, under the most severe hazard covering them (equal
      severities go to the smallest hazard id), so the hazards' rows add up to ``total``.
    - ``total``: the union, everyone once.
    """

    per_hazard: pd.DataFrame
    attributed: pd.DataFrame
    total: pd.DataFrame


def severity_rank(values: pd.Series, argument: str = "severity") -> np.ndarray:
    """Rank of CAP severities, 0 for "extreme" to 4 for "unknown" (missing counts as unknown)."""
    text = values.astype(object).where(values.notna(), "unknown").astype(str)
    text = text.str.strip().str.lower()
    rank = text.map({s: i for i, s in enumerate(CAP_SEVERITIES)})
    if rank.isna().any():
        bad = sorted(set(values[rank.isna()].astype(str)))
        raise ValueError(
            f"{argument} must hold CAP severities ({', '.join(CAP_SEVERITIES)}, any case) or be "
            f"empty; got {_few(bad)}"
        )
    return rank.to_numpy(dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class _Pairs:
    """Pairs as integer codes: hazard code (into ``hazard_ids``) and location code."""

    hazard: np.ndarray
    location: np.ndarray
    hazard_ids: list[Hashable]  # sorted
    severity: np.ndarray  # rank per hazard code


def _codes(values: pd.Series, universe: pd.Index, what: str) -> np.ndarray:
    """Positions of ``values`` in ``universe``; ValueError naming unknown ones."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        where = universe.get_indexer(values.cat.categories.astype(object))
        codes = values.cat.codes.to_numpy()
        out = np.where(codes >= 0, where[codes], -1)
    else:
        out = universe.get_indexer(values.astype(object))
    if (out < 0).any():
        unknown = pd.unique(values.astype(object).to_numpy()[out < 0])
        raise ValueError(f"pairs name {what} missing from {what}: {_few(unknown)}")
    return out


def _read_pairs(
    pairs: pd.DataFrame,
    locations: pd.Index,
    hazards: pd.DataFrame | None,
    severity_col: str | None,
    hazard_id_col: str,
) -> _Pairs:
    _check_pairs(pairs)
    if severity_col is not None and hazards is None:
        raise ValueError("hazards must be given when severity_col is")
    if hazards is not None:
        if hazard_id_col not in hazards.columns:
            raise ValueError(f"hazards must have the column {hazard_id_col!r}")
        if severity_col is not None and severity_col not in hazards.columns:
            raise ValueError(
                f"severity_col {severity_col!r} is not a column of hazards; it has "
                f"{list(hazards.columns)}"
            )
        _check_ids(hazards, hazard_id_col, "hazards")
        known = hazards[hazard_id_col]
        rank = (severity_rank(hazards[severity_col], f"hazards[{severity_col!r}]")
                if severity_col is not None else np.zeros(len(hazards), np.int64))
    else:
        known = pd.Series(pd.unique(pairs["hazard_id"].astype(object).to_numpy()), dtype=object)
        rank = np.zeros(len(known), np.int64)
    order = _sorting_order(known, "hazard ids")
    universe = pd.Index(known.to_numpy()[order], dtype=object)
    return _Pairs(
        hazard=_codes(pairs["hazard_id"], universe, "hazards"),
        location=_codes(pairs["location_id"], locations, "locations"),
        hazard_ids=universe.tolist(),
        severity=rank[order],
    )


def _first_by_severity(p: _Pairs) -> tuple[np.ndarray, np.ndarray]:
    """(hazard code, location code): each location once, under its most severe hazard."""
    if p.location.size == 0:
        return p.hazard, p.location
    order = np.lexsort((p.hazard, p.severity[p.hazard], p.location))
    loc = p.location[order]
    first = np.concatenate(([True], loc[1:] != loc[:-1]))
    return p.hazard[order][first], loc[first]


def most_severe(
    pairs: pd.DataFrame,
    hazards: pd.DataFrame | None = None,
    severity_col: str | None = None,
    hazard_id_col: str = "hazard_id",
) -> pd.DataFrame:
    """One row per affected location: the most severe hazard covering it (``hazard_id``).

    Severity is the CAP severity in ``hazards[severity_col]``; without it, or between equal
    severities, the smallest hazard id wins. Rows are sorted by location id.
    """
    _check_pairs(pairs)
    known = pd.Series(pd.unique(pairs["location_id"].astype(object).to_numpy()), dtype=object)
    locations = pd.Index(known.to_numpy()[_sorting_order(known, "location ids")], dtype=object)
    p = _read_pairs(pairs, locations, hazards, severity_col, hazard_id_col)
    hazard, loc = _first_by_severity(p)
    return pd.DataFrame({
        "hazard_id": np.asarray(p.hazard_ids, dtype=object)[hazard],
        "location_id": locations.to_numpy()[loc],
    })


def summarize(
    pairs: pd.DataFrame,
    locations: pd.DataFrame,
    hazards: pd.DataFrame | None = None,
    severity_col: str | None = None,
    *,
    id_col: str = "location_id",
    hazard_id_col: str = "hazard_id",
) -> ImpactSummary:
    """Roster counts of an impact (pairs from :meth:`ImpactIndex.affected`); pure, no I/O.

    ``locations[id_col]`` identifies each location and ``kind`` says "mission" or "person";
    optional columns: :data:`SUMMARY_DIMENSIONS` and ``household_id``. People rows should carry
    their mission's type, ``country_code`` and ``ofm_office`` to be counted under them.
    ``hazards`` (with ``severity_col``, CAP severities) ranks hazards for ``attributed`` and lists
    hazards that affect nobody (rows of zeros).
    """
    if not isinstance(locations, pd.DataFrame) or id_col not in locations.columns:
        raise ValueError(f"locations must be a DataFrame with the id column {id_col!r}")
    if "kind" not in locations.columns:
        raise ValueError("locations must have a 'kind' column ('mission' or 'person')")
    _check_ids(locations, id_col, "locations")
    bad_kind = ~locations["kind"].isin(_KINDS)
    if bad_kind.any():
        raise ValueError(
            f"locations['kind'] must be 'mission' or 'person'; got "
            f"{_few(pd.unique(locations.loc[bad_kind, 'kind']))}"
        )
    p = _read_pairs(pairs, pd.Index(locations[id_col].astype(object)), hazards, severity_col,
                    hazard_id_col)
    person = (locations["kind"] == "person").to_numpy()
    household = np.full(len(locations), -1, dtype=np.int64)
    if "household_id" in locations.columns:
        codes, _ = pd.factorize(locations["household_id"])
        household = np.where(person, codes, -1)
    breakdowns = []
    for dim in SUMMARY_DIMENSIONS:
        if dim in locations.columns:
            codes, values = pd.factorize(locations[dim], sort=True)
            breakdowns.append((dim, codes, np.asarray(values, dtype=object)))
    counter = _Counter(person, household, breakdowns)
    n_hazards = len(p.hazard_ids)
    per_hazard = counter.table(p.hazard, p.location, p.hazard_ids, list(range(n_hazards)))
    hazard, loc = _first_by_severity(p)
    attributed = counter.table(hazard, loc, p.hazard_ids, list(range(n_hazards)))
    total = counter.table(np.zeros(loc.size, np.int64), loc, None, [0])
    return ImpactSummary(per_hazard=per_hazard, attributed=attributed, total=total)


@dataclasses.dataclass(frozen=True)
class _Counter:
    """Missions, people and distinct households per (group, value), by integer codes."""

    person: np.ndarray
    household: np.ndarray
    breakdowns: list[tuple[str, np.ndarray, np.ndarray]]

    def table(self, group: np.ndarray, loc: np.ndarray, labels: list[Hashable] | None,
              always: list[int]) -> pd.DataFrame:
        """Counts per group code and (dimension, value); groups in ``always`` get an "all" row
        even when empty; ``labels`` names the groups (a ``hazard_id`` column) or None."""
        n_groups = max(len(always), int(group.max()) + 1 if group.size else 0)
        person = self.person[loc]
        household = self.household[loc]
        parts = []
        for dim, codes, values in [("all", np.zeros(self.person.size, np.int64),
                                    np.array(["all"], dtype=object)), *self.breakdowns]:
            value = codes[loc]
            has = value >= 0
            width = max(values.size, 1)
            key = group[has] * width + value[has]
            size = n_groups * width
            missions = np.bincount(key, weights=~person[has], minlength=size).astype(np.int64)
            people = np.bincount(key, weights=person[has], minlength=size).astype(np.int64)
            hh = household[has]
            with_hh = hh >= 0
            n_hh = int(self.household.max()) + 1 if self.household.size else 1
            distinct = _unique(key[with_hh] * np.int64(max(n_hh, 1)) + hh[with_hh])
            households = np.bincount(distinct // max(n_hh, 1), minlength=size).astype(np.int64)
            keep = (missions + people) > 0
            if dim == "all":
                keep[np.asarray(always, dtype=np.int64) * width] = True
            rows = np.flatnonzero(keep)
            part = pd.DataFrame({
                "group": rows // width,
                "dimension": dim,
                "value": values[rows % width] if values.size else "",
                "missions": missions[rows],
                "people": people[rows],
                "households": households[rows],
            })
            parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        out = out.sort_values("group", kind="stable")  # dims and values are already in order
        if labels is None:
            return out.drop(columns="group").reset_index(drop=True)[list(SUMMARY_COLUMNS)]
        out.insert(0, "hazard_id", np.asarray(labels, dtype=object)[out["group"].to_numpy()])
        return out.drop(columns="group").reset_index(drop=True)[
            ["hazard_id", *SUMMARY_COLUMNS]
        ]


def _check_pairs(pairs: pd.DataFrame) -> None:
    if not isinstance(pairs, pd.DataFrame) or not set(PAIR_COLUMNS) <= set(pairs.columns):
        raise ValueError(
            f"pairs must be a DataFrame with the columns {', '.join(PAIR_COLUMNS)} "
            "(as ImpactIndex.affected returns)"
        )


# --------------------------------------------------------------------------------------------
# Distance to the edge


def edge_distance_km(
    pairs: pd.DataFrame,
    points: gpd.GeoDataFrame,
    hazards: gpd.GeoDataFrame,
    *,
    id_col: str = "location_id",
    hazard_id_col: str = "hazard_id",
) -> pd.DataFrame:
    """``pairs`` plus ``edge_distance_km``: how deep inside its hazard each location is.

    For a polygon: the geodesic distance (WGS 84) to the nearest point of the shape's boundary.
    The nearest point is found in an azimuthal equidistant plane around the shape, the distance
    to it measured with ``Geod.inv``: exact for that point, and an upper bound within about
    0.5 % of the true minimum for shapes up to 2,000 km across (far less for county-sized ones).
    The cut of an antimeridian split is not an edge. For a radius hazard: the geodesic distance
    to the centre. Rows keep the order of ``pairs``.
    """
    _check_pairs(pairs)
    _check_ids(points, id_col, "points")
    _check_ids(hazards, hazard_id_col, "hazards")
    plan = _HazardPlan.read(hazards, hazard_id_col)
    loc_pos = pd.Index(points[id_col].astype(object)).get_indexer(
        pairs["location_id"].astype(object)
    )
    haz_pos = pd.Index(pd.Series(plan.ids, dtype=object)).get_indexer(
        pairs["hazard_id"].astype(object)
    )
    if (loc_pos < 0).any() or (haz_pos < 0).any():
        raise ValueError("pairs name locations or hazards missing from points or hazards")
    x = shapely.get_x(points.geometry.array)[loc_pos]
    y = shapely.get_y(points.geometry.array)[loc_pos]
    out = np.full(len(pairs), np.nan)
    radius = plan.is_radius[haz_pos]
    if radius.any():
        rows = haz_pos[radius]
        out[radius] = shapes.geodesic_distance_m(
            plan.center_lon[rows], plan.center_lat[rows], x[radius], y[radius]
        ) / 1000.0
    order = np.argsort(haz_pos, kind="stable")
    bounds = np.searchsorted(haz_pos[order], np.arange(len(plan.ids) + 1))
    for h in np.flatnonzero(~plan.is_radius & (np.diff(bounds) > 0)).tolist():
        at = order[bounds[h] : bounds[h + 1]]
        out[at] = _distance_to_boundary_m(plan.geoms[h], x[at], y[at]) / 1000.0
    return pairs.assign(edge_distance_km=out)


def _distance_to_boundary_m(geom: Any, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Geodesic metres from points to the boundary of one (raw) hazard shape."""
    shape = shapes.unwrap_longitudes(geom)
    shape, _ = shapes.repair(shape)
    shape = shapes.join_antimeridian(shape)
    lines = [
        shapely.boundary(part) if part.geom_type == "Polygon" else part
        for part in shapes._flat_parts(shape)
    ]
    edge = shapely.segmentize(shapely.union_all(lines), 0.05)  # edges are straight in lon/lat
    centre = edge.envelope.centroid
    lon0 = ((centre.x + 180.0) % 360.0) - 180.0
    coords = shapely.get_coordinates(edge)
    ex, ey = shapes.aeqd_forward(lon0, centre.y, coords[:, 0], coords[:, 1])
    plane = shapely.set_coordinates(edge, np.column_stack([ex, ey]))
    px, py = shapes.aeqd_forward(lon0, centre.y, lon, lat)
    nearest = shapely.get_coordinates(
        shapely.shortest_line(plane, shapely.points(px, py))
    ).reshape(-1, 2, 2)[:, 0, :]
    bx, by = shapes.aeqd_inverse(lon0, centre.y, nearest[:, 0], nearest[:, 1])
    return shapes.geodesic_distance_m(lon, lat, bx, by)
