"""Probe throughput on loopback: full checks per second and peak RSS, beside the ceiling of a
plain asyncio loop and beside prometheus-blackbox-exporter, per operation type.

    python -m benchmarks.probe_throughput [--endpoints 1000] [--concurrency 50 200]

Servers (two DNS servers answering every bench name with a 127.0.1.x address, TLS servers on
those addresses with a wildcard certificate from the lab CA) run as a separate process,
``python -m collector.demo.servers CONFIG``, so that clients and servers never share an event loop.
For each concurrency it measures, one after the other on the same servers:

- ``censorwatch-probe check … --json`` as a subprocess: wall time, peak RSS (``wait4``), and
  the endpoint verdicts from its JSON (all should be ``ok``);
- a plain asyncio loop doing the same DNS (dnspython UDP, network and control resolver),
  TCP connect and TLS handshake per endpoint, with no analysis: the ceiling for Python; and
  again with the handshake with a control SNI that the probe makes first on every address;
- each operation type alone (dns, tcp, tls), 1 per endpoint, through the probe's network
  seam (``SocketNetwork``) and through blackbox_exporter's ``/probe`` endpoint.

Figures are printed, never asserted. Two CPUs are shared by the servers, the client under
test and (for its rows) blackbox_exporter, so the CPU columns say who was the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import psutil

from lab.paths import REPO_ROOT
from probe.measure.network import Exchange, Resolver
from probe.measure.sockets import SocketNetwork, Timing
from probe.targets import DEFAULT_CONTROL_SNI

ROOT: Final = REPO_ROOT
DOMAIN: Final = "bench.test"
NETWORK_DNS: Final = "127.0.0.53"
CONTROL_DNS: Final = "127.0.0.54"
TIMEOUT: Final = 5.0
GOAL_PLAIN: Final = 0.70
GOAL_BLACKBOX: Final = 0.8
GOAL_RSS_MB: Final = 100.0
OPERATIONS: Final = ("dns", "tcp", "tls")
RUNNERS: Final = (
    ("censorwatch-probe check", "probe"),
    ("plain asyncio loop", "plain"),
    ("plain, + control SNI", "plain+control"),
)


# -- the bench world -----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    service: str
    host: str
    ip: str
    port: int = 0


@dataclass
class World:
    """Names, addresses and the running servers' ports."""

    directory: Path
    endpoints: list[Endpoint]
    controls: list[Endpoint]
    tls_hosts: list[str]
    network_port: int = 0
    control_port: int = 0
    tls_ports: dict[str, int] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        return self.directory / "pki" / "lab-ca.pem"

    @property
    def targets_file(self) -> Path:
        return self.directory / "targets.toml"

    def port_of(self, endpoint: Endpoint) -> int:
        return self.tls_ports[endpoint.ip]


def make_world(directory: Path, count: int, per_service: int, addresses: int) -> World:
    hosts = [f"127.0.1.{i + 1}" for i in range(addresses)]
    endpoints = [
        Endpoint(
            f"svc{i // per_service}",
            f"svc{i // per_service}-ep{i % per_service}.{DOMAIN}",
            hosts[i % addresses],
        )
        for i in range(count)
    ]
    controls = [Endpoint(f"control-{c}", f"ctl-{c}.{DOMAIN}", hosts[i]) for i, c in enumerate("ab")]
    return World(directory, endpoints, controls, hosts)


def server_config(world: World) -> dict[str, Any]:
    names = {
        e.host: {"action": "answer", "ips": [e.ip], "ttl": 300}
        for e in world.endpoints + world.controls
    }
    dns_servers = [
        {"kind": "dns", "host": host, "port": 0, "zone": "bench"}
        for host in (NETWORK_DNS, CONTROL_DNS)
    ]
    tls_servers = [
        {"kind": "tls", "host": host, "port": 0, "default_names": [f"*.{DOMAIN}"]}
        for host in world.tls_hosts
    ]
    return {
        "pki": "pki",
        "zones": {"bench": {"default": "nxdomain", "names": names}},
        "servers": dns_servers + tls_servers,
    }


