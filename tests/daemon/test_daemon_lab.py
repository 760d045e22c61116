"""The network disappears (the lab's ``shutdown`` scenario) and comes back: the probe goes on
measuring through the outage — its measurements say ``offline`` — and once the network is
back they reach the collector, which sits on the lab's internet side, exactly once."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from collector.demo.servers.base import free_port
from lab import plan
from lab import scenario as scenarios
from lab.harness.daemons import Probe, until
from lab.paths import REPO_ROOT as REPO
from lab.shell import in_netns
from lab.topology import Topology, terminate_on_sigterm

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[Topology]:
    with terminate_on_sigterm(), Topology("cwld-") as topology:
        yield topology


class NamespacedProbe(Probe):
    def __init__(self, namespace: str, collector_url: str, state: Path, config: Path) -> None:
        # The lab's collector is plain HTTP on a lab address: allowed only by the loud flag.
        super().__init__(collector_url, state, config, "--insecure-http")
        self.argv = in_netns(namespace, ["env", f"PYTHONPATH={REPO}", *self.argv])


@pytest.fixture
async def lab_collector(lab: Topology, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    port = free_port()
    db = tmp_path / "collector.sqlite3"
    argv = [
        "env", f"PYTHONPATH={REPO}", "CENSORWATCH_RATE_PER_SECOND=0", sys.executable, "-m",
        "collector", "serve", "--db", f"sqlite:///{db}", "--listen", f"0.0.0.0:{port}",
        "--data-dir", str(tmp_path / "data"), "--open-enrolment",
    ]  # fmt: skip
    with (tmp_path / "collector.log").open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *in_netns(lab.ns.internet, argv), stdout=out, stderr=out, cwd=REPO
        )
    try:
        await until(lambda: db.exists(), 30, "collector database")
        await asyncio.sleep(2)
        yield f"http://{plan.INTERNET_UP_IP}:{port}", db
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


def _collector_ids(db: Path) -> list[str]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return [
            str(uuid.UUID(str(row[0]))) for row in connection.execute("SELECT id FROM measurements")
        ]
    finally:
        connection.close()


async def test_shutdown_measurements_arrive_after_the_network_returns(
    lab: Topology, lab_collector: tuple[str, Path], tmp_path: Path
) -> None:
    url, db = lab_collector
    config = tmp_path / "probe.toml"
    config.write_text(
        f'targets = "{scenarios.TARGETS_FILE}"\n'
        f'control_resolvers = ["{lab.control_resolver_url}"]\n'
        f'ca_file = "{lab.ca_file}"\ntimeout = 1.0\ncheck_in_seconds = 5.0\n'
        "[schedule]\ninterval_seconds = 2.0\njitter_seconds = 0.0\n"
        "[upload]\nidle_seconds = 0.5\nbackoff_base_seconds = 0.5\nbackoff_cap_seconds = 2.0\n"
    )
    probe = NamespacedProbe(lab.ns.client, url, tmp_path / "state", config)
    await probe.start()
    shutdown = scenarios.load(scenarios.SCENARIO_DIR / "shutdown.toml", lab.plan)
    try:
        await until(lambda: probe.history() and not probe.pending(), 90, "first upload")
        for action in shutdown.actions:
            lab.censor.apply(action)
        try:
            await until(lambda: "offline" in probe.pending().values(), 120, "offline spooled")
            await asyncio.sleep(5)
            # Read before the network returns: once it does, the spool may drain at once.
            offline = {i for i, v in probe.pending().items() if v == "offline"}
        finally:
            lab.censor.clear_all()
        await until(lambda: not probe.pending(), 120, "spool drained after the outage")
    finally:
        assert await probe.stop() == 0, probe.output()
    held = _collector_ids(db)
    assert len(held) == len(set(held))
    assert set(held) == set(probe.history())
    assert offline
    assert offline <= set(held)
    assert plan.CLIENT_IP not in probe.output()
