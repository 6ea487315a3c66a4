"""Static SVG maps for the wall display, rendered on the server.

A wall screen runs unattended for days: no WebGL, no map tiles, no hover. Each map panel is one
standalone SVG document (styles embedded, no scripts, no external references) that the page
shows through an ``<img>`` and the server caches per data change.

Every panel is drawn in a Lambert azimuthal equal-area projection centred on its lon/lat box
(areas compare fairly between panels). Longitudes are brought within 180 degrees of the centre
before projecting, so shapes crossing the antimeridian — the Aleutians, a typhoon cone near the
Marshall Islands, a hazard split at ±180 — come out in one piece. Shapes are clipped to the
visible frame, simplified to half a pixel and written with 0.1-pixel precision, so a national
map with hundreds of hazards and thousands of cells stays a few hundred kilobytes.

Only aggregates reach the SVG: people per H3 cell as a number, missions as anonymous dots.

Errors: bad arguments raise a plain ``ValueError`` naming the argument.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import itertools
import logging
import math
import numbers
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import h3
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from feeds.model import SEVERITIES
from layers.shapes import join_antimeridian, normalize_longitudes

if TYPE_CHECKING:
    import geopandas

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ palette

# Worst first, as the feeds define them; hazards are drawn in the reverse order (extreme last).
SEVERITY_ORDER: tuple[str, ...] = SEVERITIES

BACKGROUND = "#070d1a"     # sea and everything outside the bundled boundaries
LAND_FILL = "#1b2838"      # dark slate
BORDER_COLOUR = "#7088a8"  # state and coast lines, lighter than the land

# Bright hues for hazards: fill drawn translucent, outline solid.
SEVERITY_FILL: dict[str, str] = {
    "extreme": "#ff3b30",
    "severe": "#ff9500",
    "moderate": "#ffd60a",
    "minor": "#4da3ff",
    "unknown": "#a0aab8",
}
HAZARD_FILL_OPACITY = 0.28

# People per cell, low to high on a log scale: greens, a hue no severity uses, light on dark.
CELL_COLOURS: tuple[str, ...] = ("#1f8a70", "#2fbf85", "#7be3a8", "#d9fbe8")
# The cell scale's default top: fixed, so colours stay put on a screen that runs for a week and
# agree between panels and with ``legend_cells(CELL_SCALE_MAX)`` (decades 1 to 10,000+).
CELL_SCALE_MAX = 10_000

MISSION_COLOUR = "#9fb3cc"
AFFECTED_MISSION_COLOUR = "#ffffff"

# Sizes in viewBox pixels (circles scale with the image; strokes do not).
MISSION_RADIUS = 2.5
AFFECTED_MISSION_RADIUS = 5.0
BORDER_WIDTH_PX = 0.8
HAZARD_WIDTH_PX = 1.6
HIGHLIGHT_WIDTH_PX = 4.0

# Geometry budget: simplify to half a pixel, write tenths of a pixel, clip a little outside the
# frame so the cut edges never show, and densify long lon/lat edges (they are curves on a map).
SIMPLIFY_PX = 0.5
CLIP_MARGIN_PX = 8.0
DENSIFY_DEG = 0.25
BOX_SAMPLES = 181  # points per edge when fitting a box; odd, so edge midpoints are included

MIN_CLOSEUP_KM = 30.0   # a point-sized hazard still shows its surroundings
CLOSEUP_MARGIN = 0.15   # share of the hazard's span added on each side
_KM_PER_DEG = 110.0  # a degree of latitude is 110.6 to 111.7 km: the low side keeps minimums

_STYLE = (
    f".sea{{fill:{BACKGROUND}}}"
    f".state{{fill:{LAND_FILL};stroke:{BORDER_COLOUR};stroke-width:{BORDER_WIDTH_PX}px;"
    "stroke-linejoin:round;fill-rule:evenodd}"
    f".hazard{{fill-opacity:{HAZARD_FILL_OPACITY};stroke-width:{HAZARD_WIDTH_PX}px;"
    "stroke-linejoin:round;fill-rule:evenodd}"
    + "".join(f".sev-{s}{{fill:{c};stroke:{c}}}" for s, c in SEVERITY_FILL.items())
    + f".hazard.highlight{{stroke-width:{HIGHLIGHT_WIDTH_PX}px;fill-opacity:0.42}}"
    ".cell{stroke:none;fill-opacity:0.6}"   # hazard outlines show through the cells
    f".mission{{fill:{MISSION_COLOUR};stroke:{BACKGROUND};stroke-width:0.6}}"
    f".mission.affected{{fill:{AFFECTED_MISSION_COLOUR};stroke:{BACKGROUND};stroke-width:1.2px}}"
)
_NSS = 'vector-effect="non-scaling-stroke"'
# Characters XML 1.0 does not allow, even escaped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# ------------------------------------------------------------------------------------ panels


@dataclasses.dataclass(frozen=True)
class Panel:
    """One map: the lon/lat box it shows and the size of its SVG viewBox."""

    name: str
    bounds: tuple[float, float, float, float]  # west, south, east (may exceed 180), north
    width: int
    height: int

    def __post_init__(self) -> None:
        try:
            bounds = tuple(float(v) for v in self.bounds)
        except (TypeError, ValueError):
            raise ValueError(f"bounds: need (west, south, east, north), got "
                             f"{self.bounds!r}") from None
        if len(bounds) != 4 or not all(math.isfinite(v) for v in bounds):
            raise ValueError(f"bounds: need four finite numbers, got {self.bounds!r}")
        object.__setattr__(self, "bounds", bounds)  # a hashable tuple of floats
        west, south, east, north = bounds
        if not -90.0 <= south < north <= 90.0:
            raise ValueError(f"bounds: need -90 <= south < north <= 90, got {self.bounds!r}")
        if not west < east <= west + 360.0:
            raise ValueError(
                f"bounds: need west < east <= west + 360 (add 360 to east for a box across "
                f"the antimeridian), got {self.bounds!r}")
        for size in (self.width, self.height):
            if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
                raise ValueError(f"width and height must be positive integers, got "
                                 f"{self.width!r} x {self.height!r}")


# Sizes follow each box's shape; use dataclasses.replace(panel, width=..., height=...) for others.
PANELS: dict[str, Panel] = {
    "conus": Panel("Contiguous United States", (-125.0, 24.0, -66.5, 49.6), 1600, 870),
    "alaska": Panel("Alaska", (172.0, 51.0, 230.5, 71.6), 600, 380),
    "hawaii": Panel("Hawaii", (-160.6, 18.7, -154.6, 22.5), 600, 400),
    "puerto_rico": Panel("Puerto Rico and US Virgin Islands", (-68.1, 17.5, -64.4, 18.7),
                         600, 210),
    "guam": Panel("Guam and Northern Mariana Islands", (144.5, 13.1, 146.0, 15.4), 320, 500),
    # Tutuila and Manu'a, where the people are (Swains Island and Rose Atoll would shrink
    # Tutuila to a few pixels).
    "american_samoa": Panel("American Samoa", (-171.1, -14.9, -169.2, -13.7), 480, 300),
    "marshall_islands": Panel("Marshall Islands", (164.8, 4.3, 172.3, 14.9), 360, 510),
}


def _wrap(lon: Any, centre: float) -> Any:
    """Longitudes moved by whole turns to within 180 degrees of ``centre``."""
    return centre + (np.asarray(lon, dtype=float) - centre + 180.0) % 360.0 - 180.0


@dataclasses.dataclass(frozen=True)
class _Frame:
    """How a panel maps lon/lat to pixels, and which lon/lat area its frame shows."""

    lon0: float
    lat0: float
    transformer: pyproj.Transformer
    scale: float       # pixels per projected metre
    cx: float          # projected centre of the fitted box
    cy: float
    width: int
    height: int
    view: tuple[float, float, float, float]  # lon/lat extent of the frame (+ margin), wrapped

    def to_pixels(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.transformer.transform(_wrap(lon, self.lon0), np.asarray(lat, dtype=float))
        px = (np.asarray(x) - self.cx) * self.scale + self.width / 2.0
        py = self.height / 2.0 - (np.asarray(y) - self.cy) * self.scale
        return px, py

    def xy_to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """``(n, 2)`` lon/lat to ``(n, 2)`` pixels (for ``shapely.transform``)."""
        px, py = self.to_pixels(xy[:, 0], xy[:, 1])
        return np.column_stack([px, py])


def projection_of(panel: Panel) -> str:
    """The PROJ definition a panel is drawn in: LAEA centred on its box."""
    west, south, east, north = panel.bounds
    lon0 = float(_wrap((west + east) / 2.0, 0.0))
    lat0 = (south + north) / 2.0
    return (f"+proj=laea +lat_0={lat0!r} +lon_0={lon0!r} +x_0=0 +y_0=0 +ellps=WGS84 "
            "+units=m +no_defs")


def _box_outline(west: float, south: float, east: float, north: float,
                 n: int = BOX_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 1.0, n)
    lon = np.concatenate([west + (east - west) * t, np.full(n, east),
                          east - (east - west) * t, np.full(n, west)])
    lat = np.concatenate([np.full(n, south), south + (north - south) * t,
                          np.full(n, north), north - (north - south) * t])
    return lon, lat


@functools.lru_cache(maxsize=256)
def _frame(panel: Panel) -> _Frame:
    west, south, east, north = panel.bounds
    lon0 = float(_wrap((west + east) / 2.0, 0.0))
    lat0 = (south + north) / 2.0
    crs = pyproj.CRS.from_proj4(projection_of(panel))
    transformer = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lon, lat = _box_outline(west, south, east, north)
    x, y = transformer.transform(_wrap(lon, lon0), lat)
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    scale = min(panel.width / (x1 - x0), panel.height / (y1 - y0))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    # The lon/lat area the frame shows (a little more than the box when the aspects differ).
    half_w = (panel.width / 2.0 + CLIP_MARGIN_PX) / scale
    half_h = (panel.height / 2.0 + CLIP_MARGIN_PX) / scale
    fx, fy = _box_outline(cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    vlon, vlat = transformer.transform(fx, fy, direction="INVERSE")
    vlon = _wrap(vlon, lon0)
    view = (float(vlon.min()), float(vlat.min()), float(vlon.max()), float(vlat.max()))
    for pole in (90.0, -90.0):  # a pole inside the frame: every longitude shows
        px, py = transformer.transform(lon0, pole)
        if abs(px - cx) <= half_w and abs(py - cy) <= half_h:
            view = (lon0 - 180.0, min(view[1], pole), lon0 + 180.0, max(view[3], pole))
    return _Frame(lon0, lat0, transformer, scale, cx, cy, panel.width, panel.height, view)


def project(panel: Panel, lons: Any, lats: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions ``(x, y)`` of lon/lat points in ``panel``'s viewBox (y downwards)."""
    return _frame(panel).to_pixels(lons, lats)


