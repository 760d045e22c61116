"""Throttling: too slow to use where the controls in the same run were not, on repeated
samples near a constant rate (scripted network, real engine and rules)."""

from __future__ import annotations

import asyncio
import re

import pytest

from collector.demo.servers import PKI
from collector.demo.servers.tls import TLSRule, TLSServer
from probe.measure.network import Exchange
from probe.measure.sockets import SocketNetwork, Timing
from probe.measure.throughput import Limits, Transfer, drain_time
from probe.model import ThroughputObservation
from probe.targets import parse
from probe.verdicts.throughput import rate
from tests.probe.fakes import Answer, Rate, ScriptedNetwork, how_the_client_ended, measure

TARGETS = parse(
    """
[[services]]
name = "x"
category = "social"
[[services.endpoints]]
host = "x.example"
port = 443
throughput_path = "/512k"

[[services]]
name = "control_a"
category = "control"
[[services.endpoints]]
host = "control-a.example"
port = 443
throughput_path = "/512k"

[[services]]
name = "control_b"
category = "control"
[[services.endpoints]]
host = "control-b.example"
port = 443
throughput_path = "/512k"
""",
    "throttling targets",
)
ADDRESSES = {"x.example": "104.244.42.1", "control-a.example": "93.184.216.34"}
X = "104.244.42.1"
FAST = Rate(2_000_000)  # 16 Mbit/s
POLICED = Rate(16_000)  # 128 kbit/s, flat
LINK = Rate(125_000)  # 1 Mbit/s, the whole home link


def network(rates: dict[tuple[str, str], Rate], default: Rate = FAST) -> ScriptedNetwork:
    def rate(request: Exchange) -> Rate:
        return rates.get((request.ip, request.role), default)

    return ScriptedNetwork(
        default_address=lambda host: ADDRESSES.get(host, "151.101.1.1"), rates=rate
    )


async def judged(net: ScriptedNetwork) -> tuple[str, list[str], list[str]]:
    x = (await measure(net, TARGETS))["x"].analysis
    return x.verdict, list(x.methods), x.rules


async def test_a_policer_keyed_on_the_name_is_throttled() -> None:
    verdict, methods, rules = await judged(network({(X, "network"): POLICED}))
    assert (verdict, methods) == ("blocked", ["throttled"])
    assert rules == ["throughput.throttled.sni_contrast"]


async def test_the_evidence_shows_the_rates() -> None:
    measured = (await measure(network({(X, "network"): POLICED}), TARGETS))["x"]
    evidence = measured.analysis.evidence[0]
    assert re.search(r"at (12\d kbit/s, ){2}12\d kbit/s", evidence), evidence
    assert re.search(r"control services: 1\d{4} kbit/s", evidence), evidence
    assert "same address with SNI example.com" in evidence


async def test_an_address_slow_for_every_name_is_only_an_anomaly() -> None:
    # An address-based rate limit and a slow origin look alike to one probe.
    slow = {(X, "network"): POLICED, (X, "control"): POLICED}
    verdict, methods, rules = await judged(network(slow))
    assert (verdict, methods, rules) == ("anomaly", [], ["throughput.slow_for_every_name"])


@pytest.mark.parametrize(
    "rates",
    [
        {},  # nothing slow
        # the whole home link at 1 Mbit/s: the controls are as slow
        {("104.244.42.1", "network"): LINK, ("93.184.216.34", "network"): LINK,
         ("151.101.1.1", "network"): LINK, ("104.244.42.1", "control"): LINK},
        # congestion: slow, but wandering, not a plateau
        {("104.244.42.1", "network"): Rate(16_000, wander=0.8),
         ("104.244.42.1", "control"): Rate(16_000, wander=0.8)},
        # slow, but not a tenth of the controls'
        {("104.244.42.1", "network"): Rate(400_000)},
    ],
    ids=["clean", "slow-home-link", "congestion", "merely-slower"],
)  # fmt: skip
async def test_what_congestion_can_produce_is_not_throttled(
    rates: dict[tuple[str, str], Rate],
) -> None:
    verdict, methods, _ = await judged(network(rates))
    assert verdict == "ok"
    assert "throttled" not in methods


async def test_one_slow_sample_is_never_enough() -> None:
    calls = 0

    def rate(request: Exchange) -> Rate:
        nonlocal calls
        if request.ip == X and request.role == "network":
            calls += 1
            return POLICED if calls == 1 else FAST
        return FAST

    net = ScriptedNetwork(
        default_address=lambda host: ADDRESSES.get(host, "151.101.1.1"), rates=rate
    )
    assert (await judged(net))[0] == "ok"


def sampled(*rates: Rate) -> ScriptedNetwork:
    """x's downloads at these rates in turn (the last repeats); everything else fast."""
    calls = 0

    def rate(request: Exchange) -> Rate:
        nonlocal calls
        if request.ip == X and request.role == "network":
            calls += 1
            return rates[min(calls, len(rates)) - 1]
        return FAST

    return ScriptedNetwork(
        default_address=lambda host: ADDRESSES.get(host, "151.101.1.1"), rates=rate
    )


async def test_two_steady_samples_of_three_all_slow_are_throttled() -> None:
    # A TLS record is 16 KiB, a second's worth at 128 kbit/s: one sample may miss the
    # plateau by the record boundaries alone.
    uneven = Rate(16_000, wander=0.8)
    verdict, methods, _ = await judged(sampled(POLICED, uneven, POLICED))
    assert (verdict, methods) == ("blocked", ["throttled"])


