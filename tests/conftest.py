"""Shared fixtures: a scratch store on SQLite and, when reachable, on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# CI sets this so that an unreachable PostgreSQL fails the run instead of skipping silently.
REQUIRE_POSTGRES = os.environ.get("MISSIONWATCH_REQUIRE_POSTGRES", "") == "1"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _postgres_admin_url() -> str | None:
    if not TEST_DATABASE_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("MISSIONWATCH_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        return None
    engine = sa.create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc.orig}")
        return None
    finally:
        engine.dispose()
    return TEST_DATABASE_URL


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL of an empty scratch database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite3'}"
        return
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip("no PostgreSQL reachable (set TEST_DATABASE_URL)")
    name = f"mw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
            # FORCE (PostgreSQL 13+): a background thread of the test (a cache warm-up, say)
            # that reconnects between the terminate above and the drop cannot block it
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def demo_roster():
    """The full synthetic demo roster (generated once per test session)."""
    from layers.demo import generate_demo_roster

    return generate_demo_roster(20261127)


@pytest.fixture(scope="session")
def small_roster(demo_roster):
    """1,000 people and the missions they belong to, taken from the demo roster."""
    missions, people = demo_roster
    # A spread of jurisdictions: every 120th person, so the sample is not one embassy.
    sample = people.iloc[:: max(1, len(people) // 1000)].head(1000).reset_index(drop=True)
    used = missions[missions["mission_id"].isin(sample["mission_id"])].reset_index(drop=True)
    return used, sample


@pytest.fixture(scope="session")
def checked_small_roster(small_roster):
    """The small roster as the store keeps it (validated, with H3 cells), checked once."""
    from layers.gazetteer import load_gazetteer
    from layers.geography import load_geography
    from layers.locations import check_roster, frame_to_raw

    missions, people = small_roster
    check = check_roster(frame_to_raw(missions, "missions"), frame_to_raw(people, "people"),
                         geography=load_geography(), gazetteer=load_gazetteer(),
                         h3_resolution=9, tolerance_km=10.0)
    return check.missions, check.people


@pytest.fixture
def store_engine(database_url: str):
    """A migrated, empty store on each backend; disposed (connections closed) afterwards."""
    from store.db import open_store

    engine = open_store(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def fast_hashing(monkeypatch):
    """Cheap argon2 parameters for in-process tests (the real ones cost ~0.1 s a hash)."""
    from argon2 import PasswordHasher

    import store.users

    monkeypatch.setattr(store.users, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(store.users, "_dummy_hash", None)
