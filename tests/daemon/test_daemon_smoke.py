"""A probe against a real collector: measurements arrive, once each, with their times."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.harness.daemons import Collector, Probe, probe_config, until
from lab.harness.loopback import World

pytestmark = pytest.mark.slow


async def test_measurements_arrive_once(
    internet: World, collector: Collector, tmp_path: Path
) -> None:
    probe = Probe(collector.url, tmp_path / "state", probe_config(internet, tmp_path))
    await probe.start()
    try:
        await until(lambda: len(probe.history()) >= 10, 30, "ten measurements spooled")
        await until(lambda: not probe.pending(), 30, "spool drained")
    finally:
        assert await probe.stop() == 0, probe.output()
    held = await collector.measurements()
    ids = [m["id"] for m in held]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(probe.history())
    telegram = [m for m in held if m["service"] == "telegram"]
    assert telegram
    assert all(m["analysis"]["verdict"] == "ok" for m in telegram), probe.output()
    assert all(m["probe"]["id"] for m in held)
