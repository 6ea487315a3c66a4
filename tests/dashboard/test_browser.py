"""Browser tier: the dashboard really renders in headless chromium, with no personal data."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from layers.gazetteer import load_gazetteer
from layers.geography import load_geography
from layers.locations import check_roster, frame_to_raw
from store.db import open_store
from store.roster import replace_roster
from tests.browser import LiveServer, chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path, small_roster):
    missions, people = small_roster
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(url)
    check = check_roster(frame_to_raw(missions, "missions"), frame_to_raw(people, "people"),
                         geography=load_geography(), gazetteer=load_gazetteer(),
                         h3_resolution=9, tolerance_km=10.0)
    replace_roster(engine, check.missions, check.people, source="browser test roster",
                   actor="test", now=datetime.now(timezone.utc), synthetic=True)
    engine.dispose()
    live = LiveServer(url, tmp_path)
    live.wait_ready()
    yield live
    live.stop()


def test_overview_renders_counts_and_map_without_personal_data(server, tmp_path,
                                                              small_roster) -> None:
    missions, people = small_roster
    dom = chromium(server.url + "/", tmp_path, dump_dom=True)
    assert "Members and dependents" in dom
    assert f"{len(people):,}" in dom
    assert f"{len(missions):,}" in dom
    assert "maplibregl-canvas" in dom or "mapboxgl-canvas" in dom or "js-plotly-plot" in dom
    for column in ("name", "phone", "email", "address"):
        for value in people[column].head(200):
            assert not value or value not in dom, f"a person's {column} reached the page"
