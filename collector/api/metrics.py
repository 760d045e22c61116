"""Prometheus metrics: live ingest instruments, and a cached picture of the stored data.

A scrape never touches the database. A background task reads rollups, probes, incidents, the outbox and events every
``metrics_refresh_seconds`` into an immutable ``Snapshot``: its metric families are built
and rendered to the exposition format once, off the event loop, so a scrape of ten
thousand series costs a copy of bytes plus the few live ingest instruments. Labels stay bounded: an ASN gets its own label value
only while it has active probes, all others count under ``asn="other"``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.store import schema
from collector.store.db import Database, as_utc
from collector.store.rollups import hour_of
from collector.workers import METRICS_DIRECTORY

log: Final = logging.getLogger(__name__)
OTHER_ASN: Final = "other"
REJECT_REASONS: Final = ("invalid_json", "invalid_measurement", "too_deep", "wrong_probe")
# An event announced without an end counts as active for this long after its start.
EVENT_DEFAULT_DURATION: Final = dt.timedelta(hours=2)


class IngestMetrics:
    """Instruments updated as batches arrive (per replica)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "censorwatch_ingest_duration_seconds",
            "Time to validate and store one ingest batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.batch_size = Histogram(
            "censorwatch_ingest_batch_size_items",
            "Measurements per ingest batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=registry,
        )
        self.items = Counter(
            "censorwatch_ingest_items",
            "Ingested items by result (accepted, duplicate, rejected)",
            ["result"],
            registry=registry,
        )
        self.rejected = Counter(
            "censorwatch_ingest_rejected_items",
            "Items rejected at ingest, by reason",
            ["reason"],
            registry=registry,
        )
        self.deliveries = Counter(
            "censorwatch_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retried, dead, disabled)",
            ["outcome"],
            registry=registry,
        )
        self.detection_duration = Histogram(
            "censorwatch_detection_cycle_duration_seconds",
            "Time for one incident detection cycle (read, detect, store)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        for outcome in ("delivered", "retried", "dead", "disabled", "lost_claim"):
            self.deliveries.labels(outcome)
        for result in ("accepted", "duplicate", "rejected"):
            self.items.labels(result)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)


@dataclass(frozen=True)
class Snapshot:
    measurements: Mapping[tuple[str, str, str, str], int] = field(default_factory=dict)
    blocking: Mapping[tuple[str, str, str], float] = field(default_factory=dict)
    probes_active: Mapping[tuple[str, str], int] = field(default_factory=dict)
    taken_at: float = 0.0
    incidents_open: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    outbox: Mapping[str, int] = field(default_factory=dict)
    # (kind, country) → events whose window contains the snapshot time; every pair that has a
    # started event is present (0 when none is active), so the series does not come and go.
    events_active: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # (kind, country) → start (unix seconds) of the most recent event that has started.
    event_start: Mapping[tuple[str, str], float] = field(default_factory=dict)
    families: tuple[Metric, ...] = ()
    text: bytes = b""


def asn_label(asn: int, active: frozenset[int]) -> str:
    return str(asn) if asn in active else OTHER_ASN


def blocking_value(verdicts: Mapping[str, int]) -> float:
    """1 while blocked verdicts are at least half of the judged ones, else 0."""
    blocked = verdicts.get("blocked", 0)
    judged = blocked + sum(verdicts.get(v, 0) for v in ("ok", "anomaly", "down"))
    return 1.0 if blocked > 0 and 2 * blocked >= judged else 0.0


Row4 = tuple[str, str, int, str, int]


