"""Aggregation latency over 1,000,000 stored measurements (a day of a national deployment).

    python -m benchmarks.collector_aggregation [--measurements N] [--runs R]

Raw rows are loaded with COPY and the rollups built from them in one statement — the same
counts ingest maintains row by row. Then the HTTP API is asked country × service × hour
questions; the figures are wall-clock latencies of whole HTTP requests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from benchmarks.collector_benchkit import SERVICES, Server
from collector.store import migrate
from collector.store.db import Database
from lab.harness.postgres import ThrowawayCluster

COUNTRIES = {
    "KZ": 60,
    "RU": 10,
    "BY": 5,
    "UZ": 5,
    "KG": 5,
    "TM": 3,
    "TJ": 3,
    "AZ": 3,
    "AM": 3,
    "GE": 3,
}
EXTRA_SERVICES = tuple(f"news{i}" for i in range(10))
COLUMNS = ("id", "probe_id", "service", "cc", "asn", "control", "start_time", "received_at",
           "probe_verdict", "verdict", "methods", "rule", "rules_version", "flags", "body")  # fmt: skip
BODY = b'{"note": "aggregation reads rollups only; the raw body is not consulted"}' * 4
ROLLUPS = """
INSERT INTO rollups (hour, service, cc, asn, verdict, control, count)
SELECT floor(extract(epoch FROM start_time) / 3600)::bigint, service, cc, asn, verdict, control, count(*)
FROM measurements GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO rollup_countries (hour, service, cc, verdict, control, count)
SELECT hour, service, cc, verdict, control, sum(count) FROM rollups GROUP BY 1, 2, 3, 4, 5;
INSERT INTO rollup_totals (service, cc, asn, verdict, count)
SELECT service, cc, asn, verdict, sum(count) FROM rollups GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_methods (hour, service, cc, asn, verdict, method, count)
SELECT floor(extract(epoch FROM start_time) / 3600)::bigint, service, cc, asn, verdict, method, count(*)
FROM measurements, unnest(string_to_array(methods, ' ')) AS method GROUP BY 1, 2, 3, 4, 5, 6;
ANALYZE;
"""


def rows(count: int, start: dt.datetime, span_seconds: int = 86400) -> list[tuple[object, ...]]:
    rng = random.Random(7)
    asns = {
        cc: [64512 + i * 1000 + j for j in range(max(3, weight * 3))]
        for i, (cc, weight) in enumerate(COUNTRIES.items())
    }
    countries = rng.choices(list(COUNTRIES), list(COUNTRIES.values()), k=count)
    services = SERVICES + EXTRA_SERVICES
    out: list[tuple[object, ...]] = []
    for cc in countries:
        verdict = rng.choices(("ok", "blocked", "anomaly", "down", "offline"), (80, 10, 6, 2, 2))[0]
        moment = start + dt.timedelta(seconds=rng.randrange(span_seconds))
        methods = {"blocked": "tls.reset", "anomaly": "tcp.timeout"}.get(verdict, "")
        out.append((uuid.uuid4(), "probe", rng.choice(services), cc, rng.choice(asns[cc]), False, moment,
                    moment, verdict, verdict, methods, "cw.keep", "1", "", BODY))  # fmt: skip
    return out


async def load(url: str, count: int, start: dt.datetime, span_seconds: int = 86400) -> None:
    db = Database(url)
    await migrate.upgrade(db)
    await db.close()
    connection = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        generated = rows(count, start, span_seconds)
        await connection.copy_records_to_table("measurements", records=generated, columns=COLUMNS)
        await connection.execute(ROLLUPS)
        per_asn = await connection.fetchval("SELECT count(*) FROM rollups")
        per_country = await connection.fetchval("SELECT count(*) FROM rollup_countries")
        print(f"loaded {count} measurements, {per_asn} per-ASN and {per_country} per-country "
              f"rollup rows in {time.perf_counter() - began:.0f} s")  # fmt: skip
    finally:
        await connection.close()


async def latencies(url: str, params: dict[str, str], runs: int) -> list[float]:
    async with aiohttp.ClientSession() as session:
        times = []
        for _ in range(runs + 1):
            began = time.perf_counter()
            async with session.get(url + "/api/v1/aggregation", params=params) as response:
                assert response.status == 200, await response.text()
                await response.read()
            times.append(time.perf_counter() - began)
        return times[1:]  # the first warms caches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measurements", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(
        minute=0, second=0, microsecond=0
    )
    queries = {
        "hour x service, cc=KZ": {"axis_x": "time", "axis_y": "service", "cc": "KZ"},
        "hour x country, service=telegram": {
            "axis_x": "time",
            "axis_y": "cc",
            "service": "telegram",
        },
        "country x service (whole day)": {"axis_x": "cc", "axis_y": "service"},
        "hour x service, cc=KZ, CSV": {
            "axis_x": "time",
            "axis_y": "service",
            "cc": "KZ",
            "format": "csv",
        },
        "hour x asn, cc=KZ, service=telegram": {
            "axis_x": "time",
            "axis_y": "asn",
            "cc": "KZ",
            "service": "telegram",
        },
    }
    with ThrowawayCluster().running() as cluster, tempfile.TemporaryDirectory() as workdir:
        url = cluster.create_database("bench")
        asyncio.run(load(url, args.measurements, start))
        server = Server(Path(workdir), url)
        try:
            for name, params in queries.items():
                times = asyncio.run(latencies(server.url, params, args.runs))
                median = statistics.median(times) * 1000
                worst = max(times) * 1000
                print(f"{name:<38} median {median:6.1f} ms, max {worst:6.1f} ms (goal < 200 ms)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
