"""Alert latency and detection cost.

1. Latency, censorship on → signed webhook received. Each run is ``censorwatch demo``: real
   probe checks against loopback DNS/DoH/TLS servers, a real collector (SQLite), the
   detector every 1 s, delivery every 0.5 s, a receiver that verifies the signature. The demo
   switches censorship on just before a probe round, so it measures the pipeline with a
   zero phase. Probes every 30 s add the wait until the next round: uniform in [0, 30 s]
   when censorship starts at a random moment, so the figures for 30 s probes are the
   measured pipeline plus 15 s (median) and plus 30 s (worst case). That shortcut is exact
   as long as one round of measurements suffices to open an incident, which it does here
   (three probes, two needed).
2. Detection cost through ``collector.alerting.detection.run_cycle``, 1,000 probes × 20
   services on SQLite and 1,000 and 10,000 probes × 20 services on PostgreSQL (a throwaway
   cluster): read rows in commit order with each probe's record, build observations, detect
   (statistical tests per cell and nationally), store incidents, outbox rows and the
   detector's state. Two figures: a cycle that reads a whole round at once (20,000 or
   200,000 measurements: after an outage, or a detector that fell behind), and the steady
   cycle, every 5 s (the default ``alert_interval_seconds``), that reads what arrived since:
   1/60 of a round when probes report every 5 minutes.

    python -m benchmarks.alert_latency [--runs N] [--cost-only]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from collector.alerting import detection
from collector.alerting.context import Windows
from collector.ingest.measurements import insert_rows
from collector.store import migrate
from collector.store.db import Database
from lab.harness.postgres import ThrowawayCluster

PROBE_INTERVAL = 30.0


def pipeline_latency() -> float:
    done = subprocess.run(
        [sys.executable, "-m", "collector", "demo", "--probe-interval", "3", "--censor-after", "4"],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    match = re.search(r"ALERT ([0-9.]+) s after censorship began", done.stdout)
    assert match, done.stdout
    return float(match.group(1))


def rows(probes: int, services: int, now: dt.datetime, first: int = 0) -> list[dict[str, object]]:
    out = []
    for p in range(first, first + probes):
        for s in range(services):
            blocked = s == 0 and p % 3 == 0
            out.append(
                {
                    "id": uuid.uuid4(), "probe_id": f"probe-{p}", "service": f"svc{s}",
                    "cc": "KZ" if p % 2 else "RU", "asn": 64500 + p % 40, "control": p < 10,
                    "start_time": now - dt.timedelta(seconds=p % 30), "received_at": now,
                    "probe_verdict": "blocked" if blocked else "ok",
                    "verdict": "blocked" if blocked else "ok",
                    "methods": "dns.nxdomain" if blocked else "", "rule": "cw.keep",
                    "rules_version": "2", "flags": "", "body": b"{}", "confidence": 0.9,
                }
            )  # fmt: skip
    return out


async def _insert(db: Database, batch: list[dict[str, object]]) -> None:
    for start in range(0, len(batch), 20_000):
        async with db.writing() as connection:
            await connection.execute(text("SELECT 1"))  # begins the transaction
            await insert_rows(connection, db, batch[start : start + 20_000])


async def detection_cost(
    url: str, probes: int = 1000, cycles: int = 3, steady: int = 6
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(wall, CPU) seconds per cycle: ``cycles`` cycles that each read a whole round at once, then
    ``steady`` cycles 5 s apart that each read the 1/60 of a round that arrives meanwhile
    when probes report every 5 minutes. One process runs them all, keeping the state it
    stored (``StateMemo``), as ``detect_forever`` does."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        await migrate.upgrade(db)
        await detection.ensure_state_row(db, dt.datetime.now(dt.UTC))
        windows = Windows(dt.timedelta(hours=1), dt.timedelta(hours=6), dt.timedelta(days=365))
        memo = detection.StateMemo()
        now = dt.datetime.now(dt.UTC)
        rounds: list[tuple[float, float]] = []
        trickle: list[tuple[float, float]] = []
        for n in range(cycles + steady):
            whole = n < cycles
            now += dt.timedelta(seconds=300 if whole else 5)
            share = probes if whole else max(1, probes // 60)
            first = 0 if whole else (n - cycles) * share % probes
            await _insert(db, rows(share, 20, now, first))
            started, cpu = time.perf_counter(), time.process_time()
            result = await detection.run_cycle(
                db, now + dt.timedelta(seconds=1), settle=dt.timedelta(0), windows=windows,
                memo=memo,
            )  # fmt: skip
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            (rounds if whole else trickle).append((seconds, cpu))
            assert result is not None
            print(f"  cycle: {result.observations} observations, {len(result.changes)} changes, "
                  f"{seconds * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU in this process)")  # fmt: skip
        await db.close()
        return rounds, trickle


def _ms(figures: list[tuple[float, float]]) -> str:
    wall = statistics.median(w for w, _ in figures) * 1000
    cpu = statistics.median(c for _, c in figures) * 1000
    return (
        f"median {wall:.0f} ms ({cpu:.0f} ms CPU), max {max(w for w, _ in figures) * 1000:.0f} ms"
    )


def cost(label: str, url: str, probes: int) -> None:
    """Wall time beside the detector process's CPU time: on a shared machine the wall time
    also counts waiting for a core, and the database's own work is in neither figure's CPU."""
    print(f"detection cycle, {probes:,} probes x 20 services ({label}):")
    rounds, trickle = asyncio.run(detection_cost(url, probes))
    print(f"detection ({label}, {probes:,} x 20): a whole round at once {_ms(rounds)}; "
          f"steady (a cycle every 5 s, 1/60 of a round each) {_ms(trickle)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cost-only", action="store_true", help="skip the demo latency runs")
    args = parser.parse_args()
    if not args.cost_only:
        latency(args.runs)
    cost("SQLite", "", 1000)
    cluster = ThrowawayCluster()
    with cluster.running():
        cost("PostgreSQL", cluster.create_database("cw_cost_1k"), 1000)
        cost("PostgreSQL", cluster.create_database("cw_cost_10k"), 10_000)


def latency(runs: int) -> None:
    print(f"alert latency, {runs} runs of `censorwatch demo` (pipeline, zero phase):")
    measured = []
    for n in range(runs):
        measured.append(pipeline_latency())
        print(f"  run {n + 1}: {measured[-1]:.1f} s")
    median, worst = statistics.median(measured), max(measured)
    print(f"pipeline: median {median:.1f} s, max {worst:.1f} s")
    print(
        f"with probes every {PROBE_INTERVAL:.0f} s: median {median + PROBE_INTERVAL / 2:.1f} s, "
        f"max {worst + PROBE_INTERVAL:.1f} s (goal: median < 90 s)"
    )


if __name__ == "__main__":
    main()
