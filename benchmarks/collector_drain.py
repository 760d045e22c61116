"""Every spool drains at once: a week of measurements from many probes arriving within a minute.

    python -m benchmarks.collector_drain [--probes 200] [--per-probe 2000] [--batch 500]
                                         [--arrival 60] [--check-in-every 0.25] [--workers 1]

A shutdown has ended: each probe starts uploading its spool (``--per-probe`` measurements
of about 2.5 KB, started at random moments over the past week) at a random moment within
``--arrival`` seconds, in batches of ``--batch`` (the daemon's default), as the daemon does:
one batch at a time, a 429 answered by waiting ``Retry-After``, no answer within 60 s (the
daemon's timeout) or a 5xx by trying again after 5 s. Meanwhile ten other probes take turns
to check in every ``--check-in-every`` seconds. Prints the drain's rate, every status the uploads got
(a 5xx is a bug), the rows stored, and check-in latency before and during the drain.
``censorwatch serve`` (``--workers`` processes) runs against a throwaway PostgreSQL.
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import msgspec

from benchmarks.collector_benchkit import Server, http_json, realistic
from lab.harness.postgres import ThrowawayCluster
from probe import model

_TEMPLATES = 8  # distinct measurements per probe; each item gets its own id and start
_CHECKERS = 10  # probes taking turns to check in (one probe's check-ins queue on its row)
_UPLOAD_TIMEOUT = 60.0  # the daemon's
_WEEK = 7 * 86400


@dataclass
class Probe:
    id: str
    token: str
    templates: list[tuple[bytes, bytes, bytes]]  # body, its id, its start_time (as JSON)


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    duplicate: int = 0
    done_at: float = 0.0


def spool(probe: Probe, count: int, rng: random.Random, now: dt.datetime) -> list[bytes]:
    """The probe's spool: templates with a fresh id and a start within the past week."""
    items = []
    for _ in range(count):
        body, old_id, old_start = rng.choice(probe.templates)
        start = now - dt.timedelta(seconds=rng.uniform(60, _WEEK))
        items.append(
            body.replace(old_id, str(uuid.uuid4()).encode(), 1).replace(
                old_start, msgspec.json.encode(start), 1
            )
        )
    return items


