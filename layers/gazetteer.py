"""Offline geocoding of roster rows to ZIP or city centroids, from the ``zipcodes`` package.

The ``zipcodes`` package (MIT) holds one point per ZIP code. Its known defects are corrected
once, when the table is first used, and only counts are logged:

- 872 ZIPs sit at 0,0 (placeholders, mostly military): dropped;
- ZIPs of areas outside the bundled geography (military AA/AE/AP, FM, PW) are dropped;
- Marshall Islands ZIPs with a negative longitude have the sign flipped (all of the Marshall
  Islands lie east of 160 E), and Majuro 96960 (-171.16 in the package) is set to the Majuro
  post-office longitude 171.38 noted in the reference-data provenance;
- any other ZIP whose point is not within ``tolerance_km`` of its own state's area is fixed if
  flipping the longitude's sign puts it there, otherwise dropped.

:meth:`Gazetteer.geocode` tries the ZIP first (it must belong to the row's jurisdiction when
one is given), then the city (median of that city's ZIP points in that jurisdiction).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
import zipcodes

from layers.geography import (
    DEFAULT_TOLERANCE_KM,
    SPHERE_SLACK,
    Geography,
    as_lonlat_arrays,
    geodesic_km,
    great_circle_km,
    load_geography,
    search_boxes,
)

logger = logging.getLogger(__name__)

#: ZIP points known to be wrong in the package beyond a sign error: ZIP -> (lat, lon).
#: 96960 Majuro: the package has -171.1569; the post office (Delap-Uliga-Djarrit) is at 171.38.
POINT_CORRECTIONS: dict[str, tuple[float, float]] = {"96960": (7.0801, 171.38)}
_MARSHALL_ISLANDS = "MH"
_POINT_CHUNK = 4096
_MAX_PAIRS = 1_000_000  # candidate (point, ZIP) pairs per batch; larger batches are halved
_ZIP_FULL = r"^(\d{5})(?:-?\d{4})?$"       # 12345, 12345-6789, 123456789
_ZIP_NUMERIC = r"^(\d{3,5})(?:\.0+)?$"     # 2134 or 2134.0: a ZIP whose leading zeros were lost
_ABBREVIATIONS = ((r"\bste\b", "sainte"), (r"\bst\b", "saint"), (r"\bft\b", "fort"),
                  (r"\bmt\b", "mount"))


def normalise_city(values: pd.Series) -> pd.Series:
    """City names as match keys: accents, case, punctuation and St/Ste/Ft/Mt folded away."""
    text = values.astype("string")
    text = text.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
    text = text.astype("string").str.casefold().str.replace(r"['’`]", "", regex=True)
    text = text.str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()
    for pattern, replacement in _ABBREVIATIONS:
        text = text.str.replace(pattern, replacement, regex=True)
    return text.mask(text == "")


def normalise_zip(values: pd.Series) -> pd.Series:
    """5-digit ZIP strings; ZIP+4 is cut to 5 digits and 3-4 digit numbers are zero-padded."""
    text = values.astype("string").str.strip()
    full = text.str.extract(_ZIP_FULL, expand=False)
    short = text.str.extract(_ZIP_NUMERIC, expand=False).str.zfill(5)
    return full.fillna(short)


@dataclass(frozen=True)
class _Table:
    """The corrected ZIP points and city centroids."""

    zips: pd.DataFrame            # index zip (str); columns state, lat, lon, active
    cities: pd.DataFrame          # index "STATE|city key"; columns lat, lon
    nearest_codes: np.ndarray     # active ZIPs, sorted, for nearest_zip
    nearest_lon: np.ndarray
    nearest_lat: np.ndarray
    nearest_tree: shapely.STRtree


class Gazetteer:
    """ZIP and city centroids for offline geocoding; the table is built on first use."""

    def __init__(self, geography: Geography, tolerance_km: float = DEFAULT_TOLERANCE_KM) -> None:
        """Use ``geography`` to check every ZIP point against its state within ``tolerance_km``."""
        if not tolerance_km >= 0:
            raise ValueError(f"tolerance_km must be >= 0, got {tolerance_km!r}")
        self._geography = geography
        self._tolerance_km = float(tolerance_km)
        self._lock = threading.Lock()
        self._table_cache: _Table | None = None

    @property
    def _table(self) -> _Table:
        with self._lock:
            if self._table_cache is None:
                self._table_cache = self._build()
            return self._table_cache

    def _build(self) -> _Table:
        records = zipcodes.list_all()
        zips = pd.DataFrame(
            {
                "zip": [r["zip_code"] for r in records],
                "state": [r["state"] for r in records],
                "city": [r["city"] for r in records],
                "acceptable": [r["acceptable_cities"] for r in records],
                "active": [bool(r["active"]) for r in records],
                "lat": pd.to_numeric([r["lat"] for r in records], errors="coerce"),
                "lon": pd.to_numeric([r["long"] for r in records], errors="coerce"),
            }
        )
        counts: Counter[str] = Counter(total=len(zips))
        no_point = zips["lat"].isna() | zips["lon"].isna() | (zips["lat"].eq(0) & zips["lon"].eq(0))
        counts["dropped_no_point"] = int(no_point.sum())
        zips = zips[~no_point]
        known_area = zips["state"].isin(self._geography.state_codes)
        counts["dropped_area_not_bundled"] = int((~known_area).sum())
        zips = zips[known_area].copy()
        mh_west = zips["state"].eq(_MARSHALL_ISLANDS) & zips["lon"].lt(0)
        zips.loc[mh_west, "lon"] = -zips.loc[mh_west, "lon"]
        counts["fixed_mh_sign"] = int(mh_west.sum())
        for code, (lat, lon) in POINT_CORRECTIONS.items():
            hit = zips["zip"].eq(code)
            zips.loc[hit, ["lat", "lon"]] = (lat, lon)
            counts["fixed_known_point"] += int(hit.sum())

        geo = self._geography
        ok = geo.within_jurisdiction(zips["lon"], zips["lat"], zips["state"], self._tolerance_km)
        flipped = np.zeros(len(zips), dtype=bool)
        if (~ok).any():
            bad = zips[~ok]
            flipped[~ok] = geo.within_jurisdiction(-bad["lon"], bad["lat"], bad["state"],
                                                   self._tolerance_km)
        zips.loc[flipped, "lon"] = -zips.loc[flipped, "lon"]
        counts["fixed_sign"] = int(flipped.sum())
        outside = ~ok & ~flipped
        counts["dropped_outside_state"] = int(outside.sum())
        if outside.any():
            logger.info("gazetteer: ZIPs dropped as outside their state, per state: %s",
                        dict(Counter(zips.loc[outside, "state"])))
        zips = zips[~outside].sort_values("zip").set_index("zip")
        counts["kept"] = len(zips)
        logger.info("gazetteer: %s", dict(counts))

        names = pd.concat([zips["city"], zips["acceptable"].explode()]).dropna()
        keys = zips.loc[names.index, "state"] + "|" + normalise_city(names).to_numpy()
        points = pd.DataFrame({"key": keys.to_numpy(), "zip": names.index})
        points = points.dropna().drop_duplicates()
        points[["lat", "lon"]] = zips.loc[points["zip"], ["lat", "lon"]].to_numpy()
        cities = points.groupby("key")[["lat", "lon"]].median()

        active = zips[zips["active"]]
        return _Table(
            zips=zips[["state", "lat", "lon", "active"]],
            cities=cities,
            nearest_codes=active.index.to_numpy(dtype=object),
            nearest_lon=active["lon"].to_numpy(),
            nearest_lat=active["lat"].to_numpy(),
            nearest_tree=shapely.STRtree(shapely.points(active["lon"], active["lat"])),
        )

    def geocode(self, postal_code: Any, city: Any, jurisdiction: Any) -> pd.DataFrame:
        """Lat/lon and ``geocode_precision`` ("zip", "city" or "") for each roster row.

        Takes equal-length array-likes or Series (``None`` for an absent column); the result
        has the inputs' index when they are Series. A ZIP is accepted as "12345" or
        "12345-6789" and must belong to the row's jurisdiction if one is given; integers that
        lost their leading zeros (2134) are padded. Otherwise the city's centroid in the
        jurisdiction is used; otherwise lat/lon are NaN and the precision is "".
        """
        index, (zip_raw, city_raw, jur_raw) = _align(
            postal_code=postal_code, city=city, jurisdiction=jurisdiction
        )
        table = self._table
        zip5 = normalise_zip(zip_raw)
        jur = jur_raw.astype("string").str.strip().str.upper()
        jur = jur.mask(jur == "")
        zip_state = zip5.map(table.zips["state"])
        zip_ok = (zip_state.notna() & (jur.isna() | (jur == zip_state))).fillna(False)
        zip_ok = zip_ok.to_numpy(dtype=bool)
        key = jur + "|" + normalise_city(city_raw)
        city_lat = key.map(table.cities["lat"]).to_numpy(dtype=float, na_value=np.nan)
        city_lon = key.map(table.cities["lon"]).to_numpy(dtype=float, na_value=np.nan)
        city_ok = ~zip_ok & ~np.isnan(city_lat)
        lat = np.where(zip_ok, zip5.map(table.zips["lat"]).to_numpy(dtype=float, na_value=np.nan),
                       np.where(city_ok, city_lat, np.nan))
        lon = np.where(zip_ok, zip5.map(table.zips["lon"]).to_numpy(dtype=float, na_value=np.nan),
                       np.where(city_ok, city_lon, np.nan))
        precision = np.where(zip_ok, "zip", np.where(city_ok, "city", ""))
        return pd.DataFrame(
            {"lat": lat, "lon": lon, "geocode_precision": precision.astype(object)}, index=index
        )

    def nearest_zip(self, lon: Any, lat: Any) -> np.ndarray:
        """5-digit code of the nearest active ZIP point (geodesic, any state); "" for NaN.

        The planar nearest (in degrees, ``STRtree.query_nearest``) is a real ZIP point, so its
        geodesic distance bounds the search: every closer ZIP lies in the search boxes of that
        radius (antimeridian-aware). Candidates are ranked on the sphere, the near-best measured
        with ``pyproj.Geod``; ties go to the lower ZIP.
        """
        x, y = as_lonlat_arrays(lon, lat)
        table = self._table
        result = np.full(x.size, "", dtype=object)
        known = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
        batches = [known[s:s + _POINT_CHUNK] for s in range(0, known.size, _POINT_CHUNK)]
        while batches:
            rows = batches.pop()
            px, py = x[rows], y[rows]
            query, guess = table.nearest_tree.query_nearest(shapely.points(px, py),
                                                            all_matches=False)
            bound = np.empty(rows.size)
            bound[query] = geodesic_km(px[query], py[query], table.nearest_lon[guess],
                                       table.nearest_lat[guess])
            boxes, owner = search_boxes(px, py, bound * (1 + 1e-9) + 1e-6)
            box_i, cand = table.nearest_tree.query(boxes)
            if cand.size > _MAX_PAIRS and rows.size > 1:
                batches.extend([rows[rows.size // 2:], rows[:rows.size // 2]])
                continue
            point = owner[box_i]
            cx, cy = table.nearest_lon[cand], table.nearest_lat[cand]
            rough = great_circle_km(px[point], py[point], cx, cy)
            floor = np.full(rows.size, np.inf)
            np.minimum.at(floor, point, rough)
            keep = rough <= floor[point] * SPHERE_SLACK + 1e-6
            point, cand = point[keep], cand[keep]
            dist = geodesic_km(px[point], py[point], cx[keep], cy[keep])
            order = np.lexsort((cand, dist, point))
            first = np.ones(order.size, dtype=bool)
            first[1:] = point[order][1:] != point[order][:-1]
            best = order[first]
            result[rows[point[best]]] = table.nearest_codes[cand[best]]
        return result

def _align(**columns: Any) -> tuple[pd.Index, list[pd.Series]]:
    """Check equal lengths and a common index; ``None`` becomes an all-missing column."""
    index: pd.Index | None = None
    length: int | None = None
    for name, values in columns.items():
        if values is None:
            continue
        if isinstance(values, str | bytes):
            raise ValueError(f"{name} must be an array-like or Series, not a single string")
        if isinstance(values, pd.Series):
            if index is not None and not index.equals(values.index):
                raise ValueError(f"{name} has a different index from the other Series")
            index = values.index
            n = len(values)
        else:
            arr = np.asarray(values, dtype=object)
            if arr.ndim != 1:
                raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
            n = arr.size
        if length is not None and n != length:
            raise ValueError(f"{name} has length {n}, but the other arguments have {length}")
        length = n
    if length is None:
        raise ValueError("give at least one of postal_code, city, jurisdiction")
    if index is None:
        index = pd.RangeIndex(length)
    aligned = []
    for values in columns.values():
        if values is None:
            aligned.append(pd.Series(pd.NA, index=index, dtype="string"))
        elif isinstance(values, pd.Series):
            aligned.append(values.astype("string"))
        else:
            column = pd.Series(np.asarray(values, dtype=object), index=index)
            aligned.append(column.astype("string"))
    return index, aligned


@functools.lru_cache(maxsize=1)
def load_gazetteer() -> Gazetteer:
    """The gazetteer over the bundled geography (built once, the ZIP table on first use)."""
    return Gazetteer(load_geography())
