"""USGS earthquakes: the summary GeoJSON feed, event details and ShakeMap intensity contours.

One :class:`~feeds.model.Hazard` per summary feature, id ``"usgs:<feature id>"``, category
``earthquake`` (``other`` for quarry blasts, explosions and the like, whose USGS ``type`` is not
``earthquake``). The feed's ``updated`` is ``sent``; the origin time is ``onset``/``effective``.

**Impact area.** When the event has a ShakeMap, :func:`fetch` reads the event detail and its
intensity contours (``download/cont_mmi.json`` in ShakeMap 4, ``download/cont_mi.json`` in
ShakeMap 3.5) and the area is where the ShakeMap shows at least :data:`MMI_THRESHOLD` (MMI V,
"moderate shaking": felt by nearly everyone, the level at which the USGS ShakeMap legend starts
to list potential damage); if the map never reaches MMI V, the area inside its highest contour.
Contours are open where they leave the map; they are closed against the contours' bounding box,
which is the map's edge wherever an open contour ends (:func:`mmi_area`). ``geometry_method`` is
``"contours"``.

Without a ShakeMap, or when the detail or the contours cannot be fetched, the area is a
geodesic circle around the epicentre (``geometry_method`` ``"radius"``) whose radius is the
distance at which the intensity attenuation relation of Bakun & Wentworth (1997) predicts MMI V:
their intensity magnitude ``M_i = (MMI + 3.29 + 0.0206 * D) / 1.68`` (D epicentral distance in
km; fitted to 22 California earthquakes) solved for D (:func:`shaking_radius_km`). That gives
about 87 km at M6, 168 km at M7 and 250 km at M8, never less than :data:`MIN_RADIUS_KM` (the
epicentral area; the relation predicts less than MMI V even at the epicentre below about M5).
The feed's magnitude (ml, mb, mww, ...) stands in for moment magnitude. The relation is
Californian and linear in distance: it under-covers great subduction earthquakes and over-covers
deep ones (depth is not used); a ShakeMap, when there is one, replaces it.

Bakun, W. H., and C. M. Wentworth (1997). Estimating earthquake location and magnitude from
seismic intensity data. Bulletin of the Seismological Society of America 87(6), 1502-1521.

**Severity.** The PAGER alert wins when there is one: red -> extreme, orange -> severe,
yellow -> moderate, green -> minor. Without PAGER, by magnitude: >= 8 extreme, >= 7 severe,
>= 6 moderate, else minor; no magnitude -> unknown. ``source_severity`` reads like
``"PAGER orange, M 6.3 mww, tsunami flag"``; alert level and tsunami flag are also properties.
Certainty is ``observed``, urgency ``immediate`` (the shaking has happened; the response is now).

**Display window.** USGS gives no expiry. A significant event (USGS significance ``sig`` >= 600,
the criterion of the USGS "significant" feeds, or a PAGER alert of yellow or above) stays active
:data:`SIGNIFICANT_WINDOW` (7 days) after its origin time, to cover the response and the larger
aftershocks; any other event :data:`ORDINARY_WINDOW` (24 hours). That is ``expires``.

USGS ``status`` ``deleted`` becomes ``message_type`` ``cancel``. Longitudes are kept as USGS
gives them; contours of a map crossing the antimeridian may run past 180, which
:mod:`layers.shapes` normalises.

:func:`fetch` follows detail links for events with ``shakemap`` in ``types`` and a PAGER alert or
magnitude >= :data:`DETAIL_MIN_MAGNITUDE`, at most :data:`MAX_DETAIL_FETCHES` per poll, only to
the feed's own host or a ``usgs.gov`` host. Detail and contours are cached under the event id
and its ``updated`` time, so an unchanged event is not fetched again. Any failure there falls
back to the radius rule; only a failure of the summary feed itself fails the poll.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from feeds import FeedError, FeedFormatError
from feeds.base import FetchContext
from feeds.model import Hazard, ParseResult, check_now

logger = logging.getLogger(__name__)

SOURCE = "usgs"

MMI_THRESHOLD = 5.0            # MMI V, "moderate shaking"
MIN_RADIUS_KM = 10.0           # floor of the radius rule: the epicentral area
SIGNIFICANCE_THRESHOLD = 600   # USGS "significant" feeds list events with sig >= 600
SIGNIFICANT_WINDOW = timedelta(days=7)
ORDINARY_WINDOW = timedelta(hours=24)
DETAIL_MIN_MAGNITUDE = 4.5     # below this, shaking rarely reaches MMI V
MAX_DETAIL_FETCHES = 25        # per poll; the rest use the radius rule until the next poll
DETAIL_CACHE_S = 14 * 24 * 3600.0  # cache keys carry the event's updated time: long is safe

# Bakun & Wentworth (1997): M_i = (MMI + 3.29 + 0.0206 * D) / 1.68
_BW_SLOPE = 1.68
_BW_OFFSET = 3.29
_BW_PER_KM = 0.0206

_PAGER_SEVERITY = {"red": "extreme", "orange": "severe", "yellow": "moderate", "green": "minor"}
_CONTOUR_KEYS = ("download/cont_mmi.json", "download/cont_mi.json")
_TRUSTED_DOMAIN = "usgs.gov"
_SNAP_TOLERANCE_DEG = 1e-6


class _ItemError(ValueError):
    """One feature cannot be used; the message is the reason."""


@dataclasses.dataclass(frozen=True)
class ShakeArea:
    """The area a ShakeMap shows at or above ``mmi`` (a Polygon or MultiPolygon)."""

    geometry: BaseGeometry
    mmi: float


# --------------------------------------------------------------------------- rules


def shaking_radius_km(magnitude: float, *, mmi: float = MMI_THRESHOLD) -> float:
    """Epicentral distance (km) within which Bakun & Wentworth (1997) predict ``mmi`` or more.

    Never less than :data:`MIN_RADIUS_KM`; non-decreasing in ``magnitude``.
    """
    if isinstance(magnitude, bool) or not isinstance(magnitude, (int, float)) \
            or not math.isfinite(magnitude) or not -3 <= magnitude <= 10.5:
        raise ValueError(f"magnitude must be a finite number in [-3, 10.5], got {magnitude!r}")
    if not (isinstance(mmi, (int, float)) and 1 <= mmi <= 12):
        raise ValueError(f"mmi must be between 1 and 12, got {mmi!r}")
    distance = (_BW_SLOPE * magnitude - _BW_OFFSET - mmi) / _BW_PER_KM
    return max(MIN_RADIUS_KM, distance)


def severity_for(alert: str | None, magnitude: float | None) -> str:
    """CAP severity: from the PAGER alert level if any, else from the magnitude."""
    if alert in _PAGER_SEVERITY:
        return _PAGER_SEVERITY[alert]
    if magnitude is None:
        return "unknown"
    if magnitude >= 8.0:
        return "extreme"
    if magnitude >= 7.0:
        return "severe"
    if magnitude >= 6.0:
        return "moderate"
    return "minor"


def display_window(sig: int | None, alert: str | None) -> timedelta:
    """How long after its origin an event stays active (see the module docstring)."""
    significant = (sig is not None and sig >= SIGNIFICANCE_THRESHOLD) or alert in (
        "yellow", "orange", "red")
    return SIGNIFICANT_WINDOW if significant else ORDINARY_WINDOW


# --------------------------------------------------------------------------- parsing


def _load_json(payload: bytes | str | dict[str, Any], what: str) -> Any:
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, (bytes, bytearray)):
        try:
            text = bytes(payload).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FeedFormatError(f"{what}: body is not UTF-8: {exc}") from exc
    elif isinstance(payload, str):
        text = payload.lstrip("\ufeff")
    else:
        raise TypeError(f"payload must be bytes, str or dict, got {type(payload).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FeedFormatError(f"{what}: not JSON ({len(text)} characters): {exc}") from exc
    except RecursionError as exc:
        raise FeedFormatError(f"{what}: JSON nested too deeply") from exc


def _number(value: Any, name: str, *, required: bool = False) -> float | None:
    if value is None:
        if required:
            raise _ItemError(f"no {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _ItemError(f"{name} is not a finite number: {value!r}")
    return float(value)


def _lenient_number(value: Any) -> float | None:
    """A finite number, or ``None`` for anything else (fields that only inform)."""
    try:
        return _number(value, "value")
    except _ItemError:
        return None


def _epoch_ms(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _ItemError(f"{name} is not epoch milliseconds: {value!r}")
    try:
        return datetime.fromtimestamp(value / 1000.0, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise _ItemError(f"{name} out of range: {value!r}") from exc


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _epicentre(feature: Mapping[str, Any]) -> tuple[float, float, float | None]:
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        raise _ItemError("geometry is not a Point")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        raise _ItemError("Point has no [lon, lat]")
    lon = _number(coords[0], "longitude", required=True)
    lat = _number(coords[1], "latitude", required=True)
    depth = _number(coords[2], "depth") if len(coords) > 2 else None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):  # type: ignore[operator]
        raise _ItemError(f"epicentre out of range: {lon}, {lat}")
    return lon, lat, depth  # type: ignore[return-value]


def _feature_hazard(feature: Any, area: ShakeArea | None) -> Hazard:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _ItemError("not a GeoJSON Feature")
    native_id = feature.get("id")
    if not isinstance(native_id, str) or not native_id.strip():
        raise _ItemError("no feature id")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise _ItemError("no properties")
    lon, lat, depth = _epicentre(feature)
    origin = _epoch_ms(props.get("time"), "time")
    updated = _epoch_ms(props.get("updated"), "updated") if props.get("updated") is not None \
        else origin
    mag = _number(props.get("mag"), "mag")
    sig = _lenient_number(props.get("sig"))
    alert = _text(props.get("alert")).lower() or None
    if alert not in _PAGER_SEVERITY:
        alert = None
    sig_int = None if sig is None else int(sig)
    try:
        expires = origin + display_window(sig_int, alert)
    except OverflowError as exc:  # an origin in the last days of year 9999
        raise _ItemError(f"time too late to expire: {props.get('time')!r}") from exc
    tsunami = props.get("tsunami") in (1, True, "1")
    event_type = _text(props.get("type")).lower() or "earthquake"
    mag_type = _text(props.get("magType"))
    review = _text(props.get("status")).lower()

    parts = [f"PAGER {alert}"] if alert else []
    if mag is not None:
        parts.append(f"M {mag:g} {mag_type}".rstrip())
    if tsunami:
        parts.append("tsunami flag")
    title = _text(props.get("title"))
    place = _text(props.get("place"))
    event = title or (f"M {mag:g} - {place}" if mag is not None else place) or native_id
    properties: dict[str, Any] = {
        "magnitude": mag, "magnitude_type": mag_type, "depth_km": depth,
        "epicentre_lon": lon, "epicentre_lat": lat, "pager_alert": alert,
        "tsunami_flag": tsunami, "significance": sig_int,
        "felt": _lenient_number(props.get("felt")), "cdi": _lenient_number(props.get("cdi")),
        "mmi": _lenient_number(props.get("mmi")), "review_status": review,
        "event_type": event_type, "net": _text(props.get("net")),
        "has_shakemap": "shakemap" in _text(props.get("types")).split(","),
    }
    geo: dict[str, Any] = {}
    if area is not None:
        geo = {"geometry": area.geometry, "geometry_method": "contours"}
        properties["mmi_threshold"] = area.mmi
    elif mag is not None:
        try:
            radius = shaking_radius_km(mag)
        except ValueError as exc:
            raise _ItemError(str(exc)) from exc
        geo = {"center_lon": lon, "center_lat": lat, "radius_km": radius,
               "geometry_method": "radius"}
        properties["mmi_threshold"] = MMI_THRESHOLD
        properties["radius_rule"] = "Bakun & Wentworth (1997), MMI V"
    description = ", ".join(
        p for p in (f"M {mag:g} {mag_type}".strip() if mag is not None else "",
                    f"depth {depth:g} km" if depth is not None else "",
                    f"PAGER {alert}" if alert else "", "tsunami flag" if tsunami else "",
                    review) if p)
    try:
        return Hazard(
            hazard_id=f"{SOURCE}:{native_id.strip()}", source=SOURCE, event=event,
            category="earthquake" if event_type == "earthquake" else "other",
            severity=severity_for(alert, mag), urgency="immediate", certainty="observed",
            source_severity=", ".join(parts),
            message_type="cancel" if review == "deleted" else "alert",
            sent=updated, effective=origin, onset=origin,
            expires=expires,
            headline=title, description=description, area_desc=place,
            url=_text(props.get("url")), properties=properties, **geo,
        )
    except ValueError as exc:
        raise _ItemError(str(exc)) from exc


def _collect(features: list[Any], areas: Mapping[str, ShakeArea]) -> ParseResult:
    hazards: list[Hazard] = []
    problems: list[str] = []
    unplaced = 0
    for index, feature in enumerate(features):
        native = feature.get("id") if isinstance(feature, dict) else None
        try:
            hazard = _feature_hazard(feature, areas.get(native) if isinstance(native, str)
                                     else None)
        except _ItemError as exc:
            problems.append(f"feature {index} ({native or 'no id'}): {exc}")
            continue
        hazards.append(hazard)
        unplaced += not hazard.is_placed
    for line in problems:
        logger.warning("usgs: skipped %s", line)
    return ParseResult(tuple(hazards), skipped=len(problems), unplaced=unplaced,
                       problems=tuple(problems))


def parse_summary(payload: bytes | str | dict[str, Any], *, now: datetime,
                  areas: Mapping[str, ShakeArea] | None = None) -> ParseResult:
    """Hazards from a USGS summary FeatureCollection.

    ``areas`` maps feature ids to ShakeMap areas (from :func:`shakemap_area`); every other
    event gets the radius rule. Raises :class:`FeedFormatError` if the payload is not a
    GeoJSON FeatureCollection.
    """
    check_now(now)
    data = _load_json(payload, "USGS summary")
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise FeedFormatError("USGS summary: not a GeoJSON FeatureCollection")
    return _collect(data["features"], areas or {})


def parse_detail(payload: bytes | str | dict[str, Any], *, now: datetime,
                 area: ShakeArea | None = None) -> ParseResult:
    """The hazard of one USGS event detail document (a single GeoJSON Feature)."""
    check_now(now)
    data = _load_json(payload, "USGS event detail")
    if not isinstance(data, dict) or data.get("type") != "Feature":
        raise FeedFormatError("USGS event detail: not a GeoJSON Feature")
    native = data.get("id")
    return _collect([data], {native: area} if area is not None and isinstance(native, str)
                    else {})


def contours_url(payload: bytes | str | dict[str, Any]) -> str | None:
    """URL of the preferred ShakeMap's MMI contours in an event detail document, if any."""
    data = _load_json(payload, "USGS event detail")
    if not isinstance(data, dict) or data.get("type") != "Feature":
        raise FeedFormatError("USGS event detail: not a GeoJSON Feature")
    properties = data.get("properties")
    products = properties.get("products") if isinstance(properties, dict) else None
    shakemaps = products.get("shakemap") if isinstance(products, dict) else None
    if not isinstance(shakemaps, list) or not shakemaps or not isinstance(shakemaps[0], dict):
        return None
    contents = shakemaps[0].get("contents")
    if not isinstance(contents, dict):
        return None
    for key in _CONTOUR_KEYS:
        entry = contents.get(key)
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url
    return None


