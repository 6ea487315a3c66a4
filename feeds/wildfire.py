"""Wildfire perimeters: NIFC/WFIGS Interagency Perimeters Current (ArcGIS FeatureServer).

The layer is queried with ``where=1=1&outFields=*&f=geojson&outSR=4326``, ordered by
``OBJECTID`` so that pages do not overlap, and paged with ``resultOffset`` /
``resultRecordCount``. ArcGIS says more pages exist with ``exceededTransferLimit: true``: at
the top level of Esri JSON, under the FeatureCollection's ``properties`` in GeoJSON; both are
read. The next offset advances by the number of features actually returned (a server may cap
a page below the requested count). An ArcGIS error arrives as HTTP 200 with an ``error``
object; its code decides the exception (429/5xx unavailable, other 4xx rejected).

All or nothing per poll: if any page fails, :func:`fetch` raises and the poller keeps the last
good snapshot. A partial set would make the fires on the missing pages vanish from the map as
if they were out. More than :data:`MAX_PAGES` pages is treated the same way (bounded work).

Hazards: one per incident, ``wildfire:<IrwinID>`` (braces stripped, lower case; else
``attr_UniqueFireIdentifier`` such as ``2024-CASHF-001234``), category ``fire``,
``geometry_method="polygon"``. Two perimeters of one incident: the newer (``poly_DateCurrent``)
is kept, the other skipped and counted. A feature without geometry is kept unplaced.

Severity (CAP) by size, then containment:

- wildfires (``WF``) and complexes (``CX``): >= 100,000 acres ``extreme``; >= 5,000 acres
  (NWCG size class G) ``severe``; >= 100 acres (classes D-F) ``moderate``; smaller ``minor``;
  size unknown ``unknown``. At >= 90 % contained one step lower (not below ``minor``); at
  100 % ``minor`` with urgency ``past``.
- prescribed fires (``RX``) are kept, always ``minor``: they are planned and managed, but they
  still mean smoke and closures near a residence.

Size is ``poly_GISAcres`` (the mapped perimeter), else ``attr_IncidentSize``. Times are epoch
milliseconds: discovery is ``onset``, the incident record's last change ``sent``, the perimeter
date ``effective``, ``attr_FireOutDateTime`` (when set) ``ends``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from feeds import FeedError, FeedFormatError, FeedRejected, FeedUnavailable
from feeds.base import FetchContext
from feeds.model import Hazard, ParseResult, check_now
from layers.shapes import repair, split_at_antimeridian, unwrap_longitudes

logger = logging.getLogger(__name__)

SOURCE = "wildfire"

#: Features asked for per page (the service's own cap may be lower; offsets follow the count).
PAGE_SIZE = 500
#: Pages per poll at most; more is an error (the poller keeps the last good snapshot).
MAX_PAGES = 40

#: The fixed part of every query.
QUERY: Mapping[str, str] = {
    "where": "1=1",
    "outFields": "*",
    "f": "geojson",
    "outSR": "4326",
    "returnGeometry": "true",
    "orderByFields": "OBJECTID ASC",
}

EXTREME_ACRES = 100_000.0
SEVERE_ACRES = 5_000.0
MODERATE_ACRES = 100.0
MOSTLY_CONTAINED_PERCENT = 90.0

_KINDS: Mapping[str, str] = {"WF": "Wildfire", "CX": "Wildfire complex",
                             "RX": "Prescribed fire"}
_STEPS = ("extreme", "severe", "moderate", "minor")
_BRACES = re.compile(r"^\{?([0-9A-Fa-f-]{36})\}?$")
# Epoch milliseconds accepted as times: 1900-01-01 to 2200-01-01.
_MS_RANGE = (-2_208_988_800_000, 7_258_118_400_000)


# ------------------------------------------------------------------------------- paging


def page_params(offset: int, page_size: int = PAGE_SIZE) -> dict[str, str]:
    """Query parameters of the page starting at ``offset``."""
    if not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be an integer >= 0, got {offset!r}")
    if not isinstance(page_size, int) or not 1 <= page_size <= 10_000:
        raise ValueError(f"page_size must be an integer from 1 to 10000, got {page_size!r}")
    return {**QUERY, "resultOffset": str(offset), "resultRecordCount": str(page_size)}


def exceeded_transfer_limit(payload: Any) -> bool:
    """Whether ArcGIS says more features follow this page (Esri JSON or GeoJSON form)."""
    if not isinstance(payload, Mapping):
        return False
    if payload.get("exceededTransferLimit") is True:
        return True
    properties = payload.get("properties")
    return isinstance(properties, Mapping) and properties.get("exceededTransferLimit") is True


def raise_for_arcgis_error(payload: Any) -> None:
    """Raise the feed error matching an ArcGIS ``{"error": {"code": ...}}`` body, if any."""
    if not isinstance(payload, Mapping) or "error" not in payload:
        return
    error = payload["error"]
    code = error.get("code") if isinstance(error, Mapping) else None
    message = error.get("message", "") if isinstance(error, Mapping) else str(error)
    text = f"ArcGIS error {code}: {message}"
    if isinstance(code, int) and (code == 429 or 500 <= code <= 599):
        raise FeedUnavailable(text)
    if isinstance(code, int) and 400 <= code <= 499:
        raise FeedRejected(text)
    raise FeedFormatError(text)


def _features(payload: Any) -> list[Any]:
    """The features of one page; :class:`FeedFormatError` when it is no FeatureCollection."""
    if not isinstance(payload, Mapping):
        raise FeedFormatError(
            f"perimeters must be a GeoJSON object, got {type(payload).__name__}")
    if "error" in payload:
        raise FeedFormatError(f"perimeters payload is an ArcGIS error: {payload['error']!r}")
    if payload.get("type") != "FeatureCollection":
        raise FeedFormatError(
            f"perimeters must be a FeatureCollection, got type {payload.get('type')!r}")
    features = payload.get("features")
    if not isinstance(features, list):
        raise FeedFormatError("perimeters FeatureCollection has no features list")
    return features


# ------------------------------------------------------------------------------ parsing


def _epoch_ms(attrs: Mapping[str, Any], name: str) -> datetime | None:
    value = attrs.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not _MS_RANGE[0] <= value <= _MS_RANGE[1]:
        raise ValueError(f"{name} must be epoch milliseconds, got {value!r}")
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=value)


def _number(attrs: Mapping[str, Any], name: str, low: float = 0.0,
            high: float = math.inf) -> float | None:
    value = attrs.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _text(attrs: Mapping[str, Any], name: str) -> str:
    value = attrs.get(name)
    return value.strip() if isinstance(value, str) else ""


def incident_id(attrs: Mapping[str, Any]) -> str:
    """The stable native id: IRWIN id (braces stripped, lower case), else the unique fire id."""
    for name in ("attr_IrwinID", "poly_IRWINID"):
        match = _BRACES.match(_text(attrs, name))
        if match:
            return match.group(1).lower()
    unique = _text(attrs, "attr_UniqueFireIdentifier")
    if unique:
        return unique.upper()
    raise ValueError("no attr_IrwinID or attr_UniqueFireIdentifier")


def fire_severity(kind: str, acres: float | None, percent_contained: float | None) -> str:
    """CAP severity from incident type, size (acres) and containment (%); see module doc."""
    if kind == "RX":
        return "minor"
    if percent_contained is not None and percent_contained >= 100.0:
        return "minor"
    if acres is None:
        return "unknown"
    if acres >= EXTREME_ACRES:
        level = 0
    elif acres >= SEVERE_ACRES:
        level = 1
    elif acres >= MODERATE_ACRES:
        level = 2
    else:
        level = 3
    if percent_contained is not None and percent_contained >= MOSTLY_CONTAINED_PERCENT:
        level = min(level + 1, 3)
    return _STEPS[level]


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """Valid Polygon/MultiPolygon within [-180, 180]; None when nothing areal remains.

    Repaired before it is split at the antimeridian: GEOS cannot cut an invalid ring (one
    vertex with the wrong sign of longitude makes a ring jump across it).
    """
    minx, _, maxx, _ = geom.bounds
    if maxx - minx > 180.0:
        geom = unwrap_longitudes(geom)
    geom, _ = repair(geom)
    geom = split_at_antimeridian(geom)
    geom, _ = repair(geom)
    polygons = [p for p in shapely.get_parts(shapely.get_parts(geom))
                if p.geom_type == "Polygon" and not p.is_empty]
    if not polygons:
        return None
    if len(polygons) == 1:
        return polygons[0]
    multi = shapely.MultiPolygon(polygons)
    return multi if multi.is_valid else shapely.union_all(polygons)


def _geometry(value: Any) -> BaseGeometry | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("type") not in ("Polygon", "MultiPolygon"):
        kind = value.get("type") if isinstance(value, Mapping) else type(value).__name__
        raise ValueError(f"geometry must be a Polygon or MultiPolygon, got {kind!r}")
    try:
        with np.errstate(invalid="ignore"):  # NaN vertices: refused below
            geom = shapely.geometry.shape(value)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError,
            shapely.errors.ShapelyError) as exc:
        raise ValueError(f"geometry does not parse: {exc}") from None
    if geom.is_empty:
        return None
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all() or np.abs(coords[:, 0]).max() > 360.0 \
            or np.abs(coords[:, 1]).max() > 90.0:  # past 180 is normalised, not past 360
        raise ValueError("geometry has coordinates out of range")
    area = _polygonal(geom)
    if area is None:
        raise ValueError("geometry has no area")
    return area


def _hazard(feature: Any) -> Hazard:
    """One perimeter feature as a Hazard (``ValueError`` says what is wrong)."""
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise ValueError("not a GeoJSON Feature")
    attrs = feature.get("properties")
    if not isinstance(attrs, Mapping):
        raise ValueError("properties must be an object")
    native = incident_id(attrs)
    kind = _text(attrs, "attr_IncidentTypeCategory").upper()
    if kind not in _KINDS:
        raise ValueError(f"attr_IncidentTypeCategory must be one of {', '.join(_KINDS)}, "
                         f"got {kind!r}")
    acres = _number(attrs, "poly_GISAcres")
    if acres is None:
        acres = _number(attrs, "attr_IncidentSize")
    contained = _number(attrs, "attr_PercentContained", 0.0, 100.0)
    discovered = _epoch_ms(attrs, "attr_FireDiscoveryDateTime")
    modified = _epoch_ms(attrs, "attr_ModifiedOnDateTime_dt")
    perimeter_date = _epoch_ms(attrs, "poly_DateCurrent")
    if perimeter_date is None:
        perimeter_date = _epoch_ms(attrs, "poly_PolygonDateTime")
    out = _epoch_ms(attrs, "attr_FireOutDateTime")
    geometry = _geometry(feature.get("geometry"))
    name = (_text(attrs, "poly_IncidentName") or _text(attrs, "attr_IncidentName")
            or "Unnamed")
    state = _text(attrs, "attr_POOState").upper().removeprefix("US-")
    event = _KINDS[kind]
    size = f"{acres:,.0f} acres" if acres is not None else "size unknown"
    containment = f", {contained:.0f}% contained" if contained is not None else ""
    if kind == "RX":
        urgency = "expected"
    elif contained is not None and contained >= 100.0:
        urgency = "past"
    else:
        urgency = "immediate"
    return Hazard(
        hazard_id=f"{SOURCE}:{native}",
        source=SOURCE,
        event=event,
        category="fire",
        severity=fire_severity(kind, acres, contained),
        urgency=urgency,
        certainty="observed",
        source_severity=f"{kind} {size}{containment}",
        sent=modified or perimeter_date,
        effective=perimeter_date,
        onset=discovered,
        ends=out,
        headline=f"{event}: {name} ({size}{containment})",
        area_desc=f"{name} perimeter" + (f", {state}" if state else ""),
        geometry=geometry,
        geometry_method="polygon" if geometry is not None else None,
        properties={
            "incident_name": name,
            "incident_type": kind,
            "acres": acres,
            "percent_contained": contained,
            "state": state,
            "county": _text(attrs, "attr_POOCounty"),
            "irwin_id": _text(attrs, "attr_IrwinID"),
            "unique_fire_id": _text(attrs, "attr_UniqueFireIdentifier"),
            "object_id": attrs.get("OBJECTID"),
            "perimeter_date": perimeter_date.isoformat() if perimeter_date else None,
        },
    )


def _perimeter_time(hazard: Hazard) -> datetime:
    return hazard.effective or hazard.sent or datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_perimeters(payload: Any, *, now: datetime) -> ParseResult:
    """Hazards of a perimeters FeatureCollection (one page, or all pages' features joined).

    Raises :class:`FeedFormatError` when the payload is not a FeatureCollection.
    """
    check_now(now)
    features = _features(payload)
    kept: dict[str, tuple[int, Hazard]] = {}
    problems: list[str] = []
    for index, feature in enumerate(features):
        try:
            hazard = _hazard(feature)
        except ValueError as exc:
            problems.append(f"features[{index}]: {exc}")
            continue
        previous = kept.get(hazard.hazard_id)
        if previous is None:
            kept[hazard.hazard_id] = (index, hazard)
            continue
        older_index, older = previous
        if _perimeter_time(hazard) > _perimeter_time(older):
            kept[hazard.hazard_id] = (index, hazard)
        else:
            older_index = index
        problems.append(f"features[{older_index}]: older perimeter of {hazard.hazard_id}")
    for line in problems:
        logger.warning("wildfire: skipped %s", line)
    hazards = tuple(hazard for _, hazard in sorted(kept.values(), key=lambda item: item[0]))
    unplaced = sum(1 for h in hazards if not h.is_placed)
    logger.info("wildfire: %d perimeters, %d hazards, %d unplaced, %d skipped", len(features),
                len(hazards), unplaced, len(problems))
    return ParseResult(hazards=hazards, skipped=len(problems), unplaced=unplaced,
                       problems=tuple(problems))


# -------------------------------------------------------------------------------- fetch


def fetch(ctx: FetchContext) -> ParseResult:
    """All pages of the current perimeters, then one parse; any failed page fails the poll."""
    features: list[Any] = []
    offset = 0
    for page in range(1, MAX_PAGES + 1):
        fetched = ctx.client.get(ctx.settings.wildfire_url, params=page_params(offset),
                                 expect="json")
        if fetched.status == "not_modified":  # validators offered by the poller for page 1
            raise FeedError(f"perimeters page {page} not modified: nothing to parse")
        try:
            payload = json.loads(fetched.body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeedFormatError(f"perimeters page {page} is not JSON: {exc}") from exc
        raise_for_arcgis_error(payload)
        page_features = _features(payload)
        features.extend(page_features)
        if not exceeded_transfer_limit(payload):
            logger.info("wildfire: %d features in %d page(s)", len(features), page)
            return parse_perimeters({"type": "FeatureCollection", "features": features},
                                    now=ctx.now)
        if not page_features:
            raise FeedFormatError(f"perimeters page {page} is empty but claims more pages")
        offset += len(page_features)
    raise FeedFormatError(f"perimeters need more than {MAX_PAGES} pages of {PAGE_SIZE}; "
                          "not polled")
