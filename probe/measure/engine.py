"""Runs the measurement steps for each service and hands the facts to the analysis.

The order of work is a decision (which addresses to test, what to retry, when to check the
network's own health), kept in small pure helpers; this module only carries it out. A
failure is retried, each retry sandwiched between two checks of a control target, so that a
flaky moment on the volunteer's network is never mistaken for blocking.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import msgspec

from probe import SOFTWARE_NAME, __version__, vocabulary
from probe.measure import failures, locating
from probe.measure import raw as packet_capture
from probe.measure.network import Exchange, Network, Outcome, Resolution, Resolver
from probe.measure.throughput import Limits
from probe.measure.trace import TraceBudget
from probe.model import (
    FORMAT_VERSION,
    Analysis,
    ControlObservation,
    DNSObservation,
    Endpoint,
    HTTPObservation,
    Measurement,
    Observation,
    ProbeInfo,
    Software,
    TCPObservation,
    ThroughputObservation,
    TLSObservation,
    TraceObservation,
    new_id,
    utc_now,
)
from probe.targets import Service, Target, TargetList
from probe.verdicts import analysis
from probe.verdicts.bogons import is_bogon_answer

T = TypeVar("T")
QUERY_TYPES: Final = ("A", "AAAA")
NO_IPV6: Final = (
    "ipv6: this network has no IPv6 route; AAAA answers recorded, IPv6 addresses not tested"
)


@dataclass(frozen=True)
class Settings:
    attempts: int = 2  # a non-timeout failure counts only if it happens this many times
    timeout_attempts: int = 4  # timeouts are what packet loss looks like: try harder
    max_addresses: int = 2
    concurrency: int = 50
    throughput_samples: int = 3  # downloads per endpoint that declares a throughput_path
    throughput: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Report:
    measurements: list[Measurement]
    offline: bool


Progress = Callable[[Measurement], None]


class Engine:
    def __init__(
        self,
        network: Network,
        network_resolver: Resolver | None,
        control_resolvers: Sequence[Resolver],
        settings: Settings = Settings(),
        probe: ProbeInfo | None = None,
        trace_budget: TraceBudget | None = None,
    ) -> None:
        self.network = network
        self.network_resolver = network_resolver
        if not control_resolvers:
            raise ValueError("at least one control resolver is needed")
        self.control_resolvers = tuple(control_resolvers)
        self.settings = settings
        self.probe = probe or ProbeInfo()
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._health: Exchange | None = None
        self._health_host: str | None = None
        self._origin = 0.0
        self._start_time = utc_now()
        self._controls: dict[Exchange, asyncio.Task[Outcome]] = {}
        self._downloading = asyncio.Lock()  # one transfer at a time: they would share the link
        self._control_rates: list[ThroughputObservation] = []
        self.ipv6 = False
        self.trace_budget = trace_budget or TraceBudget()
        self._tracing = asyncio.Lock()  # one trace at a time: routers rate-limit ICMP

    async def run(self, targets: TargetList, progress: Progress | None = None) -> Report:
        """Controls first (they decide whether judging is possible), then the rest at once;
        ``progress`` hears of each service as soon as it is done."""
        # One clock origin for the run: observations of different services stay comparable,
        # and a control exchange shared between services has one set of times.
        self._origin = self.network.clock()
        self._start_time = utc_now()
        self._controls = {}
        self._health = None  # no health check while the controls themselves are measured
        self.trace_budget.new_run()
        await self._check_network()
        controls = [s for s in targets.services if s.is_control]
        control_runs = await asyncio.gather(*(self._measure(s, None) for s in controls))
        self._choose_health_check(control_runs)
        self._control_rates = []
        for run in control_runs:
            await self._control_downloads(run)
        offline = bool(controls) and self._health is None
        done = [self._finish(run, offline) for run in control_runs]

        async def judge(service: Service) -> Measurement:
            run = await self._measure(service, offline)
            measurement = await self._locate(run, self._finish(run, offline))
            if progress is not None:
                progress(measurement)
            return measurement

        judged = [s for s in targets.services if not s.is_control]
        done += await asyncio.gather(*(judge(s) for s in judged))
        return Report(done, offline)

    # -- one service ---------------------------------------------------------------------

    async def _measure(self, service: Service, offline: bool | None) -> _Run:
        run = _Run(service, self._origin, self._start_time, time.monotonic())
        # Controls (``offline`` not known yet) are retried like services: packet loss hits
        # them too. Only a run already known to be offline skips retries.
        retry = offline is not True
        await asyncio.gather(
            *(self._endpoint(run, i, t, retry) for i, t in enumerate(service.endpoints))
        )
        for index, resolution in run.pending:
            settled = await resolution.settled()
            run.observations[index] = msgspec.structs.replace(
                settled,
                attempt=run.observations[index].attempt,
                endpoint=run.observations[index].endpoint,
            )
        return run

    def _finish(self, run: _Run, offline: bool) -> Measurement:
        service = run.service
        facts = [o for o in run.observations if not isinstance(o, TraceObservation)]
        result: Analysis = analysis.analyse(service, facts, offline=offline)
        return Measurement(
            id=new_id(),
            format_version=FORMAT_VERSION,
            software=Software(name=SOFTWARE_NAME, version=__version__),
            probe=self.probe,
            service=service.name,
            category=service.category,
            start_time=run.start_time,
            runtime=round(time.monotonic() - run.started, 6),
            endpoints=[_endpoint_spec(t) for t in service.endpoints],
            observations=run.observations,
            analysis=result,
        )

    async def _locate(self, run: _Run, measurement: Measurement) -> Measurement:
        """For each blocked endpoint worth it and within the budget, the TTL-limited traces
        and the hop they locate; the verdicts stay as they are."""
        if not self.network.can_trace():
            return measurement
        resolver = self.network_resolver
        plain = (resolver.host, resolver.port) if resolver and resolver.transport == "udp" else None
        requests = locating.trace_requests(
            run.service, run.observations, measurement.analysis, plain
        )
        traces: list[TraceObservation] = []
        for index, request in requests:
            key = (request.ip, request.port, request.name)
            async with self._tracing:
                if not self.trace_budget.take(key, time.monotonic()):
                    continue
                pair = await self.network.trace(request, run.origin)
            traces += [msgspec.structs.replace(t, endpoint=index) for t in pair]
        if not traces:
            return measurement
        return msgspec.structs.replace(
            measurement,
            observations=[*measurement.observations, *traces],
            analysis=locating.located(measurement.analysis, traces),
        )

    async def _endpoint(self, run: _Run, index: int, target: Target, retry: bool) -> None:
        ep = _EndpointRun(self, run, index, target, retry)
        await ep.measure()

    # -- throughput ---------------------------------------------------------------------------

    async def download(self, request: Exchange, origin: float) -> ThroughputObservation:
        async with self._downloading:
            return await self.network.download(request, origin, self.settings.throughput)

    async def _control_downloads(self, run: _Run) -> None:
        """The control services' rates, the yardstick every service's rate is held against."""
        for index, target in enumerate(run.service.endpoints):
            if target.throughput_path is None:
                continue
            connected = [
                o.ip
                for o in run.observations
                if isinstance(o, TCPObservation) and o.endpoint == index and o.failure is None
            ]
            if not connected:
                continue
            request = _download_request(target, connected[0], "network", target.server_name)
            for attempt in range(self.settings.throughput_samples):
                measured = await self.download(request, run.origin)
                measured = msgspec.structs.replace(measured, attempt=attempt, endpoint=index)
                run.add(measured)
                self._control_rates.append(
                    msgspec.structs.replace(measured, role="control", service=run.service.name)
                )

    def control_rates(self, endpoint: int) -> list[ThroughputObservation]:
        return [msgspec.structs.replace(o, endpoint=endpoint) for o in self._control_rates]

    async def _check_network(self) -> None:
        """Once per run, what this probe can see: a network without IPv6 says so once, in
        every measurement's probe info, and its IPv6 addresses go untested rather than
        failing one by one; likewise for packet evidence without CAP_NET_RAW."""
        await self.network.prepare()
        self.ipv6 = await self.network.ipv6_connectivity()
        raw = self.network.raw_packets()
        missing = [
            m
            for m in self.probe.missing_evidence
            if not m.startswith(("ipv6:", "raw_packets:", "censor_hop:"))
        ]
        if not self.ipv6:
            missing.append(NO_IPV6)
        if not self.network.can_trace():
            missing.append(packet_capture.NO_HOP_LOCATION)
        if not raw:
            missing.append(packet_capture.NO_CAPABILITY)
        self.probe = msgspec.structs.replace(
            self.probe, ipv6=self.ipv6, raw_evidence=raw, missing_evidence=missing
        )

    # -- network health --------------------------------------------------------------------

    def _choose_health_check(self, control_runs: list[_Run]) -> None:
        """Pick a control target that just worked, to re-test between retries."""
        for run in control_runs:
            for obs in run.observations:
                if isinstance(obs, TCPObservation) and obs.failure is None:
                    target = run.service.endpoints[obs.endpoint or 0]
                    self._health = Exchange(ip=obs.ip, port=obs.port)
                    self._health_host = target.host
                    return
        self._health = None

    async def health_check(self, run: _Run, endpoint: int) -> None:
        """Is this network still up? A second try forgives one lost packet; a network that
        is really down fails both."""
        if self._health is None:
            return
        origin = run.origin
        t0 = self.network.clock() - origin
        failure, operation = await self._health_once(origin)
        if failure is not None:
            failure, operation = await self._health_once(origin)
        label = f"{self._health_host or self._health.ip}:{self._health.port}"
        run.add(
            ControlObservation(
                target=label,
                t0=round(max(t0, 0.0), 6),
                t=round(max(self.network.clock() - origin, 0.0), 6),
                failure=failure,
                operation=operation,
                endpoint=endpoint,
            )
        )

    async def _health_once(self, origin: float) -> tuple[str | None, str]:
        assert self._health is not None
        if self._health_host and self.network_resolver is not None:
            resolution = await self.limited(
                self.network.resolve(self.network_resolver, self._health_host, "control", origin)
            )
            if resolution.first.failure is not None:
                return resolution.first.failure, "resolve"
        tcp, _, _ = await self.limited(self.network.exchange(self._health, origin))
        return tcp.failure, "connect"

    async def first_control(self, request: Exchange) -> Outcome:
        """The control exchange made before any service's name goes to an address: once per
        address and control name in a run, shared by every endpoint there."""
        task = self._controls.get(request)
        if task is None:
            task = asyncio.ensure_future(self.limited(self.network.exchange(request, self._origin)))
            self._controls[request] = task
        return await asyncio.shield(task)

    async def limited(self, work: Awaitable[T]) -> T:
        async with self._limit:
            return await work


@dataclass
class _Run:
    service: Service
    origin: float
    start_time: dt.datetime
    started: float
    observations: list[Observation] = field(default_factory=list)
    pending: list[tuple[int, Resolution]] = field(default_factory=list)
    yardsticks: set[int] = field(default_factory=set)
    """Endpoints that hold the control services' rates already (shared by both families)."""

    def add(self, observation: Observation) -> None:
        self.observations.append(observation)


