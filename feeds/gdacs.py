"""GDACS (Global Disaster Alert and Coordination System) current events, from its RSS 2.0 feed.

One :class:`~feeds.model.Hazard` per ``<item>``, id ``"gdacs:<eventtype>-<eventid>-<episodeid>"``
(an event's later episodes are new hazards). Every event is kept, wherever it is: GDACS is
global and the impact engine decides who is affected (a typhoon near Guam, an earthquake off
Puerto Rico, or nobody). The XML is untrusted and parsed with :mod:`defusedxml` only, DTDs
refused (a billion-laughs payload raises :class:`feeds.FeedFormatError`).

Categories: EQ earthquake, TC tropical_cyclone, FL flood, WF fire, TS tsunami; DR (drought),
VO (volcano) and unknown types other.

Severity from the event's ``gdacs:alertlevel`` (GDACS's own headline colour): Red -> extreme,
Orange -> severe, Green -> minor. The episode's level and the severity text are kept in
``source_severity`` (``"GDACS Orange (episode Green): Tropical Depression (...)"``) and in
properties. Certainty is ``observed`` for earthquakes, else unknown; urgency unknown.

Area (the feed carries a point, ``georss:point`` "lat lon", and ``gdacs:bbox`` "lonmin lonmax
latmin latmax"; for TCs the box is the whole track, for DR and EQ items in the samples it is the
point +/- 4 degrees, and one TC box in the samples lies in another ocean):

* EQ: a radius around the epicentre, from the magnitude in ``gdacs:severity`` by the same MMI V
  rule as the USGS module (:func:`feeds.usgs.shaking_radius_km`, Bakun & Wentworth 1997).
* TC: a radius around the current centre: :data:`TC_RADIUS_KM` for storms whose current maximum
  wind (the "wind speed of N km/h" in the severity text; the ``value`` attribute is the storm's
  lifetime maximum, used only when the text has none; unknown counts as hurricane force) is of
  hurricane force (>= 119 km/h, Saffir-Simpson category 1), :data:`TS_RADIUS_KM` below. These
  are round planning allowances for the reach of tropical-storm-force winds, not a wind field;
  for storms that threaten US jurisdictions the NHC module supplies the real cone and warnings.
* VO: :data:`VO_RADIUS_KM` around the volcano (ash fall and evacuation zones of large eruptions
  reach tens of kilometres; a planning allowance).
* Everything else (DR, FL, WF, ...), and EQ/TC/VO items without a point: the bbox polygon
  (``geometry_method`` ``"polygon"``), if it is well-formed and holds the item's point. A box
  with ``lonmin > lonmax`` crosses the antimeridian and is drawn past 180 (normalised by
  :mod:`layers.shapes`). Otherwise the item is unplaced (kept and counted).

Radius hazards have ``geometry_method`` ``"radius"`` and are geodesic circles (WGS 84).

Times: ``pubDate`` is ``sent``; ``gdacs:fromdate`` is ``onset``/``effective``; ``gdacs:todate`` (the
last update for ongoing events) is a property. GDACS gives no expiry: the feed lists current
events, and an event leaves the hazard list when it leaves the feed.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
from datetime import datetime, timezone
from typing import Any
from xml.etree.ElementTree import Element

import shapely

from feeds import FeedError, FeedFormatError
from feeds.base import FetchContext
from feeds.model import Hazard, ParseResult, check_now
from feeds.usgs import shaking_radius_km
from feeds.xmlsafe import parse_xml

logger = logging.getLogger(__name__)

SOURCE = "gdacs"

TC_RADIUS_KM = 300.0   # hurricane-force storms
TS_RADIUS_KM = 200.0   # tropical storms and depressions
HURRICANE_KMH = 119.0  # Saffir-Simpson category 1 threshold
VO_RADIUS_KM = 100.0

NS = {
    "gdacs": "http://www.gdacs.org",
    "geo": "http://www.w3.org/2003/01/geo/wgs84_pos#",
    "georss": "http://www.georss.org/georss",
    "dc": "http://purl.org/dc/elements/1.1/",
    "glide": "http://glidenumber.net",
    "asgard": "http://asgard.jrc.it",
}

CATEGORIES = {"EQ": "earthquake", "TC": "tropical_cyclone", "FL": "flood", "WF": "fire",
              "TS": "tsunami", "DR": "other", "VO": "other"}
TYPE_NAMES = {"EQ": "Earthquake", "TC": "Tropical cyclone", "FL": "Flood", "WF": "Wildfire",
              "TS": "Tsunami", "DR": "Drought", "VO": "Volcano"}
SEVERITIES = {"red": "extreme", "orange": "severe", "green": "minor"}

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MAGNITUDE = re.compile(r"Magnitude\s+([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)
_WIND = re.compile(r"wind speed of\s+([0-9]+(?:\.[0-9]+)?)\s*km/h", re.IGNORECASE)


class _ItemError(ValueError):
    """One item cannot be used; the message is the reason."""


def _text(item: Element, path: str) -> str:
    node = item.find(path, NS)
    return (node.text or "").strip() if node is not None else ""


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise _ItemError(f"{name} is not a number: {text[:40]!r}") from exc
    if not math.isfinite(value):
        raise _ItemError(f"{name} is not finite: {text[:40]!r}")
    return value


def _rfc822(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError) as exc:
        raise _ItemError(f"{name} is not an RFC 822 date: {text[:40]!r}") from exc
    if when.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 2822)
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.astimezone(timezone.utc)
    except OverflowError as exc:  # 31 Dec 9999 23:59:59 -1200 is in year 10000 in UTC
        raise _ItemError(f"{name} is out of range in UTC: {text[:40]!r}") from exc


def _point(item: Element) -> tuple[float, float] | None:
    """(lon, lat) from georss:point ("lat lon") or geo:Point, or None."""
    text = _text(item, "georss:point")
    if text:
        parts = text.split()
        if len(parts) != 2:
            raise _ItemError(f"georss:point is not 'lat lon': {text[:40]!r}")
        lat, lon = _float(parts[0], "latitude"), _float(parts[1], "longitude")
    else:
        lat_text, lon_text = _text(item, "geo:Point/geo:lat"), _text(item, "geo:Point/geo:long")
        if not (lat_text and lon_text):
            return None
        lat, lon = _float(lat_text, "latitude"), _float(lon_text, "longitude")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise _ItemError(f"point out of range: lat {lat}, lon {lon}")
    return lon, lat


def bbox_polygon(text: str, point: tuple[float, float] | None = None) -> shapely.Polygon | None:
    """The polygon of a ``gdacs:bbox`` ("lonmin lonmax latmin latmax"), or None if unusable.

    ``lonmin > lonmax`` means the box crosses the antimeridian; it is drawn past 180. A box that
    does not hold ``point`` (lon, lat) is not trusted.
    """
    parts = text.split()
    if len(parts) != 4:
        return None
    try:
        lonmin, lonmax, latmin, latmax = (float(p) for p in parts)
    except ValueError:
        return None
    values = (lonmin, lonmax, latmin, latmax)
    if not all(math.isfinite(v) for v in values) or not -90 <= latmin < latmax <= 90 \
            or not (-180 <= lonmin <= 180 and -180 <= lonmax <= 180) or lonmin == lonmax:
        return None
    if lonmin > lonmax:
        lonmax += 360.0
    box = shapely.box(lonmin, latmin, lonmax, latmax)
    if point is not None:
        lon, lat = point
        candidates = (shapely.Point(lon, lat), shapely.Point(lon + 360.0, lat))
        if not any(box.covers(p) for p in candidates):
            return None
    return box


def _severity_value(item: Element) -> tuple[str, float | None, str]:
    node = item.find("gdacs:severity", NS)
    if node is None:
        return "", None, ""
    text = (node.text or "").strip()
    try:
        value: float | None = float(node.get("value", ""))
    except ValueError:
        value = None
    if value is not None and not math.isfinite(value):
        value = None
    return text, value, node.get("unit", "")


def _area(kind: str, item: Element, point: tuple[float, float] | None, severity_value: float | None,
          severity_text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Geometry keyword arguments for the Hazard, and properties saying how they were made."""
    if point is not None and kind in ("EQ", "TC", "VO"):
        lon, lat = point
        if kind == "EQ":
            magnitude = severity_value
            if magnitude is None:
                match = _MAGNITUDE.search(severity_text)
                magnitude = float(match.group(1)) if match else None
            if magnitude is not None:
                try:
                    radius = shaking_radius_km(magnitude)
                except ValueError as exc:
                    raise _ItemError(str(exc)) from exc
                return ({"center_lon": lon, "center_lat": lat, "radius_km": radius,
                         "geometry_method": "radius"},
                        {"magnitude": magnitude,
                         "radius_rule": "Bakun & Wentworth (1997), MMI V"})
        elif kind == "TC":
            match = _WIND.search(severity_text)
            wind = float(match.group(1)) if match else severity_value
            hurricane = wind is None or wind >= HURRICANE_KMH
            radius = TC_RADIUS_KM if hurricane else TS_RADIUS_KM
            return ({"center_lon": lon, "center_lat": lat, "radius_km": radius,
                     "geometry_method": "radius"},
                    {"max_wind_kmh": wind,
                     "radius_rule": "hurricane force" if hurricane else "below hurricane force"})
        else:
            return ({"center_lon": lon, "center_lat": lat, "radius_km": VO_RADIUS_KM,
                     "geometry_method": "radius"}, {"radius_rule": "volcano allowance"})
    box = bbox_polygon(_text(item, "gdacs:bbox"), point)
    if box is not None:
        return {"geometry": box, "geometry_method": "polygon"}, {"area_from": "bbox"}
    return {}, {}


