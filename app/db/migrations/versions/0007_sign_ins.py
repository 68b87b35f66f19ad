"""m007_sign_ins: staff sign-ins held on the server, and the network each audit record came from.

Revision ID: 0007_sign_ins
Revises: 0006_gaps_closed

- `sign_ins`: one row per staff sign-in to the web app (`app.access.sign_ins`): whose, until when, when it
  ended (signed out, password changed), the SHA-256 of the token in the browser's HttpOnly cookie, and the
  one-use ticket that hands the browser that cookie.
- `audit_log.client`: the network a record came from, as a keyed hash (`app.access.tokens.network`), never the
  address: what the per-address rate limit and the sign-in audit count.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_sign_ins"
down_revision = "0006_gaps_closed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_ins",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client", sa.String(32), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("ticket_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("ticket_browser", sa.String(32), nullable=True),
        sa.Column("ticket_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_sign_ins_user_id", "sign_ins", ["user_id"])
    with op.batch_alter_table("audit_log") as table:
        table.add_column(sa.Column("client", sa.String(32), nullable=True))
    op.create_index("ix_audit_log_client", "audit_log", ["client", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_client", "audit_log")
    with op.batch_alter_table("audit_log") as table:
        table.drop_column("client")
    op.drop_index("ix_sign_ins_user_id", "sign_ins")
    op.drop_table("sign_ins")
