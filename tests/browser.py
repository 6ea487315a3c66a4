"""Helpers for the browser tier: a live server process and headless Debian chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_BROWSER = os.environ.get("MISSIONWATCH_REQUIRE_BROWSER", "") == "1"


def chromium_path() -> str:
    """The chromium binary, or skip (fail under CI, which installs it)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if REQUIRE_BROWSER:
        pytest.fail("MISSIONWATCH_REQUIRE_BROWSER=1 but chromium is not installed")
    pytest.skip("chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``python app.py serve`` in its own process on a free loopback port."""

    def __init__(self, database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None,
                 port: int | None = None):
        self.port = port or free_port()   # a port: a restart of a stopped server
        env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONWATCH_")}
        env.update(DATABASE_URL=database_url, MISSIONWATCH_DATA_DIR=str(data_dir),
                   MISSIONWATCH_LOG_LEVEL="WARNING", **(extra_env or {}))
        self.log = data_dir / f"server-{self.port}.log"
        self._log_handle = self.log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "serve", "--port", str(self.port),
             "--no-poll"],
            cwd=ROOT, env=env, stdout=self._log_handle, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_handle.close()


def chrome(tmp_path: Path, size: tuple[int, int] = (1600, 1000),
           downloads: Path | None = None, arguments: tuple[str, ...] = ()):
    """A headless Debian chromium driven through Debian's chromedriver; files it downloads go
    to ``downloads`` (none are allowed without it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = chromium_path()
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        if REQUIRE_BROWSER:
            pytest.fail("MISSIONWATCH_REQUIRE_BROWSER=1 but chromedriver is not installed")
        pytest.skip("chromedriver is not installed (apt-get install chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
        "--use-angle=swiftshader", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={size[0]},{size[1]}", *arguments,
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads), "download.prompt_for_download": False,
            "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    behaviour = ({"behavior": "allow", "downloadPath": str(downloads)} if downloads is not None
                 else {"behavior": "deny"})
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", behaviour)
    return driver


def wait_for_download(folder: Path, suffix: str, timeout: float = 30.0) -> Path:
    """The file ending in ``suffix`` that chromium finished downloading into ``folder``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if not p.name.endswith(".crdownload")]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} file was downloaded into {folder}")


def wait_for(driver, css: str, timeout: float = 30.0):
    """The first element matching ``css`` once it is displayed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def sign_in(driver, base_url: str, username: str, password: str, next_path: str = "/") -> None:
    """Sign in through the real sign-in form (as a person would)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/login?next={next_path}")
    wait_for(driver, "input[name=username]").send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#sign-in").click()


def console_errors(driver) -> list[str]:
    """Console messages at SEVERE level (JavaScript errors, failed requests)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
