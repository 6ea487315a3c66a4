"""Roster files in and out: read, validate, geocode, and write missions and people.

A roster is two tables, missions and people, whose columns are :data:`layers.schema.MISSION_COLUMNS`
and :data:`layers.schema.PERSON_COLUMNS`. :func:`read_table` reads CSV, XLSX or GeoJSON into
strings; :func:`check_roster` validates both tables together and returns the clean rows plus
every problem found, each with its file, row number, column and reason. Nothing here touches
the store: the caller decides whether a roster with problems is stored.

Exception tree::

    RosterError(Exception)
     ├── RosterFileError(RosterError, ValueError)        a file cannot be read as a roster table
     ├── RosterRowError(RosterError, ValueError)         one bad row: file, row, column, reason
     └── RosterValidationError(RosterError, ValueError)  the roster has bad rows (all of them)

Row numbers count the header as row 1, as a spreadsheet shows them; GeoJSON rows are the
1-based feature number.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import h3
import numpy as np
import pandas as pd

from layers.schema import (
    GEOCODE_PRECISIONS,
    IMMUNITY_LEVELS,
    JURISDICTIONS,
    MISSION_COLUMNS,
    MISSION_TYPES,
    OFM_OFFICES,
    PERSON_COLUMNS,
    ROLES,
    ofm_office_for,
)
from settings import BUNDLED_DATA_DIR

logger = logging.getLogger(__name__)

# Columns a file must have; the others may be left out (read as empty).
REQUIRED_MISSION_COLUMNS = ("mission_id", "name", "country_code", "mission_type", "jurisdiction")
REQUIRED_PERSON_COLUMNS = ("person_id", "mission_id", "role", "immunity", "name", "jurisdiction")
# Country code for missions of international organisations, which have no sending state.
NO_SENDING_STATE = "XXX"

_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[0-9 ().\-]{7,25}(?:\s*(?:x|ext\.?)\s*[0-9]{1,6})?$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")
_ZIP = re.compile(r"^[0-9]{5}(?:-[0-9]{4})?$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


class RosterError(Exception):
    """Base class of the roster errors."""


class RosterFileError(RosterError, ValueError):
    """A file cannot be read as a roster table (format, encoding, missing columns)."""


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """One reason one row was refused."""

    file: str   # "missions" or "people"
    row: int    # header = row 1 (spreadsheet numbering); GeoJSON: 1-based feature number
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} row {self.row}, column {self.column}: {self.reason}"


class RosterRowError(RosterError, ValueError):
    """A single bad row, with its file, row number, column and reason."""

    def __init__(self, problem: RowProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class RosterValidationError(RosterError, ValueError):
    """The roster has bad rows; ``problems`` lists every one of them."""

    def __init__(self, problems: list[RowProblem]) -> None:
        rows = {(p.file, p.row) for p in problems}
        super().__init__(f"{len(rows)} bad row(s): " + "; ".join(str(p) for p in problems[:5]))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class RawTable:
    """A roster table read as strings, with the row number of each record."""

    frame: pd.DataFrame          # all str, '' for empty
    rows: np.ndarray             # row number of each record (see module docstring)
    source: str                  # the file path or a label
    extra_columns: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RosterCheck:
    """The result of :func:`check_roster`: clean rows and every problem found."""

    missions: pd.DataFrame
    people: pd.DataFrame
    problems: list[RowProblem]
    missions_read: int
    people_read: int

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_rows(self) -> int:
        return len({(p.file, p.row) for p in self.problems})


# --------------------------------------------------------------------------- reading files


def read_table(path: str | Path, kind: str) -> RawTable:
    """Read a missions or people table from CSV, XLSX or GeoJSON, every cell as a string."""
    if kind not in ("missions", "people"):
        raise ValueError(f"kind must be 'missions' or 'people', got {kind!r}")
    path = Path(path)
    if not path.is_file():
        raise RosterFileError(f"{kind} file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            rows = np.arange(len(frame)) + 2
        elif suffix in (".xlsx", ".xlsm"):
            frame = _read_xlsx(path, kind)
            rows = np.arange(len(frame)) + 2
        elif suffix in (".geojson", ".json"):
            frame = _read_geojson(path)
            rows = np.arange(len(frame)) + 1
        else:
            raise RosterFileError(
                f"{kind} file {path}: unsupported format {suffix!r}; use .csv, .xlsx or .geojson"
            )
    except UnicodeDecodeError as exc:
        raise RosterFileError(f"{kind} file {path} is not UTF-8 text: {exc}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, json.JSONDecodeError) as exc:
        raise RosterFileError(f"{kind} file {path} cannot be parsed: {exc}") from exc
    return _as_raw(frame, rows, str(path), kind)


def _read_xlsx(path: Path, kind: str) -> pd.DataFrame:
    """The first sheet of a workbook as strings; RosterFileError if it cannot be read.

    A damaged workbook makes openpyxl fail in many ways (a bad zip or CRC, a missing part,
    malformed XML, no worksheet, an unsupported compression, ...); they all mean the same.
    """
    try:
        return pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
    except Exception as exc:
        raise RosterFileError(f"{kind} file {path} is not a readable XLSX workbook "
                              f"({type(exc).__name__}: {str(exc)[:80]})") from exc


def _read_geojson(path: Path) -> pd.DataFrame:
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise RosterFileError(f"{path}: a GeoJSON roster must be a FeatureCollection")
    features = data.get("features") or []
    if not isinstance(features, list):
        raise RosterFileError(f"{path}: 'features' must be a list")
    records = []
    for number, item in enumerate(features, start=1):
        feature = item or {}
        if not isinstance(feature, dict) or not isinstance(feature.get("properties") or {}, dict):
            raise RosterFileError(f"{path}: feature {number} is not a GeoJSON Feature with "
                                  "properties (an object)")
        props = dict(feature.get("properties") or {})
        geometry = feature.get("geometry")
        if geometry:
            point = isinstance(geometry, dict) and geometry.get("type") == "Point"
            coords = geometry.get("coordinates") if point else None
            if not isinstance(coords, list) or len(coords) < 2:
                props["lon"], props["lat"] = "not a Point", "not a Point"
                props["_geometry_error"] = f"feature {number}: geometry must be a Point"
            else:
                props["lon"], props["lat"] = coords[0], coords[1]
        records.append({k: "" if v is None else str(v) for k, v in props.items()})
    return pd.DataFrame.from_records(records).fillna("") if records else pd.DataFrame()


def frame_to_raw(frame: pd.DataFrame, kind: str, source: str = "<memory>") -> RawTable:
    """Wrap an in-memory table (e.g. the demo roster) as a :class:`RawTable`."""
    text = frame.copy()
    for column in text.columns:
        if column in ("lat", "lon"):
            text[column] = [_float_text(v) for v in text[column]]
        else:
            text[column] = text[column].astype(str).replace({"nan": "", "None": ""})
    return _as_raw(text, np.arange(len(text)) + 2, source, kind)


def _float_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return repr(float(value)) if not isinstance(value, str) else value


def _as_raw(frame: pd.DataFrame, rows: np.ndarray, source: str, kind: str) -> RawTable:
    columns = MISSION_COLUMNS if kind == "missions" else PERSON_COLUMNS
    required = REQUIRED_MISSION_COLUMNS if kind == "missions" else REQUIRED_PERSON_COLUMNS
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise RosterFileError(f"{kind} file {source}: duplicate columns {', '.join(dupes)}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise RosterFileError(
            f"{kind} file {source}: missing required column(s) {', '.join(missing)}; "
            f"required: {', '.join(required)}"
        )
    extra = tuple(c for c in frame.columns if c not in columns and not c.startswith("_"))
    if extra:
        logger.warning("%s file: ignoring unknown column(s) %s", kind, ", ".join(extra))
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for column in columns:
        values = frame[column] if column in frame.columns else pd.Series([""] * len(frame))
        out[column] = values.astype(str).str.strip().to_numpy()
    if "_geometry_error" in frame.columns:
        out["_geometry_error"] = frame["_geometry_error"].astype(str).to_numpy()
    return RawTable(out, np.asarray(rows, dtype=int), source, extra)


# --------------------------------------------------------------------------- reference data


@lru_cache(maxsize=1)
def load_countries() -> pd.DataFrame:
    """Sending states of ``data/countries.csv``: indexed by ISO 3166-1 alpha-3, with name,
    preferred language and Faker locale."""
    frame = pd.read_csv(BUNDLED_DATA_DIR / "countries.csv", dtype=str, keep_default_na=False)
    return frame.set_index("alpha3")


# --------------------------------------------------------------------------- validation


class _Problems:
    """Collects problems for one table; a row can carry several reasons."""

    def __init__(self, file: str, rows: np.ndarray) -> None:
        self.file = file
        self.rows = rows
        self.items: list[tuple[int, str, str]] = []  # (position, column, reason)

    def flag(self, mask: np.ndarray | pd.Series, column: str, reason: str | Iterable[str]) -> None:
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        reasons = [reason] * len(positions) if isinstance(reason, str) else list(reason)
        for position, text in zip(positions, reasons, strict=True):
            self.items.append((int(position), column, text))

    def bad_positions(self) -> np.ndarray:
        return np.array(sorted({p for p, _, _ in self.items}), dtype=int)

    def as_list(self) -> list[RowProblem]:
        return [
            RowProblem(self.file, int(self.rows[p]), column, reason)
            for p, column, reason in sorted(self.items, key=lambda i: (i[0], i[1]))
        ]


def _check_vocabulary(
    problems: _Problems, frame: pd.DataFrame, column: str, allowed: Iterable[str],
    *, allow_empty: bool = False,
) -> None:
    allowed = tuple(allowed)
    values = frame[column]
    bad = ~values.isin(allowed)
    if allow_empty:
        bad &= values != ""
    if bad.any():
        shown = ", ".join(allowed) if len(allowed) <= 12 else f"{len(allowed)} codes (see README)"
        problems.flag(bad, column, [
            f"{'empty' if v == '' else repr(v)} is not one of {shown}" for v in values[bad]
        ])


def _check_ids(problems: _Problems, frame: pd.DataFrame, column: str) -> None:
    values = frame[column]
    empty = values == ""
    problems.flag(empty, column, "empty; every row needs an id")
    malformed = ~empty & ~values.str.match(_ID)
    problems.flag(malformed, column, "must be 1-64 letters, digits or _.:- (no spaces)")
    dup = ~empty & values.duplicated(keep="first")
    if dup.any():
        first_row = {}
        for position, value in enumerate(values):
            first_row.setdefault(value, problems.rows[position])
        problems.flag(dup, column, [
            f"duplicate id {v!r} (first used on row {first_row[v]})" for v in values[dup]
        ])


def _check_pattern(
    problems: _Problems, frame: pd.DataFrame, column: str, pattern: re.Pattern[str], what: str
) -> None:
    values = frame[column]
    bad = (values != "") & ~values.str.match(pattern)
    problems.flag(bad, column, [f"{v!r} is not {what}" for v in values[bad]])


def _normalise_postal_code(values: pd.Series) -> pd.Series:
    # Spreadsheets drop leading zeros of ZIP codes stored as numbers (2134 -> 02134).
    short = values.str.fullmatch(r"[0-9]{3,4}")
    return values.where(~short, values.str.zfill(5))


def _check_locations(
    problems: _Problems,
    frame: pd.DataFrame,
    *,
    geography: object,
    gazetteer: object | None,
    tolerance_km: float,
    online_geocoder: Callable[[pd.DataFrame], pd.DataFrame] | None,
) -> pd.DataFrame:
    """Parse, geocode and check coordinates; returns float lat/lon and precision columns."""
    lat_text, lon_text = frame["lat"], frame["lon"]
    lat = pd.to_numeric(lat_text, errors="coerce")
    lon = pd.to_numeric(lon_text, errors="coerce")
    has_lat, has_lon = lat_text != "", lon_text != ""
    problems.flag(has_lat & lat.isna(), "lat", [f"{v!r} is not a number" for v in
                                                 lat_text[has_lat & lat.isna()]])
    problems.flag(has_lon & lon.isna(), "lon", [f"{v!r} is not a number" for v in
                                                 lon_text[has_lon & lon.isna()]])
    if "_geometry_error" in frame.columns:
        geometry_error = frame["_geometry_error"] != ""
        problems.flag(geometry_error, "geometry", frame["_geometry_error"][geometry_error])
    problems.flag(has_lat ^ has_lon, "lat/lon", "give both lat and lon, or neither")
    lat_range = lat.notna() & ((lat < -90) | (lat > 90))
    lon_range = lon.notna() & ((lon < -180) | (lon > 180))
    problems.flag(lat_range, "lat", [f"{v} is outside -90..90" for v in lat[lat_range]])
    problems.flag(lon_range, "lon", [f"{v} is outside -180..180" for v in lon[lon_range]])
    null_island = (lat == 0) & (lon == 0)
    problems.flag(null_island, "lat/lon", "0,0 is a geocoding failure, not a location")

    precision = frame["geocode_precision"].copy()
    given = lat.notna() & lon.notna() & ~lat_range & ~lon_range & ~null_island
    precision = precision.where(~(given & (precision == "")), "provided")
    _check_vocabulary(problems, frame.assign(geocode_precision=precision),
                      "geocode_precision", GEOCODE_PRECISIONS, allow_empty=True)

    lat = lat.where(given)
    lon = lon.where(given)
    wanted = ~has_lat & ~has_lon
    if wanted.any() and online_geocoder is not None:
        found = online_geocoder(frame.loc[wanted, ["address", "city", "jurisdiction",
                                                   "postal_code"]])
        hit = found["lat"].notna()
        idx = found.index[hit]
        lat.loc[idx], lon.loc[idx] = found.loc[hit, "lat"], found.loc[hit, "lon"]
        precision.loc[idx] = found.loc[hit, "geocode_precision"]
        wanted &= lat.isna()
    if wanted.any():
        if gazetteer is None:
            problems.flag(wanted, "lat/lon", "no coordinates and no gazetteer to geocode with")
        else:
            found = gazetteer.geocode(  # type: ignore[attr-defined]
                frame.loc[wanted, "postal_code"], frame.loc[wanted, "city"],
                frame.loc[wanted, "jurisdiction"],
            )
            found.index = frame.index[wanted]
            hit = found["lat"].notna()
            idx = found.index[hit]
            lat.loc[idx], lon.loc[idx] = found.loc[hit, "lat"], found.loc[hit, "lon"]
            precision.loc[idx] = found.loc[hit, "geocode_precision"]
            missed = wanted & lat.isna()
            problems.flag(missed, "lat/lon", [
                f"no coordinates, and neither postal code {z!r} nor city {c!r} is in the "
                f"offline gazetteer for {j or 'its jurisdiction'}"
                for z, c, j in frame.loc[missed, ["postal_code", "city", "jurisdiction"]]
                .itertuples(index=False)
            ])

    placed = lat.notna() & frame["jurisdiction"].isin(JURISDICTIONS)
    if placed.any():
        inside = geography.within_jurisdiction(  # type: ignore[attr-defined]
            lon[placed].to_numpy(), lat[placed].to_numpy(),
            frame.loc[placed, "jurisdiction"].to_numpy(), tolerance_km=tolerance_km,
        )
        outside = pd.Series(False, index=frame.index)
        outside[placed] = ~inside
        if outside.any():
            actual = geography.jurisdiction_of(  # type: ignore[attr-defined]
                lon[outside].to_numpy(), lat[outside].to_numpy(), tolerance_km=tolerance_km
            )
            problems.flag(outside, "lat/lon", [
                f"{la:.5f},{lo:.5f} lies {'in ' + a if a else 'outside every jurisdiction'}, "
                f"more than {tolerance_km:g} km from jurisdiction {j}"
                for la, lo, a, j in zip(lat[outside], lon[outside], actual,
                                        frame.loc[outside, "jurisdiction"], strict=True)
            ])
    return pd.DataFrame({"lat": lat, "lon": lon, "geocode_precision": precision})


def latlng_to_cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """H3 cell (hex string) of each point at ``resolution``."""
    if not 0 <= resolution <= 15:
        raise ValueError(f"resolution must be between 0 and 15, got {resolution}")
    return np.array(
        [h3.latlng_to_cell(float(a), float(o), resolution) for a, o in zip(lat, lon, strict=True)],
        dtype=object,
    )


def check_roster(
    missions: RawTable,
    people: RawTable,
    *,
    geography: object,
    gazetteer: object | None,
    h3_resolution: int,
    tolerance_km: float,
    online_geocoder: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> RosterCheck:
    """Validate and normalise a roster; returns the good rows and every problem found.

    People whose mission is missing or refused are refused too. Geocoding fills rows without
    coordinates (online first when given, then the offline gazetteer) and records the precision.
    """
    m_frame = missions.frame.copy()
    p_frame = people.frame.copy()
    mp = _Problems("missions", missions.rows)
    pp = _Problems("people", people.rows)

    _check_ids(mp, m_frame, "mission_id")
    for column in ("name",):
        mp.flag(m_frame[column] == "", column, "empty")
    countries = load_countries()
    m_frame["country_code"] = m_frame["country_code"].str.upper()
    _check_vocabulary(mp, m_frame, "country_code", (*countries.index, NO_SENDING_STATE))
    blank_name = m_frame["country_name"] == ""
    known = m_frame["country_code"].isin(countries.index)
    m_frame.loc[blank_name & known, "country_name"] = (
        m_frame.loc[blank_name & known, "country_code"].map(countries["name"])
    )
    m_frame.loc[blank_name & (m_frame["country_code"] == NO_SENDING_STATE), "country_name"] = (
        "International organisation"
    )
    _check_vocabulary(mp, m_frame, "mission_type", MISSION_TYPES)
    m_frame["jurisdiction"] = m_frame["jurisdiction"].str.upper()
    _check_vocabulary(mp, m_frame, "jurisdiction", JURISDICTIONS)
    _check_vocabulary(mp, m_frame, "ofm_office", OFM_OFFICES, allow_empty=True)
    m_frame["postal_code"] = _normalise_postal_code(m_frame["postal_code"])
    _check_pattern(mp, m_frame, "postal_code", _ZIP, "a 5-digit ZIP code (or ZIP+4)")
    _check_pattern(mp, m_frame, "duty_phone", _PHONE, "a phone number")
    _check_pattern(mp, m_frame, "email", _EMAIL, "an e-mail address")
    _check_pattern(mp, m_frame, "language", _LANGUAGE, "an ISO 639 language code such as 'es'")

    _check_ids(pp, p_frame, "person_id")
    pp.flag(p_frame["name"] == "", "name", "empty")
    _check_vocabulary(pp, p_frame, "role", ROLES)
    _check_vocabulary(pp, p_frame, "immunity", IMMUNITY_LEVELS)
    p_frame["jurisdiction"] = p_frame["jurisdiction"].str.upper()
    _check_vocabulary(pp, p_frame, "jurisdiction", JURISDICTIONS)
    p_frame["household_id"] = p_frame["household_id"].where(
        p_frame["household_id"] != "", p_frame["person_id"]
    )
    p_frame["postal_code"] = _normalise_postal_code(p_frame["postal_code"])
    _check_pattern(pp, p_frame, "household_id", _ID, "a valid id (1-64 letters, digits, _.:-)")
    _check_pattern(pp, p_frame, "postal_code", _ZIP, "a 5-digit ZIP code (or ZIP+4)")
    _check_pattern(pp, p_frame, "phone", _PHONE, "a phone number")
    _check_pattern(pp, p_frame, "email", _EMAIL, "an e-mail address")
    _check_pattern(pp, p_frame, "language", _LANGUAGE, "an ISO 639 language code such as 'es'")

    for frame, problems in ((m_frame, mp), (p_frame, pp)):
        located = _check_locations(
            problems, frame, geography=geography, gazetteer=gazetteer,
            tolerance_km=tolerance_km, online_geocoder=online_geocoder,
        )
        frame["lat"], frame["lon"] = located["lat"], located["lon"]
        frame["geocode_precision"] = located["geocode_precision"]

    # Missions: derive the OFM office where it was left empty.
    no_office = (m_frame["ofm_office"] == "") & m_frame["jurisdiction"].isin(JURISDICTIONS)
    m_frame.loc[no_office, "ofm_office"] = [
        ofm_office_for(j, la) for j, la in m_frame.loc[no_office, ["jurisdiction", "lat"]]
        .itertuples(index=False)
    ]

    good_missions = np.ones(len(m_frame), dtype=bool)
    good_missions[mp.bad_positions()] = False
    all_ids = set(m_frame["mission_id"])
    good_ids = set(m_frame.loc[good_missions, "mission_id"])
    unknown = ~p_frame["mission_id"].isin(all_ids)
    pp.flag(unknown, "mission_id", [
        f"{'empty' if v == '' else repr(v)}: no such mission in the missions file"
        for v in p_frame.loc[unknown, "mission_id"]
    ])
    refused = p_frame["mission_id"].isin(all_ids - good_ids)
    pp.flag(refused, "mission_id", [
        f"mission {v!r} was refused (see the missions file problems)"
        for v in p_frame.loc[refused, "mission_id"]
    ])

    good_people = np.ones(len(p_frame), dtype=bool)
    good_people[pp.bad_positions()] = False
    clean_m = _finish(m_frame[good_missions], MISSION_COLUMNS, h3_resolution)
    clean_p = _finish(p_frame[good_people], PERSON_COLUMNS, h3_resolution)
    problems = mp.as_list() + pp.as_list()
    logger.info(
        "roster checked: %d/%d missions and %d/%d people valid, %d problem(s)",
        len(clean_m), len(m_frame), len(clean_p), len(p_frame), len(problems),
    )
    return RosterCheck(clean_m, clean_p, problems, len(m_frame), len(p_frame))


def _finish(frame: pd.DataFrame, columns: tuple[str, ...], h3_resolution: int) -> pd.DataFrame:
    out = frame.loc[:, list(columns)].reset_index(drop=True)
    out["lat"] = out["lat"].astype("float64")
    out["lon"] = out["lon"].astype("float64")
    out["h3_cell"] = latlng_to_cells(out["lat"].to_numpy(), out["lon"].to_numpy(), h3_resolution)
    return out


# --------------------------------------------------------------------------- writing


def write_roster_csv(missions: pd.DataFrame, people: pd.DataFrame, out_dir: str | Path) -> tuple[
    Path, Path
]:
    """Write ``missions.csv`` and ``people.csv`` exactly in the format :func:`read_table` reads.

    Both are written whole under temporary names first and renamed only then: when a write
    fails (an ``OSError``, e.g. a full disk) no temporary file is left and the folder keeps
    the pair it had, never a new missions file beside an old or missing people file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "missions.csv", out / "people.csv")
    temps = tuple(path.with_suffix(".csv.tmp") for path in paths)
    try:
        for frame, columns, tmp in ((missions, MISSION_COLUMNS, temps[0]),
                                    (people, PERSON_COLUMNS, temps[1])):
            text = frame.loc[:, list(columns)].copy()
            text["lat"] = [repr(float(v)) for v in text["lat"]]
            text["lon"] = [repr(float(v)) for v in text["lon"]]
            text.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
        for tmp, path in zip(temps, paths, strict=True):
            tmp.replace(path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return paths


# --------------------------------------------------------------------------- statistics


def roster_stats(
    missions: pd.DataFrame, people: pd.DataFrame, *, geography: object | None = None,
    tolerance_km: float = 10.0,
) -> dict[str, object]:
    """Counts of a roster: totals, by jurisdiction, type, role, immunity and office.

    With ``geography``, also counts locations lying outside their own jurisdiction (beyond
    ``tolerance_km``), which a valid roster never has.
    """
    immune = people["immunity"].isin(("full", "official_acts"))
    by_jurisdiction: dict[str, dict[str, int]] = {}
    m_counts = missions["jurisdiction"].value_counts()
    p_counts = people["jurisdiction"].value_counts()
    i_counts = people.loc[immune, "jurisdiction"].value_counts()
    for code in sorted(set(m_counts.index) | set(p_counts.index)):
        by_jurisdiction[code] = {
            "missions": int(m_counts.get(code, 0)),
            "people": int(p_counts.get(code, 0)),
            "with_immunity": int(i_counts.get(code, 0)),
        }
    office = missions.set_index("mission_id")["ofm_office"]
    stats: dict[str, object] = {
        "missions": len(missions),
        "people": len(people),
        "with_immunity": int(immune.sum()),
        "households": int(people["household_id"].nunique()),
        "sending_states": int(missions.loc[missions["country_code"] != NO_SENDING_STATE,
                                           "country_code"].nunique()),
        "jurisdictions": len(by_jurisdiction),
        "by_jurisdiction": by_jurisdiction,
        "by_mission_type": _counts(missions["mission_type"]),
        "by_role": _counts(people["role"]),
        "by_immunity": _counts(people["immunity"]),
        "by_ofm_office": {
            code: {"missions": int((missions["ofm_office"] == code).sum()),
                   "people": int((people["mission_id"].map(office) == code).sum())}
            for code in OFM_OFFICES
        },
        "by_geocode_precision": _counts(pd.concat([missions["geocode_precision"],
                                                   people["geocode_precision"]])),
    }
    if geography is not None:
        outside = 0
        for frame in (missions, people):
            if len(frame):
                inside = geography.within_jurisdiction(  # type: ignore[attr-defined]
                    frame["lon"].to_numpy(), frame["lat"].to_numpy(),
                    frame["jurisdiction"].to_numpy(), tolerance_km=tolerance_km,
                )
                outside += int((~inside).sum())
        stats["locations_outside_jurisdiction"] = outside
        stats["jurisdiction_tolerance_km"] = tolerance_km
    return stats


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


# --------------------------------------------------------------------------- impact inputs


def roster_locations(missions: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Missions and people as one table of locations for the impact engine.

    ``location_id`` is ``"M:" + mission_id`` or ``"P:" + person_id`` (so a roster may reuse an
    id across the two files); ``kind`` is "mission" or "person"; people carry their mission's
    type, country and office, so counts by those dimensions include them.
    """
    mission_attrs = missions.set_index("mission_id")[["mission_type", "country_code",
                                                      "ofm_office"]]
    m = pd.DataFrame({
        "location_id": "M:" + missions["mission_id"],
        "kind": "mission",
        "id": missions["mission_id"],
        "mission_id": missions["mission_id"],
        "mission_type": missions["mission_type"],
        "country_code": missions["country_code"],
        "ofm_office": missions["ofm_office"],
        "jurisdiction": missions["jurisdiction"],
        "lat": missions["lat"], "lon": missions["lon"],
    })
    joined = mission_attrs.reindex(people["mission_id"]).reset_index(drop=True)
    p = pd.DataFrame({
        "location_id": "P:" + people["person_id"],
        "kind": "person",
        "id": people["person_id"],
        "mission_id": people["mission_id"],
        "mission_type": joined["mission_type"].to_numpy(),
        "country_code": joined["country_code"].to_numpy(),
        "ofm_office": joined["ofm_office"].to_numpy(),
        "jurisdiction": people["jurisdiction"],
        "role": people["role"], "immunity": people["immunity"],
        "household_id": people["household_id"],
        "lat": people["lat"], "lon": people["lon"],
    })
    return pd.concat([m, p], ignore_index=True)