# --------------------------------------------------------------------------- ShakeMap contours


def parse_contours(payload: bytes | str | dict[str, Any]) -> dict[float, list[shapely.LineString]]:
    """MMI contour lines by level from ``cont_mmi.json`` / ``cont_mi.json``.

    Features that are not MMI line contours are ignored (logged); a payload with none raises
    :class:`FeedFormatError`.
    """
    data = _load_json(payload, "ShakeMap contours")
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise FeedFormatError("ShakeMap contours: not a GeoJSON FeatureCollection")
    levels: dict[float, list[shapely.LineString]] = collections.defaultdict(list)
    ignored = 0
    for feature in data["features"]:
        try:
            value, lines = _contour_lines(feature)
        except _ItemError:
            ignored += 1
            continue
        levels[value].extend(lines)
    if ignored:
        logger.info("ShakeMap contours: ignored %d feature(s) that are not MMI lines", ignored)
    if not levels:
        raise FeedFormatError("ShakeMap contours: no MMI contour lines")
    return dict(levels)


def _contour_lines(feature: Any) -> tuple[float, list[shapely.LineString]]:
    if not isinstance(feature, dict):
        raise _ItemError("not a feature")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise _ItemError("properties is not an object")
    units = props.get("units")
    if units is not None and str(units).lower() not in ("mmi", "intensity"):
        raise _ItemError(f"units {units!r}")
    value = _number(props.get("value"), "value", required=True)
    geometry = feature.get("geometry") or {}
    if not isinstance(geometry, dict):
        raise _ItemError("geometry is not an object")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "LineString":
        coords = [coords]
    elif kind != "MultiLineString":
        raise _ItemError(f"geometry {kind!r}")
    lines = []
    for part in coords if isinstance(coords, list) else []:
        try:
            array = np.asarray(part, dtype=float)
        except (TypeError, ValueError):
            continue
        if array.ndim != 2 or array.shape[0] < 2 or array.shape[1] < 2 \
                or not np.isfinite(array[:, :2]).all():
            continue
        # a map crossing the antimeridian may run past 180, never a turn beyond it
        if np.abs(array[:, 0]).max() > 360 or np.abs(array[:, 1]).max() > 90:
            continue
        line = shapely.LineString(array[:, :2])
        if line.length > 0:
            lines.append(line)
    if not lines:
        raise _ItemError("no usable lines")
    return value, lines  # type: ignore[return-value]


