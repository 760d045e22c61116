"""Locating the censor from TTL-limited traces, without sockets or root.

A simulated path (routers by hop, a censor after one of them that resets, drops or answers
for the service's name, routers that send no ICMP) drives the real trace loop
(``probe.measure.trace.walk``) and the real decision (``probe.verdicts.location``); the
engine test drives the real engine with a network that traces such a path.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probe.measure import trace
from probe.measure.locating import trace_requests
from probe.measure.trace import TraceBudget, TraceLimits, TraceRequest, walk, withhold_home_hops
from probe.model import Hop, HopResult, Measurement, Method, Role, TraceObservation, Verdict
from probe.verdicts import location
from tests.probe.fakes import CONTROL_RESOLVERS, NETWORK_RESOLVER, Result, ScriptedNetwork
from tests.probe.test_engine_scenarios import ADDRESSES, TARGETS

SERVER = "149.154.167.99"
REQUEST = TraceRequest(SERVER, 443, "tls", "web.telegram.org", "example.com")


@dataclass
class Path:
    """Routers by hop (None: sends no ICMP), the server one hop past the last, and a censor
    that acts on the service's name once the packet has passed hop ``censor_after``."""

    routers: tuple[str | None, ...]
    censor_after: int | None = None
    censor: HopResult = "reset"
    own_address: str | None = "192.168.77.10"
    lost: frozenset[tuple[Role, int]] = frozenset()  # (role, ttl) whose first send is lost
    sent: int = 0
    on_path_at: int | None = None
    """An on-path injector at this hop: it answers every copy it sees, and the packet goes on."""

    async def __call__(self, role: Role, ttl: int) -> Hop:
        self.sent += 1
        if (role, ttl) in self.lost:
            self.lost = self.lost - {(role, ttl)}
            return Hop(ttl=ttl, result="silence")
        if role == "network" and self.on_path_at is not None and ttl >= self.on_path_at:
            router = self.routers[ttl - 1] if ttl <= len(self.routers) else None
            return Hop(ttl=ttl, result="answer", router=router)
        censored = role == "network" and self.censor_after is not None
        if censored and ttl > (self.censor_after or 0):
            return Hop(ttl=ttl, result=self.censor)
        if ttl > len(self.routers):
            return Hop(ttl=ttl, result="answer")
        router = self.routers[ttl - 1]
        if router is None:
            return Hop(ttl=ttl, result="silence")
        return Hop(ttl=ttl, result="time_exceeded", router=router)


async def traced(path: Path) -> location.HopLocation:
    test, control = await walk(REQUEST, path, TraceLimits(), _clock(), 0.0)
    return location.locate(test, control)


def _clock() -> trace.Clock:
    ticks = iter(range(10_000))
    return lambda: float(next(ticks))


ISP = ("95.56.0.1", "95.56.254.1", "95.59.1.1")


async def test_a_censor_at_the_first_hop_is_located_there() -> None:
    found = await traced(Path(ISP, censor_after=1))
    assert (found.hop, found.router, found.ended) == (1, "95.56.0.1", "reset")
    assert found.rule == location.LOCATED.id


async def test_a_censor_two_hops_away_is_located_at_hop_two() -> None:
    found = await traced(Path(ISP, censor_after=2, censor="silence"))
    assert (found.hop, found.router, found.ended) == (2, "95.56.254.1", "silence")


async def test_a_forged_answer_before_the_server_locates_the_injector() -> None:
    found = await traced(Path(ISP, censor_after=2, censor="answer"))
    assert (found.hop, found.router, found.ended) == (2, "95.56.254.1", "answer")


async def test_an_on_path_injector_is_located_at_the_hop_whose_router_also_answered() -> None:
    found = await traced(Path(ISP, on_path_at=2))
    assert (found.hop, found.router, found.ended, found.on_path) == (
        2,
        "95.56.254.1",
        "answer",
        True,
    )


