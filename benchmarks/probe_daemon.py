"""The probe daemon's resource figures (prints figures, asserts nothing).

    python -m benchmarks.probe_daemon            # about two minutes on two cores
    python -m benchmarks.probe_daemon --quick    # shorter CPU windows
    python -m benchmarks.probe_daemon --probe-command /usr/bin/censorwatch-probe   # as installed

Everything runs on loopback: a real collector (``censorwatch serve`` on SQLite), the loopback
internet of ``tests/probe/loopback.py`` (DNS, DoH, TLS, TCP, HTTP servers from ``collector.demo.servers``)
and ``censorwatch-probe run`` as a subprocess, measured with psutil.

- idle RSS: the daemon after enrolment, check-in and its first round, waiting (goal < 60 MB)
- round RSS: peak RSS while it measures a list the size of the default one (11 judged
  services, 3 controls, 17 endpoints) — sampled every 10 ms
- CPU per hour at the default schedule (900 s, messengers every 300 s): the schedule is run
  100× faster (9 s / 3 s) for a window, and the CPU seconds spent are divided by the hours of
  default schedule that window stands for; the idle cost (timers, upload polls) is measured
  separately over a window with no rounds and scaled by wall time, then added
- spool throughput: measurements committed (synchronous=FULL, one transaction per round of 14)
  and uploaded to the real collector (batches of 500, gzipped NDJSON) per second, in process
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from collector.demo.servers import PKI
from lab.harness.daemons import Collector, Probe, probe_config, until
from lab.harness.loopback import DC, World, world
from lab.harness.samples import measurement
from probe.daemon.client import CollectorClient
from probe.daemon.spool import Spool
from probe.daemon.upload import Uploader

SPEEDUP = 100
MESSENGERS = ("whatsapp", "telegram", "signal", "messenger")
OTHERS = ("facebook", "instagram", "youtube", "x", "tiktok", "vk", "news")


def default_like_targets(w: World) -> str:
    """11 services and 3 controls, like the shipped list, all served by the loopback world."""
    blocks = []
    for name in MESSENGERS + OTHERS:
        category = "messenger" if name in MESSENGERS else "social"
        blocks.append(
            f'[[services]]\nname = "{name}"\ncategory = "{category}"\n'
            f'[[services.endpoints]]\nhost = "web.telegram.org"\nport = {w.tls_port}\n'
        )
    for extra in ("telegram", "whatsapp", "signal"):
        blocks[MESSENGERS.index(extra)] += (
            f'[[services.endpoints]]\nip = "{DC}"\nport = {w.tcp_port}\ntls = false\n'
        )
    for name, host in (("control_a", "control-a.test"), ("control_b", "control-b.test")):
        blocks.append(
            f'[[services]]\nname = "{name}"\ncategory = "control"\n'
            f'[[services.endpoints]]\nhost = "{host}"\nport = {w.tls_port}\n'
        )
    blocks.append(
        f'[[services]]\nname = "control_c"\ncategory = "control"\n'
        f'[[services.endpoints]]\nhost = "control-a.test"\nport = {w.tls_port}\n'
    )
    return "\n".join(blocks)


def configure(w: World, directory: Path, interval: float, messenger: float) -> Path:
    targets = directory / "default-like.toml"
    targets.write_text(default_like_targets(w))
    path = probe_config(w, directory, interval_seconds=interval, jitter_seconds=0.0)
    text = path.read_text().replace(f'targets = "{w.targets}"', f'targets = "{targets}"')
    text = text.replace("check_in_seconds = 2.0", "check_in_seconds = 3600")
    text = text.replace("idle_seconds = 0.3", "idle_seconds = 60")  # the default
    text = text.replace("[upload]", f"categories = {{ messenger = {messenger} }}\n[upload]")
    path.write_text(text)
    return path


class InstalledProbe(Probe):
    """``censorwatch-probe run`` through an installed command (the Debian package's, pipx's)."""

    def __init__(self, command: str, collector_url: str, state: Path, config: Path) -> None:
        super().__init__(collector_url, state, config)
        self.argv = [command, *self.argv[3:]]  # instead of ``python -m probe.cli``


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def sample_peak(process: psutil.Process, seconds: float) -> float:
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.01)
    return peak / 2**20


async def daemon_figures(
    w: World,
    collector: Collector,
    root: Path,
    window: float,
    make_probe: Callable[[str, Path, Path], Probe] = Probe,
) -> None:
    # Idle and one round: a schedule so long that only the first round runs.
    config = configure(w, root, interval=3600, messenger=3600)
    probe = make_probe(collector.url, root / "idle-state", config)
    await probe.start()
    assert probe.process is not None
    ps = psutil.Process(probe.process.pid)
    peak = await sample_peak(ps, 0.2)
    await until(lambda: "round:" in probe.output(), 60, "first round")
    await asyncio.sleep(2)
    idle_rss = ps.memory_info().rss / 2**20
    before = cpu(ps)
    await asyncio.sleep(window)
    idle_cpu_hour = (cpu(ps) - before) * 3600 / window
    await probe.stop()
    print(f"idle RSS                     {idle_rss:6.1f} MB   (goal < 60 MB)")
    print(f"idle CPU                     {idle_cpu_hour:6.2f} s/h (over {window:.0f} s, scaled)")

    config = configure(w, root, interval=900 / SPEEDUP, messenger=300 / SPEEDUP)
    probe = make_probe(collector.url, root / "busy-state", config)
    await probe.start()
    assert probe.process is not None
    ps = psutil.Process(probe.process.pid)
    await until(lambda: "round:" in probe.output(), 60, "first round")
    before, started = cpu(ps), time.monotonic()
    peak = max(peak, await sample_peak(ps, window))
    spent, elapsed = cpu(ps) - before, time.monotonic() - started
    rounds = probe.output().count("round:")
    await probe.stop()
    default_hours = elapsed * SPEEDUP / 3600
    work_per_hour = max(0.0, spent - idle_cpu_hour * elapsed / 3600) / default_hours
    print(f"RSS during rounds (peak)     {peak:6.1f} MB   (14 services, 17 endpoints)")
    print(
        f"CPU at the default schedule  {work_per_hour + idle_cpu_hour:6.2f} s/h "
        f"({spent:.1f} s CPU over {elapsed:.0f} s at {SPEEDUP}x = {default_hours:.2f} h of "
        f"schedule, {rounds} rounds; idle share {idle_cpu_hour:.2f} s/h)"
    )


async def spool_figures(collector: Collector, root: Path, count: int) -> None:
    spool = Spool(root / "bench-spool.sqlite3")
    samples = [measurement(service=random.choice(("telegram", "whatsapp"))) for _ in range(count)]
    started = time.perf_counter()
    for i in range(0, count, 14):
        spool.add(samples[i : i + 14])
    written = count / (time.perf_counter() - started)
    client = CollectorClient(collector.url)
    try:
        enrolment = await client.enrol(None)
        uploader = Uploader(spool, client, enrolment.token, batch_size=500)
        started = time.perf_counter()
        while spool.depth():
            outcome = await uploader.step()
            assert outcome.wait is None, outcome.error
        uploaded = count / (time.perf_counter() - started)
    finally:
        await client.close()
        spool.close()
    print(f"spool writes                 {written:8.0f} measurements/s (rounds of 14, fsync each)")
    print(f"uploads                      {uploaded:8.0f} measurements/s (batches of 500, SQLite)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s windows, 2,000 measurements")
    parser.add_argument(
        "--probe-command",
        metavar="PATH",
        help="measure this installed censorwatch-probe instead of the checkout's",
    )
    args = parser.parse_args()
    make_probe: Callable[[str, Path, Path], Probe] = Probe
    if args.probe_command:
        command = args.probe_command
        print(f"probe: {command}")

        def make_probe(url: str, state: Path, config: Path) -> Probe:
            return InstalledProbe(command, url, state, config)

    window, count = (10.0, 2000) if args.quick else (30.0, 10_000)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        async with world(PKI(root / "pki"), root) as w:
            collector = Collector(root)
            await collector.start()
            try:
                await daemon_figures(w, collector, root, window, make_probe)
                await spool_figures(collector, root, count)
            finally:
                await collector.stop()


if __name__ == "__main__":
    asyncio.run(main())
