"""No resolver address that could identify a volunteer's line leaves the probe: only the
well-known public resolvers of the shipped list are named, any other is a class; verdicts
that contrast the network's resolver with the control one work all the same."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from collector.demo.servers import PKI, NXDomain
from lab.harness.loopback import verdicts, world
from probe.measure import public_resolvers
from probe.measure.dns import system_resolver
from probe.measure.engine import Engine, Settings
from probe.measure.network import Resolver, parse_resolver
from probe.model import DNSObservation, encode
from probe.targets import parse
from tests.probe.fakes import CONTROL_RESOLVERS, Answer, ScriptedNetwork

LABELS = [
    ("192.168.1.1", "private"),
    ("udp://10.20.30.40:5353", "private"),
    ("tcp://100.64.7.7", "private"),  # CGNAT: the provider's, still local
    ("[fe80::1%eth0]:53", "private"),
    ("fd12:3456::53", "private"),
    ("udp://127.0.0.53:53", "private"),
    ("2a02:2168:a01:1234::1", "public-unlisted"),  # inside a subscriber's prefix
    ("95.59.170.10", "public-unlisted"),  # a provider's own resolver
    ("tls://my-doh.example.org", "public-unlisted"),
    ("https://my-doh.example.org/dns-query", "public-unlisted"),
    ("8.8.8.8", "udp://8.8.8.8:53"),
    ("tcp://[2606:4700:4700::1111]:53", "tcp://[2606:4700:4700::1111]:53"),
    ("2620:FE::FE", "udp://[2620:FE::FE]:53"),
    ("tls://dns.quad9.net", "tls://dns.quad9.net:853"),
    ("https://1.1.1.1/dns-query", "https://1.1.1.1/dns-query"),
    ("https://dns.google/dns-query?ct=application/dns-message", "https://dns.google/dns-query"),
    ("https://dns.adguard-dns.com/dns-query/abc123", "https://dns.adguard-dns.com"),
    ("https://cloudflare-dns.com:8443/dns-query", "https://cloudflare-dns.com:8443/dns-query"),
]


@pytest.mark.parametrize(("spec", "label"), LABELS)
def test_only_listed_resolvers_are_named(spec: str, label: str) -> None:
    assert parse_resolver(spec).label == label


@pytest.mark.parametrize(
    "nameserver", ["192.168.1.1", "2a02:2168:a01:1234::1", "fe80::1%wlan0", "127.0.0.53"]
)
def test_the_system_resolver_is_a_class(tmp_path: Path, nameserver: str) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"# from DHCP\nnameserver {nameserver}\n")
    resolver = system_resolver(conf)
    assert resolver is not None
    assert resolver.label == "system"
    assert resolver.asn is None
    assert resolver.address.endswith(":53")  # still used as it is, on this machine


def test_a_listed_system_resolver_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 9.9.9.9\n")
    resolver = system_resolver(conf)
    assert resolver is not None
    assert (resolver.label, resolver.asn) == ("udp://9.9.9.9:53", 19281)


def test_the_shipped_list_is_sourced_and_public() -> None:
    assert {"Google Public DNS", "Cloudflare", "Quad9", "Yandex.DNS", "AdGuard DNS"} <= {
        r.operator for r in public_resolvers.PUBLIC
    }
    for entry in public_resolvers.PUBLIC:
        assert entry.source.startswith("https://")
        assert 0 < entry.asn < 2**32
        assert entry.addresses
        for address in entry.addresses:
            assert ipaddress.ip_address(address).is_global, (entry.operator, address)


TARGETS = parse(
    """
[[services]]
name = "telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = 443

[[services]]
name = "control"
category = "control"
[[services.endpoints]]
host = "example.com"
port = 443
""",
    "<test>",
)


@pytest.mark.parametrize(
    ("resolver", "named"),
    [
        (Resolver("udp", "192.168.1.1", 53, system=True), "system"),
        (Resolver("udp", "2a02:2168:a01:1234::1", 53), "public-unlisted"),
        (Resolver("udp", "77.88.8.8", 53), "udp://77.88.8.8:53"),
    ],
)
async def test_measurements_carry_the_class_and_verdicts_still_contrast(
    resolver: Resolver, named: str
) -> None:
    network = ScriptedNetwork(
        dns={("network", "web.telegram.org"): [Answer(failure="dns_nxdomain_error")]}
    )
    engine = Engine(network, resolver, CONTROL_RESOLVERS, Settings())
    report = await engine.run(TARGETS)
    telegram = next(m for m in report.measurements if m.service == "telegram")
    assert telegram.analysis.verdict == "blocked"
    assert "dns.nxdomain" in telegram.analysis.methods
    dns = [o for o in telegram.observations if isinstance(o, DNSObservation)]
    assert {o.resolver for o in dns if o.role == "network"} == {named}
    if not named.startswith("udp://"):
        assert resolver.host not in encode(telegram).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


async def test_check_sends_no_resolver_address(pki: PKI, tmp_path: Path) -> None:
    """The real probe against real servers: the network's resolver (127.0.0.53) and the
    control DoH server (127.0.0.54) appear nowhere in what would be uploaded."""
    async with world(pki, tmp_path) as w:
        w.network_zone.set("web.telegram.org", NXDomain())
        result = await w.check("--service", "telegram")
    assert verdicts(result)["telegram"] == ("blocked", {"dns.nxdomain"})
    uploaded = json.dumps(result["measurements"])
    assert "127.0.0.53" not in uploaded
    assert "127.0.0.54" not in uploaded
    named = {
        o["resolver"]
        for m in result["measurements"]
        for o in m["observations"]
        if o["step"] == "dns"
    }
    assert named == {"private"}
    assert {m["format_version"] for m in result["measurements"]} == {"1.1.0"}