async def test_an_on_path_injector_at_the_first_hop_is_located_there() -> None:
    found = await traced(Path(ISP, on_path_at=1))
    assert (found.hop, found.router, found.on_path) == (1, "95.56.0.1", True)


async def test_an_on_path_injector_at_a_home_hop_is_not_located() -> None:
    found = await traced(Path(("192.168.77.1", "95.56.254.1"), on_path_at=1))
    assert found.hop is None
    assert "home network" in found.reason


async def test_an_in_path_censor_is_not_taken_for_an_on_path_one() -> None:
    found = await traced(Path(ISP, censor_after=2))
    assert found.on_path is False


async def test_routers_that_filter_time_exceeded_give_not_located() -> None:
    found = await traced(Path((None, None, None), censor_after=2))
    assert found.hop is None
    assert found.router is None
    assert found.rule == location.NOT_LOCATED.id
    assert "did not visibly go on" in found.reason


async def test_filtered_time_exceeded_up_to_a_censor_before_the_server_gives_not_located() -> None:
    found = await traced(Path((None, None), censor_after=2))
    assert found.hop is None
    assert "did not answer" in found.reason


async def test_the_hop_before_the_end_inside_the_home_network_gives_not_located() -> None:
    found = await traced(Path(("192.168.77.1", "95.56.254.1"), censor_after=1))
    assert found.hop is None
    assert "home network" in found.reason


async def test_no_censor_on_the_path_gives_not_located() -> None:
    found = await traced(Path(ISP))
    assert found.hop is None
    assert "reached the server" in found.reason


async def test_a_lost_packet_is_sent_again_and_does_not_move_the_hop() -> None:
    path = Path(ISP, censor_after=2, lost=frozenset({("network", 2), ("control", 3)}))
    found = await traced(path)
    assert found.hop == 2


async def test_the_trace_stops_where_the_control_name_reaches_the_server() -> None:
    path = Path(ISP, censor_after=1)
    _, control = await walk(REQUEST, path, TraceLimits(), _clock(), 0.0)
    assert [h.ttl for h in control.hops] == [1, 2, 3, 4]
    assert control.hops[-1].result == "answer"
    assert path.sent == 8


async def test_the_trace_is_bounded_in_hops() -> None:
    path = Path(tuple(f"95.56.{i}.1" for i in range(1, 40)))
    test, control = await walk(REQUEST, path, TraceLimits(max_hops=16), _clock(), 0.0)
    assert len(test.hops) == len(control.hops) == 16


def test_a_flow_that_goes_on_after_ending_is_loss_not_a_censor() -> None:
    test = _trace("network", ["time_exceeded", "silence", "time_exceeded", "answer"])
    control = _trace("control", ["time_exceeded", "time_exceeded", "time_exceeded", "answer"])
    found = location.locate(test, control)
    assert found.hop is None
    assert "went on" in found.reason


def test_flows_that_disagree_before_the_end_give_not_located() -> None:
    test = _trace("network", ["time_exceeded", "time_exceeded", "reset"], routers=["a", "b"])
    control = _trace("control", ["time_exceeded", "time_exceeded", "answer"], routers=["a", "c"])
    assert location.locate(test, control).hop is None


def _trace(
    role: Role,
    results: list[HopResult],
    routers: list[str] | None = None,
    copied: frozenset[int] = frozenset(),
) -> TraceObservation:
    """``copied``: TTLs where a router's ICMP came beside a reset or an answer."""
    names = routers or [f"95.56.{i}.1" for i in range(1, len(results) + 1)]
    hops = [
        Hop(ttl=i, result=r, router=names[i - 1] if r == "time_exceeded" or i in copied else None)
        for i, r in enumerate(results, start=1)
    ]
    return TraceObservation(
        ip=SERVER, port=443, name="x", protocol="tls", role=role, t0=0.0, t=1.0, hops=hops
    )


results = st.sampled_from(["time_exceeded", "answer", "reset", "eof", "silence", "unreachable"])


