"""OpenFEMA disaster declarations (``DisasterDeclarationsSummaries`` v2) as declared areas.

A row is one designated area of one declaration; the hazard is the declaration
(``femaDeclarationString``, e.g. ``DR-4649-PR``), id ``fema:DR-4649-PR``, its area the union of
the bundled shapes of its designated areas, ``geometry_method="declaration"``, category
``declaration``.

Designated areas:

- a county (or county equivalent: parish, borough, municipio, independent city):
  ``fipsStateCode`` + ``fipsCountyCode`` make the 5-digit FIPS code looked up in the bundled
  2018/2022 county boundaries. The row is taken as the county when ``placeCode`` is ``99`` +
  the county code (OpenFEMA's convention), or when ``designatedArea`` (without its
  parenthesis) is the bundled county's name: Virginia's independent cities carry a place code
  of their own ("Fredericksburg", 51630). Codes retired since (Shannon SD 46113, Wade Hampton
  AK 02270, Bedford city VA 51515) are read as their successors (:data:`FIPS_SUCCESSORS`);
- statewide: ``fipsCountyCode`` ``000`` with ``designatedArea`` "Statewide" -> the state's
  (or territory's) boundary;
- anything else (tribal areas, which carry their own ``placeCode``, sometimes with the code
  of a county they lie in, e.g. "Mashpee Wampanoag Tribe" with Barnstable's 001; and codes
  the bundle lacks) is *unplaced*: listed in ``properties["unplaced_areas"]``,
  never widened to a whole county. A declaration with no placed area at all is kept without
  geometry and counted in :attr:`ParseResult.unplaced`.

Severity (CAP): ``DR`` (major disaster) ``severe``; ``EM`` (emergency) and ``FM`` (fire
management assistance) ``moderate``. Certainty ``observed``.

Times: ``onset`` = ``incidentBeginDate``; ``ends`` = ``incidentEndDate`` (None while the
incident period is open); ``sent``/``effective`` = ``declarationDate``. Active window: a
declaration is active until its incident period closes; while ``incidentEndDate`` is null it
expires :data:`OPEN_WINDOW_DAYS` after ``declarationDate`` (FEMA often leaves the field null for
years, and a declaration months old is recovery, not a hazard to people).

Paging (OpenFEMA v2): ``$filter``, ``$orderby``, ``$top`` (at most 1,000 a page), ``$skip``,
``$inlinecount=allpages`` (total in ``metadata.count``). :func:`fetch` asks for declarations
of the last :data:`LOOKBACK_DAYS` days, or with an incident period that ends after ``now``,
and stops at a short page, at ``metadata.count``, or at :data:`MAX_PAGES` (then it fails:
all or nothing, the poller keeps the last good snapshot).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from feeds import FeedError, FeedFormatError
from feeds.base import FetchContext
from feeds.model import Hazard, ParseResult, check_now, parse_iso_utc
from layers.geography import Geography, UnknownAreaError, load_geography

logger = logging.getLogger(__name__)

SOURCE = "fema"
ENTITY = "DisasterDeclarationsSummaries"

#: How long a declaration whose incident period has no end date stays active.
OPEN_WINDOW_DAYS = 30
#: How far back :func:`fetch` asks for declarations.
LOOKBACK_DAYS = 90
PAGE_SIZE = 1000
MAX_PAGES = 20

#: declarationType -> (event, CAP severity).
DECLARATION_TYPES: Mapping[str, tuple[str, str]] = {
    "DR": ("Major Disaster Declaration", "severe"),
    "EM": ("Emergency Declaration", "moderate"),
    "FM": ("Fire Management Assistance Declaration", "moderate"),
}

#: County FIPS codes retired after a rename or merger -> the code that covers the same land.
FIPS_SUCCESSORS: Mapping[str, str] = {
    "46113": "46102",  # Shannon County SD -> Oglala Lakota County (2015)
    "02270": "02158",  # Wade Hampton Census Area AK -> Kusilvak Census Area (2015)
    "51515": "51019",  # Bedford city VA -> Bedford County (2013)
}

_DECLARATION = re.compile(r"^(DR|EM|FM)-\d{1,5}-[A-Z]{2}$")
_STATE_FIPS = re.compile(r"^\d{2}$")
_COUNTY_FIPS = re.compile(r"^\d{3}$")
_USPS = re.compile(r"^[A-Z]{2}$")


@functools.lru_cache(maxsize=1)
def _bundled_geography() -> Geography:
    return load_geography()


def _time(row: Mapping[str, Any], name: str, *, required: bool) -> datetime | None:
    value = row.get(name)
    if value is None and not required:
        return None
    return parse_iso_utc(value, name)


def _text(row: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} missing, got {value!r}")
    text = value.strip()
    if pattern is not None and not pattern.match(text):
        raise ValueError(f"{name} has an unexpected form: {value!r}")
    return text


@dataclasses.dataclass(frozen=True)
class _Row:
    """One validated designated-area row."""

    declaration: str
    declaration_type: str
    disaster_number: int
    state: str
    title: str
    incident_type: str
    declared: datetime
    begins: datetime | None
    ends: datetime | None
    area_name: str
    state_fips: str
    county_fips: str
    place_code: str
    programs: tuple[str, ...]
    request_number: str
    last_refresh: datetime | None


def _row(item: Any) -> _Row:
    """A row checked field by field (``ValueError`` names the field)."""
    if not isinstance(item, Mapping):
        raise ValueError(f"a row must be an object, got {type(item).__name__}")
    declaration = _text(item, "femaDeclarationString", _DECLARATION)
    declaration_type = _text(item, "declarationType")
    if declaration_type not in DECLARATION_TYPES or not declaration.startswith(declaration_type):
        raise ValueError(f"declarationType {declaration_type!r} does not fit {declaration}")
    number = item.get("disasterNumber")
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"disasterNumber must be an integer, got {number!r}")
    place = item.get("placeCode")
    programs = tuple(name for name, key in (
        ("IH", "ihProgramDeclared"), ("IA", "iaProgramDeclared"),
        ("PA", "paProgramDeclared"), ("HM", "hmProgramDeclared")) if item.get(key) is True)
    request = item.get("declarationRequestNumber")
    declared = _time(item, "declarationDate", required=True)
    if declared > datetime.max.replace(tzinfo=timezone.utc) - timedelta(days=OPEN_WINDOW_DAYS):
        raise ValueError(f"declarationDate is too late to be open for {OPEN_WINDOW_DAYS} days, "
                         f"got {item.get('declarationDate')!r}")
    return _Row(
        declaration=declaration,
        declaration_type=declaration_type,
        disaster_number=number,
        state=_text(item, "state", _USPS),
        title=_text(item, "declarationTitle"),
        incident_type=_text(item, "incidentType"),
        declared=declared,  # type: ignore[arg-type]
        begins=_time(item, "incidentBeginDate", required=False),
        ends=_time(item, "incidentEndDate", required=False),
        area_name=_text(item, "designatedArea"),
        state_fips=_text(item, "fipsStateCode", _STATE_FIPS),
        county_fips=_text(item, "fipsCountyCode", _COUNTY_FIPS),
        place_code=str(place).strip() if isinstance(place, str | int) else "",
        programs=programs,
        request_number=str(request) if isinstance(request, str | int) else "",
        last_refresh=_time(item, "lastRefresh", required=False),
    )


def _name_key(name: str) -> str:
    """A name without its parenthesis, accents, case and punctuation ("Cataño" = "Catano")."""
    text = name.split(" (", 1)[0]
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text.lower())


def county_code(county_fips: str, state_fips: str, place_code: str, area_name: str,
                county_names: Mapping[str, str]) -> str | None:
    """The bundled county FIPS a designated area stands for, or None (statewide, tribal...).

    ``county_names`` maps bundled FIPS codes to county names; see the module docstring.
    """
    if county_fips == "000":
        return None
    code = state_fips + county_fips
    code = FIPS_SUCCESSORS.get(code, code)
    if place_code == f"99{county_fips}":
        return code
    bundled = county_names.get(code)
    if bundled is not None and _name_key(bundled) == _name_key(area_name):
        return code
    return None


def _is_statewide(county_fips: str, area_name: str) -> bool:
    return county_fips == "000" and area_name.strip().lower() == "statewide"


def _area(rows: list[_Row], geography: Geography, county_names: Mapping[str, str]
          ) -> tuple[BaseGeometry | None, list[str], list[str], list[str]]:
    """Union of the placed areas, and the county codes, statewide codes and unplaced names."""
    counties: list[str] = []
    statewide: list[str] = []
    unplaced: list[str] = []
    for row in rows:
        code = county_code(row.county_fips, row.state_fips, row.place_code, row.area_name,
                           county_names)
        if code is not None:
            counties.append(code)
        elif _is_statewide(row.county_fips, row.area_name):
            statewide.append(row.state)
        else:
            unplaced.append(row.area_name)
    pieces: list[BaseGeometry] = []
    if counties:
        union, missing = geography.counties_geometry(list(dict.fromkeys(counties)))
        if not union.is_empty:
            pieces.append(union)
        for code in missing:
            unplaced.append(f"county {code}")
        counties = [c for c in counties if c not in missing]
    for code in list(dict.fromkeys(statewide)):
        try:
            pieces.append(geography.state_geometry(code))
        except UnknownAreaError:
            unplaced.append(f"statewide {code}")
    geometry = None
    if pieces:
        merged = shapely.union_all(pieces)
        polygons = [p for p in shapely.get_parts(shapely.get_parts(merged))
                    if p.geom_type == "Polygon" and not p.is_empty]
        if len(polygons) == 1:
            geometry = polygons[0]
        elif polygons:
            geometry = shapely.MultiPolygon(polygons)
            if not geometry.is_valid:
                geometry = shapely.union_all(polygons)
    return (geometry, list(dict.fromkeys(counties)), list(dict.fromkeys(statewide)),
            list(dict.fromkeys(unplaced)))


def _iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 text: properties hold JSON values only (the store keeps them so)."""
    return None if value is None else value.isoformat()


