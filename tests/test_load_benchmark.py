"""The production load test (``benchmarks/load.py``) keeps working: a short run on PostgreSQL.

Walls, coordinators, gunicorn with two workers, the poller and its local feed server, on a small
roster; the run's JSON must show no errors, every kind of request made, every worker measured,
every acknowledged status update stored, and /metrics agreeing with the client's count. No
timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks.load import RUN_KINDS
from tests.conftest import _postgres_admin_url

ROOT = Path(__file__).resolve().parent.parent


def _postgres_server() -> str:
    """TEST_DATABASE_URL if it answers; skip otherwise (fail under CI, which sets it)."""
    url = _postgres_admin_url()
    if url is None:
        pytest.skip("no PostgreSQL reachable (set TEST_DATABASE_URL)")
    return url


def _databases(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {row[0] for row in connection.execute(sa.text(
                "SELECT datname FROM pg_database"))}
    finally:
        engine.dispose()


def test_short_load_run_has_no_errors_and_loses_no_update() -> None:
    url = _postgres_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSIONWATCH_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--seconds", "8", "--walls", "3",
         "--coordinators", "2", "--workers", "2", "--roster", "small", "--wall-refresh", "2",
         "--database-url", url, "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.stdout, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert done.returncode == 0, (done.stderr[-3000:], result)

    kinds = result["kinds"]
    assert result["errors"] == 0, {k: v["error_outcomes"] for k, v in kinds.items()}
    assert not result["client_crashes"]
    for kind in (*RUN_KINDS, "metrics"):
        assert kinds.get(kind, {}).get("count", 0) > 0, kind
    assert result["gunicorn_alive"]

    processes = result["processes"]
    workers = [p for p in processes if p["role"] == "worker"]
    assert len(workers) == 2
    assert not [p for p in processes if "GONE" in p["role"]]
    for process in [*workers, *(p for p in processes if p["role"] in ("master", "poller"))]:
        assert process["rss_mib"] > 0 and process["pss_mib"] > 0 and process["cpu_s"] >= 0

    outreach = result["outreach"]
    assert outreach["ok"] and outreach["acknowledged"] > 0 and outreach["lost"] == 0
    assert result["metrics"]["match"], result["metrics"]
    # the scratch database is gone again
    assert result["config"]["database"] not in _databases(url)