# ------------------------------------------------------------------------------------ boxes


def bounds_of(geometry: BaseGeometry) -> tuple[float, float, float, float]:
    """The tightest lon/lat box around ``geometry``, reading longitudes round the circle.

    A shape split at the antimeridian (a MultiPolygon whose plain bounds are -180..180) or drawn
    beyond ±180 gets the small box around it, with ``east > 180``; west is in [-180, 180).
    """
    if geometry is None or geometry.is_empty:
        raise ValueError("geometry: need a non-empty shape to frame")
    parts = shapely.get_parts(_display_shape(geometry))
    while True:  # flatten nested collections
        types = shapely.get_type_id(parts)
        if not np.isin(types, (4, 5, 6, 7)).any():
            break
        parts = shapely.get_parts(parts)
    parts = parts[~shapely.is_empty(parts)]
    b = shapely.bounds(parts)
    south, north = float(b[:, 1].min()), float(b[:, 3].max())
    width = b[:, 2] - b[:, 0]
    if (width >= 360.0).any():
        return (-180.0, south, 180.0, north)
    start = (b[:, 0] + 180.0) % 360.0 - 180.0
    end = start + width
    # Intervals one turn either side as well, so wrapped tails are seen; merge and find the
    # largest uncovered gap within one turn: the box is everything else.
    starts = np.concatenate([start - 360.0, start, start + 360.0])
    ends = np.concatenate([end - 360.0, end, end + 360.0])
    order = np.argsort(starts, kind="stable")
    merged: list[list[float]] = []
    for s, e in zip(starts[order].tolist(), ends[order].tolist(), strict=True):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    best: tuple[float, float] | None = None
    for (_, gap_start), (gap_end, _) in itertools.pairwise(merged):
        if best is None or gap_end - gap_start > best[1] - best[0]:
            best = (gap_start, gap_end)
    if best is None:
        return (-180.0, south, 180.0, north)
    west = float(_wrap(best[1], 0.0))
    east = west + 360.0 - (best[1] - best[0])
    if west == 180.0:  # _wrap keeps -180 <= west < 180; guard the rounding edge
        west, east = west - 360.0, east - 360.0
    return (west, south, east, north)