def _hazard(rows: list[_Row], geography: Geography, county_names: Mapping[str, str]
            ) -> Hazard:
    first = rows[0]
    event, severity = DECLARATION_TYPES[first.declaration_type]
    geometry, counties, statewide, unplaced = _area(rows, geography, county_names)
    expires = None
    if first.ends is None:
        expires = first.declared + timedelta(days=OPEN_WINDOW_DAYS)
    names = list(dict.fromkeys(row.area_name for row in rows))
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return Hazard(
        hazard_id=f"{SOURCE}:{first.declaration}",
        source=SOURCE,
        event=event,
        category="declaration",
        severity=severity,
        urgency="unknown",
        certainty="observed",
        source_severity=first.declaration_type,
        sent=first.declared,
        effective=first.declared,
        onset=first.begins,
        expires=expires,
        ends=first.ends,
        headline=f"{first.declaration}: {first.title} ({first.incident_type})",
        area_desc=f"{first.state}: {shown}",
        url=f"https://www.fema.gov/disaster/{first.disaster_number}",
        geometry=geometry,
        geometry_method="declaration" if geometry is not None else None,
        properties={
            "declaration": first.declaration,
            "disaster_number": first.disaster_number,
            "declaration_type": first.declaration_type,
            "incident_type": first.incident_type,
            "title": first.title,
            "state": first.state,
            "designated_areas": tuple(names),
            "counties": tuple(counties),
            "statewide": tuple(statewide),
            "unplaced_areas": tuple(unplaced),
            "programs": first.programs,
            "request_number": first.request_number,
            "last_refresh": _iso(max((r.last_refresh for r in rows if r.last_refresh),
                                     default=None)),
        },
    )


