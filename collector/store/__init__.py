"""Storage: engines per dialect, tables, Alembic migrations, hourly rollups and the alert tables."""
