"""Alembic environment: runs migrations on the connection `app.db.database.Database` passes in (under its lock)."""

from alembic import context

from app.db.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