def build_snapshot(
    totals: Iterable[Row4],
    recent: Iterable[Row4],
    probes: Iterable[tuple[str | None, int | None, int]],
    taken_at: float,
    incidents_open: Mapping[tuple[str, str, str], int] | None = None,
    outbox: Mapping[str, int] | None = None,
    events_active: Mapping[tuple[str, str], int] | None = None,
    event_start: Mapping[tuple[str, str], float] | None = None,
) -> Snapshot:
    """From (service, cc, asn, verdict, count) rows and (cc, asn, count) active probes."""
    active_probes: Tally[tuple[str, str]] = Tally()
    for cc, asn, count in probes:
        active_probes[(cc or "ZZ", str(asn) if asn is not None else "0")] += count
    active = frozenset(int(asn) for _, asn in active_probes)
    measurements: Tally[tuple[str, str, str, str]] = Tally()
    for service, cc, asn, verdict, count in totals:
        measurements[(service, cc, asn_label(asn, active), verdict)] += count
    by_verdict: dict[tuple[str, str, str], Tally[str]] = {}
    for service, cc, asn, verdict, count in recent:
        key = (service, cc, asn_label(asn, active))
        by_verdict.setdefault(key, Tally())[verdict] += count
    blocking = {key: blocking_value(v) for key, v in by_verdict.items()}
    snapshot = Snapshot(
        dict(measurements),
        blocking,
        dict(active_probes),
        taken_at,
        dict(incidents_open or {}),
        dict(outbox or {}),
        {key: 0 for key in event_start or {}} | dict(events_active or {}),
        dict(event_start or {}),
    )
    built = tuple(families(snapshot))
    return dataclasses.replace(snapshot, families=built, text=render(built))


class _Families:
    def __init__(self, built: tuple[Metric, ...]) -> None:
        self.built = built

    def collect(self) -> Iterable[Metric]:
        return self.built


def render(built: tuple[Metric, ...]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(built))
    return generate_latest(registry)


def families(s: Snapshot) -> Iterable[Metric]:
    total = CounterMetricFamily(
        "censorwatch_measurements",
        "Stored measurements by service, country, ASN and collector verdict",
        labels=["service", "country", "asn", "verdict"],
    )
    for labels, count in sorted(s.measurements.items()):
        total.add_metric(labels, count)
    yield total
    blocking = GaugeMetricFamily(
        "censorwatch_blocking",
        "1 while the service is judged blocked in this country and ASN (recent hours)",
        labels=["service", "country", "asn"],
    )
    for labels3, value in sorted(s.blocking.items()):
        blocking.add_metric(labels3, value)
    yield blocking
    probes = GaugeMetricFamily(
        "censorwatch_probes_active", "Probes seen recently", labels=["country", "asn"]
    )
    for labels2, count in sorted(s.probes_active.items()):
        probes.add_metric(labels2, count)
    yield probes
    yield from alert_families(s)
    yield from event_families(s)
    yield GaugeMetricFamily(
        "censorwatch_metrics_snapshot_timestamp_seconds",
        "When the cached metrics were last read from the database",
        value=s.taken_at,
    )


def alert_families(s: Snapshot) -> Iterable[Metric]:
    incidents = GaugeMetricFamily(
        "censorwatch_incidents_open",
        "Open incidents by kind (blocking, shutdown), service and country",
        labels=["kind", "service", "country"],
    )
    for labels, count in sorted(s.incidents_open.items()):
        incidents.add_metric(labels, count)
    yield incidents
    yield GaugeMetricFamily(
        "censorwatch_webhook_dead_letters",
        "Webhook notifications given up on (dead letters), until retried",
        value=s.outbox.get("dead", 0),
    )
    yield GaugeMetricFamily(
        "censorwatch_outbox_pending",
        "Webhook notifications waiting to be delivered",
        value=s.outbox.get("pending", 0),
    )


def event_families(s: Snapshot) -> Iterable[Metric]:
    """Announced events by kind and country only (titles would make labels unbounded)."""
    active = GaugeMetricFamily(
        "censorwatch_events_active",
        "Announced events whose window [start, end] contains now (no end: start + 2 h)",
        labels=["kind", "country"],
    )
    for labels, count in sorted(s.events_active.items()):
        active.add_metric(labels, count)
    yield active
    start = GaugeMetricFamily(
        "censorwatch_event_start_timestamp_seconds",
        "Start (unix seconds) of the most recent announced event that has started",
        labels=["kind", "country"],
    )
    for labels, moment in sorted(s.event_start.items()):
        start.add_metric(labels, moment)
    yield start


class SnapshotHolder:
    """The current snapshot; also a prometheus-client collector over it."""

    def __init__(self) -> None:
        self.current = Snapshot()
        self.loaded = False

    def replace(self, snapshot: Snapshot) -> None:
        self.current = snapshot
        self.loaded = True

    def collect(self) -> Iterable[Metric]:
        return self.current.families


async def _totals(connection: AsyncConnection) -> list[Row4]:
    t = schema.rollup_totals
    query = select(t.c.service, t.c.cc, t.c.asn, t.c.verdict, t.c.count)
    return [(s, c, int(a), v, int(n)) for s, c, a, v, n in await connection.execute(query)]


