"""Every verdict and method, driven through the real engine and rules by a scripted network."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from probe import vocabulary
from probe.measure.engine import Engine, Settings
from probe.measure.network import Resolver
from probe.targets import parse
from tests.probe.fakes import ROGUE_CERT, Answer, Result, ScriptedNetwork, measure

TARGETS = parse(
    """
[[services]]
name = "telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = 443

[[services]]
name = "telegram_dc"
category = "messenger"
[[services.endpoints]]
ip = "149.154.167.51"
port = 443
tls = false

[[services]]
name = "news"
category = "news"
[[services.endpoints]]
host = "news.example"
port = 80
tls = false
http_path = "/"

[[services]]
name = "control_a"
category = "control"
[[services.endpoints]]
host = "control-a.example"
port = 443

[[services]]
name = "control_b"
category = "control"
[[services.endpoints]]
host = "control-b.example"
port = 443
""",
    "scenario targets",
)

ADDRESSES = {
    "web.telegram.org": "149.154.167.99",
    "news.example": "151.101.1.1",
    "control-a.example": "93.184.216.34",
    "control-b.example": "130.89.148.77",
}
TG, NEWS = "149.154.167.99", "151.101.1.1"
BLOCKPAGE_SERVER = "95.59.1.1"


@dataclass
class Scenario:
    name: str
    expect: dict[str, tuple[str, set[str]]]
    dns: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    exchanges: dict[tuple[str, int, str], list[Result]] = field(default_factory=dict)


def _always(result: Result) -> list[Result]:
    return [result]


SCENARIOS = [
    Scenario(
        "clean", {"telegram": ("ok", set()), "telegram_dc": ("ok", set()), "news": ("ok", set())}
    ),
    Scenario(
        "dns_nxdomain",
        {"telegram": ("blocked", {"dns.nxdomain"}), "news": ("ok", set())},
        dns={("network", "web.telegram.org"): [Answer(failure=vocabulary.DNS_NXDOMAIN)]},
    ),
    Scenario(
        "dns_empty_answer",
        {"telegram": ("blocked", {"dns.nxdomain"})},
        dns={("network", "web.telegram.org"): [Answer(failure=vocabulary.DNS_NO_ANSWER)]},
    ),
    Scenario(
        "dns_servfail",
        {"telegram": ("blocked", {"dns.servfail"})},
        dns={("network", "web.telegram.org"): [Answer(failure=vocabulary.DNS_SERVFAIL)]},
    ),
    Scenario(
        "dns_refused",
        {"telegram": ("blocked", {"dns.refused"})},
        dns={("network", "web.telegram.org"): [Answer(failure=vocabulary.DNS_REFUSED)]},
    ),
    Scenario(
        "dns_timeout_is_only_an_anomaly",
        {"telegram": ("anomaly", {"dns.timeout"})},
        dns={("network", "web.telegram.org"): [Answer(failure=vocabulary.GENERIC_TIMEOUT)]},
    ),
    Scenario(
        "domain_gone_everywhere",
        {"telegram": ("down", {"dns.nxdomain"})},
        dns={
            ("network", "web.telegram.org"): [Answer(failure=vocabulary.DNS_NXDOMAIN)],
            ("control", "web.telegram.org"): [Answer(failure=vocabulary.DNS_NXDOMAIN)],
        },
    ),
    Scenario(
        "dns_bogon",
        {"telegram": ("blocked", {"dns.bogon"})},
        dns={("network", "web.telegram.org"): [Answer(("10.10.34.34",))]},
    ),
    Scenario(
        "dns_injection",
        {"telegram": ("blocked", {"dns.injection"})},
        dns={("network", "web.telegram.org"): [Answer((TG,), injected=("8.7.198.45",))]},
    ),
    Scenario(
        "dns_hijack_to_blockpage_server",
        {"telegram": ("blocked", {"dns.hijack"})},
        dns={("network", "web.telegram.org"): [Answer((BLOCKPAGE_SERVER,))]},
        exchanges={
            (BLOCKPAGE_SERVER, 443, "network"): _always(Result(tls=vocabulary.SSL_INVALID_HOSTNAME))
        },
    ),
    Scenario(
        "cdn_answer_differs_but_works",
        {"telegram": ("ok", set())},
        dns={("network", "web.telegram.org"): [Answer(("149.154.167.50",))]},
    ),
    Scenario(
        "tcp_refused",
        {"telegram_dc": ("anomaly", {"tcp.refused"}), "telegram": ("ok", set())},
        exchanges={
            ("149.154.167.51", 443, "network"): _always(
                Result(connect=vocabulary.CONNECTION_REFUSED)
            )
        },
    ),
    Scenario(
        "tcp_timeout",
        {"telegram_dc": ("anomaly", {"tcp.timeout"})},
        exchanges={
            ("149.154.167.51", 443, "network"): _always(Result(connect=vocabulary.GENERIC_TIMEOUT))
        },
    ),
    Scenario(
        "tcp_reset",
        {"telegram_dc": ("anomaly", {"tcp.reset"})},
        exchanges={
            ("149.154.167.51", 443, "network"): _always(Result(connect=vocabulary.CONNECTION_RESET))
        },
    ),
    Scenario(
        "icmp_unreachable",
        {"telegram_dc": ("anomaly", {"tcp.unreachable"})},
        exchanges={
            ("149.154.167.51", 443, "network"): _always(Result(connect=vocabulary.HOST_UNREACHABLE))
        },
    ),
    Scenario(
        "tls_reset_by_sni",
        {"telegram": ("blocked", {"tls.reset"})},
        exchanges={(TG, 443, "network"): _always(Result(tls=vocabulary.CONNECTION_RESET))},
    ),
    Scenario(
        "tls_reset_by_address_is_not_sni_filtering",
        {"telegram": ("anomaly", {"tls.reset"})},
        exchanges={
            (TG, 443, "network"): _always(Result(tls=vocabulary.CONNECTION_RESET)),
            (TG, 443, "control"): _always(Result(tls=vocabulary.CONNECTION_RESET)),
        },
    ),
    Scenario(
        "tls_eof_by_sni",
        {"telegram": ("blocked", {"tls.eof"})},
        exchanges={(TG, 443, "network"): _always(Result(tls=vocabulary.EOF_ERROR))},
    ),
    Scenario(
        # every handshake with the service's SNI times out while the control SNI to the
        # same address completes before, between and after: loss is blind to the name
        "tls_timeout_by_sni_with_a_same_address_contrast",
        {"telegram": ("blocked", {"tls.timeout"})},
        exchanges={(TG, 443, "network"): _always(Result(tls=vocabulary.GENERIC_TIMEOUT))},
    ),
    Scenario(
        # the control SNI times out too: no same-address contrast, one probe cannot say
        "tls_timeout_for_every_name_is_only_an_anomaly",
        {"telegram": ("anomaly", {"tls.timeout"})},
        exchanges={
            (TG, 443, "network"): _always(Result(tls=vocabulary.GENERIC_TIMEOUT)),
            (TG, 443, "control"): _always(Result(tls=vocabulary.GENERIC_TIMEOUT)),
        },
    ),
    Scenario(
        "tls_interception",
        {"telegram": ("blocked", {"tls.mitm"})},
        exchanges={
            (TG, 443, "network"): _always(
                Result(tls=vocabulary.SSL_UNKNOWN_AUTHORITY, certificate=ROGUE_CERT)
            )
        },
    ),
    Scenario(
        "tls_untrusted_everywhere_is_only_an_anomaly",
        {"telegram": ("anomaly", {"tls.mitm"})},
        exchanges={
            (TG, 443, "network"): _always(
                Result(tls=vocabulary.SSL_UNKNOWN_AUTHORITY, certificate=ROGUE_CERT)
            ),
            (TG, 443, "control"): _always(
                Result(tls=vocabulary.SSL_UNKNOWN_AUTHORITY, certificate=ROGUE_CERT)
            ),
        },
    ),
    Scenario(
        "http_blockpage",
        {"news": ("blocked", {"http.blockpage"})},
        exchanges={(NEWS, 80, "network"): _always(Result(blockpage="generic.authorities"))},
    ),
    Scenario(
        "http_reset_by_host",
        {"news": ("blocked", {"http.reset"})},
        exchanges={(NEWS, 80, "network"): _always(Result(http=vocabulary.CONNECTION_RESET))},
    ),
    Scenario(
        "http_timeout",
        {"news": ("anomaly", {"http.timeout"})},
        exchanges={(NEWS, 80, "network"): _always(Result(http=vocabulary.GENERIC_TIMEOUT))},
    ),
    Scenario(
        "transient_failure_then_success",
        {"telegram": ("ok", set()), "news": ("ok", set())},
        dns={
            ("network", "news.example"): [Answer(failure=vocabulary.DNS_SERVFAIL), Answer((NEWS,))]
        },
        exchanges={(TG, 443, "network"): [Result(tls=vocabulary.CONNECTION_RESET), Result()]},
    ),
    Scenario(
        "several_techniques_at_once",
        {
            "telegram": ("blocked", {"dns.nxdomain"}),
            "news": ("blocked", {"http.blockpage"}),
            "telegram_dc": ("anomaly", {"tcp.timeout"}),
        },
        dns={("network", "web.telegram.org"): [Answer(failure=vocabulary.DNS_NXDOMAIN)]},
        exchanges={
            (NEWS, 80, "network"): _always(Result(blockpage="generic.authorities")),
            ("149.154.167.51", 443, "network"): _always(Result(connect=vocabulary.GENERIC_TIMEOUT)),
        },
    ),
]


async def run(network: ScriptedNetwork) -> dict[str, tuple[str, set[str]]]:
    measured = await measure(network, TARGETS)
    return {name: (m.analysis.verdict, set(m.analysis.methods)) for name, m in measured.items()}


def scripted(scenario: Scenario) -> ScriptedNetwork:
    return ScriptedNetwork(
        dns=scenario.dns,  # type: ignore[arg-type]
        exchanges=scenario.exchanges,  # type: ignore[arg-type]
        default_address=lambda host: ADDRESSES[host],
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_scenario(scenario: Scenario) -> None:
    verdicts = await run(scripted(scenario))
    got = {name: verdicts[name] for name in scenario.expect}
    assert got == scenario.expect


async def test_no_network_at_all_is_offline_not_blocked() -> None:
    network = ScriptedNetwork(default_address=lambda host: ADDRESSES[host])
    network.interfere = lambda kind, key: (
        Answer(failure=vocabulary.NETWORK_UNREACHABLE)
        if kind == "dns"
        else Result(connect=vocabulary.NETWORK_UNREACHABLE)
    )
    verdicts = await run(network)
    assert {v for v, _ in verdicts.values()} == {"offline"}


async def test_a_control_whose_first_handshake_is_lost_is_retried_like_any_service() -> None:
    """Lost packets hit controls too: one timed-out connect to a control, then success, is
    ``ok`` for the control (and the run is not offline), as it would be for a service."""
    control_a = ADDRESSES["control-a.example"]
    lost_once = [Result(connect=vocabulary.GENERIC_TIMEOUT), Result()]
    network = scripted(Scenario("x", {}, exchanges={(control_a, 443, "network"): lost_once}))
    verdicts = await run(network)
    assert verdicts["control_a"] == ("ok", set())
    assert verdicts["telegram"] == ("ok", set())


async def test_a_control_that_always_times_out_is_still_an_anomaly() -> None:
    control_a = ADDRESSES["control-a.example"]
    lost = _always(Result(connect=vocabulary.GENERIC_TIMEOUT))
    network = scripted(Scenario("x", {}, exchanges={(control_a, 443, "network"): lost}))
    verdicts = await run(network)
    assert verdicts["control_a"][0] == "anomaly"
    assert verdicts["control_b"] == ("ok", set())
    assert network.calls[(control_a, 443, "network")] == Settings().timeout_attempts


async def test_network_dropping_between_retries_gives_no_judgement() -> None:
    network = scripted(
        Scenario(
            "x",
            {},
            exchanges={(TG, 443, "network"): _always(Result(tls=vocabulary.CONNECTION_RESET))},
        )
    )
    control_connects = 0

    def interfere(kind: str, key: tuple[object, ...]) -> object | None:
        nonlocal control_connects
        if kind == "exchange" and key[0] == ADDRESSES["control-a.example"]:
            control_connects += 1
            return Result(connect=vocabulary.GENERIC_TIMEOUT) if control_connects > 1 else None
        return None

    network.interfere = interfere
    verdicts = await run(network)
    assert verdicts["telegram"] == ("offline", set())


async def test_every_observation_belongs_to_an_endpoint_and_names_its_rules() -> None:
    network = scripted(SCENARIOS[1])
    engine = Engine(
        network, Resolver("udp", "192.168.1.1", 53), [Resolver("udp", "9.9.9.9", 53)], Settings()
    )
    report = await engine.run(TARGETS)
    for m in report.measurements:
        assert all(o.endpoint is not None for o in m.observations)
        assert m.analysis.rules_version
        assert m.analysis.rules
        assert len(m.analysis.endpoints) == len(m.endpoints)
