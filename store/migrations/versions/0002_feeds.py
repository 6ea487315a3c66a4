"""Hazard feeds: the current snapshot of every source, feed health, the feed cache.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hazards",
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
    )
    op.create_table(
        "feed_health",
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
    )
    op.create_table(
        "feed_cache",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("feed_cache", "feed_health", "hazards"):
        op.drop_table(table)
