"""Dashboard users and tokens: accounts, roles, sign-in checks, token issue/revoke.

Two kinds of token: a **display** token (``mwd_...``) is a wall display with the display role;
an **API** token (``mwa_...``) belongs to a user and acts as that user, with the user's role as
it is at each request (disabling the user stops it at once; a role change applies at once).
Passwords are kept only as argon2id hashes (argon2-cffi's RFC 9106 defaults); tokens only as
the SHA-256 of a 32-byte random secret, which is enough for a high-entropy secret.
Every change and every sign-in attempt is written to the audit log in the same transaction.
Nothing here logs a password, a token or a name: only ids and outcomes.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from store import AccountError
from store.db import record_audit
from store.tables import tokens, users

logger = logging.getLogger(__name__)

# In rank order: each role may do everything the roles before it may do.
ROLES = ("display", "coordinator", "admin")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
TOKEN_PREFIX = "mwd_"       # display tokens
API_TOKEN_PREFIX = "mwa_"   # API tokens (act as their user)
API_TOKEN_ROLE = "api"      # what the tokens table keeps as the role of an API token
TOKEN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
TOKEN_TOUCH_EVERY = timedelta(minutes=5)  # how stale last_used_at may get before a write

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def role_rank(role: str | None) -> int:
    """0 for no role, then 1 (display), 2 (coordinator), 3 (admin)."""
    if role is None:
        return 0
    try:
        return ROLES.index(role) + 1
    except ValueError:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}") from None


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else :class:`AccountError`."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def normalize_username(username: str) -> str:
    """The stored form of a username (lower case), or :class:`AccountError` if not allowed."""
    name = (username or "").strip().lower()
    if not USERNAME_RE.match(name):
        raise AccountError("username must be 2-64 characters: lower-case letters, digits and "
                           "._@- , starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    """``password`` if it is long enough (and not absurdly long), else :class:`AccountError`."""
    if not isinstance(password, str) or not (
            PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH):
        raise AccountError(f"password must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} "
                           f"characters long")
    return password


def generate_password() -> str:
    """A random password of about 128 bits, easy to copy (URL-safe characters)."""
    return secrets.token_urlsafe(16)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (checked for length first)."""
    return _hasher.hash(check_password(password))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _waste_a_verification(password: str) -> None:
    """Verify against a throw-away hash, so unknown usernames take as long as known ones."""
    global _dummy_hash  # noqa: PLW0603 - computed once, on first need
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    _verify(_dummy_hash, password)


@dataclasses.dataclass(frozen=True)
class User:
    """A dashboard account, without its password hash."""

    user_id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime
    last_sign_in: datetime | None
    failed_count: int
    locked_until: datetime | None
    session_epoch: int

    def as_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "username": self.username, "role": self.role,
                "disabled": self.disabled, "created_at": _iso(self.created_at),
                "last_sign_in": _iso(self.last_sign_in), "locked_until": _iso(self.locked_until)}


@dataclasses.dataclass(frozen=True)
class Token:
    """A long-lived token (a wall display, or an API token of a user), without its secret.

    For an API token, ``role`` is its user's role now and ``user_disabled`` whether the user
    is disabled now (read together with the token).
    """

    token_id: int
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None
    user_id: int | None = None
    username: str | None = None
    user_disabled: bool = False

    @property
    def kind(self) -> str:
        """``display`` or ``api``."""
        return "display" if self.user_id is None else "api"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "kind": self.kind, "name": self.name,
                "role": self.role, "user": self.username, "created_at": _iso(self.created_at),
                "created_by": self.created_by, "revoked_at": _iso(self.revoked_at),
                "last_used_at": _iso(self.last_used_at)}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone columns; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _user(row: Any) -> User:
    return User(user_id=int(row.user_id), username=row.username, role=row.role,
                disabled=bool(row.disabled), created_at=_aware(row.created_at),
                last_sign_in=_aware(row.last_sign_in), failed_count=int(row.failed_count),
                locked_until=_aware(row.locked_until), session_epoch=int(row.session_epoch))


def _token(row: Any) -> Token:
    """A token from a row of :func:`_token_query` (the token joined with its user, if any)."""
    api = row.user_id is not None
    return Token(token_id=int(row.token_id), name=row.name,
                 role=row.user_role if api else row.role,
                 created_at=_aware(row.created_at), created_by=row.created_by,
                 revoked_at=_aware(row.revoked_at), last_used_at=_aware(row.last_used_at),
                 user_id=int(row.user_id) if api else None,
                 username=row.username if api else None,
                 user_disabled=bool(row.user_disabled) if api else False)


