"""The lab's network: client, router (ISP and censor) and internet namespaces, made and unmade.

::

    client ns                  router ns                           internet ns
    192.168.77.10 eth0 ──veth── lan0 192.168.77.1         (each link and site also has an
    2a02:4e0:77::10              2a02:4e0:77::1            IPv6 address: a dual-stack lab)
    resolv.conf → 95.56.0.53     lo 95.56.0.53 (ISP resolver)
                                 iptables / tc / injector
                                 up0 95.56.255.1 ──────veth──────── eth0 95.56.255.2
                                                                    + one /32 per service
                                                                    (collector.demo.servers)

The veth pairs are created directly inside the namespaces: nothing is ever attached to the
host's own network, so nothing can leave the machine. ``up()`` first removes whatever a
killed run left behind (namespaces with the prefix, their processes, ``/etc/netns`` entries,
the state directory); ``down()`` does the same and may be called any number of times.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, Literal, Self

import dns.exception
import dns.message
import dns.query

from lab import plan
from lab.censor import Censor
from lab.internet import servers_config
from lab.netns import call_in
from lab.plan import Plan, default_plan
from lab.process import LabProcess, python_module
from lab.resolver import HEALTH_NAME
from lab.shell import CommandError, run, run_in

DEFAULT_PREFIX: Final = "cwlab-"
STATE_ROOT: Final = Path("/run/cwlab")
NETNS_ETC: Final = Path("/etc/netns")
ClientResolver = Literal["isp", "public"]
_RELOADED: Final = '"reloaded": true'
RESOLVERS: Final[dict[ClientResolver, str]] = {
    "isp": plan.ISP_RESOLVER_IP,
    "public": plan.PUBLIC_RESOLVER_IP,
}


class Topology:
    """The three namespaces, their links and routes, the ISP resolver and the servers."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, *, servers: bool = True) -> None:
        if not prefix or not prefix.replace("-", "").isalnum():
            raise ValueError(f"namespace prefix must be letters, digits and '-': {prefix!r}")
        self.prefix = prefix
        self.plan: Plan = default_plan(prefix)
        self.ns = self.plan.namespaces
        self.state_dir = STATE_ROOT / prefix.rstrip("-")
        self.censor = Censor(self.ns.router, self.state_dir)
        self.with_servers = servers
        self._daemons: list[LabProcess] = []
        self._servers: LabProcess | None = None

    @property
    def ca_file(self) -> Path:
        """The lab CA the probe must trust (``--ca-file``)."""
        return self.state_dir / "pki" / "lab-ca.pem"

    @property
    def control_resolver_url(self) -> str:
        return f"https://{plan.CONTROL_RESOLVER_IP}/dns-query"

    # Lifecycle ------------------------------------------------------------------------------
    def up(self) -> None:
        remove_stale(self.prefix)
        try:
            self.state_dir.mkdir(parents=True)
            self._create_namespaces()
            self._create_links()
            self._route()
            self.set_client_resolver("isp")
            self.censor.install()
            self._start_daemons()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        with contextlib.suppress(Exception):
            self.censor.clear_all()
        for daemon in reversed(self._daemons):
            daemon.stop()
        self._daemons.clear()
        self._servers = None
        remove_stale(self.prefix)

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def set_client_resolver(self, which: ClientResolver) -> None:
        """Point the client's resolv.conf at the ISP resolver or a distant public one."""
        directory = NETNS_ETC / self.ns.client
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(f"nameserver {RESOLVERS[which]}\n")

    # Building -------------------------------------------------------------------------------
    def _create_namespaces(self) -> None:
        for namespace in self.ns.all():
            run(["ip", "netns", "add", namespace])
            run_in(namespace, ["ip", "link", "set", "lo", "up"])
            for key in ("all", "default"):
                for setting in ("disable_ipv6=0", "accept_ra=0", "accept_dad=0"):
                    run_in(namespace, ["sysctl", "-qw", f"net.ipv6.conf.{key}.{setting}"])
        run_in(self.ns.router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        run_in(self.ns.router, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])

    def links(self) -> tuple[plan.Link, ...]:
        """The veth pairs to make (a topology with more routers adds its own)."""
        return self.plan.links

    def _create_links(self) -> None:
        for link in self.links():
            run(
                [
                    "ip",
                    "link",
                    "add",
                    link.left_if,
                    "netns",
                    link.left_ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    link.right_if,
                    "netns",
                    link.right_ns,
                ]
            )
            for namespace, interface, address in (
                (link.left_ns, link.left_if, link.left_ip),
                (link.right_ns, link.right_if, link.right_ip),
            ):
                run_in(
                    namespace,
                    ["ip", "addr", "add", f"{address}/{link.prefix}", "dev", interface],
                )
            for namespace, interface, address6 in (
                (link.left_ns, link.left_if, link.left_ip6),
                (link.right_ns, link.right_if, link.right_ip6),
            ):
                if address6:
                    _add_ipv6(namespace, f"{address6}/{link.prefix6}", interface)
                # One segment per packet, as on a wire. veth passes on the sender's
                # offload super-packets (up to 64 KiB) whole, and an htb class releases each
                # at once and then owes seconds of rate: a policer's steady rate would
                # arrive in lumps seconds apart.
                run_in(namespace, ["ip", "link", "set", interface, "gso_max_segs", "1"])
                run_in(namespace, ["ip", "link", "set", interface, "up"])

    def _route(self) -> None:
        ns = self.ns
        for address in self.plan.internet_addresses:
            run_in(ns.internet, ["ip", "addr", "add", f"{address}/32", "dev", plan.INTERNET_IF])
        run_in(ns.router, ["ip", "addr", "add", f"{plan.ISP_RESOLVER_IP}/32", "dev", "lo"])
        run_in(ns.client, ["ip", "route", "add", "default", "via", plan.ROUTER_LAN_IP])
        run_in(ns.router, ["ip", "route", "add", "default", "via", plan.INTERNET_UP_IP])
        run_in(ns.internet, ["ip", "route", "add", "default", "via", plan.ROUTER_UP_IP])
        for address6 in self.plan.internet_addresses6:
            _add_ipv6(ns.internet, f"{address6}/128", plan.INTERNET_IF)
        for namespace, gateway in (
            (ns.client, plan.ROUTER_LAN_IP6),
            (ns.router, plan.INTERNET_UP_IP6),
            (ns.internet, plan.ROUTER_UP_IP6),
        ):
            run_in(namespace, ["ip", "-6", "route", "add", "default", "via", gateway])

    def pace_origins(self, download_rates: Mapping[str, int]) -> None:
        """Serve downloads from these addresses at these bytes a second (slow origins), every
        other one at full speed: the servers re-read their config (SIGHUP)."""
        servers = self._servers
        if servers is None:
            raise RuntimeError("this lab runs no servers")
        self._write_servers_config(download_rates)
        done = servers.tail(10_000).count(_RELOADED)
        servers.signal(signal.SIGHUP)
        servers.wait_ready(lambda: servers.tail(10_000).count(_RELOADED) > done)

    def _write_servers_config(self, download_rates: Mapping[str, int]) -> None:
        config = servers_config(self.plan, str(self.state_dir / "pki"), download_rates)
        self._servers_config.write_text(json.dumps(config))

    @property
    def _servers_config(self) -> Path:
        return self.state_dir / "servers.json"

    def _start_daemons(self) -> None:
        logs = self.state_dir / "logs"
        if self.with_servers:
            self._write_servers_config({})
            servers = LabProcess(
                "servers",
                self.ns.internet,
                python_module("collector.demo.servers", str(self._servers_config)),
                logs,
            )
            self._start(servers, lambda: '"ready"' in servers.tail(200))
            self._servers = servers
            self.censor.pace_origins = self.pace_origins
        resolver = LabProcess(
            "isp-resolver",
            self.ns.router,
            python_module(
                "lab.resolver",
                *("--listen", plan.ISP_RESOLVER_IP, "--upstream", plan.FAR_RESOLVER_IP),
                *("--policy", str(self.censor.policy_file)),
            ),
            logs,
        )
        self._start(resolver, lambda: dns_answers(self.ns.router, plan.ISP_RESOLVER_IP))

    def _start(self, daemon: LabProcess, ready: Callable[[], bool]) -> None:
        self._daemons.append(daemon)
        daemon.start()
        daemon.wait_ready(ready)


