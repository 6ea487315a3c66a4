"""The synthetic demo roster: schema, realism targets, geography and determinism."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layers import demo
from layers.demo import (
    ATOLL_JURISDICTIONS,
    ATOLL_RESIDENCE_KM,
    ATOLL_TOLERANCE_KM,
    DEFAULT_SEED,
    generate_demo_roster,
)
from layers.geography import geodesic_km, load_geography
from layers.schema import (
    IMMUNITY_LEVELS,
    JURISDICTIONS,
    MISSION_COLUMNS,
    MISSION_TYPES,
    OFM_OFFICES,
    PERSON_COLUMNS,
    ROLES,
    ofm_office_for,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def roster() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_demo_roster()


@pytest.fixture(scope="module")
def missions(roster: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return roster[0]


@pytest.fixture(scope="module")
def people(roster: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return roster[1]


@pytest.fixture(scope="module")
def geo():
    return load_geography()


def _within(geo, frame: pd.DataFrame) -> np.ndarray:
    """Strictly inside the row's jurisdiction; atolls within the documented tolerance."""
    lon, lat = frame["lon"].to_numpy(), frame["lat"].to_numpy()
    codes = frame["jurisdiction"].to_numpy(dtype=object)
    ok = geo.within_jurisdiction(lon, lat, codes, tolerance_km=0.0)
    atoll = np.isin(codes, ATOLL_JURISDICTIONS)
    if atoll.any():
        ok[atoll] = geo.within_jurisdiction(lon[atoll], lat[atoll], codes[atoll],
                                            tolerance_km=ATOLL_TOLERANCE_KM)
    return ok


# --------------------------------------------------------------------------- schema


def test_columns_are_exactly_the_schema(missions, people):
    assert tuple(missions.columns) == MISSION_COLUMNS
    assert tuple(people.columns) == PERSON_COLUMNS


@pytest.mark.parametrize("which", ["missions", "people"])
def test_text_columns_are_str_and_coordinates_float(which, request):
    frame = request.getfixturevalue(which)
    for column in frame.columns:
        if column in ("lat", "lon"):
            assert frame[column].dtype == np.float64
            assert frame[column].notna().all()
        else:
            assert pd.api.types.is_string_dtype(frame[column]), column
            assert frame[column].notna().all(), column
            assert frame[column].map(type).eq(str).all(), column


def test_vocabularies(missions, people):
    assert set(missions["mission_type"]) == set(MISSION_TYPES)
    assert set(people["role"]) == set(ROLES)
    assert set(people["immunity"]) <= set(IMMUNITY_LEVELS)
    assert set(missions["jurisdiction"]) <= set(JURISDICTIONS)
    assert set(people["jurisdiction"]) <= set(JURISDICTIONS)
    assert (missions["geocode_precision"] == "provided").all()
    assert (people["geocode_precision"] == "provided").all()
    assert set(missions["ofm_office"]) <= set(OFM_OFFICES)
    expected = [ofm_office_for(j, y) for j, y in zip(missions["jurisdiction"], missions["lat"],
                                                      strict=True)]
    assert missions["ofm_office"].tolist() == expected
    language = re.compile(r"^[a-z]{2}$")
    assert missions["language"].str.match(language).all()
    assert people["language"].str.match(language).all()


def test_country_codes_are_bundled_or_io(missions):
    countries = pd.read_csv(ROOT / "data" / "countries.csv", dtype=str, keep_default_na=False)
    known = set(countries["alpha3"]) | {"XXX"}
    assert set(missions["country_code"]) <= known
    io = missions["mission_type"] == "io_office"
    assert (missions.loc[io, "country_code"] == "XXX").all()
    assert (missions.loc[~io, "country_code"] != "XXX").all()
    names = dict(zip(countries["alpha3"], countries["name"], strict=True))
    state = missions["country_code"] != "XXX"
    assert (missions.loc[state, "country_name"]
            == missions.loc[state, "country_code"].map(names)).all()


