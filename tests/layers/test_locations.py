"""Roster reading and checking: every bad row named by row, column and reason."""

from __future__ import annotations

import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import h3
import numpy as np
import pandas as pd
import pytest

from layers.census_geocoder import CensusGeocoder
from layers.gazetteer import load_gazetteer
from layers.geography import load_geography
from layers.locations import (
    RosterFileError,
    check_roster,
    frame_to_raw,
    read_table,
    roster_stats,
    write_roster_csv,
)
from layers.schema import MISSION_COLUMNS, PERSON_COLUMNS


def _check(missions: pd.DataFrame, people: pd.DataFrame, **kwargs):
    return check_roster(
        frame_to_raw(missions, "missions"), frame_to_raw(people, "people"),
        geography=load_geography(), gazetteer=load_gazetteer(), h3_resolution=9,
        tolerance_km=10.0, **kwargs,
    )


@pytest.fixture
def roster(small_roster):
    missions, people = small_roster
    return missions.copy(), people.copy()


def _reasons(check, file: str) -> dict[tuple[int, str], str]:
    return {(p.row, p.column): p.reason for p in check.problems if p.file == file}


def test_clean_roster_passes_with_h3_cells(roster) -> None:
    missions, people = roster
    check = _check(missions, people)
    assert check.ok, check.problems[:3]
    assert list(check.missions.columns) == [*MISSION_COLUMNS, "h3_cell"]
    assert list(check.people.columns) == [*PERSON_COLUMNS, "h3_cell"]
    first = check.people.iloc[0]
    assert first["h3_cell"] == h3.latlng_to_cell(first["lat"], first["lon"], 9)
    assert len(check.people) == len(people)


def test_each_kind_of_bad_row_is_reported(roster) -> None:
    missions, people = roster
    people.loc[0, "immunity"] = "diplomatic"
    people.loc[1, "email"] = "not-an-email"
    people.loc[2, "lat"] = np.nan                      # lon given, lat missing
    people.loc[3, ["lat", "lon"]] = [0.0, 0.0]
    people.loc[4, "lat"] = 123.0
    people.loc[5, "person_id"] = people.loc[6, "person_id"]
    people.loc[7, "mission_id"] = "NO-SUCH-MISSION"
    people.loc[8, "jurisdiction"] = "ZZ"
    people.loc[9, "role"] = ""
    missions.loc[0, "country_code"] = "QQQ"
    check = _check(missions, people)
    reasons = _reasons(check, "people")
    assert "'diplomatic' is not one of full, official_acts, none" in reasons[(2, "immunity")]
    assert "is not an e-mail address" in reasons[(3, "email")]
    assert reasons[(4, "lat/lon")] == "give both lat and lon, or neither"
    assert "0,0 is a geocoding failure" in reasons[(5, "lat/lon")]
    assert "outside -90..90" in reasons[(6, "lat")]
    duplicate_row = 8 if (7, "person_id") not in reasons else 7
    assert "duplicate id" in reasons[(duplicate_row, "person_id")]
    assert "no such mission" in reasons[(9, "mission_id")]
    assert "'ZZ' is not one of" in reasons[(10, "jurisdiction")]
    assert "empty is not one of" in reasons[(11, "role")]
    assert "'QQQ' is not one of" in _reasons(check, "missions")[(2, "country_code")]
    # people of the refused mission are refused by their own rows
    refused = missions.loc[0, "mission_id"]
    refused_rows = set(np.flatnonzero(people["mission_id"] == refused) + 2)
    flagged = {row for (row, column) in reasons if column == "mission_id"}
    assert refused_rows <= flagged
    assert not check.ok
    assert len(check.people) == len(people) - check.bad_rows + 1  # one bad mission row
    assert set(check.people["person_id"]).isdisjoint(
        people.loc[[0, 1, 2, 3, 4, 7, 8, 9], "person_id"])


