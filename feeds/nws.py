"""NWS active alerts (api.weather.gov ``/alerts/active``), normalised into :class:`Hazard` records.

The payload is a GeoJSON FeatureCollection; each feature is one CAP message. Most alerts come
without a polygon and name their area by zones (``affectedZones``) and counties
(``geocode.SAME``). Such an alert is placed, in this order:

1. ``"zone"``: the union of its zone shapes, fetched from the API (``/zones/<type>/<id>``, the
   URL rewritten onto the setting ``nws_api_base``) and cached for
   :data:`ZONE_CACHE_MAX_AGE_S`. Used only when *every* affected zone has a shape: a partial
   union would understate the area.
2. ``"county"``: the union of the bundled county boundaries named by its SAME codes
   (``PSSCCC``: ``P`` the part of the county, 0 = all of it; ``SS`` the state FIPS; ``CCC`` the
   county FIPS). A code naming part of a county places the whole county (more area, never
   less). Marine SAME areas (see :data:`MARINE_SAME_AREAS`) have no county and are ignored.
3. unplaced: kept with ``geometry=None`` and counted in :attr:`ParseResult.unplaced`.

Pure functions (no I/O, time passed in): :func:`parse_alerts`, :func:`parse_zone`,
:func:`place_alerts`, :func:`reconcile`, :func:`resolve_template_times`,
:func:`category_of`. :func:`fetch` is the thin shell that does the requests.

Severity, urgency and certainty are mapped onto the CAP vocabularies in lower case, the NWS
value kept in ``source_severity``. Status (Actual, Exercise, Test, System, Draft) is kept as
given; the dashboard decides what to show.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta, timezone
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from feeds import FeedError, FeedFormatError, FeedRejected
from feeds.base import Cache, Client, FetchContext
from feeds.model import (
    CERTAINTIES,
    MESSAGE_TYPES,
    SEVERITIES,
    STATUSES,
    URGENCIES,
    Hazard,
    ParseResult,
)
from layers.geography import Geography, load_geography

logger = logging.getLogger(__name__)

SOURCE = "nws"

#: Zone shapes change a few times a year; a week-old copy is good enough.
ZONE_CACHE_MAX_AGE_S = 7 * 24 * 3600
#: Zone requests per poll at most: a cold cache needs ~1,000 zones nationwide, so they are
#: fetched over several polls (alerts left over are placed by county meanwhile).
ZONE_FETCHES_PER_POLL = 60
#: After this many zone requests fail with the API unreachable (connection error, 5xx, 429),
#: stop asking for zones in this poll.
ZONE_OUTAGE_LIMIT = 3
#: Cache key prefix; the key is ``nws-zone:<type>/<id>`` because a fire zone and a public
#: zone can share an id and still have different shapes.
ZONE_CACHE_PREFIX = "nws-zone:"

#: Two-letter UGC prefixes of marine zones (coastal and offshore waters, the Great Lakes and the
#: St. Lawrence): AM western Atlantic/Caribbean, AN north-west Atlantic, GM Gulf of Mexico,
#: LC Lake St. Clair, LE Erie, LH Huron, LM Michigan, LO Ontario, LS Superior, PH Hawaiian
#: waters, PK Alaskan waters, PM Marianas waters, PS American Samoa waters, PZ eastern
#: Pacific, SL St. Lawrence River.
MARINE_UGC_PREFIXES = frozenset({"AM", "AN", "GM", "LC", "LE", "LH", "LM", "LO", "LS",
                                 "PH", "PK", "PM", "PS", "PZ", "SL"})
#: The matching SAME "state" numbers of marine areas (no county has them).
MARINE_SAME_AREAS = frozenset({"57", "58", "59", "61", "65", "73", "75", "77",
                               "91", "92", "93", "94", "96", "97", "98"})

#: Event name -> category, first match wins; each key is matched as a substring of the
#: lower-cased event name. Events matching nothing fall back on the CAP category
#: (:data:`CAP_CATEGORY_FALLBACK`), which makes most of them "weather".
EVENT_CATEGORIES: tuple[tuple[str, str], ...] = (
    # extratropical marine wind warnings, not tropical cyclones
    ("hurricane force wind", "weather"),
    ("tsunami", "tsunami"),
    ("earthquake", "earthquake"),
    ("hurricane", "tropical_cyclone"),
    ("typhoon", "tropical_cyclone"),
    ("tropical storm", "tropical_cyclone"),
    ("tropical depression", "tropical_cyclone"),
    ("tropical cyclone", "tropical_cyclone"),
    ("storm surge", "tropical_cyclone"),
    ("flood", "flood"),           # Flood, Flash Flood, Coastal/Lakeshore Flood ...
    ("hydrologic", "flood"),      # Hydrologic Outlook / Statement / Advisory
    ("red flag", "fire"),
    ("fire weather", "fire"),
    ("fire warning", "fire"),
    ("fire danger", "fire"),
    ("air quality", "other"),
    ("air stagnation", "other"),
    ("child abduction", "other"),
    ("civil danger", "other"),
    ("civil emergency", "other"),
    ("911", "other"),
    ("law enforcement", "other"),
    ("local area emergency", "other"),
    ("nuclear power", "other"),
    ("radiological", "other"),
    ("hazardous materials", "other"),
    ("shelter in place", "other"),
    ("evacuation", "other"),
    ("blue alert", "other"),
    ("administrative", "other"),
    ("volcano", "other"),
)
#: CAP ``category`` -> our category, for events not named in :data:`EVENT_CATEGORIES`.
CAP_CATEGORY_FALLBACK: Mapping[str, str] = {"met": "weather", "fire": "fire"}

# CAP 1.0's "Very Likely" was folded into "Likely" in CAP 1.1.
_CAP_ALIASES = {"very likely": "likely"}
_TIME_FIELDS = ("sent", "effective", "onset", "expires", "ends")
_ZONE_URL = re.compile(
    r"^https?://api\.weather\.gov/zones/(?P<type>[a-z]+)/(?P<id>[A-Z]{2}[CZ]\d{3})$")
_UGC = re.compile(r"^[A-Z]{2}[CZ]\d{3}$")
_SAME = re.compile(r"^\d{6}$")

# --------------------------------------------------------------------------------------------
# Templated times of the weather.gov api-proxy recordings

_TEMPLATE = re.compile(
    r"^date:(?:(?P<now>now(?::hour|:minutes)?)"
    r"|today (?P<hh>\d{2}):(?P<mm>\d{2}):(?P<offset>[-+]?\d{1,2}))"
    r"(?: +(?P<amount>[-+]?\d+) +(?P<unit>[A-Za-z]+))?"
    r"(?: / (?P<duration>\S+))?$"
)
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "seconds"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
}


def _utc_now(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    return now.astimezone(timezone.utc)


def _resolve_template(text: str, now: datetime) -> str | None:
    match = _TEMPLATE.match(text)
    if match is None:
        return None
    unit = None
    if match["unit"] is not None:
        unit = _UNITS.get(match["unit"].lower())
        if unit is None:
            return None
    try:
        if match["now"] is not None:
            moment = now
        else:
            hours = int(match["hh"]) - int(match["offset"])
            moment = datetime.combine(now.date(), time(0), tzinfo=timezone.utc) + timedelta(
                hours=hours, minutes=int(match["mm"]))
        if unit is not None:
            moment += timedelta(**{unit: int(match["amount"])})
    except OverflowError:  # an amount beyond the years datetime can hold
        return None
    if match["now"] == "now:hour":
        moment = moment.replace(minute=0, second=0, microsecond=0)
    elif match["now"] == "now:minutes":
        moment = moment.replace(second=0, microsecond=0)
    return moment.isoformat() + (f"/{match['duration']}" if match["duration"] else "")


def resolve_template_times(payload: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """A copy of ``payload`` with the api-proxy's relative time templates made absolute.

    The beta weather.gov project records API responses with times written relative to the
    moment they are served. Supported grammar (every string value, in dicts and lists, at any
    depth; keys are left alone)::

        date:<anchor>[ <amount> <unit>][ / <ISO-8601 duration>]
        anchor := now | now:hour | now:minutes | today HH:MM:<UTC offset in hours>
        amount := [+-]digits
        unit   := s|sec|second(s) | m|min|minute(s) | h|hr|hour(s) | d|day(s)

    ``now`` is ``now``; ``today 16:00:-5`` is 16:00 at UTC-5 (21:00 UTC) on the UTC date of
    ``now``. The amount is added, then ``now:hour`` truncates to the hour and ``now:minutes``
    to the minute. A `` / duration`` suffix is kept as ``<time>/<duration>`` (an ISO-8601
    interval). Results are
    ISO-8601 in UTC (``2025-12-15T21:53:46+00:00``). Strings starting with ``date:`` that do
    not follow the grammar are left as they are, so the parser refuses them.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a JSON object (dict), got {type(payload).__name__}")
    utc_now = _utc_now(now)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith("date:"):
                resolved = _resolve_template(value, utc_now)
                return value if resolved is None else resolved
            return value
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(payload)


