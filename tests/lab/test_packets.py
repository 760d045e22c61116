"""Packet evidence in the lab: injected RSTs and DNS answers told apart by their TTL.

The probe runs as root in the client namespace, so it holds CAP_NET_RAW and captures; the
same scenario with ``--no-raw`` shows what a probe without the capability concludes.
"""

from __future__ import annotations

import os

import pytest

from lab.topology import Topology
from probe.measure.raw import NO_CAPABILITY
from tests.lab.test_families import endpoint, probe_under

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.root,
    pytest.mark.slow,
]


def test_an_rst_with_a_foreign_ttl_is_injected(censored: Topology) -> None:
    found = probe_under(censored, "rst-injected-ttl", "telegram")
    telegram = found["telegram"]
    assert telegram["verdict"] == "blocked"
    web = endpoint(telegram, "web.telegram.org:443")
    assert "tls.reset.injected_ttl" in web["rules"]
    assert any("arrived with TTL 200" in line for line in web["evidence"]), web
    measurement = next(m for m in found[""]["measurements"] if m["service"] == "telegram")
    assert measurement["probe"]["raw_evidence"] is True
    assert NO_CAPABILITY not in measurement["probe"]["missing_evidence"]


def test_without_raw_capture_the_same_rst_stays_an_anomaly(censored: Topology) -> None:
    found = probe_under(censored, "rst-injected-ttl", "telegram", raw=False)
    telegram = found["telegram"]
    assert telegram["verdict"] == "anomaly"
    assert not any("injected_ttl" in r for r in telegram["rules"])
    measurement = next(m for m in found[""]["measurements"] if m["service"] == "telegram")
    assert measurement["probe"]["raw_evidence"] is False
    assert NO_CAPABILITY in measurement["probe"]["missing_evidence"]
    assert all(not o.get("packets") for o in measurement["observations"])


def test_the_routers_own_rst_one_hop_closer_is_not_called_injected(censored: Topology) -> None:
    found = probe_under(censored, "rst-by-address", "whatsapp")
    assert found["whatsapp"]["verdict"] == "anomaly"
    assert not any("injected_ttl" in r for r in found["whatsapp"]["rules"])


def test_two_dns_answers_with_different_ttls_confirm_injection(censored: Topology) -> None:
    found = probe_under(censored, "dns-injection-ttl", "x")
    x = found["x"]
    assert x["verdict"] == "blocked"
    assert "dns.injection.ttl_differs" in x["rules"]
    assert any("IP TTL 200" in line for line in x["evidence"]), x