async def drain(
    session: aiohttp.ClientSession,
    url: str,
    probe: Probe,
    batches: list[bytes],
    delay: float,
    tally: Tally,
) -> None:
    await asyncio.sleep(delay)
    headers = {"Authorization": f"Bearer {probe.token}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=_UPLOAD_TIMEOUT)
    for body in batches:
        while True:
            try:
                async with session.post(url, data=body, headers=headers, timeout=timeout) as r:
                    tally.statuses[str(r.status)] += 1
                    if r.status == 200:
                        result = await r.json()
                        tally.accepted += result["accepted"]
                        tally.duplicate += result["duplicate"]
                        break
                    wait = float(r.headers.get("Retry-After", "5")) if r.status == 429 else 5.0
            except (TimeoutError, aiohttp.ClientError) as exc:
                tally.statuses[type(exc).__name__] += 1
                wait = 5.0
            await asyncio.sleep(wait * random.uniform(1.0, 1.2))
    tally.done_at = max(tally.done_at, time.perf_counter())


async def check_ins(
    session: aiohttp.ClientSession,
    url: str,
    tokens: list[str],
    every: float,
    stop: asyncio.Event,
) -> list[tuple[float, float, int]]:
    """(when, seconds, status) of a check-in every ``every`` seconds until ``stop``, the
    probes of ``tokens`` taking turns."""
    samples: list[tuple[float, float, int]] = []

    async def one(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        try:
            async with session.post(url, headers=headers) as r:
                await r.read()
                status = r.status
        except aiohttp.ClientError:
            status = 0
        samples.append((started, time.perf_counter() - started, status))

    tasks = []
    while not stop.is_set():
        tasks.append(asyncio.create_task(one(tokens[len(tasks) % len(tokens)])))
        await asyncio.sleep(every)
    await asyncio.gather(*tasks)
    return samples


def latency(samples: list[tuple[float, float, int]]) -> str:
    if not samples:
        return "no samples"
    seconds = sorted(s for _, s, _ in samples)
    p95 = seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]
    statuses = Counter(status for _, _, status in samples)
    return (
        f"{len(seconds)} check-ins, median {1000 * statistics.median(seconds):.0f} ms, "
        f"p95 {1000 * p95:.0f} ms, max {1000 * seconds[-1]:.0f} ms, statuses {dict(statuses)}"
    )


def enrol(server: Server, count: int, rng: random.Random, now: dt.datetime) -> list[Probe]:
    admin = {"Authorization": "Bearer " + (server.workdir / "admin-token").read_text().strip()}
    body = msgspec.json.encode({"uses": count})
    token = http_json("POST", server.url + "/api/v1/enrolment-tokens", body, admin)["token"]
    found = []
    for _ in range(count):
        reply = http_json(
            "POST", server.url + "/api/v1/probes", b"", {"Authorization": f"Bearer {token}"}
        )
        probe_id = str(reply["probe_id"])
        templates = []
        for _ in range(_TEMPLATES):
            m = realistic(probe_id, rng, now)
            encoded = (str(m.id).encode(), msgspec.json.encode(m.start_time))
            templates.append((model.encode(m), *encoded))
        found.append(Probe(probe_id, str(reply["token"]), templates))
    return found


async def run(server: Server, probes: list[Probe], args: argparse.Namespace) -> None:
    rng = random.Random(2)
    now = dt.datetime.now(dt.UTC)
    uploads = server.url + "/api/v1/measurements"
    checking = server.url + "/api/v1/probes/check-in"
    drainers, checkers = probes[:-_CHECKERS], [p.token for p in probes[-_CHECKERS:]]
    work = []
    for probe in drainers:
        items = spool(probe, args.per_probe, rng, now)
        batches = [
            b"[" + b",".join(items[i : i + args.batch]) + b"]"
            for i in range(0, len(items), args.batch)
        ]
        work.append((probe, batches, rng.uniform(0, args.arrival)))
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        idle_stop = asyncio.Event()
        idle = asyncio.create_task(
            check_ins(session, checking, checkers, args.check_in_every, idle_stop)
        )
        await asyncio.sleep(5)
        idle_stop.set()
        before = await idle
        stop = asyncio.Event()
        during = asyncio.create_task(
            check_ins(session, checking, checkers, args.check_in_every, stop)
        )
        started = time.perf_counter()
        await asyncio.gather(*(drain(session, uploads, p, b, delay, tally) for p, b, delay in work))
        stop.set()
        sampled = await during
    seconds = tally.done_at - started
    total = len(drainers) * args.per_probe
    print(
        f"{len(drainers)} probes × {args.per_probe} measurements = {total}, batches of "
        f"{args.batch}, arriving within {args.arrival:.0f} s"
    )
    print(f"  drained in {seconds:.1f} s: {total / seconds:.0f} measurements/s")
    print(f"  upload answers: {dict(sorted(tally.statuses.items()))}")
    fives = sum(n for status, n in tally.statuses.items() if status.startswith("5"))
    print(f"  5xx answers: {fives}")
    print(f"  accepted {tally.accepted}, duplicate {tally.duplicate} (re-sent after a timeout)")
    print(f"  check-in while idle:     {latency(before)}")
    print(f"  check-in during drain:   {latency(sampled)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--per-probe", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--arrival", type=float, default=60.0)
    parser.add_argument("--check-in-every", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(1)
    with ThrowawayCluster().running() as cluster, tempfile.TemporaryDirectory() as workdir:
        url = cluster.create_database("bench")
        server = Server(Path(workdir), url, workers=args.workers)
        try:
            probes = enrol(server, args.probes + _CHECKERS, rng, dt.datetime.now(dt.UTC))
            asyncio.run(run(server, probes, args))
            stored = asyncio.run(_stored(url))
            print(f"  rows stored: {stored}")
        finally:
            server.stop()


async def _stored(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM measurements"))
    finally:
        await connection.close()


if __name__ == "__main__":
    main()