def closeup_panel(bounds: tuple[float, float, float, float] | BaseGeometry, width: int = 960,
                  height: int = 720, *, name: str = "") -> Panel:
    """A panel framing a lon/lat box (a hazard's area) with a margin, at least 30 km across.

    ``bounds`` is ``(west, south, east, north)`` or a shape (framed by :func:`bounds_of`). A box
    with ``east < west`` crosses the antimeridian; a box wider than 180 degrees is read the short
    way round (the plain bounds of a shape split at ±180 are -180..180): it is centred on the
    antimeridian. Pass the shape, or ``bounds_of(shape)``, for the exact box.
    """
    if isinstance(bounds, BaseGeometry):
        bounds = bounds_of(bounds)
    try:
        west, south, east, north = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds: need (west, south, east, north) or a shape, got "
                         f"{bounds!r}") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)) or south > north:
        raise ValueError(f"bounds: need finite numbers with south <= north, got {bounds!r}")
    if east < west:
        east += 360.0
    if east - west > 180.0:
        west, east = east, west + 360.0
    lon_c, lat_c = (west + east) / 2.0, (south + north) / 2.0
    min_half_lat = MIN_CLOSEUP_KM / 2.0 / _KM_PER_DEG
    min_half_lon = min_half_lat / max(math.cos(math.radians(lat_c)), 0.05)
    half_lat = max((north - south) / 2.0 * (1.0 + 2.0 * CLOSEUP_MARGIN), min_half_lat)
    half_lon = min(max((east - west) / 2.0 * (1.0 + 2.0 * CLOSEUP_MARGIN), min_half_lon), 179.0)
    west = float(_wrap(lon_c - half_lon, 0.0))
    framed = (west, max(lat_c - half_lat, -89.9), west + 2.0 * half_lon,
              min(lat_c + half_lat, 89.9))
    return Panel(name, framed, int(width), int(height))