def _event_name(kind: str, name: str, country: str, magnitude: float | None,
                event_id: str) -> str:
    """"Tropical cyclone: SARAI-19", "Earthquake M 5.5: South Africa", "Drought: Turkey-2019"."""
    label = TYPE_NAMES.get(kind, kind)
    if magnitude is not None:
        label += f" M {magnitude:g}"
    place = name or country
    if place:
        return f"{label}: {place}"
    return label if magnitude is not None else f"{label}: event {event_id}"


def _item_hazard(item: Element) -> Hazard:
    kind = _text(item, "gdacs:eventtype").upper()
    event_id = _text(item, "gdacs:eventid")
    episode_id = _text(item, "gdacs:episodeid")
    for name, value in (("eventtype", kind), ("eventid", event_id), ("episodeid", episode_id)):
        if not _ID.fullmatch(value):
            raise _ItemError(f"gdacs:{name} missing or malformed: {value[:40]!r}")
    point = _point(item)
    alert = _text(item, "gdacs:alertlevel")
    episode_alert = _text(item, "gdacs:episodealertlevel")
    severity_text, severity_value, severity_unit = _severity_value(item)
    geo, how = _area(kind, item, point, severity_value, severity_text)

    label = f"GDACS {alert}" if alert else "GDACS"
    if episode_alert and episode_alert.lower() != alert.lower():
        label += f" (episode {episode_alert})"
    if severity_text:
        label += f": {severity_text}"
    name = _text(item, "gdacs:eventname")
    country = _text(item, "gdacs:country")
    properties: dict[str, Any] = {
        "eventtype": kind, "eventid": event_id, "episodeid": episode_id,
        "alertlevel": alert, "episodealertlevel": episode_alert,
        "alertscore": _text(item, "gdacs:alertscore"),
        "severity_text": severity_text, "severity_value": severity_value,
        "severity_unit": severity_unit, "eventname": name, "country": country,
        "iso3": _text(item, "gdacs:iso3"),
        "population_text": _text(item, "gdacs:population"),
        "is_current": _text(item, "gdacs:iscurrent").lower() == "true",
        "todate": _text(item, "gdacs:todate"), "cap_url": _text(item, "gdacs:cap"),
        "point_lon": point[0] if point else None, "point_lat": point[1] if point else None,
        **how,
    }
    onset = _rfc822(_text(item, "gdacs:fromdate"), "gdacs:fromdate")
    try:
        return Hazard(
            hazard_id=f"{SOURCE}:{kind}-{event_id}-{episode_id}", source=SOURCE,
            event=_event_name(kind, name, country, how.get("magnitude"), event_id),
            category=CATEGORIES.get(kind, "other"),
            severity=SEVERITIES.get(alert.lower(), "unknown"),
            certainty="observed" if kind == "EQ" else "unknown",
            source_severity=label, sent=_rfc822(_text(item, "pubDate"), "pubDate"),
            effective=onset, onset=onset, headline=_text(item, "title"),
            description=_text(item, "description"), area_desc=country,
            url=_text(item, "link"), properties=properties, **geo,
        )
    except ValueError as exc:
        raise _ItemError(str(exc)) from exc


