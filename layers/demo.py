"""A synthetic demo roster: about 2,600 foreign missions and 124,000 members and dependents.

Everything about the people is invented: names are random given/family-name combinations
drawn from Faker's per-locale lists, street addresses are Faker street names with random
numbers, phones are in the range reserved for fiction (``+1 AAA-555-01NN``) and e-mails
are at ``example.org``. No record describes a real person.

The missions are a plausible picture, not an official list:

- Real facts: the coordinates and kinds of about 250 embassies and consulates come from
  Wikidata (CC0, bundled as ``data/demo/wikidata_missions_us.csv``); the city centres in
  ``data/demo/cities.csv`` are real places; ZIP codes and their cities come from the
  ``zipcodes`` package.
- Illustrative: which states keep an embassy, a UN mission, consulates and honorary
  consuls (``data/demo/presence.csv``), the international-organisation and other offices
  (``data/demo/offices.csv``), every staff count, household and immunity.

International-organisation offices have no sending state: their ``country_code`` is
``"XXX"`` and their ``country_name`` "International organisation". Kosovo uses the
user-assigned code ``"XKX"``.

Every location (mission or residence) lies on land inside the jurisdiction in its row, as
:func:`layers.geography.load_geography` draws the boundaries, with one exception: the
Marshall Islands polygons are thin Natural Earth atoll slivers that miss the real Majuro
shoreline by about a kilometre, so MH locations are only within
:data:`ATOLL_TOLERANCE_KM` of them (and within :data:`ATOLL_RESIDENCE_KM` of the mission or
city they belong to).

Determinism: one ``numpy.random.default_rng(seed)`` drives every draw and each Faker locale
is seeded from the same seed, so a seed always gives the same two frames.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zipcodes
from faker import Faker
from faker.decode import unidecode
from faker.providers.person import Provider as _BasePersonProvider

from layers.geography import load_geography
from layers.locations import load_countries
from layers.schema import (
    CONTIGUOUS_STATES,
    JURISDICTIONS,
    MISSION_COLUMNS,
    PERSON_COLUMNS,
    ofm_office_for,
)
from settings import BUNDLED_DATA_DIR

logger = logging.getLogger(__name__)

DEMO_DIR = BUNDLED_DATA_DIR / "demo"

DEFAULT_SEED = 20261127
TARGET_MISSIONS = 2_600
TARGET_PEOPLE = 124_000
NO_SENDING_STATE = "XXX"
IO_COUNTRY_NAME = "International organisation"
# The Marshall Islands are atoll slivers in the bundled boundaries (see the module docstring).
ATOLL_TOLERANCE_KM = 10.0
ATOLL_RESIDENCE_KM = 2.0
ATOLL_JURISDICTIONS = ("MH",)

_KM_PER_DEG = 111.32
_MAINLAND = frozenset((*CONTIGUOUS_STATES, "DC"))
_COVERED = frozenset(JURISDICTIONS)

# Mission types in the order the roster lists them (and numbers their ids).
_TYPE_ORDER = (
    "embassy", "un_permanent_mission", "io_office", "other_office",
    "consulate_general", "consulate", "honorary_consulate",
)

# Areas of real diplomatic clusters, as (south, north, west, east) boxes.
_EMBASSY_ROW = (38.905, 38.945, -77.075, -77.035)      # Kalorama, Dupont, Van Ness, Cleveland Park
_UN_AREA = (40.745, 40.760, -73.985, -73.965)          # East Midtown around the UN headquarters
# The East River shore near the UN, approximated by a line through two points (lat, lon);
# UN-area points stay at least _UN_SHORE_MARGIN degrees of longitude west of it.
_UN_SHORE = ((40.745, -73.9715), (40.760, -73.9575))
_UN_SHORE_MARGIN = 0.0020

# Wikidata operator labels that differ from data/countries.csv names.
_OPERATOR_ALIASES = {
    "People's Republic of China": "CHN", "Republic of Ireland": "IRL", "The Bahamas": "BHS",
    "The Gambia": "GMB", "East Timor": "TLS", "Ivory Coast": "CIV", "Cape Verde": "CPV",
    "Czech Republic": "CZE", "Vatican": "VAT", "Turkey": "TUR", "Republic of the Congo": "COG",
    "Federated States of Micronesia": "FSM", "Government of Sweden": "SWE", "Quebec": "CAN",
    "European Parliament": NO_SENDING_STATE, "United States of America": "USA",
}
# Wikidata places that are not a city of data/demo/cities.csv (or not a unique one).
_PLACE_ALIASES = {
    "Washington, D.C.": ("Washington", "DC"), "West End": ("Washington", "DC"),
    "New York City": ("New York", "NY"), "Manhattan": ("New York", "NY"),
    "New York": ("New York", "NY"), "Texas": ("Houston", "TX"), "Illinois": ("Chicago", "IL"),
    "Cambridge": ("Cambridge", "MA"), "Portland": ("Portland", "OR"),
}
_WIKIDATA_KINDS = {
    "embassy": "embassy", "apostolic nunciature": "embassy", "Interests Section": "embassy",
    "de facto embassy": "tecro",
    "consulate general": "consulate_general", "Consulate General of Sweden": "consulate_general",
    "consulate": "consulate", "consular office": "consulate",
    "honorary consulate": "honorary_consulate", "consulates of Sweden": "honorary_consulate",
    "de facto consulate": "teco", "Quebec Government Office": "other_office",
    "liaison office": "io_office",
}
# Sending states whose Wikidata "Interests Section" is an embassy again (Cuba, since 2015);
# the others (Iran) stay an other_office.
_INTERESTS_SECTION_EMBASSY = frozenset({"CUB"})

# Names that read "the X" after "Embassy of".
_WITH_ARTICLE = frozenset({
    "Bahamas", "Gambia", "Netherlands", "Philippines", "United Kingdom", "United Arab Emirates",
    "Central African Republic", "Democratic Republic of the Congo", "Dominican Republic",
    "Marshall Islands", "Solomon Islands", "Comoros", "Maldives", "Seychelles", "Holy See",
})
_OBSERVERS = frozenset({"VAT", "PSE"})

# Faker locales whose names are not in Latin script. Rosters in the US spell names in Latin
# letters: Japanese and Chinese use Faker's romanised names, alphabets that transliterate well
# go through Faker's unidecode, and the rest borrow a Latin-script locale of the region.
_ROMANISED = frozenset({"ja_JP", "zh_CN", "zh_TW"})
_TRANSLITERATED = frozenset({
    "ru_RU", "bg_BG", "uk_UA", "mk_MK", "el_GR", "hy_AM", "ka_GE", "ko_KR",
})
_LATIN_STAND_IN = {
    "ar_AA": "en_PK", "ar_SA": "en_PK", "ar_PS": "en_PK", "ar_DZ": "fr_DZ", "fa_IR": "en_PK",
    "he_IL": "en_US", "th_TH": "en_TH", "bn_BD": "en_IN", "ne_NP": "en_IN", "si_LK": "en_IN",
}
_US_LOCALE = "en_US"
_POOL_GIVEN = 150
_POOL_FAMILY = 200
_POOL_STREETS = 1500

# Staff (members, dependents excluded) of a mission by type and size class 1..5: medians.
# Embassies and UN missions are then scaled together so the roster has TARGET_PEOPLE people;
# consulates keep these sizes ("tens" of people with their families).
_SCALED_STAFF = {
    "embassy": (12.0, 22.0, 40.0, 70.0, 110.0),
    "un_permanent_mission": (6.0, 11.0, 18.0, 32.0, 55.0),
}
_FIXED_STAFF = {
    "consulate_general": (6.0, 9.0, 12.0, 16.0, 22.0),
    "consulate": (3.0, 4.0, 5.0, 7.0, 9.0),
}
_STAFF_SIGMA = 0.25
_OFFICE_SIGMA = 0.05
_TECO_STAFF = 20.0
_TECRO_STAFF = 150.0
_OTHER_STAFF = 12.0
_ISLAND_EMBASSY_STAFF = 8.0  # the embassies in Majuro
_HONORARY_STAFF_P = (0.12, 0.63, 0.17, 0.08)  # 0, 1, 2 or 3 people

# Household sizes of staff sent from abroad (member + dependents), 1..6.
_FAMILY_SIZE_P = np.array([0.30, 0.22, 0.18, 0.18, 0.08, 0.04])
_HONORARY_SIZE_P = np.array([0.75, 0.25])  # the honorary consul, maybe with a spouse
_SPOUSE_P = 0.88  # the second person of a household is the spouse, else a child
_OWN_FAMILY_NAME_P = 0.25  # a spouse keeps their own family name


@dataclasses.dataclass(frozen=True)
class _Category:
    """One kind of member: role and immunity, household kind and dependents' immunity."""

    share: float
    role: str
    immunity: str
    household: str  # "family", "single" or "honorary"
    dependents: str  # immunity of the dependents
    local: bool  # locally engaged (US nationals or residents): US names, English