def _token_query() -> sa.Select:
    """Tokens with their user's name, current role and state (one query, re-read per use)."""
    return sa.select(
        tokens, users.c.username, users.c.role.label("user_role"),
        users.c.disabled.label("user_disabled"),
    ).select_from(tokens.outerjoin(users, tokens.c.user_id == users.c.user_id))


def _check_now(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")


# --------------------------------------------------------------------------- users


def count_users(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())


def get_user(engine: Engine, user_id: int) -> User | None:
    with engine.connect() as connection:
        row = connection.execute(sa.select(users).where(users.c.user_id == user_id)).first()
    return None if row is None else _user(row)


def find_user(engine: Engine, username: str) -> User | None:
    """The user called ``username`` (any case), or None (also for a malformed name)."""
    name = (username or "").strip().lower()
    if not USERNAME_RE.match(name):
        return None
    with engine.connect() as connection:
        row = connection.execute(sa.select(users).where(users.c.username == name)).first()
    return None if row is None else _user(row)


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(users).order_by(users.c.username)).all()
    return [_user(row) for row in rows]


def create_user(engine: Engine, username: str, role: str, password: str, *, actor: str,
                now: datetime) -> User:
    """Add an account; :class:`AccountError` for a bad or taken name, role or password."""
    _check_now(now)
    name = normalize_username(username)
    check_role(role)
    password_hash = hash_password(password)
    try:
        with engine.begin() as connection:
            result = connection.execute(users.insert().values(
                username=name, password_hash=password_hash, role=role, disabled=False,
                created_at=now, last_sign_in=None, failed_count=0, locked_until=None,
                session_epoch=0))
            user_id = int(result.inserted_primary_key[0])
            record_audit(connection, actor, "user.add",
                         {"user_id": user_id, "username": name, "role": role}, now)
    except sa.exc.IntegrityError:
        raise AccountError(f"a user called {name!r} already exists") from None
    logger.info("user %s added with role %s", user_id, role)
    user = get_user(engine, user_id)
    assert user is not None
    return user


def _require(connection: sa.Connection, username: str) -> Any:
    name = (username or "").strip().lower()
    row = connection.execute(sa.select(users).where(users.c.username == name)).first()
    if row is None:
        raise AccountError(f"no user called {name!r}")
    return row


def set_role(engine: Engine, username: str, role: str, *, actor: str, now: datetime) -> User:
    """Change a user's role; their current sessions end (they sign in again with the new one)."""
    _check_now(now)
    check_role(role)
    with engine.begin() as connection:
        row = _require(connection, username)
        connection.execute(users.update().where(users.c.user_id == row.user_id).values(
            role=role, session_epoch=users.c.session_epoch + 1))
        record_audit(connection, actor, "user.role", {
            "user_id": int(row.user_id), "username": row.username, "from": row.role,
            "to": role}, now)
    logger.info("user %s role changed from %s to %s", row.user_id, row.role, role)
    return _user_by_id(engine, int(row.user_id))


def set_disabled(engine: Engine, username: str, disabled: bool, *, actor: str,
                 now: datetime) -> User:
    """Disable (or enable again) an account; disabling ends its sessions at once."""
    _check_now(now)
    with engine.begin() as connection:
        row = _require(connection, username)
        connection.execute(users.update().where(users.c.user_id == row.user_id).values(
            disabled=disabled, session_epoch=users.c.session_epoch + 1,
            failed_count=0, locked_until=None))
        record_audit(connection, actor, "user.disable" if disabled else "user.enable",
                     {"user_id": int(row.user_id), "username": row.username}, now)
    logger.info("user %s %s", row.user_id, "disabled" if disabled else "enabled")
    return _user_by_id(engine, int(row.user_id))


def reset_password(engine: Engine, username: str, password: str, *, actor: str,
                   now: datetime) -> User:
    """Set a new password, clear any lockout and end the user's sessions."""
    _check_now(now)
    password_hash = hash_password(password)
    with engine.begin() as connection:
        row = _require(connection, username)
        connection.execute(users.update().where(users.c.user_id == row.user_id).values(
            password_hash=password_hash, failed_count=0, locked_until=None,
            session_epoch=users.c.session_epoch + 1))
        record_audit(connection, actor, "user.password_reset",
                     {"user_id": int(row.user_id), "username": row.username}, now)
    logger.info("user %s password reset", row.user_id)
    return _user_by_id(engine, int(row.user_id))