def parse_gdacs(payload: bytes | str, *, now: datetime) -> ParseResult:
    """Hazards from a GDACS RSS document. Raises :class:`FeedFormatError` if it is not RSS."""
    check_now(now)
    root = parse_xml(payload, "GDACS")
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise FeedFormatError(f"GDACS: not an RSS document (root element {root.tag!r})")
    hazards: list[Hazard] = []
    problems: list[str] = []
    unplaced = 0
    for index, item in enumerate(channel.findall("item")):
        try:
            hazard = _item_hazard(item)
        except _ItemError as exc:
            guid = _text(item, "guid") or "no guid"
            problems.append(f"item {index} ({guid[:40]}): {exc}")
            continue
        hazards.append(hazard)
        unplaced += not hazard.is_placed
    for line in problems:
        logger.warning("gdacs: skipped %s", line)
    return ParseResult(tuple(hazards), skipped=len(problems), unplaced=unplaced,
                       problems=tuple(problems))


def fetch(ctx: FetchContext) -> ParseResult:
    """Poll the GDACS RSS feed."""
    fetched = ctx.client.get(ctx.settings.gdacs_url, expect="xml")
    if fetched.status == "not_modified":  # validators offered by the poller, which keeps its data
        raise FeedError("GDACS feed not modified: nothing to parse")
    return parse_gdacs(fetched.body, now=ctx.now)