def test_ids_are_unique_and_well_formed(missions, people):
    assert missions["mission_id"].is_unique
    assert people["person_id"].is_unique
    assert missions["mission_id"].str.fullmatch(r"M-\d{5}").all()
    assert people["person_id"].str.fullmatch(r"P-\d{6}").all()
    assert people["household_id"].str.fullmatch(r"H-\d{6}").all()
    assert missions["mission_id"].iloc[0] == "M-00001"
    assert people["person_id"].iloc[0] == "P-000001"


def test_contacts_are_fictional(missions, people):
    phone = r"\+1 \d{3}-555-01\d{2}"
    assert missions["duty_phone"].str.fullmatch(phone).all()
    given = people["phone"] != ""
    assert given.mean() > 0.8
    assert people.loc[given, "phone"].str.fullmatch(phone).all()
    assert missions["email"].str.fullmatch(r"duty\.m\d{5}@example\.org").all()
    mail = people["email"] != ""
    assert people.loc[mail, "email"].str.fullmatch(r"[a-z]+\.[a-z]+\.\d+@example\.org").all()
    # Only children may go without phone and e-mail.
    assert (people.loc[~given | ~mail, "role"] == "dependent").all()


def test_names_are_in_latin_script(people):
    letters = set("".join(people["name"].unique()))
    scripts = {unicodedata.name(ch).split()[0] for ch in letters if ch.isalpha()}
    assert scripts == {"LATIN"}
    assert people["name"].str.fullmatch(r"\S.* \S+").all()


def test_addresses_and_postal_codes(missions, people):
    for frame in (missions, people):
        assert frame["address"].str.match(r"^\d+ \S").all()
        assert (frame["city"] != "").all()
        filled = frame["postal_code"] != ""
        assert filled.mean() > 0.95
        assert frame.loc[filled, "postal_code"].str.fullmatch(r"\d{5}").all()
    dc = missions["jurisdiction"] == "DC"
    assert missions.loc[dc, "address"].str.endswith((" NW", " NE", " SW", " SE")).all()


# --------------------------------------------------------------------------- realism targets


def test_totals_within_two_percent(missions, people):
    assert abs(len(missions) - 2_600) <= 0.02 * 2_600
    assert abs(len(people) - 124_000) <= 0.02 * 124_000
    immune = people["immunity"].isin(["full", "official_acts"]).sum()
    assert abs(immune - 62_000) <= 0.02 * 62_000


def test_every_jurisdiction_has_missions_and_people(missions, people):
    assert set(missions["jurisdiction"]) == set(JURISDICTIONS)
    assert set(people["jurisdiction"]) == set(JURISDICTIONS)


def test_mission_type_mix(missions, people):
    counts = missions["mission_type"].value_counts()
    assert counts["honorary_consulate"] > len(missions) / 2
    assert 300 <= counts["consulate_general"] + counts["consulate"] <= 700
    assert counts["io_office"] >= 10
    assert counts["other_office"] >= 10
    size = people.groupby("mission_id").size().reindex(missions["mission_id"], fill_value=0)
    size.index = missions["mission_type"].to_numpy()
    median = size.groupby(level=0).median()
    assert size["honorary_consulate"].max() <= 4
    assert median["honorary_consulate"] <= 2
    assert 10 <= median["consulate_general"] <= 99
    assert median["embassy"] >= 50
    assert median["un_permanent_mission"] >= 30


def test_one_embassy_per_state_in_washington(missions):
    dc = missions[(missions["mission_type"] == "embassy") & (missions["jurisdiction"] == "DC")]
    assert dc["country_code"].is_unique
    assert 170 <= len(dc) <= 195


