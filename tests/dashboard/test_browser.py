"""Browser tier: the dashboard really renders in headless chromium, with no personal data.

Visitors sign in through the real sign-in form (or open the wall display's token link); the
security headers, CSP included, are on for every response, and the console must stay clean.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.request
from datetime import datetime, timezone

import openpyxl
import pytest
from PIL import Image

from store.db import open_store
from store.roster import replace_roster
from store.users import create_user, issue_token, revoke_token
from tests.browser import (
    LiveServer,
    chrome,
    console_errors,
    sign_in,
    wait_for,
    wait_for_download,
)

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


@pytest.fixture
def server(tmp_path, checked_small_roster):
    missions, people = checked_small_roster
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(url)
    now = datetime.now(timezone.utc)
    replace_roster(engine, missions, people, source="browser test roster", actor="test",
                   now=now, synthetic=True)
    create_user(engine, "watch-officer", "display", PASSWORD, actor="test", now=now)
    create_user(engine, "duty-coordinator", "coordinator", PASSWORD, actor="test", now=now)
    create_user(engine, "second-coordinator", "coordinator", PASSWORD, actor="test", now=now)
    token, secret = issue_token(engine, "ops wall", actor="test", now=now)
    live = LiveServer(url, tmp_path)
    live.engine, live.token_id, live.token = engine, token.token_id, secret
    live.wait_ready()
    yield live
    live.stop()
    engine.dispose()


def _distinct_colours(png: bytes) -> int:
    """Colours in the middle of the map (away from the colour bar and the mode bar)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    middle = image.crop((int(width * 0.2), int(height * 0.2), int(width * 0.75),
                         int(height * 0.8)))
    return len(middle.getcolors(maxcolors=1 << 24) or [])


def _assert_overview_without_personal_data(driver, missions, people) -> None:
    kpis = wait_for(driver, "#overview-kpis")
    # no live feeds in tests: the bundled recordings are shown, and labelled as such
    banner = wait_for(driver, "#overview-recorded")
    assert "RECORDED FEED DATA, NOT LIVE" in banner.text
    assert "NWS (2025-12-15)" in banner.text
    panel = wait_for(driver, "#overview-panel")
    assert "Incidents" in panel.text
    assert "(recorded)" in wait_for(driver, "#overview-select").text
    assert "Active hazards" in kpis.text
    assert "Members and dependents" in kpis.text
    assert f"{len(people):,}" in kpis.text
    assert f"{len(missions):,}" in kpis.text
    wait_for(driver, "#overview-map canvas.maplibregl-canvas")
    graph = driver.find_element("css selector", "#overview-map")
    # the map has drawn (under the CSP): boundaries, cells and markers give many colours
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


def _map_view(driver) -> tuple[float, float, float]:
    view = driver.execute_script(
        "const g = document.querySelector('#overview-map .js-plotly-plot');"
        "return [g._fullLayout.map.center.lat, g._fullLayout.map.center.lon,"
        " g._fullLayout.map.zoom];")
    return tuple(view)


def _assert_map_views_move_the_map(driver) -> None:
    """Each one-click view centres the map on its jurisdiction (in the browser only)."""
    from dashboard.figures import MAP_VIEWS

    for name in ("Guam", "American Samoa", "Alaska", "Contiguous US"):
        driver.find_element(
            "xpath", f"//button[contains(@class, 'view-button') and text()='{name}']").click()
        deadline = time.monotonic() + 10
        lat, lon, zoom = MAP_VIEWS[name]
        while time.monotonic() < deadline:
            got = _map_view(driver)
            if abs(got[0] - lat) < 0.01 and abs(got[1] - lon) < 0.01:
                break
            time.sleep(0.2)
        assert abs(got[0] - lat) < 0.01 and abs(got[1] - lon) < 0.01, (name, got)
        assert abs(got[2] - zoom) < 0.01, (name, got)


def test_overview_renders_counts_and_map_without_personal_data(server, tmp_path,
                                                              checked_small_roster) -> None:
    missions, people = checked_small_roster
    with urllib.request.urlopen(server.url + "/login") as response:
        csp = response.headers["Content-Security-Policy"]
    assert "worker-src 'self' blob:" in csp and "'unsafe-eval'" not in csp
    driver = chrome(tmp_path)
    try:
        driver.get(server.url + "/")  # anonymous: sent to the sign-in form
        wait_for(driver, "input[name=username]")
        assert "/login" in driver.current_url
        sign_in(driver, server.url, "watch-officer", PASSWORD)
        _assert_overview_without_personal_data(driver, missions, people)
        assert "watch-officer (display)" in wait_for(driver, "#auth-who").text
        assert "Administration" not in wait_for(driver, ".topbar").text
        _assert_map_views_move_the_map(driver)
        assert console_errors(driver) == []
        driver.find_element("css selector", "#auth-sign-out").click()
        wait_for(driver, "input[name=username]")
        driver.get(server.url + "/")
        wait_for(driver, "input[name=username]")  # signed out for real

        # the wall display: its token link gives a display session, and the URL drops it
        driver.get(f"{server.url}/?token={server.token}")
        _assert_overview_without_personal_data(driver, missions, people)
        assert "token" not in driver.current_url
        assert console_errors(driver) == []
        revoke_token(server.engine, server.token_id, actor="test",
                     now=datetime.now(timezone.utc))
        driver.refresh()
        wait_for(driver, "input[name=username]")  # revoked: the session is gone at once
    finally:
        driver.quit()