def end_sessions(engine: Engine, user_id: int, *, actor: str, now: datetime,
                 reason: str = "signout") -> None:
    """End every session of a user (sign-out): the next request of each is anonymous."""
    _check_now(now)
    with engine.begin() as connection:
        connection.execute(users.update().where(users.c.user_id == user_id).values(
            session_epoch=users.c.session_epoch + 1))
        record_audit(connection, actor, reason, {"user_id": user_id}, now)


def _user_by_id(engine: Engine, user_id: int) -> User:
    user = get_user(engine, user_id)
    if user is None:
        raise AccountError(f"no user with id {user_id}")
    return user


class SignInOutcome(enum.Enum):
    OK = "ok"
    UNKNOWN_USER = "unknown_user"
    BAD_PASSWORD = "bad_password"
    LOCKED = "locked"
    DISABLED = "disabled"


@dataclasses.dataclass(frozen=True)
class SignInResult:
    outcome: SignInOutcome
    user: User | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is SignInOutcome.OK


def authenticate(engine: Engine, username: str, password: str, *, now: datetime,
                 lockout_failures: int, lockout_minutes: int, remote: str = "") -> SignInResult:
    """Check a sign-in and audit it (``signin.ok`` or ``signin.failed`` with the reason).

    After ``lockout_failures`` wrong passwords in a row the account is locked for
    ``lockout_minutes``; an unknown username costs as much time as a known one. The audit
    record names the account only when it exists (a mistyped name may be a password).
    """
    _check_now(now)
    password = password if isinstance(password, str) else ""
    if len(password) > PASSWORD_MAX_LENGTH:
        password = password[:PASSWORD_MAX_LENGTH]
    user = find_user(engine, username)
    base: dict[str, Any] = {"remote": remote}
    if user is None:
        _waste_a_verification(password)
        with engine.begin() as connection:
            record_audit(connection, "anonymous", "signin.failed",
                         {**base, "reason": SignInOutcome.UNKNOWN_USER.value}, now)
        logger.warning("sign-in failed: unknown user")
        return SignInResult(SignInOutcome.UNKNOWN_USER)
    actor = f"user:{user.username}"
    with engine.connect() as connection:
        password_hash = connection.execute(
            sa.select(users.c.password_hash).where(users.c.user_id == user.user_id)).scalar_one()
    verified = _verify(password_hash, password)
    details = {**base, "user_id": user.user_id, "username": user.username}
    if user.disabled or (user.locked_until is not None and user.locked_until > now):
        outcome = SignInOutcome.DISABLED if user.disabled else SignInOutcome.LOCKED
        with engine.begin() as connection:
            record_audit(connection, actor, "signin.failed",
                         {**details, "reason": outcome.value}, now)
        logger.warning("sign-in refused for user %s: %s", user.user_id, outcome.value)
        return SignInResult(outcome, user)
    if not verified:
        with engine.begin() as connection:
            failures = user.failed_count + 1
            locked_until = None
            if failures >= lockout_failures:
                locked_until = now + timedelta(minutes=lockout_minutes)
            connection.execute(users.update().where(users.c.user_id == user.user_id).values(
                failed_count=0 if locked_until else users.c.failed_count + 1,
                locked_until=locked_until))
            record_audit(connection, actor, "signin.failed",
                         {**details, "reason": SignInOutcome.BAD_PASSWORD.value,
                          "failures": failures}, now)
            if locked_until is not None:
                record_audit(connection, "system", "user.locked",
                             {"user_id": user.user_id, "username": user.username,
                              "until": locked_until.isoformat(), "failures": failures}, now)
        logger.warning("sign-in failed for user %s (%d in a row)", user.user_id, failures)
        if locked_until is not None:
            logger.warning("user %s locked for %d min after %d failed sign-ins", user.user_id,
                           lockout_minutes, failures)
        return SignInResult(SignInOutcome.BAD_PASSWORD, user)
    values: dict[str, Any] = {"failed_count": 0, "locked_until": None, "last_sign_in": now}
    if _hasher.check_needs_rehash(password_hash):
        values["password_hash"] = _hasher.hash(password)
    with engine.begin() as connection:
        connection.execute(users.update().where(users.c.user_id == user.user_id).values(**values))
        record_audit(connection, actor, "signin.ok", {**details, "role": user.role}, now)
    logger.info("user %s signed in", user.user_id)
    return SignInResult(SignInOutcome.OK, _user_by_id(engine, user.user_id))


