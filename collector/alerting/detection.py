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
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, and_, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.incidents import DetectorConfig, DetectorState, detect
from alerts.model import Change, Observation
from collector.alerting import outbox
from collector.alerting.context import Windows, context_for
from collector.store import incidents as incidentstore
from collector.store import schema
from collector.store import subscribers as subscriberstore
from collector.store.db import Database

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


@dataclass(frozen=True)
class CycleResult:
    observations: int
    changes: list[Change]
    notifications: int
    seconds: float


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


async def ensure_state_row(db: Database, now: dt.datetime) -> None:
    statement = (
        db.insert(_d)
        .values(id=_STATE_ID, state=DetectorState().to_json(), updated_at=now)
        .on_conflict_do_nothing()
    )
    async with db.writing() as connection:
        await connection.execute(statement)


async def lock_state(
    connection: AsyncConnection, db: Database
) -> tuple[DetectorState, Cursor] | None:
    """The detector's state, locked for this transaction; None while another replica runs."""
    query = select(_d.c.state, _d.c.cursor_seq, _d.c.cursor_id).where(_d.c.id == _STATE_ID)
    if db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    return DetectorState.from_json(row.state), Cursor(row.cursor_seq, row.cursor_id)


def observation(
    row: Any, now: dt.datetime | None = None, voices: dict[str, tuple[str, float]] | None = None
) -> Observation:
    known = voices.get(row.probe_id) if voices is not None else None
    if known is None:
        known = voice_of(
            row.probe_id,
            bool(row.vetted),
            _aware(row.created_at),
            row.enrolment,
            now or dt.datetime.now(dt.UTC),
        )
        if voices is not None:
            voices[row.probe_id] = known
    voice, weight = known
    return Observation(
        measurement_id=str(row.id),
        probe_id=row.probe_id,
        service=row.service,
        cc=row.cc,
        asn=int(row.asn),
        time=_aware(row.start_time) or row.start_time,
        verdict=row.verdict,
        methods=tuple(row.methods.split()),
        confidence=float(row.confidence) if row.confidence is not None else 0.0,
        control=bool(row.control),
        received=_aware(row.received_at),
        voice=voice,
        weight=weight,
    )


async def read_new(
    connection: AsyncConnection,
    cursor: Cursor,
    now: dt.datetime,
    limit: int = BATCH,
    *,
    postgresql: bool = False,
) -> tuple[list[Observation], Cursor]:
    """The committed rows after ``cursor`` in commit order, flagged rows left out."""
    columns = (
        _m.c.id, _m.c.seq, _m.c.probe_id, _m.c.service, _m.c.cc, _m.c.asn, _m.c.start_time,
        _m.c.received_at, _m.c.verdict, _m.c.methods, _m.c.confidence, _m.c.control,
        _m.c.flags, _p.c.vetted, _p.c.created_at, _p.c.enrolment,
    )  # fmt: skip
    condition: ColumnElement[bool] = _m.c.seq.is_not(None)
    if cursor.seq is not None and cursor.id is not None:
        after = or_(_m.c.seq > cursor.seq, and_(_m.c.seq == cursor.seq, _m.c.id > cursor.id))
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
    fed = [observation(r, now, voices) for r in rows if not r.flags]
    return fed, Cursor(int(last.seq), last.id)


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
) -> CycleResult | None:
    """One detection cycle; None when another replica holds the detector."""
    started = time.perf_counter()

    async def work(connection: AsyncConnection) -> CycleResult | None:
        locked = await lock_state(connection, db)
        if locked is None:
            return None
        state, cursor = locked
        observations, cursor = await read_new(
            connection, cursor, now, postgresql=db.dialect == "postgresql"
        )
        config = detector if detector is not None else DetectorConfig()
        state, changes = detect(state, observations, now, config)
        queued = await store_changes(connection, db, changes, windows, now)
        await connection.execute(
            update(_d)
            .where(_d.c.id == _STATE_ID)
            .values(
                state=state.to_json(),
                cursor_seq=cursor.seq,
                cursor_id=cursor.id,
                updated_at=now,
            )
        )
        return CycleResult(len(observations), changes, queued, time.perf_counter() - started)

    return await db.transaction(work)


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
    while True:
        started = time.monotonic()
        try:
            now = dt.datetime.now(dt.UTC)
            result = await run_cycle(db, now, settle=settle, windows=windows, detector=detector)
            if result is not None:
                for change in result.changes:
                    log.info("%s %s", change.kind, change.incident.id)
                on_cycle(result)
        except Exception:  # the next cycle starts from the same cursor
            log.exception("detection cycle failed")
        await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))
