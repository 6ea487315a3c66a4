"""Offline geocoding: corrected ZIP points, city fallback and nearest ZIP."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import zipcodes

from layers.gazetteer import Gazetteer, load_gazetteer, normalise_city, normalise_zip
from layers.geography import geodesic_km, load_geography

WHITE_HOUSE = (-77.0365, 38.8977)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def built() -> tuple[Gazetteer, list[logging.LogRecord]]:
    """A fresh gazetteer, its table built while its log records are captured."""
    handler = _Records()
    logger = logging.getLogger("layers.gazetteer")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        gazetteer = Gazetteer(load_geography())
        gazetteer.geocode(["20500"], None, None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return gazetteer, handler.records


@pytest.fixture(scope="module")
def gz(built: tuple[Gazetteer, list[logging.LogRecord]]) -> Gazetteer:
    return built[0]


def test_load_gazetteer_is_cached() -> None:
    assert load_gazetteer() is load_gazetteer()


def test_white_house_zip(gz: Gazetteer) -> None:
    result = gz.geocode(["20500"], [""], ["DC"])
    row = result.iloc[0]
    assert row["geocode_precision"] == "zip"
    assert geodesic_km(row["lon"], row["lat"], *WHITE_HOUSE) < 1.0
    assert load_geography().jurisdiction_of(row["lon"], row["lat"]).tolist() == ["DC"]


def test_majuro_longitude_is_east(gz: Gazetteer) -> None:
    row = gz.geocode(["96960"], ["Majuro"], ["MH"]).iloc[0]
    assert row["geocode_precision"] == "zip"
    assert row["lon"] > 0
    assert geodesic_km(row["lon"], row["lat"], 171.38, 7.09) < 5.0
    assert load_geography().within_jurisdiction(row["lon"], row["lat"], "MH").tolist() == [True]


def test_every_package_zip_geocodes_inside_its_state_or_not_at_all(gz: Gazetteer) -> None:
    records = zipcodes.list_all()
    codes = [r["zip_code"] for r in records]
    states = [r["state"] for r in records]
    result = gz.geocode(codes, None, states)
    found = result["geocode_precision"] == "zip"
    assert found.sum() > 41_000
    assert not ((result["lat"] == 0) & (result["lon"] == 0)).any()
    assert result.loc[~found, "lat"].isna().all()
    ok = load_geography().within_jurisdiction(
        result.loc[found, "lon"], result.loc[found, "lat"], np.asarray(states)[found]
    )
    assert ok.all()


def test_build_logs_counts_only(built: tuple[Gazetteer, list[logging.LogRecord]]) -> None:
    messages = [r.getMessage() for r in built[1]]
    summary = next(m for m in messages if "dropped_no_point" in m)
    assert "'dropped_no_point': 872" in summary
    assert "'fixed_mh_sign': 1" in summary
    assert all("Majuro" not in m and "Cleveland" not in m for m in messages)


def test_city_fallback(gz: Gazetteer) -> None:
    result = gz.geocode(["", None, "99999", ""], ["Houston", " HOUSTON ", "houston", "Houston"],
                        ["TX", "TX", "TX", "tx"])
    assert result["geocode_precision"].tolist() == ["city"] * 4
    assert result["lat"].nunique() == 1
    lon, lat = result.iloc[0][["lon", "lat"]]
    assert -95.8 < lon < -95.0 and 29.5 < lat < 30.1


@pytest.mark.parametrize(("left", "right"), [("St. Louis", "Saint Louis"),
                                             ("Winston-Salem", "winston salem"),
                                             ("Mt Vernon", "Mount Vernon")])
def test_city_names_are_matched_loosely(left: str, right: str) -> None:
    keys = normalise_city(pd.Series([left, right]))
    assert keys[0] == keys[1]


def test_acceptable_city_names_match(gz: Gazetteer) -> None:
    # "Clutch City" is only an acceptable name (of 77002), never a primary one.
    result = gz.geocode([None], ["Clutch City"], ["TX"])
    assert result["geocode_precision"].tolist() == ["city"]
    assert geodesic_km(result["lon"][0], result["lat"][0], -95.3594, 29.7594) < 1.0


def test_unknown_gives_empty_precision_and_nan(gz: Gazetteer) -> None:
    result = gz.geocode(["00000", "", None], ["Nowhere Special", None, "Houston"],
                        ["TX", None, "ZZ"])
    assert result["geocode_precision"].tolist() == ["", "", ""]
    assert result["lat"].isna().all() and result["lon"].isna().all()


def test_zip_of_another_state_is_not_accepted(gz: Gazetteer) -> None:
    result = gz.geocode(["20500", "20500", "20500"], ["", "Albany", ""], ["NY", "NY", None])
    assert result["geocode_precision"].tolist() == ["", "city", "zip"]
    assert np.isnan(result["lat"][0])
    assert result["lat"][1] > 42  # Albany, NY, not Washington


def test_zip_formats(gz: Gazetteer) -> None:
    result = gz.geocode(["02134-1234", "02134", 2134, " 02134 ", "021345678", "2134.0"],
                        None, ["MA"] * 6)
    assert result["geocode_precision"].tolist() == ["zip"] * 6
    assert result["lat"].nunique() == 1
    assert normalise_zip(pd.Series(["00501", "501", "1234567", "abcde"])).tolist()[:2] == [
        "00501", "00501"
    ]
    assert normalise_zip(pd.Series(["1234567", "abcde"])).isna().all()


def test_series_index_and_dtypes(gz: Gazetteer) -> None:
    index = pd.Index(["p7", "p3"], name="person_id")
    result = gz.geocode(pd.Series(["20500", ""], index=index),
                        pd.Series(["", "Houston"], index=index),
                        pd.Series(["DC", "TX"], index=index))
    assert result.index.equals(index)
    assert result["lat"].dtype == np.float64 and result["lon"].dtype == np.float64
    assert result["geocode_precision"].map(type).eq(str).all()


def test_bad_arguments(gz: Gazetteer) -> None:
    with pytest.raises(ValueError, match="length"):
        gz.geocode(["20500", "20001"], ["Washington"], ["DC", "DC"])
    with pytest.raises(ValueError, match="different index"):
        gz.geocode(pd.Series(["20500"], index=[1]), pd.Series(["x"], index=[2]), None)
    with pytest.raises(ValueError, match="single string"):
        gz.geocode("20500", None, None)
    with pytest.raises(ValueError, match="lat must lie"):
        gz.nearest_zip([0.0], [95.0])


def _sphere_km(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat), np.radians(lats)
    h = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2)
    return 2 * 6371.0088 * np.arcsin(np.sqrt(h))


def test_nearest_zip_matches_brute_force(gz: Gazetteer) -> None:
    active = [r["zip_code"] for r in zipcodes.list_all() if r["active"]]
    points = gz.geocode(active, None, None)
    ok = (points["geocode_precision"] == "zip").to_numpy()
    codes = np.array(active, dtype=object)[ok]
    zlon, zlat = points["lon"].to_numpy()[ok], points["lat"].to_numpy()[ok]
    rng = np.random.default_rng(11)
    lon = np.concatenate([rng.uniform(-125, -66, 150), rng.uniform(-180, 180, 30),
                          [WHITE_HOUSE[0], 173.2, -179.99, 179.99]])
    lat = np.concatenate([rng.uniform(24, 50, 150), rng.uniform(-30, 70, 30),
                          [WHITE_HOUSE[1], 52.9, 51.9, 51.9]])
    result = gz.nearest_zip(lon, lat)
    for i in range(lon.size):
        # Every ZIP on the sphere, then the geodesic for all within 2 % of the closest.
        sphere = _sphere_km(lon[i], lat[i], zlon, zlat)
        near = np.flatnonzero(sphere <= sphere.min() * 1.02 + 1e-6)
        geodesic = geodesic_km(np.full(near.size, lon[i]), np.full(near.size, lat[i]),
                               zlon[near], zlat[near])
        assert result[i] == min(codes[near][geodesic == geodesic.min()]), i
    assert result[-4].startswith("20")
    assert gz.nearest_zip([np.nan], [0.0]).tolist() == [""]