def target_list(world: World) -> str:
    lines: list[str] = []
    services: dict[str, list[Endpoint]] = {}
    for e in world.controls + world.endpoints:
        services.setdefault(e.service, []).append(e)
    for name, endpoints in services.items():
        category = "control" if name.startswith("control") else "bench"
        lines += ["[[services]]", f'name = "{name}"', f'title = "{name}"']
        lines.append(f'category = "{category}"')
        for e in endpoints:
            lines += ["[[services.endpoints]]", f'host = "{e.host}"', f"port = {world.port_of(e)}"]
            lines.append("tls = true")
        lines.append("")
    return "\n".join(lines)


@contextlib.contextmanager
def servers(world: World) -> Iterator[psutil.Process]:
    config = world.directory / "servers.json"
    config.write_text(json.dumps(server_config(world)))
    process = subprocess.Popen(
        [sys.executable, "-m", "collector.demo.servers", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline() or "{}").get("ready")
        if not ready:
            raise SystemExit(f"lab servers did not start (exit {process.wait()})")
        ports = [s["port"] for s in ready]
        world.network_port, world.control_port = ports[0], ports[1]
        world.tls_ports = dict(zip(world.tls_hosts, ports[2:], strict=True))
        world.targets_file.write_text(target_list(world))
        yield psutil.Process(process.pid)
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- measurements --------------------------------------------------------------------------


@dataclass
class Result:
    operations: int
    ok: int
    wall: float
    client_cpu: float  # CPU seconds of the client under test (blackbox rows: the exporter)
    server_cpu: float
    peak_rss_mb: float | None = None
    verdicts: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall else 0.0


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def probe_command() -> str:
    beside = Path(sys.executable).parent / "censorwatch-probe"
    found = str(beside) if beside.exists() else shutil.which("censorwatch-probe")
    if found is None:
        raise SystemExit("censorwatch-probe not found: pip install -e . first")
    return found


# A child's ru_maxrss includes the memory of the process it was started from (Linux keeps the
# high-water mark across exec), so a small fresh process starts the probe, not this script.
_LAUNCHER: Final = """
import json, os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss}, out)  # ru_maxrss is in kilobytes on Linux
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_probe(world: World, server: psutil.Process, concurrency: int) -> Result:
    """The whole ``censorwatch-probe check`` process: start-up, checks, analysis, JSON."""
    command = [
        probe_command(), "check",
        "--targets", str(world.targets_file),
        "--resolver", f"{NETWORK_DNS}:{world.network_port}",
        "--control-resolver", f"udp://{CONTROL_DNS}:{world.control_port}",
        "--ca-file", str(world.ca_file),
        "--timeout", str(TIMEOUT),
        "--concurrency", str(concurrency),
        "--json",
    ]  # fmt: skip
    output = world.directory / f"probe-{concurrency}.json"
    errors = world.directory / "probe-stderr.txt"
    usage = world.directory / "probe-usage.json"
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(usage)]
    server_before = cpu_seconds(server)
    with output.open("wb") as stdout, errors.open("wb") as stderr:
        status = run_group(launcher + command, stdout, stderr)
    if status != 0:
        raise SystemExit(f"censorwatch-probe exited {status}: {errors.read_text()}")
    spent = json.loads(usage.read_text())
    verdicts, steps = read_report(output)
    return Result(
        operations=len(world.endpoints),
        ok=verdicts["ok"],
        wall=spent["wall"],
        client_cpu=spent["cpu"],
        server_cpu=cpu_seconds(server) - server_before,
        peak_rss_mb=spent["maxrss_kb"] / 1024,
        verdicts=verdicts,
        steps=steps,
    )


def run_group(command: list[str], stdout: IO[bytes], stderr: IO[bytes]) -> int:
    """Run ``command`` in its own process group, and kill the group if we are interrupted."""
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        return process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def read_report(path: Path) -> tuple[Counter[str], Counter[str]]:
    """Endpoint verdicts of the judged services, and what the probe did (observations)."""
    document = json.loads(path.read_bytes())
    verdicts: Counter[str] = Counter(
        endpoint["verdict"]
        for service in document["services"]
        if service["category"] != "control"
        for endpoint in service["endpoints"]
    )
    steps: Counter[str] = Counter(
        f"{o['step']}:{o.get('operation', '')}" if o["step"] == "control" else o["step"]
        for m in document["measurements"]
        if m["category"] != "control"
        for o in m["observations"]
    )
    return verdicts, steps


async def timed(
    server: psutil.Process, jobs: list[Awaitable[bool]], extra: psutil.Process | None = None
) -> Result:
    """Run ``jobs`` (each True on success), timing them and counting CPU on both sides;
    ``extra`` is the process doing the client's work when it is not this one."""
    me = psutil.Process()
    before = [cpu_seconds(p) for p in (me, server, extra) if p is not None]
    started = time.perf_counter()
    outcomes = await asyncio.gather(*jobs)
    wall = time.perf_counter() - started
    after = [cpu_seconds(p) for p in (me, server, extra) if p is not None]
    spent = [a - b for a, b in zip(after, before, strict=True)]
    client = spent[2] if extra is not None else spent[0]  # the exporter, not our HTTP driver
    return Result(len(jobs), sum(outcomes), wall, client, spent[1])


def limited(semaphore: asyncio.Semaphore) -> Callable[[Awaitable[Any]], Awaitable[Any]]:
    async def run(work: Awaitable[Any]) -> Any:
        async with semaphore:
            return await work

    return run


# -- (a) the plain asyncio loop ------------------------------------------------------------


async def plain_loop(
    world: World, server: psutil.Process, concurrency: int, control_sni: str | None = None
) -> Result:
    """Per endpoint: both UDP queries at once, then connect and handshake to the answer; with
    ``control_sni``, first a handshake with that name (chain verified only), as the probe does
    before it ever sends the service's name to an address."""
    slot = limited(asyncio.Semaphore(concurrency))
    verify_name = ssl.create_default_context(cafile=str(world.ca_file))
    verify_chain = ssl.create_default_context(cafile=str(world.ca_file))
    verify_chain.check_hostname = False
    resolvers = [(NETWORK_DNS, world.network_port), (CONTROL_DNS, world.control_port)]

    async def query(host: str, resolver: tuple[str, int]) -> list[str]:
        message = dns.message.make_query(host, "A")
        reply = await slot(dns.asyncquery.udp(message, resolver[0], TIMEOUT, resolver[1]))
        return [r.to_text() for rrset in reply.answer for r in rrset]

    async def handshake(host: str, ip: str, port: int, context: ssl.SSLContext) -> None:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(ip, port, ssl=context, server_hostname=host), TIMEOUT
        )
        writer.transport.abort()

    async def check(e: Endpoint) -> bool:
        try:
            network, control = await asyncio.gather(*(query(e.host, r) for r in resolvers))
            if control_sni is not None:
                await slot(handshake(control_sni, network[0], world.port_of(e), verify_chain))
            await slot(handshake(e.host, network[0], world.port_of(e), verify_name))
        except (OSError, TimeoutError, IndexError, dns.exception.DNSException):
            return False
        return bool(control)

    return await timed(server, [check(e) for e in world.endpoints])