# ------------------------------------------------------------------------------------ geometry


def _flat_polygons(geoms: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygons of ``geoms`` (collections flattened, other types dropped) and their owners."""
    while True:
        types = shapely.get_type_id(geoms)
        nested = np.isin(types, (4, 5, 6, 7))
        if not nested.any():
            break
        parts, index = shapely.get_parts(geoms[nested], return_index=True)
        geoms = np.concatenate([geoms[~nested], parts])
        owner = np.concatenate([owner[~nested], owner[nested][index]])
    keep = (shapely.get_type_id(geoms) == 3) & ~shapely.is_empty(geoms)
    order = np.argsort(owner[keep], kind="stable")
    return geoms[keep][order], owner[keep][order]


def _shift_lon(geoms: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Each geometry moved east by its own whole number of turns (few distinct values)."""
    out = geoms.copy()
    for d in np.unique(degrees):
        if d != 0.0:
            sel = degrees == d
            offset = np.array([d, 0.0])
            out[sel] = shapely.transform(geoms[sel], lambda xy, o=offset: xy + o)
    return out


def _lonlat_pieces(frame: _Frame, parts: np.ndarray,
                   owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The parts that show in the frame, moved by whole turns next to its centre.

    Parts wholly inside the frame's lon/lat area are kept as they are; parts reaching out of it
    are cut to it, one turn either side as well, so a shape wider than half the globe or lying
    across the meridian opposite the centre never wraps into a tangle when projected.
    """
    west, south, east, north = frame.view
    b = shapely.bounds(parts)
    mid = (b[:, 0] + b[:, 2]) / 2.0
    shift = np.round((_wrap(mid, frame.lon0) - mid) / 360.0) * 360.0
    parts = _shift_lon(parts, shift)
    b[:, 0] += shift
    b[:, 2] += shift
    lat_ok = (b[:, 1] <= north) & (b[:, 3] >= south)
    inside = lat_ok & (b[:, 0] >= west) & (b[:, 2] <= east) & (b[:, 1] >= south) \
        & (b[:, 3] <= north)
    pieces, owners = [parts[inside]], [owner[inside]]
    cut_p: list[np.ndarray] = []
    cut_o: list[np.ndarray] = []
    cut_turn: list[np.ndarray] = []
    for turn in (-360.0, 0.0, 360.0):
        sel = lat_ok & ~inside & (b[:, 0] <= east + turn) & (b[:, 2] >= west + turn)
        if not sel.any():
            continue
        chosen = parts[sel]
        bad = ~shapely.is_valid(chosen)
        if bad.any():
            chosen[bad] = shapely.make_valid(chosen[bad])
        clipped = shapely.clip_by_rect(chosen, west + turn, south, east + turn, north)
        clipped = _shift_lon(clipped, np.full(len(clipped), -turn))
        cut_p.append(clipped)
        cut_o.append(owner[sel])
        cut_turn.append(np.full(len(clipped), turn))
    if cut_p:
        cp, co, ct = np.concatenate(cut_p), np.concatenate(cut_o), np.concatenate(cut_turn)
        # A shape cut on both sides of a turn (the whole globe, say) comes out in pieces that
        # meet along the cut: merge them, so no seam is drawn.
        for o in np.unique(co):
            sel = co == o
            if len(np.unique(ct[sel])) > 1:
                merged = shapely.union_all(shapely.make_valid(cp[sel]))
                pieces.append(np.array([merged], dtype=object))
                owners.append(np.array([o]))
            else:
                pieces.append(cp[sel])
                owners.append(co[sel])
    return np.concatenate(pieces), np.concatenate(owners)


def _to_pixel_polygons(frame: _Frame,
                       geoms: Sequence[BaseGeometry]) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat shapes as clipped, simplified pixel polygons; ``(polygons, owner index)``."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    if len(arr) == 0:
        return arr, np.zeros(0, dtype=np.int64)
    parts, owner = shapely.get_parts(arr, return_index=True)
    parts, owner = _flat_polygons(parts, owner)
    if len(parts) == 0:
        return parts, owner
    parts, owner = _lonlat_pieces(frame, parts, owner)
    parts, owner = _flat_polygons(parts, owner)
    if len(parts) == 0:
        return parts, owner
    parts = shapely.segmentize(parts, DENSIFY_DEG)
    pixels = shapely.transform(parts, frame.xy_to_pixels)
    finite = np.isfinite(shapely.bounds(pixels)).all(axis=1)
    pixels, owner = pixels[finite], owner[finite]
    bad = ~shapely.is_valid(pixels)
    if bad.any():
        pixels[bad] = shapely.make_valid(pixels[bad])
    m = CLIP_MARGIN_PX
    clipped = shapely.clip_by_rect(pixels, -m, -m, frame.width + m, frame.height + m)
    simple = shapely.simplify(clipped, SIMPLIFY_PX, preserve_topology=True)
    return _flat_polygons(simple, owner)


def _number(tenths: int) -> str:
    sign = "-" if tenths < 0 else " "
    whole, frac = divmod(abs(tenths), 10)
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


_TOKEN_LIMIT = 4000
_TOKENS = [_number(v) for v in range(-_TOKEN_LIMIT, _TOKEN_LIMIT + 1)]


def _token(v: int) -> str:
    return _TOKENS[v + _TOKEN_LIMIT] if -_TOKEN_LIMIT <= v <= _TOKEN_LIMIT else _number(v)


def _ring_paths(xy: np.ndarray, ring: np.ndarray, n_rings: int) -> list[str]:
    """Path data (``M x y l dx dy ... z``, tenths of a pixel) per ring; '' for degenerate ones.

    ``xy`` holds the rings' pixel coordinates in order, ``ring`` each coordinate's ring number.
    Consecutive points that round to the same tenth and a ring's closing point are dropped;
    relative steps are taken between rounded points, so no rounding error accumulates.
    """
    out = [""] * n_rings
    if len(xy) == 0:
        return out
    t = np.rint(xy * 10.0).astype(np.int64)
    keep = np.ones(len(t), dtype=bool)
    same_ring = ring[1:] == ring[:-1]
    keep[1:] = ~(same_ring & (t[1:] == t[:-1]).all(axis=1))
    t, ring = t[keep], ring[keep]
    # The closing point, when it repeats the ring's first point.
    first = np.r_[True, ring[1:] != ring[:-1]]
    last = np.r_[ring[1:] != ring[:-1], True]
    starts = np.flatnonzero(first)
    start_of = np.repeat(starts, np.diff(np.r_[starts, len(t)]))
    closing = last & (t == t[start_of]).all(axis=1) & ~first
    t, ring, first = t[~closing], ring[~closing], first[~closing]
    delta = t.copy()
    delta[1:] -= t[:-1]
    delta[first] = t[first]
    tokens = [_token(v) for v in delta.ravel().tolist()]
    bounds = np.flatnonzero(np.r_[True, ring[1:] != ring[:-1], True])
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if b - a < 3:
            continue  # fewer than three distinct points: nothing to fill at this scale
        out[int(ring[a])] = ("M" + tokens[2 * a].lstrip() + tokens[2 * a + 1] + "l"
                             + tokens[2 * a + 2].lstrip() + "".join(tokens[2 * a + 3:2 * b])
                             + "z")
    return out


def _polygon_paths(polygons: np.ndarray, owner: np.ndarray, n_owners: int) -> list[str]:
    """One path's data per owner: all rings of its polygons (holes included, for evenodd)."""
    out = [""] * n_owners
    if len(polygons) == 0:
        return out
    rings, poly_of_ring = shapely.get_rings(polygons, return_index=True)
    coords, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
    paths = _ring_paths(coords, ring_of_coord, len(rings))
    pieces: list[list[str]] = [[] for _ in range(n_owners)]
    for path, o in zip(paths, owner[poly_of_ring].tolist(), strict=True):
        if path:
            pieces[o].append(path)
    return ["".join(p) for p in pieces]


def _attr(value: str) -> str:
    return html.escape(_XML_ILLEGAL.sub("", value), quote=True)


# ------------------------------------------------------------------------------------ layers


_LAND_CACHE: OrderedDict[tuple[Panel, int], tuple[weakref.ref[Any], str]] = OrderedDict()
_LAND_CACHE_SIZE = 64
_LAND_LOCK = threading.Lock()


def _land(panel: Panel, base: geopandas.GeoDataFrame) -> str:
    """The land layer of a panel (cached per panel and boundary table: it never changes)."""
    key = (panel, id(base))
    with _LAND_LOCK:
        hit = _LAND_CACHE.get(key)
        if hit is not None and hit[0]() is base:
            _LAND_CACHE.move_to_end(key)
            return hit[1]
    polygons, owner = _to_pixel_polygons(_frame(panel), list(base.geometry))
    paths = _polygon_paths(polygons, owner, len(base))
    layer = "".join(
        f'<path class="state" data-code="{_attr(str(code))}" {_NSS} d="{d}"/>'
        for code, d in zip(base["code"].tolist(), paths, strict=True) if d)
    layer = f'<g class="land">{layer}</g>'
    with _LAND_LOCK:
        _LAND_CACHE[key] = (weakref.ref(base), layer)
        _LAND_CACHE.move_to_end(key)
        while len(_LAND_CACHE) > _LAND_CACHE_SIZE:
            _LAND_CACHE.popitem(last=False)
    return layer


def _severity(value: Any) -> str:
    text = str(value).strip().lower() if value is not None else ""
    return text if text in SEVERITY_FILL else "unknown"


def _display_shape(geometry: BaseGeometry) -> BaseGeometry:
    """A shape read the project's way round the antimeridian, in one piece where it crosses.

    Edges longer than 180 degrees of longitude go the short way (``normalize_longitudes``), and
    a shape split at ±180 is joined back (``join_antimeridian``), so no seam is drawn along the
    cut. Shapes within half a turn are returned as they are, longitudes beyond ±180 included.
    """
    minx, _, maxx, _ = geometry.bounds
    if maxx - minx <= 180.0:
        return geometry
    try:
        shape = normalize_longitudes(geometry)
        minx, _, maxx, _ = shape.bounds
        if minx <= -180.0 and maxx >= 180.0:
            shape = join_antimeridian(shapely.make_valid(shape))
    except shapely.errors.GEOSException:
        logger.warning("svg map: a shape across the antimeridian is drawn as given")
        return geometry
    return shape


def _hazards(frame: _Frame, hazards: Sequence[tuple[str, str, BaseGeometry]],
             highlight: str | None) -> str:
    rows: list[tuple[str, str, BaseGeometry]] = []
    for item in hazards:
        try:
            hazard_id, severity, geometry = item
        except (TypeError, ValueError):
            raise ValueError("hazards: need (hazard_id, severity, geometry) tuples, got "
                             f"{item!r:.80}") from None
        if geometry is None or not isinstance(geometry, BaseGeometry) or geometry.is_empty:
            continue
        rows.append((str(hazard_id), _severity(severity), _display_shape(geometry)))
    if not rows:
        return '<g class="hazards"></g>'
    polygons, owner = _to_pixel_polygons(frame, [g for _, _, g in rows])
    paths = _polygon_paths(polygons, owner, len(rows))
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    # Least severe first, so worse ones are drawn on top; the highlighted one above all.
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0] == highlight,
                                                    -rank[rows[i][1]], i))
    out = []
    for i in order:
        if not paths[i]:
            continue
        hazard_id, severity, _ = rows[i]
        extra = " highlight" if highlight is not None and hazard_id == highlight else ""
        out.append(f'<path class="hazard sev-{severity}{extra}" data-id="{_attr(hazard_id)}" '
                   f'{_NSS} d="{paths[i]}"/>')
    return '<g class="hazards">' + "".join(out) + "</g>"


