"""The detection cycle: new measurements → ``alerts.incidents.detect`` → incidents + outbox.

Every ``alert_interval_seconds`` one replica (whoever locks the detector-state row with
``FOR UPDATE SKIP LOCKED``; on SQLite the single process) reads the measurements received
since its cursor, as the collector judged them, feeds them to the detector, and stores the
incident changes, the notifications for each subscriber and the detector's new state and
cursor in one transaction: a crash anywhere leaves all of it undone, none of it half done.

The cursor follows commit order, not a clock (``measurements.seq``): on PostgreSQL each
row carries its inserting transaction's id and a cycle reads only ids below the oldest
transaction still running (``pg_snapshot_xmin``), so a slow ingest transaction's rows are
read once it commits, however late, and never twice; on SQLite writers are serialised and
number their rows in commit order. ``alert_settle_seconds`` is no longer needed for
correctness and is ignored.

What the detector is fed: only unflagged rows (no far-future or far-past start, no network
claim the collector could not vouch for), with the collector's receive time, and with each
probe's *voice* and *weight* (``voice_of``): a vetted probe, or one older than
``INDEPENDENT_AFTER``, speaks for itself; younger ones speak as their enrolment group (one
enrolment token, or open enrolment within one hour). Weight starts at ``NEW_WEIGHT`` and
grows to 1 over ``FULL_WEIGHT_AFTER``; vetted probes weigh 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.incidents import DetectorConfig, DetectorState, detect
from alerts.model import Change, Observation
from collector.alerting import outbox
from collector.alerting.context import Windows, context_for
from collector.store import incidents as incidentstore
from collector.store import schema
from collector.store import subscribers as subscriberstore
from collector.store.db import Database, as_utc_or_none

log: Final = logging.getLogger(__name__)
_m: Final = schema.measurements
_d: Final = schema.detector_state
_p: Final = schema.probes
BATCH: Final = 200_000  # one round of 10,000 probes x 20 services
_STATE_ID: Final = 1
INDEPENDENT_AFTER: Final = dt.timedelta(days=7)
FULL_WEIGHT_AFTER: Final = dt.timedelta(days=30)
NEW_WEIGHT: Final = 0.5
_COMMITTED_BELOW: Final[ColumnElement[int]] = literal_column(
    "pg_snapshot_xmin(pg_current_snapshot())::text::bigint", BigInteger
)


@dataclass(frozen=True)
class Cursor:
    seq: int | None = None
    id: uuid.UUID | None = None


def voice_of(
    probe_id: str,
    vetted: bool,
    created_at: dt.datetime | None,
    enrolment: str | None,
    now: dt.datetime,
) -> tuple[str, float]:
    """(voice, weight) of a probe: who it counts as, and how much, towards confirmation."""
    if vetted:
        return probe_id, 1.0
    age = now - created_at if created_at is not None else dt.timedelta(0)
    weight = NEW_WEIGHT + (1 - NEW_WEIGHT) * min(1.0, age / FULL_WEIGHT_AFTER)
    if age >= INDEPENDENT_AFTER or enrolment is None:
        return probe_id, weight
    return enrolment, weight


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Python's cyclic collector off while a cycle builds its objects: a round of 200,000
    observations against a state of as many voices triggers full collections that walk
    every live object, several times a cycle (two thirds of the cycle at 10,000 probes).
    Nothing a cycle builds needs the collector; what other tasks drop meanwhile is
    collected when it is back on."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@dataclass(frozen=True)
class CycleResult:
    observations: int
    changes: list[Change]
    notifications: int
    seconds: float


async def ensure_state_row(db: Database, now: dt.datetime) -> None:
    statement = (
        db.insert(_d)
        .values(id=_STATE_ID, state=DetectorState().to_json(), updated_at=now)
        .on_conflict_do_nothing()
    )
    async with db.writing() as connection:
        await connection.execute(statement)


@dataclass
class StateMemo:
    """The state this process stored last, decoded: a cycle that finds that same text in the
    row (on PostgreSQL: the same MD5, so the text is not even sent) skips reading and decoding
    it, tens of MB at 10,000 probes. Any other text (another replica ran, or a commit failed)
    is read and decoded as before, so the memo never changes what a cycle decides."""

    text: str | None = None
    digest: str | None = None
    state: DetectorState | None = None

    def remember(self, text: str | None, state: DetectorState | None) -> None:
        self.text, self.state = text, state
        self.digest = hashlib.md5(text.encode()).hexdigest() if text is not None else None


async def lock_state(
    connection: AsyncConnection, db: Database, memo: StateMemo | None = None
) -> tuple[DetectorState, Cursor] | None:
    """The detector's state, locked for this transaction; None while another replica runs."""
    memo = memo or StateMemo()
    postgresql = db.dialect == "postgresql"
    held = func.md5(_d.c.state) if postgresql else _d.c.state
    query = select(held, _d.c.cursor_seq, _d.c.cursor_id).where(_d.c.id == _STATE_ID)
    if postgresql:
        query = query.with_for_update(skip_locked=True)
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    cursor = Cursor(row.cursor_seq, row.cursor_id)
    if memo.state is not None and row[0] == (memo.digest if postgresql else memo.text):
        return memo.state, cursor
    text = row[0]
    if postgresql:
        text = (
            await connection.execute(select(_d.c.state).where(_d.c.id == _STATE_ID))
        ).scalar_one()
    return DetectorState.from_json(text), cursor