def test_un_missions_in_east_midtown_on_land(missions, geo):
    un = missions[missions["mission_type"] == "un_permanent_mission"]
    assert 180 <= len(un) <= 200
    assert un["country_code"].is_unique
    assert un["lat"].between(40.745, 40.760).all()
    assert un["lon"].between(-73.985, -73.965).all()
    assert (un["jurisdiction"] == "NY").all()
    assert geo.within_jurisdiction(un["lon"], un["lat"], "NY", tolerance_km=0.0).all()
    assert {"New York"} == set(un["city"])


def test_io_offices_in_washington_and_new_york(missions):
    io = missions[missions["mission_type"] == "io_office"]
    assert set(io["jurisdiction"]) == {"DC", "NY"}
    for name in ("World Bank", "International Monetary Fund", "Organization of American States",
                 "Inter-American Development Bank", "United Nations Secretariat", "UNICEF"):
        assert io["name"].str.contains(name, regex=False).any(), name
    assert (io["country_name"] == "International organisation").all()


def test_consulates_concentrate_in_consular_cities(missions):
    career = missions[missions["mission_type"].isin(["consulate_general", "consulate"])]
    top = career["city"].value_counts()
    for city in ("New York", "Los Angeles", "Chicago", "Houston", "Miami", "San Francisco"):
        assert top[city] >= 20, city
    honorary = missions[missions["mission_type"] == "honorary_consulate"]
    assert honorary["city"].nunique() >= 200


def test_island_jurisdictions_are_plausible(missions):
    def of(code: str) -> pd.DataFrame:
        return missions[missions["jurisdiction"] == code]

    guam = of("GU")
    career = guam[guam["mission_type"].isin(["consulate_general", "consulate"])]
    assert {"JPN", "KOR", "PHL", "PLW", "FSM"} <= set(career["country_code"])
    majuro = of("MH")
    assert {"JPN", "TWN"} <= set(majuro.loc[majuro["mission_type"] == "embassy", "country_code"])
    assert set(majuro["city"]) == {"Majuro"}
    samoa = of("AS")
    assert "Pago Pago" in set(samoa["city"])
    assert (samoa["mission_type"].isin(["consulate_general", "honorary_consulate"])).all()
    for code in ("GU", "AS", "MH"):  # one post per sending state on a small island area
        assert of(code)["country_code"].is_unique, code
    assert "MHL" not in set(majuro["country_code"])
    assert "San Juan" in set(of("PR")["city"])
    assert {"ESP", "DOM"} <= set(of("PR").query("mission_type == 'consulate_general'")
                                 ["country_code"])


def test_real_wikidata_coordinates_are_used(missions):
    wd = pd.read_csv(ROOT / "data" / "demo" / "wikidata_missions_us.csv")
    wd = wd.dropna(subset=["latitude", "longitude"])
    real = set(zip(wd["latitude"].round(6), wd["longitude"].round(6), strict=True))
    used = [(y, x) in real for y, x in zip(missions["lat"].round(6), missions["lon"].round(6),
                                            strict=True)]
    assert sum(used) >= 230


# --------------------------------------------------------------------------- households


def test_every_person_belongs_to_a_mission(missions, people):
    assert people["mission_id"].isin(missions["mission_id"]).all()


def test_households_share_one_mission_and_residence(people):
    shared = ["mission_id", "address", "city", "jurisdiction", "postal_code", "lat", "lon"]
    assert (people.groupby("household_id")[shared].nunique() == 1).all().all()
    size = people.groupby("household_id").size()
    assert size.between(1, 6).all()
    assert 1.5 <= size.mean() <= 2.5
    members = people[people["role"] != "dependent"]
    assert members["household_id"].is_unique
    assert set(members["household_id"]) == set(people["household_id"])
    first = people.groupby("household_id", sort=False)["role"].first()
    assert (first != "dependent").all()


