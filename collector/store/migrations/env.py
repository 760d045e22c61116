"""Alembic environment: migrations run on a connection handed over by ``collector.migrate``."""

from __future__ import annotations

from alembic import context

from collector.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `censorwatch db upgrade`, not the alembic command")

context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
