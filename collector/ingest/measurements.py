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
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, ParamSpec, TypeVar

import msgspec
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api.errors import APIError
from collector.auth import utc_now
from collector.enrolment import attestation, probes, proxies
from collector.enrolment.probes import ProbeRecord
from collector.ingest import locations, reanalysis
from collector.ingest.admission import retry_later
from collector.ingest.last_seen import LastSeen
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
from collector.store import bulk, hops, rollups, schema
from collector.store.db import Database, asyncpg_in_transaction

Result = Literal["accepted", "duplicate", "rejected"]
FLAG_MISMATCH: Final = "network_mismatch"  # the body claims another country or ASN
FLAG_UNVERIFIED: Final = "network_unverified"  # the collector determined no network
FLAG_ATTESTATION: Final = "attestation_invalid"  # forged, malformed or another probe's
NETWORK_FLAGS: Final = frozenset({FLAG_MISMATCH, FLAG_UNVERIFIED, FLAG_ATTESTATION})
# Without an IP-to-ASN table the claim is all anyone has: aggregation still counts it (the
# flag is on each measurement), detection never does.
_UNCOUNTED: Final = NETWORK_FLAGS - {FLAG_UNVERIFIED}
P = ParamSpec("P")
T = TypeVar("T")
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


class Placements:
    """``network_columns`` for the items of one batch: without an attestation an item is
    placed by its probe and its claim alone, which a batch repeats item after item; with
    one, by an attestation the batch repeats too (its time range checked per item)."""

    def __init__(self, probe: ProbeRecord, key: bytes | None) -> None:
        self._probe = probe
        self._key = key
        self._by_claim: dict[tuple[str | None, int | None], Placed] = {}
        self._verified: dict[str, attestation.Attestation | None] = {}  # None: refused
        self._by_attestation: dict[tuple[str, bool, str | None, int | None], Placed] = {}

    def _checked(self, text: str, key: bytes) -> attestation.Attestation | None:
        if text not in self._verified:
            try:
                self._verified[text] = attestation.verify(text, self._probe.id, key)
            except attestation.InvalidAttestation:
                self._verified[text] = None
        return self._verified[text]

    def of(self, valid: Valid) -> Placed:
        info = valid.measurement.probe
        if info.attestation is not None:
            return self._attested(valid, info.attestation)
        claim = (info.cc, info.asn)
        if claim not in self._by_claim:
            self._by_claim[claim] = network_columns(valid, self._probe, self._key)
        return self._by_claim[claim]

    def _attested(self, valid: Valid, text: str) -> Placed:
        """Placed by what decides it: the attestation, whether it covers the item's start,
        and the claim."""
        if self._key is None:
            return network_columns(valid, self._probe, self._key)
        found = self._checked(text, self._key)
        start = valid.measurement.start_time
        covers = found is not None and found.covers(start)
        info = valid.measurement.probe
        decided = (text, covers, info.cc, info.asn)
        if decided not in self._by_attestation:
            self._by_attestation[decided] = network_columns(valid, self._probe, self._key)
        return self._by_attestation[decided]


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
) -> bulk.Row:
    m = valid.measurement
    analysis = m.analysis
    return bulk.Row(
        m.id, probe.id, m.service, placed.cc, placed.asn, probe.control, m.start_time, now,
        analysis.verdict, outcome.verdict, " ".join(dict.fromkeys(analysis.methods)),
        outcome.rule, outcome.rules_version, ",".join((*valid.flags, *placed.flags)),
        valid.body, analysis.confidence,
    )  # fmt: skip


def contribution(row: dict[str, Any]) -> rollups.Contribution:
    """What a stored row (as a mapping of its columns) adds to the rollups."""
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

    @classmethod
    def summed(cls, rows: Iterable[tuple[str, int, int, bool, int, int]]) -> ContextIndex:
        """From ``rollups.vantage_rows``: each cell's vantages summed by the database."""
        index = cls(())
        cells: dict[tuple[str, int], list[Vantage]] = {}
        for service, hour, asn, control, ok, failing in rows:
            cells.setdefault((service, hour), []).append(Vantage(asn, control, ok, failing))
        index._cache = {cell: tuple(found) for cell, found in cells.items()}
        return index

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