@given(
    st.lists(st.tuples(results, results), min_size=1, max_size=20),
    st.frozensets(st.integers(1, 20)),
)
def test_a_located_hop_is_always_one_the_censored_flow_passed_and_ended_after(
    pairs: list[tuple[HopResult, HopResult]], copied: frozenset[int]
) -> None:
    test = _trace("network", [a for a, _ in pairs], copied=copied)
    control = _trace("control", [b for _, b in pairs])
    found = location.locate(test, control)
    if found.hop is None:
        return
    if found.on_path:  # a forged reply beside the ICMP of the router at that very hop
        there = test.hops[found.hop - 1]
        assert there.result in ("reset", "answer")
        assert there.router == found.router
        assert control.hops[found.hop - 1].result in ("time_exceeded", "answer")
        return
    passed = test.hops[found.hop - 1]
    assert passed.result == "time_exceeded"
    assert passed.router == found.router
    assert test.hops[found.hop].result in ("reset", "eof", "silence", "answer")
    assert control.hops[found.hop].result in ("time_exceeded", "answer")
    assert all(h.result != "time_exceeded" for h in test.hops[found.hop :])


# Privacy ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "router",
    ["192.168.1.1", "10.0.0.1", "172.16.5.1", "100.64.0.1", "169.254.1.1", "fe80::1", "fd00::1"],
)
def test_routers_inside_the_home_network_are_never_recorded(router: str) -> None:
    hops = [
        Hop(ttl=1, result="time_exceeded", router=router),
        Hop(ttl=2, result="time_exceeded", router="95.56.0.1"),
    ]
    kept = withhold_home_hops(hops, "192.168.1.20")
    assert [h.router for h in kept] == [None, "95.56.0.1"]
    assert [h.ttl for h in kept] == [1, 2]
    assert [h.withheld for h in kept] == [True, False]


def test_hops_before_the_first_public_one_lose_their_address() -> None:
    hops = [
        Hop(ttl=1, result="silence"),
        Hop(ttl=2, result="time_exceeded", router="192.168.0.1"),
        Hop(ttl=3, result="time_exceeded", router="95.56.0.1"),
        Hop(ttl=4, result="time_exceeded", router="10.1.1.1"),
        Hop(ttl=5, result="time_exceeded", router="95.59.1.1"),
    ]
    kept = withhold_home_hops(hops, None)
    assert [h.router for h in kept] == [None, None, "95.56.0.1", None, "95.59.1.1"]


def test_routers_in_the_probes_own_ipv6_prefix_are_withheld() -> None:
    hops = [
        Hop(ttl=1, result="time_exceeded", router="2a02:4e0:77::1"),
        Hop(ttl=2, result="time_exceeded", router="2a02:4e0:fffd::1"),
    ]
    kept = withhold_home_hops(hops, "2a02:4e0:77::10")
    assert [h.router for h in kept] == [None, "2a02:4e0:fffd::1"]


def test_the_probes_own_address_is_never_a_router() -> None:
    hops = [Hop(ttl=1, result="time_exceeded", router="95.56.7.7")]
    assert withhold_home_hops(hops, "95.56.7.7")[0].router is None


# Bounds ----------------------------------------------------------------------------------
def test_the_budget_limits_traces_per_run_and_per_target() -> None:
    budget = TraceBudget(TraceLimits(per_run=2, per_target_seconds=3600))
    assert budget.take(("1.1.1.1", 443, "a"), 0.0)
    assert not budget.take(("1.1.1.1", 443, "a"), 10.0)  # the same target within the hour
    assert budget.take(("1.1.1.1", 443, "b"), 10.0)
    assert not budget.take(("1.1.1.1", 443, "c"), 10.0)  # the run's budget is spent
    budget.new_run()
    assert not budget.take(("1.1.1.1", 443, "a"), 100.0)
    assert budget.take(("1.1.1.1", 443, "a"), 3700.0)


# Packets ---------------------------------------------------------------------------------
def test_a_client_hello_names_the_sni() -> None:
    hello = trace.client_hello("web.telegram.org")
    assert hello[0] == 0x16  # a TLS handshake record
    assert b"web.telegram.org" in hello


