"""A production-shaped Mission Watch on this machine, for the fault tests.

* :class:`PrivatePostgres` — a PostgreSQL cluster of the test's own (``scripts/test-postgres.sh``
  on a free port in a temporary folder), so a test may stop and restart it without touching
  the server the rest of the suite uses.
* :class:`Process` — ``gunicorn --config deploy/gunicorn.conf.py`` (several workers) or
  ``python app.py feeds poll``, started with a clean environment, its output kept in a file.
* :func:`seed_store` — the small roster, an incident over part of it, a coordinator with an
  API token and a display token, written straight into the store.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import shapely

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "test-postgres.sh"
REQUIRE_POSTGRES = os.environ.get("MISSIONWATCH_REQUIRE_POSTGRES", "") == "1"
PASSWORD = "fault test password, not a secret"
# Washington DC and its Maryland and Virginia suburbs: dozens of the small roster's people
DC_AREA = shapely.box(-77.6, 38.6, -76.6, 39.3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    """``predicate()``'s first truthy value within ``timeout`` seconds, else AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class PrivatePostgres:
    """A PostgreSQL cluster in ``folder`` on a free loopback port; :meth:`restart` it at will."""

    def __init__(self) -> None:
        if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
            if REQUIRE_POSTGRES:
                pytest.fail("MISSIONWATCH_REQUIRE_POSTGRES=1 but PostgreSQL is not installed")
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
        # not under pytest's private tmp: the postgres user (when we are root) must reach it
        self.folder = Path(tempfile.mkdtemp(prefix="missionwatch-faults-pg-"))
        os.chmod(self.folder, 0o755)
        self.port = free_port()
        self.url = ""

    def start(self) -> str:
        result = subprocess.run([str(SCRIPT), str(self.folder / "cluster"), str(self.port)],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        self.url = result.stdout.strip()
        return self.url

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "--stop", str(self.folder / "cluster")],
                       capture_output=True, timeout=120, check=False)

    def remove(self) -> None:
        """Stop the cluster and delete its files."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.database_url(name)


def app_environment(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any Mission Watch setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MISSIONWATCH_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, MISSIONWATCH_DATA_DIR=str(data_dir),
               MISSIONWATCH_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", **settings)
    return env


class Process:
    """A server process (gunicorn or the poller) with its output in ``log``."""

    def __init__(self, argv: list[str], env: Mapping[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, dict(env), log
        self.popen: subprocess.Popen | None = None

    @classmethod
    def gunicorn(cls, env: Mapping[str, str], log: Path) -> Process:
        return cls([sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py"],
                   env, log)

    @classmethod
    def poller(cls, env: Mapping[str, str], log: Path, *sources: str) -> Process:
        argv = [sys.executable, "app.py", "feeds", "poll"]
        for source in sources:
            argv += ["--source", source]
        return cls(argv, env, log)

    def start(self) -> Process:
        handle = open(self.log, "a")  # noqa: SIM115 - the child writes to it until it ends
        self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=handle,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def children(self) -> set[int]:
        """Pids of the process's children (gunicorn's workers)."""
        try:
            return {child.pid for child in psutil.Process(self.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process alone (SIGKILL: no chance to clean up)."""
        if self.alive():
            os.kill(self.pid, sig)
            self.popen.wait(timeout=60)

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after 30 s."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)


def wait_healthy(base_url: str, process: Process, timeout: float = 120.0) -> None:
    def answered() -> bool:
        assert process.alive(), f"the server exited:\n{process.output()[-3000:]}"
        try:
            return requests.get(f"{base_url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_for(answered, timeout, what=f"{base_url}/healthz to answer 200")


def incident(now: datetime, hazard_id: str = "nws:fault-dc", event: str = "Flash Flood Warning",
             area: Any = DC_AREA) -> Any:
    from feeds.model import Hazard

    return Hazard(hazard_id, "nws", event, "flood", severity="severe", sent=now,
                  expires=now + timedelta(days=2), geometry=area, geometry_method="polygon",
                  area_desc="District of Columbia and nearby")


def seed_store(database_url: str, roster: tuple[Any, Any], coordinators: int = 2
               ) -> dict[str, Any]:
    """The roster, one live incident over the DC area, coordinators with API tokens and a
    display token, stored in a fresh store at ``database_url``."""
    from store.db import open_store
    from store.feeds import replace_hazards
    from store.roster import replace_roster
    from store.users import create_user, issue_api_token, issue_token

    now = datetime.now(timezone.utc)
    engine = open_store(database_url)
    try:
        missions, people = roster
        replace_roster(engine, missions, people, source="fault test roster", actor="test",
                       now=now, synthetic=True)
        replace_hazards(engine, "nws", [incident(now)], now=now)
        secrets = []
        for i in range(coordinators):
            create_user(engine, f"coordinator{i}", "coordinator", PASSWORD, actor="test",
                        now=now)
            secrets.append(issue_api_token(engine, f"coordinator{i}", actor="test",
                                           now=now)[1])
        display = issue_token(engine, "wall", actor="test", now=now)[1]
    finally:
        engine.dispose()
    return {"coordinators": secrets, "display": display, "now": now}
