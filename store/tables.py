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
