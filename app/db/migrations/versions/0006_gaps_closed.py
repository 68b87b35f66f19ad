"""m006_gaps_closed: a knowledge gap can be closed by the answer that fills it.

Revision ID: 0006_gaps_closed
Revises: 0005_widget_keys

- `knowledge_gaps.closed_at`, `closed_by`, `closed_reason`: when a gap was answered (an agent saved an FAQ entry
  for it: reason `faq`), by whom. Closed gaps are kept (the record of what customers asked) but leave the
  Insights page and `kefu gaps`; the same question asked again and unanswered opens a new gap.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_gaps_closed"
down_revision = "0005_widget_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_gaps") as table:
        table.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("closed_by", sa.String(80), nullable=True))
        table.add_column(sa.Column("closed_reason", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("knowledge_gaps") as table:
        table.drop_column("closed_reason")
        table.drop_column("closed_by")
        table.drop_column("closed_at")
