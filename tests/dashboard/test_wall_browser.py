"""Browser tier for the wall display: it takes new data without reloading, announces a new
incident, rotates its close-ups, and says "connection lost since" while the server is down,
then recovers by itself when the server is back."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import shapely

from feeds.model import Hazard
from store.db import open_store
from store.feeds import replace_hazards
from store.roster import replace_roster
from store.users import issue_token
from tests.browser import LiveServer, chrome, console_errors, wait_for

pytestmark = pytest.mark.browser

WALL_ENV = {"MISSIONWATCH_WALL_REFRESH_S": "1", "MISSIONWATCH_WALL_ROTATE_S": "1.5",
            "MISSIONWATCH_WALL_CHIME": "1"}


def _hazard(hazard_id: str, event: str, area: shapely.Polygon, now: datetime,
            severity: str = "severe") -> Hazard:
    return Hazard(hazard_id, "nws", event, "weather", severity=severity,
                  expires=now + timedelta(hours=6), geometry=area, geometry_method="polygon",
                  area_desc=f"{event} area", sent=now)


FLOOD = ("nws:wall-flood-dc", "Flash Flood Warning", shapely.box(-77.2, 38.8, -76.9, 39.05))
TORNADO = ("nws:wall-tornado-nyc", "Tornado Warning", shapely.box(-74.0, 40.74, -73.95, 40.765))
SURGE = ("nws:wall-surge-miami", "Storm Surge Warning", shapely.box(-80.35, 25.6, -80.1, 25.9))


def _until(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _text(driver, css: str) -> str:
    return driver.find_element("css selector", css).text


def test_wall_updates_in_place_and_recovers_after_a_server_restart(tmp_path,
                                                                  checked_small_roster):
    missions, people = checked_small_roster
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = open_store(url)
    now = datetime.now(timezone.utc)
    replace_roster(engine, missions, people, source="browser test roster", actor="test",
                   now=now, synthetic=True)
    _, secret = issue_token(engine, "ops wall", actor="test", now=now)
    replace_hazards(engine, "nws", [_hazard(*FLOOD, now)], now=now)
    live = LiveServer(url, tmp_path, extra_env=WALL_ENV)
    live.wait_ready()
    driver = chrome(tmp_path, (1920, 1080),
                    arguments=("--autoplay-policy=no-user-gesture-required",))
    try:
        driver.get(f"{live.url}/wall?token={secret}")
        wait_for(driver, "#wall-kpi-people")
        assert "Flash Flood Warning" in _text(driver, "#wall-incidents")
        assert driver.current_url.endswith("/wall")       # the token left the address bar
        # a marker that only survives if the page is never reloaded
        driver.execute_script("window.__sameDocument = 'yes';")
        first_src = driver.find_element("css selector", ".wall-national").get_attribute("src")
        _until(lambda: driver.execute_script(
            "return document.querySelector('.wall-national').naturalWidth") > 0,
            what="the national map to load")
        # clocks tick from the server's time
        _until(lambda: ":" in _text(driver, "#wall-clock-0"), what="the clocks")
        hazards_before = _text(driver, "#wall-kpi-hazards .wall-kpi-value")

        # new data arrives through the store: a tornado over the UN missions
        later = datetime.now(timezone.utc)
        replace_hazards(engine, "nws", [_hazard(*FLOOD, now),
                                        _hazard(*TORNADO, later, "extreme")], now=later)
        _until(lambda: "Tornado Warning" in _text(driver, "#wall-incidents"),
               what="the new incident on the wall")
        first_row = driver.find_element("css selector", "#wall-incidents .wall-incident")
        assert "NEW" in first_row.text and "Tornado Warning" in first_row.text
        assert "new" in first_row.get_attribute("class").split()
        assert driver.execute_script("return window.__sameDocument") == "yes"
        _until(lambda: driver.find_element("css selector", ".wall-national").get_attribute("src")
               != first_src, what="a new national map")
        hazards_after = _text(driver, "#wall-kpi-hazards .wall-kpi-value")
        assert int(hazards_after.replace(",", "")) == int(hazards_before.replace(",", "")) + 1
        assert driver.execute_script("return window.missionWatchWall.chimes") >= 1
        # the close-ups rotate, the new incident first
        _until(lambda: "Tornado Warning" in _text(driver, "#wall-closeup-title"),
               what="the new incident's close-up")
        assert driver.execute_script("return window.missionWatchWall.listKey").startswith(
            TORNADO[0] + ",")
        titles = set()
        _until(lambda: titles.add(_text(driver, "#wall-closeup-title")) or len(titles) >= 2,
               what="the close-ups to rotate")
        _until(lambda: driver.execute_script(
            "return document.querySelector('#wall-closeup-image').naturalWidth") > 0,
            what="a close-up image")
        assert console_errors(driver) == []
        # every tick is a callback input, which Dash records for undo: the page keeps that
        # record from growing (a week of ticks would be hundreds of thousands of entries)
        _until(lambda: driver.execute_script("return window.missionWatchHistoryCap.trimmed")
               > 0, timeout=15, what="the undo history to be trimmed")
        assert driver.execute_script(
            "return Math.max(...window.dash_stores.map(s => s.getState().history.past.length))"
        ) < 40

        # the server goes away: the wall says so, with the time it was lost
        beats = driver.execute_script("return window.missionWatchWall.beats")
        live.stop()
        banner = _until(lambda: driver.find_elements("css selector", "#wall-connection")
                        and driver.find_element("css selector", "#wall-connection").is_displayed()
                        and driver.find_element("css selector", "#wall-connection"),
                        timeout=40, what="the connection-lost banner")
        assert banner.text.startswith("CONNECTION LOST since ")
        assert "Reconnecting by itself" in banner.text
        # ... data changes while it is away, and the server comes back on the same port
        back = datetime.now(timezone.utc)
        replace_hazards(engine, "nws", [_hazard(*FLOOD, now), _hazard(*TORNADO, later,
                                                                     "extreme"),
                                        _hazard(*SURGE, back, "extreme")], now=back)
        live = LiveServer(url, tmp_path, extra_env=WALL_ENV, port=live.port)
        live.wait_ready()
        _until(lambda: not driver.find_element("css selector", "#wall-connection").is_displayed(),
               timeout=60, what="the wall to reconnect by itself")
        assert driver.execute_script("return window.missionWatchWall.beats") > beats
        assert "reconnected at" in _text(driver, "#wall-updated")
        _until(lambda: "Storm Surge Warning" in _text(driver, "#wall-incidents"),
               what="data that arrived during the outage")
        assert driver.execute_script("return window.__sameDocument") == "yes"
    finally:
        driver.quit()
        live.stop()
        engine.dispose()
