"""The first page: roster counts and an aggregated map, with no personal data in it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import plotly.utils
import pytest

from dashboard import figures
from dashboard.app import create_app
from dashboard.services import Services
from layers.gazetteer import load_gazetteer
from layers.geography import load_geography
from layers.locations import check_roster, frame_to_raw
from settings import Settings
from store.roster import replace_roster

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def services(store_engine, small_roster, tmp_path):
    missions, people = small_roster
    check = check_roster(frame_to_raw(missions, "missions"), frame_to_raw(people, "people"),
                         geography=load_geography(), gazetteer=load_gazetteer(),
                         h3_resolution=9, tolerance_km=10.0)
    replace_roster(store_engine, check.missions, check.people, source="test roster",
                   actor="test", now=NOW, synthetic=True)
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    return Services.from_engine(store_engine, settings)


def _personal_values(people: pd.DataFrame) -> list[str]:
    values = []
    for column in ("name", "phone", "email", "address"):
        values += [v for v in people[column].head(300) if v]
    return values


def test_cells_geojson_is_antimeridian_safe() -> None:
    import h3

    cell = h3.latlng_to_cell(51.5, 179.99, 3)  # an Aleutian cell across 180
    ring = figures.cells_geojson(pd.Series([cell]))["features"][0]["geometry"]["coordinates"][0]
    lons = [p[0] for p in ring]
    assert max(lons) - min(lons) < 10
    assert ring[0] == ring[-1]


def test_roster_view_counts_and_cache(services, small_roster) -> None:
    missions, people = small_roster
    view = services.roster_view()
    assert view.stats["people"] == len(people)
    assert view.stats["missions"] == len(missions)
    assert int(view.cell_counts["people"].sum()) == len(people)
    assert services.roster_view() is view  # same roster version: served from the cache
    assert set(view.missions.columns) == {"mission_id", "name", "country_name", "mission_type",
                                          "city", "jurisdiction", "ofm_office", "lat", "lon"}


def test_overview_page_has_counts_and_no_personal_data(services, small_roster) -> None:
    _, people = small_roster
    app = create_app(services.settings, services)
    import dash

    overview = next(p for p in dash.page_registry.values() if p["path"] == "/")
    page = json.dumps(overview["layout"](), cls=plotly.utils.PlotlyJSONEncoder)
    assert f"{len(people):,}" in page
    assert "SYNTHETIC DEMO DATA" in page
    for value in _personal_values(people):
        assert value not in page, "personal data on the overview page"
    # the page shell is served only after sign-in; anonymous visitors go to the sign-in form
    client = app.server.test_client()
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert b"Mission Watch" in client.get("/login").data
