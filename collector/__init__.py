"""censorwatch collector: ingest, storage, query API, metrics."""
