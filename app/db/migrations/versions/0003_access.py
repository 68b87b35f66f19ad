"""m003_access: staff users, API keys, the audit log, failed sign-ins, and whose each conversation is.

Revision ID: 0003_access
Revises: 0002_dialogue

- `users`: agents and admins of the web app (argon2 password hashes, never passwords).
- `api_keys`: keys for the HTTP API, stored as SHA-256 hashes with a short prefix to recognise them by.
- `audit_log`: one record per turn and per privileged action: who, what, sizes and verdicts, never text.
- `login_failures`: failed sign-ins, by user name and by client, for rate limiting.
- `conversations.owner`: the principal that started it (an API key, a signed-in user, an anonymous browser);
  `conversations.customer_id`: the customer it is about, as the channel names them (for erasure).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_access"
down_revision = "0002_dialogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(80), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("prompt_chars", sa.Integer, nullable=True),
        sa.Column("answer_chars", sa.Integer, nullable=True),
        sa.Column("mode", sa.String(16), nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=True),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("verdicts", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_session_id", "audit_log", ["session_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_user", "login_failures", ["user_name", "created_at"])
    op.create_index("ix_login_failures_client", "login_failures", ["client", "created_at"])
    with op.batch_alter_table("conversations") as table:
        table.add_column(sa.Column("owner", sa.String(80), nullable=True))
        table.add_column(sa.Column("customer_id", sa.String(64), nullable=True))
    op.create_index("ix_conversations_customer_id", "conversations", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_conversations_customer_id", "conversations")
    with op.batch_alter_table("conversations") as table:
        table.drop_column("customer_id")
        table.drop_column("owner")
    op.drop_table("login_failures")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.drop_table("users")
