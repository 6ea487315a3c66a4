"""API tokens: a token may belong to a user and act as that user, with the user's role.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a foreign key to an existing table in place
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer, nullable=True))
        batch.create_foreign_key("tokens_user_id_fkey", "users", ["user_id"], ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint("tokens_user_id_fkey", type_="foreignkey")
        batch.drop_column("user_id")