async def _recent(connection: AsyncConnection, since_hour: int) -> list[Row4]:
    r = schema.rollups
    query = (
        select(r.c.service, r.c.cc, r.c.asn, r.c.verdict, func.sum(r.c.count))
        .where(r.c.hour >= since_hour)
        .group_by(r.c.service, r.c.cc, r.c.asn, r.c.verdict)
    )
    return [(s, c, int(a), v, int(n)) for s, c, a, v, n in await connection.execute(query)]


async def read_snapshot(
    db: Database, active_seconds: int, window_hours: int, now: dt.datetime
) -> Snapshot:
    p = schema.probes
    seen_since = now - dt.timedelta(seconds=active_seconds)
    active = (
        select(p.c.cc, p.c.asn, func.count())
        .where(and_(p.c.revoked_at.is_(None), p.c.last_seen_at >= seen_since))
        .group_by(p.c.cc, p.c.asn)
    )
    async with db.reading() as connection:
        probes = [(cc, asn, int(n)) for cc, asn, n in await connection.execute(active)]
        totals = await _totals(connection)
        recent = await _recent(connection, hour_of(now) - max(window_hours, 1) + 1)
        incidents_open = await _incidents_open(connection)
        queued = await _outbox(connection)
        events_active, event_start = await _events(connection, now)
    return await asyncio.to_thread(
        build_snapshot,
        totals,
        recent,
        probes,
        now.timestamp(),
        incidents_open,
        queued,
        events_active,
        event_start,
    )


async def _events(
    connection: AsyncConnection, now: dt.datetime
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], float]]:
    """Active events and the latest start per (kind, country), among events started by now."""
    e = schema.events
    started = e.c.start <= now
    in_window = or_(
        e.c.end >= now, and_(e.c.end.is_(None), e.c.start >= now - EVENT_DEFAULT_DURATION)
    )
    active_query = (
        select(e.c.kind, e.c.cc, func.count())
        .where(and_(started, in_window))
        .group_by(e.c.kind, e.c.cc)
    )
    latest_query = select(e.c.kind, e.c.cc, func.max(e.c.start)).where(started)
    latest_query = latest_query.group_by(e.c.kind, e.c.cc)
    active = {(k, c): int(n) for k, c, n in await connection.execute(active_query)}
    latest = {
        (k, c): as_utc(moment).timestamp()
        for k, c, moment in await connection.execute(latest_query)
        if moment is not None
    }
    return active, latest


async def _incidents_open(connection: AsyncConnection) -> dict[tuple[str, str, str], int]:
    i = schema.incidents
    query = (
        select(i.c.kind, i.c.service, i.c.cc, func.count())
        .where(i.c.resolved_at.is_(None))
        .group_by(i.c.kind, i.c.service, i.c.cc)
    )
    return {(k, s or "", c): int(n) for k, s, c, n in await connection.execute(query)}


async def _outbox(connection: AsyncConnection) -> dict[str, int]:
    o = schema.outbox
    query = select(o.c.status, func.count()).where(o.c.status != "delivered").group_by(o.c.status)
    return {status: int(n) for status, n in await connection.execute(query)}


async def refresh_forever(
    db: Database, holder: SnapshotHolder, interval: float, active_seconds: int, window_hours: int
) -> None:
    while True:
        started = time.monotonic()
        try:
            now = dt.datetime.now(dt.UTC)
            holder.replace(await read_snapshot(db, active_seconds, window_hours, now))
        except Exception as exc:  # keep serving the last snapshot; say why once per round
            log.warning("metrics refresh failed: %s: %s", type(exc).__name__, exc)
        await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))


def every_worker(gauges: Collector) -> CollectorRegistry | None:
    """Under ``serve --workers N`` (``collector.workers``): a registry of every worker's
    instruments summed from the shared directory, with this worker's ``gauges`` (each
    worker keeps them current); None for a collector of one process."""
    directory = os.environ.get(METRICS_DIRECTORY)
    if not directory:
        return None
    combined = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(combined, path=directory)  # type: ignore[no-untyped-call]
    combined.register(gauges)
    return combined


def exposition(holder: SnapshotHolder, live: CollectorRegistry) -> bytes:
    """The cached snapshot's text followed by the live instruments."""
    return holder.current.text + generate_latest(live)
