"""How ingest writes, on SQLite and PostgreSQL: batches that overlap stored or concurrent
batches store and count each measurement once, last_seen is written once a minute, bodies
are compressed with lz4 on PostgreSQL, the vantages PostgreSQL sums are those the rollup
rows give, and a batch that waits too long for its turn (settings
``ingest_batches_in_flight``, ``ingest_wait_seconds``) is answered 429."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections import Counter

import pytest
from collector_harness import Collector, start_collector
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api.errors import APIError
from collector.config import Config
from collector.ingest import reanalysis
from collector.ingest.admission import RETRY_AFTER, Admission
from collector.ingest.last_seen import LastSeen
from collector.ingest.measurements import ContextIndex
from collector.store import rollups, schema
from lab.harness.samples import measurement

_ROLLUPS = (schema.rollups, schema.rollup_countries, schema.rollup_totals)


async def counted(collector: Collector) -> dict[str, int]:
    """Stored rows and what each rollup table counts."""
    async with collector.state.db.reading() as connection:
        found = {
            "measurements": await connection.scalar(
                select(func.count()).select_from(schema.measurements)
            )
        }
        for table in (*_ROLLUPS, schema.rollup_methods):
            found[table.name] = await connection.scalar(
                select(func.coalesce(func.sum(table.c.count), 0))
            )
    return {name: int(n or 0) for name, n in found.items()}


async def last_seen(collector: Collector, probe_id: str) -> dt.datetime | None:
    p = schema.probes
    async with collector.state.db.reading() as connection:
        found = await connection.scalar(select(p.c.last_seen_at).where(p.c.id == probe_id))
    return found.replace(tzinfo=dt.UTC) if found is not None and found.tzinfo is None else found


async def test_batch_overlapping_stored_ids_counts_only_the_new(collector: Collector) -> None:
    _, token = await collector.register()
    a, b, c, d = (measurement(verdict="blocked") for _ in range(4))
    status, first = await collector.ingest(token, [a, b])
    assert status == 200, first
    status, second = await collector.ingest(token, [b, c, d])
    assert status == 200, second
    assert [r["result"] for r in second["results"]] == ["duplicate", "accepted", "accepted"]
    assert second["results"][1]["verdict"] == "blocked"
    assert await counted(collector) == {
        "measurements": 4, "rollups": 4, "rollup_countries": 4, "rollup_totals": 4,
        "rollup_methods": 4,  # one tls.reset each
    }  # fmt: skip


async def test_concurrent_batches_with_overlapping_ids_store_each_once(
    collector: Collector,
) -> None:
    _, token = await collector.register()
    pool = [measurement(verdict=v) for v in ("ok", "anomaly", "blocked") for _ in range(10)]
    rng = random.Random(7)
    batches = [rng.sample(pool, 18) for _ in range(6)]
    replies = await asyncio.gather(*(collector.ingest(token, batch) for batch in batches))
    assert [status for status, _ in replies] == [200] * len(batches)
    accepted = Counter(
        r["id"] for _, body in replies for r in body["results"] if r["result"] == "accepted"
    )
    sent = {str(m.id) for batch in batches for m in batch}
    assert accepted == Counter(sent)  # every id accepted by exactly one batch
    methods = sum(1 for m in pool if str(m.id) in sent and m.analysis.methods)
    assert await counted(collector) == {
        "measurements": len(sent), "rollups": len(sent), "rollup_countries": len(sent),
        "rollup_totals": len(sent), "rollup_methods": methods,
    }  # fmt: skip


async def test_last_seen_is_written_at_most_once_a_minute(collector: Collector) -> None:
    probe_id, token = await collector.register()
    assert await last_seen(collector, probe_id) is None
    await collector.ingest(token, [measurement()])
    first = await last_seen(collector, probe_id)
    assert first is not None
    await collector.ingest(token, [measurement()])
    assert await last_seen(collector, probe_id) == first


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_replica_skips_last_seen_another_wrote_within_the_minute(
    collector: Collector,
) -> None:
    """The other replica's write is in the row, not in this one's memory."""
    probe_id, token = await collector.register()
    p = schema.probes

    async def seen_ago(seconds: int) -> dt.datetime:
        moment = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
        async with collector.state.db.writing() as connection:
            await connection.execute(
                update(p).where(p.c.id == probe_id).values(last_seen_at=moment)
            )
        collector.state.last_seen = LastSeen()  # as a replica that never wrote this probe
        return moment

    recent = await seen_ago(10)
    await collector.ingest(token, [measurement()])
    assert await last_seen(collector, probe_id) == recent
    stale = await seen_ago(120)
    await collector.ingest(token, [measurement()])
    written = await last_seen(collector, probe_id)
    assert written is not None
    assert written > stale


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_bodies_are_compressed_with_lz4(collector: Collector) -> None:
    _, token = await collector.register()
    await collector.ingest(token, [measurement()])
    async with collector.state.db.reading() as connection:
        method = await connection.scalar(
            text("SELECT pg_column_compression(body) FROM measurements")
        )
    assert method == "lz4"


def test_last_seen_is_due_once_per_interval() -> None:
    seen = LastSeen(dt.timedelta(minutes=1), capacity=3)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert seen.due("a", t0)
    assert not seen.due("a", t0 + dt.timedelta(seconds=59))
    assert seen.due("b", t0 + dt.timedelta(seconds=59))
    assert seen.due("a", t0 + dt.timedelta(minutes=1))
    assert seen.due("a", t0 - dt.timedelta(hours=1))  # the clock went back: write again


def test_last_seen_remembers_at_most_its_capacity() -> None:
    seen = LastSeen(dt.timedelta(minutes=1), capacity=3)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(10):
        assert seen.due(f"probe-{i}", t0)
        assert len(seen) <= 3
    assert not seen.due("probe-9", t0 + dt.timedelta(seconds=1))  # the newest is remembered


async def test_a_batch_that_waits_too_long_for_its_turn_is_told_to_retry() -> None:
    admission = Admission(concurrency=1, patience=0.05)
    async with admission.turn("probe-1"):
        with pytest.raises(APIError) as refused:
            async with admission.turn("probe-2"):
                pass
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == str(RETRY_AFTER)
    async with admission.turn("probe-2"):  # the slot is free again
        pass


async def test_the_admission_limits_are_settings(sqlite_config: Config) -> None:
    config = dataclasses.replace(sqlite_config, ingest_batches_in_flight=1, ingest_wait_seconds=0)
    collector = await start_collector(config)
    try:
        _, token = await collector.register()
        async with collector.state.admission.turn("another probe"):  # the one slot is taken
            status, body = await collector.ingest(token, [measurement()])
        assert (status, body["error"]["code"]) == (429, "busy")
        status, body = await collector.ingest(token, [measurement()])
        assert (status, body["accepted"]) == (200, 1)
    finally:
        await collector.client.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_vantages_summed_by_postgresql_match_the_rollup_rows(collector: Collector) -> None:
    rng = random.Random(3)
    verdicts = ("ok", "anomaly", "blocked", "down", "offline")
    rows = {
        (hour, service, "KZ", asn, rng.choice(verdicts), control): rng.randint(1, 9)
        for hour in range(100, 110)
        for service in ("telegram", "signal")
        for asn in (1, 2, 3)
        for control in (False, True)
        if rng.random() < 0.6
    }
    async with collector.state.db.writing() as connection:
        await connection.execute(
            schema.rollups.insert(),
            [dict(zip(("hour", "service", "cc", "asn", "verdict", "control"), key, strict=True))
             | {"count": n} for key, n in rows.items()],
        )  # fmt: skip
    cells = [(service, hour) for service in ("telegram", "signal", "vk") for hour in (99, 104, 110)]

    async def both(connection: AsyncConnection) -> tuple[ContextIndex, ContextIndex]:
        summed = ContextIndex.summed(
            await rollups.vantage_rows(connection, cells, 1, reanalysis.FAILING)
        )
        folded = ContextIndex(
            await rollups.context_rows(connection, ["telegram", "signal", "vk"], 98, 111)
        )
        return summed, folded

    summed, folded = await collector.state.db.autocommit(both)
    for service, hour in cells:
        assert set(summed.vantages(service, hour)) == set(folded.vantages(service, hour))
    assert summed.vantages("telegram", 104)  # the cells do hold vantages