# Vienna Conventions in spirit: diplomatic agents and administrative/technical staff of
# embassies and UN missions and their families are immune; service staff for official acts;
# consular officers and employees for official acts, their families not; locally engaged
# staff (US nationals and permanent residents) not at all.
_CATEGORIES: dict[str, tuple[_Category, ...]] = {
    "embassy": (
        _Category(0.195, "diplomatic_agent", "full", "family", "full", False),
        _Category(0.09, "admin_technical_staff", "full", "family", "full", False),
        _Category(0.06, "service_staff", "official_acts", "family", "none", False),
        _Category(0.415, "admin_technical_staff", "none", "single", "none", True),
        _Category(0.24, "service_staff", "none", "single", "none", True),
    ),
    "un_permanent_mission": (
        _Category(0.36, "diplomatic_agent", "full", "family", "full", False),
        _Category(0.10, "admin_technical_staff", "full", "family", "full", False),
        _Category(0.05, "service_staff", "official_acts", "family", "none", False),
        _Category(0.35, "admin_technical_staff", "none", "single", "none", True),
        _Category(0.14, "service_staff", "none", "single", "none", True),
    ),
    "consulate_general": (
        _Category(0.38, "consular_officer", "official_acts", "family", "none", False),
        _Category(0.22, "admin_technical_staff", "official_acts", "family", "none", False),
        _Category(0.05, "service_staff", "none", "family", "none", False),
        _Category(0.25, "admin_technical_staff", "none", "single", "none", True),
        _Category(0.10, "service_staff", "none", "single", "none", True),
    ),
    "io_office": (
        _Category(0.03, "io_staff", "full", "family", "full", False),
        _Category(0.57, "io_staff", "official_acts", "family", "none", False),
        _Category(0.40, "io_staff", "none", "single", "none", True),
    ),
    "other_office": (
        _Category(0.55, "admin_technical_staff", "official_acts", "family", "none", False),
        _Category(0.45, "admin_technical_staff", "none", "single", "none", True),
    ),
}
_CATEGORIES["consulate"] = _CATEGORIES["consulate_general"]
_HONORARY_CONSUL = _Category(1.0, "consular_officer", "official_acts", "honorary", "none", False)
_HONORARY_CLERK = _Category(1.0, "admin_technical_staff", "none", "single", "none", True)

# Residences: log-normal commuting distance (median km, cap km) by the mission's jurisdiction.
_COMMUTE_KM = {
    "DC": (10.0, 45.0), "NY": (10.0, 40.0), "HI": (8.0, 25.0), "PR": (8.0, 30.0),
    "AK": (8.0, 40.0), "GU": (5.0, 15.0), "AS": (3.0, 8.0),
}
_COMMUTE_DEFAULT_KM = (12.0, 50.0)
_COMMUTE_HONORARY_KM = (6.0, 30.0)
_COMMUTE_SIGMA = 0.6
_PLACEMENT_ROUNDS = 25
_ZIP_MAX_KM = 15.0
_HONORARY_CITY_WEIGHT = {1: 1.0, 2: 3.0, 3: 8.0, 4: 20.0, 5: 35.0}
# Honorary consuls in the island territories come from the region around them.
# Honorary consuls in the island areas: states of the region (Pacific islands and East and
# Southeast Asia for the Pacific; the Americas and Europe for Puerto Rico).
_EAST_ASIA = ("JPN", "KOR", "PHL", "IDN", "THA", "MYS", "SGP", "VNM")
_REGIONS_FOR = {
    "GU": ("pacific", *_EAST_ASIA), "AS": ("pacific", *_EAST_ASIA),
    "MH": ("pacific", *_EAST_ASIA), "PR": ("americas", "europe"),
}
_SMALL_ISLANDS = ("GU", "AS", "MH")
# The Marshall Islands are a sovereign state: no mission of their own there.
_HOME_STATE = {"MH": "MHL"}


# --------------------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class _Inputs:
    countries: pd.DataFrame  # indexed by alpha3
    presence: pd.DataFrame  # indexed by alpha3
    cities: pd.DataFrame  # positional index = city number
    wikidata: pd.DataFrame
    offices: pd.DataFrame


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@functools.lru_cache(maxsize=1)
def _inputs() -> _Inputs:
    countries = load_countries()
    presence = _read_csv(DEMO_DIR / "presence.csv").set_index("alpha3")
    for column in ("size", "dc_embassy", "un_mission", "honorary_weight"):
        presence[column] = presence[column].astype(int)
    cities = _read_csv(DEMO_DIR / "cities.csv")
    cities["lat"] = cities["lat"].astype(float)
    cities["lon"] = cities["lon"].astype(float)
    cities["pop_class"] = cities["pop_class"].astype(int)
    return _Inputs(countries, presence, cities, _read_csv(DEMO_DIR / "wikidata_missions_us.csv"),
                   _read_csv(DEMO_DIR / "offices.csv"))


@dataclasses.dataclass(frozen=True)
class _Zips:
    """Active standard ZIP codes with a usable centroid, from the ``zipcodes`` package."""

    state: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    code: np.ndarray
    city: np.ndarray
    area_code: np.ndarray


