"""Tsunami messages of the US Tsunami Warning Centers (NTWC Palmer, PTWC Honolulu): CAP 1.2.

The centres publish Atom feeds (``settings.tsunami_urls``) whose entries link the CAP document
of each bulletin (``<link rel="related" type="application/cap+xml" href=".../PAAQCAP.xml">``).
:func:`fetch` reads each feed, follows those links (only to the feed's own host or a
``noaa.gov``/``tsunami.gov`` host) and parses the CAP documents; a configured URL that answers
with a CAP ``<alert>`` itself is parsed directly. CAP documents are cached by URL (a bulletin's
URL never changes content). All XML is parsed with :mod:`defusedxml`, DTDs refused.

One :class:`~feeds.model.Hazard` per CAP ``<alert>``: id ``"tsunami:" + identifier``, category
``tsunami``; ``references`` ("sender,identifier,sent" triples) become ``supersedes``. Of several
``<info>`` blocks the first in English (or without a language) is used. CAP's severity, urgency
and certainty are kept (CAP 1.1's "Very Likely" reads as likely); ``source_severity`` is the
``TsunamiSystemCategory`` event code (Warning, Advisory, Watch, Threat, Information) or, without
one, the event name. ``effective`` defaults to ``sent`` (CAP 1.2).

Area: CAP polygons are "lat,lon lat,lon ..." (latitude first) and become one Polygon or
MultiPolygon (``geometry_method`` ``"polygon"``); rings crossing the antimeridian are drawn past
180 (normalised by :mod:`layers.shapes`). A single circle "lat,lon radius_km" is a radius
hazard (``"radius"``); several circles, or circles with polygons, are drawn as geodesic polygons
and joined. A circle of radius 0 is a point, not an area: Tsunami Information Statements give
only the epicentre so, and are kept unplaced (counted in ``ParseResult.unplaced``), as is any
message without area geometry. Geocodes (UGC zones, SAME codes) are kept in properties for
zone-based placement elsewhere. Bad shapes in an otherwise good message are dropped and noted in
``properties["area_problems"]``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from feeds import FeedFormatError, FeedRejected
from feeds.base import FetchContext
from feeds.model import (
    CERTAINTIES,
    MESSAGE_TYPES,
    SEVERITIES,
    STATUSES,
    URGENCIES,
    Hazard,
    ParseResult,
    check_now,
)
from feeds.xmlsafe import parse_xml

logger = logging.getLogger(__name__)

SOURCE = "tsunami"

CAP_NAMESPACES = ("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1")
ATOM = "http://www.w3.org/2005/Atom"
CAP_CACHE_S = 2 * 24 * 3600.0
CIRCLE_VERTICES = 72
TRUSTED_DOMAINS = ("noaa.gov", "tsunami.gov")

_WGS84 = Geod(ellps="WGS84")


class _ItemError(ValueError):
    """A message cannot be used; the message is the reason."""


@dataclasses.dataclass(frozen=True)
class AtomEntry:
    """One entry of a tsunami centre's Atom feed: the bulletin and its CAP document's URL."""

    entry_id: str
    title: str
    updated: datetime | None
    cap_url: str


@dataclasses.dataclass(frozen=True)
class AtomFeed:
    """The entries of an Atom feed that link a CAP document, and the ones that do not."""

    entries: tuple[AtomEntry, ...]
    skipped: int = 0
    problems: tuple[str, ...] = ()


def _iso_time(text: str, name: str) -> datetime | None:
    if not text:
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _ItemError(f"{name} is not an ISO 8601 time: {text[:40]!r}") from exc
    if when.tzinfo is None:
        raise _ItemError(f"{name} has no UTC offset: {text[:40]!r}")
    try:
        return when.astimezone(timezone.utc)
    except OverflowError as exc:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise _ItemError(f"{name} is out of range in UTC: {text[:40]!r}") from exc


# --------------------------------------------------------------------------- CAP areas


def _lat_lon(pair: str) -> tuple[float, float]:
    parts = pair.split(",")
    if len(parts) != 2:
        raise ValueError(f"not 'lat,lon': {pair[:40]!r}")
    lat, lon = float(parts[0]), float(parts[1])
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        raise ValueError(f"coordinates out of range: {pair[:40]!r}")
    return lon, lat


def cap_polygon(text: str) -> BaseGeometry:
    """A CAP ``<polygon>`` ("lat,lon lat,lon ...", first pair repeated last) as a shapely shape.

    Raises ``ValueError`` if it is not one. A ring crossing the antimeridian is drawn past 180.
    """
    points = np.asarray([_lat_lon(pair) for pair in text.split()], dtype=float)
    if len(points) and not np.array_equal(points[0], points[-1]):
        points = np.vstack([points, points[:1]])
    if len(points) < 4:
        raise ValueError(f"a polygon needs at least 3 distinct points, got {len(points) - 1}")
    lon = points[:, 0]
    if lon.max() - lon.min() > 180:
        lon[lon < 0] += 360.0
    shape = shapely.Polygon(points)
    if not shape.is_valid:
        shape = shapely.make_valid(shape)
    parts = [p for p in shapely.get_parts(shape) if p.geom_type == "Polygon" and p.area > 0]
    if not parts:
        raise ValueError("polygon has no area")
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def cap_circle(text: str) -> tuple[float, float, float]:
    """A CAP ``<circle>`` ("lat,lon radius_km") as ``(lon, lat, radius_km)``."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"not 'lat,lon radius': {text[:40]!r}")
    lon, lat = _lat_lon(parts[0])
    radius = float(parts[1])
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be >= 0, got {parts[1][:20]!r}")
    return lon, lat, radius