def _scale_top(max_people: float) -> int:
    """Decades the cell colour scale spans: 1 up to (not including) ``10 ** top``."""
    if not math.isfinite(max_people) or max_people < 1:
        return 1
    return math.floor(math.log10(max_people)) + 1


def _hex(rgb: np.ndarray) -> list[str]:
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in np.rint(rgb).astype(int).tolist()]


_STOPS = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in CELL_COLOURS], dtype=float)


def cell_colours(people: Any, max_people: float) -> list[str]:
    """Colours for people counts: log scale from 1 to the top decade above ``max_people``."""
    p = np.maximum(np.asarray(people, dtype=float), 1.0)
    t = np.clip(np.log10(p) / _scale_top(max_people), 0.0, 1.0)
    pos = t * (len(_STOPS) - 1)
    lo = np.minimum(np.floor(pos).astype(int), len(_STOPS) - 2)
    frac = (pos - lo)[:, None]
    return _hex(_STOPS[lo] * (1.0 - frac) + _STOPS[lo + 1] * frac)


def legend_cells(max_people: float) -> list[tuple[str, str]]:
    """``(label, colour)`` per decade of the cell scale, low to high, matching :func:`render`."""
    top = _scale_top(max_people)
    labels = [f"{10 ** k:,}–{10 ** (k + 1) - 1:,}" for k in range(top - 1)]
    labels.append(f"{10 ** (top - 1):,}+")  # larger counts take the top colour
    mids = [10 ** (k + 0.5) for k in range(top)]
    return list(zip(labels, cell_colours(mids, max_people), strict=True))


