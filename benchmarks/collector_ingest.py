"""Ingest throughput: HTTP batches into PostgreSQL beside raw COPY into the same table.

    python -m benchmarks.collector_ingest [--measurements N] [--concurrency C]

Prints measurements per second for batches of 100 and 1,000 realistic (~2 KB)
measurements sent to ``censorwatch serve`` over HTTP, and for asyncpg's
``copy_records_to_table`` of the same rows over one connection: the raw limit.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from benchmarks.collector_benchkit import Server, realistic
from lab.harness.postgres import ThrowawayCluster
from probe import model

COLUMNS = ("id", "probe_id", "service", "cc", "asn", "control", "start_time", "received_at",
           "probe_verdict", "verdict", "methods", "rule", "rules_version", "flags", "body")  # fmt: skip


async def http_ingest(server: Server, token: str, batches: list[bytes], concurrency: int) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue = list(reversed(batches))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with session.post(
                    server.url + "/api/v1/measurements", data=body, headers=headers
                ) as r:
                    assert r.status == 200, await r.text()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def records(items: list[model.Measurement], probe_id: str) -> list[tuple[object, ...]]:
    now = dt.datetime.now(dt.UTC)
    return [
        (uuid.uuid4(), probe_id, m.service, m.probe.cc, m.probe.asn, False, m.start_time, now,
         m.analysis.verdict, m.analysis.verdict, " ".join(m.analysis.methods), "cw.keep", "1", "",
         model.encode(m))
        for m in items
    ]  # fmt: skip


async def raw_copy(dsn: str, rows: list[tuple[object, ...]]) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await connection.copy_records_to_table("measurements", records=rows, columns=COLUMNS)
        return time.perf_counter() - started
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measurements", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(1)
    with ThrowawayCluster().running() as cluster, tempfile.TemporaryDirectory() as workdir:
        url = cluster.create_database("bench")
        server = Server(Path(workdir), url)
        try:
            probe_id, token = server.probe_token()
            start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
            items = [realistic(probe_id, rng, start) for _ in range(args.measurements)]
            size = sum(len(model.encode(m)) for m in items) / len(items)
            print(f"{args.measurements} measurements of {size:.0f} bytes on average, "
                  f"{args.concurrency} concurrent requests")  # fmt: skip
            for batch_size in (100, 1000):
                fresh = [realistic(probe_id, rng, start) for _ in range(args.measurements)]
                batches = [
                    b"[" + b",".join(model.encode(m) for m in fresh[i : i + batch_size]) + b"]"
                    for i in range(0, len(fresh), batch_size)
                ]
                seconds = asyncio.run(http_ingest(server, token, batches, args.concurrency))
                print(
                    f"HTTP ingest, batches of {batch_size:>4}: {len(fresh) / seconds:8.0f} measurements/s"
                )
            seconds = asyncio.run(raw_copy(url, records(items, probe_id)))
            print(
                f"asyncpg copy_records_to_table:    {len(items) / seconds:8.0f} measurements/s (raw limit)"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
