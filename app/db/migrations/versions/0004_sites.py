"""m004_sites: the websites crawled into the knowledge base.

Revision ID: 0004_sites
Revises: 0003_access

- `sites`: one row per kept site (its canonical start URL), with the collection and audience its pages are
  indexed under, who added it, and when it was last synced with that sync's summary (`kefu sources list`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_sites"
down_revision = "0003_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.String(2048), nullable=False, unique=True),
        sa.Column("collection", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(64), nullable=False),
        sa.Column("added_by", sa.String(80), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("sites")
