"""The collector's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Measurements keep the probe's document exactly as validated (``body``) beside the few
columns queries filter on; the collector's own verdict sits in columns so the stored facts
are never rewritten. Rollups are counts per hour maintained in the ingest transaction, so
aggregation reads them instead of raw rows. Times of day are UTC; rollup hours are whole
hours since the Unix epoch, which both databases can divide into days the same way.

There is no column for a probe's IP address anywhere, on purpose.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
)

metadata: Final = MetaData()

measurements: Final = Table(
    "measurements",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("probe_id", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("cc", String(2), nullable=False),
    Column("asn", BigInteger, nullable=False),
    Column("control", Boolean, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("probe_verdict", String(16), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("methods", String(512), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("rules_version", String(16), nullable=False),
    Column("flags", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_measurements_start_id", "start_time", "id"),
    Index("ix_measurements_service_start_id", "service", "start_time", "id"),
    Index("ix_measurements_cc_start_id", "cc", "start_time", "id"),
    Index("ix_measurements_asn_start_id", "asn", "start_time", "id"),
)

rollups: Final = Table(
    "rollups",
    metadata,
    Column("hour", BigInteger, primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("cc", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("verdict", String(16), primary_key=True),
    Column("control", Boolean, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Index("ix_rollups_service_hour", "service", "hour"),
    Index("ix_rollups_cc_service_hour", "cc", "service", "hour"),
)

# The same counts without the ASN: a country-level question reads a table a hundred times
# smaller than ``rollups``.
rollup_countries: Final = Table(
    "rollup_countries",
    metadata,
    Column("hour", BigInteger, primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("cc", String(2), primary_key=True),
    Column("verdict", String(16), primary_key=True),
    Column("control", Boolean, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Index("ix_rollup_countries_cc_hour", "cc", "hour"),
)

# All-time counts for the Prometheus counters: small, so refreshing metrics stays cheap
# however long the collector has been running.
rollup_totals: Final = Table(
    "rollup_totals",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("cc", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("verdict", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

rollup_methods: Final = Table(
    "rollup_methods",
    metadata,
    Column("hour", BigInteger, primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("cc", String(2), primary_key=True),
    Column("asn", BigInteger, primary_key=True),
    Column("verdict", String(16), primary_key=True),
    Column("method", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Index("ix_rollup_methods_cc_hour", "cc", "hour"),
)

probes: Final = Table(
    "probes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("control", Boolean, nullable=False),
    Column("cc", String(2), nullable=True),
    Column("asn", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

enrolment_tokens: Final = Table(
    "enrolment_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("uses_left", Integer, nullable=True),
    Column("control", Boolean, nullable=False),
)

admin_tokens: Final = Table(
    "admin_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("label", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
