"""``/metrics`` scrape latency with about 10,000 series.

    python -m benchmarks.collector_metrics [--asns N] [--scrapes S]

Fills an SQLite collector with active probes in N ASNs and rollups for 20 services and
5 verdicts in each (N × 100 measurement series, plus blocking and probe gauges), starts
``censorwatch serve`` on it, and times whole HTTP scrapes. Scrapes read the cached
snapshot, so the database behind it does not matter.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from benchmarks.collector_benchkit import SERVICES, Server
from collector.store import migrate, schema
from collector.store.db import Database
from collector.store.rollups import hour_of
from probe.model import VERDICTS

ALL_SERVICES = SERVICES + tuple(f"news{i}" for i in range(10))


async def fill(url: str, asns: int) -> None:
    db = Database(url)
    await migrate.upgrade(db)
    now = dt.datetime.now(dt.UTC)
    hour = hour_of(now)
    probes = [
        {"id": str(uuid.uuid4()), "token_hash": uuid.uuid4().hex * 2, "control": False,
         "cc": f"C{asn % 26:c}".replace("C", "K")[:1] + chr(65 + asn % 26), "asn": 64512 + asn,
         "created_at": now, "last_seen_at": now, "revoked_at": None}
        for asn in range(asns)
    ]  # fmt: skip
    rollups = [
        {"hour": hour, "service": s, "cc": p["cc"], "asn": p["asn"], "verdict": v, "control": False, "count": 7}
        for p in probes for s in ALL_SERVICES for v in VERDICTS
    ]  # fmt: skip
    async with db.writing() as connection:
        await connection.execute(schema.probes.insert(), probes)
        await connection.execute(schema.rollups.insert(), rollups)
        totals = [{k: r[k] for k in ("service", "cc", "asn", "verdict", "count")} for r in rollups]
        await connection.execute(schema.rollup_totals.insert(), totals)
    await db.close()


async def scrape(url: str, count: int) -> tuple[list[float], int]:
    async with aiohttp.ClientSession() as session:
        times = []
        lines = 0
        for _ in range(count + 1):
            began = time.perf_counter()
            async with session.get(url + "/metrics") as response:
                text = await response.text()
            times.append(time.perf_counter() - began)
            lines = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        return times[1:], lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asns", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = f"sqlite:///{Path(workdir) / 'c.db'}"
        asyncio.run(fill(url, args.asns))
        server = Server(Path(workdir), url)
        try:
            times, series = asyncio.run(scrape(server.url, args.scrapes))
        finally:
            server.stop()
    times_ms = sorted(t * 1000 for t in times)
    p95 = times_ms[int(len(times_ms) * 0.95) - 1]
    print(f"/metrics with {series} series: median {statistics.median(times_ms):.1f} ms, "
          f"p95 {p95:.1f} ms, max {times_ms[-1]:.1f} ms over {len(times_ms)} scrapes (goal < 50 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
