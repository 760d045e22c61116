"""IPv6: AAAA beside A, each family judged apart, a network without IPv6 saying so once."""

from __future__ import annotations

import pytest

from probe import vocabulary
from probe.measure.engine import NO_IPV6
from probe.model import DNSObservation, Measurement, TCPObservation
from probe.verdicts.bogons import is_bogon_answer, scope
from tests.probe.fakes import Answer, Result, ScriptedNetwork, measure
from tests.probe.test_engine_scenarios import ADDRESSES, TARGETS

TG4, TG6 = "149.154.167.99", "2001:67c:4e8:f004::9"
AAAA = {("control", "web.telegram.org", "AAAA"): [Answer((TG6,))]}


def dual_stack(**kwargs: object) -> ScriptedNetwork:
    dns = {**AAAA, ("network", "web.telegram.org", "AAAA"): [Answer((TG6,))]}
    dns.update(kwargs.pop("dns", {}))  # type: ignore[call-overload]
    return ScriptedNetwork(
        default_address=lambda host: ADDRESSES[host],
        dns=dns,
        ipv6=True,
        **kwargs,  # type: ignore[arg-type]
    )


def telegram(measurements: dict[str, Measurement]) -> Measurement:
    return measurements["telegram"]


async def test_both_families_are_resolved_through_both_resolvers_and_tested() -> None:
    m = telegram(await measure(dual_stack(), TARGETS))
    queried = {(o.role, o.query_type) for o in m.observations if isinstance(o, DNSObservation)}
    assert queried == {(r, t) for r in ("network", "control") for t in ("A", "AAAA")}
    connected = {o.ip for o in m.observations if isinstance(o, TCPObservation)}
    assert connected == {TG4, TG6}
    endpoint = m.analysis.endpoints[0]
    assert m.analysis.verdict == "ok"
    assert [(s.family, s.verdict, s.tested) for s in endpoint.families] == [
        ("ipv4", "ok", ["dns", "connect"]),
        ("ipv6", "ok", ["dns", "connect"]),
    ]
    assert m.probe.ipv6 is True
    assert NO_IPV6 not in m.probe.missing_evidence


@pytest.mark.parametrize(
    ("blocked_ip", "family", "other"),
    [(TG4, "IPv4", "IPv6"), (TG6, "IPv6", "IPv4")],
)
async def test_one_family_reset_after_the_sni_is_blocked_over_that_family_only(
    blocked_ip: str, family: str, other: str
) -> None:
    network = dual_stack(
        exchanges={(blocked_ip, 443, "network"): [Result(tls=vocabulary.CONNECTION_RESET)]}
    )
    m = telegram(await measure(network, TARGETS))
    endpoint = m.analysis.endpoints[0]
    assert m.analysis.verdict == "blocked"
    assert "tls.reset" in m.analysis.methods
    assert f"blocked over {family} only; {other} works" in endpoint.evidence
    assert "ip.one_family" in endpoint.rules
    verdicts = {s.family: s.verdict for s in endpoint.families}
    assert verdicts == {family.lower(): "blocked", other.lower(): "ok"}


async def test_aaaa_nxdomain_where_the_control_resolves_is_dns_blocking_over_ipv6() -> None:
    network = dual_stack(
        dns={("network", "web.telegram.org", "AAAA"): [Answer(failure=vocabulary.DNS_NXDOMAIN)]}
    )
    m = telegram(await measure(network, TARGETS))
    assert m.analysis.verdict == "blocked"
    assert "dns.nxdomain" in m.analysis.methods
    assert {s.family: s.verdict for s in m.analysis.endpoints[0].families}["ipv6"] == "blocked"


@pytest.mark.parametrize("forged", ["::", "fd00::1", "::ffff:10.10.34.35", "64:ff9b::a0a:2223"])
async def test_a_bogon_aaaa_answer_is_dns_bogon(forged: str) -> None:
    network = dual_stack(dns={("network", "web.telegram.org", "AAAA"): [Answer((forged,))]})
    m = telegram(await measure(network, TARGETS))
    assert m.analysis.verdict == "blocked"
    assert "dns.bogon" in m.analysis.methods


async def test_a_hijacked_aaaa_answer_is_dns_hijack_when_the_control_address_works() -> None:
    wrong = "2a02:4e0:0:80::80"
    network = dual_stack(
        dns={("network", "web.telegram.org", "AAAA"): [Answer((wrong,))]},
        exchanges={(wrong, 443, "network"): [Result(tls=vocabulary.SSL_INVALID_HOSTNAME)]},
    )
    m = telegram(await measure(network, TARGETS))
    assert m.analysis.verdict == "blocked"
    assert "dns.hijack" in m.analysis.methods


async def test_a_resolver_that_strips_aaaa_is_not_judged() -> None:
    network = dual_stack(
        dns={("network", "web.telegram.org", "AAAA"): [Answer(failure=vocabulary.DNS_NO_ANSWER)]}
    )
    m = telegram(await measure(network, TARGETS))
    assert m.analysis.verdict == "ok"


async def test_without_an_ipv6_route_the_probe_says_so_once_and_judges_ipv4_alone() -> None:
    network = ScriptedNetwork(default_address=lambda host: ADDRESSES[host], dns=dict(AAAA))
    measurements = await measure(network, TARGETS)
    for m in measurements.values():
        assert m.probe.ipv6 is False
        assert m.probe.missing_evidence.count(NO_IPV6) == 1
        assert not any(":" in o.ip for o in m.observations if isinstance(o, TCPObservation))
    assert {m.analysis.verdict for m in measurements.values()} == {"ok"}
    endpoint = telegram(measurements).analysis.endpoints[0]
    assert [(s.family, s.tested) for s in endpoint.families] == [
        ("ipv4", ["dns", "connect"]),
        ("ipv6", ["dns"]),
    ]
    assert not any("only" in line for line in endpoint.evidence)


async def test_a_name_without_aaaa_records_reads_as_before() -> None:
    m = telegram(await measure(ScriptedNetwork(default_address=ADDRESSES.__getitem__), TARGETS))
    assert m.analysis.endpoints[0].families == []
    assert m.analysis.endpoints[0].evidence == ["all steps succeeded"]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:8.8.8.8", "public"),
        ("64:ff9b::a0a:a0a", "private"),
        ("64:ff9b::808:808", "public"),
        ("2002:a00:1::1", "private"),
        ("2002:808:808::1", "public"),
        ("2a03:2880:f0::1", "public"),
    ],
)
def test_ipv6_scopes_see_through_embedded_ipv4(address: str, expected: str) -> None:
    assert scope(address) == expected


def test_an_ipv6_bogon_is_judged_against_the_controls_ipv6_answer() -> None:
    assert is_bogon_answer("fd00::1", ["2a03:2880:f0::1"])
    assert not is_bogon_answer("fd00::1", ["fd00::2"])  # private everywhere: a lab, not a lie
