"""SIGKILL at random moments — while rounds are spooled and batches uploaded — then a restart:
the collector ends up with every spooled measurement exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

from lab.harness.daemons import Collector, Probe, probe_config, until
from lab.harness.loopback import World

pytestmark = pytest.mark.slow

KILLS = 20


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    internet: World, collector: Collector, tmp_path: Path
) -> None:
    # Small batches and a fast schedule: a kill lands in a spool write or an upload often.
    config = probe_config(internet, tmp_path, batch_size=2, interval_seconds=0.2)
    probe = Probe(collector.url, tmp_path / "state", config)
    rng = random.Random(5)
    for _ in range(KILLS):
        rounds = probe.output().count("round:")
        await probe.start()
        # each life spools at least one round, however slow the machine; the kill then lands
        # at a random moment of the rounds and uploads that follow
        await until(lambda r=rounds: probe.output().count("round:") > r, 60, "a round")  # type: ignore[misc]
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        await probe.kill()
    spooled = probe.history()
    assert len(spooled) >= KILLS, probe.output()
    rounds = probe.output().count("round:")
    await probe.start()
    try:
        await until(lambda: probe.output().count("round:") > rounds, 30, "a round after restart")
        await until(lambda: not probe.pending(), 60, "spool drained after the kills")
    finally:
        assert await probe.stop() == 0, probe.output()
    history = probe.history()
    assert set(spooled) <= set(history)  # nothing spooled was ever lost
    held = Counter(m["id"] for m in await collector.measurements())
    assert max(held.values()) == 1
    assert set(held) == set(history)
    assert set(history.values()) <= {"accepted", "duplicate"}