class _EndpointRun:
    """The steps for one endpoint: resolve, exchange with each address, retry failures."""

    def __init__(self, engine: Engine, run: _Run, index: int, target: Target, retry: bool) -> None:
        self.engine = engine
        self.network = engine.network
        self.run = run
        self.index = index
        self.target = target
        self.retry = retry
        self.hints = run.service.blockpage_hints

    async def measure(self) -> None:
        if self.target.ip is not None:
            await self.measure_throughput(
                await self.test_addresses(self.reachable([self.target.ip]))
            )
            return
        assert self.target.host is not None
        await asyncio.gather(*(self.measure_family(rdtype) for rdtype in QUERY_TYPES))

    async def measure_family(self, rdtype: str) -> None:
        """One address family: its query through both resolvers, then its addresses."""
        network_dns, control_dns = await asyncio.gather(
            self.resolve(self.engine.network_resolver, "network", 0, rdtype),
            self.resolve_control(0, rdtype),
        )
        network_dns = await self.retry_dns(network_dns, control_dns)
        plan = addresses_to_test(network_dns, control_dns, self.engine.settings.max_addresses)
        outcomes = await self.test_addresses(self.reachable(plan.first))
        contrast = self.reachable(plan.contrast)
        if contrast and any(not _succeeded(o) for o in outcomes):
            await self.test_addresses(contrast)
        await self.measure_throughput(outcomes)

    async def measure_throughput(self, outcomes: list[Outcome]) -> None:
        """Repeated bounded downloads from the first address that worked, one with the
        control SNI to the same address, beside the control services' rates."""
        target = self.target
        if target.throughput_path is None or self.run.service.is_control or not self.retry:
            return
        working = [o[0].ip for o in outcomes if _succeeded(o)]
        if not working:
            return
        ip = working[0]
        own = _download_request(target, ip, "network", target.server_name)
        for attempt in range(self.engine.settings.throughput_samples):
            measured = await self.engine.download(own, self.run.origin)
            self.run.add(msgspec.structs.replace(measured, attempt=attempt, endpoint=self.index))
        if target.tls:
            other = _download_request(target, ip, "control", target.control_sni)
            measured = await self.engine.download(other, self.run.origin)
            self.run.add(msgspec.structs.replace(measured, endpoint=self.index))
        if self.index not in self.run.yardsticks:  # once per endpoint, whichever family
            self.run.yardsticks.add(self.index)
            for control in self.engine.control_rates(self.index):
                self.run.add(control)

    def reachable(self, addresses: list[str]) -> list[str]:
        """Without an IPv6 route, an IPv6 address is not tested: its failure would say
        nothing about censorship (the probe info says so once)."""
        return [a for a in addresses if self.engine.ipv6 or ":" not in a]

    async def resolve(
        self, resolver: Resolver | None, role: str, attempt: int, rdtype: str = "A"
    ) -> DNSObservation:
        assert self.target.host is not None
        if resolver is None:
            observation = DNSObservation(
                hostname=self.target.host,
                query_type=rdtype,
                resolver="system",
                role="network",
                t0=0.0,
                t=0.0,
                failure=vocabulary.DNS_NO_RESOLVER,
                attempt=attempt,
                endpoint=self.index,
            )
            self.run.add(observation)
            return observation
        resolution = await self.engine.limited(
            self.network.resolve(
                resolver,
                self.target.host,
                "network" if role == "network" else "control",
                self.run.origin,
                rdtype,
            )
        )
        observation = msgspec.structs.replace(
            resolution.first, attempt=attempt, endpoint=self.index
        )
        self.run.add(observation)
        self.run.pending.append((len(self.run.observations) - 1, resolution))
        return observation

    async def resolve_control(self, attempt: int, rdtype: str = "A") -> DNSObservation:
        """The first trusted resolver that answers at all (a censor may block some of them)."""
        observation: DNSObservation | None = None
        for resolver in self.engine.control_resolvers:
            observation = await self.resolve(resolver, "control", attempt, rdtype)
            if observation.responses:
                break
        assert observation is not None
        return observation

    async def retry_dns(
        self, network_dns: DNSObservation, control_dns: DNSObservation
    ) -> DNSObservation:
        """A network-resolver failure (or a bogus answer) is repeated before it counts; when
        attempts disagree, the budget of the most demanding one applies."""
        if not self.retry or not _dns_suspicious(network_dns, control_dns):
            return network_dns
        budget = _attempts_for(network_dns.failure, self.engine.settings)
        attempt = 1
        while attempt < budget:
            await self.engine.health_check(self.run, self.index)
            rdtype = network_dns.query_type
            latest = await self.resolve(self.engine.network_resolver, "network", attempt, rdtype)
            if not control_dns.responses:
                control_dns = await self.resolve_control(attempt, rdtype)
            if not _dns_suspicious(latest, control_dns):
                await self.engine.health_check(self.run, self.index)
                return latest
            if latest.failure != network_dns.failure:
                budget = self.engine.settings.timeout_attempts
            attempt += 1
        await self.engine.health_check(self.run, self.index)
        return network_dns

    async def test_addresses(self, addresses: list[str]) -> list[Outcome]:
        return list(await asyncio.gather(*(self.test_address(ip) for ip in addresses)))

    async def test_address(self, ip: str) -> Outcome:
        request = self.request(ip, "network", self.target.server_name)
        contrasted = self.target.tls or self.target.http_path is not None
        control_connected = False
        if contrasted and not self.run.service.is_control:
            # Before the service's name is ever sent from here, so that a censor that
            # punishes the whole address after a forbidden name cannot taint the control.
            control = self.request(ip, "control", self.target.control_sni)
            first = self.record(await self.engine.first_control(control), 0)
            control_connected = first[0].failure is None
        outcome = await self.exchange(request, 0)
        if _succeeded(outcome) or not self.retry:
            return outcome
        rounds = _attempts_for(_last_failure(outcome), self.engine.settings) - 1
        for attempt in range(1, rounds + 1):
            await self.engine.health_check(self.run, self.index)
            retried = await self.exchange(request, attempt)
            if _needs_control(retried, control_connected):
                await self.exchange(self.request(ip, "control", self.target.control_sni), attempt)
            if _succeeded(retried):
                break
        await self.engine.health_check(self.run, self.index)
        return outcome

    def request(self, ip: str, role: str, sni: str | None) -> Exchange:
        target = self.target
        control = role == "control"
        http_host = None
        if target.http_path is not None:
            http_host = target.control_sni if control else (target.host or target.sni or ip)
        return _exchange(target, ip, role, sni, http_host, target.http_path, self.hints)

    async def exchange(self, request: Exchange, attempt: int) -> Outcome:
        outcome = await self.engine.limited(self.network.exchange(request, self.run.origin))
        return self.record(outcome, attempt)

    def record(self, outcome: Outcome, attempt: int) -> Outcome:
        tcp, tls, page = outcome
        tcp = msgspec.structs.replace(tcp, attempt=attempt, endpoint=self.index)
        self.run.add(tcp)
        if tls is not None:
            tls = msgspec.structs.replace(tls, attempt=attempt, endpoint=self.index)
            self.run.add(tls)
        if page is not None:
            page = msgspec.structs.replace(page, attempt=attempt, endpoint=self.index)
            self.run.add(page)
        return tcp, tls, page