def _snap_to_box(line: shapely.LineString, box: shapely.Polygon) -> shapely.LineString:
    """Move open ends lying within a hair of the box's edge exactly onto it."""
    coords = np.asarray(line.coords)
    if np.array_equal(coords[0], coords[-1]):
        return line
    edge = box.exterior
    for i in (0, -1):
        point = shapely.Point(coords[i])
        if 0 < edge.distance(point) <= _SNAP_TOLERANCE_DEG:
            coords[i] = np.asarray(edge.interpolate(edge.project(point)).coords[0])
    return shapely.LineString(coords)


def mmi_area(levels: Mapping[float, list[shapely.LineString]], level: float, *,
             epicentre: tuple[float, float] | None = None) -> BaseGeometry | None:
    """The area at or above ``level``, from the contour lines of every level.

    The ``level`` lines and the box around all contours are polygonised into faces. A face is
    above ``level`` if it holds lines of a higher level, below if it holds lines of a lower one;
    crossing a ``level`` line flips the side, which settles the faces between. The epicentre
    decides only when nothing else does (a single-level map). ``None`` if no face is above.
    """
    if level not in levels:
        raise ValueError(f"level must be one of the contour levels {sorted(levels)}, got {level}")
    all_lines = [line for lines in levels.values() for line in lines]
    box = shapely.box(*shapely.total_bounds(all_lines))
    if box.area == 0:
        return None
    lines = [_snap_to_box(line, box) for line in levels[level]]
    noded = shapely.union_all([*lines, box.exterior])
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    faces = faces[shapely.area(faces) > 0] if faces.size else faces
    if faces.size == 0:
        return None
    tree = shapely.STRtree(faces)

    votes = np.zeros(len(faces))
    for other, other_lines in levels.items():
        if other == level:
            continue
        points = [line.interpolate(0.5, normalized=True) for line in other_lines]
        _, face_idx = tree.query(points, predicate="within")
        np.add.at(votes, face_idx, 1.0 if other > level else -1.0)
    state: dict[int, bool] = {int(i): bool(votes[i] > 0) for i in np.flatnonzero(votes)}

    left, right = tree.query(faces, predicate="touches")
    keep = left < right
    left, right = left[keep], right[keep]
    shares_edge = shapely.relate_pattern(faces[left], faces[right], "F***1****")
    neighbours: dict[int, list[int]] = collections.defaultdict(list)
    for a, b in zip(left[shares_edge].tolist(), right[shares_edge].tolist(), strict=True):
        neighbours[a].append(b)
        neighbours[b].append(a)

    def spread(start: list[int]) -> None:
        queue = collections.deque(start)
        while queue:
            face = queue.popleft()
            for other_face in neighbours[face]:
                if other_face not in state:
                    state[other_face] = not state[face]
                    queue.append(other_face)

    spread(list(state))
    if epicentre is not None:
        hit = tree.query(shapely.Point(epicentre), predicate="within")
        if hit.size and int(hit[0]) not in state:
            state[int(hit[0])] = True
            spread([int(hit[0])])
    above = [faces[i] for i, is_above in state.items() if is_above]
    if not above:
        return None
    area = shapely.union_all(above)
    if not area.is_valid:
        area = shapely.make_valid(area)
    polygons = [p for p in shapely.get_parts(area) if p.geom_type == "Polygon" and p.area > 0]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def shakemap_area(payload: bytes | str | dict[str, Any], *,
                  epicentre: tuple[float, float] | None = None,
                  threshold: float = MMI_THRESHOLD) -> ShakeArea | None:
    """The area at or above ``threshold`` MMI from a contour document.

    Uses the lowest contour level at or above ``threshold``; if the map never reaches it, its
    highest level. ``None`` if no area can be formed. Raises :class:`FeedFormatError` if the
    payload has no MMI contours.
    """
    levels = parse_contours(payload)
    reaching = sorted(v for v in levels if v >= threshold - 1e-9)
    level = reaching[0] if reaching else max(levels)
    geometry = mmi_area(levels, level, epicentre=epicentre)
    return None if geometry is None else ShakeArea(geometry, level)