def test_location_outside_its_jurisdiction_names_where_it_is(roster) -> None:
    missions, people = roster
    people.loc[0, ["lat", "lon", "jurisdiction"]] = [47.6062, -122.3321, "FL"]
    reason = _reasons(_check(missions, people), "people")[(2, "lat/lon")]
    assert reason == "47.60620,-122.33210 lies in WA, more than 10 km from jurisdiction FL"


def test_rows_without_coordinates_are_geocoded_offline(roster) -> None:
    missions, people = roster
    people.loc[0, ["lat", "lon", "postal_code", "jurisdiction", "geocode_precision"]] = [
        np.nan, np.nan, "20500", "DC", ""]
    people.loc[1, ["lat", "lon", "postal_code", "city", "jurisdiction", "geocode_precision"]] = [
        np.nan, np.nan, "", "Houston", "TX", ""]
    people.loc[2, ["lat", "lon", "postal_code", "city", "jurisdiction", "geocode_precision"]] = [
        np.nan, np.nan, "", "Atlantis", "TX", ""]
    check = _check(missions, people)
    by_id = check.people.set_index("person_id")
    zip_row = by_id.loc[people.loc[0, "person_id"]]
    assert zip_row["geocode_precision"] == "zip"
    assert zip_row["lat"] == pytest.approx(38.9, abs=0.05)
    assert zip_row["lon"] == pytest.approx(-77.04, abs=0.05)
    assert by_id.loc[people.loc[1, "person_id"], "geocode_precision"] == "city"
    assert "'Atlantis'" in _reasons(check, "people")[(4, "lat/lon")]


def test_online_geocoder_is_used_first_and_failures_fall_back(roster) -> None:
    missions, people = roster
    people.loc[0, ["lat", "lon", "address", "city", "postal_code", "jurisdiction",
                   "geocode_precision"]] = [np.nan, np.nan, "1600 Pennsylvania Ave NW",
                                            "Washington", "20500", "DC", ""]
    people.loc[1, ["lat", "lon", "address", "city", "postal_code", "jurisdiction",
                   "geocode_precision"]] = [np.nan, np.nan, "1 Nowhere Rd", "Houston", "",
                                            "TX", ""]
    with _census_server() as url:
        geocoder = CensusGeocoder(url, timeout=5)
        check = _check(missions, people, online_geocoder=geocoder.geocode)
    by_id = check.people.set_index("person_id")
    white_house = by_id.loc[people.loc[0, "person_id"]]
    assert white_house["geocode_precision"] == "rooftop"
    assert white_house["lon"] == pytest.approx(-77.03654, abs=1e-5)
    assert by_id.loc[people.loc[1, "person_id"], "geocode_precision"] == "city"


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class _CensusHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        address = query.get("address", [""])[0]
        name = "census_onelineaddress_match.json" if "Pennsylvania" in address else \
            "census_onelineaddress_nomatch.json"
        body = (FIXTURES / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


class _census_server:
    def __enter__(self) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _CensusHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/geocoder/locations/onelineaddress"

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_files_round_trip_through_csv_xlsx_and_geojson(roster, tmp_path: Path) -> None:
    missions, people = roster
    check = _check(missions, people)
    _, csv_people = write_roster_csv(check.missions, check.people, tmp_path)
    from_csv = read_table(csv_people, "people").frame
    xlsx = tmp_path / "people.xlsx"
    from_csv.to_excel(xlsx, index=False)
    from_xlsx = read_table(xlsx, "people").frame
    pd.testing.assert_frame_equal(from_xlsx, from_csv)

    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(r.lon),
                                                                          float(r.lat)]},
         "properties": {c: r._asdict()[c] for c in PERSON_COLUMNS if c not in ("lat", "lon")}}
        for r in from_csv.head(20).itertuples(index=False)
    ]
    geojson = tmp_path / "people.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    from_geojson = read_table(geojson, "people")
    assert list(from_geojson.rows[:3]) == [1, 2, 3]
    assert from_geojson.frame["person_id"].tolist() == from_csv["person_id"].head(20).tolist()
    assert np.allclose(from_geojson.frame["lat"].astype(float),
                       from_csv["lat"].head(20).astype(float))


