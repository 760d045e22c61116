"""The status page's first load of /country/KZ over 1,000,000 stored measurements.

    python -m benchmarks.status_page [--measurements N] [--runs R]

A week of measurements (60 % of them from Kazakhstan, in 180 networks) is loaded into a
throwaway PostgreSQL with COPY and its rollups built in one statement, as in
``benchmarks.collector_aggregation``; then 300 probes, open incidents and a week of
announced events. A real ``censorwatch serve`` answers, with its detector off: its first
pass over a million rows loaded at once is not what a page competes with in steady state.

Printed: the bytes of the first load (HTML and every asset it references, and
gzip-compressed for comparison); the page's own server time from its ``Server-Timing``
header for the cold load (the first request after the collector started) and, warm, the
median and 95th percentile of R loads, split into database reads, building the picture
and rendering, beside the collector process's CPU time and the whole request's latency;
and, robust to a loaded machine, each of the page's SQL statements timed by PostgreSQL
itself (``EXPLAIN ANALYZE``, the fastest of five). All of that with the page memo off, so
every load is a render; then the same loads with the default memo (``collector.web.memo``).
Goals (issue 15): under 150 KB and under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import hashlib
import json
import math
import os
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event

from alerts.model import Incident
from benchmarks.collector_aggregation import load
from benchmarks.collector_benchkit import Server
from collector.app import load_targets
from collector.config import Config
from collector.store import incidents as incidentstore
from collector.store.db import Database
from collector.web import reading, views
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


PHASES = ("app", "db", "build", "render", "cpu")


def timings(headers: dict[str, str], seconds: float) -> dict[str, float]:
    """Milliseconds per ``Server-Timing`` entry, and the whole request's as ``request``."""
    found = re.findall(r"([a-z]+);dur=([0-9.]+)", headers.get("Server-Timing", ""))
    return {**{name: float(ms) for name, ms in found}, "request": seconds * 1000}


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(len(values) * 0.95) - 1)]


def measure(base: str, path: str, runs: int) -> dict[str, list[float]]:
    fetch(base + path)  # warms the connection pool
    out: dict[str, list[float]] = {}
    for _ in range(runs):
        _, headers, seconds = fetch(base + path)
        for name, ms in timings(headers, seconds).items():
            out.setdefault(name, []).append(ms)
    return out


def line(path: str, figures: dict[str, list[float]]) -> str:
    def cell(name: str) -> str:
        values = figures.get(name)
        if not values:
            return f"{name} –"
        return f"{name} {statistics.median(values):.1f}/{p95(values):.1f}"

    return f"{path:<26} " + ", ".join(cell(n) for n in (*PHASES, "request"))


async def statement_times(url: str, now: dt.datetime) -> list[tuple[float, str]]:
    """The SQL ``/country/KZ`` runs, each timed by PostgreSQL: the fastest of five."""
    db = Database(url)
    issued: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        issued.append((statement, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    day, week = views.periods(now)
    try:
        await reading.country(
            db, Config(), load_targets(Config()).text, "KZ", now,
            ((day.first, 1), (week.first, 6)),
            (week.first - dt.timedelta(days=1), now + dt.timedelta(days=14)),
        )  # fmt: skip
    finally:
        await db.close()
    connection = await asyncpg.connect(url)
    try:
        out = []
        for statement, params in issued:
            if not statement.lstrip().upper().startswith("SELECT") or "FROM" not in statement:
                continue  # the driver's own set-up
            best = math.inf
            for _ in range(5):
                plan = await connection.fetchval(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *params
                )
                best = min(best, json.loads(plan)[0]["Execution Time"])
            out.append((best, " ".join(statement.split())[:72]))
        return out
    finally:
        await connection.close()


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
        os.environ["CENSORWATCH_ALERT_INTERVAL_SECONDS"] = "0"
        os.environ["CENSORWATCH_STATUS_CACHE_SECONDS"] = "0"  # every load a render
        server = Server(Path(workdir), url)
        try:
            _, headers, seconds = fetch(server.url + "/country/KZ")
            cold = timings(headers, seconds)
            size, compressed, assets = first_load(server.url, "/country/KZ")
            print(f"first load of /country/KZ: {size / 1024:.1f} KB (HTML + {len(assets)} assets), "
                  f"{compressed / 1024:.1f} KB gzipped (goal < 150 KB)")  # fmt: skip
            print("cold /country/KZ (first request after start), ms: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in cold.items()) + " (goal < 300 ms)")  # fmt: skip
            print(f"warm, ms as median/p95 of {args.runs} loads (goal: app < 300 ms):")
            for path in ("/country/KZ", "/", f"/incident/{incident_id}", "/incidents.atom"):
                print(line(path, measure(server.url, path, args.runs)))
            statements = asyncio.run(statement_times(url, now))
            print(f"/country/KZ's {len(statements)} statements as PostgreSQL times them "
                  f"(fastest of 5), {sum(t for t, _ in statements):.1f} ms in all:")  # fmt: skip
            for ms, text in statements:
                print(f"  {ms:6.2f} ms  {text}")
        finally:
            server.stop()
        del os.environ["CENSORWATCH_STATUS_CACHE_SECONDS"]
        server = Server(Path(workdir), url)
        try:
            print("with the default status_cache_seconds (10), every load after the first:")
            print(line("/country/KZ", measure(server.url, "/country/KZ", args.runs)))
        finally:
            server.stop()
        averages = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average during the run: {averages} on {os.cpu_count()} cores "
              "(wall-clock figures grow with it; CPU time does not)")  # fmt: skip


if __name__ == "__main__":
    main()
