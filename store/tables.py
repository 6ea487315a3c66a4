"""Table definitions (SQLAlchemy Core). Migrations in ``store/migrations`` create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

missions = sa.Table(
    "missions",
    metadata,
    sa.Column("mission_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("country_code", sa.String(3), nullable=False),
    sa.Column("country_name", sa.Text, nullable=False),
    sa.Column("mission_type", sa.String(32), nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("city", sa.Text, nullable=False),
    sa.Column("jurisdiction", sa.String(2), nullable=False, index=True),
    sa.Column("postal_code", sa.String(10), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("geocode_precision", sa.String(16), nullable=False),
    sa.Column("duty_phone", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("ofm_office", sa.String(3), nullable=False),
    sa.Column("h3_cell", sa.String(16), nullable=False, index=True),
)

people = sa.Table(
    "people",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("mission_id", sa.String(64), sa.ForeignKey("missions.mission_id"), nullable=False,
              index=True),
    sa.Column("household_id", sa.String(64), nullable=False, index=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("immunity", sa.String(16), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("city", sa.Text, nullable=False),
    sa.Column("jurisdiction", sa.String(2), nullable=False, index=True),
    sa.Column("postal_code", sa.String(10), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("geocode_precision", sa.String(16), nullable=False),
    sa.Column("phone", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("h3_cell", sa.String(16), nullable=False, index=True),
)

# One row per roster write (generate or import): what replaced the roster, when, and by whom.
roster_imports = sa.Table(
    "roster_imports",
    metadata,
    sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("missions", sa.Integer, nullable=False),
    sa.Column("people", sa.Integer, nullable=False),
    sa.Column("skipped_rows", sa.Integer, nullable=False),
    sa.Column("synthetic", sa.Boolean, nullable=False),
)

# Append-only record of who did what (imports, exports, sign-ins...). Rows are never updated.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=False),
)

# --------------------------------------------------------------------------- hazard feeds

# The current snapshot of every source: one row per hazard, replaced per source in one
# transaction. ``record`` is the whole Hazard as JSON (all but the geometry, which is WKB in
# ``geometry_wkb``), so a stored hazard reads back equal; the other columns are for queries.
hazards = sa.Table(
    "hazards",
    metadata,
    sa.Column("hazard_id", sa.String(255), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False, index=True),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("urgency", sa.String(16), nullable=False),
    sa.Column("certainty", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message_type", sa.String(16), nullable=False),
    sa.Column("sent", sa.DateTime(timezone=True), nullable=True),
    sa.Column("effective", sa.DateTime(timezone=True), nullable=True),
    sa.Column("onset", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("ends", sa.DateTime(timezone=True), nullable=True),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("area_desc", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("geometry_wkb", sa.LargeBinary, nullable=True),
    sa.Column("geometry_method", sa.String(16), nullable=True),
    sa.Column("center_lon", sa.Float, nullable=True),
    sa.Column("center_lat", sa.Float, nullable=True),
    sa.Column("radius_km", sa.Float, nullable=True),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    # When a live poll first listed the hazard (an update inherits it from the alert it
    # supersedes); NULL for recorded snapshots and for what a source's first live poll found.
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True),
)

# One row per source: how its last poll went and how old its data is.
feed_health = sa.Table(
    "feed_health",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("last_attempt", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_outcome", sa.String(16), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("unplaced", sa.Integer, nullable=False),
    sa.Column("data_as_of", sa.DateTime(timezone=True), nullable=True),
    sa.Column("validator_key", sa.Text, nullable=True),
    sa.Column("etag", sa.Text, nullable=True),
    sa.Column("last_modified", sa.Text, nullable=True),
    sa.Column("recorded", sa.Boolean, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
    # the source's clock minus ours at the last answer (s; None: not measured), and how far
    # behind our clock its expiries are judged (s; None or 0: on our clock), feeds/clock.py
    sa.Column("clock_skew_s", sa.Float, nullable=True),
    sa.Column("expiry_lag_s", sa.Float, nullable=True),
)

# Small persistent cache of the sources (zone shapes, GIS products): feeds.base.Cache.
feed_cache = sa.Table(
    "feed_cache",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
)

# --------------------------------------------------------------------------- access control

# People who sign in to the dashboard. Only an argon2 hash of the password is kept.
# ``session_epoch`` grows on sign-out, disable and role change: sessions carry the epoch they
# were made in, so all of a user's sessions end at once.
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_sign_in", sa.DateTime(timezone=True), nullable=True),
    sa.Column("failed_count", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("session_epoch", sa.Integer, nullable=False),
)

# Long-lived tokens. Only the SHA-256 of the 32-byte secret is kept. A wall-display token
# (``user_id`` NULL) has role ``display``; an API token belongs to a user (role ``api``) and acts
# as that user with the user's role as it is at each request.
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("user_id", sa.Integer,
              sa.ForeignKey("users.user_id", name="tokens_user_id_fkey"), nullable=True),
)

# --------------------------------------------------------------------------- incident rules

# The current incident rules (layers.incidents.IncidentRule as JSON), in order: replaced as a
# whole list in one transaction. The one row of ``incident_rules_version`` counts the saves
# (optimistic concurrency: a save names the version it edited) and says who saved last.
# No row at all means the built-in defaults, version 0.
incident_rules = sa.Table(
    "incident_rules",
    metadata,
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rule", sa.Text, nullable=False),
)

incident_rules_version = sa.Table(
    "incident_rules_version",
    metadata,
    sa.Column("singleton", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.CheckConstraint("singleton = 1", name="incident_rules_version_one_row"),
)

# --------------------------------------------------------------------------- outreach

# A board is the outreach for one incident or a set of incidents worked on together: who is to
# be contacted (targets) and what happened (events). ``exercise`` boards belong to drills and
# never mix with live ones.
outreach_boards = sa.Table(
    "outreach_boards",
    metadata,
    sa.Column("board_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("hazard_ids", sa.Text, nullable=False),       # JSON list, in the order given
    sa.Column("selection", sa.String(255), nullable=False, index=True),  # sorted ids' digest
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("exercise", sa.Boolean, nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
)

# Every mission and household a board has ever had to contact, with when it first appeared
# (targets that appear after the board began are flagged new). Rows are only ever added.
outreach_targets = sa.Table(
    "outreach_targets",
    metadata,
    sa.Column("board_id", sa.Integer, sa.ForeignKey("outreach_boards.board_id"),
              primary_key=True),
    sa.Column("target_kind", sa.String(16), primary_key=True),   # mission | household
    sa.Column("target_id", sa.String(64), primary_key=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
)

# Append-only history of every status update (the database refuses UPDATE and DELETE).
# ``previous_event_id`` is the target's latest event when this one was written (0 for the
# first): unique per target, so two writers can never both follow the same event — one of
# them is told about the other instead of silently overwriting it. ``request_id`` makes a
# retried request idempotent.
outreach_events = sa.Table(
    "outreach_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("board_id", sa.Integer, sa.ForeignKey("outreach_boards.board_id"),
              nullable=False, index=True),
    sa.Column("target_kind", sa.String(16), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("previous_event_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.UniqueConstraint("board_id", "target_kind", "target_id", "previous_event_id",
                        name="outreach_events_one_successor"),
    sa.UniqueConstraint("board_id", "request_id", name="outreach_events_request_once"),
)

# --------------------------------------------------------------------------- drills

# One row per drill run: a scenario played on the map as EXERCISE. ``scenario_json`` is the
# scenario as it was when the drill started, so editing the library never changes a running
# or past drill. ``speed`` is the speed now; the clock (start, pauses, speed changes, stop) is
# the drill's events, see store.drills.
drills = sa.Table(
    "drills",
    metadata,
    sa.Column("drill_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("scenario_name", sa.String(64), nullable=False),
    sa.Column("scenario_json", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),                  # scenario | replay
    sa.Column("speed", sa.Float, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_by", sa.Text, nullable=False),
    sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("stopped_by", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),    # running | paused | stopped
    sa.CheckConstraint("kind IN ('scenario', 'replay')", name="drills_kind_known"),
    sa.CheckConstraint("state IN ('running', 'paused', 'stopped')", name="drills_state_known"),
    sa.CheckConstraint("speed >= 1 AND speed <= 3600", name="drills_speed_range"),
)

# Append-only history of a drill (the database refuses UPDATE and DELETE): start, pause,
# resume, speed, stop, and each inject as the dashboard saw it fire. ``detail`` is JSON.
# ``inject_id`` is set on inject events only, once per drill (NULLs never collide).
drill_events = sa.Table(
    "drill_events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("drill_id", sa.Integer, sa.ForeignKey("drills.drill_id"), nullable=False,
              index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("inject_id", sa.String(128), nullable=True),
    sa.UniqueConstraint("drill_id", "inject_id", name="drill_events_inject_once"),
)

# --------------------------------------------------------------------------- rate limits

# Fixed-window counters of the sign-in and token-attempt limits, shared by every worker
# process (one row per limit, kind and address). Ephemeral: never backed up.
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),  # seconds since the epoch
)
