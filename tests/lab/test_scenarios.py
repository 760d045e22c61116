"""Every scenario end to end: the real probe in the lab, its verdicts against the expectations.

Parametrised over ``lab/scenarios/*.toml``; one lab (the session's) serves them all, the
censor cleared between scenarios. Scenario files are also checked for shape without root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab import scenario as scenarios
from lab.plan import default_plan
from lab.runner import format_table, run_scenario
from lab.topology import Topology
from probe import targets

SCENARIO_FILES = scenarios.scenario_files()
PLAIN_LAB_FILES = [p for p in SCENARIO_FILES if scenarios.load(p, default_plan()).hops is None]
"""Scenarios with a ``[path]`` need a lab of their own: ``tests/lab/test_locate.py``."""
_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


def test_there_is_a_scenario_for_each_technique_of_the_issue() -> None:
    names = {path.stem for path in SCENARIO_FILES}
    assert {
        "clean",
        "dns-nxdomain",
        "dns-servfail",
        "dns-timeout",
        "dns-bogon",
        "dns-hijack",
        "dns-injection",
        "ip-blackhole",
        "rst-by-address",
        "sni-reset",
        "sni-drop",
        "sni-residual",
        "connection-refused",
        "icmp-unreachable",
        "port-blocked",
        "tls-mitm",
        "http-blockpage",
        "flaky",
        "loss25",
        "throttle-sni",
        "throttle-address",
        "dns-injection-ttl",
        "rst-injected-ttl",
        "ipv4-only-block",
        "ipv6-only-block",
        "slow-link",
        "lossy-link",
        "slow-origin",
        "long-delay",
        "shutdown",
        "combined",
    } <= names


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_scenario_file_loads(path: Path) -> None:
    loaded = scenarios.load(path, default_plan())
    assert loaded.title
    assert all(loaded.expectation(service) for service in loaded.services)


def test_lab_targets_are_all_served_by_the_lab() -> None:
    lab_plan = default_plan()
    target_list = targets.load(scenarios.TARGETS_FILE)
    zone = lab_plan.zone()
    addresses = {site.ip for site in lab_plan.sites}
    assert {s.name for s in target_list.services} == set(lab_plan.services)
    assert len(target_list.controls) >= 2
    for service in target_list.services:
        for endpoint in service.endpoints:
            if endpoint.host is not None:
                assert endpoint.host in zone, endpoint
                served = (
                    *lab_plan.service_addresses(service.name),
                    *lab_plan.service_addresses6(service.name),
                )
                assert set(zone[endpoint.host]) <= set(served)
            else:
                assert endpoint.ip in addresses, endpoint


@_root
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("path", PLAIN_LAB_FILES, ids=lambda p: p.stem)
def test_probe_reaches_the_expected_verdicts(lab: Topology, path: Path) -> None:
    loaded = scenarios.load(path, lab.plan)
    rows = run_scenario(lab, loaded)
    assert all(row.correct for row in rows), "\n" + format_table(rows)
