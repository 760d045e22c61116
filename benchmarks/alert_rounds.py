"""Alert latency over real rounds, measured rather than derived.

Probe daemons (``censorwatch-probe run``, real processes) measure a loopback world on their
own schedules and upload to a real collector (``censorwatch serve``, SQLite, the detector
every second); a receiver verifies each signed webhook. Censorship (the network resolver
answering NXDOMAIN for web.telegram.org while the control resolver resolves it) is switched
on at a random moment; the time until a signed ``incident.opened`` for telegram arrives is
the latency. Then censorship is lifted and the run waits for ``incident.resolved`` before the
next onset.

Two schedules, side by side when both are asked for:
- ``plain``: every probe measures messengers every ``--interval`` seconds (default 30);
- ``window``: probes on the default schedule (messengers every 300 s), inside a watch window
  the collector hands out at check-in (messengers every 30 s).

    python -m benchmarks.alert_rounds [--onsets 10] [--probes 6] [--modes plain,window]
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
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from collector.demo.servers import PKI, Answer, NXDomain
from collector.demo.servers.base import free_port
from lab.harness.daemons import Collector, Probe, probe_config, request, until
from lab.harness.loopback import TRUTH, World, world
from probe.daemon.state import StateDir

SERVICE_HOST = "web.telegram.org"
LOOPBACK_TABLE = "127.0.0.0\t127.255.255.255\t64500\tKZ\tLoopback Telecom\n"


class Receiver:
    """Collects the incident changes the collector sends, with their arrival times."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append((time.monotonic(), json.loads(await request.read())))
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
            incident = body.get("data", {}).get("incident", body.get("incident", {}))
            if at >= after and body.get("type") == kind and incident.get("service") == "telegram":
                return at
        return None


async def _admin(collector: Collector, method: str, path: str, body: Any) -> Any:
    status, answer = await request(
        method, collector.url + path, json.dumps(body).encode(),
        {**collector.admin(), "Content-Type": "application/json"},
    )  # fmt: skip
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {answer[:300]!r}")
    return json.loads(answer) if answer else None


async def _start_probes(
    internet: World, collector: Collector, directory: Path, count: int, mode: str, interval: float
) -> list[Probe]:
    probes = []
    for i in range(count):
        home = directory / f"probe{i}"
        home.mkdir()
        if mode == "plain":
            config = probe_config(
                internet, home, interval_seconds=interval, jitter_seconds=interval
            )
            text = config.read_text().replace(
                "[schedule]", f"[schedule]\ncategories = {{ messenger = {interval} }}"
            )
        else:
            config = probe_config(internet, home, interval_seconds=900.0, jitter_seconds=60.0)
            text = config.read_text().replace(
                "[schedule]", "[schedule]\ncategories = { messenger = 300.0 }"
            )
        config.write_text(text.replace("check_in_seconds = 2.0", "check_in_seconds = 30.0"))
        probe = Probe(collector.url, home / "state", config)
        await probe.start()
        probes.append(probe)
    for probe in probes:  # vetted: the benchmark's probes are known good, so one voice each
        state = StateDir(probe.state)
        await until(partial(state.credentials, collector.url), 60, "enrolled")
        credentials = state.credentials(collector.url)
        assert credentials is not None
        await _admin(collector, "PATCH", f"/api/v1/probes/{credentials.probe_id}", {"vetted": True})
    return probes


async def run_mode(mode: str, onsets: int, count: int, interval: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"cw-rounds-{mode}-") as tmp:
        root = Path(tmp)
        table = root / "ip2asn.tsv"
        table.write_text(LOOPBACK_TABLE)
        settings = {"CENSORWATCH_IP_ASN_DB": str(table), "CENSORWATCH_ALERT_INTERVAL_SECONDS": "1",
                    "CENSORWATCH_DELIVERY_INTERVAL_SECONDS": "0.5"}  # fmt: skip
        receiver = Receiver()
        await receiver.start()
        async with world(PKI(root / "pki"), root) as internet:
            collector = Collector(root, settings)
            await collector.start()
            try:
                await _admin(collector, "POST", "/api/v1/subscribers",
                             {"url": f"http://127.0.0.1:{receiver.port}/hook", "format": "json"})  # fmt: skip
                if mode == "window":
                    now = dt.datetime.now(dt.UTC)
                    await _admin(collector, "POST", "/api/v1/watch-windows", {
                        "cc": "KZ", "title": "Benchmark window", "start": now.isoformat(),
                        "end": (now + dt.timedelta(days=1)).isoformat()})  # fmt: skip
                probes = await _start_probes(internet, collector, root, count, mode, interval)
                await asyncio.sleep(interval * 2)  # a baseline of ok rounds first
                for n in range(onsets):
                    await asyncio.sleep(rng.uniform(0, interval))
                    internet.network_zone.set(SERVICE_HOST, NXDomain())
                    began = time.monotonic()
                    await until(partial(receiver.first, "incident.opened", began), 900, "opened")
                    opened = receiver.first("incident.opened", began)
                    assert opened is not None
                    latencies.append(opened - began)
                    print(f"  {mode} onset {n + 1}: alert after {opened - began:.1f} s", flush=True)
                    internet.network_zone.set(SERVICE_HOST, Answer((TRUTH[SERVICE_HOST],)))
                    await until(
                        partial(receiver.first, "incident.resolved", opened), 3600, "resolved"
                    )
                for probe in probes:
                    await probe.stop()
            finally:
                await collector.stop()
                await receiver.close()
    return latencies


def summary(mode: str, latencies: list[float]) -> str:
    if not latencies:
        return f"{mode:<8} no onsets"
    return (f"{mode:<8} onsets {len(latencies):>3}  median {statistics.median(latencies):6.1f} s"
            f"  max {max(latencies):6.1f} s  min {min(latencies):6.1f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onsets", type=int, default=10)
    parser.add_argument("--probes", type=int, default=6)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--modes", default="plain,window")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = {}
    for mode in args.modes.split(","):
        results[mode] = asyncio.run(
            run_mode(mode, args.onsets, args.probes, args.interval, args.seed)
        )
    print(f"\nalert latency over real rounds ({args.probes} probes, one ASN, DNS NXDOMAIN):")
    for mode, latencies in results.items():
        print(summary(mode, latencies))


if __name__ == "__main__":
    main()
