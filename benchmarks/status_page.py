"""The status page's first load of /country/KZ over 1,000,000 stored measurements.

    python -m benchmarks.status_page [--measurements N] [--runs R]

A week of measurements (60 % of them from Kazakhstan, in 180 networks) is loaded into a
throwaway PostgreSQL with COPY and its rollups built in one statement, as in
``benchmarks.collector_aggregation``; then 300 probes, open incidents and a week of
announced events. A real ``censorwatch serve`` answers. Printed: the bytes of the first
load (HTML and every asset it references, and gzip-compressed for comparison), the page's
own server time from its ``Server-Timing`` header (wall clock, and the collector process's
CPU time, which other work on a shared machine does not inflate), and whole-request latency, median and
worst of R runs after one warm-up. Goals (issue 15): under 150 KB and under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import hashlib
import os
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from alerts.model import Incident
from benchmarks.collector_aggregation import load
from benchmarks.collector_benchkit import Server
from collector.store import incidents as incidentstore
from collector.store.db import Database
from lab.harness.postgres import ThrowawayCluster

WEEK = 7 * 86400
KZ_ASNS = [64512 + 7 * 1000 + j for j in range(180)]  # as collector_aggregation numbers them


def incident(service: str, now: dt.datetime) -> Incident:
    return Incident(
        id=f"bench-{service}", kind="blocking", service=service, cc="KZ",
        asns=tuple(KZ_ASNS[:40]), onset=now - dt.timedelta(hours=2), last_seen=now,
        resolved_at=None, methods=("tls.reset",), confidence=0.95, probes=120,
        evidence=("120 probes in 40 networks",), rules=("block.open.repeat",), rules_version="1",
    )  # fmt: skip


async def extras(url: str, now: dt.datetime) -> str:
    """Probes, incidents and events; returns an open incident's id."""
    connection = await asyncpg.connect(url)
    try:
        await connection.executemany(
            "INSERT INTO probes (id, token_hash, control, cc, asn, created_at, last_seen_at)"
            " VALUES ($1, $2, false, 'KZ', $3, $4, $4)",
            [(f"p{n}", hashlib.sha256(str(n).encode()).hexdigest(), KZ_ASNS[n % 180], now)
             for n in range(300)],
        )  # fmt: skip
        await connection.executemany(
            "INSERT INTO events (id, kind, title, cc, start, \"end\", source_url, tags, created_at)"
            " VALUES ($1, 'livestream', $2, 'KZ', $3, $4, 'https://example.org/live', '[]', $5)",
            [(f"e{d}", f"Evening livestream {d}", now - dt.timedelta(days=d, hours=3),
              now - dt.timedelta(days=d, hours=1), now) for d in range(7)],
        )  # fmt: skip
    finally:
        await connection.close()
    db = Database(url)
    try:
        incidents = [incident(service, now) for service in ("telegram", "youtube", "x")]

        async def write(connection: object) -> None:
            for one in incidents:
                await incidentstore.save(connection, db, one, now)  # type: ignore[arg-type]

        await db.transaction(write)
    finally:
        await db.close()
    return incidents[0].id


def fetch(url: str) -> tuple[bytes, dict[str, str], float]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        return body, dict(response.headers), time.perf_counter() - began


def first_load(base: str, path: str) -> tuple[int, int, list[str]]:
    html, _, _ = fetch(base + path)
    assets = [
        a.replace("&amp;", "&")
        for a in re.findall(r'(?:href|src)="(/static/[^"]+)"', html.decode())
    ]
    bodies = [html] + [fetch(base + a)[0] for a in assets]
    return sum(map(len, bodies)), sum(len(gzip.compress(b)) for b in bodies), assets


def server_ms(headers: dict[str, str], name: str) -> float:
    match = re.search(rf"{name};dur=([0-9.]+)", headers.get("Server-Timing", ""))
    return float(match.group(1)) if match else float("nan")


def measure(base: str, path: str, runs: int) -> tuple[list[float], list[float], list[float]]:
    fetch(base + path)  # warms the connection pool and caches
    server, cpu, wall = [], [], []
    for _ in range(runs):
        _, headers, seconds = fetch(base + path)
        server.append(server_ms(headers, "app"))
        cpu.append(server_ms(headers, "cpu"))
        wall.append(seconds * 1000)
    return server, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measurements", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    start = (now - dt.timedelta(seconds=WEEK)).replace(minute=0, second=0, microsecond=0)
    with ThrowawayCluster().running() as cluster, tempfile.TemporaryDirectory() as workdir:
        url = cluster.create_database("bench")
        asyncio.run(load(url, args.measurements, start, WEEK))
        incident_id = asyncio.run(extras(url, now))
        server = Server(Path(workdir), url)
        try:
            size, compressed, assets = first_load(server.url, "/country/KZ")
            print(f"first load of /country/KZ: {size / 1024:.1f} KB (HTML + {len(assets)} assets), "
                  f"{compressed / 1024:.1f} KB gzipped (goal < 150 KB)")  # fmt: skip
            for path in ("/country/KZ", "/", f"/incident/{incident_id}", "/incidents.atom"):
                server_times, cpu, wall = measure(server.url, path, args.runs)
                print(f"{path:<26} server median {statistics.median(server_times):6.1f} ms "
                      f"(max {max(server_times):6.1f}), of it CPU {statistics.median(cpu):6.1f} ms; "
                      f"request median {statistics.median(wall):6.1f} ms (max {max(wall):6.1f}) "
                      "(goal < 300 ms)")  # fmt: skip
            averages = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"load average during the run: {averages} on {os.cpu_count()} cores "
                  "(wall-clock figures grow with it; CPU time does not)")  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()
