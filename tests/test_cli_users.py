"""`python app.py users ...` and the first run of `serve` (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

import app as cli
from store.audit import query_audit
from store.db import open_store
from store.tables import tokens, users
from store.users import find_user, list_tokens, token_for_secret


@pytest.fixture
def run(database_url, tmp_path, monkeypatch, capsys, fast_hashing):
    """Run ``app.main`` in-process against a scratch store; returns (status, stdout, stderr)."""
    for name in ("MISSIONWATCH_LOG_LEVEL", "MISSIONWATCH_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MISSIONWATCH_DATA_DIR", str(tmp_path))

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            import io

            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    engine = open_store(database_url)
    invoke.engine = engine  # type: ignore[attr-defined]
    yield invoke
    engine.dispose()


def test_users_add_list_role_disable_and_reset(run) -> None:
    status, out, _ = run("users", "add", "Alice", "--role", "coordinator")
    assert status == 0 and "Added user alice" in out
    password = re.search(r"Password \(shown only now; the store keeps its hash\): (\S+)",
                         out).group(1)
    with run.engine.connect() as connection:
        stored = connection.execute(sa.select(users.c.password_hash)).scalar_one()
    assert password not in stored and stored.startswith("$argon2id$")
    status, out, _ = run("users", "add", "bob", "--role", "display", "--password-stdin",
                         stdin="a long enough password\n")
    assert status == 0 and "Password" not in out
    assert run("users", "add", "bob", "--role", "display")[0] == 1  # taken
    with pytest.raises(SystemExit) as exit_info:
        run("users", "add", "carol", "--role", "root")
    assert exit_info.value.code == 2
    status, out, _ = run("users", "list")
    assert status == 0 and "alice" in out and "coordinator" in out and password not in out
    assert run("users", "set-role", "alice", "admin")[0] == 0
    assert find_user(run.engine, "alice").role == "admin"
    assert run("users", "disable", "bob")[0] == 0
    assert find_user(run.engine, "bob").disabled
    assert run("users", "disable", "bob", "--enable")[0] == 0
    assert not find_user(run.engine, "bob").disabled
    status, out, _ = run("users", "reset-password", "alice")
    assert status == 0 and "Password" in out
    assert run("users", "set-role", "nobody", "admin")[0] == 1
    actions = [e.action for e in reversed(query_audit(run.engine))]
    assert actions == ["user.add", "user.add", "user.role", "user.disable", "user.enable",
                       "user.password_reset"]
    assert all(e.actor.startswith("cli:") for e in query_audit(run.engine))


def test_users_token_issue_list_and_revoke(run) -> None:
    status, out, _ = run("users", "token", "--display", "ops wall 1")
    assert status == 0
    secret = re.search(r"mwd_[A-Za-z0-9_-]+", out).group(0)
    assert f"/wall?token={secret}" in out
    with run.engine.connect() as connection:
        assert secret not in str(connection.execute(sa.select(tokens)).all())
    token = token_for_secret(run.engine, secret, now=cli._now())
    assert token is not None and token.role == "display"
    status, out, _ = run("users", "list", "--json")
    assert status == 0 and "ops wall 1" in out and secret not in out
    assert run("users", "token", "--revoke", str(token.token_id))[0] == 0
    assert token_for_secret(run.engine, secret, now=cli._now()) is None
    assert list_tokens(run.engine)[0].revoked_at is not None
    assert run("users", "token", "--revoke", "99")[0] == 1
    assert [e.action for e in reversed(query_audit(run.engine))] == ["token.issue",
                                                                    "token.revoke"]


def test_first_serve_creates_an_admin_and_prints_the_password_once(run, monkeypatch,
                                                                    caplog) -> None:
    """`make run` stays one command: the first serve makes an admin and shows its password."""
    served = []

    class FakeApp:
        def run(self, **kwargs):
            served.append(kwargs)

    monkeypatch.setattr(cli, "_open_with_roster", lambda settings: run.engine)
    monkeypatch.setattr(cli, "_start_feeds", lambda *args: None)
    monkeypatch.setattr("dashboard.app.create_app", lambda settings, services: FakeApp())
    caplog.set_level(logging.DEBUG)
    status, out, err = run("serve", "--port", "8123")
    assert status == 0 and served
    password = re.search(r"the password\n\n    (\S+)\n", err).group(1)
    admin = find_user(run.engine, "admin")
    assert admin is not None and admin.role == "admin"
    with run.engine.connect() as connection:
        assert password not in connection.execute(sa.select(users.c.password_hash)).scalar_one()
    assert password not in "\n".join(r.getMessage() for r in caplog.records)
    assert password not in out
    status, _, err = run("serve", "--port", "8123")  # the second run: no new password
    assert status == 0 and "First run" not in err and len(served) == 2
    signed = cli.Settings.from_env()
    from store.users import authenticate

    result = authenticate(run.engine, "admin", password, now=cli._now(), lockout_failures=5,
                          lockout_minutes=1)
    assert result.ok and signed.on_loopback