def _csv_person_ids(path) -> list[str]:
    lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines()
             if line and not line.lstrip('"').startswith("# ")]
    return [row["person_id"] for row in csv.DictReader(io.StringIO("\n".join(lines)))]


def test_coordinator_opens_an_incident_and_exports_its_call_list(server, tmp_path) -> None:
    """The journey of a night shift: overview -> top incident -> missions -> CSV and XLSX."""
    from dashboard.services import Services, incident_view
    from settings import Settings

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chrome(tmp_path, downloads=downloads)
    try:
        sign_in(driver, server.url, "duty-coordinator", PASSWORD)
        wait_for(driver, "#overview-kpis")
        link = wait_for(driver, "#overview-select a.incident-link")
        key = link.get_attribute("href").rsplit("/incident/", 1)[1]
        link.click()
        title = wait_for(driver, "#incident-title")
        expected = incident_view(
            Services.from_engine(server.engine, Settings.from_env({})), (key,),
            datetime.now(timezone.utc))
        assert title.text == expected.hazards.iloc[0]["event"]
        kpis = wait_for(driver, "#incident-kpis").text
        assert f"{expected.totals['missions']:,}" in kpis
        assert f"{expected.totals['people']:,}" in kpis
        missions_table = wait_for(driver, "#incident-missions")
        first = expected.missions.iloc[0]
        assert first["name"] in missions_table.text  # the first mission to call is listed
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            people_rows = driver.find_elements("css selector", "#incident-people tbody tr")
            if len(people_rows) > 1:
                break
            time.sleep(0.2)
        assert len(people_rows) > 1, "the affected people did not load"

        wait_for(driver, "#incident-export-csv").click()
        csv_file = wait_for_download(downloads, ".csv")
        listed = [p for p in _csv_person_ids(csv_file) if p]
        assert sorted(listed) == sorted(p for p in expected.calls["person_id"] if p)
        assert len(_csv_person_ids(csv_file)) == len(expected.calls)

        wait_for(driver, "#incident-export-xlsx").click()
        xlsx_file = wait_for_download(downloads, ".xlsx")
        book = openpyxl.load_workbook(xlsx_file, read_only=True)
        assert book.sheetnames[0] == "Summary"
        rows = 0
        for sheet in book.sheetnames[1:]:
            values = list(book[sheet].iter_rows(values_only=True))
            rows += len(values) - 1
        assert rows == len(expected.calls)
        assert console_errors(driver) == []
    finally:
        driver.quit()


def _text_within(driver, css: str, wanted: str, seconds: float) -> str:
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        try:
            text = driver.find_element("css selector", css).text
        except StaleElementReferenceException:
            text = ""
        if wanted in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{wanted!r} did not appear in {css} within {seconds} s: {text!r}")


def _click(driver, css: str, seconds: float = 15.0) -> None:
    """Click ``css`` once it is there, again if the page redrew it under the pointer."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
    )

    deadline = time.monotonic() + seconds
    while True:
        try:
            driver.find_element("css selector", css).click()
            return
        except (StaleElementReferenceException, NoSuchElementException,
                ElementClickInterceptedException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_two_coordinators_see_each_others_outreach_without_reloading(server, tmp_path) -> None:
    """Ana opens outreach from an incident and records a call; Bo's open board shows it."""
    ana = chrome(tmp_path / "ana")
    bo = chrome(tmp_path / "bo")
    try:
        sign_in(ana, server.url, "duty-coordinator", PASSWORD)
        wait_for(ana, "#overview-select a.incident-link").click()
        wait_for(ana, "#incident-open-board").click()
        wait_for(ana, "#outreach-title")
        board_url = ana.current_url
        assert "/outreach/" in board_url

        sign_in(bo, server.url, "second-coordinator", PASSWORD, next_path="/")
        wait_for(bo, "#overview-kpis")
        bo.get(board_url)
        wait_for(bo, "#outreach-title")
        _click(bo, "#outreach-view input[value='all']")
        wait_for(bo, "#outreach-missions-reached")
        _text_within(bo, "#outreach-missions-reached", "0 /", 10)
        marker = tmp_path.name  # a note no one else could have written
        bo_reload_guard = bo.execute_script("window.__notReloaded = true; return true;")
        assert bo_reload_guard

        _click(ana, "#outreach-view input[value='all']")
        _text_within(ana, "#outreach-count", "everyone", 10)
        time.sleep(0.5)  # the table redraws for the new view; then tick its first row
        _click(ana, "#outreach-table td.dash-select-cell input")
        selected = _text_within(ana, "#outreach-selected", "Now:", 10)
        _click(ana, "#outreach-status input[value='reached_safe']")
        ana.find_element("css selector", "#outreach-note").send_keys(f"all safe {marker}")
        _click(ana, "#outreach-save")
        _text_within(ana, "#outreach-result", "Saved", 10)

        # Bo's screen takes it on its own, within a few seconds, without reloading
        if "(duty contact)" in selected:
            _text_within(bo, "#outreach-missions-reached", "1 /", 15)
        _text_within(bo, "#outreach-table", f"all safe {marker}", 15)
        assert bo.execute_script("return window.__notReloaded === true;")
        assert console_errors(ana) == [] and console_errors(bo) == []
    finally:
        ana.quit()
        bo.quit()