def observation(
    row: Sequence[Any], now: dt.datetime, voices: dict[str, tuple[str, float]]
) -> Observation:
    """One row of ``read_new``'s query as the detector's observation; ``voices`` caches each
    probe's (voice, weight) for the cycle."""
    (ident, _, probe_id, service, cc, asn, start, received, verdict, methods, confidence,
     control, _, vetted, created_at, enrolment) = row  # fmt: skip
    known = voices.get(probe_id)
    if known is None:
        known = voices[probe_id] = voice_of(
            probe_id, bool(vetted), as_utc_or_none(created_at), enrolment, now
        )
    return Observation(
        measurement_id=str(ident),
        probe_id=probe_id,
        service=service,
        cc=cc,
        asn=int(asn),
        time=start if start.tzinfo is not None else start.replace(tzinfo=dt.UTC),
        verdict=verdict,
        methods=tuple(methods.split()),
        confidence=float(confidence) if confidence is not None else 0.0,
        control=bool(control),
        received=as_utc_or_none(received),
        voice=known[0],
        weight=known[1],
    )


async def read_new(
    connection: AsyncConnection,
    cursor: Cursor,
    now: dt.datetime,
    limit: int = BATCH,
    *,
    postgresql: bool = False,
) -> tuple[list[Observation], Cursor]:
    """The committed rows after ``cursor`` in commit order, flagged rows left out.

    Rows come back as plain tuples and each probe's record (voice and weight) is looked up
    once per cycle: at a round of 10,000 probes x 20 services, per-row overhead is the
    cycle's cost."""
    columns = (
        _m.c.id, _m.c.seq, _m.c.probe_id, _m.c.service, _m.c.cc, _m.c.asn, _m.c.start_time,
        _m.c.received_at, _m.c.verdict, _m.c.methods, _m.c.confidence, _m.c.control,
        _m.c.flags, _p.c.vetted, _p.c.created_at, _p.c.enrolment,
    )  # fmt: skip
    condition: ColumnElement[bool] = _m.c.seq.is_not(None)
    if cursor.seq is not None and cursor.id is not None:
        # A row comparison: the (seq, id) index scan starts at the cursor (an OR of the
        # two halves is only a filter, or two bitmap scans and a sort).
        after = tuple_(_m.c.seq, _m.c.id) > tuple_(
            literal(cursor.seq, BigInteger), literal(cursor.id, _m.c.id.type)
        )
        condition = and_(condition, after)
    if postgresql:
        condition = and_(condition, _m.c.seq < _COMMITTED_BELOW)
    query = (
        select(*columns)
        .select_from(_m.outerjoin(_p, _p.c.id == _m.c.probe_id))
        .where(condition)
        .order_by(_m.c.seq, _m.c.id)
        .limit(limit)
    )
    rows = (await connection.execute(query)).all()
    if not rows:
        return [], cursor
    last = rows[-1]
    # Flagged rows move the cursor but never feed detection.
    voices: dict[str, tuple[str, float]] = {}
    fed = [observation(r, now, voices) for r in rows if not r[12]]
    return fed, Cursor(int(last[1]), last[0])