def test_immunity_follows_role(missions, people):
    mtype = people["mission_id"].map(missions.set_index("mission_id")["mission_type"])
    role, immunity = people["role"], people["immunity"]
    assert (immunity[role == "diplomatic_agent"] == "full").all()
    assert (immunity[role == "consular_officer"] == "official_acts").all()
    assert (immunity[role == "service_staff"] != "full").all()
    consular = mtype.isin(["consulate_general", "consulate", "honorary_consulate"])
    assert (immunity[consular & (role == "dependent")] == "none").all()
    assert (immunity[consular] != "full").all()
    io = people[mtype == "io_office"]
    assert set(io["role"]) <= {"io_staff", "dependent"}
    share = io["immunity"].value_counts(normalize=True)
    assert share["full"] < 0.15 < share["official_acts"]
    # Dependents share the member's immunity when it is full, else have none.
    member = people[role != "dependent"].set_index("household_id")["immunity"]
    dep = people[role == "dependent"]
    expected = dep["household_id"].map(member).where(lambda s: s == "full", "none")
    assert (dep["immunity"] == expected).all()


# --------------------------------------------------------------------------- geography


def test_missions_lie_in_their_jurisdiction(missions, geo):
    assert _within(geo, missions).all()


def test_residences_lie_in_their_jurisdiction(people, geo):
    homes = people.drop_duplicates("household_id")
    assert _within(geo, homes).all()
    strict = ~homes["jurisdiction"].isin(ATOLL_JURISDICTIONS)
    found = geo.jurisdiction_of(homes.loc[strict, "lon"], homes.loc[strict, "lat"],
                                tolerance_km=0.0)
    assert (found == homes.loc[strict, "jurisdiction"].to_numpy()).all()


def test_residences_at_commuting_distance(missions, people):
    homes = people.drop_duplicates("household_id")
    mission = missions.set_index("mission_id").loc[homes["mission_id"]]
    km = geodesic_km(homes["lon"].to_numpy(), homes["lat"].to_numpy(),
                     mission["lon"].to_numpy(), mission["lat"].to_numpy())
    assert 6.0 <= np.median(km) <= 15.0
    assert km.max() <= 51.0
    washington = (mission["jurisdiction"] == "DC").to_numpy()
    assert {"DC", "MD", "VA"} <= set(homes.loc[washington, "jurisdiction"])
    atoll = (mission["jurisdiction"].isin(ATOLL_JURISDICTIONS)).to_numpy()
    assert (km[atoll] <= ATOLL_RESIDENCE_KM).all()
    island = mission["jurisdiction"].isin(["HI", "GU", "AS", "PR", "AK", "MH"]).to_numpy()
    assert (homes["jurisdiction"].to_numpy()[island]
            == mission["jurisdiction"].to_numpy()[island]).all()


def test_bundled_city_centres_lie_in_their_jurisdiction(geo):
    cities = pd.read_csv(ROOT / "data" / "demo" / "cities.csv", keep_default_na=False)
    assert set(cities["jurisdiction"]) == set(JURISDICTIONS)
    assert not cities.duplicated(["city", "jurisdiction"]).any()
    assert _within(geo, cities).all()


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_roster(roster):
    again = generate_demo_roster(DEFAULT_SEED)
    pd.testing.assert_frame_equal(roster[0], again[0])
    pd.testing.assert_frame_equal(roster[1], again[1])


def test_other_seed_other_roster(roster):
    other_missions, other_people = generate_demo_roster(DEFAULT_SEED + 1)
    assert not other_missions.equals(roster[0])
    assert not other_people.equals(roster[1])
    # ... but the same realism targets.
    assert abs(len(other_people) - 124_000) <= 0.02 * 124_000
    immune = other_people["immunity"].ne("none").sum()
    assert abs(immune - 62_000) <= 0.02 * 62_000


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        generate_demo_roster(seed)


# --------------------------------------------------------------------------- hygiene


def test_demo_reads_only_bundled_files():
    owned = [ROOT / "layers" / "demo.py", *sorted((ROOT / "data" / "demo").iterdir())]
    for path in owned:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, path
        assert "/shared/geo" not in text, path
    assert demo.DEMO_DIR == ROOT / "data" / "demo"
