"""The collector goes away and comes back; the probe goes on measuring and then delivers."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from lab.harness.daemons import Collector, Probe, probe_config, until
from lab.harness.loopback import World

pytestmark = pytest.mark.slow


async def test_collector_down_then_back(
    internet: World, collector: Collector, tmp_path: Path
) -> None:
    probe = Probe(collector.url, tmp_path / "state", probe_config(internet, tmp_path))
    await probe.start()
    try:
        await until(lambda: probe.history() and not probe.pending(), 30, "first upload")
        before = set(probe.history())
        await collector.stop()
        outage_start = dt.datetime.now(dt.UTC)
        await asyncio.sleep(4)
        during = set(probe.history()) - before
        assert len(during) >= 5, probe.output()
        assert set(probe.pending()) >= during  # nothing left the spool while it was down
        await collector.start()
        await until(lambda: not probe.pending(), 30, "spool drained after the outage")
    finally:
        assert await probe.stop() == 0, probe.output()
    held = {m["id"]: m for m in await collector.measurements()}
    assert len(held) == len(probe.history())
    assert during <= held.keys()
    spooled_times = probe.start_times()
    for ident in during:
        assert held[ident]["start_time"].replace("Z", "+00:00") == spooled_times[ident]
        sent = dt.datetime.fromisoformat(held[ident]["start_time"].replace("Z", "+00:00"))
        assert sent >= outage_start - dt.timedelta(seconds=2)
    assert "unreachable" in probe.output()
