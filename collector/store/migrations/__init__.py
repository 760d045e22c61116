"""Alembic migrations of the collector's schema; run by ``collector.migrate``."""