async def store_changes(
    connection: AsyncConnection,
    db: Database,
    changes: Sequence[Change],
    windows: Windows,
    now: dt.datetime,
) -> int:
    """Save each changed incident and queue a notification per interested subscriber."""
    if not changes:
        return 0
    subscribers = await subscriberstore.all_subscribers(connection, enabled_only=True)
    queued = 0
    for change in changes:
        await incidentstore.save(connection, db, change.incident, now)
        if not any(s.wants(change) for s in subscribers):
            continue
        context = await context_for(connection, change.incident, windows, now)
        rows = outbox.rows_for(change, context.links, context.stats, subscribers, now)
        await outbox.add(connection, rows)
        queued += len(rows)
    return queued


async def run_cycle(
    db: Database,
    now: dt.datetime,
    *,
    settle: dt.timedelta,
    windows: Windows,
    detector: DetectorConfig | None = None,
    memo: StateMemo | None = None,
) -> CycleResult | None:
    """One detection cycle; None when another replica holds the detector. ``memo``: the
    process's last stored state, kept across cycles (``detect_forever`` keeps one)."""
    started = time.perf_counter()
    stored: list[tuple[str, DetectorState]] = []

    async def work(connection: AsyncConnection) -> CycleResult | None:
        stored.clear()  # a retried transaction starts again
        locked = await lock_state(connection, db, memo)
        if locked is None:
            return None
        state, cursor = locked
        observations, cursor = await read_new(
            connection, cursor, now, postgresql=db.dialect == "postgresql"
        )
        config = detector if detector is not None else DetectorConfig()
        state, changes = detect(state, observations, now, config)
        queued = await store_changes(connection, db, changes, windows, now)
        text = state.to_json()
        stored.append((text, state))
        await connection.execute(
            update(_d)
            .where(_d.c.id == _STATE_ID)
            .values(
                state=text,
                cursor_seq=cursor.seq,
                cursor_id=cursor.id,
                updated_at=now,
            )
        )
        return CycleResult(len(observations), changes, queued, time.perf_counter() - started)

    with _collection_paused():
        result = await db.transaction(work)
    if memo is not None:
        # Committed: this text is in the row now. Otherwise forget it, so a failed commit
        # is never mistaken for the stored state.
        memo.remember(*(stored[-1] if result is not None and stored else (None, None)))
    return result


def scaled(config: DetectorConfig, factor: float) -> DetectorConfig:
    """``config`` with every duration multiplied by ``factor`` (1: unchanged)."""
    if factor == 1:
        return config
    changes = {
        f.name: getattr(config, f.name) * factor
        for f in dataclasses.fields(config)
        if isinstance(getattr(config, f.name), dt.timedelta)
    }
    return dataclasses.replace(config, **changes)


async def detect_forever(
    db: Database,
    interval: float,
    settle: dt.timedelta,
    windows: Windows,
    on_cycle: Callable[[CycleResult], None] = lambda _: None,
    detector: DetectorConfig | None = None,
) -> None:
    await ensure_state_row(db, dt.datetime.now(dt.UTC))
    memo = StateMemo()
    while True:
        started = time.monotonic()
        try:
            now = dt.datetime.now(dt.UTC)
            result = await run_cycle(
                db, now, settle=settle, windows=windows, detector=detector, memo=memo
            )
            if result is not None:
                for change in result.changes:
                    log.info("%s %s", change.kind, change.incident.id)
                on_cycle(result)
        except Exception:  # the next cycle starts from the same cursor and decodes the state
            memo.remember(None, None)
            log.exception("detection cycle failed")
        await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))
