"""``censorwatch-probe check --json`` against real servers on loopback, one named scenario
per verdict and method that loopback can produce. (ICMP unreachable and censor-made RSTs
need a router: the censorship lab covers those.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collector.demo.servers import PKI, Answer, Double, NXDomain, Refused, ServFail, Silent, TLSRule
from lab.harness.loopback import BLOCKPAGE, TELEGRAM, World, verdicts, world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@dataclass
class Case:
    name: str
    expect: dict[str, tuple[str, set[str]]]
    options: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[World], None] = lambda w: None


def net(name: str, behaviour: Any) -> Callable[[World], None]:
    return lambda w: w.network_zone.set(name, behaviour)


def both(name: str, behaviour: Any) -> Callable[[World], None]:
    def apply(w: World) -> None:
        w.network_zone.set(name, behaviour)
        w.truth_zone.set(name, behaviour)

    return apply


OK: tuple[str, set[str]] = ("ok", set())
CASES = [
    Case("clean", {"telegram": OK, "telegram_dc": OK, "news": OK, "control_a": OK}),
    Case(
        "dns_nxdomain",
        {"telegram": ("blocked", {"dns.nxdomain"}), "news": OK},
        setup=net("web.telegram.org", NXDomain()),
    ),
    Case(
        "dns_servfail",
        {"telegram": ("blocked", {"dns.servfail"})},
        setup=net("web.telegram.org", ServFail()),
    ),
    Case(
        "dns_refused",
        {"telegram": ("blocked", {"dns.refused"})},
        setup=net("web.telegram.org", Refused()),
    ),
    Case(
        "dns_timeout",
        {"telegram": ("anomaly", {"dns.timeout"})},
        setup=net("web.telegram.org", Silent()),
    ),
    Case(
        "dns_bogon",
        {"telegram": ("blocked", {"dns.bogon"})},
        setup=net("web.telegram.org", Answer(("10.10.34.34",))),
    ),
    Case(
        "dns_injection",
        # the forged answer leads to a block-page server: injected, and a hijack by its effect
        {"telegram": ("blocked", {"dns.injection", "dns.hijack"})},
        setup=net("web.telegram.org", Double(Answer((BLOCKPAGE,)), Answer((TELEGRAM,)), gap=0.02)),
    ),
    Case(
        "dns_hijack_to_blockpage",
        {
            "telegram": ("blocked", {"dns.hijack"}),
            "news": ("blocked", {"dns.hijack", "http.blockpage"}),
        },
        setup=lambda w: (
            net("web.telegram.org", Answer((BLOCKPAGE,)))(w),
            net("news.test", Answer((BLOCKPAGE,)))(w),
        ),
    ),
    Case(
        "domain_gone",
        {"telegram": ("down", {"dns.nxdomain"})},
        setup=both("web.telegram.org", NXDomain()),
    ),
    Case(
        "tcp_refused",
        {"telegram_dc": ("anomaly", {"tcp.refused"}), "telegram": OK},
        options={"dc": "refuse"},
    ),
    Case("tcp_timeout", {"telegram_dc": ("anomaly", {"tcp.timeout"})}, options={"dc": "timeout"}),
    Case(
        "tls_reset_by_sni",
        {"telegram": ("blocked", {"tls.reset"})},
        options={"telegram_tls": {"web.telegram.org": TLSRule("reset")}},
    ),
    Case(
        "tls_eof_by_sni",
        {"telegram": ("blocked", {"tls.eof"})},
        options={"telegram_tls": {"web.telegram.org": TLSRule("close")}},
    ),
    Case(
        "tls_stall_by_sni",
        {"telegram": ("blocked", {"tls.timeout"})},
        options={"telegram_tls": {"web.telegram.org": TLSRule("stall")}},
    ),
    Case(
        "tls_interception",
        {"telegram": ("blocked", {"tls.mitm"})},
        options={"telegram_tls": {"web.telegram.org": TLSRule("rogue")}},
    ),
    Case(
        # an interception box on the address that forges a certificate for any name asked
        "tls_interception_of_every_name",
        {"telegram": ("blocked", {"tls.mitm"})},
        options={"telegram_default": TLSRule("rogue")},
    ),
    Case(
        "http_blockpage",
        {"news": ("blocked", {"http.blockpage"}), "telegram": OK},
        options={"news": "blockpage"},
    ),
    Case("http_reset_by_host", {"news": ("blocked", {"http.reset"})}, options={"news": "reset"}),
    Case("http_timeout", {"news": ("anomaly", {"http.timeout"})}, options={"news": "silent"}),
    Case(
        "offline_controls_unreachable",
        {
            "telegram": ("offline", set()),
            "news": ("offline", set()),
            "telegram_dc": ("offline", set()),
        },
        options={"controls_up": False},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_scenario(case: Case, pki: PKI, tmp_path: Path) -> None:
    async with world(pki, tmp_path, **case.options) as w:
        case.setup(w)
        result = await w.check()
    got = verdicts(result)
    assert {name: got[name] for name in case.expect} == case.expect
    assert result["offline"] is (case.name.startswith("offline"))


async def test_json_contract_and_measurements(pki: PKI, tmp_path: Path) -> None:
    async with world(pki, tmp_path) as w:
        w.network_zone.set("web.telegram.org", NXDomain())
        result = await w.check("--service", "telegram")
    assert {s["service"] for s in result["services"]} == {"telegram", "control_a", "control_b"}
    telegram = next(s for s in result["services"] if s["service"] == "telegram")
    assert set(telegram) >= {"service", "verdict", "methods", "confidence", "endpoints"}
    assert telegram["endpoints"][0]["endpoint"].startswith("web.telegram.org:")
    measurement = next(m for m in result["measurements"] if m["service"] == "telegram")
    assert measurement["id"] == telegram["measurement_id"]
    assert measurement["start_time"].endswith("Z")
    assert "ip" not in measurement["probe"]
    steps = {o["step"] for o in measurement["observations"]}
    assert {"dns", "tcp", "tls", "control"} <= steps
    nx = [o for o in measurement["observations"] if o["step"] == "dns" and o["role"] == "network"]
    assert len(nx) >= 2
    assert all(o["failure"] == "dns_nxdomain_error" for o in nx)
    tls = [o for o in measurement["observations"] if o["step"] == "tls" and o["certificate"]]
    assert tls
    assert len(tls[0]["certificate"]["sha256"]) == 64


async def test_interception_records_the_rogue_certificate(pki: PKI, tmp_path: Path) -> None:
    async with world(pki, tmp_path, telegram_tls={"web.telegram.org": TLSRule("rogue")}) as w:
        result = await w.check("--service", "telegram")
    measurement = next(m for m in result["measurements"] if m["service"] == "telegram")
    failed = [
        o for o in measurement["observations"] if o["step"] == "tls" and o["role"] == "network"
    ]
    assert failed[0]["failure"] == "ssl_unknown_authority"
    assert failed[0]["verified"] is False
    assert (
        "Rogue" in failed[0]["certificate"]["issuer"]
        or "rogue" in failed[0]["certificate"]["issuer"].lower()
    )


def test_bad_arguments_exit_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[services]]\nname = "x"\ncategory = "messenger"\ncolor = 1\n')
    cases = [
        ["--targets", str(bad)],
        ["--targets", str(tmp_path / "missing.toml")],
        ["--resolver", "not-an-ip"],
        ["--control-resolver", "ftp://x"],
        ["--timeout", "-1"],
        ["--concurrency", "zero"],
        ["--service", "nosuch"],
        ["--ca-file", str(tmp_path / "missing.pem")],
    ]
    for args in cases:
        done = subprocess.run(
            [sys.executable, "-m", "probe.cli", "check", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert done.stderr.strip(), args
    done = subprocess.run(
        [sys.executable, "-m", "probe.cli", "check", "--targets", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"{bad}:4: color: unknown key" in done.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) for an empty network namespace",
)
def test_no_network_at_all_says_offline() -> None:
    done = subprocess.run(
        [
            "unshare",
            "--net",
            sys.executable,
            "-m",
            "probe.cli",
            "check",
            "--json",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(done.stdout)
    assert result["offline"] is True
    judged = [s for s in result["services"] if s["category"] != "control"]
    assert judged
    assert {s["verdict"] for s in judged} == {"offline"}


async def test_a_blocked_control_resolver_falls_back_to_the_next(pki: PKI, tmp_path: Path) -> None:
    async with world(pki, tmp_path) as w:
        w.network_zone.set("web.telegram.org", NXDomain())
        assert w.control_dns is not None
        # The check's own --control-resolver comes after this unreachable one.
        result = await w.check("--service", "telegram", first_control="udp://127.0.0.1:9")
    assert verdicts(result)["telegram"] == ("blocked", {"dns.nxdomain"})
    measurement = next(m for m in result["measurements"] if m["service"] == "telegram")
    control = [
        o for o in measurement["observations"] if o["step"] == "dns" and o["role"] == "control"
    ]
    # Both are on loopback, so both are named only by their class.
    assert {o["resolver"] for o in control} == {"private"}
    assert control[0]["failure"] is not None
    assert not control[0]["responses"]
    assert any(o["failure"] is None and o["responses"] for o in control[1:])