async def _insert_rows_postgresql(
    connection: AsyncConnection, rows: list[dict[str, Any]]
) -> frozenset[uuid.UUID]:
    """One ``INSERT … SELECT FROM unnest(arrays)``: a round trip and no per-row SQL work."""
    driver = await asyncpg_in_transaction(connection)
    columns = [[row[name] for row in rows] for name in bulk.COLUMNS]
    return frozenset(record[0] for record in await driver.fetch(_PG_INSERT, *columns))


_PG_INSERT: Final = bulk.insert_statement()


async def insert_rows(
    connection: AsyncConnection, db: Database, rows: list[dict[str, Any]]
) -> frozenset[uuid.UUID]:
    """Rows (mappings of ``bulk.COLUMNS``) inside the caller's transaction: the ids stored."""
    if not rows:
        return frozenset()
    if db.dialect == "postgresql":
        return await _insert_rows_postgresql(connection, rows)
    m = schema.measurements
    # Writers are serialised on SQLite (one process, one write lock), so numbering after
    # the last row is commit order: the detector's cursor can never skip a row.
    last = await connection.scalar(select(func.coalesce(func.max(m.c.seq), 0)))
    numbered = [{**row, "seq": int(last or 0) + i} for i, row in enumerate(rows, 1)]
    statement = db.insert(m).on_conflict_do_nothing(index_elements=["id"]).returning(m.c.id)
    result = await connection.execute(statement, numbered)
    return frozenset(result.scalars())


@dataclass(frozen=True)
class Judged:
    """A batch ready to write: rows sorted by id, with the verdict and flags of each."""

    rows: list[bulk.Row]
    counted: list[bool]  # whether each row, once stored, counts in the rollups
    outcomes: dict[uuid.UUID, Outcome]
    flags: dict[uuid.UUID, tuple[str, ...]]
    located: list[dict[str, Any]]  # censoring hops of unflagged rows, for ``censor_hops``

    def stored(self, inserted: frozenset[uuid.UUID]) -> Stored:
        return Stored(inserted, self.outcomes, self.flags)

    def tally(self, inserted: frozenset[uuid.UUID] | None = None) -> rollups.Tally:
        """What the rows stored (all, when ``inserted`` is None) add to the rollups."""
        # Counted by plain tuples first: a rollup key is made once per distinct key.
        seen = Counter(
            (rollups.hour_of(row.start_time), row.service, row.cc, row.asn, row.verdict,
             row.control, row.methods)
            for row, counts in zip(self.rows, self.counted, strict=True)
            if counts and (inserted is None or row.id in inserted)
        )  # fmt: skip
        return rollups.tally_keys(
            Counter(
                {(rollups.RollupKey(*key[:6]), tuple(key[6].split())): n for key, n in seen.items()}
            )
        )

    def located_in(self, inserted: frozenset[uuid.UUID]) -> list[dict[str, Any]]:
        return [row for row in self.located if row["id"] in inserted]


def judge(
    unique: dict[uuid.UUID, Valid],
    probe: ProbeRecord,
    key: bytes | None,
    context: ContextIndex,
    now: dt.datetime,
    asn_of: locations.AsnOf = locations.no_lookup,
) -> Judged:
    """Place, re-judge and turn into rows every item of a batch: pure."""
    outcomes: dict[uuid.UUID, Outcome] = {}
    flags: dict[uuid.UUID, tuple[str, ...]] = {}
    rows: list[bulk.Row] = []
    counted: list[bool] = []
    located: list[dict[str, Any]] = []
    placements = Placements(probe, key)
    # Sorted so that concurrent batches with overlapping ids lock them in the same order.
    for mid in sorted(unique, key=lambda found: found.int):
        item = unique[mid]
        hour = rollups.hour_of(item.measurement.start_time)
        vantages = () if item.flags else context.vantages(item.measurement.service, hour)
        placed = placements.of(item)
        outcomes[mid] = reanalysis.reanalyse(reading_of(item, probe, placed), vantages)
        flags[mid] = placed.flags
        rows.append(to_row(item, probe, outcomes[mid], now, placed))
        counted.append(counts_in_rollups(item.flags, placed.flags))
        if not item.flags and not placed.flags:  # flagged rows place nothing
            located += locations.hop_rows(item.measurement, placed.cc, placed.asn, asn_of)
    return Judged(rows, counted, outcomes, flags, located)