def _rows(payload: Any) -> list[Any]:
    if not isinstance(payload, Mapping):
        raise FeedFormatError(f"OpenFEMA payload must be a JSON object, got "
                              f"{type(payload).__name__}")
    rows = payload.get(ENTITY)
    if not isinstance(rows, list):
        raise FeedFormatError(f"OpenFEMA payload has no {ENTITY} list")
    return rows


def parse_declarations(payload: Any, *, now: datetime,
                       geography: Geography | None = None) -> ParseResult:
    """Hazards of a ``DisasterDeclarationsSummaries`` payload, one per declaration.

    ``geography`` defaults to the bundled boundaries. Malformed rows are skipped and counted;
    a payload without the entity list raises :class:`FeedFormatError`.
    """
    check_now(now)
    items = _rows(payload)
    geography = geography if geography is not None else _bundled_geography()
    grouped: dict[str, list[_Row]] = {}
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            row = _row(item)
        except ValueError as exc:
            problems.append(f"{ENTITY}[{index}]: {exc}")
            continue
        grouped.setdefault(row.declaration, []).append(row)
    for line in problems:
        logger.warning("fema: skipped %s", line)
    county_names = dict(zip(geography.counties["fips"].astype(str),
                            geography.counties["name"].astype(str), strict=True))
    hazards = tuple(_hazard(rows, geography, county_names) for rows in grouped.values())
    unplaced = sum(1 for h in hazards if not h.is_placed)
    logger.info("fema: %d rows, %d declarations, %d unplaced, %d skipped", len(items),
                len(hazards), unplaced, len(problems))
    return ParseResult(hazards=hazards, skipped=len(problems), unplaced=unplaced,
                       problems=tuple(problems))


