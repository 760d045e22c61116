"""``POST /api/v1/measurements``: authenticated, validated, idempotent batch ingest.

The order of checks is the order of cost: the token (one indexed lookup), the rate, the
body's size and framing, then each item against the wire model. Valid items are
re-judged with context from the rollups, inserted with ``ON CONFLICT DO NOTHING`` on their
UUID, and counted into the rollups for exactly the rows that insert returned — all in one
transaction, so a replay, a retry to another replica, or a crash halfway can neither
double-count nor lose a measurement.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api.errors import APIError
from collector.auth import utc_now
from collector.enrolment import probes
from collector.enrolment.probes import ProbeRecord
from collector.ingest import reanalysis
from collector.ingest.payload import Batch, read_batch
from collector.ingest.reanalysis import Outcome, Reading, Vantage
from collector.ingest.validation import (
    UNCOUNTED,
    Invalid,
    TimeWindow,
    Valid,
    check_array,
    check_item,
    flag_unknown_services,
)
from collector.state import STATE, State
from collector.store import rollups, schema
from collector.store.db import Database, asyncpg_in_transaction

Result = Literal["accepted", "duplicate", "rejected"]
_CONTEXT_HOURS: Final = 1  # look this many hours either side for other vantage points


class ItemResult(msgspec.Struct):
    index: int
    result: Result
    id: str | None = None
    reason: str | None = None
    verdict: str | None = None
    rule: str | None = None
    flags: list[str] = []


class BatchResult(msgspec.Struct):
    accepted: int
    duplicate: int
    rejected: int
    results: list[ItemResult]


_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True)
class Stored:
    """What the ingest transaction did: which ids it inserted, and the verdict for each."""

    inserted: frozenset[uuid.UUID]
    outcomes: dict[uuid.UUID, Outcome]


def network_columns(valid: Valid, probe: ProbeRecord) -> tuple[str, int]:
    """Country and ASN as the measurement says, else as the probe last checked in."""
    info = valid.measurement.probe
    cc = info.cc or probe.cc or "ZZ"
    asn = info.asn if info.asn is not None else (probe.asn or 0)
    return cc, asn


def reading_of(valid: Valid, probe: ProbeRecord) -> Reading:
    analysis = valid.measurement.analysis
    _, asn = network_columns(valid, probe)
    return Reading(analysis.verdict, tuple(analysis.methods), asn, probe.control)


def to_row(valid: Valid, probe: ProbeRecord, outcome: Outcome, now: dt.datetime) -> dict[str, Any]:
    m = valid.measurement
    cc, asn = network_columns(valid, probe)
    return {
        "id": m.id,
        "probe_id": probe.id,
        "service": m.service,
        "cc": cc,
        "asn": asn,
        "control": probe.control,
        "start_time": m.start_time,
        "received_at": now,
        "probe_verdict": m.analysis.verdict,
        "verdict": outcome.verdict,
        "methods": " ".join(dict.fromkeys(m.analysis.methods)),
        "rule": outcome.rule,
        "rules_version": outcome.rules_version,
        "flags": ",".join(valid.flags),
        "body": valid.body,
        "confidence": m.analysis.confidence,
    }


def contribution(row: dict[str, Any]) -> rollups.Contribution:
    key = rollups.RollupKey(
        rollups.hour_of(row["start_time"]),
        row["service"],
        row["cc"],
        row["asn"],
        row["verdict"],
        row["control"],
    )
    return rollups.Contribution(key, tuple(row["methods"].split()))


class ContextIndex:
    """Vantage points per (service, hour), built once per batch from rollup rows.

    Rows are indexed by (service, hour) as they arrive, so a lookup reads the three hours
    it needs instead of every row of the service: a batch of many distinct hours costs
    its rows once, not once per hour.
    """

    def __init__(self, rows: Iterable[rollups.ContextRow]) -> None:
        self._by_hour: dict[tuple[str, int], list[rollups.ContextRow]] = {}
        self._cache: dict[tuple[str, int], tuple[Vantage, ...]] = {}
        for row in rows:
            self._by_hour.setdefault((row.service, row.hour), []).append(row)

    def vantages(self, service: str, hour: int) -> tuple[Vantage, ...]:
        if (service, hour) not in self._cache:
            near = (
                (r.asn, r.control, r.verdict, r.count)
                for h in range(hour - _CONTEXT_HOURS, hour + _CONTEXT_HOURS + 1)
                for r in self._by_hour.get((service, h), ())
            )
            self._cache[(service, hour)] = tuple(reanalysis.vantage_counts(near))
        return self._cache[(service, hour)]


def first_of_each(valid: Sequence[Valid]) -> dict[uuid.UUID, Valid]:
    """One item per measurement id, the first; later copies in a batch are duplicates."""
    unique: dict[uuid.UUID, Valid] = {}
    for item in valid:
        unique.setdefault(item.measurement.id, item)
    return unique


_COLUMNS: Final = tuple(c.name for c in schema.measurements.columns)
_PG_TYPES: Final = {
    "id": "uuid", "asn": "bigint", "control": "boolean", "start_time": "timestamptz",
    "received_at": "timestamptz", "body": "bytea", "confidence": "float8",
}  # fmt: skip
_PG_INSERT: Final = (
    f"INSERT INTO measurements ({', '.join(_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i}::{_PG_TYPES.get(c, 'text')}[]" for i, c in enumerate(_COLUMNS, 1))
    + ") ON CONFLICT (id) DO NOTHING RETURNING id"
)


async def _insert_rows_postgresql(
    connection: AsyncConnection, rows: list[dict[str, Any]]
) -> frozenset[uuid.UUID]:
    """One ``INSERT … SELECT FROM unnest(arrays)``: a round trip and no per-row SQL work."""
    driver = await asyncpg_in_transaction(connection)
    columns = [[row[name] for row in rows] for name in _COLUMNS]
    return frozenset(record[0] for record in await driver.fetch(_PG_INSERT, *columns))


async def insert_rows(
    connection: AsyncConnection, db: Database, rows: list[dict[str, Any]]
) -> frozenset[uuid.UUID]:
    if not rows:
        return frozenset()
    if db.dialect == "postgresql":
        return await _insert_rows_postgresql(connection, rows)
    m = schema.measurements
    statement = db.insert(m).on_conflict_do_nothing(index_elements=["id"]).returning(m.c.id)
    result = await connection.execute(statement, rows)
    return frozenset(result.scalars())


async def store(
    db: Database, probe: ProbeRecord, valid: Sequence[Valid], now: dt.datetime
) -> Stored:
    unique = first_of_each(valid)
    if not unique:
        return Stored(frozenset(), {})
    # Only items inside the time window get context: their hours span at most the window
    # (max_past + max_future), so one bounded query serves the batch. A flagged item's
    # hour is not to be believed; it is judged on its own facts.
    # (The query runs even when no item needs it: it opens the transaction the bulk
    # insert on PostgreSQL runs in.)
    placed = [v for v in unique.values() if not v.flags]
    hours = [rollups.hour_of(v.measurement.start_time) for v in placed] or [0]
    services = sorted({v.measurement.service for v in placed})

    async def work(connection: AsyncConnection) -> Stored:
        context = ContextIndex(
            await rollups.context_rows(
                connection, services, min(hours) - _CONTEXT_HOURS, max(hours) + _CONTEXT_HOURS
            )
        )
        outcomes: dict[uuid.UUID, Outcome] = {}
        rows: list[dict[str, Any]] = []
        for key, item in sorted(unique.items()):
            hour = rollups.hour_of(item.measurement.start_time)
            vantages = () if item.flags else context.vantages(item.measurement.service, hour)
            outcomes[key] = reanalysis.reanalyse(reading_of(item, probe), vantages)
            rows.append(to_row(item, probe, outcomes[key], now))
        inserted = await insert_rows(connection, db, rows)
        counted = (
            contribution(r)
            for r in rows
            if r["id"] in inserted and not UNCOUNTED.intersection(r["flags"].split(","))
        )
        await rollups.add(connection, db, rollups.tally(counted))
        await probes.touch(connection, probe.id, now)
        return Stored(inserted, outcomes)

    return await db.transaction(work)


def results(checked: Sequence[Valid | Invalid], stored: Stored) -> list[ItemResult]:
    out: list[ItemResult] = []
    first_seen: set[uuid.UUID] = set()
    for item in checked:
        if isinstance(item, Invalid):
            out.append(ItemResult(item.index, "rejected", item.id, item.reason))
            continue
        key = item.measurement.id
        fresh = key in stored.inserted and key not in first_seen
        first_seen.add(key)
        outcome = stored.outcomes[key]
        out.append(
            ItemResult(
                item.index,
                "accepted" if fresh else "duplicate",
                str(key),
                verdict=outcome.verdict if fresh else None,
                rule=outcome.rule if fresh else None,
                flags=list(item.flags),
            )
        )
    return out


def summarise(items: list[ItemResult]) -> BatchResult:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for item in items:
        counts[item.result] += 1
    return BatchResult(counts["accepted"], counts["duplicate"], counts["rejected"], items)


def _rate_limited(seconds: float, probe_id: str, what: str = "measurements") -> APIError:
    retry = max(1, math.ceil(seconds))
    return APIError(
        429,
        "rate_limited",
        f"too many {what} from this probe; retry in {retry} s",
        headers={"Retry-After": str(retry)},
        probe_id=probe_id,
        retry_after=retry,
    )


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise APIError(413, "payload_too_large", "body exceeds the limit", limit=limit)
    return await request.read()


def check_batch(
    batch: Batch, probe_id: str, now: dt.datetime, window: TimeWindow
) -> list[Valid | Invalid]:
    if batch.framing == "array":
        return check_array(batch.data, batch.items, probe_id, now, window)
    return [check_item(i, bytes(raw), probe_id, now, window) for i, raw in enumerate(batch.items)]


def _record(state: State, checked: Sequence[Valid | Invalid], batch: BatchResult) -> None:
    m = state.metrics
    m.batch_size.observe(len(checked))
    for result in ("accepted", "duplicate", "rejected"):
        m.items.labels(result).inc(getattr(batch, result))
    for item in checked:
        if isinstance(item, Invalid):
            m.rejected.labels(item.kind).inc()


async def post_measurements(request: web.Request) -> web.Response:
    state = request.app[STATE]
    started = time.perf_counter()
    async with state.db.reading() as connection:
        probe = await probes.authenticate(connection, request.headers.get("Authorization"))
    if wait := state.limiter.wait_for_any(probe.id, time.monotonic()):
        raise _rate_limited(wait, probe.id)
    if wait := state.byte_limiter.wait_for_any(probe.id, time.monotonic()):
        raise _rate_limited(wait, probe.id, "bytes")
    body = await read_body(request, state.config.max_body_bytes)
    encoding = request.headers.get("Content-Encoding")
    # Bounded but not free (inflating and decoding 16 MiB): in a thread, so the event
    # loop keeps answering other probes meanwhile.
    batch_in = await asyncio.to_thread(
        read_batch, body, request.content_type, encoding, state.limits
    )
    raws = batch_in.items
    if wait := state.byte_limiter.wait_for(probe.id, len(batch_in.data), time.monotonic()):
        raise _rate_limited(wait, probe.id, "bytes")
    if wait := state.limiter.wait_for(probe.id, len(raws), time.monotonic()):
        raise _rate_limited(wait, probe.id)
    now = utc_now()
    checked = await asyncio.to_thread(check_batch, batch_in, probe.id, now, state.window)
    checked = flag_unknown_services(checked, state.targets.services)
    stored = await store(state.db, probe, [c for c in checked if isinstance(c, Valid)], now)
    batch = summarise(results(checked, stored))
    _record(state, checked, batch)
    state.metrics.duration.observe(time.perf_counter() - started)
    return web.Response(body=_encoder.encode(batch), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [web.post("/api/v1/measurements", post_measurements)]
