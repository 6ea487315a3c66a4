"""Take the README's screenshots from a real server on the bundled demo data.

    python scripts/screenshots.py [OUT_DIR]      # default: docs/

Starts ``python app.py serve --no-poll`` on a free loopback port over a throw-away data
directory (demo roster, recorded feed snapshots), signs in through the sign-in form as a
coordinator in headless Debian chromium, and saves ``overview.png``, ``incident.png`` and
``outreach.png`` (the top incident's outreach board, which it opens) at 1600x1250; then opens
the wall display through a display token and saves ``wall-1920x1080.png`` and
``wall-3840x2160.png``; last, starts a drill and saves ``drill.png``, opens drill outreach,
records outcomes through the API and saves the after-action report, ``drill-report.png``.
Needs the test extra
(selenium) and chromium with chromium-driver.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import LiveServer, chrome, sign_in, wait_for  # noqa: E402

PASSWORD = "screenshot password 1"


def _cli(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "MISSIONWATCH_DATA_DIR": str(data_dir),
           "MISSIONWATCH_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, env=env,
                          input=stdin, text=True, check=True, capture_output=True)
    return done.stdout


def _wall(server: LiveServer, data_dir: Path, token: str, out: Path) -> None:
    """The wall display at full HD and at 4K (the viewport exactly, not the window)."""
    driver = chrome(data_dir, size=(1920, 1080))
    try:
        for width, height in ((1920, 1080), (3840, 2160)):
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            driver.get(f"{server.url}/wall?token={token}")
            wait_for(driver, "#wall-kpi-people", timeout=60)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not driver.execute_script(
                    "const imgs = [...document.querySelectorAll('.wall img')];"
                    "return imgs.length > 6 && imgs.every(i => i.complete && i.naturalWidth);"):
                time.sleep(0.3)
            time.sleep(2)  # the clocks' first tick
            driver.save_screenshot(str(out / f"wall-{width}x{height}.png"))
    finally:
        driver.quit()


def _settle(driver, css: str, seconds: float = 4.0) -> None:
    wait_for(driver, css, timeout=60)
    time.sleep(seconds)  # let MapLibre finish drawing tiles of the bundled base map


def _drill(server: LiveServer, data_dir: Path, out: Path) -> None:
    """A running drill (the Potomac scenario at 600x, so several injects have fired)."""
    _cli(data_dir, "drill", "start", "potomac-flood-heat", "--speed", "600",
         "--name", "Potomac flood and heat drill")
    profile = data_dir / "drill-browser"   # a fresh browser: not the wall's display session
    profile.mkdir(exist_ok=True)
    driver = chrome(profile, size=(1600, 1250))
    try:
        sign_in(driver, server.url, "coordinator", PASSWORD, next_path="/drill/1")
        wait_for(driver, "#drill-status", timeout=60)
        time.sleep(20)  # about three scenario hours: heat, then the river floods
        driver.save_screenshot(str(out / "drill.png"))
        # drill outreach, some of it recorded through the API, then the after-action report
        wait_for(driver, "#drill-open-board").click()
        deadline = time.monotonic() + 60
        while "/outreach/" not in driver.current_url and time.monotonic() < deadline:
            time.sleep(0.3)
        board = int(driver.current_url.rsplit("/", 1)[1])
        _record_outcomes(server, data_dir, board)
        time.sleep(2)
        driver.get(f"{server.url}/exports/drill/1/report.html")
        wait_for(driver, "svg", timeout=60)
        driver.save_screenshot(str(out / "drill-report.png"))
    finally:
        driver.quit()


def _record_outcomes(server: LiveServer, data_dir: Path, board: int) -> None:
    """Outcomes for the first 60 targets of the drill's board, as a coordinator's client
    would record them (an API token of the coordinator)."""
    token = re.search(r"mwa_[A-Za-z0-9_-]+",
                      _cli(data_dir, "users", "token", "--api", "coordinator")).group(0)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(
        f"{server.url}/api/v1/boards/{board}/targets?per_page=60", headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        targets = json.load(answer)["items"]
    for number, target in enumerate(targets):
        status = ("reached_needs_assistance" if number % 9 == 4 else
                  "attempted" if number % 7 == 3 else "reached_safe")
        body = json.dumps({"status": status, "note": "drill call"}).encode()
        request = urllib.request.Request(
            f"{server.url}/api/v1/boards/{board}/targets/{target['target_kind']}/"
            f"{urllib.parse.quote(target['target_id'], safe='')}/status",
            data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=60):
            pass
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(ROOT / "docs"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="missionwatch-shots-") as tmp:
        data_dir = Path(tmp)
        _cli(data_dir, "roster", "generate")
        _cli(data_dir, "users", "add", "coordinator", "--role", "coordinator",
             "--password-stdin", stdin=PASSWORD + "\n")
        token = re.search(r"mwd_[A-Za-z0-9_-]+",
                          _cli(data_dir, "users", "token", "--display", "ops wall")).group(0)
        server = LiveServer(f"sqlite:///{data_dir / 'missionwatch.sqlite3'}", data_dir)
        try:
            server.wait_ready()
            driver = chrome(data_dir, size=(1600, 1250))
            try:
                sign_in(driver, server.url, "coordinator", PASSWORD)
                _settle(driver, "#overview-map canvas.maplibregl-canvas", 8)
                driver.save_screenshot(str(out / "overview.png"))
                link = wait_for(driver, "#overview-select a.incident-link")
                driver.get(link.get_attribute("href"))
                _settle(driver, "#incident-people tbody tr", 2)
                driver.save_screenshot(str(out / "incident.png"))
                wait_for(driver, "#incident-open-board").click()
                _settle(driver, "#outreach-table tbody tr", 3)
                driver.save_screenshot(str(out / "outreach.png"))
            finally:
                driver.quit()
            _wall(server, data_dir, token, out)
            _drill(server, data_dir, out)
        finally:
            server.stop()
    print(f"wrote overview.png, incident.png, outreach.png, wall-1920x1080.png, "
          f"wall-3840x2160.png, drill.png and drill-report.png in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