async def read_context(
    connection: AsyncConnection, unique: dict[uuid.UUID, Valid], keys: attestation.KeyHolder
) -> tuple[ContextIndex, bytes | None]:
    """Vantage points for the batch's hours, and the key attestations are checked with.

    Only items inside the time window get context: their hours span at most the window
    (max_past + max_future), so one bounded query serves the batch; on PostgreSQL it asks
    for the batch's (service, hour) cells only and the database sums them. A flagged
    item's hour is not to be believed; it is judged on its own facts.
    """
    placed = [v for v in unique.values() if not v.flags]
    key = await keys.get(connection)
    if not placed:
        return ContextIndex(()), key
    items = [(v.measurement.service, rollups.hour_of(v.measurement.start_time)) for v in placed]
    if connection.dialect.name == "postgresql":
        cells = sorted(set(items))
        found = await rollups.vantage_rows(connection, cells, _CONTEXT_HOURS, reanalysis.FAILING)
        return ContextIndex.summed(found), key
    hours = [hour for _, hour in items]
    services = sorted({service for service, _ in items})
    first, last = min(hours) - _CONTEXT_HOURS, max(hours) + _CONTEXT_HOURS
    return ContextIndex(await rollups.context_rows(connection, services, first, last)), key


async def store(
    db: Database,
    probe: ProbeRecord,
    valid: Sequence[Valid],
    now: dt.datetime,
    seen: LastSeen,
    asn_of: locations.AsnOf = locations.no_lookup,
    keys: attestation.KeyHolder | None = None,
) -> Stored:
    unique = first_of_each(valid)
    if not unique:
        return Stored(frozenset(), {}, {})
    keys = keys or attestation.KeyHolder()
    if db.dialect == "postgresql":
        return await _store_postgresql(db, probe, unique, now, seen, asn_of, keys)

    async def work(connection: AsyncConnection) -> Stored:
        context, key = await read_context(connection, unique, keys)
        judged = judge(unique, probe, key, context, now, asn_of)
        inserted = await insert_rows(connection, db, [row._asdict() for row in judged.rows])
        await rollups.add(connection, db, judged.tally(inserted))
        await hops.add(connection, db, judged.located_in(inserted))
        if seen.due(probe.id, now):
            await probes.touch(connection, probe.id, now)
        return judged.stored(inserted)

    return await db.transaction(work)


async def _store_postgresql(
    db: Database,
    probe: ProbeRecord,
    unique: dict[uuid.UUID, Valid],
    now: dt.datetime,
    seen: LastSeen,
    asn_of: locations.AsnOf,
    keys: attestation.KeyHolder,
) -> Stored:
    """Context read in autocommit (at READ COMMITTED a transaction would see the same
    rows), judged (in a thread if large, so the event loop keeps answering check-ins), written by
    ``bulk.write``; the censoring hops of the rows it stored follow (derived data, drawn
    again from the stored traces by anyone who needs them)."""
    touch = (probe.id, now, seen.interval) if seen.due(probe.id, now) else None

    def prepare(context: ContextIndex, key: bytes | None) -> tuple[Judged, rollups.Tally]:
        judged = judge(unique, probe, key, context, now, asn_of)
        return judged, judged.tally()  # what COPY adds, should every row be new

    async def work(connection: AsyncConnection) -> Stored:
        context, key = await read_context(connection, unique, keys)
        size = sum(len(item.body) for item in unique.values())
        judged, tally = await off_loop(size, prepare, context, key)
        inserted = await bulk.write(connection, judged.rows, judged.counted, tally, touch)
        await hops.add(connection, db, judged.located_in(inserted))
        return judged.stored(inserted)

    return await db.autocommit(work)


