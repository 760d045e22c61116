"""Two collector source trees side by side: paired rounds of HTTP ingest on one cluster.

    python -m benchmarks.collector_ab --a TREE [--b TREE] [--rounds 6] [--measurements 20000]
                                      [--batch 100] [--senders 4] [--workers 1]

A change to the ingest path is worth a few per cent at most, and this machine's speed
drifts by more than that between one run of ``collector_ingest`` and the next. Here both
trees' ``censorwatch serve`` run at once, each with a database of its own in one
PostgreSQL cluster, and take turns: each round sends ``--measurements`` fresh measurements
to one tree, then as many to the other (the order alternating round by round), each after
the machine has gone quiet (neither collector nor the cluster using CPU). Each round prints
both rates and the CPU each part spent per measurement; the end prints the median ratio
B/A, and its range over the rounds, of the rate and of collector plus PostgreSQL CPU.

A tree is a directory holding ``collector``, ``probe`` and ``lab`` (a ``git worktree`` of
another commit, say); ``--b`` defaults to this one. The database schema is the one each
tree migrates to; the measurements are this tree's ``realistic`` ones, placed and attested
as a checked-in probe's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.collector_benchkit import Placement, Server, realistic
from benchmarks.collector_ingest import (
    asn_table,
    batches_of,
    cluster_cpu_seconds,
    cpu_of,
    http_ingest,
    tree_cpu_seconds,
)
from lab.harness.postgres import ThrowawayCluster

HERE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Side:
    name: str
    server: Server
    probe_id: str
    token: str
    placed: Placement


@dataclass(frozen=True)
class Round:
    rate: float  # measurements/s
    collector: float  # CPU µs/measurement
    postgres: float

    @property
    def cpu(self) -> float:
        return self.collector + self.postgres


def describe(tree: Path) -> str:
    """The tree's commit, and whether its working copy differs from it."""

    def git(*command: str) -> str:
        found = subprocess.run(["git", "-C", str(tree), *command], capture_output=True, text=True)
        return found.stdout.strip() if found.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "no git"
    changed = " with changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{tree} ({commit}{changed})"


def quiet(sides: list[Side], data_dir: Path, patience: float = 60.0) -> None:
    """Until collectors and cluster together spend under 6 % of a core for half a second."""

    def spent() -> float:
        collectors = sum(tree_cpu_seconds(side.server.process.pid) for side in sides)
        return collectors + cluster_cpu_seconds(data_dir)

    last, deadline = spent(), time.monotonic() + patience
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = spent()
        if now - last < 0.03:
            return
        last = now


def side(name: str, tree: Path, url: str, workdir: Path, workers: int) -> Side:
    server = Server(workdir, url, "--ip-asn-db", asn_table(workdir), workers=workers, tree=tree)
    probe_id, token = server.probe_token()
    return Side(name, server, probe_id, token, server.check_in(token))


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {statistics.median(ordered):.3f} [{ordered[0]:.3f}–{ordered[-1]:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=Path, required=True, help="the tree to compare against")
    parser.add_argument("--b", type=Path, default=HERE, help="the tree measured (default: this)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--measurements", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    for tree in (args.a, args.b):
        if not (tree / "collector" / "__main__.py").is_file():
            parser.error(f"{tree} holds no collector package")
    print(f"A: {describe(args.a)}\nB: {describe(args.b)}")
    print(
        f"{args.rounds} rounds of {args.measurements} measurements each, batches of "
        f"{args.batch}, {args.senders} senders, {args.workers} worker(s)"
    )
    rng = random.Random(1)
    results: dict[str, list[Round]] = {"A": [], "B": []}
    with (
        ThrowawayCluster().running() as cluster,
        tempfile.TemporaryDirectory() as wa,
        tempfile.TemporaryDirectory() as wb,
    ):
        sides: list[Side] = []
        try:
            for name, tree, workdir in (("A", args.a, wa), ("B", args.b, wb)):
                url = cluster.create_database("bench_" + name.lower())
                sides.append(side(name, tree.resolve(), url, Path(workdir), args.workers))
            start = dt.datetime.now(dt.UTC)

            def batches(s: Side, count: int) -> list[bytes]:
                items = [realistic(s.probe_id, rng, start, s.placed) for _ in range(count)]
                return batches_of(items, args.batch)

            for s in sides:  # an untimed batch per sender first: each has its connection
                warm = batches(s, args.batch * args.senders)
                asyncio.run(http_ingest(s.server, s.token, warm, args.senders))
            for number in range(args.rounds):
                for s in sides if number % 2 == 0 else sides[::-1]:
                    timed = batches(s, args.measurements)
                    quiet(sides, cluster.data_dir)
                    with cpu_of(s.server.process.pid, cluster.data_dir) as cpu:
                        seconds = asyncio.run(http_ingest(s.server, s.token, timed, args.senders))
                    us = 1e6 / args.measurements
                    results[s.name].append(
                        Round(args.measurements / seconds, cpu.collector * us, cpu.postgres * us)
                    )
                a, b = results["A"][-1], results["B"][-1]
                print(
                    f"round {number + 1}: A {a.rate:6.0f}/s (CPU µs collector {a.collector:4.0f}, "
                    f"PostgreSQL {a.postgres:4.0f}) | B {b.rate:6.0f}/s ({b.collector:4.0f}, "
                    f"{b.postgres:4.0f}) | B/A {b.rate / a.rate:.3f}",
                    flush=True,
                )
        finally:
            for s in sides:
                s.server.stop()
    pairs = list(zip(results["A"], results["B"], strict=True))
    for name, rounds in results.items():
        print(
            f"{name}: median {statistics.median(r.rate for r in rounds):.0f} measurements/s, CPU "
            f"µs/measurement collector {statistics.median(r.collector for r in rounds):.0f}, "
            f"PostgreSQL {statistics.median(r.postgres for r in rounds):.0f}"
        )
    print(f"B/A rate: {spread([b.rate / a.rate for a, b in pairs])}")
    print(f"B/A CPU (collector + PostgreSQL): {spread([b.cpu / a.cpu for a, b in pairs])}")


if __name__ == "__main__":
    main()
