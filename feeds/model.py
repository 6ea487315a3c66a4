"""The normalised hazard record every feed parser produces.

A payload becomes :class:`Hazard` records right where it enters: UTC-aware datetimes, shapely
geometry in EPSG:4326 (Polygon or MultiPolygon), CAP vocabularies for severity, urgency and
certainty (each source's own value kept in ``source_severity``), and a stable id
``"<source>:<native id>"`` so the same alert keeps its id across polls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

SOURCES: tuple[str, ...] = ("nws", "usgs", "nhc", "wildfire", "fema", "gdacs", "tsunami",
                            "drill")

CATEGORIES: tuple[str, ...] = ("weather", "flood", "fire", "earthquake", "tropical_cyclone",
                               "tsunami", "declaration", "other")

# CAP 1.2 vocabularies (lower case), most severe / urgent / certain first.
SEVERITIES: tuple[str, ...] = ("extreme", "severe", "moderate", "minor", "unknown")
URGENCIES: tuple[str, ...] = ("immediate", "expected", "future", "past", "unknown")
CERTAINTIES: tuple[str, ...] = ("observed", "likely", "possible", "unlikely", "unknown")
STATUSES: tuple[str, ...] = ("actual", "exercise", "test", "system", "draft")
MESSAGE_TYPES: tuple[str, ...] = ("alert", "update", "cancel", "ack", "error")

# How the geometry was obtained.
GEOMETRY_METHODS: tuple[str, ...] = ("polygon", "zone", "county", "radius", "contours",
                                     "declaration")


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_time(name: str, value: datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime or None, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be a UTC-aware datetime, got {value!r}")


def check_now(now: datetime) -> None:
    """Parsers take ``now`` as a parameter; it must be a UTC-aware datetime."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() != timedelta(0):
        raise ValueError(f"now must be a UTC-aware datetime, got {now!r}")


def parse_iso_utc(value: Any, name: str) -> datetime:
    """An ISO 8601 time with an offset (``Z`` allowed), as UTC; ValueError naming ``name``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be an ISO 8601 time, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name} has no UTC offset: {value!r}")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 lies before year 1 in UTC
        raise ValueError(f"{name} is out of range in UTC: {value!r}") from None


@dataclasses.dataclass(frozen=True)
class Hazard:
    """One hazard from one source, normalised. Construct through a parser, never half-filled."""

    hazard_id: str                  # "<source>:<native id>", stable across polls
    source: str                     # one of SOURCES
    event: str                      # "Tornado Warning", "M 6.4 - 10 km NE of Ridgecrest, CA"
    category: str                   # one of CATEGORIES
    severity: str = "unknown"       # CAP, one of SEVERITIES
    urgency: str = "unknown"        # CAP, one of URGENCIES
    certainty: str = "unknown"      # CAP, one of CERTAINTIES
    source_severity: str = ""       # the source's own scale, e.g. "PAGER orange", "Cat 4"
    status: str = "actual"          # one of STATUSES
    message_type: str = "alert"     # one of MESSAGE_TYPES
    supersedes: tuple[str, ...] = ()  # hazard ids this one updates or cancels
    sent: datetime | None = None
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    ends: datetime | None = None
    headline: str = ""
    description: str = ""
    instruction: str = ""
    area_desc: str = ""
    url: str = ""
    geometry: BaseGeometry | None = None   # Polygon or MultiPolygon, EPSG:4326, or None
    geometry_method: str | None = None     # one of GEOMETRY_METHODS when geometry is set
    center_lon: float | None = None        # radius hazards: geodesic circle (WGS 84)
    center_lat: float | None = None
    radius_km: float | None = None
    properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.hazard_id or not self.hazard_id.startswith(f"{self.source}:"):
            raise ValueError(
                f"hazard_id must start with '{self.source}:' (the source), got {self.hazard_id!r}"
            )
        _check("source", self.source, SOURCES)
        _check("category", self.category, CATEGORIES)
        _check("severity", self.severity, SEVERITIES)
        _check("urgency", self.urgency, URGENCIES)
        _check("certainty", self.certainty, CERTAINTIES)
        _check("status", self.status, STATUSES)
        _check("message_type", self.message_type, MESSAGE_TYPES)
        for name in ("sent", "effective", "onset", "expires", "ends"):
            _check_time(name, getattr(self, name))
        if self.geometry is not None:
            if self.geometry.geom_type not in ("Polygon", "MultiPolygon"):
                raise ValueError(
                    f"geometry must be a Polygon or MultiPolygon, got {self.geometry.geom_type}"
                )
            if self.geometry_method is None:
                raise ValueError("geometry_method must say how a geometry was obtained")
        if self.geometry_method is not None:
            _check("geometry_method", self.geometry_method, GEOMETRY_METHODS)
        radius = (self.center_lon, self.center_lat, self.radius_km)
        if any(v is not None for v in radius):
            if any(v is None for v in radius):
                raise ValueError("center_lon, center_lat and radius_km go together")
            lon, lat = float(self.center_lon), float(self.center_lat)  # type: ignore[arg-type]
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError("center_lon/center_lat must be valid WGS 84 coordinates")
            if not self.radius_km > 0:  # type: ignore[operator]
                raise ValueError(f"radius_km must be > 0, got {self.radius_km}")
        if not isinstance(self.properties, MappingProxyType):
            object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))
        object.__setattr__(self, "supersedes", tuple(self.supersedes))

    @property
    def is_placed(self) -> bool:
        """Whether the hazard has an area to test locations against."""
        return self.geometry is not None or self.radius_km is not None

    def active(self, now: datetime) -> bool:
        """Not cancelled and not yet expired (or ended) at ``now``."""
        _check_time("now", now)
        if self.message_type == "cancel":
            return False
        end = self.ends or self.expires
        return end is None or end > now

    def geometry_digest(self) -> str:
        """A short digest of the area (geometry or circle), for caches and change detection."""
        digest = hashlib.sha256()
        if self.geometry is not None:
            digest.update(shapely.to_wkb(self.geometry, hex=False))
        if self.radius_km is not None:
            digest.update(json.dumps([self.center_lon, self.center_lat, self.radius_km]).encode())
        return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class ParseResult:
    """What a parser made of one payload: the hazards, and what it could not use (counted)."""

    hazards: tuple[Hazard, ...]
    skipped: int = 0                  # items that could not be parsed (malformed)
    unplaced: int = 0                 # items parsed but without any area (counted, kept)
    problems: tuple[str, ...] = ()    # one short line per skipped item: index and reason