_NOT_COUNTED: Final = UNCOUNTED | _UNCOUNTED


def counts_in_rollups(*flags: tuple[str, ...]) -> bool:
    """Whether a row with these flags is counted once stored: not far-future ones,
    services the collector does not serve, or contradicted networks."""
    return not any(flag in _NOT_COUNTED for group in flags for flag in group)


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
    message = f"too many {what} from this probe; retry in {retry} s"
    return retry_later("rate_limited", message, retry, probe_id)


def check_length(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise APIError(413, "payload_too_large", "body exceeds the limit", limit=limit)


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
    header = request.headers.get("Authorization")
    # In autocommit: one round trip, where a read transaction is three.
    probe = await state.db.autocommit(lambda connection: probes.authenticate(connection, header))
    if wait := state.limiter.wait_for_any(probe.id, time.monotonic()):
        raise _rate_limited(wait, probe.id)
    if wait := state.byte_limiter.wait_for_any(probe.id, time.monotonic()):
        raise _rate_limited(wait, probe.id, "bytes")
    check_length(request, state.config.max_body_bytes)  # before waiting for a turn
    async with state.admission.turn(probe.id):
        batch = await _ingest(request, state, probe)
    state.metrics.duration.observe(time.perf_counter() - started)
    return web.Response(body=_encoder.encode(batch), content_type="application/json")


async def _ingest(request: web.Request, state: State, probe: ProbeRecord) -> BatchResult:
    body = await request.read()  # aiohttp stops at client_max_size (max_body_bytes): 413
    encoding = request.headers.get("Content-Encoding")
    # Bounded but not free (inflating and decoding 16 MiB): in a thread, so the event
    # loop keeps answering other probes meanwhile; a compressed body is never small.
    size = len(body) if encoding is None else _INLINE_BYTES
    batch_in = await off_loop(size, read_batch, body, request.content_type, encoding, state.limits)
    raws = batch_in.items
    if wait := state.byte_limiter.wait_for(probe.id, len(batch_in.data), time.monotonic()):
        raise _rate_limited(wait, probe.id, "bytes")
    if wait := state.limiter.wait_for(probe.id, len(raws), time.monotonic()):
        raise _rate_limited(wait, probe.id)
    now = utc_now()
    checked = await off_loop(len(batch_in.data), check_batch, batch_in, probe.id, now, state.window)
    checked = flag_unknown_services(checked, state.targets.services)
    near = locations.uploader_network(_uploader(request, state))
    valid = locations.withhold_uploader([c for c in checked if isinstance(c, Valid)], near)
    stored = await store(
        state.db, probe, valid, now, state.last_seen, _router_asn(state), state.attestation_key
    )
    batch = summarise(results(checked, stored))
    _record(state, checked, batch)
    return batch


# Below this many bytes a batch is decoded and judged in a few milliseconds, less than a
# thread hop costs (hand-over, wake-up, the GIL handed back and forth): on the event loop.
_INLINE_BYTES: Final = 512 * 1024


async def off_loop(size: int, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``function`` in a thread when ``size`` bytes are worth it, else right here."""
    if size < _INLINE_BYTES:
        return function(*args, **kwargs)
    return await asyncio.to_thread(function, *args, **kwargs)


def _uploader(request: web.Request, state: State) -> str | None:
    """The uploading peer's address, for :func:`locations.withhold_uploader` only."""
    h = request.headers
    return proxies.client_address(
        request.remote, h.get("Forwarded"), h.get("X-Forwarded-For"), state.trusted_proxies
    )


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
