"""Re-judge stored measurements when the probe's fingerprint files change.

A verdict can always be recomputed from stored facts. When a researcher adds an interception
CA or a censor's DNS answer, measurements judged with older fingerprints may now be
``blocked``: this reads each row not yet judged with today's ``fingerprints.VERSION``, runs
the probe's rules again over its stored observations (``analysis.rejudge``), takes the
collector's second look with the same context ingest uses, and updates the row's verdict
columns and the rollups in one transaction per batch. The stored document (``body``) is
never rewritten. Block pages are matched on the probe (bodies are not stored), so only
TLS and DNS fingerprints can change a stored verdict.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.ingest import reanalysis
from collector.ingest.measurements import ContextIndex, contribution
from collector.ingest.reanalysis import Reading
from collector.store import rollups, schema
from collector.store.db import Database, as_utc
from probe import model
from probe.verdicts import analysis, fingerprints

BATCH: Final = 200
_CONTEXT_HOURS: Final = 1


@dataclass(frozen=True)
class Report:
    examined: int
    changed: int
    version: str


@dataclass(frozen=True)
class Change:
    """A row whose verdict columns move to a new judgement."""

    id: uuid.UUID
    old: dict[str, Any]
    new: dict[str, Any]


async def rejudge_stale(db: Database, batch: int = BATCH) -> Report:
    """Every row not judged with today's fingerprints, in batches by id."""
    version = fingerprints.load().version
    examined = changed = 0
    after: uuid.UUID | None = None
    while True:
        async with db.writing() as connection:
            rows = await _stale(connection, version, after, batch)
            if not rows:
                break
            changes = await _judge(connection, rows, version)
            await _store(connection, db, rows, changes, version)
        examined += len(rows)
        changed += len(changes)
        after = rows[-1]["id"]
    return Report(examined, changed, version)


async def _stale(
    connection: AsyncConnection, version: str, after: uuid.UUID | None, batch: int
) -> list[dict[str, Any]]:
    m, j = schema.measurements, schema.fingerprint_judgements
    query = (
        select(m)
        .outerjoin(j, j.c.id == m.c.id)
        .where(or_(j.c.fingerprints_version.is_(None), j.c.fingerprints_version != version))
        .order_by(m.c.id)
        .limit(batch)
    )
    if after is not None:
        query = query.where(m.c.id > after)
    rows = [dict(row._mapping) for row in await connection.execute(query)]
    for row in rows:
        row["start_time"] = as_utc(row["start_time"])  # SQLite hands back naive UTC
    return rows


async def _judge(
    connection: AsyncConnection, rows: list[dict[str, Any]], version: str
) -> list[Change]:
    hours = [rollups.hour_of(r["start_time"]) for r in rows]
    context = ContextIndex(
        await rollups.context_rows(
            connection,
            [r["service"] for r in rows],
            min(hours) - _CONTEXT_HOURS,
            max(hours) + _CONTEXT_HOURS,
        )
    )
    changes = []
    for row, hour in zip(rows, hours, strict=True):
        new = _verdict_columns(row, hour, context, version)
        if new is not None:
            old = {k: row[k] for k in new}
            changes.append(Change(row["id"], old, new))
    return changes


def _verdict_columns(
    row: dict[str, Any], hour: int, context: ContextIndex, version: str
) -> dict[str, Any] | None:
    """The row's new verdict columns, or None when today's judgement is the stored one."""
    try:
        stored = model.decode(row["body"])
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None  # validated at ingest; a body from an older format stays as judged
    if stored.analysis.fingerprints_version == version:
        return None
    judged = analysis.rejudge(stored)
    methods = tuple(judged.methods)
    if judged.verdict == stored.analysis.verdict and methods == tuple(stored.analysis.methods):
        return None
    reading = Reading(judged.verdict, methods, row["asn"], row["control"])
    outcome = reanalysis.reanalyse(reading, context.vantages(row["service"], hour))
    new = {
        "verdict": outcome.verdict,
        "methods": " ".join(dict.fromkeys(methods)),
        "rule": outcome.rule,
        "rules_version": outcome.rules_version,
    }
    return new if any(row[k] != v for k, v in new.items()) else None


async def _store(
    connection: AsyncConnection,
    db: Database,
    rows: Sequence[dict[str, Any]],
    changes: Sequence[Change],
    version: str,
) -> None:
    m = schema.measurements
    for change in changes:
        await connection.execute(update(m).where(m.c.id == change.id).values(**change.new))
    j = schema.fingerprint_judgements
    ids = [r["id"] for r in rows]
    await connection.execute(delete(j).where(j.c.id.in_(ids)))
    await connection.execute(insert(j), [{"id": i, "fingerprints_version": version} for i in ids])
    by_id = {r["id"]: r for r in rows}
    removed = rollups.tally(contribution({**by_id[c.id], **c.old}) for c in changes)
    added = rollups.tally(contribution({**by_id[c.id], **c.new}) for c in changes)
    if changes:
        await rollups.add(connection, db, _negated(removed))
        await rollups.add(connection, db, _without_totals(added))


def _negated(counts: rollups.Tally) -> rollups.Tally:
    return rollups.Tally(
        {k: -n for k, n in counts.counts.items()},
        {k: -n for k, n in counts.countries.items()},
        {k: -n for k, n in counts.methods.items()},
        {},
    )


def _without_totals(counts: rollups.Tally) -> rollups.Tally:
    # The all-time totals feed Prometheus counters, which never go down: they keep counting
    # measurements as judged when they arrived.
    return rollups.Tally(counts.counts, counts.countries, counts.methods, {})