def geodesic_circle_polygon(lon: float, lat: float, radius_km: float) -> shapely.Polygon:
    """A polygon through :data:`CIRCLE_VERTICES` points at ``radius_km`` (WGS 84) from the centre.

    Longitudes stay continuous around the centre (past 180 near the antimeridian).
    """
    if not radius_km > 0:
        raise ValueError(f"radius_km must be > 0, got {radius_km!r}")
    azimuths = np.linspace(0.0, 360.0, CIRCLE_VERTICES, endpoint=False)
    x, y, _ = _WGS84.fwd(np.full(CIRCLE_VERTICES, lon), np.full(CIRCLE_VERTICES, lat),
                         azimuths, np.full(CIRCLE_VERTICES, radius_km * 1000.0))
    x = lon + (np.asarray(x) - lon + 180.0) % 360.0 - 180.0
    return shapely.Polygon(np.column_stack([x, y]))


def _union(shapes: list[BaseGeometry]) -> BaseGeometry:
    merged = shapely.union_all(shapes)
    parts = [p for p in shapely.get_parts(merged) if p.geom_type == "Polygon" and p.area > 0]
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


# --------------------------------------------------------------------------- CAP messages


class _Cap:
    """Element lookups in one CAP namespace."""

    def __init__(self, namespace: str) -> None:
        self.ns = namespace

    def q(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"

    def text(self, element: Element, name: str) -> str:
        node = element.find(self.q(name))
        return (node.text or "").strip() if node is not None else ""

    def all_text(self, element: Element, name: str) -> list[str]:
        return [(n.text or "").strip() for n in element.findall(self.q(name))]

    def pairs(self, element: Element, name: str) -> list[tuple[str, str]]:
        return [(self.text(n, "valueName"), self.text(n, "value"))
                for n in element.findall(self.q(name))]


def _vocabulary(value: str, allowed: tuple[str, ...], name: str, *, strict: bool) -> str:
    word = value.strip().lower()
    if word == "very likely":
        word = "likely"
    if word in allowed:
        return word
    if strict:
        raise _ItemError(f"{name} {value[:20]!r} is not one of {', '.join(allowed)}")
    return "unknown"


def _choose_info(cap: _Cap, root: Element) -> Element | None:
    infos = root.findall(cap.q("info"))
    for info in infos:
        language = cap.text(info, "language").lower()
        if not language or language.startswith("en"):
            return info
    return infos[0] if infos else None


def _areas(cap: _Cap, info: Element | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Geometry keyword arguments for the Hazard and area properties."""
    if info is None:
        return {}, {"area_problems": (), "geocodes": (), "point_circles": ()}
    shapes: list[BaseGeometry] = []
    circles: list[tuple[float, float, float]] = []
    points: list[tuple[float, float]] = []
    problems: list[str] = []
    geocodes: list[str] = []
    for number, area in enumerate(info.findall(cap.q("area"))):
        for text in cap.all_text(area, "polygon"):
            try:
                shapes.append(cap_polygon(text))
            except ValueError as exc:
                problems.append(f"area {number} polygon: {exc}")
        for text in cap.all_text(area, "circle"):
            try:
                lon, lat, radius = cap_circle(text)
            except ValueError as exc:
                problems.append(f"area {number} circle: {exc}")
                continue
            if radius > 0:
                circles.append((lon, lat, radius))
            else:
                points.append((lon, lat))
        geocodes.extend(f"{name}={value}" for name, value in cap.pairs(area, "geocode"))
    properties = {"area_problems": tuple(problems), "geocodes": tuple(geocodes),
                  "point_circles": tuple(points)}
    if not shapes and len(circles) == 1:
        lon, lat, radius = circles[0]
        return ({"center_lon": lon, "center_lat": lat, "radius_km": radius,
                 "geometry_method": "radius"}, properties)
    if shapes or circles:
        drawn = shapes + [geodesic_circle_polygon(*c) for c in circles]
        return ({"geometry": _union(drawn),
                 "geometry_method": "polygon" if shapes else "radius"}, properties)
    return {}, properties


def _cap_hazard(root: Element) -> Hazard:
    cap = _Cap(root.tag[1:].split("}", 1)[0])
    identifier = cap.text(root, "identifier")
    if not identifier or any(c.isspace() or c in ",<&" for c in identifier):
        raise _ItemError(f"identifier missing or malformed: {identifier[:60]!r}")
    sender = cap.text(root, "sender")
    if not sender:
        raise _ItemError("no sender")
    sent = _iso_time(cap.text(root, "sent"), "sent")
    if sent is None:
        raise _ItemError("no sent time")
    status = _vocabulary(cap.text(root, "status"), STATUSES, "status", strict=True)
    msg_type = _vocabulary(cap.text(root, "msgType"), MESSAGE_TYPES, "msgType", strict=True)
    supersedes = []
    for triple in cap.text(root, "references").split():
        parts = triple.split(",")
        if len(parts) == 3 and parts[1]:
            supersedes.append(f"{SOURCE}:{parts[1]}")
        else:
            logger.info("tsunami: %s: ignored malformed reference %r", identifier, triple[:80])

    info = _choose_info(cap, root)
    geo, area_props = _areas(cap, info)
    fields: dict[str, Any] = {}
    properties: dict[str, Any] = {
        "identifier": identifier, "sender": sender, "source": cap.text(root, "source"),
        "scope": cap.text(root, "scope"), "code": tuple(cap.all_text(root, "code")),
        "incidents": cap.text(root, "incidents"), **area_props,
    }
    if info is not None:
        event = cap.text(info, "event")
        event_codes = dict(cap.pairs(info, "eventCode"))
        parameters = dict(cap.pairs(info, "parameter"))
        effective = _iso_time(cap.text(info, "effective"), "effective") or sent
        fields = {
            "event": event or "Tsunami message",
            "severity": _vocabulary(cap.text(info, "severity"), SEVERITIES, "severity",
                                    strict=False),
            "urgency": _vocabulary(cap.text(info, "urgency"), URGENCIES, "urgency",
                                   strict=False),
            "certainty": _vocabulary(cap.text(info, "certainty"), CERTAINTIES, "certainty",
                                     strict=False),
            "source_severity": event_codes.get("TsunamiSystemCategory") or event,
            "effective": effective,
            "onset": _iso_time(cap.text(info, "onset"), "onset"),
            "expires": _iso_time(cap.text(info, "expires"), "expires"),
            "headline": cap.text(info, "headline"),
            "description": cap.text(info, "description"),
            "instruction": cap.text(info, "instruction"),
            "area_desc": "; ".join(d for area in info.findall(cap.q("area"))
                                   if (d := cap.text(area, "areaDesc"))),
            "url": cap.text(info, "web"),
        }
        properties.update(
            event_codes=event_codes, parameters=parameters,
            response_type=tuple(cap.all_text(info, "responseType")),
            sender_name=cap.text(info, "senderName"),
            categories=tuple(cap.all_text(info, "category")),
        )
    else:
        fields = {"event": f"Tsunami message ({msg_type})", "effective": sent}
    try:
        return Hazard(hazard_id=f"{SOURCE}:{identifier}", source=SOURCE, category="tsunami",
                      status=status, message_type=msg_type, supersedes=tuple(supersedes),
                      sent=sent, properties=properties, **fields, **geo)
    except ValueError as exc:
        raise _ItemError(str(exc)) from exc


def _is_cap(root: Element) -> bool:
    return any(root.tag == f"{{{ns}}}alert" for ns in CAP_NAMESPACES)


def _cap_result(root: Element) -> ParseResult:
    try:
        hazard = _cap_hazard(root)
    except _ItemError as exc:
        problem = f"alert 0: {exc}"
        logger.warning("tsunami: skipped %s", problem)
        return ParseResult((), skipped=1, problems=(problem,))
    return ParseResult((hazard,), unplaced=int(not hazard.is_placed))


def parse_cap(payload: bytes | str, *, now: datetime) -> ParseResult:
    """The hazard of one CAP 1.2 (or 1.1) ``<alert>`` document.

    A message that cannot be used (no identifier, bad ``sent``, unknown status) is skipped and
    counted; a payload that is not a CAP alert raises :class:`FeedFormatError`.
    """
    check_now(now)
    root = parse_xml(payload, "CAP")
    if not _is_cap(root):
        raise FeedFormatError(f"CAP: root element is {root.tag!r}, not a CAP alert")
    return _cap_result(root)


# --------------------------------------------------------------------------- Atom feeds


def _cap_link(entry: Element) -> str:
    links = entry.findall(f"{{{ATOM}}}link")
    for link in links:
        if link.get("type", "").lower() == "application/cap+xml" and link.get("href"):
            return link.get("href", "").strip()
    for link in links:
        href = link.get("href", "").strip()
        if link.get("rel") == "related" and "cap" in link.get("title", "").lower() and href:
            return href
    for link in links:
        href = link.get("href", "").strip()
        if href.lower().endswith("cap.xml"):
            return href
    return ""


def _atom_result(root: Element) -> AtomFeed:
    entries: list[AtomEntry] = []
    problems: list[str] = []
    for index, entry in enumerate(root.findall(f"{{{ATOM}}}entry")):
        entry_id = (entry.findtext(f"{{{ATOM}}}id") or "").strip()
        href = _cap_link(entry)
        if not href:
            problems.append(f"entry {index} ({entry_id[:60] or 'no id'}): no CAP link")
            continue
        try:
            updated = _iso_time(entry.findtext(f"{{{ATOM}}}updated") or "", "updated")
        except _ItemError:
            updated = None
        entries.append(AtomEntry(entry_id, (entry.findtext(f"{{{ATOM}}}title") or "").strip(),
                                 updated, href))
    for line in problems:
        logger.warning("tsunami: skipped %s", line)
    return AtomFeed(tuple(entries), skipped=len(problems), problems=tuple(problems))


def parse_atom(payload: bytes | str, *, now: datetime) -> AtomFeed:
    """The entries of a tsunami centre's Atom feed and the CAP document each links.

    Entries without a CAP link are skipped and counted; a payload that is not an Atom feed
    raises :class:`FeedFormatError`. Links are returned as written (resolve relative ones
    against the feed's URL).
    """
    check_now(now)
    root = parse_xml(payload, "Atom")
    if root.tag != f"{{{ATOM}}}feed":
        raise FeedFormatError(f"Atom: root element is {root.tag!r}, not an Atom feed")
    return _atom_result(root)


# --------------------------------------------------------------------------- fetch


def _trusted(url: str, feed_url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    if host == (urlsplit(feed_url).hostname or "").lower():
        return True
    return any(host == d or host.endswith("." + d) for d in TRUSTED_DOMAINS)


def _merge(results: list[ParseResult]) -> ParseResult:
    hazards: dict[str, Hazard] = {}
    for result in results:
        for hazard in result.hazards:
            hazards.setdefault(hazard.hazard_id, hazard)
    return ParseResult(
        tuple(hazards.values()), skipped=sum(r.skipped for r in results),
        unplaced=sum(not h.is_placed for h in hazards.values()),
        problems=tuple(p for r in results for p in r.problems),
    )


def _from_feed(ctx: FetchContext, feed_url: str, feed: AtomFeed) -> list[ParseResult]:
    results = [ParseResult((), skipped=feed.skipped, problems=feed.problems)]
    for entry in feed.entries:
        url = urljoin(feed_url, entry.cap_url)
        if not _trusted(url, feed_url):
            results.append(ParseResult((), skipped=1, problems=(
                f"entry {entry.entry_id[:60]}: CAP link to an untrusted host",)))
            continue
        key = f"tsunami:cap:{url}"
        body = ctx.cache.get(key, max_age_s=CAP_CACHE_S, now=ctx.now)
        fresh = body is None
        try:
            if body is None:
                body = ctx.client.get(url, expect="xml").body
            result = parse_cap(body, now=ctx.now)
        except (FeedRejected, FeedFormatError) as exc:  # FeedUnavailable fails the poll
            logger.warning("tsunami: CAP document %s unusable: %s", url, exc)
            results.append(ParseResult((), skipped=1, problems=(
                f"entry {entry.entry_id[:60]}: CAP document unusable: {exc}",)))
            continue
        if fresh:
            ctx.cache.put(key, body, now=ctx.now)
        results.append(result)
    return results


def fetch(ctx: FetchContext) -> ParseResult:
    """Poll every tsunami feed in ``settings.tsunami_urls`` and the CAP documents they link.

    A feed that cannot be fetched, or a CAP document that cannot be reached, fails the poll
    (the last good snapshot stays); a CAP link that is refused (4xx) or not CAP is counted.
    """
    urls = [u.strip() for u in ctx.settings.tsunami_urls.split(",") if u.strip()]
    results: list[ParseResult] = []
    for feed_url in urls:
        root = parse_xml(ctx.client.get(feed_url, expect="xml").body, feed_url)
        if _is_cap(root):
            results.append(_cap_result(root))
        elif root.tag == f"{{{ATOM}}}feed":
            results.extend(_from_feed(ctx, feed_url, _atom_result(root)))
        else:
            raise FeedFormatError(f"{feed_url}: neither an Atom feed nor a CAP alert "
                                  f"(root element {root.tag!r})")
    return _merge(results)
