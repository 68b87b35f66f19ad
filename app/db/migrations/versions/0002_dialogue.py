"""m002_dialogue: handoff states with slots, richer messages, feedback and knowledge gaps.

Revision ID: 0002_dialogue
Revises: 0001_initial

Conversations created before it keep their messages; one that was handed over (`handoff`) is now waiting for
an agent (`waiting_agent`), waiting since its last change.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_dialogue"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as table:
        table.add_column(sa.Column("status_since", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("handoff_reason", sa.String(32), nullable=True))
        table.add_column(sa.Column("agent", sa.String(64), nullable=True))
        table.add_column(sa.Column("slots", sa.JSON, nullable=True))
    op.execute("UPDATE conversations SET status = 'waiting_agent', status_since = updated_at WHERE status = 'handoff'")
    op.execute("UPDATE conversations SET status_since = created_at WHERE status_since IS NULL")
    op.create_index("ix_conversations_status", "conversations", ["status", "status_since"])

    with op.batch_alter_table("messages") as table:
        table.add_column(sa.Column("intent", sa.String(16), nullable=True))
        table.add_column(sa.Column("query", sa.Text, nullable=True))
        table.add_column(sa.Column("reply_to", sa.Integer, nullable=True))
        table.add_column(sa.Column("author", sa.String(64), nullable=True))
        table.add_column(sa.Column("confidence", sa.Float, nullable=True))

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "conversation_id", sa.String(64), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_message_id", "feedback", ["message_id"])
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])
    op.create_table(
        "knowledge_gaps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column(
            "conversation_id", sa.String(64), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_knowledge_gaps_conversation_id", "knowledge_gaps", ["conversation_id"])
    op.create_index("ix_knowledge_gaps_created_at", "knowledge_gaps", ["created_at"])


def downgrade() -> None:
    op.drop_table("knowledge_gaps")
    op.drop_table("feedback")
    with op.batch_alter_table("messages") as table:
        for column in ("confidence", "author", "reply_to", "query", "intent"):
            table.drop_column(column)
    op.drop_index("ix_conversations_status", "conversations")
    op.execute("UPDATE conversations SET status = 'handoff' WHERE status IN ('waiting_agent', 'with_agent')")
    op.execute("UPDATE conversations SET status = 'bot' WHERE status = 'resolved'")
    with op.batch_alter_table("conversations") as table:
        for column in ("slots", "agent", "handoff_reason", "status_since"):
            table.drop_column(column)
