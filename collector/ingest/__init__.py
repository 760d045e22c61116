"""Ingest: bodies to items, per-item validation, the collector's second-look rules, rate limits and POST /api/v1/measurements."""
