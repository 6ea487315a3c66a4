"""`python app.py impact`: counts match a brute-force oracle on the stored roster."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import shapely
import shapely.geometry
from pyproj import Geod

from layers.locations import write_roster_csv
from tests.test_cli import run_app

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "hazards" / "few_hazards.geojson"
WGS84 = Geod(ellps="WGS84")


def _oracle(missions, people) -> dict[str, dict[str, set]]:
    """For each hazard: the mission and person ids inside it, by a plain loop."""
    features = json.loads(FIXTURE.read_text())["features"]
    result = {}
    for feature in features:
        props = feature["properties"]
        geometry = shapely.geometry.shape(feature["geometry"])
        inside: dict[str, set] = {"missions": set(), "people": set()}
        for kind, frame, column in (("missions", missions, "mission_id"),
                                    ("people", people, "person_id")):
            for row in frame.itertuples(index=False):
                lon, lat = float(row.lon), float(row.lat)
                if "radius_km" in props:
                    _, _, metres = WGS84.inv(geometry.x, geometry.y, lon, lat)
                    hit = metres <= props["radius_km"] * 1000
                else:  # a shape drawn beyond +180 covers a point at lon + 360 too
                    hit = any(geometry.intersects(shapely.Point(x, lat))
                              for x in (lon, lon + 360, lon - 360))
                if hit:
                    inside[kind].add(getattr(row, column))
        result[props["hazard_id"]] = inside
    return result


@pytest.fixture
def stored_roster(tmp_path: Path, small_roster):
    missions, people = small_roster
    files = tmp_path / "files"
    write_roster_csv(missions, people, files)
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    run_app("roster", "import", "--missions", str(files / "missions.csv"), "--people",
            str(files / "people.csv"), database_url=url, data_dir=tmp_path, check=True)
    return url


def test_impact_counts_match_the_oracle(stored_roster: str, tmp_path: Path, small_roster) -> None:
    missions, people = small_roster
    oracle = _oracle(missions, people)
    assert all(oracle[h]["people"] for h in ("dc-flood", "dc-heat", "nyc-surge")), \
        "the fixture should touch people"
    assert oracle["pacific-tsunami"]["missions"], "the fixture should reach the Pacific"
    result = run_app("impact", str(FIXTURE), "--json", "--out", str(tmp_path / "pairs.csv"),
                     database_url=stored_roster, data_dir=tmp_path, check=True)
    report = json.loads(result.stdout)
    by_id = {h["hazard_id"]: h for h in report["hazards"]}
    immune = set(people.loc[people["immunity"] != "none", "person_id"])
    households = dict(zip(people["person_id"], people["household_id"], strict=True))
    for hazard_id, expected in oracle.items():
        got = by_id[hazard_id]
        assert got["missions"] == len(expected["missions"]), hazard_id
        assert got["people"] == len(expected["people"]), hazard_id
        assert got["with_immunity"] == len(expected["people"] & immune), hazard_id
        assert got["households"] == len({households[p] for p in expected["people"]}), hazard_id
    union_people = set().union(*(e["people"] for e in oracle.values()))
    union_missions = set().union(*(e["missions"] for e in oracle.values()))
    assert report["total"]["people"] == len(union_people)
    assert report["total"]["missions"] == len(union_missions)

    with (tmp_path / "pairs.csv").open(newline="") as handle:
        pairs = list(csv.DictReader(handle))
    for hazard_id, expected in oracle.items():
        got_people = {r["id"] for r in pairs if r["hazard_id"] == hazard_id
                      and r["kind"] == "person"}
        assert got_people == expected["people"], hazard_id
    assert all(float(r["edge_distance_km"]) >= 0 for r in pairs)

    table = run_app("impact", str(FIXTURE), database_url=stored_roster, data_dir=tmp_path,
                    check=True).stdout
    assert "all hazards, each location once" in table
    assert f"{len(union_people):,}" in table


def test_impact_refuses_a_bad_hazard_file(stored_roster: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"severity": "apocalyptic"},
         "geometry": {"type": "Point", "coordinates": [0, 0]}}]}))
    result = run_app("impact", str(bad), database_url=stored_roster, data_dir=tmp_path)
    assert result.returncode == 1
    assert "feature 1: severity 'apocalyptic' is not one of" in result.stderr