async def test_one_steady_sample_is_not_enough() -> None:
    uneven = Rate(16_000, wander=0.8)
    assert (await judged(sampled(POLICED, uneven, uneven)))[0] == "ok"


def test_a_transfer_cut_at_its_time_limit_makes_the_next_wait_for_its_tail() -> None:
    limits = Limits(bytes=512 * 1024, seconds=10.0)
    cut = Transfer(received=160_000, samples=[], complete=False)
    assert drain_time(cut, 10.02, limits) == 10.0
    assert drain_time(cut, 4.0, limits) == 4.0  # ended early by a failure after some bytes
    assert drain_time(Transfer(524_288, [], complete=False), 0.4, limits) == 0.0
    assert drain_time(Transfer(300_000, [], complete=True), 3.0, limits) == 0.0


async def test_the_measurement_holds_every_download_it_was_judged_on() -> None:
    measured = (await measure(network({(X, "network"): POLICED}), TARGETS))["x"]
    steps = [o for o in measured.observations if o.__class__.__name__ == "ThroughputObservation"]
    roles = sorted((o.role, getattr(o, "service", None) or "") for o in steps)
    assert roles.count(("network", "")) == 3
    assert ("control", "") in roles  # the control SNI on the same address
    assert ("control", "control_a") in roles
    assert ("control", "control_b") in roles


def dual_stack_controls(rates: dict[tuple[str, str], Rate]) -> ScriptedNetwork:
    """The control services reached over IPv6 (their A queries answer nothing), x over IPv4
    only: the controls' rates are the yardstick for every family of every service."""
    only_v6 = {"control-a.example": "2606:2800:220:1::34", "control-b.example": "2a04:4e42::1"}
    dns: dict[tuple[str, ...], list[Answer]] = {}
    for host, ip6 in only_v6.items():
        for role in ("network", "control"):
            dns[(role, host)] = [Answer(failure="dns_no_answer")]
            dns[(role, host, "AAAA")] = [Answer((ip6,))]
    base = network(rates)
    base.dns, base.ipv6 = dns, True
    return base


async def test_controls_measured_over_ipv6_are_the_yardstick_for_an_ipv4_service() -> None:
    x = (await measure(dual_stack_controls({(X, "network"): POLICED}), TARGETS))["x"]
    assert (x.analysis.verdict, x.analysis.methods) == ("blocked", ["throttled"])
    controls = [o for o in x.observations if isinstance(o, ThroughputObservation) and o.service]
    assert len(controls) == 6  # three downloads from each control service, recorded once


async def test_a_name_without_aaaa_records_is_not_judged_over_ipv6_for_its_controls() -> None:
    x = (await measure(dual_stack_controls({}), TARGETS))["x"]
    assert x.analysis.verdict == "ok"
    assert x.analysis.endpoints[0].families == []


# -- real sockets: a TLS server on loopback serving a bounded download ------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize(("size", "limit"), [(300_000, 512 * 1024), (2_000_000, 512 * 1024)])
async def test_a_real_download_is_bounded_and_sampled(pki: PKI, size: int, limit: int) -> None:
    async with TLSServer(pki, "127.0.0.1", 0, rules={"x.example": TLSRule()}) as server:
        network = SocketNetwork(Timing(timeout=5.0), pki.ca_file)
        request = Exchange(
            ip="127.0.0.1",
            port=server.port,
            tls=True,
            sni="x.example",
            http_host="x.example",
            http_path=f"/bytes/{size}",
        )
        got = await network.download(request, asyncio.get_running_loop().time(), Limits(limit))
    assert got.failure is None
    # The count includes the response head and TLS framing: records' headers and tags, and
    # the session tickets that follow the handshake.
    framing = 2048
    assert min(size, limit) <= got.bytes <= min(size + framing, limit + 65536)
    assert got.samples[-1][1] == got.bytes
    assert rate(got) is not None


async def test_a_slow_transfer_is_counted_as_it_arrives_not_per_tls_record(pki: PKI) -> None:
    """At 16 kB/s a 16 KiB record takes a second to arrive. Counted only once whole, a
    steady rate would show as steps a second apart; counted as it arrives, every sample
    moves."""
    async with TLSServer(pki, "127.0.0.1", 0, download_rate=16_000) as server:
        network = SocketNetwork(Timing(timeout=5.0, download_pause=0.0), pki.ca_file, raw=False)
        request = Exchange(
            ip="127.0.0.1", port=server.port, tls=True, sni="x.example", http_path="/bytes/32768"
        )
        got = await network.download(request, asyncio.get_running_loop().time(), Limits())
    assert got.failure is None
    counts = [b for _, b in got.samples]
    assert len(set(counts)) >= 6  # two records' worth over two seconds, sampled every 0.25 s
    assert counts == sorted(counts)


async def test_a_transfer_stopped_at_its_limit_is_reset_so_the_server_stops_sending() -> None:
    """A FIN would let the server go on sending the rest (behind a policer, for seconds);
    a RST stops it. The server sees which: EOF after a FIN, a reset after a RST."""
    seen: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + b"\0" * 200)
        await writer.drain()
        seen.set_result(await how_the_client_ended(reader))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        request = Exchange(ip="127.0.0.1", port=port, http_host="x.example", http_path="/b")
        network = SocketNetwork(Timing(timeout=5.0, download_pause=0.0), raw=False)
        got = await network.download(request, 0.0, Limits(bytes=100))
        assert got.bytes >= 100
        assert await asyncio.wait_for(seen, 5.0) == "reset"