@functools.lru_cache(maxsize=16)
def _lat_margin_deg(resolution: int) -> float:
    return 2.0 * h3.average_hexagon_edge_length(resolution, unit="km") / _KM_PER_DEG


def _cells(frame: _Frame, cells: pd.DataFrame, cell_max: float | None) -> str:
    ids = cells["h3_cell"].astype(str).tolist()
    people = pd.to_numeric(cells["people"], errors="coerce").to_numpy(dtype=float)
    people = np.where(np.isfinite(people), people, 0.0)
    top = float(cell_max) if cell_max is not None else (float(people.max()) if len(people)
                                                        else 1.0)
    is_cell = [h3.is_valid_cell(c) for c in ids]
    valid = [i for i, (ok, p) in enumerate(zip(is_cell, people.tolist(), strict=True))
             if ok and p >= 1]
    invalid = len(ids) - sum(is_cell)
    if invalid:
        logger.warning("svg map: %d cell ids are not H3 cells and were skipped", invalid)
    if not valid:
        return '<g class="cells"></g>'
    centres = np.array([h3.cell_to_latlng(ids[i]) for i in valid])
    res = np.array([h3.get_resolution(ids[i]) for i in valid])
    margin = np.array([_lat_margin_deg(int(r)) for r in res])
    west, south, east, north = frame.view
    lat, lon = centres[:, 0], _wrap(centres[:, 1], frame.lon0)
    lon_margin = margin / np.maximum(np.cos(np.radians(lat)), 0.05)
    near = ((lat + margin >= south) & (lat - margin <= north)
            & (lon + lon_margin >= west) & (lon - lon_margin <= east))
    chosen = [valid[i] for i in np.flatnonzero(near)]
    if not chosen:
        return '<g class="cells"></g>'
    rings = [h3.cell_to_boundary(ids[i]) for i in chosen]
    sizes = np.array([len(r) for r in rings])
    latlng = np.array([p for r in rings for p in r], dtype=float)
    px, py = frame.to_pixels(latlng[:, 1], latlng[:, 0])
    ring = np.repeat(np.arange(len(chosen)), sizes)
    xy = np.column_stack([px, py])
    # Keep cells whose hexagon reaches into the frame.
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    m = CLIP_MARGIN_PX
    x0, x1 = np.minimum.reduceat(px, starts), np.maximum.reduceat(px, starts)
    y0, y1 = np.minimum.reduceat(py, starts), np.maximum.reduceat(py, starts)
    inside = (np.isfinite(x0) & np.isfinite(x1) & np.isfinite(y0) & np.isfinite(y1)
              & (x1 >= -m) & (x0 <= frame.width + m) & (y1 >= -m) & (y0 <= frame.height + m))
    paths = _ring_paths(xy, ring, len(chosen))
    counts = people[chosen].astype(np.int64)
    colours = cell_colours(counts, top)
    # Coarser cells first, then by count: dense places end on top.
    order = sorted(np.flatnonzero(inside).tolist(), key=lambda k: (int(res[k]), int(counts[k])))
    out = [f'<path class="cell" fill="{colours[k]}" data-people="{int(counts[k])}" '
           f'd="{paths[k]}"/>' for k in order if paths[k]]
    return '<g class="cells">' + "".join(out) + "</g>"