@functools.lru_cache(maxsize=1)
def _zips() -> _Zips:
    rows = [
        (z["state"], float(z["lat"]), float(z["long"]), z["zip_code"], z["city"],
         (z.get("area_codes") or [""])[0])
        for z in zipcodes.list_all()
        if z.get("zip_code_type") == "STANDARD" and z.get("active")
        and z.get("lat") and z.get("long") and float(z["lat"]) != 0.0
    ]
    rows.sort(key=lambda r: r[3])
    state, lat, lon, code, city, area = zip(*rows, strict=True)
    return _Zips(np.array(state, dtype=object), np.array(lat), np.array(lon),
                 np.array(code, dtype=object), np.array(city, dtype=object),
                 np.array(area, dtype=object))


# --------------------------------------------------------------------------- geometry helpers


def _offset(lon: np.ndarray, lat: np.ndarray, east_km: np.ndarray, north_km: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Points moved by small east/north distances (local flat approximation)."""
    new_lat = lat + north_km / _KM_PER_DEG
    new_lon = lon + east_km / (_KM_PER_DEG * np.cos(np.radians(lat)))
    return new_lon, new_lat


def _scatter(rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray, median_km: np.ndarray,
             cap_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points at a log-normal distance (capped) in a uniform direction from each anchor."""
    n = lon.size
    dist = np.minimum(median_km * np.exp(_COMMUTE_SIGMA * rng.standard_normal(n)), cap_km)
    bearing = rng.uniform(0.0, 2.0 * np.pi, n)
    return _offset(lon, lat, dist * np.sin(bearing), dist * np.cos(bearing))


def _along_atoll(rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Points along an east-west atoll rim, within ATOLL_RESIDENCE_KM of each anchor."""
    n = lon.size
    east = rng.uniform(-0.95, 0.95, n) * ATOLL_RESIDENCE_KM
    north = rng.uniform(-0.15, 0.15, n)
    return _offset(lon, lat, east, north)


def _nearest(points: tuple[np.ndarray, np.ndarray, np.ndarray],
             refs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest reference point of the same group, and its distance in km.

    ``points`` and ``refs`` are (lon, lat, group) arrays; -1 and inf where the group has no
    reference point.
    """
    lon, lat, group = points
    ref_lon, ref_lat, ref_group = refs
    best = np.full(lon.size, -1, dtype=np.int64)
    best_km = np.full(lon.size, np.inf)
    for code in np.unique(group):
        rows = np.flatnonzero(group == code)
        candidates = np.flatnonzero(ref_group == code)
        if candidates.size == 0:
            continue
        for start in range(0, rows.size, 2048):
            chunk = rows[start:start + 2048]
            coslat = np.cos(np.radians(lat[chunk]))[:, None]
            dx = (lon[chunk][:, None] - ref_lon[candidates][None, :]) * coslat
            dy = lat[chunk][:, None] - ref_lat[candidates][None, :]
            d2 = dx * dx + dy * dy
            pick = np.argmin(d2, axis=1)
            best[chunk] = candidates[pick]
            best_km[chunk] = np.sqrt(d2[np.arange(chunk.size), pick]) * _KM_PER_DEG
    return best, best_km


def _city_points(cities: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (cities["lon"].to_numpy(), cities["lat"].to_numpy(),
            cities["jurisdiction"].to_numpy(dtype=object))


class _Placer:
    """Jurisdiction lookups with the demo's rule: strict everywhere, tolerant on atolls."""

    def __init__(self, geo: Any) -> None:
        self.geo = geo

    def where(self, lon: np.ndarray, lat: np.ndarray, atoll: np.ndarray) -> np.ndarray:
        """Jurisdiction of each point: strict (0 km) except atolls, which use the tolerance."""
        code = np.asarray(self.geo.jurisdiction_of(lon, lat, tolerance_km=0.0), dtype=object)
        if atoll.any():
            near = np.asarray(self.geo.jurisdiction_of(lon[atoll], lat[atoll],
                                                       tolerance_km=ATOLL_TOLERANCE_KM),
                              dtype=object)
            code[atoll] = np.where(np.isin(near, ATOLL_JURISDICTIONS), near, "")
        return code


# --------------------------------------------------------------------------- missions


def _city_lookup(cities: pd.DataFrame) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    by_key = {(c, j): i for i, (c, j) in enumerate(zip(cities["city"], cities["jurisdiction"],
                                                          strict=True))}
    counts = cities["city"].value_counts()
    unique = {c: i for i, c in enumerate(cities["city"]) if counts[c] == 1}
    return by_key, unique


def _parse_places(value: str, by_key: dict[tuple[str, str], int]) -> list[int]:
    """City numbers of a "City, ST; City, ST" list."""
    out = []
    for raw in value.split(";"):
        item = raw.strip()
        if not item:
            continue
        city, _, code = item.rpartition(",")
        out.append(by_key[(city.strip(), code.strip())])
    return out


def _wikidata_missions(inp: _Inputs, placer: _Placer) -> pd.DataFrame:
    """Wikidata rows as candidate missions: iso3, kind, city number, lat, lon, qid."""
    wd = inp.wikidata
    names = {name: code for code, name in inp.countries["name"].items()}
    iso3 = np.array([_OPERATOR_ALIASES.get(op, names.get(op, "")) for op in wd["operator"]],
                    dtype=object)
    kind = np.array([_WIKIDATA_KINDS.get(t, "") for t in wd["type"]], dtype=object)
    lat = pd.to_numeric(wd["latitude"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(wd["longitude"], errors="coerce").to_numpy(dtype=float)
    has_xy = ~(np.isnan(lat) | np.isnan(lon))
    cities = inp.cities
    by_key, unique = _city_lookup(cities)

    code = np.full(len(wd), "", dtype=object)
    if has_xy.any():
        # Inside an area, else (atolls only) within the tolerance of one.
        code[has_xy] = placer.where(lon[has_xy], lat[has_xy], np.zeros(has_xy.sum(), dtype=bool))
        outside = np.flatnonzero(has_xy & (code == ""))
        if outside.size:
            code[outside] = placer.where(lon[outside], lat[outside],
                                         np.ones(outside.size, dtype=bool))
    city = np.full(len(wd), -1, dtype=np.int64)
    located = has_xy & (code != "")
    if located.any():
        city[located], _ = _nearest((lon[located], lat[located], code[located]),
                                    _city_points(cities))
    for i in np.flatnonzero(~has_xy):
        place = wd["city"].iat[i]
        key = _PLACE_ALIASES.get(place)
        if key is not None:
            city[i] = by_key[key]
        elif place in unique:
            city[i] = unique[place]
        elif kind[i] == "tecro":
            city[i] = by_key[("Washington", "DC")]
    keep = (iso3 != "") & (iso3 != "USA") & (kind != "") & (city >= 0)
    for i in np.flatnonzero(keep & (wd["type"].to_numpy() == "Interests Section")):
        if iso3[i] not in _INTERESTS_SECTION_EMBASSY:
            kind[i] = "interests_section"
    out = pd.DataFrame({
        "iso3": iso3, "kind": kind, "city": city,
        "lat": np.where(has_xy, lat, np.nan), "lon": np.where(has_xy, lon, np.nan),
        "qid": wd["QID"].to_numpy(dtype=object),
    })[keep]
    dropped = int((~keep).sum())
    if dropped:
        logger.debug("wikidata: %d of %d rows not usable as demo missions", dropped, len(wd))
    # Rows with coordinates first, so that de-duplication keeps them.
    return out.sort_values(["lat"], na_position="last", kind="stable").reset_index(drop=True)


def _with_article(name: str) -> str:
    return f"the {name}" if name in _WITH_ARTICLE else name


def _mission_name(kind: str, iso3: str, country: str, city: str) -> str:
    of = _with_article(country)
    if kind == "embassy":
        return "Apostolic Nunciature of the Holy See" if iso3 == "VAT" else f"Embassy of {of}"
    if kind == "un_permanent_mission":
        title = "Permanent Observer Mission" if iso3 in _OBSERVERS else "Permanent Mission"
        return f"{title} of {of} to the United Nations"
    if kind == "consulate_general":
        return f"Consulate General of {of} in {city}"
    if kind == "consulate":
        return f"Consulate of {of} in {city}"
    if kind == "honorary_consulate":
        return f"Honorary Consulate of {of} in {city}"
    if kind == "teco":
        return f"Taipei Economic and Cultural Office in {city}"
    if kind == "tecro":
        return "Taipei Economic and Cultural Representative Office in the United States"
    if kind == "interests_section":
        return f"Interests Section of {of}"
    raise ValueError(f"kind must be a mission kind with a generated name, got {kind!r}")


def _plan_missions(inp: _Inputs, placer: _Placer, rng: np.random.Generator) -> pd.DataFrame:
    """Every mission with its type, country, city, fixed coordinates (or NaN) and staff hint."""
    countries, presence, cities = inp.countries, inp.presence, inp.cities
    by_key, _ = _city_lookup(cities)
    wd = _wikidata_missions(inp, placer)
    city_jur = cities["jurisdiction"].to_numpy(dtype=object)
    rows: list[dict[str, Any]] = []
    taken: set[tuple[str, int, str]] = set()  # (iso3, city, family) where family: post kind

    def add(iso3: str, mtype: str, city: int, *, lat: float = np.nan, lon: float = np.nan,
            place: str = "city", name: str = "", staff: float = np.nan, language: str = "",
            family: str = "", force_staff: bool = False) -> None:
        rows.append({
            "country_code": iso3, "mission_type": mtype, "city_i": city, "lat": lat, "lon": lon,
            "place": place, "name": name, "staff": staff, "language": language,
            "force_staff": force_staff,
        })
        if family:
            taken.add((iso3, city, family))

    def wd_rows(iso3: str, kinds: tuple[str, ...], juris: tuple[str, ...] = ()) -> pd.DataFrame:
        sel = wd[(wd["iso3"] == iso3) & wd["kind"].isin(kinds)]
        if juris:
            sel = sel[np.isin(city_jur[sel["city"].to_numpy()], juris)]
        return sel

    used_wd: set[int] = set()
    washington = by_key[("Washington", "DC")]
    new_york = by_key[("New York", "NY")]

    # Embassies in Washington, and the embassies that Wikidata places in Majuro.
    for iso3 in presence.index[presence["dc_embassy"] == 1]:
        hit = wd_rows(iso3, ("embassy",), ("DC",))
        if len(hit):
            used_wd.add(int(hit.index[0]))
            add(iso3, "embassy", washington, lat=hit["lat"].iat[0], lon=hit["lon"].iat[0],
                place="embassy_row")
        else:
            add(iso3, "embassy", washington, place="embassy_row")
    for i in wd.index[(wd["kind"] == "embassy") & (city_jur[wd["city"]] == "MH")]:
        used_wd.add(int(i))
        add(wd.at[i, "iso3"], "embassy", int(wd.at[i, "city"]), lat=wd.at[i, "lat"],
            lon=wd.at[i, "lon"], place="atoll", staff=_ISLAND_EMBASSY_STAFF, family="consular")

    # Permanent missions to the UN (Wikidata's New York "embassies" are these missions).
    for iso3 in presence.index[presence["un_mission"] == 1]:
        hit = wd_rows(iso3, ("embassy",), ("NY",))
        if len(hit):
            used_wd.add(int(hit.index[0]))
            add(iso3, "un_permanent_mission", new_york, lat=hit["lat"].iat[0],
                lon=hit["lon"].iat[0], place="un_area")
        else:
            add(iso3, "un_permanent_mission", new_york, place="un_area")

    # International-organisation and other offices.
    for _, o in inp.offices.iterrows():
        city = by_key[(o["city"], o["jurisdiction"])]
        lat = float(o["lat"]) if o["lat"] else np.nan
        lon = float(o["lon"]) if o["lon"] else np.nan
        place = "un_area" if city == new_york else "city"
        add(o["country_code"], o["mission_type"], city, lat=lat, lon=lon, place=place,
            name=o["name"], staff=float(o["staff"]), language=o["language"])
    for i in wd.index[wd["kind"].isin(("teco", "tecro", "other_office", "io_office",
                                       "interests_section"))]:
        r = wd.loc[i]
        key = (r["iso3"], int(r["city"]), r["kind"])
        if key in taken:
            continue
        used_wd.add(int(i))
        kind = str(r["kind"])
        mtype = "io_office" if kind == "io_office" else "other_office"
        if kind == "other_office":  # the Quebec Government Office
            name, staff, language = f"Québec Government Office in {cities['city'].iat[key[1]]}", \
                6.0, "fr"
        elif kind == "io_office":
            name, staff, language = "European Parliament Liaison Office", 15.0, "en"
        else:
            country = countries.at[r["iso3"], "name"]
            name = _mission_name(kind, r["iso3"], country, cities["city"].iat[key[1]])
            staff = {"teco": _TECO_STAFF, "tecro": _TECRO_STAFF}.get(kind, _OTHER_STAFF)
            language = ""
        place = "un_area" if key[1] == new_york else "city"
        add(r["iso3"], mtype, key[1], lat=r["lat"], lon=r["lon"], place=place, name=name,
            staff=staff, language=language, family=kind)

    # Career consulates: presence.csv decides which exist; Wikidata gives coordinates and kind.
    consular = wd[wd["kind"].isin(("consulate_general", "consulate"))]
    for iso3 in presence.index:
        posts = [(c, "consulate_general") for c in
                 _parse_places(presence.at[iso3, "consulates_general"], by_key)]
        posts += [(c, "consulate") for c in _parse_places(presence.at[iso3, "consulates"], by_key)]
        for city, listed_type in posts:
            hit = consular[(consular["iso3"] == iso3) & (consular["city"] == city)]
            mtype, lat, lon = listed_type, np.nan, np.nan
            if len(hit):
                used_wd.update(int(i) for i in hit.index)
                mtype = str(hit["kind"].iat[0])
                lat, lon = hit["lat"].iat[0], hit["lon"].iat[0]
            place = "atoll" if city_jur[city] in ATOLL_JURISDICTIONS else "city"
            add(iso3, mtype, city, lat=lat, lon=lon, place=place, family="consular")

    # Wikidata consulates that presence.csv does not list, and Wikidata honorary consulates,
    # become honorary consulates of states that keep honorary consuls.
    leftovers = wd[wd["kind"].isin(("consulate_general", "consulate", "honorary_consulate"))
                   & ~wd.index.isin(sorted(used_wd))]
    for i in leftovers.index:
        iso3, city = str(wd.at[i, "iso3"]), int(wd.at[i, "city"])
        if (iso3 not in presence.index or presence.at[iso3, "honorary_weight"] == 0
                or (iso3, city, "consular") in taken):
            continue
        add(iso3, "honorary_consulate", city, lat=wd.at[i, "lat"], lon=wd.at[i, "lon"],
            place="atoll" if city_jur[city] in ATOLL_JURISDICTIONS else "city",
            family="consular")

    _add_honorary(rows, taken, add, inp, rng)
    plan = pd.DataFrame(rows)
    plan["jurisdiction"] = city_jur[plan["city_i"].to_numpy()]
    return plan


def _add_honorary(rows: list[dict[str, Any]], taken: set[tuple[str, int, str]], add: Any,
                  inp: _Inputs, rng: np.random.Generator) -> None:
    """Honorary consulates up to TARGET_MISSIONS, at least two in every jurisdiction."""
    presence, cities = inp.presence, inp.cities
    weight = presence["honorary_weight"].to_numpy(dtype=float)
    codes = presence.index.to_numpy(dtype=object)
    regions = presence["region"].to_numpy(dtype=object)
    city_jur = cities["jurisdiction"].to_numpy(dtype=object)

    def country_p(jurisdiction: str) -> np.ndarray:
        allowed = _REGIONS_FOR.get(jurisdiction)
        w = weight.copy()
        if allowed is not None:
            w *= np.isin(regions, allowed) | np.isin(codes, allowed)
        w[codes == _HOME_STATE.get(jurisdiction)] = 0.0
        return w / w.sum()

    p_by_jur = {j: country_p(j) for j in JURISDICTIONS}
    island_cities = {j: tuple(np.flatnonzero(city_jur == j).tolist()) for j in _SMALL_ISLANDS}

    def try_add(city: int, iso3: str, *, force_staff: bool = False) -> bool:
        # One post per state and city; on the small islands one per state and island area.
        same = island_cities.get(city_jur[city], (city,))
        if any((iso3, c, "consular") in taken for c in same):
            return False
        place = "atoll" if city_jur[city] in ATOLL_JURISDICTIONS else "city"
        add(iso3, "honorary_consulate", city, place=place, family="consular",
            force_staff=force_staff)
        return True

    # Two in each jurisdiction's largest cities (table order breaks ties), with staff.
    order = np.lexsort((np.arange(len(cities)), -cities["pop_class"].to_numpy()))
    for jurisdiction in JURISDICTIONS:
        mine = order[city_jur[order] == jurisdiction][:2]
        for k in range(2):
            city = int(mine[k % mine.size])
            while not try_add(city, str(rng.choice(codes, p=p_by_jur[jurisdiction])),
                              force_staff=True):
                pass

    city_w = cities["pop_class"].map(_HONORARY_CITY_WEIGHT).to_numpy(dtype=float)
    city_p = city_w / city_w.sum()
    needed = TARGET_MISSIONS - len(rows)
    while needed > 0:
        batch = rng.choice(len(cities), size=2 * needed, p=city_p)
        general = rng.choice(codes.size, size=batch.size, p=p_by_jur["DC"])
        for city, general_pick in zip(batch, general, strict=True):
            jurisdiction = city_jur[city]
            pick = (rng.choice(codes.size, p=p_by_jur[jurisdiction])
                    if jurisdiction in _REGIONS_FOR else general_pick)
            if try_add(int(city), str(codes[pick])):
                needed -= 1
                if needed == 0:
                    break


def _place_missions(plan: pd.DataFrame, inp: _Inputs, placer: _Placer,
                    rng: np.random.Generator) -> None:
    """Fill in lat/lon of planned missions: inside their jurisdiction (atolls: near it)."""
    cities = inp.cities
    lat = plan["lat"].to_numpy(dtype=float).copy()
    lon = plan["lon"].to_numpy(dtype=float).copy()
    place = plan["place"].to_numpy(dtype=object)
    want = plan["jurisdiction"].to_numpy(dtype=object)
    city = plan["city_i"].to_numpy()
    c_lat = cities["lat"].to_numpy()[city]
    c_lon = cities["lon"].to_numpy()[city]
    honorary = (plan["mission_type"] == "honorary_consulate").to_numpy()
    atoll = place == "atoll"
    # Fixed coordinates must be where the plan says; otherwise they are drawn like the rest.
    fixed = ~np.isnan(lat)
    if fixed.any():
        ok = placer.where(lon[fixed], lat[fixed], atoll[fixed]) == want[fixed]
        bad = np.flatnonzero(fixed)[~ok]
        if bad.size:
            logger.warning("demo: %d fixed mission points outside their jurisdiction, redrawn",
                           bad.size)
            lat[bad] = np.nan
            lon[bad] = np.nan
    # Atoll missions with coordinates elsewhere keep them; new ones start from the centre.
    pending = np.flatnonzero(np.isnan(lat))
    shrink = 1.0
    for _ in range(_PLACEMENT_ROUNDS):
        if pending.size == 0:
            break
        p_lon = np.empty(pending.size)
        p_lat = np.empty(pending.size)
        kinds = place[pending]
        for kind in ("embassy_row", "un_area"):
            sel = kinds == kind
            south, north, west, east = _EMBASSY_ROW if kind == "embassy_row" else _UN_AREA
            p_lat[sel] = rng.uniform(south, north, sel.sum())
            p_lon[sel] = rng.uniform(west, east, sel.sum())
        sel = kinds == "city"
        if sel.any():
            rows = pending[sel]
            median = np.where(honorary[rows], 2.5, 1.2) * shrink
            p_lon[sel], p_lat[sel] = _scatter(rng, c_lon[rows], c_lat[rows], median,
                                              np.where(honorary[rows], 8.0, 4.0) * shrink)
        sel = kinds == "atoll"
        if sel.any():
            rows = pending[sel]
            p_lon[sel], p_lat[sel] = _along_atoll(rng, c_lon[rows], c_lat[rows])
        ok = placer.where(p_lon, p_lat, atoll[pending]) == want[pending]
        ok &= (kinds != "un_area") | _west_of_un_shore(p_lon, p_lat)
        lat[pending[ok]] = p_lat[ok]
        lon[pending[ok]] = p_lon[ok]
        pending = pending[~ok]
        shrink *= 0.85
    if pending.size:  # city centres are inside their jurisdiction (tested)
        logger.debug("demo: %d missions placed at their city centre", pending.size)
        lat[pending] = c_lat[pending]
        lon[pending] = c_lon[pending]
    plan["lat"] = lat
    plan["lon"] = lon


def _west_of_un_shore(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    (lat0, lon0), (lat1, lon1) = _UN_SHORE
    shore = lon0 + (lat - lat0) * (lon1 - lon0) / (lat1 - lat0)
    return lon < shore - _UN_SHORE_MARGIN


# --------------------------------------------------------------------------- names


@dataclasses.dataclass(frozen=True)
class _NamePool:
    given: tuple[np.ndarray, np.ndarray]  # male, female
    family: tuple[np.ndarray, np.ndarray]  # male, female (the same list if not gendered)
    gendered: bool


def _latin(text: str, locale: str) -> str:
    """``text`` in Latin letters (stray letters of other scripts, e.g. a Greek epsilon in a
    Twi name, are transliterated one by one)."""
    if locale in _TRANSLITERATED:
        text = unidecode(text).replace("`", "").replace("'", "")
        return " ".join(w[:1].upper() + w[1:] for w in text.split())
    return "".join(ch if not ch.isalpha() or _is_latin(ch) else unidecode(ch) for ch in text)


@functools.lru_cache(maxsize=4096)
def _is_latin(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("LATIN")


def _draw_unique(fn: Any, k: int, locale: str) -> np.ndarray:
    seen: dict[str, None] = {}
    for _ in range(4 * k):
        seen.setdefault(_latin(fn(), locale), None)
        if len(seen) >= k:
            break
    return np.array(list(seen), dtype=object)


def _name_pool(locale: str, seed: int) -> _NamePool:
    source = _LATIN_STAND_IN.get(locale, locale)
    fake = Faker(source)
    fake.seed_instance(seed ^ zlib.crc32(locale.encode()))
    if source in _ROMANISED:
        if source == "ja_JP":
            given = (fake.first_romanized_name_male, fake.first_romanized_name_female)
        else:
            given = (fake.first_romanized_name, fake.first_romanized_name)
        family: tuple[Any, Any] = (fake.last_romanized_name, fake.last_romanized_name)
        gendered = False
    else:
        given = (fake.first_name_male, fake.first_name_female)
        gendered = _gendered_family_names(fake)
        family = ((fake.last_name_male, fake.last_name_female) if gendered
                  else (fake.last_name, fake.last_name))
    given_pools = tuple(_draw_unique(fn, _POOL_GIVEN, source) for fn in given)
    male_family = _draw_unique(family[0], _POOL_FAMILY, source)
    female_family = _draw_unique(family[1], _POOL_FAMILY, source) if gendered else male_family
    return _NamePool((given_pools[0], given_pools[1]), (male_family, female_family), gendered)


def _gendered_family_names(fake: Faker) -> bool:
    for provider in fake.get_providers():
        if isinstance(provider, _BasePersonProvider):
            cls = type(provider)
            return (hasattr(provider, "last_names_male")
                    or cls.last_name_male is not _BasePersonProvider.last_name_male)
    return False


_SLUG = re.compile(r"[^a-z]+")


def _slug(text: str) -> str:
    return _SLUG.sub("", unidecode(text).lower()) or "x"


# --------------------------------------------------------------------------- people


def _shuffled_shares(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    """``n`` category numbers in exactly the proportions ``p`` (largest remainder), shuffled.

    Unlike independent draws, the totals (people, people with immunity) then hardly depend on
    the seed, so every seed meets the roster's targets.
    """
    exact = n * np.asarray(p, dtype=float)
    counts = np.floor(exact).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return rng.permutation(np.repeat(np.arange(counts.size), counts))


def _staff_counts(plan: pd.DataFrame, inp: _Inputs, rng: np.random.Generator) -> np.ndarray:
    """Members (dependents excluded) of each mission.

    Offices with a staff figure keep it (with some noise); embassies, UN missions and
    consulates are scaled together so that the expected number of people is TARGET_PEOPLE.
    """
    n = len(plan)
    mtype = plan["mission_type"].to_numpy(dtype=object)
    size = inp.presence["size"].reindex(plan["country_code"]).fillna(2).to_numpy(dtype=int)
    base = plan["staff"].to_numpy(dtype=float).copy()
    scaled = np.zeros(n, dtype=bool)
    sigma = np.full(n, _OFFICE_SIGMA)
    for table, is_scaled in ((_SCALED_STAFF, True), (_FIXED_STAFF, False)):
        for kind, medians in table.items():
            sel = (mtype == kind) & np.isnan(base)
            base[sel] = np.asarray(medians)[np.clip(size[sel], 1, 5) - 1]
            sigma[sel] = _STAFF_SIGMA
            scaled |= sel & is_scaled
    honorary = mtype == "honorary_consulate"
    base[np.isnan(base) & ~honorary] = _OTHER_STAFF
    base[honorary] = 0.0
    raw = base * np.exp(sigma * rng.standard_normal(n))
    hon = _shuffled_shares(rng, n, np.asarray(_HONORARY_STAFF_P))
    hon = np.where(plan["force_staff"].to_numpy(dtype=bool), np.maximum(hon, 1), hon)
    # Expected people per member by type, from the category mix and household sizes.
    family_mean = float(np.dot(np.arange(1, 7), _FAMILY_SIZE_P))
    per_member = np.ones(n)
    for kind, cats in _CATEGORIES.items():
        mean = sum(c.share * (family_mean if c.household == "family" else 1.0) for c in cats)
        per_member[mtype == kind] = mean
    hon_people = hon[honorary].sum() + (hon[honorary] > 0).sum() * _HONORARY_SIZE_P[1]
    fixed_people = float((raw * per_member)[~scaled & ~honorary].sum() + hon_people)
    # Each scaled type gets its expected share of the rest (from the medians, not the draws),
    # so the mix of types, and with it the share with immunity, hardly varies with the seed.
    expected = base * per_member
    factor = np.ones(n)
    for kind in _SCALED_STAFF:
        sel = scaled & (mtype == kind)
        if sel.any():
            share = expected[sel].sum() / expected[scaled].sum()
            factor[sel] = ((TARGET_PEOPLE - fixed_people) * share
                           / float((raw * per_member)[sel].sum()))
    staff = np.maximum(1, np.rint(raw * factor)).astype(np.int64)
    staff[honorary] = hon[honorary]
    return staff


def _categories_for(plan: pd.DataFrame, staff: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, list[_Category]]:
    """Per member: mission row and category number (into the returned list)."""
    cats: list[_Category] = [_HONORARY_CONSUL, _HONORARY_CLERK]
    offsets: dict[str, int] = {}
    for kind in _TYPE_ORDER:
        if kind in _CATEGORIES and kind not in offsets:
            offsets[kind] = len(cats)
            cats.extend(_CATEGORIES[kind])
    mission = np.repeat(np.arange(len(plan)), staff)
    mtype = plan["mission_type"].to_numpy(dtype=object)[mission]
    category = np.empty(mission.size, dtype=np.int64)
    first = np.r_[True, mission[1:] != mission[:-1]] if mission.size else mission.astype(bool)
    hon = mtype == "honorary_consulate"
    category[hon] = np.where(first[hon], 0, 1)
    for kind, start in offsets.items():
        sel = mtype == kind
        shares = np.array([c.share for c in _CATEGORIES[kind]])
        category[sel] = start + _shuffled_shares(rng, int(sel.sum()), shares / shares.sum())
    return np.column_stack([mission, category]), cats


def _people(plan: pd.DataFrame, inp: _Inputs, rng: np.random.Generator, seed: int
            ) -> tuple[pd.DataFrame, np.ndarray]:
    """People rows (without residence columns) and the household -> mission map."""
    staff = _staff_counts(plan, inp, rng)
    member_mc, cats = _categories_for(plan, staff, rng)
    m_mission, m_cat = member_mc[:, 0], member_mc[:, 1]
    household_kind = np.array([c.household for c in cats], dtype=object)[m_cat]
    size = np.ones(m_mission.size, dtype=np.int64)
    fam = household_kind == "family"
    size[fam] = 1 + _shuffled_shares(rng, int(fam.sum()), _FAMILY_SIZE_P)
    hon = household_kind == "honorary"
    size[hon] = 1 + _shuffled_shares(rng, int(hon.sum()), _HONORARY_SIZE_P)

    # Expand households to people: member first, then spouse (or child), then children.
    household = np.repeat(np.arange(m_mission.size), size)
    start = np.r_[0, np.cumsum(size)[:-1]]
    position = np.arange(household.size) - start[household]
    is_member = position == 0
    spouse = (position == 1) & (rng.random(household.size) < _SPOUSE_P)
    child = ~is_member & ~spouse
    cat = m_cat[household]
    role = np.where(is_member, np.array([c.role for c in cats], dtype=object)[cat], "dependent")
    immunity = np.where(is_member, np.array([c.immunity for c in cats], dtype=object)[cat],
                        np.array([c.dependents for c in cats], dtype=object)[cat])
    local = np.array([c.local for c in cats], dtype=bool)[cat]

    # Nationality (name locale, language): the sending state; locally engaged staff are US
    # residents; IO staff come from anywhere.
    countries = inp.countries
    mission = m_mission[household]
    m_country = plan["country_code"].to_numpy(dtype=object)
    nationality = m_country[mission].copy()
    io_staff = (m_country[m_mission] == NO_SENDING_STATE) & ~np.array(
        [c.local for c in cats], dtype=bool)[m_cat]
    sending = countries.index.to_numpy(dtype=object)
    sending = sending[sending != "USA"]
    io_nat = sending[rng.integers(0, sending.size, m_mission.size)]
    nationality = np.where(io_staff[household], io_nat[household], nationality)
    nationality = np.where(local, "USA", nationality)
    locale = countries["faker_locale"].reindex(nationality).to_numpy(dtype=object)
    language = countries["language"].reindex(nationality).to_numpy(dtype=object)
    mission_language = plan["language"].to_numpy(dtype=object)[mission]
    io_office = m_country[mission] == NO_SENDING_STATE
    language = np.where(~io_office & ~local & (mission_language != ""), mission_language,
                        language)

    # Names: a household shares the member's family name (gendered forms drawn apiece).
    male_p = np.where(role == "diplomatic_agent", 0.6, 0.5)
    male = rng.random(household.size) < male_p
    member_male = male[start][household]
    male = np.where(spouse, np.where(rng.random(household.size) < 0.97, ~member_male,
                                     member_male), male)
    given_u = rng.random(household.size)
    family_u = rng.random(household.size)[start][household]
    own_u = rng.random(household.size)
    keep_own = spouse & (rng.random(household.size) < _OWN_FAMILY_NAME_P)
    name = np.empty(household.size, dtype=object)
    given_slug = np.empty(household.size, dtype=object)
    family_slug = np.empty(household.size, dtype=object)
    for loc in sorted(set(locale.tolist())):
        pool = _name_pool(loc, seed)
        sel = np.flatnonzero(locale == loc)
        g_m, g_f = pool.given
        f_m, f_f = pool.family
        gm = male[sel]
        given = np.where(gm, g_m[(given_u[sel] * g_m.size).astype(int)],
                         g_f[(given_u[sel] * g_f.size).astype(int)])
        # Member's gender decides which list the household name comes from; a dependent of
        # the other gender in a gendered language gets an independent name of their own form.
        own = keep_own[sel] | (pool.gendered & (gm != member_male[sel]))
        u = np.where(own, own_u[sel], family_u[sel])
        use_male_list = np.where(own, gm, member_male[sel])
        family = np.where(use_male_list, f_m[(u * f_m.size).astype(int)],
                          f_f[(u * f_f.size).astype(int)])
        name[sel] = [f"{a} {b}" for a, b in zip(given, family, strict=True)]
        slugs_g = {v: _slug(v) for v in np.unique(given)}
        slugs_f = {v: _slug(v) for v in np.unique(family)}
        given_slug[sel] = [slugs_g[v] for v in given]
        family_slug[sel] = [slugs_f[v] for v in family]

    number = np.arange(1, household.size + 1)
    has_contact = ~child | (rng.random(household.size) < 0.4)
    email = np.where(has_contact, [f"{g}.{f}.{k}@example.org" for g, f, k in
                                   zip(given_slug, family_slug, number, strict=True)], "")
    people = pd.DataFrame({
        "person_id": [f"P-{k:06d}" for k in number],
        "mission_i": mission,
        "household_i": household,
        "role": role,
        "immunity": immunity,
        "name": name,
        "email": email,
        "language": language,
        "has_contact": has_contact,
    })
    return people, m_mission


def _residences(plan: pd.DataFrame, hh_mission: np.ndarray, placer: _Placer,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One residence (lon, lat, jurisdiction) per household, around its mission."""
    m_lon = plan["lon"].to_numpy(dtype=float)[hh_mission]
    m_lat = plan["lat"].to_numpy(dtype=float)[hh_mission]
    m_jur = plan["jurisdiction"].to_numpy(dtype=object)[hh_mission]
    honorary = (plan["mission_type"] == "honorary_consulate").to_numpy()[hh_mission]
    median = np.full(hh_mission.size, _COMMUTE_DEFAULT_KM[0])
    cap = np.full(hh_mission.size, _COMMUTE_DEFAULT_KM[1])
    for code, (med, top) in _COMMUTE_KM.items():
        sel = m_jur == code
        median[sel], cap[sel] = med, top
    # Honorary consuls are local residents, living closer to their office.
    median[honorary] = np.minimum(median[honorary], _COMMUTE_HONORARY_KM[0])
    cap[honorary] = np.minimum(cap[honorary], _COMMUTE_HONORARY_KM[1])
    atoll = np.isin(m_jur, ATOLL_JURISDICTIONS)
    lon = np.full(hh_mission.size, np.nan)
    lat = np.full(hh_mission.size, np.nan)
    jur = np.full(hh_mission.size, "", dtype=object)
    pending = np.arange(hh_mission.size)
    shrink = 1.0
    for _ in range(_PLACEMENT_ROUNDS):
        if pending.size == 0:
            break
        p_lon, p_lat = _scatter(rng, m_lon[pending], m_lat[pending], median[pending] * shrink,
                                cap[pending] * shrink)
        on_atoll = atoll[pending]
        if on_atoll.any():
            a = pending[on_atoll]
            p_lon[on_atoll], p_lat[on_atoll] = _along_atoll(rng, m_lon[a], m_lat[a])
        code = placer.where(p_lon, p_lat, on_atoll)
        mainland = np.isin(m_jur[pending], list(_MAINLAND))
        ok = np.where(mainland, np.isin(code, list(_MAINLAND)), code == m_jur[pending])
        done = pending[ok]
        lon[done], lat[done], jur[done] = p_lon[ok], p_lat[ok], code[ok]
        pending = pending[~ok]
        shrink *= 0.85
    if pending.size:  # the mission itself is inside its jurisdiction
        logger.debug("demo: %d households live at their mission's point", pending.size)
        lon[pending], lat[pending], jur[pending] = m_lon[pending], m_lat[pending], m_jur[pending]
    return lon, lat, jur


def _locality(lon: np.ndarray, lat: np.ndarray, jur: np.ndarray, cities: pd.DataFrame
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """City, ZIP code and area code of points: the nearest ZIP centroid of the same
    jurisdiction within _ZIP_MAX_KM, else the nearest city of the table and no ZIP."""
    zips = _zips()
    city_i, _ = _nearest((lon, lat, jur), _city_points(cities))
    city = cities["city"].to_numpy(dtype=object)[city_i]
    area = cities["area_code"].to_numpy(dtype=object)[city_i]
    postal = np.full(lon.size, "", dtype=object)
    z, z_km = _nearest((lon, lat, jur), (zips.lon, zips.lat, zips.state))
    ok = (z >= 0) & (z_km <= _ZIP_MAX_KM)
    postal[ok] = zips.code[z[ok]]
    city[ok] = zips.city[z[ok]]
    area[ok] = np.where(zips.area_code[z[ok]] != "", zips.area_code[z[ok]], area[ok])
    return city, postal, area


def _street_pool(seed: int) -> np.ndarray:
    fake = Faker(_US_LOCALE)
    fake.seed_instance(seed)
    return _draw_unique(fake.street_name, _POOL_STREETS, _US_LOCALE)


def _addresses(rng: np.random.Generator, streets: np.ndarray, lon: np.ndarray,
               lat: np.ndarray, jur: np.ndarray) -> np.ndarray:
    """Synthetic street addresses; Washington DC ones carry their quadrant."""
    n = lon.size
    number = np.rint(np.exp(rng.uniform(np.log(1), np.log(9999), n))).astype(np.int64)
    street = streets[rng.integers(0, streets.size, n)]
    quadrant = np.where(lat >= 38.8899, np.where(lon < -77.0091, " NW", " NE"),
                        np.where(lon < -77.0091, " SW", " SE"))
    suffix = np.where(jur == "DC", quadrant, "")
    return np.array([f"{k} {s}{q}" for k, s, q in zip(number, street, suffix, strict=True)],
                    dtype=object)


def _phones(rng: np.random.Generator, area: np.ndarray) -> np.ndarray:
    line = rng.integers(0, 100, area.size)
    return np.array([f"+1 {a}-555-01{k:02d}" for a, k in zip(area, line, strict=True)],
                    dtype=object)


# --------------------------------------------------------------------------- entry point


def generate_demo_roster(seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(missions, people) with exactly layers.schema.MISSION_COLUMNS / PERSON_COLUMNS, in order.

    Synthetic and deterministic: the same ``seed`` gives identical frames.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    inp = _inputs()
    placer = _Placer(load_geography())
    rng = np.random.default_rng(seed)
    streets = _street_pool(seed)

    plan = _plan_missions(inp, placer, rng)
    type_rank = {t: i for i, t in enumerate(_TYPE_ORDER)}
    country_name = inp.countries["name"].reindex(plan["country_code"]).fillna("").to_numpy()
    plan["country_name"] = np.where(plan["country_code"] == NO_SENDING_STATE, IO_COUNTRY_NAME,
                                    country_name)
    plan["city"] = inp.cities["city"].to_numpy(dtype=object)[plan["city_i"].to_numpy()]
    plan["_rank"] = plan["mission_type"].map(type_rank)
    plan = plan.sort_values(["_rank", "country_name", "jurisdiction", "city", "name"],
                            kind="stable").reset_index(drop=True)
    _place_missions(plan, inp, placer, rng)
    missions = _mission_frame(plan, inp, rng, streets)

    people, hh_mission = _people(plan, inp, rng, seed)
    h_lon, h_lat, h_jur = _residences(plan, hh_mission, placer, rng)
    h_city, h_postal, h_area = _locality(h_lon, h_lat, h_jur, inp.cities)
    h_address = _addresses(rng, streets, h_lon, h_lat, h_jur)
    hh = people["household_i"].to_numpy()
    phone = _phones(rng, h_area[hh])
    people_frame = pd.DataFrame({
        "person_id": people["person_id"],
        "mission_id": missions["mission_id"].to_numpy(dtype=object)[people["mission_i"]],
        "household_id": [f"H-{k + 1:06d}" for k in hh],
        "role": people["role"],
        "immunity": people["immunity"],
        "name": people["name"],
        "address": h_address[hh],
        "city": h_city[hh],
        "jurisdiction": h_jur[hh],
        "postal_code": h_postal[hh],
        "lat": h_lat[hh],
        "lon": h_lon[hh],
        "geocode_precision": "provided",
        "phone": np.where(people["has_contact"], phone, ""),
        "email": people["email"],
        "language": people["language"],
    })
    people_frame = _as_roster(people_frame, PERSON_COLUMNS)
    logger.info("demo roster (seed %d): %d missions, %d people, %d with immunity", seed,
                len(missions), len(people_frame),
                int((people_frame["immunity"] != "none").sum()))
    return missions, people_frame


def _mission_frame(plan: pd.DataFrame, inp: _Inputs, rng: np.random.Generator,
                   streets: np.ndarray) -> pd.DataFrame:
    n = len(plan)
    ids = [f"M-{k:05d}" for k in range(1, n + 1)]
    lon = plan["lon"].to_numpy(dtype=float)
    lat = plan["lat"].to_numpy(dtype=float)
    jur = plan["jurisdiction"].to_numpy(dtype=object)
    names = [
        given or _mission_name(t, c, cn, city)
        for given, t, c, cn, city in zip(plan["name"], plan["mission_type"],
                                         plan["country_code"], plan["country_name"],
                                         plan["city"], strict=True)
    ]
    language = inp.countries["language"].reindex(plan["country_code"]).fillna("en").to_numpy()
    language = np.where(plan["language"] != "", plan["language"], language)
    _, postal, area = _locality(lon, lat, jur, inp.cities)
    frame = pd.DataFrame({
        "mission_id": ids,
        "name": names,
        "country_code": plan["country_code"],
        "country_name": plan["country_name"],
        "mission_type": plan["mission_type"],
        "address": _addresses(rng, streets, lon, lat, jur),
        "city": plan["city"],
        "jurisdiction": jur,
        "postal_code": postal,
        "lat": lat,
        "lon": lon,
        "geocode_precision": "provided",
        "duty_phone": _phones(rng, area),
        "email": [f"duty.{i.replace('-', '').lower()}@example.org" for i in ids],
        "language": language,
        "ofm_office": [ofm_office_for(j, y) for j, y in zip(jur, lat, strict=True)],
    })
    return _as_roster(frame, MISSION_COLUMNS)


def _as_roster(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Exactly ``columns``: text as ``str`` ('' when empty), lat/lon as float64."""
    out = frame.loc[:, list(columns)].reset_index(drop=True)
    for column in columns:
        if column in ("lat", "lon"):
            out[column] = out[column].astype("float64")
        else:
            out[column] = out[column].fillna("").astype(str)
    return out