# --------------------------------------------------------------------------- tokens


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(engine: Engine, name: str, *, role: str = "display", actor: str,
                now: datetime) -> tuple[Token, str]:
    """A new token and its secret; the secret is returned once and never stored."""
    _check_now(now)
    if not TOKEN_NAME_RE.match(name or ""):
        raise AccountError("token name must be 1-64 characters: letters, digits, space and ._-")
    if role != "display":
        raise AccountError(f"tokens are for wall displays: role must be display, got {role!r} "
                           "(an API token acts as a user: see issue_api_token)")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        result = connection.execute(tokens.insert().values(
            name=name, role=role, token_hash=_token_hash(secret), created_at=now,
            created_by=actor, revoked_at=None, last_used_at=None))
        token_id = int(result.inserted_primary_key[0])
        record_audit(connection, actor, "token.issue",
                     {"token_id": token_id, "name": name, "role": role}, now)
    logger.info("token %s issued (role %s)", token_id, role)
    token = get_token(engine, token_id)
    assert token is not None
    return token, secret


def issue_api_token(engine: Engine, username: str, name: str | None = None, *, actor: str,
                    now: datetime) -> tuple[Token, str]:
    """A new API token acting as ``username`` (with their role at each request) and its
    secret; the secret is returned once and never stored. Refused for a disabled user."""
    _check_now(now)
    name = "api" if name is None else name
    if not TOKEN_NAME_RE.match(name or ""):
        raise AccountError("token name must be 1-64 characters: letters, digits, space and ._-")
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        row = _require(connection, username)
        if row.disabled:
            raise AccountError(f"user {row.username!r} is disabled: enable them first")
        result = connection.execute(tokens.insert().values(
            name=name, role=API_TOKEN_ROLE, token_hash=_token_hash(secret), created_at=now,
            created_by=actor, revoked_at=None, last_used_at=None, user_id=int(row.user_id)))
        token_id = int(result.inserted_primary_key[0])
        record_audit(connection, actor, "token.issue", {
            "token_id": token_id, "name": name, "role": API_TOKEN_ROLE,
            "user_id": int(row.user_id), "username": row.username}, now)
    logger.info("API token %s issued for user %s", token_id, row.user_id)
    token = get_token(engine, token_id)
    assert token is not None
    return token, secret


def revoke_token(engine: Engine, token_id: int, *, actor: str, now: datetime) -> Token:
    """Revoke a token: every request made with it, or with a session made from it, fails."""
    _check_now(now)
    with engine.begin() as connection:
        row = connection.execute(sa.select(tokens).where(tokens.c.token_id == token_id)).first()
        if row is None:
            raise AccountError(f"no token with id {token_id}")
        if row.revoked_at is None:
            connection.execute(tokens.update().where(tokens.c.token_id == token_id).values(
                revoked_at=now))
        record_audit(connection, actor, "token.revoke",
                     {"token_id": token_id, "name": row.name,
                      "already_revoked": row.revoked_at is not None}, now)
    logger.info("token %s revoked", token_id)
    token = get_token(engine, token_id)
    assert token is not None
    return token


def get_token(engine: Engine, token_id: int) -> Token | None:
    with engine.connect() as connection:
        row = connection.execute(_token_query().where(tokens.c.token_id == token_id)).first()
    return None if row is None else _token(row)


def list_tokens(engine: Engine) -> list[Token]:
    """Every token, display and API, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(_token_query().order_by(tokens.c.token_id)).all()
    return [_token(row) for row in rows]


def _touch(engine: Engine, token: Token, now: datetime) -> None:
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_EVERY:
        with engine.begin() as connection:
            connection.execute(tokens.update().where(tokens.c.token_id == token.token_id)
                               .values(last_used_at=now))


def active_token(engine: Engine, token_id: int, *, now: datetime) -> Token | None:
    """The token if it exists and is not revoked (its last use is noted), else None."""
    _check_now(now)
    token = get_token(engine, token_id)
    if token is None or not token.active:
        return None
    _touch(engine, token, now)
    return token


def token_for_secret(engine: Engine, secret: str, *, now: datetime) -> Token | None:
    """The active token whose secret this is, else None (malformed, unknown or revoked).

    An API token of a disabled user is returned with ``user_disabled`` set: the caller
    refuses it (and can say why)."""
    _check_now(now)
    if not isinstance(secret, str) or len(secret) > 200 or not secret.startswith(
            (TOKEN_PREFIX, API_TOKEN_PREFIX)):
        return None
    with engine.connect() as connection:
        row = connection.execute(_token_query().where(
            tokens.c.token_hash == _token_hash(secret))).first()
    if row is None:
        return None
    token = _token(row)
    if not token.active:
        return None
    _touch(engine, token, now)
    return token