def _add_ipv6(namespace: str, address: str, interface: str) -> None:
    """Without duplicate address detection: the address is usable at once, not in seconds."""
    run_in(namespace, ["ip", "-6", "addr", "add", address, "dev", interface, "nodad"])


def dns_answers(namespace: str, server: str) -> bool:
    """Whether a resolver in ``namespace`` answers its health query yet."""

    def ask() -> bool:
        query = dns.message.make_query(HEALTH_NAME, "TXT")
        try:
            dns.query.udp(query, server, timeout=0.2)
        except (dns.exception.DNSException, OSError):
            return False
        return True

    return call_in(namespace, ask)


def tcp_accepts(namespace: str, address: str, port: int, timeout: float = 0.5) -> bool:
    def connect() -> bool:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return True
        except OSError:
            return False

    return call_in(namespace, connect)


# Cleaning up --------------------------------------------------------------------------------
def lab_namespaces(prefix: str) -> list[str]:
    listing = run(["ip", "netns", "list"]).stdout
    names = (line.split()[0] for line in listing.splitlines() if line.strip())
    return [name for name in names if name.startswith(prefix)]


def remove_stale(prefix: str) -> None:
    """Remove every trace of a lab with this prefix: processes, namespaces, files."""
    for namespace in lab_namespaces(prefix):
        kill_processes_in(namespace)
        with contextlib.suppress(CommandError):  # gone already: a concurrent cleanup
            run(["ip", "netns", "delete", namespace])
    if NETNS_ETC.is_dir():
        for directory in NETNS_ETC.glob(f"{prefix}*"):
            shutil.rmtree(directory, ignore_errors=True)
    shutil.rmtree(STATE_ROOT / prefix.rstrip("-"), ignore_errors=True)


def kill_processes_in(namespace: str, grace: float = 3.0) -> None:
    """Stop every process in a namespace: deleting the name alone would leave them running."""
    pids = _pids_in(namespace)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                _kill(pid, signum)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if _alive(pid)]
            time.sleep(0.05)
        if not pids:
            return


def _pids_in(namespace: str) -> list[int]:
    done = run(["ip", "netns", "pids", namespace], check=False)
    return [int(pid) for pid in done.stdout.split() if pid.isdigit()]


def _kill(pid: int, signum: signal.Signals) -> None:
    os.kill(pid, signum)


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/stat")
    try:
        return status.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while inside, so ``with Topology()`` cleans up on it too."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
