"""Browser tier: the dashboard really renders in headless chromium, with no personal data."""

from __future__ import annotations

import io
import time
from datetime import datetime, timezone

import pytest
from PIL import Image

from layers.gazetteer import load_gazetteer
from layers.geography import load_geography
from layers.locations import check_roster, frame_to_raw
from store.db import open_store
from store.roster import replace_roster
from tests.browser import LiveServer, chrome, console_errors, wait_for

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


def _distinct_colours(png: bytes) -> int:
    """Colours in the middle of the map (away from the colour bar and the mode bar)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    middle = image.crop((int(width * 0.2), int(height * 0.2), int(width * 0.75),
                         int(height * 0.8)))
    return len(middle.getcolors(maxcolors=1 << 24) or [])


def test_overview_renders_counts_and_map_without_personal_data(server, tmp_path,
                                                              small_roster) -> None:
    missions, people = small_roster
    driver = chrome(tmp_path)
    try:
        driver.get(server.url + "/")
        kpis = wait_for(driver, "#overview-kpis")
        # no live feeds in tests: the bundled recordings are shown, and labelled as such
        banner = wait_for(driver, "#overview-recorded")
        assert "RECORDED FEED DATA, NOT LIVE" in banner.text
        assert "NWS (2025-12-15)" in banner.text
        hazards = wait_for(driver, "#overview-hazards")
        assert "(recorded)" in hazards.text
        assert "Active hazards" in kpis.text
        assert "Members and dependents" in kpis.text
        assert f"{len(people):,}" in kpis.text
        assert f"{len(missions):,}" in kpis.text
        wait_for(driver, "#overview-map canvas.maplibregl-canvas")
        graph = driver.find_element("css selector", "#overview-map")
        # the map has drawn: boundaries, cells and markers give many colours; a blank map has few
        deadline = time.monotonic() + 30
        colours = 0
        while time.monotonic() < deadline and colours < 50:
            time.sleep(0.5)
            colours = _distinct_colours(graph.screenshot_as_png)
        assert colours >= 50, f"the map did not draw ({colours} colours)"
        page = driver.page_source
        for column in ("name", "phone", "email", "address"):
            for value in people[column].head(200):
                assert not value or value not in page, f"a person's {column} reached the page"
        assert console_errors(driver) == []
    finally:
        driver.quit()