# --------------------------------------------------------------------------- fetch


def _trusted(url: str, feed_url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    return host == (urlsplit(feed_url).hostname or "").lower() or host == _TRUSTED_DOMAIN \
        or host.endswith("." + _TRUSTED_DOMAIN)


def _wants_shakemap(feature: Any) -> bool:
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        return False
    props = feature["properties"]
    if "shakemap" not in _text(props.get("types")).split(","):
        return False
    mag = props.get("mag")
    big = isinstance(mag, (int, float)) and not isinstance(mag, bool) \
        and mag >= DETAIL_MIN_MAGNITUDE
    return big or _text(props.get("alert")).lower() in _PAGER_SEVERITY


def _cached_get(ctx: FetchContext, key: str, url: str) -> bytes:
    body = ctx.cache.get(key, max_age_s=DETAIL_CACHE_S, now=ctx.now)
    if body is None:
        body = ctx.client.get(url, expect="json").body
        ctx.cache.put(key, body, now=ctx.now)
    return body


def _area_for(ctx: FetchContext, feature: dict[str, Any]) -> ShakeArea | None:
    event_id = feature.get("id")
    props = feature["properties"]
    detail_url = props.get("detail")
    if not isinstance(event_id, str) or not isinstance(detail_url, str):
        return None
    feed_url = ctx.settings.usgs_url
    if not _trusted(detail_url, feed_url):
        logger.info("usgs: %s: detail link to an untrusted host, radius rule used", event_id)
        return None
    stamp = props.get("updated")
    detail = _cached_get(ctx, f"usgs:detail:{event_id}:{stamp}", detail_url)
    url = contours_url(detail)
    if url is None:
        return None
    if not _trusted(url, feed_url):
        logger.info("usgs: %s: contour link to an untrusted host, radius rule used", event_id)
        return None
    contours = _cached_get(ctx, f"usgs:cont_mmi:{event_id}:{stamp}", url)
    lon, lat, _ = _epicentre(feature)
    return shakemap_area(contours, epicentre=(lon, lat))


def fetch(ctx: FetchContext) -> ParseResult:
    """Poll the summary feed; add ShakeMap areas for the events that have them."""
    fetched = ctx.client.get(ctx.settings.usgs_url, expect="json")
    if fetched.status == "not_modified":  # validators offered by the poller, which keeps its data
        raise FeedError("USGS summary not modified: nothing to parse")
    data = _load_json(fetched.body, "USGS summary")
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        raise FeedFormatError("USGS summary: not a GeoJSON FeatureCollection")
    wanted = [f for f in data["features"] if _wants_shakemap(f)]
    if len(wanted) > MAX_DETAIL_FETCHES:
        logger.info("usgs: %d events with ShakeMaps; contours for the first %d this poll",
                    len(wanted), MAX_DETAIL_FETCHES)
    areas: dict[str, ShakeArea] = {}
    for feature in wanted[:MAX_DETAIL_FETCHES]:
        try:
            area = _area_for(ctx, feature)
        except (FeedError, _ItemError, ValueError, shapely.errors.GEOSException) as exc:
            logger.warning("usgs: %s: ShakeMap unavailable (%s: %s); radius rule used",
                           feature.get("id"), type(exc).__name__, exc)
            continue
        if area is not None:
            areas[feature["id"]] = area
    return parse_summary(data, now=ctx.now, areas=areas)
