"""State store: cross-system ID map, cursors, base snapshots, idempotency ledger, review items and the
append-only audit log (sqlmodel; SQLite by default, PostgreSQL via ``RENKEI_DATABASE_URL``; schema
managed by alembic migrations in ``store/migrations``)."""
