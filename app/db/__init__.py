"""The SQL database: engine and transactions, the schema and its Alembic migrations."""
