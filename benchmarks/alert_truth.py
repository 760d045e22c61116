"""Are the incidents true? False alarms under noise and time to detect, through the HTTP API.

A real ``censorwatch serve`` (SQLite by default) with an IP-to-ASN table of tens of Kazakh
test ASNs; hundreds of probes, each uploading from its own loopback address (so the
collector itself places it in its ASN), each enrolled with its own token, vetted by the
operator (an established volunteer population), checked in once for its network
attestation. Every round each probe measures every service and uploads the batch; nothing
but the public API is used, and incidents are read back from ``GET /api/v1/incidents``.

Time is compressed: a 5-minute measuring round takes ``--round-seconds`` of real time, and
the collector runs with ``detector_time_scale`` = round-seconds / 300, so every duration of
the detector (window, silence, recovery) shrinks by the same factor. False incidents per
day are the count over the simulated rounds scaled to 288 rounds.

Scenarios: independent noise (each measurement ``anomaly`` ``tls.timeout`` with
probability 1 %, 5 %, 10 %); correlated but harmless noise (5 %, plus one ASN failing 40 %
of every service for an evening hour); and, after a baseline, a national DNS block
(NXDOMAIN everywhere), an SNI drop in one ASN only (``anomaly`` ``tls.timeout`` there), a
block seen by the two probes of a small ASN (``blocked`` ``dns.bogon``), and a shutdown of
one ASN (its probes go silent).

    python -m benchmarks.alert_truth [--probes 40] [--asns 5] [--rounds 12]
        [--round-seconds 6] [--baseline-rounds 4] [--db postgresql] [--detect-only]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from alerts.incidents import DetectorConfig, pattern_requirement
from collector.demo.servers.base import free_port
from lab.harness.postgres import ThrowawayCluster
from lab.harness.samples import measurement
from lab.paths import REPO_ROOT, checkout_env
from probe import model

SERVICES = ("telegram", "whatsapp", "signal", "youtube", "instagram", "control_a")
ROUNDS_PER_DAY = 288
SMALL_ASN = 64999
BASELINE_NOISE = 0.01  # before each detection scenario's event
# (probe index, asn, service) -> (verdict, methods), or None when the probe is silent
Verdicts = Callable[[int, int, str, random.Random], tuple[str, list[str]] | None]


@dataclass
class Probe:
    address: str
    asn: int
    token: str = ""
    attestation: str | None = None
    session: aiohttp.ClientSession | None = None


@dataclass
class Population:
    probes: list[Probe]
    asns: list[int]

    @classmethod
    def of(cls, probes: int, asns: int) -> Population:
        numbers = [65000 + a for a in range(asns)]
        out = [
            Probe(f"127.{10 + a}.{i // 200}.{i % 200 + 1}", numbers[a])
            for i in range(probes)
            for a in [i % asns]
        ]
        out += [Probe(f"127.9.0.{k + 1}", SMALL_ASN) for k in range(2)]
        return cls(out, numbers)

    def asn_table(self) -> str:
        rows = [
            f"127.{10 + a}.0.0\t127.{10 + a}.255.255\t{n}\tKZ\tTEST-{n}"
            for a, n in enumerate(self.asns)
        ]
        rows.append(f"127.9.0.0\t127.9.255.255\t{SMALL_ASN}\tKZ\tTEST-SMALL")
        rows.append("127.0.0.0\t127.8.255.255\t64500\tKZ\tTEST-KZ")
        return "\n".join(rows) + "\n"


@dataclass
class Collector:
    url: str
    admin: dict[str, str]
    process: subprocess.Popen[bytes]
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def incidents(self, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        async with session.get(self.url + "/api/v1/incidents", params={"limit": "500"}) as r:
            found: list[dict[str, Any]] = (await r.json())["incidents"]
        for incident in found:
            self.seen[incident["id"]] = incident
        return found


@contextlib.contextmanager
def collector(workdir: Path, population: Population, db: str, scale: float) -> Iterator[Collector]:
    table = workdir / "ip2asn.tsv"
    table.write_text(population.asn_table())
    port = free_port()
    env = checkout_env() | {
        "CENSORWATCH_RATE_PER_SECOND": "0", "CENSORWATCH_LOG_LEVEL": "WARNING",
        "CENSORWATCH_ALERT_INTERVAL_SECONDS": "0.5", "CENSORWATCH_DELIVERY_INTERVAL_SECONDS": "0",
        "CENSORWATCH_DETECTOR_TIME_SCALE": str(scale), "CENSORWATCH_METRICS_REFRESH_SECONDS": "60",
    }  # fmt: skip
    command = [sys.executable, "-m", "collector", "serve", "--db", db, "--listen",
               f"127.0.0.1:{port}", "--data-dir", str(workdir / "data"), "--ip-asn-db", str(table)]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        token_file = workdir / "data" / "admin-token"
        for _ in range(600):
            if token_file.exists():
                break
            time.sleep(0.1)
        time.sleep(1.0)
        admin = {"Authorization": "Bearer " + token_file.read_text().strip()}
        yield Collector(f"http://127.0.0.1:{port}", admin, process)
    finally:
        process.terminate()
        process.wait(timeout=60)


async def enrol(c: Collector, probe: Probe, admin: aiohttp.ClientSession) -> None:
    async with admin.post(c.url + "/api/v1/enrolment-tokens", json={}, headers=c.admin) as r:
        enrolment = (await r.json())["token"]
    probe.session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(probe.address, 0), limit=1)
    )
    headers = {"Authorization": f"Bearer {enrolment}"}
    async with probe.session.post(c.url + "/api/v1/probes", headers=headers) as r:
        registered = await r.json()
    probe.token = registered["token"]
    vet = {"vetted": True}
    async with admin.patch(
        f"{c.url}/api/v1/probes/{registered['probe_id']}", json=vet, headers=c.admin
    ) as r:
        assert r.status == 200, await r.text()
    auth = {"Authorization": f"Bearer {probe.token}"}
    async with probe.session.post(c.url + "/api/v1/probes/check-in", headers=auth) as r:
        probe.attestation = (await r.json())["attestation"]
    assert probe.attestation, "the collector did not place the probe: check the ASN table"


_templates: dict[tuple[str, str, tuple[str, ...]], model.Measurement] = {}


def item(service: str, verdict: str, methods: list[str], attestation: str | None) -> bytes:
    key = (service, verdict, tuple(methods))
    if key not in _templates:
        _templates[key] = measurement(
            service=service, verdict=verdict, methods=methods, cc=None, asn=None
        )  # type: ignore[arg-type]
    now = model.utc_now()
    template = _templates[key]
    probe = msgspec.structs.replace(template.probe, attestation=attestation)
    return model.encode(
        msgspec.structs.replace(template, id=uuid.uuid4(), start_time=now, probe=probe)
    )


async def upload(c: Collector, probe: Probe, items: list[bytes]) -> None:
    assert probe.session is not None
    headers = {"Authorization": f"Bearer {probe.token}", "Content-Type": "application/json"}
    async with probe.session.post(
        c.url + "/api/v1/measurements", data=b"[" + b",".join(items) + b"]", headers=headers
    ) as r:
        if r.status != 200:
            raise RuntimeError(f"upload: {r.status} {await r.text()}")


async def round_(
    c: Collector, population: Population, verdicts: Verdicts, rng: random.Random
) -> float:
    started = time.monotonic()
    jobs = []
    for i, probe in enumerate(population.probes):
        items = []
        for service in SERVICES:
            chosen = verdicts(i, probe.asn, service, rng)
            if chosen is not None:
                items.append(item(service, chosen[0], chosen[1], probe.attestation))
        if items:
            jobs.append(upload(c, probe, items))
    for start in range(0, len(jobs), 50):
        await asyncio.gather(*jobs[start : start + 50])
    return time.monotonic() - started


def noise(p: float) -> Verdicts:
    def verdicts(i: int, asn: int, service: str, rng: random.Random) -> tuple[str, list[str]]:
        return ("anomaly", ["tls.timeout"]) if rng.random() < p else ("ok", [])

    return verdicts


@dataclass
class Run:
    rounds: int
    opened: dict[str, list[str]]  # status -> incident ids
    first_round: int | None  # when the wanted incident appeared
    slowest_round: float


async def simulate(
    args: argparse.Namespace, new_db: Callable[[], str], schedule: Callable[[int], Verdicts], rounds: int,
    wanted: Callable[[dict[str, Any]], bool] | None = None, start_event: int = 0,
) -> Run:  # fmt: skip
    population = Population.of(args.probes, args.asns)
    rng = random.Random(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="cw-truth-") as tmp,
        collector(Path(tmp), population, new_db(), args.round_seconds / 300) as c,
    ):
        async with aiohttp.ClientSession() as admin:
            for start in range(0, len(population.probes), 20):
                await asyncio.gather(
                    *(enrol(c, p, admin) for p in population.probes[start : start + 20])
                )
            slowest, first = 0.0, None
            try:
                for r in range(rounds):
                    began = time.monotonic()
                    slowest = max(slowest, await round_(c, population, schedule(r), rng))
                    await asyncio.sleep(max(0.6, args.round_seconds - (time.monotonic() - began)))
                    found = await c.incidents(admin)
                    if (
                        wanted
                        and first is None
                        and r >= start_event
                        and any(wanted(i) for i in found)
                    ):
                        first = r - start_event + 1
                        break
                await asyncio.sleep(1.0)
                await c.incidents(admin)
            finally:
                for p in population.probes:
                    if p.session is not None:
                        await p.session.close()
    opened: dict[str, list[str]] = {}
    for incident in c.seen.values():
        status = "unconfirmed" if incident["confirmed_at"] is None else "confirmed"
        opened.setdefault(status, []).append(incident["id"])
        opened.setdefault(incident["kind"], []).append(incident["id"])
    if slowest > args.round_seconds:
        print(f"    WARNING: a round's uploads took {slowest:.1f} s, longer than the compressed "
              f"round ({args.round_seconds} s): probes looked silent; use --round-seconds "
              f"{slowest * 1.5:.0f} or fewer --probes")  # fmt: skip
    return Run(rounds, opened, first, slowest)


def per_day(run: Run, status: str) -> float:
    return len(run.opened.get(status, [])) * ROUNDS_PER_DAY / run.rounds


def summary(run: Run) -> str:
    return (
        f"{per_day(run, 'confirmed'):5.1f} confirmed, {per_day(run, 'unconfirmed'):5.1f} "
        f"unconfirmed per day (blocking {per_day(run, 'blocking'):.1f}, "
        f"shutdown {per_day(run, 'shutdown'):.1f})"
    )


async def false_alarms(args: argparse.Namespace, db: Callable[[], str]) -> None:
    print(f"false incidents per day ({args.rounds} rounds of 5 min simulated per scenario):")
    for p in (0.01, 0.05, 0.10):
        run = await simulate(args, db, lambda r, p=p: noise(p), args.rounds)
        print(f"  independent noise {p:4.0%}: {summary(run)} "
              f"(slowest round upload {run.slowest_round:.1f} s)")  # fmt: skip
    flaky_asn = 65000
    evening = range(args.rounds // 2, args.rounds // 2 + 12)

    def correlated(r: int) -> Verdicts:
        base = noise(0.05)

        def verdicts(i: int, asn: int, service: str, rng: random.Random) -> tuple[str, list[str]]:
            if r in evening and asn == flaky_asn:
                return ("anomaly", ["tls.timeout"]) if rng.random() < 0.40 else ("ok", [])
            return base(i, asn, service, rng)

        return verdicts

    run = await simulate(args, db, correlated, args.rounds)
    print(f"  correlated harmless noise (5 % + AS{flaky_asn} failing 40 % of everything "
          f"for an hour): {summary(run)}")  # fmt: skip


def sni_requirement(args: argparse.Namespace, asn_index: int, baseline: int) -> str:
    """What block.open.pattern needs to hear one ASN's SNI drop in this population: a run
    too small for the rule says so instead of only missing the goal. The warm-up's noise
    is a draw: twice the expected rate is what an unlucky draw can lift the baseline to."""
    voices = sum(1 for i in range(args.probes) if i % args.asns == asn_index)
    rate, needed = pattern_requirement(learnt(voices, baseline), BASELINE_NOISE)
    _, unlucky = pattern_requirement(learnt(voices, baseline), 2 * BASELINE_NOISE)
    config = DetectorConfig()
    line = (f"    AS{65000 + asn_index}: {voices} voices; block.open.pattern fires when at least "
            f"{needed} fail together, against a baseline of {rate:.1%} after {baseline} rounds "
            f"of history (prior {config.prior_rate:.0%} worth {config.prior_weight:g} "
            f"measurements; {unlucky} if the warm-up drew twice its expected noise)")  # fmt: skip
    if voices >= unlucky:
        return line
    enough = (
        b
        for b in range(baseline, 10_000)
        if pattern_requirement(learnt(voices, b), 2 * BASELINE_NOISE)[1] <= voices
    )
    longer = next((f"--baseline-rounds {b}" for b in enough), "(no history suffices)")
    verdict = "BELOW" if voices < needed else "AT THE EDGE OF"
    return (line + f"\n    {verdict} WHAT THE RULE NEEDS: {voices} voices; use --probes "
            f"{unlucky * args.asns} or {longer}")  # fmt: skip


def learnt(voices: int, rounds: int) -> float:
    """A cell's history after `rounds` rounds of `voices` measurements, decayed as the
    detector decays it; the last window and a third (4 rounds) still wait to be learnt."""
    config = DetectorConfig()
    decay = 0.5 ** (300 / config.history_half_life.total_seconds())
    waiting = math.ceil(config.window * 4 / 3 / timedelta(minutes=5))
    return voices * sum(decay**r for r in range(rounds - waiting))


async def time_to_detect(args: argparse.Namespace, db: Callable[[], str]) -> None:
    baseline = args.baseline_rounds
    print(f"time to detect, in 5-minute rounds after {baseline} rounds of "
          f"{BASELINE_NOISE:.0%} noise (goal):")  # fmt: skip

    def event(
        forced: Callable[[int, int, str], tuple[str, list[str]] | bool | None],
    ) -> Callable[[int], Verdicts]:
        def schedule(r: int) -> Verdicts:
            base = noise(BASELINE_NOISE)

            def verdicts(
                i: int, asn: int, service: str, rng: random.Random
            ) -> tuple[str, list[str]] | None:
                got = forced(i, asn, service) if r >= baseline else False
                return base(i, asn, service, rng) if got is False else got  # type: ignore[return-value]

            return verdicts

        return schedule

    cases: list[tuple[str, str, Callable[[int, int, str], Any], Callable[[dict[str, Any]], bool]]] = [
        ("national DNS block (telegram NXDOMAIN everywhere)", "<= 2",
         lambda i, asn, s: ("blocked", ["dns.nxdomain"]) if s == "telegram" else False,
         lambda inc: inc["service"] == "telegram" and inc["confirmed_at"] is not None),
        ("SNI drop in one ASN only (signal, AS65001 tls.timeout)", "<= 3",
         lambda i, asn, s: ("anomaly", ["tls.timeout"]) if s == "signal" and asn == 65001 else False,
         lambda inc: inc["service"] == "signal" and 65001 in inc["asns"] and inc["confirmed_at"] is not None),
        ("small ASN, its 2 probes see a bogon (whatsapp)", "",
         lambda i, asn, s: ("blocked", ["dns.bogon"]) if s == "whatsapp" and asn == SMALL_ASN else False,
         lambda inc: inc["service"] == "whatsapp" and SMALL_ASN in inc["asns"] and inc["confirmed_at"] is not None),
        ("shutdown of AS65002 (its probes go silent)", "",
         lambda i, asn, s: None if asn == 65002 else False,
         lambda inc: inc["kind"] == "shutdown"),
    ]  # fmt: skip
    for name, goal, forced, wanted in cases:
        run = await simulate(args, db, event(forced), baseline + 6, wanted, baseline)
        got = f"{run.first_round} rounds" if run.first_round else "not within 6 rounds"
        print(f"  {name}: {got}" + (f" (goal {goal})" if goal else ""))
        if name.startswith("SNI"):
            print(sni_requirement(args, 1, baseline))


async def main_async(args: argparse.Namespace) -> None:
    print(f"{args.probes + 2} probes in {args.asns + 1} ASNs x {len(SERVICES)} services, "
          f"a round every {args.round_seconds} s real time, {args.db}")  # fmt: skip
    counter = iter(range(1000))
    if args.db == "postgresql":
        cluster = ThrowawayCluster()
        with cluster.running():
            await run_all(args, lambda: cluster.create_database(f"cw_truth_{next(counter)}"))
    else:
        workdir = tempfile.mkdtemp(prefix="cw-truth-db-")
        await run_all(args, lambda: f"sqlite:///{workdir}/{next(counter)}.db")


async def run_all(args: argparse.Namespace, db: Callable[[], str]) -> None:
    """A fresh database per scenario."""
    if not args.detect_only:
        await false_alarms(args, db)
    await time_to_detect(args, db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--asns", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=12, help="rounds per noise scenario")
    parser.add_argument("--round-seconds", type=float, default=6.0)
    parser.add_argument(
        "--baseline-rounds", type=int, default=4, help="quiet rounds before each event"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--detect-only", action="store_true")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
