"""The dual-stack lab: a censor that filters one address family, and the probe saying which.

Runs the real probe in the client namespace under a scenario and reads its whole JSON
document, endpoint evidence included. Needs root.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from lab import plan
from lab import scenario as scenarios
from lab.runner import apply_scenario, probe_command, run_probe_document
from lab.topology import Topology

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.root,
    pytest.mark.slow,
]


def probe_under(lab: Topology, name: str, *services: str, raw: bool = True) -> dict[str, Any]:
    """The probe's report under a scenario: ``{service: summary, "": whole document}``."""
    loaded = scenarios.load(scenarios.find(name), lab.plan)
    apply_scenario(lab, loaded)
    extra = [arg for service in services for arg in ("--service", service)]
    extra += [] if raw else ["--no-raw"]
    document = run_probe_document(probe_command(lab, extra=extra))
    return {s["service"]: s for s in document["services"]} | {"": document}


def endpoint(summary: dict[str, Any], label: str) -> dict[str, Any]:
    return next(e for e in summary["endpoints"] if e["endpoint"] == label)


@pytest.mark.parametrize(
    ("scenario", "service", "label", "family", "other"),
    [
        ("ipv4-only-block", "youtube", "www.youtube.com:443", "IPv4", "IPv6"),
        ("ipv6-only-block", "youtube", "www.youtube.com:443", "IPv6", "IPv4"),
    ],
)
def test_a_one_family_block_is_reported_for_that_family(
    censored: Topology, scenario: str, service: str, label: str, family: str, other: str
) -> None:
    found = probe_under(censored, scenario, service)
    summary = found[service]
    assert summary["verdict"] == "blocked"
    result = endpoint(summary, label)
    assert f"blocked over {family} only; {other} works" in result["evidence"]
    verdicts = {f["family"]: f["verdict"] for f in result["families"]}
    assert verdicts == {family.lower(): "blocked", other.lower(): "ok"}
    measurement = next(m for m in found[""]["measurements"] if m["service"] == service)
    assert measurement["probe"]["ipv6"] is True
    assert measurement["format_version"] == "1.1.0"


def test_the_dual_stack_lab_reaches_every_service_over_both_families(censored: Topology) -> None:
    found = probe_under(censored, "clean", "telegram", "whatsapp", "youtube")
    for service in ("telegram", "whatsapp", "youtube"):
        summary = found[service]
        assert summary["verdict"] == "ok", summary
        tested = {f["family"]: f["tested"] for e in summary["endpoints"] for f in e["families"]}
        assert tested == {"ipv4": ["dns", "connect"], "ipv6": ["dns", "connect"]}, summary
    assert plan.CLIENT_IP6 not in str(found[""]["measurements"])  # the volunteer's address
