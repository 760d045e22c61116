"""Alert latency over real rounds, measured rather than derived.

Probe daemons (``censorwatch-probe run``, real processes, their own schedules and upload
loops) measure a loopback world and upload to a real collector (``censorwatch serve``,
SQLite, the detector and delivery at their default cadence: a cycle every 5 s, delivery every
1 s). A receiver checks each webhook's Standard Webhooks signature with the independent
``standardwebhooks`` package and keeps only the verified ones. Censorship (the network
resolver answering NXDOMAIN for web.telegram.org while the control resolver resolves it) is
switched on at a random moment, drawn as a fraction of the probes' messenger interval; the
time until a verified ``incident.opened`` for telegram arrives is the latency. Then
censorship is lifted and the run waits for ``incident.resolved`` before the next onset. To let
onsets follow each other in minutes, the collector resolves incidents after 60 s of quiet
instead of 900 s (``detector_recovery_quiet_seconds``); that setting plays no part in opening
one.

Three schedules, run side by side (each its own world, collector and probes), with the same
onset moments (the same fractions of each mode's interval):
- ``plain``: every probe measures messengers every ``--interval`` seconds (default 30, jitter
  up to a sixth of it);
- ``window``: the probes' default schedule (messengers every 300 s, jitter up to 120 s),
  inside a watch window the collector hands out at check-in (messengers every 30 s);
- ``outside``: the same default schedule and no window.

Each probe's traffic (what the daemon charges to its data budget: uploads plus an estimate
per endpoint tested) over the run is scaled to a day.

    python -m benchmarks.alert_rounds [--onsets 10] [--probes 6] [--modes plain,window,outside]
        [--outside-onsets N]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from collector.demo.servers import PKI, Answer, NXDomain
from collector.demo.servers.base import free_port
from lab.harness.daemons import Collector, Probe, probe_config, request, until
from lab.harness.loopback import TRUTH, World, world
from probe.daemon.spool import Spool
from probe.daemon.state import StateDir

SERVICE_HOST = "web.telegram.org"
LOOPBACK_TABLE = "127.0.0.0\t127.255.255.255\t64500\tKZ\tLoopback Telecom\n"
DEFAULT_MESSENGER_SECONDS = 300.0  # the probe's default schedule (probe/daemon/config.py)
DEFAULT_JITTER_SECONDS = 120.0
RECOVERY_QUIET_SECONDS = 60


class Receiver:
    """Keeps the verified incident changes the collector sends, with their arrival times."""

    def __init__(self) -> None:
        self.port = free_port()
        self.secret = ""
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.unverified = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        at, body = time.monotonic(), await request.read()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:
            self.unverified += 1
            return web.Response(status=401)
        self.arrivals.append((at, json.loads(body)))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def first(self, kind: str, after: float) -> float | None:
        for at, body in self.arrivals:
            service = body.get("data", {}).get("service")
            if at >= after and body.get("type") == kind and service == "telegram":
                return at
        return None


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    bytes_per_day: list[float] = field(default_factory=list)
    unverified: int = 0


async def _admin(collector: Collector, method: str, path: str, body: Any) -> Any:
    status, answer = await request(
        method, collector.url + path, json.dumps(body).encode(),
        {**collector.admin(), "Content-Type": "application/json"},
    )  # fmt: skip
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {answer[:300]!r}")
    return json.loads(answer) if answer else None


def _config(internet: World, home: Path, mode: str, interval: float) -> Path:
    if mode == "plain":
        messenger, jitter = interval, interval / 6
    else:
        messenger, jitter = DEFAULT_MESSENGER_SECONDS, DEFAULT_JITTER_SECONDS
    config = probe_config(internet, home, interval_seconds=900.0, jitter_seconds=jitter)
    text = config.read_text().replace(
        "[schedule]", f"[schedule]\ncategories = {{ messenger = {messenger} }}"
    )
    # The daemon's own check-in and upload defaults, not the harness's quick ones: check-in
    # as often as the collector asks, uploads woken by each finished round.
    text = text.replace("check_in_seconds = 2.0\n", "").replace("idle_seconds = 0.3\n", "")
    config.write_text(text)
    return config


async def _start_probes(
    internet: World, collector: Collector, directory: Path, count: int, mode: str, interval: float
) -> list[Probe]:
    """Started one after another across one messenger interval: volunteers' probes are not in
    step with each other, so neither are these (probes started together stay in step for
    many rounds, and an onset just before their common turn would be seen at once)."""
    probes = []
    spacing = interval if mode in ("plain", "window") else DEFAULT_MESSENGER_SECONDS
    for i in range(count):
        home = directory / f"probe{i}"
        home.mkdir()
        probe = Probe(collector.url, home / "state", _config(internet, home, mode, interval))
        await probe.start()
        probes.append(probe)
        await asyncio.sleep(spacing / count)
    for probe in probes:  # vetted: the benchmark's probes are known good, so one voice each
        state = StateDir(probe.state)
        await until(partial(state.credentials, collector.url), 60, "enrolled")
        credentials = state.credentials(collector.url)
        assert credentials is not None
        await _admin(collector, "PATCH", f"/api/v1/probes/{credentials.probe_id}", {"vetted": True})
    return probes


def _traffic(probe: Probe) -> float:
    """Bytes the daemon has charged to today's data budget (0 before its first round)."""
    path = StateDir(probe.state).spool_path
    if not path.exists():
        return 0.0
    spool = Spool(path, repair=False)
    try:
        return float(spool.status().get("watch_bytes_today", 0) or 0)  # type: ignore[arg-type]
    finally:
        spool.close()