# -- pure decisions ------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressPlan:
    first: list[str]  # what a user of this network would connect to
    contrast: list[str]  # the control resolver's different answer, tried if ``first`` fails


def addresses_to_test(network: DNSObservation, control: DNSObservation, limit: int) -> AddressPlan:
    usable = [
        a for a in _ipv4_first(network.addresses()) if not is_bogon_answer(a, control.addresses())
    ]
    trusted = [a for a in _ipv4_first(control.addresses()) if a not in usable]
    if network.failure is None and usable:
        return AddressPlan(
            usable[:limit], trusted[:limit] if not set(usable) & set(control.addresses()) else []
        )
    return AddressPlan(trusted[:limit], [])


def _ipv4_first(addresses: list[str]) -> list[str]:
    return sorted(dict.fromkeys(addresses), key=lambda a: ":" in a)


def _dns_suspicious(observation: DNSObservation, control: DNSObservation) -> bool:
    empty_aaaa = observation.query_type == "AAAA" and not observation.addresses()
    if empty_aaaa and (observation.failure == vocabulary.DNS_NO_ANSWER or not control.addresses()):
        return False  # a name without IPv6 addresses, or a resolver that strips AAAA
    if observation.failure is not None:
        return True
    addresses = observation.addresses()
    return bool(addresses) and all(is_bogon_answer(a, control.addresses()) for a in addresses)


