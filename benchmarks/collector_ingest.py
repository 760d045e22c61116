"""Ingest throughput: HTTP batches into PostgreSQL beside raw COPY into the same schema.

    python -m benchmarks.collector_ingest [--measurements N] [--batch 100 500 1000] [--senders 1 4]
                                          [--workers 1 2] [--rounds 3] [--sqlite-measurements N]

For batches of 100, 500 (the probe daemon's ``batch_size``: what a draining spool
sends) and 1,000 realistic (~2.5 KB) measurements sent to ``censorwatch
serve`` (``--workers`` 1 and 2 processes) over HTTP by 1 and 4 concurrent senders, prints
measurements per second, the CPU each part spent per measurement (collector, all its
workers together; PostgreSQL; the sending benchmark), and the ratio to asyncpg's
``copy_records_to_table`` of as many rows into the same table over one connection, in a
database of its own (migrated as the collector's is, so the collector's detector never
reads those rows), measured just before and just after each HTTP round (the mean of the
two is the raw limit for that round); each row is the median of ``--rounds`` rounds. The
machine may be shared: the ratio is the figure to compare. Each configuration
first sends one batch per sender that is not timed, so every sender has a database
connection. SQLite's figures (no COPY there, one worker) follow.

The path is a production one: the collector has an IP-to-ASN table, the probe has checked
in, and every measurement carries the attestation it got and claims that network, so each
is placed, verified and counted as a real probe's would be.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from benchmarks.collector_benchkit import ASN_TABLE, Server, realistic, upgrade
from collector.store.bulk import COLUMNS
from lab.harness.postgres import ThrowawayCluster
from probe import model


async def http_ingest(server: Server, token: str, batches: list[bytes], concurrency: int) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue = list(reversed(batches))
    # A connection per batch, as probes upload (one batch each, minutes apart): the kernel
    # then spreads batches over ``serve --workers``, not a few kept-alive connections.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

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
         model.encode(m), m.analysis.confidence)
        for m in items
    ]  # fmt: skip


async def raw_copy(dsn: str, rows: list[tuple[object, ...]]) -> tuple[float, float]:
    """Seconds for the COPY, and the CPU seconds its backend spent."""
    connection = await asyncpg.connect(dsn)
    try:
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        cpu = _cpu_seconds(backend)
        started = time.perf_counter()
        await connection.copy_records_to_table("measurements", records=rows, columns=COLUMNS)
        return time.perf_counter() - started, _cpu_seconds(backend) - cpu
    finally:
        await connection.close()


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def tree_cpu_seconds(pid: int) -> float:
    """A process's time and its live children's: ``serve --workers N`` is a supervisor
    whose workers do the work."""
    total = _cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    total += _cpu_seconds(int(entry.name))
            except OSError:
                continue  # ended meanwhile
    return total


def cluster_cpu_seconds(data_dir: Path) -> float:
    """The postmaster's own time, its ended children's (reaped into cutime and cstime) and
    its live children's: this cluster only, whatever else runs on the machine."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except OSError:
                continue  # ended meanwhile
            if int(child[1]) == postmaster:
                total += int(child[11]) + int(child[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Cpu:
    """CPU seconds spent by the collector, PostgreSQL and this process during a block."""

    collector: float = 0.0
    postgres: float = 0.0
    sender: float = 0.0

    def add(self, other: Cpu) -> None:
        self.collector += other.collector
        self.postgres += other.postgres
        self.sender += other.sender

    def per_item(self, n: int) -> str:
        us = 1e6 / n
        parts = [("collector", self.collector), ("PostgreSQL", self.postgres)]
        shown = ", ".join(f"{name} {seconds * us:4.0f}" for name, seconds in parts if seconds)
        return f"CPU µs/measurement: {shown}, sender {self.sender * us:3.0f}"

    def cores(self, seconds: float) -> str:
        """How many cores each part kept busy over ``seconds`` of wall time, beside what the
        machine has: the HTTP path is CPU-bound when their sum nears it."""
        parts = [("collector", self.collector), ("PostgreSQL", self.postgres)]
        parts.append(("sender", self.sender))
        busy = ", ".join(f"{name} {spent / seconds:.2f}" for name, spent in parts if spent)
        total = sum(spent for _, spent in parts) / seconds
        return f"cores busy: {busy}; {total:.2f} of the machine's {os.cpu_count()}"


@contextmanager
def cpu_of(server_pid: int, data_dir: Path | None) -> Iterator[Cpu]:
    def sample() -> tuple[float, float, float]:
        collector = tree_cpu_seconds(server_pid)
        postgres = cluster_cpu_seconds(data_dir) if data_dir is not None else 0.0
        return collector, postgres, time.process_time()

    spent = Cpu()
    before = sample()
    yield spent
    after = sample()
    spent.collector, spent.postgres, spent.sender = (
        b - a for a, b in zip(before, after, strict=True)
    )


def batches_of(items: list[model.Measurement], size: int) -> list[bytes]:
    return [
        b"[" + b",".join(model.encode(m) for m in items[i : i + size]) + b"]"
        for i in range(0, len(items), size)
    ]


@dataclass(frozen=True)
class Run:
    batch: int
    senders: int
    rates: list[float]  # one a round
    cpu: Cpu  # all rounds together
    # Raw COPY's rate before each round and after the last.
    copies: list[float] = field(default_factory=list)
    workers: int = 1

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def seconds(self, n: int) -> float:
        """Wall time of the timed rounds together, ``n`` measurements each."""
        return sum(n / rate for rate in self.rates)

    @property
    def ratios(self) -> list[float]:
        """Each round's rate over the mean of raw COPY's just before and just after it."""
        return [
            r / ((a + b) / 2)
            for r, a, b in zip(self.rates, self.copies, self.copies[1:], strict=False)
        ]


def http_runs(
    server: Server,
    n: int,
    sizes: list[int],
    senders: list[int],
    rng: random.Random,
    copy: Callable[[], float] | None = None,
    data_dir: Path | None = None,
    rounds: int = 1,
) -> list[Run]:
    """Each configuration after a batch per sender that is not timed, ``rounds`` times;
    ``copy`` (raw COPY's rate) is measured before each round and after the last. The probe
    checks in first, and its measurements carry the attestation it got (started after it,
    as a probe's are)."""
    probe_id, token = server.probe_token()
    placed = server.check_in(token)
    start = dt.datetime.now(dt.UTC)

    def fresh(count: int) -> list[model.Measurement]:
        return [realistic(probe_id, rng, start, placed) for _ in range(count)]

    runs = []
    for size in sizes:
        for concurrency in senders:
            warm = batches_of(fresh(size * concurrency), size)
            asyncio.run(http_ingest(server, token, warm, concurrency))
            rates, spent = [], Cpu()
            copies = [copy()] if copy is not None else []
            for _ in range(rounds):
                timed = batches_of(fresh(n), size)
                with cpu_of(server.process.pid, data_dir) as cpu:
                    seconds = asyncio.run(http_ingest(server, token, timed, concurrency))
                if copy is not None:
                    copies.append(copy())
                rates.append(n / seconds)
                spent.add(cpu)
            runs.append(Run(size, concurrency, rates, spent, copies, server.workers))
    return runs


def copy_run(url: str, n: int, rng: random.Random) -> tuple[float, Cpu]:
    start = dt.datetime.now(dt.UTC)
    rows = records([realistic("copy", rng, start) for _ in range(n)], "copy")
    sender = time.process_time()
    seconds, backend = asyncio.run(raw_copy(url, rows))
    return n / seconds, Cpu(postgres=backend, sender=time.process_time() - sender)


def print_runs(title: str, runs: list[Run], n: int, ratio: Callable[[Run], str]) -> None:
    print(title)
    for run in runs:
        print(
            f"  batches of {run.batch:>4}, {run.senders} sender{'s' if run.senders > 1 else ' '}, "
            f"{run.workers} worker{'s' if run.workers > 1 else ' '}: "
            f"{run.rate:7.0f} measurements/s{ratio(run)}   {run.cpu.per_item(n * len(run.rates))}"
        )
        print(f"      {run.cpu.cores(run.seconds(n))}")


def of_copy(run: Run) -> str:
    """The median round's share of raw COPY, and the range over the rounds."""
    ratios = sorted(100 * r for r in run.ratios)
    median_copy = statistics.median(run.copies)
    spread = f" [{ratios[0]:3.0f}–{ratios[-1]:3.0f}]" if len(ratios) > 1 else ""
    return f" = {statistics.median(ratios):3.0f} %{spread} of COPY ({median_copy:6.0f}/s)"


def postgresql(args: argparse.Namespace, rng: random.Random) -> None:
    n = args.measurements
    copies: list[Cpu] = []

    def copy() -> float:
        rate, cpu = copy_run(copy_url, n, rng)
        copies.append(cpu)
        return rate

    with ThrowawayCluster().running() as cluster, tempfile.TemporaryDirectory() as workdir:
        url = cluster.create_database("bench")
        # Raw COPY goes into a database of its own, migrated as the collector's is: in the
        # collector's, its rows would be read and judged by the collector's detector during
        # the next HTTP round, and charged to it.
        copy_url = cluster.create_database("copy")
        asyncio.run(upgrade(copy_url))
        table = asn_table(Path(workdir))
        runs = []
        for workers in args.workers:
            server = Server(Path(workdir), url, "--ip-asn-db", table, workers=workers)
            try:
                runs += http_runs(
                    server, n, args.batch, args.senders, rng, copy, cluster.data_dir, args.rounds
                )
            finally:
                server.stop()
    cpu = Cpu(
        postgres=sum(c.postgres for c in copies) / len(copies),
        sender=sum(c.sender for c in copies) / len(copies),
    )
    print(f"PostgreSQL, {n} measurements per row of figures")
    print(f"  asyncpg copy_records_to_table, {len(copies)} runs: {cpu.per_item(n)}")
    rounds = f"median of {args.rounds} rounds, " if args.rounds > 1 else ""
    print_runs(
        f"  HTTP ingest ({rounds}each beside COPY of as many rows just before and after):",
        runs,
        n,
        of_copy,
    )


def sqlite(args: argparse.Namespace, rng: random.Random) -> None:
    n = args.sqlite_measurements
    with tempfile.TemporaryDirectory() as workdir:
        db = f"sqlite:///{workdir}/collector.db"
        server = Server(Path(workdir), db, "--ip-asn-db", asn_table(Path(workdir)))
        try:
            runs = http_runs(server, n, args.batch, args.senders, rng, rounds=args.rounds)
        finally:
            server.stop()
    print_runs(f"SQLite, {n} measurements per row of figures", runs, n, lambda run: "")


def asn_table(workdir: Path) -> str:
    path = workdir / "ip2asn.tsv"
    path.write_text(ASN_TABLE)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measurements", type=int, default=20_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="PostgreSQL only")
    parser.add_argument(
        "--rounds", type=int, default=3, help="times each row is measured: its median is shown"
    )
    parser.add_argument("--sqlite-measurements", type=int, default=10_000, help="0: skip SQLite")
    args = parser.parse_args()
    rng = random.Random(1)
    sample = [realistic("probe", rng, dt.datetime.now(dt.UTC)) for _ in range(1000)]
    size = sum(len(model.encode(m)) for m in sample) / len(sample)
    print(f"measurements of {size:.0f} bytes on average")
    postgresql(args, rng)
    if args.sqlite_measurements:
        sqlite(args, rng)


if __name__ == "__main__":
    main()