async def run_mode(mode: str, phases: list[float], count: int, interval: float) -> Outcome:
    outcome = Outcome()
    spacing = DEFAULT_MESSENGER_SECONDS if mode == "outside" else interval
    with tempfile.TemporaryDirectory(prefix=f"cw-rounds-{mode}-") as tmp:
        root = Path(tmp)
        table = root / "ip2asn.tsv"
        table.write_text(LOOPBACK_TABLE)
        settings = {
            "CENSORWATCH_IP_ASN_DB": str(table),
            "CENSORWATCH_DETECTOR_RECOVERY_QUIET_SECONDS": str(RECOVERY_QUIET_SECONDS),
        }
        receiver = Receiver()
        await receiver.start()
        async with world(PKI(root / "pki"), root) as internet:
            collector = Collector(root, settings)
            await collector.start()
            probes: list[Probe] = []
            try:
                made = await _admin(collector, "POST", "/api/v1/subscribers",
                                    {"url": f"http://127.0.0.1:{receiver.port}/hook",
                                     "format": "json"})  # fmt: skip
                receiver.secret = made["secret"]
                if mode == "window":
                    now = dt.datetime.now(dt.UTC)
                    await _admin(collector, "POST", "/api/v1/watch-windows", {
                        "cc": "KZ", "title": "Benchmark window", "start": now.isoformat(),
                        "end": (now + dt.timedelta(days=1)).isoformat()})  # fmt: skip
                probes += await _start_probes(internet, collector, root, count, mode, interval)
                await asyncio.sleep(spacing + 30)  # a baseline round of ok measurements first
                spent, since = [_traffic(p) for p in probes], time.monotonic()
                for n, phase in enumerate(phases):
                    await asyncio.sleep(phase * spacing)
                    internet.network_zone.set(SERVICE_HOST, NXDomain())
                    began = time.monotonic()
                    await until(partial(receiver.first, "incident.opened", began), 1800, "opened")
                    opened = receiver.first("incident.opened", began)
                    assert opened is not None
                    outcome.latencies.append(opened - began)
                    print(f"  {mode} onset {n + 1}: alert after {opened - began:.1f} s", flush=True)
                    internet.network_zone.set(SERVICE_HOST, Answer((TRUTH[SERVICE_HOST],)))
                    await until(
                        partial(receiver.first, "incident.resolved", opened), 3600, "resolved"
                    )
                elapsed = time.monotonic() - since
                outcome.bytes_per_day = [
                    (_traffic(p) - before) * 86400 / elapsed
                    for p, before in zip(probes, spent, strict=True)
                ]
                outcome.unverified = receiver.unverified
            finally:
                for probe in probes:
                    await probe.stop()
                await collector.stop()
                await receiver.close()
    return outcome


def summary(mode: str, outcome: Outcome) -> str:
    if not outcome.latencies:
        return f"{mode:<8} no onsets"
    latencies = outcome.latencies
    data = statistics.median(outcome.bytes_per_day) / 1e6 if outcome.bytes_per_day else 0.0
    return (f"{mode:<8} onsets {len(latencies):>3}  median {statistics.median(latencies):6.1f} s"
            f"  max {max(latencies):6.1f} s  min {min(latencies):6.1f} s"
            f"  data per probe {data:6.1f} MB/day  unverified webhooks {outcome.unverified}")  # fmt: skip


async def run_all(
    modes: list[str], phases: list[float], outside: int, count: int, interval: float
) -> dict[str, Outcome]:
    runs = [
        run_mode(mode, phases[:outside] if mode == "outside" else phases, count, interval)
        for mode in modes
    ]
    return dict(zip(modes, await asyncio.gather(*runs), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--onsets", type=int, default=10)
    parser.add_argument(
        "--outside-onsets", type=int, default=None,
        help="fewer onsets for the slow default schedule (default: --onsets)",
    )  # fmt: skip
    parser.add_argument("--probes", type=int, default=6)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--modes", default="plain,window,outside")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    phases = [rng.random() for _ in range(args.onsets)]
    outside = args.onsets if args.outside_onsets is None else args.outside_onsets
    modes = args.modes.split(",")
    results = asyncio.run(run_all(modes, phases, outside, args.probes, args.interval))
    print(f"\nalert latency over real rounds ({args.probes} probes, one ASN, DNS NXDOMAIN):")
    for mode, outcome in results.items():
        print(summary(mode, outcome))
    print("goals: plain median < 60 s, max < 90 s; window median < 45 s, max < 90 s")


if __name__ == "__main__":
    main()