# -------------------------------------------------------------------------------- fetch


def _odata_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def query_params(now: datetime, skip: int, *, lookback_days: int | None = None,
                 page_size: int | None = None) -> dict[str, str]:
    """OpenFEMA query parameters of one page of recent (or still open) declarations."""
    check_now(now)
    lookback_days = LOOKBACK_DAYS if lookback_days is None else lookback_days
    page_size = PAGE_SIZE if page_size is None else page_size
    if not isinstance(skip, int) or skip < 0:
        raise ValueError(f"skip must be an integer >= 0, got {skip!r}")
    if not 1 <= page_size <= 1000:
        raise ValueError(f"page_size must be from 1 to 1000, got {page_size!r}")
    since = now - timedelta(days=lookback_days)
    return {
        "$filter": (f"declarationDate ge '{_odata_time(since)}' "
                    f"or incidentEndDate ge '{_odata_time(now)}'"),
        "$orderby": "declarationDate desc,id",
        "$top": str(page_size),
        "$skip": str(skip),
        "$inlinecount": "allpages",
    }


def total_count(payload: Any) -> int | None:
    """``metadata.count`` when the server filled it in (it is 0 without ``$inlinecount``)."""
    metadata = payload.get("metadata") if isinstance(payload, Mapping) else None
    count = metadata.get("count") if isinstance(metadata, Mapping) else None
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return count
    return None


def fetch(ctx: FetchContext) -> ParseResult:
    """Recent declarations, all pages, then one parse; any failed page fails the poll."""
    rows: list[Any] = []
    metadata: Any = None
    for page in range(1, MAX_PAGES + 1):
        fetched = ctx.client.get(ctx.settings.fema_url,
                                 params=query_params(ctx.now, len(rows)), expect="json")
        if fetched.status == "not_modified":  # validators offered by the poller
            raise FeedError(f"OpenFEMA page {page} not modified: nothing to parse")
        try:
            payload = json.loads(fetched.body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FeedFormatError(f"OpenFEMA page {page} is not JSON: {exc}") from exc
        page_rows = _rows(payload)
        rows.extend(page_rows)
        metadata = payload.get("metadata", metadata)
        count = total_count(payload)
        if len(page_rows) < PAGE_SIZE or (count is not None and len(rows) >= count):
            logger.info("fema: %d rows in %d page(s)", len(rows), page)
            return parse_declarations({"metadata": metadata, ENTITY: rows}, now=ctx.now)
    raise FeedFormatError(f"OpenFEMA needs more than {MAX_PAGES} pages of {PAGE_SIZE}; "
                          "not polled")