def _missions(frame: _Frame, missions: pd.DataFrame) -> str:
    if len(missions) == 0:
        return '<g class="missions"></g>'
    lat = pd.to_numeric(missions["lat"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(missions["lon"], errors="coerce").to_numpy(dtype=float)
    affected = missions["affected"].fillna(False).astype(bool).to_numpy()
    ok = np.isfinite(lat) & np.isfinite(lon)
    px = np.full(len(lat), np.nan)
    py = np.full(len(lat), np.nan)
    if ok.any():
        px[ok], py[ok] = frame.to_pixels(lon[ok], lat[ok])
    r = AFFECTED_MISSION_RADIUS
    shown = (np.isfinite(px) & np.isfinite(py) & (px >= -r) & (px <= frame.width + r)
             & (py >= -r) & (py <= frame.height + r))
    out = []
    # Plain dots have a thin outline in viewBox units (it scales with the dot, so hundreds of
    # them need no per-element attribute); affected ones a fixed outline on screen.
    for hit, cls, radius, extra in ((False, "mission", MISSION_RADIUS, ""),
                                    (True, "mission affected", AFFECTED_MISSION_RADIUS,
                                     f" {_NSS}")):
        idx = np.flatnonzero(shown & (affected == hit))
        out.extend(f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="{radius:g}"{extra}/>'
                   for x, y in zip(px[idx].tolist(), py[idx].tolist(), strict=True))
    return '<g class="missions">' + "".join(out) + "</g>"


def _check_frame(argument: str, frame: Any, columns: tuple[str, ...]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{argument}: need a DataFrame with columns {', '.join(columns)}, "
                         f"got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{argument}: need columns {', '.join(columns)}; missing "
                         f"{', '.join(missing)}")


def render(panel: Panel, *, base: geopandas.GeoDataFrame,
           hazards: Sequence[tuple[str, str, BaseGeometry]], cells: pd.DataFrame,
           missions: pd.DataFrame, highlight: str | None = None,
           cell_max: float | None = CELL_SCALE_MAX) -> str:
    """One panel as a standalone SVG document (str).

    Layers, bottom to top: sea, land (``base``: code, geometry), hazards (least severe first,
    ``highlight`` last), people per H3 cell, missions (affected on top). Cell colours follow a
    log scale from 1 to the decade above ``cell_max`` (default :data:`CELL_SCALE_MAX`, the
    scale of ``legend_cells(CELL_SCALE_MAX)``; ``None``: the largest count in ``cells``).
    Cells with fewer than one person are not drawn.
    """
    if not isinstance(panel, Panel):
        raise ValueError(f"panel: need a Panel, got {type(panel).__name__}")
    _check_frame("cells", cells, ("h3_cell", "people"))
    _check_frame("missions", missions, ("lat", "lon", "affected"))
    _check_frame("base", base, ("code", "geometry"))
    frame = _frame(panel)
    w, h = panel.width, panel.height
    body = (_land(panel, base) + _hazards(frame, hazards, highlight)
            + _cells(frame, cells, cell_max) + _missions(frame, missions))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
            f'height="{h}" preserveAspectRatio="xMidYMid meet">'
            f"<style>{_STYLE}</style>"
            f'<rect class="sea" x="0" y="0" width="{w}" height="{h}"/>'
            f"{body}</svg>")


__all__ = [
    "AFFECTED_MISSION_COLOUR",
    "BACKGROUND",
    "BORDER_COLOUR",
    "CELL_COLOURS",
    "CELL_SCALE_MAX",
    "LAND_FILL",
    "MIN_CLOSEUP_KM",
    "MISSION_COLOUR",
    "PANELS",
    "SEVERITY_FILL",
    "SEVERITY_ORDER",
    "Panel",
    "bounds_of",
    "cell_colours",
    "closeup_panel",
    "legend_cells",
    "project",
    "projection_of",
    "render",
]