def test_an_icmp_time_exceeded_is_matched_to_the_quoted_flow() -> None:
    quoted_ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        60,
        1,
        0,
        1,
        6,
        0,
        socket.inet_aton("192.168.77.10"),
        socket.inet_aton(SERVER),
    )
    quoted = quoted_ip + struct.pack("!HHI", 40001, 443, 7)
    icmp = struct.pack("!BBHI", 11, 0, 0, 0) + quoted
    outer = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(icmp),
        2,
        0,
        63,
        1,
        0,
        socket.inet_aton("95.56.0.1"),
        socket.inet_aton("192.168.77.10"),
    )
    error = trace.parse_icmp4(outer + icmp)
    assert error == trace.IcmpError("95.56.0.1", "time_exceeded", 40001, SERVER, 443)


def test_an_icmpv6_time_exceeded_is_matched_to_the_quoted_flow() -> None:
    header = struct.pack("!IHBB", 6 << 28, 32, 6, 1)
    header += socket.inet_pton(socket.AF_INET6, "2a02:4e0:77::10")
    header += socket.inet_pton(socket.AF_INET6, "2001:67c:4e8:f004::9")
    message = struct.pack("!BBHI", 3, 0, 0, 0) + header + struct.pack("!HHI", 40002, 443, 7)
    error = trace.parse_icmp6(message, "2a02:4e0:fffd::1")
    assert error == trace.IcmpError(
        "2a02:4e0:fffd::1", "time_exceeded", 40002, "2001:67c:4e8:f004::9", 443
    )


def test_an_icmp_time_exceeded_quoting_a_dns_query_is_matched_to_its_ports() -> None:
    quoted_ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 60, 1, 0, 1, 17, 0,
        socket.inet_aton("192.168.77.10"), socket.inet_aton("8.8.8.8"),
    )  # fmt: skip
    icmp = struct.pack("!BBHI", 11, 0, 0, 0) + quoted_ip + struct.pack("!HHHH", 40003, 53, 8, 0)
    outer = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 2, 0, 63, 1, 0,
        socket.inet_aton("95.56.0.1"), socket.inet_aton("192.168.77.10"),
    )  # fmt: skip
    error = trace.parse_icmp4(outer + icmp)
    assert error == trace.IcmpError("95.56.0.1", "time_exceeded", 40003, "8.8.8.8", 53)


def test_a_dns_query_names_the_name() -> None:
    assert b"\x03www\x07youtube\x03com\x00\x00\x01" in trace.dns_query("www.youtube.com")


def test_other_icmp_is_not_taken_for_a_hop() -> None:
    echo = struct.pack("!BBHI", 8, 0, 0, 0) + bytes(40)
    outer = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(echo),
        2,
        0,
        63,
        1,
        0,
        socket.inet_aton("95.56.0.1"),
        socket.inet_aton("192.168.77.10"),
    )
    assert trace.parse_icmp4(outer + echo) is None


# The engine ------------------------------------------------------------------------------
@dataclass
class TracingNetwork(ScriptedNetwork):
    path: Path | None = None
    traced: list[str] | None = None

    def can_trace(self) -> bool:
        return self.path is not None

    async def trace(
        self, request: TraceRequest, origin: float
    ) -> tuple[TraceObservation, TraceObservation]:
        assert self.path is not None
        self.traced = [*(self.traced or []), request.name]
        return await walk(request, self.path, TraceLimits(), _clock(), origin)


def _telegram_sni_reset() -> TracingNetwork:
    return TracingNetwork(
        default_address=lambda host: ADDRESSES.get(host, "93.184.215.14"),
        exchanges={(SERVER, 443, "network"): [Result(tls="connection_reset")]},
    )


async def _engine_run(network: TracingNetwork) -> dict[str, Measurement]:
    from probe.measure.engine import Engine, Settings

    engine = Engine(network, NETWORK_RESOLVER, CONTROL_RESOLVERS, Settings())
    report = await engine.run(TARGETS)
    return {m.service: m for m in report.measurements}