# -- (b) one operation type through the probe's seam ---------------------------------------


async def seam_operations(
    world: World, server: psutil.Process, concurrency: int, operation: str
) -> Result:
    network = SocketNetwork(Timing(timeout=TIMEOUT), world.ca_file)
    slot = limited(asyncio.Semaphore(concurrency))
    resolver = Resolver("udp", NETWORK_DNS, world.network_port)
    origin = network.clock()
    lingering: list[Awaitable[Any]] = []

    async def resolve(e: Endpoint) -> bool:
        resolution = await slot(network.resolve(resolver, e.host, "network", origin))
        lingering.append(resolution.settled())  # the injection window, outside the semaphore
        return resolution.first.failure is None

    async def connect(e: Endpoint) -> bool:
        tls = operation == "tls"
        request = Exchange(ip=e.ip, port=world.port_of(e), tls=tls, sni=e.host if tls else None)
        tcp, handshake, _ = await slot(network.exchange(request, origin))
        if not tls:
            return tcp.failure is None
        return handshake is not None and handshake.failure is None and bool(handshake.verified)

    step = resolve if operation == "dns" else connect
    try:
        result = await timed(server, [step(e) for e in world.endpoints])
        await asyncio.gather(*lingering)  # not timed: sockets held open 0.25 s for late answers
    finally:
        await network.close()
    return result


