"""Locating the censor in the lab: a second router on the path, the real probe tracing.

Each scenario with a ``[path]`` table gets its own lab (``lab.hops.HopTopology``), under a
prefix of its own so that the session's plain lab is left alone. The probe runs as root in
the client namespace, so it holds CAP_NET_RAW and traces; the checks are that the hop it
reports is the censoring router's, with that router's address, that filtered ICMP gives
"not located", and that no address of the home network appears in any trace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from lab import hops
from lab import scenario as scenarios
from lab.hops import HopTopology
from lab.plan import default_plan
from lab.runner import (
    apply_scenario,
    compare,
    format_table,
    parse_report,
    probe_command,
    run_probe_document,
)
from probe.addresses import is_local
from tests.lab.conftest import TEST_PREFIX

HOP_PREFIX = f"{TEST_PREFIX.rstrip('-')}h-"
CENSOR_ADDRESS = {
    "censor-hop1": hops.ROUTER_LOOPBACK,
    "censor-hop2": hops.ROUTER_ACCESS_IP,
    "censor-hop-dns": hops.ROUTER_ACCESS_IP,
}
HOME = {"192.168.77.1", "192.168.77.10", "2a02:4e0:77::1", "2a02:4e0:77::10"}
NAMES = ("censor-hop1", "censor-hop2", "censor-hop-dns", "censor-hop-unlocated")


@pytest.mark.parametrize("name", NAMES)
def test_the_hop_scenarios_say_where_the_censor_sits(name: str) -> None:
    loaded = scenarios.load(scenarios.find(name), default_plan())
    assert loaded.hops is not None
    assert loaded.expect["x"].hop == {"censor-hop1": "1", "censor-hop-unlocated": "none"}.get(
        name, "2"
    )


def test_a_path_table_with_a_bad_hop_is_an_error_naming_the_key(tmp_path: Any) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "t"\n[path]\ncensor_hop = 3\n[expect]\ndefault = { verdict = "ok" }\n')
    with pytest.raises(scenarios.ScenarioError, match="censor_hop"):
        scenarios.load(bad, default_plan())


def test_the_reported_hop_is_read_from_the_endpoints() -> None:
    assert hops.reported_hop([{"location": {"hop": 2}}]) == "2"
    assert hops.reported_hop([{"location": {"hop": None, "reason": "…"}}]) == "none"
    assert hops.reported_hop([{"location": None}, {}]) is None


@pytest.fixture(params=NAMES)
def traced(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Any]]]:
    name = str(request.param)
    loaded = scenarios.load(scenarios.find(name), default_plan(HOP_PREFIX))
    with HopTopology(HOP_PREFIX, loaded.hops) as lab:
        apply_scenario(lab, loaded)
        document = run_probe_document(probe_command(lab))
        rows = compare(loaded, parse_report(json.dumps({"services": document["services"]})))
        assert all(row.correct for row in rows), "\n" + format_table(rows)
        yield name, document


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
def test_the_probe_reports_the_censoring_router(traced: tuple[str, dict[str, Any]]) -> None:
    name, document = traced
    x = next(m for m in document["measurements"] if m["service"] == "x")
    location = x["analysis"]["endpoints"][0]["location"]
    if name in CENSOR_ADDRESS:
        assert location["router"] == CENSOR_ADDRESS[name], location
        assert location["on_path"] is (name == "censor-hop-dns"), location  # the injector
    else:
        assert location["hop"] is None, location
        assert location["router"] is None, location
    for measurement in document["measurements"]:
        for observation in measurement["observations"]:
            if observation["step"] != "trace":
                continue
            routers = {h["router"] for h in observation["hops"] if h.get("router")}
            assert not routers & HOME, observation
            assert not any(is_local(r) for r in routers), observation