async def test_the_engine_traces_a_blocked_endpoint_and_records_its_hop() -> None:
    network = _telegram_sni_reset()
    network.path = Path(ISP, censor_after=2)
    measured = await _engine_run(network)
    telegram = measured["telegram"]
    analysis = telegram.analysis
    assert analysis.verdict == "blocked"
    assert analysis.endpoints[0].location.hop == 2
    assert analysis.endpoints[0].location.router == "95.56.254.1"
    traces = [o for o in telegram.observations if isinstance(o, TraceObservation)]
    assert {t.role for t in traces} == {"network", "control"}
    assert network.traced == ["web.telegram.org"]  # the ok services are not traced
    assert not any("censor_hop" in m for m in telegram.probe.missing_evidence)


async def test_without_tracing_the_verdicts_are_the_same_and_missing_evidence_says_so() -> None:
    with_trace = _telegram_sni_reset()
    with_trace.path = Path(ISP, censor_after=2)
    traced = await _engine_run(with_trace)
    plain = await _engine_run(_telegram_sni_reset())
    for service, measurement in plain.items():
        other = traced[service]
        assert measurement.analysis.verdict == other.analysis.verdict
        assert measurement.analysis.methods == other.analysis.methods
    telegram = plain["telegram"]
    assert telegram.analysis.endpoints[0].location is None
    assert any(m.startswith("censor_hop:") for m in telegram.probe.missing_evidence)


def test_only_name_keyed_blocks_are_traced() -> None:
    from probe.model import Analysis, EndpointAnalysis, TLSObservation

    service = next(s for s in TARGETS.services if s.name == "telegram")
    failed = TLSObservation(
        ip=SERVER,
        port=443,
        sni="web.telegram.org",
        role="network",
        t0=0,
        t=1,
        failure="connection_reset",
        endpoint=0,
    )

    def judged(verdict: Verdict, methods: list[Method]) -> Analysis:
        ep = EndpointAnalysis(endpoint="web.telegram.org:443", verdict=verdict, methods=methods)
        return Analysis(verdict=verdict, endpoints=[ep])

    assert trace_requests(service, [failed], judged("blocked", ["tls.reset"])) == [
        (0, TraceRequest(SERVER, 443, "tls", "web.telegram.org", "example.com"))
    ]
    assert trace_requests(service, [failed], judged("anomaly", ["tls.reset"])) == []
    assert trace_requests(service, [failed], judged("blocked", ["tcp.timeout"])) == []
    injected = judged("blocked", ["dns.injection"])
    assert trace_requests(service, [], injected, ("8.8.8.8", 53)) == [
        (0, TraceRequest("8.8.8.8", 53, "dns", "web.telegram.org", "example.com"))
    ]
    # any resolver but a listed public one is never traced: its address would be recorded
    assert trace_requests(service, [], injected, ("192.168.1.1", 53)) == []
    assert trace_requests(service, [], injected, ("95.56.0.53", 53)) == []
    assert trace_requests(service, [], injected, None) == []
    assert trace_requests(service, [], injected, ("2001:4860:4860::8888", 53)) == []


async def test_judging_again_with_the_traces_gives_the_same_verdicts() -> None:
    """The collector re-judges stored observations, traces among them: they change nothing."""
    from probe.verdicts import analysis

    network = _telegram_sni_reset()
    network.path = Path(ISP, censor_after=2)
    telegram = (await _engine_run(network))["telegram"]
    service = next(s for s in TARGETS.services if s.name == "telegram")
    again = analysis.analyse(service, telegram.observations, offline=False)
    before = telegram.analysis
    assert (again.verdict, again.methods, again.rules) == (
        before.verdict,
        before.methods,
        before.rules,
    )
    assert [(e.verdict, e.methods) for e in again.endpoints] == [
        (e.verdict, e.methods) for e in before.endpoints
    ]