# --------------------------------------------------------------------------------------------
# Vocabularies


def category_of(event: str, cap_category: str = "") -> str:
    """Our category of an NWS event name (:data:`EVENT_CATEGORIES`, then the CAP category)."""
    name = event.lower()
    for needle, category in EVENT_CATEGORIES:
        if needle in name:
            return category
    return CAP_CATEGORY_FALLBACK.get(cap_category.strip().lower(), "other")


def _cap(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value is None:
        return "unknown"
    if not isinstance(value, str):
        raise _Skip(f"{field} is not a string")
    text = value.strip().lower()
    text = _CAP_ALIASES.get(text, text)
    return text if text in allowed else "unknown"


def _required_vocab(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise _Skip(f"{field} {str(value)[:20]!r} is not one of {', '.join(allowed)}")
    return value.strip().lower()


# --------------------------------------------------------------------------------------------
# Parsing


class _Skip(Exception):
    """One feature cannot be used; the message is the reason."""


def _parse_time(field: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Skip(f"{field} is not a string")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        hint = " (an unresolved api-proxy template)" if text.startswith("date:") else ""
        raise _Skip(f"{field} is not an ISO-8601 time{hint}: {value[:40]!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Skip(f"{field} has no UTC offset: {value[:40]!r}")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 lies before year 1 in UTC
        raise _Skip(f"{field} is out of range in UTC: {value[:40]!r}") from None


def _text(props: Mapping[str, Any], field: str) -> str:
    value = props.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Skip(f"{field} is not a string")
    return value


def _strings(value: Any, field: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Skip(f"{field} is not a list of strings")
    if pattern is not None:
        bad = [v for v in value if not pattern.match(v)]
        if bad:
            raise _Skip(f"{field} holds malformed codes, e.g. {bad[0][:12]!r}")
    return tuple(value)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _flatten_polygons(geom: BaseGeometry, out: list[BaseGeometry]) -> None:
    if geom.is_empty:
        return
    if geom.geom_type == "Polygon":
        out.append(geom)
    elif geom.geom_type in ("MultiPolygon", "GeometryCollection"):
        for part in geom.geoms:
            _flatten_polygons(part, out)


def polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The polygonal part of ``geom``, made valid, as a Polygon or MultiPolygon (or None)."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts: list[BaseGeometry] = []
    _flatten_polygons(geom, parts)
    if not parts:
        return None
    if len(parts) == 1 and geom.geom_type == "Polygon":
        return parts[0]
    if geom.geom_type == "MultiPolygon" and len(parts) == len(geom.geoms):
        return geom
    merged = shapely.union_all(parts)
    if not merged.is_valid:
        merged = shapely.make_valid(merged)
    flat: list[BaseGeometry] = []
    _flatten_polygons(merged, flat)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else shapely.MultiPolygon(flat)


def _geometry(value: Any) -> BaseGeometry | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Skip("geometry is not a GeoJSON object")
    kind = value.get("type")
    if kind not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise _Skip(f"geometry type {str(kind)[:20]!r} is not polygonal")
    try:
        geom = shape(value)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError,
            shapely.errors.ShapelyError) as exc:  # GeometryTypeError: a nested unknown type
        raise _Skip(f"bad geometry: {str(exc)[:60]}") from None
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        raise _Skip("geometry is empty")
    if not np.isfinite(coords).all() or np.abs(coords[:, 1]).max() > 90 \
            or np.abs(coords[:, 0]).max() > 360:
        raise _Skip("geometry has coordinates out of range")
    result = polygonal(geom)
    if result is None:
        raise _Skip("geometry has no area")
    return result


def is_marine_code(code: str) -> bool:
    """Whether a UGC (``PZZ356``) or SAME (``057356``) code names a marine area."""
    if _UGC.match(code):
        return code[:2] in MARINE_UGC_PREFIXES
    if _SAME.match(code):
        return code[1:3] in MARINE_SAME_AREAS
    raise ValueError(f"code must be a UGC code like 'ORZ004' or a SAME code like '041005', "
                     f"got {code!r}")


def is_land(hazard: Hazard) -> bool:
    """Whether an NWS alert names at least one non-marine zone or county (UGC or SAME)."""
    codes = (*hazard.properties.get("ugc", ()), *hazard.properties.get("same", ()))
    return any(not is_marine_code(code) for code in codes)


def _hazard(feature: Any) -> Hazard:
    if not isinstance(feature, Mapping):
        raise _Skip("not a GeoJSON feature")
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        raise _Skip("properties missing")
    native_id = props.get("id")
    if not isinstance(native_id, str) or not native_id.strip():
        raise _Skip("id missing")
    event = props.get("event")
    if not isinstance(event, str) or not event.strip():
        raise _Skip("event missing")
    times = {field: _parse_time(field, props.get(field)) for field in _TIME_FIELDS}
    if times["sent"] is None:
        raise _Skip("sent missing")
    geocode = props.get("geocode") or {}
    if not isinstance(geocode, Mapping):
        raise _Skip("geocode is not an object")
    same = _strings(geocode.get("SAME"), "geocode.SAME", _SAME)
    ugc = _strings(geocode.get("UGC"), "geocode.UGC", _UGC)
    zones = _strings(props.get("affectedZones"), "affectedZones")
    references = props.get("references") or []
    if not isinstance(references, list) or not all(
        isinstance(r, Mapping) and isinstance(r.get("identifier"), str)
        and r["identifier"].strip() for r in references
    ):
        raise _Skip("references is not a list of {identifier: ...}")
    parameters = props.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise _Skip("parameters is not an object")
    geometry = _geometry(feature.get("geometry"))
    nws_headline = _list(parameters.get("NWSheadline"))
    cap_category = _text(props, "category")
    severity_text = _text(props, "severity")
    extra: dict[str, Any] = {
        "nws_id": native_id,
        "sender_name": _text(props, "senderName"),
        "cap_category": cap_category,
        "response": _text(props, "response"),
        "same": same,
        "ugc": ugc,
        "affected_zones": zones,
        "vtec": tuple(v for v in _list(parameters.get("VTEC")) if isinstance(v, str)),
        "nws_headline": next((h for h in nws_headline if isinstance(h, str)), ""),
    }
    try:
        return Hazard(
            hazard_id=f"{SOURCE}:{native_id.strip()}",
            source=SOURCE,
            event=event.strip(),
            category=category_of(event, cap_category),
            severity=_cap(props.get("severity"), SEVERITIES, "severity"),
            urgency=_cap(props.get("urgency"), URGENCIES, "urgency"),
            certainty=_cap(props.get("certainty"), CERTAINTIES, "certainty"),
            source_severity=severity_text,
            status=_required_vocab(props.get("status"), STATUSES, "status"),
            message_type=_required_vocab(props.get("messageType"), MESSAGE_TYPES,
                                         "messageType"),
            supersedes=tuple(f"{SOURCE}:{r['identifier'].strip()}" for r in references),
            headline=_text(props, "headline") or extra["nws_headline"],
            description=_text(props, "description"),
            instruction=_text(props, "instruction"),
            area_desc=_text(props, "areaDesc"),
            url=_text(props, "@id"),
            geometry=geometry,
            geometry_method="polygon" if geometry is not None else None,
            properties=extra,
            **times,
        )
    except ValueError as exc:  # the model's own checks
        raise _Skip(str(exc)[:80]) from None


def parse_alerts(payload: Any) -> ParseResult:
    """Parse an ``/alerts/active`` FeatureCollection. Only polygons place alerts here.

    Malformed features are skipped and counted (``problems``: index and reason), so is a
    second feature with an id already seen but other content; a verbatim repeat is kept once
    and not counted. A payload that is not a FeatureCollection raises
    :class:`feeds.FeedFormatError`. Times must be ISO-8601 with an offset (see
    :func:`resolve_template_times` for the recorded weather.gov samples).
    """
    if not isinstance(payload, Mapping) or payload.get("type") != "FeatureCollection":
        kind = payload.get("type") if isinstance(payload, Mapping) else type(payload).__name__
        raise FeedFormatError(f"NWS alerts: expected a GeoJSON FeatureCollection, got {kind!r}")
    features = payload.get("features")
    if not isinstance(features, list):
        raise FeedFormatError("NWS alerts: 'features' is not a list")
    hazards: list[Hazard] = []
    problems: list[str] = []
    seen: dict[str, Any] = {}
    repeats = 0
    for index, feature in enumerate(features):
        try:
            hazard = _hazard(feature)
            if hazard.hazard_id in seen:
                if seen[hazard.hazard_id] == feature:
                    repeats += 1  # the same message twice: nothing is lost by keeping one
                    continue
                raise _Skip(f"id repeated with other content: {hazard.hazard_id[:80]}")
        except _Skip as exc:
            problems.append(f"feature {index}: {exc}")
            continue
        seen[hazard.hazard_id] = feature
        hazards.append(hazard)
    if repeats:
        logger.info("NWS alerts: %d features repeated verbatim, kept once", repeats)
    if problems:
        logger.warning("NWS alerts: %d of %d features skipped", len(problems), len(features))
    return ParseResult(hazards=tuple(hazards), skipped=len(problems),
                       unplaced=sum(not h.is_placed for h in hazards),
                       problems=tuple(problems))


# --------------------------------------------------------------------------------------------
# Zones


def zone_key(url: str) -> str | None:
    """``"forecast/ORZ004"`` for an api.weather.gov zone URL, else None."""
    match = _ZONE_URL.match(url.strip())
    return f"{match['type']}/{match['id']}" if match else None


def zone_url(key: str, api_base: str) -> str:
    """The URL of zone ``key`` (``"forecast/ORZ004"``) under ``api_base``."""
    if not key or "/" not in key:
        raise ValueError(f"key must look like 'forecast/ORZ004', got {key!r}")
    return f"{api_base.rstrip('/')}/zones/{key}"


def parse_zone(payload: Any) -> BaseGeometry | None:
    """The polygonal shape of a ``/zones/<type>/<id>`` Feature (None if it has none)."""
    if not isinstance(payload, Mapping) or payload.get("type") != "Feature":
        raise FeedFormatError("NWS zone: expected a GeoJSON Feature")
    try:
        return _geometry(payload.get("geometry"))
    except _Skip as exc:
        if payload.get("geometry") is None:
            return None
        raise FeedFormatError(f"NWS zone: {exc}") from None


def zones_needed(hazards: Iterable[Hazard]) -> list[str]:
    """Zone keys of the alerts without a polygon, in order of first mention, once each."""
    keys: dict[str, None] = {}
    for hazard in hazards:
        if hazard.geometry is None:
            for url in hazard.properties.get("affected_zones", ()):
                key = zone_key(url)
                if key is not None:
                    keys.setdefault(key)
    return list(keys)


def _zone_geometries(hazard: Hazard, zones: Mapping[str, BaseGeometry | None]
                     ) -> list[BaseGeometry] | None:
    keys = [zone_key(url) for url in hazard.properties.get("affected_zones", ())]
    if not keys or any(key is None or zones.get(key) is None for key in keys):
        return None
    return [zones[key] for key in keys]  # type: ignore[index]


def place_alerts(result: ParseResult, *, zones: Mapping[str, BaseGeometry | None] | None = None,
                 geography: Geography | None = None) -> ParseResult:
    """Give alerts without a polygon the union of their zones, else of their SAME counties.

    ``zones`` maps zone keys (``"forecast/ORZ004"``) to shapes; ``geography`` defaults to the
    bundled one. Alerts placed by neither stay unplaced and are counted.
    """
    zones = zones or {}
    geography = geography if geography is not None else load_geography()
    county_unions: dict[tuple[str, ...], BaseGeometry | None] = {}
    placed: list[Hazard] = []
    for hazard in result.hazards:
        if hazard.geometry is not None:
            placed.append(hazard)
            continue
        method, geom = None, None
        parts = _zone_geometries(hazard, zones)
        if parts is not None:
            method, geom = "zone", polygonal(shapely.union_all(parts))
        if geom is None:
            fips = tuple(sorted({code[1:] for code in hazard.properties.get("same", ())
                                 if code[1:3] not in MARINE_SAME_AREAS}))
            if fips not in county_unions:
                union, _missing = geography.counties_geometry(fips)
                county_unions[fips] = polygonal(union)
            method, geom = "county", county_unions[fips]
        if geom is None:
            placed.append(hazard)
            continue
        placed.append(dataclasses.replace(hazard, geometry=geom, geometry_method=method))
    hazards = tuple(placed)
    unplaced = sum(not h.is_placed for h in hazards)
    counts = placement_counts(hazards)
    logger.info("NWS placement: %d polygon, %d zone, %d county, %d unplaced "
                "(%d of them marine only)", counts["polygon"], counts["zone"],
                counts["county"], counts["unplaced"], counts["unplaced"] - counts["land_unplaced"])
    return ParseResult(hazards=hazards, skipped=result.skipped, unplaced=unplaced,
                       problems=result.problems)


def placement_counts(hazards: Iterable[Hazard]) -> dict[str, int]:
    """How many alerts each method placed, how many are unplaced, and the same for land ones.

    Keys: ``polygon``, ``zone``, ``county``, ``unplaced``, ``total``, ``land``,
    ``land_placed``, ``land_unplaced`` (land: :func:`is_land`).
    """
    counts = dict.fromkeys(("polygon", "zone", "county", "unplaced", "total", "land",
                            "land_placed", "land_unplaced"), 0)
    for hazard in hazards:
        counts["total"] += 1
        counts[hazard.geometry_method if hazard.is_placed else "unplaced"] += 1
        if is_land(hazard):
            counts["land"] += 1
            counts["land_placed" if hazard.is_placed else "land_unplaced"] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Updates and cancellations


def reconcile(hazards: Iterable[Hazard], *, now: datetime) -> tuple[Hazard, ...]:
    """The alerts in force at ``now``: superseded, cancelled, expired and ended ones dropped.

    An Update replaces the messages it references; a Cancel removes them and itself. Order is
    kept; of two records with one id the first is kept.
    """
    utc_now = _utc_now(now)
    items = list(hazards)
    superseded = {ref for h in items for ref in h.supersedes}
    kept: list[Hazard] = []
    seen: set[str] = set()
    for hazard in items:
        if hazard.hazard_id in seen or hazard.hazard_id in superseded:
            continue
        if not hazard.active(utc_now):
            continue
        seen.add(hazard.hazard_id)
        kept.append(hazard)
    return tuple(kept)


# --------------------------------------------------------------------------------------------
# The thin shell


def load_zone_geometries(
    keys: Iterable[str], *, client: Client, cache: Cache, api_base: str, now: datetime,
    max_fetches: int = ZONE_FETCHES_PER_POLL, outage_limit: int = ZONE_OUTAGE_LIMIT,
) -> dict[str, BaseGeometry | None]:
    """Shapes of the zones ``keys``: from ``cache`` when younger than a week, else fetched.

    A fetched zone is cached (an empty shape when the zone has none). A failing zone is
    logged and left out, so its alerts fall back to counties; it is asked for again next time.
    """
    found: dict[str, BaseGeometry | None] = {}
    fetched = failed = outages = 0
    for key in keys:
        cached = cache.get(ZONE_CACHE_PREFIX + key, max_age_s=ZONE_CACHE_MAX_AGE_S, now=now)
        if cached is not None:
            try:
                geom = shapely.from_wkb(cached)
            except shapely.errors.GEOSException:
                geom = None
            else:
                found[key] = polygonal(geom)
                continue
        if fetched >= max_fetches or outages >= outage_limit:
            continue
        fetched += 1
        try:
            response = client.get(zone_url(key, api_base), expect="json")
            geom = parse_zone(json.loads(response.body.decode("utf-8-sig")))
        except (FeedError, OSError, ValueError) as exc:
            failed += 1
            if isinstance(exc, OSError) and not isinstance(exc, FeedRejected):
                outages += 1  # unreachable, 5xx or 429; a 404 says nothing about the API
            logger.warning("NWS zone %s not loaded: %s", key, type(exc).__name__)
            continue
        value = shapely.to_wkb(geom if geom is not None else shapely.MultiPolygon())
        cache.put(ZONE_CACHE_PREFIX + key, value, now=now)
        found[key] = geom
    if fetched or failed:
        logger.info("NWS zones: %d fetched, %d failed, %d from cache", fetched - failed, failed,
                    len(found) - (fetched - failed))
    return found


def fetch(ctx: FetchContext) -> ParseResult:
    """GET the active alerts, then place those without a polygon by zones, then counties."""
    response = ctx.client.get(ctx.settings.nws_alerts_url, expect="json")
    try:
        payload = json.loads(response.body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedFormatError(f"NWS alerts: body is not JSON: {exc}") from exc
    result = parse_alerts(payload)
    zones = load_zone_geometries(zones_needed(result.hazards), client=ctx.client,
                                 cache=ctx.cache, api_base=ctx.settings.nws_api_base,
                                 now=_utc_now(ctx.now))
    return place_alerts(result, zones=zones)
