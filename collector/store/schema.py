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
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    false,
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
    Column("confidence", Float, nullable=True),  # the probe's; null before revision 0002
    # Commit order for the detector's cursor (revision 0002_trust): the inserting
    # transaction's id on PostgreSQL (a server default), the next number on SQLite.
    Column("seq", BigInteger, nullable=True),
    Index("ix_measurements_received_id", "received_at", "id"),
    Index("ix_measurements_start_id", "start_time", "id"),
    Index("ix_measurements_service_start_id", "service", "start_time", "id"),
    Index("ix_measurements_cc_start_id", "cc", "start_time", "id"),
    Index("ix_measurements_asn_start_id", "asn", "start_time", "id"),
    Index("ix_measurements_seq_id", "seq", "id"),
)

# The fingerprint files' version each measurement's verdict was last judged with, written by
# ``censorwatch db rejudge`` (a measurement without a row here is judged as its probe did).
# Its own table, so the ingest path's inserts are untouched.
fingerprint_judgements: Final = Table(
    "fingerprint_judgements",
    metadata,
    Column("id", Uuid(), primary_key=True),  # the measurement's
    Column("fingerprints_version", String(32), nullable=False),
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
    # Probes enrolled through one token (or open enrolment in one hour) share a group: they
    # count as one voice until they have history. An operator may vet a probe.
    Column("enrolment", String(64), nullable=True),
    Column("vetted", Boolean, nullable=False, server_default=false()),
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


# Alerts (revision 0002). Incidents keep the detector's ``Incident`` as JSON (``body``)
# beside the columns the API filters on; the detector's state is one row, locked by the
# replica that runs a detection cycle.
incidents: Final = Table(
    "incidents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("service", String(64), nullable=True),
    Column("cc", String(2), nullable=False),
    Column("onset", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("confidence", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_incidents_cc_service_onset", "cc", "service", "onset"),
    Index("ix_incidents_resolved_at", "resolved_at"),
)

detector_state: Final = Table(
    "detector_state",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("cursor_received_at", DateTime(timezone=True), nullable=True),
    Column("cursor_id", Uuid(), nullable=True),
    Column("cursor_seq", BigInteger, nullable=True),
    Column("state", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

events: Final = Table(
    "events",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("title", String(512), nullable=False),
    Column("cc", String(2), nullable=False),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("end", DateTime(timezone=True), nullable=True),
    Column("source_url", String(2048), nullable=True),
    Column("tags", Text, nullable=False),  # JSON array
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("series", String(128), nullable=True),  # occurrences of one recurring entry
    Column("source_id", String(64), nullable=True),  # the event source that last wrote it
    Index("ix_events_cc_start", "cc", "start"),
    Index("ix_events_series_start", "series", "start"),
    Index("ix_events_source_start", "source_id", "start"),
)

event_sources: Final = Table(
    "event_sources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("format", String(8), nullable=True),  # None: sniffed on each fetch
    Column("cc", String(2), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("keywords", Text, nullable=False),  # JSON [[keyword, kind], …]
    Column("interval_seconds", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("etag", String(512), nullable=True),
    Column("last_modified", String(64), nullable=True),
    Column("next_poll_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_success_at", DateTime(timezone=True), nullable=True),
    Column("last_error", String(512), nullable=True),
    Column("last_error_at", DateTime(timezone=True), nullable=True),
    Column("event_count", Integer, nullable=False),
    Column("polls", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_event_sources_next_poll", "next_poll_at"),
)

subscribers: Final = Table(
    "subscribers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("format", String(16), nullable=False),  # json | slack | telegram
    Column("chat_id", String(128), nullable=True),  # telegram
    Column("secret", String(128), nullable=False),
    Column("previous_secret", String(128), nullable=True),  # signs too until it expires
    Column("previous_expires_at", DateTime(timezone=True), nullable=True),
    Column("countries", Text, nullable=False),  # JSON array; empty = all
    Column("services", Text, nullable=False),  # JSON array; empty = all
    Column("min_confidence", Float, nullable=False),
    Column("send_resolutions", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("unconfirmed", Boolean, nullable=False, server_default=false()),  # opted in
    Column("disabled_reason", String(512), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per notification to one subscriber, written in the transaction that changed the
# incident. ``id`` is the Standard Webhooks ``webhook-id``: the same on every attempt.
outbox: Final = Table(
    "outbox",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subscriber_id", String(64), nullable=False),
    Column("incident_id", String(64), nullable=False),
    Column("change_kind", String(32), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("last_error", String(512), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
)

watch_windows: Final = Table(
    "watch_windows",  # opened by hand; events' windows are derived, never stored
    metadata,
    Column("id", String(64), primary_key=True),
    Column("cc", String(2), nullable=False),
    Column("start", DateTime(timezone=True), nullable=False),
    Column("end", DateTime(timezone=True), nullable=False),
    Column("title", String(512), nullable=False),
    Column("services", Text, nullable=True),  # JSON array; NULL = every service
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_watch_windows_cc_end", "cc", "end"),
)

# Hardening (revision 0003). Researcher tokens read exact probe ids and times; without one
# the API shows daily pseudonyms made with the ``pseudonym`` key in ``collector_keys``, which
# also holds the key that signs network attestations (``attestation-hmac``): the collector's
# own secrets, made once and shared by every replica.
researcher_tokens: Final = Table(
    "researcher_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("label", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

collector_keys: Final = Table(
    "collector_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Where censoring hops sit (revision 0009): one row per located endpoint of a stored,
# unflagged measurement, drawn at ingest from its trace observations (the probe's stated
# location is not taken on trust). ``asn`` is the probe's network as the collector placed
# it; ``router_asn`` the collector's lookup of the router that answered at that hop.
censor_hops: Final = Table(
    "censor_hops",
    metadata,
    Column("id", Uuid(), primary_key=True),  # the measurement's
    Column("endpoint", Integer, primary_key=True),
    Column("service", String(64), nullable=False),
    Column("cc", String(2), nullable=False),
    Column("asn", BigInteger, nullable=False),
    Column("hop", Integer, nullable=False),
    Column("router_asn", BigInteger, nullable=True),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Index("ix_censor_hops_cc_start", "cc", "start_time"),
)