def test_excel_zip_codes_get_their_leading_zero_back(roster) -> None:
    missions, people = roster
    people.loc[0, "postal_code"] = "2134"
    check = _check(missions, people)
    assert check.people.set_index("person_id").loc[people.loc[0, "person_id"],
                                                   "postal_code"] == "02134"


def test_unreadable_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    missing_column = tmp_path / "m.csv"
    missing_column.write_text("mission_id,name\nM-1,Embassy\n")
    with pytest.raises(RosterFileError, match=r"missing required column.*country_code"):
        read_table(missing_column, "missions")
    (tmp_path / "x.pdf").write_text("x")
    with pytest.raises(RosterFileError, match="unsupported format"):
        read_table(tmp_path / "x.pdf", "missions")
    with pytest.raises(RosterFileError, match="does not exist"):
        read_table(tmp_path / "nope.csv", "people")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("mission_id,name,country_code,mission_type,jurisdiction\n"
                       "M-1,Embajada de España,ESP,embassy,DC\n".encode("latin-1"))
    with pytest.raises(RosterFileError, match="not UTF-8"):
        read_table(latin1, "missions")


@pytest.mark.parametrize("features", [
    ["not a feature"], [{"type": "Feature", "properties": "name"}],
    [{"type": "Feature", "properties": ["a", "b"]}], {"0": {}},
])
def test_geojson_features_that_are_not_objects_are_refused(features, tmp_path: Path) -> None:
    # AttributeError, ValueError or TypeError escaped read_table before
    path = tmp_path / "people.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(RosterFileError, match=r"feature 1 is not|'features' must be a list"):
        read_table(path, "people")


@pytest.mark.parametrize("geometry", [
    "POINT (1 2)", {"type": "Point", "coordinates": 7.5},
    {"type": "Point", "coordinates": {"0": -77.0, "1": 38.9}},
])
def test_geojson_point_that_is_not_a_list_is_a_row_problem(geometry, tmp_path: Path) -> None:
    # TypeError or KeyError escaped read_table before
    props = {c: "" for c in PERSON_COLUMNS if c not in ("lat", "lon")}
    path = tmp_path / "people.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geometry}]}))
    table = read_table(path, "people")
    assert table.frame["_geometry_error"].tolist() == ["feature 1: geometry must be a Point"]


def test_damaged_workbook_is_refused_with_a_reason(roster, tmp_path: Path) -> None:
    # KeyError, zipfile.BadZipFile or ElementTree.ParseError escaped read_table before
    missions, _ = roster
    good = tmp_path / "good.xlsx"
    missions.head(3).to_excel(good, index=False)
    with zipfile.ZipFile(good) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    damaged = {
        "no_content_types.xlsx": {k: v for k, v in parts.items()
                                  if k != "[Content_Types].xml"},
        "bad_sheet_xml.xlsx": {**parts, "xl/worksheets/sheet1.xml": b"<worksheet><"},
    }
    for name, members in damaged.items():
        with zipfile.ZipFile(tmp_path / name, "w") as book:
            for member, data in members.items():
                book.writestr(member, data)
    (tmp_path / "not_a_zip.xlsx").write_bytes(b"mission_id,name\n")
    for name in (*damaged, "not_a_zip.xlsx"):
        with pytest.raises(RosterFileError, match="not a readable XLSX workbook"):
            read_table(tmp_path / name, "missions")


def test_stats_count_immunity_and_jurisdictions(roster) -> None:
    missions, people = roster
    check = _check(missions, people)
    stats = roster_stats(check.missions, check.people, geography=load_geography())
    assert stats["people"] == len(people)
    assert stats["with_immunity"] == int(people["immunity"].isin(["full", "official_acts"]).sum())
    assert sum(v["people"] for v in stats["by_jurisdiction"].values()) == len(people)
    assert stats["locations_outside_jurisdiction"] == 0
