"""Alembic environment: runs migrations on the connection `app.sessions.upgrade_schema` passes in."""

from alembic import context

from app.sessions import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
