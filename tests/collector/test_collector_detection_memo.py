"""A detector process keeps the state it stored (``StateMemo``) instead of decoding it again
each cycle. Whatever it reuses, it must decide exactly what a cycle that decodes the stored
state decides, and what the pure detector decides when fed the same observations: the same
incidents, the same changes, the same stored state, also when another replica ran between
its cycles."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from alerts.incidents import DetectorState, detect
from alerts.model import Change, Observation
from collector.alerting import detection
from collector.alerting.context import Windows
from collector.ingest.measurements import insert_rows
from collector.store import migrate, schema
from collector.store.db import Database
from lab.harness.postgres import ThrowawayCluster

WINDOWS = Windows(dt.timedelta(hours=1), dt.timedelta(hours=6), dt.timedelta(days=365))
START = dt.datetime(2026, 3, 1, 18, 0, tzinfo=dt.UTC)
ROUNDS = 14
SERVICES = ("telegram", "whatsapp", "youtube")


def verdict(rng: random.Random, rnd: int, probe: int, service: str) -> tuple[str, str]:
    """Noise throughout; telegram NXDOMAIN in AS64501 from round 4 to 9, then recovery."""
    asn = 64500 + probe % 3
    if service == "telegram" and asn == 64501 and 4 <= rnd < 10:
        return "blocked", "dns.nxdomain"
    if rng.random() < 0.05:
        return "anomaly", "tls.timeout"
    return "ok", ""


def round_rows(rng: random.Random, rnd: int) -> list[dict[str, Any]]:
    at = START + dt.timedelta(minutes=5 * rnd)
    out = []
    for probe in range(12):
        if rnd >= 11 and probe % 4 == 0:
            continue  # some probes go quiet near the end
        for service in SERVICES:
            outcome, methods = verdict(rng, rnd, probe, service)
            out.append({
                "id": uuid.uuid4(), "probe_id": f"probe-{probe}", "service": service,
                "cc": "KZ", "asn": 64500 + probe % 3, "control": False,
                "start_time": at + dt.timedelta(seconds=probe),
                "received_at": at + dt.timedelta(seconds=probe + 2),
                "probe_verdict": outcome, "verdict": outcome, "methods": methods,
                "rule": "cw.keep", "rules_version": "2", "flags": "", "body": b"{}",
                "confidence": 0.9,
            })  # fmt: skip
    return out


async def _fresh(url: str) -> Database:
    db = Database(url)
    await migrate.upgrade(db)
    await detection.ensure_state_row(db, START)
    return db


async def _insert(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.writing() as connection:
        await connection.execute(schema.detector_state.select())  # begins the transaction
        await insert_rows(connection, db, rows)


async def _stored(db: Database) -> str:
    async with db.engine.connect() as connection:
        query = schema.detector_state.select().with_only_columns(schema.detector_state.c.state)
        return str((await connection.execute(query)).scalar_one())


def _kinds(changes: list[Change]) -> list[tuple[str, str, tuple[int, ...], str]]:
    return [(c.kind, c.incident.id, c.incident.asns, c.incident.status) for c in changes]


@pytest.fixture
def two_urls(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    cluster: ThrowawayCluster = request.getfixturevalue("pg_cluster")
    return tuple(cluster.create_database(f"cw_memo_{uuid.uuid4().hex}") for _ in "ab")  # type: ignore[return-value]


async def test_kept_state_decides_as_decoded_state_and_the_pure_detector(
    two_urls: tuple[str, str],
) -> None:
    kept, decoded = await _fresh(two_urls[0]), await _fresh(two_urls[1])
    memo = detection.StateMemo()
    rng = random.Random(3)
    pure_state, pure_changes = DetectorState(), []
    kept_changes, decoded_changes = [], []
    for rnd in range(ROUNDS):
        batch = round_rows(rng, rnd)
        await _insert(kept, batch)
        await _insert(decoded, batch)
        now = START + dt.timedelta(minutes=5 * rnd, seconds=30)
        a = await detection.run_cycle(kept, now, settle=dt.timedelta(0), windows=WINDOWS, memo=memo)
        b = await detection.run_cycle(decoded, now, settle=dt.timedelta(0), windows=WINDOWS)
        assert a is not None
        assert b is not None
        kept_changes += _kinds(a.changes)
        decoded_changes += _kinds(b.changes)
        assert await _stored(kept) == await _stored(decoded) == memo.text  # kept for next time
        observations = [_observation(r) for r in batch]
        pure_state, changes = detect(pure_state, observations, now)
        pure_changes += _kinds(changes)
        # The same content; the order of cells may differ (rows of one time in id order).
        assert json.loads(pure_state.to_json()) == json.loads(await _stored(kept))
    assert kept_changes == decoded_changes == pure_changes
    assert [k for k, *_ in kept_changes] == ["incident.opened", "incident.resolved"]
    await kept.close()
    await decoded.close()


async def test_a_memo_outdated_by_another_replica_is_not_used(
    two_urls: tuple[str, str],
) -> None:
    db, reference = await _fresh(two_urls[0]), await _fresh(two_urls[1])
    memo = detection.StateMemo()
    rng = random.Random(5)
    for rnd in range(6):
        batch = round_rows(rng, rnd)
        await _insert(db, batch)
        await _insert(reference, batch)
        now = START + dt.timedelta(minutes=5 * rnd, seconds=30)
        other_replica = rnd in (1, 4)  # its cycle leaves this process's memo behind
        cycle = {"settle": dt.timedelta(0), "windows": WINDOWS}
        assert await detection.run_cycle(db, now, memo=None if other_replica else memo, **cycle)
        assert await detection.run_cycle(reference, now, **cycle)
        assert (memo.text == await _stored(db)) is not other_replica
        assert await _stored(db) == await _stored(reference)
    await db.close()
    await reference.close()


def _observation(row: dict[str, Any]) -> Observation:
    voice, weight = detection.voice_of(row["probe_id"], False, None, None, START)
    return Observation(
        measurement_id=str(row["id"]), probe_id=row["probe_id"], service=row["service"],
        cc=row["cc"], asn=row["asn"], time=row["start_time"], verdict=row["verdict"],
        methods=tuple(row["methods"].split()), confidence=row["confidence"],
        control=row["control"], received=row["received_at"], voice=voice, weight=weight,
    )  # fmt: skip


async def test_the_state_is_compressed_with_lz4_on_postgresql(
    pg_cluster: ThrowawayCluster,
) -> None:
    db = await _fresh(pg_cluster.create_database(f"cw_memo_{uuid.uuid4().hex}"))
    query = text(
        "SELECT attcompression::text FROM pg_attribute "
        "WHERE attrelid = 'detector_state'::regclass AND attname = 'state'"
    )
    async with db.engine.connect() as connection:
        assert await connection.scalar(query) == "l"
    await db.close()