# -- (c) blackbox_exporter -----------------------------------------------------------------


def blackbox_config(world: World) -> str:
    """One module per name: blackbox_exporter takes the DNS query name and the TLS server
    name from the module, not from the probe request."""
    ip = "      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
    modules = [f"  tcp:\n    prober: tcp\n    timeout: {TIMEOUT:g}s\n    tcp:\n{ip}"]
    for i, e in enumerate(world.endpoints):
        modules.append(
            f"  dns_{i}:\n    prober: dns\n    timeout: {TIMEOUT:g}s\n    dns:\n{ip}"
            f"      transport_protocol: udp\n      query_name: {e.host}\n      query_type: A\n"
            f"      valid_rcodes: [NOERROR]\n"
            f"      validate_answer_rrs:\n        fail_if_none_matches_regexp: ['.*IN\\s+A\\s+.*']\n"
        )
        modules.append(
            f"  tls_{i}:\n    prober: tcp\n    timeout: {TIMEOUT:g}s\n    tcp:\n{ip}"
            f"      tls: true\n      tls_config:\n        ca_file: {world.ca_file}\n"
            f"        server_name: {e.host}\n"
        )
    return "modules:\n" + "".join(modules)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def blackbox(world: World) -> Iterator[tuple[psutil.Process, str]]:
    binary = shutil.which("prometheus-blackbox-exporter")
    if binary is None:
        raise SystemExit("prometheus-blackbox-exporter not found (apt-get install it)")
    config = world.directory / "blackbox.yml"
    config.write_text(blackbox_config(world))
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address={address}", "--log.level=warn"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(address, process)
        yield psutil.Process(process.pid), f"http://{address}/probe"
    finally:
        stop(process)


def wait_listening(address: str, process: subprocess.Popen[Any]) -> None:
    host, port = address.split(":")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"blackbox_exporter exited {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit("blackbox_exporter did not start listening")


def blackbox_requests(world: World, operation: str) -> list[dict[str, str]]:
    def target(e: Endpoint) -> str:
        return f"{e.ip}:{world.port_of(e)}"

    dns_target = f"{NETWORK_DNS}:{world.network_port}"
    return [
        {"module": f"dns_{i}", "target": dns_target}
        if operation == "dns"
        else {"module": "tcp" if operation == "tcp" else f"tls_{i}", "target": target(e)}
        for i, e in enumerate(world.endpoints)
    ]


async def blackbox_operations(
    world: World,
    server: psutil.Process,
    exporter: tuple[psutil.Process, str],
    concurrency: int,
    operation: str,
) -> Result:
    process, url = exporter
    slot = limited(asyncio.Semaphore(concurrency))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def probe(params: dict[str, str]) -> bool:
            async def get() -> str:
                async with session.get(url, params=params) as reply:
                    return await reply.text()

            body = await slot(get())
            return "\nprobe_success 1\n" in f"\n{body}"

        return await timed(
            server, [probe(p) for p in blackbox_requests(world, operation)], extra=process
        )


# -- the run -------------------------------------------------------------------------------

Row = tuple[int, str]  # (concurrency, what): "probe", "plain", "seam dns", "blackbox dns", …


async def warm_up(
    world: World, server: psutil.Process, exporter: tuple[psutil.Process, str]
) -> None:
    """Let the servers issue their certificate and every cache fill before timing anything."""
    few = World(
        world.directory,
        world.endpoints[:20],
        [],
        world.tls_hosts,
        world.network_port,
        world.control_port,
        world.tls_ports,
    )
    await plain_loop(few, server, 10)
    for operation in OPERATIONS:
        await seam_operations(few, server, 10, operation)
        await blackbox_operations(few, server, exporter, 10, operation)


def measure(
    world: World, server: psutil.Process, exporter: tuple[psutil.Process, str], concurrency: int
) -> dict[Row, Result]:
    """One pass of every runner, back to back, so that each sees the same machine."""
    results = {
        (concurrency, "probe"): run_probe(world, server, concurrency),
        (concurrency, "plain"): asyncio.run(plain_loop(world, server, concurrency)),
        (concurrency, "plain+control"): asyncio.run(
            plain_loop(world, server, concurrency, DEFAULT_CONTROL_SNI)
        ),
    }
    for op in OPERATIONS:
        seam = seam_operations(world, server, concurrency, op)
        results[concurrency, f"seam {op}"] = asyncio.run(seam)
        bb = blackbox_operations(world, server, exporter, concurrency, op)
        results[concurrency, f"blackbox {op}"] = asyncio.run(bb)
    return results