def _attempts_for(failure: str | None, settings: Settings) -> int:
    """Timeouts and SERVFAIL are what a lossy network and a struggling resolver produce now
    and then: they need more attempts to count than a refusal or a lie does."""
    noisy = failures.is_timeout(failure) or failure == vocabulary.DNS_SERVFAIL
    return settings.timeout_attempts if noisy else settings.attempts


def _succeeded(outcome: Outcome) -> bool:
    tcp, tls, page = outcome
    if tcp.failure is not None:
        return False
    if tls is not None and (tls.failure is not None or not tls.verified):
        return False
    return page is None or (page.failure is None and page.blockpage is None)


def _needs_control(outcome: Outcome, control_connected: bool = False) -> bool:
    """A failure after the connect is contrasted with an innocuous name on the same address;
    so is a failed connect to an address the control name reached before the service's name
    was sent (has the address gone dark for every name since: residual censorship?)."""
    tcp, tls, page = outcome
    if tcp.failure is not None:
        return control_connected
    if tls is not None and tls.failure is not None:
        return True
    return page is not None and page.failure is not None


def _last_failure(outcome: Outcome) -> str | None:
    for obs in reversed(outcome):
        if (
            isinstance(obs, TCPObservation | TLSObservation | HTTPObservation)
            and obs.failure is not None
        ):
            return obs.failure
    return None


def _download_request(target: Target, ip: str, role: str, sni: str | None) -> Exchange:
    http_host = sni if role == "control" else (target.host or target.sni or ip)
    return _exchange(target, ip, role, sni, http_host, target.throughput_path)


def _exchange(
    target: Target,
    ip: str,
    role: str,
    sni: str | None,
    http_host: str | None,
    http_path: str | None,
    hints: tuple[str, ...] = (),
) -> Exchange:
    """One exchange with ``target`` at ``ip``: a measurement's request or a download's."""
    return Exchange(
        ip=ip,
        port=target.port,
        role="control" if role == "control" else "network",
        tls=target.tls,
        sni=sni if target.tls else None,
        http_host=http_host,
        http_path=http_path,
        blockpage_hints=hints,
    )


def _endpoint_spec(target: Target) -> Endpoint:
    return Endpoint(
        port=target.port,
        host=target.host,
        ip=target.ip,
        tls=target.tls,
        sni=target.sni,
        http_path=target.http_path,
        throughput_path=target.throughput_path,
    )
