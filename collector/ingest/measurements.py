"""``POST /api/v1/measurements``: authenticated, validated, idempotent batch ingest.

The order of checks is the order of cost: the token (one indexed lookup), the rate, the
body's size and framing, then each item against the wire model. Valid items are
re-judged with context from the rollups, inserted with ``ON CONFLICT DO NOTHING`` on their
UUID, and counted into the rollups for exactly the rows that insert returned — all in one
transaction, so a replay, a retry to another replica, or a crash halfway can neither
double-count nor lose a measurement.

A measurement's country and ASN are the collector's own: from the signed attestation the
probe attached (``probe.attestation``, issued at check-in for the network it checked in
from), else from the collector's last lookup for that probe. The body's ``probe.cc`` and
``probe.asn`` are only compared: a claim that differs, an attestation that does not verify,
and a network nobody determined are stored with a flag (an attestation that did not cover
the measurement's time is ignored: the lookup places it), shown on the measurement, and kept out of detection (and, but for the last, out of
the rollups).
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
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api.errors import APIError
from collector.auth import utc_now
from collector.enrolment import attestation, probes
from collector.enrolment.probes import ProbeRecord
from collector.ingest import locations, reanalysis
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
from collector.store import hops, rollups, schema
from collector.store.db import Database, asyncpg_in_transaction

Result = Literal["accepted", "duplicate", "rejected"]
FLAG_MISMATCH: Final = "network_mismatch"  # the body claims another country or ASN
FLAG_UNVERIFIED: Final = "network_unverified"  # the collector determined no network
FLAG_ATTESTATION: Final = "attestation_invalid"  # forged, malformed or another probe's
NETWORK_FLAGS: Final = frozenset({FLAG_MISMATCH, FLAG_UNVERIFIED, FLAG_ATTESTATION})
# Without an IP-to-ASN table the claim is all anyone has: aggregation still counts it (the
# flag is on each measurement), detection never does.
_UNCOUNTED: Final = NETWORK_FLAGS - {FLAG_UNVERIFIED}
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
    flags: dict[uuid.UUID, tuple[str, ...]]


@dataclass(frozen=True)
class Placed:
    """Where the collector places a measurement, and what it could not vouch for."""

    cc: str
    asn: int
    flags: tuple[str, ...]


def network_columns(valid: Valid, probe: ProbeRecord, key: bytes | None) -> Placed:
    """Country and ASN from the probe's attestation or the collector's lookup, never the body."""
    info = valid.measurement.probe
    flags: list[str] = []
    found = _attested(valid, probe, key, flags)
    if found is None and (probe.cc is not None or probe.asn is not None):
        found = (probe.cc or "ZZ", probe.asn or 0)
    if found is None:  # no IP-to-ASN table and no attestation: the claim is all there is
        flags.append(FLAG_UNVERIFIED)
        found = (info.cc or "ZZ", info.asn if info.asn is not None else 0)
    cc, asn = found
    if (info.cc is not None and info.cc != cc) or (info.asn is not None and info.asn != asn):
        flags.append(FLAG_MISMATCH)
    return Placed(cc, asn, tuple(flags))


def _attested(
    valid: Valid, probe: ProbeRecord, key: bytes | None, flags: list[str]
) -> tuple[str, int] | None:
    text = valid.measurement.probe.attestation
    if text is None:
        return None
    if key is None:
        flags.append(FLAG_ATTESTATION)
        return None
    try:
        found = attestation.verify(text, probe.id, key)
    except attestation.InvalidAttestation:
        flags.append(FLAG_ATTESTATION)
        return None
    if not found.covers(valid.measurement.start_time):
        # Stale, not forged (a probe restarted with an old check-in): the collector's own
        # lookup places it, and a claim that contradicts that is still a mismatch.
        return None
    return found.cc, found.asn


def reading_of(valid: Valid, probe: ProbeRecord, placed: Placed) -> Reading:
    analysis = valid.measurement.analysis
    return Reading(analysis.verdict, tuple(analysis.methods), placed.asn, probe.control)


def to_row(
    valid: Valid, probe: ProbeRecord, outcome: Outcome, now: dt.datetime, placed: Placed
) -> dict[str, Any]:
    m = valid.measurement
    cc, asn = placed.cc, placed.asn
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
        "flags": ",".join((*valid.flags, *placed.flags)),
        "body": valid.body,
        "confidence": m.analysis.confidence,
        "seq": None,  # PostgreSQL: the transaction id (server default); SQLite: insert_rows
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


_COLUMNS: Final = tuple(c.name for c in schema.measurements.columns if c.name != "seq")
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
    # Writers are serialised on SQLite (one process, one write lock), so numbering after
    # the last row is commit order: the detector's cursor can never skip a row.
    last = await connection.scalar(select(func.coalesce(func.max(m.c.seq), 0)))
    rows = [{**row, "seq": int(last or 0) + i} for i, row in enumerate(rows, 1)]
    statement = db.insert(m).on_conflict_do_nothing(index_elements=["id"]).returning(m.c.id)
    result = await connection.execute(statement, rows)
    return frozenset(result.scalars())


async def store(
    db: Database,
    probe: ProbeRecord,
    valid: Sequence[Valid],
    now: dt.datetime,
    asn_of: locations.AsnOf = locations.no_lookup,
) -> Stored:
    unique = first_of_each(valid)
    if not unique:
        return Stored(frozenset(), {}, {})
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
        key = await attestation.signing_key(connection)
        outcomes: dict[uuid.UUID, Outcome] = {}
        flags: dict[uuid.UUID, tuple[str, ...]] = {}
        rows: list[dict[str, Any]] = []
        located: list[dict[str, Any]] = []
        for mid, item in sorted(unique.items()):
            hour = rollups.hour_of(item.measurement.start_time)
            vantages = () if item.flags else context.vantages(item.measurement.service, hour)
            placed = network_columns(item, probe, key)
            outcomes[mid] = reanalysis.reanalyse(reading_of(item, probe, placed), vantages)
            flags[mid] = placed.flags
            rows.append(to_row(item, probe, outcomes[mid], now, placed))
            if not item.flags and not placed.flags:  # flagged rows place nothing
                located += locations.hop_rows(item.measurement, placed.cc, placed.asn, asn_of)
        inserted = await insert_rows(connection, db, rows)
        await rollups.add(connection, db, rollups.tally(counted(rows, inserted)))
        await hops.add(connection, db, [r for r in located if r["id"] in inserted])
        await probes.touch(connection, probe.id, now)
        return Stored(inserted, outcomes, flags)

    return await db.transaction(work)


def counted(
    rows: list[dict[str, Any]], inserted: frozenset[uuid.UUID]
) -> Iterable[rollups.Contribution]:
    """What the rollups count: inserted rows, minus far-future ones, services the collector
    does not serve and contradicted networks."""
    for row in rows:
        flags = set(row["flags"].split(","))
        if row["id"] in inserted and not flags & (UNCOUNTED | _UNCOUNTED):
            yield contribution(row)


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
                flags=[*item.flags, *stored.flags.get(key, ())],
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
    valid = [c for c in checked if isinstance(c, Valid)]
    stored = await store(state.db, probe, valid, now, _router_asn(state))
    batch = summarise(results(checked, stored))
    _record(state, checked, batch)
    state.metrics.duration.observe(time.perf_counter() - started)
    return web.Response(body=_encoder.encode(batch), content_type="application/json")


def _router_asn(state: State) -> locations.AsnOf:
    """The collector's IP-to-ASN table for the routers at censoring hops (public
    infrastructure: the probe withheld every address of the volunteer's side)."""
    table = state.asn_table
    if table is None:
        return locations.no_lookup

    def lookup(address: str) -> int | None:
        found = table.lookup(address)
        return None if found is None else found.asn

    return lookup


def routes() -> list[web.RouteDef]:
    return [web.post("/api/v1/measurements", post_measurements)]