def startup_seconds() -> float:
    """Interpreter start and imports of the probe, part of every ``check`` wall time."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([probe_command(), "--version"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


# -- the report ----------------------------------------------------------------------------


@dataclass
class Samples:
    """Every pass's result per row; the machine may be shared, so the best pass is reported
    (the least disturbed one) and the range shows how much the passes differed."""

    runs: dict[Row, list[Result]] = field(default_factory=dict)

    def add(self, results: dict[Row, Result]) -> None:
        for row, result in results.items():
            self.runs.setdefault(row, []).append(result)

    def best(self, row: Row) -> Result:
        return max(self.runs[row], key=lambda r: r.rate)

    def spread(self, row: Row) -> str:
        rates = [r.rate for r in self.runs[row]]
        return f"{min(rates):.0f}-{max(rates):.0f}"

    def peak_rss(self, concurrency: int) -> float:
        return max(r.peak_rss_mb or 0.0 for r in self.runs[concurrency, "probe"])

    def verdicts(self, concurrency: int) -> Counter[str]:
        return sum((r.verdicts for r in self.runs[concurrency, "probe"]), Counter())


def percent(cpu: float, wall: float) -> str:
    return f"{100 * cpu / wall:.0f}%" if wall else "-"


def goal(met: bool) -> str:
    return "met" if met else "MISSED"


def print_header(world: World, passes: int, load: tuple[float, float]) -> None:
    services = len({e.service for e in world.endpoints})
    print(
        f"\nprobe_throughput: {len(world.endpoints)} endpoints ({services} services + "
        f"{len(world.controls)} control services), {len(world.tls_hosts)} TLS server addresses;"
        f" Python {platform.python_version()}, {os.cpu_count()} CPUs, load average"
        f" {load[0]:.1f} before / {load[1]:.1f} after; servers: python -m collector.demo.servers (one"
        f" process); best of {passes} passes (range in brackets)\n"
    )


def print_full_checks(samples: Samples, concurrencies: list[int], startup: float) -> None:
    print("Full checks per endpoint (DNS network + control resolver, TCP, TLS; probe: + analysis)")
    print(
        f"{'conc':>4}  {'runner':<24} {'checks/s':>8} {'(range)':>11} {'ok':>9} {'wall s':>6}"
        f" {'peak RSS':>8} {'client CPU':>10} {'CPU ms/check':>12} {'server CPU':>10}"
    )
    for c in concurrencies:
        for name, row in RUNNERS:
            r = samples.best((c, row))
            rss = f"{samples.peak_rss(c):.0f} MB" if row == "probe" else "-"
            print(
                f"{c:>4}  {name:<24} {r.rate:>8.0f} {f'({samples.spread((c, row))})':>11}"
                f" {f'{r.ok}/{r.operations}':>9} {r.wall:>6.2f} {rss:>8}"
                f" {percent(r.client_cpu, r.wall):>10} {1000 * r.client_cpu / r.operations:>12.2f}"
                f" {percent(r.server_cpu, r.wall):>10}"
            )
        probe = samples.best((c, "probe"))
        for name, row in RUNNERS[1:]:
            plain = samples.best((c, row)).rate
            ratio = probe.rate / plain if plain else 0.0
            warm = probe.ok / (probe.wall - startup) / plain if plain else 0.0
            print(
                f"{'':>4}  probe / {name}: {ratio:.0%} (goal >= {GOAL_PLAIN:.0%}:"
                f" {goal(ratio >= GOAL_PLAIN)}); {warm:.0%} without the probe's {startup:.2f} s start-up"
            )
    print()


def print_operations(samples: Samples, concurrencies: list[int]) -> None:
    print(
        "One operation type alone, once per endpoint: the probe's SocketNetwork seam vs blackbox_exporter /probe"
    )
    print(
        f"{'conc':>4}  {'op':<4} {'seam ops/s':>10} {'(range)':>11} {'blackbox ops/s':>14}"
        f" {'(range)':>11} {'ratio':>6}  {f'goal >= {GOAL_BLACKBOX}x':<13} {'ok seam/bb':>19}"
        f"  {'client CPU seam/bb':>18}  {'server CPU seam/bb':>18}"
    )
    for c in concurrencies:
        for op in OPERATIONS:
            s, b = samples.best((c, f"seam {op}")), samples.best((c, f"blackbox {op}"))
            ratio = s.rate / b.rate if b.rate else 0.0
            ok = f"{s.ok}/{s.operations} {b.ok}/{b.operations}"
            cpu = f"{percent(s.client_cpu, s.wall)} / {percent(b.client_cpu, b.wall)}"
            server = f"{percent(s.server_cpu, s.wall)} / {percent(b.server_cpu, b.wall)}"
            seam_range = f"({samples.spread((c, f'seam {op}'))})"
            bb_range = f"({samples.spread((c, f'blackbox {op}'))})"
            print(
                f"{c:>4}  {op:<4} {s.rate:>10.0f} {seam_range:>11}"
                f" {b.rate:>14.0f} {bb_range:>11}"
                f" {ratio:>5.2f}x  {goal(ratio >= GOAL_BLACKBOX):<13} {ok:>19}"
                f"  {cpu:>18}  {server:>18}"
            )
    print()


def print_verdicts(samples: Samples, concurrencies: list[int], endpoints: int) -> None:
    for c in concurrencies:
        runs = samples.runs[c, "probe"]
        verdicts = samples.verdicts(c)
        counts = ", ".join(f"{v} {n}" for v, n in verdicts.most_common())
        not_ok = endpoints * len(runs) - verdicts["ok"]
        steps: Counter[str] = sum((r.steps for r in runs), Counter())
        per = ", ".join(f"{k} {n / (endpoints * len(runs)):.2f}" for k, n in sorted(steps.items()))
        print(
            f"concurrency {c}: endpoint verdicts over {len(runs)} runs: {counts}; not ok: {not_ok}"
        )
        print(
            f"  probe observations per endpoint: {per} (plain loop: dns 2, tcp 1, tls 1;"
            " + control SNI: tcp 2, tls 2)"
        )
    top = max(concurrencies)
    rss = samples.peak_rss(top)
    print(
        f"peak RSS of censorwatch-probe at concurrency {top}: {rss:.0f} MB"
        f" (goal < {GOAL_RSS_MB:.0f} MB: {goal(rss < GOAL_RSS_MB)})"
    )
    print(
        "client CPU: the process under test (blackbox rows: the exporter; this script's HTTP"
        " client not counted); server CPU: the collector.demo.servers process; 100% = one core. CPU"
        " ms/check is the figure least disturbed by other load on the machine."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--endpoints", type=int, default=1000, help="judged endpoints (default 1000)"
    )
    parser.add_argument(
        "--per-service", type=int, default=10, help="endpoints per service (default 10)"
    )
    parser.add_argument("--addresses", type=int, default=8, help="TLS server addresses (default 8)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[50, 200], help="default: 50 200"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="passes; the best is reported (default 3)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and print it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that servers are stopped
    directory = Path(tempfile.mkdtemp(prefix="censorwatch-bench-"))
    samples = Samples()
    try:
        world = make_world(directory, args.endpoints, args.per_service, args.addresses)
        load_before = os.getloadavg()[0]
        with servers(world) as server, blackbox(world) as exporter:
            asyncio.run(warm_up(world, server, exporter))
            startup = startup_seconds()
            for i in range(args.repeat):
                for concurrency in args.concurrency:
                    print(
                        f"pass {i + 1}/{args.repeat}, concurrency {concurrency}…",
                        file=sys.stderr,
                        flush=True,
                    )
                    samples.add(measure(world, server, exporter, concurrency))
        print_header(world, args.repeat, (load_before, os.getloadavg()[0]))
        print_full_checks(samples, args.concurrency, startup)
        print_operations(samples, args.concurrency)
        print_verdicts(samples, args.concurrency, len(world.endpoints))
    finally:
        if args.keep:
            print(f"work directory: {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
